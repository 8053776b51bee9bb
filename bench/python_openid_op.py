#!/usr/bin/env python3
"""python-openid 3.2.0's own OpenID 2.0 OP, as a performance baseline (and an interop reference).

It auto-approves every checkid request for one fixed identity:

  GET  /             Yadis: XRDS (type http://specs.openid.net/auth/2.0/server, URI <base>openid)
                     with Accept: application/xrds+xml, else HTML + X-XRDS-Location
  GET  /id/alice     the user identifier: XRDS (…/2.0/signon) or HTML <link rel="openid2.provider">
  GET  /id/bob       a user who never approves: checkid_setup -> cancel, checkid_immediate ->
                     setup_needed (useful for testing relying parties)
  GET|POST /openid   the OP endpoint: associate, checkid_setup/immediate (id_res redirect, or a
                     self-posting form for long responses), check_authentication
identifier_select is answered with <base>id/alice. SReg (nickname, email, fullname), AX
(…/contact/phone/cell, …/contact/phone/default) and PAPE (phishing-resistant, auth_time) are
answered when requested, so the relying-party self-test can check its extension parsing.

Run (production WSGI server, gunicorn, 2 workers; a FileStore shared by the workers):
    python bench/python_openid_op.py --port 8000
    python bench/python_openid_op.py --port 0 --workers 2 --worker-class gthread --threads 4
Run in-process without gunicorn (standard library server; tests/interop/python/reference_op.py):
    python bench/python_openid_op.py --server builtin --port 0
Either way the first stdout line is "listening http://127.0.0.1:PORT/".

The store must be shared by all workers: a private (stateless-mode) association made by the
worker that signs an id_res is looked up by whichever worker gets the check_authentication,
so with more than one worker use --store file (the default; a temporary directory).
"""

import argparse
import html
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
import urllib.parse

from openid.extensions import ax, pape, sreg
from openid.server.server import EncodingError, ProtocolError, Server
from openid.store.filestore import FileOpenIDStore as FileStore
from openid.store.memstore import MemoryStore

log = logging.getLogger("python_openid_op")

ALICE = "alice"
BOB = "bob"  # never approves
SREG_DATA = {"nickname": "alice", "email": "alice@example.org", "fullname": "Alice Example"}
MSISDN = "+15555550100"
AX_PHONE_CELL = "http://axschema.org/contact/phone/cell"
AX_PHONE_DEFAULT = "http://axschema.org/contact/phone/default"
START_TIME = time.time()


def xrds(type_uri, endpoint, local_id=None):
    lid = "      <LocalID>%s</LocalID>\n" % html.escape(local_id) if local_id else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<xrds:XRDS xmlns:xrds="xri://$xrds" xmlns="xri://$xrd*($v*2.0)">\n'
        "  <XRD>\n"
        '    <Service priority="0">\n'
        "      <Type>%s</Type>\n"
        "      <URI>%s</URI>\n"
        "%s"
        "    </Service>\n"
        "  </XRD>\n"
        "</xrds:XRDS>\n" % (type_uri, html.escape(endpoint), lid)
    )


