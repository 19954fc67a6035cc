"""
test_platform.py — the platform endpoints against a real server: webhooks
(signed POSTs to a receiver on loopback, commit order, retry after failure,
admin only, URL checks), the event stream (paging, per-user scope and hidden
fields), dead letters, and openapi.json generated from the live schema.

Records are core.team records (the one type every fresh data directory has
that a test may freely create), with custom fields added through the API.
"""
import hashlib
import hmac
import http.server
import json
import re
import threading
import time

import lib
from lib import eq, error, ok, status

TEAM = "core.team"


class Receiver:
    """An HTTP receiver on 127.0.0.1:0: records POSTs, answers 500 to the first
    `fail_first` of them (or to all while `failing`), 200 otherwise."""

    def __init__(self, fail_first=0):
        self.requests = []
        self.lock = threading.Lock()
        self.fail_first = fail_first
        self.failing = False
        rx = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with rx.lock:
                    fail = rx.failing or rx.fail_first > 0
                    if rx.fail_first > 0:
                        rx.fail_first -= 1
                    rx.requests.append({
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                        "status": 500 if fail else 200,
                    })
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "2")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"ok")
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def got(self, pred=lambda r: True):
        with self.lock:
            return [r for r in self.requests if pred(r)]

    def wait(self, n, pred=lambda r: True, timeout=12):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.got(pred)) >= n:
                return self.got(pred)
            time.sleep(0.05)
        raise lib.Failure("receiver: %d requests after %ds, expected %d: %r" %
                          (len(self.got(pred)), timeout, n,
                           [(r["path"], r["status"]) for r in self.got()]))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def signature(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def create_team(srv, name, token=None, **fields):
    body = dict(fields, name=name)
    r = status(srv.post("/api/v1/records/" + TEAM, body, token=token), 201, "create " + name)
    return r.json


def add_field(srv, spec):
    return status(srv.post("/api/v1/types/%s/fields" % TEAM, spec), 201, "add field")


def restricted_user(srv, username, hidden_fields=()):
    """A user whose role grants core.team at "own" scope, with some fields hidden."""
    uid, token = srv.user(username)
    role = status(srv.post("/api/v1/records/core.role", {"name": "own-" + username}), 201).json
    grants = {"grants": {TEAM: {"read": "own", "create": "own", "update": "own"}}}
    if hidden_fields:
        grants["fields"] = {TEAM: {f: "hidden" for f in hidden_fields}}
    status(srv.request("PUT", "/api/v1/roles/%d/grants" % role["id"], body=grants), 200, "grants")
    r = srv.post("/api/v1/users/%d/roles/%d" % (uid, role["id"]))
    ok(r.status in (200, 201, 204), "give role: %r" % r)
    return uid, token


def all_events(srv, token=None, limit=1000):
    r = status(srv.get("/api/v1/events?after=0&limit=%d" % limit, token=token), 200, "events")
    return r.json["data"]


# ---- webhooks ----

def test_webhook_signed_in_commit_order(srv):
    rx = Receiver()
    try:
        add_field(srv, {"name": "salary", "kind": "int"})
        # hidden from some role: then never in a webhook payload
        restricted_user(srv, "hr_blind", hidden_fields=["salary"])
        secret = "s3cret-for-the-test-0123"
        r = status(srv.post("/api/v1/webhooks", {"url": rx.url(), "topics": [TEAM + ".*"],
                                                 "secret": secret}), 201, "create webhook")
        ok("secret" not in r.json, "a given secret is not echoed")
        eq(r.json["topics"], [TEAM + ".*"], "topics")
        ok(isinstance(r.json["id"], int) and r.json["created_at"], "id and created_at")

        team = create_team(srv, "Red", salary=1000)
        for name in ("Green", "Blue"):
            status(srv.patch("/api/v1/records/%s/%d" % (TEAM, team["id"]), {"name": name}), 200)
        reqs = rx.wait(3)
        time.sleep(0.3)
        eq(len(rx.got()), 3, "exactly three deliveries")
        topics, seqs, names = [], [], []
        for q in reqs:
            h = q["headers"]
            eq(q["path"], "/hook", "path")
            eq(h.get("content-type"), "application/json", "content type")
            eq(h.get("x-crm-signature"), signature(secret, q["body"]), "signature")
            ok(h.get("user-agent", "").startswith("crm/"), "user agent %r" % h.get("user-agent"))
            body = json.loads(q["body"])
            eq(h.get("x-crm-event"), body["topic"], "X-CRM-Event")
            eq(h.get("x-crm-delivery"), str(body["seq"]), "X-CRM-Delivery")
            eq(body["type"], TEAM, "type")
            eq(body["id"], team["id"], "id")
            ok(body["at"], "at")
            ok("salary" not in body["record"], "hidden-for-a-role field in webhook record")
            ok(b"salary" not in q["body"], "hidden field name anywhere in the payload")
            topics.append(body["topic"])
            seqs.append(body["seq"])
            names.append(body["record"]["name"])
        eq(topics, [TEAM + ".created", TEAM + ".updated", TEAM + ".updated"], "commit order")
        eq(names, ["Red", "Green", "Blue"], "record versions in order")
        ok(seqs == sorted(seqs) and len(set(seqs)) == 3, "seqs increase: %r" % seqs)
        body = json.loads(reqs[2]["body"])
        eq(body["old"]["name"], "Green", "old values")
        eq(body["changed"], ["name"], "changed")

        d = status(srv.get("/api/v1/webhooks/%d/deliveries" % r.json["id"]), 200).json["data"]
        eq(len(d), 3, "three attempts recorded")
        ok(all(x["status"] == 200 and x["ok"] for x in d), "all succeeded: %r" % d)
    finally:
        rx.close()


def test_webhook_retry_after_failure(srv):
    rx = Receiver(fail_first=1)
    try:
        r = status(srv.post("/api/v1/webhooks", {"url": rx.url("/flaky"), "topics": ["*"]}), 201)
        secret = r.json["secret"]
        eq(len(secret), 64, "generated secret: 32 bytes hex")
        int(secret, 16)
        team = create_team(srv, "Retry")
        reqs = rx.wait(2)  # the 500, then the retry after the 1 s backoff
        eq([q["status"] for q in reqs[:2]], [500, 200], "fail then succeed")
        eq(reqs[0]["body"], reqs[1]["body"], "the same event again")
        eq(reqs[1]["headers"].get("x-crm-signature"), signature(secret, reqs[1]["body"]),
           "signature with the generated secret")
        body = json.loads(reqs[1]["body"])
        eq((body["topic"], body["id"]), (TEAM + ".created", team["id"]), "the event")
        # the attempt is recorded after the receiver answered it: poll for it
        deadline = time.time() + 10
        while True:
            d = status(srv.get("/api/v1/webhooks/%d/deliveries" % r.json["id"]), 200).json["data"]
            if len(d) >= 2 or time.time() > deadline:
                break
            time.sleep(0.05)
        eq([(x["attempt"], x["status"]) for x in reversed(d)], [(1, 500), (2, 200)],
           "attempts (newest first)")
        eq(d[1]["error"], "HTTP 500", "error of the failed attempt")
        # a later event is delivered once
        create_team(srv, "After")
        rx.wait(3)
        time.sleep(0.3)
        eq(len(rx.got()), 3, "no duplicate after recovery")
    finally:
        rx.close()


def test_webhook_list_and_delete(srv):
    rx = Receiver()
    try:
        a = status(srv.post("/api/v1/webhooks", {"url": rx.url("/a"), "topics": ["*"]}), 201).json
        b = status(srv.post("/api/v1/webhooks", {"url": rx.url("/b"), "topics": [TEAM + ".created"],
                                                 "secret": "another-secret-0123"}), 201).json
        r = status(srv.get("/api/v1/webhooks"), 200)
        eq([h["id"] for h in r.json["data"]], [a["id"], b["id"]], "listed")
        ok("secret" not in r.body and a["secret"] not in r.body, "no secrets listed")
        r = srv.delete("/api/v1/webhooks/%d" % a["id"])
        eq(r.status, 204, "delete")
        error(srv.delete("/api/v1/webhooks/%d" % a["id"]), 404, "not_found")
        error(srv.get("/api/v1/webhooks/%d/deliveries" % a["id"]), 404)
        error(srv.delete("/api/v1/webhooks/abc"), 400, field="id")
        eq([h["id"] for h in srv.get("/api/v1/webhooks").json["data"]], [b["id"]], "after delete")
        create_team(srv, "Only B")
        rx.wait(1)
        time.sleep(0.5)
        eq([q["path"] for q in rx.got()], ["/b"], "the deleted webhook gets nothing")
    finally:
        rx.close()


def test_webhooks_admin_only(srv):
    _, token = srv.user("plain")
    for method, path in (("GET", "/api/v1/webhooks"), ("POST", "/api/v1/webhooks"),
                         ("DELETE", "/api/v1/webhooks/1"), ("GET", "/api/v1/webhooks/1/deliveries"),
                         ("GET", "/api/v1/dead-letters"), ("POST", "/api/v1/dead-letters/1/retry")):
        body = {"url": "http://127.0.0.1:9/x", "topics": ["*"]} if method == "POST" else None
        error(srv.request(method, path, body=body, token=token), 403, what="user %s %s" % (method, path))
        error(srv.request(method, path, body=body, token=""), 401, what="anonymous %s %s" % (method, path))
    eq(srv.get("/api/v1/webhooks").json["data"], [], "nothing was created")


def test_webhook_bad_input(srv):
    bad_urls = ["ftp://example.com/x", "javascript:alert(1)", "", "example.com/hook", "http://",
                "http:///x", "file:///etc/passwd", "http://user:pw@example.com/", 42, None,
                "http://exa mple.com/", "http://example.com/" + "a" * 3000]
    for url in bad_urls:
        body = {"topics": ["*"]}
        if url is not None:
            body["url"] = url
        error(srv.post("/api/v1/webhooks", body), 400, field="url", what="url %r" % (url,))
    for topics in ([], "*", ["a..b"], ["crm.*.x"], [1], None, ["x"] * 33):
        body = {"url": "http://127.0.0.1:9/x"}
        if topics is not None:
            body["topics"] = topics
        error(srv.post("/api/v1/webhooks", body), 400, field="topics", what="topics %r" % (topics,))
    error(srv.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/", "topics": ["*"],
                                        "secret": "short"}), 400, field="secret")
    error(srv.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/", "topics": ["*"],
                                        "secret": 12345678901234567}), 400, field="secret")
    error(srv.post("/api/v1/webhooks", raw="[1,2]", headers={"Content-Type": "application/json"}),
          400)
    eq(srv.get("/api/v1/webhooks").json["data"], [], "nothing was created")


