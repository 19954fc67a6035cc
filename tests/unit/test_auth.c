/* test_auth.c — kernel/auth.c: password hashing, users, login, API tokens. */

#include "t.h"

#include "../../kernel/auth.h"
#include "../../kernel/perm.h"
#include "../../kernel/record.h"

#include <sodium.h>
#include <time.h>

#define NEW_PREFIX "$argon2id$v=19$m=65536,t=2,p=1$"
#define PASSWORD   "correct horse battery"

static crm_kernel *open_kernel(void)
{
    crm_kernel_opts opts = CRM_KERNEL_OPTS_INIT;
    crm_kernel *k = NULL;
    opts.data_dir = t_tmpdir();
    opts.synchronous = 0;
    if (crm_kernel_open(&k, &opts) < 0) {
        fprintf(stderr, "  crm_kernel_open: %s\n", crm_error_last()->message);
        return NULL;
    }
    return k;
}

/*
 * CPU time this thread spent since `a` (taken with CLOCK_THREAD_CPUTIME_ID): the work
 * a call did (Argon2id runs on the calling thread), which other processes on a busy
 * machine do not inflate the way they do wall-clock time.
 */
static double elapsed_ms(struct timespec a)
{
    struct timespec b;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    return (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
}

/* The stored hash of a user (malloc'd), or NULL. */
static char *stored_hash(crm_kernel *k, int64_t user_id)
{
    crm_stmt *st;
    char *hash = NULL;
    if (crm_stmt_prepare(crm_store_conn(k->store), &st,
                         "SELECT hash FROM core_password WHERE user_id = ?") < 0)
        return NULL;
    crm_stmt_bind_int(st, 1, user_id);
    if (crm_stmt_step(st) == 1) hash = strdup(crm_stmt_column_text(st, 0));
    crm_stmt_done(st);
    return hash;
}

static int64_t count(crm_kernel *k, const char *sql)
{
    int64_t n = -1;
    crm_conn_query_int(crm_store_conn(k->store), sql, &n, -1);
    return n;
}

/* ---- Hashing (no kernel) ---- */

static void test_hash_format(void)
{
    char *a = NULL, *b = NULL;
    REQUIRE(crm_password_hash(PASSWORD, &a) == CRM_OK);
    REQUIRE(crm_password_hash(PASSWORD, &b) == CRM_OK);
    CHECK(strncmp(a, NEW_PREFIX, strlen(NEW_PREFIX)) == 0);
    CHECK(strlen(a) > strlen(NEW_PREFIX) + 20); /* salt and hash follow */
    CHECK(strcmp(a, b) != 0);                   /* a fresh salt each time */
    free(a);
    free(b);
}

static void test_verify(void)
{
    char *h = NULL;
    bool rehash = true;
    REQUIRE(crm_password_hash(PASSWORD, &h) == CRM_OK);
    CHECK(crm_password_verify(h, PASSWORD, &rehash));
    CHECK(!rehash);
    CHECK(!crm_password_verify(h, "correct horse battery!", &rehash));
    CHECK(!crm_password_verify(h, "", NULL));
    CHECK(!crm_password_verify("garbage", PASSWORD, NULL));
    CHECK(!crm_password_verify(NULL, PASSWORD, NULL));
    free(h);
}

static void test_verify_old_params_asks_rehash(void)
{
    char weak[crypto_pwhash_STRBYTES], argon2i[crypto_pwhash_STRBYTES];
    bool rehash = false;
    REQUIRE(crypto_pwhash_str_alg(weak, PASSWORD, strlen(PASSWORD), 1, 8u << 20,
                                  crypto_pwhash_ALG_ARGON2ID13) == 0);
    CHECK(crm_password_verify(weak, PASSWORD, &rehash));
    CHECK(rehash);
    /* another algorithm is moved on too */
    rehash = false;
    REQUIRE(crypto_pwhash_str_alg(argon2i, PASSWORD, strlen(PASSWORD), 3, 8u << 20,
                                  crypto_pwhash_ALG_ARGON2I13) == 0);
    CHECK(crm_password_verify(argon2i, PASSWORD, &rehash));
    CHECK(rehash);
    CHECK(!crm_password_verify(weak, "wrong password", &rehash));
}

static void test_password_bounds(void)
{
    char *h = NULL, big[CRM_PASSWORD_MAX + 2];

    CHECK_INT(crm_password_hash("1234567", &h), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "password must be at least 8 characters");
    CHECK(h == NULL);
    /* characters, not bytes: 7 two-byte characters are too short */
    CHECK_INT(crm_password_hash("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", &h),
              CRM_EINVALID);
    CHECK_INT(crm_password_hash("abc\377\376defgh", &h), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "UTF-8");
    CHECK_INT(crm_password_hash("abcd\355\240\200efgh", &h), CRM_EINVALID); /* surrogate */

    memset(big, 'x', CRM_PASSWORD_MAX + 1);
    big[CRM_PASSWORD_MAX + 1] = '\0';
    CHECK_INT(crm_password_hash(big, &h), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "1024");
    big[CRM_PASSWORD_MAX] = '\0';
    CHECK_INT(crm_password_hash(big, &h), CRM_OK);
    free(h);
    h = NULL;
    CHECK_INT(crm_password_hash("12345678", &h), CRM_OK);
    free(h);
}

/* ---- Users ---- */

static void test_user_create_and_find(void)
{
    crm_kernel *k = open_kernel();
    int64_t id = 0, found = 0;
    char *h;
    REQUIRE(k);
    CHECK_INT(crm_user_create(k, "alice", PASSWORD, false, "Alice A.", &id), CRM_OK);
    CHECK(id > 0);
    CHECK_INT(crm_user_find(k, "alice", &found), CRM_OK);
    CHECK_INT(found, id);
    CHECK_INT(crm_user_find(k, "ALICE", &found), CRM_OK); /* usernames are lower-case */
    CHECK_INT(found, id);
    CHECK_INT(crm_user_find(k, "bob", &found), CRM_ENOTFOUND);
    CHECK_HAS(crm_error_last()->message, "bob");
    h = stored_hash(k, id);
    CHECK(h && strncmp(h, NEW_PREFIX, strlen(NEW_PREFIX)) == 0);
    free(h);
    crm_kernel_close(k);
}

static void test_user_create_refuses_bad_input(void)
{
    crm_kernel *k = open_kernel();
    int64_t id = 7;
    char long_name[66];
    REQUIRE(k);
    CHECK_INT(crm_user_create(k, "Alice", PASSWORD, false, NULL, &id), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "username");
    CHECK_INT(id, 0);
    CHECK_INT(crm_user_create(k, "", PASSWORD, false, NULL, NULL), CRM_EINVALID);
    CHECK_INT(crm_user_create(k, "has space", PASSWORD, false, NULL, NULL), CRM_EINVALID);
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    CHECK_INT(crm_user_create(k, long_name, PASSWORD, false, NULL, NULL), CRM_EINVALID);
    long_name[64] = '\0';
    CHECK_INT(crm_user_create(k, long_name, PASSWORD, false, NULL, NULL), CRM_OK);
    CHECK_INT(crm_user_create(k, "carol", "short", false, NULL, NULL), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "at least 8");
    CHECK_INT(count(k, "SELECT count(*) FROM \"core.user\""), 1);
    CHECK_INT(count(k, "SELECT count(*) FROM core_password"), 1);
    CHECK_INT(crm_user_create(k, "first.last@example-1_x", PASSWORD, false, NULL, NULL), CRM_OK);
    crm_kernel_close(k);
}

static void test_user_duplicate_writes_nothing(void)
{
    crm_kernel *k = open_kernel();
    int64_t id = 0, id2 = 9;
    REQUIRE(k);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, false, NULL, &id) == CRM_OK);
    CHECK_INT(crm_user_create(k, "alice", "another password", true, NULL, &id2), CRM_ECONFLICT);
    CHECK_STR(crm_error_last()->message, "username \"alice\" is taken");
    CHECK_INT(id2, 0);
    CHECK_INT(count(k, "SELECT count(*) FROM \"core.user\""), 1);
    CHECK_INT(count(k, "SELECT count(*) FROM core_password"), 1);
    CHECK_INT(count(k, "SELECT count(*) FROM core_password p WHERE NOT EXISTS "
                       "(SELECT 1 FROM \"core.user\" u WHERE u.id = p.user_id)"),
              0);
    /* the first user's password is untouched */
    int64_t who = 0;
    CHECK_INT(crm_user_authenticate(k, "alice", PASSWORD, &who), CRM_OK);
    CHECK_INT(who, id);
    crm_kernel_close(k);
}

