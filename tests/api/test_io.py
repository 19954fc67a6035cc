"""
API tests of CSV import and CSV / JSON export (kernel/api_io.c, kernel/io.c),
and of `crm import` / `crm export` against the same data directory.

Without plugins the kernel has only core.user, core.role and core.team; as in
test_records.py, custom fields are added to core.team and its records are the
entity. Names are unique per test (core.team's name is a unique field).
"""
import csv
import io
import json
import os
import sqlite3
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import lib  # noqa: E402
from lib import eq, error, ok, status  # noqa: E402

TYPE = "core.team"
IMPORT = "/api/v1/import/" + TYPE
EXPORT = "/api/v1/export/" + TYPE
LIST = "/api/v1/records/" + TYPE

FIELDS = [
    {"name": "notes", "kind": "text", "max_length": 200},
    {"name": "email", "kind": "email", "unique": True},
    {"name": "amount", "kind": "decimal", "scale": 2},
    {"name": "size", "kind": "int", "indexed": True},
    {"name": "active", "kind": "bool"},
    {"name": "meta", "kind": "json"},
    {"name": "secret", "kind": "text"},
]


def shared_server():
    srv = lib.Server().start()
    srv.admin()
    for spec in FIELDS:
        status(srv.post("/api/v1/types/%s/fields" % TYPE, spec), 201, "add field " + spec["name"])
    return srv


_seq = [0]


def uniq(prefix="t"):
    _seq[0] += 1
    return "%s%dx%d" % (prefix, os.getpid(), _seq[0])


def post_csv(srv, text, mode=None, token=None, path=IMPORT):
    q = "?mode=" + mode if mode else ""
    return srv.request("POST", path + q, raw=text.encode("utf-8") if isinstance(text, str) else text,
                       headers={"Content-Type": "text/csv"}, token=token)


def find(srv, token=None, **filters):
    q = urllib.parse.urlencode(dict(filters, limit=1000))
    return status(srv.get(LIST + "?" + q, token=token), 200, "list").json["data"]


def export(srv, token=None, **params):
    return srv.get(EXPORT + ("?" + urllib.parse.urlencode(params) if params else ""), token=token)


def rows(text):
    return list(csv.reader(io.StringIO(text, newline="")))


def db(srv):
    return sqlite3.connect(os.path.join(srv.data, "crm.db"), timeout=10)


# ---- import ----

def test_import_all_mode_creates(srv):
    tag = uniq("imp")
    text = ("\ufeffname,notes,email,amount,size,active,meta\r\n"
            '%s-a,"a, quoted ""note""",a-%s@example.com,1234.50,3,yes,"{""k"":[1,2]}"\r\n'
            '%s-b,"two\nlines",,,,false,\r\n' % (tag, tag, tag))
    r = status(post_csv(srv, text), 200, "import")
    eq(r.json["created"], 2, "created")
    eq(r.json["updated"], 0, "updated")
    eq(r.json["errors"], [], "errors")
    a = find(srv, name=tag + "-a")[0]
    eq(a["notes"], 'a, quoted "note"', "quoted field")
    eq(a["amount"], "1234.50", "decimal")
    eq(a["size"], 3, "int")
    eq(a["active"], True, "bool yes")
    eq(a["meta"], {"k": [1, 2]}, "json")
    b = find(srv, name=tag + "-b")[0]
    eq(b["notes"], "two\nlines", "embedded newline")
    eq(b["active"], False, "bool false")
    eq(b["size"], None, "empty cell: absent")


def test_import_all_mode_rejects_everything(srv):
    tag = uniq("all")
    text = ("name,size,email\n"
            "%s-1,1,\n"
            '"%s-2\nsecond line",2,\n'
            "%s-3,three,\n"
            "%s-4,4,not-an-email\n"
            "%s-5,5,\n" % ((tag,) * 5))
    r = status(post_csv(srv, text, "all"), 422, "all-or-nothing with bad records")
    eq(r.json["created"], 0, "created")
    eq(r.json["updated"], 0, "updated")
    errs = r.json["errors"]
    eq([(e["line"], e.get("field")) for e in errs], [(5, "size"), (6, "email")], "errors")
    ok(all(e["message"] for e in errs), "every error has a message")
    eq(find(srv, name__like=tag + "%"), [], "nothing written")
    # default mode is all
    status(post_csv(srv, text), 422, "default mode")
    eq(find(srv, name__like=tag + "%"), [], "nothing written (default mode)")


