/*
 * test_plugin.c — the plugin loader (kernel/plugin.c, host.c) against the
 * purpose-built plugins of tests/plugins/ (Redis tests its module API the
 * same way): deliberately broken ones, each refused with its own message
 * while the others load; a good one registering one of everything; the SDK
 * template built out of the tree; an upgrade with a migration; a downgrade.
 *
 * The test plugins are built by `make check` into CRM_TEST_BUILD/test-plugins.
 */
#include "kfix.h"

#include "../../kernel/lock.h"
#include "../../kernel/plugin.h"
#include "../../kernel/sched.h"

#include <dlfcn.h>
#include <sys/stat.h>

#ifndef CRM_TEST_ROOT
#define CRM_TEST_ROOT "."
#endif
#ifndef CRM_TEST_BUILD
#define CRM_TEST_BUILD "build"
#endif
#ifndef CRM_TEST_OPT
#define CRM_TEST_OPT "-O2"
#endif
#ifndef CRM_TEST_SAN
#define CRM_TEST_SAN ""
#endif

#define TEST_PLUGINS CRM_TEST_BUILD "/test-plugins"
#define PLUGIN_SRC CRM_TEST_ROOT "/tests/plugins"

/* ---- dlopen, interposed (SECURITY P8: the loader's flags) ---- */

static int dlopen_calls, dlopen_last_flags = -1;

void *dlopen(const char *file, int flags)
{
    static void *(*real)(const char *, int);
    if (!real) {
        void *sym = dlsym(RTLD_NEXT, "dlopen");
        memcpy(&real, &sym, sizeof real);
    }
    dlopen_calls++;
    dlopen_last_flags = flags;
    return real(file, flags);
}

/* ---- Helpers ---- */

static char conf_file[600], data_dir[600];

/* A fresh data directory and plugins.conf with `text` (sections use PLUGIN_SRC paths). */
static crm_kernel *setup(const char *text)
{
    const char *dir = t_tmpdir();
    snprintf(data_dir, sizeof data_dir, "%s/var", dir);
    snprintf(conf_file, sizeof conf_file, "%s/plugins.conf", dir);
    FILE *f = fopen(conf_file, "w");
    if (!f) exit(2);
    fputs(text, f);
    fclose(f);
    return kfix_open_at(data_dir);
}

static void rewrite_conf(const char *text)
{
    FILE *f = fopen(conf_file, "w");
    if (!f) exit(2);
    fputs(text, f);
    fclose(f);
}

static crm_plugins *load_with(crm_kernel *k, const char *plugin_dir)
{
    crm_conf *conf = NULL;
    crm_plugins *set = NULL;
    crm_plugins_opts opts = CRM_PLUGINS_OPTS_INIT;
    opts.plugin_dir = plugin_dir;
    if (crm_conf_load(conf_file, &conf) != CRM_OK) {
        fprintf(stderr, "conf: %s\n", crm_error_last()->message);
        exit(2);
    }
    if (crm_plugins_load(&set, k, conf, &opts) != CRM_OK) {
        fprintf(stderr, "load: %s\n", crm_error_last()->message);
        exit(2);
    }
    crm_conf_free(conf);
    return set;
}

static crm_plugins *load(crm_kernel *k)
{
    return load_with(k, TEST_PLUGINS);
}

static const char *state(crm_plugins *set, const char *name)
{
    const char *s = crm_plugins_state(set, name, NULL);
    return s ? s : "(absent)";
}

static const char *error_of(crm_plugins *set, const char *name)
{
    const char *e = NULL;
    crm_plugins_state(set, name, &e);
    return e ? e : "(absent)";
}

static int64_t query_int(crm_kernel *k, const char *sql)
{
    int64_t v = -1;
    if (crm_conn_query_int(crm_store_conn(k->store), sql, &v, 0) != CRM_OK) return -1;
    return v;
}

/* Find a Lua function the plugins registered. */
typedef struct lua_lookup {
    const char *plugin, *name;
    crm_lua_fn fn;
    void *udata;
    int count;
} lua_lookup;

static int lua_cb(void *arg, const char *plugin, const char *name, crm_lua_fn fn, void *udata)
{
    lua_lookup *l = arg;
    l->count++;
    if (strcmp(plugin, l->plugin) == 0 && strcmp(name, l->name) == 0) {
        l->fn = fn;
        l->udata = udata;
    }
    return 0;
}

/* Call crm.<plugin>.<name>(args) as a rule would; returns the rc, *out the result. */
static int call_lua(crm_plugins *set, crm_kernel *k, const char *plugin, const char *name,
                    const char *args_json, json_t **out)
{
    lua_lookup l = {plugin, name, NULL, NULL, 0};
    crm_plugins_each_lua_function(set, lua_cb, &l);
    *out = NULL;
    if (!l.fn) return -100;
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, crm_principal_system(), "test");
    json_t *args = kfix_json(args_json);
    int rc = l.fn(&ctx, args, out, l.udata);
    json_decref(args);
    return rc;
}

