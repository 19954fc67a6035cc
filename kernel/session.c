/*
 * session.c — sessions (core_session, hashes only), their CSRF tokens, and
 * login throttling. See session.h for the model.
 *
 * Throttling is in memory: a restart forgets it, which costs an attacker a
 * restart they cannot cause, and keeps a failed login from being a write.
 * Two tables (accounts, client addresses), each a fixed set of hash buckets
 * under one mutex, bounded in size: stale entries are pruned when the table
 * is full, and if it is still full the oldest entry of the bucket goes.
 */
#include "session.h"

#include "auth.h"

#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>

/* last_seen_at is written at most this often per session (seconds). */
#define SESSION_TOUCH_INTERVAL 60

static _Atomic int64_t session_idle = CRM_SESSION_IDLE;
static _Atomic int64_t session_absolute = CRM_SESSION_ABSOLUTE;

void crm_session_set_lifetimes(int64_t idle, int64_t absolute)
{
    if (idle > 0) atomic_store(&session_idle, idle);
    if (absolute > 0) atomic_store(&session_absolute, absolute);
}

int64_t crm_session_absolute(void)
{
    return atomic_load(&session_absolute);
}

static bool secret_shaped(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n != CRM_SESSION_SECRET_LEN) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

void crm_session_csrf(const char *secret, char out[CRM_SESSION_SECRET_LEN + 1])
{
    static const char context[] = "crm csrf v1";
    unsigned char mac[32];
    char *enc;

    crypto_generichash(mac, sizeof mac, (const unsigned char *)context, sizeof context - 1,
                       (const unsigned char *)secret, strlen(secret));
    enc = crm_b64url_encode(mac, sizeof mac);
    snprintf(out, CRM_SESSION_SECRET_LEN + 1, "%s", enc);
    sodium_memzero(mac, sizeof mac);
    free(enc);
}

bool crm_session_csrf_ok(const char *secret, const char *presented)
{
    char want[CRM_SESSION_SECRET_LEN + 1];
    bool ok;
    if (!secret || !presented || strlen(presented) != CRM_SESSION_SECRET_LEN) return false;
    crm_session_csrf(secret, want);
    ok = sodium_memcmp(want, presented, CRM_SESSION_SECRET_LEN) == 0;
    sodium_memzero(want, sizeof want);
    return ok;
}

