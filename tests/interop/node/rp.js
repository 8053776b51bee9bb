#!/usr/bin/env node
// An OpenID 2.0 relying party on the npm `openid` package (2.0.x), for akaid interop tests.
// It offers the same JSON interface as tests/interop/python/rp.py:
//
//   node rp.js --port 0   -> first stdout line "listening http://127.0.0.1:PORT/"
//
//   GET /login?identifier=URL[&mode=smart|stateless][&assoc=HMAC-SHA256:DH-SHA256|HMAC-SHA1:DH-SHA1]
//       [&immediate=1][&sreg=nickname,email][&sreg_required=...][&ax=phone][&pape=1]
//       [&max_auth_age=N][&realm=URL][&return_to=URL][&capture=1][&json=1]
//     -> 302 to the OP (cookie rp_session); discovery/association failure -> 502 JSON
//        {"status": "discovery_failure", "message": ...}
//   GET|POST /return   -> 200 JSON {status: success|failure|cancel|setup_needed, message,
//        identity_url, display_identifier, endpoint_server_url, signed_fields, sreg, ax, pape,
//        setup_url, response_fields, library_result}
//   GET /tamper?url=...&field=openid.x&value=y[&delete=1], GET /complete?url=..., GET /last
//
// Notes on the library (2.0.18): it makes a new association for every login (smart mode
// never reuses one); it does not know setup_needed (this RP recognises openid.mode itself);
// its extension parsing does not require the extension fields to be signed.
// Logs go to stderr only.
'use strict';

const http = require('http');
const path = require('path');
const crypto = require('crypto');
const { URL, URLSearchParams } = require('url');
const { AsyncLocalStorage } = require('async_hooks');
const openid = require('openid');

// The OP is on this machine: never send its traffic through an environment proxy.
try {
  const axiosPath = require.resolve('axios', { paths: [path.dirname(require.resolve('openid'))] });
  const axios = require(axiosPath);
  (axios.default || axios).defaults.proxy = false;
  (axios.default || axios).defaults.timeout = 15000;
} catch (e) {
  console.error('rp.js: could not configure axios:', e.message);
}

// Force the association type per login: openid.authenticate calls openid.associate(provider, cb)
// without an algorithm; the login's preference travels in async-local storage.
const als = new AsyncLocalStorage();
const origAssociate = openid.associate;
openid.associate = function (provider, callback, strict, algorithm) {
  const store = als.getStore();
  if (!algorithm && store && store.algorithm) algorithm = store.algorithm;
  return origAssociate.call(openid, provider, callback, strict, algorithm);
};

const AX_PHONE_CELL = 'http://axschema.org/contact/phone/cell';
const AX_PHONE_DEFAULT = 'http://axschema.org/contact/phone/default';
const PAPE_POLICIES = {
  'phishing-resistant': 'http://schemas.openid.net/pape/policies/2007/06/phishing-resistant',
  'multi-factor': 'http://schemas.openid.net/pape/policies/2007/06/multi-factor',
  'multi-factor-physical': 'http://schemas.openid.net/pape/policies/2007/06/multi-factor-physical',
  'none': 'http://schemas.openid.net/pape/policies/2007/06/none',
};
const COOKIE = 'rp_session';

function log(...args) { console.error('rp.js:', ...args); }

function parseArgs(argv) {
  const out = { port: 0, host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--port') out.port = parseInt(argv[++i], 10);
    else if (argv[i].startsWith('--port=')) out.port = parseInt(argv[i].slice(7), 10);
    else if (argv[i] === '--host') out.host = argv[++i];
    else { console.error('usage: node rp.js [--port N] [--host 127.0.0.1]'); process.exit(2); }
  }
  return out;
}

const sessions = new Map(); // sid -> {mode, algorithm, returnUrl, realm, ext, last}

function csv(v) { return (v || '').split(',').map((s) => s.trim()).filter(Boolean); }

function once(fn) {
  let called = false;
  return (...a) => { if (!called) { called = true; fn(...a); } };
}

