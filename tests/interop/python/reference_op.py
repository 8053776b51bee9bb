#!/usr/bin/env python3
"""python-openid 3.2.0's own OP, in-process (no gunicorn), for the relying party's self-test.

This is bench/python_openid_op.py run with the standard-library server and a MemoryStore:
    python reference_op.py --port 0      -> "listening http://127.0.0.1:PORT/"
Identities: <base>id/alice approves everything (identifier_select answers with it);
<base>id/bob never approves (setup -> cancel, immediate -> setup_needed).
Any extra flag is passed on (see bench/python_openid_op.py --help).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..", "..", "bench")))

import python_openid_op  # noqa: E402


if __name__ == "__main__":
    python_openid_op.main(["--server", "builtin", "--store", "memory", "--port", "0"]
                          + sys.argv[1:])
