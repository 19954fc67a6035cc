/*
 * baseline_mhd_sqlite.c — the raw limits of the read endpoints: baseline_mhd.c's
 * server plus bare SQLite on the bench database (one read-only connection and
 * prepared statements per pool thread, WAL like crm) and Jansson objects of the
 * rows, serialised as the response. The least any JSON API over SQLite does for
 * the same answer: no authentication, no permissions, no log.
 *   baseline_mhd_sqlite DB [PORT]
 *     GET .../ID           the row of "crm.contact" with that id
 *     GET ...?city=V       the first 50 live rows of that city by id (the SQL crm's
 *                          list generates for ?city=V&limit=50)
 *     GET .../search?q=P   the newest 20 rows whose FTS5 row matches the prefix P
 *                          ("P"*, the prefix index of the kernel's DDL): no ranking
 */
#include <jansson.h>
#include <microhttpd.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *db_path;
static long long mmap_size; /* BASELINE_MMAP: crm's PRAGMA mmap_size, for the same reads */
static _Thread_local sqlite3 *db;
static _Thread_local sqlite3_stmt *st, *st_list, *st_search;
static const char *const cols[] = {"id", "created_at", "updated_at", "created_by", "owner",
                                   "team", "version", "deleted_at", "first_name", "last_name",
                                   "email", "phone", "city", "country", "score"};

#define COLS                                                                             \
    "id, created_at, updated_at, created_by, owner, team, version, deleted_at, "            \
    "\"first_name\", \"last_name\", \"email\", \"phone\", \"city\", \"country\", \"score\""

static json_t *row_object(sqlite3_stmt *s)
{
    json_t *o = json_object();
    for (int i = 0; i < 15; i++) {
        json_t *v;
        switch (sqlite3_column_type(s, i)) {
        case SQLITE_NULL: v = json_null(); break;
        case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(s, i)); break;
        default:
            v = json_stringn((const char *)sqlite3_column_text(s, i),
                             (size_t)sqlite3_column_bytes(s, i));
        }
        json_object_set_new(o, cols[i], v);
    }
    return o;
}

/* {"data":[rows...]} of a bound statement, reset after. */
static char *rows_text(sqlite3_stmt *s)
{
    json_t *a = json_array();
    while (sqlite3_step(s) == SQLITE_ROW) json_array_append_new(a, row_object(s));
    sqlite3_reset(s);
    json_t *o = json_pack("{s:o}", "data", a);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static void prepare(sqlite3_stmt **s, const char *sql)
{
    if (sqlite3_prepare_v2(db, sql, -1, s, NULL) != SQLITE_OK) {
        fprintf(stderr, "baseline: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
}

static enum MHD_Result reply(struct MHD_Connection *c, int status, char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    static int first;
    if (*con_cls != &first) {
        *con_cls = &first;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (!db) {
        if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
            fprintf(stderr, "baseline: %s\n", sqlite3_errmsg(db));
            exit(1);
        }
        /* before the first statement: the pool's threads open at once, and one may find
           the WAL index being rebuilt by another ("database is locked" without a wait) */
        sqlite3_busy_timeout(db, 5000);
        prepare(&st, "SELECT " COLS " FROM \"crm.contact\" WHERE id = ?");
        prepare(&st_list, "SELECT " COLS " FROM \"crm.contact\" WHERE deleted_at IS NULL AND "
                          "\"city\" = ? ORDER BY id LIMIT 50");
        prepare(&st_search, "SELECT " COLS " FROM \"crm.contact\" WHERE id IN (SELECT rowid FROM "
                            "\"crm.contact:fts\" WHERE \"crm.contact:fts\" MATCH ? ORDER BY rowid "
                            "DESC LIMIT 20) ORDER BY id DESC");
        if (mmap_size) {
            char pragma[64];
            snprintf(pragma, sizeof pragma, "PRAGMA mmap_size=%lld", mmap_size);
            sqlite3_exec(db, pragma, NULL, NULL, NULL);
        }
    }
    const char *city = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "city");
    const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "q");
    size_t ul = strlen(url);
    if (ul >= 7 && strcmp(url + ul - 7, "/search") == 0 && q) {
        size_t n = strlen(q), k = 0;
        char *expr = malloc(2 * n + 4);
        expr[k++] = '"';
        for (size_t i = 0; i < n; i++) {
            if (q[i] == '"') expr[k++] = '"';
            expr[k++] = q[i];
        }
        expr[k++] = '"';
        expr[k++] = '*';
        sqlite3_bind_text(st_search, 1, expr, (int)k, free);
        return reply(c, 200, rows_text(st_search));
    }
    if (city) {
        sqlite3_bind_text(st_list, 1, city, -1, SQLITE_TRANSIENT);
        return reply(c, 200, rows_text(st_list));
    }
    const char *slash = strrchr(url, '/');
    long long id = slash ? atoll(slash + 1) : 0;
    sqlite3_bind_int64(st, 1, id);
    json_t *o = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) o = row_object(st);
    sqlite3_reset(st);
    if (!o) return reply(c, 404, strdup("{\"error\":{\"code\":\"not_found\"}}"));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return reply(c, 200, text);
}

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

int main(int argc, char **argv)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (argc < 2) return 2;
    if (getenv("BASELINE_THREADS")) n = atol(getenv("BASELINE_THREADS"));
    if (getenv("BASELINE_MMAP")) mmap_size = atoll(getenv("BASELINE_MMAP"));
    db_path = argv[1];
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC, (uint16_t)(argc > 2 ? atoi(argv[2]) : 0),
        NULL, NULL, on_access, NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(n > 0 ? n : 1),
        MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!d) return 1;
    printf("listening on http://127.0.0.1:%d\n", MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port);
    fflush(stdout);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop) pause();
    MHD_stop_daemon(d);
    return 0;
}
