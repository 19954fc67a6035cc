"""
Authorization through the API (SECURITY.md A1-A3, A5): row scopes (own, team),
hidden and read-only fields, mass assignment, admin-only routes, no token.

The entity is core.role with custom fields (the kernel has no other types
without plugins): users of the role "sales" may read/create/update/delete
their own core.role records, with "secret" hidden and "salary" read-only;
"lead" may do so for their team. alice and carol are in team red; bob in none.
"""
import json
import os
import sqlite3
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import lib  # noqa: E402
from lib import eq, error, ok, status  # noqa: E402

T = "/api/v1/records/core.role"


class World:
    pass


W = World()


def shared_server():
    srv = lib.Server().start()
    srv.admin()
    for spec in ({"name": "notes", "kind": "text", "searchable": True},
                 {"name": "secret", "kind": "text", "searchable": True},
                 {"name": "salary", "kind": "int"}):
        status(srv.post("/api/v1/types/core.role/fields", spec), 201, "add " + spec["name"])
    W.sales = status(srv.post(T, {"name": "sales"}), 201).json["id"]
    W.lead = status(srv.post(T, {"name": "lead"}), 201).json["id"]
    W.other = status(srv.post(T, {"name": "unused"}), 201).json["id"]
    own = {a: "own" for a in ("read", "create", "update", "delete")}
    status(srv.request("PUT", "/api/v1/roles/%d/grants" % W.sales,
                       body={"grants": {"core.role": own},
                             "fields": {"core.role": {"secret": "hidden", "salary": "read"}}}),
           200, "grants of sales")
    team = {"read": "team", "create": "own", "update": "team", "delete": "team"}
    status(srv.request("PUT", "/api/v1/roles/%d/grants" % W.lead,
                       body={"grants": {"core.role": team}}), 200, "grants of lead")
    W.red = status(srv.post("/api/v1/records/core.team", {"name": "red"}), 201).json["id"]
    W.users = {}
    for name, role in (("alice", W.sales), ("bob", W.sales), ("carol", W.lead), ("dave", W.sales)):
        uid, _ = srv.user(name)
        status(srv.post("/api/v1/users/%d/roles/%d" % (uid, role)), 204, "role of " + name)
        W.users[name] = uid
    for name in ("alice", "carol"):
        status(srv.post("/api/v1/teams/%d/members/%d" % (W.red, W.users[name])), 204, "team")
    # log in after the links so sessions see them (they would anyway: grants are re-read)
    W.tok = {name: srv.login(name, "user-password-1") for name in W.users}
    W.rec = {}
    for name in ("alice", "bob", "carol"):
        body = {"name": "rec-" + name, "notes": "zebra note of " + name}
        r = status(srv.post(T, body, token=W.tok[name]), 201, "create as " + name)
        W.rec[name] = r.json["id"]
        ok(("secret" in r.json) == (name == "carol"), "create answer and hidden secret: " + name)
        # the secret is written by the admin (hidden fields are not writable either)
        status(srv.patch("%s/%d" % (T, r.json["id"]), {"secret": "topsecret" + name}), 200)
    return srv


def as_(srv, who, method, path, body=None, **kw):
    return srv.request(method, path, body=body, token=W.tok[who], **kw)


def ids(r):
    return [x["id"] for x in status(r, 200).json["data"]]


