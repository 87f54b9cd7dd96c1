// The OpenID provider of the OAuth2 tests: oidc-provider (a certified OpenID Connect
// server) on 127.0.0.1 with the device flow, PKCE, refresh tokens, client credentials,
// introspection (which Dovecot's oauth2 passdb calls) and revocation switched on, and
// its built-in login/consent pages (any user name and password sign in as that user).
//
//   node server.mjs PORT ACCESS_TOKEN_SECONDS
//
// oidc-provider is loaded from MAILVAULT_OIDC_MODULES (the node_modules directory
// `scripts/test.sh` installs from package-lock.json, kept outside the clone). Every
// token request is logged on stdout as one line, `token GRANT ok|error CODE`, so a
// test can count refreshes and failed attempts.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [port, accessTtl] = process.argv.slice(2).map(Number);
const modules = process.env.MAILVAULT_OIDC_MODULES;
if (!port || !accessTtl || !modules) {
  console.error('usage: MAILVAULT_OIDC_MODULES=DIR node server.mjs PORT ACCESS_TOKEN_SECONDS');
  process.exit(2);
}
const { default: Provider } = await import(pathToFileURL(join(modules, 'oidc-provider/lib/index.js')).href);

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [
    {
      // mailvault as users run it: a public native client (PKCE, loopback redirect on any port).
      client_id: 'mailvault',
      token_endpoint_auth_method: 'none',
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
    },
    {
      // Tenant-wide archiving: app-only tokens with a client secret.
      client_id: 'archiver',
      client_secret: 'archiver-secret-for-tests',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      // Dovecot's oauth2 passdb, which introspects the tokens it is shown.
      client_id: 'dovecot',
      client_secret: 'dovecot-secret-for-tests',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
  ],
  scopes: ['openid', 'offline_access', 'email', 'mail'],
  claims: { openid: ['sub'], email: ['email'] },
  findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, email: id }) }),
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
  },
  pkce: { required: () => true },
  ttl: {
    AccessToken: accessTtl,
    ClientCredentials: accessTtl,
    RefreshToken: 24 * 3600,
    DeviceCode: 600,
    Interaction: 600,
    Session: 3600,
    Grant: 24 * 3600,
  },
  // Refresh tokens are rotated on use, as Microsoft and Google do.
  rotateRefreshToken: true,
});
provider.proxy = false;

const log = (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
provider.on('grant.success', (ctx) => log(`token ${ctx.oidc.params.grant_type} ok`));
provider.on('grant.error', (ctx, err) => log(`token ${ctx.oidc.params?.grant_type} error ${err.error}`));
provider.on('introspection.error', (_ctx, err) => log(`introspection error ${err.error}`));
provider.on('server_error', (_ctx, err) => log(`server_error ${err.stack}`));

provider.listen(port, '127.0.0.1', () => log(`listening ${issuer}`));

// The test process holds our stdin: when it ends (even killed), so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
