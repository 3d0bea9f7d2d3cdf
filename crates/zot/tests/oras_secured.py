"""The secured-setup scenario with the oras Python client (oras-py), for
e2e_clients.rs.

usage: oras_secured.py ADDR WORKDIR   (ORAS_TLS=1 and REQUESTS_CA_BUNDLE=<CA> for TLS)

WORKDIR holds artifact.txt. Runs each step with a fresh client and prints
one JSON object {step: {"ok": bool, "error": text}}. oras-py's login only
stores credentials, so a wrong password shows on the first request.
"""

import json
import os
import sys

import types

import oras.client
import oras.decorator

# oras-py retries a failed request five times with sleeps of up to 83 s;
# the refusals here are expected, so retry without sleeping.
oras.decorator.time = types.SimpleNamespace(sleep=lambda _seconds: None)

addr, work = sys.argv[1:3]
tls = os.environ.get("ORAS_TLS") == "1"
ca = os.environ.get("REQUESTS_CA_BUNDLE")
os.chdir(work)
report = {}


def client(user=None, password=None):
    c = oras.client.OrasClient(hostname=addr, insecure=not tls, tls_verify=ca if tls else False)
    if user:
        c.login(
            username=user,
            password=password,
            hostname=addr,
            tls_verify=ca if tls else False,
            config_path=os.path.join(work, f"oras-{user}.json"),
        )
    return c


def push(c, repo):
    r = c.push(target=f"{addr}/{repo}:v1", files=["artifact.txt"], quiet=True)
    if r.status_code not in (200, 201):
        raise RuntimeError(f"push answered {r.status_code}: {r.text}")


def pull(c, repo):
    files = c.pull(target=f"{addr}/{repo}:v1", outdir=os.path.join(work, "oras-out", repo))
    if not files:
        raise RuntimeError("nothing pulled")


def step(name, fn):
    try:
        fn()
        report[name] = {"ok": True}
    except BaseException as e:  # oras-py exits on some HTTP errors
        report[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"}


step("login_wrong", lambda: push(client("alice", "wrong"), "team/oras/wrong"))
# A client per repository: oras-py keeps its first token and, on a 401
# asking for another scope, retries with it instead of fetching a new one.
step("login", lambda: client("alice", "alice-pw"))
step("push", lambda: push(client("alice", "alice-pw"), "team/oras/app"))
step("push_private", lambda: push(client("alice", "alice-pw"), "private/oras"))
step("pull_anonymous", lambda: pull(client(), "team/oras/app"))
step("pull_private_anonymous", lambda: pull(client(), "private/oras"))
step("push_bob", lambda: push(client("bob", "bob-pw"), "team/oras/bob"))
print(json.dumps(report))
