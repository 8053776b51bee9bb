#!/usr/bin/env python3
"""Self-test of the OpenID Connect interop relying parties against the npm oidc-provider.

Starts bench/oidc_provider_op.js (needs `npm ci` in bench/), oidc_rp.py (authlib; run this
script with the Python that has tests/interop/python/requirements.txt installed) and
tests/interop/node/oidc_rp.js (needs `npm ci` in tests/interop/node), then drives logins as a
browser-like client (requests: follows redirects, keeps cookies), once per ID token algorithm.

    python tests/interop/python/oidc_selftest.py        -> "oidc selftest: N checks passed"
"""

import os
import subprocess
import sys
import time

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
procs = []
checks = 0


def start(cmd, cwd, env=None):
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
                         if not os.environ.get("SELFTEST_VERBOSE") else None,
                         text=True, env=dict(os.environ, **(env or {})))
    procs.append(p)
    line = p.stdout.readline().strip()
    if not line.startswith("listening "):
        raise SystemExit("%s did not start: %r" % (cmd, line))
    return line.split(" ", 1)[1]


def check(cond, what, detail=None):
    global checks
    if not cond:
        raise SystemExit("FAILED: %s\n%s" % (what, detail))
    checks += 1
    print("ok   %s" % what)


def browser():
    s = requests.Session()
    s.trust_env = False
    return s


def get_json(s, url, **params):
    r = s.get(url, params=params, timeout=30)
    try:
        return r.json()
    except ValueError:
        raise SystemExit("not JSON from %s (HTTP %d): %s" % (r.url, r.status_code, r.text[:500]))


def negative_verifications(issuer, r, alg):
    """oidc_rp.verify_id_token really checks: wrong nonce, wrong audience, wrong issuer,
    a flipped signature and a foreign access token (at_hash, when the OP sends one) all fail."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import oidc_rp  # noqa: E402

    st = oidc_rp.State("http://127.0.0.1:9/", None)
    good = {"issuer": issuer, "client_id": "rp", "nonce": r["claims"]["nonce"]}
    oidc_rp.verify_id_token(st, good, r["id_token"], r["access_token"])
    head, body, sig = r["id_token"].split(".")
    flipped = "%s.%s.%s" % (head, body, ("A" if sig[0] != "A" else "B") + sig[1:])
    cases = [("wrong nonce", dict(good, nonce="other"), r["id_token"]),
             ("wrong audience", dict(good, client_id="someone-else"), r["id_token"]),
             ("wrong issuer", dict(good, issuer=issuer + "/x"), r["id_token"]),
             ("bad signature", good, flipped)]
    for what, login, tok in cases:
        try:
            oidc_rp.verify_id_token(st, login, tok, r["access_token"])
        except Exception:  # noqa: BLE001
            check(True, "%s authlib RP rejects an ID token with %s" % (alg, what))
        else:
            check(False, "%s authlib RP rejects an ID token with %s" % (alg, what))


def at_hash_verification():
    """oidc-provider puts no at_hash in code-flow ID tokens, so check oidc_rp's at_hash handling
    offline: an ID token signed here with at_hash of one access token passes with that token
    and fails with another."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import oidc_rp  # noqa: E402
    from authlib.oidc.core.util import create_half_hash
    from joserfc import jwt
    from joserfc.jwk import ECKey, KeySet

    key = ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256"})
    issuer = "http://127.0.0.1:9"
    st = oidc_rp.State("http://127.0.0.1:9/", None)
    st.discovery[issuer] = ({"id_token_signing_alg_values_supported": ["ES256"]},
                            KeySet([key]).as_dict(private=False))
    now = int(time.time())
    claims = {"iss": issuer, "aud": "rp", "sub": "s", "iat": now, "exp": now + 300, "nonce": "n",
              "at_hash": create_half_hash("access-1", "ES256").decode()}
    tok = jwt.encode({"alg": "ES256", "kid": "k1"}, claims, key)
    login = {"issuer": issuer, "client_id": "rp", "nonce": "n"}
    _, _, checked = oidc_rp.verify_id_token(st, login, tok, "access-1")
    check(checked, "authlib RP checks at_hash (matching access token)")
    try:
        oidc_rp.verify_id_token(st, login, tok, "access-2")
    except Exception:  # noqa: BLE001
        check(True, "authlib RP rejects an at_hash of another access token")
    else:
        check(False, "authlib RP rejects an at_hash of another access token")
    expired = jwt.encode({"alg": "ES256", "kid": "k1"}, dict(claims, exp=now - 3600), key)
    try:
        oidc_rp.verify_id_token(st, login, expired, "access-1")
    except Exception:  # noqa: BLE001
        check(True, "authlib RP rejects an expired ID token")
    else:
        check(False, "authlib RP rejects an expired ID token")