def test_import_line_mode_keeps_good(srv):
    tag = uniq("line")
    text = ("name,size\n"
            "%s-1,1\n"
            "%s-2,x\n"
            "%s-3,3,extra\n"
            '"%s-4,4\n' % ((tag,) * 4))
    r = status(post_csv(srv, text, "line"), 200, "line mode")
    eq(r.json["created"], 1, "created")
    eq([e["line"] for e in r.json["errors"]], [3, 4, 5], "error lines")
    ok("unterminated" in r.json["errors"][2]["message"], "unterminated quote reported")
    eq([x["name"] for x in find(srv, name__like=tag + "%")], [tag + "-1"], "good record kept")


def test_import_lets_other_writers_in(srv):
    """A long line-mode import commits in chunks and ends one early when a writer of the
    server waits: a record created meanwhile is written between the import's chunks,
    not after its last one (a chunk may otherwise run a whole second)."""
    tag = uniq("long")
    n = 40000
    text = "name,size\n" + "".join("%s-%d,%d\n" % (tag, i, i % 100) for i in range(n))
    result = {}

    def run_import():
        result["r"] = post_csv(srv, text, "line")

    t = threading.Thread(target=run_import)
    t.start()
    time.sleep(0.3)  # let the import start; not a timing assertion
    mid = status(srv.post(LIST, {"name": tag + "-meanwhile", "size": 1}), 201,
                 "create during the import").json
    t.join(120)
    r = status(result["r"], 200, "import")
    eq(r.json["created"], n, "all imported")
    with db(srv) as c:
        first, last = c.execute('SELECT min(id), max(id) FROM "core.team" WHERE name LIKE ? '
                                "AND name != ?", (tag + "-%", tag + "-meanwhile")).fetchone()
    ok(first < mid["id"] < last,
       "the concurrent create (id %d) landed between the import's rows (%d..%d)"
       % (mid["id"], first, last))


def test_import_update_by_id(srv):
    tag = uniq("upd")
    rec = status(srv.post(LIST, {"name": tag, "size": 1, "notes": "keep"}), 201).json
    text = "id,size,notes\n%d,2,\n" % rec["id"]
    r = status(post_csv(srv, text), 200, "update")
    eq((r.json["created"], r.json["updated"]), (0, 1), "counts")
    got = status(srv.get("%s/%d" % (LIST, rec["id"])), 200).json
    eq(got["size"], 2, "updated field")
    eq(got["notes"], "keep", "empty cell leaves the field")
    eq(got["version"], rec["version"] + 1, "version bumped once")


def test_import_header_errors(srv):
    tag = uniq("hdr")
    error(post_csv(srv, "name,bogus\n%s,1\n" % tag), 400, "invalid", "bogus", "unknown column")
    error(post_csv(srv, "name,size,name\n%s,1,x\n" % tag), 400, "invalid", None, "duplicate")
    error(post_csv(srv, ""), 400, "invalid", None, "empty body")
    error(post_csv(srv, '"name\n%s\n' % tag), 400, "invalid", None, "malformed header")
    error(post_csv(srv, "name\n%s\n" % tag, "some"), 400, "invalid", "mode", "bad mode")
    error(post_csv(srv, "name\nx\n", path="/api/v1/import/nope.thing"), 404, "not_found", None,
          "unknown type")
    eq(find(srv, name__like=tag + "%"), [], "nothing written")
    r = post_csv(srv, b"name\n\xff\xfe\n", "line")
    status(r, 200, "invalid UTF-8 in a cell")
    ok("UTF-8" in r.json["errors"][0]["message"], "UTF-8 error: %r" % r.json)


def test_import_needs_auth(srv):
    error(post_csv(srv, "name\nx\n", token=""), 401, None, None, "anonymous import")
    error(srv.get(EXPORT, token=""), 401, None, None, "anonymous export")


# ---- export ----

def test_export_csv(srv):
    tag = uniq("exp")
    for name, notes in (("-a", "=HYPERLINK(\"http://evil\")"), ("-b", "+1 555"), ("-c", "@SUM(A1)"),
                        ("-d", "-2+3"), ("-e", "\tx"), ("-f", "plain, with comma")):
        status(srv.post(LIST, {"name": tag + name, "notes": notes, "size": -5}), 201)
    r = status(export(srv, name__like=tag + "%", sort="name"), 200, "export csv")
    ok(r.header("content-type").startswith("text/csv"), "content type %r" % r.header("content-type"))
    eq(r.header("content-disposition"), 'attachment; filename="core.team.csv"', "disposition")
    ok("\r\n" in r.body, "CRLF line ends")
    table = rows(r.body)
    header = table[0]
    eq(header[:6], ["id", "created_at", "updated_at", "owner", "team", "version"], "system columns")
    for f in ("name", "notes", "size", "secret"):
        ok(f in header, "column " + f)
    notes = [row[header.index("notes")] for row in table[1:]]
    eq(notes, ["'=HYPERLINK(\"http://evil\")", "'+1 555", "'@SUM(A1)", "'-2+3", "'\tx",
               "plain, with comma"], "formula cells guarded")
    eq({row[header.index("size")] for row in table[1:]}, {"-5"}, "numbers are not guarded")


