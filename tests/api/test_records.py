"""
API tests of types, custom fields, records, lists, history and search
(kernel/api_records.c), as an admin. Permissions are in test_authz.py.

Without plugins the kernel has only core.user, core.role and core.team; the
tests add custom fields to core.team at run time (which is itself under test)
and use its records as the entity.
"""
import json
import os
import sqlite3
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import lib  # noqa: E402
from lib import eq, error, ok, status  # noqa: E402

T = "/api/v1/records/core.team"

FIELDS = [
    {"name": "notes", "kind": "text", "searchable": True, "max_length": 200},
    {"name": "email", "kind": "email", "unique": True, "searchable": True},
    {"name": "amount", "kind": "decimal", "scale": 2},
    {"name": "size", "kind": "int", "indexed": True},
    {"name": "stage", "kind": "enum", "values": ["new", "won", "lost"]},
    {"name": "site", "kind": "url"},
    {"name": "active", "kind": "bool"},
]


def shared_server():
    srv = lib.Server().start()
    srv.admin()
    for spec in FIELDS:
        status(srv.post("/api/v1/types/core.team/fields", spec), 201, "add field " + spec["name"])
    return srv


_seq = [0]


def uniq(prefix="t"):
    _seq[0] += 1
    return "%s%dx%d" % (prefix, os.getpid(), _seq[0])  # one search word


def create(srv, **fields):
    fields.setdefault("name", uniq("team"))
    return status(srv.post(T, fields), 201, "create").json


def count(srv, **filters):
    q = urllib.parse.urlencode(dict(filters, count=1, limit=1))
    return status(srv.get(T + "?" + q), 200, "count").json["count"]


def db(srv):
    return sqlite3.connect(os.path.join(srv.data, "crm.db"), timeout=10)


# ---- types and fields ----

def test_types(srv):
    r = status(srv.get("/api/v1/types"), 200)
    names = [t["name"] for t in r.json["data"]]
    for n in ("core.user", "core.role", "core.team"):
        ok(n in names, "GET /types lists " + n)
    r = status(srv.get("/api/v1/types/core.team"), 200)
    fields = {f["name"]: f for f in r.json["fields"]}
    for spec in FIELDS:
        ok(spec["name"] in fields, "custom field %s in GET /types/core.team" % spec["name"])
        eq(fields[spec["name"]]["owner"], "custom", "owner of a field added at run time")
    eq(r.json["searchable"], True, "a searchable custom field makes the type searchable")
    error(srv.get("/api/v1/types/nope.thing"), 404, "not_found", "type")
    error(srv.get("/api/v1/types/x%27%3B--"), 404, "not_found", "type")


def test_add_field(srv):
    r = status(srv.post("/api/v1/types/core.team/fields", {"name": "rating", "kind": "int"}), 201)
    ok(any(f["name"] == "rating" for f in r.json["fields"]), "201 answers the updated type")
    ok(r.header("location").endswith("/api/v1/types/core.team"), "Location of the type")
    r = status(srv.get("/api/v1/types/core.team"), 200)
    ok(any(f["name"] == "rating" for f in r.json["fields"]), "new field in GET /types/{type}")
    rec = create(srv, rating=7)
    eq(rec["rating"], 7, "the new field is writable at once")
    eq(status(srv.get("%s/%d" % (T, rec["id"])), 200).json["rating"], 7, "and readable")
    error(srv.post(T, {"name": uniq(), "rating": "seven"}), 400, "invalid", "rating")
    # errors: duplicate, bad spec, required without default, unknown type, not an object
    error(srv.post("/api/v1/types/core.team/fields", {"name": "rating", "kind": "int"}), 409,
          "conflict")
    error(srv.post("/api/v1/types/core.team/fields", {"name": "bad1", "kind": "bogus"}), 400,
          "invalid")
    error(srv.post("/api/v1/types/core.team/fields", {"name": "Bad Name", "kind": "int"}), 400,
          "invalid")
    error(srv.post("/api/v1/types/core.team/fields",
                   {"name": "must", "kind": "int", "required": True}), 400, "invalid", "must")
    error(srv.post("/api/v1/types/nope.thing/fields", {"name": "x", "kind": "int"}), 404,
          "not_found")
    error(srv.post("/api/v1/types/core.team/fields", ["name"]), 400, "invalid")
    # the change is audited
    with db(srv) as c:
        rows = c.execute("SELECT user_id, action, target, detail FROM core_audit "
                         "WHERE action = 'field.add' AND target = 'core.team'").fetchall()
    ok(any(json.loads(d).get("name") == "rating" for _, _, _, d in rows), "audit row for rating")
    ok(all(u is not None for u, _, _, _ in rows), "audit rows name the admin")


