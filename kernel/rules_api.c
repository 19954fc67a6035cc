/*
 * rules_api.c — the `crm` table a rule calls (documented in sdk/RULES.md).
 *
 * Every function works on the current run (rstate.run): its context carries
 * system authority, the history "via" of the rule and the cascade depth of
 * the event that triggered it, so a rule's writes trigger rules again only
 * within the bus's bound. The first write of a run opens the run's savepoint
 * (rolled back when the run fails or is stopped).
 *
 * A kernel error becomes a Lua error "<file>:<line>: crm.create: <message>";
 * the run remembers its code so that, uncaught, it is answered with the same
 * code where that matters (a nested rule's rejection, timeout, a busy
 * database). JSON results are parked in rstate.hold while they are pushed,
 * so a memory error while pushing cannot leak them.
 */
#include "rules_int.h"

#include "record.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static rule_run *need_run(lua_State *L, const char *fn)
{
    rstate *S = rules_state_of(L);
    if (!S->run) luaL_error(L, "%s can only be called while a rule runs", fn);
    return S->run;
}

static void where(lua_State *L, char *buf, size_t len)
{
    lua_Debug ar;
    buf[0] = '\0';
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "Sl", &ar);
        if (ar.currentline > 0) {
            snprintf(buf, len, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
}

/* Raise the kernel's last error as a Lua error, remembering its code for the run. */
static int api_fail(lua_State *L, rule_run *run, const char *fn)
{
    const crm_error *e = crm_error_last();
    char pos[200];
    where(L, pos, sizeof pos);
    snprintf(run->api_msg, sizeof run->api_msg, "%s%s: %s", pos, fn,
             e->message && *e->message ? e->message : "failed");
    run->api_code = e->code ? e->code : CRM_EINTERNAL;
    snprintf(run->api_name, sizeof run->api_name, "%s", e->name ? e->name : "");
    snprintf(run->api_field, sizeof run->api_field, "%s", e->field ? e->field : "");
    lua_pushstring(L, run->api_msg);
    return lua_error(L);
}

int rules_push_owned(lua_State *L, json_t *v)
{
    rstate *S = rules_state_of(L);
    json_decref(S->hold);
    S->hold = v;
    if (v)
        rules_push_json(L, v);
    else
        lua_pushnil(L);
    S->hold = NULL;
    json_decref(v);
    return 1;
}

static json_t *arg_json(lua_State *L, int idx, const char *fn, const char *what)
{
    char err[300];
    bool deep = false;
    json_t *v = rules_to_json(L, idx, err, sizeof err, &deep);
    if (!v) {
        if (deep) {
            rule_run *run = rules_state_of(L)->run;
            if (run) {
                run->fail_code = CRM_ELIMIT;
                snprintf(run->fail_name, sizeof run->fail_name, "rule_result_too_deep");
                snprintf(run->fail_msg, sizeof run->fail_msg, "%s: %s: %s", fn, what, err);
            }
        }
        luaL_error(L, "%s: %s: %s", fn, what, err);
    }
    return v;
}

int rules_api_begin_write(rule_run *run)
{
    if (run->tx_open) return CRM_OK;
    int rc = crm_tx_begin(crm_ctx_conn(&run->ctx));
    if (rc == CRM_OK) run->tx_open = true;
    return rc;
}

static int64_t check_id(lua_State *L, int idx, const char *fn)
{
    lua_Integer id;
    int isnum;
    id = lua_tointegerx(L, idx, &isnum);
    if (!isnum || id < 1) luaL_error(L, "%s: the id must be a positive whole number", fn);
    return (int64_t)id;
}

/* crm.get(type, id) -> record or nil */
static int api_get(lua_State *L)
{
    rule_run *run = need_run(L, "crm.get");
    const char *type = luaL_checkstring(L, 1);
    int64_t id = check_id(L, 2, "crm.get");
    json_t *out = NULL;
    int rc = crm_record_get(&run->ctx, type, id, false, &out);
    if (rc == CRM_ENOTFOUND) return rules_push_owned(L, NULL);
    if (rc < 0) return api_fail(L, run, "crm.get");
    return rules_push_owned(L, out);
}

/* A scalar filter value as query-string text into buf; false when not a scalar. */
static bool scalar_text(lua_State *L, int idx, crm_buf *buf)
{
    char num[64];
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        crm_buf_puts(buf, lua_tostring(L, idx));
        return true;
    case LUA_TBOOLEAN:
        crm_buf_puts(buf, lua_toboolean(L, idx) ? "true" : "false");
        return true;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, idx));
        else
            snprintf(num, sizeof num, "%.17g", lua_tonumber(L, idx));
        crm_buf_puts(buf, num);
        return true;
    default:
        return false;
    }
}

