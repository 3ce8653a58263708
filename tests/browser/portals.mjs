// Single sign-on across the two demo portals in a real browser (Debian's Chromium driven by
// playwright-core): first login from the member file portal, the ATIP portal signed in without
// a password, the account page, logout at the ATIP portal ending the file portal's session
// through back-channel logout, and the ATIP guest path.
//
// Started by crates/idp/tests/portals.rs, which passes everything through the environment:
//   FILE_URL, ATIP_URL  the two portals
//   IDP_URL             Guichet's public URL (nginx in front of two instances when scaled out)
//   OUTBOX_DIR          the development outbox (JSON jobs), or
//   MAILDIR             a Maildir filled by a real SMTP server (raw messages)
//   EMAIL, NEW_PASSWORD the imported member, and the password they choose
//   ARTIFACTS_DIR       where screenshots go
//   INSTANCE_HEADER     when set, the response header naming the idp instance that answered;
//                       the run must see consecutive idp requests answered by different ones
// Any failed check throws: the process exits non-zero and the Rust test fails.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { base32, env, nextCode, outboxCodes, screenshots, totp } from './support.mjs';

const FILE_URL = env('FILE_URL');
const ATIP_URL = env('ATIP_URL');
const IDP_URL = env('IDP_URL');
const EMAIL = env('EMAIL');
const ARTIFACTS_DIR = env('ARTIFACTS_DIR');
const INSTANCE_HEADER = process.env.INSTANCE_HEADER;
const screenshot = screenshots(ARTIFACTS_DIR);


// Codes mailed to `recipient`, oldest first: from the outbox's JSON jobs, or from the raw
// messages an SMTP server stored (the code is the six-digit number of the plain-text part).
function codesFor(recipient) {
  const wanted = recipient.toLowerCase();
  if (process.env.OUTBOX_DIR) return outboxCodes(process.env.OUTBOX_DIR, recipient);
  const dir = join(env('MAILDIR'), 'new');
  return readdirSync(dir)
    .map((n) => readFileSync(join(dir, n), 'utf8'))
    .filter((m) => new RegExp(`^To: ${wanted.replace(/[.+]/g, '\\$&')}\\r?$`, 'mi').test(m))
    .map((m) => {
      const body = m.slice(m.search(/\r?\n\r?\n/));
      const found = body.match(/(?<![0-9])[0-9]{6}(?![0-9])/);
      assert.ok(found, `no code in a message to ${recipient}`);
      return found[0];
    });
}
const newCodeFor = (recipient, before) =>
  nextCode(() => codesFor(recipient), before, recipient, 15000);


