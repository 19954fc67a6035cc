/*
 * query.c — list queries: filters, multi-key sort, keyset (cursor) pagination,
 * projection and count, compiled to one parameterised SELECT.
 *
 * Identifiers come only from the schema (a name that is not a field the
 * principal may read is refused before any SQL is built); every value is a
 * bound parameter. Pagination is keyset, never OFFSET: the cursor carries the
 * sort values of the last row and the next page starts strictly after them,
 * so a page costs the same at row 10 and at row 1,000,000 (given an index).
 */
#include "record.h"
#include "jtext.h"

#include "perm.h"

#include <stdlib.h>
#include <string.h>

static const char *const op_names[] = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "like", "null"};

void crm_query_init(crm_query *q)
{
    memset(q, 0, sizeof *q);
    q->limit = CRM_QUERY_DEFAULT_LIMIT;
}

void crm_query_free(crm_query *q)
{
    for (int i = 0; i < q->nfilters; i++) {
        free(q->filters[i].field);
        free(q->filters[i].value);
    }
    for (int i = 0; i < q->nsort; i++) free(q->sort[i].field);
    for (int i = 0; i < q->nfields; i++) free(q->fields[i]);
    free(q->fields);
    free(q->cursor);
    crm_query_init(q);
}

/* Split "a,b,c" into its parts; empty parts are an error. */
static int split_list(const char *key, const char *value, char ***out, int *n, int max)
{
    *out = NULL;
    *n = 0;
    if (!*value) return crm_error_set(CRM_EINVALID, key, "parameter \"%s\" is empty", key);
    char *copy = crm_strdup(value), *save = NULL;
    int count = 1;
    for (const char *p = value; *p; p++) count += *p == ',';
    if (count > max) {
        free(copy);
        return crm_error_set(CRM_EINVALID, key, "parameter \"%s\": at most %d items", key, max);
    }
    char **parts = crm_calloc((size_t)count, sizeof *parts);
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        parts[(*n)++] = crm_strdup(tok);
    free(copy);
    if (*n != count) {
        for (int i = 0; i < *n; i++) free(parts[i]);
        free(parts);
        *n = 0;
        return crm_error_set(CRM_EINVALID, key, "parameter \"%s\" has an empty item", key);
    }
    *out = parts;
    return CRM_OK;
}

int crm_query_add(crm_query *q, const char *key, const char *value)
{
    int64_t n;
    if (!key || !value) return crm_error_set(CRM_EINVALID, NULL, "query parameter without a value");
    if (strcmp(key, "limit") == 0) {
        if (!crm_parse_int64(value, &n) || n < 1 || n > CRM_QUERY_MAX_LIMIT)
            return crm_error_set(CRM_EINVALID, "limit", "limit must be an integer from 1 to %d",
                                 CRM_QUERY_MAX_LIMIT);
        q->limit = (int)n;
        return CRM_OK;
    }
    if (strcmp(key, "cursor") == 0) {
        free(q->cursor);
        q->cursor = crm_strdup(value);
        return CRM_OK;
    }
    if (strcmp(key, "count") == 0 || strcmp(key, "deleted") == 0) {
        bool on = strcmp(value, "1") == 0 || strcmp(value, "true") == 0;
        if (!on && strcmp(value, "0") != 0 && strcmp(value, "false") != 0)
            return crm_error_set(CRM_EINVALID, key, "%s must be 1 or 0", key);
        if (key[0] == 'c') q->count = on;
        else q->deleted = on;
        return CRM_OK;
    }
    if (strcmp(key, "fields") == 0) {
        for (int i = 0; i < q->nfields; i++) free(q->fields[i]);
        free(q->fields);
        return split_list("fields", value, &q->fields, &q->nfields, 300);
    }
    if (strcmp(key, "sort") == 0) {
        char **parts;
        int np, rc;
        if ((rc = split_list("sort", value, &parts, &np, CRM_QUERY_MAX_SORT))) return rc;
        for (int i = 0; i < q->nsort; i++) free(q->sort[i].field);
        q->nsort = 0;
        for (int i = 0; i < np; i++) {
            bool desc = parts[i][0] == '-';
            const char *name = parts[i] + (desc || parts[i][0] == '+');
            q->sort[q->nsort].field = crm_strdup(name);
            q->sort[q->nsort++].desc = desc;
            free(parts[i]);
        }
        free(parts);
        return CRM_OK;
    }
    /* A filter: "field" or "field__op". */
    if (q->nfilters >= CRM_QUERY_MAX_FILTERS)
        return crm_error_set(CRM_EINVALID, key, "at most %d filters", CRM_QUERY_MAX_FILTERS);
    const char *sep = strstr(key, "__");
    int op = CRM_OP_EQ;
    size_t flen = strlen(key);
    if (sep) {
        op = -1;
        for (size_t i = 0; i < CRM_ARRAY_LEN(op_names); i++)
            if (strcmp(sep + 2, op_names[i]) == 0) op = (int)i;
        if (op < 0)
            return crm_error_set(CRM_EINVALID, key,
                                 "unknown filter operator in \"%s\" (use eq, ne, gt, gte, lt, lte, "
                                 "in, like, null)", key);
        flen = (size_t)(sep - key);
    }
    crm_filter *f = &q->filters[q->nfilters++];
    f->field = crm_strndup(key, flen);
    f->op = op;
    f->value = crm_strdup(value);
    return CRM_OK;
}

