/*
 * store.c — SQLite behind the kernel's own API: connections (one per thread),
 * the prepared-statement cache, transactions as savepoints, migrations and
 * online backup. The only file that includes sqlite3.h.
 */
#include "store.h"

#include "migrations.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A power of two above the cap keeps hash chains short without resizing. */
#define CACHE_BUCKETS 512
#define CACHE_MAX 256
#define BACKUP_PAGES 256

struct crm_stmt {
    sqlite3_stmt *st;
    crm_conn *conn;
    char *sql;          /* cached statements only: the key */
    uint32_t hash;
    bool cached;
    bool in_use;
    uint64_t last_used; /* for eviction */
    crm_stmt *next;     /* hash chain */
};

typedef struct on_commit {
    void (*fn)(void *);
    void *arg;
    int depth; /* the level that registered it: dropped if that level rolls back */
} on_commit;

typedef struct deferred {
    int (*fn)(crm_conn *, void *);
    void *arg;
    void (*free_fn)(void *);
    int depth; /* as for on_commit */
} deferred;

struct crm_conn {
    sqlite3 *db;
    crm_store *store;
    crm_stmt *buckets[CACHE_BUCKETS];
    int ncached;
    uint64_t tick;
    int depth;
    on_commit *callbacks;
    size_t ncallbacks, capcallbacks;
    deferred *deferred;
    size_t ndeferred, capdeferred;
    void *slots[CRM_SLOT_MAX];
    void (*slot_free[CRM_SLOT_MAX])(void *);
    crm_conn *prev, *next; /* the store's list of open connections */
};

static void deferred_drop(crm_conn *c, int depth);

struct crm_store {
    char *path;
    int synchronous;
    int busy_timeout_ms;
    pthread_key_t key;
    pthread_mutex_t lock; /* guards conns */
    crm_conn *conns;
};

/*
 * The one place SQLite result codes become crm codes. `db` supplies the
 * message; extended result codes are on for every connection.
 */
static int map_error(sqlite3 *db, int rc, const char *what)
{
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);

    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return crm_error_set(CRM_EBUSY, NULL, "database is busy; retry");
    case SQLITE_FULL:
        return crm_error_set(CRM_EFULL, NULL, "storage full: %s; free disk space and retry", msg);
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return crm_error_set(CRM_ECONFLICT, NULL, "%s", msg);
        return crm_error_set(CRM_EINVALID, NULL, "%s", msg);
    case SQLITE_TOOBIG:
        return crm_error_set(CRM_ELIMIT, NULL, "value too big: %s", msg);
    case SQLITE_INTERRUPT:
        return crm_error_set(CRM_ELIMIT, NULL, "query interrupted");
    default:
        return crm_error_set(CRM_EINTERNAL, NULL, "database error while %s: %s", what, msg);
    }
}

/*
 * Run constant SQL without touching this thread's error: transaction control
 * uses it so that a rollback keeps the error that caused it.
 */
