/*
 * rules_tools.c — what `crm rules check` and `crm rules test` run.
 *
 * check: parse a file as the engine would (same sandbox, same declaration
 * checks), then compare its topics, fields and date triggers with a live
 * schema, and the literal type names of crm.get/find/create/update/delete
 * calls.
 *
 * test: a test file runs in a sandboxed state of its own, with a `t` table
 * (only there: t.define_type exists for tests alone). Each t.test(name, fn)
 * gets a fresh kernel in a temporary directory, the types the file declared,
 * the rules of the rules directory loaded, and a frozen clock at
 * TEST_EPOCH; t.advance moves the clock and runs the scheduler and the
 * async deliveries on the calling thread.
 */
#include "rules_int.h"

#include "auth.h"
#include "perm.h"
#include "plugin.h"
#include "record.h"

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEST_EPOCH 1704099600 /* 2024-01-01T09:00:00Z, a Monday */
#define TEST_BUDGET_US (10 * 1000000LL)
#define TEST_MEMORY ((size_t)64 << 20)

static int read_file(const char *path, char **out, size_t *len)
{
    struct stat sb;
    FILE *fp = fopen(path, "rb");
    if (!fp) return crm_error_set(CRM_ENOTFOUND, NULL, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(fp), &sb) != 0 || sb.st_size > RULE_FILE_MAX) {
        fclose(fp);
        return crm_error_set(CRM_EINVALID, NULL, "%s: not a rule file of at most %d bytes", path,
                             RULE_FILE_MAX);
    }
    char *src = crm_malloc((size_t)sb.st_size + 1);
    *len = fread(src, 1, (size_t)sb.st_size, fp);
    src[*len] = '\0';
    fclose(fp);
    *out = src;
    return CRM_OK;
}

/* ---- check ---- */

static void problem(json_t *problems, const char *file, int line, const char *level,
                    const char *fmt, ...) CRM_PRINTF(5, 6);
static void problem(json_t *problems, const char *file, int line, const char *level,
                    const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_array_append_new(problems, json_pack("{s:s,s:i,s:s,s:s}", "file", file, "line", line,
                                              "message", msg, "level", level));
}

static bool record_event(const char *ev)
{
    return strcmp(ev, "created") == 0 || strcmp(ev, "updated") == 0 ||
           strcmp(ev, "deleted") == 0 || strcmp(ev, "restored") == 0;
}

static bool owner_known(crm_kernel *k, const char *owner)
{
    const crm_type **types;
    int n;
    bool known = strcmp(owner, "core") == 0;
    if (crm_schema_types(k->schema, &types, &n) == CRM_OK) {
        for (int i = 0; i < n && !known; i++)
            if (strcmp(types[i]->owner, owner) == 0) known = true;
        free(types);
    }
    return known;
}

