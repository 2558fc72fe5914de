// The certified peer of connect's benchmark: node oidc-provider (OpenID Certified), configured
// as close to the bench realm of connect as it allows: one confidential client with the same
// id, secret and redirect URI; ES256 and RS256 keys (ES256 for ID tokens and for the JWT
// access tokens of client_credentials); PKCE required; refresh tokens rotated; introspection
// and revocation on. The login is devInteractions' form (any login, any password): the bench
// measures the protocol endpoints of the peer, never its login.
//
//   node server.mjs --keys FILE          write fresh keys (untimed, before the start-up is measured)
//   node server.mjs                      serve; settings from the environment:
//     PEER_PORT, PEER_KEYS (the file above), PEER_CLIENT_ID, PEER_CLIENT_SECRET, PEER_REDIRECT_URI
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

import Provider from 'oidc-provider';
// Its development adapter, deep-imported (the version is pinned by package-lock.json).
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

// The audience of client_credentials tokens; every such token is a JWT for it.
const API = 'urn:connect-bench:api';
const API_SCOPES = 'documents:read documents:write';

if (process.argv[2] === '--keys') {
  const jwk = (kty, options, alg) => ({
    ...generateKeyPairSync(kty, options).privateKey.export({ format: 'jwk' }),
    alg,
    use: 'sig',
  });
  const keys = [
    jwk('ec', { namedCurve: 'P-256' }, 'ES256'),
    jwk('rsa', { modulusLength: 2048 }, 'RS256'),
  ];
  writeFileSync(process.argv[3], JSON.stringify({ keys }));
  process.exit(0);
}

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`server.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
};

// The development adapter keeps its records in an LRU of 1,000 entries: under load it forgets
// live tokens (userinfo then answers invalid_token). Its code over a store that forgets a
// record only when it expires, as a real store (Redis) does.
class ExpiringMap {
  #entries = new Map();

  constructor() {
    setInterval(() => {
      const now = Date.now();
      for (const [key, { expiresAt }] of this.#entries) {
        if (expiresAt <= now) this.#entries.delete(key);
      }
    }, 60_000).unref();
  }

  get(key) {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key, value, options) {
    const expiresAt = options?.maxAge ? Date.now() + options.maxAge : Infinity;
    this.#entries.set(key, { value, expiresAt });
  }

  delete(key) {
    this.#entries.delete(key);
  }
}

const store = new ExpiringMap();

const port = Number(env('PEER_PORT'));
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: env('PEER_CLIENT_ID'),
    client_secret: env('PEER_CLIENT_SECRET'),
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    redirect_uris: [env('PEER_REDIRECT_URI')],
    id_token_signed_response_alg: 'ES256',
    scope: `openid email offline_access ${API_SCOPES}`,
  }],
  adapter: (model) => new MemoryAdapter(model, store),
  jwks: JSON.parse(readFileSync(env('PEER_KEYS'), 'utf8')),
  cookies: { keys: [env('PEER_CLIENT_SECRET')] },
  scopes: ['openid', 'email', 'offline_access', ...API_SCOPES.split(' ')],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  // The same as connect's bench realm.
  pkce: { required: () => true },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    ClientCredentials: 3600,
    IdToken: 3600,
    RefreshToken: 28800,
    Interaction: 1800,
    Session: 28800,
    Grant: 28800,
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // client_credentials asks no resource (as connect's does not): give it the API, so
      // its token is a JWT; the code flow's tokens stay the userinfo endpoint's (opaque).
      defaultResource(ctx, _client, oneOf) {
        if (oneOf) return oneOf;
        return ctx.oidc.params?.grant_type === 'client_credentials' ? API : undefined;
      },
      getResourceServerInfo(_ctx, resource) {
        if (resource !== API) throw new Provider.errors.InvalidTarget();
        return {
          scope: API_SCOPES,
          audience: API,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
      useGrantedResource: () => false,
    },
  },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@bench.example`, email_verified: true };
      },
    };
  },
});

provider.on('server_error', (_ctx, err) => console.error('server_error', err));

provider.listen(port, '127.0.0.1', () => {
  console.log(`peer listening on ${issuer}`);
});