static bool is_option(const char *key)
{
    return strcmp(key, "limit") == 0 || strcmp(key, "sort") == 0;
}

/*
 * crm.find(type, {field = value, ["field__op"] = value}, {limit = N, sort = "-a,b"}) -> list
 * Checked in a first pass that may raise; the query is built in a second that cannot,
 * so a Lua error never skips crm_query_free.
 */
static int api_find(lua_State *L)
{
    rule_run *run = need_run(L, "crm.find");
    const char *type = luaL_checkstring(L, 1);
    crm_query q;
    json_t *out = NULL;
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    for (int t = 2; t <= 3; t++) {
        if (lua_isnil(L, t)) continue;
        lua_pushnil(L);
        while (lua_next(L, t)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                return luaL_error(L, "crm.find: filter and option names must be strings");
            const char *key = lua_tostring(L, -2);
            if (t == 3 && !is_option(key))
                return luaL_error(L, "crm.find: unknown option \"%s\" (limit, sort)", key);
            if (t == 2 && (is_option(key) || strcmp(key, "cursor") == 0 ||
                           strcmp(key, "fields") == 0 || strcmp(key, "count") == 0 ||
                           strcmp(key, "deleted") == 0))
                return luaL_error(L, "crm.find: \"%s\" is an option: pass it in the third table",
                                  key);
            int ty = lua_type(L, -1);
            bool ok = ty == LUA_TSTRING || ty == LUA_TNUMBER || ty == LUA_TBOOLEAN;
            if (ty == LUA_TTABLE && t == 2) {
                ok = true;
                int n = (int)lua_rawlen(L, -1);
                for (int i = 1; i <= n; i++) {
                    int ety = lua_rawgeti(L, -1, i);
                    lua_pop(L, 1);
                    if (ety != LUA_TSTRING && ety != LUA_TNUMBER && ety != LUA_TBOOLEAN) ok = false;
                }
            }
            if (!ok)
                return luaL_error(L,
                                  "crm.find: \"%s\" must be a string, number or boolean (or a "
                                  "list of them for __in)",
                                  key);
            lua_pop(L, 1);
        }
    }
    crm_query_init(&q);
    int rc = CRM_OK;
    for (int t = 2; t <= 3 && rc == CRM_OK; t++) {
        if (lua_isnil(L, t)) continue;
        lua_pushnil(L);
        while (rc == CRM_OK && lua_next(L, t)) {
            crm_buf val = CRM_BUF_INIT;
            if (lua_type(L, -1) == LUA_TTABLE) {
                int n = (int)lua_rawlen(L, -1);
                for (int i = 1; i <= n; i++) {
                    lua_rawgeti(L, -1, i);
                    if (i > 1) crm_buf_putc(&val, ',');
                    scalar_text(L, -1, &val);
                    lua_pop(L, 1);
                }
            } else {
                scalar_text(L, -1, &val);
            }
            rc = crm_query_add(&q, lua_tostring(L, -2), crm_buf_str(&val));
            crm_buf_free(&val);
            lua_pop(L, 1);
        }
        if (rc != CRM_OK) lua_pop(L, 1); /* the key lua_next left */
    }
    if (rc == CRM_OK) rc = crm_record_find(&run->ctx, type, &q, &out);
    crm_query_free(&q);
    if (rc < 0) return api_fail(L, run, "crm.find");
    json_t *data = json_incref(json_object_get(out, "data"));
    json_decref(out);
    return rules_push_owned(L, data ? data : json_array());
}