static int count_cb(void *arg, const char *plugin, const char *dir)
{
    (void)plugin;
    json_array_append_new(arg, json_string(dir));
    return 0;
}

static int demo_cb(void *arg, const char *plugin, crm_demo_fn fn, void *udata)
{
    (void)plugin;
    (void)fn;
    (void)udata;
    (*(int *)arg)++;
    return 0;
}

static bool table_exists(crm_kernel *k, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE name = '%s'", name);
    return query_int(k, sql) > 0;
}

/* ---- The deliberately broken plugins, all in one plugins.conf ---- */

#define SECTION(name) "[" #name "]\nsource = " PLUGIN_SRC "/" #name "\n"

static const char *const all_conf =
    SECTION(good) "greeting = Grüß Gott\n"
    SECTION(good2)
    SECTION(badmagic)
    SECTION(abinew)
    SECTION(abiold)
    SECTION(abiminor)
    SECTION(small)
    SECTION(timet)
    SECTION(badver)
    SECTION(nosym)
    SECTION(unresolved)
    SECTION(initfail)
    SECTION(needmissing)
    SECTION(needold)
    SECTION(needrefused)
    SECTION(cyca)
    SECTION(cycb)
    SECTION(dupa)
    SECTION(dupb)
    "[renamed]\nsource = " PLUGIN_SRC "/good\n"            /* good.so under another name */
    "[notbuilt]\nsource = " PLUGIN_SRC "/does_not_exist\n"
    "[migr]\nsource = " PLUGIN_SRC "/migr_v1\nenabled = no\n";

static void test_broken_plugins_refused_others_load(void)
{
    crm_kernel *k = setup(all_conf);
    crm_plugins *set = load(k);
    char so[700];

    CHECK_STR(state(set, "good"), "loaded");
    CHECK_STR(state(set, "good2"), "loaded");
    CHECK_STR(state(set, "dupa"), "loaded");
    CHECK_STR(state(set, "migr"), "disabled");

#define SO(name) (snprintf(so, sizeof so, "%s/%s.so", TEST_PLUGINS, name), so)
#define CHECK_REFUSED(name, message)                          \
    do {                                                      \
        CHECK_STR(state(set, name), "refused");               \
        CHECK_STR(error_of(set, name), message);              \
    } while (0)
    char want[1200];
    snprintf(want, sizeof want, "%s: plugin ABI mismatch: magic is 0xDEADBEEF, expected "
             "0x43524D50 (not a crm plugin descriptor)", SO("badmagic"));
    CHECK_REFUSED("badmagic", want);
    snprintf(want, sizeof want, "%s: plugin ABI mismatch: abi_major is 2, this crm supports 1 "
             "(rebuild the plugin against this crm's sdk/crm.h)", SO("abinew"));
    CHECK_REFUSED("abinew", want);
    snprintf(want, sizeof want, "%s: plugin ABI mismatch: abi_major is 0, this crm supports 1 "
             "(rebuild the plugin against this crm's sdk/crm.h)", SO("abiold"));
    CHECK_REFUSED("abiold", want);
    snprintf(want, sizeof want, "%s: plugin ABI mismatch: abi_minor is 1, this crm supports up "
             "to 0 (the plugin needs a newer crm)", SO("abiminor"));
    CHECK_REFUSED("abiminor", want);
    snprintf(want, sizeof want, "%s: plugin ABI mismatch: struct_size is %u, ABI 1.0 needs at "
             "least %u", SO("small"), (unsigned)sizeof(crm_plugin_desc) - 8,
             (unsigned)sizeof(crm_plugin_desc));
    CHECK_REFUSED("small", want);
    CHECK_HAS(error_of(set, "timet"), ": plugin ABI mismatch: abi_config is ");
    CHECK_HAS(error_of(set, "timet"), "time_t 4/8");
    snprintf(want, sizeof want, "%s: version \"1.0\" is not a semantic version "
             "(MAJOR.MINOR.PATCH)", SO("badver"));
    CHECK_REFUSED("badver", want);
    snprintf(want, sizeof want, "%s: no crm_plugin_v1 symbol: not a crm plugin, or the "
             "descriptor function lacks CRM_PLUGIN_EXPORT", SO("nosym"));
    CHECK_REFUSED("nosym", want);
    /* RTLD_NOW: an unresolved symbol fails at load, naming it */
    CHECK_STR(state(set, "unresolved"), "refused");
    CHECK_HAS(error_of(set, "unresolved"), "cannot load: ");
    CHECK_HAS(error_of(set, "unresolved"), "undefined symbol: no_such_function");
    CHECK_REFUSED("initfail", "init failed: initfail: the room service is unreachable");
    CHECK_REFUSED("needmissing",
                  "requires plugin \"nothere\" >=1.0, which is not in plugins.conf");
    CHECK_REFUSED("needold", "requires \"good ^2.0\", found good 1.4.2");
    CHECK_REFUSED("needrefused",
                  "requires plugin \"initfail\", which was refused: init failed: initfail: "
                  "the room service is unreachable");
    CHECK_HAS(error_of(set, "cyca"), "dependency cycle: ");
    CHECK_HAS(error_of(set, "cyca"), "cyca -> cycb -> cyca");
    CHECK_STR(error_of(set, "cycb"), error_of(set, "cyca"));
    CHECK_REFUSED("dupb", "init failed: type dupa.thing is already declared by plugin \"dupa\"");
    snprintf(want, sizeof want, "%s: the plugin is named \"good\" but its plugins.conf section "
             "is [renamed]", SO("good"));
    CHECK_REFUSED("renamed", want);
    CHECK_HAS(error_of(set, "notbuilt"), "does_not_exist.so: not built");

    /* The JSON the API and `crm plugin list` show. */
    json_t *list = crm_plugins_json(set);
    CHECK_INT(json_array_size(list), 22);
    json_t *first = json_array_get(list, 0);
    CHECK_STR(json_string_value(json_object_get(first, "name")), "good");
    CHECK_STR(json_string_value(json_object_get(first, "version")), "1.4.2");
    CHECK_STR(json_string_value(json_object_get(first, "state")), "loaded");
    CHECK_STR(json_string_value(json_object_get(first, "source")), PLUGIN_SRC "/good");
    CHECK(json_is_null(json_object_get(first, "error")));
    CHECK(json_is_null(json_object_get(first, "commit")));
    json_t *bad = json_array_get(list, 2);
    CHECK_STR(json_string_value(json_object_get(bad, "state")), "refused");
    CHECK_HAS(json_string_value(json_object_get(bad, "error")), "magic");
    json_decref(list);
    int loaded = 0;
    CHECK_INT(crm_plugins_count(set, &loaded), 22);
    CHECK_INT(loaded, 3);

    crm_plugins_free(set);
    crm_kernel_close(k);
}

