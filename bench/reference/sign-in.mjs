// Signs one person in at the reference provider through its development login and consent
// pages, as a browser would, and prints the access token (for the userinfo scenario); with
// COUNT, prints COUNT refresh tokens instead, one per line, each from its own sign-in (so each
// belongs to its own grant) with offline_access, which this provider grants only with
// prompt=consent.
//   BASE (the provider's URL), SECRET (bench-code's secret), COUNT (optional)
import { createHash, randomBytes } from 'node:crypto';

const base = process.env.BASE;
const secret = process.env.SECRET;
const redirect = 'http://localhost:9000/callback';
const jar = new Map();
const cookies = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
async function go(url, init = {}) {
  const r = await fetch(new URL(url, base), {
    ...init,
    redirect: 'manual',
    headers: { ...(init.headers ?? {}), cookie: cookies() },
  });
  for (const c of r.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i), pair.slice(i + 1));
  }
  return r;
}
const form = (fields) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
});

const count = Number(process.env.COUNT ?? 0);

// One authorization and code exchange in the session of the cookie jar.
async function tokens(scope, prompt) {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  let r = await go(`/auth?${new URLSearchParams({
    client_id: 'bench-code', response_type: 'code', scope, redirect_uri: redirect,
    code_challenge: challenge, code_challenge_method: 'S256', state: 's', nonce: 'n',
    ...(prompt ? { prompt } : {}),
  })}`);
  let location = r.headers.get('location');
  for (let step = 0; step < 8 && !location.startsWith(redirect); step += 1) {
    if (location.includes('/interaction/')) {
      const page = await (await go(location)).text();
      const fields = page.includes('name="login"')
        ? { prompt: 'login', login: 'bench-person', password: 'x' }
        : { prompt: 'consent' };
      r = await go(location, form(fields));
    } else {
      r = await go(location);
    }
    location = r.headers.get('location');
    if (!location) throw new Error(`stuck at step ${step}: ${r.status} ${await r.text()}`);
  }
  const code = new URL(location).searchParams.get('code');
  const answer = await (await fetch(new URL('/token', base), {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`bench-code:${secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: redirect, code_verifier: verifier,
    }).toString(),
  })).json();
  if (!answer.access_token) throw new Error(`no access token: ${JSON.stringify(answer)}`);
  return answer;
}

if (count > 0) {
  const refresh = [];
  for (let i = 0; i < count; i += 1) {
    jar.clear();
    const answer = await tokens('openid email offline_access', 'consent');
    if (!answer.refresh_token) throw new Error(`no refresh token: ${JSON.stringify(answer)}`);
    refresh.push(answer.refresh_token);
  }
  console.log(refresh.join('\n'));
} else {
  console.log((await tokens('openid email')).access_token);
}