def test_own_scope(srv):
    a, b = W.rec["alice"], W.rec["bob"]
    # alice: her own record works
    status(as_(srv, "alice", "GET", "%s/%d" % (T, a)), 200, "own read")
    status(as_(srv, "alice", "GET", "%s/%d/history" % (T, a)), 200, "own history")
    # bob's: invisible everywhere (404, no oracle)
    error(as_(srv, "alice", "GET", "%s/%d" % (T, b)), 404, "not_found", None, "read other's")
    error(as_(srv, "alice", "GET", "%s/%d/history" % (T, b)), 404, "not_found")
    r = as_(srv, "alice", "PATCH", "%s/%d" % (T, b), {"notes": "pwned"})
    ok(r.status in (403, 404), "update other's: %d" % r.status)
    r = as_(srv, "alice", "DELETE", "%s/%d" % (T, b))
    ok(r.status in (403, 404), "delete other's: %d" % r.status)
    rec = status(srv.get("%s/%d" % (T, b)), 200).json
    eq(rec["notes"], "zebra note of bob", "bob's record untouched")
    eq(rec["deleted_at"], None, "bob's record not deleted")
    # list, count, search: only her own
    got = ids(as_(srv, "alice", "GET", T + "?limit=1000"))
    ok(a in got and b not in got and W.sales not in got, "list shows only own: %r" % got)
    r = status(as_(srv, "alice", "GET", T + "?count=1"), 200)
    eq(r.json["count"], len(got), "count counts only own")
    eq(ids(as_(srv, "alice", "GET", T + "?name=rec-bob")), [], "filter cannot reach other's")
    eq(ids(as_(srv, "alice", "GET", T + "?id=%d" % b)), [], "id filter cannot reach other's")
    r = status(as_(srv, "alice", "GET", "/api/v1/search?q=zebra"), 200)
    eq([h["id"] for h in r.json["data"]], [a], "search finds only own")
    # restore and history of a deleted record of bob's
    tmp = status(srv.post(T, {"name": "tmp-bob", "owner": W.users["bob"]}), 201).json["id"]
    status(as_(srv, "bob", "DELETE", "%s/%d" % (T, tmp)), 204, "bob deletes his own")
    r = as_(srv, "alice", "POST", "%s/%d/restore" % (T, tmp))
    ok(r.status in (403, 404), "restore other's: %d" % r.status)
    error(as_(srv, "alice", "GET", "%s/%d/history" % (T, tmp)), 404, "not_found")
    ok(tmp not in ids(as_(srv, "alice", "GET", T + "?deleted=1")), "deleted list: only own")
    status(as_(srv, "bob", "POST", "%s/%d/restore" % (T, tmp)), 200, "bob restores his own")


def test_team_scope(srv):
    a, b, c = W.rec["alice"], W.rec["bob"], W.rec["carol"]
    status(as_(srv, "carol", "GET", "%s/%d" % (T, a)), 200, "teammate's record")
    error(as_(srv, "carol", "GET", "%s/%d" % (T, b)), 404, "not_found", None, "outsider's")
    got = ids(as_(srv, "carol", "GET", T + "?limit=1000"))
    ok(a in got and c in got and b not in got, "team list: %r" % got)
    r = status(as_(srv, "carol", "GET", "/api/v1/search?q=zebra"), 200)
    eq(sorted(h["id"] for h in r.json["data"]), sorted([a, c]), "team search")
    # team update works on the teammate's record; alice (own) cannot touch carol's
    status(as_(srv, "carol", "PATCH", "%s/%d" % (T, a), {"notes": "zebra note of alice"}), 200)
    error(as_(srv, "alice", "GET", "%s/%d" % (T, c)), 404, "not_found")