static void test_failed_init_leaves_nothing(void)
{
    crm_kernel *k = setup(SECTION(initfail) SECTION(good));
    crm_plugins *set = load(k);
    CHECK_STR(state(set, "initfail"), "refused");
    CHECK_STR(state(set, "good"), "loaded");
    /* its half-registered type: not in the registry, no table, no core_type/core_field rows */
    CHECK(crm_schema_type(k->schema, "initfail.thing") == NULL);
    CHECK(!table_exists(k, "initfail.thing"));
    CHECK_INT(query_int(k, "SELECT count(*) FROM core_type WHERE name = 'initfail.thing'"), 0);
    CHECK_INT(query_int(k, "SELECT count(*) FROM core_field WHERE type = 'initfail.thing'"), 0);
    CHECK_INT(query_int(k, "SELECT count(*) FROM core_plugin WHERE name = 'initfail'"), 0);
    /* nor its handler or route: only good's routes exist */
    json_t *routes = crm_plugins_routes(set);
    CHECK_INT(json_array_size(routes), 5);
    CHECK_STR(json_string_value(json_array_get(routes, 0)), "GET /api/v1/x/good/hello");
    for (size_t i = 0; i < json_array_size(routes); i++)
        CHECK_HAS(json_string_value(json_array_get(routes, i)), " /api/v1/x/good/");
    json_decref(routes);
    /* the good plugin's type did get its table and rows */
    CHECK(crm_schema_type(k->schema, "good.item") != NULL);
    CHECK(table_exists(k, "good.item"));
    CHECK_INT(query_int(k, "SELECT count(*) FROM core_plugin WHERE name = 'good' AND "
                           "version = '1.4.2'"), 1);
    crm_plugins_free(set);
    crm_kernel_close(k);
}

