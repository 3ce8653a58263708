// The auditor console in a real browser (Debian's Chromium driven by playwright-core): a
// member without the auditor role is refused; an auditor filters by person and by portal,
// and the CSV export holds exactly the filtered events.
//
// Started by crates/idp/tests/audit_console.rs, which passes through the environment:
//   IDP_URL, OUTBOX_DIR, ARTIFACTS_DIR
//   AUDITOR_EMAIL, MEMBER_EMAIL, PASSWORD   two people with emailed codes, one password
//   MEMBER_ID, MEMBER_CODE                  the member's id and member code
//   MEMBER_PORTAL_EVENTS                    how many seeded events of theirs name the portal
//                                           file-portal
// Any failed check throws: the process exits non-zero and the Rust test fails.

import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { env, nextCode, outboxCodes, screenshots } from './support.mjs';

const IDP_URL = env('IDP_URL');
const OUTBOX_DIR = env('OUTBOX_DIR');
const ARTIFACTS_DIR = env('ARTIFACTS_DIR');
const MEMBER_ID = env('MEMBER_ID');
// How the console shows the member: as they are now (email, member code), then the id the
// log keeps.
const MEMBER_SHOWN = `${env('MEMBER_EMAIL')} (${env('MEMBER_CODE')}) ${MEMBER_ID}`;
const screenshot = screenshots(ARTIFACTS_DIR);

const codes = (recipient) => outboxCodes(OUTBOX_DIR, recipient);
const newCode = (recipient, before) => nextCode(() => codes(recipient), before, recipient);

// Opens /audit and signs in (password, emailed code); returns the console's answer status.
async function openConsole(page, email) {
  await page.goto(IDP_URL + '/audit');
  await page.waitForSelector('#email');
  await page.fill('#email', email);
  await page.fill('#password', env('PASSWORD'));
  const before = codes(email).length;
  await page.click('button[type=submit]');
  await page.waitForSelector('#code');
  await page.fill('#code', await newCode(email, before));
  const answer = page.waitForResponse((r) => new URL(r.url()).pathname === '/audit');
  await page.click('form[action="/login/second-factor"] button[type=submit]');
  return (await answer).status();
}

async function rows(page) {
  return page.$$eval('#events tbody tr', (trs) =>
    trs.map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent.trim())));
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true });
try {
  // 1. A member without the role: refused with 403.
  let context = await browser.newContext({ locale: 'fr-CA' });
  let page = await context.newPage();
  assert.equal(await openConsole(page, env('MEMBER_EMAIL')), 403);
  assert.match(await page.textContent('main'), /réservée aux auditeurs/);
  await screenshot(page, 'audit-refuse');
  await context.close();

  // 2. The auditor: the console, in English.
  context = await browser.newContext({ locale: 'en-CA', acceptDownloads: true });
  page = await context.newPage();
  assert.equal(await openConsole(page, env('AUDITOR_EMAIL')), 200);
  await page.waitForSelector('#events');
  await screenshot(page, 'audit-console');

  // Filter by person (email): every row is theirs.
  await page.fill('#subject', env('MEMBER_EMAIL'));
  await page.click('#apply');
  await page.waitForURL(/subject=/);
  let found = await rows(page);
  assert.ok(found.length > Number(env('MEMBER_PORTAL_EVENTS')), `${found.length} rows`);
  for (const r of found) assert.equal(r[4], MEMBER_SHOWN, `a row of someone else: ${r}`);

  // And by portal: exactly the seeded events of that person at that portal.
  await page.fill('#client', 'file-portal');
  await page.click('#apply');
  await page.waitForURL(/client=file-portal/);
  found = await rows(page);
  assert.equal(found.length, Number(env('MEMBER_PORTAL_EVENTS')));
  for (const r of found) {
    assert.equal(r[4], MEMBER_SHOWN);
    assert.equal(r[5], 'file-portal');
    assert.equal(r[3], 'file-portal', 'a client id as actor names no one');
  }
  await screenshot(page, 'audit-filtre-personne-portail');

  // The CSV export holds the same events, no more.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
  const csv = readFileSync(await download.path(), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'seq,chain_index,id,occurred_at,event_type,actor,subject,client_id,ip,user_agent,request_id,detail,row_hash');
  assert.equal(csv.length - 1, found.length, 'one line per filtered event');
  const seqs = found.map((r) => r[0]).sort();
  assert.deepEqual(csv.slice(1).map((l) => l.split(',')[0]).sort(), seqs);
  for (const line of csv.slice(1)) {
    assert.ok(line.includes(`,${MEMBER_ID},file-portal,`), `a line outside the filter: ${line}`);
  }

  // The export itself is in the log.
  await page.goto(IDP_URL + '/audit?event_type=audit.exported');
  found = await rows(page);
  assert.equal(found.length, 1, 'one export recorded');
  const [exporter, exporterId] = found[0][3].split(' ');
  assert.equal(exporter, env('AUDITOR_EMAIL'), 'the auditor exported, named by email');
  assert.match(exporterId, /^[0-9a-f-]{36}$/);
  assert.match(found[0][7], /"format":"csv"/);
  assert.match(found[0][7], /"rows":/);
  await screenshot(page, 'audit-export-journalise');

  // A date that is not one gets a clear message.
  await page.goto(IDP_URL + '/audit?from=yesterday');
  assert.match(await page.textContent('#filter-error'), /A date is not valid/);
  await context.close();
  console.log('audit console passed');
} finally {
  await browser.close();
}
