/*
 * api_auth.c — the authentication endpoints and users administration:
 *   GET   /api/v1/auth/login-token      (public)  → pre-session token + its cookie (S6)
 *   POST  /api/v1/auth/login            (public)  → token, user, CSRF token, cookie
 *   POST  /api/v1/auth/reauth                     → 200, the session re-authenticated (A4)
 *   POST  /api/v1/auth/logout                     → 204, session ended, cookie cleared
 *   GET   /api/v1/auth/me                         → the user
 *   GET   /api/v1/users                 (admin)   → {"data":[user...],"next":null}
 *   POST  /api/v1/users                 (admin)   → 201 user
 *   GET   /api/v1/users/{id}            (admin)   → user
 *   PATCH /api/v1/users/{id}            (admin)   → user (disabled, display_name, email, is_admin)
 *   (POST /users and PATCH /users/{id} are administrative changes: recent auth, A4)
 *   POST  /api/v1/users/{id}/password             → 204 (admin; or the user with current_password)
 *
 * Decisions:
 *   - The login's "token" is the session's bearer form ("crms_" + the cookie's
 *     secret): scripts and browsers hold the same session, and logout ends it
 *     for both. Long-lived API tokens come from `crm token create`.
 *   - Changing a password ends the user's other sessions (their current one
 *     survives when they change their own). Disabling a user ends all of
 *     theirs. The last enabled administrator can be neither disabled nor
 *     demoted (409), so a site cannot lock itself out.
 *   - Changing one's own password needs the current one, admins included: a
 *     stolen session must not be enough to take over the account.
 *   - Every change to a user writes a core_audit row (who, what, which
 *     fields; never a password) in the change's transaction.
 *   - Login CSRF (S6). The attack is a page on another site logging the
 *     victim's browser into the attacker's account, so that what the victim
 *     then types lands there; what it needs is the session cookie our answer
 *     sets. So the cookie is set only for a login that proves it comes from
 *     our own page: the pre-session token of GET /auth/login-token, sent back
 *     in X-Login-Token and matching the HttpOnly, SameSite=Strict cookie of
 *     the same name (double submit; another site can neither read the token
 *     nor set our cookie). A login without that cookie is a script's: it
 *     gets the bearer token in the JSON body and no cookie, which plants
 *     nothing in a browser (another site cannot read the body). A login
 *     that carries the cookie with a wrong or missing header is refused
 *     (403 csrf), and so is any login from another site (Sec-Fetch-Site,
 *     Origin: http.c), whatever it carries.
 *   - Re-authentication (A4): POST /auth/reauth {"password"} marks the
 *     session as having proven the password now; it is throttled and
 *     counted like a login (a stolen session must not become a password
 *     oracle). API tokens cannot re-authenticate (no password): they are
 *     given the right at issue time, `crm token create --admin-actions`.
 */
#include "api.h"

#include "auth.h"
#include "perm.h"
#include "record.h"
#include "session.h"

#include <inttypes.h>
#include <sodium.h>
#include <string.h>

static json_t *column_string_or_null(crm_stmt *st, int col)
{
    const char *s = crm_stmt_column_text(st, col);
    return s ? json_string(s) : json_null();
}

/* The API's view of a user: {"id","username","display_name","email","is_admin","disabled"}. */
static int user_json(crm_kernel *k, int64_t id, json_t **out)
{
    crm_stmt *st;
    int rc;

    *out = NULL;
    rc = crm_stmt_prepare(crm_store_conn(k->store), &st,
                          "SELECT id, username, display_name, email, COALESCE(is_admin, 0), "
                          "COALESCE(disabled, 0) FROM \"core.user\" "
                          "WHERE id = ? AND deleted_at IS NULL");
    if (rc < 0) return rc;
    crm_stmt_bind_int(st, 1, id);
    rc = crm_stmt_step(st);
    if (rc == 1)
        *out = json_pack(
            "{s:I, s:o, s:o, s:o, s:b, s:b}", "id", (json_int_t)crm_stmt_column_int(st, 0),
            "username", column_string_or_null(st, 1), "display_name", column_string_or_null(st, 2),
            "email", column_string_or_null(st, 3), "is_admin", crm_stmt_column_int(st, 4) != 0,
            "disabled", crm_stmt_column_int(st, 5) != 0);
    crm_stmt_done(st);
    if (rc < 0) return rc;
    if (rc == 0) return crm_error_set(CRM_ENOTFOUND, NULL, "no user with id %" PRId64, id);
    return CRM_OK;
}

