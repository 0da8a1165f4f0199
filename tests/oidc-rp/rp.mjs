// End-to-end relying-party test for the Portcullis OpenID Connect provider.
//
// Drives a running Portcullis server with openid-client 6 (the certified RP library) acting as
// the relying party and a scripted "browser" (a cookie jar plus node:https) walking the Authelia
// style portal flow: authorization endpoint -> portal (/?flow=openid_connect&flow_id=..) ->
// POST /api/firstfactor -> /api/oidc/authorization?..&consent_id=.. -> (explicit consent:
// GET/POST /api/oidc/consent) -> 302 to the client's redirect URI with code, state and iss.
//
// Every check prints one JSON line to stdout: {"check":"<name>","ok":true|false,"detail":"..."}.
// Exit code 0 only if every check passed; 1 if any failed or an uncaught error happened.
//
// Environment:
//   RP_ISSUER            issuer URL, e.g. https://auth.example.com:4567 (host need not resolve)
//   RP_CONNECT           host:port to actually connect to, e.g. 127.0.0.1:4567
//   RP_CA                PEM CA certificate that signed the server certificate
//   RP_CLIENT_ID         confidential client (client_secret_basic, explicit consent,
//   RP_CLIENT_SECRET       scopes openid profile email groups offline_access, code + refresh)
//   RP_PUBLIC_CLIENT_ID  public client (auth method none, PKCE S256, implicit consent)
//   RP_CC_CLIENT_ID      client_credentials-only client (client_secret_basic, scope api.read)
//   RP_CC_CLIENT_SECRET
//   RP_REDIRECT_URI      redirect URI registered for both code-flow clients (never fetched)
//   RP_USERNAME          user to log in as, with RP_PASSWORD
//   RP_PASSWORD
//   RP_EMAIL             that user's email (asserted from userinfo)
//   RP_GROUPS            that user's groups, comma-separated (asserted from userinfo)
//   RP_DEVICE_CLIENT_ID  public client (auth method none) with the grant types
//                          urn:ietf:params:oauth:grant-type:device_code and refresh_token,
//                          scopes openid profile offline_access, one_factor policy
//   RP_POST_LOGOUT_URI   a post_logout_redirect_uri registered for RP_CLIENT_ID (never fetched)
//
// Checks: discovery, code-flow, userinfo, same-subject, introspection, refresh-rotation,
// code-reuse, pkce-mismatch, public-client, revocation, client-credentials, wrong-secret,
// device-flow, end-session. end-session runs last: the logout revokes every token of the user.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import * as client from 'openid-client';

const REQUIRED = [
  'RP_ISSUER', 'RP_CONNECT', 'RP_CA', 'RP_CLIENT_ID', 'RP_CLIENT_SECRET', 'RP_PUBLIC_CLIENT_ID',
  'RP_CC_CLIENT_ID', 'RP_CC_CLIENT_SECRET', 'RP_REDIRECT_URI', 'RP_USERNAME', 'RP_PASSWORD',
  'RP_EMAIL', 'RP_GROUPS', 'RP_DEVICE_CLIENT_ID', 'RP_POST_LOGOUT_URI',
];
const env = {};
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const FULL_SCOPE = 'openid profile email groups offline_access';
const PUBLIC_SCOPE = 'openid profile email groups';
const DEVICE_SCOPE = 'openid profile offline_access';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const USER_CODE_RE = /^[A-Z0-9]{4}-[A-Z0-9]{4}$/;
const MAX_HOPS = 10;

// ---------------------------------------------------------------------------------------------
// Networking: connect to RP_CONNECT, but speak TLS (SNI, certificate name) and HTTP (Host) for
// the URL's own host name. Never follows redirects. Resolves to a WHATWG Response.

