/*
 * auth.c — passwords and API tokens. libsodium lives behind this file: the
 * rest of the kernel asks "is this the password?" and "whose token is this?".
 *
 * Passwords are Argon2id strings (the parameters travel inside the string, so
 * raising them later only needs crypto_pwhash_str_needs_rehash at login).
 * Tokens carry 256 random bits; the database holds the SHA-256 of the token
 * text only, so a leaked database yields no usable credential. Looking a token
 * up by its hash leaks nothing useful through timing: an attacker would have
 * to find SHA-256 preimages.
 */
#include "auth.h"

#include "perm.h"
#include "record.h"

#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#define HASH_OPSLIMIT crypto_pwhash_OPSLIMIT_INTERACTIVE /* t=2 */
#define HASH_MEMLIMIT crypto_pwhash_MEMLIMIT_INTERACTIVE /* 64 MiB */

#define USERNAME_MAX 64
#define TOKEN_PREFIX "crm_"
#define TOKEN_BYTES  32
/* last_used_at is written at most this often per token (seconds). */
#define TOKEN_TOUCH_INTERVAL 60

/*
 * At most this many Argon2id computations run at once: each takes 64 MiB, so
 * a burst of logins costs at most HASH_SLOTS * 64 MiB instead of growing
 * with the number of requests (SECURITY.md S2). Others wait their turn.
 */
#define HASH_SLOTS 4

static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_free = PTHREAD_COND_INITIALIZER;
static int slots_used;

static void slot_take(void)
{
    pthread_mutex_lock(&slot_lock);
    while (slots_used >= HASH_SLOTS)
        pthread_cond_wait(&slot_free, &slot_lock);
    slots_used++;
    pthread_mutex_unlock(&slot_lock);
}

static void slot_give(void)
{
    pthread_mutex_lock(&slot_lock);
    slots_used--;
    pthread_cond_signal(&slot_free);
    pthread_mutex_unlock(&slot_lock);
}

int crm_auth_init(void)
{
    /* sodium_init is thread-safe and returns 1 when already done. */
    if (sodium_init() < 0)
        return crm_error_set(CRM_EINTERNAL, NULL, "libsodium failed to initialise");
    return CRM_OK;
}

/* ---- Passwords ---- */

static int password_check(const char *password)
{
    size_t n = password ? strlen(password) : 0;
    if (n > CRM_PASSWORD_MAX)
        return crm_error_set(CRM_EINVALID, "password", "password must be at most %d bytes",
                             CRM_PASSWORD_MAX);
    if (!crm_utf8_valid(password ? password : "", n))
        return crm_error_set(CRM_EINVALID, "password", "password must be valid UTF-8");
    if (crm_utf8_len(password ? password : "", n) < CRM_PASSWORD_MIN)
        return crm_error_set(CRM_EINVALID, "password", "password must be at least %d characters",
                             CRM_PASSWORD_MIN);
    return CRM_OK;
}

int crm_password_hash(const char *password, char **out)
{
    char hash[crypto_pwhash_STRBYTES];
    int rc, err;

    *out = NULL;
    if ((rc = password_check(password)) < 0) return rc;
    if ((rc = crm_auth_init()) < 0) return rc;
    slot_take();
    err = crypto_pwhash_str_alg(hash, password, strlen(password), HASH_OPSLIMIT, HASH_MEMLIMIT,
                                crypto_pwhash_ALG_ARGON2ID13);
    slot_give();
    if (err != 0)
        return crm_error_set(CRM_EINTERNAL, NULL, "password hashing failed (out of memory)");
    *out = crm_strdup(hash);
    return CRM_OK;
}

bool crm_password_verify(const char *hash, const char *password, bool *rehash)
{
    bool ok;

    if (rehash) *rehash = false;
    if (!hash || !password || strlen(hash) >= crypto_pwhash_STRBYTES ||
        strlen(password) > CRM_PASSWORD_MAX || crm_auth_init() < 0)
        return false;
    slot_take();
    ok = crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
    slot_give();
    /* Non-zero for weaker parameters and for another algorithm (argon2i): both move on. */
    if (ok && rehash)
        *rehash = crypto_pwhash_argon2id_str_needs_rehash(hash, HASH_OPSLIMIT, HASH_MEMLIMIT) != 0;
    return ok;
}

/*
 * A hash to verify against when the user is unknown, so that an unknown
 * username costs the same Argon2id work as a wrong password.
 */