def make_app(base_url, store):
    """Build the WSGI application for an OP whose public base URL is base_url (ends with '/')."""
    endpoint = base_url + "openid"
    server = Server(store, endpoint)
    alice_url = base_url + "id/" + ALICE
    bob_url = base_url + "id/" + BOB

    def respond(start_response, code, body, ctype="text/html; charset=utf-8", headers=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        reason = {200: "OK", 302: "Found", 400: "Bad Request", 404: "Not Found",
                  405: "Method Not Allowed", 500: "Internal Server Error"}.get(code, "OK")
        hdrs = [("Content-Type", ctype), ("Content-Length", str(len(body)))]
        hdrs += list(headers or [])
        start_response("%d %s" % (code, reason), hdrs)
        return [body]

    def read_query(environ):
        q = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                n = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                n = 0
            raw = environ["wsgi.input"].read(n) if n > 0 else b""
            q.update(urllib.parse.parse_qsl(raw.decode("utf-8", "replace"),
                                            keep_blank_values=True))
        return q

    def web(start_response, webresponse):
        headers = [(k, v) for k, v in webresponse.headers.items()]
        ctype = "text/plain; charset=utf-8"
        if webresponse.code == 200 and webresponse.body.lstrip().startswith("<"):
            ctype = "text/html; charset=utf-8"
        return respond(start_response, webresponse.code, webresponse.body, ctype, headers)

    def add_extensions(request, response):
        sreg_req = sreg.SRegRequest.fromOpenIDRequest(request)
        if sreg_req.wereFieldsRequested():
            response.addExtension(sreg.SRegResponse.extractResponse(sreg_req, SREG_DATA))
        fetch = ax.FetchRequest.fromOpenIDRequest(request)
        if fetch is not None:
            fr = ax.FetchResponse(request=fetch)
            for type_uri in fetch.requested_attributes:
                if type_uri in (AX_PHONE_CELL, AX_PHONE_DEFAULT):
                    fr.addValue(type_uri, MSISDN)
            response.addExtension(fr)
        pape_req = pape.Request.fromOpenIDRequest(request)
        if pape_req is not None:
            response.addExtension(pape.Response(
                auth_policies=[pape.AUTH_PHISHING_RESISTANT],
                auth_time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START_TIME))))

    def checkid(request):
        if request.idSelect():
            response = request.answer(True, identity=alice_url)
        elif request.identity == alice_url:
            response = request.answer(True)
        else:
            # bob, or anybody else: setup -> cancel, immediate -> setup_needed
            return request.answer(False)
        add_extensions(request, response)
        return response

    def openid_endpoint(environ, start_response):
        query = read_query(environ)
        try:
            request = server.decodeRequest(query)
        except ProtocolError as why:
            return web(start_response, server.encodeResponse(why))
        if request is None:
            return respond(start_response, 200,
                           "<!DOCTYPE html><p>This is an OpenID 2.0 server endpoint.</p>\n")
        if request.mode in ("checkid_setup", "checkid_immediate"):
            try:
                response = checkid(request)
            except (ProtocolError, ValueError) as why:
                log.warning("checkid error: %s", why)
                return respond(start_response, 400, "checkid error: %s\n" % why, "text/plain")
        else:
            response = server.handleRequest(request)
        try:
            webresponse = server.encodeResponse(response)
        except EncodingError as why:
            return respond(start_response, 400, "encoding error: %s\n" % why.response,
                           "text/plain")
        return web(start_response, webresponse)

    def discovery(environ, start_response, type_uri, local_id, html_links):
        accept = environ.get("HTTP_ACCEPT", "")
        path = environ.get("PATH_INFO", "/")
        xrds_url = base_url.rstrip("/") + path + ("?xrds=1" if path != "/" else "xrds")
        qs = environ.get("QUERY_STRING", "")
        if "application/xrds+xml" in accept or "xrds=1" in qs:
            return respond(start_response, 200, xrds(type_uri, endpoint, local_id),
                           "application/xrds+xml")
        page = ("<!DOCTYPE html><html><head><title>python-openid OP</title>%s"
                '<meta http-equiv="X-XRDS-Location" content="%s"></head>'
                "<body><p>python-openid reference OP</p></body></html>\n"
                % (html_links, html.escape(xrds_url)))
        return respond(start_response, 200, page, headers=[("X-XRDS-Location", xrds_url)])

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if path == "/openid":
                return openid_endpoint(environ, start_response)
            if method not in ("GET", "HEAD"):
                return respond(start_response, 405, "method not allowed\n", "text/plain")
            if path in ("/", "/xrds"):
                if path == "/xrds":
                    environ = dict(environ, HTTP_ACCEPT="application/xrds+xml")
                return discovery(environ, start_response,
                                 "http://specs.openid.net/auth/2.0/server", None, "")
            if path in ("/id/" + ALICE, "/id/" + BOB):
                ident = alice_url if path.endswith(ALICE) else bob_url
                links = ('<link rel="openid2.provider" href="%s">'
                         '<link rel="openid2.local_id" href="%s">'
                         % (html.escape(endpoint), html.escape(ident)))
                # LocalID: node's openid 2.0.x sends identifier_select for a signon service
                # without one
                return discovery(environ, start_response,
                                 "http://specs.openid.net/auth/2.0/signon", ident, links)
            return respond(start_response, 404, "not found\n", "text/plain")
        except Exception:  # noqa: BLE001
            log.exception("unhandled error on %s", path)
            return respond(start_response, 500, "internal error\n", "text/plain")

    return app


