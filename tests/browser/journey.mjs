// The sign-in pages in a real browser: Debian's Chromium driven by playwright-core.
//
// Started by crates/idp/tests/browser.rs, which runs the idp, seeds the people and a portal
// callback, and passes everything through the environment:
//   AUTHORIZE_URL   the portal's authorization request
//   CALLBACK        the portal's redirect URI
//   OUTBOX_DIR      where the idp delivers mail (the development outbox)
//   ARTIFACTS_DIR   where screenshots go
//   FIRST_EMAIL     an imported member who must do the first-login journey
//   EMAIL_USER      a member whose second factor is the emailed code
//   PASSWORD        that member's password
//   NEW_PASSWORD    the password the imported member chooses
// Any failed check throws: the process exits non-zero and the Rust test fails.

import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { base32, env, nextCode, outboxCodes, screenshots, totp } from './support.mjs';

const AUTHORIZE_URL = env('AUTHORIZE_URL');
const CALLBACK = env('CALLBACK');
const OUTBOX_DIR = env('OUTBOX_DIR');
const ARTIFACTS_DIR = env('ARTIFACTS_DIR');
const screenshot = screenshots(ARTIFACTS_DIR);


// The newest code mailed to `recipient` once more than `after` were, waiting up to 5 s.
const codeFor = (recipient, after = 0) =>
  nextCode(() => outboxCodes(OUTBOX_DIR, recipient), after, recipient, 5000);
const mailCount = (recipient) => outboxCodes(OUTBOX_DIR, recipient).length;

// Every visible field has a label and the standard autocomplete token for what it holds.
async function checkFields(page) {
  const fields = await page.$$eval('input:not([type=hidden])', (inputs) =>
    inputs.map((i) => ({
      id: i.id,
      type: i.type,
      name: i.name,
      labelled: i.labels.length > 0,
      autocomplete: i.getAttribute('autocomplete'),
    })),
  );
  for (const f of fields) {
    assert.ok(f.labelled, `field ${f.name} has no label on ${page.url()}`);
    const expected = {
      email: 'username',
      password: f.id === 'password' ? 'current-password' : 'new-password',
      confirmation: 'new-password',
      code: 'one-time-code',
    }[f.name];
    if (expected) assert.equal(f.autocomplete, expected, `autocomplete of ${f.name}`);
  }
  assert.equal(await page.locator('h1').count(), 1, 'one heading');
}

async function backAtPortal(page) {
  await page.waitForURL((url) => url.href.startsWith(CALLBACK), { timeout: 10000 });
  const url = new URL(page.url());
  assert.ok(url.searchParams.get('code'), 'the portal got a code');
  assert.equal(url.searchParams.get('state'), 'browser-state');
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true });
try {
  // 1. First login of an imported member, enrolling an authenticator app, in French.
  const first = env('FIRST_EMAIL');
  let context = await browser.newContext({ locale: 'fr-CA' });
  let page = await context.newPage();
  await page.goto(AUTHORIZE_URL);
  assert.equal(await page.getAttribute('html', 'lang'), 'fr-CA');
  await checkFields(page);
  await screenshot(page, 'connexion');
  await page.click('#first-login');
  await checkFields(page);
  await screenshot(page, 'premiere-connexion');
  await page.fill('#email', first);
  await page.click('button[type=submit]');
  await page.waitForSelector('#code');
  await checkFields(page);
  await screenshot(page, 'code-courriel');
  await page.fill('#code', await codeFor(first));
  await page.click('form[action="/login/reset/code"] button[type=submit]');
  await page.waitForSelector('#new-password');
  await checkFields(page);
  assert.match(await page.textContent('#password-policy'), /au moins 10 caractères/);
  await page.fill('#new-password', 'Password123');
  await page.fill('#confirm-password', 'Password123');
  await page.click('form[action="/login/password"] button[type=submit]');
  await page.waitForSelector('#form-error');
  assert.match(await page.textContent('#form-error'), /trop facile à deviner/);
  await screenshot(page, 'mot-de-passe-refuse');
  await page.fill('#new-password', env('NEW_PASSWORD'));
  await page.fill('#confirm-password', env('NEW_PASSWORD'));
  await page.click('form[action="/login/password"] button[type=submit]');
  await page.waitForSelector('#method-app');
  await checkFields(page);
  await screenshot(page, 'choix-methode');
  await page.check('#method-app');
  await page.click('form[action="/login/enrol"] button[type=submit]');
  await page.waitForSelector('#totp-secret');
  await checkFields(page);
  assert.ok(await page.locator('svg.qr').isVisible(), 'the QR code is shown');
  assert.match(await page.getAttribute('#totp-link', 'href'), /^otpauth:\/\/totp\/CPAQCPROD:/);
  await screenshot(page, 'application-authentification');
  const key = base32(await page.textContent('#totp-secret'));
  const enrolledAt = Date.now() / 1000;
  await page.fill('#code', totp(key, enrolledAt));
  await page.click('form[action="/login/enrol/app"] button[type=submit]');
  await backAtPortal(page);
  await context.close();

  // 2. A later sign-in with a fresh code from the app.
  context = await browser.newContext({ locale: 'fr-CA' });
  page = await context.newPage();
  await page.goto(AUTHORIZE_URL);
  await page.fill('#email', first);
  await page.fill('#password', env('NEW_PASSWORD'));
  await page.click('button[type=submit]');
  await page.waitForSelector('#code');
  await checkFields(page);
  await screenshot(page, 'code-application');
  // The enrolment used the current time step; the next step's code is the fresh one.
  await page.fill('#code', totp(key, enrolledAt + 30));
  await page.click('form[action="/login/second-factor"] button[type=submit]');
  await backAtPortal(page);
  await context.close();

  // 3. The emailed-code journey, in English from the browser's language.
  const member = env('EMAIL_USER');
  context = await browser.newContext({ locale: 'en-CA' });
  page = await context.newPage();
  await page.goto(AUTHORIZE_URL);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  await page.fill('#email', member);
  await page.fill('#password', env('PASSWORD'));
  const before = mailCount(member);
  await page.click('button[type=submit]');
  await page.waitForSelector('#code');
  assert.match(await page.textContent('main'), /We sent a six-digit verification code/);
  assert.ok(await page.locator('#resend').isVisible(), 'Send a new code is offered');
  await screenshot(page, 'email-code');
  await page.fill('#code', await codeFor(member, before));
  await page.click('form[action="/login/second-factor"] button[type=submit]');
  await backAtPortal(page);
  await context.close();

  // 4. The FR/EN switch, remembered.
  context = await browser.newContext({ locale: 'en-CA' });
  page = await context.newPage();
  await page.goto(AUTHORIZE_URL);
  assert.match(await page.textContent('label[for=password]'), /^Password$/);
  await page.click('header a.lang');
  assert.equal(await page.getAttribute('html', 'lang'), 'fr-CA');
  assert.match(await page.textContent('label[for=password]'), /^Mot de passe$/);
  await screenshot(page, 'switch-fr');
  await page.goto(AUTHORIZE_URL);
  assert.equal(await page.getAttribute('html', 'lang'), 'fr-CA', 'the choice is remembered');
  await page.click('header a.lang');
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  await screenshot(page, 'switch-en');
  await context.close();
  console.log(`browser journeys passed; ${screenshot.count()} screenshots in ${ARTIFACTS_DIR}`);
} finally {
  await browser.close();
}
