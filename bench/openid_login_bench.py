#!/usr/bin/env python3
"""Load generator: full OpenID 2.0 logins per second in stateless ("dumb") mode.

One login = what a stateless relying party and an auto-approving OP exchange:
  1. GET <endpoint>?openid.mode=checkid_setup (identifier_select unless told otherwise), without
     following the redirect;
  2. read the id_res from the 302 Location (or from the self-posting form an OP sends for long
     responses);
  3. POST openid.mode=check_authentication with exact copies of the response's openid.* fields;
  4. count a success when the OP answers is_valid:true.
Discovery (Yadis XRDS, X-XRDS-Location, or HTML <link rel="openid2.provider">) happens once.

It does not depend on any OP's internals: any OP that answers checkid_setup with an id_res works.
An OP that needs a logged-in session can be given one with --header 'Cookie: …'.

    python bench/openid_login_bench.py --op http://127.0.0.1:8000/ --concurrency 16 --duration 10

Traffic goes to loopback only unless --allow-non-loopback is given (for the project's own test
hosts); every run is bounded by --duration (and optionally --max-logins).
"""

import argparse
import asyncio
import html
import ipaddress
import json
import re
import socket
import ssl
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections import Counter

import aiohttp

OPENID2_NS = "http://specs.openid.net/auth/2.0"
IDENTIFIER_SELECT = "http://specs.openid.net/auth/2.0/identifier_select"
TYPE_SERVER = "http://specs.openid.net/auth/2.0/server"
TYPE_SIGNON = "http://specs.openid.net/auth/2.0/signon"
XRD_NS = "{xri://$xrd*($v*2.0)}"

INPUT_RE = re.compile(r"<input\b[^>]*>", re.I | re.S)
ATTR_RE = re.compile(r"""([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))""", re.S)
FORM_RE = re.compile(r"<form\b[^>]*>", re.I | re.S)
LINK_RE = re.compile(r"<link\b[^>]*>", re.I | re.S)


class LoginError(Exception):
    """A failed login; str() is the error kind that gets counted."""


def attrs(tag):
    out = {}
    for m in ATTR_RE.finditer(tag):
        val = m.group(3) if m.group(3) is not None else (
            m.group(4) if m.group(4) is not None else m.group(5))
        out[m.group(1).lower()] = html.unescape(val)
    return out


def parse_form(body):
    """(action, fields) of the first form of an HTML page (an OP's self-posting id_res)."""
    m = FORM_RE.search(body)
    if not m:
        return None, {}
    action = attrs(m.group(0)).get("action")
    fields = {}
    for tag in INPUT_RE.findall(body[m.end():]):
        a = attrs(tag)
        if a.get("name") and a.get("type", "text").lower() not in ("submit", "button", "image"):
            fields[a["name"]] = a.get("value", "")
    return action, fields


def parse_kv(text):
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def parse_xrds(text):
    """Return (endpoint, type, local_id) of the best OpenID 2.0 service in an XRDS document."""
    root = ET.fromstring(text)
    xrds = root.findall(XRD_NS + "XRD")
    if not xrds:
        return None
    best = None
    for svc in xrds[-1].findall(XRD_NS + "Service"):
        types = [t.text.strip() for t in svc.findall(XRD_NS + "Type") if t.text]
        uris = svc.findall(XRD_NS + "URI")
        if not uris:
            continue
        kind = TYPE_SERVER if TYPE_SERVER in types else (TYPE_SIGNON if TYPE_SIGNON in types
                                                         else None)
        if kind is None:
            continue
        try:
            prio = int(svc.get("priority", "1000000"))
        except ValueError:
            prio = 1000000
        lid = svc.find(XRD_NS + "LocalID")
        rank = (0 if kind == TYPE_SERVER else 1, prio)
        cand = (rank, uris[0].text.strip(), kind, lid.text.strip() if lid is not None else None)
        if best is None or cand[0] < best[0]:
            best = cand
    return best[1:] if best else None


