/*
 * api_admin.c — administration of permissions over the API: a role's grants
 * and field rules, users' roles, teams' members; and the audit log.
 *
 * Roles and teams themselves are records of core.role / core.team (created,
 * renamed and deleted through /records/core.role, which admins pass). Every
 * route here is CRM_ROUTE_ADMIN, every change also CRM_ROUTE_REAUTH (an admin
 * who proved the password within ten minutes, SECURITY.md A4), and every
 * change writes a core_audit row in
 * the same transaction as the change (SECURITY.md A5): who, when, what, and
 * the before / after state.
 */
#include "api_admin.h"

#include "perm.h"
#include "record.h"

#include <stdlib.h>
#include <string.h>

int crm_api__audit(crm_ctx *ctx, const char *action, const char *target, json_t *detail)
{
    crm_stmt *st;
    char at[21];
    char *text = json_dumps(detail ? detail : json_object(), JSON_COMPACT);
    int rc = crm_stmt_prepare(crm_ctx_conn(ctx), &st,
                              "INSERT INTO core_audit(at, user_id, action, target, detail) "
                              "VALUES (?, ?, ?, ?, ?)");
    if (!rc) {
        int64_t user = crm_principal_user(ctx->who);
        crm_time_format(crm_now(), at);
        crm_stmt_bind_text(st, 1, at, -1);
        if (user) crm_stmt_bind_int(st, 2, user);
        else crm_stmt_bind_null(st, 2);
        crm_stmt_bind_text(st, 3, action, -1);
        if (target) crm_stmt_bind_text(st, 4, target, -1);
        else crm_stmt_bind_null(st, 4);
        crm_stmt_bind_text(st, 5, text ? text : "{}", -1);
        rc = crm_stmt_step(st);
        crm_stmt_done(st);
        rc = rc < 0 ? rc : CRM_OK;
    }
    free(text);
    return rc;
}

/* ---- Grants ---- */

static int get_grants(crm_req *req, void *udata)
{
    crm_ctx *ctx = crm_req_ctx(req);
    int64_t role;
    json_t *out = NULL;
    int rc;
    if ((rc = crm_req_param_id(req, "id", &role))) return rc;
    if ((rc = crm_perm_role_json(ctx->k->perm, role, &out))) return rc;
    return crm_req_reply_json(req, 200, out);
}

/*
 * Check the whole body before changing anything, so a typo names itself
 * instead of half-applying: {"grants":{type|"*":{action:level}},
 * "fields":{type:{field:access}}}, both optional.
 */
static int check_grants(crm_ctx *ctx, json_t *body)
{
    const char *type, *key;
    json_t *per, *v;
    json_t *grants = json_object_get(body, "grants"), *fields = json_object_get(body, "fields");
    json_object_foreach(body, key, v)
        if (strcmp(key, "grants") != 0 && strcmp(key, "fields") != 0)
            return crm_error_set(CRM_EINVALID, key, "unknown key \"%s\" (use \"grants\" and "
                                                    "\"fields\")", key);
    if (grants && !json_is_object(grants))
        return crm_error_set(CRM_EINVALID, "grants", "\"grants\" must be an object "
                                                     "{type:{action:level}}");
    if (fields && !json_is_object(fields))
        return crm_error_set(CRM_EINVALID, "fields", "\"fields\" must be an object "
                                                     "{type:{field:access}}");
    json_object_foreach(grants, type, per) {
        if (strcmp(type, "*") != 0 && !crm_schema_type(ctx->k->schema, type))
            return crm_error_set(CRM_EINVALID, "grants", "grants: unknown type \"%s\"", type);
        if (!json_is_object(per))
            return crm_error_set(CRM_EINVALID, "grants", "grants.%s must be an object "
                                                         "{action:level}", type);
        json_object_foreach(per, key, v) {
            if (crm_action_from_name(key) < 0)
                return crm_error_set(CRM_EINVALID, "grants", "grants.%s: unknown action \"%s\" "
                                     "(use read, create, update, delete)", type, key);
            if (crm_level_from_name(json_string_value(v)) < 0)
                return crm_error_set(CRM_EINVALID, "grants", "grants.%s.%s: unknown level (use "
                                     "none, own, team, all)", type, key);
        }
    }
    json_object_foreach(fields, type, per) {
        const crm_type *t = crm_schema_type(ctx->k->schema, type);
        if (!t) return crm_error_set(CRM_EINVALID, "fields", "fields: unknown type \"%s\"", type);
        if (!json_is_object(per))
            return crm_error_set(CRM_EINVALID, "fields", "fields.%s must be an object "
                                                         "{field:access}", type);
        json_object_foreach(per, key, v) {
            if (!crm_type_field(t, key))
                return crm_error_set(CRM_EINVALID, "fields", "fields.%s: unknown field \"%s\"",
                                     type, key);
            if (crm_access_from_name(json_string_value(v)) < 0)
                return crm_error_set(CRM_EINVALID, "fields", "fields.%s.%s: unknown access (use "
                                     "hidden, read, write)", type, key);
        }
    }
    return CRM_OK;
}

