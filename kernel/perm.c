/*
 * perm.c — roles, grants, field access and row scopes.
 *
 * Merging across roles is "most permissive wins" (EspoCRM): the level of an
 * action is the highest any role grants; a field's access is the highest
 * among the roles that grant anything on the type, a role without an entry
 * for the field counting as "write". Only roles that grant something on the
 * type take part, so a role unrelated to HR cannot un-hide a salary.
 *
 * A principal caches what it computed per type and drops it when the
 * permission generation moves (any grant, field rule, role or team change).
 */
#include "perm.h"

#include "record.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

struct crm_perm {
    crm_kernel *k;
    uint64_t generation;
};

typedef struct type_perm {
    uint64_t generation;
    int nfields; /* fields computed (a field added later triggers a reload) */
    int level[CRM_ACT_COUNT];
    unsigned char *access; /* per field position */
} type_perm;

struct crm_principal {
    crm_perm *perm;
    uint64_t generation; /* of roles and teams below */
    int64_t user_id;
    bool admin;
    bool system;
    int64_t *roles;
    int nroles;
    int64_t *teams;
    int nteams;
    type_perm **types; /* by crm_type.id */
    int ntypes;
};

static crm_principal system_principal = {.admin = true, .system = true};

static void refresh(crm_principal *p);

static const char *const action_names[] = {"read", "create", "update", "delete"};
static const char *const level_names[] = {"none", "own", "team", "all"};
static const char *const access_names[] = {"hidden", "read", "write"};

static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(names[i], s) == 0) return i;
    return -1;
}

const char *crm_action_name(int a)
{
    return a >= 0 && a < 4 ? action_names[a] : "?";
}
int crm_action_from_name(const char *s)
{
    return name_index(action_names, 4, s);
}
const char *crm_level_name(int l)
{
    return l >= 0 && l < 4 ? level_names[l] : "?";
}
int crm_level_from_name(const char *s)
{
    return name_index(level_names, 4, s);
}
const char *crm_access_name(int a)
{
    return a >= 0 && a < 3 ? access_names[a] : "?";
}
int crm_access_from_name(const char *s)
{
    return name_index(access_names, 3, s);
}

int crm_perm_open(crm_perm **out, crm_kernel *k)
{
    crm_perm *p = crm_calloc(1, sizeof *p);
    p->k = k;
    p->generation = 1;
    *out = p;
    return CRM_OK;
}

void crm_perm_close(crm_perm *perm)
{
    free(perm);
}

uint64_t crm_perm_generation(crm_perm *perm)
{
    return __atomic_load_n(&perm->generation, __ATOMIC_ACQUIRE);
}

static void bump(crm_perm *perm)
{
    __atomic_add_fetch(&perm->generation, 1, __ATOMIC_ACQ_REL);
}

crm_principal *crm_principal_system(void)
{
    return &system_principal;
}

int64_t crm_principal_user(const crm_principal *p)
{
    return p->user_id;
}
bool crm_principal_is_admin(const crm_principal *p)
{
    return p->admin;
}

const int64_t *crm_principal_teams(crm_principal *p, int *n)
{
    refresh(p);
    *n = p->nteams;
    return p->teams;
}

/* Read a one-column list of ids for `user_id` with `sql`. */
static int load_ids(crm_conn *conn, const char *sql, int64_t user_id, int64_t **out, int *n)
{
    crm_stmt *st;
    int rc, cap = 0;
    *out = NULL;
    *n = 0;
    if ((rc = crm_stmt_prepare(conn, &st, sql))) return rc;
    crm_stmt_bind_int(st, 1, user_id);
    while ((rc = crm_stmt_step(st)) == 1) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            *out = crm_realloc(*out, (size_t)cap * sizeof **out);
        }
        (*out)[(*n)++] = crm_stmt_column_int(st, 0);
    }
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

/* (Re)read the principal's roles and teams. */
static int load_links(crm_principal *p)
{
    int rc;
    crm_conn *conn = crm_store_conn(p->perm->k->store);
    free(p->roles);
    free(p->teams);
    p->roles = p->teams = NULL;
    p->nroles = p->nteams = 0;
    p->generation = crm_perm_generation(p->perm);
    if ((rc = load_ids(conn, "SELECT role_id FROM core_user_role WHERE user_id = ? ORDER BY 1",
                       p->user_id, &p->roles, &p->nroles)))
        return rc;
    return load_ids(conn, "SELECT team_id FROM core_team_member WHERE user_id = ? ORDER BY 1",
                    p->user_id, &p->teams, &p->nteams);
}