static int exec_raw(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* ---- Connections ---- */

static void stmt_free(crm_stmt *s)
{
    sqlite3_finalize(s->st);
    free(s->sql);
    free(s);
}

static void conn_close(crm_conn *c)
{
    /* Slots first: their state may still hold statements of this connection. */
    for (int i = 0; i < CRM_SLOT_MAX; i++) {
        if (c->slots[i] && c->slot_free[i]) c->slot_free[i](c->slots[i]);
        c->slots[i] = NULL;
    }
    for (int i = 0; i < CACHE_BUCKETS; i++) {
        crm_stmt *s = c->buckets[i], *next;
        for (; s; s = next) {
            next = s->next;
            stmt_free(s);
        }
    }
    /* _v2: a statement still handed out keeps the handle alive as a zombie. */
    sqlite3_close_v2(c->db);
    free(c->callbacks);
    deferred_drop(c, 0);
    free(c->deferred);
    free(c);
}

static void conn_link(crm_store *store, crm_conn *c)
{
    pthread_mutex_lock(&store->lock);
    c->prev = NULL;
    c->next = store->conns;
    if (store->conns) store->conns->prev = c;
    store->conns = c;
    pthread_mutex_unlock(&store->lock);
}

static void conn_unlink(crm_store *store, crm_conn *c)
{
    pthread_mutex_lock(&store->lock);
    if (c->prev) c->prev->next = c->next;
    else store->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    pthread_mutex_unlock(&store->lock);
}

/* A thread that exits without crm_store_release_thread() still closes its connection. */
static void conn_destructor(void *p)
{
    crm_conn *c = p;
    conn_unlink(c->store, c);
    conn_close(c);
}

static int conn_setup(crm_conn *c)
{
    static const char *const sync_sql[] = {
        "PRAGMA synchronous=OFF", "PRAGMA synchronous=NORMAL", "PRAGMA synchronous=FULL"};
    sqlite3 *db = c->db;
    sqlite3_stmt *st = NULL;
    int rc;

    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, c->store->busy_timeout_ms);
    /*
     * Defence against a crafted database file: no schema writes, no SQL
     * functions with side effects reachable from the schema.
     */
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 10 * 1024 * 1024);
    sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 1024 * 1024);
    sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 256);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);

    /* journal_mode answers with the mode in force: anything but wal is a failure. */
    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        rc = map_error(db, rc, "enabling WAL");
        goto done;
    }
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = map_error(db, rc, "enabling WAL");
        goto done;
    }
    if (strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
        rc = crm_error_set(CRM_EINTERNAL, NULL, "%s: cannot use WAL (journal_mode is %s)",
                           c->store->path, (const char *)sqlite3_column_text(st, 0));
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;

    rc = exec_raw(db, sync_sql[c->store->synchronous]);
    if (rc == SQLITE_OK)
        rc = exec_raw(db, "PRAGMA foreign_keys=ON;"
                          "PRAGMA trusted_schema=OFF;"
                          "PRAGMA journal_size_limit=67108864;"
                          /* savepoint (statement) journals in memory, not temp files */
                          "PRAGMA temp_store=MEMORY;"
                          /*
                           * Reads through a shared memory map instead of a pread per page
                           * (the page cache is the OS's either way); the private cache stays
                           * at SQLite's 2 MiB: the pool has 4 connections per core.
                           */
                          "PRAGMA mmap_size=268435456;"
                          "PRAGMA cache_size=-2048;");
    if (rc != SQLITE_OK) {
        rc = map_error(db, rc, "setting pragmas");
        goto done;
    }
    rc = CRM_OK;
done:
    sqlite3_finalize(st);
    return rc;
}