static void test_user_list(void)
{
    crm_kernel *k = open_kernel();
    json_t *list = NULL, *u;
    int64_t a, b;
    REQUIRE(k);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, true, "Alice", &a) == CRM_OK);
    REQUIRE(crm_user_create(k, "bob", PASSWORD, false, NULL, &b) == CRM_OK);
    REQUIRE(crm_user_set_disabled(k, b, true) == CRM_OK);
    REQUIRE(crm_user_list(k, &list) == CRM_OK);
    REQUIRE(json_array_size(list) == 2);
    u = json_array_get(list, 0);
    CHECK_INT(json_integer_value(json_object_get(u, "id")), a);
    CHECK_STR(json_string_value(json_object_get(u, "username")), "alice");
    CHECK_STR(json_string_value(json_object_get(u, "display_name")), "Alice");
    CHECK(json_is_true(json_object_get(u, "is_admin")));
    CHECK(json_is_false(json_object_get(u, "disabled")));
    CHECK(json_is_null(json_object_get(u, "email")));
    u = json_array_get(list, 1);
    CHECK_STR(json_string_value(json_object_get(u, "username")), "bob");
    CHECK(json_is_false(json_object_get(u, "is_admin")));
    CHECK(json_is_true(json_object_get(u, "disabled")));
    json_decref(list);
    crm_kernel_close(k);
}