/* An append-only audit row in the caller's transaction. Takes `detail`. */
static int audit(crm_req *req, const char *action, int64_t target_user, json_t *detail)
{
    crm_conn *conn = crm_ctx_conn(crm_req_ctx(req));
    char at[21], target[40];
    char *text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
    crm_stmt *st;
    int rc;

    json_decref(detail);
    crm_time_format(crm_now(), at);
    snprintf(target, sizeof target, "core.user:%" PRId64, target_user);
    rc = crm_stmt_prepare(conn, &st,
                          "INSERT INTO core_audit (at, user_id, action, target, detail) "
                          "VALUES (?, ?, ?, ?, ?)");
    if (rc < 0) goto done;
    crm_stmt_bind_text(st, 1, at, -1);
    if (crm_req_user(req))
        crm_stmt_bind_int(st, 2, crm_req_user(req));
    else
        crm_stmt_bind_null(st, 2);
    crm_stmt_bind_text(st, 3, action, -1);
    crm_stmt_bind_text(st, 4, target, -1);
    crm_stmt_bind_text(st, 5, text ? text : "{}", -1);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    if (rc > 0) rc = CRM_OK;
done:
    free(text);
    return rc;
}

static void wipe_free(char *s)
{
    if (!s) return;
    sodium_memzero(s, strlen(s));
    free(s);
}

static void set_session_cookie(crm_req *req, const char *secret, int64_t max_age)
{
    bool https = crm_req_https(req);
    char *cookie = crm_sprintf("%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%" PRId64 "%s",
                               https ? CRM_SESSION_COOKIE_SECURE : CRM_SESSION_COOKIE, secret,
                               max_age, https ? "; Secure" : "");
    crm_req_set_header(req, "Set-Cookie", cookie);
    wipe_free(cookie);
}

/* ---- auth ---- */

static const char *login_cookie(crm_req *req)
{
    const char *v = crm_req_cookie(req, CRM_LOGIN_COOKIE_SECURE);
    return v ? v : crm_req_cookie(req, CRM_LOGIN_COOKIE);
}

static void set_login_cookie(crm_req *req, const char *value, int max_age)
{
    bool https = crm_req_https(req);
    char *cookie = crm_sprintf("%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s",
                               https ? CRM_LOGIN_COOKIE_SECURE : CRM_LOGIN_COOKIE, value, max_age,
                               https ? "; Secure" : "");
    crm_req_set_header(req, "Set-Cookie", cookie);
    wipe_free(cookie);
}

/* 429 with Retry-After: the account or the address failed too often (S3). */
static int reply_throttled(crm_req *req, int wait)
{
    char ra[16];
    snprintf(ra, sizeof ra, "%d", wait);
    crm_req_set_header(req, "Retry-After", ra);
    return crm_req_reply_error(req, 429, "throttled", NULL,
                               "too many failed attempts; try again in %d seconds", wait);
}

/*
 * A signed-in user proving their password again (re-authentication, changing
 * their own password), under the login throttling: while throttled, 429 is
 * answered and *answered set; a wrong password counts as a failed login.
 * Returns CRM_OK when `password` is user `uid`'s, CRM_EDENIED when it is not.
 */
static int verify_own_password(crm_kernel *k, crm_req *req, const char *username, int64_t uid,
                               const char *password, bool *answered)
{
    const char *ip = crm_req_ip(req);
    int64_t check = 0;
    int wait, rc;
    *answered = false;
    if ((wait = crm_login_throttled(username, ip)) > 0) {
        *answered = true;
        return reply_throttled(req, wait);
    }
    rc = crm_user_authenticate(k, username, password, &check);
    if (rc == CRM_EDENIED || (rc == CRM_OK && check != uid)) {
        crm_login_record(username, ip, false);
        return CRM_EDENIED;
    }
    if (rc == CRM_OK) crm_login_record(username, ip, true);
    return rc;
}