static void test_good_plugin_registers_everything(void)
{
    crm_kernel *k = setup(SECTION(good) "greeting = Grüß Gott\n" SECTION(good2));
    dlopen_calls = 0;
    crm_plugins *set = load(k);
    REQUIRE(strcmp(state(set, "good"), "loaded") == 0);
    REQUIRE(strcmp(state(set, "good2"), "loaded") == 0);
    /* P8: RTLD_NOW | RTLD_LOCAL, once per plugin */
    CHECK_INT(dlopen_calls, 2);
    CHECK_INT(dlopen_last_flags, RTLD_NOW | RTLD_LOCAL);

    /* the type, with good2's field owned by good2 */
    const crm_type *t = crm_schema_type(k->schema, "good.item");
    REQUIRE(t);
    CHECK_STR(t->owner, "good");
    CHECK(crm_type_field(t, "name") && crm_type_field(t, "n"));
    const crm_field *f2 = crm_type_field(t, "good2_note");
    REQUIRE(f2);
    CHECK_STR(f2->owner, "good2");

    /* the before handler doubles n and can refuse */
    crm_ctx ctx;
    json_t *out = NULL, *in = kfix_json("{\"name\":\"x\",\"n\":21}");
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    CHECK_INT(crm_record_create(&ctx, "good.item", in, &out), CRM_OK);
    CHECK_INT(json_integer_value(json_object_get(out, "n")), 42);
    json_decref(in);
    json_decref(out);
    in = kfix_json("{\"name\":\"forbidden\"}");
    CHECK_INT(crm_record_create(&ctx, "good.item", in, NULL), CRM_EINVALID);
    CHECK_STR(crm_error_last()->message, "good: the name \"forbidden\" is refused");
    json_decref(in);

    /* the role and its default grants */
    CHECK_INT(query_int(k, "SELECT count(*) FROM \"core.role\" WHERE name = 'good reader'"), 1);
    CHECK_INT(query_int(k, "SELECT level FROM core_grant g JOIN \"core.role\" r ON r.id = "
                           "g.role_id WHERE r.name = 'good reader' AND g.type = 'good.item' "
                           "AND g.action = 0"), CRM_LEVEL_ALL);

    /* the routes, under /api/v1/x/good */
    json_t *routes = crm_plugins_routes(set);
    CHECK_INT(json_array_size(routes), 5);
    CHECK_STR(json_string_value(json_array_get(routes, 0)), "GET /api/v1/x/good/hello");
    CHECK_STR(json_string_value(json_array_get(routes, 1)), "POST /api/v1/x/good/echo");
    CHECK_STR(json_string_value(json_array_get(routes, 4)), "GET /api/v1/x/good/census");
    /* the composite index declared on the type staged in the same init */
    CHECK_INT(query_int(k, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND "
                           "name = 'good.item:name,n'"), 1);
    json_decref(routes);

    /* Lua functions: two plugins, each global helper() its own (P8) */
    lua_lookup all = {"", "", NULL, NULL, 0};
    crm_plugins_each_lua_function(set, lua_cb, &all);
    CHECK_INT(all.count, 4);
    CHECK_INT(call_lua(set, k, "good", "helper", "[]", &out), CRM_OK);
    CHECK_INT(json_integer_value(out), 1);
    json_decref(out);
    CHECK_INT(call_lua(set, k, "good2", "helper", "[]", &out), CRM_OK);
    CHECK_INT(json_integer_value(out), 2);
    json_decref(out);
    /* settings from plugins.conf */
    CHECK_INT(call_lua(set, k, "good", "setting", "[\"greeting\"]", &out), CRM_OK);
    CHECK_STR(json_string_value(out), "Grüß Gott");
    json_decref(out);
    CHECK_INT(call_lua(set, k, "good", "setting", "[\"nothing\"]", &out), CRM_OK);
    CHECK(out == NULL);
    /* registration after init is refused */
    CHECK_INT(call_lua(set, k, "good", "late", "[]", &out), CRM_EINVALID);
    CHECK_STR(crm_error_last()->message,
              "plugin \"good\": registration is only possible inside init (type_declare called "
              "after init returned)");
    CHECK(crm_schema_type(k->schema, "good.late") == NULL);

    /* the rules directory, the demo hook, the schedule */
    json_t *dirs = json_array();
    crm_plugins_each_rule_dir(set, count_cb, dirs);
    CHECK_INT(json_array_size(dirs), 1);
    CHECK_STR(json_string_value(json_array_get(dirs, 0)), PLUGIN_SRC "/good/scripts");
    json_decref(dirs);
    int demos = 0;
    crm_plugins_each_demo(set, demo_cb, &demos);
    CHECK_INT(demos, 1);
    CHECK_INT(crm_plugins_run_demo(set, k), CRM_OK);
    CHECK_INT(query_int(k, "SELECT n FROM \"good.item\" WHERE name = 'demo'"), 42);
    CHECK_INT(crm_sched_remove(k->sched, "good.nightly"), CRM_OK);

    crm_plugins_free(set);
    crm_kernel_close(k);
}

/* ---- Disabled plugins: their types are absent, their data kept ---- */