/* ---- Login ---- */

static void test_authenticate(void)
{
    crm_kernel *k = open_kernel();
    int64_t id, who = -1;
    REQUIRE(k);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, false, NULL, &id) == CRM_OK);
    CHECK_INT(crm_user_authenticate(k, "alice", PASSWORD, &who), CRM_OK);
    CHECK_INT(who, id);
    CHECK_INT(crm_user_authenticate(k, "Alice", PASSWORD, &who), CRM_OK);
    CHECK_INT(crm_user_authenticate(k, "alice", "wrong password", &who), CRM_EDENIED);
    CHECK_INT(who, 0);
    crm_kernel_close(k);
}

static void test_authenticate_unknown_user_looks_like_wrong_password(void)
{
    crm_kernel *k = open_kernel();
    int64_t who = -1;
    int rc_wrong, rc_unknown;
    char msg_wrong[200];
    double t_wrong, t_unknown;
    struct timespec t0;
    REQUIRE(k);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, false, NULL, NULL) == CRM_OK);
    crm_user_authenticate(k, "nobody", PASSWORD, &who); /* the dummy hash is made once */

    /* CPU time, the least of three runs each */
    t_wrong = t_unknown = 1e9;
    for (int i = 0; i < 3; i++) {
        double ms;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
        rc_wrong = crm_user_authenticate(k, "alice", "wrong password", &who);
        ms = elapsed_ms(t0);
        t_wrong = ms < t_wrong ? ms : t_wrong;
        snprintf(msg_wrong, sizeof msg_wrong, "%s", crm_error_last()->message);

        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
        rc_unknown = crm_user_authenticate(k, "nobody", "wrong password", &who);
        ms = elapsed_ms(t0);
        t_unknown = ms < t_unknown ? ms : t_unknown;
    }

    CHECK_INT(rc_wrong, CRM_EDENIED);
    CHECK_INT(rc_unknown, rc_wrong);
    CHECK_STR(crm_error_last()->message, msg_wrong);
    CHECK_STR(msg_wrong, "invalid username or password");
    CHECK_INT(who, 0);
    /* an unknown user costs an Argon2id verification too (generous bounds: no flakes) */
    if (!(t_unknown > t_wrong * 0.4 && t_unknown < t_wrong * 2.5 + 20))
        fprintf(stderr, "  timing: wrong password %.1f ms, unknown user %.1f ms\n", t_wrong,
                t_unknown);
    CHECK(t_unknown > t_wrong * 0.4);
    CHECK(t_unknown < t_wrong * 2.5 + 20);
    crm_kernel_close(k);
}

static void test_authenticate_long_password_is_cheap(void)
{
    crm_kernel *k = open_kernel();
    char big[CRM_PASSWORD_MAX + 2];
    struct timespec t0;
    int64_t who;
    REQUIRE(k);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, false, NULL, NULL) == CRM_OK);
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    CHECK_INT(crm_user_authenticate(k, "alice", big, &who), CRM_EINVALID);
    CHECK(elapsed_ms(t0) < 10);
    crm_kernel_close(k);
}