async def discover(session, url, ssl_ctx):
    """Yadis / HTML discovery, once. Returns (endpoint, claimed_id, identity)."""
    async with session.get(url, headers={"Accept": "application/xrds+xml, text/html;q=0.5"},
                           ssl=ssl_ctx) as r:
        body = await r.text()
        ctype = r.headers.get("Content-Type", "")
        xrds_loc = r.headers.get("X-XRDS-Location")
        final = str(r.url)
    if "application/xrds+xml" not in ctype and xrds_loc:
        async with session.get(urllib.parse.urljoin(final, xrds_loc),
                               headers={"Accept": "application/xrds+xml"}, ssl=ssl_ctx) as r:
            body = await r.text()
            ctype = r.headers.get("Content-Type", "")
    if "xrds" in ctype or body.lstrip().startswith("<?xml"):
        found = parse_xrds(body)
        if found:
            endpoint, kind, local_id = found
            if kind == TYPE_SERVER:
                return endpoint, IDENTIFIER_SELECT, IDENTIFIER_SELECT
            return endpoint, final, local_id or final
    links = {}
    for tag in LINK_RE.findall(body):
        a = attrs(tag)
        for rel in a.get("rel", "").split():
            links[rel] = a.get("href")
    if links.get("openid2.provider"):
        return links["openid2.provider"], final, links.get("openid2.local_id") or final
    raise SystemExit("discovery failed: no OpenID 2.0 service at %s" % url)


def check_target(url, allow_non_loopback):
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        addrs = {ai[4][0] for ai in socket.getaddrinfo(host, None)}
    except socket.gaierror as e:
        raise SystemExit("cannot resolve %s: %s" % (host, e))
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs):
        if not allow_non_loopback:
            raise SystemExit("refusing to load %s (%s): not a loopback address "
                             "(use --allow-non-loopback for the project's own test hosts)"
                             % (host, ", ".join(sorted(addrs))))


class Bench:
    def __init__(self, args, session, endpoint, claimed_id, identity, ssl_ctx):
        self.args = args
        self.session = session
        self.endpoint = endpoint
        self.claimed_id = claimed_id
        self.identity = identity
        self.ssl = ssl_ctx
        self.counter = 0
        self.latencies = []
        self.ok = 0
        self.errors = Counter()
        self.error_examples = {}
        self.measure_from = 0.0
        self.measure_to = 0.0

    async def login(self, n):
        a = self.args
        return_to = a.return_to + ("&" if "?" in a.return_to else "?") + "login=%d" % n
        params = {
            "openid.ns": OPENID2_NS,
            "openid.mode": "checkid_setup",
            "openid.claimed_id": self.claimed_id,
            "openid.identity": self.identity,
            "openid.return_to": return_to,
            "openid.realm": a.realm,
        }
        async with self.session.get(self.endpoint, params=params, allow_redirects=False,
                                    ssl=self.ssl) as r:
            status = r.status
            location = r.headers.get("Location")
            body = await r.text() if status == 200 else await r.read()
        if status in (301, 302, 303, 307) and location:
            fields = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query,
                                                 keep_blank_values=True))
        elif status == 200:
            _, fields = parse_form(body)
            if "openid.mode" not in fields:
                raise LoginError("checkid: 200 without a redirect or an id_res form")
        else:
            raise LoginError("checkid: HTTP %d" % status)
        mode = fields.get("openid.mode")
        if mode != "id_res":
            raise LoginError("checkid: openid.mode=%s" % mode)
        if fields.get("openid.return_to") != return_to:
            raise LoginError("id_res: return_to differs")
        check = {k: v for k, v in fields.items() if k.startswith("openid.")}
        check["openid.mode"] = "check_authentication"
        target = fields.get("openid.op_endpoint") if a.check_at == "op_endpoint" else None
        async with self.session.post(target or self.endpoint, data=check,
                                     allow_redirects=False, ssl=self.ssl) as r:
            status = r.status
            text = await r.text()
        if status != 200:
            raise LoginError("check_authentication: HTTP %d" % status)
        kv = parse_kv(text)
        if kv.get("is_valid") != "true":
            raise LoginError("check_authentication: is_valid:%s" % kv.get("is_valid"))

    async def worker(self, deadline):
        a = self.args
        while True:
            now = time.perf_counter()
            if now >= deadline:
                return
            if a.max_logins and self.counter >= a.max_logins:
                return
            self.counter += 1
            n = self.counter
            t0 = time.perf_counter()
            try:
                await self.login(n)
                err = None
            except LoginError as e:
                err = str(e)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                err = "%s" % type(e).__name__
                self.error_examples.setdefault(err, str(e)[:200])
            t1 = time.perf_counter()
            if t0 < self.measure_from or t1 > deadline:
                continue  # warm-up, or finished after the window closed
            if err is None:
                self.ok += 1
                self.latencies.append(t1 - t0)
            else:
                self.errors[err] += 1
                if err in ("checkid: HTTP 401",) and self.errors[err] == 1:
                    print("note: the OP wants authentication (401); give it a session with "
                          "--header 'Cookie: …'", file=sys.stderr)


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


