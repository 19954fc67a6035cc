"""
test_auth.py — login, sessions, cookies and CSRF, API tokens, throttling, and
the users administration endpoints (kernel/api_auth.c, kernel/session.c).
"""
import hashlib
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import eq, error, ok, status  # noqa: E402

ME = "/api/v1/auth/me"
LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
USERS = "/api/v1/users"


def db(srv):
    return sqlite3.connect(os.path.join(srv.data, "crm.db"))


def cookie_attrs(r):
    """The session cookie's "name=value" and attributes (the pre-session cookie skipped)."""
    for k, v in r.raw_headers:
        if k.lower() == "set-cookie" and "crm_login=" not in v.split(";", 1)[0]:
            parts = [p.strip() for p in v.split(";")]
            return parts[0], {p.split("=")[0].lower(): (p.split("=", 1) + [""])[1]
                              for p in parts[1:]}
    return None, {}


LOGIN_TOKEN = "/api/v1/auth/login-token"
REAUTH = "/api/v1/auth/reauth"


def login_cookie(r):
    """The "name=value" of the pre-session cookie set by `r`, or None."""
    for k, v in r.raw_headers:
        if k.lower() == "set-cookie" and v.split("=", 1)[0] in ("crm_login", "__Host-crm_login"):
            return v.split(";", 1)[0]
    return None


def browser_login(srv, username="admin", password=lib.ADMIN_PASSWORD, headers=None):
    """Log in as the web UI does (S6): fetch the pre-session token, then POST the login
    with its cookie and the X-Login-Token header. Returns the login's Response."""
    h = dict(headers or {})
    t = status(srv.get(LOGIN_TOKEN, token="", headers=h), 200, "login-token")
    cookie = login_cookie(t)
    ok(cookie, "login-token sets its cookie")
    eq(cookie.split("=", 1)[1], t.json["login_token"], "cookie and body carry one token")
    h.update({"Cookie": cookie, t.json["header"]: t.json["login_token"]})
    return srv.login_response(username, password, headers=h)


def test_login_answers_token_user_and_cookie(srv):
    r = status(browser_login(srv), 200)
    j = r.json
    ok(j["token"].startswith("crms_"), "bearer form of the session")
    eq(j["user"]["username"], "admin", "user")
    eq(j["user"]["is_admin"], True, "is_admin")
    ok(set(j["user"]) >= {"id", "username", "display_name", "is_admin"}, "user fields")
    eq(j["csrf_header"], "X-CSRF-Token", "csrf header name")
    ok(len(j["csrf_token"]) >= 32, "csrf token")
    first, attrs = cookie_attrs(r)
    name, value = first.split("=", 1)
    eq(name, "crm_sid", "cookie name over plain http")
    ok(len(value) >= 43, "cookie carries >= 32 random bytes")
    ok("httponly" in attrs, "HttpOnly")
    eq(attrs.get("samesite"), "Strict", "SameSite")
    eq(attrs.get("path"), "/", "Path")
    ok("domain" not in attrs, "no Domain")
    ok("secure" not in attrs, "no Secure on plain http (cookies must work on 127.0.0.1)")
    eq(j["token"][5:], value, "token and cookie name the same session")
    status(srv.get(ME, token=j["token"]), 200, "token works")


def test_cookie_over_https_proxy_is_host_prefixed_and_secure(srv):
    r = status(browser_login(srv, headers={"X-Forwarded-Proto": "https"}), 200)
    first, attrs = cookie_attrs(r)
    ok(first.startswith("__Host-crm_sid="), "__Host- prefix: %s" % first[:20])
    ok("secure" in attrs, "Secure")
    ok("domain" not in attrs, "no Domain")
    ok(r.header("Strict-Transport-Security"), "HSTS over https")
    r2 = status(srv.get(ME, token="", headers={"Cookie": first}), 200, "__Host- cookie accepted")


