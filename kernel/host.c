/*
 * host.c — the host API table (sdk/crm.h, crm_host_api) handed to plugins.
 *
 * Registration entries check a declaration at once, so the plugin's init gets
 * the error where it made the mistake, and stage it in the plugin; the loader
 * (plugin.c) applies what was staged only after init returned CRM_OK. That is
 * what makes a failing init leave nothing behind: the schema registry is
 * lock-free and append-only, the bus and the route table have no removal, so
 * nothing is published before the plugin has finished declaring.
 *
 * Run-time entries (records, events, requests) are thin wrappers over the
 * record layer, the bus and the HTTP request: the same permission checks
 * apply to a plugin as to any other caller. The kernel's structs (crm_event,
 * crm_firing, crm_req) reach plugins only as opaque pointers read through
 * accessors, so their layout can change without breaking the ABI.
 */
#include "plugin_int.h"

#include "bus.h"
#include "perm.h"
#include "record.h"
#include "sched.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The SDK's constants are the kernel's, by value. */
_Static_assert((int)CRM_BEFORE == (int)CRM_PHASE_BEFORE && (int)CRM_AFTER == (int)CRM_PHASE_AFTER &&
                   (int)CRM_ASYNC == (int)CRM_PHASE_ASYNC,
               "SDK phases must match bus.h");
_Static_assert((int)CRM_DEBUG == (int)CRM_LOG_DEBUG && (int)CRM_INFO == (int)CRM_LOG_INFO &&
                   (int)CRM_WARN == (int)CRM_LOG_WARN && (int)CRM_ERROR == (int)CRM_LOG_ERROR,
               "SDK log levels must match util.h");

/* The plugin whose migration step runs on this thread, and the renames it made
 * (reverted in the registry if the step's transaction rolls back). */
static _Thread_local crm_plugin *migrating;
static _Thread_local json_t *renames;

void crm_host__set_migrating(crm_plugin *p)
{
    migrating = p;
    json_decref(renames);
    renames = p ? json_array() : NULL;
}

void crm_host__revert_renames(crm_schema *schema)
{
    size_t i = json_array_size(renames);
    while (i-- > 0) {
        json_t *r = json_array_get(renames, i);
        crm_schema_rename_field_revert(schema, json_string_value(json_array_get(r, 0)),
                                       json_string_value(json_array_get(r, 2)),
                                       json_string_value(json_array_get(r, 1)));
    }
}

/* ---- Registration guard: init only, first failure remembered ---- */

static int reg_fail(crm_plugin *p, int rc)
{
    if (p && !p->reg_error) p->reg_error = crm_strdup(crm_error_last()->message);
    return rc;
}

static int registering(crm_plugin *p, const char *entry)
{
    if (!p) return crm_error_set(CRM_EINVALID, NULL, "%s: no plugin handle", entry);
    if (!p->registering)
        return crm_error_set(CRM_EINVALID, NULL,
                             "plugin \"%s\": registration is only possible inside init (%s "
                             "called after init returned)",
                             p->name, entry);
    return CRM_OK;
}

#define GUARD(p, entry)                                  \
    do {                                                 \
        int guard_rc_ = registering(p, entry);           \
        if (guard_rc_) return guard_rc_;                 \
    } while (0)

static bool local_name_valid(const char *s)
{
    return s && crm_ident_valid(s, 63);
}

/* The owner part of "owner.name" into out (empty when no dot). */
static void type_owner(const char *type, char *out, size_t n)
{
    const char *dot = type ? strchr(type, '.') : NULL;
    size_t len = dot ? (size_t)(dot - type) : 0;
    if (len >= n) len = n - 1;
    memcpy(out, type ? type : "", len);
    out[len] = 0;
}

static bool staged_type_has(const crm_plugin *p, const char *type)
{
    for (int i = 0; i < p->n_types; i++)
        if (strcmp(p->types[i].name, type) == 0) return true;
    return false;
}

/* Whether plugin `p` names `other` among its requirements. */
static bool requires_plugin(const crm_plugin *p, const char *other)
{
    const crm_plugin_dep *d = p->desc ? p->desc->requires : NULL;
    for (; d && d->name; d++)
        if (strcmp(d->name, other) == 0) return true;
    return false;
}

/* ---- Errors, logging, the plugin ---- */

