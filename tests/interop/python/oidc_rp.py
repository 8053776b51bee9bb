#!/usr/bin/env python3
"""A real OpenID Connect relying party for interop tests, built on authlib (see requirements.txt).

Run:  python oidc_rp.py --port 0 [--issuer URL] [--client-id ID] [--client-secret S] [--scope S]
      -> first stdout line: "listening http://127.0.0.1:PORT/"  (then serves until killed)
All logging goes to stderr. The redirect URI to register at the OP is "<base>callback", i.e.
http://127.0.0.1:PORT/callback (post-logout: "<base>logged-out").

It is driven by a browser-like client that follows redirects and keeps cookies (cookie
rp_session here; the OP's own cookies at the OP). The code flow is authlib's:
authlib.integrations.requests_client.OAuth2Session (code_challenge_method="S256",
token_endpoint_auth_method client_secret_basic, client_secret_post or none). The ID token is
verified here against the OP's JWKS (discovery's jwks_uri), the way authlib's own OIDC client
(authlib.integrations.base_client.OpenIDMixin.parse_id_token) does it: joserfc (authlib's JOSE
library since authlib 1.7; authlib.jose is deprecated) checks the signature with the algorithms
the discovery lists, then authlib.oidc.core.CodeIDToken validates the claims with iss and aud
made essential: iss, aud, exp, iat, nonce, azp, at_hash (when present), auth_time.

Endpoints
---------
GET /login?[issuer=URL][&client_id=ID][&client_secret=S]   (defaults: the flags; no secret ->
                                                            public client, auth "none")
        [&auth=client_secret_basic|client_secret_post|none] (default: basic with a secret)
        [&scope=openid phone]                              (default: --scope, "openid phone")
        [&prompt=...][&max_age=N][&login_hint=...][&acr_values=...][&openid2_realm=URL]
        [&pkce=0]      omit PKCE (negative tests); default: S256 with a fresh verifier
        [&refresh=1]   the callback also uses the refresh token once (result field refresh_ok)
        [&json=1]      answer 200 JSON {"redirect_url": ...} instead of a 302
    Discovery (<issuer>/.well-known/openid-configuration; its issuer must equal the given one),
    then 302 to the authorization endpoint with response_type=code, state, nonce and
    code_challenge(S256). Discovery failure -> 502 {"status": "discovery_failure", "message"}.

GET /callback?code=...&state=...   -> 200 JSON (also kept for GET /last):
    {"status": "success" | "error" | "state_mismatch" | "iss_mismatch" | "token_error"
               | "id_token_invalid" | "userinfo_error" | "userinfo_sub_mismatch",
     "message":      null or text,
     "error", "error_description":  the OP's error (authorization or token response), or null,
     "claims":       the verified ID token claims (null until verified),
     "id_token_header": {"alg", "kid", ...},
     "at_hash_checked": true when the ID token had at_hash and it matched the access token,
     "userinfo":     the userinfo response (null if not reached),
     "token":        {"token_type", "scope", "expires_in", "has_refresh_token"},
     "id_token", "access_token", "refresh_token", "code":  the raw values (for negative tests),
     "issuer", "client_id", "auth": the token endpoint auth method used,
     "refresh_ok":   only with refresh=1: true/false, and "refresh": the /refresh result}

GET /refresh[?which=current|previous]   uses the session's refresh token once (previous: the one
    before the last rotation, to test reuse detection) -> 200 JSON
    {"status": "success"|"error"|"no_refresh_token", "refresh_ok": bool, "error",
     "error_description", "rotated": new refresh token differs, "has_refresh_token",
     "claims": verified claims of a new ID token or null, "access_token", "refresh_token",
     "userinfo": userinfo with the new access token or null}
GET /userinfo   calls userinfo with the session's current access token -> {"status", "status_code",
    "userinfo", "www_authenticate"}
GET /logout[?json=1]   302 to the end_session_endpoint with id_token_hint,
    post_logout_redirect_uri=<base>logged-out and state
GET /logged-out?state=...   -> {"status": "logged_out", "state_ok": bool}
GET /last       the session's last result JSON (or {}).   GET /healthz -> {"status": "ok"}
"""

import argparse
import http.cookies
import json
import logging
import secrets
import sys
import threading
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

log = logging.getLogger("oidc_rp")

COOKIE_NAME = "rp_session"
TIMEOUT = 15.0
LEEWAY = 60


def http_session():
    """A requests session that never uses an environment proxy (the OP is on this machine)."""
    s = requests.Session()
    s.trust_env = False
    return s