# ---- records ----

def test_composite_index(srv):
    """An admin adds a composite index for a filtered, sorted list; the database has it with
    the columns in order, GET /types shows it, and the list it serves stays correct."""
    r = status(srv.post("/api/v1/types/core.team/indexes", {"fields": ["stage", "size"]}), 201)
    eq(r.json["indexes"], [["stage", "size"]], "indexes after the add")
    status(srv.post("/api/v1/types/core.team/indexes", {"fields": ["stage", "size"]}), 201,
           "adding it again is a no-op")
    eq(status(srv.get("/api/v1/types/core.team"), 200).json["indexes"], [["stage", "size"]],
       "GET /types lists it")
    db = sqlite3.connect(os.path.join(srv.data, "crm.db"))
    try:
        cols = [row[2] for row in db.execute("PRAGMA index_info('core.team:stage,size')")]
    finally:
        db.close()
    eq(cols, ["stage", "size"], "the index's columns")
    for bad, what in (({"fields": ["stage"]}, "one field"), ({"fields": "stage,size"}, "not an array"),
                      ({"fields": ["stage", "nope"]}, "unknown field"),
                      ({"fields": ["size", "size"]}, "twice"), ({}, "no fields"),
                      ({"fields": ["stage", "size", "notes", "email", "amount"]}, "five fields"),
                      ({"fields": ["stage", "size; DROP TABLE x"]}, "not a name")):
        error(srv.post("/api/v1/types/core.team/indexes", bad), 400, field="fields", what=what)
    error(srv.post("/api/v1/types/nope.thing/indexes", {"fields": ["a", "b"]}), 404)
    for size in (3, 1, 2):
        create(srv, stage="lost", size=size)
    rows = status(srv.get(T + "?stage=lost&sort=size&fields=size"), 200).json["data"]
    sizes = [x["size"] for x in rows]
    eq(sizes, sorted(sizes), "sorted by size within the stage")


def test_concurrent_writes_share_commits(srv):
    """48 creates from 16 connections at once: each answered once with its own record,
    including conflicts answered as 409 while their batch-mates commit (group commit
    with suspended connections)."""
    import threading
    results, lock = [], threading.Lock()

    def writer(w):
        for i in range(3):
            name = "dup" if (w, i) in ((0, 0), (1, 0)) else "w%d-%d" % (w, i)
            r = srv.post(T, {"name": name})
            with lock:
                results.append((name, r.status, (r.json or {}).get("id")))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    eq(len(results), 48, "answers")
    created = [r for r in results if r[1] == 201]
    dups = sorted(r[1] for r in results if r[0] == "dup")
    eq(dups, [201, 409], "one of the two identical names wins")
    eq(len(created), 47, "created")
    eq(len({r[2] for r in created}), 47, "distinct ids")
    listed = status(srv.get(T + "?name__like=w%25&count=1&limit=1"), 200).json["count"]
    eq(listed, 46, "every acknowledged write is there")