def test_wrong_password_and_unknown_user_look_the_same(srv):
    t_wrong, t_unknown = [], []
    for _ in range(2):
        t0 = time.time()
        a = error(srv.post(LOGIN, {"username": "admin", "password": "not-the-password"}, token=""),
                  401, "invalid_credentials")
        t_wrong.append(time.time() - t0)
        t0 = time.time()
        b = error(srv.post(LOGIN, {"username": "nobody", "password": "not-the-password"},
                           token=""), 401, "invalid_credentials")
        t_unknown.append(time.time() - t0)
        eq(a.json, b.json, "same answer")
        eq(a.json["error"]["message"], "invalid username or password", "message")
    ok(min(t_unknown) > 0.4 * min(t_wrong),
       "unknown user costs the hashing too (%.3f vs %.3f s)" % (min(t_unknown), min(t_wrong)))


def test_disabled_user_is_refused(srv):
    srv.user("carol", password="carol-password-1")
    srv.cli("user", "disable", "carol")
    r = error(srv.login_response("carol", "carol-password-1"), 403, "user_disabled")
    eq(r.json["error"]["message"], "user disabled", "message")
    # A wrong password says nothing about the account's state.
    error(srv.login_response("carol", "wrong-password-1"), 401, "invalid_credentials")


def test_throttling_after_repeated_failures(srv):
    srv.user("dave", password="dave-password-1")
    for i in range(5):
        error(srv.login_response("dave", "wrong-password-%d" % i), 401, "invalid_credentials")
    r = error(srv.login_response("dave", "dave-password-1"), 429, "throttled")
    ok(int(r.header("Retry-After")) >= 1, "Retry-After: %r" % r.header("Retry-After"))
    # Other accounts from the same address are not locked out by one account's failures.
    status(srv.login_response(), 200, "admin still logs in")


def test_throttling_per_address(srv):
    for i in range(20):
        error(srv.login_response("ghost%d" % i, "wrong-password"), 401, "invalid_credentials")
    r = error(srv.login_response(), 429, "throttled")
    ok(r.header("Retry-After"), "Retry-After")


def test_logout_ends_the_session_for_token_and_cookie(srv):
    r = browser_login(srv)
    token, cookie = r.json["token"], lib.session_cookie(r)
    status(srv.get(ME, token=token), 200)
    status(srv.get(ME, token="", headers={"Cookie": cookie}), 200)
    out = status(srv.post(LOGOUT, token=token), 204)
    _, attrs = cookie_attrs(out)
    eq(attrs.get("max-age"), "0", "cookie cleared")
    error(srv.get(ME, token=token), 401, "unauthenticated")
    error(srv.get(ME, token="", headers={"Cookie": cookie}), 401, "unauthenticated")
    # Logout by cookie (with its CSRF header).
    r = browser_login(srv)
    cookie = lib.session_cookie(r)
    status(srv.post(LOGOUT, token="", headers={"Cookie": cookie,
                                               "X-CSRF-Token": r.json["csrf_token"]}), 204)
    error(srv.get(ME, token="", headers={"Cookie": cookie}), 401)
    # An API token cannot "log out".
    tok = srv.cli("token", "create", "admin").stdout.strip()
    error(srv.post(LOGOUT, token=tok), 400)


def test_cookie_writes_need_csrf_header_and_same_origin(srv):
    r = browser_login(srv)
    cookie, csrf = lib.session_cookie(r), r.json["csrf_token"]
    uid = r.json["user"]["id"]
    path = "%s/%d" % (USERS, uid)
    h = {"Cookie": cookie}
    status(srv.get(ME, token="", headers=h), 200, "cookie GET")
    me = srv.get(ME, token="", headers=h)
    eq(me.header("X-CSRF-Token"), csrf, "me hands the CSRF token back")
    error(srv.patch(path, {"display_name": "A"}, token="", headers=h), 403, "csrf")
    error(srv.patch(path, {"display_name": "A"}, token="",
                    headers=dict(h, **{"X-CSRF-Token": "x" * 43})), 403, "csrf")
    good = dict(h, **{"X-CSRF-Token": csrf})
    r = status(srv.patch(path, {"display_name": "Admin A"}, token="", headers=good), 200)
    eq(r.json["display_name"], "Admin A", "written")
    error(srv.patch(path, {"display_name": "B"}, token="",
                    headers=dict(good, Origin="http://evil.example")), 403, "csrf")
    error(srv.patch(path, {"display_name": "B"}, token="",
                    headers=dict(good, **{"Sec-Fetch-Site": "cross-site"})), 403, "csrf")
    status(srv.patch(path, {"display_name": "Admin C"}, token="",
                     headers=dict(good, Origin="http://127.0.0.1:%d" % srv.port)), 200,
           "own origin")
    # Another session's CSRF token does not fit this cookie.
    other = srv.login_response().json["csrf_token"]
    error(srv.patch(path, {"display_name": "D"}, token="",
                    headers=dict(h, **{"X-CSRF-Token": other})), 403, "csrf")
    # Bearer requests need no CSRF header.
    status(srv.patch(path, {"display_name": "E"}), 200, "bearer write")


