// Shared by the browser scripts: required environment, the authenticator app's arithmetic,
// and numbered screenshots.

import { createHmac } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';

// The value of environment variable `name`; throws when it is not set.
export function env(name) {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
}

// RFC 4648 base32, as an authenticator app reads the key shown on the page.
export function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/[\s=]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    assert.ok(v >= 0, `not base32: ${c}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

// RFC 6238 TOTP (SHA-1, 6 digits, 30 s), as an authenticator app computes it.
export function totp(key, unixSeconds) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

// A function taking numbered full-page screenshots into `dir` (created if missing); its
// `count()` tells how many it took.
export function screenshots(dir) {
  mkdirSync(dir, { recursive: true });
  let shot = 0;
  const take = async (page, name) => {
    shot += 1;
    await page.screenshot({ path: join(dir, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
  };
  // How many were taken.
  take.count = () => shot;
  return take;
}

// The codes mailed to `recipient` through the development outbox in `dir` (one JSON job per
// file), oldest first.
export function outboxCodes(dir, recipient) {
  const wanted = recipient.toLowerCase();
  return readdirSync(dir)
    .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
    .sort()
    .map((n) => JSON.parse(readFileSync(join(dir, n), 'utf8')))
    .filter((j) => j.recipient.toLowerCase() === wanted)
    .map((j) => j.parameters.code);
}

// The newest of `codes()` once there are more than `before`, waiting up to `ms`.
export async function nextCode(codes, before, what, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const all = codes();
    if (all.length > before) return all[all.length - 1];
    assert.ok(Date.now() < deadline, `no code mailed to ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
