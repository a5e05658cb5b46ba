#!/usr/bin/env python3
"""Issue 3's speed targets: `palisade serve` against Django 5.2 + gunicorn, side by side in one run.

Both servers run on loopback, one after the other, with the same wrk load:
  1. authenticated page: GET /accounts/profile/ with a session cookie (wrk --latency);
  2. login flood: POST /accounts/login/ with valid credentials and a valid CSRF token;
  3. p99 of the authenticated page while a login flood runs (two wrk processes at once);
  4. ours only (Django has no registration view): p99 of the authenticated page while a
     registration flood runs (POST /accounts/register/ with a new name and address each time,
     so every request hashes a password, creates an account and queues an activation mail);
  5. idle RSS (VmRSS from /proc/PID/status after start and a few requests) and the time from
     start to the first served request (second start: our certificates already exist).
Argon2id at palisade's parameters (m=19456 KiB, t=2, p=1) on both sides; one hash is timed
with argon2-cffi to give the theoretical login ceiling (cores / one hash's time).

Django side (generated under a temporary directory, not committed): a @login_required view
that calls request.user.has_perm('members.view_member') and renders a tiny template; the DB
session backend on SQLite; DEBUG=False; ALLOWED_HOSTS set; an Argon2PasswordHasher subclass
with palisade's parameters; gunicorn with 2 sync workers over plain HTTP (the usual deployment
behind a TLS proxy, which favours Django: no TLS cost on its side). Ours speaks HTTPS.

Usage: python3 bench/server_vs_django.py [--palisade PATH] [--duration 10] [--connections 16]
Needs: wrk, and a venv with Django 5.2, argon2-cffi and gunicorn (default ~/.cache/palisade-venv).
"""
import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse

PASSWORD = "correct-horse-battery-staple-42"
USER = "bench"
# The flood signs in as another account: every login adds a session, and our profile page lists
# the user's sessions, so flooding as USER would grow the measured page.
FLOOD_USER = "flood"
ARGON2 = dict(time_cost=2, memory_cost=19456, parallelism=1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Side:
    """One server under test: how to reach it, and its cookies/tokens once logged in."""

    def __init__(self, name, scheme, port, cafile=None):
        self.name, self.scheme, self.port, self.cafile = name, scheme, port, cafile
        self.origin = f"{scheme}://127.0.0.1:{port}"

    def conn(self):
        if self.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.cafile)
            return http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=30)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, body=None, headers=None):
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, r.headers, data
        finally:
            c.close()


def cookies_from(headers):
    out = {}
    for v in headers.get_all("Set-Cookie") or []:
        k, _, rest = v.partition("=")
        out[k.strip()] = rest.split(";", 1)[0]
    return out