const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true });
const context = await browser.newContext({ locale: 'fr-CA' });
// Which idp instance answered each request to Guichet, in order.
const instances = [];
const visitedIdpLogin = [];
context.on('response', (response) => {
  const url = response.url();
  if (!url.startsWith(IDP_URL)) return;
  if (INSTANCE_HEADER) {
    const instance = response.headers()[INSTANCE_HEADER.toLowerCase()];
    assert.ok(instance, `no ${INSTANCE_HEADER} on ${url}`);
    instances.push(instance);
  }
  if (new URL(url).pathname === '/login') visitedIdpLogin.push(url);
});
try {
  const page = await context.newPage();

  // 1. The file portal: "Access your file" leads to Guichet's sign-in page.
  await page.goto(FILE_URL + '/');
  assert.equal(await page.getAttribute('html', 'lang'), 'fr-CA');
  await screenshot(page, 'portail-dossier-accueil');
  await page.click('#access-file');
  await page.waitForURL((u) => u.href.startsWith(IDP_URL + '/login'));
  await screenshot(page, 'guichet-connexion');

  // 2. First login: email, emailed code, new password, authenticator app.
  await page.click('#first-login');
  await page.fill('#email', EMAIL);
  const mailed = codesFor(EMAIL).length;
  await page.click('button[type=submit]');
  await page.waitForSelector('#code');
  await page.fill('#code', await newCodeFor(EMAIL, mailed));
  await page.click('form[action="/login/reset/code"] button[type=submit]');
  await page.waitForSelector('#new-password');
  await page.fill('#new-password', env('NEW_PASSWORD'));
  await page.fill('#confirm-password', env('NEW_PASSWORD'));
  await page.click('form[action="/login/password"] button[type=submit]');
  await page.waitForSelector('#method-app');
  await page.check('#method-app');
  await page.click('form[action="/login/enrol"] button[type=submit]');
  await page.waitForSelector('#totp-secret');
  const key = base32(await page.textContent('#totp-secret'));
  await page.fill('#code', totp(key, Date.now() / 1000));
  await screenshot(page, 'guichet-application');
  await page.click('form[action="/login/enrol/app"] button[type=submit]');

  // 3. Back on the file portal, signed in: name, member code, recent sign-ins from Guichet.
  await page.waitForURL((u) => u.href.startsWith(FILE_URL + '/') && !u.href.includes('/callback'));
  await page.waitForSelector('#member-name');
  assert.equal((await page.textContent('#member-name')).trim(), 'Marie Tremblay');
  assert.equal((await page.textContent('#member-email')).trim(), EMAIL);
  assert.equal((await page.textContent('#member-code')).trim(), '12345');
  const recent = await page.textContent('#recent-sign-ins');
  assert.match(recent, /Portail des membres/, 'the sign-in just made is listed');
  await screenshot(page, 'portail-dossier-connecte');
  const loginPagesBeforeSso = visitedIdpLogin.length;

  // 4. The ATIP portal: signed in without any password (single sign-on).
  await page.goto(ATIP_URL + '/');
  await page.click('#sign-in');
  await page.waitForURL((u) => u.href.startsWith(ATIP_URL + '/') && !u.href.includes('/callback'));
  await page.waitForSelector('#signed-in-as');
  assert.match(await page.textContent('#signed-in-as'), /Marie Tremblay/);
  assert.equal(visitedIdpLogin.length, loginPagesBeforeSso, 'no sign-in page was shown');
  assert.ok(await page.locator('#no-requests').isVisible());
  await screenshot(page, 'aiprp-connecte-sans-mot-de-passe');

  // 5. Guichet's account page: both sign-ins, the session, the method.
  await page.goto(IDP_URL + '/account');
  await page.waitForSelector('#account-sign-ins');
  const signIns = await page.textContent('#account-sign-ins');
  assert.match(signIns, /AIPRP en ligne/);
  assert.match(signIns, /Déjà connecté/);
  assert.match(await page.textContent('#account-method'), /Application/);
  assert.match(await page.textContent('#account-sessions'), /Ce navigateur/);
  await screenshot(page, 'guichet-mon-compte');

  // 6. Logout at the ATIP portal: Guichet's session ends and the file portal is told.
  await page.goto(ATIP_URL + '/');
  await page.click('#sign-out');
  await page.waitForURL((u) => u.href.startsWith(ATIP_URL + '/'));
  await page.waitForSelector('#sign-in');
  await screenshot(page, 'aiprp-deconnecte');
  const deadline = Date.now() + 10000;
  for (;;) {
    await page.goto(FILE_URL + '/');
    if (await page.locator('#access-file').count()) break;
    assert.ok(Date.now() < deadline, 'the file portal still shows the member signed in');
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(await page.locator('#member-name').count(), 0);
  await screenshot(page, 'portail-dossier-deconnecte');
  // Guichet's own session is over too: its account page asks for a sign-in again.
  await page.goto(IDP_URL + '/account');
  await page.waitForURL((u) => u.href.startsWith(IDP_URL + '/login'));

  // 7. The ATIP guest path: a request without signing in.
  await page.goto(ATIP_URL + '/');
  await page.click('#guest');
  await page.fill('#subject', 'Rapports d’inspection de 2025 concernant le pont Champlain');
  await page.fill('#email', 'invite@example.org');
  await page.click('#submit-request');
  await page.waitForSelector('main p');
  assert.match(await page.textContent('main'), /Son numéro est A-2026-\d{6}/);
  assert.equal(await page.locator('#signed-in-as').count(), 0, 'still a guest');
  await screenshot(page, 'aiprp-demande-invite');

  if (INSTANCE_HEADER) {
    const distinct = new Set(instances);
    assert.ok(distinct.size >= 2, `one instance answered everything: ${[...distinct]}`);
    let switches = 0;
    for (let i = 1; i < instances.length; i++) if (instances[i] !== instances[i - 1]) switches += 1;
    assert.ok(switches * 2 >= instances.length - 1,
      `consecutive requests mostly landed on one instance: ${instances.join(' ')}`);
    console.log(`idp requests: ${instances.length}, instances: ${[...distinct].join(', ')}, switches: ${switches}`);
  }
  console.log('portal journeys passed');
} finally {
  await browser.close();
}