/*
 * A principal may live across permission changes (a rule's, a long request's):
 * when the generation moved, its roles and teams are read again (failing
 * closed: none) and its per-type cache recomputes on next use.
 */
static void refresh(crm_principal *p)
{
    if (p->system || p->generation == crm_perm_generation(p->perm)) return;
    if (load_links(p)) {
        free(p->roles);
        free(p->teams);
        p->roles = p->teams = NULL;
        p->nroles = p->nteams = 0;
    }
}

int crm_principal_load(crm_perm *perm, int64_t user_id, crm_principal **out)
{
    int rc;
    crm_stmt *st = NULL;
    crm_conn *conn = crm_store_conn(perm->k->store);
    crm_principal *p = crm_calloc(1, sizeof *p);
    *out = NULL;
    p->perm = perm;
    p->user_id = user_id;
    if ((rc = crm_stmt_prepare(conn, &st,
                               "SELECT is_admin, disabled, deleted_at FROM "
                               "\"core.user\" WHERE id = ?")))
        goto done;
    crm_stmt_bind_int(st, 1, user_id);
    rc = crm_stmt_step(st);
    if (rc < 0) goto done;
    if (rc == 0) {
        rc = crm_error_set(CRM_ENOTFOUND, NULL, "no user with id %lld", (long long)user_id);
        goto done;
    }
    if (crm_stmt_column_int(st, 1) || crm_stmt_column_type(st, 2) != CRM_COL_NULL) {
        rc = crm_error_set(CRM_EDENIED, NULL, "user %lld is disabled", (long long)user_id);
        goto done;
    }
    p->admin = crm_stmt_column_int(st, 0) != 0;
    crm_stmt_done(st);
    st = NULL;
    if ((rc = load_links(p))) goto done;
    *out = p;
    p = NULL;
    rc = CRM_OK;
done:
    if (st) crm_stmt_done(st);
    crm_principal_free(p);
    return rc;
}

void crm_principal_free(crm_principal *p)
{
    if (!p || p == &system_principal) return;
    for (int i = 0; i < p->ntypes; i++) {
        if (!p->types[i]) continue;
        free(p->types[i]->access);
        free(p->types[i]);
    }
    free(p->types);
    free(p->roles);
    free(p->teams);
    free(p);
}

static int role_index(const crm_principal *p, int64_t role)
{
    for (int i = 0; i < p->nroles; i++)
        if (p->roles[i] == role) return i;
    return -1;
}

/* Compute the principal's permissions on `t` from the grant tables. */
static int compute(crm_principal *p, const crm_type *t, type_perm *tp)
{
    int rc, n = crm_type_nfields(t), nr = p->nroles;
    crm_conn *conn = crm_store_conn(p->perm->k->store);
    crm_stmt *st;
    /* Per role: its level per action (a specific grant beats the role's "*" grant). */
    int(*lv)[CRM_ACT_COUNT] = crm_calloc((size_t)nr + 1, sizeof *lv);
    bool(*specific)[CRM_ACT_COUNT] = crm_calloc((size_t)nr + 1, sizeof *specific);
    unsigned char *acc = crm_malloc((size_t)(nr + 1) * (size_t)(n + 1));
    memset(acc, CRM_ACCESS_WRITE, (size_t)(nr + 1) * (size_t)(n + 1));

    tp->generation = crm_perm_generation(p->perm);
    if ((rc = crm_stmt_prepare(conn, &st,
                               "SELECT g.role_id, g.action, g.level, g.type = ? FROM core_grant g "
                               "JOIN core_user_role ur ON ur.role_id = g.role_id "
                               "WHERE ur.user_id = ? AND g.type IN (?, '*')")))
        goto done;
    crm_stmt_bind_text(st, 1, t->name, -1);
    crm_stmt_bind_int(st, 2, p->user_id);
    crm_stmt_bind_text(st, 3, t->name, -1);
    while ((rc = crm_stmt_step(st)) == 1) {
        int r = role_index(p, crm_stmt_column_int(st, 0));
        int a = (int)crm_stmt_column_int(st, 1), l = (int)crm_stmt_column_int(st, 2);
        bool spec = crm_stmt_column_int(st, 3) != 0;
        if (r < 0 || a < 0 || a >= CRM_ACT_COUNT || l < 0 || l > CRM_LEVEL_ALL) continue;
        if (spec || !specific[r][a]) lv[r][a] = l;
        if (spec) specific[r][a] = true;
    }
    crm_stmt_done(st);
    if (rc < 0) goto done;
    if ((rc = crm_stmt_prepare(conn, &st,
                               "SELECT fp.role_id, fp.field, fp.access FROM core_field_perm fp "
                               "JOIN core_user_role ur ON ur.role_id = fp.role_id "
                               "WHERE ur.user_id = ? AND fp.type = ?")))
        goto done;
    crm_stmt_bind_int(st, 1, p->user_id);
    crm_stmt_bind_text(st, 2, t->name, -1);
    while ((rc = crm_stmt_step(st)) == 1) {
        int r = role_index(p, crm_stmt_column_int(st, 0));
        const crm_field *f = crm_type_field(t, crm_stmt_column_text(st, 1));
        int a = (int)crm_stmt_column_int(st, 2);
        if (r < 0 || !f || f->position >= n || a < 0 || a > CRM_ACCESS_WRITE) continue;
        acc[(size_t)r * (size_t)(n + 1) + (size_t)f->position] = (unsigned char)a;
    }
    crm_stmt_done(st);
    if (rc < 0) goto done;
    rc = CRM_OK;

    free(tp->access);
    tp->access = crm_malloc((size_t)n + 1);
    memset(tp->access, CRM_ACCESS_HIDDEN, (size_t)n + 1);
    memset(tp->level, 0, sizeof tp->level);
    tp->nfields = n;
    for (int r = 0; r < nr; r++) {
        bool any = false;
        for (int a = 0; a < CRM_ACT_COUNT; a++) {
            if (lv[r][a] > tp->level[a]) tp->level[a] = lv[r][a];
            if (lv[r][a] > CRM_LEVEL_NONE) any = true;
        }
        if (!any) continue;
        for (int i = 0; i < n; i++) {
            unsigned char a = acc[(size_t)r * (size_t)(n + 1) + (size_t)i];
            if (a > tp->access[i]) tp->access[i] = a;
        }
    }
done:
    free(lv);
    free(specific);
    free(acc);
    return rc;
}