/* GET /auth/login-token: what a browser's login form fetches first (S6). */
static int login_token(crm_req *req, void *udata)
{
    char token[CRM_SESSION_SECRET_LEN + 1];
    int rc;
    (void)udata;
    crm_login_token_new(token);
    set_login_cookie(req, token, CRM_LOGIN_TOKEN_TTL);
    rc = crm_req_reply_json(req, 200,
                            json_pack("{s:s, s:s, s:i}", "login_token", token, "header",
                                      CRM_LOGIN_HEADER, "expires_in", CRM_LOGIN_TOKEN_TTL));
    sodium_memzero(token, sizeof token);
    return rc;
}

static int login(crm_req *req, void *udata)
{
    crm_kernel *k = udata;
    json_t *body = crm_req_json(req), *user = NULL;
    const char *username, *password, *ip = crm_req_ip(req);
    char *secret = NULL, *csrf = NULL, *token = NULL, expires[21];
    const char *pre_cookie = login_cookie(req), *pre_header = crm_req_header(req, CRM_LOGIN_HEADER);
    int64_t uid = 0, sid = 0;
    bool browser = false;
    int wait, rc;

    /* Before the password is looked at: a forged login costs no hashing and no throttling. */
    if (pre_cookie || pre_header) {
        if (!crm_login_token_ok(pre_cookie, pre_header))
            return crm_req_reply_error(req, 403, "csrf", NULL,
                                       "missing, wrong or expired " CRM_LOGIN_HEADER
                                       ": GET /api/v1/auth/login-token and send its token in "
                                       "that header");
        browser = true;
    }
    if (!json_is_object(body))
        return crm_error_set(CRM_EINVALID, NULL,
                             "expected a JSON object {\"username\",\"password\"}");
    username = json_string_value(json_object_get(body, "username"));
    password = json_string_value(json_object_get(body, "password"));
    if (!username || !*username)
        return crm_error_set(CRM_EINVALID, "username", "username is required (a string)");
    if (!password)
        return crm_error_set(CRM_EINVALID, "password", "password is required (a string)");
    /* Before any hashing or throttling bookkeeping: a huge password costs nothing (S2). */
    if (strlen(password) > CRM_PASSWORD_MAX)
        return crm_error_set(CRM_EINVALID, "password", "password must be at most %d bytes",
                             CRM_PASSWORD_MAX);
    if (strlen(username) > 256)
        return crm_error_set(CRM_EINVALID, "username", "username is too long");

    if ((wait = crm_login_throttled(username, ip)) > 0) return reply_throttled(req, wait);
    rc = crm_user_authenticate(k, username, password, &uid);
    if (rc == CRM_EDENIED) {
        if (strcmp(crm_error_last()->message, "user disabled") == 0)
            return crm_req_reply_error(req, 403, "user_disabled", NULL, "user disabled");
        crm_login_record(username, ip, false);
        crm_log(CRM_LOG_WARN, "auth: failed login from %s", ip);
        return crm_req_reply_error(req, 401, "invalid_credentials", NULL,
                                   "invalid username or password");
    }
    if (rc < 0) return rc;
    crm_login_record(username, ip, true);
    crm_req__set_user(req, uid);

    if ((rc = user_json(k, uid, &user)) < 0) goto done;
    if ((rc = crm_session_create(k, uid, ip, &secret, &csrf, &sid)) < 0) goto done;
    token = crm_sprintf(CRM_SESSION_TOKEN_PREFIX "%s", secret);
    crm_time_format(crm_now() + crm_session_absolute(), expires);
    if (browser) {
        set_session_cookie(req, secret, crm_session_absolute());
        set_login_cookie(req, "", 0); /* used up */
    }
    crm_log(CRM_LOG_INFO, "auth: user %" PRId64 " logged in from %s (session %" PRId64 ")", uid, ip,
            sid);
    rc = crm_req_reply_json(req, 200,
                            json_pack("{s:s, s:O, s:s, s:s, s:s}", "token", token, "user", user,
                                      "csrf_token", csrf, "csrf_header", CRM_CSRF_HEADER,
                                      "expires_at", expires));
done:
    json_decref(user);
    wipe_free(secret);
    wipe_free(csrf);
    wipe_free(token);
    return rc;
}