static void test_authenticate_disabled_user(void)
{
    crm_kernel *k = open_kernel();
    int64_t id, who;
    REQUIRE(k);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, false, NULL, &id) == CRM_OK);
    REQUIRE(crm_user_set_disabled(k, id, true) == CRM_OK);
    CHECK_INT(crm_user_authenticate(k, "alice", PASSWORD, &who), CRM_EDENIED);
    CHECK_STR(crm_error_last()->message, "user disabled");
    /* a wrong password does not learn that the user is disabled */
    CHECK_INT(crm_user_authenticate(k, "alice", "wrong password", &who), CRM_EDENIED);
    CHECK_STR(crm_error_last()->message, "invalid username or password");
    REQUIRE(crm_user_set_disabled(k, id, false) == CRM_OK);
    CHECK_INT(crm_user_authenticate(k, "alice", PASSWORD, &who), CRM_OK);
    CHECK_INT(crm_user_set_disabled(k, 9999, true), CRM_ENOTFOUND);
    crm_kernel_close(k);
}

static void test_login_rehashes_old_params(void)
{
    crm_kernel *k = open_kernel();
    char weak[crypto_pwhash_STRBYTES], *h;
    crm_conn *conn;
    crm_stmt *st;
    int64_t id, who;
    REQUIRE(k);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, false, NULL, &id) == CRM_OK);
    REQUIRE(crypto_pwhash_str_alg(weak, PASSWORD, strlen(PASSWORD), 1, 8u << 20,
                                  crypto_pwhash_ALG_ARGON2ID13) == 0);
    conn = crm_store_conn(k->store);
    REQUIRE(crm_stmt_prepare(conn, &st, "UPDATE core_password SET hash = ? WHERE user_id = ?") ==
            CRM_OK);
    crm_stmt_bind_text(st, 1, weak, -1);
    crm_stmt_bind_int(st, 2, id);
    CHECK_INT(crm_stmt_step(st), 0);
    crm_stmt_done(st);

    /* a failed login changes nothing */
    CHECK_INT(crm_user_authenticate(k, "alice", "wrong password", &who), CRM_EDENIED);
    h = stored_hash(k, id);
    CHECK_STR(h, weak);
    free(h);

    CHECK_INT(crm_user_authenticate(k, "alice", PASSWORD, &who), CRM_OK);
    h = stored_hash(k, id);
    CHECK(h && strncmp(h, NEW_PREFIX, strlen(NEW_PREFIX)) == 0);
    CHECK(h && crm_password_verify(h, PASSWORD, NULL));
    free(h);
    CHECK_INT(crm_user_authenticate(k, "alice", PASSWORD, &who), CRM_OK);
    crm_kernel_close(k);
}

static void test_set_password(void)
{
    crm_kernel *k = open_kernel();
    int64_t id, who;
    REQUIRE(k);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, false, NULL, &id) == CRM_OK);
    CHECK_INT(crm_user_set_password(k, id, "short"), CRM_EINVALID);
    CHECK_INT(crm_user_authenticate(k, "alice", PASSWORD, &who), CRM_OK);
    CHECK_INT(crm_user_set_password(k, id, "a new password"), CRM_OK);
    CHECK_INT(crm_user_authenticate(k, "alice", PASSWORD, &who), CRM_EDENIED);
    CHECK_INT(crm_user_authenticate(k, "alice", "a new password", &who), CRM_OK);
    CHECK_INT(crm_user_set_password(k, 9999, "a new password"), CRM_ENOTFOUND);
    CHECK_INT(count(k, "SELECT count(*) FROM core_password"), 1);
    crm_kernel_close(k);
}

/* ---- Tokens ---- */

static bool is_b64url(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_'))
            return false;
    return true;
}