def test_login_from_another_site_is_refused(srv):
    error(srv.login_response(headers={"Origin": "http://evil.example"}), 403, "csrf")
    error(srv.login_response(headers={"Sec-Fetch-Site": "cross-site"}), 403, "csrf")
    status(srv.login_response(headers={"Origin": "http://127.0.0.1:%d" % srv.port}), 200)


def test_login_token_cookie_attributes(srv):
    r = status(srv.get(LOGIN_TOKEN, token=""), 200)
    eq(r.json["header"], "X-Login-Token", "header name")
    ok(len(r.json["login_token"]) >= 43, "32 random bytes")
    for k, v in r.raw_headers:
        if k.lower() == "set-cookie":
            parts = [p.strip() for p in v.split(";")]
            attrs = {p.split("=")[0].lower(): (p.split("=", 1) + [""])[1] for p in parts[1:]}
            ok(parts[0].startswith("crm_login="), "name: %s" % parts[0][:12])
            ok("httponly" in attrs, "HttpOnly")
            eq(attrs.get("samesite"), "Strict", "SameSite")
            eq(attrs.get("max-age"), "600", "short-lived")
    other = status(srv.get(LOGIN_TOKEN, token=""), 200).json["login_token"]
    ok(other != r.json["login_token"], "a new token each time")


def test_browser_login_needs_the_pre_session_token(srv):
    """S6: a login carrying the pre-session cookie must carry its token in X-Login-Token;
    only such a login sets the session cookie."""
    t = status(srv.get(LOGIN_TOKEN, token=""), 200)
    cookie, tok = login_cookie(t), t.json["login_token"]
    # The cookie without the header (a form or fetch from another page): refused.
    r = error(srv.login_response(headers={"Cookie": cookie}), 403, "csrf")
    ok("login-token" in r.json["error"]["message"], "says how: %s" % r.json["error"]["message"])
    ok(lib.session_cookie(r) is None, "no session cookie on refusal")
    # A wrong token, another login-token's token, or the header without the cookie.
    error(srv.login_response(headers={"Cookie": cookie, "X-Login-Token": "A" * 43}), 403, "csrf")
    other = status(srv.get(LOGIN_TOKEN, token=""), 200).json["login_token"]
    error(srv.login_response(headers={"Cookie": cookie, "X-Login-Token": other}), 403, "csrf")
    error(srv.login_response(headers={"X-Login-Token": tok}), 403, "csrf")
    # Refused before the password is looked at: no throttling bookkeeping either.
    for _ in range(6):
        error(srv.login_response("admin", "wrong-password-1", headers={"Cookie": cookie}), 403,
              "csrf")
    good = {"Cookie": cookie, "X-Login-Token": tok}
    # From another site, even with the right token: refused.
    error(srv.login_response(headers=dict(good, Origin="http://evil.example")), 403, "csrf")
    error(srv.login_response(headers=dict(good, **{"Sec-Fetch-Site": "cross-site"})), 403, "csrf")
    # The matching pair: a session cookie, and the pre-session cookie used up.
    r = status(srv.login_response(headers=dict(good, **{"Sec-Fetch-Site": "same-origin"})), 200)
    ok(lib.session_cookie(r), "session cookie set")
    cleared = [v for k, v in r.raw_headers if k.lower() == "set-cookie"
               and v.startswith("crm_login=")]
    ok(cleared and "Max-Age=0" in cleared[0], "pre-session cookie cleared: %r" % cleared)
    status(srv.get(ME, token="", headers={"Cookie": lib.session_cookie(r)}), 200, "cookie works")