static void clear_cookie(crm_req *req)
{
    bool https = crm_req_https(req);
    crm_req_set_header(req, "Set-Cookie",
                       https ? CRM_SESSION_COOKIE_SECURE "=; Path=/; HttpOnly; SameSite=Strict; "
                                                         "Max-Age=0; Secure"
                             : CRM_SESSION_COOKIE
                           "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
}

static int logout(crm_req *req, void *udata)
{
    crm_kernel *k = udata;
    int64_t sid = 0;
    int kind = crm_req__auth(req, &sid, NULL), rc;

    if (kind == CRM_AUTH_TOKEN)
        return crm_error_set(CRM_EINVALID, NULL,
                             "logout ends sessions; API tokens are revoked with \"crm token "
                             "revoke\"");
    if ((rc = crm_session_revoke(k, sid)) < 0) return rc;
    clear_cookie(req);
    return crm_req_reply_data(req, 204, NULL, NULL, 0);
}

static int me(crm_req *req, void *udata)
{
    crm_kernel *k = udata;
    const char *secret = NULL;
    json_t *user;
    int rc;

    if ((rc = user_json(k, crm_req_user(req), &user)) < 0) return rc;
    /* A page reloaded from its cookie gets its CSRF token back here. */
    if (crm_req__auth(req, NULL, &secret) == CRM_AUTH_SESSION_COOKIE && secret) {
        char csrf[CRM_SESSION_SECRET_LEN + 1];
        crm_session_csrf(secret, csrf);
        crm_req_set_header(req, CRM_CSRF_HEADER, csrf);
        sodium_memzero(csrf, sizeof csrf);
    }
    return crm_req_reply_json(req, 200, user);
}

/* ---- users ---- */

static int users_list(crm_req *req, void *udata)
{
    crm_kernel *k = udata;
    json_t *list;
    int rc = crm_user_list(k, &list);
    if (rc < 0) return rc;
    return crm_req_reply_json(req, 200, json_pack("{s:o, s:n}", "data", list, "next"));
}

static int users_get(crm_req *req, void *udata)
{
    crm_kernel *k = udata;
    json_t *user;
    int64_t id;
    int rc;
    if ((rc = crm_req_param_id(req, "id", &id)) < 0 || (rc = user_json(k, id, &user)) < 0)
        return rc;
    return crm_req_reply_json(req, 200, user);
}

/* Keys of `body` must be among `allowed` (NULL-terminated). */
static int only_keys(json_t *body, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0) ok = true;
        if (!ok) return crm_error_set(CRM_EINVALID, key, "unknown field \"%s\"", key);
    }
    return CRM_OK;
}

static int optional_string(json_t *body, const char *key, const char **out)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v)) return CRM_OK;
    if (!json_is_string(v)) return crm_error_set(CRM_EINVALID, key, "%s must be a string", key);
    *out = json_string_value(v);
    return CRM_OK;
}

static int optional_bool(json_t *body, const char *key, int *out /* -1 absent */)
{
    json_t *v = json_object_get(body, key);
    *out = -1;
    if (!v) return CRM_OK;
    if (!json_is_boolean(v))
        return crm_error_set(CRM_EINVALID, key, "%s must be true or false", key);
    *out = json_is_true(v);
    return CRM_OK;
}