static void host_log(crm_plugin *p, int level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt ? fmt : "", ap);
    va_end(ap);
    if (level < CRM_LOG_DEBUG) level = CRM_LOG_DEBUG;
    if (level > CRM_LOG_ERROR) level = CRM_LOG_ERROR;
    crm_log(level, "plugin %s: %s", p ? p->name : "?", msg);
}

static const char *host_plugin_name(crm_plugin *p)
{
    return p ? p->name : NULL;
}

static const char *host_setting(crm_plugin *p, const char *key)
{
    return p && key ? json_string_value(json_object_get(p->settings, key)) : NULL;
}

static const char *host_installed_version(crm_plugin *p)
{
    return p ? p->installed_version : NULL;
}

/* ---- Schema ---- */

static int host_type_declare(crm_plugin *p, const char *type, const char *label, json_t *fields)
{
    int rc;
    char owner[64];
    GUARD(p, "type_declare");
    crm_schema *schema = p->set->k->schema;
    if (!type)
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL, "type_declare: no type name"));
    /* Another owner first: "already declared by" says more than "wrong prefix". */
    const crm_type *have = crm_schema_type(schema, type);
    if (have && strcmp(have->owner, p->name) != 0)
        return reg_fail(p, crm_error_set(CRM_ECONFLICT, NULL,
                                         "type %s is already declared by plugin \"%s\"", type,
                                         have->owner));
    for (int i = 0; i < p->set->norder; i++) {
        crm_plugin *o = p->set->order[i];
        if (o != p && staged_type_has(o, type))
            return reg_fail(p, crm_error_set(CRM_ECONFLICT, NULL,
                                             "type %s is already declared by plugin \"%s\"", type,
                                             o->name));
    }
    type_owner(type, owner, sizeof owner);
    if (strcmp(owner, p->name) != 0)
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                         "type \"%s\": the types of plugin \"%s\" are named "
                                         "%s.<name>",
                                         type, p->name, p->name));
    if (staged_type_has(p, type))
        return reg_fail(p, crm_error_set(CRM_ECONFLICT, NULL, "type %s is declared twice", type));
    if ((rc = crm_schema_check_type(schema, type, p->name, fields))) return reg_fail(p, rc);
    staged_type *t = STAGE_PUSH(p, types);
    t->name = crm_strdup(type);
    t->label = crm_strdup(label && *label ? label : type);
    t->fields = fields ? json_deep_copy(fields) : json_array();
    return CRM_OK;
}

static int host_field_add(crm_plugin *p, const char *type, json_t *spec)
{
    int rc;
    char owner[64];
    GUARD(p, "field_add");
    type_owner(type, owner, sizeof owner);
    bool own = strcmp(owner, p->name) == 0;
    if (!type || (!own && strcmp(owner, "core") != 0 && !requires_plugin(p, owner)))
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                         "field_add to \"%s\": plugin \"%s\" may add fields to "
                                         "its own types and those of plugins it requires",
                                         type ? type : "", p->name));
    if ((rc = crm_schema_check_field(p->set->k->schema, type, spec, p->name,
                                     own && staged_type_has(p, type))))
        return reg_fail(p, rc);
    staged_field *f = STAGE_PUSH(p, fields);
    f->type = crm_strdup(type);
    f->spec = json_deep_copy(spec);
    return CRM_OK;
}

static int host_index_declare(crm_plugin *p, const char *type, json_t *fields)
{
    int rc;
    char owner[64];
    GUARD(p, "index_declare");
    type_owner(type, owner, sizeof owner);
    bool own = strcmp(owner, p->name) == 0;
    if (!type || (!own && !requires_plugin(p, owner)))
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                         "index_declare on \"%s\": plugin \"%s\" may index its "
                                         "own types and those of plugins it requires",
                                         type ? type : "", p->name));
    if ((rc = crm_schema_check_index(p->set->k->schema, type, fields,
                                     own && staged_type_has(p, type))))
        return reg_fail(p, rc);
    staged_field *f = STAGE_PUSH(p, indexes);
    f->type = crm_strdup(type);
    f->spec = json_deep_copy(fields);
    return CRM_OK;
}

