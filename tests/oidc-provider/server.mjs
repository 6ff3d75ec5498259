// A real OpenID provider (panva's `oidc-provider`, the certified Node implementation) for
// tests/it/oidc_login.rs. It serves its own discovery document, JWKS, authorization, token and
// userinfo endpoints and its built-in development login and consent pages ("devInteractions":
// any login name signs in as that account; the password is not checked).
//
// Started by the Rust test as a child process:
//   env OIDC_CLIENT_ID, OIDC_CLIENT_SECRET  the one registered client (client_secret_basic)
//   env OIDC_REDIRECT_URI                   its redirect URI; when unset, read as the first
//                                           line on stdin (the gateway's port is known only
//                                           after the provider's issuer is)
//   env OIDC_NAME_IN_ID_TOKEN=1             put the profile claims (name) in the ID token too;
//                                           by default they are only at the userinfo endpoint
// It listens on a free loopback port and prints `issuer http://127.0.0.1:PORT`, then
// `ready` once the client is registered. It exits when stdin closes.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import Provider from 'oidc-provider';

const clientId = process.env.OIDC_CLIENT_ID;
const clientSecret = process.env.OIDC_CLIENT_SECRET;
if (!clientId || !clientSecret) {
  console.error('OIDC_CLIENT_ID and OIDC_CLIENT_SECRET must be set');
  process.exit(2);
}

// The people this provider knows; any other login name is an account named after it.
const people = {
  bob: { given_name: 'Bob', family_name: 'Martinez', name: 'Bob Martinez' },
  alice: { given_name: 'Alice', family_name: 'Nguyen', name: 'Alice Nguyen' },
};

async function findAccount(ctx, id) {
  const person = people[id] ?? { name: id };
  return {
    accountId: id,
    async claims() {
      return { sub: id, ...person };
    },
  };
}

const lines = createInterface({ input: process.stdin });
const firstLine = new Promise((resolve) => {
  lines.once('line', (line) => resolve(line.trim()));
});
lines.on('close', () => process.exit(0));

let handler;
const server = createServer((req, res) => {
  if (!handler) {
    res.statusCode = 503;
    res.end('starting');
    return;
  }
  handler(req, res);
});

server.listen(0, '127.0.0.1', async () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  console.log(`issuer ${issuer}`);
  const redirectUri = process.env.OIDC_REDIRECT_URI || (await firstLine);

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', alg: 'RS256', use: 'sig' };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'RS256',
      },
    ],
    pkce: { required: () => true },
    conformIdTokenClaims: process.env.OIDC_NAME_IN_ID_TOKEN !== '1',
    findAccount,
    claims: { openid: ['sub'], profile: ['name', 'given_name', 'family_name'] },
    features: { devInteractions: { enabled: true } },
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
  });
  provider.on('server_error', (ctx, err) => console.error('oidc-provider server_error', err));
  handler = provider.callback();
  console.log('ready');
});