class State:
    def __init__(self, base_url, defaults):
        self.base_url = base_url
        self.defaults = defaults
        self.lock = threading.Lock()
        self.sessions = {}
        self.discovery = {}  # issuer -> (metadata, jwks)

    def session(self, sid):
        with self.lock:
            return self.sessions.setdefault(sid, {"last": None})

    def metadata(self, issuer, force_jwks=False):
        with self.lock:
            cached = self.discovery.get(issuer)
        if cached and not force_jwks:
            return cached
        s = http_session()
        if cached:
            meta = cached[0]
        else:
            url = issuer.rstrip("/") + "/.well-known/openid-configuration"
            r = s.get(url, timeout=TIMEOUT)
            r.raise_for_status()
            meta = r.json()
            if meta.get("issuer") != issuer:
                raise ValueError("discovery issuer %r differs from %r" % (meta.get("issuer"), issuer))
        r = s.get(meta["jwks_uri"], timeout=TIMEOUT)
        r.raise_for_status()
        out = (meta, r.json())
        with self.lock:
            self.discovery[issuer] = out
        return out


def make_client(login, meta, token=None):
    sess = OAuth2Session(
        client_id=login["client_id"],
        client_secret=login.get("client_secret"),
        token_endpoint_auth_method=login["auth"],
        scope=login["scope"],
        redirect_uri=login["redirect_uri"],
        code_challenge_method="S256" if login["pkce"] else None,
        token=token,
    )
    sess.trust_env = False
    sess.metadata["token_endpoint"] = meta["token_endpoint"]
    return sess


def verify_id_token(state, login, id_token, access_token):
    """Signature against the JWKS, then authlib's CodeIDToken claim checks. Returns
    (claims dict, header dict, at_hash_checked)."""
    meta, jwks = state.metadata(login["issuer"])
    registry = JWSRegistry(algorithms=meta.get("id_token_signing_alg_values_supported"),
                           strict_check_header=False)
    try:
        tok = jwt.decode(id_token, KeySet.import_key_set(jwks), registry=registry)
    except InvalidKeyIdError:
        meta, jwks = state.metadata(login["issuer"], force_jwks=True)  # keys rotated
        tok = jwt.decode(id_token, KeySet.import_key_set(jwks), registry=registry)
    options = {
        "iss": {"essential": True, "value": login["issuer"]},
        "aud": {"essential": True, "value": login["client_id"]},
    }
    params = {"nonce": login["nonce"], "client_id": login["client_id"],
              "access_token": access_token}
    if login.get("max_age"):
        params["max_age"] = login["max_age"]
    claims = CodeIDToken(tok.claims, tok.header, options, params)
    claims.validate(leeway=LEEWAY)  # exp, iat, iss, aud, nonce, azp, at_hash, auth_time
    return dict(claims), dict(tok.header), bool(access_token and claims.get("at_hash"))


def call_userinfo(state, login, token):
    meta, _ = state.metadata(login["issuer"])
    client = make_client(login, meta, token=token)
    r = client.get(meta["userinfo_endpoint"], timeout=TIMEOUT)
    return r


def token_summary(token):
    return {
        "token_type": token.get("token_type"),
        "scope": token.get("scope"),
        "expires_in": token.get("expires_in"),
        "has_refresh_token": bool(token.get("refresh_token")),
    }