static int host_role_declare(crm_plugin *p, const char *role, const char *description,
                             json_t *grants)
{
    const char *type, *action;
    json_t *actions, *level;
    GUARD(p, "role_declare");
    size_t len = role ? strlen(role) : 0;
    if (len == 0 || len > 100 || !crm_utf8_valid(role, len))
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                         "role_declare: a role name is 1 to 100 characters"));
    if (grants && !json_is_object(grants))
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                         "role \"%s\": grants must be an object {type: "
                                         "{action: level}}", role));
    json_object_foreach(grants, type, actions) {
        if (!crm_schema_type(p->set->k->schema, type) && !staged_type_has(p, type))
            return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                             "role \"%s\": unknown type \"%s\"", role, type));
        if (!json_is_object(actions))
            return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                             "role \"%s\": grants of %s must be an object "
                                             "{action: level}", role, type));
        json_object_foreach(actions, action, level) {
            if (crm_action_from_name(action) < 0)
                return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                                 "role \"%s\": unknown action \"%s\" (read, "
                                                 "create, update, delete)", role, action));
            if (!json_is_string(level) || crm_level_from_name(json_string_value(level)) < 0)
                return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                                 "role \"%s\": %s %s: level must be none, own, "
                                                 "team or all", role, type, action));
        }
    }
    for (int i = 0; i < p->n_roles; i++)
        if (strcmp(p->roles[i].name, role) == 0)
            return reg_fail(p, crm_error_set(CRM_ECONFLICT, NULL, "role \"%s\" is declared twice",
                                             role));
    staged_role *r = STAGE_PUSH(p, roles);
    r->name = crm_strdup(role);
    r->description = description ? crm_strdup(description) : NULL;
    r->grants = grants ? json_deep_copy(grants) : json_object();
    return CRM_OK;
}

/* ---- Events ---- */

/* As bus.c: "owner.event", "owner.*" or "*", printable, at most 128 characters. */
static bool pattern_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 128) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~') return false;
    const char *star = strchr(s, '*');
    if (!star || strcmp(s, "*") == 0) return true;
    return star == s + n - 1 && n >= 3 && s[n - 2] == '.' && s[n - 3] != '.';
}

static int host_subscribe(crm_plugin *p, const char *topic, int phase, int order,
                          const char *name, crm_event_fn fn, void *udata)
{
    GUARD(p, "subscribe");
    if (!pattern_valid(topic))
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                         "subscribe: bad topic pattern \"%s\": use "
                                         "\"owner.event\", \"owner.*\" or \"*\"",
                                         topic ? topic : ""));
    if (phase != CRM_BEFORE && phase != CRM_AFTER && phase != CRM_ASYNC)
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                         "subscribe \"%s\": phase must be CRM_BEFORE, CRM_AFTER "
                                         "or CRM_ASYNC, not %d", topic, phase));
    if (!local_name_valid(name) || !fn)
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                         "subscribe \"%s\": a handler needs a function and a "
                                         "name of a-z, 0-9 and _", topic));
    char *full = crm_sprintf("%s.%s", p->name, name);
    for (int i = 0; i < p->n_subs; i++)
        if (strcmp(p->subs[i].name, full) == 0) {
            free(full);
            return reg_fail(p, crm_error_set(CRM_ECONFLICT, NULL,
                                             "subscribe: handler name \"%s\" is used twice",
                                             name));
        }
    staged_sub *s = STAGE_PUSH(p, subs);
    s->topic = crm_strdup(topic);
    s->name = full;
    s->phase = phase;
    s->order = order;
    s->fn = fn;
    s->udata = udata;
    return CRM_OK;
}

static const char *ev_topic(const crm_event *ev) { return ev ? ev->topic : NULL; }
static const char *ev_type(const crm_event *ev) { return ev ? ev->type : NULL; }
static int64_t ev_id(const crm_event *ev) { return ev ? ev->id : 0; }
static json_t *ev_record(crm_event *ev) { return ev ? ev->record : NULL; }
static json_t *ev_old(const crm_event *ev) { return ev ? ev->old : NULL; }
static json_t *ev_changed(const crm_event *ev) { return ev ? ev->changed : NULL; }
static json_t *ev_payload(const crm_event *ev) { return ev ? ev->payload : NULL; }
static int64_t ev_user(const crm_event *ev) { return ev ? ev->user_id : 0; }

