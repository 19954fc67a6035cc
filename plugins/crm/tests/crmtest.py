"""
crmtest.py — a real crm server with the base crm plugin loaded, for the
plugin's API tests (plugins/crm/tests/test_*.py). Built on tests/api/lib.py.

    srv = crmtest.server(settings="forms.contact.secret = s3cret")
    srv.post(crmtest.X + "/forms/contact", {...}, token="")

The plugin is loaded from $BUILD/plugins/crm.so with plugins/crm as its
source (so its scripts/ rules load); the site's own rules directory is an
empty one, so only the plugin's rules run.
"""
import http.client
import os
import socket
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "api"))
import lib  # noqa: E402

X = "/api/v1/x/crm"
R = "/api/v1/records"
PLUGIN_DIR = os.path.join(lib.ROOT, lib.BUILD, "plugins") if not os.path.isabs(lib.BUILD) \
    else os.path.join(lib.BUILD, "plugins")

STAGES = "pipeline.stages = explore:10,proposal:30,negotiation:60,won:100,lost:0"


def server(settings="", scripts=None, env=None):
    """Start a server with [crm] loaded and `settings` (plugins.conf lines) in its section;
    `env` e.g. {"CRM_CLOCK": "1893488400"} freezes its clock (restart to move it)."""
    srv = lib.Server(env=env)
    conf = os.path.join(srv.dir, "plugins.conf")
    site_scripts = scripts or os.path.join(srv.dir, "scripts")
    os.makedirs(site_scripts, exist_ok=True)
    with open(conf, "w") as f:
        f.write("[crm]\nsource = %s\n%s\n%s\n" % (os.path.join(ROOT, "plugins", "crm"), STAGES,
                                                 settings))
    srv.extra_args = ["--conf", conf, "--plugin-dir", PLUGIN_DIR, "--scripts", site_scripts]
    srv.start()
    srv.admin()
    return srv


def role_id(srv, name):
    r = lib.status(srv.get(R + "/core.role?name=" + name.replace(" ", "%20")), 200)
    lib.ok(r.json["data"], "role %r exists" % name)
    return r.json["data"][0]["id"]


def user_with_role(srv, username, role, team=None):
    """Create a user with a default role (and team id); return (id, token)."""
    uid, _ = srv.user(username)
    lib.status(srv.post("/api/v1/users/%d/roles/%d" % (uid, role_id(srv, role))), 204, "role")
    if team:
        lib.status(srv.post("/api/v1/teams/%d/members/%d" % (team, uid)), 204, "team")
    return uid, srv.login(username, "user-password-1")


def create(srv, type_, fields, token=None):
    return lib.status(srv.post(R + "/" + type_, fields, token=token), 201, "create " + type_).json


def count(srv, type_, query=""):
    r = lib.status(srv.get("%s/%s?count=1&limit=1%s" % (R, type_, query)), 200, "count " + type_)
    return r.json["count"]


def restart(srv, clock=None):
    """Stop the server and start it again on the same data, its clock at `clock` if given:
    the scheduler's first tick then fires what fell due in between."""
    srv.stop()
    if clock is not None:
        srv.env["CRM_CLOCK"] = str(clock)
    srv.start()
    srv.admin()


def post_form(srv, path, fields, headers=None, source=None, content_type=None):
    """POST an HTML form (application/x-www-form-urlencoded, UTF-8) without a login, from
    the loopback address `source` (any of 127.0.0.0/8) when given. Returns a lib.Response."""
    body = fields if isinstance(fields, (bytes, str)) else urllib.parse.urlencode(fields)
    h = {"Content-Type": content_type or "application/x-www-form-urlencoded"}
    h.update(headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request("POST", path, body=body.encode() if isinstance(body, str) else body,
                     headers=h)
        r = conn.getresponse()
        return lib.Response(r.status, r.getheaders(), r.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def events(srv, topic):
    """The events of `topic` in the server's event stream."""
    data = lib.status(srv.get("/api/v1/events?after=0&limit=1000"), 200).json["data"]
    return [e for e in data if e.get("topic") == topic]


class SmtpSink:
    """An SMTP server on 127.0.0.1 keeping each message as (from, [rcpt], data). A
    recipient in `refuse` is answered 550 at RCPT TO (the message is then not taken)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.mails = []
        self.refuse = set()
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b"220 sink ESMTP\r\n")
        sender, rcpts = None, []
        try:
            for line in f:
                cmd = line.strip().upper()
                if cmd.startswith(b"EHLO") or cmd.startswith(b"HELO"):
                    conn.sendall(b"250 sink\r\n")
                elif cmd.startswith(b"MAIL FROM:"):
                    sender, rcpts = line.strip()[10:].decode(), []
                    conn.sendall(b"250 ok\r\n")
                elif cmd.startswith(b"RCPT TO:"):
                    rcpt = line.strip()[8:].decode()
                    if rcpt.strip("<>") in self.refuse:
                        conn.sendall(b"550 5.1.1 mailbox unavailable\r\n")
                    else:
                        rcpts.append(rcpt)
                        conn.sendall(b"250 ok\r\n")
                elif cmd == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    data = []
                    for dl in f:
                        if dl == b".\r\n":
                            break
                        data.append(dl[1:] if dl.startswith(b"..") else dl)  # un-stuff
                    self.mails.append((sender, rcpts, b"".join(data)))
                    conn.sendall(b"250 queued\r\n")
                elif cmd == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    break
                else:  # RSET, NOOP, ...
                    conn.sendall(b"250 ok\r\n")
        finally:
            conn.close()

    def wait(self, n, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.mails) < n:
            time.sleep(0.1)
        return self.mails


def wait_for(fn, timeout=15):
    """Poll fn() until it returns something true (async delivery, schedules); its last value."""
    deadline = time.time() + timeout
    v = fn()
    while not v and time.time() < deadline:
        time.sleep(0.1)
        v = fn()
    return v