def test_crud(srv):
    name = uniq()
    r = status(srv.post(T, {"name": name, "size": 3, "amount": "12.50", "stage": "new"}), 201)
    rec = r.json
    rid = rec["id"]
    eq(r.header("location"), "/api/v1/records/core.team/%d" % rid, "Location")
    eq(r.header("etag"), '"1"', "ETag of a new record")
    for k in ("id", "created_at", "updated_at", "created_by", "owner", "team", "version"):
        ok(k in rec, "system field %s in the record" % k)
    eq(rec["amount"], "12.50", "decimal round trip")
    r = status(srv.get("%s/%d" % (T, rid)), 200)
    eq(r.json["name"], name, "GET name")
    eq(r.header("etag"), '"1"', "ETag is the version")
    r = status(srv.patch("%s/%d" % (T, rid), {"size": 4}, headers={"If-Match": '"1"'}), 200)
    eq(r.json["version"], 2, "version after PATCH")
    eq(r.json["size"], 4, "patched value")
    eq(r.header("etag"), '"2"', "ETag after PATCH")
    error(srv.patch("%s/%d" % (T, rid), {"size": 5}, headers={"If-Match": '"1"'}), 412, "stale")
    eq(status(srv.get("%s/%d" % (T, rid)), 200).json["size"], 4, "a stale PATCH writes nothing")
    # an update that changes nothing does not bump the version
    eq(status(srv.patch("%s/%d" % (T, rid), {"size": 4}), 200).json["version"], 2, "no-op PATCH")
    error(srv.delete("%s/%d" % (T, rid), headers={"If-Match": "1"}), 412, "stale")
    r = srv.delete("%s/%d" % (T, rid), headers={"If-Match": "2"})
    status(r, 204, "DELETE")
    eq(r.body, "", "204 has no body")
    error(srv.get("%s/%d" % (T, rid)), 404, "not_found")
    error(srv.patch("%s/%d" % (T, rid), {"size": 1}), 404, "not_found")
    error(srv.delete("%s/%d" % (T, rid)), 404, "not_found")
    r = status(srv.get(T + "?deleted=1&name=" + name), 200)
    eq([x["id"] for x in r.json["data"]], [rid], "deleted=1 lists the deleted record")
    r = status(srv.post("%s/%d/restore" % (T, rid)), 200)
    eq(r.json["deleted_at"], None, "restored")
    eq(r.json["version"], 4, "delete and restore bump the version")
    error(srv.post("%s/%d/restore" % (T, rid)), 404, "not_found", None, "restore a live record")
    r = status(srv.get("%s/%d/history" % (T, rid)), 200)
    eq([h["action"] for h in r.json["data"]], ["create", "update", "delete", "restore"], "history")
    eq(r.json["data"][1]["changes"]["size"], [3, 4], "history holds old and new values")
    ok(all(h["user"] for h in r.json["data"]), "history names the user")


def test_if_match_forms(srv):
    rid = create(srv, size=1)["id"]
    v = 1
    for form in ('"%d"', 'W/"%d"', '%d', ' "%d" '):
        r = status(srv.patch("%s/%d" % (T, rid), {"size": v + 10}, headers={"If-Match": form % v}),
                   200, "If-Match " + form)
        v = r.json["version"]
    status(srv.patch("%s/%d" % (T, rid), {"size": 99}, headers={"If-Match": "*"}), 200, "If-Match *")
    for bad in ("abc", '"1", "2"', '"x"', "0", "-1", "1.0", '"', "W/", "99999999999999999999999"):
        error(srv.patch("%s/%d" % (T, rid), {"size": 1}, headers={"If-Match": bad}), 400, "invalid",
              "If-Match", "If-Match %r" % bad)
        error(srv.delete("%s/%d" % (T, rid), headers={"If-Match": bad}), 400, "invalid", "If-Match")
    eq(status(srv.get("%s/%d" % (T, rid)), 200).json["size"], 99, "bad If-Match wrote nothing")


