/* test_store.c — kernel/store.c: pragmas, migrations, statement cache, transactions, backup. */
#include "t.h"

#include "../../kernel/migrations.h"
#include "../../kernel/store.h"

#include <pthread.h>
#include <sys/stat.h>

static char db_path[300];

/* A store on a fresh file in a fresh directory. */
static crm_store *open_fresh(int synchronous, int busy_ms)
{
    crm_store_opts o = CRM_STORE_OPTS_INIT;
    crm_store *s = NULL;

    snprintf(db_path, sizeof db_path, "%s/crm.db", t_tmpdir());
    o.path = db_path;
    o.synchronous = synchronous;
    o.busy_timeout_ms = busy_ms;
    if (crm_store_open(&s, &o) != CRM_OK) {
        fprintf(stderr, "    open: %s\n", crm_error_last()->message);
        return NULL;
    }
    return s;
}

static crm_store *reopen(const char *path, int busy_ms, int *rc)
{
    crm_store_opts o = CRM_STORE_OPTS_INIT;
    crm_store *s = NULL;

    o.path = path;
    o.busy_timeout_ms = busy_ms;
    *rc = crm_store_open(&s, &o);
    return s;
}

/* First column of a one-row text query, copied into out. */
static void query_text(crm_conn *c, const char *sql, char *out, size_t n)
{
    crm_stmt *st;
    out[0] = '\0';
    if (crm_stmt_prepare(c, &st, sql) != CRM_OK) return;
    if (crm_stmt_step(st) == 1 && crm_stmt_column_text(st, 0))
        snprintf(out, n, "%s", crm_stmt_column_text(st, 0));
    crm_stmt_done(st);
}

static int64_t query_int(crm_conn *c, const char *sql)
{
    int64_t v = -999;
    if (crm_conn_query_int(c, sql, &v, -1) != CRM_OK) return -998;
    return v;
}

