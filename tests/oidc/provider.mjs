// A real OpenID Connect provider for BlobForge's identity tests (npm `oidc-provider`).
//
// Environment:
//   PORT           port to listen on (127.0.0.1)
//   CLIENT_ID      the one static client's id
//   CLIENT_SECRET  its secret
//   REDIRECT_URI   its only redirect URI (the BlobForge callback)
//   ACCOUNTS_FILE  JSON {"<login>": {"groups": [...], "email": "...", "name": "..."}}, re-read on
//                  every lookup so a test can change someone's groups between sign-ins.
//
// devInteractions gives a built-in login form (any password); loadExistingGrant grants the
// requested scopes so there is no consent screen; conformIdTokenClaims=false puts the claims
// in the ID token as well as in userinfo. PKCE is required from every client.
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const { PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, ACCOUNTS_FILE } = process.env;
for (const [name, value] of Object.entries({ PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, ACCOUNTS_FILE })) {
  if (!value) {
    console.error(`provider.mjs: ${name} is required`);
    process.exit(2);
  }
}

function accounts() {
  return JSON.parse(readFileSync(ACCOUNTS_FILE, "utf8"));
}

const SCOPES = ["openid", "profile", "email", "groups"];

const provider = new Provider(`http://127.0.0.1:${PORT}`, {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [REDIRECT_URI],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
  ],
  claims: {
    openid: ["sub"],
    profile: ["preferred_username", "name"],
    email: ["email", "email_verified"],
    groups: ["groups"],
  },
  scopes: SCOPES,
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["blobforge-test-oidc-cookie-key"] },
  async findAccount(ctx, id) {
    const account = accounts()[id];
    if (!account) {
      return undefined;
    }
    return {
      accountId: id,
      async claims() {
        // Re-read: the groups are whatever the test says they are now.
        const now = accounts()[id] || {};
        return {
          sub: id,
          preferred_username: id,
          name: now.name || id,
          email: now.email || `${id}@example.test`,
          email_verified: true,
          groups: now.groups || [],
        };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(SCOPES.join(" "));
    await grant.save();
    return grant;
  },
});

provider.listen(Number(PORT), "127.0.0.1", () => {
  console.log(`oidc-provider listening on http://127.0.0.1:${PORT}`);
});