static void test_disabled_plugin_types_absent(void)
{
    crm_kernel *k = setup(SECTION(good) "enabled = no\n");
    crm_plugins *set = load(k);
    CHECK_STR(state(set, "good"), "disabled");
    CHECK(crm_schema_type(k->schema, "good.item") == NULL);
    CHECK(!table_exists(k, "good.item"));
    crm_plugins_free(set);

    /* enabled: the type appears; a record is written */
    rewrite_conf(SECTION(good));
    crm_kernel_close(k);
    k = kfix_open_at(data_dir);
    set = load(k);
    CHECK_STR(state(set, "good"), "loaded");
    kfix_create(k, "good.item", "{\"name\":\"kept\",\"n\":1}");
    crm_plugins_free(set);
    crm_kernel_close(k);

    /* disabled again: hidden from the registry (and so the API), data kept */
    rewrite_conf(SECTION(good) "enabled = no\n");
    k = kfix_open_at(data_dir);
    set = load(k);
    CHECK(crm_schema_type(k->schema, "good.item") == NULL);
    const crm_type **types = NULL;
    int n = 0;
    crm_schema_types(k->schema, &types, &n);
    for (int i = 0; i < n; i++) CHECK(strcmp(types[i]->name, "good.item") != 0);
    free(types);
    CHECK_INT(query_int(k, "SELECT count(*) FROM \"good.item\""), 1);
    crm_plugins_free(set);
    crm_kernel_close(k);

    /* removed from plugins.conf altogether: hidden too (it was installed) */
    rewrite_conf("# nothing\n");
    k = kfix_open_at(data_dir);
    set = load(k);
    CHECK(crm_schema_type(k->schema, "good.item") == NULL);
    crm_plugins_free(set);
    crm_kernel_close(k);

    /* and back: visible with its data */
    rewrite_conf(SECTION(good));
    k = kfix_open_at(data_dir);
    set = load(k);
    CHECK(crm_schema_type(k->schema, "good.item") != NULL);
    CHECK_INT(query_int(k, "SELECT n FROM \"good.item\" WHERE name = 'kept'"), 2);
    crm_plugins_free(set);
    crm_kernel_close(k);
}

/* ---- Upgrades and downgrades ---- */

static void test_upgrade_migration_and_downgrade(void)
{
    crm_kernel *k = setup("[migr]\nsource = " PLUGIN_SRC "/migr_v1\n");
    crm_plugins *set = load(k);
    REQUIRE(strcmp(state(set, "migr"), "loaded") == 0);
    int64_t id = kfix_create(k, "migr.person", "{\"name\":\"Ann\",\"phone\":\"+1 555 0100\"}");
    crm_plugins_free(set);
    crm_kernel_close(k);

    /* v2: phone renamed to mobile by the migration step, email added by the declaration */
    rewrite_conf("[migr]\nsource = " PLUGIN_SRC "/migr_v2\n");
    k = kfix_open_at(data_dir);
    set = load(k);
    CHECK_STR(state(set, "migr"), "loaded");
    CHECK_STR(error_of(set, "migr"), "");
    const crm_type *t = crm_schema_type(k->schema, "migr.person");
    REQUIRE(t);
    CHECK(crm_type_field(t, "phone") == NULL);
    CHECK(crm_type_field(t, "mobile") != NULL);
    CHECK(crm_type_field(t, "email") != NULL);
    crm_ctx ctx;
    json_t *rec = NULL;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    REQUIRE(crm_record_get(&ctx, "migr.person", id, false, &rec) == CRM_OK);
    CHECK_STR(json_string_value(json_object_get(rec, "mobile")), "+1 555 0100");
    CHECK_STR(json_string_value(json_object_get(rec, "name")), "Ann (v2)");
    CHECK(json_object_get(rec, "phone") == NULL);
    json_decref(rec);
    CHECK_INT(query_int(k, "SELECT count(*) FROM core_plugin_migration WHERE plugin = 'migr' "
                           "AND version = '2.0.0' AND from_version = '1.0.0'"), 1);
    CHECK_INT(query_int(k, "SELECT count(*) FROM core_plugin WHERE name = 'migr' AND version = "
                           "'2.0.0'"), 1);
    /* the renamed column is usable: a new record, a filter on it */
    kfix_create(k, "migr.person", "{\"name\":\"Bo\",\"mobile\":\"+1 555 0101\",\"email\":\"bo@example.com\"}");
    crm_plugins_free(set);
    crm_kernel_close(k);

    /* a restart at v2: the migration does not run again */
    k = kfix_open_at(data_dir);
    set = load(k);
    CHECK_STR(state(set, "migr"), "loaded");
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    REQUIRE(crm_record_get(&ctx, "migr.person", id, false, &rec) == CRM_OK);
    CHECK_STR(json_string_value(json_object_get(rec, "name")), "Ann (v2)");
    json_decref(rec);
    CHECK_INT(query_int(k, "SELECT count(*) FROM core_plugin_migration"), 1);
    crm_plugins_free(set);
    crm_kernel_close(k);

    /* v3's step renames mobile to cell, then fails: refused, the rename undone in the
     * database and in the registry, the step not recorded; v2 loads again as before */
    rewrite_conf("[migr]\nsource = " PLUGIN_SRC "/migr_v3\n");
    k = kfix_open_at(data_dir);
    set = load(k);
    CHECK_STR(state(set, "migr"), "refused");
    CHECK_STR(error_of(set, "migr"),
              "migration 2.0.0 -> 3.0.0 failed: migr: step 3.0.0 fails on purpose");
    CHECK_INT(query_int(k, "SELECT count(*) FROM core_field WHERE type = 'migr.person' AND "
                           "name = 'mobile'"), 1);
    CHECK_INT(query_int(k, "SELECT count(mobile) FROM \"migr.person\""), 2);
    CHECK_INT(query_int(k, "SELECT count(*) FROM core_plugin_migration"), 1);
    crm_plugins_free(set);
    rewrite_conf("[migr]\nsource = " PLUGIN_SRC "/migr_v2\n");
    set = load(k); /* same process: the registry must hold "mobile" again */
    CHECK_STR(state(set, "migr"), "loaded");
    t = crm_schema_type(k->schema, "migr.person");
    REQUIRE(t);
    CHECK(crm_type_field(t, "mobile") != NULL);
    CHECK(crm_type_field(t, "cell") == NULL);
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    REQUIRE(crm_record_get(&ctx, "migr.person", id, false, &rec) == CRM_OK);
    CHECK_STR(json_string_value(json_object_get(rec, "mobile")), "+1 555 0100");
    json_decref(rec);
    crm_plugins_free(set);
    crm_kernel_close(k);

    /* back to v1: a downgrade, refused; its types are hidden, the data stays */
    rewrite_conf("[migr]\nsource = " PLUGIN_SRC "/migr_v1\n");
    k = kfix_open_at(data_dir);
    set = load(k);
    CHECK_STR(state(set, "migr"), "refused");
    char want[800];
    snprintf(want, sizeof want, "%s/migr_v1.so: version 1.0.0 is older than the installed 2.0.0: "
             "downgrades are refused (install 2.0.0 or newer, or restore a backup made before "
             "the upgrade)", TEST_PLUGINS);
    CHECK_STR(error_of(set, "migr"), want);
    CHECK(crm_schema_type(k->schema, "migr.person") == NULL);
    CHECK_INT(query_int(k, "SELECT count(*) FROM \"migr.person\""), 2);
    CHECK_INT(query_int(k, "SELECT count(*) FROM core_plugin WHERE version = '2.0.0'"), 1);
    crm_plugins_free(set);
    crm_kernel_close(k);
}