def test_hidden_field(srv):
    a = W.rec["alice"]
    rec = status(as_(srv, "alice", "GET", "%s/%d" % (T, a)), 200).json
    ok("secret" not in rec, "hidden field not in GET")
    ok("notes" in rec, "readable field in GET")
    eq(status(srv.get("%s/%d" % (T, a)), 200).json["secret"], "topsecretalice", "admin sees it")
    for r in (as_(srv, "alice", "GET", T), as_(srv, "alice", "GET", T + "?fields=name,notes")):
        for x in status(r, 200).json["data"]:
            ok("secret" not in x, "hidden field not in list")
    # no oracle: filtering, sorting, projecting on it is an unknown field
    for q in ("secret=topsecretalice", "secret__like=top%25", "secret__null=0", "sort=secret",
              "sort=-secret", "fields=secret"):
        error(as_(srv, "alice", "GET", T + "?" + q), 400, "invalid", "secret", q)
    error(as_(srv, "alice", "GET", T + "?nosuch=1"), 400, "invalid", "nosuch")
    # search does not match on it, and hits do not carry it
    r = status(as_(srv, "alice", "GET", "/api/v1/search?q=topsecretalice"), 200)
    eq(r.json["data"], [], "search cannot match a hidden field")
    r = status(srv.get("/api/v1/search?q=topsecretalice"), 200)
    eq(len(r.json["data"]), 1, "admin search matches it")
    r = status(as_(srv, "alice", "GET", "/api/v1/search?q=zebra"), 200)
    for h in r.json["data"]:
        ok("secret" not in h["record"], "search hit without hidden field")
    # writes: as unknown; history: left out; schema: left out
    error(as_(srv, "alice", "PATCH", "%s/%d" % (T, a), {"secret": "x"}), 400, "invalid", "secret")
    error(as_(srv, "alice", "POST", T, {"name": "rec-x", "secret": "x"}), 400, "invalid", "secret")
    status(srv.patch("%s/%d" % (T, a), {"secret": "changed by admin", "notes": "zebra 2"}), 200)
    h = status(as_(srv, "alice", "GET", "%s/%d/history" % (T, a)), 200).json["data"]
    for x in h:
        ok("secret" not in x["changes"], "history without the hidden field: %r" % x["changes"])
    ok(any("notes" in x["changes"] for x in h), "history keeps readable fields")
    ok("secret" in json.dumps(status(srv.get("%s/%d/history" % (T, a)), 200).json),
       "admin history has it")
    t = status(as_(srv, "alice", "GET", "/api/v1/types/core.role"), 200).json
    names = [f["name"] for f in t["fields"]]
    ok("secret" not in names and "notes" in names, "type schema without hidden field: %r" % names)
    ok("secret" not in json.dumps(status(as_(srv, "alice", "GET", "/api/v1/types"), 200).json),
       "GET /types without hidden field")
    # read-only field: readable, not writable
    error(as_(srv, "alice", "PATCH", "%s/%d" % (T, a), {"salary": 5}), 403, "denied", "salary")
    srv.patch("%s/%d" % (T, a), {"salary": 100})
    eq(status(as_(srv, "alice", "GET", "%s/%d" % (T, a)), 200).json["salary"], 100, "salary read")


def test_mass_assignment(srv):
    a = W.rec["alice"]
    before = status(srv.get("%s/%d" % (T, a)), 200).json
    error(as_(srv, "alice", "PATCH", "%s/%d" % (T, a), {"owner": W.users["bob"]}), 403, "denied",
          "owner")
    error(as_(srv, "alice", "PATCH", "%s/%d" % (T, a), {"team": W.red + 1000}), 400, "invalid",
          "team")
    r = as_(srv, "alice", "PATCH", "%s/%d" % (T, a),
            {"created_by": W.users["bob"], "version": 99, "id": W.rec["bob"],
             "created_at": "2000-01-01T00:00:00Z", "updated_at": "2000-01-01T00:00:00Z",
             "deleted_at": "2000-01-01T00:00:00Z"})
    status(r, 200, "system fields are ignored")
    after = status(srv.get("%s/%d" % (T, a)), 200).json
    for k in ("id", "owner", "team", "created_by", "created_at", "version", "deleted_at"):
        eq(after[k], before[k], "PATCH cannot set " + k)
    error(as_(srv, "alice", "POST", T, {"name": "rec-given", "owner": W.users["bob"]}), 403,
          "denied", "owner")
    r = status(as_(srv, "alice", "POST", T, {"name": "rec-alice-2", "created_by": W.users["bob"],
                                            "id": 1, "version": 7}), 201)
    eq(r.json["owner"], W.users["alice"], "owner defaults to the creator")
    eq(r.json["created_by"], W.users["alice"], "created_by cannot be given")
    eq(r.json["version"], 1, "version cannot be given")
    ok(r.json["id"] != 1, "id cannot be given")
    eq(r.json["team"], W.red, "team defaults to the creator's first team")
    # bob still owns his record
    eq(status(srv.get("%s/%d" % (T, W.rec["bob"])), 200).json["owner"], W.users["bob"], "bob's")