static void check_topic(crm_kernel *k, const rule *ru, const char *file, json_t *problems,
                        int *errors)
{
    const char *topic = ru->topic;
    size_t n = strlen(topic);
    if (strcmp(topic, "*") == 0) return;
    if (n >= 2 && topic[n - 1] == '*') { /* "owner.*" / "owner.type.*" */
        char *prefix = crm_strndup(topic, n - 2);
        char *dot = strchr(prefix, '.');
        if (dot) *dot = '\0';
        if (!owner_known(k, prefix))
            problem(problems, file, ru->line, "warning",
                    "rule \"%s\": on = \"%s\": no type of \"%s\" is known", ru->name, topic,
                    prefix);
        free(prefix);
        return;
    }
    const char *dot = strrchr(topic, '.');
    const char *ev = dot + 1;
    char *type = crm_strndup(topic, (size_t)(dot - topic));
    const crm_type *t = crm_schema_type(k->schema, type);
    if (record_event(ev)) {
        if (!t) {
            problem(problems, file, ru->line, "error",
                    "rule \"%s\": on = \"%s\": unknown type \"%s\"", ru->name, topic, type);
            (*errors)++;
        }
    } else {
        char *owner = crm_strdup(topic);
        *strchr(owner, '.') = '\0';
        if (t || crm_schema_type(k->schema, topic)) {
            problem(problems, file, ru->line, "error",
                    "rule \"%s\": on = \"%s\": record events end in .created, .updated, .deleted "
                    "or .restored",
                    ru->name, topic);
            (*errors)++;
        } else if (!owner_known(k, owner)) {
            problem(problems, file, ru->line, "warning",
                    "rule \"%s\": on = \"%s\": not a record event and no plugin \"%s\" is known",
                    ru->name, topic, owner);
        }
        if (ru->phase == CRM_PHASE_BEFORE) {
            problem(problems, file, ru->line, "error",
                    "rule \"%s\": phase = \"before\" runs only on record events; \"%s\" is a "
                    "custom event (use after or async)",
                    ru->name, topic);
            (*errors)++;
        }
        free(owner);
    }
    for (int i = 0; t && i < ru->nchanged; i++) {
        const crm_field *f = crm_type_field(t, ru->changed[i]);
        if (!f && !crm_is_system_field(ru->changed[i])) {
            problem(problems, file, ru->line, "error",
                    "rule \"%s\": changed = \"%s\": %s has no such field", ru->name,
                    ru->changed[i], type);
            (*errors)++;
            continue;
        }
        static json_t *const *unused;
        (void)unused;
        json_t *vals[2] = {ru->from, ru->to};
        for (int v = 0; f && i == 0 && v < 2; v++) {
            if (!vals[v] || f->kind != CRM_FIELD_ENUM || !json_is_string(vals[v])) continue;
            bool ok = false;
            for (char **e = f->enum_values; e && *e; e++)
                if (strcmp(*e, json_string_value(vals[v])) == 0) ok = true;
            if (!ok) {
                problem(problems, file, ru->line, "error",
                        "rule \"%s\": %s = \"%s\": %s.%s has no such value", ru->name,
                        v ? "to" : "from", json_string_value(vals[v]), type, f->name);
                (*errors)++;
            }
        }
    }
    free(type);
}

/* crm.get/find/create/update/delete("literal.type", ...): the type must exist. */
static void check_literal_types(crm_kernel *k, const char *file, const char *src, json_t *problems,
                                int *errors)
{
    static const char *const fns[] = {"get", "find", "create", "update", "delete", NULL};
    int line = 1;
    for (const char *p = src; *p; p++) {
        if (*p == '\n') line++;
        if (strncmp(p, "crm.", 4) != 0 || (p > src && (isalnum((unsigned char)p[-1]) || p[-1] == '_')))
            continue;
        const char *q = p + 4;
        for (int i = 0; fns[i]; i++) {
            size_t n = strlen(fns[i]);
            if (strncmp(q, fns[i], n) != 0) continue;
            const char *r = q + n;
            while (*r == ' ' || *r == '\t')
                r++;
            if (*r != '(') break;
            r++;
            while (*r == ' ' || *r == '\t')
                r++;
            if (*r != '"' && *r != '\'') break;
            char quote = *r++;
            const char *end = strchr(r, quote);
            if (!end || end - r > 200) break;
            char *type = crm_strndup(r, (size_t)(end - r));
            if (!crm_schema_type(k->schema, type)) {
                problem(problems, file, line, "error", "crm.%s(\"%s\", ...): unknown type \"%s\"",
                        fns[i], type, type);
                (*errors)++;
            }
            free(type);
            break;
        }
    }
}