/* ---- Compiling ---- */

/* A column the principal may filter or sort on: system fields, or readable fields. */
typedef struct column {
    const char *name;
    const crm_field *field; /* NULL for a system column */
    int col;                /* position in the select list */
    bool text;              /* system column holding text (timestamps) */
} column;

static int resolve(crm_ctx *ctx, const crm_type *t, int n, const char *name, bool sorting,
                   column *out)
{
    static const char *const sys[] = {"id",    "created_at", "updated_at", "created_by",
                                      "owner", "team",       "version"};
    for (size_t i = 0; i < CRM_ARRAY_LEN(sys); i++)
        if (strcmp(sys[i], name) == 0) {
            *out = (column){sys[i], NULL, (int)i, i == 1 || i == 2};
            return CRM_OK;
        }
    const crm_field *f = crm_type_field(t, name);
    /* Hidden fields get the same answer as unknown ones: no oracle. */
    if (!f || f->position >= n || crm_principal_field_access(ctx->who, t, f) == CRM_ACCESS_HIDDEN)
        return crm_error_set(CRM_EINVALID, name, "unknown field \"%s\" for %s", name, t->name);
    if (f->kind == CRM_FIELD_JSON)
        return crm_error_set(CRM_EINVALID, name, "field \"%s\": json fields cannot be %s", name,
                             sorting ? "sorted on" : "filtered on");
    *out = (column){f->name, f, CRM_SYSTEM_COLUMNS + f->position, false};
    return CRM_OK;
}

/* Parse a filter value for a column into its stored form. */
static int parse_value(const column *c, const char *text, json_t **out)
{
    int64_t n, t;
    bool date_only;
    if (c->field) return crm_field_parse_text(c->field, text, out);
    if (c->text) {
        char buf[21];
        if (!crm_time_parse(text, &t, &date_only))
            return crm_error_set(CRM_EINVALID, c->name, "filter on \"%s\": expected a date-time",
                                 c->name);
        crm_time_format(t, buf);
        *out = json_string(buf);
        return CRM_OK;
    }
    if (!crm_parse_int64(text, &n))
        return crm_error_set(CRM_EINVALID, c->name, "filter on \"%s\": \"%s\" is not an integer",
                             c->name, text);
    *out = json_integer(n);
    return CRM_OK;
}

static void put_col(crm_buf *sql, const column *c)
{
    crm_buf_put_ident(sql, c->name);
}

