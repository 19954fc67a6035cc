/*
 * record.c — get, create, update, delete, restore and history of records.
 *
 * Every write follows DESIGN.md's data flow in one BEGIN IMMEDIATE
 * transaction: permission check → before handlers → validation → SQL →
 * full-text index → history row → after handlers → outbox row → COMMIT.
 * Anything failing rolls all of it back: nothing is ever half written.
 */
#include "record.h"
#include "jtext.h"

#include "bus.h"
#include "perm.h"

#include <stdlib.h>
#include <string.h>

/* Column positions of the system fields in crm_record__select_cols. */
enum {
    COL_ID,
    COL_CREATED_AT,
    COL_UPDATED_AT,
    COL_CREATED_BY,
    COL_OWNER,
    COL_TEAM,
    COL_VERSION,
    COL_DELETED_AT
};

void crm_ctx_init(crm_ctx *ctx, crm_kernel *k, crm_principal *who, const char *via)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->k = k;
    ctx->who = who ? who : crm_principal_system();
    ctx->via = via;
}

crm_conn *crm_ctx_conn(crm_ctx *ctx)
{
    return crm_store_conn(ctx->k->store);
}

int crm_record__exists(crm_conn *conn, const char *type, int64_t id, const char *what)
{
    crm_buf sql = CRM_BUF_INIT;
    crm_stmt *st;
    crm_buf_puts(&sql, "SELECT 1 FROM ");
    crm_buf_put_ident(&sql, type);
    crm_buf_puts(&sql, " WHERE id = ? AND deleted_at IS NULL");
    int rc = crm_stmt_prepare(conn, &st, crm_buf_str(&sql));
    crm_buf_free(&sql);
    if (rc) return rc;
    crm_stmt_bind_int(st, 1, id);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    if (rc < 0) return rc;
    return rc == 1 ? CRM_OK
                   : crm_error_set(CRM_ENOTFOUND, NULL, "no %s with id %lld", what, (long long)id);
}

int crm_record__type(crm_ctx *ctx, const char *name, const crm_type **out)
{
    *out = crm_schema_type(ctx->k->schema, name);
    if (!*out) return crm_error_set(CRM_EINVALID, NULL, "unknown type \"%s\"", name ? name : "");
    return CRM_OK;
}

void crm_record__select_cols(crm_buf *sql, const crm_type *t, int n)
{
    crm_buf_puts(sql, "id, created_at, updated_at, created_by, owner, team, version, deleted_at");
    for (int i = 0; i < n; i++) {
        crm_buf_puts(sql, ", ");
        crm_buf_put_ident(sql, t->fields[i]->name);
    }
}

static json_t *int_or_null(crm_stmt *st, int col)
{
    return crm_stmt_column_type(st, col) == CRM_COL_NULL
               ? json_null()
               : json_integer(crm_stmt_column_int(st, col));
}

static json_t *text_or_null(crm_stmt *st, int col)
{
    const char *s = crm_stmt_column_text(st, col);
    return s ? json_string(s) : json_null();
}

static bool wanted(const char *name, char *const *fields, int nfields)
{
    if (nfields <= 0) return true;
    for (int i = 0; i < nfields; i++)
        if (strcmp(fields[i], name) == 0) return true;
    return false;
}

json_t *crm_record__row(crm_ctx *ctx, const crm_type *t, int n, crm_stmt *st, bool redact,
                        char *const *fields, int nfields)
{
    json_t *r = json_object();
    json_object_set_new(r, "id", json_integer(crm_stmt_column_int(st, COL_ID)));
    static const struct {
        const char *name;
        int col;
        bool is_int;
    } sys[] = {{"created_at", COL_CREATED_AT, false},
               {"updated_at", COL_UPDATED_AT, false},
               {"created_by", COL_CREATED_BY, true},
               {"owner", COL_OWNER, true},
               {"team", COL_TEAM, true},
               {"version", COL_VERSION, true},
               {"deleted_at", COL_DELETED_AT, false}};
    for (size_t i = 0; i < CRM_ARRAY_LEN(sys); i++)
        if (wanted(sys[i].name, fields, nfields))
            json_object_set_new(r, sys[i].name,
                                sys[i].is_int ? int_or_null(st, sys[i].col)
                                              : text_or_null(st, sys[i].col));
    for (int i = 0; i < n; i++) {
        const crm_field *f = t->fields[i];
        if (!wanted(f->name, fields, nfields)) continue;
        if (redact && !crm_principal_is_admin(ctx->who) &&
            crm_principal_field_access(ctx->who, t, f) == CRM_ACCESS_HIDDEN)
            continue;
        json_object_set_new(r, f->name, crm_field_from_db(f, st, CRM_SYSTEM_COLUMNS + i));
    }
    return r;
}

/* ---- Rows as JSON text ---- */

/*
 * Lists and search write their answer as text straight from the statement:
 * building a Jansson tree of 50 records, dumping it and freeing it cost more
 * than the query itself (perf, GET ?city=…&limit=50 over HTTP: 27% building
 * the objects, 31% json_dumps, 10% freeing). The text is byte for byte what
 * json_dumps(JSON_COMPACT) of crm_record__row gives: same keys in the same
 * order, strings escaped as Jansson escapes them, a string that is not valid
 * UTF-8 left out as Jansson leaves it out.
 */

static const char sys_names[][12] = {"created_at", "updated_at", "created_by", "owner",
                                     "team",       "version",    "deleted_at"};
static const bool sys_is_int[] = {false, false, true, true, true, true, false};

/* One emitted column: its select-list position and its key, pre-encoded (,"name":). */
typedef struct plan_col {
    int col;
    const crm_field *field; /* NULL: a system column */
    bool is_int;
    size_t key, keylen; /* offset and length in plan->keys */
} plan_col;

struct crm_row_plan {
    int ncols;
    crm_buf keys;
    plan_col cols[];
};

/* Room for `n` more bytes (and the NUL) in `b`, written by hand after it. */
crm_row_plan *crm_record__row_plan(crm_ctx *ctx, const crm_type *t, int n, bool redact,
                                   char *const *fields, int nfields)
{
    crm_row_plan *plan =
        crm_calloc(1, sizeof *plan + (size_t)(CRM_SYSTEM_COLUMNS - 1 + n) * sizeof(plan_col));
    bool admin = crm_principal_is_admin(ctx->who);
    for (int i = 0; i < CRM_SYSTEM_COLUMNS - 1 + n; i++) {
        const crm_field *f =
            i < CRM_SYSTEM_COLUMNS - 1 ? NULL : t->fields[i - (CRM_SYSTEM_COLUMNS - 1)];
        const char *name = f ? f->name : sys_names[i];
        if (!wanted(name, fields, nfields)) continue;
        if (f && redact && !admin &&
            crm_principal_field_access(ctx->who, t, f) == CRM_ACCESS_HIDDEN)
            continue;
        plan_col *c = &plan->cols[plan->ncols++];
        c->col = i + 1; /* after id */
        c->field = f;
        c->is_int = !f && sys_is_int[i];
        c->key = plan->keys.len;
        crm_buf_putc(&plan->keys, ',');
        crm_jtext_string(&plan->keys, name, strlen(name), false);
        crm_buf_putc(&plan->keys, ':');
        c->keylen = plan->keys.len - c->key;
    }
    return plan;
}