/* ---- Git plugins: the lock's hash is checked before dlopen (P2) ---- */

static void test_locked_plugin_sha256(void)
{
    crm_kernel *k = setup("[good]\ngit = /srv/git/good\nref = v1.4.2\n");
    const char *commit = "0123456789abcdef0123456789abcdef01234567";
    char dir[800], so[900], cmd[2000], sha[65];
    snprintf(dir, sizeof dir, "%s/plugins/good/%s", data_dir, commit);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/good.so' '%s/good.so'", dir, TEST_PLUGINS,
             dir);
    REQUIRE(system(cmd) == 0);
    snprintf(so, sizeof so, "plugins/good/%s/good.so", commit);

    /* not in the lock yet */
    crm_plugins *set = load(k);
    CHECK_STR(state(set, "good"), "refused");
    CHECK_STR(error_of(set, "good"),
              "not fetched: plugins.lock has no entry for \"good\"; run crm plugin fetch good");
    crm_plugins_free(set);

    crm_lock *lock = NULL;
    REQUIRE(crm_lock_load(data_dir, &lock) == CRM_OK);
    crm_lock_entry e = {"good", "/srv/git/good", "v1.4.2", (char *)commit, so,
                        "0000000000000000000000000000000000000000000000000000000000000000",
                        "2026-01-01T00:00:00Z"};
    crm_lock_put(lock, &e);
    REQUIRE(crm_lock_save(lock) == CRM_OK);
    set = load(k);
    CHECK_STR(state(set, "good"), "refused");
    CHECK_HAS(error_of(set, "good"), "sha256 mismatch");
    CHECK(crm_schema_type(k->schema, "good.item") == NULL);
    crm_plugins_free(set);

    char full[1600];
    snprintf(full, sizeof full, "%s/%s", data_dir, so);
    REQUIRE(crm_sha256_file(full, sha) == CRM_OK);
    e.so_sha256 = sha;
    crm_lock_put(lock, &e);
    REQUIRE(crm_lock_save(lock) == CRM_OK);
    crm_lock_free(lock);
    set = load(k);
    CHECK_STR(state(set, "good"), "loaded");
    json_t *list = crm_plugins_json(set);
    CHECK_STR(json_string_value(json_object_get(json_array_get(list, 0), "commit")), commit);
    CHECK_STR(json_string_value(json_object_get(json_array_get(list, 0), "source")),
              "/srv/git/good");
    json_decref(list);
    crm_plugins_free(set);

    /* plugins.conf moved to another ref than the lock pins: refused until fetched */
    rewrite_conf("[good]\ngit = /srv/git/good\nref = v2.0.0\n");
    set = load(k);
    CHECK_STR(state(set, "good"), "refused");
    CHECK_HAS(error_of(set, "good"), "but plugins.lock pins /srv/git/good v1.4.2");
    crm_plugins_free(set);

    /* a malformed lock stops the start (P1) */
    char lockfile[700];
    snprintf(lockfile, sizeof lockfile, "%s/plugins.lock", data_dir);
    FILE *f = fopen(lockfile, "w");
    fputs("{\"version\":1,\"plugins\":{\"good\":{\"git\":\"/srv/git/good\",\"ref\":\"v2.0.0\","
          "\"commit\":\"main\",\"so\":\"x.so\",\"so_sha256\":\"00\"}}}", f);
    fclose(f);
    crm_conf *conf = NULL;
    REQUIRE(crm_conf_load(conf_file, &conf) == CRM_OK);
    set = NULL;
    CHECK_INT(crm_plugins_load(&set, k, conf, NULL), CRM_EINVALID);
    CHECK(set == NULL);
    crm_conf_free(conf);
    crm_kernel_close(k);
}