static int add_filter(crm_buf *sql, json_t *params, const column *c, const crm_filter *f)
{
    static const char *const cmp[] = {" = ?", " IS NOT ?", " > ?", " >= ?", " < ?", " <= ?"};
    json_t *v = NULL;
    int rc;
    crm_buf_puts(sql, " AND ");
    switch (f->op) {
    case CRM_OP_NULL: {
        bool is_null = strcmp(f->value, "1") == 0 || strcmp(f->value, "true") == 0;
        if (!is_null && strcmp(f->value, "0") != 0 && strcmp(f->value, "false") != 0)
            return crm_error_set(CRM_EINVALID, f->field, "filter %s__null: expected 1 or 0",
                                 f->field);
        put_col(sql, c);
        crm_buf_puts(sql, is_null ? " IS NULL" : " IS NOT NULL");
        return CRM_OK;
    }
    case CRM_OP_LIKE: {
        int k = c->field ? c->field->kind : 0;
        if (!c->field || !(k == CRM_FIELD_TEXT || k == CRM_FIELD_EMAIL || k == CRM_FIELD_PHONE ||
                           k == CRM_FIELD_URL || k == CRM_FIELD_ENUM))
            return crm_error_set(CRM_EINVALID, f->field, "filter %s__like: only on text fields",
                                 f->field);
        if (!crm_utf8_valid(f->value, strlen(f->value)) || strlen(f->value) > 256)
            return crm_error_set(CRM_EINVALID, f->field, "filter %s__like: the pattern must be "
                                                         "UTF-8 of at most 256 bytes", f->field);
        put_col(sql, c);
        crm_buf_puts(sql, " LIKE ?");
        json_array_append_new(params, json_string(f->value));
        return CRM_OK;
    }
    case CRM_OP_IN: {
        char **parts;
        int np;
        if ((rc = split_list(f->field, f->value, &parts, &np, 100))) return rc;
        put_col(sql, c);
        crm_buf_puts(sql, " IN (");
        for (int i = 0; i < np; i++) {
            if (!rc && !(rc = parse_value(c, parts[i], &v))) json_array_append_new(params, v);
            crm_buf_puts(sql, i ? ",?" : "?");
            free(parts[i]);
        }
        free(parts);
        crm_buf_putc(sql, ')');
        return rc;
    }
    default:
        if ((rc = parse_value(c, f->value, &v))) return rc;
        put_col(sql, c);
        crm_buf_puts(sql, cmp[f->op]);
        json_array_append_new(params, v);
        return CRM_OK;
    }
}

/* The stored value of a select-list column, for the cursor. */
static json_t *column_value(crm_stmt *st, int col)
{
    switch (crm_stmt_column_type(st, col)) {
    case CRM_COL_INT: return json_integer(crm_stmt_column_int(st, col));
    case CRM_COL_FLOAT: return json_real(crm_stmt_column_double(st, col));
    case CRM_COL_NULL: return json_null();
    default: return json_string(crm_stmt_column_text(st, col));
    }
}

/* The canonical sort spec, stored in the cursor so a cursor only continues its own list. */
static char *sort_spec(const column *keys, const bool *desc, int nkeys)
{
    crm_buf b = CRM_BUF_INIT;
    for (int i = 0; i < nkeys; i++) crm_buf_printf(&b, "%s%s%s", i ? "," : "", desc[i] ? "-" : "", keys[i].name);
    return crm_buf_detach(&b);
}

/*
 * Rows strictly after the cursor in (k0, k1, ..., id) order, where ASC puts
 * NULLs first and DESC last (SQLite's order):
 *   (k0 after v0) OR (k0 IS v0 AND k1 after v1) OR ... OR (all equal AND id > vid)
 */
static int add_cursor(crm_buf *sql, json_t *params, const char *cursor, const column *keys,
                      const bool *desc, int nkeys)
{
    size_t len;
    unsigned char *raw = crm_b64url_decode(cursor, &len);
    json_t *doc = raw ? json_loadb((const char *)raw, len, 0, NULL) : NULL;
    json_t *vals = json_object_get(doc, "v");
    char *spec = sort_spec(keys, desc, nkeys);
    int rc = CRM_OK;
    free(raw);
    if (!json_is_array(vals) || json_array_size(vals) != (size_t)nkeys ||
        !json_is_string(json_object_get(doc, "s")) ||
        strcmp(json_string_value(json_object_get(doc, "s")), spec) != 0 ||
        !json_is_integer(json_array_get(vals, (size_t)nkeys - 1))) {
        rc = crm_error_set(CRM_EINVALID, "cursor",
                           "the cursor is not valid for this list (use the \"next\" value of the "
                           "previous page with the same sort)");
        goto done;
    }
    for (int i = 0; i < nkeys; i++) {
        json_t *v = json_array_get(vals, (size_t)i);
        if (!(json_is_null(v) || json_is_integer(v) || json_is_string(v) || json_is_real(v))) {
            rc = crm_error_set(CRM_EINVALID, "cursor", "the cursor is not valid for this list");
            goto done;
        }
    }
    crm_buf_puts(sql, " AND (");
    for (int i = 0; i < nkeys; i++) {
        crm_buf_puts(sql, i ? " OR (" : "(");
        for (int j = 0; j < i; j++) {
            json_t *v = json_array_get(vals, (size_t)j);
            put_col(sql, &keys[j]);
            if (json_is_null(v)) crm_buf_puts(sql, " IS NULL AND ");
            else {
                crm_buf_puts(sql, " = ? AND ");
                json_array_append(params, v);
            }
        }
        json_t *v = json_array_get(vals, (size_t)i);
        if (!desc[i]) {
            put_col(sql, &keys[i]);
            if (json_is_null(v)) crm_buf_puts(sql, " IS NOT NULL");
            else {
                crm_buf_puts(sql, " > ?");
                json_array_append(params, v);
            }
        } else if (json_is_null(v)) {
            crm_buf_puts(sql, "0");
        } else {
            crm_buf_putc(sql, '(');
            put_col(sql, &keys[i]);
            crm_buf_puts(sql, " < ? OR ");
            put_col(sql, &keys[i]);
            crm_buf_puts(sql, " IS NULL)");
            json_array_append(params, v);
        }
        crm_buf_putc(sql, ')');
    }
    crm_buf_putc(sql, ')');
done:
    free(spec);
    json_decref(doc);
    return rc;
}