static type_perm *type_perm_of(crm_principal *p, const crm_type *t)
{
    refresh(p);
    if (t->id >= p->ntypes) {
        int n = t->id + 16;
        p->types = crm_realloc(p->types, (size_t)n * sizeof *p->types);
        memset(p->types + p->ntypes, 0, (size_t)(n - p->ntypes) * sizeof *p->types);
        p->ntypes = n;
    }
    type_perm *tp = p->types[t->id];
    if (!tp) tp = p->types[t->id] = crm_calloc(1, sizeof *tp);
    if (tp->generation != crm_perm_generation(p->perm) || tp->nfields != crm_type_nfields(t)) {
        if (compute(p, t, tp)) {
            /* Fail closed: nothing granted if the grants cannot be read. */
            memset(tp->level, 0, sizeof tp->level);
            tp->generation = 0;
            tp->nfields = 0;
            free(tp->access);
            tp->access = NULL;
        }
    }
    return tp;
}

int crm_principal_level(crm_principal *p, const crm_type *type, int action)
{
    if (p->admin) return CRM_LEVEL_ALL;
    if (action < 0 || action >= CRM_ACT_COUNT) return CRM_LEVEL_NONE;
    return type_perm_of(p, type)->level[action];
}

int crm_principal_field_access(crm_principal *p, const crm_type *type, const crm_field *field)
{
    if (p->admin) return CRM_ACCESS_WRITE;
    type_perm *tp = type_perm_of(p, type);
    if (!tp->access || field->position >= tp->nfields) return CRM_ACCESS_HIDDEN;
    return tp->access[field->position];
}

static void put_col(crm_buf *sql, const char *alias, const char *col)
{
    if (alias) crm_buf_printf(sql, "%s.", alias);
    crm_buf_puts(sql, col);
}

int crm_perm_scope_sql(crm_principal *p, const crm_type *type, int action, const char *alias,
                       crm_buf *sql, json_t *params)
{
    int level = crm_principal_level(p, type, action);
    switch (level) {
    case CRM_LEVEL_ALL:
        return CRM_OK;
    case CRM_LEVEL_TEAM:
        crm_buf_puts(sql, " AND (");
        put_col(sql, alias, "owner");
        crm_buf_puts(sql, " = ?");
        json_array_append_new(params, json_integer(p->user_id));
        if (p->nteams) {
            crm_buf_puts(sql, " OR ");
            put_col(sql, alias, "team");
            crm_buf_puts(sql, " IN (");
            for (int i = 0; i < p->nteams; i++) {
                crm_buf_puts(sql, i ? ",?" : "?");
                json_array_append_new(params, json_integer(p->teams[i]));
            }
            crm_buf_putc(sql, ')');
        }
        crm_buf_putc(sql, ')');
        return CRM_OK;
    case CRM_LEVEL_OWN:
        crm_buf_puts(sql, " AND ");
        put_col(sql, alias, "owner");
        crm_buf_puts(sql, " = ?");
        json_array_append_new(params, json_integer(p->user_id));
        return CRM_OK;
    default:
        return crm_error_set(CRM_EDENIED, NULL, "you may not %s %s records",
                             crm_action_name(action), type->name);
    }
}

