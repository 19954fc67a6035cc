/*
 * cli_serve.c — `crm serve`: the HTTP API over the data directory, with the
 * async event workers and the scheduler, until SIGTERM or SIGINT.
 */
#include "cli.h"
#include "plugin.h"
#include "rules.h"

#include "api.h"
#include "bus.h"
#include "sched.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmd_serve(cli *c, int argc, char **argv);

const cli_command crm_cli_serve_commands[] = {
    {"serve", cmd_serve,
     "[--listen ADDR] [--threads N] [--max-body BYTES] [--max-connections N] [--per-ip N] "
     "[--timeout S] [--deadline S] [--header-timeout S] [--no-access-log] [--conf FILE] "
     "[--plugin-dir DIR] [--scripts DIR]",
     "serve the HTTP API",
     "Serves the HTTP API (/api/v1) of the data directory, runs the async event\n"
     "handlers and the scheduler. Prints \"listening on http://HOST:PORT\" once ready.\n"
     "Stops on SIGTERM or SIGINT: stops accepting, lets requests in progress finish\n"
     "(at most 10 s), checkpoints the database and exits 0. SIGHUP is ignored.\n"
     "One JSON line per request goes to stderr (the access log).\n"
     "Options:\n"
     "  --listen ADDR          HOST:PORT or [IPv6]:PORT (default 127.0.0.1:8080; port 0\n"
     "                         picks a free one)\n"
     "  --threads N            worker threads (default: 2 per core)\n"
     "  --max-body BYTES       largest request body (default 1048576); larger → 413\n"
     "  --max-connections N    open connections at most (default 1024)\n"
     "  --per-ip N             open connections per client address (default 32)\n"
     "  --timeout S            close idle connections after S seconds (default 30)\n"
     "  --deadline S           a request must be received within S seconds (default 60)\n"
     "  --header-timeout S     a request's headers must arrive within S seconds of the\n"
     "                         connection's start or its previous request's end, else\n"
     "                         the connection is closed (default 10; 0: no limit). Cuts\n"
     "                         slowloris clients, and idle keep-alive connections too\n"
     "  --no-access-log        no access log lines\n"
     "  --conf FILE            plugins.conf to read (default: $CRM_PLUGINS_CONF, else\n"
     "                         ./plugins.conf; none there: no plugins)\n"
     "  --plugin-dir DIR       where in-tree plugins' .so files are (default: plugins/\n"
     "                         next to the crm binary, e.g. build/plugins)\n"
     "  --scripts DIR          the site's Lua rules (default ./scripts); reloaded on SIGHUP\n"
     "                         (`crm rules reload`) and POST /api/v1/rules/reload\n"
     "The process id is written to DATA/crm.pid while it serves.\n"},
    {NULL, NULL, NULL, NULL, NULL},
};

static int int_option(const cli_command *cmd, const char *name, const char *value, int64_t min,
                      int64_t max, int64_t *out)
{
    if (!value) return CLI_OK;
    if (!crm_parse_int64(value, out) || *out < min || *out > max)
        return crm_cli_usage_error(cmd, "%s must be a whole number from %lld to %lld, not \"%s\"",
                                   name, (long long)min, (long long)max, value);
    return CLI_OK;
}

static int log_level_from_env(void)
{
    const char *env = getenv("CRM_LOG");
    if (env && strcmp(env, "debug") == 0) return CRM_LOG_DEBUG;
    if (env && strcmp(env, "warn") == 0) return CRM_LOG_WARN;
    if (env && strcmp(env, "error") == 0) return CRM_LOG_ERROR;
    return CRM_LOG_INFO;
}