def test_script_login_gets_a_token_and_no_cookie(srv):
    """A login without the pre-session cookie is a script's: the bearer token in the body,
    and no Set-Cookie, which is what a login CSRF would need to plant a session."""
    r = status(srv.login_response(), 200)
    ok(r.json["token"].startswith("crms_"), "bearer token")
    ok(not [k for k, _ in r.raw_headers if k.lower() == "set-cookie"], "no cookie set")
    status(srv.get(ME, token=r.json["token"]), 200)


def test_preset_cookie_is_not_adopted(srv):
    planted = "A" * 43
    error(srv.get(ME, token="", headers={"Cookie": "crm_sid=" + planted}), 401)
    r = srv.post(LOGIN, {"username": "admin", "password": lib.ADMIN_PASSWORD}, token="",
                 headers={"Cookie": "crm_sid=" + planted})
    ok(lib.session_cookie(r) != "crm_sid=" + planted, "a new session id at login")
    error(srv.get(ME, token="", headers={"Cookie": "crm_sid=" + planted}), 401)


def test_api_token_works_and_revocation_ends_it(srv):
    tok = srv.cli("token", "create", "admin", "--name", "ci").stdout.strip()
    ok(tok.startswith("crm_"), "API token shape")
    r = status(srv.get(ME, token=tok), 200)
    eq(r.json["username"], "admin", "me via API token")
    tokens = json.loads(srv.cli("token", "list", "--json").stdout)
    tid = [t for t in tokens if t["name"] == "ci"][0]["id"]
    srv.cli("token", "revoke", str(tid))
    error(srv.get(ME, token=tok), 401, "unauthenticated")
    error(srv.get(ME, token=tok[:-1] + ("A" if tok[-1] != "A" else "B")), 401)


def test_sessions_are_stored_hashed(srv):
    r = srv.login_response()
    secret = r.json["token"][5:]
    csrf = r.json["csrf_token"]
    with db(srv) as c:
        rows = c.execute("SELECT * FROM core_session").fetchall()
        hashes = [row[0] for row in c.execute("SELECT hash FROM core_session")]
    ok(rows, "sessions exist")
    for row in rows:
        for cell in row:
            ok(secret not in str(cell) and csrf not in str(cell), "no secret in %r" % (row,))
    ok(hashlib.sha256(secret.encode()).hexdigest() in hashes, "SHA-256 of the secret stored")


def test_overlong_password_is_400_fast(srv):
    t0 = time.time()
    r = error(srv.login_response("admin", "x" * 1025), 400, field="password")
    took = time.time() - t0
    ok(took < 0.2, "answered in %.3f s" % took)
    ok("1024" in r.json["error"]["message"], "names the limit")


def test_password_change_ends_other_sessions(srv):
    uid, _ = srv.user("erin", password="erin-password-1")
    s1 = srv.login_response("erin", "erin-password-1").json["token"]
    s2 = srv.login_response("erin", "erin-password-1").json["token"]
    pw = "%s/%d/password" % (USERS, uid)
    error(srv.post(pw, {"password": "erin-password-2"}, token=s1), 400, field="current_password")
    error(srv.post(pw, {"password": "erin-password-2", "current_password": "wrong-one-1"},
                   token=s1), 403, field="current_password")
    status(srv.post(pw, {"password": "erin-password-2", "current_password": "erin-password-1"},
                    token=s1), 204)
    status(srv.get(ME, token=s1), 200, "the changing session lives on")
    error(srv.get(ME, token=s2), 401, what="other session ended")
    error(srv.login_response("erin", "erin-password-1"), 401, "invalid_credentials")
    s3 = status(srv.login_response("erin", "erin-password-2"), 200).json["token"]
    # An admin resetting it ends every session of the user.
    status(srv.post(pw, {"password": "erin-password-3"}), 204)
    error(srv.get(ME, token=s1), 401, what="admin reset ends s1")
    error(srv.get(ME, token=s3), 401, what="admin reset ends s3")
    # Someone else's password: admins only.
    _, frank = srv.user("frank", password="frank-password-1")
    error(srv.post(pw, {"password": "hijacked-pass-1"}, token=frank), 403)
    error(srv.post(pw, {"password": "short"}), 400, field="password")