def test_export_raw_is_admin_only_and_audited(srv):
    tag = uniq("raw")
    status(srv.post(LIST, {"name": tag, "notes": "=1+2"}), 201)
    r = status(export(srv, name=tag, raw=1), 200, "raw export")
    table = rows(r.body)
    eq(table[1][table[0].index("notes")], "=1+2", "raw: no guard")
    con = db(srv)
    try:
        n = con.execute("SELECT count(*) FROM core_audit WHERE action = 'export.raw' AND "
                        "target = 'core.team'").fetchone()[0]
        ok(n >= 1, "raw export audited")
        detail = json.loads(con.execute("SELECT detail FROM core_audit WHERE action = "
                                        "'export.raw' ORDER BY id DESC").fetchone()[0])
        eq(detail["filters"], [{"field": "name", "op": "eq", "value": tag}], "audited filters")
    finally:
        con.close()
    uid, token = srv.user(uniq("plain"))
    grant(srv, uid, {"read": "all"})
    error(export(srv, token=token, raw=1), 403, "denied", "raw", "raw export as a non-admin")


def test_export_json(srv):
    tag = uniq("js")
    for i in range(3):
        status(srv.post(LIST, {"name": "%s-%d" % (tag, i), "size": i, "meta": {"i": i}}), 201)
    r = status(export(srv, format="json", name__like=tag + "%", sort="-size"), 200)
    ok(r.header("content-type").startswith("application/json"), "content type")
    eq(r.header("content-disposition"), 'attachment; filename="core.team.json"', "disposition")
    data = json.loads(r.body)
    eq([d["size"] for d in data], [2, 1, 0], "sorted")
    listed = find(srv, name__like=tag + "%", sort="-size")
    eq(data, listed, "export JSON equals the list API's records")


def test_export_bad_params(srv):
    error(export(srv, format="xml"), 400, "invalid", "format", "bad format")
    error(export(srv, bogus="1"), 400, "invalid", "bogus", "unknown filter field")
    error(export(srv, sort="name;DROP TABLE x"), 400, "invalid", None, "sort injection")
    error(export(srv, limit="5"), 400, "invalid", "limit", "limit")
    error(srv.get("/api/v1/export/nope.thing"), 404, "not_found", None, "unknown type")


def test_export_many_pages(srv):
    tag = uniq("big")
    n = 2600
    text = "name,size\n" + "".join("%s-%05d,%d\n" % (tag, i, i) for i in range(n))
    r = status(post_csv(srv, text, "line"), 200, "bulk import")
    eq(r.json["created"], n, "created")
    r = status(export(srv, name__like=tag + "%", sort="-size", fields="name,size"), 200)
    table = rows(r.body)
    eq(table[0], ["id", "name", "size"], "projected header")
    eq([int(row[2]) for row in table[1:]], list(range(n - 1, -1, -1)), "every record, in order")


# ---- permissions ----

def grant(srv, uid, levels, fields=None):
    role = status(srv.post("/api/v1/records/core.role", {"name": uniq("role")}), 201).json["id"]
    body = {"grants": {TYPE: levels}}
    if fields:
        body["fields"] = {TYPE: fields}
    r = srv.request("PUT", "/api/v1/roles/%d/grants" % role, body=body)
    ok(r.status in (200, 204), "grants: %r" % r)
    r = srv.post("/api/v1/users/%d/roles/%d" % (uid, role))
    ok(r.status in (200, 201, 204), "user role: %r" % r)
    return role


