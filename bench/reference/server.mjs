// The reference provider for bench/run.sh: panva's oidc-provider (certified), with its
// in-memory adapter and the same client set as Guichet's benchmark configuration.
//   PORT, SECRET (the clients' secret)
// Access tokens are JWTs (RFC 9068) signed with each client's algorithm, as Guichet's are, so
// both servers do the same signing work per token.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

const port = Number(process.env.PORT);
const secret = process.env.SECRET;
const jwk = (type, options) => {
  const { privateKey } = generateKeyPairSync(type, options);
  return privateKey.export({ format: 'jwk' });
};
const keys = [
  { ...jwk('rsa', { modulusLength: 2048 }), use: 'sig', alg: 'RS256', kid: 'rs256' },
  { ...jwk('ec', { namedCurve: 'P-256' }), use: 'sig', alg: 'ES256', kid: 'es256' },
  { ...jwk('ed25519'), use: 'sig', alg: 'EdDSA', kid: 'eddsa' },
];
const algs = { rs256: 'RS256', es256: 'ES256', eddsa: 'EdDSA' };
// bench-opaque gets opaque access tokens: the only kind this provider introspects.
const clients = [...Object.keys(algs), 'opaque'].map((alg) => ({
  client_id: `bench-${alg}`,
  client_secret: secret,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: 'members.read',
}));
// bench-code signs people in (its development login pages, scripted by sign-in.mjs) for the
// userinfo and refresh scenarios; its ID tokens are ES256, as Guichet's bench-code-es256.
clients.push({
  client_id: 'bench-code',
  client_secret: secret,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: ['http://localhost:9000/callback'],
  scope: 'openid email offline_access',
  id_token_signed_response_alg: 'ES256',
});

// The bundled in-memory adapter keeps at most 1,000 entries (an LRU meant for development):
// under the refresh load it evicts live refresh tokens and grants, and requests fail. The same
// adapter over an unbounded Map (expiry ignored: a run lasts seconds) keeps everything.
const entries = new Map();
const storage = {
  get: (key) => entries.get(key),
  set: (key, value) => entries.set(key, value),
  delete: (key) => entries.delete(key),
};

const provider = new Provider(`http://127.0.0.1:${port}`, {
  adapter: (model) => new MemoryAdapter(model, storage),
  clients,
  jwks: { keys },
  scopes: ['openid', 'email', 'offline_access', 'members.read'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  findAccount: (ctx, sub) => ({
    accountId: sub,
    claims: () => ({ sub, email: `${sub}@example.org`, email_verified: true }),
  }),
  // Rotate on every use, as Guichet does (this provider's default rotates a confidential
  // client's refresh token only near its expiry), so both servers do the same work.
  rotateRefreshToken: () => true,
  enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA'] },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // The people's tokens are for UserInfo (no resource); the clients' for the API.
      defaultResource: (ctx, client) => (client.clientId === 'bench-code' ? undefined : 'urn:guichet:bench'),
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => (client.clientId === 'bench-opaque'
        ? { scope: 'members.read', accessTokenFormat: 'opaque' }
        : {
          scope: 'members.read',
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: algs[client.clientId.replace('bench-', '')] } },
        }),
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`reference provider on ${port}`));