void crm_record__row_plan_free(crm_row_plan *plan)
{
    if (!plan) return;
    crm_buf_free(&plan->keys);
    free(plan);
}

/* One column's value, or false when Jansson would have left the key out. */
static bool put_value(crm_buf *b, const plan_col *c, crm_stmt *st)
{
    if (crm_stmt_column_type(st, c->col) == CRM_COL_NULL) {
        crm_buf_put(b, "null", 4);
        return true;
    }
    int kind = c->field ? c->field->kind : c->is_int ? CRM_FIELD_INT : CRM_FIELD_TEXT;
    switch (kind) {
    case CRM_FIELD_INT:
    case CRM_FIELD_REF:
        crm_jtext_int(b, crm_stmt_column_int(st, c->col));
        return true;
    case CRM_FIELD_BOOL:
        crm_buf_puts(b, crm_stmt_column_int(st, c->col) ? "true" : "false");
        return true;
    case CRM_FIELD_DECIMAL:
    case CRM_FIELD_JSON: {
        /* Rare kinds: the same conversion as crm_record__row, then dumped. */
        json_t *v = crm_field_from_db(c->field, st, c->col);
        char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        json_decref(v);
        if (!text) return false;
        crm_buf_puts(b, text);
        free(text);
        return true;
    }
    default: {
        const char *s = crm_stmt_column_text(st, c->col);
        if (!s) {
            crm_buf_put(b, "null", 4);
            return true;
        }
        return crm_jtext_string(b, s, (size_t)crm_stmt_column_bytes(st, c->col), true);
    }
    }
}

void crm_record__put_field(crm_buf *b, const crm_field *f, crm_stmt *st, int col)
{
    plan_col c = {col, f, false, 0, 0};
    size_t mark = b->len;
    if (!put_value(b, &c, st)) {
        b->ptr[b->len = mark] = '\0';
        crm_buf_put(b, "null", 4);
    }
}


void crm_record__row_text(crm_buf *b, const crm_row_plan *plan, crm_stmt *st)
{
    crm_buf_put(b, "{\"id\":", 6);
    crm_jtext_int(b, crm_stmt_column_int(st, COL_ID));
    for (int i = 0; i < plan->ncols; i++) {
        const plan_col *c = &plan->cols[i];
        size_t mark = b->len;
        crm_buf_put(b, plan->keys.ptr + c->key, c->keylen);
        if (!put_value(b, c, st)) b->ptr[b->len = mark] = '\0';
    }
    crm_buf_putc(b, '}');
}

json_t *crm_record_redact(crm_ctx *ctx, const crm_type *type, json_t *record)
{
    /* Walk the schema by position (no lookup by name per key); system fields first. */
    json_t *r = json_object(), *v;
    for (int i = 0; crm_system_fields[i]; i++)
        if ((v = json_object_get(record, crm_system_fields[i])))
            json_object_set(r, crm_system_fields[i], v);
    int n = crm_type_nfields(type);
    bool admin = crm_principal_is_admin(ctx->who);
    for (int i = 0; i < n; i++) {
        const crm_field *f = type->fields[i];
        if (!(v = json_object_get(record, f->name))) continue;
        if (!admin && crm_principal_field_access(ctx->who, type, f) == CRM_ACCESS_HIDDEN) continue;
        json_object_set(r, f->name, v);
    }
    return r;
}

/*
 * Read one row (system view) with `deleted` selecting live or deleted rows.
 * *out NULL when there is none.
 */
