// panva's oidc-provider 9 as an external OpenID provider for the portcullis-outpost end-to-end
// tests (tests/tests/outpost_*.rs). Loopback only, plain HTTP, in-memory everything.
//
// One confidential client (the outpost): client_secret_post (what the authentik outpost sends),
// PKCE required, the code flow only. One fixed user, logged in through this script's own HTML
// forms (no devInteractions: a wrong password is refused); consent is granted without a page, as
// for a first-party application. Claims come from `findAccount` and the `claims` configuration:
// the ID token carries only `sub` (oidc-provider's default, conformIdTokenClaims), so email,
// profile and groups reach the outpost through UserInfo.
//
// Pages, with ids the browser test uses:
//   GET  /interaction/<uid>        login form: #username, #password, #sign-in (form action
//                                  /interaction/<uid>/login); #error after a refused attempt
//   POST /interaction/<uid>/login  username=&password= -> 303 back into /auth/<uid>
//   GET  /session/end?id_token_hint=...   #logout-title naming the client of the hint, #logout-yes
//   POST /session/end/confirm       -> /session/end/success: #logged-out
//
// Environment:
//   IDP_PORT           port to listen on (127.0.0.1)
//   IDP_ISSUER         issuer URL, e.g. http://auth.example.com:4567 (resolves to loopback)
//   IDP_CLIENT_ID      the outpost's client_id
//   IDP_CLIENT_SECRET  its client_secret
//   IDP_REDIRECT_URIS  space-separated redirect URIs registered for it
//   IDP_USERNAME, IDP_PASSWORD, IDP_SUB, IDP_EMAIL, IDP_NAME, IDP_GROUPS (comma-separated)
//
// Prints one JSON line {"ready":true,...} when it listens; every request is logged to stdout
// (method and path only).

import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const REQUIRED = [
  'IDP_PORT', 'IDP_ISSUER', 'IDP_CLIENT_ID', 'IDP_CLIENT_SECRET', 'IDP_REDIRECT_URIS',
  'IDP_USERNAME', 'IDP_PASSWORD', 'IDP_SUB', 'IDP_EMAIL', 'IDP_NAME', 'IDP_GROUPS',
];
const env = {};
for (const name of REQUIRED) {
  const value = process.env[name];
  if (!value) {
    console.error(`idp.mjs: ${name} is required`);
    process.exit(2);
  }
  env[name] = value;
}

const user = {
  sub: env.IDP_SUB,
  preferred_username: env.IDP_USERNAME,
  name: env.IDP_NAME,
  email: env.IDP_EMAIL,
  email_verified: true,
  groups: env.IDP_GROUPS.split(',').filter(Boolean),
};

// A fresh RS256 signing key per run. Generated as PEM and exported as a JWK from a second key
// object: Node 20 can deadlock when a garbage collection during the JWK export of the key object
// that generateKeyPairSync returned frees the generation job (both take the key's mutex).
const { privateKey: privatePem } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});
const signingKey = { ...createPrivateKey(privatePem).export({ format: 'jwk' }), kid: 'idp-e2e-1', use: 'sig', alg: 'RS256' };

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body>${body}</body></html>`;

const provider = new Provider(env.IDP_ISSUER, {
  clients: [{
    client_id: env.IDP_CLIENT_ID,
    client_secret: env.IDP_CLIENT_SECRET,
    client_name: 'Portcullis outpost',
    redirect_uris: env.IDP_REDIRECT_URIS.split(' ').filter(Boolean),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'openid email profile groups',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: ['outpost-e2e-idp-cookie-key-0123456789'] },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        const client = ctx.oidc.client?.clientId ?? '(no client)';
        ctx.body = page('Sign out', `<h1 id="logout-title">Sign out of ${escape(client)}?</h1>
${form}
<button id="logout-yes" type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>`);
      },
      postLogoutSuccessSource: async (ctx) => {
        ctx.body = page('Signed out', '<h1 id="logged-out">Signed out</h1>');
      },
    },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, id) => (id === user.sub
    ? { accountId: id, claims: async () => ({ ...user }) }
    : undefined),
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

function loginForm(uid, error) {
  const message = error ? `<p id="error">${escape(error)}</p>` : '';
  return page('Sign in', `<h1>Sign in to the test IdP</h1>${message}
<form method="post" action="/interaction/${escape(uid)}/login">
  <input id="username" name="username" autocomplete="username">
  <input id="password" name="password" type="password" autocomplete="current-password">
  <button id="sign-in" type="submit">Sign in</button>
</form>`);
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 16384) reject(new Error('form too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

// The interaction pages; everything else is the provider.
async function interaction(req, res, url) {
  const parts = url.pathname.split('/').filter(Boolean); // ['interaction', uid, ('login')?]
  const details = await provider.interactionDetails(req, res);
  if (parts[1] !== details.uid) {
    send(res, 400, page('Error', '<p>interaction mismatch</p>'));
    return;
  }
  const { prompt, params, session } = details;
  if (req.method === 'GET' && parts.length === 2) {
    if (prompt.name === 'login') {
      send(res, 200, loginForm(details.uid));
      return;
    }
    if (prompt.name === 'consent') {
      // A first-party application: grant what it asks for without a page.
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    send(res, 400, page('Error', `<p>unexpected prompt ${escape(prompt.name)}</p>`));
    return;
  }
  if (req.method === 'POST' && parts[2] === 'login' && prompt.name === 'login') {
    const form = await readForm(req);
    if (form.get('username') !== user.preferred_username || form.get('password') !== env.IDP_PASSWORD) {
      send(res, 200, loginForm(details.uid, 'Invalid username or password.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
    return;
  }
  send(res, 404, page('Not found', '<p>not found</p>'));
}

const handler = provider.callback();
const server = http.createServer((req, res) => {
  const url = new URL(req.url, env.IDP_ISSUER);
  console.log(`${req.method} ${url.pathname}`);
  if (url.pathname.startsWith('/interaction/')) {
    interaction(req, res, url).catch((err) => {
      console.error('interaction failed', err);
      if (!res.headersSent) send(res, 500, page('Error', `<p>${escape(err.message)}</p>`));
    });
    return;
  }
  handler(req, res);
});
server.listen(Number(env.IDP_PORT), '127.0.0.1', () => {
  console.log(JSON.stringify({ ready: true, issuer: env.IDP_ISSUER }));
});