def test_users_admin_endpoints(srv):
    r = status(srv.post(USERS, {"username": "gina", "password": "gina-password-1",
                                "display_name": "Gina", "email": "gina@example.com"}), 201)
    gid = r.json["id"]
    eq(r.json["username"], "gina", "username")
    eq(r.json["email"], "gina@example.com", "email")
    eq(r.json["is_admin"], False, "not admin")
    error(srv.post(USERS, {"username": "gina", "password": "other-password-1"}), 409,
          field="username")
    error(srv.post(USERS, {"username": "Bad Name!", "password": "other-password-1"}), 400,
          field="username")
    error(srv.post(USERS, {"username": "hank", "password": "short"}), 400, field="password")
    error(srv.post(USERS, {"username": "hank", "password": "hank-password-1", "role": "x"}), 400,
          field="role")
    # A bad e-mail creates nothing.
    error(srv.post(USERS, {"username": "ivan", "password": "ivan-password-1",
                           "email": "not-an-email"}), 400, field="email")
    names = [u["username"] for u in status(srv.get(USERS), 200).json["data"]]
    ok("gina" in names and "ivan" not in names, "list: %r" % names)
    status(srv.get("%s/%d" % (USERS, gid)), 200)
    error(srv.get("%s/999999" % USERS), 404)

    r = status(srv.patch("%s/%d" % (USERS, gid), {"display_name": "Gina G", "is_admin": True}),
               200)
    eq((r.json["display_name"], r.json["is_admin"]), ("Gina G", True), "patched")
    error(srv.patch("%s/%d" % (USERS, gid), {"username": "x"}), 400, field="username")
    error(srv.patch("%s/%d" % (USERS, gid), {"email": "nope"}), 400, field="email")
    error(srv.patch("%s/999999" % USERS, {"display_name": "x"}), 404)

    # Disabling ends the user's sessions and refuses logins.
    tok = srv.login("gina", "gina-password-1")
    status(srv.patch("%s/%d" % (USERS, gid), {"disabled": True}), 200)
    error(srv.get(ME, token=tok), 401)
    error(srv.login_response("gina", "gina-password-1"), 403, "user_disabled")
    status(srv.patch("%s/%d" % (USERS, gid), {"disabled": False}), 200)
    status(srv.login_response("gina", "gina-password-1"), 200)

    # The last administrator stays.
    admin_id = srv.user_id("admin")
    status(srv.patch("%s/%d" % (USERS, gid), {"is_admin": False}), 200)
    error(srv.patch("%s/%d" % (USERS, admin_id), {"disabled": True}), 409)
    error(srv.patch("%s/%d" % (USERS, admin_id), {"is_admin": False}), 409)

    with db(srv) as c:
        actions = [row[0] for row in c.execute(
            "SELECT action FROM core_audit WHERE target = ?", ("core.user:%d" % gid,))]
        details = " ".join(row[0] for row in c.execute("SELECT detail FROM core_audit"))
    ok("user.create" in actions and "user.update" in actions, "audit rows: %r" % actions)
    ok("gina-password-1" not in details, "no password in the audit")


def test_demoted_admin_loses_admin_rights_within_a_second(srv):
    uid, tok = srv.user("kim", password="kim-password-1", admin=True)
    status(srv.get(USERS, token=tok), 200, "admin")
    status(srv.patch("%s/%d" % (USERS, uid), {"is_admin": False}), 200)
    time.sleep(1.2)
    for _ in range(4):  # whichever pool thread answers
        error(srv.get(USERS, token=tok), 403, "denied")


def test_users_endpoints_need_an_admin(srv):
    uid, tok = srv.user("jo", password="jo-password-1")
    for method, path, body in (("GET", USERS, None), ("POST", USERS,
                                                      {"username": "x", "password": "x" * 10}),
                               ("GET", "%s/%d" % (USERS, uid), None),
                               ("PATCH", "%s/%d" % (USERS, uid), {"is_admin": True})):
        error(srv.request(method, path, body=body, token=tok), 403, "denied",
              what="%s %s as non-admin" % (method, path))
        error(srv.request(method, path, body=body, token=""), 401, "unauthenticated",
              what="%s %s without auth" % (method, path))
    r = status(srv.get(ME, token=tok), 200)
    eq(r.json["is_admin"], False, "still not admin")