def main():
    at_hash_verification()
    py_rp = start([sys.executable, "oidc_rp.py", "--port", "0"], os.path.join(ROOT, "tests/interop/python"))
    node_rp = start(["node", "oidc_rp.js", "--port", "0"], os.path.join(ROOT, "tests/interop/node"))
    for alg in ("RS256", "ES256", "EdDSA"):
        op_base = start(["node", "oidc_provider_op.js", "--port", "0", "--client-id", "rp",
                         "--client-secret", "rp-secret", "--public-client-id", "rp-public",
                         "--id-token-alg", alg, "--redirect-uri", py_rp + "callback",
                         "--redirect-uri", node_rp + "callback"],
                        os.path.join(ROOT, "bench"), env={"NODE_ENV": "production"})
        issuer = op_base.rstrip("/")
        s = browser()

        # authlib, confidential client (client_secret_basic), PKCE + nonce + state, refresh once.
        r = get_json(s, py_rp + "login", issuer=issuer, client_id="rp", client_secret="rp-secret",
                     scope="openid phone offline_access", prompt="consent", refresh="1")
        check(r.get("status") == "success" and r["claims"]["iss"] == issuer and r["claims"]["aud"] == "rp"
              and r["id_token_header"]["alg"] == alg and r["userinfo"]["phone_number"] == "+15550100"
              and r["userinfo"]["sub"] == r["claims"]["sub"] and r["auth"] == "client_secret_basic",
              "%s authlib confidential login, ID token verified against JWKS, userinfo" % alg, r)
        check(r.get("refresh_ok") is True and r["refresh"]["userinfo"]["sub"] == r["claims"]["sub"],
              "%s authlib refresh token used once" % alg, r.get("refresh"))
        negative_verifications(issuer, r, alg)
        r2 = get_json(s, py_rp + "refresh")
        check(r2.get("refresh_ok") is True, "%s authlib /refresh" % alg, r2)

        # authlib, public client (token auth none, PKCE required by the OP), session reused.
        r = get_json(s, py_rp + "login", issuer=issuer, client_id="rp-public")
        check(r.get("status") == "success" and r["auth"] == "none" and r["claims"]["aud"] == "rp-public",
              "%s authlib public client (none + PKCE)" % alg, r)
        # Negative: the public client without PKCE, a wrong secret.
        r = get_json(s, py_rp + "login", issuer=issuer, client_id="rp-public", pkce="0")
        check(r.get("status") == "error" and r.get("error") == "invalid_request",
              "%s public client without PKCE refused at /authorize" % alg, r)
        r = get_json(s, py_rp + "login", issuer=issuer, client_id="rp", client_secret="wrong")
        check(r.get("status") == "token_error" and r.get("error") == "invalid_client",
              "%s wrong client secret refused at /token" % alg, r)

        # openid-client (v6): one full login.
        r = get_json(s, node_rp + "login", issuer=issuer, client_id="rp", client_secret="rp-secret",
                     id_token_alg=alg)
        check(r.get("status") == "success" and r["claims"]["iss"] == issuer and r["claims"]["aud"] == "rp"
              and r["userinfo"]["phone_number"] == "+15550100" and r["auth"] == "client_secret_basic",
              "%s openid-client login, ID token and userinfo" % alg, r)
        procs.pop().terminate()
    print("oidc selftest: %d checks passed" % checks)


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in procs:
            p.terminate()
        time.sleep(0.2)