# ---- events ----

def test_events_paging(srv):
    ids = [create_team(srv, "T%d" % i)["id"] for i in range(5)]
    everything = all_events(srv)
    mine = [e for e in everything if e["type"] == TEAM and e["topic"] == TEAM + ".created"]
    eq([e["id"] for e in mine], ids, "created events in order")
    after, seen, pages = 0, [], 0
    while True:
        r = status(srv.get("/api/v1/events?after=%d&limit=2" % after), 200)
        ok(len(r.json["data"]) <= 2, "limit honoured")
        if not r.json["data"]:
            eq(r.json["next"], after, "next stays when nothing is new")
            break
        seen += r.json["data"]
        eq(r.json["next"], r.json["data"][-1]["seq"], "next is the last seq")
        after = r.json["next"]
        pages += 1
        ok(pages < 100, "paging ends")
    eq([e["seq"] for e in seen], [e["seq"] for e in everything], "paging sees every event once")
    e = mine[0]
    for key in ("seq", "topic", "type", "id", "at", "record"):
        ok(key in e, "event has %s" % key)
    eq(e["record"]["name"], "T0", "record in the event")
    for bad in ("-1", "abc", "1.5", "", "99999999999999999999"):
        error(srv.get("/api/v1/events?after=" + bad), 400, field="after", what="after=%r" % bad)
    for bad in ("0", "1001", "x"):
        error(srv.get("/api/v1/events?limit=" + bad), 400, field="limit", what="limit=%r" % bad)
    error(srv.get("/api/v1/events", token=""), 401)
    r = status(srv.get("/api/v1/events?after=%d" % (everything[-1]["seq"] + 1000)), 200)
    eq(r.json["data"], [], "nothing past the end")