int crm_session_create(crm_kernel *k, int64_t user_id, const char *ip, char **secret_out,
                       char **csrf_out, int64_t *session_id_out)
{
    crm_conn *conn = crm_store_conn(k->store);
    char hash[crypto_hash_sha256_BYTES * 2 + 1], csrf_hash[crypto_hash_sha256_BYTES * 2 + 1];
    char csrf[CRM_SESSION_SECRET_LEN + 1];
    unsigned char raw[32];
    char *secret;
    int64_t now = crm_now();
    crm_stmt *st;
    int rc;

    *secret_out = NULL;
    *csrf_out = NULL;
    if (session_id_out) *session_id_out = 0;
    if ((rc = crm_auth_init()) < 0) return rc;
    randombytes_buf(raw, sizeof raw);
    secret = crm_b64url_encode(raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    crm_sha256_hex(secret, hash);
    crm_session_csrf(secret, csrf);
    crm_sha256_hex(csrf, csrf_hash);

    if ((rc = crm_tx_begin(conn)) < 0) goto fail;
    /* Old rows go as new ones come: a day past their end, they are history. */
    rc = crm_stmt_prepare(conn, &st,
                          "DELETE FROM core_session WHERE expires_at < ?1 OR revoked_at < ?1");
    if (rc < 0) goto rollback;
    crm_stmt_bind_int(st, 1, now - 86400);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    if (rc < 0) goto rollback;
    rc = crm_stmt_prepare(conn, &st,
                          "INSERT INTO core_session (user_id, hash, csrf_hash, created_at, "
                          "last_seen_at, expires_at, ip, reauth_at) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    if (rc < 0) goto rollback;
    crm_stmt_bind_int(st, 1, user_id);
    crm_stmt_bind_text(st, 2, hash, -1);
    crm_stmt_bind_text(st, 3, csrf_hash, -1);
    crm_stmt_bind_int(st, 4, now);
    crm_stmt_bind_int(st, 5, now);
    crm_stmt_bind_int(st, 6, now + atomic_load(&session_absolute));
    if (ip)
        crm_stmt_bind_text(st, 7, ip, -1);
    else
        crm_stmt_bind_null(st, 7);
    /* A login proves the password: it is a recent authentication. */
    crm_stmt_bind_int(st, 8, now);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    if (rc < 0) goto rollback;
    if (session_id_out) *session_id_out = crm_conn_last_rowid(conn);
    if ((rc = crm_tx_commit(conn)) < 0) goto rollback;
    *secret_out = secret;
    *csrf_out = crm_strdup(csrf);
    sodium_memzero(csrf, sizeof csrf);
    return CRM_OK;

rollback:
    crm_tx_rollback(conn);
fail:
    if (session_id_out) *session_id_out = 0;
    sodium_memzero(secret, strlen(secret));
    free(secret);
    sodium_memzero(csrf, sizeof csrf);
    return rc;
}

/* Best effort, like API tokens: a busy database skips the touch. */
static void session_touch(crm_conn *conn, int64_t id, int64_t now)
{
    const int64_t args[] = {now, id};
    crm_conn_exec_ints(conn, "UPDATE core_session SET last_seen_at = ? WHERE id = ?", args, 2);
    crm_error_clear();
}

int crm_session_verify(crm_kernel *k, const char *secret, int64_t *user_out,
                       int64_t *session_id_out)
{
    crm_conn *conn = crm_store_conn(k->store);
    char hash[crypto_hash_sha256_BYTES * 2 + 1];
    int64_t id, user_id, last_seen, expires_at, now;
    bool revoked, user_ok;
    crm_stmt *st;
    int rc;

    *user_out = 0;
    if (session_id_out) *session_id_out = 0;
    /* Anything not shaped like one of ours is refused without a query. */
    if (!secret_shaped(secret)) return crm_error_set(CRM_EDENIED, NULL, "invalid session");
    crm_sha256_hex(secret, hash);
    /* The user's state is checked here on every request, so that a disabled
     * user is out at once whatever caches the principal. */
    rc = crm_stmt_prepare(
        conn, &st,
        "SELECT s.id, s.user_id, s.last_seen_at, s.expires_at, "
        "s.revoked_at IS NOT NULL, "
        "u.id IS NOT NULL AND u.deleted_at IS NULL AND NOT COALESCE(u.disabled, 0) "
        "FROM core_session s LEFT JOIN \"core.user\" u ON u.id = s.user_id "
        "WHERE s.hash = ?");
    if (rc < 0) return rc;
    crm_stmt_bind_text(st, 1, hash, -1);
    rc = crm_stmt_step(st);
    if (rc != 1) {
        crm_stmt_done(st);
        return rc < 0 ? rc : crm_error_set(CRM_EDENIED, NULL, "invalid session");
    }
    id = crm_stmt_column_int(st, 0);
    user_id = crm_stmt_column_int(st, 1);
    last_seen = crm_stmt_column_int(st, 2);
    expires_at = crm_stmt_column_int(st, 3);
    revoked = crm_stmt_column_int(st, 4) != 0;
    user_ok = crm_stmt_column_int(st, 5) != 0;
    crm_stmt_done(st);

    now = crm_now();
    if (revoked) return crm_error_set(CRM_EDENIED, NULL, "session ended; log in again");
    if (!user_ok) return crm_error_set(CRM_EDENIED, NULL, "user disabled");
    if (now >= expires_at) return crm_error_set(CRM_EDENIED, NULL, "session expired; log in again");
    if (now - last_seen > atomic_load(&session_idle))
        return crm_error_set(CRM_EDENIED, NULL, "session expired after inactivity; log in again");
    if (now - last_seen >= SESSION_TOUCH_INTERVAL || now < last_seen) session_touch(conn, id, now);
    *user_out = user_id;
    if (session_id_out) *session_id_out = id;
    return CRM_OK;
}

int crm_session_reauth_at(crm_kernel *k, int64_t session_id, int64_t *at_out)
{
    crm_stmt *st;
    int rc;

    *at_out = 0;
    rc = crm_stmt_prepare(crm_store_conn(k->store), &st,
                          "SELECT COALESCE(reauth_at, 0) FROM core_session "
                          "WHERE id = ? AND revoked_at IS NULL");
    if (rc < 0) return rc;
    crm_stmt_bind_int(st, 1, session_id);
    rc = crm_stmt_step(st);
    if (rc == 1) *at_out = crm_stmt_column_int(st, 0);
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

int crm_session_reauth(crm_kernel *k, int64_t session_id)
{
    const int64_t args[] = {crm_now(), session_id};
    crm_conn *conn = crm_store_conn(k->store);
    /* One UPDATE by primary key: it changes that row or writes nothing. */
    int rc = crm_conn_exec_ints(
        conn, "UPDATE core_session SET reauth_at = ? WHERE id = ? AND revoked_at IS NULL", args, 2);
    if (rc < 0) return rc;
    if (crm_conn_changes(conn) != 1)
        return crm_error_set(CRM_EDENIED, NULL, "session ended; log in again");
    return CRM_OK;
}

void crm_login_token_new(char out[CRM_SESSION_SECRET_LEN + 1])
{
    unsigned char raw[32];
    char *enc;
    randombytes_buf(raw, sizeof raw);
    enc = crm_b64url_encode(raw, sizeof raw);
    snprintf(out, CRM_SESSION_SECRET_LEN + 1, "%s", enc);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(enc, strlen(enc));
    free(enc);
}

bool crm_login_token_ok(const char *cookie, const char *header)
{
    /* Both are ours only if shaped like ours; the lengths are public, the bytes are not. */
    if (!secret_shaped(cookie) || !secret_shaped(header)) return false;
    return sodium_memcmp(cookie, header, CRM_SESSION_SECRET_LEN) == 0;
}

static int revoke_where(crm_kernel *k, const char *sql, int64_t a, int64_t b)
{
    crm_conn *conn = crm_store_conn(k->store);
    crm_stmt *st;
    int rc, n;

    if ((rc = crm_tx_begin(conn)) < 0) return rc;
    if ((rc = crm_stmt_prepare(conn, &st, sql)) < 0) goto rollback;
    crm_stmt_bind_int(st, 1, crm_now());
    crm_stmt_bind_int(st, 2, a);
    if (crm_stmt_param_count(st) >= 3) crm_stmt_bind_int(st, 3, b);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    if (rc < 0) goto rollback;
    n = crm_conn_changes(conn);
    if ((rc = crm_tx_commit(conn)) < 0) goto rollback;
    return n;
rollback:
    crm_tx_rollback(conn);
    return rc;
}

int crm_session_revoke(crm_kernel *k, int64_t session_id)
{
    int rc = revoke_where(k,
                          "UPDATE core_session SET revoked_at = ?1 "
                          "WHERE id = ?2 AND revoked_at IS NULL",
                          session_id, 0);
    return rc < 0 ? rc : CRM_OK;
}

int crm_session_revoke_user(crm_kernel *k, int64_t user_id, int64_t keep_session_id)
{
    return revoke_where(k,
                        "UPDATE core_session SET revoked_at = ?1 "
                        "WHERE user_id = ?2 AND id != ?3 AND revoked_at IS NULL",
                        user_id, keep_session_id);
}

int crm_session_change_password(crm_kernel *k, int64_t user_id, const char *password,
                                int64_t keep_session_id)
{
    int rc = crm_user_set_password(k, user_id, password);
    if (rc < 0) return rc;
    /*
     * Separate from the password's own transaction (auth.c owns that one). If
     * this fails the password is changed but old sessions live on until they
     * expire: logged loudly, and the caller sees the error.
     */
    rc = crm_session_revoke_user(k, user_id, keep_session_id);
    if (rc < 0) {
        crm_log(CRM_LOG_ERROR,
                "session: password of user %" PRId64 " changed but its sessions were not ended: %s",
                user_id, crm_error_last()->message);
        return rc;
    }
    return CRM_OK;
}

/* ---- Login throttling ---- */

#define THROTTLE_BUCKETS 1024
#define THROTTLE_MAX     50000 /* entries per table */
#define THROTTLE_KEY     96

typedef struct throttle_entry {
    struct throttle_entry *next;
    char key[THROTTLE_KEY];
    int failures;
    int64_t first_failure, last_failure, locked_until;
} throttle_entry;

typedef struct throttle_table {
    throttle_entry *buckets[THROTTLE_BUCKETS];
    int count;
    int threshold;
} throttle_table;

static pthread_mutex_t throttle_lock = PTHREAD_MUTEX_INITIALIZER;
static throttle_table accounts = {{NULL}, 0, CRM_THROTTLE_ACCOUNT};
static throttle_table addresses = {{NULL}, 0, CRM_THROTTLE_IP};

static uint32_t key_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a; keys are user-chosen but buckets are bounded anyway */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h % THROTTLE_BUCKETS;
}

/* Keys: usernames folded to lower case (as auth.c does), truncated. */
static void make_key(char out[THROTTLE_KEY], const char *s)
{
    size_t i = 0;
    for (; s && s[i] && i < THROTTLE_KEY - 1; i++)
        out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    out[i] = '\0';
}

static bool entry_stale(const throttle_entry *e, int64_t now)
{
    return e->locked_until <= now && now - e->last_failure > CRM_THROTTLE_WINDOW;
}

static void table_prune(throttle_table *t, int64_t now)
{
    for (int b = 0; b < THROTTLE_BUCKETS; b++) {
        throttle_entry **pp = &t->buckets[b];
        while (*pp) {
            throttle_entry *e = *pp;
            if (entry_stale(e, now)) {
                *pp = e->next;
                free(e);
                t->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

static throttle_entry *table_find(throttle_table *t, const char *key, bool create, int64_t now)
{
    uint32_t b = key_hash(key);
    throttle_entry *e, **pp;

    for (e = t->buckets[b]; e; e = e->next)
        if (strcmp(e->key, key) == 0) return e;
    if (!create) return NULL;
    if (t->count >= THROTTLE_MAX) table_prune(t, now);
    if (t->count >= THROTTLE_MAX && t->buckets[b]) {
        /* Still full: the bucket's oldest entry makes room. */
        throttle_entry *oldest = t->buckets[b];
        for (e = t->buckets[b]; e; e = e->next)
            if (e->last_failure < oldest->last_failure) oldest = e;
        for (pp = &t->buckets[b]; *pp != oldest; pp = &(*pp)->next)
            ;
        *pp = oldest->next;
        free(oldest);
        t->count--;
    }
    e = crm_calloc(1, sizeof *e);
    snprintf(e->key, sizeof e->key, "%s", key);
    e->next = t->buckets[b];
    t->buckets[b] = e;
    t->count++;
    return e;
}

static int64_t entry_wait(const throttle_entry *e, int64_t now)
{
    return e && e->locked_until > now ? e->locked_until - now : 0;
}

int crm_login_throttled(const char *username, const char *ip)
{
    char ukey[THROTTLE_KEY], ikey[THROTTLE_KEY];
    int64_t now = crm_now(), wait;

    make_key(ukey, username);
    make_key(ikey, ip);
    pthread_mutex_lock(&throttle_lock);
    wait = entry_wait(table_find(&accounts, ukey, false, now), now);
    {
        int64_t w = entry_wait(table_find(&addresses, ikey, false, now), now);
        if (w > wait) wait = w;
    }
    pthread_mutex_unlock(&throttle_lock);
    return (int)wait;
}

static void entry_fail(throttle_table *t, throttle_entry *e, int64_t now)
{
    if (now - e->first_failure > CRM_THROTTLE_WINDOW) {
        e->failures = 0;
        e->first_failure = now;
    }
    if (e->failures == 0) e->first_failure = now;
    e->failures++;
    e->last_failure = now;
    if (e->failures >= t->threshold) {
        int shift = e->failures - t->threshold;
        int64_t lock = shift >= 5 ? CRM_THROTTLE_WINDOW : (int64_t)CRM_THROTTLE_BASE << shift;
        if (lock > CRM_THROTTLE_WINDOW) lock = CRM_THROTTLE_WINDOW;
        e->locked_until = now + lock;
        /* The window restarts with the lock, so the count survives it. */
        e->first_failure = now;
    }
}

void crm_login_record(const char *username, const char *ip, bool success)
{
    char ukey[THROTTLE_KEY], ikey[THROTTLE_KEY];
    int64_t now = crm_now();
    throttle_entry *e;

    make_key(ukey, username);
    make_key(ikey, ip);
    pthread_mutex_lock(&throttle_lock);
    if (success) {
        /* The account's slate is clean; the address's is not (one valid
         * account must not reset an address guessing at others). */
        uint32_t b = key_hash(ukey);
        for (throttle_entry **pp = &accounts.buckets[b]; *pp; pp = &(*pp)->next)
            if (strcmp((*pp)->key, ukey) == 0) {
                e = *pp;
                *pp = e->next;
                free(e);
                accounts.count--;
                break;
            }
    } else {
        entry_fail(&accounts, table_find(&accounts, ukey, true, now), now);
        entry_fail(&addresses, table_find(&addresses, ikey, true, now), now);
    }
    pthread_mutex_unlock(&throttle_lock);
}

static void table_clear(throttle_table *t)
{
    for (int b = 0; b < THROTTLE_BUCKETS; b++) {
        throttle_entry *e = t->buckets[b];
        while (e) {
            throttle_entry *next = e->next;
            free(e);
            e = next;
        }
        t->buckets[b] = NULL;
    }
    t->count = 0;
}

void crm_login_throttle_reset(void)
{
    pthread_mutex_lock(&throttle_lock);
    table_clear(&accounts);
    table_clear(&addresses);
    pthread_mutex_unlock(&throttle_lock);
}
