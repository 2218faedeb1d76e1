// A real OpenID Provider (the npm package oidc-provider) on loopback, for Canopy's single sign-on tests.
//
// Canopy's relying party (identity/oidc.py) is tested against this server end to end: discovery, the authorization
// request with PKCE, this server's own HTML log-in form (a test posts it with httpx, no browser), the code exchange,
// ID tokens signed with RS256 keys made at start, userinfo, and key rotation. Nothing here is for production.
//
// Configuration (environment; the port may also be the first argument):
//   IDP_PORT            the port on 127.0.0.1 (0: any free port; the line "listening <url>" says which)
//   IDP_ISSUER          the issuer URL (default http://127.0.0.1:<port>)
//   IDP_CLIENTS         JSON [{"client_id", "client_secret", "redirect_uris": [...]}, ...]
//   IDP_USERS           JSON [{"sub", "username", "password", "email", "email_verified", "groups"}, ...]
//                       ("groups": null leaves the claim out; "password" defaults to "password")
//   IDP_KEYS_FILE       where the private signing keys live between restarts (a JSON JWKS); without it keys live
//                       in memory only
//   IDP_ROTATE=1        make a new signing key at start: it signs from now on, the previous one stays published
//                       (as an IdP rotating its keys does); with IDP_KEYS_FILE, a restart with this flag rotates
//   IDP_CLAIMS_IN_ID_TOKEN=1  put the scopes' claims (email, groups) in the ID token; by default they are served by
//                       the userinfo endpoint only (oidc-provider's conformant default)
//   IDP_ADMIN_TOKEN     enables POST /__test/users (Authorization: Bearer <token>, body: the IDP_USERS JSON), so a
//                       test changes a user's groups between two sign-ins without a restart
//
// PKCE (S256) is required from every client; the consent step is skipped (a first-party test IdP).
// oidc-provider 9 prefers Node 22 LTS: on Node 20 it prints "Unsupported runtime" and works (what CI runs today).

import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";

import Provider from "oidc-provider";

const port = Number(process.argv[2] ?? process.env.IDP_PORT ?? 0);
const json = (name, fallback) => (process.env[name] ? JSON.parse(process.env[name]) : fallback);

let users = json("IDP_USERS", []);
const clients = json("IDP_CLIENTS", []).map((c) => ({
  client_id: c.client_id,
  client_secret: c.client_secret,
  redirect_uris: c.redirect_uris,
  grant_types: ["authorization_code"],
  response_types: ["code"],
  token_endpoint_auth_method: c.token_endpoint_auth_method ?? "client_secret_basic",
}));

// -- signing keys ---------------------------------------------------------------------------------------------------

function b64url(buffer) {
  return Buffer.from(buffer).toString("base64").replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function newSigningKey() {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = privateKey.export({ format: "jwk" });
  // kid = the RFC 7638 thumbprint, as most IdPs do: a new key always has a new kid.
  const thumbprint = createHash("sha256").update(JSON.stringify({ e: jwk.e, kty: "RSA", n: jwk.n })).digest();
  return { ...jwk, kid: b64url(thumbprint), alg: "RS256", use: "sig" };
}

function loadKeys() {
  const file = process.env.IDP_KEYS_FILE;
  let keys = file && existsSync(file) ? JSON.parse(readFileSync(file, "utf8")).keys : [];
  if (keys.length === 0 || process.env.IDP_ROTATE === "1") {
    keys = [newSigningKey(), ...keys].slice(0, 2); // the first key signs; the previous one stays published
  }
  if (file) writeFileSync(file, JSON.stringify({ keys }), { mode: 0o600 });
  return keys;
}

const keys = loadKeys();

// -- the provider ---------------------------------------------------------------------------------------------------

function findUser(accountId) {
  return users.find((u) => u.sub === accountId);
}

const configuration = {
  clients,
  jwks: { keys },
  cookies: { keys: [randomBytes(32).toString("hex")] },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  conformIdTokenClaims: process.env.IDP_CLAIMS_IN_ID_TOKEN !== "1",
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "preferred_username"],
    groups: ["groups"],
  },
  scopes: ["openid", "email", "profile", "groups"],
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const user = findUser(sub);
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        const claims = {
          sub,
          email: user.email,
          email_verified: Boolean(user.email_verified),
          name: user.name ?? user.username,
          preferred_username: user.username,
        };
        if (user.groups !== null && user.groups !== undefined) claims.groups = user.groups;
        return claims;
      },
    };
  },
  // No consent screen: every client here is first-party, so the grant covers what the client asked for.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope ?? "openid");
    await grant.save();
    return grant;
  },
  renderError(ctx, out) {
    ctx.type = "html";
    ctx.body = `<!doctype html><title>Error</title><h1>${escape(out.error)}</h1><p>${escape(out.error_description ?? "")}</p>`;
  },
};

const issuer = process.env.IDP_ISSUER ?? null;

function escape(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, message) {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Test IdP: sign in</h1>
${message ? `<p class="error">${escape(message)}</p>` : ""}
<form method="post" action="/interaction/${escape(uid)}/login">
  <label>Username <input name="username" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button type="submit">Sign in</button>
</form>
</body></html>`;
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function start(provider, server) {
  server.on("request", async (req, res) => {
    const url = new URL(req.url, "http://localhost");
    try {
      if (url.pathname === "/__test/users" && req.method === "POST") {
        const token = process.env.IDP_ADMIN_TOKEN;
        if (!token || req.headers.authorization !== `Bearer ${token}`) {
          res.writeHead(403).end();
          return;
        }
        users = JSON.parse(await readBody(req));
        res.writeHead(204).end();
        return;
      }
      const match = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
      if (match) {
        const details = await provider.interactionDetails(req, res);
        if (details.uid !== match[1]) {
          res.writeHead(400).end("interaction mismatch");
          return;
        }
        if (!match[2] && req.method === "GET") {
          res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(loginPage(details.uid));
          return;
        }
        if (match[2] && req.method === "POST") {
          const form = new URLSearchParams(await readBody(req));
          const user = users.find(
            (u) => u.username === form.get("username") && (u.password ?? "password") === form.get("password"),
          );
          if (!user) {
            res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
            res.end(loginPage(details.uid, "Wrong username or password."));
            return;
          }
          await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, {
            mergeWithLastSubmission: false,
          });
          return;
        }
        res.writeHead(405).end();
        return;
      }
      provider.callback()(req, res);
    } catch (error) {
      res.writeHead(500, { "content-type": "text/plain" }).end(String(error?.message ?? error));
    }
  });
}

const server = http.createServer();
server.listen(port, "127.0.0.1", () => {
  const actual = server.address().port;
  const provider = new Provider(issuer ?? `http://127.0.0.1:${actual}`, configuration);
  start(provider, server);
  console.log(`listening http://127.0.0.1:${actual} issuer ${provider.issuer} kid ${keys[0].kid}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