static int insert_x(crm_conn *c, int64_t x)
{
    crm_stmt *st;
    int rc = crm_stmt_prepare(c, &st, "INSERT INTO t(x) VALUES (?1)");
    if (rc != CRM_OK) return rc;
    crm_stmt_bind_int(st, 1, x);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

static void test_pragmas(void)
{
    crm_store *s = open_fresh(2, 5000);
    crm_conn *c;
    char text[64];
    int rc;

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    query_text(c, "PRAGMA journal_mode", text, sizeof text);
    CHECK_STR(text, "wal");
    CHECK_INT(query_int(c, "PRAGMA synchronous"), 2);
    CHECK_INT(crm_store_synchronous(s), 2);
    CHECK_INT(query_int(c, "PRAGMA trusted_schema"), 0);
    CHECK_INT(query_int(c, "PRAGMA foreign_keys"), 1);
    CHECK_INT(query_int(c, "PRAGMA busy_timeout"), 5000);
    CHECK_INT(query_int(c, "PRAGMA journal_size_limit"), 64 * 1024 * 1024);
    CHECK_STR(crm_store_path(s), db_path);

    /* Defensive mode: the schema cannot be written even with writable_schema. */
    rc = crm_conn_exec(c, "PRAGMA writable_schema=ON; DELETE FROM sqlite_master;");
    CHECK(rc != CRM_OK);
    CHECK(query_int(c, "SELECT count(*) FROM sqlite_master") > 0);

    /* Lowered limits: 11 MB exceeds SQLITE_LIMIT_LENGTH; no ATTACH at all. */
    CHECK_INT(crm_conn_exec(c, "SELECT zeroblob(11 * 1024 * 1024)"), CRM_ELIMIT);
    CHECK(crm_conn_exec(c, "SELECT zeroblob(1024 * 1024)") == CRM_OK);
    CHECK(crm_conn_exec(c, "ATTACH ':memory:' AS other") != CRM_OK);
    crm_store_close(s);

    /* synchronous comes from the options. */
    s = open_fresh(1, 5000);
    REQUIRE(s != NULL);
    CHECK_INT(query_int(crm_store_conn(s), "PRAGMA synchronous"), 1);
    crm_store_close(s);
}

static void *pragma_thread(void *arg)
{
    crm_store *s = arg;
    crm_conn *c = crm_store_conn(s);
    char text[64];
    static int64_t result;

    query_text(c, "PRAGMA journal_mode", text, sizeof text);
    result = strcmp(text, "wal") == 0 && query_int(c, "PRAGMA trusted_schema") == 0 &&
             query_int(c, "PRAGMA synchronous") == 2 && query_int(c, "PRAGMA foreign_keys") == 1 &&
             crm_conn_exec(c, "PRAGMA writable_schema=ON; DELETE FROM sqlite_master;") != CRM_OK;
    crm_store_release_thread(s);
    return &result;
}

/* The pragmas apply to every thread's connection, not just the one that migrated. */
static void test_pragmas_other_thread(void)
{
    crm_store *s = open_fresh(2, 5000);
    pthread_t th;
    void *ret = NULL;

    REQUIRE(s != NULL);
    REQUIRE(pthread_create(&th, NULL, pragma_thread, s) == 0);
    pthread_join(th, &ret);
    CHECK(ret && *(int64_t *)ret == 1);
    crm_store_close(s);
}

static void test_open_refuses_memory_and_bad_opts(void)
{
    crm_store_opts o = CRM_STORE_OPTS_INIT;
    crm_store *s = (crm_store *)1;

    o.path = ":memory:";
    CHECK_INT(crm_store_open(&s, &o), CRM_EINVALID);
    CHECK(s == NULL);
    CHECK_HAS(crm_error_last()->message, ":memory:");
    o.path = NULL;
    CHECK_INT(crm_store_open(&s, &o), CRM_EINVALID);
    CHECK_INT(crm_store_open(&s, NULL), CRM_EINVALID);
    o.path = "/nonexistent-dir-for-crm/x.db";
    CHECK_INT(crm_store_open(&s, &o), CRM_EINTERNAL);
    CHECK_HAS(crm_error_last()->message, "/nonexistent-dir-for-crm/x.db");
}

static void test_not_a_database(void)
{
    char path[300];
    FILE *f;
    int rc;
    crm_store *s;

    snprintf(path, sizeof path, "%s/junk.db", t_tmpdir());
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    for (int i = 0; i < 200; i++) fputs("this is not an SQLite database file. ", f);
    fclose(f);
    s = reopen(path, 5000, &rc);
    CHECK_INT(rc, CRM_EINTERNAL);
    CHECK(s == NULL);
}

static void test_migrations(void)
{
    crm_store *s = open_fresh(2, 5000);
    crm_conn *c;
    int rc;

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    CHECK_INT(crm_store_schema_version(), CRM_MIGRATION_COUNT);
    CHECK(CRM_MIGRATION_COUNT >= 1);
    CHECK_INT(query_int(c, "PRAGMA user_version"), CRM_MIGRATION_COUNT);
    CHECK_INT(query_int(c, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                           "('core_type','core_field','core_history','core_outbox',"
                           "'core_password','core_token','core_setting','core_grant')"),
              8);
    /* Foreign keys are enforced on the kernel's own tables. */
    CHECK_INT(crm_conn_exec(c, "INSERT INTO core_field(type,name,position,spec,owner) "
                               "VALUES ('nope','x',0,'{}','crm')"),
              CRM_EINVALID);
    CHECK_INT(crm_conn_exec(c, "INSERT INTO core_setting(key,value) VALUES ('k','v')"), CRM_OK);
    crm_store_close(s);

    /* Re-open: nothing re-applied (a CREATE TABLE twice would fail), data kept. */
    s = reopen(db_path, 5000, &rc);
    REQUIRE(rc == CRM_OK && s != NULL);
    c = crm_store_conn(s);
    CHECK_INT(query_int(c, "PRAGMA user_version"), CRM_MIGRATION_COUNT);
    CHECK_INT(query_int(c, "SELECT count(*) FROM core_setting WHERE key = 'k'"), 1);
    crm_store_close(s);
}

static void test_newer_schema_refused(void)
{
    crm_store *s = open_fresh(2, 5000);
    int rc;

    REQUIRE(s != NULL);
    CHECK_INT(crm_conn_exec(crm_store_conn(s), "PRAGMA user_version=999"), CRM_OK);
    crm_store_close(s);

    s = reopen(db_path, 5000, &rc);
    CHECK(s == NULL);
    CHECK_INT(rc, CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "999 is newer than this crm");
    CHECK_HAS(crm_error_last()->message, "upgrade crm");
}

static void test_stmt_cache(void)
{
    crm_store *s = open_fresh(2, 5000);
    crm_conn *c;
    crm_stmt *a, *b, *again;
    const char *sql = "SELECT ?1 + 1";

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    REQUIRE(crm_stmt_prepare(c, &a, sql) == CRM_OK);
    CHECK_INT(crm_stmt_param_count(a), 1);
    crm_stmt_bind_int(a, 1, 41);
    CHECK_INT(crm_stmt_step(a), 1);
    CHECK_INT(crm_stmt_column_int(a, 0), 42);

    /* In use (recursion): a different statement that works independently. */
    REQUIRE(crm_stmt_prepare(c, &b, sql) == CRM_OK);
    CHECK(b != a);
    crm_stmt_bind_int(b, 1, 1);
    CHECK_INT(crm_stmt_step(b), 1);
    CHECK_INT(crm_stmt_column_int(b, 0), 2);
    CHECK_INT(crm_stmt_column_int(a, 0), 42); /* a's row untouched */
    crm_stmt_done(b);
    crm_stmt_done(a);

    /* Given back: the cached one comes back, reset and with bindings cleared. */
    REQUIRE(crm_stmt_prepare(c, &again, sql) == CRM_OK);
    CHECK(again == a);
    CHECK_INT(crm_stmt_step(again), 1);
    CHECK_INT(crm_stmt_column_type(again, 0), CRM_COL_NULL);
    crm_stmt_done(again);

    /* A different SQL text is a different statement. */
    REQUIRE(crm_stmt_prepare(c, &b, "SELECT ?1 + 2") == CRM_OK);
    CHECK(b != a);
    crm_stmt_done(b);

    /* Syntax errors and multi-statement text are refused. */
    CHECK_INT(crm_stmt_prepare(c, &b, "SELEC 1"), CRM_EINTERNAL);
    CHECK(b == NULL);
    CHECK_INT(crm_stmt_prepare(c, &b, "SELECT 1; SELECT 2"), CRM_EINTERNAL);
    CHECK(b == NULL);
    crm_stmt_done(NULL);
    crm_store_close(s);
}

static void test_stmt_cache_eviction(void)
{
    crm_store *s = open_fresh(2, 5000);
    crm_conn *c;
    crm_stmt *held, *st;
    char sql[64];
    int bad = 0;

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    /* A statement held across many others must never be evicted under its holder. */
    REQUIRE(crm_stmt_prepare(c, &held, "SELECT 'held'") == CRM_OK);
    for (int i = 0; i < 1000; i++) {
        snprintf(sql, sizeof sql, "SELECT %d", i);
        if (crm_stmt_prepare(c, &st, sql) != CRM_OK) { bad++; continue; }
        if (crm_stmt_step(st) != 1 || crm_stmt_column_int(st, 0) != i) bad++;
        crm_stmt_done(st);
    }
    CHECK_INT(bad, 0);
    CHECK_INT(crm_stmt_step(held), 1);
    CHECK_STR(crm_stmt_column_text(held, 0), "held");
    crm_stmt_done(held);
    crm_store_close(s);
}

static void test_columns(void)
{
    crm_store *s = open_fresh(2, 5000);
    crm_conn *c;
    crm_stmt *st;

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    REQUIRE(crm_stmt_prepare(c, &st, "SELECT 7 AS i, 1.5 AS f, ?1 AS t, x'00ff' AS b, NULL AS n, "
                                     "?2 AS d, ?3 AS nn") == CRM_OK);
    crm_stmt_bind_text(st, 1, "héllo world", 6);
    crm_stmt_bind_double(st, 2, 2.25);
    crm_stmt_bind_null(st, 3);
    REQUIRE(crm_stmt_step(st) == 1);
    CHECK_INT(crm_stmt_column_count(st), 7);
    CHECK_STR(crm_stmt_column_name(st, 2), "t");
    CHECK_INT(crm_stmt_column_type(st, 0), CRM_COL_INT);
    CHECK_INT(crm_stmt_column_type(st, 1), CRM_COL_FLOAT);
    CHECK_INT(crm_stmt_column_type(st, 2), CRM_COL_TEXT);
    CHECK_INT(crm_stmt_column_type(st, 3), CRM_COL_BLOB);
    CHECK_INT(crm_stmt_column_type(st, 4), CRM_COL_NULL);
    CHECK_INT(crm_stmt_column_int(st, 0), 7);
    CHECK(crm_stmt_column_double(st, 1) == 1.5);
    CHECK_STR(crm_stmt_column_text(st, 2), "héllo");
    CHECK_INT(crm_stmt_column_bytes(st, 2), 6);
    CHECK_INT(crm_stmt_column_bytes(st, 3), 2);
    CHECK(crm_stmt_column_text(st, 4) == NULL);
    CHECK(crm_stmt_column_double(st, 5) == 2.25);
    CHECK(crm_stmt_column_type(st, 6) == CRM_COL_NULL);
    CHECK_INT(crm_stmt_step(st), 0);
    crm_stmt_done(st);

    /* query_int: default when no row or NULL. */
    {
        int64_t v = 5;
        CHECK_INT(crm_conn_query_int(c, "SELECT 1 WHERE 0", &v, 77), CRM_OK);
        CHECK_INT(v, 77);
        CHECK_INT(crm_conn_query_int(c, "SELECT NULL", &v, 78), CRM_OK);
        CHECK_INT(v, 78);
        CHECK(crm_conn_query_int(c, "SELECT * FROM no_such_table", &v, 0) != CRM_OK);
    }
    crm_store_close(s);
}

static void test_nested_transactions(void)
{
    crm_store *s = open_fresh(2, 5000);
    crm_conn *c;

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    REQUIRE(crm_conn_exec(c, "CREATE TABLE t (x INTEGER)") == CRM_OK);
    CHECK_INT(crm_tx_depth(c), 0);

    /* Inner rollback keeps the outer level's work. */
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    CHECK_INT(insert_x(c, 1), CRM_OK);
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    CHECK_INT(crm_tx_depth(c), 2);
    CHECK_INT(insert_x(c, 2), CRM_OK);
    crm_tx_rollback(c);
    CHECK_INT(crm_tx_depth(c), 1);
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    CHECK_INT(insert_x(c, 3), CRM_OK);
    REQUIRE(crm_tx_begin(c) == CRM_OK); /* three deep */
    CHECK_INT(insert_x(c, 4), CRM_OK);
    CHECK_INT(crm_tx_commit(c), CRM_OK);
    CHECK_INT(crm_tx_commit(c), CRM_OK);
    CHECK_INT(crm_tx_commit(c), CRM_OK);
    CHECK_INT(crm_tx_depth(c), 0);
    {
        char text[64];
        query_text(c, "SELECT group_concat(x, ',') FROM (SELECT x FROM t ORDER BY x)", text,
                   sizeof text);
        CHECK_STR(text, "1,3,4");
    }

    /* Outer rollback drops everything, including committed inner levels. */
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    CHECK_INT(insert_x(c, 10), CRM_OK);
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    CHECK_INT(insert_x(c, 11), CRM_OK);
    CHECK_INT(crm_tx_commit(c), CRM_OK);
    crm_tx_rollback(c);
    CHECK_INT(crm_tx_depth(c), 0);
    CHECK_INT(query_int(c, "SELECT count(*) FROM t WHERE x >= 10"), 0);
    CHECK_INT(query_int(c, "SELECT count(*) FROM t"), 3);

    /* Commit without a transaction is a bug, reported as such; rollback is a no-op. */
    CHECK_INT(crm_tx_commit(c), CRM_EINTERNAL);
    crm_tx_rollback(c);
    CHECK_INT(crm_tx_depth(c), 0);
    crm_store_close(s);
}

static void test_committed_is_durable_across_connections(void)
{
    crm_store *s = open_fresh(2, 5000), *s2;
    crm_conn *c;
    int rc;

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    REQUIRE(crm_conn_exec(c, "CREATE TABLE t (x INTEGER)") == CRM_OK);
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    CHECK_INT(insert_x(c, 1), CRM_OK);
    /* Another connection does not see uncommitted work... */
    s2 = reopen(db_path, 5000, &rc);
    REQUIRE(s2 != NULL);
    CHECK_INT(query_int(crm_store_conn(s2), "SELECT count(*) FROM t"), 0);
    CHECK_INT(crm_tx_commit(c), CRM_OK);
    /* ...and sees it once committed. */
    CHECK_INT(query_int(crm_store_conn(s2), "SELECT count(*) FROM t"), 1);
    crm_store_close(s2);
    crm_store_close(s);
}

static int calls[8], ncalls;
static void record_call(void *arg)
{
    if (ncalls < 8) calls[ncalls] = (int)(intptr_t)arg;
    ncalls++;
}

static void test_on_commit(void)
{
    crm_store *s = open_fresh(2, 5000);
    crm_conn *c;

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    ncalls = 0;
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    crm_tx_on_commit(c, record_call, (void *)1);
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    crm_tx_on_commit(c, record_call, (void *)2);
    CHECK_INT(crm_tx_commit(c), CRM_OK);
    CHECK_INT(ncalls, 0); /* inner commit: not yet */
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    crm_tx_on_commit(c, record_call, (void *)3);
    crm_tx_rollback(c); /* that level's work is undone: so is its callback */
    crm_tx_on_commit(c, record_call, (void *)4);
    CHECK_INT(ncalls, 0);
    CHECK_INT(crm_tx_commit(c), CRM_OK);
    CHECK_INT(ncalls, 3);
    CHECK_INT(calls[0], 1);
    CHECK_INT(calls[1], 2);
    CHECK_INT(calls[2], 4);

    /* Cleared after running: the next commit does not repeat them. */
    ncalls = 0;
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    CHECK_INT(crm_tx_commit(c), CRM_OK);
    CHECK_INT(ncalls, 0);

    /* Outer rollback: none run, and none leak into the next transaction. */
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    crm_tx_on_commit(c, record_call, (void *)5);
    crm_tx_rollback(c);
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    CHECK_INT(crm_tx_commit(c), CRM_OK);
    CHECK_INT(ncalls, 0);
    crm_store_close(s);
}

/* Deferred actions write inside the transaction just before COMMIT. */
static int deferred_insert(crm_conn *c, void *arg)
{
    int64_t v = (int64_t)(intptr_t)arg;
    if (v < 0) return crm_error_set(CRM_EINVALID, NULL, "deferred action %lld refused", (long long)v);
    return crm_conn_exec_ints(c, "INSERT INTO core_setting(key, value) VALUES ('d' || ?1, ?1)", &v, 1);
}

static int nfreed;
static void deferred_free(void *arg)
{
    (void)arg;
    nfreed++;
}

static void test_before_commit(void)
{
    crm_store *s = open_fresh(2, 5000);
    crm_conn *c;
    int64_t n = -1;

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    nfreed = 0;
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    crm_tx_before_commit(c, deferred_insert, (void *)1, deferred_free);
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    crm_tx_before_commit(c, deferred_insert, (void *)2, deferred_free);
    CHECK_INT(crm_tx_commit(c), CRM_OK); /* released: moves up, still pending */
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    crm_tx_before_commit(c, deferred_insert, (void *)3, deferred_free);
    crm_tx_rollback(c); /* its level is undone: dropped */
    CHECK_INT(nfreed, 1);
    crm_conn_query_int(c, "SELECT count(*) FROM core_setting WHERE key LIKE 'd%'", &n, -1);
    CHECK_INT(n, 0); /* nothing written before the commit */
    CHECK_INT(crm_tx_commit(c), CRM_OK);
    CHECK_INT(nfreed, 3);
    crm_conn_query_int(c, "SELECT count(*) FROM core_setting WHERE key IN ('d1','d2')", &n, -1);
    CHECK_INT(n, 2);
    crm_conn_query_int(c, "SELECT count(*) FROM core_setting WHERE key = 'd3'", &n, -1);
    CHECK_INT(n, 0);

    /* A failing action fails the commit: the whole transaction is undone, the error kept. */
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    int64_t v = 9;
    crm_conn_exec_ints(c, "INSERT INTO core_setting(key, value) VALUES ('x' || ?1, ?1)", &v, 1);
    crm_tx_before_commit(c, deferred_insert, (void *)-1, deferred_free);
    CHECK_INT(crm_tx_commit(c), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "deferred action -1 refused");
    CHECK_INT(crm_tx_depth(c), 0);
    crm_conn_query_int(c, "SELECT count(*) FROM core_setting WHERE key = 'x9'", &n, -1);
    CHECK_INT(n, 0);
    /* and nothing leaks into the next transaction */
    nfreed = 0;
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    CHECK_INT(crm_tx_commit(c), CRM_OK);
    CHECK_INT(nfreed, 0);
    crm_store_close(s);
}

static void test_error_mapping(void)
{
    crm_store *s = open_fresh(2, 5000);
    crm_conn *c;
    crm_stmt *st;
    int rc;

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    REQUIRE(crm_conn_exec(c, "CREATE TABLE contact (id INTEGER PRIMARY KEY, "
                             "email TEXT UNIQUE, name TEXT NOT NULL)") == CRM_OK);
    REQUIRE(crm_conn_exec(c, "INSERT INTO contact VALUES (1, 'a@x.org', 'A')") == CRM_OK);
    CHECK_INT(crm_conn_last_rowid(c), 1);
    CHECK_INT(crm_conn_changes(c), 1);

    REQUIRE(crm_stmt_prepare(c, &st, "INSERT INTO contact (email, name) VALUES (?1, ?2)") ==
            CRM_OK);
    crm_stmt_bind_text(st, 1, "a@x.org", -1);
    crm_stmt_bind_text(st, 2, "B", -1);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    CHECK_INT(rc, CRM_ECONFLICT);
    CHECK_INT(crm_error_last()->code, CRM_ECONFLICT);
    CHECK_HAS(crm_error_last()->message, "UNIQUE constraint failed: contact.email");

    CHECK_INT(crm_conn_exec(c, "INSERT INTO contact VALUES (1, 'b@x.org', 'B')"), CRM_ECONFLICT);
    CHECK_INT(crm_conn_exec(c, "INSERT INTO contact (email) VALUES ('c@x.org')"), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "NOT NULL");
    CHECK_INT(crm_conn_exec(c, "SELECT * FROM nope"), CRM_EINTERNAL);
    CHECK_HAS(crm_error_last()->message, "no such table: nope");
    /* The statement is reusable after a failed step. */
    REQUIRE(crm_stmt_prepare(c, &st, "INSERT INTO contact (email, name) VALUES (?1, ?2)") ==
            CRM_OK);
    crm_stmt_bind_text(st, 1, "d@x.org", -1);
    crm_stmt_bind_text(st, 2, "D", -1);
    CHECK_INT(crm_stmt_step(st), 0);
    crm_stmt_done(st);
    CHECK_INT(query_int(c, "SELECT count(*) FROM contact"), 2);
    crm_store_close(s);
}

static void test_error_preserved_across_rollback(void)
{
    crm_store *s = open_fresh(2, 5000);
    crm_conn *c;
    char msg[256];

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    REQUIRE(crm_conn_exec(c, "CREATE TABLE t (x INTEGER UNIQUE)") == CRM_OK);
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    CHECK_INT(insert_x(c, 1), CRM_OK);
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    CHECK_INT(insert_x(c, 1), CRM_ECONFLICT);
    snprintf(msg, sizeof msg, "%s", crm_error_last()->message);
    crm_tx_rollback(c);
    CHECK_INT(crm_error_last()->code, CRM_ECONFLICT);
    CHECK_STR(crm_error_last()->message, msg);
    crm_tx_rollback(c);
    CHECK_INT(crm_error_last()->code, CRM_ECONFLICT);
    CHECK_STR(crm_error_last()->message, msg);
    CHECK_INT(query_int(c, "SELECT count(*) FROM t"), 0);

    /* A caller's own error survives too. */
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    crm_error_set(CRM_EDENIED, "owner", "not yours");
    crm_tx_rollback(c);
    CHECK_INT(crm_error_last()->code, CRM_EDENIED);
    CHECK_STR(crm_error_last()->field, "owner");
    crm_store_close(s);
}

static void test_busy_maps_to_ebusy(void)
{
    crm_store *s = open_fresh(2, 5000), *s2;
    crm_conn *c, *c2;
    int rc;

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    s2 = reopen(db_path, 100, &rc);
    REQUIRE(s2 != NULL);
    c2 = crm_store_conn(s2);
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    {
        int64_t t0 = crm_mono_us();
        CHECK_INT(crm_tx_begin(c2), CRM_EBUSY);
        CHECK(crm_mono_us() - t0 >= 80000); /* it waited for the busy timeout */
    }
    CHECK_HAS(crm_error_last()->message, "busy");
    CHECK_INT(crm_tx_depth(c2), 0);
    /* Readers are not blocked by the writer (WAL). */
    CHECK_INT(query_int(c2, "SELECT count(*) FROM core_setting"), 0);
    CHECK_INT(crm_tx_commit(c), CRM_OK);
    CHECK_INT(crm_tx_begin(c2), CRM_OK);
    CHECK_INT(crm_tx_commit(c2), CRM_OK);
    crm_store_close(s2);
    crm_store_close(s);
}

#define NTHREADS 8
#define PER_THREAD 50

static pthread_barrier_t start_line;

struct worker {
    crm_store *store;
    int id;
    int errors;
    int busy;
    crm_conn *conn;
    char first_error[200];
};

static void *insert_worker(void *arg)
{
    struct worker *w = arg;
    crm_conn *c = crm_store_conn(w->store);

    w->conn = c;
    /* All connections open at once (distinct pointers), then all write at once. */
    pthread_barrier_wait(&start_line);
    for (int i = 0; i < PER_THREAD; i++) {
        int rc = crm_tx_begin(c);
        if (rc == CRM_OK) rc = insert_x(c, (int64_t)w->id * 1000 + i);
        /* A read-modify-write inside the transaction, as the record layer does. */
        if (rc == CRM_OK) rc = crm_conn_exec(c, "UPDATE counter SET n = n + 1");
        if (rc == CRM_OK) rc = crm_tx_commit(c);
        else crm_tx_rollback(c);
        if (rc == CRM_EBUSY) w->busy++;
        if (rc != CRM_OK && w->errors++ == 0)
            snprintf(w->first_error, sizeof w->first_error, "%s", crm_error_last()->message);
    }
    crm_store_release_thread(w->store);
    return NULL;
}

static void test_concurrent_writers(void)
{
    crm_store *s = open_fresh(1, 10000); /* NORMAL: the test is about locking, not fsync */
    crm_conn *c;
    pthread_t th[NTHREADS];
    struct worker w[NTHREADS];
    int errors = 0, busy = 0, distinct = 1;

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    REQUIRE(crm_conn_exec(c, "CREATE TABLE t (x INTEGER UNIQUE);"
                             "CREATE TABLE counter (n INTEGER); INSERT INTO counter VALUES (0);") ==
            CRM_OK);
    pthread_barrier_init(&start_line, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){s, i, 0, 0, NULL, ""};
        REQUIRE(pthread_create(&th[i], NULL, insert_worker, &w[i]) == 0);
    }
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start_line);
    for (int i = 0; i < NTHREADS; i++) {
        errors += w[i].errors;
        busy += w[i].busy;
        if (w[i].errors) fprintf(stderr, "    thread %d: %s\n", i, w[i].first_error);
        for (int j = 0; j < i; j++)
            if (w[i].conn == w[j].conn) distinct = 0;
        if (w[i].conn == c) distinct = 0;
    }
    CHECK_INT(busy, 0);
    CHECK_INT(errors, 0);
    CHECK(distinct); /* each thread had its own connection */
    CHECK_INT(query_int(c, "SELECT count(*) FROM t"), NTHREADS * PER_THREAD);
    CHECK_INT(query_int(c, "SELECT n FROM counter"), NTHREADS * PER_THREAD);
    crm_store_close(s);
}

