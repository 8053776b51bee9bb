#!/usr/bin/env python3
"""A real OpenID 2.0 relying party for interop tests, built on python-openid 3.2.0.

Run:  python rp.py --port 0
      -> first stdout line: "listening http://127.0.0.1:PORT/"  (then serves until killed)

It is meant to be driven by a browser-like client (follows redirects, keeps cookies,
submits HTML forms). All logging goes to stderr.

Endpoints
---------
GET /login?identifier=URL
        [&mode=smart|stateless]          smart (default): MemoryStore + associations;
                                         stateless: store=None, verification by check_authentication
        [&assoc=HMAC-SHA256:DH-SHA256]   force the association/session type (smart mode)
        [&immediate=1]                   checkid_immediate instead of checkid_setup
        [&sreg=nickname,email]           SReg optional fields
        [&sreg_required=...]             SReg required fields
        [&ax=phone]                      AX fetch of .../contact/phone/cell (required) and
                                         .../contact/phone/default (optional)
        [&pape=1][&max_auth_age=N]       PAPE request (phishing-resistant policy)
        [&realm=URL][&return_to=URL]     default realm http://127.0.0.1:PORT/, return_to .../return
        [&capture=1]                     /return only records the response URL (for /tamper, /complete)
        [&form=1]                        answer with a self-submitting POST form instead of a 302
        [&json=1]                        answer 200 JSON {"redirect_url": ...} instead of a 302
    -> 302 to the OP (sets cookie rp_session). Discovery failure -> 502 JSON
       {"status": "discovery_failure", "message": ...}.

GET|POST /return?...   consumer.complete(query, current_url) -> 200 JSON with status
       success|failure|cancel|setup_needed, message, identity_url, display_identifier,
       endpoint_server_url, signed_fields, sreg, ax, pape, setup_url, response_fields.
       With a capture login (return_to .../return?rp_capture=1): 200 JSON
       {"status": "captured", "url": <full response URL>} and nothing is verified.

GET /tamper?url=<urlencoded response URL>&field=openid.x&value=y[&delete=1]
       replaces (or deletes) one field of a response URL as the OP produced it, then completes
       it exactly as /return would.
GET /complete?url=<urlencoded response URL>   completes a captured response URL untouched.
GET /last      the session's last result JSON (or {} if none).
GET /          Yadis RP discovery: XRDS (return_to endpoint) with Accept: application/xrds+xml,
               otherwise a small HTML page with an X-XRDS-Location header.
GET /xrds      the same XRDS document.
"""

import argparse
import html
import http.cookies
import json
import logging
import secrets
import sys
import threading
import traceback
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from openid import fetchers
from openid.association import SessionNegotiator
from openid.consumer import consumer as oid_consumer
from openid.consumer.discover import DiscoveryFailure
from openid.extensions import ax, pape, sreg
from openid.store.memstore import MemoryStore

log = logging.getLogger("rp")

COOKIE_NAME = "rp_session"
AX_PHONE_CELL = "http://axschema.org/contact/phone/cell"
AX_PHONE_DEFAULT = "http://axschema.org/contact/phone/default"
FETCH_TIMEOUT = 15.0


class LoopbackFetcher(fetchers.Urllib2Fetcher):
    """python-openid's urllib fetcher, but with a timeout and without any environment proxy
    (the OP lives on this machine; an http_proxy variable must not send us elsewhere)."""

    _opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @staticmethod
    def urlopen(req):
        return LoopbackFetcher._opener.open(req, timeout=FETCH_TIMEOUT)


fetchers.setDefaultFetcher(LoopbackFetcher())


class RPState:
    """Server-side state shared by all requests."""

    def __init__(self, base_url):
        self.base_url = base_url
        self.lock = threading.Lock()
        self.sessions = {}  # sid -> {"consumer": {...}, "mode": ..., "assoc": ..., "last": ...}
        # One MemoryStore per forced association preference: an association cached for an OP
        # under one type must not hide a later request for another type.
        self.stores = {}

    def store_for(self, assoc_key):
        with self.lock:
            st = self.stores.get(assoc_key)
            if st is None:
                st = MemoryStore()
                self.stores[assoc_key] = st
            return st

    def session(self, sid):
        with self.lock:
            s = self.sessions.get(sid)
            if s is None:
                s = {"consumer": {}, "mode": "smart", "assoc": None, "last": None}
                self.sessions[sid] = s
            return s


def parse_assoc(value):
    """'HMAC-SHA256:DH-SHA256' -> ('HMAC-SHA256', 'DH-SHA256'); default session type by MAC."""
    if not value:
        return None
    if ":" in value:
        a, s = value.split(":", 1)
    else:
        a = value
        s = "DH-SHA256" if value == "HMAC-SHA256" else "DH-SHA1"
    return (a.strip(), s.strip())