function algorithmFor(assoc) {
  if (!assoc) return null;
  const [a, s] = assoc.split(':');
  if (a === 'HMAC-SHA1' && (!s || s === 'DH-SHA1')) return 'DH-SHA1';
  if (a === 'HMAC-SHA256' && (!s || s === 'DH-SHA256')) return 'DH-SHA256';
  if (a === 'HMAC-SHA1' && s === 'no-encryption') return 'no-encryption';
  if (a === 'HMAC-SHA256' && s === 'no-encryption') return 'no-encryption-256';
  throw new Error('unsupported assoc ' + assoc);
}

function buildExtensions(q) {
  const ext = [];
  const spec = {};
  const sregOpt = csv(q.get('sreg'));
  const sregReq = csv(q.get('sreg_required'));
  if (sregOpt.length || sregReq.length) {
    const o = {};
    for (const k of sregOpt) o[k] = true;
    for (const k of sregReq) o[k] = 'required';
    ext.push(new openid.SimpleRegistration(o));
    spec.sreg = true;
  }
  const ax = csv(q.get('ax'));
  if (ax.length) {
    const o = {};
    for (const a of ax) {
      if (a === 'phone') { o[AX_PHONE_CELL] = 'required'; o[AX_PHONE_DEFAULT] = 'optional'; }
      else if (a.startsWith('http')) o[a] = 'required';
      else throw new Error('unknown ax attribute ' + a);
    }
    ext.push(new openid.AttributeExchange(o));
    spec.ax = true;
  }
  if (q.get('pape') || q.get('max_auth_age')) {
    const o = { preferred_auth_policies: 'phishing-resistant' };
    if (q.get('max_auth_age')) o.max_auth_age = q.get('max_auth_age');
    ext.push(new openid.PAPE(o));
    spec.pape = true;
  }
  return { ext, spec };
}

function send(res, code, body, ctype, headers) {
  const buf = Buffer.from(body, 'utf8');
  res.writeHead(code, Object.assign({
    'Content-Type': ctype, 'Content-Length': buf.length, 'Cache-Control': 'no-store',
  }, headers || {}));
  res.end(buf);
}

function sendJson(res, code, obj, headers) {
  send(res, code, JSON.stringify(obj, null, 1) + '\n', 'application/json', headers);
}

function getSid(req) {
  const raw = req.headers.cookie || '';
  for (const part of raw.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE && v.join('=')) return { sid: v.join('='), setCookie: null };
  }
  const sid = crypto.randomBytes(18).toString('base64url');
  return { sid, setCookie: `${COOKIE}=${sid}; Path=/; HttpOnly; SameSite=Lax` };
}

function session(sid) {
  if (!sessions.has(sid)) sessions.set(sid, { mode: 'smart', algorithm: null, last: null });
  return sessions.get(sid);
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(''));
  });
}

function extractResult(params, libResult, sess) {
  const mode = params['openid.mode'];
  const out = {
    status: 'success', message: null,
    identity_url: libResult && libResult.claimedIdentifier || null,
    display_identifier: null, endpoint_server_url: null, signed_fields: [],
    sreg: null, ax: null, pape: null, setup_url: null,
    response_fields: {}, library_result: libResult || null,
    mode: sess.mode, assoc: sess.assocName || null,
  };
  for (const [k, v] of Object.entries(params)) if (k.startsWith('openid.')) out.response_fields[k] = v;
  if (out.identity_url) out.display_identifier = out.identity_url.split('#')[0];
  out.endpoint_server_url = params['openid.op_endpoint'] || null;
  out.signed_fields = (params['openid.signed'] || '').split(',').filter(Boolean).map((f) => 'openid.' + f);
  for (const e of sess.extObjs || []) {
    const r = {};
    e.fillResult(params, r);
    if (e instanceof openid.SimpleRegistration) {
      if (Object.keys(r).length) out.sreg = r;
    } else if (e instanceof openid.AttributeExchange) {
      const ax = {};
      for (const [k, v] of Object.entries(r)) {
        if (k.startsWith('http')) ax[k] = Array.isArray(v) ? v : [v];
      }
      if (Object.keys(ax).length) out.ax = ax;
    } else if (e instanceof openid.PAPE) {
      if (Object.keys(r).length) {
        out.pape = {
          auth_policies: (r.auth_policies || '').split(' ').filter(Boolean)
            .map((p) => PAPE_POLICIES[p] || p),
          auth_time: r.auth_time || null,
        };
      }
    }
  }
  void mode;
  return out;
}