/* crm.create(type, fields) -> record */
static int api_create(lua_State *L)
{
    rule_run *run = need_run(L, "crm.create");
    const char *type = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    json_t *fields = arg_json(L, 2, "crm.create", "fields");
    if (!json_is_object(fields)) {
        json_decref(fields);
        fields = json_object(); /* {} reads as an empty object */
    }
    json_t *out = NULL;
    int rc = rules_api_begin_write(run);
    if (rc == CRM_OK) rc = crm_record_create(&run->ctx, type, fields, &out);
    json_decref(fields);
    if (rc < 0) return api_fail(L, run, "crm.create");
    return rules_push_owned(L, out);
}

/* crm.update(type, id, patch) -> record */
static int api_update(lua_State *L)
{
    rule_run *run = need_run(L, "crm.update");
    const char *type = luaL_checkstring(L, 1);
    int64_t id = check_id(L, 2, "crm.update");
    luaL_checktype(L, 3, LUA_TTABLE);
    json_t *patch = arg_json(L, 3, "crm.update", "patch");
    if (!json_is_object(patch)) {
        json_decref(patch);
        patch = json_object();
    }
    json_t *out = NULL;
    int rc = rules_api_begin_write(run);
    if (rc == CRM_OK) rc = crm_record_update(&run->ctx, type, id, patch, 0, &out);
    json_decref(patch);
    if (rc < 0) return api_fail(L, run, "crm.update");
    return rules_push_owned(L, out);
}

/* crm.delete(type, id) -> true */
static int api_delete(lua_State *L)
{
    rule_run *run = need_run(L, "crm.delete");
    const char *type = luaL_checkstring(L, 1);
    int64_t id = check_id(L, 2, "crm.delete");
    int rc = rules_api_begin_write(run);
    if (rc == CRM_OK) rc = crm_record_delete(&run->ctx, type, id, 0);
    if (rc < 0) return api_fail(L, run, "crm.delete");
    lua_pushboolean(L, 1);
    return 1;
}

/* crm.reject([field,] message): refuse the change being written (before phase) */
static int api_reject(lua_State *L)
{
    rule_run *run = need_run(L, "crm.reject");
    const char *field = NULL, *message;
    if (lua_gettop(L) >= 2) {
        field = luaL_checkstring(L, 1);
        message = luaL_checkstring(L, 2);
    } else {
        message = luaL_checkstring(L, 1);
    }
    if (run->phase != CRM_PHASE_BEFORE || !run->ev)
        return luaL_error(L, "crm.reject: only rules with phase = \"before\" can refuse a change");
    run->rejected = true;
    snprintf(run->reject_field, sizeof run->reject_field, "%s", field ? field : "");
    snprintf(run->reject_msg, sizeof run->reject_msg, "%s", message);
    lua_pushfstring(L, "rejected: %s", message);
    return lua_error(L);
}

/* crm.emit(topic [, payload]) */
static int api_emit(lua_State *L)
{
    rule_run *run = need_run(L, "crm.emit");
    const char *topic = luaL_checkstring(L, 1);
    json_t *payload = lua_isnoneornil(L, 2) ? json_object() : arg_json(L, 2, "crm.emit", "payload");
    int rc = rules_api_begin_write(run);
    if (rc == CRM_OK) rc = crm_bus_emit(&run->ctx, topic, payload);
    json_decref(payload);
    if (rc < 0) return api_fail(L, run, "crm.emit");
    return 0;
}