static int conn_open(crm_store *store, crm_conn **out)
{
    crm_conn *c = crm_calloc(1, sizeof *c);
    int rc;

    c->store = store;
    /* NOMUTEX: a connection never leaves its thread, so SQLite's own locking is waste. */
    rc = sqlite3_open_v2(store->path, &c->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = crm_error_set(CRM_EINTERNAL, NULL, "cannot open database %s: %s", store->path,
                           c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        goto done;
    }
    rc = conn_setup(c);
done:
    if (rc != CRM_OK) {
        conn_close(c);
        return rc;
    }
    *out = c;
    return CRM_OK;
}

crm_conn *crm_store_conn(crm_store *store)
{
    crm_conn *c = pthread_getspecific(store->key);
    int rc;

    if (c) return c;
    rc = conn_open(store, &c);
    if (rc != CRM_OK) {
        crm_log(CRM_LOG_ERROR, "store: %s", crm_error_last()->message);
        abort();
    }
    conn_link(store, c);
    pthread_setspecific(store->key, c);
    return c;
}

void crm_store_release_thread(crm_store *store)
{
    crm_conn *c = pthread_getspecific(store->key);

    if (!c) return;
    pthread_setspecific(store->key, NULL);
    conn_unlink(store, c);
    conn_close(c);
}

crm_store *crm_conn_store(crm_conn *conn)
{
    return conn->store;
}

/* ---- Migrations ---- */

static int user_version(crm_conn *c, int64_t *v)
{
    return crm_conn_query_int(c, "PRAGMA user_version", v, 0);
}

static int migrate(crm_conn *c)
{
    int64_t v, again;
    int rc;

    for (;;) {
        rc = user_version(c, &v);
        if (rc != CRM_OK) return rc;
        if (v > CRM_MIGRATION_COUNT)
            return crm_error_set(CRM_EINVALID, NULL,
                                 "database schema version %lld is newer than this crm (%d); "
                                 "upgrade crm",
                                 (long long)v, CRM_MIGRATION_COUNT);
        if (v == CRM_MIGRATION_COUNT) return CRM_OK;

        rc = crm_tx_begin(c);
        if (rc != CRM_OK) return rc;
        /* Another process may have migrated while we waited for the write lock. */
        rc = user_version(c, &again);
        if (rc != CRM_OK) goto fail;
        if (again != v) {
            crm_tx_rollback(c);
            continue;
        }
        rc = crm_conn_exec(c, crm_migrations[v]);
        if (rc != CRM_OK) goto fail;
        {
            /* PRAGMA takes no parameters; the value is an integer we computed. */
            char sql[64];
            snprintf(sql, sizeof sql, "PRAGMA user_version=%d", (int)v + 1);
            rc = crm_conn_exec(c, sql);
        }
        if (rc != CRM_OK) goto fail;
        rc = crm_tx_commit(c);
        if (rc != CRM_OK) return rc;
        crm_log(CRM_LOG_INFO, "store: %s migrated to schema %d", c->store->path, (int)v + 1);
    }
fail:
    crm_tx_rollback(c);
    return rc;
}

/* ---- Store ---- */

/*
 * SQLite's memory statistics (sqlite3_memory_used & co., which crm does not
 * read) take one process-wide mutex on every allocation and free: with a
 * connection per pool thread, a full-text search's many small allocations
 * made that mutex the hottest lock of the server (6% of the CPU in futex
 * calls at 64 connections). Turned off once, before SQLite initialises; if the
 * embedding program already initialised SQLite, the call is refused and the
 * default stays, which is only slower.
 */
static void sqlite_global_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_initialize();
}

int crm_store_open(crm_store **out, const crm_store_opts *opts)
{
    static const char *const sync_names[] = {"OFF", "NORMAL", "FULL"};
    crm_store *store = NULL;
    crm_conn *c = NULL;
    int rc;

    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_global_setup);
    *out = NULL;
    if (!opts || !opts->path || !opts->path[0])
        return crm_error_set(CRM_EINVALID, NULL, "store: no database path given");
    if (strcmp(opts->path, ":memory:") == 0)
        return crm_error_set(CRM_EINVALID, NULL,
                             "store: \":memory:\" cannot be shared between connections; "
                             "give a file path");
    if (opts->synchronous < 0 || opts->synchronous > 2)
        return crm_error_set(CRM_EINVALID, NULL,
                             "store: synchronous must be 0 (OFF), 1 (NORMAL) or 2 (FULL), got %d",
                             opts->synchronous);

    store = crm_calloc(1, sizeof *store);
    store->path = crm_strdup(opts->path);
    store->synchronous = opts->synchronous;
    /* A zeroed struct means "default", not "never wait". */
    store->busy_timeout_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
    pthread_mutex_init(&store->lock, NULL);
    if (pthread_key_create(&store->key, conn_destructor) != 0) {
        pthread_mutex_destroy(&store->lock);
        free(store->path);
        free(store);
        return crm_error_set(CRM_EINTERNAL, NULL, "store: out of thread-local keys");
    }

    rc = conn_open(store, &c);
    if (rc != CRM_OK) goto done;
    conn_link(store, c);
    pthread_setspecific(store->key, c);

    rc = migrate(c);
    if (rc != CRM_OK) goto done;
    crm_log(CRM_LOG_INFO, "store: opened %s (journal_mode=wal, synchronous=%s, schema %d)",
            store->path, sync_names[store->synchronous], CRM_MIGRATION_COUNT);
done:
    if (rc != CRM_OK) {
        crm_store_close(store);
        return rc;
    }
    *out = store;
    return CRM_OK;
}