/* Whether any text cell of any table contains `needle`. */
static bool db_contains(crm_kernel *k, const char *needle)
{
    crm_conn *conn = crm_store_conn(k->store);
    crm_stmt *st, *rows;
    bool found = false;
    json_t *tables = json_array();
    size_t i;
    json_t *name;

    if (crm_stmt_prepare(conn, &st, "SELECT name FROM sqlite_master WHERE type = 'table'") < 0)
        return true;
    while (crm_stmt_step(st) == 1)
        json_array_append_new(tables, json_string(crm_stmt_column_text(st, 0)));
    crm_stmt_done(st);
    json_array_foreach(tables, i, name)
    {
        crm_buf sql = CRM_BUF_INIT;
        crm_buf_puts(&sql, "SELECT * FROM ");
        crm_buf_put_ident(&sql, json_string_value(name));
        if (crm_stmt_prepare(conn, &rows, crm_buf_str(&sql)) == CRM_OK) {
            while (crm_stmt_step(rows) == 1)
                for (int c = 0; c < crm_stmt_column_count(rows); c++) {
                    const char *v = crm_stmt_column_text(rows, c);
                    if (v && strstr(v, needle)) found = true;
                }
            crm_stmt_done(rows);
        }
        crm_buf_free(&sql);
    }
    json_decref(tables);
    return found;
}

static void test_token_roundtrip(void)
{
    crm_kernel *k = open_kernel();
    char *t1 = NULL, *t2 = NULL;
    int64_t id, tid1, tid2, who = 0;
    REQUIRE(k);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, false, NULL, &id) == CRM_OK);
    REQUIRE(crm_token_create(k, id, "laptop", 0, &t1, &tid1) == CRM_OK);
    REQUIRE(crm_token_create(k, id, "ci", 0, &t2, &tid2) == CRM_OK);
    CHECK(strncmp(t1, "crm_", 4) == 0);
    CHECK(strlen(t1 + 4) >= 43);
    CHECK(is_b64url(t1 + 4));
    CHECK(strcmp(t1, t2) != 0);
    CHECK(tid1 > 0 && tid2 > tid1);

    CHECK_INT(crm_token_verify(k, t1, &who), CRM_OK);
    CHECK_INT(who, id);
    CHECK_INT(crm_token_verify(k, t2, &who), CRM_OK);
    CHECK_INT(who, id);

    /* near misses are refused */
    t1[10] = t1[10] == 'A' ? 'B' : 'A';
    CHECK_INT(crm_token_verify(k, t1, &who), CRM_EDENIED);
    CHECK_INT(who, 0);
    CHECK_INT(crm_token_verify(k, "", &who), CRM_EDENIED);
    CHECK_INT(crm_token_verify(k, t2 + 4, &who), CRM_EDENIED); /* without the prefix */

    free(t1);
    t1 = (char *)"x";
    CHECK_INT(crm_token_create(k, 9999, "x", 0, &t1, NULL), CRM_ENOTFOUND);
    CHECK(t1 == NULL);
    free(t2);
    crm_kernel_close(k);
}

/* SECURITY.md A4: only a token issued with --admin-actions makes administrative changes. */
static void test_token_admin_actions(void)
{
    crm_kernel *k = open_kernel();
    char *t = NULL;
    int64_t id, tid, who = 0;
    bool admin_actions = true;
    json_t *list = NULL;
    REQUIRE(k);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, true, NULL, &id) == CRM_OK);
    REQUIRE(crm_token_create(k, id, "deploy", 0, &t, &tid) == CRM_OK);
    CHECK_INT(crm_token_verify_scoped(k, t, &who, &admin_actions), CRM_OK);
    CHECK_INT(who, id);
    CHECK(!admin_actions); /* not by default, even for an admin's token */
    CHECK_INT(crm_token_set_admin_actions(k, tid, true), CRM_OK);
    CHECK_INT(crm_token_verify_scoped(k, t, &who, &admin_actions), CRM_OK);
    CHECK(admin_actions);
    REQUIRE(crm_token_list(k, id, &list) == CRM_OK);
    CHECK(json_is_true(json_object_get(json_array_get(list, 0), "admin_actions")));
    json_decref(list);
    CHECK_INT(crm_token_set_admin_actions(k, tid, false), CRM_OK);
    CHECK_INT(crm_token_verify_scoped(k, t, &who, &admin_actions), CRM_OK);
    CHECK(!admin_actions);
    CHECK_INT(crm_token_set_admin_actions(k, tid + 1000, true), CRM_ENOTFOUND);
    CHECK_INT(crm_token_revoke(k, tid), CRM_OK);
    CHECK_INT(crm_token_verify_scoped(k, t, &who, &admin_actions), CRM_EDENIED);
    CHECK(!admin_actions);
    free(t);
    crm_kernel_close(k);
}