def test_bad_ids(srv):
    for bad in ("0", "-1", "abc", "1.5", "1%20OR%201%3D1", "1;DROP", "%27", "99999999999999999999",
                "0x10", "1e3"):
        for m, path in (("GET", "%s/%s"), ("PATCH", "%s/%s"), ("DELETE", "%s/%s"),
                        ("POST", "%s/%s/restore"), ("GET", "%s/%s/history")):
            r = srv.request(m, path % (T, bad), body={} if m == "PATCH" else None)
            error(r, 400, "invalid", "id", "%s id %r" % (m, bad))
    error(srv.get(T + "/987654"), 404, "not_found")
    error(srv.get("/api/v1/records/nope.thing/1"), 404, "not_found", "type")
    error(srv.get("/api/v1/records/nope.thing"), 404, "not_found", "type")
    error(srv.post("/api/v1/records/nope.thing", {"name": "x"}), 404, "not_found", "type")


def test_bad_bodies(srv):
    before = count(srv)
    rid = create(srv)["id"]
    before += 1
    cases = [
        ([1, 2], None), ("text", None), (42, None), (None, None),
        ({"name": uniq(), "size": "abc"}, "size"),
        ({"name": uniq(), "size": 1.5}, "size"),
        ({"name": uniq(), "size": True}, "size"),
        ({"name": uniq(), "amount": "1.234"}, "amount"),
        ({"name": uniq(), "amount": "ten"}, "amount"),
        ({"name": uniq(), "email": "not-an-email"}, "email"),
        ({"name": uniq(), "stage": "maybe"}, "stage"),
        ({"name": uniq(), "site": "javascript:alert(1)"}, "site"),
        ({"name": uniq(), "site": "data:text/html,<script>"}, "site"),
        ({"name": uniq(), "site": "vbscript:x"}, "site"),
        ({"name": uniq(), "active": "yes"}, "active"),
        ({"name": uniq(), "nosuchfield": 1}, "nosuchfield"),
        ({"name": uniq(), "notes": "x" * 201}, "notes"),
        ({"name": ""}, "name"),
        ({"size": 3}, "name"),
        ({"name": uniq(), "owner": "me"}, "owner"),
        ({"name": uniq(), "owner": 99999}, "owner"),
    ]
    for body, field in cases:
        if body is None:
            r = srv.request("POST", T, raw="null", headers={"Content-Type": "application/json"})
        else:
            r = srv.post(T, body)
        if isinstance(body, dict):
            error(r, 400, "invalid", field, "create %r" % (body,))
        else:  # the HTTP layer may refuse a non-container body before the handler sees it
            error(r, 400, None, None, "create %r" % (body,))
            ok(r.error_code() in ("invalid", "invalid_json"), "code %r" % r.error_code())
        if isinstance(body, dict) and field != "name":
            patch = {k: v for k, v in body.items() if k != "name"}
            error(srv.patch("%s/%d" % (T, rid), patch), 400, "invalid", field, "patch %r" % patch)
    eq(count(srv), before, "invalid input wrote nothing")
    eq(status(srv.get("%s/%d" % (T, rid)), 200).json["version"], 1, "failed PATCHes wrote nothing")
    # URL fields accept http, https, mailto (X2)
    for url in ("http://x.io/a", "https://x.io", "mailto:a@x.io"):
        status(srv.post(T, {"name": uniq(), "site": url}), 201, "url " + url)


def test_unique_conflict(srv):
    email = uniq("u") + "@x.io"
    create(srv, email=email)
    n = count(srv)
    error(srv.post(T, {"name": uniq(), "email": email}), 409, "conflict", "email")
    rid = create(srv)["id"]
    error(srv.patch("%s/%d" % (T, rid), {"email": email}), 409, "conflict", "email")
    eq(count(srv), n + 1, "the conflicting create wrote nothing")
    error(srv.post(T, {"name": status(srv.get("%s/%d" % (T, rid)), 200).json["name"]}), 409,
          "conflict", "name")


