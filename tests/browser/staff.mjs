// The helpdesk and administration console in a real browser (Debian's Chromium driven by
// playwright-core): the helpdesk finds a member by member code and does each repair with a
// written reason; a member is refused; an administrator registers a portal (its secret shown
// once), rotates the signing keys and changes the sign-in policy within its bounds.
//
// Started by crates/idp/tests/staff_console.rs, which passes through the environment:
//   IDP_URL, OUTBOX_DIR, ARTIFACTS_DIR
//   HELPDESK_EMAIL, ADMIN_EMAIL, OUTSIDER_EMAIL, MEMBER_EMAIL, PASSWORD
//                                                         staff, a member without a role and
//                                                         the (locked) member to repair
//   TARGET_CODE, TARGET_NEW_EMAIL                         the member the helpdesk repairs
// The Rust test then checks the audit row of every action. Any failed check throws: the
// process exits non-zero and the Rust test fails.

import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { env, nextCode, outboxCodes, screenshots } from './support.mjs';

const IDP_URL = env('IDP_URL');
const OUTBOX_DIR = env('OUTBOX_DIR');
const screenshot = screenshots(env('ARTIFACTS_DIR'));

const codes = (recipient) => outboxCodes(OUTBOX_DIR, recipient);
const newCode = (recipient, before) => nextCode(() => codes(recipient), before, recipient);

// Opens `path` and signs in (password, emailed code); returns the status of the page.
async function openConsole(page, email, path) {
  await page.goto(IDP_URL + path);
  await page.waitForSelector('#email');
  await page.fill('#email', email);
  await page.fill('#password', env('PASSWORD'));
  const before = codes(email).length;
  await page.click('button[type=submit]');
  await page.waitForSelector('#code');
  await page.fill('#code', await newCode(email, before));
  const answer = page.waitForResponse((r) => new URL(r.url()).pathname === '/staff');
  await page.click('form[action="/login/second-factor"] button[type=submit]');
  return (await answer).status();
}