static void test_token_db_holds_only_hash(void)
{
    crm_kernel *k = open_kernel();
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1], *t = NULL;
    int64_t id, tid, who;
    crm_stmt *st;
    REQUIRE(k);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, false, NULL, &id) == CRM_OK);
    REQUIRE(crm_token_create(k, id, "laptop", 0, &t, &tid) == CRM_OK);
    REQUIRE(crm_token_verify(k, t, &who) == CRM_OK);
    CHECK(!db_contains(k, t + 4));
    CHECK(!db_contains(k, t + 20)); /* not even a part of the secret */

    crypto_hash_sha256(digest, (const unsigned char *)t, strlen(t));
    crm_hex(digest, sizeof digest, hex);
    REQUIRE(crm_stmt_prepare(crm_store_conn(k->store), &st,
                             "SELECT hash FROM core_token WHERE id = ?") == CRM_OK);
    crm_stmt_bind_int(st, 1, tid);
    CHECK_INT(crm_stmt_step(st), 1);
    CHECK_STR(crm_stmt_column_text(st, 0), hex);
    crm_stmt_done(st);
    free(t);
    crm_kernel_close(k);
}

static void test_token_revoke(void)
{
    crm_kernel *k = open_kernel();
    char *t = NULL, *other = NULL;
    int64_t id, tid, tid2, who;
    REQUIRE(k);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, false, NULL, &id) == CRM_OK);
    REQUIRE(crm_token_create(k, id, "laptop", 0, &t, &tid) == CRM_OK);
    REQUIRE(crm_token_create(k, id, "phone", 0, &other, &tid2) == CRM_OK);
    CHECK_INT(crm_token_revoke(k, tid), CRM_OK);
    CHECK_INT(crm_token_verify(k, t, &who), CRM_EDENIED);
    CHECK_HAS(crm_error_last()->message, "revoked");
    CHECK_INT(crm_token_verify(k, other, &who), CRM_OK); /* only that one */
    CHECK_INT(crm_token_revoke(k, tid), CRM_OK);         /* twice is fine */
    CHECK_INT(crm_token_revoke(k, 9999), CRM_ENOTFOUND);
    free(t);
    free(other);
    crm_kernel_close(k);
}

static void test_token_expiry(void)
{
    crm_kernel *k = open_kernel();
    int64_t id, tid, who, now = 1700000000;
    char *t = NULL;
    REQUIRE(k);
    crm_clock_set(now);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, false, NULL, &id) == CRM_OK);
    REQUIRE(crm_token_create(k, id, "day", now + 86400, &t, &tid) == CRM_OK);
    CHECK_INT(crm_token_verify(k, t, &who), CRM_OK);
    crm_clock_set(now + 86399);
    CHECK_INT(crm_token_verify(k, t, &who), CRM_OK);
    crm_clock_set(now + 86400);
    CHECK_INT(crm_token_verify(k, t, &who), CRM_EDENIED);
    CHECK_HAS(crm_error_last()->message, "expired");
    crm_clock_set(-1);
    free(t);
    crm_kernel_close(k);
}

static void test_token_of_disabled_user(void)
{
    crm_kernel *k = open_kernel();
    int64_t id, tid, who;
    char *t = NULL;
    REQUIRE(k);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, false, NULL, &id) == CRM_OK);
    REQUIRE(crm_token_create(k, id, "laptop", 0, &t, &tid) == CRM_OK);
    REQUIRE(crm_user_set_disabled(k, id, true) == CRM_OK);
    CHECK_INT(crm_token_verify(k, t, &who), CRM_EDENIED);
    REQUIRE(crm_user_set_disabled(k, id, false) == CRM_OK);
    CHECK_INT(crm_token_verify(k, t, &who), CRM_OK);
    free(t);
    crm_kernel_close(k);
}

static int64_t last_used(crm_kernel *k, int64_t tid)
{
    crm_stmt *st;
    int64_t v = -1;
    if (crm_stmt_prepare(crm_store_conn(k->store), &st,
                         "SELECT COALESCE(last_used_at, 0) FROM core_token WHERE id = ?") < 0)
        return -1;
    crm_stmt_bind_int(st, 1, tid);
    if (crm_stmt_step(st) == 1) v = crm_stmt_column_int(st, 0);
    crm_stmt_done(st);
    return v;
}