def test_own_scope_and_hidden_fields(srv):
    tag = uniq("own")
    uid, token = srv.user(uniq("owner"))
    grant(srv, uid, {"read": "own", "create": "own", "update": "own"}, {"secret": "hidden"})
    status(srv.post(LIST, {"name": tag + "-admin", "secret": "s3cr3t-admin"}), 201)
    r = status(post_csv(srv, "name,notes\n%s-user,mine\n" % tag, token=token), 200, "user import")
    eq(r.json["created"], 1, "user created")
    con = db(srv)
    try:
        con.execute("UPDATE \"core.team\" SET secret = 's3cr3t-user' WHERE name = ?",
                    (tag + "-user",))
        con.commit()
    finally:
        con.close()

    r = status(export(srv, token=token, name__like=tag + "%"), 200, "user export csv")
    table = rows(r.body)
    ok("secret" not in table[0], "hidden column not exported: %r" % table[0])
    eq([row[table[0].index("name")] for row in table[1:]], [tag + "-user"], "own records only")
    ok("s3cr3t" not in r.body, "no hidden value anywhere")
    r = status(export(srv, token=token, format="json", name__like=tag + "%"), 200)
    data = json.loads(r.body)
    eq([d["name"] for d in data], [tag + "-user"], "own records only (json)")
    ok("secret" not in data[0] and "s3cr3t" not in r.body, "hidden field not in JSON")
    # hidden fields are unknown to this user everywhere: filter, sort, import column
    error(export(srv, token=token, secret="x"), 400, "invalid", "secret", "filter on hidden")
    error(export(srv, token=token, sort="secret"), 400, "invalid", "secret", "sort on hidden")
    error(post_csv(srv, "name,secret\n%s-x,1\n" % tag, token=token), 400, "invalid", "secret",
          "import a hidden column")
    # another user's record cannot be updated through an import
    admin_rec = find(srv, name=tag + "-admin")[0]
    r = status(post_csv(srv, "id,notes\n%d,hijack\n" % admin_rec["id"], "line", token=token), 200)
    eq(r.json["updated"], 0, "not updated")
    eq(len(r.json["errors"]), 1, "one error")
    eq(find(srv, name=tag + "-admin")[0]["notes"], admin_rec["notes"], "untouched")
    # every export is audited with its user
    con = db(srv)
    try:
        n = con.execute("SELECT count(*) FROM core_audit WHERE action = 'export' AND user_id = ?",
                        (uid,)).fetchone()[0]
    finally:
        con.close()
    eq(n, 2, "two audited exports by the user (refused ones are not)")


def test_no_rights_no_oracle(srv):
    uid, token = srv.user(uniq("none"))
    error(export(srv, token=token), 404, "not_found", None, "type invisible to the user (export)")
    error(post_csv(srv, "name\nx\n", token=token), 404, "not_found", None,
          "type invisible to the user (import)")
    uid2, token2 = srv.user(uniq("reader"))
    grant(srv, uid2, {"read": "all"})
    error(post_csv(srv, "name\nx\n", token=token2), 403, "denied", None, "read-only user import")


# ---- CLI ----

def test_cli_round_trip(srv):
    tag = uniq("cli")
    path = os.path.join(srv.dir, "in.csv")
    with open(path, "w", newline="") as f:
        f.write("name,notes,size\n%s-1,=cmd,1\n\"%s-2\",\"multi\nline\",2\n" % (tag, tag))
    p = srv.cli("import", TYPE, path)
    res = json.loads(p.stdout)
    eq((res["created"], res["errors"]), (2, []), "cli import")
    out = os.path.join(srv.dir, "out.csv")
    srv.cli("export", TYPE, "--out", out, "name__like=%s%%" % tag, "sort=name")
    with open(out, newline="") as f:
        table = rows(f.read())
    eq([row[table[0].index("notes")] for row in table[1:]], ["'=cmd", "multi\nline"], "cli export")
    # the export imports back unchanged: all updates, no version bump
    p = srv.cli("import", TYPE, out, "--mode", "line")
    res = json.loads(p.stdout)
    eq((res["created"], res["updated"], res["errors"]), (0, 2, []), "re-import")
    got = find(srv, name__like=tag + "%", sort="name")
    eq([(g["notes"], g["version"]) for g in got], [("=cmd", 1), ("multi\nline", 1)],
       "unchanged by the round trip")
    # JSON to stdout, as a user: their records only
    uname = uniq("cliuser")
    uid, token = srv.user(uname)
    grant(srv, uid, {"read": "own", "create": "own"})
    status(srv.post(LIST, {"name": tag + "-u"}, token=token), 201, "user's record")
    p = srv.cli("export", TYPE, "--format", "json", "--as", uname, "name__like=%s%%" % tag)
    eq([d["name"] for d in json.loads(p.stdout)], [tag + "-u"], "cli export --as")
    p = srv.cli("export", TYPE, "--raw", "--as", uname, check=False)
    eq(p.returncode, 1, "raw export as a user refused")
    # a failing all-or-nothing import exits 1 and writes nothing
    with open(path, "w") as f:
        f.write("name,size\n%s-x,1\n%s-y,bad\n" % (tag, tag))
    p = srv.cli("import", TYPE, path, check=False)
    eq(p.returncode, 1, "exit code")
    eq(json.loads(p.stdout)["errors"][0]["line"], 3, "error line")
    eq(find(srv, name=tag + "-x"), [], "nothing written")


lib.run(globals(), "api_io")