static int host_emit(crm_ctx *ctx, const char *topic, json_t *payload)
{
    if (!ctx) return crm_error_set(CRM_EINVALID, NULL, "emit: no context");
    if (payload && !json_is_object(payload))
        return crm_error_set(CRM_EINVALID, NULL, "emit \"%s\": the payload must be an object",
                             topic ? topic : "");
    return crm_bus_emit(ctx, topic, payload);
}

/* ---- Records ---- */

static int host_record_get(crm_ctx *ctx, const char *type, int64_t id, json_t **out)
{
    if (!ctx || !out) return crm_error_set(CRM_EINVALID, NULL, "record_get: no context or out");
    return crm_record_get(ctx, type, id, false, out);
}

static int host_record_find(crm_ctx *ctx, const char *type, json_t *query, json_t **out)
{
    int rc = CRM_OK;
    crm_query q;
    const char *key;
    json_t *v;
    if (!ctx || !out) return crm_error_set(CRM_EINVALID, NULL, "record_find: no context or out");
    if (query && !json_is_object(query))
        return crm_error_set(CRM_EINVALID, NULL, "record_find: the query must be an object");
    crm_query_init(&q);
    json_object_foreach(query, key, v) {
        char buf[64];
        const char *text = buf;
        if (json_is_string(v))
            text = json_string_value(v);
        else if (json_is_integer(v))
            snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_real(v))
            snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
        else if (json_is_boolean(v))
            text = json_is_true(v) ? "true" : "false";
        else {
            rc = crm_error_set(CRM_EINVALID, key,
                               "record_find: parameter \"%s\" must be a string, number or "
                               "boolean", key);
            goto done;
        }
        if ((rc = crm_query_add(&q, key, text))) goto done;
    }
    rc = crm_record_find(ctx, type, &q, out);
done:
    crm_query_free(&q);
    return rc;
}

static int host_record_create(crm_ctx *ctx, const char *type, json_t *fields, json_t **out)
{
    if (!ctx) return crm_error_set(CRM_EINVALID, NULL, "record_create: no context");
    return crm_record_create(ctx, type, fields, out);
}

static int host_record_update(crm_ctx *ctx, const char *type, int64_t id, json_t *patch,
                              json_t **out)
{
    if (!ctx) return crm_error_set(CRM_EINVALID, NULL, "record_update: no context");
    return crm_record_update(ctx, type, id, patch, 0, out);
}

static int host_record_delete(crm_ctx *ctx, const char *type, int64_t id)
{
    if (!ctx) return crm_error_set(CRM_EINVALID, NULL, "record_delete: no context");
    return crm_record_delete(ctx, type, id, 0);
}

static int host_record_forget(crm_ctx *ctx, const char *type, int64_t id, json_t *fields)
{
    if (!ctx) return crm_error_set(CRM_EINVALID, NULL, "record_forget: no context");
    return crm_record_forget(ctx, type, id, fields);
}

static int64_t host_now(void)
{
    return crm_now();
}

static int host_tx(crm_ctx *ctx, int (*fn)(crm_ctx *ctx, void *arg), void *arg)
{
    if (!ctx || !fn) return crm_error_set(CRM_EINVALID, NULL, "tx: no context or function");
    crm_conn *conn = crm_ctx_conn(ctx);
    int rc = crm_tx_begin(conn);
    if (rc) return rc;
    if ((rc = fn(ctx, arg))) {
        if (!crm_error_last()->code) crm_error_set(rc, NULL, "tx: the function failed");
        crm_tx_rollback(conn);
        return rc;
    }
    return crm_tx_commit(conn);
}

static const char *host_req_ip(crm_req *req)
{
    return req ? crm_req_ip(req) : "";
}

static const char *host_req_body(crm_req *req, size_t *len)
{
    size_t n = 0;
    const char *b = req ? crm_req_body(req, &n) : "";
    if (len) *len = req ? n : 0;
    return b;
}

static int host_reply_data(crm_req *req, int status, const char *content_type, const char *data,
                           size_t len)
{
    if (!req || !content_type || (!data && len))
        return crm_error_set(CRM_EINVALID, NULL, "reply_data: request, content type and data");
    return crm_req_reply_data(req, status, content_type, data ? data : "", len);
}

