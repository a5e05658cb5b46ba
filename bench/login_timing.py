#!/usr/bin/env python3
"""Login and registration timing: does the response time reveal whether an account exists?

Measures POST /accounts/login/ response times for four kinds of attempt, interleaved in random
order against the release server:
  existing  - an active account, wrong password (a real verification)
  unknown   - a username nobody has (the server runs a dummy verification)
  inactive  - an inactive account, its correct password (verification, then refusal)
  inactive-wrong - an inactive account, wrong password
then POST /accounts/register/ for three kinds, also interleaved:
  new           - a name and an address nobody has (an account is made, activation mailed)
  taken-address - a new name with an address an account has (a notice is mailed instead)
  taken-name    - a taken name with a new address (a notice is mailed instead)
and reports each median, and the difference of medians relative to the spread (the larger
interquartile range of the two samples compared). A ratio well under 1 means the difference
is lost in the noise an attacker would see from one machine away.

The server runs with --insecure-http behind a "trusted proxy" (127.0.0.1), and each request
carries a different X-Forwarded-For client address, so that the per-IP login throttle does
not turn the measurement into 429s; each account is tried at most three times, under the
per-account soft limit. The registration flow limits are switched off for the run
(PALISADE_FLOW_LIMIT_PER_IP/_PER_ADDRESS=0): the taken-address kind reuses a few addresses. Loopback only; bounded (default 90 attempts per kind).

Usage: python3 bench/login_timing.py [--per-kind 90] [--palisade PATH]
Build first: cargo build --release -p palisade-cli
"""
import argparse
import http.client
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

PASSWORD = "correct-horse-battery-staple-42"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-kind", type=int, default=90)
    ap.add_argument("--palisade", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "palisade"))
    args = ap.parse_args()
    pal = args.palisade
    if not os.access(pal, os.X_OK):
        sys.exit(f"{pal}: not built (cargo build --release -p palisade-cli)")

    n_accounts = (args.per_kind + 2) // 3
    data = tempfile.mkdtemp(prefix="palisade-timing-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALISADE_")}
    env.update(PALISADE_FLOW_LIMIT_PER_IP="0", PALISADE_FLOW_LIMIT_PER_ADDRESS="0")

    def cli(*a, stdin=None):
        subprocess.run([pal, "--data-dir", data, *a], input=stdin, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    print(f"creating {2 * n_accounts} accounts in {data} ...", file=sys.stderr)
    for i in range(n_accounts):
        cli("user", "create", f"active{i}", "--email", f"a{i}@example.com",
            "--password-stdin", stdin=(PASSWORD + "\n").encode())
        cli("user", "create", f"inactive{i}", "--email", f"i{i}@example.com",
            "--password-stdin", stdin=(PASSWORD + "\n").encode())
        cli("user", "deactivate", f"inactive{i}")

    server = subprocess.Popen(
        [pal, "--data-dir", data, "serve", "--listen", "127.0.0.1:0", "--insecure-http",
         "--trusted-proxy", "127.0.0.1/32"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        line = server.stdout.readline().strip()
        url = urllib.parse.urlparse(line.removeprefix("listening on "))
        host, port = url.hostname, url.port

        # One anonymous CSRF cookie and its form token serve every attempt.
        conn = http.client.HTTPConnection(host, port)
        conn.request("GET", "/accounts/login/", headers={"Host": f"{host}:{port}"})
        resp = conn.getresponse()
        page = resp.read().decode()
        cookie = next(v.split(";")[0] for k, v in resp.getheaders()
                      if k.lower() == "set-cookie" and "palisade_csrf" in v)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

        def measure(path, attempts, kinds):
            """POSTs each (kind, fields) in order; response times in ms by kind."""
            times = {k: [] for k in kinds}
            statuses = {}
            for n, (kind, fields) in enumerate(attempts):
                body = urllib.parse.urlencode({**fields, "csrf_token": token})
                headers = {"Host": f"{host}:{port}", "Cookie": cookie,
                           "Content-Type": "application/x-www-form-urlencoded",
                           # A distinct client address per request (see the module doc).
                           "X-Forwarded-For": f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"}
                start = time.perf_counter()
                conn.request("POST", path, body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                times[kind].append((time.perf_counter() - start) * 1000)
                statuses[(kind, r.status)] = statuses.get((kind, r.status), 0) + 1
            return times, statuses

        attempts = []
        for i in range(args.per_kind):
            acct = i % n_accounts
            attempts += [("existing", {"username": f"active{acct}", "password": "wrong-" + PASSWORD}),
                         ("unknown", {"username": f"nobody{i}-{random.randrange(1 << 30)}",
                                      "password": PASSWORD}),
                         ("inactive", {"username": f"inactive{acct}", "password": PASSWORD}),
                         ("inactive-wrong", {"username": f"inactive{acct}",
                                             "password": "wrong-" + PASSWORD})]
        random.shuffle(attempts)
        login = measure("/accounts/login/", attempts,
                        ("existing", "unknown", "inactive", "inactive-wrong"))

        attempts = []
        for i in range(args.per_kind):
            acct = i % n_accounts
            tag = f"{i}x{random.randrange(1 << 30)}"
            form = lambda user, email: {"username": user, "email": email,
                                        "password1": PASSWORD, "password2": PASSWORD}
            attempts += [("new", form(f"new{tag}", f"new{tag}@example.com")),
                         ("taken-address", form(f"other{tag}", f"a{acct}@example.com")),
                         ("taken-name", form(f"active{acct}", f"fresh{tag}@example.com"))]
        random.shuffle(attempts)
        register = measure("/accounts/register/", attempts,
                           ("new", "taken-address", "taken-name"))
    finally:
        server.terminate()
        server.wait(timeout=30)

    def iqr(xs):
        q = statistics.quantiles(xs, n=4)
        return q[2] - q[0]

    def report(title, result, base_kind):
        times, statuses = result
        print(f"{title}, {args.per_kind} attempts per kind, interleaved at random")
        print(f"{'kind':<16}{'median ms':>10}{'IQR ms':>9}  statuses")
        for kind, xs in times.items():
            st = ", ".join(f"{s}x{c}" for (k, s), c in sorted(statuses.items()) if k == kind)
            print(f"{kind:<16}{statistics.median(xs):>10.2f}{iqr(xs):>9.2f}  {st}")
        base = times[base_kind]
        for kind, xs in times.items():
            if kind == base_kind:
                continue
            diff = statistics.median(xs) - statistics.median(base)
            spread = max(iqr(xs), iqr(base))
            print(f"{base_kind} vs {kind:<15} median difference {diff:+.2f} ms = "
                  f"{diff / spread:+.2f} x the spread (IQR {spread:.2f} ms)")

    report("login response times", login, "existing")
    print()
    report("registration response times", register, "new")


if __name__ == "__main__":
    main()
