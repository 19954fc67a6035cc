/*
 * store.h — the kernel's database layer. The only file that includes sqlite3.h
 * is store.c: everything else talks SQL through these wrappers, so a second
 * backend would be added here.
 *
 * One connection per thread (thread-local, opened on first use), prepared
 * statements cached per connection by SQL text, writes in BEGIN IMMEDIATE,
 * nested transactions as savepoints.
 */
#ifndef CRM_STORE_H
#define CRM_STORE_H

#include "util.h"

typedef struct crm_store crm_store;
typedef struct crm_conn crm_conn;
typedef struct crm_stmt crm_stmt;

typedef struct crm_store_opts {
    int version;         /* 1 */
    const char *path;    /* database file; ":memory:" is not allowed (connections must share) */
    int synchronous;     /* 0 OFF, 1 NORMAL, 2 FULL (default when opts is NULL: FULL) */
    int busy_timeout_ms; /* default 5000 */
} crm_store_opts;

#define CRM_STORE_OPTS_INIT {1, NULL, 2, 5000}

/*
 * Open the database at opts->path (created if missing), apply the pragmas, and
 * migrate the kernel's own schema forward. The store is shared by all threads.
 * Errors: CRM_EINTERNAL (cannot open, not a database), CRM_EINVALID (the file's
 * kernel schema is newer than this binary).
 */
int crm_store_open(crm_store **out, const crm_store_opts *opts);
/* Close every connection of the store (all threads must be done with it). */
void crm_store_close(crm_store *store);
const char *crm_store_path(const crm_store *store);
int crm_store_synchronous(const crm_store *store);

/*
 * This thread's connection to the store, opened on first use and closed with
 * the store (or by crm_store_release_thread). Never NULL: aborts if the
 * database cannot be opened after crm_store_open succeeded.
 */
crm_conn *crm_store_conn(crm_store *store);
/* Close this thread's connection now (worker threads call it on exit). */
void crm_store_release_thread(crm_store *store);

/* Online backup of the whole database to `dest_path` (SQLite backup API). */
int crm_store_backup(crm_store *store, const char *dest_path);

/* The kernel schema version this binary migrates to. */
int crm_store_schema_version(void);

/* ---- Statements ---- */

/*
 * A prepared statement for `sql`, from this connection's cache. The statement
 * is ready to bind; give it back with crm_stmt_done() (which resets it). A
 * statement already in use (recursion) is prepared afresh. `sql` must be a
 * constant or built only from schema identifiers — values are always bound.
 */
int crm_stmt_prepare(crm_conn *conn, crm_stmt **out, const char *sql);
void crm_stmt_done(crm_stmt *st);

/* Bind parameter `i` (1-based). Text is copied. */
void crm_stmt_bind_int(crm_stmt *st, int i, int64_t v);
void crm_stmt_bind_double(crm_stmt *st, int i, double v);
void crm_stmt_bind_text(crm_stmt *st, int i, const char *s, int n /* -1: strlen */);
void crm_stmt_bind_null(crm_stmt *st, int i);
int crm_stmt_param_count(crm_stmt *st);

/* Step: 1 a row is ready, 0 done, < 0 error (mapped: busy, full, unique conflict, ...). */
int crm_stmt_step(crm_stmt *st);

enum { CRM_COL_INT = 1, CRM_COL_FLOAT = 2, CRM_COL_TEXT = 3, CRM_COL_BLOB = 4, CRM_COL_NULL = 5 };
int crm_stmt_column_count(crm_stmt *st);
int crm_stmt_column_type(crm_stmt *st, int i); /* 0-based */
const char *crm_stmt_column_name(crm_stmt *st, int i);
int64_t crm_stmt_column_int(crm_stmt *st, int i);
double crm_stmt_column_double(crm_stmt *st, int i);
/* Borrowed until the next step/done. NULL for SQL NULL. */
const char *crm_stmt_column_text(crm_stmt *st, int i);
int crm_stmt_column_bytes(crm_stmt *st, int i);

/* ---- Convenience ---- */

/* Run SQL text with no parameters and no rows (DDL). Several statements allowed. */
int crm_conn_exec(crm_conn *conn, const char *sql);
/* Run a one-row integer query without parameters; *out = first column, or dflt when no row. */
int crm_conn_query_int(crm_conn *conn, const char *sql, int64_t *out, int64_t dflt);
/*
 * Run one write statement binding `n` integers (no result rows): in the
 * caller's transaction when there is one, else in a BEGIN IMMEDIATE of its own.
 */
int crm_conn_exec_ints(crm_conn *conn, const char *sql, const int64_t *args, int n);
int64_t crm_conn_last_rowid(crm_conn *conn);
int crm_conn_changes(crm_conn *conn);
/* The value of a core_setting (site-wide key/value), malloc'd, or NULL when unset. */
char *crm_setting_get(crm_conn *conn, const char *key);
/* Set a core_setting, in the caller's transaction or one of its own. */
int crm_setting_put(crm_conn *conn, const char *key, const char *value);
/* Rows changed by this connection since it opened (sqlite3_total_changes64). */
int64_t crm_conn_total_changes(crm_conn *conn);
/* The store a connection belongs to. */
crm_store *crm_conn_store(crm_conn *conn);

/* ---- Transactions ---- */

/*
 * Begin a write transaction (BEGIN IMMEDIATE, so SQLITE_BUSY can only happen
 * here and is retried within the busy timeout). Nested calls open savepoints:
 * each begin is matched by exactly one commit or rollback, and a rollback of a
 * nested level undoes only that level.
 * Errors: CRM_EBUSY when the write lock cannot be had in time.
 */
int crm_tx_begin(crm_conn *conn);
int crm_tx_commit(crm_conn *conn);
/* Never fails from the caller's point of view; keeps the current error. */
void crm_tx_rollback(crm_conn *conn);
/* Depth of open transactions on this connection (0 when none). */
int crm_tx_depth(crm_conn *conn);

/*
 * Run `fn` after the outermost transaction commits (not on rollback). Used to
 * wake the async dispatcher and to publish schema changes.
 */
void crm_tx_on_commit(crm_conn *conn, void (*fn)(void *), void *arg);

/*
 * Run `fn(conn, arg)` just before the outermost COMMIT, in registration order,
 * still inside the transaction: its writes commit with it, and its error fails
 * the commit (everything rolls back). If the level that registered it rolls
 * back, it is dropped instead. `free_fn(arg)` runs in every case afterwards.
 * The record layer defers full-text index writes this way: FTS5 flushes its
 * in-memory pending data at every SAVEPOINT, so writing the index row by row
 * between per-row savepoints would make one index segment per row.
 */
void crm_tx_before_commit(crm_conn *conn, int (*fn)(crm_conn *conn, void *arg), void *arg,
                          void (*free_fn)(void *arg));

/*
 * Per-connection slot for other subsystems' per-thread state (keyed by a
 * small fixed index), freed with `free_fn` when the connection closes.
 */
enum { CRM_SLOT_SCHEMA, CRM_SLOT_RULES, CRM_SLOT_USER1, CRM_SLOT_MAX = 8 };
void *crm_conn_slot(crm_conn *conn, int slot);
void crm_conn_set_slot(crm_conn *conn, int slot, void *p, void (*free_fn)(void *));

#endif