/* ---- The SDK template, built outside the source tree ---- */

static int run(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_template_builds_out_of_tree_and_loads(void)
{
    const char *tmp = t_tmpdir();
    char dir[700], cmd[4000], out_file[800], conf_text[1200];
    snprintf(dir, sizeof dir, "%s/template", tmp);
    snprintf(out_file, sizeof out_file, "%s/out.txt", tmp);
    /* Only sdk/ is used: the plugin's Makefile finds plugin.mk through CRM_SDK. The
     * environment of the make running this test must not leak into this build. */
#define MAKE_ENV "env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS -u CFLAGS make -s"
    snprintf(cmd, sizeof cmd,
             "cp -r '%s/sdk/template' '%s' && rm -f '%s/template.so' && "
             MAKE_ENV " -C '%s' CRM_SDK='%s/sdk' OPT='%s' SAN='%s' >'%s' 2>&1",
             CRM_TEST_ROOT, dir, dir, dir, CRM_TEST_ROOT, CRM_TEST_OPT, CRM_TEST_SAN, out_file);
    CHECK_INT(run(cmd), 0);

    /* exactly one exported symbol (P8) */
    snprintf(cmd, sizeof cmd,
             "test \"$(nm -D --defined-only '%s/template.so' | awk '{print $3}' | "
             "grep -v '^_\\(_bss_start\\|edata\\|end\\|init\\|fini\\)$')\" = crm_plugin_v1", dir);
    CHECK_INT(run(cmd), 0);
    /* and no kernel symbol it would need from the host */
    snprintf(cmd, sizeof cmd, "nm -D --undefined-only '%s/template.so' | grep -q ' crm_'", dir);
    CHECK_INT(run(cmd), 1);

    snprintf(conf_text, sizeof conf_text, "[template]\nsource = %s\ngreeting = Hej\n", dir);
    const char *keep = t_dir; /* setup() makes a new temp dir: keep the build's */
    (void)keep;
    snprintf(data_dir, sizeof data_dir, "%s/var", tmp);
    snprintf(conf_file, sizeof conf_file, "%s/plugins.conf", tmp);
    rewrite_conf(conf_text);
    crm_kernel *k = kfix_open_at(data_dir);
    crm_plugins *set = load_with(k, dir);
    CHECK_STR(state(set, "template"), "loaded");
    CHECK_STR(error_of(set, "template"), "");
    CHECK(crm_schema_type(k->schema, "template.note") != NULL);
    /* its before handler sets the status */
    crm_ctx ctx;
    json_t *in = kfix_json("{\"title\":\"Buy milk\"}"), *out = NULL;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    CHECK_INT(crm_record_create(&ctx, "template.note", in, &out), CRM_OK);
    CHECK_STR(json_string_value(json_object_get(out, "status")), "open");
    json_decref(in);
    json_decref(out);
    CHECK_INT(call_lua(set, k, "template", "greeting", "[\"Ada\"]", &out), CRM_OK);
    CHECK_STR(json_string_value(out), "Hej, Ada!");
    json_decref(out);
    json_t *routes = crm_plugins_routes(set);
    CHECK_STR(json_string_value(json_array_get(routes, 0)), "GET /api/v1/x/template/summary");
    json_decref(routes);
    json_t *dirs = json_array();
    crm_plugins_each_rule_dir(set, count_cb, dirs);
    snprintf(cmd, sizeof cmd, "%s/scripts", dir);
    CHECK_STR(json_string_value(json_array_get(dirs, 0)), cmd);
    json_decref(dirs);
    CHECK_INT(crm_plugins_run_demo(set, k), CRM_OK);
    CHECK_INT(query_int(k, "SELECT count(*) FROM \"template.note\""), 4);
    crm_plugins_free(set);
    crm_kernel_close(k);

    /* plugin.mk refuses a constructor ... */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && rm -f template.so && printf '%s' >> template.c && " MAKE_ENV
             " CRM_SDK='%s/sdk' >'%s' 2>&1",
             dir, "\\nstatic void __attribute__((constructor)) early(void) {}\\n", CRM_TEST_ROOT,
             out_file);
    CHECK(run(cmd) != 0);
    snprintf(cmd, sizeof cmd, "grep -q 'constructors and destructors are not allowed' '%s'",
             out_file);
    CHECK_INT(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/template.so", dir);
    struct stat sb;
    CHECK(stat(cmd, &sb) != 0); /* no .so left behind */

    /* ... and a direct call into the kernel, at link time (-z defs) */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && cp '%s/sdk/template/template.c' . && printf '%s' >> template.c && "
             MAKE_ENV " CRM_SDK='%s/sdk' >'%s' 2>&1",
             dir, CRM_TEST_ROOT,
             "\\nint sneaky(void);\\nint sneaky(void) { return crm_error_last()->code; }\\n",
             CRM_TEST_ROOT, out_file);
    CHECK(run(cmd) != 0);
    snprintf(cmd, sizeof cmd, "grep -q 'undefined reference to .crm_error_last' '%s'", out_file);
    CHECK_INT(run(cmd), 0);
}

