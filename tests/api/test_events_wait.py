"""
test_events_wait.py — long-poll on the event stream: GET /api/v1/events?after=SEQ&wait=N
(kernel/api_platform.c; parking in kernel/http.c). A waiting request answers when an event
it may see commits, or empty when its wait is over; the number of waiting requests is
bounded; a stopping server answers the waiting ones.
"""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import eq, error, ok, status  # noqa: E402

EVENTS = "/api/v1/events"
TEAM = "core.team"


def last_seq(srv, token=None):
    after = 0
    while True:
        r = status(srv.get("%s?after=%d&limit=1000" % (EVENTS, after), token=token), 200)
        if r.json["next"] == after:
            return after
        after = r.json["next"]


def parked(srv):
    """crm_http_requests_parked from /metrics: the long-polls the server holds."""
    for line in status(srv.get("/metrics"), 200).body.splitlines():
        if line.startswith("crm_http_requests_parked "):
            return int(line.split()[1])
    raise AssertionError("no crm_http_requests_parked in /metrics")


def until_parked(srv, n):
    """Wait (a bounded loop, not a timing assertion) until `n` requests are parked."""
    for _ in range(200):
        if parked(srv) >= n:
            return
        time.sleep(0.05)
    raise AssertionError("%d requests never parked (parked: %d)" % (n, parked(srv)))


class Waiter(threading.Thread):
    """A GET /events?wait=... on its own connection."""

    def __init__(self, srv, path, token=None):
        super().__init__(daemon=True)
        self.srv, self.path, self.token, self.response, self.exc = srv, path, token, None, None

    def run(self):
        try:
            self.response = self.srv.get(self.path, token=self.token, timeout=60)
        except Exception as e:  # noqa: BLE001 — reported by the test
            self.exc = e

    def result(self, within):
        self.join(within)
        ok(not self.is_alive(), "the waiting request answered within %d s" % within)
        ok(self.exc is None, "no client error: %r" % (self.exc,))
        return self.response


def test_waiting_request_gets_the_event_committed_meanwhile(srv):
    after = last_seq(srv)
    w = Waiter(srv, "%s?after=%d&wait=30" % (EVENTS, after))
    w.start()
    until_parked(srv, 1)
    rec = status(srv.post("/api/v1/records/%s" % TEAM, {"name": "long-poll"}), 201).json
    # Well before its 30 s: woken by the commit, not by its deadline.
    r = status(w.result(20), 200)
    topics = [(e["topic"], e.get("id")) for e in r.json["data"]]
    ok((TEAM + ".created", rec["id"]) in topics, "the created event: %r" % topics)
    eq(r.json["next"], r.json["data"][-1]["seq"], "next is the last seq")


def test_wait_over_answers_empty(srv):
    after = last_seq(srv)
    r = status(srv.get("%s?after=%d&wait=1" % (EVENTS, after)), 200)
    eq(r.json, {"data": [], "next": after}, "empty answer after the wait")
    # With events already there, no waiting at all.
    status(srv.post("/api/v1/records/%s" % TEAM, {"name": "there"}), 201)
    r = status(srv.get("%s?after=%d&wait=30" % (EVENTS, after), timeout=10), 200)
    ok(r.json["data"], "answered at once with the event")


def test_bad_wait_is_400(srv):
    for bad in ("-1", "31", "x", "1.5", ""):
        error(srv.get("%s?wait=%s" % (EVENTS, bad)), 400, field="wait", what="wait=%r" % bad)
    status(srv.get("%s?wait=0" % EVENTS), 200, "wait=0 is today's poll")


def test_waiting_caller_sees_only_what_it_may(srv):
    """A user without read access to core.team waits through the admin's create: the event
    is not theirs, so they get the empty answer at the end of their wait."""
    _, tok = srv.user("watcher", password="watcher-password-1")
    after = last_seq(srv)
    w = Waiter(srv, "%s?after=%d&wait=2" % (EVENTS, after), token=tok)
    w.start()
    until_parked(srv, 1)
    status(srv.post("/api/v1/records/%s" % TEAM, {"name": "not yours"}), 201)
    r = status(w.result(20), 200)
    eq(r.json["data"], [], "nothing visible")
    ok(r.json["next"] >= after, "next: %r" % r.json)
    # Logged out while waiting: the woken request is authenticated again.
    tok2 = srv.login("watcher", "watcher-password-1")
    w = Waiter(srv, "%s?after=%d&wait=5" % (EVENTS, last_seq(srv)), token=tok2)
    w.start()
    until_parked(srv, 1)
    status(srv.post("/api/v1/auth/logout", token=tok2), 204)
    status(srv.post("/api/v1/records/%s" % TEAM, {"name": "after logout"}), 201)
    r = w.result(20)
    ok(r.status in (200, 401), "answered: %r" % r)
    if r.status == 200:
        eq(r.json["data"], [], "nothing leaked after logout")


def test_waiting_requests_are_bounded():
    # --max-connections 8: at most 2 requests wait at once.
    srv = lib.Server(extra_args=["--max-connections", "8"]).start()
    try:
        srv.admin()
        after = last_seq(srv)
        waiters = [Waiter(srv, "%s?after=%d&wait=20" % (EVENTS, after)) for _ in range(2)]
        for w in waiters:
            w.start()
        until_parked(srv, 2)
        busy = error(srv.get("%s?after=%d&wait=1" % (EVENTS, after)), 503, "busy",
                     what="a third waiting request while two wait")
        # A request that need not wait is answered as usual.
        status(srv.get("%s?after=0" % EVENTS), 200, "no wait, no bound")
        ok(busy.header("Retry-After"), "Retry-After")
        ok("waiting" in busy.json["error"]["message"], "says why: %r" % busy.json)
        # The two waiting ones still get their event.
        status(srv.post("/api/v1/records/%s" % TEAM, {"name": "for both"}), 201)
        for w in waiters:
            r = status(w.result(15), 200)
            ok(r.json["data"], "woken with the event")
    finally:
        srv.close()


def test_stop_answers_waiting_requests():
    srv = lib.Server().start()
    try:
        srv.admin()
        after = last_seq(srv)
        w = Waiter(srv, "%s?after=%d&wait=30" % (EVENTS, after))
        w.start()
        until_parked(srv, 1)
        rc = srv.stop(signal.SIGTERM)
        eq(rc, 0, "clean exit with a request waiting")
        r = w.result(15)
        eq((r.status, r.json["data"]), (200, []), "the waiting request got its (empty) answer")
    finally:
        srv.close()


if __name__ == "__main__":
    for name in ("test_waiting_requests_are_bounded", "test_stop_answers_waiting_requests"):
        globals()[name] = (lambda f: lambda srv: f())(globals()[name])
    lib.run(globals(), "api_events_wait")