def test_list(srv):
    tag = uniq("tag")
    rows = [("a", 5, "won"), ("b", 3, "new"), ("c", 5, "lost"), ("d", None, "won"), ("e", 9, "won"),
            ("f", 1, None), ("g", 5, "new")]
    ids = {}
    for n, size, stage in rows:
        body = {"name": tag + n, "notes": tag}
        if size is not None:
            body["size"] = size
        if stage:
            body["stage"] = stage
        ids[n] = create(srv, **body)["id"]

    def names(query):
        r = status(srv.get(T + "?notes=" + tag + "&" + query), 200, query)
        return [x["name"][len(tag):] for x in r.json["data"]]

    eq(names("sort=name"), list("abcdefg"), "sort by name")
    eq(names("sort=-size,name"), ["e", "a", "c", "g", "b", "f", "d"], "sort -size, name")
    eq(names("size__gt=4&sort=name"), ["a", "c", "e", "g"], "size__gt")
    eq(names("size__lte=3&sort=name"), ["b", "f"], "size__lte")
    eq(names("stage=won&sort=name"), ["a", "d", "e"], "eq filter")
    eq(names("stage__ne=won&sort=name"), ["b", "c", "f", "g"], "ne filter (NULL is not won)")
    eq(names("stage__in=new,lost&sort=name"), ["b", "c", "g"], "in filter")
    eq(names("size__null=1"), ["d"], "null filter")
    eq(names("name__like=" + tag + "[ab]%25&sort=name"), [], "like is LIKE, not a pattern class")
    eq(names("name__like=%25" + tag[-3:] + "e&sort=name"), ["e"], "like filter")
    eq(names("stage=won&size__gte=5&sort=-name"), ["e", "a"], "filters combine")
    r = status(srv.get(T + "?notes=" + tag + "&fields=name,size&sort=name&limit=1"), 200)
    eq(sorted(r.json["data"][0].keys()), ["id", "name", "size"], "fields projection keeps id")
    r = status(srv.get(T + "?notes=" + tag + "&count=1&limit=2"), 200)
    eq(r.json["count"], 7, "count ignores the limit")
    eq(len(r.json["data"]), 2, "limit")
    ok(r.json["next"], "a next cursor when more rows exist")
    r = status(srv.get(T + "?notes=" + tag), 200)
    ok("count" not in r.json, "no count unless asked")
    eq(r.json["next"], None, "next is null on the last page")
    # walk with a cursor, sorted by a non-unique key
    seen, cursor, pages = [], None, 0
    while True:
        q = "notes=%s&sort=-size&limit=2" % tag + ("&cursor=" + cursor if cursor else "")
        r = status(srv.get(T + "?" + q), 200, "page")
        seen += [x["id"] for x in r.json["data"]]
        cursor = r.json["next"]
        pages += 1
        if not cursor or pages > 10:
            break
    eq(sorted(seen), sorted(ids.values()), "cursor walk sees every row once")
    eq(pages, 4, "7 rows in pages of 2")
    # a cursor belongs to its own sort
    r = status(srv.get(T + "?notes=%s&sort=-size&limit=2" % tag), 200)
    error(srv.get(T + "?notes=%s&sort=name&cursor=%s" % (tag, r.json["next"])), 400, "invalid",
          "cursor")
    error(srv.get(T + "?cursor=garbage"), 400, "invalid", "cursor")
    # bad parameters name themselves
    error(srv.get(T + "?limit=0"), 400, "invalid", "limit")
    error(srv.get(T + "?limit=1001"), 400, "invalid", "limit")
    error(srv.get(T + "?limit=x"), 400, "invalid", "limit")
    error(srv.get(T + "?nosuch=1"), 400, "invalid", "nosuch")
    error(srv.get(T + "?sort=nosuch"), 400, "invalid", "nosuch")
    error(srv.get(T + "?fields=nosuch"), 400, "invalid", "nosuch")
    error(srv.get(T + "?size__near=1"), 400, "invalid")
    error(srv.get(T + "?size=abc"), 400, "invalid", "size")
    error(srv.get(T + "?count=maybe"), 400, "invalid", "count")
    error(srv.get(T + "?sort="), 400, "invalid", "sort")