function failure(params, message, sess, status) {
  const out = {
    status: status || 'failure', message, identity_url: null, display_identifier: null,
    endpoint_server_url: null, signed_fields: [], sreg: null, ax: null, pape: null,
    setup_url: null, response_fields: {}, library_result: null,
    mode: sess.mode, assoc: sess.assocName || null,
  };
  for (const [k, v] of Object.entries(params)) if (k.startsWith('openid.')) out.response_fields[k] = v;
  return out;
}

// Complete a response given as a full URL (query = all fields).
function complete(res, sid, setCookie, fullUrl) {
  const sess = session(sid);
  const u = new URL(fullUrl);
  const params = Object.fromEntries(u.searchParams.entries());
  const hdr = setCookie ? { 'Set-Cookie': setCookie } : undefined;
  const finish = once((out) => {
    sess.last = out;
    log('complete ->', out.status, out.message || '');
    sendJson(res, 200, out, hdr);
  });
  const mode = params['openid.mode'];
  if (mode === 'cancel') return finish(failure(params, null, sess, 'cancel'));
  if (mode === 'setup_needed') {
    const out = failure(params, null, sess, 'setup_needed');
    out.setup_url = params['openid.user_setup_url'] || null;
    return finish(out);
  }
  if (mode === 'error') return finish(failure(params, params['openid.error'] || 'error', sess));
  // The return URL the library checks against: what this login sent as return_to.
  const returnUrl = sess.returnUrl || (BASE + 'return');
  const rp = new openid.RelyingParty(returnUrl, sess.realm || BASE, sess.mode === 'stateless',
    false, sess.extObjs || []);
  try {
    rp.verifyAssertion(fullUrl, (err, result) => {
      if (err) return finish(failure(params, err.message || String(err), sess));
      if (!result || !result.authenticated) return finish(failure(params, 'not authenticated', sess));
      return finish(extractResult(params, result, sess));
    });
  } catch (e) {
    finish(failure(params, 'exception: ' + e.message, sess));
  }
}

let BASE = null;