static int slot_frees;
static void slot_free(void *p)
{
    slot_frees++;
    free(p);
}

static void *slot_thread(void *arg)
{
    crm_store *s = arg;
    crm_conn_set_slot(crm_store_conn(s), CRM_SLOT_USER1, crm_malloc(16), slot_free);
    /* Exits without release: the connection still closes and frees its slot. */
    return NULL;
}

static void test_slots(void)
{
    crm_store *s = open_fresh(2, 5000);
    crm_conn *c;
    pthread_t th;
    void *p = crm_malloc(8);

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    slot_frees = 0;
    CHECK(crm_conn_slot(c, CRM_SLOT_SCHEMA) == NULL);
    crm_conn_set_slot(c, CRM_SLOT_SCHEMA, p, slot_free);
    CHECK(crm_conn_slot(c, CRM_SLOT_SCHEMA) == p);
    CHECK(crm_conn_store(c) == s);
    /* Replacing a slot frees the old value. */
    crm_conn_set_slot(c, CRM_SLOT_SCHEMA, crm_malloc(8), slot_free);
    CHECK_INT(slot_frees, 1);

    REQUIRE(pthread_create(&th, NULL, slot_thread, s) == 0);
    pthread_join(th, NULL);
    CHECK_INT(slot_frees, 2);

    /* Release: a new connection with empty slots on next use. */
    crm_store_release_thread(s);
    CHECK_INT(slot_frees, 3);
    c = crm_store_conn(s);
    CHECK(crm_conn_slot(c, CRM_SLOT_SCHEMA) == NULL);
    crm_conn_set_slot(c, CRM_SLOT_RULES, crm_malloc(8), slot_free);
    crm_store_close(s);
    CHECK_INT(slot_frees, 4);
}

