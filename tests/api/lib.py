"""
lib.py — the API tests' harness: a real `crm serve` on a loopback port with
its own data directory, a small HTTP client, and a runner.

A test module defines functions named test_*(srv); tests/api/run.sh runs
every module and ends with one line "api: N passed, N failed".

Python's standard library only (http.client, socket, json): nothing to install.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

BUILD = os.environ.get("BUILD", "build")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CRM = os.path.join(ROOT, BUILD, "crm") if not os.path.isabs(BUILD) else os.path.join(BUILD, "crm")
ADMIN_PASSWORD = "admin-password-1"


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.raw_headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def header(self, name):
        return self.headers.get(name.lower())

    def error_code(self):
        return (self.json or {}).get("error", {}).get("code")

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:300])


class Server:
    """A crm server on 127.0.0.1 with a fresh data directory."""

    def __init__(self, extra_args=(), env=None, init=True):
        self.dir = tempfile.mkdtemp(prefix="crm-api-")
        self.data = os.path.join(self.dir, "var")
        self.env = dict(os.environ, CRM_ADMIN_PASSWORD=ADMIN_PASSWORD, **(env or {}))
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.extra_args = list(extra_args)
        if init:
            self.cli("init")
        self.token = None

    def cli(self, *args, input=None, env=None, check=True):
        e = dict(self.env, **(env or {}))
        p = subprocess.run([CRM, "--data", self.data] + list(args), input=input,
                           capture_output=True, text=True, env=e, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("crm %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
        return p

    def start(self):
        self.log = open(self.log_path, "ab")
        # Hermetic: no plugins and no site rules from the working directory unless a test
        # names them (make test runs some suites from the repository root).
        args = list(self.extra_args)
        if "--conf" not in args:
            empty_conf = os.path.join(self.dir, "empty-plugins.conf")
            open(empty_conf, "a").close()
            args += ["--conf", empty_conf]
        if "--scripts" not in args:
            empty_scripts = os.path.join(self.dir, "no-scripts")
            os.makedirs(empty_scripts, exist_ok=True)
            args += ["--scripts", empty_scripts]
        self.proc = subprocess.Popen(
            [CRM, "--data", self.data, "serve", "--listen", "127.0.0.1:0"] + args,
            stdout=subprocess.PIPE, stderr=self.log, env=self.env)
        deadline = time.time() + 20
        line = b""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                return self
            if not line and self.proc.poll() is not None:
                break
        raise AssertionError("server did not start: %r; log: %s" % (line, self.read_log()[-2000:]))

    def read_log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- HTTP ----

    def request(self, method, path, body=None, headers=None, token=None, raw=None, timeout=30):
        """JSON request. `body` is JSON-encoded; `raw` (bytes/str) is sent as is."""
        h = {}
        tok = token if token is not None else self.token
        if tok:
            h["Authorization"] = "Bearer " + tok
        data = None
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        elif body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read().decode("utf-8", "replace"))
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def raw(self, data, timeout=10):
        """Send raw bytes on a fresh socket; return everything the server sends back."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(data)
            chunks = []
            while True:
                try:
                    c = s.recv(65536)
                except socket.timeout:
                    break
                if not c:
                    break
                chunks.append(c)
            return b"".join(chunks)
        finally:
            s.close()

    def login(self, username="admin", password=ADMIN_PASSWORD):
        r = self.post("/api/v1/auth/login", {"username": username, "password": password}, token="")
        if r.status != 200:
            raise AssertionError("login %s failed: %r" % (username, r))
        return r.json["token"]

    def admin(self):
        self.token = self.login()
        return self.token

    def user(self, username, password="user-password-1", admin=False):
        """Create a user through the CLI and return (id, token)."""
        args = ["user", "add", username] + (["--admin"] if admin else [])
        self.cli(*args, env={"CRM_PASSWORD": password})
        return self.user_id(username), self.login(username, password)

    def user_id(self, username):
        p = self.cli("user", "list", "--json")
        for u in json.loads(p.stdout):
            if u["username"] == username:
                return u["id"]
        raise AssertionError("no user " + username)