/* ---- Semantic versions ---- */

static bool sat(const char *range, const char *version)
{
    bool ok = false;
    if (crm_semver_satisfies(range, version, &ok) != CRM_OK) return false;
    return ok;
}

static void test_semver(void)
{
    crm_semver a, b;
    CHECK(crm_semver_parse("1.2.3", &a));
    CHECK(crm_semver_parse("1.2.3-rc.1+build.5", &b));
    CHECK(crm_semver_cmp(&b, &a) < 0); /* a pre-release precedes its release */
    CHECK(!crm_semver_parse("1.2", &a));
    CHECK(!crm_semver_parse("01.2.3", &a));
    CHECK(!crm_semver_parse("1.2.3-", &a));
    CHECK(!crm_semver_parse("v1.2.3", &a));
    CHECK(crm_semver_parse("1.0.0-alpha", &a) && crm_semver_parse("1.0.0-alpha.1", &b) &&
          crm_semver_cmp(&a, &b) < 0);
    CHECK(crm_semver_parse("1.0.0-alpha.beta", &a) && crm_semver_parse("1.0.0-beta.2", &b) &&
          crm_semver_cmp(&a, &b) < 0);
    CHECK(crm_semver_parse("1.0.0-beta.2", &a) && crm_semver_parse("1.0.0-beta.11", &b) &&
          crm_semver_cmp(&a, &b) < 0);

    CHECK(sat(">=1.0, <2", "1.4.2"));
    CHECK(!sat(">=1.0, <2", "2.0.0"));
    CHECK(!sat(">=1.0, <2", "0.9.9"));
    CHECK(sat(">1.2", "1.3.0") && !sat(">1.2", "1.2.9"));
    CHECK(sat("<=1.2", "1.2.9") && !sat("<=1.2", "1.3.0"));
    CHECK(sat("^1.2", "1.9.0") && !sat("^1.2", "2.0.0") && !sat("^1.2", "1.1.9"));
    CHECK(sat("^0.2.3", "0.2.9") && !sat("^0.2.3", "0.3.0"));
    CHECK(sat("^0.0.3", "0.0.3") && !sat("^0.0.3", "0.0.4"));
    CHECK(sat("~1.2.3", "1.2.9") && !sat("~1.2.3", "1.3.0") && !sat("~1.2.3", "1.2.2"));
    CHECK(sat("~1", "1.9.9") && !sat("~1", "2.0.0"));
    CHECK(sat("=1.0.0", "1.0.0") && !sat("=1.0.0", "1.0.1"));
    CHECK(sat("1.0", "1.0.7") && !sat("1.0", "1.1.0"));
    CHECK(sat("*", "0.0.1") && sat(NULL, "3.0.0"));
    bool ok;
    CHECK_INT(crm_semver_satisfies(">=banana", "1.0.0", &ok), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "bad version range \">=banana\"");
}

int main(void)
{
    crm_log_set_level(CRM_LOG_ERROR + 1); /* refusals are expected here */
    RUN(test_semver);
    RUN(test_broken_plugins_refused_others_load);
    RUN(test_failed_init_leaves_nothing);
    RUN(test_good_plugin_registers_everything);
    RUN(test_disabled_plugin_types_absent);
    RUN(test_upgrade_migration_and_downgrade);
    RUN(test_locked_plugin_sha256);
    RUN(test_template_builds_out_of_tree_and_loads);
    return t_finish("test_plugin");
}