static void test_backup(void)
{
    crm_store *s = open_fresh(2, 5000), *copy;
    crm_conn *c;
    char dest[300], dest2[300];
    struct stat sb;
    int rc;

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    REQUIRE(crm_conn_exec(c, "CREATE TABLE t (x INTEGER)") == CRM_OK);
    REQUIRE(crm_tx_begin(c) == CRM_OK);
    for (int i = 0; i < 2000; i++) insert_x(c, i);
    /* Enough data for several backup steps. */
    CHECK_INT(crm_conn_exec(c, "CREATE TABLE pad AS SELECT randomblob(4000) AS b "
                               "FROM t LIMIT 500"),
              CRM_OK);
    REQUIRE(crm_tx_commit(c) == CRM_OK);

    snprintf(dest, sizeof dest, "%s/backup.db", t_dir);
    CHECK_INT(crm_store_backup(s, dest), CRM_OK);
    CHECK_INT(crm_tx_depth(c), 0);
    /* The source is still writable after the backup released its snapshot. */
    CHECK_INT(insert_x(c, 9999), CRM_OK);

    copy = reopen(dest, 5000, &rc);
    REQUIRE(rc == CRM_OK && copy != NULL);
    {
        crm_conn *cc = crm_store_conn(copy);
        char text[32];
        query_text(cc, "PRAGMA integrity_check", text, sizeof text);
        CHECK_STR(text, "ok");
        CHECK_INT(query_int(cc, "SELECT count(*) FROM t"), 2000);
        CHECK_INT(query_int(cc, "SELECT count(*) FROM pad"), 500);
        CHECK_INT(query_int(cc, "PRAGMA user_version"), CRM_MIGRATION_COUNT);
    }
    crm_store_close(copy);

    /* Never overwrite: an existing file is refused and left as it was. */
    snprintf(dest2, sizeof dest2, "%s/existing.db", t_dir);
    {
        FILE *f = fopen(dest2, "w");
        REQUIRE(f != NULL);
        fputs("precious", f);
        fclose(f);
    }
    CHECK_INT(crm_store_backup(s, dest2), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "exists");
    CHECK(stat(dest2, &sb) == 0 && sb.st_size == 8);

    /* Unwritable destination: an error, and no stray file. */
    snprintf(dest2, sizeof dest2, "%s/no-such-dir/b.db", t_dir);
    CHECK_INT(crm_store_backup(s, dest2), CRM_EINTERNAL);
    crm_store_close(s);
}