/* POST /auth/reauth {"password"}: the session proves its password again (A4). */
static int reauth(crm_req *req, void *udata)
{
    static const char *const allowed[] = {"password", NULL};
    crm_kernel *k = udata;
    json_t *body = crm_req_json(req), *user = NULL;
    const char *password, *username, *ip = crm_req_ip(req);
    char at[21], until[21];
    int64_t sid = 0, uid = crm_req_user(req), now;
    bool answered;
    int rc;

    if (crm_req__auth(req, &sid, NULL) == CRM_AUTH_TOKEN)
        return crm_error_set(CRM_EINVALID, NULL,
                             "API tokens do not re-authenticate; a token for administrative "
                             "changes is issued with `crm token create USER --admin-actions`");
    if (!json_is_object(body))
        return crm_error_set(CRM_EINVALID, NULL, "expected a JSON object {\"password\"}");
    if ((rc = only_keys(body, allowed)) < 0 ||
        (rc = optional_string(body, "password", &password)) < 0)
        return rc;
    if (!password)
        return crm_error_set(CRM_EINVALID, "password", "password is required (a string)");
    if (strlen(password) > CRM_PASSWORD_MAX)
        return crm_error_set(CRM_EINVALID, "password", "password must be at most %d bytes",
                             CRM_PASSWORD_MAX);
    if ((rc = user_json(k, uid, &user)) < 0) return rc;
    username = json_string_value(json_object_get(user, "username"));
    rc = verify_own_password(k, req, username, uid, password, &answered);
    if (answered) goto done;
    if (rc == CRM_EDENIED) {
        crm_log(CRM_LOG_WARN, "auth: failed re-authentication of user %" PRId64 " from %s", uid,
                ip);
        rc = crm_req_reply_error(req, 401, "invalid_credentials", "password", "wrong password");
        goto done;
    }
    if (rc < 0) goto done;
    if ((rc = crm_session_reauth(k, sid)) < 0) goto done;
    now = crm_now();
    crm_time_format(now, at);
    crm_time_format(now + CRM_REAUTH_WINDOW, until);
    crm_log(CRM_LOG_INFO, "auth: user %" PRId64 " re-authenticated (session %" PRId64 ")", uid,
            sid);
    rc = crm_req_reply_json(req, 200,
                            json_pack("{s:s, s:s}", "reauth_at", at, "valid_until", until));
done:
    json_decref(user);
    return rc;
}

static int users_create(crm_req *req, void *udata)
{
    static const char *const allowed[] = {"username", "password", "display_name",
                                          "email",    "is_admin", NULL};
    crm_kernel *k = udata;
    crm_conn *conn = crm_ctx_conn(crm_req_ctx(req));
    json_t *body = crm_req_json(req), *user = NULL;
    const char *username, *password, *display_name, *email;
    int is_admin;
    int64_t id = 0;
    int rc;

    if (!json_is_object(body))
        return crm_error_set(CRM_EINVALID, NULL, "expected a JSON object describing the user");
    if ((rc = only_keys(body, allowed)) < 0 ||
        (rc = optional_string(body, "username", &username)) < 0 ||
        (rc = optional_string(body, "password", &password)) < 0 ||
        (rc = optional_string(body, "display_name", &display_name)) < 0 ||
        (rc = optional_string(body, "email", &email)) < 0 ||
        (rc = optional_bool(body, "is_admin", &is_admin)) < 0)
        return rc;
    if (!username) return crm_error_set(CRM_EINVALID, "username", "username is required");
    if (!password) return crm_error_set(CRM_EINVALID, "password", "password is required");

    /*
     * One transaction, so a bad e-mail creates nothing. It holds the write
     * lock while crm_user_create hashes the password (Argon2id, on purpose
     * slow): acceptable for a rare admin action.
     */
    if ((rc = crm_tx_begin(conn)) < 0) return rc;
    if ((rc = crm_user_create(k, username, password, is_admin == 1, display_name, &id)) < 0)
        goto rollback;
    if (email) {
        json_t *patch = json_pack("{s:s}", "email", email);
        rc = crm_record_update(crm_req_ctx(req), "core.user", id, patch, 0, NULL);
        json_decref(patch);
        if (rc < 0) goto rollback;
    }
    rc = audit(req, "user.create", id,
               json_pack("{s:s, s:b, s:b, s:b}", "username", username, "is_admin", is_admin == 1,
                         "display_name", display_name != NULL, "email", email != NULL));
    if (rc < 0 || (rc = crm_tx_commit(conn)) < 0) goto rollback;
    if ((rc = user_json(k, id, &user)) < 0) return rc;
    return crm_req_reply_json(req, 201, user);

rollback:
    crm_tx_rollback(conn);
    return rc;
}