void crm_store_close(crm_store *store)
{
    crm_conn *c, *next;

    if (!store) return;
    /* This thread's value would dangle; other threads' values die with the key. */
    if (pthread_getspecific(store->key)) pthread_setspecific(store->key, NULL);
    pthread_mutex_lock(&store->lock);
    c = store->conns;
    store->conns = NULL;
    pthread_mutex_unlock(&store->lock);
    for (; c; c = next) {
        next = c->next;
        conn_close(c);
    }
    pthread_key_delete(store->key);
    pthread_mutex_destroy(&store->lock);
    free(store->path);
    free(store);
}

const char *crm_store_path(const crm_store *store)
{
    return store->path;
}

int crm_store_synchronous(const crm_store *store)
{
    return store->synchronous;
}

int crm_store_schema_version(void)
{
    return CRM_MIGRATION_COUNT;
}

int crm_store_backup(crm_store *store, const char *dest_path)
{
    crm_conn *c = crm_store_conn(store);
    sqlite3 *dest = NULL;
    sqlite3_backup *b = NULL;
    bool created = false, snapshot = false;
    int fd, rc;

    /* O_EXCL: never overwrite, and no window between the check and the create. */
    fd = open(dest_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return crm_error_set(CRM_EINVALID, NULL,
                                 "backup: %s exists; choose a new file name", dest_path);
        return crm_error_set(CRM_EINTERNAL, NULL, "backup: cannot create %s: %s", dest_path,
                             strerror(errno));
    }
    close(fd);
    created = true;

    rc = sqlite3_open_v2(dest_path, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = crm_error_set(CRM_EINTERNAL, NULL, "backup: cannot open %s: %s", dest_path,
                           dest ? sqlite3_errmsg(dest) : sqlite3_errstr(rc));
        goto done;
    }
    sqlite3_extended_result_codes(dest, 1);

    /*
     * Hold one read snapshot for the whole copy: otherwise every write by
     * another connection between steps restarts the backup, and under a steady
     * write load it would never finish. WAL lets writers go on meanwhile.
     */
    if (c->depth == 0) {
        rc = exec_raw(c->db, "BEGIN; SELECT count(*) FROM sqlite_master;");
        if (rc != SQLITE_OK) {
            rc = map_error(c->db, rc, "starting the backup");
            goto done;
        }
        snapshot = true;
    }

    b = sqlite3_backup_init(dest, "main", c->db, "main");
    if (!b) {
        rc = map_error(dest, sqlite3_errcode(dest), "starting the backup");
        goto done;
    }
    for (;;) {
        rc = sqlite3_backup_step(b, BACKUP_PAGES);
        if (rc == SQLITE_DONE) break;
        if (rc == SQLITE_OK) continue;
        if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
            sqlite3_sleep(20);
            continue;
        }
        sqlite3_backup_finish(b);
        b = NULL;
        rc = map_error(dest, rc, "copying the backup");
        goto done;
    }
    rc = sqlite3_backup_finish(b);
    b = NULL;
    if (rc != SQLITE_OK) {
        rc = map_error(dest, rc, "finishing the backup");
        goto done;
    }
    rc = CRM_OK;
    crm_log(CRM_LOG_INFO, "store: backed up %s to %s", store->path, dest_path);
done:
    if (b) sqlite3_backup_finish(b);
    if (snapshot) exec_raw(c->db, "ROLLBACK");
    if (dest) sqlite3_close_v2(dest);
    if (rc != CRM_OK && created) {
        char side[4096];
        unlink(dest_path);
        snprintf(side, sizeof side, "%s-wal", dest_path);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", dest_path);
        unlink(side);
        snprintf(side, sizeof side, "%s-journal", dest_path);
        unlink(side);
    }
    return rc;
}

/* ---- Statements ---- */

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* Drop the least recently used statement nobody holds; at the cap only. */
static void cache_evict(crm_conn *c)
{
    crm_stmt **victim = NULL;

    for (int i = 0; i < CACHE_BUCKETS; i++)
        for (crm_stmt **pp = &c->buckets[i]; *pp; pp = &(*pp)->next)
            if (!(*pp)->in_use && (!victim || (*pp)->last_used < (*victim)->last_used))
                victim = pp;
    if (victim) {
        crm_stmt *s = *victim;
        *victim = s->next;
        stmt_free(s);
        c->ncached--;
    }
}