async function handle(req, res) {
  const u = new URL(req.url, BASE);
  const q = u.searchParams;
  const { sid, setCookie } = getSid(req);
  const hdr = setCookie ? { 'Set-Cookie': setCookie } : {};
  let post = {};
  if (req.method === 'POST') {
    const body = await readBody(req);
    post = Object.fromEntries(new URLSearchParams(body).entries());
  }

  if (u.pathname === '/login') {
    const identifier = q.get('identifier');
    if (!identifier) return sendJson(res, 400, { status: 'error', message: 'identifier is required' }, hdr);
    const sess = session(sid);
    const mode = q.get('mode') || 'smart';
    if (!['smart', 'stateless'].includes(mode)) {
      return sendJson(res, 400, { status: 'error', message: 'mode must be smart|stateless' }, hdr);
    }
    let algorithm; let built;
    try {
      algorithm = algorithmFor(q.get('assoc'));
      built = buildExtensions(q);
    } catch (e) {
      return sendJson(res, 400, { status: 'error', message: e.message }, hdr);
    }
    sess.mode = mode;
    sess.algorithm = algorithm;
    sess.assocName = q.get('assoc') || null;
    sess.extObjs = built.ext;
    sess.realm = q.get('realm') || BASE;
    sess.returnUrl = q.get('return_to') || (BASE + 'return' + (q.get('capture') ? '?rp_capture=1' : ''));
    sess.last = null;
    const immediate = ['1', 'true', 'yes'].includes(q.get('immediate'));
    const rp = new openid.RelyingParty(sess.returnUrl, sess.realm, mode === 'stateless', false, built.ext);
    const done = once((err, authUrl) => {
      if (err || !authUrl) {
        const message = (err && (err.message || String(err))) || 'no authentication URL';
        log('login failed for', identifier, message);
        return sendJson(res, 502, { status: 'discovery_failure', message }, hdr);
      }
      log('login', identifier, mode, algorithm || 'default', '->', authUrl);
      if (q.get('json')) return sendJson(res, 200, { redirect_url: authUrl }, hdr);
      const esc = authUrl.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
      return send(res, 302, `<!DOCTYPE html><p>Redirecting to <a href="${esc}">the OP</a></p>\n`,
        'text/html; charset=utf-8', Object.assign({ Location: authUrl }, hdr));
    });
    try {
      als.run({ algorithm }, () => rp.authenticate(identifier, immediate, done));
    } catch (e) {
      done({ message: 'exception: ' + e.message });
    }
    return undefined;
  }

  if (u.pathname === '/return') {
    const merged = new URLSearchParams(u.search);
    for (const [k, v] of Object.entries(post)) merged.set(k, v);
    const fullUrl = BASE.replace(/\/$/, '') + u.pathname + (merged.toString() ? '?' + merged.toString() : '');
    if (merged.get('rp_capture')) {
      const sess = session(sid);
      sess.last = { status: 'captured', url: req.method === 'GET' ? BASE.replace(/\/$/, '') + req.url : fullUrl };
      return sendJson(res, 200, sess.last, hdr);
    }
    return complete(res, sid, setCookie, req.method === 'GET' ? BASE.replace(/\/$/, '') + req.url : fullUrl);
  }

  if (u.pathname === '/tamper') {
    const all = Object.assign(Object.fromEntries(q.entries()), post);
    if (!all.url || !all.field) return sendJson(res, 400, { status: 'error', message: 'url and field are required' });
    const t = new URL(all.url);
    if (all.delete) t.searchParams.delete(all.field);
    else t.searchParams.set(all.field, all.value || '');
    log('tamper', all.field);
    return complete(res, sid, setCookie, t.toString());
  }

  if (u.pathname === '/complete') {
    const all = Object.assign(Object.fromEntries(q.entries()), post);
    if (!all.url) return sendJson(res, 400, { status: 'error', message: 'url is required' });
    return complete(res, sid, setCookie, all.url);
  }

  if (u.pathname === '/last') return sendJson(res, 200, session(sid).last || {}, hdr);
  if (u.pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
  if (u.pathname === '/' || u.pathname === '/xrds') {
    const accept = req.headers.accept || '';
    if (u.pathname === '/xrds' || accept.includes('application/xrds+xml')) {
      return send(res, 200, '<?xml version="1.0" encoding="UTF-8"?>\n'
        + '<xrds:XRDS xmlns:xrds="xri://$xrds" xmlns="xri://$xrd*($v*2.0)">\n  <XRD>\n'
        + '    <Service priority="1">\n      <Type>http://specs.openid.net/auth/2.0/return_to</Type>\n'
        + `      <URI>${BASE}return</URI>\n    </Service>\n  </XRD>\n</xrds:XRDS>\n`,
      'application/xrds+xml');
    }
    return send(res, 200, '<!DOCTYPE html><p>OpenID 2.0 interop relying party (node openid).</p>\n',
      'text/html; charset=utf-8', { 'X-XRDS-Location': BASE + 'xrds' });
  }
  return sendJson(res, 404, { status: 'not_found', message: u.pathname });
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const server = http.createServer((req, res) => {
    log(req.method, req.url.length > 200 ? req.url.slice(0, 200) + '…' : req.url);
    handle(req, res).catch((e) => {
      log('unhandled', e && e.stack);
      if (!res.headersSent) sendJson(res, 500, { status: 'error', message: String(e && e.message) });
    });
  });
  server.listen(args.port, args.host, () => {
    const { port } = server.address();
    BASE = `http://${args.host}:${port}/`;
    process.stdout.write(`listening ${BASE}\n`);
  });
  process.on('uncaughtException', (e) => log('uncaught exception', e && e.stack));
  process.on('SIGTERM', () => process.exit(0));
}

main();
