#!/usr/bin/env node
// A real OpenID Connect relying party for interop tests, built on the npm openid-client (v6,
// pinned in package.json; `npm ci` in this directory installs it).
//
// Run:  node oidc_rp.js --port 0 [--issuer URL] [--client-id ID] [--client-secret S]
//       -> first stdout line: "listening http://127.0.0.1:PORT/"  (then serves until killed)
// The redirect URI to register at the OP is "<base>callback" (http://127.0.0.1:PORT/callback).
// It is driven by a browser-like client that follows redirects and keeps cookies (cookie
// rp_session here). Logs go to stderr only.
//
// Endpoints
//   GET /login?[issuer=URL][&client_id=ID][&client_secret=S]  (defaults: the flags; no secret ->
//           public client, token endpoint auth "none")
//       [&auth=client_secret_basic|client_secret_post|none]   (default: basic with a secret)
//       [&scope=openid phone]  [&id_token_alg=RS256|ES256|EdDSA]  (the alg the client registered;
//           openid-client accepts only that one, RS256 when not given)
//       [&prompt=..][&max_age=N][&login_hint=..][&acr_values=..][&openid2_realm=URL][&json=1]
//     -> discovery (openid-client's), then 302 to the authorization endpoint with
//        response_type=code, PKCE S256, state and nonce. Discovery failure -> 502 JSON
//        {"status": "discovery_failure", "message"}.
//   GET /callback?code=..&state=..  -> 200 JSON (kept for GET /last):
//     {"status": "success" | "error",  "message": null or text,
//      "error", "error_description":  the OP's OAuth error when there is one, else null,
//      "claims":  the ID token claims as openid-client verified them (signature against the
//                 discovery's jwks_uri, iss, aud, azp, exp, iat, nonce, auth_time with max_age),
//      "userinfo": fetchUserInfo's answer (its sub checked against the ID token's),
//      "token": {"token_type", "scope", "expires_in", "has_refresh_token"},
//      "id_token", "access_token": raw values,  "issuer", "client_id", "auth"}
//   GET /last   the session's last result (or {}).   GET /healthz -> {"status": "ok"}
'use strict';

const http = require('http');
const crypto = require('crypto');
const { URL } = require('url');

function log(...args) { console.error('oidc_rp.js:', ...args); }

function parseArgs(argv) {
  const out = { port: 0, host: '127.0.0.1', issuer: null, clientId: null, clientSecret: null, scope: 'openid phone' };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes('=') ? argv[i].split(/=(.*)/s, 2) : [argv[i], undefined];
    const next = () => (inline !== undefined ? inline : argv[++i]);
    if (flag === '--port') out.port = parseInt(next(), 10);
    else if (flag === '--host') out.host = next();
    else if (flag === '--issuer') out.issuer = next();
    else if (flag === '--client-id') out.clientId = next();
    else if (flag === '--client-secret') out.clientSecret = next();
    else if (flag === '--scope') out.scope = next();
    else {
      console.error('usage: node oidc_rp.js [--port N] [--host H] [--issuer URL] [--client-id ID] [--client-secret S] [--scope S]');
      process.exit(2);
    }
  }
  return out;
}

const COOKIE = 'rp_session';
const sessions = new Map();
let BASE = null;
let ARGS = null;
let client = null; // the openid-client module (ESM, loaded with import())

function send(res, code, body, ctype, headers) {
  const buf = Buffer.from(body, 'utf8');
  res.writeHead(code, Object.assign({
    'Content-Type': ctype, 'Content-Length': buf.length, 'Cache-Control': 'no-store',
  }, headers || {}));
  res.end(buf);
}
function sendJson(res, code, obj, headers) { send(res, code, JSON.stringify(obj, null, 1) + '\n', 'application/json', headers); }