int crm_rules_check_file(crm_kernel *k, const char *path, json_t *problems)
{
    static const crm_rules_opts opts = CRM_RULES_OPTS_INIT;
    char *src = NULL;
    size_t len = 0;
    int errors = 0;
    if (read_file(path, &src, &len) < 0) {
        problem(problems, path, 0, "error", "%s", crm_error_last()->message);
        return 1;
    }
    rule_file *files = crm_calloc(1, sizeof *files);
    files[0] = (rule_file){crm_strdup(path), crm_strdup("site"), src, len};
    json_t *errs = json_array(), *disabled = json_array();
    ruleset *rs = rules_parse_files(NULL, files, 1, errs, disabled, &opts);
    size_t i;
    json_t *e;
    json_array_foreach(errs, i, e)
    {
        json_array_append_new(problems, json_pack("{s:O,s:O,s:O,s:s,s:O}", "file",
                                                  json_object_get(e, "file"), "line",
                                                  json_object_get(e, "line"), "message",
                                                  json_object_get(e, "message"), "level", "error",
                                                  "code", json_object_get(e, "code")));
        errors++;
    }
    for (int r = 0; k && r < rs->nrules; r++) {
        const rule *ru = rs->rules[r];
        char err[300];
        if (ru->error) continue;
        if (ru->trig == TRIG_EVENT) check_topic(k, ru, path, problems, &errors);
        if (!rules_sched_check(k, ru, err, sizeof err)) {
            problem(problems, path, ru->line, "error", "rule \"%s\": %s", ru->name, err);
            errors++;
        }
    }
    if (k) check_literal_types(k, path, rs->nfiles ? rs->files[0].source : "", problems, &errors);
    json_decref(errs);
    json_decref(disabled);
    ruleset_release(rs);
    return errors;
}

/* ---- test ---- */

typedef struct test_ctx {
    crm_kernel *k;
    crm_rules *r;
    const char *rules_dir;
    const char *path;
    json_t *types; /* [[name, fields], ...] declared by the file */
    FILE *out;
    bool verbose;
    const crm_conf *conf;   /* plugins to load into each test's database, or NULL */
    const char *plugin_dir; /* where their .so files are (NULL: the default) */
    crm_plugins *plugins;   /* this test's */
} test_ctx;

void rules_test_print(rstate *S, const char *text)
{
    test_ctx *tc = S->test;
    fprintf(tc->out, "# %s\n", text);
}

static test_ctx *tctx(lua_State *L)
{
    return rules_state_of(L)->test;
}

static crm_kernel *need_kernel(lua_State *L, const char *fn)
{
    test_ctx *tc = tctx(L);
    if (!tc->k) luaL_error(L, "%s can only be called inside t.test(name, function() ... end)", fn);
    return tc->k;
}

static int t_fail(lua_State *L, const char *fn)
{
    return luaL_error(L, "%s: %s", fn, crm_error_last()->message);
}

static json_t *t_arg_json(lua_State *L, int idx, const char *fn)
{
    char err[300];
    json_t *v = rules_to_json(L, idx, err, sizeof err, NULL);
    if (!v) luaL_error(L, "%s: %s", fn, err);
    if (!json_is_object(v) && json_is_array(v) && json_array_size(v) == 0) {
        json_decref(v);
        v = json_object();
    }
    return v;
}

/* Deliver what is pending now (async rules), on this thread. */
static void settle(crm_kernel *k)
{
    if (crm_bus_run_pending(k->bus) < 0)
        crm_log(CRM_LOG_WARN, "rules test: async delivery: %s", crm_error_last()->message);
}

static int with_user(lua_State *L, crm_kernel *k, int idx, crm_ctx *ctx, crm_principal **p)
{
    *p = NULL;
    if (!lua_isnoneornil(L, idx)) {
        lua_Integer uid = luaL_checkinteger(L, idx);
        if (crm_principal_load(k->perm, uid, p) < 0) return -1;
        crm_ctx_init(ctx, k, *p, NULL);
    } else {
        crm_ctx_init(ctx, k, crm_principal_system(), NULL);
    }
    return 0;
}

