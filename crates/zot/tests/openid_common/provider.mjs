// A real OpenID provider for the login tests: the npm package
// `oidc-provider` (installed by scripts/test into <target>/tmp/oidc-provider)
// with its development login and consent forms.
//
// node provider.mjs <module dir> <port> <setup JSON>
// setup: {"clients": [oidc-provider client metadata], "users": {"<login>":
// {"groups": [...]}}}. Any password is accepted for a listed user; the
// account's claims are sub, email, preferred_username and groups.
// Prints "listening <issuer>" once it serves.
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [moduleDir, port, setupText] = process.argv.slice(2);
const setup = JSON.parse(setupText);
const entry = path.join(moduleDir, 'node_modules', 'oidc-provider', 'lib', 'index.js');
const { default: Provider } = await import(pathToFileURL(entry).href);

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: setup.clients,
  async findAccount(ctx, id) {
    const user = setup.users[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@example.test`,
          email_verified: true,
          preferred_username: id,
          groups: user.groups,
        };
      },
    };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  // PKCE is required of public clients (no secret) only.
  pkce: { required: (ctx, client) => client.tokenEndpointAuthMethod === 'none' },
  cookies: { keys: ['oidc-provider-test-cookie-key'] },
});
// Unknown logins are refused by the development login form only through
// findAccount; make that explicit by refusing at the interaction too.
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const server = http.createServer(provider.callback());
server.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
