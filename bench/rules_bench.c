/*
 * rules_bench.c — what a Lua rule costs, beside what it is compared with in
 * the same run (issue 5's targets):
 *   1. dispatch of a no-op rule on an update event, against a bare lua_pcall
 *      of an empty function with a 10-field table (target: <= 5x);
 *   2. a rule that reads 10 fields and writes one record, against a C handler
 *      doing the same through the kernel API (target: <= 2x).
 * Both run the bus's after phase on a synthetic update event inside one
 * transaction per batch, at synchronous=OFF, so storage I/O does not drown
 * the figures. Medians of BENCH_REPS runs (default 5), min-max shown.
 * Writes the "rules" section of bench/REPORT.md (between its markers).
 */
#include "../kernel/bus.h"
#include "../kernel/perm.h"
#include "../kernel/record.h"
#include "../kernel/rules.h"
#include "../kernel/store.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define N_DISPATCH 200000
#define N_WRITE 20000
#define MAX_REPS 15

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct figure {
    double v[MAX_REPS];
    int n;
} figure;

static double median(figure *f)
{
    qsort(f->v, (size_t)f->n, sizeof f->v[0], cmp_double);
    return f->n % 2 ? f->v[f->n / 2] : (f->v[f->n / 2 - 1] + f->v[f->n / 2]) / 2;
}

static void fail(const char *what)
{
    fprintf(stderr, "rules_bench: %s: %s\n", what, crm_error_last()->message);
    exit(1);
}

/* ---- the bare baseline: lua_pcall of an empty function with a 10-field table ---- */

static double bare_pcall_ns(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    if (luaL_loadstring(L, "return function(ev) end") || lua_pcall(L, 0, 1, 0)) exit(1);
    int fn = luaL_ref(L, LUA_REGISTRYINDEX);
    double t0 = now_s();
    for (int i = 0; i < N_DISPATCH; i++) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, fn);
        lua_createtable(L, 0, 10);
        for (int f = 0; f < 10; f++) {
            char key[8];
            snprintf(key, sizeof key, "f%d", f);
            lua_pushinteger(L, i + f);
            lua_setfield(L, -2, key);
        }
        if (lua_pcall(L, 1, 0, 0)) exit(1);
    }
    double ns = (now_s() - t0) * 1e9 / N_DISPATCH;
    lua_close(L);
    return ns;
}

/* ---- the kernel side ---- */

static crm_kernel *k;
static json_t *record, *old, *changed;

static void setup(const char *dir)
{
    crm_kernel_opts o = CRM_KERNEL_OPTS_INIT;
    o.data_dir = dir;
    o.synchronous = 0;
    if (crm_kernel_open(&k, &o)) fail("open");
    json_t *fields = json_array();
    for (int f = 0; f < 10; f++) {
        char name[8];
        snprintf(name, sizeof name, "f%d", f);
        json_array_append_new(fields, json_pack("{s:s,s:s}", "name", name, "kind", "int"));
    }
    if (crm_schema_define_type(k->schema, "bench.item", "Item", "bench", fields)) fail("type");
    json_decref(fields);
    json_t *log = json_loads("[{\"name\":\"n\",\"kind\":\"int\"}]", 0, NULL);
    if (crm_schema_define_type(k->schema, "bench.log", "Log", "bench", log)) fail("type");
    json_decref(log);
    record = json_pack("{s:i,s:i}", "id", 1, "version", 2);
    old = json_pack("{s:i,s:i}", "id", 1, "version", 1);
    for (int f = 0; f < 10; f++) {
        char name[8];
        snprintf(name, sizeof name, "f%d", f);
        json_object_set_new(record, name, json_integer(f + 1));
        json_object_set_new(old, name, json_integer(f));
    }
    changed = json_pack("[s]", "f0");
}

/* Dispatch `n` synthetic update events (after phase), `batch` per transaction; ns per event. */
static double dispatch_ns(const char *topic, int n, int batch)
{
    crm_ctx ctx;
    crm_conn *conn = crm_store_conn(k->store);
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    crm_event ev = {.topic = topic, .type = "bench.item", .id = 1, .record = record, .old = old,
                    .changed = changed, .via = NULL};
    double t0 = now_s();
    for (int i = 0; i < n; i += batch) {
        if (crm_tx_begin(conn)) fail("begin");
        for (int j = 0; j < batch && i + j < n; j++) {
            ctx.depth = 0;
            if (crm_bus_dispatch(&ctx, &ev, CRM_PHASE_AFTER)) fail("dispatch");
        }
        if (crm_tx_commit(conn)) fail("commit");
    }
    return (now_s() - t0) * 1e9 / n;
}