/* crm.log(...): one line tagged with the rule; tables as JSON */
static int api_log(lua_State *L)
{
    need_run(L, "crm.log");
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        char num[64];
        if (i > 1) luaL_addchar(&b, ' ');
        switch (lua_type(L, i)) {
        case LUA_TSTRING:
            lua_pushvalue(L, i);
            luaL_addvalue(&b);
            break;
        case LUA_TNUMBER:
            if (lua_isinteger(L, i))
                snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, i));
            else
                snprintf(num, sizeof num, "%.14g", lua_tonumber(L, i));
            luaL_addstring(&b, num);
            break;
        case LUA_TBOOLEAN:
            luaL_addstring(&b, lua_toboolean(L, i) ? "true" : "false");
            break;
        case LUA_TNIL:
            luaL_addstring(&b, "nil");
            break;
        case LUA_TTABLE: {
            char err[200];
            json_t *v = rules_to_json(L, i, err, sizeof err, NULL);
            char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            json_decref(v);
            if (text) {
                lua_pushstring(L, text); /* may raise: free first */
                free(text);
                luaL_addvalue(&b);
            } else {
                luaL_addstring(&b, "(table)");
            }
            break;
        }
        default:
            luaL_addstring(&b, lua_typename(L, lua_type(L, i)));
        }
    }
    luaL_pushresult(&b);
    rules_api_log(rules_state_of(L), CRM_LOG_INFO, lua_tostring(L, -1));
    return 0;
}

/* crm.now() -> seconds since the epoch (UTC) */
static int api_now(lua_State *L)
{
    lua_pushinteger(L, crm_now());
    return 1;
}

static int64_t opt_time(lua_State *L, int idx, const char *fn)
{
    if (lua_isnoneornil(L, idx)) return crm_now();
    int isnum;
    lua_Integer t = lua_tointegerx(L, idx, &isnum);
    if (!isnum) luaL_error(L, "%s: expects seconds since the epoch (crm.now())", fn);
    return (int64_t)t;
}

/* crm.date([t]) -> "YYYY-MM-DD" */
static int api_date(lua_State *L)
{
    char out[11];
    crm_date_format(opt_time(L, 1, "crm.date"), out);
    lua_pushstring(L, out);
    return 1;
}

/* crm.datetime([t]) -> "YYYY-MM-DDTHH:MM:SSZ" */
static int api_datetime(lua_State *L)
{
    char out[21];
    crm_time_format(opt_time(L, 1, "crm.datetime"), out);
    lua_pushstring(L, out);
    return 1;
}

/* crm.time("2024-05-01" | "2024-05-01T09:00:00Z") -> seconds, or nil for bad text */
static int api_time(lua_State *L)
{
    int64_t t;
    bool date_only;
    if (!crm_time_parse(luaL_checkstring(L, 1), &t, &date_only)) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, t);
    return 1;
}

/* crm.mail.queue{to=, template=, subject=, body=, record=} */
static int api_mail_queue(lua_State *L)
{
    rule_run *run = need_run(L, "crm.mail.queue");
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    static const char *const keys[] = {"to", "template", "subject", "body", "record", "cc",
                                       "data", NULL};
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        bool known = false;
        for (int i = 0; keys[i] && lua_type(L, -1) == LUA_TSTRING; i++)
            if (strcmp(lua_tostring(L, -1), keys[i]) == 0) known = true;
        if (!known)
            return luaL_error(L, "crm.mail.queue: unknown key %s (to, template, subject, body, "
                                 "record, cc, data)",
                              lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
    }
    lua_getfield(L, 1, "to");
    const char *to = lua_tostring(L, -1);
    if (lua_type(L, -1) != LUA_TSTRING || !strchr(to, '@'))
        return luaL_error(L, "crm.mail.queue: to must be an e-mail address");
    lua_pop(L, 1);
    lua_getfield(L, 1, "template");
    bool has_template = lua_type(L, -1) == LUA_TSTRING;
    lua_pop(L, 1);
    lua_getfield(L, 1, "subject");
    bool has_subject = lua_type(L, -1) == LUA_TSTRING;
    lua_pop(L, 1);
    if (!has_template && !has_subject)
        return luaL_error(L, "crm.mail.queue: give a template or a subject (and body)");
    json_t *payload = arg_json(L, 1, "crm.mail.queue", "message");
    json_object_set_new(payload, "rule", json_string(run->rule->name));
    int rc = rules_api_begin_write(run);
    if (rc == CRM_OK) rc = crm_bus_emit(&run->ctx, "core.mail.queued", payload);
    json_decref(payload);
    if (rc < 0) return api_fail(L, run, "crm.mail.queue");
    return 0;
}