let caPem;
function fetchVia(url, options = {}) {
  const u = new URL(url instanceof URL ? url.href : String(url));
  const [connectHost, connectPort] = splitHostPort(env.RP_CONNECT);
  const headers = {};
  for (const [k, v] of new Headers(options.headers ?? {})) headers[k] = v; // lower-cased names
  let body = options.body;
  if (body instanceof URLSearchParams) {
    headers['content-type'] ??= 'application/x-www-form-urlencoded;charset=UTF-8';
    body = body.toString();
  }
  body = body == null ? undefined : Buffer.from(body);
  if (body) headers['content-length'] = String(body.length);
  headers.host = u.host;
  const method = (options.method ?? 'GET').toUpperCase();

  return new Promise((resolve, reject) => {
    const req = https.request({
      host: connectHost,
      port: connectPort,
      servername: u.hostname,
      ca: caPem,
      method,
      path: u.pathname + u.search,
      headers,
      signal: options.signal ?? undefined,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const h = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
        const noBody = [204, 205, 304].includes(res.statusCode) || method === 'HEAD';
        try {
          resolve(new Response(noBody ? null : Buffer.concat(chunks), {
            status: res.statusCode, statusText: res.statusMessage, headers: h,
          }));
        } catch (e) { reject(e); }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function splitHostPort(s) {
  const i = s.lastIndexOf(':');
  assert.ok(i > 0, `RP_CONNECT must be host:port, got ${s}`);
  return [s.slice(0, i).replace(/^\[|\]$/g, ''), Number(s.slice(i + 1))];
}

// ---------------------------------------------------------------------------------------------
// Scripted browser: a cookie jar (Map name -> value) fed by every response's Set-Cookie.

function storeCookies(jar, res) {
  for (const line of res.headers.getSetCookie()) {
    const [pair, ...attrs] = line.split(';');
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = attrs.some((a) => /^\s*max-age\s*=\s*(0|-\d+)\s*$/i.test(a));
    if (expired || value === '') jar.delete(name); else jar.set(name, value);
  }
}

// `json` posts a JSON body (the portal API), `form` an HTML form (application/x-www-form-urlencoded).
async function browse(jar, url, { method = 'GET', json, form, accept = 'application/json, text/html;q=0.9' } = {}) {
  const headers = { accept };
  if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  let body;
  if (json !== undefined) {
    headers['content-type'] = 'application/json';
    headers.origin = new URL(env.RP_ISSUER).origin;
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    headers.origin = new URL(env.RP_ISSUER).origin;
    body = new URLSearchParams(form).toString();
  }
  const res = await fetchVia(url, { method, headers, body });
  storeCookies(jar, res);
  return res;
}

async function okJson(res, what) {
  const text = await res.text();
  assert.equal(res.status, 200, `${what}: HTTP ${res.status} ${text.slice(0, 300)}`);
  let doc;
  try { doc = JSON.parse(text); } catch { assert.fail(`${what}: body is not JSON: ${text.slice(0, 300)}`); }
  assert.equal(doc.status, 'OK', `${what}: status ${JSON.stringify(doc).slice(0, 300)}`);
  assert.ok(doc.data && typeof doc.data === 'object', `${what}: no data object`);
  return doc.data;
}

// A portal API answer that may carry no data object ({"status":"OK"}), e.g. a login without a flow.
async function okStatus(res, what) {
  const text = await res.text();
  assert.equal(res.status, 200, `${what}: HTTP ${res.status} ${text.slice(0, 300)}`);
  let doc;
  try { doc = JSON.parse(text); } catch { assert.fail(`${what}: body is not JSON: ${text.slice(0, 300)}`); }
  assert.equal(doc.status, 'OK', `${what}: status ${JSON.stringify(doc).slice(0, 300)}`);
  return doc;
}

const unescapeHtml = (s) => s.replace(/&(amp|lt|gt|quot|#39);/g,
  (_, e) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]);

// The value of the <input name="..."> in an HTML page (attributes in any order), or undefined.
function inputValue(html, name) {
  for (const [tag] of html.matchAll(/<input\b[^>]*>/gi)) {
    const attr = (a) => tag.match(new RegExp(`\\s${a}\\s*=\\s*(?:"([^"]*)"|'([^']*)')`, 'i'));
    const n = attr('name');
    if (!n || unescapeHtml(n[1] ?? n[2]) !== name) continue;
    const v = attr('value');
    return v ? unescapeHtml(v[1] ?? v[2]) : '';
  }
  return undefined;
}

// A raw device-code token request (no polling wait): resolves to { status, body }.
async function deviceTokenRequest(tokenEndpoint, clientId, deviceCode) {
  const res = await fetchVia(tokenEndpoint, {
    method: 'POST',
    headers: { accept: 'application/json' },
    body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: clientId }),
  });
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { assert.fail(`token endpoint: body is not JSON: ${text.slice(0, 300)}`); }
  return { status: res.status, body };
}

// Runs the browser half of the code flow (steps a-c) and returns the final callback URL.
async function authorize(config, clientId, scope, jar = new Map()) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: env.RP_REDIRECT_URI, scope, state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const base = env.RP_ISSUER.replace(/\/+$/, '');
  const basePath = new URL(base).pathname.replace(/\/+$/, '');
  const issuerOrigin = new URL(base).origin;
  const trace = { firstFactor: 0, consent: 0 };
  let url = authUrl;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const res = await browse(jar, url);
    const raw = res.headers.get('location');
    if (![301, 302, 303, 307, 308].includes(res.status) || !raw) {
      assert.fail(`GET ${url} answered ${res.status} without redirect: ${(await res.text()).slice(0, 300)}`);
    }
    await res.body?.cancel();
    if (raw.startsWith(env.RP_REDIRECT_URI)) {
      return { location: new URL(raw), verifier, state, nonce, jar, trace };
    }
    const loc = new URL(raw, url);
    assert.equal(loc.origin, issuerOrigin, `redirect left the issuer origin: ${loc.href}`);
    const flowId = loc.searchParams.get('flow_id');
    if (loc.pathname === `${basePath}/` && loc.searchParams.get('flow') === 'openid_connect') {
      assert.ok(flowId, `portal redirect without flow_id: ${loc.href}`);
      trace.firstFactor++;
      const data = await okJson(await browse(jar, `${base}/api/firstfactor`, {
        method: 'POST',
        json: {
          username: env.RP_USERNAME, password: env.RP_PASSWORD, keepMeLoggedIn: false,
          flow: 'openid_connect', flowID: flowId,
        },
      }), 'firstfactor');
      assert.equal(typeof data.redirect, 'string', 'firstfactor: no data.redirect');
      assert.ok(jar.size > 0, 'firstfactor: no session cookie was set');
      url = new URL(data.redirect, issuerOrigin);
    } else if (loc.pathname === `${basePath}/consent/openid/decision`) {
      assert.ok(flowId, `consent redirect without flow_id: ${loc.href}`);
      trace.consent++;
      const info = await okJson(await browse(jar,
        `${base}/api/oidc/consent?flow_id=${encodeURIComponent(flowId)}`), 'consent GET');
      assert.equal(info.client_id, clientId, 'consent GET: client_id');
      assert.ok(Array.isArray(info.scopes) && info.scopes.includes('openid'),
        `consent GET: scopes ${JSON.stringify(info.scopes)} lack openid`);
      const data = await okJson(await browse(jar, `${base}/api/oidc/consent`, {
        method: 'POST',
        json: { flow_id: flowId, client_id: clientId, consent: true, pre_configure: false, claims: [] },
      }), 'consent POST');
      assert.equal(typeof data.redirect_uri, 'string', 'consent POST: no data.redirect_uri');
      url = new URL(data.redirect_uri, issuerOrigin);
    } else {
      url = loc;
    }
  }
  assert.fail(`no redirect to ${env.RP_REDIRECT_URI} within ${MAX_HOPS} hops`);
}

async function redeem(config, auth, verifier = auth.verifier) {
  return client.authorizationCodeGrant(config, auth.location, {
    pkceCodeVerifier: verifier, expectedState: auth.state, expectedNonce: auth.nonce,
    idTokenExpected: true,
  });
}

// Steps a-d: returns { tokens, location } (plus the jar and a trace of the portal steps).
async function login(config, clientId, scope, jar) {
  const auth = await authorize(config, clientId, scope, jar);
  const tokens = await redeem(config, auth);
  return { tokens, location: auth.location, jar: auth.jar, trace: auth.trace };
}

// ---------------------------------------------------------------------------------------------
// Helpers for assertions on errors.

function describe(e) {
  if (!(e instanceof Error)) return String(e);
  const parts = [`${e.name}: ${e.message}`];
  for (const k of ['code', 'error', 'error_description', 'status']) if (e[k] !== undefined) parts.push(`${k}=${e[k]}`);
  if (e.cause instanceof Error) parts.push(`cause=(${describe(e.cause)})`);
  else if (e.cause !== undefined) { try { parts.push(`cause=${JSON.stringify(e.cause).slice(0, 400)}`); } catch { /* */ } }
  return parts.join(' ');
}

// The OAuth error code and HTTP status of a failed openid-client call. A 401 carrying a
// WWW-Authenticate header surfaces as WWWAuthenticateChallengeError, not ResponseBodyError.
async function oauthError(e) {
  if (e instanceof client.ResponseBodyError) return { error: e.error, status: e.status };
  if (e instanceof client.WWWAuthenticateChallengeError) {
    let error = e.cause?.find((c) => c.parameters?.error)?.parameters.error;
    if (!error) { try { error = (await e.response.clone().json()).error; } catch { /* */ } }
    return { error, status: e.status };
  }
  return { error: undefined, status: undefined };
}

async function expectOAuthError(fn, expected, expectedStatus) {
  let err;
  try { await fn(); } catch (e) { err = e; }
  assert.ok(err, `expected OAuth error ${expected}, but the request succeeded`);
  const { error, status } = await oauthError(err);
  assert.equal(error, expected, `expected ${expected}, got ${describe(err)}`);
  if (expectedStatus !== undefined) assert.equal(status, expectedStatus, `expected HTTP ${expectedStatus} for ${expected}, got ${status}`);
  return `${error}/${status}`;
}

const asArray = (v) => (Array.isArray(v) ? v : v === undefined ? [] : [v]);
const scopesOf = (s) => (typeof s === 'string' ? s.split(' ').filter(Boolean) : []);

function assertBearer(tokens, what) {
  assert.equal(typeof tokens.access_token, 'string', `${what}: access_token`);
  assert.ok(tokens.access_token.length > 0, `${what}: empty access_token`);
  assert.equal(String(tokens.token_type).toLowerCase(), 'bearer', `${what}: token_type ${tokens.token_type}`);
  assert.ok(Number(tokens.expires_in) > 0, `${what}: expires_in ${tokens.expires_in}`);
}

// ---------------------------------------------------------------------------------------------
// Check runner.

let failed = 0;
function emit(check, ok, detail) {
  if (!ok) failed++;
  console.log(JSON.stringify({ check, ok, detail: String(detail ?? '').replace(/\s*\n\s*/g, ' ') }));
}
async function check(name, fn) {
  try { emit(name, true, await fn()); } catch (e) { emit(name, false, describe(e)); }
}

// RP_MODE=authelia-suite: the flows Authelia's own OIDC suite configuration allows, against
// its clients as configured there (tests/tests/oidc_authelia_suite.rs): RP_ISSUER, RP_CONNECT,
// RP_CA, RP_USERNAME, RP_PASSWORD, RP_EMAIL, RP_SUITE_SECRET, and RP_REDIRECT_URI (the redirect
// URI of oidc-tester-app-public).
const SUITE_REQUIRED = ['RP_ISSUER', 'RP_CONNECT', 'RP_CA', 'RP_USERNAME', 'RP_PASSWORD', 'RP_EMAIL', 'RP_SUITE_SECRET', 'RP_REDIRECT_URI'];

async function suite() {
  const missing = SUITE_REQUIRED.filter((k) => !process.env[k]);
  if (missing.length) throw new Error(`missing environment variables: ${missing.join(', ')}`);
  for (const k of SUITE_REQUIRED) env[k] = process.env[k];
  caPem = readFileSync(env.RP_CA);
  const issuer = new URL(env.RP_ISSUER);
  const opts = { [client.customFetch]: fetchVia };
  const secret = env.RP_SUITE_SECRET;
  await check('suite-code-flow', async () => {
    // oidc-tester-app-public: one_factor, client_secret_basic (the suite's default), consent.
    const config = await client.discovery(issuer, 'oidc-tester-app-public', undefined, client.ClientSecretBasic(secret), opts);
    assert.equal(config.serverMetadata().issuer, env.RP_ISSUER, 'issuer');
    const { tokens, trace } = await login(config, 'oidc-tester-app-public', 'openid profile email groups');
    assert.equal(trace.consent, 1, 'explicit consent');
    const claims = tokens.claims();
    assert.match(claims.sub, UUID_RE, 'sub');
    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(info.preferred_username, env.RP_USERNAME, 'preferred_username');
    assert.equal(info.email, env.RP_EMAIL, 'email');
    const r = await client.tokenIntrospection(config, tokens.access_token);
    assert.equal(r.active, true, 'introspection');
    return `sub=${claims.sub}`;
  });
  for (const [id, jwt] of [['client-credentials-opaque', false], ['client-credentials-jwt', true]]) {
    await check(`suite-${id}`, async () => {
      const config = await client.discovery(issuer, id, undefined, client.ClientSecretPost(secret), opts);
      const tokens = await client.clientCredentialsGrant(config, {});
      assertBearer(tokens, id);
      assert.equal(tokens.access_token.split('.').length === 3, jwt, `JWT access token: ${jwt}`);
      const r = await client.tokenIntrospection(config, tokens.access_token);
      assert.equal(r.active, true, 'introspection');
      assert.equal(r.client_id, id, 'client_id');
      return `jwt=${jwt}`;
    });
  }
}

async function main() {
  if (process.env.RP_MODE === 'authelia-suite') {
    return suite();
  }
  const missing = REQUIRED.filter((k) => !process.env[k]);
  if (missing.length) throw new Error(`missing environment variables: ${missing.join(', ')}`);
  for (const k of REQUIRED) env[k] = process.env[k];
  caPem = readFileSync(env.RP_CA);
  const issuer = new URL(env.RP_ISSUER);
  const opts = { [client.customFetch]: fetchVia };
  const groups = env.RP_GROUPS.split(',').map((g) => g.trim()).filter(Boolean);
  const s = {}; // state shared between checks

  const confidential = () => client.discovery(issuer, env.RP_CLIENT_ID, undefined,
    client.ClientSecretBasic(env.RP_CLIENT_SECRET), opts);
  const need = (v, what) => { assert.ok(v, `prerequisite missing: ${what}`); return v; };

  await check('discovery', async () => {
    s.config = await confidential();
    const md = s.config.serverMetadata();
    assert.equal(md.issuer, env.RP_ISSUER, 'issuer');
    for (const k of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri',
      'introspection_endpoint', 'revocation_endpoint']) {
      assert.equal(typeof md[k], 'string', `${k} missing`);
      assert.doesNotThrow(() => new URL(md[k]), `${k} is not a URL`);
    }
    assert.ok(asArray(md.code_challenge_methods_supported).includes('S256'), 'S256 not supported');
    return `issuer=${md.issuer}`;
  });

  await check('code-flow', async () => {
    const config = need(s.config, 'discovery');
    const { tokens, jar, trace } = await login(config, env.RP_CLIENT_ID, FULL_SCOPE);
    assertBearer(tokens, 'code-flow');
    assert.equal(typeof tokens.id_token, 'string', 'id_token missing');
    assert.equal(typeof tokens.refresh_token, 'string', 'refresh_token missing (offline_access)');
    assert.equal(trace.firstFactor, 1, 'expected exactly one first-factor login');
    assert.equal(trace.consent, 1, 'explicit-consent client did not show the consent step');
    const c = tokens.claims();
    assert.ok(c, 'no ID token claims');
    assert.match(String(c.sub), UUID_RE, 'sub is not a v4 UUID');
    assert.ok(asArray(c.aud).includes(env.RP_CLIENT_ID), `aud ${JSON.stringify(c.aud)}`);
    assert.equal(c.azp, env.RP_CLIENT_ID, 'azp');
    assert.equal(typeof c.auth_time, 'number', 'auth_time is not a number');
    assert.ok(asArray(c.amr).includes('pwd'), `amr ${JSON.stringify(c.amr)}`);
    for (const k of ['email', 'groups', 'preferred_username']) {
      assert.ok(!(k in c), `ID token carries ${k} (Authelia 4.39 issues a minimal ID token)`);
    }
    Object.assign(s, { tokens, sub: c.sub, jar });
    return `sub=${c.sub} scope=${tokens.scope ?? ''}`;
  });

  await check('userinfo', async () => {
    const info = await client.fetchUserInfo(need(s.config, 'discovery'),
      need(s.tokens, 'code-flow tokens').access_token, s.sub);
    assert.equal(info.sub, s.sub, 'sub');
    assert.equal(info.preferred_username, env.RP_USERNAME, 'preferred_username');
    assert.equal(info.email, env.RP_EMAIL, 'email');
    assert.equal(info.email_verified, true, 'email_verified');
    assert.deepEqual(info.groups, groups, 'groups');
    return `preferred_username=${info.preferred_username} groups=${info.groups}`;
  });

  await check('same-subject', async () => {
    s.publicConfig = await client.discovery(issuer, env.RP_PUBLIC_CLIENT_ID, undefined, client.None(), opts);
    // Reuse the first browser's session cookie when there is one (single sign-on path).
    const { tokens, trace } = await login(s.publicConfig, env.RP_PUBLIC_CLIENT_ID, PUBLIC_SCOPE, s.jar);
    const sub = tokens.claims()?.sub;
    assert.equal(sub, need(s.sub, 'code-flow sub'), 'public-client login gave a different sub');
    return `sub=${sub} firstfactor_posts=${trace.firstFactor}`;
  });

  await check('introspection', async () => {
    const config = need(s.config, 'discovery');
    const r = await client.tokenIntrospection(config, need(s.tokens, 'code-flow tokens').access_token);
    assert.equal(r.active, true, `active: ${JSON.stringify(r)}`);
    assert.equal(r.client_id, env.RP_CLIENT_ID, 'client_id');
    assert.equal(r.sub, s.sub, 'sub');
    assert.ok(scopesOf(r.scope).includes('openid'), `scope ${r.scope}`);
    if (r.token_type !== undefined) assert.equal(String(r.token_type).toLowerCase(), 'bearer', 'token_type');
    if (r.username !== undefined) assert.equal(r.username, env.RP_USERNAME, 'username');
    const bogus = await client.tokenIntrospection(config, 'portcullis_at_nonsense');
    assert.equal(bogus.active, false, `garbage token: ${JSON.stringify(bogus)}`);
    return `scope=${r.scope}`;
  });

  await check('refresh-rotation', async () => {
    const config = need(s.config, 'discovery');
    const rt1 = need(s.tokens?.refresh_token, 'code-flow refresh token');
    const t2 = await client.refreshTokenGrant(config, rt1);
    assertBearer(t2, 'refresh');
    assert.notEqual(t2.access_token, s.tokens.access_token, 'refresh returned the same access token');
    assert.equal(typeof t2.refresh_token, 'string', 'refresh did not rotate a refresh_token');
    assert.notEqual(t2.refresh_token, rt1, 'refresh_token was not rotated');
    const reuse = await expectOAuthError(() => client.refreshTokenGrant(config, rt1), 'invalid_grant');
    const family = await expectOAuthError(() => client.refreshTokenGrant(config, t2.refresh_token), 'invalid_grant');
    const r = await client.tokenIntrospection(config, t2.access_token);
    assert.equal(r.active, false, 'access token of the revoked family is still active');
    return `reuse=${reuse} family=${family}`;
  });

  await check('code-reuse', async () => {
    const config = need(s.config, 'discovery');
    const auth = await authorize(config, env.RP_CLIENT_ID, FULL_SCOPE);
    const first = await redeem(config, auth);
    assertBearer(first, 'first redemption');
    const again = await expectOAuthError(() => redeem(config, auth), 'invalid_grant');
    const r = await client.tokenIntrospection(config, first.access_token);
    assert.equal(r.active, false, 'access token from the replayed code is still active');
    return `replay=${again}`;
  });

  await check('pkce-mismatch', async () => {
    const config = need(s.config, 'discovery');
    const auth = await authorize(config, env.RP_CLIENT_ID, FULL_SCOPE);
    const wrong = client.randomPKCECodeVerifier();
    assert.notEqual(wrong, auth.verifier);
    return expectOAuthError(() => redeem(config, auth, wrong), 'invalid_grant');
  });

  await check('public-client', async () => {
    const config = s.publicConfig
      ?? await client.discovery(issuer, env.RP_PUBLIC_CLIENT_ID, undefined, client.None(), opts);
    const { tokens, trace } = await login(config, env.RP_PUBLIC_CLIENT_ID, PUBLIC_SCOPE);
    assertBearer(tokens, 'public-client');
    assert.equal(typeof tokens.id_token, 'string', 'id_token missing');
    assert.equal(tokens.refresh_token, undefined, 'refresh_token issued without offline_access');
    assert.equal(trace.consent, 0, 'implicit-consent client showed the consent step');
    const c = tokens.claims();
    assert.ok(asArray(c.aud).includes(env.RP_PUBLIC_CLIENT_ID), `aud ${JSON.stringify(c.aud)}`);
    return `sub=${c.sub}`;
  });

  await check('revocation', async () => {
    const config = need(s.config, 'discovery');
    const { tokens } = await login(config, env.RP_CLIENT_ID, FULL_SCOPE);
    assert.equal(typeof tokens.refresh_token, 'string', 'refresh_token missing');
    assert.equal((await client.tokenIntrospection(config, tokens.access_token)).active, true,
      'fresh access token is not active');
    await client.tokenRevocation(config, tokens.access_token);
    const r = await client.tokenIntrospection(config, tokens.access_token);
    assert.equal(r.active, false, 'revoked access token is still active');
    await client.tokenRevocation(config, tokens.refresh_token, { token_type_hint: 'refresh_token' });
    return `refresh after revoke=${await expectOAuthError(
      () => client.refreshTokenGrant(config, tokens.refresh_token), 'invalid_grant')}`;
  });

  await check('client-credentials', async () => {
    const cc = await client.discovery(issuer, env.RP_CC_CLIENT_ID, undefined,
      client.ClientSecretBasic(env.RP_CC_CLIENT_SECRET), opts);
    const t = await client.clientCredentialsGrant(cc, { scope: 'api.read' });
    assertBearer(t, 'client_credentials');
    assert.equal(t.id_token, undefined, 'client_credentials issued an id_token');
    assert.equal(t.refresh_token, undefined, 'client_credentials issued a refresh_token');
    const r = await client.tokenIntrospection(cc, t.access_token);
    assert.equal(r.active, true, `active: ${JSON.stringify(r)}`);
    assert.equal(r.client_id, env.RP_CC_CLIENT_ID, 'client_id');
    assert.equal(r.scope, 'api.read', 'scope');
    const openid = await expectOAuthError(() => client.clientCredentialsGrant(cc, { scope: 'openid' }), 'invalid_scope');
    return `scope=${r.scope} openid=${openid}`;
  });

  await check('wrong-secret', async () => {
    const bad = await client.discovery(issuer, env.RP_CLIENT_ID, undefined,
      client.ClientSecretBasic(`wrong-${client.randomState()}`), opts);
    const refresh = await expectOAuthError(
      () => client.refreshTokenGrant(bad, 'portcullis_rt_nonsense'), 'invalid_client', 401);
    const cc = await expectOAuthError(
      () => client.clientCredentialsGrant(bad), 'invalid_client', 401);
    return `refresh=${refresh} client_credentials=${cc}`;
  });

  // RFC 8628: the device starts, the user approves in a browser, the device polls.
  await check('device-flow', async () => {
    const base = env.RP_ISSUER.replace(/\/+$/, '');
    const page = `${base}/consent/openid/device-authorization`;
    const config = await client.discovery(issuer, env.RP_DEVICE_CLIENT_ID, undefined, client.None(), opts);
    const md = config.serverMetadata();
    assert.equal(md.device_authorization_endpoint, `${base}/api/oidc/device-authorization`,
      'device_authorization_endpoint');
    assert.ok(asArray(md.grant_types_supported).includes(DEVICE_GRANT), 'device_code grant not advertised');

    const d = await client.initiateDeviceAuthorization(config, { scope: DEVICE_SCOPE });
    assert.equal(typeof d.device_code, 'string', 'device_code');
    assert.ok(d.device_code.length > 0, 'empty device_code');
    assert.match(String(d.user_code), USER_CODE_RE, 'user_code is not XXXX-XXXX');
    assert.equal(d.verification_uri, page, 'verification_uri');
    assert.equal(typeof d.verification_uri_complete, 'string', 'verification_uri_complete missing');
    const complete = new URL(d.verification_uri_complete);
    assert.equal(`${complete.origin}${complete.pathname}`, page, 'verification_uri_complete is not the page');
    assert.equal(complete.searchParams.get('user_code'), d.user_code, 'verification_uri_complete user_code');
    assert.ok(Number(d.expires_in) > 0, `expires_in ${d.expires_in}`);
    assert.ok(Number(d.interval) > 0, `interval ${d.interval}`);

    // Before the user answers, the device is told to wait (RFC 8628 §3.5).
    const pending = await deviceTokenRequest(md.token_endpoint, env.RP_DEVICE_CLIENT_ID, d.device_code);
    assert.equal(pending.status, 400, `pending poll: HTTP ${pending.status} ${JSON.stringify(pending.body)}`);
    assert.equal(pending.body.error, 'authorization_pending', `pending poll: ${JSON.stringify(pending.body)}`);

    // The user's browser: not signed in, the page sends it to the portal.
    const jar = new Map();
    const anon = await browse(jar, d.verification_uri_complete, { accept: 'text/html' });
    await anon.body?.cancel();
    assert.equal(anon.status, 302, `device page without a session: HTTP ${anon.status}`);
    assert.ok(String(anon.headers.get('location')).startsWith(`${base}/?rd=`),
      `device page without a session: location ${anon.headers.get('location')}`);

    // Sign in (no flow), then open the page and approve.
    const before = new Set(jar.keys());
    await okStatus(await browse(jar, `${base}/api/firstfactor`, {
      method: 'POST',
      json: { username: env.RP_USERNAME, password: env.RP_PASSWORD, keepMeLoggedIn: false },
    }), 'firstfactor');
    assert.ok([...jar.keys()].some((k) => !before.has(k)), 'firstfactor: no session cookie was set');

    const shown = await browse(jar, d.verification_uri_complete, { accept: 'text/html' });
    const html = await shown.text();
    assert.equal(shown.status, 200, `device page: HTTP ${shown.status} ${html.slice(0, 300)}`);
    assert.match(String(shown.headers.get('content-type')), /^text\/html/, 'device page content-type');
    assert.ok(shown.headers.getSetCookie().some((c) => c.startsWith('portcullis_csrf=')),
      'device page set no portcullis_csrf cookie');
    assert.ok(jar.has('portcullis_csrf'), 'portcullis_csrf cookie not kept');
    assert.match(html, /<form\b[^>]*method="post"/i, 'device page has no POST form');
    const csrf = inputValue(html, 'csrf');
    assert.ok(csrf, `device page has no csrf input: ${html.slice(0, 300)}`);

    const answered = await browse(jar, page, {
      method: 'POST', accept: 'text/html',
      form: { user_code: d.user_code, answer: 'approve', csrf },
    });
    const answer = await answered.text();
    assert.equal(answered.status, 200, `approval: HTTP ${answered.status} ${answer.slice(0, 300)}`);
    assert.ok(answer.includes('Device connected'), `approval page: ${answer.slice(0, 300)}`);

    // The device polls (openid-client waits `interval` seconds first) and gets its tokens.
    const tokens = await client.pollDeviceAuthorizationGrant(config, d);
    assertBearer(tokens, 'device-flow');
    assert.equal(typeof tokens.id_token, 'string', 'id_token missing');
    assert.equal(typeof tokens.refresh_token, 'string', 'refresh_token missing (offline_access)');
    const c = tokens.claims();
    assert.ok(c, 'no ID token claims');
    assert.match(String(c.sub), UUID_RE, 'sub is not a v4 UUID');
    if (s.sub) assert.equal(c.sub, s.sub, 'device-flow sub differs from the code-flow sub');
    assert.ok(asArray(c.aud).includes(env.RP_DEVICE_CLIENT_ID), `aud ${JSON.stringify(c.aud)}`);

    const info = await client.fetchUserInfo(config, tokens.access_token, c.sub);
    assert.equal(info.sub, c.sub, 'userinfo sub');
    assert.equal(info.preferred_username, env.RP_USERNAME, 'userinfo preferred_username');

    // A device code is redeemed once.
    const again = await deviceTokenRequest(md.token_endpoint, env.RP_DEVICE_CLIENT_ID, d.device_code);
    assert.equal(again.status, 400, `second redemption: HTTP ${again.status} ${JSON.stringify(again.body)}`);
    assert.equal(again.body.error, 'invalid_grant', `second redemption: ${JSON.stringify(again.body)}`);
    return `user_code=${d.user_code} sub=${c.sub} scope=${tokens.scope ?? ''}`;
  });

  // RP-initiated logout. MUST stay the last check: ending the session revokes every token the
  // user holds, at every client.
  await check('end-session', async () => {
    const config = need(s.config, 'discovery');
    const base = env.RP_ISSUER.replace(/\/+$/, '');
    const endpoint = `${base}/api/oidc/end-session`;
    assert.equal(config.serverMetadata().end_session_endpoint, endpoint, 'end_session_endpoint');

    const { tokens, jar } = await login(config, env.RP_CLIENT_ID, FULL_SCOPE);
    assert.equal(typeof tokens.id_token, 'string', 'id_token missing');
    assert.equal(typeof tokens.refresh_token, 'string', 'refresh_token missing');
    const signedIn = await okJson(await browse(new Map(jar), `${base}/api/state`), 'state before logout');
    assert.equal(signedIn.username, env.RP_USERNAME, 'the browser is not signed in before the logout');
    const sessionCookies = new Map(jar); // what the browser held before the logout

    const state = 'bye-0123456789';
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token, post_logout_redirect_uri: env.RP_POST_LOGOUT_URI, state,
    });
    assert.ok(url.href.startsWith(endpoint), `end-session URL ${url.href}`);
    const res = await browse(jar, url);
    const text = await res.text();
    assert.equal(res.status, 302, `end-session: HTTP ${res.status} ${text.slice(0, 300)}`);
    assert.equal(res.headers.get('location'), `${env.RP_POST_LOGOUT_URI}?state=${state}`, 'end-session location');
    assert.ok([...sessionCookies.keys()].some((k) => !jar.has(k)), 'end-session did not clear the session cookie');

    const after = await okJson(await browse(jar, `${base}/api/state`), 'state after logout');
    assert.equal(after.username, '', `the browser is still signed in as ${after.username}`);
    // The session is gone on the server too, not just the cookie.
    const replay = await okJson(await browse(new Map(sessionCookies), `${base}/api/state`), 'state with the old cookie');
    assert.equal(replay.username, '', `the old session cookie still signs in as ${replay.username}`);

    const refresh = await expectOAuthError(
      () => client.refreshTokenGrant(config, tokens.refresh_token), 'invalid_grant');
    const r = await client.tokenIntrospection(config, tokens.access_token);
    assert.equal(r.active, false, 'access token is still active after the logout');
    return `location=${res.headers.get('location')} refresh=${refresh}`;
  });
}

process.on('unhandledRejection', (e) => {
  emit('fatal', false, describe(e));
  process.exit(1);
});

try {
  await main();
} catch (e) {
  emit('fatal', false, describe(e));
}
process.exit(failed ? 1 : 0);
