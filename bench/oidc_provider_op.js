#!/usr/bin/env node
// The npm oidc-provider (9.x) as the reference OpenID Connect OP for akaid's OIDC benchmark,
// and as the OP the interop relying parties (tests/interop/{python,node}/oidc_rp.*) test
// themselves against.
//
// Install and run (node_modules is gitignored):
//   cd bench && npm ci
//   NODE_ENV=production node oidc_provider_op.js --port 0 \
//       --client-id bench --client-secret bench-secret --redirect-uri http://127.0.0.1:9/cb
//   -> first stdout line: "listening http://127.0.0.1:PORT/"   (the issuer is that URL without
//      the trailing slash; logs go to stderr)
//
// Flags (each also as an environment variable):
//   --port N              OIDC_OP_PORT            (default 0 = any free port)
//   --host H              OIDC_OP_HOST            (default 127.0.0.1)
//   --client-id ID        OIDC_OP_CLIENT_ID       (default "bench")
//   --client-secret S     OIDC_OP_CLIENT_SECRET   (default "bench-secret")
//   --redirect-uri URI    OIDC_OP_REDIRECT_URI    (repeatable; env: space separated; required)
//   --public-client-id ID OIDC_OP_PUBLIC_CLIENT_ID (optional second client, token auth "none",
//                                                  PKCE required, same redirect URIs; used by the
//                                                  relying parties' self-tests only)
//   --id-token-alg ALG    OIDC_OP_ID_TOKEN_ALG    (RS256 default, or ES256 / EdDSA; keys are
//                                                  generated at start-up, in memory)
//   --subject SUB         OIDC_OP_SUBJECT         (default "bench-subscriber")
//   --phone NUMBER        OIDC_OP_PHONE           (default "+15550100"; the "phone" scope's claim)
//
// Minimal configuration, as the benchmark wants it: one confidential client
// (client_secret_basic, authorization_code + refresh_token grants), PKCE (S256 only, the
// library's default; required for public clients, honoured for all), the library's default
// in-memory adapter, a findAccount that returns one fixed subject, and interactions
// auto-completed: the interaction URL signs the fixed account in and grants every requested
// scope and claim at once, so a browser-less client that keeps cookies goes
// /authorize -> 303 /interaction/<uid> -> 303 /authorize/<uid> -> 303 <redirect_uri>?code=...
// in one pass of redirects. Once the OP session cookie exists and the grant covers the scopes,
// /authorize answers 303 <redirect_uri>?code=... directly (no interaction).
// Endpoint paths mirror akaid's: /authorize, /token, /userinfo, /jwks, /logout (discovery gives
// them too). A refresh token is issued when "offline_access" is granted (the library's rule:
// it keeps offline_access only with prompt=consent).
//
// Production mode over plain http on loopback: run with NODE_ENV=production (the library's
// production behaviour: no development hints, no stack traces in error pages). oidc-provider
// itself does not refuse http; it only marks cookies Secure when the Koa context is secure.
// Here the provider is served by a plain node http listener on 127.0.0.1 with `proxy = false`
// (X-Forwarded-* ignored), so ctx.secure is false and the cookies are set without Secure, which
// a cookie-keeping bench client sends back over http. The issuer is http://127.0.0.1:PORT, which
// is fine for the benchmark and tests only: never expose this outside loopback.
//
// How the akaid benchmark uses it (details in bench/oidc_flow_bench.md): `akaid ue bench --oidc`
// measures complete code flows per second against this OP and against akaid in the same session:
// one warm-up login per virtual user establishes the OP session (cookies) and the grant; then each
// flow is GET /authorize (existing session, PKCE S256 + state + nonce) -> 303 redirect_uri?code ->
// POST /token (authorization_code, client_secret_basic, code_verifier) -> the bench client verifies
// the ID token (signature against /jwks fetched once, iss, aud, exp, nonce). p50/p99 per flow.
'use strict';

const http = require('http');
const crypto = require('crypto');

function log(...args) { console.error('oidc_provider_op:', ...args); }

function parseArgs(argv) {
  const env = process.env;
  const out = {
    port: parseInt(env.OIDC_OP_PORT || '0', 10),
    host: env.OIDC_OP_HOST || '127.0.0.1',
    clientId: env.OIDC_OP_CLIENT_ID || 'bench',
    clientSecret: env.OIDC_OP_CLIENT_SECRET || 'bench-secret',
    redirectUris: (env.OIDC_OP_REDIRECT_URI || '').split(/\s+/).filter(Boolean),
    publicClientId: env.OIDC_OP_PUBLIC_CLIENT_ID || null,
    idTokenAlg: env.OIDC_OP_ID_TOKEN_ALG || 'RS256',
    subject: env.OIDC_OP_SUBJECT || 'bench-subscriber',
    phone: env.OIDC_OP_PHONE || '+15550100',
  };
  let cliRedirects = [];
  for (let i = 0; i < argv.length; i++) {
    let [flag, val] = argv[i].includes('=') ? argv[i].split(/=(.*)/s, 2) : [argv[i], undefined];
    const next = () => (val !== undefined ? val : argv[++i]);
    switch (flag) {
      case '--port': out.port = parseInt(next(), 10); break;
      case '--host': out.host = next(); break;
      case '--client-id': out.clientId = next(); break;
      case '--client-secret': out.clientSecret = next(); break;
      case '--redirect-uri': cliRedirects.push(next()); break;
      case '--public-client-id': out.publicClientId = next(); break;
      case '--id-token-alg': out.idTokenAlg = next(); break;
      case '--subject': out.subject = next(); break;
      case '--phone': out.phone = next(); break;
      default:
        console.error('usage: node oidc_provider_op.js [--port N] [--host H] [--client-id ID] '
          + '[--client-secret S] --redirect-uri URI... [--public-client-id ID] '
          + '[--id-token-alg RS256|ES256|EdDSA] [--subject SUB] [--phone NUMBER]');
        process.exit(2);
    }
  }
  if (cliRedirects.length) out.redirectUris = cliRedirects;
  if (!out.redirectUris.length) {
    console.error('oidc_provider_op: at least one --redirect-uri is required');
    process.exit(2);
  }
  if (!['RS256', 'ES256', 'EdDSA'].includes(out.idTokenAlg)) {
    console.error('oidc_provider_op: --id-token-alg must be RS256, ES256 or EdDSA');
    process.exit(2);
  }
  return out;
}