async def run(args):
    for url in [args.op] + ([args.endpoint] if args.endpoint else []):
        check_target(url, args.allow_non_loopback)
    headers = {"User-Agent": args.user_agent}
    for h in args.header:
        if ":" not in h:
            raise SystemExit("--header wants 'Name: value', got %r" % h)
        k, v = h.split(":", 1)
        headers[k.strip()] = v.strip()
    ssl_ctx = True
    if args.insecure:
        ssl_ctx = ssl.create_default_context()
        ssl_ctx.check_hostname = False
        ssl_ctx.verify_mode = ssl.CERT_NONE
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=args.no_keepalive,
                                     ttl_dns_cache=3600)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers,
                                     cookie_jar=aiohttp.DummyCookieJar(),
                                     trust_env=False) as session:
        if args.endpoint:
            endpoint = args.endpoint
            claimed = identity = args.identifier or IDENTIFIER_SELECT
        else:
            endpoint, claimed, identity = await discover(session, args.op, ssl_ctx)
            if args.identifier:
                claimed = identity = args.identifier
        check_target(endpoint, args.allow_non_loopback)
        bench = Bench(args, session, endpoint, claimed, identity, ssl_ctx)
        print("op endpoint: %s" % endpoint)
        print("identifier:  %s" % claimed)
        # one login first, so a misconfiguration shows at once
        try:
            await bench.login(0)
        except Exception as e:  # noqa: BLE001
            raise SystemExit("first login failed: %s: %s" % (type(e).__name__, e))
        start = time.perf_counter()
        bench.measure_from = start + args.warmup
        deadline = bench.measure_from + args.duration
        await asyncio.gather(*(bench.worker(deadline) for _ in range(args.concurrency)))
        end = time.perf_counter()
        window = min(end, deadline) - bench.measure_from
        if args.max_logins and end < deadline:
            window = end - bench.measure_from

    lat = sorted(x * 1000.0 for x in bench.latencies)
    total_err = sum(bench.errors.values())
    res = {
        "op": args.op,
        "endpoint": endpoint,
        "concurrency": args.concurrency,
        "duration_s": round(window, 3),
        "warmup_s": args.warmup,
        "logins_ok": bench.ok,
        "errors": total_err,
        "error_kinds": dict(bench.errors),
        "logins_per_s": round(bench.ok / window, 1) if window > 0 else 0.0,
        "p50_ms": round(pct(lat, 50), 2),
        "p90_ms": round(pct(lat, 90), 2),
        "p99_ms": round(pct(lat, 99), 2),
        "max_ms": round(lat[-1], 2) if lat else None,
    }
    print("concurrency: %d, measured %.1f s after %.1f s warm-up"
          % (args.concurrency, window, args.warmup))
    print("logins:      %d ok, %d errors" % (bench.ok, total_err))
    print("logins/s:    %.1f" % res["logins_per_s"])
    print("p50 ms:      %.2f" % res["p50_ms"])
    print("p90 ms:      %.2f" % res["p90_ms"])
    print("p99 ms:      %.2f" % res["p99_ms"])
    print("errors:      %d%s" % (total_err, (" " + json.dumps(dict(bench.errors)))
                                  if total_err else ""))
    for k, v in bench.error_examples.items():
        print("  e.g. %s: %s" % (k, v))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
    return 0 if bench.ok > 0 else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description="OpenID 2.0 stateless-login load generator")
    ap.add_argument("--op", required=True, help="OP identifier URL to discover (e.g. http://127.0.0.1:8000/)")
    ap.add_argument("--endpoint", help="skip discovery and use this OP endpoint URL")
    ap.add_argument("--identifier", help="claimed identifier (default identifier_select, or the "
                    "discovered user identifier)")
    ap.add_argument("--concurrency", "-c", type=int, default=16)
    ap.add_argument("--duration", "-d", type=float, default=10.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds run before measuring")
    ap.add_argument("--max-logins", type=int, default=0, help="stop after this many (0 = no cap)")
    ap.add_argument("--realm", default="http://127.0.0.1:9/")
    ap.add_argument("--return-to", default="http://127.0.0.1:9/return")
    ap.add_argument("--check-at", choices=["endpoint", "op_endpoint"], default="endpoint",
                    help="send check_authentication to the discovered endpoint or to the "
                    "response's openid.op_endpoint")
    ap.add_argument("--header", "-H", action="append", default=[],
                    help="extra request header 'Name: value' (repeatable), e.g. a session Cookie")
    ap.add_argument("--user-agent", default="openid-login-bench/1.0")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP exchange")
    ap.add_argument("--no-keepalive", action="store_true", help="a new connection per request")
    ap.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    ap.add_argument("--allow-non-loopback", action="store_true")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    if args.concurrency < 1 or args.duration <= 0:
        ap.error("--concurrency must be >= 1 and --duration > 0")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