static int host_record_history(crm_ctx *ctx, const char *type, int64_t id, json_t **out)
{
    if (!ctx) return crm_error_set(CRM_EINVALID, NULL, "record_history: no context");
    return crm_record_history(ctx, type, id, out);
}

static int host_as_system(crm_ctx *ctx, int (*fn)(crm_ctx *sys, void *arg), void *arg)
{
    if (!ctx || !fn) return crm_error_set(CRM_EINVALID, NULL, "as_system: no context or function");
    crm_ctx sys = *ctx; /* same kernel, connection, transaction, via and cascade chain */
    sys.who = crm_principal_system();
    return fn(&sys, arg);
}

static int host_types(crm_ctx *ctx, json_t **out)
{
    if (!ctx || !out) return crm_error_set(CRM_EINVALID, NULL, "types: no context or out");
    *out = crm_types_view(ctx);
    return *out ? CRM_OK : crm_error_last()->code;
}

static int64_t host_ctx_user(crm_ctx *ctx)
{
    return ctx ? crm_principal_user(ctx->who) : 0;
}

static int host_ctx_is_admin(crm_ctx *ctx)
{
    return ctx && crm_principal_is_admin(ctx->who);
}

/* ---- HTTP ---- */

static bool route_path_valid(const char *path)
{
    if (!path || path[0] != '/' || strlen(path) > 200) return false;
    if (strcmp(path, "/") == 0) return true;
    for (const char *s = path; *s; s++) {
        if (*s == '/' && (s[1] == '/' || s[1] == 0)) return false; /* empty segment */
        if (*s <= ' ' || *s > '~' || *s == '?' || *s == '#' || *s == '%') return false;
    }
    return true;
}

static int host_route(crm_plugin *p, const char *method, const char *path, unsigned flags,
                      crm_route_handler fn, void *udata)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};
    GUARD(p, "route");
    bool known = false;
    for (int i = 0; methods[i]; i++)
        if (method && strcmp(method, methods[i]) == 0) known = true;
    if (!known)
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                         "route: method \"%s\" is not GET, POST, PUT, PATCH or "
                                         "DELETE", method ? method : ""));
    if (!route_path_valid(path) || !fn)
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                         "route %s \"%s\": a path starts with / and has no "
                                         "empty segments; a handler is needed",
                                         method, path ? path : ""));
    if (flags & ~(unsigned)(CRM_PUBLIC | CRM_ADMIN_ONLY | CRM_RAW_BODY | CRM_CROSS_SITE))
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL, "route %s %s: unknown flags 0x%x",
                                         method, path, flags));
    if ((flags & CRM_CROSS_SITE) && !(flags & CRM_PUBLIC))
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                         "route %s %s: CRM_CROSS_SITE is for CRM_PUBLIC routes "
                                         "only (a signed-in user's cookie must never ride on "
                                         "another site's request)", method, path));
    char *full = strcmp(path, "/") == 0 ? crm_sprintf("/api/v1/x/%s", p->name)
                                        : crm_sprintf("/api/v1/x/%s%s", p->name, path);
    for (int i = 0; i < p->n_routes; i++)
        if (strcmp(p->routes[i].method, method) == 0 && strcmp(p->routes[i].path, full) == 0) {
            free(full);
            return reg_fail(p, crm_error_set(CRM_ECONFLICT, NULL, "route %s %s is declared twice",
                                             method, path));
        }
    staged_route *r = STAGE_PUSH(p, routes);
    r->method = crm_strdup(method);
    r->path = full;
    r->flags = ((flags & CRM_PUBLIC) ? CRM_ROUTE_PUBLIC : 0) |
               ((flags & CRM_ADMIN_ONLY) ? CRM_ROUTE_ADMIN : 0) |
               ((flags & CRM_RAW_BODY) ? CRM_ROUTE_RAW_BODY : 0) |
               ((flags & CRM_CROSS_SITE) ? CRM_ROUTE_CROSS_SITE : 0);
    r->fn = fn;
    r->udata = udata;
    return CRM_OK;
}

static const char *req_method(crm_req *req) { return req ? crm_req_method(req) : NULL; }
static const char *req_param(crm_req *req, const char *n) { return req && n ? crm_req_param(req, n) : NULL; }
static const char *req_query(crm_req *req, const char *k) { return req && k ? crm_req_query(req, k) : NULL; }
static const char *req_header(crm_req *req, const char *n) { return req && n ? crm_req_header(req, n) : NULL; }
static json_t *req_json(crm_req *req) { return req ? crm_req_json(req) : NULL; }
static crm_ctx *req_ctx(crm_req *req) { return req ? crm_req_ctx(req) : NULL; }