function getSid(req) {
  for (const part of (req.headers.cookie || '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE && v.join('=')) return { sid: v.join('='), setCookie: null };
  }
  const sid = crypto.randomBytes(18).toString('base64url');
  return { sid, setCookie: `${COOKIE}=${sid}; Path=/; HttpOnly; SameSite=Lax` };
}
function session(sid) {
  if (!sessions.has(sid)) sessions.set(sid, { last: null });
  return sessions.get(sid);
}

async function configure(login) {
  const auth = login.auth === 'none' ? client.None()
    : login.auth === 'client_secret_post' ? client.ClientSecretPost(login.clientSecret)
      : client.ClientSecretBasic(login.clientSecret);
  const metadata = { redirect_uris: [login.redirectUri], response_types: ['code'] };
  if (login.clientSecret) metadata.client_secret = login.clientSecret;
  if (login.idTokenAlg) metadata.id_token_signed_response_alg = login.idTokenAlg;
  // openid-client v6 refuses any http:// URL (issuer, endpoints, JWKS) unless
  // allowInsecureRequests is applied. The interop tests and the self-test run the OP on
  // http://127.0.0.1 (loopback, no TLS certificate), so it is applied here; this RP is a test
  // tool and must never be pointed at an OP across a network.
  return client.discovery(new URL(login.issuer), login.clientId, metadata, auth, {
    execute: [client.allowInsecureRequests],
  });
}

function oauthError(e) {
  // ResponseBodyError / AuthorizationResponseError carry the OP's error and description.
  return {
    error: e.error || (e.cause && e.cause.error) || null,
    error_description: e.error_description || (e.cause && e.cause.error_description) || null,
  };
}

async function handle(req, res) {
  const u = new URL(req.url, BASE);
  const q = u.searchParams;
  const { sid, setCookie } = getSid(req);
  const hdr = setCookie ? { 'Set-Cookie': setCookie } : {};
  const sess = session(sid);

  if (u.pathname === '/login') {
    const issuer = (q.get('issuer') || ARGS.issuer || '').replace(/\/$/, '');
    const clientId = q.get('client_id') || ARGS.clientId;
    if (!issuer || !clientId) return sendJson(res, 400, { status: 'error', message: 'issuer and client_id are required' }, hdr);
    const clientSecret = q.has('client_id') ? (q.get('client_secret') || null) : (q.get('client_secret') || ARGS.clientSecret);
    const auth = q.get('auth') || (clientSecret ? 'client_secret_basic' : 'none');
    if (!['client_secret_basic', 'client_secret_post', 'none'].includes(auth)) {
      return sendJson(res, 400, { status: 'error', message: 'bad auth ' + auth }, hdr);
    }
    const login = {
      issuer, clientId, clientSecret, auth, redirectUri: BASE + 'callback',
      scope: q.get('scope') || ARGS.scope, idTokenAlg: q.get('id_token_alg') || null,
      maxAge: q.get('max_age') ? parseInt(q.get('max_age'), 10) : undefined,
      codeVerifier: client.randomPKCECodeVerifier(), nonce: client.randomNonce(), state: client.randomState(),
    };
    let config;
    try {
      config = await configure(login);
    } catch (e) {
      log('discovery failed for', issuer, e && e.message);
      return sendJson(res, 502, { status: 'discovery_failure', message: String(e && e.message) }, hdr);
    }
    const params = {
      redirect_uri: login.redirectUri, scope: login.scope, state: login.state, nonce: login.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(login.codeVerifier), code_challenge_method: 'S256',
    };
    for (const k of ['prompt', 'max_age', 'login_hint', 'acr_values', 'openid2_realm']) if (q.get(k)) params[k] = q.get(k);
    const url = client.buildAuthorizationUrl(config, params).href;
    sessions.set(sid, { last: null, login, config });
    log('login', clientId, 'at', issuer, '->', url);
    if (q.get('json')) return sendJson(res, 200, { redirect_url: url }, hdr);
    return send(res, 302, '<!DOCTYPE html><p>Redirecting to the OP</p>\n', 'text/html; charset=utf-8', Object.assign({ Location: url }, hdr));
  }

  if (u.pathname === '/callback') {
    const out = {
      status: 'error', message: null, error: null, error_description: null, claims: null, userinfo: null,
      token: null, id_token: null, access_token: null, issuer: null, client_id: null, auth: null,
    };
    const { login, config } = sess;
    if (!login) {
      out.message = `no login in progress in this session (cookie ${COOKIE})`;
    } else {
      Object.assign(out, { issuer: login.issuer, client_id: login.clientId, auth: login.auth });
      try {
        const tokens = await client.authorizationCodeGrant(config, new URL(req.url, BASE), {
          pkceCodeVerifier: login.codeVerifier, expectedNonce: login.nonce, expectedState: login.state,
          idTokenExpected: true, maxAge: login.maxAge,
        });
        out.token = {
          token_type: tokens.token_type, scope: tokens.scope || null,
          expires_in: tokens.expires_in === undefined ? null : tokens.expires_in,
          has_refresh_token: Boolean(tokens.refresh_token),
        };
        out.id_token = tokens.id_token;
        out.access_token = tokens.access_token;
        out.claims = tokens.claims();
        out.userinfo = await client.fetchUserInfo(config, tokens.access_token, out.claims.sub);
        out.status = 'success';
      } catch (e) {
        Object.assign(out, oauthError(e));
        out.message = `${e && e.name}: ${e && e.message}${e && e.code ? ` (${e.code})` : ''}`;
      }
    }
    sess.last = out;
    log('callback ->', out.status, out.message || '');
    return sendJson(res, 200, out, hdr);
  }

  if (u.pathname === '/last') return sendJson(res, 200, sess.last || {}, hdr);
  if (u.pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
  return sendJson(res, 404, { status: 'not_found', message: u.pathname });
}

async function main() {
  ARGS = parseArgs(process.argv.slice(2));
  client = await import('openid-client');
  const server = http.createServer((req, res) => {
    log(req.method, req.url.length > 200 ? req.url.slice(0, 200) + '…' : req.url);
    handle(req, res).catch((e) => {
      log('unhandled', e && e.stack);
      if (!res.headersSent) sendJson(res, 500, { status: 'error', message: String(e && e.message) });
    });
  });
  server.listen(ARGS.port, ARGS.host, () => {
    BASE = `http://${ARGS.host}:${server.address().port}/`;
    process.stdout.write(`listening ${BASE}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

main().catch((e) => { console.error(e && e.stack); process.exit(1); });