/* CRM_ECONFLICT when user `id` is the last enabled administrator. */
static int not_last_admin(crm_conn *conn, int64_t id)
{
    crm_stmt *st;
    int64_t others = 0;
    bool admin = false;
    int rc = crm_stmt_prepare(conn, &st,
                              "SELECT (SELECT COALESCE(is_admin, 0) AND NOT COALESCE(disabled, 0) "
                              "        FROM \"core.user\" WHERE id = ?1 AND deleted_at IS NULL), "
                              "(SELECT count(*) FROM \"core.user\" WHERE id != ?1 AND "
                              " COALESCE(is_admin, 0) AND NOT COALESCE(disabled, 0) AND "
                              " deleted_at IS NULL)");
    if (rc < 0) return rc;
    crm_stmt_bind_int(st, 1, id);
    rc = crm_stmt_step(st);
    if (rc == 1) {
        admin = crm_stmt_column_int(st, 0) != 0;
        others = crm_stmt_column_int(st, 1);
    }
    crm_stmt_done(st);
    if (rc < 0) return rc;
    if (admin && others == 0)
        return crm_error_set(CRM_ECONFLICT, NULL,
                             "user %" PRId64 " is the last administrator: make another user an "
                             "administrator first",
                             id);
    return CRM_OK;
}

static int users_patch(crm_req *req, void *udata)
{
    static const char *const allowed[] = {"disabled", "display_name", "email", "is_admin", NULL};
    crm_kernel *k = udata;
    crm_conn *conn = crm_ctx_conn(crm_req_ctx(req));
    json_t *body = crm_req_json(req), *patch = NULL, *changed, *user = NULL, *v;
    const char *key;
    int disabled, is_admin;
    int64_t id;
    int rc;

    if ((rc = crm_req_param_id(req, "id", &id)) < 0) return rc;
    if (!json_is_object(body))
        return crm_error_set(CRM_EINVALID, NULL, "expected a JSON object of the fields to change");
    if ((rc = only_keys(body, allowed)) < 0 ||
        (rc = optional_bool(body, "disabled", &disabled)) < 0 ||
        (rc = optional_bool(body, "is_admin", &is_admin)) < 0)
        return rc;
    json_object_foreach(body, key, v)
    {
        if ((strcmp(key, "display_name") == 0 || strcmp(key, "email") == 0) && !json_is_string(v) &&
            !json_is_null(v))
            return crm_error_set(CRM_EINVALID, key, "%s must be a string or null", key);
    }

    if ((rc = crm_tx_begin(conn)) < 0) return rc;
    if ((rc = user_json(k, id, &user)) < 0) goto rollback;
    json_decref(user);
    user = NULL;
    if ((disabled == 1 || is_admin == 0) && (rc = not_last_admin(conn, id)) < 0) goto rollback;
    patch = json_deep_copy(body);
    if ((rc = crm_record_update(crm_req_ctx(req), "core.user", id, patch, 0, NULL)) < 0)
        goto rollback;
    if (disabled == 1 && (rc = crm_session_revoke_user(k, id, 0)) < 0) goto rollback;
    changed = json_array();
    json_object_foreach(body, key, v) json_array_append_new(changed, json_string(key));
    if ((rc = audit(req, "user.update", id, json_pack("{s:o}", "fields", changed))) < 0)
        goto rollback;
    if ((rc = crm_tx_commit(conn)) < 0) goto rollback;
    json_decref(patch);
    if ((rc = user_json(k, id, &user)) < 0) return rc;
    return crm_req_reply_json(req, 200, user);

rollback:
    crm_tx_rollback(conn);
    json_decref(patch);
    return rc;
}