def test_idle_and_absolute_session_timeouts():
    t0 = 1_900_000_000
    srv = lib.Server(env={"CRM_CLOCK": str(t0)}).start()
    try:
        tok = srv.login()
        srv.stop()
        srv.env["CRM_CLOCK"] = str(t0 + 3600)
        srv.start()
        status(srv.get(ME, token=tok), 200, "after 1 h")
        srv.stop()
        srv.env["CRM_CLOCK"] = str(t0 + 3600 + 8 * 3600 + 1)
        srv.start()
        error(srv.get(ME, token=tok), 401, what="after 8 h idle")
        # Absolute: used every few hours, still over after 7 days.
        tok = srv.login()
        now = t0 + 3600 + 8 * 3600 + 1
        for _ in range(25):
            srv.stop()
            now += 7 * 3600
            srv.env["CRM_CLOCK"] = str(now)
            srv.start()
            r = srv.get(ME, token=tok)
            if r.status == 401:
                break
        ok(r.status == 401, "session ended by the absolute timeout")
        ok(now - (t0 + 9 * 3600 + 1) >= 7 * 86400 - 7 * 3600, "not before 7 days")
    finally:
        srv.close()


def guarded_routes(srv):
    """Every administrative change (A4) as (method, path, body), on fresh objects."""
    role = status(srv.post("/api/v1/records/core.role", {"name": "r%d" % time.time_ns()}),
                  201).json["id"]
    team = status(srv.post("/api/v1/records/core.team", {"name": "t%d" % time.time_ns()}),
                  201).json["id"]
    uid = srv.user_id("admin")
    other, _ = srv.user("u%d" % (time.time_ns() % 10**9), password="other-password-1")
    return [("PUT", "/api/v1/roles/%d/grants" % role, {"grants": {"core.role": {"read": "all"}}}),
            ("POST", "/api/v1/users/%d/roles/%d" % (other, role), None),
            ("DELETE", "/api/v1/users/%d/roles/%d" % (other, role), None),
            ("POST", "/api/v1/teams/%d/members/%d" % (team, other), None),
            ("DELETE", "/api/v1/teams/%d/members/%d" % (team, other), None),
            ("POST", "/api/v1/rules/reload", {}),
            ("POST", USERS, {"username": "n%d" % (time.time_ns() % 10**9),
                             "password": "new-password-1"}),
            ("PATCH", "%s/%d" % (USERS, other), {"is_admin": True}),
            ("POST", "%s/%d/password" % (USERS, other), {"password": "reset-password-1"}),
            ("PATCH", "/api/v1/records/core.user/%d" % other, {"is_admin": True}),
            ("PATCH", "/api/v1/records/core.role/%d" % role, {"name": "renamed"}),
            ("GET", "%s/%d" % (USERS, uid), None)]  # a read: never needs re-authentication


def restart_at(srv, clock):
    srv.stop()
    srv.env["CRM_CLOCK"] = str(clock)
    srv.start()