/* crm.<ns>.<name>(...) — a plugin's function */
static int api_plugin_fn(lua_State *L)
{
    const rule_fn *f = lua_touserdata(L, lua_upvalueindex(1));
    char fname[160];
    snprintf(fname, sizeof fname, "crm.%s.%s", f->ns, f->name);
    rule_run *run = need_run(L, fname);
    int n = lua_gettop(L);
    json_t *args = json_array();
    rstate *S = rules_state_of(L);
    for (int i = 1; i <= n; i++) {
        char err[300];
        bool deep = false;
        json_t *v = rules_to_json(L, i, err, sizeof err, &deep);
        if (!v) {
            json_decref(args);
            if (deep) {
                run->fail_code = CRM_ELIMIT;
                snprintf(run->fail_name, sizeof run->fail_name, "rule_result_too_deep");
                snprintf(run->fail_msg, sizeof run->fail_msg, "%s: argument %d: %s", fname, i,
                         err);
            }
            return luaL_error(L, "%s: argument %d: %s", fname, i, err);
        }
        json_array_append_new(args, v);
    }
    json_t *result = NULL;
    int rc = rules_api_begin_write(run);
    if (rc == CRM_OK) {
        crm_error_clear();
        rc = f->fn(&run->ctx, args, &result, f->udata);
        if (rc != CRM_OK && crm_error_last()->code == CRM_OK)
            crm_error_set(rc < 0 ? rc : CRM_EINTERNAL, NULL, "%s failed (code %d)", fname, rc);
    }
    json_decref(args);
    if (rc != CRM_OK) {
        json_decref(result);
        return api_fail(L, run, fname);
    }
    (void)S;
    return rules_push_owned(L, result);
}

static const luaL_Reg crm_functions[] = {
    {"get", api_get},           {"find", api_find},     {"create", api_create},
    {"update", api_update},     {"delete", api_delete}, {"reject", api_reject},
    {"emit", api_emit},         {"log", api_log},       {"now", api_now},
    {"date", api_date},         {"datetime", api_datetime}, {"time", api_time},
    {NULL, NULL},
};

void rules_api_push_crm(lua_State *L, rstate *S, rule_fn *fns)
{
    (void)S;
    lua_newtable(L); /* the real crm table */
    int crm = lua_gettop(L);
    luaL_setfuncs(L, crm_functions, 0);
    lua_newtable(L);
    lua_pushcfunction(L, api_mail_queue);
    lua_setfield(L, -2, "queue");
    rules_push_proxy(L, -1, "crm.mail");
    lua_setfield(L, crm, "mail");
    lua_pop(L, 1);
    /* plugin namespaces: one table per namespace, read-only */
    lua_newtable(L);
    int spaces = lua_gettop(L);
    for (rule_fn *f = fns; f; f = f->next) {
        if (lua_getfield(L, spaces, f->ns) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, spaces, f->ns);
        }
        lua_pushlightuserdata(L, f);
        lua_pushcclosure(L, api_plugin_fn, 1);
        lua_setfield(L, -2, f->name);
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, spaces)) {
        char name[80];
        snprintf(name, sizeof name, "crm.%s", lua_tostring(L, -2));
        rules_push_proxy(L, -1, name);
        lua_pushvalue(L, -3);
        lua_insert(L, -2);
        lua_settable(L, crm);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    rules_push_proxy(L, crm, "crm");
    lua_remove(L, crm);
}

void rules_api_log(rstate *S, int level, const char *text)
{
    if (S->test) {
        rules_test_print(S, text);
    } else if (S->run && S->r) {
        rules_log(S->r, S->run->rule, level, text);
    } else if (S->run) {
        crm_log(level, "rule \"%s\": %s", S->run->rule->name, text);
    } else {
        crm_log(level, "rules: %s", text);
    }
}