struct writer_arg {
    crm_store *store;
    _Atomic int stop;
    _Atomic int written;
};

static void *steady_writer(void *arg)
{
    struct writer_arg *w = arg;
    crm_conn *c = crm_store_conn(w->store);
    while (!w->stop) {
        if (crm_tx_begin(c) != CRM_OK) continue;
        if (insert_x(c, 100000 + w->written) == CRM_OK && crm_tx_commit(c) == CRM_OK)
            w->written++;
        else
            crm_tx_rollback(c);
    }
    crm_store_release_thread(w->store);
    return NULL;
}

/* A backup under a steady write load finishes and holds what was committed before it began. */
static void test_backup_under_writes(void)
{
    crm_store *s = open_fresh(1, 5000), *copy;
    crm_conn *c;
    struct writer_arg w = {NULL, 0, 0};
    pthread_t th;
    char dest[300];
    int64_t before;
    int rc;

    REQUIRE(s != NULL);
    c = crm_store_conn(s);
    REQUIRE(crm_conn_exec(c, "CREATE TABLE t (x INTEGER);"
                             "CREATE TABLE pad AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
                             "SELECT i + 1 FROM n WHERE i < 2000) "
                             "SELECT randomblob(2000) FROM n;") == CRM_OK);
    w.store = s;
    REQUIRE(pthread_create(&th, NULL, steady_writer, &w) == 0);
    while (w.written < 20) usleep(1000);
    before = query_int(c, "SELECT count(*) FROM t");
    snprintf(dest, sizeof dest, "%s/backup.db", t_dir);
    rc = crm_store_backup(s, dest);
    w.stop = 1;
    pthread_join(th, NULL);
    CHECK_INT(rc, CRM_OK);

    copy = reopen(dest, 5000, &rc);
    REQUIRE(rc == CRM_OK && copy != NULL);
    CHECK(query_int(crm_store_conn(copy), "SELECT count(*) FROM t") >= before);
    CHECK_INT(query_int(crm_store_conn(copy), "SELECT count(*) FROM pad"), 2000);
    crm_store_close(copy);
    crm_store_close(s);
}

int main(void)
{
    RUN(test_pragmas);
    RUN(test_pragmas_other_thread);
    RUN(test_open_refuses_memory_and_bad_opts);
    RUN(test_not_a_database);
    RUN(test_migrations);
    RUN(test_newer_schema_refused);
    RUN(test_stmt_cache);
    RUN(test_stmt_cache_eviction);
    RUN(test_columns);
    RUN(test_nested_transactions);
    RUN(test_committed_is_durable_across_connections);
    RUN(test_on_commit);
    RUN(test_before_commit);
    RUN(test_error_mapping);
    RUN(test_error_preserved_across_rollback);
    RUN(test_busy_maps_to_ebusy);
    RUN(test_concurrent_writers);
    RUN(test_slots);
    RUN(test_backup);
    RUN(test_backup_under_writes);
    return t_finish("test_store");
}