static int reply_json(crm_req *req, int status, json_t *body)
{
    if (!req || status < 200 || status > 599) {
        json_decref(body);
        return crm_error_set(CRM_EINVALID, NULL, "reply_json: bad status %d", status);
    }
    return crm_req_reply_json(req, status, body ? body : json_object());
}

static int reply_error(crm_req *req, int status, const char *code, const char *field,
                       const char *message)
{
    if (!req || status < 400 || status > 599)
        return crm_error_set(CRM_EINVALID, NULL, "reply_error: bad status %d", status);
    return crm_req_reply_error(req, status, code && *code ? code : "error", field, "%s",
                               message ? message : "");
}

/* ---- Lua, rules ---- */

static int host_lua_function(crm_plugin *p, const char *name, crm_lua_fn fn, void *udata)
{
    GUARD(p, "lua_function");
    if (!local_name_valid(name) || !fn)
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                         "lua_function \"%s\": a name of a-z, 0-9 and _ and a "
                                         "function are needed", name ? name : ""));
    for (int i = 0; i < p->n_luas; i++)
        if (strcmp(p->luas[i].name, name) == 0)
            return reg_fail(p, crm_error_set(CRM_ECONFLICT, NULL,
                                             "lua_function crm.%s.%s is declared twice", p->name,
                                             name));
    staged_lua *l = STAGE_PUSH(p, luas);
    l->name = crm_strdup(name);
    l->fn = fn;
    l->udata = udata;
    return CRM_OK;
}

static int host_rules_dir(crm_plugin *p, const char *dir)
{
    GUARD(p, "rules_dir");
    if (!dir || !*dir || dir[0] == '/' || strstr(dir, "..") || strchr(dir, '\\'))
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                         "rules_dir \"%s\": a directory relative to the "
                                         "plugin's, without \"..\"", dir ? dir : ""));
    char *abs = crm_sprintf("%s/%s", p->src_dir ? p->src_dir : ".", dir);
    for (int i = 0; i < p->n_rule_dirs; i++)
        if (strcmp(p->rule_dirs[i], abs) == 0) {
            free(abs);
            return reg_fail(p, crm_error_set(CRM_ECONFLICT, NULL,
                                             "rules_dir \"%s\" is declared twice", dir));
        }
    *STAGE_PUSH(p, rule_dirs) = abs;
    return CRM_OK;
}

/* ---- Schedules ---- */

static int stage_sched(crm_plugin *p, int kind, const char *name, const char *cron,
                       const char *type, const char *field, int64_t offset, int at_minute,
                       crm_schedule_fn fn, void *udata)
{
    if (!local_name_valid(name) || !fn)
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                         "schedule \"%s\": a name of a-z, 0-9 and _ and a "
                                         "function are needed", name ? name : ""));
    if (kind == SCHED_CRON) {
        crm_cron c;
        int rc = crm_cron_parse(&c, cron);
        if (rc) return reg_fail(p, rc);
    } else {
        if (!type || (!crm_schema_type(p->set->k->schema, type) && !staged_type_has(p, type)))
            return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                             "schedule \"%s\": unknown type \"%s\"", name,
                                             type ? type : ""));
        if (!local_name_valid(field))
            return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                             "schedule \"%s\": bad field name \"%s\"", name,
                                             field ? field : ""));
        if (at_minute < 0 || at_minute >= 1440)
            return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                             "schedule \"%s\": at_minute must be 0..1439", name));
    }
    char *full = crm_sprintf("%s.%s", p->name, name);
    for (int i = 0; i < p->n_scheds; i++)
        if (strcmp(p->scheds[i].name, full) == 0) {
            free(full);
            return reg_fail(p, crm_error_set(CRM_ECONFLICT, NULL,
                                             "schedule \"%s\" is declared twice", name));
        }
    staged_sched *s = STAGE_PUSH(p, scheds);
    s->kind = kind;
    s->name = full;
    s->cron = cron ? crm_strdup(cron) : NULL;
    s->type = type ? crm_strdup(type) : NULL;
    s->field = field ? crm_strdup(field) : NULL;
    s->offset = offset;
    s->at_minute = at_minute;
    s->fn = fn;
    s->udata = udata;
    return CRM_OK;
}