static int stmt_compile(crm_conn *c, const char *sql, unsigned flags, sqlite3_stmt **out)
{
    const char *tail = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, flags, out, &tail);

    if (rc != SQLITE_OK) return map_error(c->db, rc, "preparing a statement");
    if (!*out)
        return crm_error_set(CRM_EINTERNAL, NULL, "store: empty SQL statement");
    while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == '\r' ||
                    *tail == ';'))
        tail++;
    if (tail && *tail) {
        sqlite3_finalize(*out);
        *out = NULL;
        return crm_error_set(CRM_EINTERNAL, NULL,
                             "store: more than one SQL statement given to crm_stmt_prepare");
    }
    return CRM_OK;
}

int crm_stmt_prepare(crm_conn *conn, crm_stmt **out, const char *sql)
{
    uint32_t h = fnv1a(sql);
    crm_stmt **bucket = &conn->buckets[h & (CACHE_BUCKETS - 1)], *s;
    sqlite3_stmt *raw = NULL;
    bool fresh = false;
    int rc;

    *out = NULL;
    for (s = *bucket; s; s = s->next) {
        if (s->hash != h || strcmp(s->sql, sql) != 0) continue;
        if (!s->in_use) {
            s->in_use = true;
            s->last_used = ++conn->tick;
            *out = s;
            return CRM_OK;
        }
        /* Held by a caller further up the stack (recursion): a private copy. */
        fresh = true;
        break;
    }

    rc = stmt_compile(conn, sql, fresh ? 0 : SQLITE_PREPARE_PERSISTENT, &raw);
    if (rc != CRM_OK) return rc;
    s = crm_calloc(1, sizeof *s);
    s->st = raw;
    s->conn = conn;
    s->in_use = true;
    if (!fresh) {
        if (conn->ncached >= CACHE_MAX) cache_evict(conn);
        s->sql = crm_strdup(sql);
        s->hash = h;
        s->cached = true;
        s->last_used = ++conn->tick;
        s->next = *bucket;
        *bucket = s;
        conn->ncached++;
    }
    *out = s;
    return CRM_OK;
}

void crm_stmt_done(crm_stmt *st)
{
    if (!st) return;
    if (!st->cached) {
        stmt_free(st);
        return;
    }
    sqlite3_reset(st->st);
    sqlite3_clear_bindings(st->st);
    st->in_use = false;
}

void crm_stmt_bind_int(crm_stmt *st, int i, int64_t v)
{
    sqlite3_bind_int64(st->st, i, v);
}

void crm_stmt_bind_double(crm_stmt *st, int i, double v)
{
    sqlite3_bind_double(st->st, i, v);
}

void crm_stmt_bind_text(crm_stmt *st, int i, const char *s, int n)
{
    if (!s) sqlite3_bind_null(st->st, i);
    else sqlite3_bind_text(st->st, i, s, n, SQLITE_TRANSIENT);
}

void crm_stmt_bind_null(crm_stmt *st, int i)
{
    sqlite3_bind_null(st->st, i);
}

int crm_stmt_param_count(crm_stmt *st)
{
    return sqlite3_bind_parameter_count(st->st);
}

int crm_stmt_step(crm_stmt *st)
{
    int rc = sqlite3_step(st->st);

    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    return map_error(st->conn->db, rc, "running a statement");
}

int crm_stmt_column_count(crm_stmt *st)
{
    return sqlite3_column_count(st->st);
}

int crm_stmt_column_type(crm_stmt *st, int i)
{
    switch (sqlite3_column_type(st->st, i)) {
    case SQLITE_INTEGER: return CRM_COL_INT;
    case SQLITE_FLOAT: return CRM_COL_FLOAT;
    case SQLITE_TEXT: return CRM_COL_TEXT;
    case SQLITE_BLOB: return CRM_COL_BLOB;
    default: return CRM_COL_NULL;
    }
}

const char *crm_stmt_column_name(crm_stmt *st, int i)
{
    return sqlite3_column_name(st->st, i);
}