// Signing keys generated at start-up (kept in memory only): one per algorithm so that any
// --id-token-alg works; RS256 first.
function signingKeys() {
  const jwk = (kp, alg) => Object.assign(kp.privateKey.export({ format: 'jwk' }), {
    alg, use: 'sig', kid: crypto.randomBytes(8).toString('hex'),
  });
  return [
    jwk(crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }), 'RS256'),
    jwk(crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }), 'ES256'),
    jwk(crypto.generateKeyPairSync('ed25519'), 'EdDSA'),
  ];
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (process.env.NODE_ENV !== 'production') {
    log('warning: NODE_ENV is not "production"; benchmark figures should be taken with NODE_ENV=production');
  }
  const { default: Provider } = await import('oidc-provider');

  const server = http.createServer();
  await new Promise((resolve) => server.listen(args.port, args.host, resolve));
  const { port } = server.address();
  const base = `http://${args.host}:${port}/`;
  const issuer = base.replace(/\/$/, '');

  const clients = [{
    client_id: args.clientId,
    client_secret: args.clientSecret,
    redirect_uris: args.redirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: args.idTokenAlg,
  }];
  if (args.publicClientId) {
    clients.push({
      client_id: args.publicClientId,
      redirect_uris: args.redirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      id_token_signed_response_alg: args.idTokenAlg,
    });
  }

  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: signingKeys() },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    routes: {
      authorization: '/authorize',
      token: '/token',
      userinfo: '/userinfo',
      jwks: '/jwks',
      end_session: '/logout',
    },
    claims: {
      openid: ['sub'],
      phone: ['phone_number', 'phone_number_verified'],
    },
    scopes: ['openid', 'offline_access', 'phone'],
    // PKCE: the library's defaults (S256 only; required for public clients, used when sent).
    pkce: { required: (ctx, client) => client.clientAuthMethod === 'none' },
    features: {
      devInteractions: { enabled: false }, // our own auto-completing interaction route below
      rpInitiatedLogout: { enabled: true },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: async (ctx, sub) => {
      if (sub !== args.subject) return undefined;
      return {
        accountId: sub,
        claims: async () => ({
          sub, phone_number: args.phone, phone_number_verified: true,
        }),
      };
    },
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  provider.proxy = false; // plain http listener on loopback; X-Forwarded-* are not believed
  provider.on('server_error', (ctx, err) => log('server_error', err && err.stack));

  // Auto-complete every interaction: sign the fixed account in and grant all that is asked.
  async function interaction(req, res) {
    try {
      const details = await provider.interactionDetails(req, res);
      const { prompt, params } = details;
      const accountId = (details.session && details.session.accountId) || args.subject;
      const result = {};
      if (!details.session || prompt.name === 'login') {
        result.login = { accountId, amr: ['hwk', 'sc'] };
      }
      let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
      if (!grant) grant = new provider.Grant({ accountId, clientId: params.client_id });
      // Grant everything requested now, so a login needs no second (consent) interaction.
      grant.addOIDCScope(String(params.scope || 'openid'));
      const pd = prompt.details || {};
      if (pd.missingOIDCClaims) grant.addOIDCClaims(pd.missingOIDCClaims);
      if (pd.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(pd.missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
      }
      result.consent = { grantId: await grant.save() };
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
    } catch (e) {
      log('interaction failed:', e && e.stack);
      if (!res.headersSent) {
        res.writeHead(400, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: 'interaction_failed', message: String(e && e.message) }) + '\n');
      }
    }
  }

  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.url.startsWith('/interaction/')) return interaction(req, res);
    return callback(req, res);
  });
  server.keepAliveTimeout = 65000;
  process.stdout.write(`listening ${base}\n`);
  log(`issuer ${issuer}, client ${args.clientId}${args.publicClientId ? ` and public client ${args.publicClientId}` : ''}, `
    + `redirect_uris ${args.redirectUris.join(' ')}, id token ${args.idTokenAlg}, NODE_ENV=${process.env.NODE_ENV || ''}`);
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

main().catch((e) => { console.error(e && e.stack); process.exit(1); });