def wait_ready(side, proc, path, timeout=30.0):
    """Polls `path` until it answers; returns seconds since `t0` set by the caller."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{side.name} exited with {proc.returncode}")
        try:
            status, _, _ = side.request("GET", path)
            if status < 500:
                return
        except (OSError, http.client.HTTPException, ssl.SSLError):
            pass
        time.sleep(0.005)
    raise SystemExit(f"{side.name} did not answer within {timeout} s")


def login(side, csrf_cookie, csrf_field, user=USER):
    """GET the login form, POST valid credentials; returns (session Cookie header, login body,
    login-form Cookie header)."""
    status, headers, body = side.request("GET", "/accounts/login/")
    assert status == 200, (side.name, status)
    cookies = cookies_from(headers)
    m = re.search(rb'name="%s"\s+value="([^"]+)"' % csrf_field.encode(), body) or re.search(
        rb'value="([^"]+)"\s+name="%s"' % csrf_field.encode(), body)
    assert m, f"{side.name}: no {csrf_field} in the login form"
    token = m.group(1).decode()
    form_cookie = f"{csrf_cookie}={cookies[csrf_cookie]}"
    form = urllib.parse.urlencode({"username": user, "password": PASSWORD, csrf_field: token})
    status, headers, _ = side.request("POST", "/accounts/login/", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": form_cookie,
        "Origin": side.origin})
    assert status in (302, 303), (side.name, "login", status)
    session = {k: v for k, v in cookies_from(headers).items() if "session" in k}
    assert session, f"{side.name}: no session cookie after login"
    session_cookie = "; ".join(f"{k}={v}" for k, v in session.items())
    status, _, page = side.request("GET", "/accounts/profile/", headers={"Cookie": session_cookie})
    assert status == 200, (side.name, "profile", status)
    return session_cookie, form, form_cookie


def lua_post(path, body, cookie, origin):
    with open(path, "w") as f:
        f.write(textwrap.dedent(f"""\
            wrk.method = "POST"
            wrk.body = "{body}"
            wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
            wrk.headers["Cookie"] = "{cookie}"
            wrk.headers["Origin"] = "{origin}"
            -- A login succeeded only if it redirected (a failed one re-renders the form with 200).
            local threads = {{}}
            function setup(thread) table.insert(threads, thread) end
            function init(args) redirects = 0; others = 0; busy = 0 end
            function response(status, headers, body)
              if status == 302 or status == 303 then redirects = redirects + 1
              else others = others + 1 end
              if status == 503 then busy = busy + 1 end
            end
            function done(summary, latency, requests)
              local r, o, b = 0, 0, 0
              for _, t in ipairs(threads) do
                r = r + t:get("redirects"); o = o + t:get("others"); b = b + t:get("busy")
              end
              io.write(string.format("Login redirects: %d, other statuses: %d (503: %d)\\n", r, o, b))
            end
            """))


def lua_register(path, token, cookie, origin):
    """A wrk script that registers a new account per request (names unique per thread)."""
    with open(path, "w") as f:
        f.write(textwrap.dedent(f"""\
            local threads = {{}}
            local next_id = 0
            function setup(thread)
              thread:set("tid", next_id); next_id = next_id + 1
              table.insert(threads, thread)
            end
            function init(args) n = 0; ok = 0; others = 0; busy = 0 end
            function request()
              n = n + 1
              local name = "reg" .. tid .. "x" .. n
              local body = "username=" .. name .. "&email=" .. name .. "%40example.com"
                .. "&password1={PASSWORD}&password2={PASSWORD}&csrf_token={token}"
              return wrk.format("POST", nil, {{
                ["Content-Type"] = "application/x-www-form-urlencoded",
                ["Cookie"] = "{cookie}", ["Origin"] = "{origin}"}}, body)
            end
            -- Registered only if it answered the "check your email" page (200).
            function response(status, headers, body)
              if status == 200 then ok = ok + 1 else others = others + 1 end
              if status == 503 then busy = busy + 1 end
            end
            function done(summary, latency, requests)
              local r, o, b = 0, 0, 0
              for _, t in ipairs(threads) do
                r = r + t:get("ok"); o = o + t:get("others"); b = b + t:get("busy")
              end
              io.write(string.format("Login redirects: %d, other statuses: %d (503: %d)\\n", r, o, b))
            end
            """))


def register_token(side):
    """The registration form's CSRF token and the cookie it is bound to."""
    status, headers, body = side.request("GET", "/accounts/register/")
    assert status == 200, (side.name, "register form", status)
    m = re.search(rb'name="csrf_token" value="([^"]+)"', body)
    assert m, "no csrf_token in the registration form"
    cookie = "__Host-palisade_csrf=" + cookies_from(headers)["__Host-palisade_csrf"]
    return m.group(1).decode(), cookie


def parse_wrk(out):
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
           "non2xx": 0, "errors": 0, "requests": int(re.search(r"(\d+) requests in", out).group(1))}
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        res["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors:.*", out)
    if m:
        res["errors"] = sum(int(x) for x in re.findall(r"\d+", m.group(0)))
    for pct in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % pct, out, re.M)
        if m:
            res[f"p{pct}_ms"] = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    res["good_rps"] = res["rps"] * (1 - res["non2xx"] / max(res["requests"], 1))
    m = re.search(r"Login redirects: (\d+), other statuses: (\d+) \(503: (\d+)\)", out)
    if m:  # a login counts only when it redirected
        ok, other = int(m.group(1)), int(m.group(2))
        res["non2xx"], res["busy"] = other, int(m.group(3))
        res["good_rps"] = res["rps"] * ok / max(ok + other, 1)
    return res