static int reload_rules(test_ctx *tc)
{
    json_t *report = NULL;
    /* the report is shown below; the engine's own log lines of it would repeat it */
    if (!tc->verbose) crm_log_set_level(CRM_LOG_ERROR);
    int rc = crm_rules_load(tc->r, &report);
    if (!tc->verbose) crm_log_set_level(CRM_LOG_WARN);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(report, "errors"), i, e)
    {
        const char *code = json_string_value(json_object_get(e, "code"));
        /* syntax errors always show; a rule whose types this test did not declare only with -v */
        if (tc->verbose || (code && strcmp(code, "rule_syntax_error") == 0))
            fprintf(tc->out, "# %s\n", json_string_value(json_object_get(e, "message")));
    }
    json_decref(report);
    return rc;
}

static int define_type(crm_kernel *k, const char *name, json_t *fields)
{
    char *owner = crm_strdup(name);
    char *dot = strchr(owner, '.');
    if (dot) *dot = '\0';
    const char *label = strrchr(name, '.') ? strrchr(name, '.') + 1 : name;
    int rc = crm_schema_define_type(k->schema, name, label, owner, fields);
    free(owner);
    return rc;
}

/* t.define_type(name, {{name=..., kind=...}, ...}) — tests only */
static int t_define_type(lua_State *L)
{
    test_ctx *tc = tctx(L);
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    json_t *fields = t_arg_json(L, 2, "t.define_type");
    if (!json_is_array(fields)) {
        json_decref(fields);
        return luaL_error(L, "t.define_type: fields must be a list of field specs");
    }
    json_array_append_new(tc->types, json_pack("[s,O]", name, fields));
    int rc = CRM_OK;
    if (tc->k) {
        rc = define_type(tc->k, name, fields);
        if (rc == CRM_OK) reload_rules(tc);
    }
    json_decref(fields);
    if (rc < 0) return t_fail(L, "t.define_type");
    return 0;
}