static void log_versions(crm_kernel *k)
{
    crm_stmt *st;
    char sqlite_version[64] = "?";

    if (crm_stmt_prepare(crm_store_conn(k->store), &st, "SELECT sqlite_version()") == CRM_OK) {
        if (crm_stmt_step(st) == 1 && crm_stmt_column_text(st, 0))
            snprintf(sqlite_version, sizeof sqlite_version, "%s", crm_stmt_column_text(st, 0));
        crm_stmt_done(st);
    }
    crm_log(CRM_LOG_INFO,
            "crm %s: libmicrohttpd %s, sqlite %s, jansson %s, libsodium %s; database %s "
            "(synchronous=%d)",
            CRM_VERSION, crm_http_library_version(), sqlite_version, jansson_version_str(),
            sodium_version_string(), crm_store_path(k->store), crm_store_synchronous(k->store));
}

static int register_areas(crm_http *h)
{
    int rc;
    if ((rc = crm_api_auth_register(h)) < 0 || (rc = crm_api_records_register(h)) < 0 ||
        (rc = crm_api_io_register(h)) < 0 || (rc = crm_api_platform_register(h)) < 0)
        return rc;
    return CRM_OK;
}

/* "http://HOST:PORT" as a client would write it. */
static void print_listening(const char *listen, int port)
{
    const char *colon = strrchr(listen, ':');
    int hostlen = colon ? (int)(colon - listen) : 0;
    if (hostlen == 0)
        printf("listening on http://0.0.0.0:%d\n", port);
    else
        printf("listening on http://%.*s:%d\n", hostlen, listen, port);
    fflush(stdout);
}

/* DATA/crm.pid, so that `crm rules reload` can signal this process. */
static char *write_pid(const char *data_dir)
{
    char *path = crm_sprintf("%s/crm.pid", data_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        crm_log(CRM_LOG_WARN, "serve: cannot write %s", path);
        free(path);
        return NULL;
    }
    fprintf(f, "%ld\n", (long)getpid());
    fclose(f);
    return path;
}