static void test_token_last_used_at_most_once_a_minute(void)
{
    crm_kernel *k = open_kernel();
    int64_t id, tid, who, now = 1700000000;
    char *t = NULL;
    REQUIRE(k);
    crm_clock_set(now);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, false, NULL, &id) == CRM_OK);
    REQUIRE(crm_token_create(k, id, "laptop", 0, &t, &tid) == CRM_OK);
    CHECK_INT(last_used(k, tid), 0);
    CHECK_INT(crm_token_verify(k, t, &who), CRM_OK);
    CHECK_INT(last_used(k, tid), now);
    crm_clock_set(now + 30);
    CHECK_INT(crm_token_verify(k, t, &who), CRM_OK);
    CHECK_INT(last_used(k, tid), now);
    crm_clock_set(now + 61);
    CHECK_INT(crm_token_verify(k, t, &who), CRM_OK);
    CHECK_INT(last_used(k, tid), now + 61);
    crm_clock_set(-1);
    free(t);
    crm_kernel_close(k);
}

static void test_token_list(void)
{
    crm_kernel *k = open_kernel();
    int64_t a, b, ta, tb, now = 1700000000;
    json_t *list = NULL, *t;
    char *s1 = NULL, *s2 = NULL, *text;
    REQUIRE(k);
    crm_clock_set(now);
    REQUIRE(crm_user_create(k, "alice", PASSWORD, false, NULL, &a) == CRM_OK);
    REQUIRE(crm_user_create(k, "bob", PASSWORD, false, NULL, &b) == CRM_OK);
    REQUIRE(crm_token_create(k, a, "laptop", now + 3600, &s1, &ta) == CRM_OK);
    REQUIRE(crm_token_create(k, b, "ci", 0, &s2, &tb) == CRM_OK);
    REQUIRE(crm_token_revoke(k, tb) == CRM_OK);

    REQUIRE(crm_token_list(k, 0, &list) == CRM_OK);
    CHECK_INT(json_array_size(list), 2);
    json_decref(list);
    REQUIRE(crm_token_list(k, a, &list) == CRM_OK);
    REQUIRE(json_array_size(list) == 1);
    t = json_array_get(list, 0);
    CHECK_INT(json_integer_value(json_object_get(t, "id")), ta);
    CHECK_INT(json_integer_value(json_object_get(t, "user_id")), a);
    CHECK_STR(json_string_value(json_object_get(t, "name")), "laptop");
    CHECK_STR(json_string_value(json_object_get(t, "created_at")), "2023-11-14T22:13:20Z");
    CHECK_STR(json_string_value(json_object_get(t, "expires_at")), "2023-11-14T23:13:20Z");
    CHECK(json_is_null(json_object_get(t, "last_used_at")));
    CHECK(json_is_false(json_object_get(t, "revoked")));
    text = json_dumps(list, 0);
    CHECK(text && !strstr(text, s1 + 4)); /* never the token */
    free(text);
    json_decref(list);
    REQUIRE(crm_token_list(k, b, &list) == CRM_OK);
    CHECK(json_is_true(json_object_get(json_array_get(list, 0), "revoked")));
    CHECK(json_is_null(json_object_get(json_array_get(list, 0), "expires_at")));
    json_decref(list);
    crm_clock_set(-1);
    free(s1);
    free(s2);
    crm_kernel_close(k);
}

int main(void)
{
    if (crm_auth_init() < 0) return 2;
    RUN(test_hash_format);
    RUN(test_verify);
    RUN(test_verify_old_params_asks_rehash);
    RUN(test_password_bounds);
    RUN(test_user_create_and_find);
    RUN(test_user_create_refuses_bad_input);
    RUN(test_user_duplicate_writes_nothing);
    RUN(test_user_list);
    RUN(test_authenticate);
    RUN(test_authenticate_unknown_user_looks_like_wrong_password);
    RUN(test_authenticate_long_password_is_cheap);
    RUN(test_authenticate_disabled_user);
    RUN(test_login_rehashes_old_params);
    RUN(test_set_password);
    RUN(test_token_roundtrip);
    RUN(test_token_admin_actions);
    RUN(test_token_db_holds_only_hash);
    RUN(test_token_revoke);
    RUN(test_token_expiry);
    RUN(test_token_of_disabled_user);
    RUN(test_token_last_used_at_most_once_a_minute);
    RUN(test_token_list);
    return t_finish("test_auth");
}
