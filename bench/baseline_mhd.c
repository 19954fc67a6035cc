/*
 * baseline_mhd.c — the raw HTTP limit: libmicrohttpd with crm's flags
 * (internal thread pool with epoll, pool = nproc, respond on the second call
 * of the handler so keep-alive holds; see DESIGN.md) serving a constant JSON.
 *   baseline_mhd [PORT]      prints "listening on http://127.0.0.1:PORT", runs until SIGTERM
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char body[] =
    "{\"id\":1,\"created_at\":\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-01-01T00:00:00Z\","
    "\"created_by\":null,\"owner\":null,\"team\":null,\"version\":1,\"deleted_at\":null,"
    "\"first_name\":\"James\",\"last_name\":\"Smith\",\"email\":\"c1.g1@example1.com\","
    "\"phone\":\"+44 20 123 4567\",\"city\":\"London\",\"country\":\"UK\",\"score\":42}";

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    static int first;
    if (*con_cls != &first) { /* first call: headers only; answer on the next */
        *con_cls = &first;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

int main(int argc, char **argv)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC, (uint16_t)(argc > 1 ? atoi(argv[1]) : 0),
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