def test_types_visibility(srv):
    names = [t["name"] for t in status(as_(srv, "alice", "GET", "/api/v1/types"), 200).json["data"]]
    ok("core.role" in names, "readable type listed")
    ok("core.user" not in names, "unreadable type not listed: %r" % names)
    error(as_(srv, "alice", "GET", "/api/v1/types/core.user"), 404, "not_found", "type")
    error(as_(srv, "alice", "GET", "/api/v1/records/core.user"), 403, "denied")
    error(as_(srv, "alice", "GET", "/api/v1/records/core.user/%d" % W.users["bob"]), 404,
          "not_found")
    error(as_(srv, "alice", "POST", "/api/v1/records/core.user", {"username": "mallory"}), 403,
          "denied")
    # privilege escalation through the record API: refused (fields of an unreadable type
    # are unknown to the caller: 400 before the record is even looked up), nothing written
    r = as_(srv, "alice", "PATCH", "/api/v1/records/core.user/%d" % W.users["alice"],
            {"is_admin": True})
    ok(r.status in (400, 403, 404), "PATCH own user is_admin: %d" % r.status)
    error(as_(srv, "alice", "PATCH", "/api/v1/records/core.user/%d" % W.users["alice"], {}),
          404, "not_found")
    eq(status(srv.get("/api/v1/records/core.user/%d" % W.users["alice"]), 200).json["is_admin"],
       False, "alice is still not an admin")
    error(as_(srv, "alice", "GET", "/api/v1/search?q=alice&types=core.user"), 400, "invalid",
          "types")
    r = status(as_(srv, "alice", "GET", "/api/v1/search?q=alice"), 200)
    ok(all(h["type"] != "core.user" for h in r.json["data"]), "search skips unreadable types")


def test_admin_routes_forbidden(srv):
    u, role = W.users["alice"], W.sales
    routes = [("POST", "/api/v1/types/core.role/fields", {"name": "evil", "kind": "int"}),
              ("GET", "/api/v1/roles/%d/grants" % role, None),
              ("PUT", "/api/v1/roles/%d/grants" % role,
               {"grants": {"core.role": {"read": "all"}}}),
              ("POST", "/api/v1/users/%d/roles/%d" % (u, W.lead), None),
              ("DELETE", "/api/v1/users/%d/roles/%d" % (u, role), None),
              ("POST", "/api/v1/teams/%d/members/%d" % (W.red, W.users["bob"]), None),
              ("DELETE", "/api/v1/teams/%d/members/%d" % (W.red, u), None)]
    for m, p, body in routes:
        error(as_(srv, "alice", m, p, body), 403, None, None, "%s %s as a user" % (m, p))
        error(srv.request(m, p, body=body, token=""), 401, None, None, "%s %s anonymous" % (m, p))
    # nothing changed
    g = status(srv.get("/api/v1/roles/%d/grants" % role), 200).json
    eq(g["grants"]["core.role"]["read"], "own", "grants unchanged")
    ok(all(f["name"] != "evil" for f in status(srv.get("/api/v1/types/core.role"), 200)
           .json["fields"]), "no field added")
    got = ids(as_(srv, "alice", "GET", T + "?limit=1000"))
    ok(W.rec["bob"] not in got, "alice still sees only her own")


def test_no_token(srv):
    a = W.rec["alice"]
    for m, p in (("GET", "/api/v1/types"), ("GET", T), ("POST", T), ("GET", "%s/%d" % (T, a)),
                 ("PATCH", "%s/%d" % (T, a)), ("DELETE", "%s/%d" % (T, a)),
                 ("POST", "%s/%d/restore" % (T, a)), ("GET", "%s/%d/history" % (T, a)),
                 ("GET", "/api/v1/search?q=zebra")):
        error(srv.request(m, p, body={} if m in ("POST", "PATCH") else None, token=""), 401,
              None, None, "%s %s anonymous" % (m, p))
    status(srv.get("%s/%d" % (T, a)), 200, "the record survived")