def make_consumer(state, sess):
    if sess.get("mode") == "stateless":
        c = oid_consumer.Consumer(sess["consumer"], None)
    else:
        assoc = sess.get("assoc")
        key = "%s:%s" % assoc if assoc else "default"
        c = oid_consumer.Consumer(sess["consumer"], state.store_for(key))
        if assoc:
            c.consumer.negotiator = SessionNegotiator([assoc])
    return c


def csv_list(value):
    return [x.strip() for x in (value or "").split(",") if x.strip()]


def result_json(response, query):
    """Turn a python-openid consumer Response into the JSON the tests read."""
    out = {
        "status": response.status,
        "message": None,
        "identity_url": getattr(response, "identity_url", None),
        "display_identifier": None,
        "endpoint_server_url": None,
        "signed_fields": [],
        "sreg": None,
        "ax": None,
        "pape": None,
        "setup_url": None,
        "response_fields": {k: v for k, v in query.items() if k.startswith("openid.")},
    }
    endpoint = getattr(response, "endpoint", None)
    if endpoint is not None:
        out["endpoint_server_url"] = endpoint.server_url
    try:
        out["display_identifier"] = response.getDisplayIdentifier()
    except Exception:  # noqa: BLE001 - not every response has one
        pass
    if response.status == oid_consumer.FAILURE:
        # python-openid sometimes puts an exception object here (e.g. a DiscoveryFailure)
        msg = response.message
        out["message"] = msg if isinstance(msg, str) or msg is None else "%s: %s" % (
            type(msg).__name__, msg)
    elif response.status == oid_consumer.SETUP_NEEDED:
        out["setup_url"] = response.setup_url
    elif response.status == oid_consumer.SUCCESS:
        out["signed_fields"] = list(response.signed_fields)
        try:
            sr = sreg.SRegResponse.fromSuccessResponse(response)
            if sr is not None:
                out["sreg"] = dict(sr.data)
        except Exception as e:  # noqa: BLE001
            out["sreg_error"] = repr(e)
        try:
            fr = ax.FetchResponse.fromSuccessResponse(response, signed=True)
            if fr is not None:
                out["ax"] = {k: list(v) for k, v in fr.data.items()}
        except Exception as e:  # noqa: BLE001
            out["ax_error"] = repr(e)
        try:
            if response.message.getArgs(pape.ns_uri):
                pr = pape.Response.fromSuccessResponse(response)
                if pr is None:
                    out["pape_error"] = "PAPE response arguments are not all signed"
                else:
                    out["pape"] = {
                        "auth_policies": list(pr.auth_policies),
                        "auth_time": pr.auth_time,
                    }
        except Exception as e:  # noqa: BLE001
            out["pape_error"] = repr(e)
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "akaid-interop-rp/1.0"
    state = None  # set by main()

    # ---- plumbing -------------------------------------------------------------------------
    def log_message(self, fmt, *args):
        sys.stderr.write("rp: %s - %s\n" % (self.address_string(), fmt % args))

    def _send(self, code, body, ctype, headers=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or []):
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code, obj, headers=None):
        self._send(code, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n",
                   "application/json", headers)

    def _sid(self):
        """Return (sid, set_cookie_header_or_None)."""
        raw = self.headers.get("Cookie")
        if raw:
            c = http.cookies.SimpleCookie()
            try:
                c.load(raw)
            except http.cookies.CookieError:
                c = {}
            if COOKIE_NAME in c and c[COOKIE_NAME].value:
                return c[COOKIE_NAME].value, None
        sid = secrets.token_urlsafe(18)
        return sid, ("Set-Cookie", "%s=%s; Path=/; HttpOnly; SameSite=Lax" % (COOKIE_NAME, sid))

    def _query(self):
        parsed = urllib.parse.urlsplit(self.path)
        return parsed.path, dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))

    def _body_fields(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype in ("", "application/x-www-form-urlencoded"):
            return dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace"),
                                               keep_blank_values=True))
        return {}

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self._dispatch({})

    def do_POST(self):
        self._dispatch(self._body_fields())

    def _dispatch(self, post_fields):
        path, query = self._query()
        try:
            if path == "/login":
                return self.login(query)
            if path == "/return":
                merged = dict(query)
                merged.update(post_fields)
                return self.ret(merged)
            if path == "/tamper":
                return self.tamper(dict(query, **post_fields))
            if path == "/complete":
                return self.complete_url(dict(query, **post_fields))
            if path == "/last":
                sid, setc = self._sid()
                last = self.state.session(sid).get("last") or {}
                return self._json(200, last, [setc] if setc else None)
            if path in ("/", "/xrds"):
                return self.discovery(path)
            if path == "/user11":
                return self.openid1_identity_page(query)
            if path == "/healthz":
                return self._json(200, {"status": "ok"})
            return self._json(404, {"status": "not_found", "message": path})
        except Exception as e:  # noqa: BLE001 - always answer JSON
            log.error("unhandled error on %s: %s", self.path, traceback.format_exc())
            return self._json(500, {"status": "error", "message": "%s: %s" % (type(e).__name__, e)})

    # ---- Yadis RP discovery ------------------------------------------------------------------
    def discovery(self, path):
        base = self.state.base_url
        accept = self.headers.get("Accept") or ""
        if path == "/xrds" or "application/xrds+xml" in accept:
            xrds = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                '<xrds:XRDS xmlns:xrds="xri://$xrds" xmlns="xri://$xrd*($v*2.0)">\n'
                '  <XRD>\n'
                '    <Service priority="1">\n'
                '      <Type>http://specs.openid.net/auth/2.0/return_to</Type>\n'
                '      <URI>%sreturn</URI>\n'
                '    </Service>\n'
                '  </XRD>\n'
                '</xrds:XRDS>\n' % html.escape(base)
            )
            return self._send(200, xrds, "application/xrds+xml")
        page = ("<!DOCTYPE html><html><head><title>interop RP</title>"
                '<meta http-equiv="X-XRDS-Location" content="%sxrds"></head>'
                "<body><p>OpenID 2.0 interop relying party.</p></body></html>\n" % html.escape(base))
        return self._send(200, page, "text/html; charset=utf-8",
                          [("X-XRDS-Location", base + "xrds")])

    # ---- an OpenID 1.1 identity page (HTML discovery only) ----------------------------------
    def openid1_identity_page(self, q):
        """A user's own page that delegates to the OP in OpenID 1.1 terms only (1.1 §3.2.1):
        python-openid discovers no 2.0 service here and speaks 1.1 to the OP."""
        server, delegate = q.get("server"), q.get("delegate")
        if not server or not delegate:
            return self._json(400, {"status": "error", "message": "server and delegate are required"})
        page = ('<!DOCTYPE html><html><head><title>my identity</title>'
                '<link rel="openid.server" href="%s">'
                '<link rel="openid.delegate" href="%s">'
                '</head><body><p>An OpenID 1.1 identity page.</p></body></html>\n'
                % (html.escape(server), html.escape(delegate)))
        return self._send(200, page, "text/html; charset=utf-8")

    # ---- /login ------------------------------------------------------------------------------
    def login(self, q):
        sid, setc = self._sid()
        cookie_hdr = [setc] if setc else []
        identifier = q.get("identifier")
        if not identifier:
            return self._json(400, {"status": "error", "message": "identifier is required"},
                              cookie_hdr)
        sess = self.state.session(sid)
        mode = q.get("mode") or "smart"
        if mode not in ("smart", "stateless"):
            return self._json(400, {"status": "error", "message": "mode must be smart|stateless"},
                              cookie_hdr)
        sess["mode"] = mode
        try:
            sess["assoc"] = parse_assoc(q.get("assoc"))
        except ValueError as e:
            return self._json(400, {"status": "error", "message": str(e)}, cookie_hdr)
        sess["last"] = None
        consumer = make_consumer(self.state, sess)
        try:
            auth_request = consumer.begin(identifier)
        except DiscoveryFailure as e:
            log.warning("discovery failure for %s: %s", identifier, e)
            return self._json(502, {"status": "discovery_failure", "message": str(e)}, cookie_hdr)
        except Exception as e:  # noqa: BLE001 - e.g. a fetch error wrapped differently
            log.warning("begin failed for %s: %s", identifier, traceback.format_exc())
            return self._json(502, {"status": "discovery_failure",
                                    "message": "%s: %s" % (type(e).__name__, e)}, cookie_hdr)

        sreg_opt = csv_list(q.get("sreg"))
        sreg_req = csv_list(q.get("sreg_required"))
        if sreg_opt or sreg_req:
            auth_request.addExtension(sreg.SRegRequest(required=sreg_req, optional=sreg_opt))
        ax_attrs = csv_list(q.get("ax"))
        if ax_attrs:
            fetch = ax.FetchRequest()
            for a in ax_attrs:
                if a == "phone":
                    fetch.add(ax.AttrInfo(AX_PHONE_CELL, alias="phone", required=True))
                    fetch.add(ax.AttrInfo(AX_PHONE_DEFAULT, alias="phone_default"))
                elif a.startswith("http"):
                    fetch.add(ax.AttrInfo(a, required=True))
                else:
                    return self._json(400, {"status": "error",
                                            "message": "unknown ax attribute %r" % a}, cookie_hdr)
            auth_request.addExtension(fetch)
        if q.get("pape") or q.get("max_auth_age"):
            max_age = q.get("max_auth_age")
            auth_request.addExtension(pape.Request(
                preferred_auth_policies=[pape.AUTH_PHISHING_RESISTANT],
                max_auth_age=int(max_age) if max_age else None))

        base = self.state.base_url
        realm = q.get("realm") or base
        return_to = q.get("return_to") or (base + "return")
        if q.get("capture") and not q.get("return_to"):
            return_to = base + "return?rp_capture=1"
        immediate = q.get("immediate") in ("1", "true", "yes")
        try:
            url = auth_request.redirectURL(realm, return_to, immediate=immediate)
        except Exception as e:  # noqa: BLE001 - e.g. bad realm/return_to
            return self._json(400, {"status": "error", "message": "%s: %s" % (type(e).__name__, e)},
                              cookie_hdr)
        log.info("login %s mode=%s assoc=%s -> %s", identifier, mode, sess["assoc"], url)
        if q.get("json"):
            return self._json(200, {"redirect_url": url,
                                    "endpoint_server_url": auth_request.endpoint.server_url,
                                    "assoc_handle": auth_request.assoc.handle
                                    if auth_request.assoc else None}, cookie_hdr)
        if q.get("form"):
            page = auth_request.htmlMarkup(realm, return_to, immediate=immediate,
                                           form_tag_attrs={"id": "openid_message"})
            return self._send(200, page, "text/html; charset=utf-8", cookie_hdr)
        body = '<!DOCTYPE html><p>Redirecting to <a href="%s">the OP</a></p>\n' % html.escape(url)
        return self._send(302, body, "text/html; charset=utf-8", [("Location", url)] + cookie_hdr)

    # ---- completing responses ----------------------------------------------------------------
    def _complete(self, query, current_url):
        sid, setc = self._sid()
        sess = self.state.session(sid)
        consumer = make_consumer(self.state, sess)
        try:
            response = consumer.complete(query, current_url)
            out = result_json(response, query)
        except Exception as e:  # noqa: BLE001 - a failing complete is still a JSON failure
            log.error("complete raised: %s", traceback.format_exc())
            out = {"status": "failure", "message": "%s: %s" % (type(e).__name__, e),
                   "identity_url": None, "display_identifier": None, "endpoint_server_url": None,
                   "signed_fields": [], "sreg": None, "ax": None, "pape": None,
                   "setup_url": None,
                   "response_fields": {k: v for k, v in query.items()
                                       if k.startswith("openid.")}}
        out["mode"] = sess.get("mode")
        out["assoc"] = ":".join(sess["assoc"]) if sess.get("assoc") else None
        sess["last"] = out
        log.info("complete -> %s %s", out["status"], out.get("message") or "")
        return self._json(200, out, [setc] if setc else None)

    def _current_url(self, query):
        """The full URL as received: base + path, with the query we complete."""
        path = urllib.parse.urlsplit(self.path).path
        return self.state.base_url.rstrip("/") + path + (
            "?" + urllib.parse.urlencode(query) if query else "")

    def ret(self, query):
        if query.get("rp_capture"):
            if self.command == "GET":
                url = self.state.base_url.rstrip("/") + self.path
            else:
                url = self._current_url(query)
            sid, setc = self._sid()
            sess = self.state.session(sid)
            sess["last"] = {"status": "captured", "url": url}
            return self._json(200, sess["last"], [setc] if setc else None)
        if self.command == "GET":
            current_url = self.state.base_url.rstrip("/") + self.path
        else:
            current_url = self._current_url(query)
        return self._complete(query, current_url)

    def _split_response_url(self, url):
        parts = urllib.parse.urlsplit(url)
        fields = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        return parts, fields

    def tamper(self, q):
        url = q.get("url")
        field = q.get("field")
        if not url or not field:
            return self._json(400, {"status": "error", "message": "url and field are required"})
        parts, fields = self._split_response_url(url)
        if q.get("delete"):
            fields.pop(field, None)
        else:
            fields[field] = q.get("value", "")
        new_url = urllib.parse.urlunsplit(
            (parts.scheme, parts.netloc, parts.path, urllib.parse.urlencode(fields), ""))
        log.info("tamper %s -> %r", field, None if q.get("delete") else fields.get(field))
        return self._complete(fields, new_url)

    def complete_url(self, q):
        url = q.get("url")
        if not url:
            return self._json(400, {"status": "error", "message": "url is required"})
        _, fields = self._split_response_url(url)
        return self._complete(fields, url)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, args.log_level.upper()),
                        format="rp %(levelname)s %(name)s: %(message)s")

    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    base = "http://%s:%d/" % (args.host, port)
    Handler.state = RPState(base)
    sys.stdout.write("listening %s\n" % base)
    sys.stdout.flush()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