int64_t crm_stmt_column_int(crm_stmt *st, int i)
{
    return sqlite3_column_int64(st->st, i);
}

double crm_stmt_column_double(crm_stmt *st, int i)
{
    return sqlite3_column_double(st->st, i);
}

const char *crm_stmt_column_text(crm_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st->st, i);
}

int crm_stmt_column_bytes(crm_stmt *st, int i)
{
    return sqlite3_column_bytes(st->st, i);
}

/* ---- Convenience ---- */

int crm_conn_exec(crm_conn *conn, const char *sql)
{
    int rc = sqlite3_exec(conn->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? CRM_OK : map_error(conn->db, rc, "running SQL");
}

int crm_conn_query_int(crm_conn *conn, const char *sql, int64_t *out, int64_t dflt)
{
    crm_stmt *st = NULL;
    int rc;

    *out = dflt;
    rc = crm_stmt_prepare(conn, &st, sql);
    if (rc != CRM_OK) return rc;
    rc = crm_stmt_step(st);
    if (rc == 1 && crm_stmt_column_type(st, 0) != CRM_COL_NULL) *out = crm_stmt_column_int(st, 0);
    if (rc >= 0) rc = CRM_OK;
    crm_stmt_done(st);
    return rc;
}

/* Close the transaction a one-statement write opened for itself (`own`): commit, or
   roll back on rc. */
static int own_tx_end(crm_conn *conn, bool own, int rc)
{
    if (!own) return rc;
    if (rc) {
        crm_tx_rollback(conn);
        return rc;
    }
    return crm_tx_commit(conn);
}

int crm_conn_exec_ints(crm_conn *conn, const char *sql, const int64_t *args, int n)
{
    crm_stmt *st;
    bool own = conn->depth == 0;
    int rc = own ? crm_tx_begin(conn) : CRM_OK;
    if (rc) return rc;
    if ((rc = crm_stmt_prepare(conn, &st, sql)) == CRM_OK) {
        for (int i = 0; i < n; i++) crm_stmt_bind_int(st, i + 1, args[i]);
        rc = crm_stmt_step(st);
        crm_stmt_done(st);
        rc = rc < 0 ? rc : CRM_OK;
    }
    return own_tx_end(conn, own, rc);
}

int64_t crm_conn_last_rowid(crm_conn *conn)
{
    return sqlite3_last_insert_rowid(conn->db);
}

char *crm_setting_get(crm_conn *conn, const char *key)
{
    crm_stmt *st = NULL;
    char *v = NULL;
    if (crm_stmt_prepare(conn, &st, "SELECT value FROM core_setting WHERE key = ?1")) return NULL;
    crm_stmt_bind_text(st, 1, key, -1);
    if (crm_stmt_step(st) > 0 && crm_stmt_column_text(st, 0))
        v = crm_strdup(crm_stmt_column_text(st, 0));
    crm_stmt_done(st);
    return v;
}

int crm_setting_put(crm_conn *conn, const char *key, const char *value)
{
    crm_stmt *st;
    bool own = conn->depth == 0;
    int rc = own ? crm_tx_begin(conn) : CRM_OK;
    if (rc) return rc;
    if ((rc = crm_stmt_prepare(conn, &st, "INSERT INTO core_setting(key, value) VALUES (?1, ?2) "
                                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value")) ==
        CRM_OK) {
        crm_stmt_bind_text(st, 1, key, -1);
        crm_stmt_bind_text(st, 2, value, -1);
        rc = crm_stmt_step(st);
        crm_stmt_done(st);
        rc = rc < 0 ? rc : CRM_OK;
    }
    return own_tx_end(conn, own, rc);
}

int64_t crm_conn_total_changes(crm_conn *conn)
{
    return sqlite3_total_changes64(conn->db);
}

int crm_conn_changes(crm_conn *conn)
{
    return sqlite3_changes(conn->db);
}

/* ---- Transactions ---- */

/* Drop the callbacks registered at `depth` or deeper (that work was undone). */
static void callbacks_drop(crm_conn *c, int depth)
{
    size_t keep = 0;
    for (size_t i = 0; i < c->ncallbacks; i++)
        if (c->callbacks[i].depth < depth) c->callbacks[keep++] = c->callbacks[i];
    c->ncallbacks = keep;
}

/* Drop (free) the deferred actions registered at `depth` or deeper. */
static void deferred_drop(crm_conn *c, int depth)
{
    size_t keep = 0;
    for (size_t i = 0; i < c->ndeferred; i++) {
        if (c->deferred[i].depth < depth) {
            c->deferred[keep++] = c->deferred[i];
        } else if (c->deferred[i].free_fn) {
            c->deferred[i].free_fn(c->deferred[i].arg);
        }
    }
    c->ndeferred = keep;
}

/* Run the deferred actions (before COMMIT); all are freed whatever happens. */
static int deferred_run(crm_conn *c)
{
    int rc = CRM_OK;
    /* Detach first: an action may write, and writes may defer more (run them too). */
    while (c->ndeferred && rc == CRM_OK) {
        deferred *run = c->deferred;
        size_t n = c->ndeferred;
        c->deferred = NULL;
        c->ndeferred = c->capdeferred = 0;
        for (size_t i = 0; i < n; i++) {
            if (rc == CRM_OK) rc = run[i].fn(c, run[i].arg);
            if (run[i].free_fn) run[i].free_fn(run[i].arg);
        }
        free(run);
    }
    if (rc) deferred_drop(c, 0);
    return rc;
}

void crm_tx_before_commit(crm_conn *conn, int (*fn)(crm_conn *conn, void *arg), void *arg,
                          void (*free_fn)(void *arg))
{
    if (conn->depth == 0) {
        /* No transaction: nothing to wait for. */
        fn(conn, arg);
        if (free_fn) free_fn(arg);
        return;
    }
    if (conn->ndeferred == conn->capdeferred) {
        conn->capdeferred = conn->capdeferred ? conn->capdeferred * 2 : 16;
        conn->deferred = crm_realloc(conn->deferred, conn->capdeferred * sizeof *conn->deferred);
    }
    conn->deferred[conn->ndeferred++] = (deferred){fn, arg, free_fn, conn->depth};
}

int crm_tx_begin(crm_conn *conn)
{
    int rc;

    if (conn->depth == 0) {
        rc = exec_raw(conn->db, "BEGIN IMMEDIATE");
    } else {
        char sql[32];
        snprintf(sql, sizeof sql, "SAVEPOINT s%d", conn->depth + 1);
        rc = exec_raw(conn->db, sql);
    }
    if (rc != SQLITE_OK) return map_error(conn->db, rc, "beginning a transaction");
    conn->depth++;
    return CRM_OK;
}

int crm_tx_commit(crm_conn *conn)
{
    on_commit *run;
    size_t nrun;
    int rc;

    if (conn->depth <= 0)
        return crm_error_set(CRM_EINTERNAL, NULL, "store: commit without a transaction");

    if (conn->depth > 1) {
        char sql[32];
        if (sqlite3_get_autocommit(conn->db)) goto lost;
        snprintf(sql, sizeof sql, "RELEASE s%d", conn->depth);
        rc = exec_raw(conn->db, sql);
        if (rc != SQLITE_OK) return map_error(conn->db, rc, "releasing a savepoint");
        conn->depth--;
        for (size_t i = 0; i < conn->ncallbacks; i++)
            if (conn->callbacks[i].depth > conn->depth) conn->callbacks[i].depth = conn->depth;
        for (size_t i = 0; i < conn->ndeferred; i++)
            if (conn->deferred[i].depth > conn->depth) conn->deferred[i].depth = conn->depth;
        return CRM_OK;
    }

    if (sqlite3_get_autocommit(conn->db)) goto lost;
    if ((rc = deferred_run(conn)) != CRM_OK) {
        /* The transaction cannot commit without them: undo it all, keep the error. */
        if (!sqlite3_get_autocommit(conn->db)) exec_raw(conn->db, "ROLLBACK");
        conn->depth = 0;
        conn->ncallbacks = 0;
        return rc;
    }
    rc = exec_raw(conn->db, "COMMIT");
    if (rc != SQLITE_OK) {
        /* Map before the rollback, which would replace SQLite's message. */
        rc = map_error(conn->db, rc, "committing");
        if (!sqlite3_get_autocommit(conn->db)) exec_raw(conn->db, "ROLLBACK");
        conn->depth = 0;
        conn->ncallbacks = 0;
        return rc;
    }
    conn->depth = 0;

    /*
     * Detach the list before running it: a callback may open a transaction of
     * its own on this connection and register callbacks for that one.
     */
    run = conn->callbacks;
    nrun = conn->ncallbacks;
    conn->callbacks = NULL;
    conn->ncallbacks = conn->capcallbacks = 0;
    for (size_t i = 0; i < nrun; i++) run[i].fn(run[i].arg);
    free(run);
    return CRM_OK;

lost:
    /* SQLite rolled the whole transaction back itself (disk full, I/O error). */
    conn->depth = 0;
    conn->ncallbacks = 0;
    deferred_drop(conn, 0);
    return crm_error_set(CRM_EINTERNAL, NULL,
                         "store: the transaction was rolled back by the database after an "
                         "earlier error");
}

void crm_tx_rollback(crm_conn *conn)
{
    /* exec_raw never sets this thread's error, so the caller's error survives. */
    if (conn->depth <= 0) return;
    if (sqlite3_get_autocommit(conn->db)) {
        /* Already rolled back by SQLite; only our bookkeeping is left to undo. */
        conn->depth = 0;
        conn->ncallbacks = 0;
        deferred_drop(conn, 0);
        return;
    }
    if (conn->depth == 1) {
        if (exec_raw(conn->db, "ROLLBACK") != SQLITE_OK)
            crm_log(CRM_LOG_WARN, "store: rollback failed: %s", sqlite3_errmsg(conn->db));
        conn->ncallbacks = 0;
        deferred_drop(conn, 0);
    } else {
        char sql[64];
        snprintf(sql, sizeof sql, "ROLLBACK TO s%d; RELEASE s%d", conn->depth, conn->depth);
        if (exec_raw(conn->db, sql) != SQLITE_OK)
            crm_log(CRM_LOG_WARN, "store: rollback to savepoint failed: %s",
                    sqlite3_errmsg(conn->db));
        callbacks_drop(conn, conn->depth);
        deferred_drop(conn, conn->depth);
    }
    conn->depth--;
}

int crm_tx_depth(crm_conn *conn)
{
    return conn->depth;
}

void crm_tx_on_commit(crm_conn *conn, void (*fn)(void *), void *arg)
{
    /* Outside a transaction the work is already committed: run now. */
    if (conn->depth == 0) {
        fn(arg);
        return;
    }
    /*
     * Once per transaction is enough: the bus registers its wake-up for every
     * event, and a 100,000-row import would otherwise carry (and walk at each
     * savepoint release) 100,000 copies. An entry at this depth or shallower
     * runs at commit unless its own level rolls back, which undoes this one too.
     */
    for (size_t i = 0; i < conn->ncallbacks; i++)
        if (conn->callbacks[i].fn == fn && conn->callbacks[i].arg == arg) return;
    if (conn->ncallbacks == conn->capcallbacks) {
        conn->capcallbacks = conn->capcallbacks ? conn->capcallbacks * 2 : 8;
        conn->callbacks =
            crm_realloc(conn->callbacks, conn->capcallbacks * sizeof *conn->callbacks);
    }
    conn->callbacks[conn->ncallbacks++] = (on_commit){fn, arg, conn->depth};
}

/* ---- Slots ---- */

void *crm_conn_slot(crm_conn *conn, int slot)
{
    if (slot < 0 || slot >= CRM_SLOT_MAX) return NULL;
    return conn->slots[slot];
}

void crm_conn_set_slot(crm_conn *conn, int slot, void *p, void (*free_fn)(void *))
{
    if (slot < 0 || slot >= CRM_SLOT_MAX) return;
    if (conn->slots[slot] && conn->slots[slot] != p && conn->slot_free[slot])
        conn->slot_free[slot](conn->slots[slot]);
    conn->slots[slot] = p;
    conn->slot_free[slot] = free_fn;
}
