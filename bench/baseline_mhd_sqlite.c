/*
 * baseline_mhd_sqlite.c — the raw limit of GET by id: baseline_mhd.c's server
 * plus a bare SQLite point select by id on the bench database (one read-only
 * connection and prepared statement per pool thread, WAL like crm) and a
 * Jansson object of the row, serialised as the response.
 *   baseline_mhd_sqlite DB [PORT]    GET .../ID → the row of "crm.contact" with that id
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
static _Thread_local sqlite3 *db;
static _Thread_local sqlite3_stmt *st;
static const char *const cols[] = {"id", "created_at", "updated_at", "created_by", "owner",
                                   "team", "version", "deleted_at", "first_name", "last_name",
                                   "email", "phone", "city", "country", "score"};

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
        if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(db, "SELECT id, created_at, updated_at, created_by, owner, team, "
                                   "version, deleted_at, \"first_name\", \"last_name\", \"email\", "
                                   "\"phone\", \"city\", \"country\", \"score\" FROM \"crm.contact\" "
                                   "WHERE id = ?", -1, &st, NULL) != SQLITE_OK) {
            fprintf(stderr, "baseline: %s\n", sqlite3_errmsg(db));
            exit(1);
        }
        sqlite3_busy_timeout(db, 5000);
    }
    const char *slash = strrchr(url, '/');
    long long id = slash ? atoll(slash + 1) : 0;
    sqlite3_bind_int64(st, 1, id);
    json_t *o = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) {
        o = json_object();
        for (int i = 0; i < 15; i++) {
            json_t *v;
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_NULL: v = json_null(); break;
            case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(st, i)); break;
            default:
                v = json_stringn((const char *)sqlite3_column_text(st, i),
                                 (size_t)sqlite3_column_bytes(st, i));
            }
            json_object_set_new(o, cols[i], v);
        }
    }
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