def test_admin_changes_need_recent_auth():
    """A4: ten minutes after the login, each administrative change is 403 reauth_required;
    POST /auth/reauth with the password makes them pass again; reads never ask."""
    t0 = 1_900_000_000
    srv = lib.Server(env={"CRM_CLOCK": str(t0)}).start()
    try:
        tok = srv.admin()
        routes = guarded_routes(srv)
        _, plain = srv.user("plain", password="plain-password-1")
        restart_at(srv, t0 + 9 * 60)
        # Within ten minutes of the login: recent enough.
        status(srv.request(*routes[0][:2], body=routes[0][2]), 200, "9 min after login")
        restart_at(srv, t0 + 11 * 60)
        for method, path, body in routes:
            r = srv.request(method, path, body=body)
            if method == "GET":
                status(r, 200, "read after 11 min")
                continue
            r = error(r, 403, "reauth_required", what="%s %s stale" % (method, path))
            ok("/api/v1/auth/reauth" in r.json["error"]["message"], "says how: %r" % r.json)
            # A non-admin is refused as before, not asked to re-authenticate.
            if not path.startswith("/api/v1/records/") and "/password" not in path:
                error(srv.request(method, path, body=body, token=plain), 403, "denied",
                      what="%s %s as non-admin" % (method, path))
        # the same write through an import of core.user: no way around the guard
        other = [int(p.split("/")[-1]) for m, p, b in routes if "records/core.user/" in p][0]
        csv_admin = "id,is_admin\r\n%d,true\r\n" % other
        error(srv.request("POST", "/api/v1/import/core.user?mode=all", raw=csv_admin,
                          headers={"Content-Type": "text/csv"}), 403, "reauth_required",
              what="import into core.user stale")
        r = error(srv.post(REAUTH, {"password": "not-the-password"}), 401, "invalid_credentials")
        error(srv.request(*routes[0][:2], body=routes[0][2]), 403, "reauth_required",
              what="still stale after a wrong password")
        error(srv.post(REAUTH, {}), 400, field="password")
        r = status(srv.post(REAUTH, {"password": lib.ADMIN_PASSWORD}), 200)
        ok(r.json["valid_until"] > r.json["reauth_at"], "window: %r" % r.json)
        for method, path, body in routes:
            r = srv.request(method, path, body=body)
            ok(r.status in (200, 201, 204), "%s %s after reauth: %r" % (method, path, r))
        status(srv.request("POST", "/api/v1/import/core.user?mode=all", raw=csv_admin,
                           headers={"Content-Type": "text/csv"}), 200, "import after reauth")
        # The same session, ten more minutes on: stale again.
        restart_at(srv, t0 + 22 * 60)
        error(srv.request(*routes[0][:2], body=routes[0][2]), 403, "reauth_required",
              what="stale again")
        # A fresh login is recent.
        srv.admin()
        status(srv.request(*routes[0][:2], body=routes[0][2]), 200, "fresh login")
        ok(tok != srv.token, "a new session")
    finally:
        srv.close()


def test_reauth_failures_are_throttled(srv):
    for i in range(5):
        error(srv.post(REAUTH, {"password": "wrong-password-%d" % i}), 401, "invalid_credentials")
    r = error(srv.post(REAUTH, {"password": lib.ADMIN_PASSWORD}), 429, "throttled")
    ok(int(r.header("Retry-After")) >= 1, "Retry-After")
    # They count as the account's failed logins, too.
    error(srv.login_response(), 429, "throttled")


def test_reauth_by_cookie_needs_csrf(srv):
    r = browser_login(srv)
    h = {"Cookie": lib.session_cookie(r)}
    error(srv.post(REAUTH, {"password": lib.ADMIN_PASSWORD}, token="", headers=h), 403, "csrf")
    status(srv.post(REAUTH, {"password": lib.ADMIN_PASSWORD}, token="",
                    headers=dict(h, **{"X-CSRF-Token": r.json["csrf_token"]})), 200)


def test_api_tokens_need_admin_actions_for_admin_changes(srv):
    """A token has no password to re-authenticate with: only one issued with
    --admin-actions makes administrative changes; reads work with any."""
    plain = srv.cli("token", "create", "admin", "--name", "sync").stdout.strip()
    admin = srv.cli("token", "create", "admin", "--name", "deploy",
                    "--admin-actions").stdout.strip()
    status(srv.get(USERS, token=plain), 200, "reads with a plain token")
    r = error(srv.post("/api/v1/rules/reload", {}, token=plain), 403, "reauth_required")
    ok("--admin-actions" in r.json["error"]["message"], "says how: %r" % r.json)
    error(srv.post(REAUTH, {"password": lib.ADMIN_PASSWORD}, token=plain), 400)
    status(srv.post("/api/v1/rules/reload", {}, token=admin), 200, "admin-actions token")
    tokens = {t["name"]: t for t in json.loads(srv.cli("token", "list", "--json").stdout)}
    eq((tokens["sync"]["admin_actions"], tokens["deploy"]["admin_actions"]), (False, True),
       "token list shows the scope")
    # A non-admin's token with the scope is still no admin.
    srv.user("lee", password="lee-password-1")
    lee = srv.cli("token", "create", "lee", "--admin-actions").stdout.strip()
    error(srv.post("/api/v1/rules/reload", {}, token=lee), 403, "denied")


if __name__ == "__main__":
    for name in ("test_idle_and_absolute_session_timeouts", "test_admin_changes_need_recent_auth"):
        globals()[name] = (lambda f: lambda srv: f())(globals()[name])
    lib.run(globals(), "api_auth")