static int load_row_as(crm_ctx *ctx, const crm_type *t, int64_t id, bool deleted, bool redact,
                       json_t **out)
{
    int rc, n = crm_type_nfields(t);
    crm_stmt *st;
    crm_buf sql = CRM_BUF_INIT;
    *out = NULL;
    crm_buf_puts(&sql, "SELECT ");
    crm_record__select_cols(&sql, t, n);
    crm_buf_puts(&sql, " FROM ");
    crm_buf_put_ident(&sql, t->name);
    crm_buf_puts(&sql, deleted ? " WHERE id = ? AND deleted_at IS NOT NULL"
                               : " WHERE id = ? AND deleted_at IS NULL");
    rc = crm_stmt_prepare(crm_ctx_conn(ctx), &st, crm_buf_str(&sql));
    crm_buf_free(&sql);
    if (rc) return rc;
    crm_stmt_bind_int(st, 1, id);
    rc = crm_stmt_step(st);
    if (rc == 1) *out = crm_record__row(ctx, t, n, st, redact, NULL, 0);
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

static int load_row(crm_ctx *ctx, const crm_type *t, int64_t id, bool deleted, json_t **out)
{
    return load_row_as(ctx, t, id, deleted, false, out);
}

static int64_t json_int_field(json_t *r, const char *key)
{
    return json_integer_value(json_object_get(r, key));
}

static int not_found(const crm_type *t, int64_t id)
{
    return crm_error_set(CRM_ENOTFOUND, NULL, "no %s record with id %lld", t->name, (long long)id);
}

int crm_record_get(crm_ctx *ctx, const char *type, int64_t id, bool deleted, json_t **out)
{
    const crm_type *t;
    json_t *row = NULL;
    int rc;
    *out = NULL;
    if ((rc = crm_record__type(ctx, type, &t))) return rc;
    /* Redacted as it is read: owner and team (system fields) stay for the scope check. */
    if ((rc = load_row_as(ctx, t, id, deleted, true, &row))) return rc;
    if (!row || !crm_perm_in_scope(ctx->who, t, CRM_ACT_READ, json_int_field(row, "owner"),
                                   json_int_field(row, "team"))) {
        json_decref(row);
        return not_found(t, id);
    }
    *out = row;
    return CRM_OK;
}

/* ---- Writing ---- */

/* Reword SQLite's unique-constraint message into one naming the field. */
static int unique_error(const crm_type *t)
{
    const char *msg = crm_error_last()->message;
    const char *dot = strrchr(msg, '.');
    char field[CRM_NAME_MAX + 1] = "";
    if (dot && strlen(dot + 1) <= CRM_NAME_MAX) snprintf(field, sizeof field, "%s", dot + 1);
    if (!*field || !crm_type_field(t, field))
        return crm_error_set(CRM_ECONFLICT, NULL, "a %s record with these values already exists",
                             t->name);
    return crm_error_set(CRM_ECONFLICT, field,
                         "field \"%s\": another %s record already has this "
                         "value",
                         field, t->name);
}

/* The ref target must be a live record the principal can see. */
static int check_ref(crm_ctx *ctx, const crm_field *f, json_t *stored)
{
    if (json_is_null(stored)) return CRM_OK;
    const crm_type *target = crm_schema_type(ctx->k->schema, f->ref_type);
    json_t *row = NULL;
    int rc;
    if (!target)
        return crm_error_set(CRM_EINVALID, f->name,
                             "field \"%s\": its target type %s is not "
                             "installed",
                             f->name, f->ref_type);
    if ((rc = load_row(ctx, target, json_integer_value(stored), false, &row))) return rc;
    bool ok = row && crm_perm_in_scope(ctx->who, target, CRM_ACT_READ, json_int_field(row, "owner"),
                                       json_int_field(row, "team"));
    json_decref(row);
    if (!ok)
        return crm_error_set(CRM_EINVALID, f->name, "field \"%s\": no %s record with id %lld",
                             f->name, f->ref_type, (long long)json_integer_value(stored));
    return CRM_OK;
}

/*
 * Check the keys of a caller's input: known fields the principal may write.
 * System keys other than owner and team are ignored (never mass-assigned).
 */
static int check_input(crm_ctx *ctx, const crm_type *t, json_t *input, bool update)
{
    const char *key;
    json_t *v;
    if (!json_is_object(input))
        return crm_error_set(CRM_EINVALID, NULL, "the record must be a JSON object");
    json_object_foreach(input, key, v)
    {
        if (crm_is_system_field(key)) {
            if ((strcmp(key, "owner") == 0 || strcmp(key, "team") == 0) && !json_is_null(v) &&
                !json_is_integer(v))
                return crm_error_set(CRM_EINVALID, key, "field \"%s\": expected a %s id", key,
                                     key[0] == 'o' ? "user" : "team");
            continue;
        }
        const crm_field *f = crm_type_field(t, key);
        int access = f ? crm_principal_field_access(ctx->who, t, f) : CRM_ACCESS_HIDDEN;
        if (!f || access == CRM_ACCESS_HIDDEN)
            return crm_error_set(CRM_EINVALID, key, "unknown field \"%s\" for %s", key, t->name);
        if (access != CRM_ACCESS_WRITE)
            return crm_error_set(CRM_EDENIED, key, "field \"%s\" is read-only for you", key);
        if (update && (f->flags & CRM_FIELD_READONLY) && ctx->who != crm_principal_system())
            return crm_error_set(CRM_EDENIED, key, "field \"%s\" cannot be changed once set", key);
    }
    return CRM_OK;
}

/* Whether `user` shares a team with the principal. */
static bool shares_team(crm_ctx *ctx, int64_t user)
{
    int n;
    const int64_t *teams = crm_principal_teams(ctx->who, &n);
    bool in = false;
    for (int i = 0; i < n && !in; i++) {
        crm_stmt *st;
        if (crm_stmt_prepare(crm_ctx_conn(ctx), &st,
                             "SELECT 1 FROM core_team_member WHERE "
                             "user_id = ? AND team_id = ?"))
            return false;
        crm_stmt_bind_int(st, 1, user);
        crm_stmt_bind_int(st, 2, teams[i]);
        in = crm_stmt_step(st) == 1;
        crm_stmt_done(st);
    }
    return in;
}

/*
 * Decide owner and team of a new record or of an ownership change, within
 * the principal's `action` level: "own" keeps everything the principal's,
 * "team" allows users and teams the principal shares, "all" anything.
 */
static int check_ownership(crm_ctx *ctx, const crm_type *t, int action, json_t *owner_v,
                           json_t *team_v, int64_t *owner, int64_t *team)
{
    int level = crm_principal_level(ctx->who, t, action);
    int64_t me = crm_principal_user(ctx->who);
    int nteams;
    const int64_t *teams = crm_principal_teams(ctx->who, &nteams);
    if (owner_v && json_is_integer(owner_v) && json_integer_value(owner_v) != *owner) {
        int64_t o = json_integer_value(owner_v);
        int rc = crm_record__exists(crm_ctx_conn(ctx), "core.user", o, "user");
        if (rc == CRM_ENOTFOUND)
            rc = crm_error_set(CRM_EINVALID, "owner", "no user with id %lld", (long long)o);
        if (rc) return rc;
        bool ok =
            level == CRM_LEVEL_ALL || o == me || (level == CRM_LEVEL_TEAM && shares_team(ctx, o));
        if (!ok)
            return crm_error_set(CRM_EDENIED, "owner", "you may not give %s records to user %lld",
                                 t->name, (long long)o);
        *owner = o;
    } else if (owner_v && json_is_null(owner_v)) {
        if (level != CRM_LEVEL_ALL)
            return crm_error_set(CRM_EDENIED, "owner",
                                 "you may not leave a %s record without an "
                                 "owner",
                                 t->name);
        *owner = 0;
    }
    if (team_v && json_is_integer(team_v) && json_integer_value(team_v) != *team) {
        int64_t tm = json_integer_value(team_v);
        bool mine = false;
        for (int i = 0; i < nteams; i++)
            if (teams[i] == tm) mine = true;
        int rc = crm_record__exists(crm_ctx_conn(ctx), "core.team", tm, "team");
        if (rc == CRM_ENOTFOUND)
            rc = crm_error_set(CRM_EINVALID, "team", "no team with id %lld", (long long)tm);
        if (rc) return rc;
        if (level != CRM_LEVEL_ALL && !mine)
            return crm_error_set(CRM_EDENIED, "team", "you may not give %s records to team %lld",
                                 t->name, (long long)tm);
        *team = tm;
    } else if (team_v && json_is_null(team_v)) {
        *team = 0;
    }
    return CRM_OK;
}

static void bind_owner(crm_stmt *st, int i, int64_t v)
{
    if (v)
        crm_stmt_bind_int(st, i, v);
    else
        crm_stmt_bind_null(st, i);
}

/*
 * Keep the FTS index in step with a record's searchable fields. The index
 * write is deferred to just before the transaction commits (store.h,
 * crm_tx_before_commit): FTS5 flushes its pending data at every SAVEPOINT, and
 * every record write runs in one, so indexing row by row would write one index
 * segment per row. A write in a savepoint that rolls back is dropped with it.
 * Inside the writing transaction, searches do not see the change yet.
 */
typedef struct fts_op {
    const crm_type *t;
    int64_t id;
    bool remove, insert;
    json_t *values; /* stored form, by field name (insert) */
} fts_op;

static void fts_op_free(void *arg)
{
    fts_op *op = arg;
    json_decref(op->values);
    free(op);
}

static int fts_apply(crm_conn *conn, void *arg)
{
    fts_op *op = arg;
    const crm_type *t = op->t;
    int rc = CRM_OK, n = crm_type_nfields(t);
    crm_stmt *st;
    crm_buf sql = CRM_BUF_INIT;
    if (op->remove) {
        crm_buf_puts(&sql, "DELETE FROM ");
        crm_buf_put_ident(&sql, t->fts_table);
        crm_buf_puts(&sql, " WHERE rowid = ?");
        if ((rc = crm_stmt_prepare(conn, &st, crm_buf_str(&sql)))) goto done;
        crm_stmt_bind_int(st, 1, op->id);
        rc = crm_stmt_step(st);
        crm_stmt_done(st);
        if (rc < 0) goto done;
        rc = CRM_OK;
    }
    if (op->insert) {
        int k = 0;
        sql.len = 0;
        crm_buf_puts(&sql, "INSERT INTO ");
        crm_buf_put_ident(&sql, t->fts_table);
        crm_buf_puts(&sql, "(rowid");
        for (int i = 0; i < n; i++)
            if (t->fields[i]->flags & CRM_FIELD_SEARCHABLE) {
                crm_buf_putc(&sql, ',');
                crm_buf_put_ident(&sql, t->fields[i]->name);
                k++;
            }
        crm_buf_puts(&sql, ") VALUES (?");
        for (int i = 0; i < k; i++) crm_buf_puts(&sql, ",?");
        crm_buf_putc(&sql, ')');
        if ((rc = crm_stmt_prepare(conn, &st, crm_buf_str(&sql)))) goto done;
        crm_stmt_bind_int(st, 1, op->id);
        k = 2;
        for (int i = 0; i < n; i++)
            if (t->fields[i]->flags & CRM_FIELD_SEARCHABLE)
                crm_stmt_bind_json(st, k++, json_object_get(op->values, t->fields[i]->name));
        rc = crm_stmt_step(st);
        crm_stmt_done(st);
        rc = rc < 0 ? rc : CRM_OK;
    }
done:
    crm_buf_free(&sql);
    return rc;
}

static int fts_sync(crm_ctx *ctx, const crm_type *t, int64_t id, json_t *stored_values, bool remove,
                    bool insert)
{
    if (!t->searchable) return CRM_OK;
    fts_op *op = crm_calloc(1, sizeof *op);
    op->t = t;
    op->id = id;
    op->remove = remove;
    op->insert = insert;
    if (insert) {
        int n = crm_type_nfields(t);
        op->values = json_object();
        for (int i = 0; i < n; i++) {
            json_t *v;
            if ((t->fields[i]->flags & CRM_FIELD_SEARCHABLE) &&
                (v = json_object_get(stored_values, t->fields[i]->name)))
                json_object_set(op->values, t->fields[i]->name, v);
        }
    }
    crm_tx_before_commit(crm_ctx_conn(ctx), fts_apply, op, fts_op_free);
    return CRM_OK;
}

static int write_history_text(crm_ctx *ctx, const crm_type *t, int64_t id, const char *action,
                              char *text, const char *at);

static int write_history(crm_ctx *ctx, const crm_type *t, int64_t id, const char *action,
                         json_t *changes, const char *at)
{
    return write_history_text(ctx, t, id, action, json_dumps(changes, JSON_COMPACT), at);
}

/*
 * The history of a create, {"field":[null,value],...} over the non-null
 * stored values, written as text: what json_dumps of the changes object
 * gives, without building it (an import writes a million of these).
 */
static char *create_changes_text(const crm_type *t, json_t *stored)
{
    crm_buf b = CRM_BUF_INIT;
    const char *key;
    json_t *v;
    int n = 0;
    crm_buf_putc(&b, '{');
    json_object_foreach(stored, key, v)
    {
        if (json_is_null(v)) continue;
        json_t *api = crm_field_stored_to_api(crm_type_field(t, key), v);
        if (!api) continue; /* as json_pack("[n,o]") would fail and leave the key out */
        if (n++) crm_buf_putc(&b, ',');
        crm_jtext_string(&b, key, strlen(key), false);
        crm_buf_puts(&b, ":[null,");
        if (json_is_string(api)) {
            crm_jtext_string(&b, json_string_value(api), json_string_length(api), false);
        } else if (json_is_integer(api)) {
            crm_jtext_int(&b, json_integer_value(api));
        } else {
            crm_jtext_value(&b, api, CRM_JTEXT_EXACT);
        }
        crm_buf_putc(&b, ']');
        json_decref(api);
    }
    crm_buf_putc(&b, '}');
    return crm_buf_detach(&b);
}

static int write_history_text(crm_ctx *ctx, const crm_type *t, int64_t id, const char *action,
                              char *text, const char *at)
{
    crm_stmt *st;
    int rc = crm_stmt_prepare(crm_ctx_conn(ctx), &st,
                              "INSERT INTO core_history(type, record_id, at, user_id, via, action, "
                              "changes) VALUES (?, ?, ?, ?, ?, ?, ?)");
    if (!rc) {
        crm_stmt_bind_text(st, 1, t->name, -1);
        crm_stmt_bind_int(st, 2, id);
        crm_stmt_bind_text(st, 3, at, -1);
        bind_owner(st, 4, crm_principal_user(ctx->who));
        if (ctx->via)
            crm_stmt_bind_text(st, 5, ctx->via, -1);
        else
            crm_stmt_bind_null(st, 5);
        crm_stmt_bind_text(st, 6, action, -1);
        crm_stmt_bind_text(st, 7, text, -1);
        rc = crm_stmt_step(st);
        crm_stmt_done(st);
        rc = rc < 0 ? rc : CRM_OK;
    }
    free(text);
    return rc;
}

/*
 * After the row is written: append to the outbox and run after handlers with
 * the record as stored. `row` is that record when the caller could build it
 * from what it wrote (create, update: no read-back); NULL reads it back.
 * Takes `row`; on success *stored_out owns it.
 */
static int finish_write(crm_ctx *ctx, const crm_type *t, int64_t id, const char *what, bool deleted,
                        json_t *old, json_t *changed, json_t *row, json_t **stored_out)
{
    int rc;
    char topic[CRM_NAME_MAX * 2 + 16];
    snprintf(topic, sizeof topic, "%s.%s", t->name, what);
    if (!row && (rc = load_row(ctx, t, id, deleted, &row))) return rc;
    if (!row)
        return crm_error_set(CRM_EINTERNAL, NULL, "%s %lld vanished while written", t->name,
                             (long long)id);
    crm_event ev = {.topic = topic,
                    .type = t->name,
                    .id = id,
                    .record = row,
                    .old = old,
                    .changed = changed,
                    .user_id = crm_principal_user(ctx->who),
                    .via = ctx->via};
    /* Outbox first: changes made by after handlers must follow this one in the stream. */
    if ((rc = crm_bus_append(ctx, &ev)) || (rc = crm_bus_dispatch(ctx, &ev, CRM_PHASE_AFTER))) {
        json_decref(row);
        return rc;
    }
    *stored_out = row;
    return CRM_OK;
}

static json_t *id_or_null(int64_t v)
{
    return v ? json_integer(v) : json_null();
}

/*
 * The record exactly as a read of the row would return it (system view), from
 * what was written: the system fields, then each field's stored value in API
 * form (absent: null).
 */
static json_t *row_from_values(const crm_type *t, int n, int64_t id, const char *created_at,
                               const char *updated_at, int64_t created_by, int64_t owner,
                               int64_t team, int64_t version, json_t *stored)
{
    json_t *r = json_object();
    json_object_set_new(r, "id", json_integer(id));
    json_object_set_new(r, "created_at", json_string(created_at));
    json_object_set_new(r, "updated_at", json_string(updated_at));
    json_object_set_new(r, "created_by", id_or_null(created_by));
    json_object_set_new(r, "owner", id_or_null(owner));
    json_object_set_new(r, "team", id_or_null(team));
    json_object_set_new(r, "version", json_integer(version));
    json_object_set_new(r, "deleted_at", json_null());
    for (int i = 0; i < n; i++) {
        const crm_field *f = t->fields[i];
        json_t *s = json_object_get(stored, f->name);
        json_object_set_new(r, f->name, s ? crm_field_stored_to_api(f, s) : json_null());
    }
    return r;
}

/*
 * Validate `values` (API form, after before handlers) into stored form.
 * `only` limits the check to the named fields (updates); required fields are
 * checked over the whole record.
 */
static int validate(crm_ctx *ctx, const crm_type *t, json_t *values, json_t *changed,
                    json_t **stored_out)
{
    int rc = CRM_OK, n = crm_type_nfields(t);
    json_t *stored = json_object();
    *stored_out = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(values, key, v)
    {
        if (crm_is_system_field(key)) continue;
        if (!crm_type_field(t, key)) {
            rc = crm_error_set(CRM_EINVALID, key, "unknown field \"%s\" for %s", key, t->name);
            goto done;
        }
    }
    for (int i = 0; i < n; i++) {
        const crm_field *f = t->fields[i];
        json_t *value = json_object_get(values, f->name), *s = NULL;
        if ((f->flags & CRM_FIELD_REQUIRED) &&
            (!value || json_is_null(value) ||
             (json_is_string(value) && !*json_string_value(value)))) {
            rc = crm_error_set(CRM_EINVALID, f->name, "field \"%s\" is required", f->name);
            goto done;
        }
        if (!value) continue;
        if ((rc = crm_field_to_db(f, value, &s))) goto done;
        json_object_set_new(stored, f->name, s);
        bool check = !changed;
        for (size_t j = 0; changed && j < json_array_size(changed); j++)
            if (strcmp(json_string_value(json_array_get(changed, j)), f->name) == 0) check = true;
        if (f->kind == CRM_FIELD_REF && check && (rc = check_ref(ctx, f, s))) goto done;
    }
    *stored_out = stored;
    stored = NULL;
done:
    json_decref(stored);
    return rc;
}

int crm_record_create(crm_ctx *ctx, const char *type, json_t *fields, json_t **out)
{
    return crm_record__create(ctx, type, fields, out, true);
}

int crm_record__create(crm_ctx *ctx, const char *type, json_t *fields, json_t **out, bool own_tx)
{
    const crm_type *t;
    crm_conn *conn = crm_ctx_conn(ctx);
    json_t *values = NULL, *stored = NULL, *row = NULL, *changes = NULL;
    crm_buf sql = CRM_BUF_INIT;
    crm_stmt *st = NULL;
    bool in_tx = false;
    int rc, n;
    char topic[CRM_NAME_MAX * 2 + 16], at[21];
    if (out) *out = NULL;
    if ((rc = crm_record__type(ctx, type, &t))) return rc;
    if (crm_principal_level(ctx->who, t, CRM_ACT_CREATE) == CRM_LEVEL_NONE)
        return crm_error_set(CRM_EDENIED, NULL, "you may not create %s records", t->name);
    if ((rc = check_input(ctx, t, fields, false))) return rc;

    int nteams;
    const int64_t *teams = crm_principal_teams(ctx->who, &nteams);
    int64_t owner = crm_principal_user(ctx->who), team = nteams ? teams[0] : 0;
    if (own_tx) {
        if ((rc = crm_tx_begin(conn))) return rc;
        in_tx = true;
    }
    if ((rc = check_ownership(ctx, t, CRM_ACT_CREATE, json_object_get(fields, "owner"),
                              json_object_get(fields, "team"), &owner, &team)))
        goto done;

    /* The record as the before handlers see it: input plus defaults. */
    values = json_object();
    n = crm_type_nfields(t);
    for (int i = 0; i < n; i++) {
        const crm_field *f = t->fields[i];
        json_t *v = json_object_get(fields, f->name);
        if (v)
            json_object_set(values, f->name, v);
        else if (f->dflt)
            json_object_set(values, f->name, f->dflt);
    }
    snprintf(topic, sizeof topic, "%s.created", t->name);
    crm_event ev = {.topic = topic,
                    .type = t->name,
                    .record = values,
                    .user_id = crm_principal_user(ctx->who),
                    .via = ctx->via};
    if ((rc = crm_bus_dispatch(ctx, &ev, CRM_PHASE_BEFORE))) goto done;
    if ((rc = validate(ctx, t, values, NULL, &stored))) goto done;

    crm_time_format(crm_now(), at);
    crm_buf_puts(&sql, "INSERT INTO ");
    crm_buf_put_ident(&sql, t->name);
    crm_buf_puts(&sql, " (created_at, updated_at, created_by, owner, team, version");
    for (int i = 0; i < n; i++) {
        crm_buf_puts(&sql, ", ");
        crm_buf_put_ident(&sql, t->fields[i]->name);
    }
    crm_buf_puts(&sql, ") VALUES (?, ?, ?, ?, ?, 1");
    for (int i = 0; i < n; i++)
        crm_buf_puts(&sql, ", ?");
    crm_buf_putc(&sql, ')');
    if ((rc = crm_stmt_prepare(conn, &st, crm_buf_str(&sql)))) goto done;
    crm_stmt_bind_text(st, 1, at, -1);
    crm_stmt_bind_text(st, 2, at, -1);
    bind_owner(st, 3, crm_principal_user(ctx->who));
    bind_owner(st, 4, owner);
    bind_owner(st, 5, team);
    for (int i = 0; i < n; i++)
        crm_stmt_bind_json(st, 6 + i, json_object_get(stored, t->fields[i]->name));
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    if (rc == CRM_ECONFLICT) rc = unique_error(t);
    if (rc < 0) goto done;
    int64_t id = crm_conn_last_rowid(conn);
    if ((rc = fts_sync(ctx, t, id, stored, false, true))) goto done;

    if ((rc = write_history_text(ctx, t, id, "create", create_changes_text(t, stored), at)))
        goto done;
    json_t *written = row_from_values(t, n, id, at, at, crm_principal_user(ctx->who), owner, team,
                                      1, stored);
    if ((rc = finish_write(ctx, t, id, "created", false, NULL, NULL, written, &row))) goto done;
    if (in_tx && (rc = crm_tx_commit(conn))) {
        in_tx = false;
        goto done;
    }
    in_tx = false;
    if (out) *out = crm_record_redact(ctx, t, row);
done:
    if (in_tx) crm_tx_rollback(conn);
    crm_buf_free(&sql);
    json_decref(values);
    json_decref(stored);
    json_decref(row);
    json_decref(changes);
    return rc;
}

/*
 * Load a record for a write: live (or deleted, for restore), visible (else
 * not found) and within `action`'s scope (else denied), at the expected version.
 */
static int load_for_write(crm_ctx *ctx, const crm_type *t, int64_t id, bool deleted, int action,
                          int64_t expect_version, json_t **out)
{
    json_t *row;
    int rc;
    *out = NULL;
    if ((rc = load_row(ctx, t, id, deleted, &row))) return rc;
    int64_t owner = row ? json_int_field(row, "owner") : 0,
            team = row ? json_int_field(row, "team") : 0;
    if (!row || !crm_perm_in_scope(ctx->who, t, CRM_ACT_READ, owner, team)) {
        json_decref(row);
        return not_found(t, id);
    }
    if (!crm_perm_in_scope(ctx->who, t, action, owner, team)) {
        json_decref(row);
        return crm_error_set(CRM_EDENIED, NULL, "you may not %s this %s record",
                             crm_action_name(action), t->name);
    }
    int64_t version = json_int_field(row, "version");
    if (expect_version > 0 && version != expect_version) {
        json_decref(row);
        return crm_error_set(CRM_ESTALE, NULL,
                             "%s %lld has changed: you have version %lld, it is now at %lld",
                             t->name, (long long)id, (long long)expect_version, (long long)version);
    }
    *out = row;
    return CRM_OK;
}

int crm_record_update(crm_ctx *ctx, const char *type, int64_t id, json_t *patch,
                      int64_t expect_version, json_t **out)
{
    const crm_type *t;
    crm_conn *conn = crm_ctx_conn(ctx);
    json_t *old = NULL, *values = NULL, *stored = NULL, *changed = NULL, *changes = NULL,
           *row = NULL;
    crm_buf sql = CRM_BUF_INIT;
    crm_stmt *st = NULL;
    bool in_tx = false, searchable_changed = false;
    int rc, n;
    char topic[CRM_NAME_MAX * 2 + 16], at[21];
    if (out) *out = NULL;
    if ((rc = crm_record__type(ctx, type, &t))) return rc;
    if ((rc = check_input(ctx, t, patch, true))) return rc;
    if ((rc = crm_tx_begin(conn))) return rc;
    in_tx = true;
    if ((rc = load_for_write(ctx, t, id, false, CRM_ACT_UPDATE, expect_version, &old))) goto done;
    int64_t owner = json_int_field(old, "owner"), team = json_int_field(old, "team");
    int64_t new_owner = owner, new_team = team;
    if ((rc = check_ownership(ctx, t, CRM_ACT_UPDATE, json_object_get(patch, "owner"),
                              json_object_get(patch, "team"), &new_owner, &new_team)))
        goto done;

    n = crm_type_nfields(t);
    values = json_object();
    for (int i = 0; i < n; i++) {
        const char *name = t->fields[i]->name;
        json_t *v = json_object_get(patch, name);
        json_object_set(values, name, v ? v : json_object_get(old, name));
    }
    snprintf(topic, sizeof topic, "%s.updated", t->name);
    /* Changed fields as the caller asked; handlers see them and may change more. */
    changed = json_array();
    for (int i = 0; i < n; i++)
        if (json_object_get(patch, t->fields[i]->name))
            json_array_append_new(changed, json_string(t->fields[i]->name));
    crm_event ev = {.topic = topic,
                    .type = t->name,
                    .id = id,
                    .record = values,
                    .old = old,
                    .changed = changed,
                    .user_id = crm_principal_user(ctx->who),
                    .via = ctx->via};
    if ((rc = crm_bus_dispatch(ctx, &ev, CRM_PHASE_BEFORE))) goto done;
    json_array_clear(changed);
    for (int i = 0; i < n; i++) {
        const crm_field *f = t->fields[i];
        json_t *nv = json_object_get(values, f->name), *s = NULL, *api;
        if (!nv) continue;
        if (crm_field_to_db(f, nv, &s)) {
            rc = crm_error_last()->code;
            goto done;
        }
        api = crm_field_stored_to_api(f, s);
        json_decref(s);
        if (!json_equal(api, json_object_get(old, f->name))) {
            json_array_append_new(changed, json_string(f->name));
            if (f->flags & CRM_FIELD_SEARCHABLE) searchable_changed = true;
        }
        json_decref(api);
    }
    if ((rc = validate(ctx, t, values, changed, &stored))) goto done;
    bool owner_changed = new_owner != owner || new_team != team;
    if (json_array_size(changed) == 0 && !owner_changed) {
        /* Nothing to write: no version bump, no history, no event. */
        if (out) *out = crm_record_redact(ctx, t, old);
        goto done;
    }

    crm_time_format(crm_now(), at);
    crm_buf_puts(&sql, "UPDATE ");
    crm_buf_put_ident(&sql, t->name);
    crm_buf_puts(&sql, " SET updated_at = ?, version = version + 1, owner = ?, team = ?");
    size_t i;
    json_t *name;
    json_array_foreach(changed, i, name)
    {
        crm_buf_puts(&sql, ", ");
        crm_buf_put_ident(&sql, json_string_value(name));
        crm_buf_puts(&sql, " = ?");
    }
    crm_buf_puts(&sql, " WHERE id = ?");
    if ((rc = crm_stmt_prepare(conn, &st, crm_buf_str(&sql)))) goto done;
    crm_stmt_bind_text(st, 1, at, -1);
    bind_owner(st, 2, new_owner);
    bind_owner(st, 3, new_team);
    int p = 4;
    json_array_foreach(changed, i, name)
        crm_stmt_bind_json(st, p++, json_object_get(stored, json_string_value(name)));
    crm_stmt_bind_int(st, p, id);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    if (rc == CRM_ECONFLICT) rc = unique_error(t);
    if (rc < 0) goto done;
    if (searchable_changed && (rc = fts_sync(ctx, t, id, stored, true, true))) goto done;

    changes = json_object();
    json_array_foreach(changed, i, name)
    {
        const char *fn = json_string_value(name);
        json_object_set_new(
            changes, fn,
            json_pack("[O,o]", json_object_get(old, fn),
                      crm_field_stored_to_api(crm_type_field(t, fn), json_object_get(stored, fn))));
    }
    if (new_owner != owner)
        json_object_set_new(changes, "owner",
                            json_pack("[O,o]", json_object_get(old, "owner"),
                                      new_owner ? json_integer(new_owner) : json_null()));
    if (new_team != team)
        json_object_set_new(changes, "team",
                            json_pack("[O,o]", json_object_get(old, "team"),
                                      new_team ? json_integer(new_team) : json_null()));
    if ((rc = write_history(ctx, t, id, "update", changes, at))) goto done;
    /* The old row with what changed: stored holds every field's value after the update. */
    json_t *written = row_from_values(t, n, id, json_string_value(json_object_get(old, "created_at")),
                                      at, json_int_field(old, "created_by"), new_owner, new_team,
                                      json_int_field(old, "version") + 1, stored);
    if ((rc = finish_write(ctx, t, id, "updated", false, old, changed, written, &row))) goto done;
    if ((rc = crm_tx_commit(conn))) {
        in_tx = false;
        goto done;
    }
    in_tx = false;
    if (out) *out = crm_record_redact(ctx, t, row);
done:
    if (in_tx) {
        if (rc)
            crm_tx_rollback(conn);
        else if ((rc = crm_tx_commit(conn)) && out) {
            json_decref(*out);
            *out = NULL;
        }
    }
    crm_buf_free(&sql);
    json_decref(old);
    json_decref(values);
    json_decref(stored);
    json_decref(changed);
    json_decref(changes);
    json_decref(row);
    return rc;
}

/* Delete (soft) or restore: flip deleted_at, bump the version, keep FTS to live rows. */
static int set_deleted(crm_ctx *ctx, const char *type, int64_t id, int64_t expect_version,
                       bool restore, json_t **out)
{
    const crm_type *t;
    crm_conn *conn = crm_ctx_conn(ctx);
    json_t *old = NULL, *row = NULL, *changes = NULL, *stored = NULL;
    crm_buf sql = CRM_BUF_INIT;
    crm_stmt *st;
    int rc;
    char topic[CRM_NAME_MAX * 2 + 16], at[21];
    if (out) *out = NULL;
    if ((rc = crm_record__type(ctx, type, &t))) return rc;
    if ((rc = crm_tx_begin(conn))) return rc;
    if ((rc = load_for_write(ctx, t, id, restore, CRM_ACT_DELETE, expect_version, &old))) goto done;
    snprintf(topic, sizeof topic, "%s.%s", t->name, restore ? "restored" : "deleted");
    crm_event ev = {.topic = topic,
                    .type = t->name,
                    .id = id,
                    .record = old,
                    .old = old,
                    .user_id = crm_principal_user(ctx->who),
                    .via = ctx->via};
    if ((rc = crm_bus_dispatch(ctx, &ev, CRM_PHASE_BEFORE))) goto done;
    crm_time_format(crm_now(), at);
    crm_buf_puts(&sql, "UPDATE ");
    crm_buf_put_ident(&sql, t->name);
    crm_buf_puts(&sql, restore ? " SET deleted_at = NULL, updated_at = ?, version = version + 1 "
                                 "WHERE id = ?"
                               : " SET deleted_at = ?, updated_at = ?1, version = version + 1 "
                                 "WHERE id = ?");
    if ((rc = crm_stmt_prepare(conn, &st, crm_buf_str(&sql)))) goto done;
    crm_stmt_bind_text(st, 1, at, -1);
    crm_stmt_bind_int(st, 2, id);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    if (rc == CRM_ECONFLICT) rc = unique_error(t);
    if (rc < 0) goto done;
    if (t->searchable) {
        if (restore) {
            /* Searchable values back into the index, in stored form. */
            int n = crm_type_nfields(t);
            stored = json_object();
            for (int i = 0; i < n; i++) {
                json_t *s = NULL;
                if (!(t->fields[i]->flags & CRM_FIELD_SEARCHABLE)) continue;
                if (crm_field_to_db(t->fields[i], json_object_get(old, t->fields[i]->name), &s)) {
                    rc = crm_error_last()->code;
                    goto done;
                }
                json_object_set_new(stored, t->fields[i]->name, s);
            }
        }
        if ((rc = fts_sync(ctx, t, id, stored, true, restore))) goto done;
    }
    changes =
        json_pack("{s:[O,s]}", "deleted_at", json_object_get(old, "deleted_at"), restore ? "" : at);
    if (restore) json_array_set_new(json_object_get(changes, "deleted_at"), 1, json_null());
    if ((rc = write_history(ctx, t, id, restore ? "restore" : "delete", changes, at))) goto done;
    if ((rc =
             finish_write(ctx, t, id, restore ? "restored" : "deleted", !restore, old, NULL, NULL, &row)))
        goto done;
    rc = crm_tx_commit(conn);
    if (!rc && out) *out = crm_record_redact(ctx, t, row);
    goto cleanup;
done:
    crm_tx_rollback(conn);
cleanup:
    crm_buf_free(&sql);
    json_decref(old);
    json_decref(row);
    json_decref(changes);
    json_decref(stored);
    return rc;
}

int crm_record_delete(crm_ctx *ctx, const char *type, int64_t id, int64_t expect_version)
{
    return set_deleted(ctx, type, id, expect_version, false, NULL);
}

int crm_record_restore(crm_ctx *ctx, const char *type, int64_t id, json_t **out)
{
    return set_deleted(ctx, type, id, 0, true, out);
}

int crm_record_history(crm_ctx *ctx, const char *type, int64_t id, json_t **out)
{
    const crm_type *t;
    json_t *row = NULL, *list = NULL;
    crm_stmt *st;
    int rc;
    *out = NULL;
    if ((rc = crm_record__type(ctx, type, &t))) return rc;
    if ((rc = load_row(ctx, t, id, false, &row))) return rc;
    if (!row && (rc = load_row(ctx, t, id, true, &row))) return rc;
    if (!row || !crm_perm_in_scope(ctx->who, t, CRM_ACT_READ, json_int_field(row, "owner"),
                                   json_int_field(row, "team"))) {
        json_decref(row);
        return not_found(t, id);
    }
    json_decref(row);
    if ((rc = crm_stmt_prepare(crm_ctx_conn(ctx), &st,
                               "SELECT id, at, user_id, via, action, changes FROM core_history "
                               "WHERE type = ? AND record_id = ? ORDER BY id")))
        return rc;
    crm_stmt_bind_text(st, 1, t->name, -1);
    crm_stmt_bind_int(st, 2, id);
    list = json_array();
    while ((rc = crm_stmt_step(st)) == 1) {
        json_t *changes = json_loads(crm_stmt_column_text(st, 5), 0, NULL);
        json_t *visible = json_object();
        const char *key;
        json_t *v;
        json_object_foreach(changes, key, v)
        {
            const crm_field *f = crm_type_field(t, key);
            if (f ? crm_principal_field_access(ctx->who, t, f) == CRM_ACCESS_HIDDEN
                  : !crm_is_system_field(key))
                continue;
            json_object_set(visible, key, v);
        }
        json_decref(changes);
        json_array_append_new(list,
                              json_pack("{s:I,s:s,s:o,s:o,s:s,s:o}", "id",
                                        (json_int_t)crm_stmt_column_int(st, 0), "at",
                                        crm_stmt_column_text(st, 1), "user", int_or_null(st, 2),
                                        "via", text_or_null(st, 3), "action",
                                        crm_stmt_column_text(st, 4), "changes", visible));
    }
    crm_stmt_done(st);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return CRM_OK;
}

/* ---- Forgetting (GDPR erase) ---- */

/* Replace the listed fields' values in `obj` (an object, or absent) by "[erased]". */
static bool erase_values(json_t *obj, json_t *fields)
{
    bool changed = false;
    size_t i;
    json_t *f;
    if (!json_is_object(obj)) return false;
    json_array_foreach(fields, i, f) {
        json_t *v = json_object_get(obj, json_string_value(f));
        if (!v || json_is_null(v)) continue;
        json_object_set_new(obj, json_string_value(f), json_string("[erased]"));
        changed = true;
    }
    return changed;
}

/* Rewrite the JSON column `col` of `table` for the record's rows, erasing per `edit`. */
static int rewrite_rows(crm_ctx *ctx, const char *select_sql, const char *update_sql,
                        const char *type, int64_t id, json_t *fields, bool history)
{
    crm_conn *conn = crm_ctx_conn(ctx);
    crm_stmt *st;
    json_t *edits = json_array();
    int rc = crm_stmt_prepare(conn, &st, select_sql);
    if (rc) goto done;
    crm_stmt_bind_text(st, 1, type, -1);
    crm_stmt_bind_int(st, 2, id);
    while ((rc = crm_stmt_step(st)) == 1) {
        json_t *doc = json_loads(crm_stmt_column_text(st, 1), 0, NULL);
        bool changed = false;
        if (history) {
            /* {"field": [old, new]} */
            size_t i;
            json_t *f;
            json_array_foreach(fields, i, f) {
                json_t *pair = json_object_get(doc, json_string_value(f));
                for (size_t k = 0; json_is_array(pair) && k < json_array_size(pair); k++)
                    if (!json_is_null(json_array_get(pair, k))) {
                        json_array_set_new(pair, k, json_string("[erased]"));
                        changed = true;
                    }
            }
        } else {
            /* {"record": {...}, "old": {...}, ...} */
            changed = erase_values(json_object_get(doc, "record"), fields);
            changed = erase_values(json_object_get(doc, "old"), fields) || changed;
        }
        if (changed) {
            char *text = json_dumps(doc, JSON_COMPACT);
            json_array_append_new(edits, json_pack("[I,s]", (json_int_t)crm_stmt_column_int(st, 0),
                                                   text));
            free(text);
        }
        json_decref(doc);
    }
    crm_stmt_done(st);
    if (rc < 0) goto done;
    rc = CRM_OK;
    size_t i;
    json_t *e;
    json_array_foreach(edits, i, e) {
        if ((rc = crm_stmt_prepare(conn, &st, update_sql))) goto done;
        crm_stmt_bind_text(st, 1, json_string_value(json_array_get(e, 1)), -1);
        crm_stmt_bind_int(st, 2, json_integer_value(json_array_get(e, 0)));
        rc = crm_stmt_step(st);
        crm_stmt_done(st);
        if (rc < 0) goto done;
        rc = CRM_OK;
    }
done:
    json_decref(edits);
    return rc;
}

int crm_record_forget(crm_ctx *ctx, const char *type, int64_t id, json_t *fields)
{
    const crm_type *t;
    int rc;
    if (!crm_principal_is_admin(ctx->who))
        return crm_error_set(CRM_EDENIED, NULL, "only an admin may erase recorded values");
    if ((rc = crm_record__type(ctx, type, &t))) return rc;
    if (!json_is_array(fields))
        return crm_error_set(CRM_EINVALID, NULL, "the fields to forget must be a JSON array");
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f) {
        if (!json_is_string(f) || !crm_type_field(t, json_string_value(f)))
            return crm_error_set(CRM_EINVALID, json_is_string(f) ? json_string_value(f) : NULL,
                                 "type %s has no field \"%s\"", t->name,
                                 json_is_string(f) ? json_string_value(f) : "");
    }
    crm_conn *conn = crm_ctx_conn(ctx);
    if ((rc = crm_tx_begin(conn))) return rc;
    rc = rewrite_rows(ctx, "SELECT id, changes FROM core_history WHERE type = ? AND record_id = ?",
                      "UPDATE core_history SET changes = ? WHERE id = ?", t->name, id, fields,
                      true);
    if (!rc)
        rc = rewrite_rows(ctx,
                          "SELECT seq, payload FROM core_outbox WHERE type = ? AND record_id = ?",
                          "UPDATE core_outbox SET payload = ? WHERE seq = ?", t->name, id, fields,
                          false);
    if (rc) {
        crm_tx_rollback(conn);
        return rc;
    }
    return crm_tx_commit(conn);
}