static int users_password(crm_req *req, void *udata)
{
    static const char *const allowed[] = {"password", "current_password", NULL};
    crm_kernel *k = udata;
    crm_conn *conn;
    json_t *body = crm_req_json(req), *user = NULL;
    const char *password, *current;
    int64_t id, me_id = crm_req_user(req), session_id = 0;
    bool self;
    int rc;

    if ((rc = crm_req_param_id(req, "id", &id)) < 0) return rc;
    self = id == me_id;
    if (!self && !crm_principal_is_admin(crm_req_ctx(req)->who))
        return crm_error_set(CRM_EDENIED, NULL,
                             "only an administrator sets another user's password");
    /* Setting someone else's password takes over their account: an administrative change. */
    if (!self && (rc = crm_req_require_recent_auth(req)) < 0) return rc;
    if (!json_is_object(body))
        return crm_error_set(CRM_EINVALID, NULL, "expected {\"password\"[,\"current_password\"]}");
    if ((rc = only_keys(body, allowed)) < 0 ||
        (rc = optional_string(body, "password", &password)) < 0 ||
        (rc = optional_string(body, "current_password", &current)) < 0)
        return rc;
    if (!password) return crm_error_set(CRM_EINVALID, "password", "password is required");
    if ((rc = user_json(k, id, &user)) < 0) return rc;

    if (self) {
        const char *username = json_string_value(json_object_get(user, "username"));
        if (!current) {
            rc = crm_error_set(CRM_EINVALID, "current_password",
                               "current_password is required to change your own password");
            goto done;
        }
        bool answered;
        rc = verify_own_password(k, req, username, id, current, &answered);
        if (answered) goto done;
        if (rc == CRM_EDENIED) {
            rc = crm_error_set(CRM_EDENIED, "current_password", "the current password is wrong");
            goto done;
        }
        if (rc < 0) goto done;
        crm_req__auth(req, &session_id, NULL);
    }
    /* The user's other sessions end; one's own current session survives. */
    if ((rc = crm_session_change_password(k, id, password, self ? session_id : 0)) < 0) goto done;
    conn = crm_ctx_conn(crm_req_ctx(req));
    if ((rc = crm_tx_begin(conn)) < 0) goto done;
    if ((rc = audit(req, "user.password", id, json_pack("{s:b}", "self", self))) < 0 ||
        (rc = crm_tx_commit(conn)) < 0) {
        crm_tx_rollback(conn);
        goto done;
    }
    rc = crm_req_reply_data(req, 204, NULL, NULL, 0);
done:
    json_decref(user);
    return rc;
}

int crm_api_auth_register(crm_http *h)
{
    crm_kernel *k = crm_http_kernel(h);
    int rc;
    if ((rc = crm_http_route(h, "GET", "/api/v1/auth/login-token", CRM_ROUTE_PUBLIC, login_token,
                             k)) ||
        (rc = crm_http_route(h, "POST", "/api/v1/auth/login", CRM_ROUTE_PUBLIC, login, k)) ||
        (rc = crm_http_route(h, "POST", "/api/v1/auth/reauth", 0, reauth, k)) ||
        (rc = crm_http_route(h, "POST", "/api/v1/auth/logout", 0, logout, k)) ||
        (rc = crm_http_route(h, "GET", "/api/v1/auth/me", 0, me, k)) ||
        (rc = crm_http_route(h, "GET", "/api/v1/users", CRM_ROUTE_ADMIN, users_list, k)) ||
        (rc = crm_http_route(h, "POST", "/api/v1/users", CRM_ROUTE_ADMIN | CRM_ROUTE_REAUTH,
                             users_create, k)) ||
        (rc = crm_http_route(h, "GET", "/api/v1/users/{id}", CRM_ROUTE_ADMIN, users_get, k)) ||
        (rc = crm_http_route(h, "PATCH", "/api/v1/users/{id}", CRM_ROUTE_ADMIN | CRM_ROUTE_REAUTH,
                             users_patch, k)) ||
        (rc = crm_http_route(h, "POST", "/api/v1/users/{id}/password", 0, users_password, k)))
        return rc;
    return CRM_OK;
}