/* The C twin of the writing rule: read ten fields, write one record. */
static int c_handler(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    int64_t sum = 0;
    for (int f = 0; f < 10; f++) {
        char name[8];
        snprintf(name, sizeof name, "f%d", f);
        sum += json_integer_value(json_object_get(ev->record, name));
    }
    json_t *in = json_pack("{s:I}", "n", (json_int_t)sum);
    int rc = crm_record_create(ctx, "bench.log", in, NULL);
    json_decref(in);
    return rc;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) exit(1);
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    const char *reps_env = getenv("BENCH_REPS");
    int reps = reps_env ? atoi(reps_env) : 5;
    if (reps < 1) reps = 1;
    if (reps > MAX_REPS) reps = MAX_REPS;
    char dir[] = "/tmp/crm-rules-bench-XXXXXX", scripts[64];
    if (!mkdtemp(dir)) return 1;
    snprintf(scripts, sizeof scripts, "%s/scripts", dir);
    mkdir(scripts, 0700);
    char path[128];
    snprintf(path, sizeof path, "%s/bench.lua", scripts);
    write_file(path,
               "rule { name = \"noop\", on = \"bench.item.noop\", run = function(ev) end }\n"
               "rule { name = \"writer\", on = \"bench.item.write\", run = function(ev)\n"
               "  local r = ev.record\n"
               "  local sum = r.f0 + r.f1 + r.f2 + r.f3 + r.f4 + r.f5 + r.f6 + r.f7 + r.f8 + r.f9\n"
               "  crm.create(\"bench.log\", { n = sum })\n"
               "end }\n");
    char data[80];
    snprintf(data, sizeof data, "%s/data", dir);
    crm_log_set_level(CRM_LOG_WARN);
    setup(data);
    crm_rules *rules;
    if (crm_rules_open(&rules, k, NULL) || crm_rules_add_dir(rules, scripts, "site") ||
        crm_rules_load(rules, NULL))
        fail("rules");
    if (crm_bus_subscribe(k->bus, "bench.item.c_write", CRM_PHASE_AFTER, 0, "c writer", c_handler,
                          NULL))
        fail("subscribe");

    figure bare = {0}, none = {0}, noop = {0}, lua_w = {0}, c_w = {0};
    for (int r = 0; r < reps; r++) {
        bare.v[bare.n++] = bare_pcall_ns();
        none.v[none.n++] = dispatch_ns("bench.item.nothing", N_DISPATCH, 1000);
        noop.v[noop.n++] = dispatch_ns("bench.item.noop", N_DISPATCH, 1000);
        c_w.v[c_w.n++] = dispatch_ns("bench.item.c_write", N_WRITE, 1000);
        lua_w.v[lua_w.n++] = dispatch_ns("bench.item.write", N_WRITE, 1000);
    }
    /* What the rule adds to an event's dispatch, vs the bare call. */
    figure overhead = {0};
    for (int r = 0; r < reps; r++) overhead.v[overhead.n++] = noop.v[r] - none.v[r];
    double m_bare = median(&bare), m_none = median(&none), m_noop = median(&noop);
    double m_over = median(&overhead), m_lua = median(&lua_w), m_c = median(&c_w);
    double r1 = m_over / m_bare, r2 = m_lua / m_c;

    char report[4096];
    snprintf(report, sizeof report,
             "<!-- rules:begin -->\n"
             "## Lua rules (C API, %d runs each, median; synchronous=OFF, 1000 events per "
             "transaction)\n\n"
             "| figure | crm | compared with | ratio | target | met |\n"
             "|---|---|---|---|---|---|\n"
             "| no-op rule: dispatch cost it adds to an update event [ns] | %.0f (event with no "
             "rule: %.0f, with the rule: %.0f) | bare lua_pcall, 10-field table: %.0f | %.2f | "
             "<= 5x | %s |\n"
             "| rule reading 10 fields and writing one record [us/event] | %.1f | C handler "
             "through the kernel API: %.1f | %.2f | <= 2x | %s |\n"
             "<!-- rules:end -->\n",
             reps, m_over, m_none, m_noop, m_bare, r1, r1 <= 5 ? "yes" : "**no**", m_lua / 1000,
             m_c / 1000, r2, r2 <= 2 ? "yes" : "**no**");
    fputs(report, stdout);

    /* Replace the rules section of REPORT.md, or append it. */
    const char *rp = getenv("BENCH_REPORT") ? getenv("BENCH_REPORT") : "bench/REPORT.md";
    FILE *f = fopen(rp, "r");
    char *old_text = NULL;
    size_t len = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        old_text = calloc(1, len + 1);
        if (fread(old_text, 1, len, f) != len) len = 0;
        fclose(f);
    }
    f = fopen(rp, "w");
    if (f) {
        char *b = old_text ? strstr(old_text, "<!-- rules:begin -->") : NULL;
        char *e = old_text ? strstr(old_text, "<!-- rules:end -->") : NULL;
        if (b && e && e > b) {
            fwrite(old_text, 1, (size_t)(b - old_text), f);
            fputs(report, f);
            fputs(e + strlen("<!-- rules:end -->\n"), f);
        } else {
            if (old_text) fputs(old_text, f);
            fputs("\n", f);
            fputs(report, f);
        }
        fclose(f);
    }
    free(old_text);
    crm_rules_close(rules);
    crm_kernel_close(k);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return 0;
}