static void bind_all(crm_stmt *st, json_t *params)
{
    size_t i;
    json_t *v;
    json_array_foreach(params, i, v) crm_stmt_bind_json(st, (int)i + 1, v);
}

/* The "next" cursor after a page whose last row had these key values. */
static char *make_cursor(const column *keys, const bool *desc, int nkeys, json_t *last)
{
    char *spec = sort_spec(keys, desc, nkeys);
    json_t *doc = json_pack("{s:s,s:O}", "s", spec, "v", last);
    char *text = json_dumps(doc, JSON_COMPACT);
    char *cursor = crm_b64url_encode((const unsigned char *)text, strlen(text));
    free(text);
    free(spec);
    json_decref(doc);
    return cursor;
}

/*
 * A list query, answered either as a Jansson tree (*out) or, when `text` is
 * given, as JSON text appended to it straight from the rows (the HTTP list:
 * record.c's row_text says why). Both have the same keys in the same order.
 */
static int find(crm_ctx *ctx, const char *type, const crm_query *q, json_t **out, crm_buf *text)
{
    const crm_type *t;
    crm_buf where = CRM_BUF_INIT, sql = CRM_BUF_INIT;
    json_t *params = json_array(), *data = NULL, *result = NULL, *last = NULL;
    column keys[CRM_QUERY_MAX_SORT + 1];
    bool desc[CRM_QUERY_MAX_SORT + 1];
    crm_row_plan *plan = NULL;
    int nkeys = 0, rc, n;
    crm_stmt *st = NULL;
    if (out) *out = NULL;
    if ((rc = crm_record__type(ctx, type, &t))) goto done;
    n = crm_type_nfields(t);
    crm_buf_puts(&where, q->deleted ? " WHERE deleted_at IS NOT NULL" : " WHERE deleted_at IS NULL");
    if ((rc = crm_perm_scope_sql(ctx->who, t, CRM_ACT_READ, NULL, &where, params))) goto done;
    for (int i = 0; i < q->nfilters; i++) {
        column c;
        if ((rc = resolve(ctx, t, n, q->filters[i].field, false, &c)) ||
            (rc = add_filter(&where, params, &c, &q->filters[i])))
            goto done;
    }
    for (int i = 0; i < q->nfields; i++) {
        column c;
        if (strcmp(q->fields[i], "deleted_at") == 0) continue;
        if ((rc = resolve(ctx, t, n, q->fields[i], false, &c)) && crm_type_field(t, q->fields[i]) &&
            crm_type_field(t, q->fields[i])->kind == CRM_FIELD_JSON)
            rc = CRM_OK; /* json fields can be projected, just not filtered */
        if (rc) goto done;
    }
    for (int i = 0; i < q->nsort; i++) {
        if ((rc = resolve(ctx, t, n, q->sort[i].field, true, &keys[nkeys]))) goto done;
        if (strcmp(keys[nkeys].name, "id") == 0) {
            desc[nkeys] = q->sort[i].desc;
            nkeys++;
            break; /* id is unique: later keys could never matter */
        }
        desc[nkeys++] = q->sort[i].desc;
    }
    if (nkeys == 0 || strcmp(keys[nkeys - 1].name, "id") != 0) {
        keys[nkeys] = (column){"id", NULL, 0, false};
        desc[nkeys++] = false;
    }

    /* No count unless asked: it reads every matching row. */
    if (q->count) {
        int64_t count = 0;
        crm_buf_puts(&sql, "SELECT count(*) FROM ");
        crm_buf_put_ident(&sql, t->name);
        crm_buf_puts(&sql, crm_buf_str(&where));
        if ((rc = crm_stmt_prepare(crm_ctx_conn(ctx), &st, crm_buf_str(&sql)))) goto done;
        bind_all(st, params);
        rc = crm_stmt_step(st);
        if (rc == 1) count = crm_stmt_column_int(st, 0);
        crm_stmt_done(st);
        st = NULL;
        if (rc < 0) goto done;
        if (text) crm_buf_printf(text, "{\"count\":%lld,", (long long)count);
        else result = json_pack("{s:I}", "count", (json_int_t)count);
        sql.len = 0;
    } else if (text) {
        crm_buf_putc(text, '{');
    }
    if (q->cursor && (rc = add_cursor(&where, params, q->cursor, keys, desc, nkeys))) goto done;

    crm_buf_puts(&sql, "SELECT ");
    crm_record__select_cols(&sql, t, n);
    crm_buf_puts(&sql, " FROM ");
    crm_buf_put_ident(&sql, t->name);
    crm_buf_puts(&sql, crm_buf_str(&where));
    crm_buf_puts(&sql, " ORDER BY ");
    for (int i = 0; i < nkeys; i++) {
        if (i) crm_buf_puts(&sql, ", ");
        put_col(&sql, &keys[i]);
        if (desc[i]) crm_buf_puts(&sql, " DESC");
    }
    crm_buf_printf(&sql, " LIMIT %d", q->limit + 1);
    if ((rc = crm_stmt_prepare(crm_ctx_conn(ctx), &st, crm_buf_str(&sql)))) goto done;
    bind_all(st, params);
    if (text) {
        plan = crm_record__row_plan(ctx, t, n, true, q->fields, q->nfields);
        crm_buf_puts(text, "\"data\":[");
    } else {
        data = json_array();
    }
    int rows = 0;
    while ((rc = crm_stmt_step(st)) == 1) {
        if (rows++ == q->limit) break; /* one more row exists: there is a next page */
        if (text) {
            if (rows > 1) crm_buf_putc(text, ',');
            crm_record__row_text(text, plan, st);
        } else {
            json_array_append_new(data,
                                  crm_record__row(ctx, t, n, st, true, q->fields, q->nfields));
        }
        if (rows == q->limit) { /* the page's last row: the cursor continues after it */
            last = json_array();
            for (int i = 0; i < nkeys; i++)
                json_array_append_new(last, column_value(st, keys[i].col));
        }
    }
    crm_stmt_done(st);
    st = NULL;
    if (rc < 0) goto done;
    rc = CRM_OK;
    char *cursor = rows > q->limit && last ? make_cursor(keys, desc, nkeys, last) : NULL;
    if (text) {
        crm_buf_puts(text, "],\"next\":");
        if (cursor) crm_jtext_string(text, cursor, strlen(cursor), false);
        else crm_buf_puts(text, "null");
        crm_buf_putc(text, '}');
    } else {
        if (!result) result = json_object();
        json_object_set_new(result, "data", data);
        data = NULL;
        json_object_set_new(result, "next", cursor ? json_string(cursor) : json_null());
        *out = result;
        result = NULL;
    }
    free(cursor);
done:
    if (st) crm_stmt_done(st);
    crm_buf_free(&where);
    crm_buf_free(&sql);
    crm_record__row_plan_free(plan);
    json_decref(params);
    json_decref(data);
    json_decref(result);
    json_decref(last);
    return rc;
}

int crm_record_find(crm_ctx *ctx, const char *type, const crm_query *q, json_t **out)
{
    return find(ctx, type, q, out, NULL);
}

int crm_record_find_text(crm_ctx *ctx, const char *type, const crm_query *q, char **out,
                         size_t *len)
{
    /* Room for a default page of typical records (~300 bytes each) up front. */
    crm_buf text = {crm_malloc(16384), 0, 16384};
    text.ptr[0] = '\0';
    int rc = find(ctx, type, q, NULL, &text);
    *out = NULL;
    *len = 0;
    if (rc) {
        crm_buf_free(&text);
        return rc;
    }
    *len = text.len;
    *out = crm_buf_detach(&text);
    return CRM_OK;
}