# ---- checks ----

class Failure(AssertionError):
    pass


def eq(actual, expected, what=""):
    if actual != expected:
        raise Failure("%s: got %r, expected %r" % (what or "value", actual, expected))


def status(r, expected, what=""):
    if r.status != expected:
        raise Failure("%s: status %d, expected %d: %s" % (what or "response", r.status, expected,
                                                          r.body[:500]))
    return r


def error(r, expected_status, code=None, field=None, what=""):
    """An error response: status, the JSON error shape, and optionally its code and field."""
    status(r, expected_status, what)
    if not r.json or "error" not in r.json or "message" not in r.json["error"]:
        raise Failure("%s: not a JSON error: %s" % (what, r.body[:300]))
    if code is not None:
        eq(r.json["error"].get("code"), code, (what + " error code").strip())
    if field is not None:
        eq(r.json["error"].get("field"), field, (what + " error field").strip())
    return r


def ok(cond, what):
    if not cond:
        raise Failure(what)


# ---- runner ----

def run(module_globals, suite):
    """Run the module's test_* functions in definition order, each on a fresh server
    unless the module defines make_server() returning a shared one."""
    tests = [(n, f) for n, f in module_globals.items() if n.startswith("test_") and callable(f)]
    passed = failed = 0
    shared = module_globals.get("shared_server")
    srv = None
    if shared:
        srv = shared()
    for name, fn in tests:
        s = srv
        try:
            if s is None:
                s = Server().start()
                s.admin()
            fn(s)
            passed += 1
            print("ok %s" % name, flush=True)
        except Exception as e:  # noqa: BLE001 — a test's failure of any kind is reported
            failed += 1
            print("not ok %s" % name, flush=True)
            print("  FAIL %s: %s" % (name, e), flush=True)
            if not isinstance(e, Failure):
                traceback.print_exc()
            if s is not None and srv is None:
                print("  server log tail:\n" + s.read_log()[-1500:], flush=True)
        finally:
            if srv is None and s is not None:
                s.close()
    if srv is not None:
        srv.close()
    print("%s: %d passed, %d failed" % (suite, passed, failed), flush=True)
    sys.exit(1 if failed else 0)


# ---- sessions (added with test_auth.py; append-only) ----

def session_cookie(r):
    """The "name=value" of the session cookie set by response `r`, or None."""
    for k, v in r.raw_headers:
        if k.lower() == "set-cookie" and v.split("=", 1)[0] in ("crm_sid", "__Host-crm_sid"):
            return v.split(";", 1)[0]
    return None


def _login_response(self, username="admin", password=ADMIN_PASSWORD, headers=None):
    """POST /auth/login and return the whole Response (token, cookie, CSRF token)."""
    return self.post("/api/v1/auth/login", {"username": username, "password": password},
                     token="", headers=headers)


Server.login_response = _login_response


# ---- browser login (SECURITY.md S6; append-only) ----

def _browser_login_response(self, username="admin", password=ADMIN_PASSWORD, headers=None):
    """Log in as the web UI does: GET /auth/login-token (a pre-session cookie and its token),
    then POST /auth/login with that cookie and the token in X-Login-Token. Only such a login
    sets the session cookie; a plain login_response() is a script's (bearer token only)."""
    h = dict(headers or {})
    t = self.get("/api/v1/auth/login-token", token="", headers=h)
    if t.status != 200:
        raise AssertionError("login-token: %r" % t)
    cookie = None
    for k, v in t.raw_headers:
        if k.lower() == "set-cookie" and v.split("=", 1)[0] in ("crm_login", "__Host-crm_login"):
            cookie = v.split(";", 1)[0]
    h.update({"Cookie": cookie, t.json["header"]: t.json["login_token"]})
    return self.login_response(username, password, headers=h)


Server.browser_login_response = _browser_login_response