def test_sql_injection(srv):
    tag = uniq("inj")
    for i in range(3):
        create(srv, notes=tag, size=i)
    total = count(srv)
    sorts = ["name;DROP TABLE \"core.team\"", "(SELECT 1)", "name desc, (select 1)", "name--",
             "name)", "\"name\"", "1", "name DESC", "name collate nocase", "-(size)", "rowid"]
    for s in sorts:
        r = srv.get(T + "?" + urllib.parse.urlencode({"sort": s}))
        ok(r.status == 400, "sort=%r → %d, expected 400" % (s, r.status))
    names = ["id) OR 1=1--", "name;--", "\"name\"", "name OR 1", "size__gt) OR (1", "x'--",
             "name\x00", "name__eq__eq"]
    for n in names:
        r = srv.get(T + "?" + urllib.parse.urlencode({n: "1"}))
        ok(r.status == 400, "filter name %r → %d, expected 400" % (n, r.status))
    values = ["1 OR 1=1", "1) OR (1=1", "' OR '1'='1", "x'; DROP TABLE \"core.team\";--", "%",
              "1 UNION SELECT * FROM core_password"]
    for v in values:
        r = srv.get(T + "?" + urllib.parse.urlencode({"notes": v}))
        status(r, 200, "filter value %r" % v)
        eq(r.json["data"], [], "filter value %r matches nothing" % v)
        r = srv.get(T + "?" + urllib.parse.urlencode({"size": v}))
        error(r, 400, "invalid", "size", "int filter value %r" % v)
        r = srv.get(T + "?" + urllib.parse.urlencode({"notes__in": v + "," + tag}))
        eq(len(status(r, 200).json["data"]), 3, "in filter with %r finds just the tagged" % v)
    r = srv.get(T + "?" + urllib.parse.urlencode({"notes__like": "%' OR 1=1--"}))
    eq(status(r, 200).json["data"], [], "like value is a bound pattern")
    error(srv.get(T + "/1%20OR%201=1"), 400, "invalid", "id")
    error(srv.get(T + "?" + urllib.parse.urlencode({"id": "1 OR 1=1"})), 400, "invalid", "id")
    eq(count(srv), total, "every row is still there")
    eq(count(srv, notes=tag), 3, "the tagged rows are intact")


def test_history(srv):
    rid = create(srv, size=1, notes="one")["id"]
    srv.patch("%s/%d" % (T, rid), {"size": 2})
    srv.patch("%s/%d" % (T, rid), {"notes": "two", "size": 3})
    r = status(srv.get("%s/%d/history" % (T, rid)), 200)
    h = r.json["data"]
    eq([x["action"] for x in h], ["create", "update", "update"], "actions")
    eq(h[0]["changes"]["size"], [None, 1], "create: null → value")
    eq(h[1]["changes"], {"size": [1, 2]}, "only changed fields")
    eq(h[2]["changes"], {"notes": ["one", "two"], "size": [2, 3]}, "two fields")
    ok(h[0]["id"] < h[1]["id"] < h[2]["id"], "oldest first")
    for x in h:
        for k in ("id", "at", "user", "via", "action", "changes"):
            ok(k in x, "history entry has " + k)
    error(srv.get("%s/%d/history" % (T, 987654)), 404, "not_found")