// Fills the reason (and any other field) of the form `id` and submits it; returns the notice.
async function act(page, id, reason, fields = {}) {
  for (const [selector, value] of Object.entries(fields)) await page.fill(selector, value);
  await page.fill(`#${id} textarea[name=reason]`, reason);
  await Promise.all([page.waitForURL(/done=/), page.click(`#${id} button[type=submit]`)]);
  return (await page.textContent('#notice')).trim();
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true });
try {
    // 1. A member without a role: refused with 403, in French.
  let context = await browser.newContext({ locale: 'fr-CA' });
  let page = await context.newPage();
  assert.equal(await openConsole(page, env('OUTSIDER_EMAIL'), '/staff'), 403);
  assert.match(await page.textContent('main'), /réservée au soutien technique/);
  await context.close();

  // 2. The helpdesk, in French: a malformed member code is explained, a valid one finds the
  // member.
  context = await browser.newContext({ locale: 'fr-CA' });
  page = await context.newPage();
  assert.equal(await openConsole(page, env('HELPDESK_EMAIL'), '/staff'), 200);
  await page.fill('#q', 'R1234');
  await page.click('#search');
  await page.waitForSelector('#search-error');
  assert.match(await page.textContent('#search-error'), /R suivi de 5 chiffres/);
  await page.fill('#q', env('TARGET_CODE'));
  await page.click('#search');
  await page.waitForSelector('#people');
  const links = await page.$$('#people tbody a');
  assert.equal(links.length, 1, 'one person has that member code');
  await Promise.all([page.waitForURL(/\/staff\/people\//), links[0].click()]);
  assert.equal((await page.textContent('#person-email')).trim(), env('MEMBER_EMAIL'));
  assert.match(await page.textContent('#person-state'), /Verrouillé/);
  await screenshot(page, 'staff-person');

  // A form sent without a reason is refused by the server too (the browser's own check off).
  await page.$eval('#reason-unlock', (el) => el.removeAttribute('required'));
  await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.click('#form-unlock button[type=submit]'),
  ]);
  assert.match(await page.textContent('#action-error'), /Écrivez le motif/);

  // Each repair, with its reason.
  assert.match(await act(page, 'form-unlock', 'Appel du membre, identité vérifiée (unlock)'),
    /déverrouillé/);
  assert.match(await page.textContent('#person-state'), /Actif/);
  assert.match(
    await act(page, 'form-reset-2fa', 'Téléphone perdu, identité vérifiée (reset-2fa)'),
    /réinitialisée/);
  assert.match(await page.textContent('#person-must-reset'), /Oui/);
  assert.match(await act(page, 'form-invite', 'Nouvelle invitation demandée (invite)'),
    /invitation est envoyée/);
  assert.match(
    await act(page, 'form-email', 'Nouvelle adresse au dossier (email)',
      { '#new-email': env('TARGET_NEW_EMAIL') }),
    /Un code a été envoyé à la nouvelle adresse/);
  assert.equal((await page.textContent('#person-pending-email')).trim(), env('TARGET_NEW_EMAIL'));
  assert.equal((await page.textContent('#person-email')).trim(), env('MEMBER_EMAIL'),
    'the old address holds until the code is entered');
    assert.equal((await page.textContent('#person-sessions')).trim(), '1');
  assert.match(await act(page, 'form-end-sessions', 'Appareil volé (end-sessions)'),
    /sessions de la personne sont fermées/);
  assert.equal((await page.textContent('#person-sessions')).trim(), '0');
  assert.match(await act(page, 'form-disable', 'Départ à la retraite (disable)'),
    /désactivé/);
  assert.match(await page.textContent('#person-state'), /Désactivé/);
  assert.match(await act(page, 'form-enable', 'Retour au travail (enable)'), /réactivé/);
  await screenshot(page, 'staff-actions');

  // The helpdesk may look at the portals but not manage them.
  await page.goto(IDP_URL + '/staff/clients');
  assert.equal(await page.$('#form-new-client'), null, 'no registration form for the helpdesk');
  await context.close();

  // 3. The administrator, in English: a new portal, its secret shown once; new keys.
  context = await browser.newContext({ locale: 'en-CA' });
  page = await context.newPage();
  assert.equal(await openConsole(page, env('ADMIN_EMAIL'), '/staff'), 200);
  await page.click('#nav-clients');
  await page.waitForSelector('#form-new-client');
  await page.fill('#client-id', 'college-messaging');
  await page.fill('#client-name', 'Secure messaging');
  await page.fill('#client-uris', 'https://messaging.example.org/callback');
  await page.fill('#reason-new-client', 'New portal for the college (client)');
  await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.click('#form-new-client button[type=submit]'),
  ]);
  const secret = (await page.textContent('#client-secret')).trim();
  assert.match(secret, /^[A-Za-z0-9_-]{40,}$/);
  assert.match(await page.textContent('#client-college-messaging'), /Secure messaging/);
  await screenshot(page, 'staff-client-secret');
  await page.reload();
  assert.equal(await page.$('#client-secret'), null, 'the secret is shown only once');
    assert.ok(!(await page.content()).includes(secret), 'the secret never shows again');

  // Its redirect URIs, a new secret, then disabled.
  const form = (action) => `form[action="/staff/clients/college-messaging/${action}"]`;
  await page.fill('#uris-college-messaging',
    'https://messaging.example.org/callback\nhttps://messaging.example.org/callback2');
  await page.fill('#reason-uris-college-messaging', 'Second callback (redirect-uris)');
  await Promise.all([page.waitForURL(/done=redirect-uris/), page.click(`${form('redirect-uris')} button`)]);
  assert.match(await page.inputValue('#uris-college-messaging'), /callback2/);
  await page.fill('#reason-secret-college-messaging', 'Secret leaked (secret)');
  await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.click(`${form('secret')} button`),
  ]);
  const rotated = (await page.textContent('#client-secret')).trim();
  assert.match(rotated, /^[A-Za-z0-9_-]{40,}$/);
  assert.notEqual(rotated, secret);
  await page.fill('#reason-state-college-messaging', 'Portal retired (disable)');
  await Promise.all([page.waitForURL(/done=disable/), page.click(`${form('disable')} button`)]);
  assert.match(await page.textContent('#client-college-messaging .client-state'), /Disabled/);
  await page.fill('#reason-keys', 'Yearly rotation (keys)');
  await Promise.all([page.waitForURL(/done=keys/), page.click('#form-rotate-keys button[type=submit]')]);
    assert.match(await page.textContent('#notice'), /New signing keys/);

  // The sign-in policy: a value outside its bounds is refused, one within is saved.
  await page.click('#nav-policies');
  await page.waitForSelector('#form-policies');
  await page.$eval('#policy-max_lock_secs', (el) => el.removeAttribute('max'));
  await page.fill('#policy-max_lock_secs', '9999999');
  await page.fill('#reason-policies', 'Out of bounds (policy)');
  await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.click('#form-policies button[type=submit]'),
  ]);
  assert.match(await page.textContent('#action-error'), /max_lock_secs must be a whole number/);
  await page.fill('#policy-max_lock_secs', '86400');
  await page.fill('#policy-lock_secs', '1800');
  await page.fill('#reason-policies', 'Longer first lock (policy)');
  await Promise.all([page.waitForURL(/done=policy/), page.click('#form-policies button[type=submit]')]);
  assert.match(await page.textContent('#notice'), /policy was saved/);
  assert.equal(await page.inputValue('#policy-lock_secs'), '1800');
  await screenshot(page, 'staff-policy');
  await context.close();
  console.log('staff console passed');
} finally {
  await browser.close();
}