def do_refresh(state, sess, which="current"):
    login = sess.get("login")
    rt = sess.get("refresh_token") if which != "previous" else sess.get("previous_refresh_token")
    out = {"status": "no_refresh_token", "refresh_ok": False, "error": None,
           "error_description": None, "rotated": None, "has_refresh_token": False,
           "claims": None, "access_token": None, "refresh_token": None, "userinfo": None}
    if not login or not rt:
        return out
    meta, _ = state.metadata(login["issuer"])
    client = make_client(login, meta)
    client.scope = None  # ask for the granted scope again (no scope parameter)
    try:
        token = client.refresh_token(meta["token_endpoint"], refresh_token=rt, timeout=TIMEOUT)
    except OAuthError as e:
        out.update(status="error", error=e.error, error_description=e.description)
        return out
    new_rt = token.get("refresh_token")
    out.update(status="success", refresh_ok=True, rotated=bool(new_rt and new_rt != rt),
               has_refresh_token=bool(new_rt), access_token=token.get("access_token"),
               refresh_token=new_rt)
    if token.get("id_token"):
        # A refreshed ID token has no nonce requirement (Core 12.2): check it without one.
        relaxed = dict(login, nonce=None)
        try:
            out["claims"], _, _ = verify_id_token(state, relaxed, token["id_token"],
                                                  token.get("access_token"))
        except Exception as e:  # noqa: BLE001
            out.update(status="id_token_invalid", refresh_ok=False, error="id_token_invalid",
                       error_description="%s: %s" % (type(e).__name__, e))
            return out
    r = call_userinfo(state, login, token)
    out["userinfo"] = r.json() if r.ok else None
    if which != "previous":
        sess["previous_refresh_token"] = rt
        sess["token"] = token
        if new_rt:
            sess["refresh_token"] = new_rt
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "akaid-interop-oidc-rp/1.0"
    state = None

    def log_message(self, fmt, *args):
        sys.stderr.write("oidc_rp: %s - %s\n" % (self.address_string(), fmt % args))

    def _send(self, code, body, ctype, headers=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in headers or []:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code, obj, headers=None):
        self._send(code, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n",
                   "application/json", headers)

    def _redirect(self, url, headers=None):
        self._send(302, '<!DOCTYPE html><p>Redirecting to <a href="%s">%s</a></p>\n'
                   % (url.replace("&", "&amp;").replace('"', "&quot;"), "the OP"),
                   "text/html; charset=utf-8", [("Location", url)] + list(headers or []))

    def _sid(self):
        raw = self.headers.get("Cookie")
        if raw:
            c = http.cookies.SimpleCookie()
            try:
                c.load(raw)
            except http.cookies.CookieError:
                c = {}
            if COOKIE_NAME in c and c[COOKIE_NAME].value:
                return c[COOKIE_NAME].value, []
        sid = secrets.token_urlsafe(18)
        return sid, [("Set-Cookie", "%s=%s; Path=/; HttpOnly; SameSite=Lax" % (COOKIE_NAME, sid))]

    def do_GET(self):  # noqa: N802
        try:
            self.route()
        except Exception as e:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            self._json(500, {"status": "error", "message": "%s: %s" % (type(e).__name__, e)})

    def route(self):
        st = self.state
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        sid, hdr = self._sid()
        sess = st.session(sid)
        path = u.path

        if path == "/login":
            self.login(st, sess, q, hdr)
        elif path == "/callback":
            out = self.callback(st, sess, q)
            sess["last"] = out
            log.info("callback -> %s %s", out["status"], out.get("message") or "")
            self._json(200, out, hdr)
        elif path == "/refresh":
            out = do_refresh(st, sess, q.get("which", "current"))
            sess["last"] = out
            self._json(200, out, hdr)
        elif path == "/userinfo":
            login, token = sess.get("login"), sess.get("token")
            if not login or not token:
                return self._json(200, {"status": "no_token"}, hdr)
            r = call_userinfo(st, login, token)
            try:
                body = r.json()
            except ValueError:
                body = None
            self._json(200, {"status": "success" if r.ok else "error", "status_code": r.status_code,
                             "userinfo": body if r.ok else None,
                             "www_authenticate": r.headers.get("WWW-Authenticate")}, hdr)
        elif path == "/logout":
            login = sess.get("login")
            if not login or not sess.get("id_token"):
                return self._json(400, {"status": "error", "message": "no login in this session"}, hdr)
            meta, _ = st.metadata(login["issuer"])
            sess["logout_state"] = generate_token(24)
            url = meta["end_session_endpoint"] + "?" + urllib.parse.urlencode({
                "id_token_hint": sess["id_token"], "client_id": login["client_id"],
                "post_logout_redirect_uri": st.base_url + "logged-out",
                "state": sess["logout_state"]})
            if q.get("json"):
                return self._json(200, {"redirect_url": url}, hdr)
            self._redirect(url, hdr)
        elif path == "/logged-out":
            out = {"status": "logged_out",
                   "state_ok": bool(sess.get("logout_state")) and q.get("state") == sess.get("logout_state")}
            sess["last"] = out
            self._json(200, out, hdr)
        elif path == "/last":
            self._json(200, sess.get("last") or {}, hdr)
        elif path == "/healthz":
            self._json(200, {"status": "ok"})
        else:
            self._json(404, {"status": "not_found", "message": path})

    def login(self, st, sess, q, hdr):
        d = st.defaults
        issuer = (q.get("issuer") or d.issuer or "").rstrip("/")
        client_id = q.get("client_id") or d.client_id
        if not issuer or not client_id:
            return self._json(400, {"status": "error", "message": "issuer and client_id are required"}, hdr)
        secret = q.get("client_secret", d.client_secret if "client_id" not in q else None) or None
        auth = q.get("auth") or ("client_secret_basic" if secret else "none")
        if auth not in ("client_secret_basic", "client_secret_post", "none"):
            return self._json(400, {"status": "error", "message": "bad auth " + auth}, hdr)
        login = {
            "issuer": issuer, "client_id": client_id, "client_secret": secret, "auth": auth,
            "scope": q.get("scope") or d.scope, "redirect_uri": st.base_url + "callback",
            "pkce": q.get("pkce", "1") not in ("0", "false", "no"),
            "nonce": generate_token(32), "refresh": q.get("refresh") in ("1", "true", "yes"),
            "max_age": int(q["max_age"]) if q.get("max_age") else None,
        }
        try:
            meta, _ = st.metadata(issuer)
        except Exception as e:  # noqa: BLE001
            log.warning("discovery failed for %s: %s", issuer, e)
            return self._json(502, {"status": "discovery_failure",
                                    "message": "%s: %s" % (type(e).__name__, e)}, hdr)
        client = make_client(login, meta)
        extra = {k: q[k] for k in ("prompt", "max_age", "login_hint", "acr_values", "openid2_realm")
                 if q.get(k)}
        verifier = generate_token(48) if login["pkce"] else None
        url, state = client.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce=login["nonce"], **extra)
        login.update(state=state, code_verifier=verifier)
        sess.clear()
        sess.update(login=login, last=None)
        log.info("login %s at %s -> %s", client_id, issuer, url)
        if q.get("json"):
            return self._json(200, {"redirect_url": url}, hdr)
        self._redirect(url, hdr)

    def callback(self, st, sess, q):
        login = sess.get("login")
        out = {"status": "error", "message": None, "error": None, "error_description": None,
               "claims": None, "id_token_header": None, "at_hash_checked": False,
               "userinfo": None, "token": None, "id_token": None, "access_token": None,
               "refresh_token": None, "code": q.get("code"), "issuer": None,
               "client_id": None, "auth": None}
        if not login:
            out["message"] = "no login in progress in this session (cookie %s)" % COOKIE_NAME
            return out
        out.update(issuer=login["issuer"], client_id=login["client_id"], auth=login["auth"])
        if q.get("state") != login["state"]:
            out.update(status="state_mismatch", message="state %r != %r" % (q.get("state"), login["state"]))
            return out
        if "iss" in q and q["iss"] != login["issuer"]:  # RFC 9207, when the OP sends it
            out.update(status="iss_mismatch", message="iss %r" % q["iss"])
            return out
        if "error" in q or "code" not in q:
            out.update(error=q.get("error"), error_description=q.get("error_description"),
                       message="authorization error response")
            return out
        meta, _ = st.metadata(login["issuer"])
        client = make_client(login, meta)
        kwargs = {"code_verifier": login["code_verifier"]} if login["code_verifier"] else {}
        full = st.base_url.rstrip("/") + self.path
        try:
            token = client.fetch_token(meta["token_endpoint"], authorization_response=full,
                                       state=login["state"], timeout=TIMEOUT, **kwargs)
        except OAuthError as e:
            out.update(status="token_error", error=e.error, error_description=e.description,
                       message="token endpoint refused the code")
            return out
        out.update(token=token_summary(token), id_token=token.get("id_token"),
                   access_token=token.get("access_token"), refresh_token=token.get("refresh_token"))
        sess.update(token=token, id_token=token.get("id_token"),
                    refresh_token=token.get("refresh_token"))
        if not token.get("id_token"):
            out.update(status="id_token_invalid", message="no id_token in the token response")
            return out
        try:
            claims, header, at_hash_checked = verify_id_token(
                st, login, token["id_token"], token.get("access_token"))
        except Exception as e:  # noqa: BLE001
            out.update(status="id_token_invalid", message="%s: %s" % (type(e).__name__, e))
            return out
        out.update(claims=claims, id_token_header=header, at_hash_checked=at_hash_checked)
        r = call_userinfo(st, login, token)
        if not r.ok:
            out.update(status="userinfo_error", message="userinfo HTTP %d: %s" % (r.status_code, r.text[:300]))
            return out
        out["userinfo"] = r.json()
        if out["userinfo"].get("sub") != claims.get("sub"):  # Core 5.3.2
            out.update(status="userinfo_sub_mismatch", message="userinfo sub differs from the ID token's")
            return out
        out["status"] = "success"
        if login["refresh"]:
            ref = do_refresh(st, sess)
            out["refresh_ok"] = ref["refresh_ok"]
            out["refresh"] = ref
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--issuer", default=None)
    ap.add_argument("--client-id", default=None)
    ap.add_argument("--client-secret", default=None)
    ap.add_argument("--scope", default="openid phone")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="oidc_rp: %(levelname)s %(message)s")
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    base = "http://%s:%d/" % (args.host, server.server_address[1])
    Handler.state = State(base, args)
    sys.stdout.write("listening %s\n" % base)
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