/* t.test(name, fn) */
static int t_test(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_getfield(L, LUA_REGISTRYINDEX, "crm.tests");
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

static int t_create(lua_State *L)
{
    crm_kernel *k = need_kernel(L, "t.create");
    const char *type = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    json_t *fields = t_arg_json(L, 2, "t.create"), *out = NULL;
    crm_ctx ctx;
    crm_principal *p;
    if (with_user(L, k, 3, &ctx, &p) < 0) {
        json_decref(fields);
        return t_fail(L, "t.create");
    }
    int rc = crm_record_create(&ctx, type, fields, &out);
    json_decref(fields);
    crm_principal_free(p);
    if (rc < 0) return t_fail(L, "t.create");
    settle(k);
    return rules_push_owned(L, out);
}

static int t_update(lua_State *L)
{
    crm_kernel *k = need_kernel(L, "t.update");
    const char *type = luaL_checkstring(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    json_t *patch = t_arg_json(L, 3, "t.update"), *out = NULL;
    crm_ctx ctx;
    crm_principal *p;
    if (with_user(L, k, 4, &ctx, &p) < 0) {
        json_decref(patch);
        return t_fail(L, "t.update");
    }
    int rc = crm_record_update(&ctx, type, id, patch, 0, &out);
    json_decref(patch);
    crm_principal_free(p);
    if (rc < 0) return t_fail(L, "t.update");
    settle(k);
    return rules_push_owned(L, out);
}

static int t_delete(lua_State *L)
{
    crm_kernel *k = need_kernel(L, "t.delete");
    const char *type = luaL_checkstring(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    crm_ctx ctx;
    crm_principal *p;
    if (with_user(L, k, 3, &ctx, &p) < 0) return t_fail(L, "t.delete");
    int rc = crm_record_delete(&ctx, type, id, 0);
    crm_principal_free(p);
    if (rc < 0) return t_fail(L, "t.delete");
    settle(k);
    return 0;
}

static int t_get(lua_State *L)
{
    crm_kernel *k = need_kernel(L, "t.get");
    const char *type = luaL_checkstring(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    crm_ctx ctx;
    json_t *out = NULL;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    int rc = crm_record_get(&ctx, type, id, false, &out);
    if (rc == CRM_ENOTFOUND) return rules_push_owned(L, NULL);
    if (rc < 0) return t_fail(L, "t.get");
    return rules_push_owned(L, out);
}

/* t.find(type [, {field = value}]) -> list (up to 1000) */
static int t_find(lua_State *L)
{
    crm_kernel *k = need_kernel(L, "t.find");
    const char *type = luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    /* values as text first (may raise), then the query (may not) */
    lua_newtable(L); /* 3: key -> text */
    if (!lua_isnil(L, 2)) {
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "t.find: names are strings");
            if (lua_type(L, -1) == LUA_TBOOLEAN)
                lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false");
            else if (lua_type(L, -1) == LUA_TNUMBER || lua_type(L, -1) == LUA_TSTRING)
                lua_pushstring(L, lua_tostring(L, -1));
            else
                return luaL_error(L, "t.find: filter values are strings, numbers or booleans");
            lua_pushvalue(L, -3);
            lua_insert(L, -2);
            lua_rawset(L, 3);
            lua_pop(L, 1);
        }
    }
    crm_query q;
    crm_query_init(&q);
    int rc = crm_query_add(&q, "limit", "1000");
    lua_pushnil(L);
    while (lua_next(L, 3)) {
        if (rc == CRM_OK) rc = crm_query_add(&q, lua_tostring(L, -2), lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    crm_ctx ctx;
    json_t *out = NULL;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    if (rc == CRM_OK) rc = crm_record_find(&ctx, type, &q, &out);
    crm_query_free(&q);
    if (rc < 0) return t_fail(L, "t.find");
    json_t *data = json_incref(json_object_get(out, "data"));
    json_decref(out);
    return rules_push_owned(L, data);
}

static int t_history(lua_State *L)
{
    crm_kernel *k = need_kernel(L, "t.history");
    const char *type = luaL_checkstring(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    crm_ctx ctx;
    json_t *out = NULL;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    if (crm_record_history(&ctx, type, id, &out) < 0) return t_fail(L, "t.history");
    return rules_push_owned(L, out);
}

/* t.user(username [, admin]) -> id */
static int t_user(lua_State *L)
{
    crm_kernel *k = need_kernel(L, "t.user");
    const char *name = luaL_checkstring(L, 1);
    int64_t id = 0;
    if (crm_user_create(k, name, "password-for-tests", lua_toboolean(L, 2), name, &id) < 0)
        return t_fail(L, "t.user");
    lua_pushinteger(L, id);
    return 1;
}

static int t_tick(lua_State *L, crm_kernel *k, int64_t now)
{
    crm_clock_set(now);
    if (crm_sched_tick(k->sched, now) < 0)
        crm_log(CRM_LOG_WARN, "rules test: scheduler: %s", crm_error_last()->message);
    settle(k);
    (void)L;
    return 0;
}

/* t.advance(seconds): move the clock, run the scheduler and async deliveries */
static int t_advance(lua_State *L)
{
    crm_kernel *k = need_kernel(L, "t.advance");
    lua_Integer s = luaL_checkinteger(L, 1);
    if (s < 0) return luaL_error(L, "t.advance: the clock only moves forward");
    return t_tick(L, k, crm_now() + s);
}

/* t.set_time("2024-02-28T09:00:00Z") */
static int t_set_time(lua_State *L)
{
    crm_kernel *k = need_kernel(L, "t.set_time");
    int64_t t;
    bool date_only;
    if (!crm_time_parse(luaL_checkstring(L, 1), &t, &date_only))
        return luaL_error(L, "t.set_time: use \"YYYY-MM-DDTHH:MM:SSZ\"");
    if (t < crm_now())
        return luaL_error(L, "t.set_time: the clock only moves forward");
    return t_tick(L, k, t);
}

static int t_now(lua_State *L)
{
    lua_pushinteger(L, crm_now());
    return 1;
}

static json_t *events_of(crm_kernel *k, const char *topic)
{
    json_t *all = NULL, *out = json_array();
    int64_t after = 0;
    for (;;) {
        if (crm_bus_events(k->bus, after, 1000, &all) < 0) break;
        size_t i, n = json_array_size(all);
        json_t *e;
        json_array_foreach(all, i, e)
        {
            after = json_integer_value(json_object_get(e, "seq"));
            if (!topic || strcmp(json_string_value(json_object_get(e, "topic")), topic) == 0) {
                json_t *p = json_object_get(e, "payload");
                json_array_append(out, p ? p : e);
            }
        }
        json_decref(all);
        if (n < 1000) break;
    }
    return out;
}

/* t.mail() -> the mail queued so far (crm.mail.queue payloads) */
static int t_mail(lua_State *L)
{
    crm_kernel *k = need_kernel(L, "t.mail");
    return rules_push_owned(L, events_of(k, "core.mail.queued"));
}

/* t.events(topic) -> payloads of custom events emitted with that topic */
static int t_events(lua_State *L)
{
    crm_kernel *k = need_kernel(L, "t.events");
    return rules_push_owned(L, events_of(k, luaL_checkstring(L, 1)));
}

/* t.rules() -> the engine's rule list (state and counters) */
static int t_rules(lua_State *L)
{
    test_ctx *tc = tctx(L);
    need_kernel(L, "t.rules");
    json_t *j = crm_rules_json(tc->r);
    json_t *data = json_incref(json_object_get(j, "data"));
    json_decref(j);
    return rules_push_owned(L, data);
}

static void describe(lua_State *L, int idx, char *buf, size_t len)
{
    if (lua_type(L, idx) == LUA_TTABLE) {
        char err[100];
        json_t *v = rules_to_json(L, idx, err, sizeof err, NULL);
        char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
        snprintf(buf, len, "%s", s ? s : "(table)");
        free(s);
        json_decref(v);
    } else if (lua_type(L, idx) == LUA_TSTRING) {
        snprintf(buf, len, "\"%s\"", lua_tostring(L, idx));
    } else {
        rules_error_text(L, idx, buf, len);
    }
}

static bool values_equal(lua_State *L, int a, int b)
{
    if (lua_type(L, a) == LUA_TTABLE && lua_type(L, b) == LUA_TTABLE) {
        char err[100];
        json_t *x = rules_to_json(L, a, err, sizeof err, NULL);
        json_t *y = rules_to_json(L, b, err, sizeof err, NULL);
        bool eq = x && y && json_equal(x, y);
        json_decref(x);
        json_decref(y);
        return eq;
    }
    return lua_rawequal(L, a, b);
}

/* t.assert_eq(actual, expected [, what]) */
static int t_assert_eq(lua_State *L)
{
    luaL_checkany(L, 2);
    if (values_equal(L, 1, 2)) return 0;
    char a[400], b[400];
    describe(L, 1, a, sizeof a);
    describe(L, 2, b, sizeof b);
    return luaL_error(L, "%s%sgot %s, expected %s", luaL_optstring(L, 3, ""),
                      lua_isnoneornil(L, 3) ? "" : ": ", a, b);
}

/* t.assert(cond [, what]) */
static int t_assert(lua_State *L)
{
    if (lua_toboolean(L, 1)) return 0;
    return luaL_error(L, "assertion failed%s%s", lua_isnoneornil(L, 2) ? "" : ": ",
                      luaL_optstring(L, 2, ""));
}

/* t.assert_error(fn, text) -> the message; fails unless fn raises an error containing text */
static int t_assert_error(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    const char *want = luaL_optstring(L, 2, "");
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 0, 0, 0) == LUA_OK)
        return luaL_error(L, "expected an error%s%s, but there was none", *want ? " containing " : "",
                          want);
    char msg[700];
    rules_error_text(L, -1, msg, sizeof msg);
    if (!strstr(msg, want)) return luaL_error(L, "expected an error containing \"%s\", got \"%s\"", want, msg);
    lua_pushstring(L, msg);
    return 1;
}

static const luaL_Reg t_functions[] = {
    {"define_type", t_define_type}, {"test", t_test},         {"create", t_create},
    {"update", t_update},           {"delete", t_delete},     {"get", t_get},
    {"find", t_find},               {"history", t_history},   {"user", t_user},
    {"advance", t_advance},         {"set_time", t_set_time}, {"now", t_now},
    {"mail", t_mail},               {"events", t_events},     {"rules", t_rules},
    {"assert_eq", t_assert_eq},     {"assert", t_assert},     {"assert_error", t_assert_error},
    {NULL, NULL},
};

static int install_t(lua_State *L)
{
    rstate *S = lua_touserdata(L, 1);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "crm.tests");
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->base_ref);
    lua_newtable(L);
    luaL_setfuncs(L, t_functions, 0);
    rules_push_proxy(L, -1, "t");
    lua_setfield(L, -3, "t");
    lua_pop(L, 2);
    return 0;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static char *default_rules_dir(const char *path)
{
    char *copy = crm_strdup(path);
    char *dir = crm_strdup(dirname(copy));
    free(copy);
    copy = crm_strdup(dir);
    const char *base = basename(copy);
    if (strcmp(base, "tests") == 0) {
        char *up = crm_strdup(dir);
        char *parent = crm_strdup(dirname(up));
        free(up);
        free(dir);
        dir = parent;
    }
    free(copy);
    return dir;
}

static int register_lua_function(void *arg, const char *plugin, const char *name, crm_lua_fn fn,
                                 void *udata)
{
    return crm_rules_register_function(arg, plugin, name, fn, udata);
}

/* One t.test: a fresh kernel and engine around the function at the top of L. */
static bool run_one(rstate *S, test_ctx *tc, const char *name, char *msg, size_t msglen)
{
    char dir[] = "/tmp/crm-rules-test-XXXXXX";
    bool ok = false;
    if (!mkdtemp(dir)) {
        snprintf(msg, msglen, "cannot make a temporary directory: %s", strerror(errno));
        lua_pop(S->L, 1);
        return false;
    }
    crm_kernel_opts ko = CRM_KERNEL_OPTS_INIT;
    ko.data_dir = dir;
    ko.synchronous = 0;
    crm_clock_set(TEST_EPOCH);
    if (crm_kernel_open(&tc->k, &ko) < 0) {
        snprintf(msg, msglen, "cannot open a kernel: %s", crm_error_last()->message);
        lua_pop(S->L, 1);
        goto done;
    }
    size_t i;
    json_t *t;
    json_array_foreach(tc->types, i, t)
    {
        if (define_type(tc->k, json_string_value(json_array_get(t, 0)), json_array_get(t, 1)) < 0) {
            snprintf(msg, msglen, "t.define_type(\"%s\"): %s",
                     json_string_value(json_array_get(t, 0)), crm_error_last()->message);
            lua_pop(S->L, 1);
            goto done;
        }
    }
    if (tc->conf) { /* the plugins' types, handlers and Lua functions, as in a server */
        crm_plugins_opts po = CRM_PLUGINS_OPTS_INIT;
        po.plugin_dir = tc->plugin_dir;
        po.data_dir = dir;
        if (crm_plugins_load(&tc->plugins, tc->k, tc->conf, &po) < 0) {
            snprintf(msg, msglen, "cannot load the plugins: %s", crm_error_last()->message);
            lua_pop(S->L, 1);
            goto done;
        }
    }
    if (crm_rules_open(&tc->r, tc->k, NULL) < 0 || crm_rules_add_dir(tc->r, tc->rules_dir, "site") < 0 ||
        (tc->plugins &&
         crm_plugins_each_lua_function(tc->plugins, register_lua_function, tc->r) < 0)) {
        snprintf(msg, msglen, "cannot open the rule engine: %s", crm_error_last()->message);
        lua_pop(S->L, 1);
        goto done;
    }
    reload_rules(tc);
    crm_sched_tick(tc->k->sched, crm_now()); /* schedules start from now */
    if (rules_state_pcall(S, S->L, 0, TEST_BUDGET_US, msg, msglen) == CRM_OK) ok = true;
    (void)name;
done:
    crm_rules_close(tc->r);
    tc->r = NULL;
    if (tc->plugins) crm_plugins_free(tc->plugins);
    tc->plugins = NULL;
    crm_kernel_close(tc->k);
    tc->k = NULL;
    crm_clock_set(-1);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return ok;
}

int crm_rules_test_file(const char *path, const char *rules_dir, bool verbose, FILE *out,
                        crm_rules_test_result *res)
{
    return crm_rules_test_file_with(path, rules_dir, verbose, out, res, NULL, NULL);
}

int crm_rules_test_file_with(const char *path, const char *rules_dir, bool verbose, FILE *out,
                             crm_rules_test_result *res, const crm_conf *conf,
                             const char *plugin_dir)
{
    char *src = NULL, *dir = NULL;
    size_t len;
    int rc = read_file(path, &src, &len);
    if (rc < 0) {
        fprintf(out, "not ok %s: %s\n", path, crm_error_last()->message);
        res->failed++;
        return rc;
    }
    dir = rules_dir ? crm_strdup(rules_dir) : default_rules_dir(path);
    test_ctx tc = {.rules_dir = dir, .path = path, .types = json_array(), .out = out,
                   .verbose = verbose, .conf = conf, .plugin_dir = plugin_dir};
    rstate *S = rules_state_new(NULL, TEST_MEMORY, 1000, TEST_BUDGET_US);
    char msg[700];
    if (!S) {
        fprintf(out, "not ok %s: %s\n", path, crm_error_last()->message);
        res->failed++;
        rc = CRM_EINTERNAL;
        goto done;
    }
    S->test = &tc;
    lua_pushcfunction(S->L, install_t);
    lua_pushlightuserdata(S->L, S);
    if (lua_pcall(S->L, 1, 0, 0) != LUA_OK) {
        fprintf(out, "not ok %s: cannot prepare the test state\n", path);
        lua_pop(S->L, 1);
        res->failed++;
        rc = CRM_EINTERNAL;
        goto done;
    }
    rule_loader ld = {.file = 0, .path = path, .owner = "test"};
    int line;
    if ((rc = rules_state_load_file(S, &ld, src, len, &line)) < 0) {
        fprintf(out, "not ok %s: %s\n", path, crm_error_last()->message);
        res->failed++;
        goto done;
    }
    lua_getfield(S->L, LUA_REGISTRYINDEX, "crm.tests");
    int ntests = (int)lua_rawlen(S->L, -1);
    if (ntests == 0) fprintf(out, "# %s: no t.test(...) in this file\n", path);
    for (int i = 1; i <= ntests; i++) {
        lua_rawgeti(S->L, -1, i);
        lua_rawgeti(S->L, -1, 1);
        char name[300];
        snprintf(name, sizeof name, "%s", lua_tostring(S->L, -1));
        lua_pop(S->L, 1);
        lua_rawgeti(S->L, -1, 2); /* the function, consumed by run_one */
        lua_remove(S->L, -2);
        msg[0] = '\0';
        if (run_one(S, &tc, name, msg, sizeof msg)) {
            res->passed++;
            fprintf(out, "ok %s: %s\n", path, name);
        } else {
            res->failed++;
            fprintf(out, "not ok %s: %s\n  %s\n", path, name, msg);
        }
        fflush(out);
    }
    lua_pop(S->L, 1);
    rc = CRM_OK;
done:
    if (S) {
        S->test = NULL;
        rules_state_free(S);
    }
    json_decref(tc.types);
    free(dir);
    free(src);
    return rc;
}