static int cmd_serve(cli *c, int argc, char **argv)
{
    const cli_command *cmd = crm_cli_command("serve");
    const char *listen = NULL, *threads = NULL, *max_body = NULL, *max_conn = NULL, *per_ip = NULL,
               *timeout = NULL, *deadline = NULL, *header_timeout = NULL, *conf = NULL,
               *plugin_dir = NULL, *scripts = "scripts";
    bool no_access_log = false;
    crm_plugins *plugins = NULL;
    crm_rules *rules = NULL;
    char *pid_path = NULL;
    cli_opt opts[] = {{"--listen", &listen, NULL},
                      {"--threads", &threads, NULL},
                      {"--max-body", &max_body, NULL},
                      {"--max-connections", &max_conn, NULL},
                      {"--per-ip", &per_ip, NULL},
                      {"--timeout", &timeout, NULL},
                      {"--deadline", &deadline, NULL},
                      {"--header-timeout", &header_timeout, NULL},
                      {"--no-access-log", NULL, &no_access_log},
                      {"--conf", &conf, NULL},
                      {"--plugin-dir", &plugin_dir, NULL},
                      {"--scripts", &scripts, NULL},
                      {NULL, NULL, NULL}};
    crm_http_opts ho = CRM_HTTP_OPTS_INIT;
    crm_http *h = NULL;
    int64_t v;
    sigset_t sigs;
    int rc, sig;

    if ((rc = crm_cli_parse(cmd, argc, argv, opts, NULL, 0, 0, NULL)) != CLI_OK) return rc;
    if (listen) ho.listen = listen;
    if (threads) {
        if ((rc = int_option(cmd, "--threads", threads, 1, 256, &v)) != CLI_OK) return rc;
        ho.threads = (int)v;
    }
    if (max_body) {
        if ((rc = int_option(cmd, "--max-body", max_body, 1024, (int64_t)1 << 34, &v)) != CLI_OK)
            return rc;
        ho.max_body = (size_t)v;
    }
    if (max_conn) {
        if ((rc = int_option(cmd, "--max-connections", max_conn, 1, 1000000, &v)) != CLI_OK)
            return rc;
        ho.max_connections = (int)v;
    }
    if (per_ip) {
        if ((rc = int_option(cmd, "--per-ip", per_ip, 0, 1000000, &v)) != CLI_OK) return rc;
        ho.max_per_ip = (int)v;
    }
    if (timeout) {
        if ((rc = int_option(cmd, "--timeout", timeout, 1, 86400, &v)) != CLI_OK) return rc;
        ho.timeout_s = (int)v;
    }
    if (deadline) {
        if ((rc = int_option(cmd, "--deadline", deadline, 1, 86400, &v)) != CLI_OK) return rc;
        ho.request_deadline_s = (int)v;
    }
    if (header_timeout) {
        if ((rc = int_option(cmd, "--header-timeout", header_timeout, 0, 86400, &v)) != CLI_OK)
            return rc;
        ho.header_timeout_s = v == 0 ? -1 : (int)v; /* 0 in the options means the default */
    }
    ho.access_log = !no_access_log;

    /*
     * Block the stop signals before any thread starts, so every thread
     * inherits the mask and only sigwait below receives them.
     */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* The server's log is its record: info lines on, unless CRM_LOG says otherwise
     * (main() quietened the log to warnings for the other commands). */
    crm_log_set_level(log_level_from_env());

    if ((rc = crm_cli_open(c, false)) != CLI_OK) return rc;
    log_versions(c->k);
    if (crm_http_open(&h, c->k, &ho) < 0) return crm_cli_fail();
    if (register_areas(h) < 0) {
        rc = crm_cli_fail();
        goto done;
    }
    /*
     * Plugins declare their types and routes before the first request; then
     * the rules (the site's and the plugins'), which may call the plugins' Lua
     * functions and name their types.
     */
    if ((rc = crm_cli_load_plugins(c, conf, plugin_dir, h, &plugins)) != CLI_OK) goto done;
    if ((rc = crm_cli_load_rules(c, plugins, scripts, &rules)) != CLI_OK) goto done;
    if (crm_api_rules_register(h, rules) < 0 || crm_api_plugins_register(h, plugins) < 0) {
        rc = crm_cli_fail();
        goto done;
    }
    if (crm_bus_start(c->k->bus, 1) < 0 || crm_sched_start(c->k->sched, 30) < 0) {
        rc = crm_cli_fail();
        goto done;
    }
    if (crm_http_start(h) < 0) {
        rc = crm_cli_fail();
        goto done;
    }
    crm_log(CRM_LOG_INFO, "serve: listening on %s (port %d)", ho.listen, crm_http_port(h));
    pid_path = write_pid(c->data_dir);
    print_listening(ho.listen, crm_http_port(h));

    for (;;) {
        if (sigwait(&sigs, &sig) != 0) continue;
        if (sig == SIGHUP) {
            /* Requests keep being served: runs in flight finish on the old rule set. */
            crm_log(CRM_LOG_INFO, "serve: SIGHUP: reloading rules");
            if (crm_rules_load(rules, NULL) < 0)
                crm_log(CRM_LOG_ERROR, "serve: reloading rules: %s", crm_error_last()->message);
            continue;
        }
        crm_log(CRM_LOG_INFO, "serve: %s received, stopping",
                sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
    crm_http_stop(h, 10);
    rc = CLI_OK;
done:
    crm_bus_stop(c->k->bus);
    crm_sched_stop(c->k->sched);
    crm_http_close(h);
    crm_rules_close(rules);
    crm_plugins_free(plugins); /* runs each plugin's shutdown, after its last request */
    if (pid_path) {
        unlink(pid_path);
        free(pid_path);
    }
    /* Once more, now that the workers are gone: the next start reads a small WAL. */
    if (crm_conn_exec(crm_store_conn(c->k->store), "PRAGMA wal_checkpoint(TRUNCATE)") < 0)
        crm_log(CRM_LOG_WARN, "serve: WAL checkpoint failed: %s", crm_error_last()->message);
    if (rc == CLI_OK) crm_log(CRM_LOG_INFO, "serve: stopped");
    return rc;
}