def wrk(args, url, extra, conns=None):
    conns = conns or args.connections
    cmd = ["wrk", f"-t{min(args.threads, conns)}", f"-c{conns}", f"-d{args.duration}s"] + extra + [url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(p):
    out = p.communicate()[0]
    if p.returncode != 0:
        raise SystemExit(out)
    return out


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            total += int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    return total


def cpu_seconds(pids):
    """utime + stime of the processes (and their threads), in seconds."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def measure_side(args, side, proc_pids, csrf_cookie, csrf_field, tmp, log, page_only=False):
    for _ in range(5):
        side.request("GET", "/accounts/login/")
    r = {"rss_kib": rss_kib(proc_pids())}  # idle: started, a few pages served, no hash yet
    session, _, _ = login(side, csrf_cookie, csrf_field)
    _, form, form_cookie = login(side, csrf_cookie, csrf_field, FLOOD_USER)
    for _ in range(5):
        side.request("GET", "/accounts/profile/", headers={"Cookie": session})
    r["rss_login_kib"] = rss_kib(proc_pids())  # after two logins (Argon2 buffers) + 5 pages
    lua = os.path.join(tmp, f"login-{side.name}.lua")
    lua_post(lua, form, form_cookie, side.origin)
    page = side.origin + "/accounts/profile/"
    login_url = side.origin + "/accounts/login/"

    cpu0 = cpu_seconds(proc_pids())
    out = finish(wrk(args, page, ["--latency", "-H", f"Cookie: {session}"]))
    cpu = cpu_seconds(proc_pids()) - cpu0
    log.write(f"### {side.name}: authenticated page\n{out}\n")
    r["page"] = parse_wrk(out)
    # Server CPU per page: wrk shares the 2 cores, so this removes the load generator's share.
    r["page"]["cpu_ms"] = cpu * 1000 / max(r["page"]["requests"], 1)
    if csrf_field == "csrf_token":
        # Ours: the page that does what Django's measured view does (a permission check,
        # then a small render) is /members/ behind members.view_member. The profile page
        # above lists sessions, groups and permissions: more work than Django's view.
        cpu0 = cpu_seconds(proc_pids())
        out = finish(wrk(args, side.origin + "/members/", ["--latency", "-H", f"Cookie: {session}"]))
        cpu = cpu_seconds(proc_pids()) - cpu0
        log.write(f"### {side.name}: permission-checked page /members/\n{out}\n")
        r["members"] = parse_wrk(out)
        r["members"]["cpu_ms"] = cpu * 1000 / max(r["members"]["requests"], 1)
    if page_only:
        return r
    # Login throughput with fewer connections than our pool admits (2 running + 8 queued), so
    # no request is refused and the load generator does not spin on 503s: the hash-bound rate.
    out = finish(wrk(args, login_url, ["-s", lua], conns=args.login_connections))
    log.write(f"### {side.name}: logins, -c{args.login_connections}\n{out}\n")
    r["login"] = parse_wrk(out)
    # One connection: the time of one login, end to end (mostly one hash).
    out = finish(wrk(args, login_url, ["-s", lua, "--latency"], conns=1))
    log.write(f"### {side.name}: logins, one connection\n{out}\n")
    r["login1"] = parse_wrk(out)
    out = finish(wrk(args, login_url, ["-s", lua]))
    log.write(f"### {side.name}: login flood, -c{args.connections}\n{out}\n")
    r["flood_alone"] = parse_wrk(out)
    flood = wrk(args, login_url, ["-s", lua])
    probe = wrk(args, page, ["--latency", "-H", f"Cookie: {session}"])
    out_p, out_f = finish(probe), finish(flood)
    log.write(f"### {side.name}: page during login flood\n{out_p}\n"
              f"### {side.name}: the flood\n{out_f}\n")
    r["page_flood"], r["flood"] = parse_wrk(out_p), parse_wrk(out_f)
    if csrf_field == "csrf_token":  # ours: Django has no registration view to compare with
        token, cookie = register_token(side)
        lua = os.path.join(tmp, "register.lua")
        lua_register(lua, token, cookie, side.origin)
        flood = wrk(args, side.origin + "/accounts/register/", ["-s", lua])
        probe = wrk(args, page, ["--latency", "-H", f"Cookie: {session}"])
        out_p, out_f = finish(probe), finish(flood)
        log.write(f"### {side.name}: page during registration flood\n{out_p}\n"
                  f"### {side.name}: the registration flood\n{out_f}\n")
        r["page_reg"], r["reg"] = parse_wrk(out_p), parse_wrk(out_f)
    r["rss_after_kib"] = rss_kib(proc_pids())
    return r


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_ours(args, tmp, log, plain_http=False):
    data = os.path.join(tmp, "palisade-data-http" if plain_http else "palisade-data")
    exe = args.palisade
    for user in (USER, FLOOD_USER):
        subprocess.run([exe, "--data-dir", data, "user", "create", user, "--email",
                        f"{user}@example.com", "--password-stdin"], input=PASSWORD + "\n",
                       text=True, check=True, stdout=subprocess.DEVNULL)
    # Django's measured view checks members.view_member; ours checks it on /members/.
    subprocess.run([exe, "--data-dir", data, "perm", "grant", USER, "members.view_member"],
                   check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    if plain_http:  # as Django is measured: behind a TLS-terminating proxy
        side = Side("palisade-http", "http", port)
        serve = [exe, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}", "--insecure-http"]
    else:
        side = Side("palisade", "https", port, os.path.join(data, "tls", "ca.pem"))
        serve = [exe, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}"]
    errlog = open(os.path.join(tmp, "palisade.log"), "w")
    # The registration flood comes from one address: lift the per-IP and per-address limits
    # on the mail flows (an operator behind a NAT would raise them the same way).
    env = dict(os.environ, PALISADE_FLOW_LIMIT_PER_IP="0", PALISADE_FLOW_LIMIT_PER_ADDRESS="0")
    # First start writes the development CA and leaf; it is not the one timed.
    proc = subprocess.Popen(serve, stdout=errlog, stderr=errlog, env=env)
    wait_ready(side, proc, "/accounts/login/")
    stop(proc)
    t0 = time.monotonic()
    proc = subprocess.Popen(serve, stdout=errlog, stderr=errlog, env=env)
    try:
        wait_ready(side, proc, "/accounts/login/")
        start = time.monotonic() - t0
        r = measure_side(args, side, lambda: [proc.pid], "__Host-palisade_csrf", "csrf_token", tmp,
                         log, page_only=plain_http)
        r["start_s"] = start
        return r
    finally:
        stop(proc)


DJANGO_FILES = {
    "manage.py": """\
        import os, sys
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
        from django.core.management import execute_from_command_line
        execute_from_command_line(sys.argv)
        """,
    "benchsite/__init__.py": "",
    "benchsite/settings.py": """\
        from pathlib import Path
        BASE_DIR = Path(__file__).resolve().parent.parent
        SECRET_KEY = "bench-not-secret-" + "x" * 40
        DEBUG = False
        ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
        INSTALLED_APPS = [
            "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
            "members",
        ]
        MIDDLEWARE = [
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ]
        ROOT_URLCONF = "benchsite.urls"
        TEMPLATES = [{
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [BASE_DIR / "templates"], "APP_DIRS": False,
            "OPTIONS": {"context_processors": ["django.template.context_processors.csrf",
                                               "django.contrib.auth.context_processors.auth"]},
        }]
        WSGI_APPLICATION = "benchsite.wsgi.application"
        DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                                 "NAME": BASE_DIR / "db.sqlite3"}}
        SESSION_ENGINE = "django.contrib.sessions.backends.db"
        PASSWORD_HASHERS = ["benchsite.hashers.PalisadeArgon2PasswordHasher"]
        LOGIN_URL = "/accounts/login/"
        LOGIN_REDIRECT_URL = "/accounts/profile/"
        USE_TZ = True
        DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
        """,
    "benchsite/hashers.py": """\
        from django.contrib.auth.hashers import Argon2PasswordHasher
        class PalisadeArgon2PasswordHasher(Argon2PasswordHasher):
            time_cost = 2
            memory_cost = 19456
            parallelism = 1
        """,
    "benchsite/urls.py": """\
        from django.contrib.auth import views as auth_views
        from django.urls import path
        from members.views import profile
        urlpatterns = [
            path("accounts/login/", auth_views.LoginView.as_view()),
            path("accounts/profile/", profile),
        ]
        """,
    "benchsite/wsgi.py": """\
        import os
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
        from django.core.wsgi import get_wsgi_application
        application = get_wsgi_application()
        """,
    "members/__init__.py": "",
    "members/models.py": """\
        from django.db import models
        class Member(models.Model):
            name = models.CharField(max_length=100)
        """,
    "members/views.py": """\
        from django.contrib.auth.decorators import login_required
        from django.shortcuts import render
        @login_required
        def profile(request):
            allowed = request.user.has_perm("members.view_member")
            return render(request, "profile.html", {"allowed": allowed})
        """,
    "templates/profile.html": """\
        <!doctype html><html><head><title>Profile</title></head><body>
        <h1>{{ user.username }}</h1><p>{{ user.email }}</p>
        <p>Members: {% if allowed %}visible{% else %}hidden{% endif %}</p>
        </body></html>
        """,
    "templates/registration/login.html": """\
        <!doctype html><html><head><title>Sign in</title></head><body>
        <form method="post">{% csrf_token %}{{ form.as_p }}<button>Sign in</button></form>
        </body></html>
        """,
}


def run_django(args, tmp, log):
    site = os.path.join(tmp, "django")
    for name, text in DJANGO_FILES.items():
        path = os.path.join(site, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
    py = os.path.join(args.venv, "bin", "python")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="benchsite.settings")
    quiet = dict(cwd=site, env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([py, "manage.py", "makemigrations", "members"], **quiet)
    subprocess.run([py, "manage.py", "migrate"], **quiet)
    subprocess.run([py, "manage.py", "shell", "-c", textwrap.dedent(f"""\
        from django.contrib.auth.models import User, Permission
        for name in ({USER!r}, {FLOOD_USER!r}):
            u = User.objects.create_user(name, name + "@example.com", {PASSWORD!r})
            u.user_permissions.add(Permission.objects.get(codename="view_member"))
        assert u.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$"), u.password
        """)], **quiet)
    port = free_port()
    side = Side("django", "http", port)
    errlog = open(os.path.join(tmp, "gunicorn.log"), "w")
    t0 = time.monotonic()
    proc = subprocess.Popen([os.path.join(args.venv, "bin", "gunicorn"), "-w", "2",
                             "-b", f"127.0.0.1:{port}", "benchsite.wsgi"],
                            cwd=site, env=env, stdout=errlog, stderr=errlog)
    try:
        wait_ready(side, proc, "/accounts/login/")
        start = time.monotonic() - t0
        r = measure_side(args, side, lambda: [proc.pid] + children(proc.pid),
                         "csrftoken", "csrfmiddlewaretoken", tmp, log)
        r["start_s"] = start
        return r
    finally:
        stop(proc)


def hash_time(args):
    """Median wall time of one Argon2id hash at palisade's parameters (argon2-cffi)."""
    py = os.path.join(args.venv, "bin", "python")
    code = textwrap.dedent(f"""\
        import time, statistics
        from argon2 import PasswordHasher
        ph = PasswordHasher(**{ARGON2!r})
        ts = []
        for _ in range(20):
            t = time.perf_counter(); ph.hash({PASSWORD!r}); ts.append(time.perf_counter() - t)
        print(statistics.median(ts))
        """)
    return float(subprocess.run([py, "-c", code], check=True, capture_output=True,
                                text=True).stdout)


