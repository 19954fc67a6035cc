/*
 * maintain.c — upkeep of the database that no request does (see maintain.h).
 */
#include "maintain.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The FTS5 tables of the database (the kernel's own DDL names them "<type>:fts"). */
static int fts_tables(crm_conn *conn, char ***out, int *n)
{
    crm_stmt *st;
    char **v = NULL;
    int m = 0, cap = 0, rc;
    *out = NULL;
    *n = 0;
    rc = crm_stmt_prepare(conn, &st,
                          "SELECT name FROM sqlite_master WHERE type = 'table' AND "
                          "sql LIKE 'CREATE VIRTUAL TABLE %USING fts5%' ORDER BY name");
    if (rc) return rc;
    while ((rc = crm_stmt_step(st)) == 1) {
        if (m == cap) {
            cap = cap ? cap * 2 : 8;
            v = crm_realloc(v, (size_t)cap * sizeof *v);
        }
        v[m++] = crm_strdup(crm_stmt_column_text(st, 0));
    }
    crm_stmt_done(st);
    if (rc < 0) {
        while (m) free(v[--m]);
        free(v);
        return rc;
    }
    *out = v;
    *n = m;
    return CRM_OK;
}

/*
 * One transaction of merge work on `table`; *worked: it did some (FTS5 writes
 * at least two rows when it merges anything: the documented way to tell).
 */
static int merge_step(crm_conn *conn, const char *table, bool *worked)
{
    crm_buf sql = CRM_BUF_INIT;
    crm_stmt *st = NULL;
    int rc;
    *worked = false;
    crm_buf_puts(&sql, "INSERT INTO ");
    crm_buf_put_ident(&sql, table);
    crm_buf_putc(&sql, '(');
    crm_buf_put_ident(&sql, table);
    crm_buf_puts(&sql, ", rank) VALUES ('merge', ?1)");
    if ((rc = crm_tx_begin(conn))) goto done;
    int64_t before = crm_conn_total_changes(conn);
    if ((rc = crm_stmt_prepare(conn, &st, crm_buf_str(&sql)))) goto rollback;
    /* negative: every segment joins one level first, so the merge ends in one */
    crm_stmt_bind_int(st, 1, -CRM_MAINTAIN_PAGES);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    if (rc < 0) goto rollback;
    *worked = crm_conn_total_changes(conn) - before >= 2;
    rc = crm_tx_commit(conn);
    goto done;
rollback:
    crm_tx_rollback(conn);
done:
    crm_buf_free(&sql);
    return rc;
}

int crm_maintain_run(crm_kernel *k, int64_t budget_ms, crm_maintain_stats *st)
{
    crm_conn *conn = crm_store_conn(k->store);
    int64_t t0 = crm_mono_us(), deadline = budget_ms < 0 ? INT64_MAX : t0 + budget_ms * 1000;
    char **tables;
    int n, rc;
    memset(st, 0, sizeof *st);
    if ((rc = fts_tables(conn, &tables, &n))) return rc;
    st->indexes = n;
    st->done = true;
    for (int i = 0; i < n && rc == CRM_OK; i++) {
        bool worked = true, any = false;
        while (worked) {
            if (crm_mono_us() >= deadline) {
                st->done = false;
                break;
            }
            if ((rc = merge_step(conn, tables[i], &worked))) break;
            if (worked) {
                st->steps++;
                any = true;
            }
        }
        if (any) st->merged++;
        if (!st->done) break;
    }
    for (int i = 0; i < n; i++) free(tables[i]);
    free(tables);
    st->us = crm_mono_us() - t0;
    if (rc) return rc;
    if (!st->done) return CRM_OK;
    char at[24];
    snprintf(at, sizeof at, "%lld", (long long)crm_now());
    return crm_setting_put(conn, CRM_MAINTAIN_SETTING, at);
}

int crm_maintain_tick(crm_kernel *k, int64_t now)
{
    char *v = crm_setting_get(crm_store_conn(k->store), CRM_MAINTAIN_SETTING);
    int64_t last = v ? strtoll(v, NULL, 10) : 0;
    free(v);
    if (last > 0 && now >= last && now - last < CRM_MAINTAIN_INTERVAL) return CRM_OK;
    crm_maintain_stats st;
    int rc = crm_maintain_run(k, CRM_MAINTAIN_TICK_MS, &st);
    if (rc == CRM_OK && st.steps)
        crm_log(CRM_LOG_INFO, "maintain: %d merge steps on %d of %d search indexes in %lld ms%s",
                st.steps, st.merged, st.indexes, (long long)(st.us / 1000),
                st.done ? ", done" : ", more at the next tick");
    return rc;
}