def test_events_scope_and_hidden_fields(srv):
    add_field(srv, {"name": "budget", "kind": "int"})
    add_field(srv, {"name": "note", "kind": "text"})
    _, alice = restricted_user(srv, "alice", hidden_fields=["budget"])
    _, bob = restricted_user(srv, "bob")
    a = create_team(srv, "Alice's", token=alice, note="visible")
    status(srv.patch("/api/v1/records/%s/%d" % (TEAM, a["id"]), {"note": "n2"}, token=alice), 200)
    # the admin sets the field alice may not see, on alice's record
    status(srv.patch("/api/v1/records/%s/%d" % (TEAM, a["id"]), {"budget": 30}), 200)
    b = create_team(srv, "Bob's", token=bob, budget=99)
    admin_rec = create_team(srv, "Admin's", budget=5)

    evs = all_events(srv, token=alice)
    eq({e["id"] for e in evs}, {a["id"]}, "alice sees only her record's events")
    eq([e["topic"] for e in evs], [TEAM + ".created", TEAM + ".updated", TEAM + ".updated"],
       "alice's events")
    text = json.dumps(evs)
    ok("budget" not in text, "hidden field absent from alice's events: " + text[:400])
    eq(evs[0]["record"]["note"], "visible", "readable fields stay")
    eq(evs[1]["changed"], ["note"], "changed without the hidden field")
    eq(evs[2]["changed"], [], "a change of only hidden fields shows no names")
    ok(all(e["type"] is not None for e in evs), "no custom events for non-admins")

    evs = all_events(srv, token=bob)
    eq({e["id"] for e in evs}, {b["id"]}, "bob sees only his record's events")
    eq(evs[0]["record"]["budget"], 99, "bob may read budget")

    evs = all_events(srv)
    ids = {e["id"] for e in evs if e["type"] == TEAM}
    ok({a["id"], b["id"], admin_rec["id"]} <= ids, "admin sees everything")
    ok(any(e["record"].get("budget") == 30 for e in evs if e["id"] == a["id"]), "admin unredacted")