bool crm_perm_in_scope(crm_principal *p, const crm_type *type, int action, int64_t owner,
                       int64_t team)
{
    switch (crm_principal_level(p, type, action)) {
    case CRM_LEVEL_ALL:
        return true;
    case CRM_LEVEL_TEAM:
        if (owner == p->user_id) return true;
        for (int i = 0; i < p->nteams; i++)
            if (team && p->teams[i] == team) return true;
        return false;
    case CRM_LEVEL_OWN:
        return owner == p->user_id;
    default:
        return false;
    }
}

/* ---- Administration ---- */

static int exec_bound(crm_conn *conn, const char *sql, const json_t *params)
{
    crm_stmt *st;
    int rc = crm_stmt_prepare(conn, &st, sql);
    if (rc) return rc;
    size_t i;
    json_t *v;
    json_array_foreach(params, i, v) crm_stmt_bind_json(st, (int)i + 1, v);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

int crm_perm_grant(crm_perm *perm, int64_t role_id, const char *type, int action, int level)
{
    int rc;
    crm_conn *conn = crm_store_conn(perm->k->store);
    if (!type || (strcmp(type, "*") != 0 && !crm_schema_type(perm->k->schema, type)))
        return crm_error_set(CRM_EINVALID, "type", "unknown type \"%s\"", type ? type : "");
    if (action < 0 || action >= CRM_ACT_COUNT)
        return crm_error_set(CRM_EINVALID, "action",
                             "action must be read, create, update or delete");
    if (level < CRM_LEVEL_NONE || level > CRM_LEVEL_ALL)
        return crm_error_set(CRM_EINVALID, "level", "level must be none, own, team or all");
    if ((rc = crm_record__exists(conn, "core.role", role_id, "role"))) return rc;
    json_t *params = json_pack("[I,s,i,i]", (json_int_t)role_id, type, action, level);
    rc = exec_bound(conn,
                    "INSERT INTO core_grant(role_id, type, action, level) VALUES (?,?,?,?) "
                    "ON CONFLICT(role_id, type, action) DO UPDATE SET level = excluded.level",
                    params);
    json_decref(params);
    if (!rc) bump(perm);
    return rc;
}

int crm_perm_field(crm_perm *perm, int64_t role_id, const char *type, const char *field, int access)
{
    int rc;
    crm_conn *conn = crm_store_conn(perm->k->store);
    const crm_type *t = crm_schema_type(perm->k->schema, type);
    if (!t) return crm_error_set(CRM_EINVALID, "type", "unknown type \"%s\"", type ? type : "");
    if (!field || !crm_type_field(t, field))
        return crm_error_set(CRM_EINVALID, "field", "type %s has no field \"%s\"", type,
                             field ? field : "");
    if (access < CRM_ACCESS_HIDDEN || access > CRM_ACCESS_WRITE)
        return crm_error_set(CRM_EINVALID, "access", "access must be hidden, read or write");
    if ((rc = crm_record__exists(conn, "core.role", role_id, "role"))) return rc;
    json_t *params = json_pack("[I,s,s,i]", (json_int_t)role_id, type, field, access);
    rc = exec_bound(conn,
                    "INSERT INTO core_field_perm(role_id, type, field, access) VALUES "
                    "(?,?,?,?) ON CONFLICT(role_id, type, field) DO UPDATE SET access = "
                    "excluded.access",
                    params);
    json_decref(params);
    if (!rc) bump(perm);
    return rc;
}

/*
 * Add or remove a link row after checking both records are live: a user's
 * role, a team's member. Either way the permission generation moves.
 */
static int set_link(crm_perm *perm, const char *a_type, int64_t a, const char *a_what,
                    const char *b_type, int64_t b, const char *b_what, const char *insert_sql,
                    const char *delete_sql, bool on)
{
    int rc;
    crm_conn *conn = crm_store_conn(perm->k->store);
    if ((rc = crm_record__exists(conn, a_type, a, a_what)) ||
        (rc = crm_record__exists(conn, b_type, b, b_what)))
        return rc;
    const int64_t args[] = {a, b};
    rc = crm_conn_exec_ints(conn, on ? insert_sql : delete_sql, args, 2);
    if (!rc) bump(perm);
    return rc;
}

int crm_perm_user_role(crm_perm *perm, int64_t user_id, int64_t role_id, bool on)
{
    return set_link(perm, "core.user", user_id, "user", "core.role", role_id, "role",
                    "INSERT OR IGNORE INTO core_user_role(user_id, role_id) VALUES (?,?)",
                    "DELETE FROM core_user_role WHERE user_id = ? AND role_id = ?", on);
}

int crm_perm_team_member(crm_perm *perm, int64_t team_id, int64_t user_id, bool on)
{
    return set_link(perm, "core.team", team_id, "team", "core.user", user_id, "user",
                    "INSERT OR IGNORE INTO core_team_member(team_id, user_id) VALUES (?,?)",
                    "DELETE FROM core_team_member WHERE team_id = ? AND user_id = ?", on);
}

int crm_perm_role_json(crm_perm *perm, int64_t role_id, json_t **out)
{
    int rc;
    crm_stmt *st;
    crm_conn *conn = crm_store_conn(perm->k->store);
    json_t *grants = json_object(), *fields = json_object();
    *out = NULL;
    if ((rc = crm_record__exists(conn, "core.role", role_id, "role"))) goto done;
    if ((rc = crm_stmt_prepare(conn, &st,
                               "SELECT type, action, level FROM core_grant WHERE "
                               "role_id = ? ORDER BY type, action")))
        goto done;
    crm_stmt_bind_int(st, 1, role_id);
    while ((rc = crm_stmt_step(st)) == 1) {
        const char *type = crm_stmt_column_text(st, 0);
        json_t *g = json_object_get(grants, type);
        if (!g) json_object_set_new(grants, type, g = json_object());
        json_object_set_new(g, crm_action_name((int)crm_stmt_column_int(st, 1)),
                            json_string(crm_level_name((int)crm_stmt_column_int(st, 2))));
    }
    crm_stmt_done(st);
    if (rc < 0) goto done;
    if ((rc = crm_stmt_prepare(conn, &st,
                               "SELECT type, field, access FROM core_field_perm WHERE "
                               "role_id = ? ORDER BY type, field")))
        goto done;
    crm_stmt_bind_int(st, 1, role_id);
    while ((rc = crm_stmt_step(st)) == 1) {
        const char *type = crm_stmt_column_text(st, 0);
        json_t *g = json_object_get(fields, type);
        if (!g) json_object_set_new(fields, type, g = json_object());
        json_object_set_new(g, crm_stmt_column_text(st, 1),
                            json_string(crm_access_name((int)crm_stmt_column_int(st, 2))));
    }
    crm_stmt_done(st);
    if (rc < 0) goto done;
    *out =
        json_pack("{s:I,s:O,s:O}", "role", (json_int_t)role_id, "grants", grants, "fields", fields);
    rc = CRM_OK;
done:
    json_decref(grants);
    json_decref(fields);
    return rc;
}

/* ---- Types as a principal sees them ---- */

bool crm_type_readable(crm_ctx *ctx, const crm_type *t)
{
    return crm_principal_is_admin(ctx->who) ||
           crm_principal_level(ctx->who, t, CRM_ACT_READ) != CRM_LEVEL_NONE;
}

/* A type's schema as the principal may see it: fields they cannot read left out. */
json_t *crm_type_view(crm_ctx *ctx, const crm_type *t)
{
    json_t *o = crm_type_to_json(t);
    if (crm_principal_is_admin(ctx->who)) return o;
    json_t *fields = json_object_get(o, "fields"), *keep = json_array(), *spec;
    size_t i;
    json_array_foreach(fields, i, spec) {
        const crm_field *f = crm_type_field(t, json_string_value(json_object_get(spec, "name")));
        if (f && crm_principal_field_access(ctx->who, t, f) != CRM_ACCESS_HIDDEN)
            json_array_append(keep, spec);
    }
    json_object_set_new(o, "fields", keep);
    /* the title field may be hidden too: do not name it */
    const char *tf = json_string_value(json_object_get(o, "title_field"));
    const crm_field *f = tf ? crm_type_field(t, tf) : NULL;
    if (f && crm_principal_field_access(ctx->who, t, f) == CRM_ACCESS_HIDDEN)
        json_object_del(o, "title_field");
    return o;
}

json_t *crm_types_view(crm_ctx *ctx)
{
    const crm_type **types = NULL;
    int n;
    if (crm_schema_types(ctx->k->schema, &types, &n)) return NULL;
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        if (crm_type_readable(ctx, types[i])) json_array_append_new(data, crm_type_view(ctx, types[i]));
    free(types);
    return data;
}