static int host_schedule_cron(crm_plugin *p, const char *name, const char *cron,
                              crm_schedule_fn fn, void *udata)
{
    GUARD(p, "schedule_cron");
    return stage_sched(p, SCHED_CRON, name, cron, NULL, NULL, 0, 0, fn, udata);
}

static int host_schedule_offset(crm_plugin *p, const char *name, const char *type,
                                const char *field, int64_t offset_seconds, int at_minute,
                                crm_schedule_fn fn, void *udata)
{
    GUARD(p, "schedule_offset");
    return stage_sched(p, SCHED_OFFSET, name, NULL, type, field, offset_seconds, at_minute, fn,
                       udata);
}

static int host_schedule_yearly(crm_plugin *p, const char *name, const char *type,
                                const char *field, int at_minute, crm_schedule_fn fn,
                                void *udata)
{
    GUARD(p, "schedule_yearly");
    return stage_sched(p, SCHED_YEARLY, name, NULL, type, field, 0, at_minute, fn, udata);
}

static const char *firing_name(const crm_firing *f) { return f ? f->name : NULL; }
static int64_t firing_due(const crm_firing *f) { return f ? f->due : 0; }
static const char *firing_type(const crm_firing *f) { return f ? f->type : NULL; }
static int64_t firing_record_id(const crm_firing *f) { return f ? f->record_id : 0; }
static json_t *firing_record(const crm_firing *f) { return f ? f->record : NULL; }

/* ---- Versions, migrations, demo ---- */

static int host_migration(crm_plugin *p, const char *version, crm_migration_fn fn, void *udata)
{
    crm_semver v;
    GUARD(p, "migration");
    if (!version || !crm_semver_parse(version, &v) || !fn)
        return reg_fail(p, crm_error_set(CRM_EINVALID, NULL,
                                         "migration \"%s\": a semantic version "
                                         "(MAJOR.MINOR.PATCH) and a function are needed",
                                         version ? version : ""));
    for (int i = 0; i < p->n_migrations; i++)
        if (crm_semver_cmp(&p->migrations[i].v, &v) == 0)
            return reg_fail(p, crm_error_set(CRM_ECONFLICT, NULL,
                                             "migration to %s is declared twice", version));
    staged_migration *m = STAGE_PUSH(p, migrations);
    m->version = crm_strdup(version);
    m->v = v;
    m->fn = fn;
    m->udata = udata;
    return CRM_OK;
}

static int host_field_rename(crm_ctx *ctx, const char *type, const char *from, const char *to)
{
    char owner[64];
    crm_plugin *p = migrating;
    if (!ctx || !p)
        return crm_error_set(CRM_EDENIED, NULL,
                             "field_rename is only possible inside a migration step");
    type_owner(type, owner, sizeof owner);
    if (strcmp(owner, p->name) != 0)
        return crm_error_set(CRM_EDENIED, NULL,
                             "field_rename: plugin \"%s\" may rename fields of its own types "
                             "only, not of %s", p->name, type ? type : "");
    int rc = crm_schema_rename_field(p->set->k->schema, type, from, to);
    if (rc == CRM_OK && renames) json_array_append_new(renames, json_pack("[sss]", type, from, to));
    return rc;
}

static int host_demo(crm_plugin *p, crm_demo_fn fn, void *udata)
{
    GUARD(p, "demo");
    if (!fn) return reg_fail(p, crm_error_set(CRM_EINVALID, NULL, "demo: no function"));
    staged_demo *d = STAGE_PUSH(p, demos);
    d->fn = fn;
    d->udata = udata;
    return CRM_OK;
}

/* ---- The table ---- */