/*
 * PUT /roles/{id}/grants: set every listed (type, action) level and (type,
 * field) access; entries not listed keep their value (set "none" / "write"
 * to take something back). All or nothing, in one transaction with its audit.
 */
static int put_grants(crm_req *req, void *udata)
{
    crm_ctx *ctx = crm_req_ctx(req);
    crm_conn *conn = crm_ctx_conn(ctx);
    crm_perm *perm = ctx->k->perm;
    json_t *body = crm_req_json(req), *before = NULL, *after = NULL, *per, *v;
    const char *type, *key;
    int64_t role;
    int rc;
    char target[32];
    if ((rc = crm_req_param_id(req, "id", &role))) return rc;
    if (!json_is_object(body))
        return crm_error_set(CRM_EINVALID, NULL, "the request body must be a JSON object");
    if ((rc = crm_perm_role_json(perm, role, &before))) return rc;
    if ((rc = check_grants(ctx, body))) goto out;
    if ((rc = crm_tx_begin(conn))) goto out;
    json_object_foreach(json_object_get(body, "grants"), type, per) {
        json_object_foreach(per, key, v) {
            if ((rc = crm_perm_grant(perm, role, type, crm_action_from_name(key),
                                     crm_level_from_name(json_string_value(v)))))
                goto rollback;
        }
    }
    json_object_foreach(json_object_get(body, "fields"), type, per) {
        json_object_foreach(per, key, v) {
            if ((rc = crm_perm_field(perm, role, type, key, crm_access_from_name(json_string_value(v)))))
                goto rollback;
        }
    }
    if ((rc = crm_perm_role_json(perm, role, &after))) goto rollback;
    snprintf(target, sizeof target, "role:%lld", (long long)role);
    json_t *detail = json_pack("{s:O,s:O,s:O}", "request", body, "before", before, "after", after);
    rc = crm_api__audit(ctx, "grants.set", target, detail);
    json_decref(detail);
    if (rc) goto rollback;
    if ((rc = crm_tx_commit(conn))) goto out;
    rc = crm_req_reply_json(req, 200, after);
    after = NULL;
    goto out;
rollback:
    crm_tx_rollback(conn);
out:
    json_decref(before);
    json_decref(after);
    return rc;
}

/* ---- Users' roles and teams' members ---- */

/* Link or unlink (user, role) or (team, user), with its audit row; 204. */
static int set_link(crm_req *req, bool team, bool on)
{
    crm_ctx *ctx = crm_req_ctx(req);
    crm_conn *conn = crm_ctx_conn(ctx);
    int64_t a, b;
    int rc;
    char target[64];
    if ((rc = crm_req_param_id(req, "id", &a)) ||
        (rc = crm_req_param_id(req, team ? "user_id" : "role_id", &b)))
        return rc;
    if ((rc = crm_tx_begin(conn))) return rc;
    rc = team ? crm_perm_team_member(ctx->k->perm, a, b, on)
              : crm_perm_user_role(ctx->k->perm, a, b, on);
    if (!rc) {
        snprintf(target, sizeof target, team ? "team:%lld" : "user:%lld", (long long)a);
        json_t *detail = json_pack("{s:I}", team ? "user" : "role", (json_int_t)b);
        rc = crm_api__audit(ctx, team ? (on ? "team.member.add" : "team.member.remove")
                                      : (on ? "user.role.add" : "user.role.remove"),
                            target, detail);
        json_decref(detail);
    }
    if (rc) {
        crm_tx_rollback(conn);
        return rc;
    }
    if ((rc = crm_tx_commit(conn))) return rc;
    return crm_req_reply_data(req, 204, "application/json", "", 0);
}

static int add_user_role(crm_req *req, void *udata) { return set_link(req, false, true); }
static int remove_user_role(crm_req *req, void *udata) { return set_link(req, false, false); }
static int add_team_member(crm_req *req, void *udata) { return set_link(req, true, true); }
static int remove_team_member(crm_req *req, void *udata) { return set_link(req, true, false); }

int crm_api__admin_register(crm_http *h)
{
    static const struct {
        const char *method, *pattern;
        crm_route_fn fn;
    } routes[] = {
        {"GET", "/api/v1/roles/{id}/grants", get_grants},
        {"PUT", "/api/v1/roles/{id}/grants", put_grants},
        {"POST", "/api/v1/users/{id}/roles/{role_id}", add_user_role},
        {"DELETE", "/api/v1/users/{id}/roles/{role_id}", remove_user_role},
        {"POST", "/api/v1/teams/{id}/members/{user_id}", add_team_member},
        {"DELETE", "/api/v1/teams/{id}/members/{user_id}", remove_team_member},
    };
    int rc;
    for (size_t i = 0; i < CRM_ARRAY_LEN(routes); i++)
        /* Every change here is a permission change: admin + recent auth (A4). */
        if ((rc = crm_http_route(h, routes[i].method, routes[i].pattern,
                                 strcmp(routes[i].method, "GET") == 0
                                     ? CRM_ROUTE_ADMIN
                                     : CRM_ROUTE_ADMIN | CRM_ROUTE_REAUTH,
                                 routes[i].fn, NULL)))
            return rc;
    return CRM_OK;
}