# ---- dead letters ----

def test_dead_letters(srv):
    r = status(srv.get("/api/v1/dead-letters"), 200)
    eq(r.json["data"], [], "none yet")
    error(srv.post("/api/v1/dead-letters/12345/retry"), 404)
    error(srv.post("/api/v1/dead-letters/x/retry"), 400, field="id")


# ---- openapi ----

def check_openapi_structure(doc):
    """What a validator would reject first: dangling $refs, path templates
    without their parameters, duplicate operationIds, responses without a
    description."""
    def walk(v):
        if isinstance(v, dict):
            r = v.get("$ref")
            if isinstance(r, str):
                node = doc
                for part in r[2:].split("/"):
                    ok(isinstance(node, dict) and part in node, "dangling $ref " + r)
                    node = node[part]
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(doc)
    ids = set()
    for path, item in doc["paths"].items():
        ok(path.startswith("/"), "path " + path)
        names = set(re.findall(r"{([^}]+)}", path))
        for method, o in item.items():
            ok(method in ("get", "post", "put", "patch", "delete"), "method " + method)
            given = {p["name"] for p in o.get("parameters", []) if p["in"] == "path"}
            eq(given, names, "path parameters of %s %s" % (method, path))
            ok(o["operationId"] not in ids, "unique operationId " + o["operationId"])
            ids.add(o["operationId"])
            for code, resp in o["responses"].items():
                ok("$ref" in resp or "description" in resp, "response %s of %s" % (code, path))


def test_openapi_live_schema(srv):
    error(srv.get("/api/v1/openapi.json", token=""), 401)
    r = status(srv.get("/api/v1/openapi.json"), 200)
    doc = json.loads(r.body)
    ok(doc["openapi"].startswith("3.0"), "OpenAPI 3.0")
    schemas = doc["components"]["schemas"]
    for t in ("core.team", "core.role", "core.user"):
        ok(t in schemas, "schema for " + t)
        ok("/records/%s/{id}" % t in doc["paths"], "paths for " + t)
    for p in ("/auth/login", "/types", "/types/{type}/fields", "/search", "/import/{type}",
              "/export/{type}", "/events", "/webhooks", "/webhooks/{id}", "/dead-letters",
              "/healthz", "/metrics", "/openapi.json"):
        ok(p in doc["paths"], "path " + p)
    check_openapi_structure(doc)
    team = schemas[TEAM]["properties"]
    for f in ("id", "created_at", "owner", "version", "name"):
        ok(f in team, "property " + f)
    eq(team["id"].get("readOnly"), True, "id is read-only")
    ok("region" not in team, "no region yet")

    add_field(srv, {"name": "region", "kind": "enum", "values": ["north", "south"]})
    add_field(srv, {"name": "revenue", "kind": "decimal", "scale": 2})
    add_field(srv, {"name": "code", "kind": "text", "max_length": 12, "readonly": True})
    doc = status(srv.get("/api/v1/openapi.json"), 200).json
    team = doc["components"]["schemas"][TEAM]["properties"]
    eq(team.get("region", {}).get("enum"), ["north", "south"], "custom enum field appears at once")
    eq(team["revenue"]["type"], "string", "decimal as string")
    ok(team["revenue"].get("pattern"), "decimal pattern")
    eq(team["code"].get("maxLength"), 12, "maxLength")
    eq(team["code"].get("readOnly"), True, "readOnly")
    ok("%s.patch" % TEAM in doc["components"]["schemas"], "patch schema")

    # a user sees their API: no hidden field, no type they cannot read
    _, token = restricted_user(srv, "carol", hidden_fields=["revenue"])
    doc = status(srv.get("/api/v1/openapi.json", token=token), 200).json
    team = doc["components"]["schemas"][TEAM]["properties"]
    ok("revenue" not in team and "region" in team, "hidden field left out for the user")
    ok("core.user" not in doc["components"]["schemas"], "unreadable type left out")


lib.run(globals(), "api_platform")