def versions(args):
    py = os.path.join(args.venv, "bin", "python")
    v = subprocess.run([py, "-c", "import django, gunicorn, argon2, sys; print(django.get_version(),"
                        " gunicorn.__version__, argon2.__version__, sys.version.split()[0])"],
                       check=True, capture_output=True, text=True).stdout.split()
    w = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    p = subprocess.run([args.palisade, "--version"], capture_output=True, text=True).stdout.strip()
    return {"django": v[0], "gunicorn": v[1], "argon2-cffi": v[2], "python": v[3], "wrk": w,
            "palisade": p}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--palisade", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "palisade"))
    ap.add_argument("--venv", default=os.path.expanduser("~/.cache/palisade-venv"))
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--login-connections", type=int, default=8)
    ap.add_argument("--no-plain-http", action="store_true",
                    help="skip the extra run of ours over plain HTTP (--insecure-http)")
    ap.add_argument("--log", help="write the raw wrk output here")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found (apt-get install -y wrk)")
    cores = os.cpu_count()
    tmp = tempfile.mkdtemp(prefix="palisade-bench-")
    log = open(args.log or os.path.join(tmp, "wrk.log"), "w")
    try:
        vers = versions(args)
        h = hash_time(args)
        ours = run_ours(args, tmp, log)
        theirs = run_django(args, tmp, log)
        plain = None
        if not args.no_plain_http:
            try:
                plain = run_ours(args, tmp, log, plain_http=True)
            except (AssertionError, SystemExit, OSError) as e:
                print(f"# ours over plain HTTP failed: {e!r}", file=sys.stderr)
    finally:
        log.close()
    ceiling = cores / h

    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cores} cores, "
          + ", ".join(f"{k} {v}" for k, v in vers.items()))
    print(f"# wrk -t{args.threads} -c{args.connections} -d{args.duration}s; one Argon2id hash "
          f"(m=19456 KiB, t=2, p=1, argon2-cffi) = {h * 1000:.1f} ms -> ceiling {ceiling:.1f} logins/s")
    print(f"# raw wrk output: {log.name}")
    rows = []

    def row(name, o, t, ratio, target):
        rows.append((name, o, t, ratio, target))

    row("authenticated page, req/s", f"{ours['page']['good_rps']:,.0f}",
        f"{theirs['page']['good_rps']:,.0f}",
        f"{ours['page']['good_rps'] / theirs['page']['good_rps']:.1f}x", ">= 20x")
    if "members" in ours:
        row("permission-checked page (ours /members/), req/s",
            f"{ours['members']['good_rps']:,.0f}", f"{theirs['page']['good_rps']:,.0f}",
            f"{ours['members']['good_rps'] / theirs['page']['good_rps']:.1f}x", ">= 20x")
        row("  server CPU per permission-checked page", f"{ours['members']['cpu_ms']:.3f} ms",
            f"{theirs['page']['cpu_ms']:.3f} ms",
            f"{theirs['page']['cpu_ms'] / ours['members']['cpu_ms']:.1f}x", "")
    row("server CPU per authenticated page", f"{ours['page']['cpu_ms']:.3f} ms",
        f"{theirs['page']['cpu_ms']:.3f} ms",
        f"{theirs['page']['cpu_ms'] / ours['page']['cpu_ms']:.1f}x", "(wrk shares the cores)")
    if plain:
        row("  ours over plain HTTP (--insecure-http)", f"{plain['page']['good_rps']:,.0f}",
            f"{theirs['page']['good_rps']:,.0f}",
            f"{plain['page']['good_rps'] / theirs['page']['good_rps']:.1f}x", "")
    row("authenticated page p99, idle", f"{ours['page']['p99_ms']:.2f} ms",
        f"{theirs['page']['p99_ms']:.2f} ms", "", "")
    row("one login, one connection, median", f"{ours['login1']['p50_ms']:.1f} ms",
        f"{theirs['login1']['p50_ms']:.1f} ms", "", f"one hash {h * 1000:.1f} ms")
    for key, label in (("login", f"logins/s, -c{args.login_connections} (redirects only)"),
                       ("flood_alone", f"logins/s, flood -c{args.connections}"),
                       ("flood", "logins/s, flood during page load")):
        row(label, f"{ours[key]['good_rps']:.1f} ({ours[key]['good_rps'] / ceiling:.0%} of max)",
            f"{theirs[key]['good_rps']:.1f} ({theirs[key]['good_rps'] / ceiling:.0%} of max)",
            f"{ours[key]['good_rps'] / max(theirs[key]['good_rps'], 1e-9):.2f}x",
            f"vs {ceiling:.1f}/s max")
        row(f"  not redirected (of which 503), socket errors ({key})",
            f"{ours[key]['non2xx']} ({ours[key]['busy']}), {ours[key]['errors']}",
            f"{theirs[key]['non2xx']} ({theirs[key]['busy']}), {theirs[key]['errors']}", "", "")
    row("page p99 during login flood", f"{ours['page_flood']['p99_ms']:.2f} ms",
        f"{theirs['page_flood']['p99_ms']:.2f} ms", "", "<= 50 ms (ours)")
    row("page req/s during login flood", f"{ours['page_flood']['good_rps']:,.0f}",
        f"{theirs['page_flood']['good_rps']:,.0f}",
        f"{ours['page_flood']['good_rps'] / theirs['page_flood']['good_rps']:.1f}x", "")
    row("  non-2xx/3xx (page during flood)", str(ours["page_flood"]["non2xx"]),
        str(theirs["page_flood"]["non2xx"]), "", "")
    if "reg" in ours:
        row("registrations/s, flood during page load",
            f"{ours['reg']['good_rps']:.1f} ({ours['reg']['good_rps'] / ceiling:.0%} of max)",
            "n/a", "", f"vs {ceiling:.1f}/s max")
        row("  not registered (of which 503), socket errors (registration flood)",
            f"{ours['reg']['non2xx']} ({ours['reg']['busy']}), {ours['reg']['errors']}", "n/a", "",
            "")
        row("page p99 during registration flood", f"{ours['page_reg']['p99_ms']:.2f} ms", "n/a",
            "", "<= 50 ms (ours)")
        row("page req/s during registration flood", f"{ours['page_reg']['good_rps']:,.0f}", "n/a",
            "", "")
    row("idle RSS, 5 login forms served (Django: master + 2 workers)", f"{ours['rss_kib'] / 1024:.1f} MiB",
        f"{theirs['rss_kib'] / 1024:.1f} MiB", "", "<= 40 MiB (ours)")
    row("RSS after 2 logins + 5 profile pages", f"{ours['rss_login_kib'] / 1024:.1f} MiB",
        f"{theirs['rss_login_kib'] / 1024:.1f} MiB", "", "")
    row("RSS after the floods", f"{ours['rss_after_kib'] / 1024:.1f} MiB",
        f"{theirs['rss_after_kib'] / 1024:.1f} MiB", "", "")
    row("start to first served request", f"{ours['start_s']:.3f} s", f"{theirs['start_s']:.3f} s",
        "", "<= 1 s (ours)")
    w = [max(len(str(r[i])) for r in rows + [("metric", "palisade", "django", "ratio", "target")])
         for i in range(5)]
    for r in [("metric", "palisade", "django", "ratio", "target")] + rows:
        print(" | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)))
    shutil.rmtree(os.path.join(tmp, "django"), ignore_errors=True)
    shutil.rmtree(os.path.join(tmp, "palisade-data"), ignore_errors=True)
    shutil.rmtree(os.path.join(tmp, "palisade-data-http"), ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