static const crm_host_api host_api = {
    .version = CRM_HOST_API_VERSION,
    .size = sizeof(crm_host_api),
    .error_set = crm_error_set,
    .error_last = crm_error_last,
    .log = host_log,
    .plugin_name = host_plugin_name,
    .setting = host_setting,
    .type_declare = host_type_declare,
    .field_add = host_field_add,
    .role_declare = host_role_declare,
    .subscribe = host_subscribe,
    .event_topic = ev_topic,
    .event_type = ev_type,
    .event_id = ev_id,
    .event_record = ev_record,
    .event_old = ev_old,
    .event_changed = ev_changed,
    .event_payload = ev_payload,
    .event_user = ev_user,
    .emit = host_emit,
    .record_get = host_record_get,
    .record_find = host_record_find,
    .record_create = host_record_create,
    .record_update = host_record_update,
    .record_delete = host_record_delete,
    .ctx_user = host_ctx_user,
    .ctx_is_admin = host_ctx_is_admin,
    .route = host_route,
    .req_method = req_method,
    .req_param = req_param,
    .req_query = req_query,
    .req_header = req_header,
    .req_json = req_json,
    .req_ctx = req_ctx,
    .reply_json = reply_json,
    .reply_error = reply_error,
    .lua_function = host_lua_function,
    .rules_dir = host_rules_dir,
    .schedule_cron = host_schedule_cron,
    .schedule_offset = host_schedule_offset,
    .schedule_yearly = host_schedule_yearly,
    .firing_name = firing_name,
    .firing_due = firing_due,
    .firing_type = firing_type,
    .firing_record_id = firing_record_id,
    .firing_record = firing_record,
    .migration = host_migration,
    .field_rename = host_field_rename,
    .installed_version = host_installed_version,
    .demo = host_demo,
    .record_forget = host_record_forget,
    .now = host_now,
    .tx = host_tx,
    .req_ip = host_req_ip,
    .req_body = host_req_body,
    .reply_data = host_reply_data,
    .record_history = host_record_history,
    .as_system = host_as_system,
    .types = host_types,
    .index_declare = host_index_declare,
};

const crm_host_api *crm_host__api(void)
{
    return &host_api;
}

void crm_host__discard(crm_plugin *p)
{
    for (int i = 0; i < p->n_types; i++) {
        free(p->types[i].name);
        free(p->types[i].label);
        json_decref(p->types[i].fields);
    }
    for (int i = 0; i < p->n_fields; i++) {
        free(p->fields[i].type);
        json_decref(p->fields[i].spec);
    }
    for (int i = 0; i < p->n_indexes; i++) {
        free(p->indexes[i].type);
        json_decref(p->indexes[i].spec);
    }
    for (int i = 0; i < p->n_roles; i++) {
        free(p->roles[i].name);
        free(p->roles[i].description);
        json_decref(p->roles[i].grants);
    }
    for (int i = 0; i < p->n_subs; i++) {
        free(p->subs[i].topic);
        free(p->subs[i].name);
    }
    for (int i = 0; i < p->n_routes; i++) {
        free(p->routes[i].method);
        free(p->routes[i].path);
    }
    for (int i = 0; i < p->n_luas; i++) free(p->luas[i].name);
    for (int i = 0; i < p->n_rule_dirs; i++) free(p->rule_dirs[i]);
    for (int i = 0; i < p->n_scheds; i++) {
        free(p->scheds[i].name);
        free(p->scheds[i].cron);
        free(p->scheds[i].type);
        free(p->scheds[i].field);
    }
    for (int i = 0; i < p->n_migrations; i++) free(p->migrations[i].version);
    free(p->types);
    free(p->fields);
    free(p->indexes);
    free(p->roles);
    free(p->subs);
    free(p->routes);
    free(p->luas);
    free(p->rule_dirs);
    free(p->scheds);
    free(p->migrations);
    free(p->demos);
    p->types = NULL;
    p->fields = NULL;
    p->indexes = NULL;
    p->roles = NULL;
    p->subs = NULL;
    p->routes = NULL;
    p->luas = NULL;
    p->rule_dirs = NULL;
    p->scheds = NULL;
    p->migrations = NULL;
    p->demos = NULL;
    p->n_types = p->n_fields = p->n_roles = p->n_subs = p->n_routes = p->n_luas = 0;
    p->n_rule_dirs = p->n_scheds = p->n_migrations = p->n_demos = p->n_indexes = 0;
    p->cap_indexes = 0;
    p->cap_types = p->cap_fields = p->cap_roles = p->cap_subs = p->cap_routes = p->cap_luas = 0;
    p->cap_rule_dirs = p->cap_scheds = p->cap_migrations = p->cap_demos = 0;
}