def test_search(srv):
    tag = uniq("srch")
    create(srv, notes="alpha %s" % tag, email="%s@example.org" % tag)
    create(srv, notes="beta %s %s" % (tag, tag))
    r = status(srv.get("/api/v1/search?q=" + tag), 200)
    eq(len(r.json["data"]), 2, "both found")
    hit = r.json["data"][0]
    for k in ("type", "id", "title", "rank", "record"):
        ok(k in hit, "search hit has " + k)
    eq(hit["type"], "core.team", "type")
    ok(r.json["data"][0]["rank"] <= r.json["data"][1]["rank"], "ordered by rank")
    eq(hit["record"]["id"], hit["id"], "record is the record")
    eq(hit["title"], hit["record"]["name"], "title is the title field")
    # prefix, several words, types, limit
    eq(len(status(srv.get("/api/v1/search?q=" + tag[:-1]), 200).json["data"]) >= 2, True, "prefix")
    eq(len(status(srv.get("/api/v1/search?q=alpha+" + tag), 200).json["data"]), 1, "AND of words")
    eq(len(status(srv.get("/api/v1/search?q=%s&types=core.team&limit=1" % tag), 200)
           .json["data"]), 1, "limit")
    # "more": false when every match is in the answer, true when it was cut (bounded search)
    eq(r.json["more"], False, "a selective search has nothing more")
    eq(status(srv.get("/api/v1/search?q=%s&limit=1" % tag), 200).json["more"], True,
       "cut at the limit: more")
    eq(len(status(srv.get("/api/v1/search?q=example.org+" + tag), 200).json["data"]), 1,
       "email is searchable")
    error(srv.get("/api/v1/search"), 400, "invalid", "q")
    error(srv.get("/api/v1/search?q="), 400, "invalid", "q")
    error(srv.get("/api/v1/search?q=%22%2A%5E"), 400, "invalid", "q")
    error(srv.get("/api/v1/search?q=%s&limit=0" % tag), 400, "invalid", "limit")
    error(srv.get("/api/v1/search?q=%s&limit=101" % tag), 400, "invalid", "limit")
    error(srv.get("/api/v1/search?q=%s&limit=x" % tag), 400, "invalid", "limit")
    error(srv.get("/api/v1/search?q=%s&types=nope.x" % tag), 400, "invalid", "types")
    error(srv.get("/api/v1/search?q=%s&types=core.role" % tag), 400, "invalid", "types")
    error(srv.get("/api/v1/search?q=%s&types=core.team,,core.user" % tag), 400, "invalid", "types")
    for q in ['"', 'NEAR(' + tag, tag + '*', '^' + tag, 'notes:' + tag, '{notes}:' + tag,
              tag + ' OR x', '-' + tag, "'; DROP TABLE x;--", 'a"b"c ' + tag, tag + ')']:
        r = srv.get("/api/v1/search?" + urllib.parse.urlencode({"q": q}))
        ok(r.status in (200, 400), "hostile q %r → %d" % (q, r.status))
        if r.status == 400:
            error(r, 400, "invalid", "q", "hostile q %r" % q)
    # deleted records leave the index
    rid = create(srv, notes="gamma " + tag)["id"]
    eq(len(status(srv.get("/api/v1/search?q=gamma+" + tag), 200).json["data"]), 1, "found")
    status(srv.delete("%s/%d" % (T, rid)), 204)
    eq(len(status(srv.get("/api/v1/search?q=gamma+" + tag), 200).json["data"]), 0, "deleted: gone")


def test_method_not_allowed(srv):
    r = srv.request("PUT", T + "/1", body={})
    status(r, 405, "PUT on a record")
    ok("PATCH" in (r.header("allow") or ""), "Allow names PATCH")
    status(srv.request("DELETE", "/api/v1/types/core.team"), 405, "DELETE a type")


def test_unauthenticated(srv):
    for m, p in (("GET", "/api/v1/types"), ("GET", "/api/v1/types/core.team"),
                 ("POST", "/api/v1/types/core.team/fields"), ("GET", T), ("POST", T),
                 ("GET", T + "/1"), ("PATCH", T + "/1"), ("DELETE", T + "/1"),
                 ("POST", T + "/1/restore"), ("GET", T + "/1/history"),
                 ("GET", "/api/v1/search?q=abc")):
        error(srv.request(m, p, body={} if m in ("POST", "PATCH") else None, token=""), 401,
              None, None, "%s %s without a token" % (m, p))
        error(srv.request(m, p, body={} if m in ("POST", "PATCH") else None, token="crm_bogus"),
              401, None, None, "%s %s with a bogus token" % (m, p))


if __name__ == "__main__":
    lib.run(globals(), "api_records")