def test_grants_admin(srv):
    dave, role = W.users["dave"], W.sales
    r = status(srv.get("/api/v1/roles/%d/grants" % role), 200)
    eq(r.json["grants"]["core.role"], {"read": "own", "create": "own", "update": "own",
                                        "delete": "own"}, "GET grants")
    eq(r.json["fields"]["core.role"], {"secret": "hidden", "salary": "read"}, "GET field rules")
    error(srv.get("/api/v1/roles/987654/grants"), 404, "not_found")
    error(srv.get("/api/v1/roles/abc/grants"), 400, "invalid", "id")
    bad = [({"grants": {"nope.type": {"read": "all"}}}, "grants"),
           ({"grants": {"core.role": {"peek": "all"}}}, "grants"),
           ({"grants": {"core.role": {"read": "most"}}}, "grants"),
           ({"grants": {"core.role": {"read": 3}}}, "grants"),
           ({"grants": {"core.role": "all"}}, "grants"),
           ({"grants": []}, "grants"),
           ({"fields": {"core.role": {"nosuch": "hidden"}}}, "fields"),
           ({"fields": {"core.role": {"notes": "invisible"}}}, "fields"),
           ({"fields": {"nope.type": {"notes": "read"}}}, "fields"),
           ({"grantz": {}}, "grantz")]
    for body, field in bad:
        # with a valid entry too: all or nothing
        body = json.loads(json.dumps(body))
        g = body.get("grants", {})
        if isinstance(g, dict) and isinstance(g.get("core.role", {}), dict):
            body.setdefault("grants", g).setdefault("core.role", {}).setdefault("create", "all")
        error(srv.request("PUT", "/api/v1/roles/%d/grants" % role, body=body), 400, "invalid",
              field, "PUT %r" % body)
    eq(status(srv.get("/api/v1/roles/%d/grants" % role), 200).json, r.json, "nothing applied")
    error(srv.request("PUT", "/api/v1/roles/987654/grants", body={"grants": {}}), 404, "not_found")
    # dave: take his role away → he cannot list; give it back → he can
    dtok = W.tok["dave"]
    status(srv.get(T, token=dtok), 200, "dave lists")
    status(srv.delete("/api/v1/users/%d/roles/%d" % (dave, role)), 204)
    error(srv.get(T, token=dtok), 403, "denied", None, "dave without a role")
    status(srv.post("/api/v1/users/%d/roles/%d" % (dave, role)), 204)
    status(srv.get(T, token=dtok), 200, "dave again")
    error(srv.post("/api/v1/users/%d/roles/987654" % dave), 404, "not_found")
    error(srv.post("/api/v1/users/987654/roles/%d" % role), 404, "not_found")
    error(srv.post("/api/v1/teams/987654/members/%d" % dave), 404, "not_found")
    error(srv.post("/api/v1/users/0/roles/%d" % role), 400, "invalid", "id")
    # a grant change applies to live sessions at once: read all, then back to own
    status(srv.request("PUT", "/api/v1/roles/%d/grants" % role,
                       body={"grants": {"core.role": {"read": "all"}}}), 200)
    ok(W.rec["bob"] in ids(srv.get(T + "?limit=1000", token=dtok)), "read all applies")
    r2 = status(srv.request("PUT", "/api/v1/roles/%d/grants" % role,
                            body={"grants": {"core.role": {"read": "own"}}}), 200)
    eq(r2.json["grants"]["core.role"]["read"], "own", "PUT answers the grants")
    ok(W.rec["bob"] not in ids(srv.get(T + "?limit=1000", token=dtok)), "read own again")
    # audit rows (A5)
    with sqlite3.connect(os.path.join(srv.data, "crm.db"), timeout=10) as c:
        rows = c.execute("SELECT at, user_id, action, target, detail FROM core_audit").fetchall()
    actions = [(a, t) for _, _, a, t, _ in rows]
    for want in (("grants.set", "role:%d" % role), ("user.role.remove", "user:%d" % dave),
                 ("user.role.add", "user:%d" % dave), ("team.member.add", "team:%d" % W.red)):
        ok(want in actions, "audit row %r" % (want,))
    for at, uid, a, t, d in rows:
        ok(at and uid, "audit row has time and admin: %r" % ((at, uid, a),))
        if a == "grants.set":
            d = json.loads(d)
            ok("before" in d and "after" in d, "grants audit has before and after")


if __name__ == "__main__":
    lib.run(globals(), "api_authz")