static char *dummy_hash;
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void dummy_make(void)
{
    unsigned char raw[16];
    char *password;

    randombytes_buf(raw, sizeof raw);
    password = crm_b64url_encode(raw, sizeof raw);
    if (crm_password_hash(password, &dummy_hash) < 0) dummy_hash = NULL;
    sodium_memzero(password, strlen(password));
    free(password);
}

/* ---- Users ---- */

static bool username_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > USERNAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '@' || c == '-'))
            return false;
    }
    return true;
}

/* Usernames are lower-case: "Alice" finds alice at login and in lookups. */
static char *username_fold(const char *s)
{
    char *folded = crm_strdup(s ? s : "");
    for (char *p = folded; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    return folded;
}

static int password_store(crm_conn *conn, int64_t user_id, const char *hash)
{
    crm_stmt *st;
    int rc = crm_stmt_prepare(conn, &st,
                              "INSERT INTO core_password (user_id, hash, changed_at) "
                              "VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                              "hash = excluded.hash, changed_at = excluded.changed_at");
    if (rc < 0) return rc;
    crm_stmt_bind_int(st, 1, user_id);
    crm_stmt_bind_text(st, 2, hash, -1);
    crm_stmt_bind_int(st, 3, crm_now());
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

int crm_user_create(crm_kernel *k, const char *username, const char *password, bool admin,
                    const char *display_name, int64_t *id_out)
{
    crm_conn *conn = crm_store_conn(k->store);
    json_t *fields = NULL, *rec = NULL;
    char *hash = NULL;
    crm_ctx ctx;
    int64_t id;
    int rc;

    if (id_out) *id_out = 0;
    if (!username_valid(username)) {
        rc = crm_error_set(CRM_EINVALID, "username",
                           "username must be 1 to %d characters of a-z 0-9 . _ @ - (got \"%s\")",
                           USERNAME_MAX, username ? username : "");
        goto done;
    }
    /* Hash before taking the write lock: Argon2id takes a while on purpose. */
    if ((rc = crm_password_hash(password, &hash)) < 0) goto done;

    fields = json_pack("{s:s, s:b, s:b}", "username", username, "is_admin", admin, "disabled", 0);
    if (display_name && *display_name)
        json_object_set_new(fields, "display_name", json_string(display_name));

    if ((rc = crm_tx_begin(conn)) < 0) goto done;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    rc = crm_record_create(&ctx, "core.user", fields, &rec);
    if (rc == CRM_ECONFLICT) {
        crm_tx_rollback(conn);
        rc = crm_error_set(CRM_ECONFLICT, "username", "username \"%s\" is taken", username);
        goto done;
    }
    if (rc < 0) goto rollback;
    id = json_integer_value(json_object_get(rec, "id"));
    if (id <= 0) {
        rc = crm_error_set(CRM_EINTERNAL, NULL, "created user has no id");
        goto rollback;
    }
    if ((rc = password_store(conn, id, hash)) < 0) goto rollback;
    if ((rc = crm_tx_commit(conn)) < 0) goto rollback;
    if (id_out) *id_out = id;
    goto done;

rollback:
    crm_tx_rollback(conn);
done:
    json_decref(fields);
    json_decref(rec);
    free(hash);
    return rc;
}

int crm_user_find(crm_kernel *k, const char *username, int64_t *id_out)
{
    char *name = username_fold(username);
    crm_stmt *st;
    int rc;

    *id_out = 0;
    rc = crm_stmt_prepare(crm_store_conn(k->store), &st,
                          "SELECT id FROM \"core.user\" WHERE username = ? AND deleted_at IS NULL");
    if (rc < 0) goto done;
    crm_stmt_bind_text(st, 1, name, -1);
    rc = crm_stmt_step(st);
    if (rc == 1) *id_out = crm_stmt_column_int(st, 0);
    crm_stmt_done(st);
    if (rc == 0)
        rc = crm_error_set(CRM_ENOTFOUND, "username", "no user \"%s\"", name);
    else if (rc == 1)
        rc = CRM_OK;
done:
    free(name);
    return rc;
}

/* CRM_OK when user_id is a live user, else CRM_ENOTFOUND. */
static int user_exists(crm_conn *conn, int64_t user_id)
{
    crm_stmt *st;
    int rc = crm_stmt_prepare(conn, &st,
                              "SELECT 1 FROM \"core.user\" WHERE id = ? AND deleted_at IS NULL");
    if (rc < 0) return rc;
    crm_stmt_bind_int(st, 1, user_id);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    if (rc < 0) return rc;
    if (rc == 0) return crm_error_set(CRM_ENOTFOUND, NULL, "no user with id %" PRId64, user_id);
    return CRM_OK;
}

int crm_user_set_password(crm_kernel *k, int64_t user_id, const char *password)
{
    crm_conn *conn = crm_store_conn(k->store);
    char *hash = NULL;
    int rc;

    if ((rc = crm_password_hash(password, &hash)) < 0) goto done;
    if ((rc = crm_tx_begin(conn)) < 0) goto done;
    if ((rc = user_exists(conn, user_id)) < 0 || (rc = password_store(conn, user_id, hash)) < 0 ||
        (rc = crm_tx_commit(conn)) < 0)
        crm_tx_rollback(conn);
done:
    free(hash);
    return rc;
}

int crm_user_set_disabled(crm_kernel *k, int64_t user_id, bool disabled)
{
    json_t *patch = json_pack("{s:b}", "disabled", disabled);
    crm_ctx ctx;
    int rc;

    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    rc = crm_record_update(&ctx, "core.user", user_id, patch, 0, NULL);
    json_decref(patch);
    return rc;
}

static json_t *column_string_or_null(crm_stmt *st, int col)
{
    const char *s = crm_stmt_column_text(st, col);
    return s ? json_string(s) : json_null();
}

int crm_user_list(crm_kernel *k, json_t **out)
{
    json_t *list = json_array();
    crm_stmt *st;
    int rc;

    *out = NULL;
    rc = crm_stmt_prepare(crm_store_conn(k->store), &st,
                          "SELECT id, username, display_name, email, COALESCE(is_admin, 0), "
                          "COALESCE(disabled, 0) FROM \"core.user\" WHERE deleted_at IS NULL "
                          "ORDER BY id");
    if (rc < 0) goto done;
    while ((rc = crm_stmt_step(st)) == 1) {
        json_array_append_new(list, json_pack("{s:I, s:o, s:o, s:o, s:b, s:b}", "id",
                                              (json_int_t)crm_stmt_column_int(st, 0), "username",
                                              column_string_or_null(st, 1), "display_name",
                                              column_string_or_null(st, 2), "email",
                                              column_string_or_null(st, 3), "is_admin",
                                              crm_stmt_column_int(st, 4) != 0, "disabled",
                                              crm_stmt_column_int(st, 5) != 0));
    }
    crm_stmt_done(st);
    if (rc == 0) {
        *out = list;
        list = NULL;
    }
done:
    json_decref(list);
    return rc;
}

int crm_user_authenticate(crm_kernel *k, const char *username, const char *password,
                          int64_t *user_out)
{
    crm_conn *conn = crm_store_conn(k->store);
    char *name = username_fold(username);
    char *hash = NULL, *new_hash = NULL;
    bool found = false, disabled = false, rehash = false, ok;
    int64_t id = 0;
    crm_stmt *st;
    int rc;

    *user_out = 0;
    /* Refused before any hashing: a huge password must not cost Argon2id time (S2). */
    if (!password || strlen(password) > CRM_PASSWORD_MAX) {
        rc = crm_error_set(CRM_EINVALID, "password", "password must be at most %d bytes",
                           CRM_PASSWORD_MAX);
        goto done;
    }
    if ((rc = crm_auth_init()) < 0) goto done;
    rc = crm_stmt_prepare(conn, &st,
                          "SELECT u.id, COALESCE(u.disabled, 0), p.hash FROM \"core.user\" u "
                          "JOIN core_password p ON p.user_id = u.id "
                          "WHERE u.username = ? AND u.deleted_at IS NULL");
    if (rc < 0) goto done;
    crm_stmt_bind_text(st, 1, name, -1);
    rc = crm_stmt_step(st);
    if (rc == 1) {
        found = true;
        id = crm_stmt_column_int(st, 0);
        disabled = crm_stmt_column_int(st, 1) != 0;
        hash = crm_strdup(crm_stmt_column_text(st, 2));
    }
    crm_stmt_done(st);
    if (rc < 0) goto done;

    if (!found) {
        /* The same Argon2id work as a real check, then the same answer. */
        pthread_once(&dummy_once, dummy_make);
        if (dummy_hash) crm_password_verify(dummy_hash, password, NULL);
        rc = crm_error_set(CRM_EDENIED, NULL, "invalid username or password");
        goto done;
    }
    ok = crm_password_verify(hash, password, &rehash);
    if (!ok) {
        rc = crm_error_set(CRM_EDENIED, NULL, "invalid username or password");
        goto done;
    }
    if (disabled) {
        rc = crm_error_set(CRM_EDENIED, NULL, "user disabled");
        goto done;
    }
    /* Old parameters: upgrade now that we hold the password. A failure here
     * does not fail the login; the next one tries again. */
    if (rehash && crm_password_hash(password, &new_hash) == CRM_OK) {
        if (crm_tx_begin(conn) == CRM_OK) {
            if (password_store(conn, id, new_hash) < 0 || crm_tx_commit(conn) < 0) {
                crm_tx_rollback(conn);
                crm_log(CRM_LOG_WARN, "auth: rehash of user %" PRId64 " failed: %s", id,
                        crm_error_last()->message);
            }
        }
        crm_error_clear();
    }
    *user_out = id;
    rc = CRM_OK;
done:
    free(name);
    free(hash);
    free(new_hash);
    return rc;
}

/* ---- Tokens ---- */

void crm_sha256_hex(const char *text, char out[65])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, (const unsigned char *)text, strlen(text));
    crm_hex(digest, sizeof digest, out);
}

int crm_token_create(crm_kernel *k, int64_t user_id, const char *name, int64_t expires_at,
                     char **token_out, int64_t *token_id_out)
{
    crm_conn *conn = crm_store_conn(k->store);
    char digest[crypto_hash_sha256_BYTES * 2 + 1];
    unsigned char raw[TOKEN_BYTES];
    char *secret = NULL, *token = NULL;
    crm_stmt *st;
    int rc;

    *token_out = NULL;
    if (token_id_out) *token_id_out = 0;
    if ((rc = crm_auth_init()) < 0) return rc;
    randombytes_buf(raw, sizeof raw);
    secret = crm_b64url_encode(raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    token = crm_sprintf(TOKEN_PREFIX "%s", secret);
    crm_sha256_hex(token, digest);

    if ((rc = crm_tx_begin(conn)) < 0) goto done;
    if ((rc = user_exists(conn, user_id)) < 0) goto rollback;
    rc = crm_stmt_prepare(conn, &st,
                          "INSERT INTO core_token (user_id, hash, name, created_at, expires_at) "
                          "VALUES (?, ?, ?, ?, ?)");
    if (rc < 0) goto rollback;
    crm_stmt_bind_int(st, 1, user_id);
    crm_stmt_bind_text(st, 2, digest, -1);
    crm_stmt_bind_text(st, 3, name ? name : "", -1);
    crm_stmt_bind_int(st, 4, crm_now());
    if (expires_at > 0)
        crm_stmt_bind_int(st, 5, expires_at);
    else
        crm_stmt_bind_null(st, 5);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    if (rc < 0) goto rollback;
    if (token_id_out) *token_id_out = crm_conn_last_rowid(conn);
    if ((rc = crm_tx_commit(conn)) < 0) goto rollback;
    *token_out = token;
    token = NULL;
    rc = CRM_OK;
    goto done;

rollback:
    crm_tx_rollback(conn);
    if (token_id_out) *token_id_out = 0;
done:
    if (secret) {
        sodium_memzero(secret, strlen(secret));
        free(secret);
    }
    if (token) {
        sodium_memzero(token, strlen(token));
        free(token);
    }
    return rc;
}

/* Record a use of the token, at most once a minute, so that checking a token
 * is not a write per request. Best effort: a busy database skips it. */
static void token_touch(crm_conn *conn, int64_t token_id, int64_t now)
{
    const int64_t args[] = {now, token_id};
    crm_conn_exec_ints(conn, "UPDATE core_token SET last_used_at = ? WHERE id = ?", args, 2);
    crm_error_clear();
}

int crm_token_verify(crm_kernel *k, const char *token, int64_t *user_out)
{
    bool admin_actions;
    return crm_token_verify_scoped(k, token, user_out, &admin_actions);
}

int crm_token_set_admin_actions(crm_kernel *k, int64_t token_id, bool on)
{
    const int64_t args[] = {on ? 1 : 0, token_id};
    crm_conn *conn = crm_store_conn(k->store);
    /* One UPDATE by primary key: it changes that row or writes nothing. */
    int rc = crm_conn_exec_ints(conn, "UPDATE core_token SET admin_actions = ? WHERE id = ?", args, 2);
    if (rc < 0) return rc;
    if (crm_conn_changes(conn) != 1)
        return crm_error_set(CRM_ENOTFOUND, NULL, "no token with id %lld", (long long)token_id);
    return CRM_OK;
}

int crm_token_verify_scoped(crm_kernel *k, const char *token, int64_t *user_out,
                            bool *admin_actions_out)
{
    crm_conn *conn = crm_store_conn(k->store);
    char digest[crypto_hash_sha256_BYTES * 2 + 1];
    int64_t token_id, user_id, expires_at, last_used, now;
    bool revoked, user_live, disabled, admin_actions;
    crm_stmt *st;
    int rc;

    *user_out = 0;
    *admin_actions_out = false;
    /* Anything not shaped like one of ours is refused without a query. */
    if (!token || strncmp(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0 || strlen(token) > 128)
        return crm_error_set(CRM_EDENIED, NULL, "invalid token");
    if ((rc = crm_auth_init()) < 0) return rc;
    crm_sha256_hex(token, digest);

    rc = crm_stmt_prepare(conn, &st,
                          "SELECT t.id, t.user_id, COALESCE(t.expires_at, 0), "
                          "COALESCE(t.last_used_at, 0), t.revoked_at IS NOT NULL, "
                          "u.id IS NOT NULL AND u.deleted_at IS NULL, COALESCE(u.disabled, 0), "
                          "t.admin_actions "
                          "FROM core_token t LEFT JOIN \"core.user\" u ON u.id = t.user_id "
                          "WHERE t.hash = ?");
    if (rc < 0) return rc;
    crm_stmt_bind_text(st, 1, digest, -1);
    rc = crm_stmt_step(st);
    if (rc != 1) {
        crm_stmt_done(st);
        return rc < 0 ? rc : crm_error_set(CRM_EDENIED, NULL, "invalid token");
    }
    token_id = crm_stmt_column_int(st, 0);
    user_id = crm_stmt_column_int(st, 1);
    expires_at = crm_stmt_column_int(st, 2);
    last_used = crm_stmt_column_int(st, 3);
    revoked = crm_stmt_column_int(st, 4) != 0;
    user_live = crm_stmt_column_int(st, 5) != 0;
    disabled = crm_stmt_column_int(st, 6) != 0;
    admin_actions = crm_stmt_column_int(st, 7) != 0;
    crm_stmt_done(st);

    now = crm_now();
    if (revoked) return crm_error_set(CRM_EDENIED, NULL, "token revoked");
    if (expires_at > 0 && expires_at <= now)
        return crm_error_set(CRM_EDENIED, NULL, "token expired");
    if (!user_live) return crm_error_set(CRM_EDENIED, NULL, "invalid token");
    if (disabled) return crm_error_set(CRM_EDENIED, NULL, "user disabled");
    if (now - last_used >= TOKEN_TOUCH_INTERVAL || now < last_used)
        token_touch(conn, token_id, now);
    *user_out = user_id;
    *admin_actions_out = admin_actions;
    return CRM_OK;
}

int crm_token_revoke(crm_kernel *k, int64_t token_id)
{
    const int64_t args[] = {crm_now(), token_id};
    crm_conn *conn = crm_store_conn(k->store);
    /* Revoking twice keeps the first time. */
    int rc = crm_conn_exec_ints(
        conn, "UPDATE core_token SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", args, 2);
    if (rc < 0) return rc;
    if (crm_conn_changes(conn) == 0)
        return crm_error_set(CRM_ENOTFOUND, NULL, "no token with id %" PRId64, token_id);
    return CRM_OK;
}

static json_t *time_or_null(crm_stmt *st, int col)
{
    char iso[21];
    if (crm_stmt_column_type(st, col) == CRM_COL_NULL) return json_null();
    crm_time_format(crm_stmt_column_int(st, col), iso);
    return json_string(iso);
}

int crm_token_list(crm_kernel *k, int64_t user_id, json_t **out)
{
    json_t *list = json_array();
    crm_stmt *st;
    int rc;

    *out = NULL;
    rc = crm_stmt_prepare(crm_store_conn(k->store), &st,
                          "SELECT id, user_id, name, created_at, expires_at, last_used_at, "
                          "revoked_at IS NOT NULL, admin_actions FROM core_token "
                          "WHERE ?1 = 0 OR user_id = ?1 ORDER BY id");
    if (rc < 0) goto done;
    crm_stmt_bind_int(st, 1, user_id);
    while ((rc = crm_stmt_step(st)) == 1) {
        json_array_append_new(
            list, json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:b, s:b}", "id",
                            (json_int_t)crm_stmt_column_int(st, 0), "user_id",
                            (json_int_t)crm_stmt_column_int(st, 1), "name",
                            column_string_or_null(st, 2), "created_at", time_or_null(st, 3),
                            "expires_at", time_or_null(st, 4), "last_used_at", time_or_null(st, 5),
                            "revoked", crm_stmt_column_int(st, 6) != 0, "admin_actions",
                            crm_stmt_column_int(st, 7) != 0));
    }
    crm_stmt_done(st);
    if (rc == 0) {
        *out = list;
        list = NULL;
    }
done:
    json_decref(list);
    return rc;
}