def run_builtin(sock, app):
    """Serve app on the already-bound socket with the standard library (threaded)."""
    import signal
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

    class Quiet(WSGIRequestHandler):
        def log_message(self, fmt, *args):
            sys.stderr.write("op: %s - %s\n" % (self.address_string(), fmt % args))

    class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    host, port = sock.getsockname()[:2]
    httpd = ThreadingWSGIServer((host, port), Quiet, bind_and_activate=False)
    httpd.socket.close()
    httpd.socket = sock
    httpd.server_address = (host, port)
    httpd.server_name = host
    httpd.server_port = port
    httpd.setup_environ()
    httpd.set_app(app)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    httpd.serve_forever()


def run_gunicorn(sock, app, args):
    from gunicorn.app.base import BaseApplication

    class OPApplication(BaseApplication):
        def __init__(self, application, options):
            self.options = options
            self.application = application
            super().__init__()

        def load_config(self):
            for k, v in self.options.items():
                self.cfg.set(k, v)

        def load(self):
            return self.application

    options = {
        "bind": ["fd://%d" % sock.fileno()],
        "workers": args.workers,
        "worker_class": args.worker_class,
        "threads": args.threads,
        "backlog": 1024,
        "keepalive": 5,
        "loglevel": "warning",
        "accesslog": "-" if args.access_log else None,
        "errorlog": "-",  # stderr
        "timeout": 60,
    }
    OPApplication(app, options).run()


def main(argv=None):
    ap = argparse.ArgumentParser(description="python-openid 3.2.0 OpenID 2.0 OP (auto-approving)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000, help="0 = pick a free port")
    ap.add_argument("--server", choices=["gunicorn", "builtin"], default="gunicorn")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--worker-class", default="gthread", help="gunicorn worker class: sync|gthread")
    ap.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    ap.add_argument("--store", choices=["file", "memory"], default="file",
                    help="memory is only correct with a single process (--server builtin)")
    ap.add_argument("--store-dir", help="FileStore directory (default: a temporary directory)")
    ap.add_argument("--access-log", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="op %(levelname)s %(name)s: %(message)s")

    if args.store == "memory" and args.server == "gunicorn" and args.workers > 1:
        ap.error("--store memory cannot be shared by several gunicorn workers; use --store file")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(1024)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    base_url = "http://%s:%d/" % (args.host, port)

    tmpdir = None
    if args.store == "file":
        store_dir = args.store_dir
        if not store_dir:
            tmpdir = store_dir = tempfile.mkdtemp(prefix="python-openid-op-")
        store = FileStore(store_dir)
    else:
        store = MemoryStore()
    app = make_app(base_url, store)

    sys.stdout.write("listening %s\n" % base_url)
    sys.stdout.flush()
    try:
        if args.server == "builtin":
            run_builtin(sock, app)
        else:
            run_gunicorn(sock, app, args)
    except KeyboardInterrupt:
        pass
    finally:
        if tmpdir and os.getpid() == MASTER_PID:
            shutil.rmtree(tmpdir, ignore_errors=True)


MASTER_PID = os.getpid()

if __name__ == "__main__":
    main()
