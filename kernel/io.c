/*
 * io.c — CSV import and CSV / JSON export through the record layer.
 *
 * Import calls crm_record_create / crm_record_update once per record, so a
 * record imported from a file is checked, validated, handled and recorded in
 * history exactly like one sent to POST /records. What import adds is the
 * transaction shape: one outer transaction (all mode) or one per batch (line
 * mode), with every record inside the record layer's own nested savepoint — a
 * bad record rolls back only itself, and all mode can go on validating the
 * rest to report every bad line at once. Cells are turned into JSON values of
 * the field's JSON type and the record layer validates them, so every error
 * names the field the way the API does.
 *
 * Export pages through crm_record_find with its cursor (keyset pagination,
 * CRM_EXPORT_PAGE records a query), producing output only as the consumer
 * reads it, so a million records cost one page of memory. Each page is its
 * own read: the export is not one snapshot, but keyset order guarantees every
 * record that exists throughout is written exactly once.
 */
#include "io.h"
#include "group.h"

#include "csv.h"
#include "perm.h"

#include <stdlib.h>
#include <string.h>

/* ---- Import ---- */

int crm_import_mode_from_name(const char *name)
{
    if (!name || strcmp(name, "all") == 0) return CRM_IMPORT_ALL;
    if (strcmp(name, "line") == 0) return CRM_IMPORT_LINE;
    return -1;
}

enum { COL_SKIP, COL_ID, COL_OWNER, COL_TEAM, COL_FIELD };

typedef struct column {
    int role;
    const crm_field *field; /* COL_FIELD */
} column;

/* What a header cell names; an error (set) for an unknown, hidden or unwritable one. */
static int header_column(crm_ctx *ctx, const crm_type *t, int index, const crm_csv_field *cell,
                         column *out)
{
    char name[CRM_NAME_MAX + 1];
    if (cell->len == 0)
        return crm_error_set(CRM_EINVALID, NULL, "line 1: column %d has no name", index + 1);
    if (cell->len > CRM_NAME_MAX || memchr(cell->ptr, 0, cell->len) ||
        !crm_utf8_valid(cell->ptr, cell->len))
        return crm_error_set(CRM_EINVALID, NULL, "line 1: column %d is not a field name of %s",
                             index + 1, t->name);
    memcpy(name, cell->ptr, cell->len);
    name[cell->len] = '\0';
    if (strcmp(name, "id") == 0) *out = (column){COL_ID, NULL};
    else if (strcmp(name, "owner") == 0) *out = (column){COL_OWNER, NULL};
    else if (strcmp(name, "team") == 0) *out = (column){COL_TEAM, NULL};
    else if (crm_is_system_field(name)) *out = (column){COL_SKIP, NULL};
    else {
        const crm_field *f = crm_type_field(t, name);
        int access = f ? crm_principal_field_access(ctx->who, t, f) : CRM_ACCESS_HIDDEN;
        /* Hidden fields get the answer unknown ones get: no oracle. */
        if (access == CRM_ACCESS_HIDDEN)
            return crm_error_set(CRM_EINVALID, name, "line 1: unknown column \"%s\": %s has no "
                                                     "such field", name, t->name);
        if (access != CRM_ACCESS_WRITE)
            return crm_error_set(CRM_EDENIED, name, "line 1: column \"%s\": the field is "
                                                    "read-only for you", name);
        *out = (column){COL_FIELD, f};
    }
    return CRM_OK;
}

/* A cell as a positive id (id, owner, team, ref). */
static int cell_id(const char *name, const char *s, size_t n, json_t **out)
{
    char buf[32];
    int64_t v;
    if (n >= sizeof buf) goto bad;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (!crm_parse_int64(buf, &v) || v <= 0) goto bad;
    *out = json_integer(v);
    return CRM_OK;
bad:
    return crm_error_set(CRM_EINVALID, name, "column \"%s\": expected a record id (a positive "
                                             "integer)", name);
}

static bool word_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* A non-empty cell as the JSON value of field f, or an error naming f. */
static int cell_value(const crm_field *f, const char *s, size_t n, json_t **out)
{
    char buf[32];
    int64_t v;
    *out = NULL;
    if (memchr(s, 0, n))
        return crm_error_set(CRM_EINVALID, f->name, "field \"%s\": text must not contain NUL "
                                                    "characters", f->name);
    if (!crm_utf8_valid(s, n))
        return crm_error_set(CRM_EINVALID, f->name, "field \"%s\": text is not valid UTF-8",
                             f->name);
    switch (f->kind) {
    case CRM_FIELD_INT:
        if (n >= sizeof buf) goto not_int;
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (!crm_parse_int64(buf, &v)) goto not_int;
        *out = json_integer(v);
        return CRM_OK;
    case CRM_FIELD_REF:
        if (n >= sizeof buf) goto not_ref;
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (!crm_parse_int64(buf, &v) || v <= 0) goto not_ref;
        *out = json_integer(v);
        return CRM_OK;
    case CRM_FIELD_BOOL:
        if (word_is(s, n, "true") || word_is(s, n, "yes") || word_is(s, n, "1")) *out = json_true();
        else if (word_is(s, n, "false") || word_is(s, n, "no") || word_is(s, n, "0"))
            *out = json_false();
        else
            return crm_error_set(CRM_EINVALID, f->name, "field \"%s\": expected true or false "
                                                        "(or yes/no, 1/0)", f->name);
        return CRM_OK;
    case CRM_FIELD_DECIMAL:
        *out = json_stringn_nocheck(s, n); /* value.c parses "1234.50" exactly */
        return CRM_OK;
    case CRM_FIELD_DATE:
    case CRM_FIELD_DATETIME:
        *out = json_stringn_nocheck(s, n);
        return CRM_OK;
    default:
        break;
    }
    /* Text kinds and json: undo an export's formula guard ('=… → =…). */
    if (n >= 2 && s[0] == '\'' && crm_csv_formula_start(s[1])) {
        s++;
        n--;
    }
    if (f->kind == CRM_FIELD_JSON) {
        json_error_t err;
        if (n > 65536)
            return crm_error_set(CRM_EINVALID, f->name, "field \"%s\": JSON value larger than "
                                                        "64 KiB", f->name);
        *out = json_loadb(s, n, JSON_DECODE_ANY, &err);
        if (!*out)
            return crm_error_set(CRM_EINVALID, f->name, "field \"%s\": not valid JSON (%s at "
                                                        "character %d)", f->name,
                                 crm_utf8_valid(err.text, strlen(err.text)) ? err.text : "error",
                                 err.position);
        return CRM_OK;
    }
    *out = json_stringn_nocheck(s, n);
    return CRM_OK;
not_int:
    return crm_error_set(CRM_EINVALID, f->name, "field \"%s\": expected an integer", f->name);
not_ref:
    return crm_error_set(CRM_EINVALID, f->name, "field \"%s\": expected the id of a %s record",
                         f->name, f->ref_type);
}

/* One CSV record as the record layer's input; *id > 0 when it names a record to update. */
static int build_record(const column *cols, const crm_csv_reader *r, json_t *rec, int64_t *id)
{
    static const char *const role_names[] = {"", "id", "owner", "team"};
    *id = 0;
    for (int i = 0; i < r->nfields; i++) {
        const crm_csv_field *cell = &r->fields[i];
        json_t *v = NULL;
        int rc;
        if (cell->len == 0 || cols[i].role == COL_SKIP) continue;
        if (cols[i].role == COL_FIELD) {
            if ((rc = cell_value(cols[i].field, cell->ptr, cell->len, &v))) return rc;
            json_object_set_new_nocheck(rec, cols[i].field->name, v);
            continue;
        }
        if ((rc = cell_id(role_names[cols[i].role], cell->ptr, cell->len, &v))) return rc;
        if (cols[i].role == COL_ID) {
            *id = json_integer_value(v);
            json_decref(v);
        } else {
            json_object_set_new_nocheck(rec, role_names[cols[i].role], v);
        }
    }
    return CRM_OK;
}

/* Store trouble ends an import; everything else is the record's own fault. */
static bool fatal(int rc)
{
    return rc == CRM_EBUSY || rc == CRM_EFULL || rc == CRM_EINTERNAL;
}

typedef struct import_state {
    json_t *errors;
    int64_t failed;
} import_state;

/* Record this thread's last error against `line`. */
static void add_error(import_state *st, int line)
{
    const crm_error *e = crm_error_last();
    st->failed++;
    if (json_array_size(st->errors) >= CRM_IMPORT_MAX_ERRORS) return;
    const char *msg = e->message && *e->message && crm_utf8_valid(e->message, strlen(e->message))
                          ? e->message
                          : "invalid record";
    json_t *item = json_pack("{s:i,s:s}", "line", line, "message", msg);
    if (e->field && crm_utf8_valid(e->field, strlen(e->field)))
        json_object_set_new(item, "field", json_string(e->field));
    json_array_append_new(st->errors, item);
}

int crm_import_csv(crm_ctx *ctx, const char *type, const char *data, size_t len, int mode,
                   json_t **result)
{
    const crm_type *t;
    crm_csv_reader r;
    column *cols = NULL;
    crm_conn *conn = crm_ctx_conn(ctx);
    import_state st = {NULL, 0};
    json_t *rec = NULL;
    int64_t created = 0, updated = 0;
    int rc, line, ncols, batch = 0;
    bool in_tx = false, has_id = false, truncated = false;

    int base_depth = crm_tx_depth(conn);
    *result = NULL;
    crm_csv_reader_init(&r, data, len, CRM_TYPE_MAX_FIELDS + CRM_SYSTEM_COLUMNS);
    if ((rc = crm_record__type(ctx, type, &t))) goto done;
    if (mode != CRM_IMPORT_ALL && mode != CRM_IMPORT_LINE) {
        rc = crm_error_set(CRM_EINVALID, "mode", "mode must be \"all\" or \"line\"");
        goto done;
    }
    int create_level = crm_principal_level(ctx->who, t, CRM_ACT_CREATE);
    if (create_level == CRM_LEVEL_NONE &&
        crm_principal_level(ctx->who, t, CRM_ACT_UPDATE) == CRM_LEVEL_NONE) {
        rc = crm_error_set(CRM_EDENIED, NULL, "you may not create or update %s records", t->name);
        goto done;
    }

    /* The header: every column is checked before anything is written. */
    rc = crm_csv_read(&r, &line);
    if (rc == 0) {
        rc = crm_error_set(CRM_EINVALID, NULL, "the CSV is empty: its first line must name the "
                                               "columns");
        goto done;
    }
    if (rc < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", crm_error_last()->message);
        rc = crm_error_set(CRM_EINVALID, NULL, "line %d (the header): %s", line, msg);
        goto done;
    }
    ncols = r.nfields;
    cols = crm_calloc((size_t)ncols, sizeof *cols);
    for (int i = 0; i < ncols; i++) {
        if ((rc = header_column(ctx, t, i, &r.fields[i], &cols[i]))) goto done;
        for (int j = 0; j < i; j++)
            if (r.fields[j].len == r.fields[i].len &&
                memcmp(r.fields[j].ptr, r.fields[i].ptr, r.fields[i].len) == 0) {
                rc = crm_error_set(CRM_EINVALID, NULL, "line 1: column \"%.*s\" appears twice "
                                                       "(columns %d and %d)",
                                   (int)r.fields[i].len, r.fields[i].ptr, j + 1, i + 1);
                goto done;
            }
        has_id |= cols[i].role == COL_ID;
    }
    if (!has_id && create_level == CRM_LEVEL_NONE) {
        rc = crm_error_set(CRM_EDENIED, NULL, "you may not create %s records (an \"id\" column "
                                              "would update existing ones)", t->name);
        goto done;
    }

    st.errors = json_array();
    rec = json_object();
    /*
     * A chunk dirties ~10 MB of pages (row, indexes, FTS, history, outbox);
     * in the connection's usual 2 MiB cache SQLite spills them to the WAL
     * mid-transaction and writes them again at commit (perf, 200k contacts:
     * 8% of the import in cache spills). The import runs with a cache that
     * holds a chunk, and gives it back at the end.
     */
    int64_t cache_size = 0;
    crm_conn_query_int(conn, "PRAGMA cache_size", &cache_size, -2048);
    {
        char pragma[48];
        snprintf(pragma, sizeof pragma, "PRAGMA cache_size=-%d", CRM_IMPORT_CACHE_KIB);
        crm_conn_exec(conn, pragma);
    }
    /*
     * Chunks of CRM_IMPORT_BATCH records: in line mode each is a transaction,
     * in all mode a savepoint inside the one transaction. A chunk first runs
     * without a savepoint per record (one per record cost a quarter of the
     * import: perf, 100k contacts); when a record fails there, part of it may
     * be written, so the chunk is rolled back and read again with every
     * record in its own savepoint, as a bad record always was. Lines that
     * fail before the record layer (CSV, cells) write nothing and need no
     * replay.
     */
    if ((rc = crm_tx_begin(conn))) goto done;
    in_tx = true;
    for (bool end = false; !end;) {
        const char *mark_p = r.p;
        int mark_line = r.line;
        int64_t mark_created = created, mark_updated = updated, mark_failed = st.failed;
        size_t mark_errors = json_array_size(st.errors);
        bool careful = false;
        if (mode == CRM_IMPORT_ALL && (rc = crm_tx_begin(conn))) goto done;
    chunk:;
        int64_t start = crm_mono_us();
        for (batch = 0; batch < CRM_IMPORT_BATCH;) {
            if ((batch & 255) == 255) {
                int64_t ran = crm_mono_us() - start;
                if (ran > CRM_IMPORT_BATCH_MS * 1000) break;
                if (mode == CRM_IMPORT_LINE && ran > CRM_IMPORT_YIELD_MS * 1000 &&
                    crm_group_pending(ctx->k->group) > 0)
                    break; /* a writer waits for the lock this transaction holds */
            }
            int64_t id;
            rc = crm_csv_read(&r, &line);
            if (rc == 0) {
                end = true;
                break;
            }
            batch++;
            if (rc < 0) {
                add_error(&st, line);
            } else if (r.nfields != ncols) {
                crm_error_set(CRM_EINVALID, NULL, "%d fields, but the header names %d columns",
                              r.nfields, ncols);
                add_error(&st, line);
            } else {
                /* One object for all records, unless someone kept a reference to it. */
                if (rec->refcount > 1) {
                    json_decref(rec);
                    rec = json_object();
                } else {
                    json_object_clear(rec);
                }
                rc = build_record(cols, &r, rec, &id);
                if (rc) {
                    if (fatal(rc)) goto done;
                    add_error(&st, line);
                } else {
                    rc = id ? crm_record_update(ctx, t->name, id, rec, 0, NULL)
                            : crm_record__create(ctx, t->name, rec, NULL, careful);
                    if (rc && fatal(rc)) goto done;
                    if (rc && !careful && !id) {
                        /* Replay the chunk, each record in its own savepoint. */
                        crm_tx_rollback(conn);
                        if ((rc = crm_tx_begin(conn))) {
                            if (mode == CRM_IMPORT_LINE) in_tx = false;
                            goto done;
                        }
                        r.p = mark_p;
                        r.line = mark_line;
                        created = mark_created;
                        updated = mark_updated;
                        st.failed = mark_failed;
                        while (json_array_size(st.errors) > mark_errors)
                            json_array_remove(st.errors, json_array_size(st.errors) - 1);
                        careful = true;
                        end = false;
                        goto chunk;
                    }
                    if (rc) add_error(&st, line);
                    else if (id) updated++;
                    else created++;
                }
            }
            rc = CRM_OK;
            if (mode == CRM_IMPORT_ALL && st.failed >= CRM_IMPORT_MAX_ERRORS) {
                truncated = true; /* all of it is rolled back anyway: stop reading */
                end = true;
                break;
            }
        }
        rc = CRM_OK;
        /* line mode: commit the chunk and start the next; all mode: release its savepoint */
        if (mode == CRM_IMPORT_LINE) {
            in_tx = false;
            if ((rc = crm_tx_commit(conn))) goto done;
            if (!end) {
                if ((rc = crm_tx_begin(conn))) goto done;
                in_tx = true;
            }
        } else if ((rc = crm_tx_commit(conn))) {
            goto done;
        }
    }
    if (mode == CRM_IMPORT_ALL && st.failed) {
        crm_tx_rollback(conn);
        created = updated = 0;
    } else if (mode == CRM_IMPORT_ALL && (rc = crm_tx_commit(conn))) {
        in_tx = false;
        goto done;
    }
    in_tx = false;
    if (mode == CRM_IMPORT_LINE && st.failed > CRM_IMPORT_MAX_ERRORS) truncated = true;
    *result = json_pack("{s:I,s:I,s:I,s:O}", "created", (json_int_t)created, "updated",
                        (json_int_t)updated, "failed", (json_int_t)st.failed, "errors", st.errors);
    if (truncated) json_object_set_new(*result, "truncated", json_true());
    rc = CRM_OK;
done:
    /* all mode may be inside a chunk's savepoint: undo every level this import opened */
    if (in_tx)
        while (crm_tx_depth(conn) > base_depth) crm_tx_rollback(conn);
    if (cache_size) {
        char pragma[48];
        snprintf(pragma, sizeof pragma, "PRAGMA cache_size=%lld", (long long)cache_size);
        crm_conn_exec(conn, pragma);
    }
    crm_csv_reader_free(&r);
    free(cols);
    json_decref(rec);
    json_decref(st.errors);
    return rc;
}

/* ---- Export ---- */

int crm_export_format_from_name(const char *name)
{
    if (!name || strcmp(name, "csv") == 0) return CRM_EXPORT_CSV;
    if (strcmp(name, "json") == 0) return CRM_EXPORT_JSON;
    return -1;
}

struct crm_export {
    crm_ctx ctx;
    crm_principal *who; /* our own copy, or NULL for the system */
    char *via;
    const crm_type *t;
    crm_query q; /* our own copy; its cursor moves page by page */
    int format;
    bool raw;
    const char **col_names; /* CSV columns */
    const crm_field **col_fields;
    int ncols;
    json_t *page; /* the current page's records */
    size_t index;
    bool more, started, finished;
    int64_t count;
    crm_buf out; /* produced, not yet read: out.ptr[pos..len) */
    size_t pos;
    crm_buf scratch;
    char filename[CRM_NAME_MAX * 2 + 8];
};

static void query_copy(crm_query *dst, const crm_query *src)
{
    crm_query_init(dst);
    if (!src) return;
    for (int i = 0; i < src->nfilters; i++)
        dst->filters[i] = (crm_filter){crm_strdup(src->filters[i].field), src->filters[i].op,
                                       crm_strdup(src->filters[i].value)};
    dst->nfilters = src->nfilters;
    for (int i = 0; i < src->nsort; i++)
        dst->sort[i] = (crm_sort){crm_strdup(src->sort[i].field), src->sort[i].desc};
    dst->nsort = src->nsort;
    if (src->nfields > 0) {
        dst->fields = crm_calloc((size_t)src->nfields, sizeof *dst->fields);
        for (int i = 0; i < src->nfields; i++) dst->fields[i] = crm_strdup(src->fields[i]);
        dst->nfields = src->nfields;
    }
    if (src->cursor) dst->cursor = crm_strdup(src->cursor);
    dst->deleted = src->deleted;
}

static int fetch_page(crm_export *e)
{
    json_t *res = NULL;
    int rc = crm_record_find(&e->ctx, e->t->name, &e->q, &res);
    if (rc) return rc;
    json_decref(e->page);
    e->page = json_incref(json_object_get(res, "data"));
    e->index = 0;
    const char *next = json_string_value(json_object_get(res, "next"));
    free(e->q.cursor);
    e->q.cursor = next ? crm_strdup(next) : NULL;
    e->more = next != NULL;
    json_decref(res);
    return CRM_OK;
}

static void add_column(crm_export *e, const char *name, const crm_field *f)
{
    e->col_names[e->ncols] = name;
    e->col_fields[e->ncols++] = f;
}

static void plan_columns(crm_export *e)
{
    static const char *const sys[] = {"id", "created_at", "updated_at", "owner", "team", "version"};
    int n = crm_type_nfields(e->t), max = (int)CRM_ARRAY_LEN(sys) + n + e->q.nfields + 1;
    e->col_names = crm_calloc((size_t)max, sizeof *e->col_names);
    e->col_fields = crm_calloc((size_t)max, sizeof *e->col_fields);
    if (e->q.nfields > 0) {
        /* A projection: id, then the named columns in the order given. */
        add_column(e, "id", NULL);
        for (int i = 0; i < e->q.nfields; i++) {
            const char *name = e->q.fields[i];
            bool seen = false;
            for (int j = 0; j < e->ncols; j++) seen |= strcmp(e->col_names[j], name) == 0;
            if (!seen) add_column(e, name, crm_type_field(e->t, name));
        }
        return;
    }
    for (size_t i = 0; i < CRM_ARRAY_LEN(sys); i++) add_column(e, sys[i], NULL);
    for (int i = 0; i < n; i++)
        if (crm_principal_field_access(e->ctx.who, e->t, e->t->fields[i]) != CRM_ACCESS_HIDDEN)
            add_column(e, e->t->fields[i]->name, e->t->fields[i]);
}

static json_t *safe_string(const char *s)
{
    return json_string(s && crm_utf8_valid(s, strlen(s)) ? s : "(not UTF-8)");
}

/* SECURITY.md A5: who exported what, with which filters. */
static int audit(crm_export *e)
{
    static const char *const ops[] = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "like", "null"};
    crm_conn *conn = crm_ctx_conn(&e->ctx);
    json_t *filters = json_array(), *sort = json_array(), *fields = json_array();
    crm_stmt *st = NULL;
    char at[21];
    int rc;
    for (int i = 0; i < e->q.nfilters; i++) {
        const crm_filter *f = &e->q.filters[i];
        json_array_append_new(filters, json_pack("{s:o,s:s,s:o}", "field", safe_string(f->field),
                                                 "op", ops[f->op], "value",
                                                 safe_string(f->value)));
    }
    for (int i = 0; i < e->q.nsort; i++) {
        crm_buf b = CRM_BUF_INIT;
        crm_buf_printf(&b, "%s%s", e->q.sort[i].desc ? "-" : "", e->q.sort[i].field);
        json_array_append_new(sort, safe_string(crm_buf_str(&b)));
        crm_buf_free(&b);
    }
    for (int i = 0; i < e->q.nfields; i++) json_array_append_new(fields, safe_string(e->q.fields[i]));
    json_t *detail = json_pack("{s:s,s:b,s:o,s:o,s:o,s:b}", "format",
                               e->format == CRM_EXPORT_CSV ? "csv" : "json", "raw", e->raw,
                               "filters", filters, "sort", sort, "fields", fields, "deleted",
                               e->q.deleted != 0);
    if (e->via) json_object_set_new(detail, "via", safe_string(e->via));
    char *text = json_dumps(detail, JSON_COMPACT);
    json_decref(detail);
    crm_time_format(crm_now(), at);
    if ((rc = crm_tx_begin(conn))) goto done;
    if ((rc = crm_stmt_prepare(conn, &st, "INSERT INTO core_audit(at, user_id, action, target, "
                                          "detail) VALUES (?, ?, ?, ?, ?)"))) {
        crm_tx_rollback(conn);
        goto done;
    }
    crm_stmt_bind_text(st, 1, at, -1);
    int64_t user = crm_principal_user(e->ctx.who);
    if (user) crm_stmt_bind_int(st, 2, user);
    else crm_stmt_bind_null(st, 2);
    crm_stmt_bind_text(st, 3, e->raw ? "export.raw" : "export", -1);
    crm_stmt_bind_text(st, 4, e->t->name, -1);
    crm_stmt_bind_text(st, 5, text, -1);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    if (rc < 0) {
        crm_tx_rollback(conn);
        goto done;
    }
    rc = crm_tx_commit(conn);
done:
    free(text);
    return rc;
}

int crm_export_open(crm_export **out, crm_ctx *ctx, const char *type, const crm_query *q,
                    int format, bool raw)
{
    crm_export *e = NULL;
    const crm_type *t;
    int rc;
    *out = NULL;
    if ((rc = crm_record__type(ctx, type, &t))) return rc;
    if (format != CRM_EXPORT_CSV && format != CRM_EXPORT_JSON)
        return crm_error_set(CRM_EINVALID, "format", "format must be \"csv\" or \"json\"");
    if (raw && !crm_principal_is_admin(ctx->who))
        return crm_error_set(CRM_EDENIED, "raw", "a raw export (without the formula guard) "
                                                 "needs an administrator");
    e = crm_calloc(1, sizeof *e);
    /* The caller's principal may end with its request; the stream outlives it. */
    int64_t user = crm_principal_user(ctx->who);
    if (user && (rc = crm_principal_load(ctx->k->perm, user, &e->who))) goto fail;
    e->via = ctx->via ? crm_strdup(ctx->via) : NULL;
    crm_ctx_init(&e->ctx, ctx->k, e->who ? e->who : crm_principal_system(), e->via);
    e->t = t;
    e->format = format;
    e->raw = raw;
    query_copy(&e->q, q);
    e->q.limit = CRM_EXPORT_PAGE;
    snprintf(e->filename, sizeof e->filename, "%s.%s", t->name,
             format == CRM_EXPORT_CSV ? "csv" : "json");
    if ((rc = fetch_page(e))) goto fail;
    plan_columns(e);
    if ((rc = audit(e))) goto fail;
    *out = e;
    return CRM_OK;
fail:
    crm_export_free(e);
    return rc;
}

static int dump_to_buf(const char *buffer, size_t size, void *data)
{
    crm_buf_put(data, buffer, size);
    return 0;
}

static void put_cell(crm_export *e, const crm_field *f, json_t *v)
{
    char num[40];
    if (!v || json_is_null(v)) return;
    if ((f && f->kind == CRM_FIELD_JSON) || json_is_object(v) || json_is_array(v)) {
        e->scratch.len = 0;
        json_dump_callback(v, dump_to_buf, &e->scratch, JSON_COMPACT | JSON_ENCODE_ANY);
        crm_csv_put(&e->out, e->scratch.ptr ? e->scratch.ptr : "", e->scratch.len, !e->raw);
    } else if (json_is_string(v)) {
        /* Decimals are numbers ("-12.50"), not text a spreadsheet could run. */
        bool guard = !e->raw && !(f && f->kind == CRM_FIELD_DECIMAL);
        crm_csv_put(&e->out, json_string_value(v), json_string_length(v), guard);
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        crm_buf_puts(&e->out, num);
    } else if (json_is_boolean(v)) {
        crm_buf_puts(&e->out, json_is_true(v) ? "true" : "false");
    } else if (json_is_real(v)) {
        snprintf(num, sizeof num, "%.17g", json_real_value(v));
        crm_buf_puts(&e->out, num);
    }
}

/* Produce the next piece of output: the header, one record, a page, or the end. */
static int produce(crm_export *e)
{
    if (!e->started) {
        e->started = true;
        if (e->format == CRM_EXPORT_JSON) {
            crm_buf_putc(&e->out, '[');
            return CRM_OK;
        }
        for (int i = 0; i < e->ncols; i++) {
            if (i) crm_buf_putc(&e->out, ',');
            crm_csv_put(&e->out, e->col_names[i], strlen(e->col_names[i]), false);
        }
        crm_buf_puts(&e->out, "\r\n");
        return CRM_OK;
    }
    if (e->page && e->index < json_array_size(e->page)) {
        json_t *rec = json_array_get(e->page, e->index++);
        if (e->format == CRM_EXPORT_JSON) {
            crm_buf_puts(&e->out, e->count ? ",\n" : "\n");
            json_dump_callback(rec, dump_to_buf, &e->out, JSON_COMPACT);
        } else {
            for (int i = 0; i < e->ncols; i++) {
                if (i) crm_buf_putc(&e->out, ',');
                put_cell(e, e->col_fields[i], json_object_get(rec, e->col_names[i]));
            }
            crm_buf_puts(&e->out, "\r\n");
        }
        e->count++;
        return CRM_OK;
    }
    if (e->more) return fetch_page(e);
    if (e->format == CRM_EXPORT_JSON) crm_buf_puts(&e->out, "\n]\n");
    e->finished = true;
    return CRM_OK;
}

ssize_t crm_export_next(crm_export *e, char *buf, size_t max)
{
    if (e->pos > 0) {
        /* Keep the unread tail at the front so the buffer does not creep. */
        memmove(e->out.ptr, e->out.ptr + e->pos, e->out.len - e->pos);
        e->out.len -= e->pos;
        e->pos = 0;
    }
    while (e->out.len < max && !e->finished) {
        if (produce(e)) {
            crm_log(CRM_LOG_ERROR, "export of %s stopped after %lld records: %s", e->t->name,
                    (long long)e->count, crm_error_last()->message);
            return -1;
        }
    }
    size_t n = e->out.len < max ? e->out.len : max;
    if (n) memcpy(buf, e->out.ptr, n);
    e->pos = n;
    return (ssize_t)n;
}

int64_t crm_export_count(const crm_export *e)
{
    return e->count;
}

const char *crm_export_filename(const crm_export *e)
{
    return e->filename;
}

const char *crm_export_content_type(const crm_export *e)
{
    return e->format == CRM_EXPORT_CSV ? "text/csv; charset=utf-8" : "application/json";
}

void crm_export_free(crm_export *e)
{
    if (!e) return;
    if (e->who) crm_principal_free(e->who);
    free(e->via);
    crm_query_free(&e->q);
    free(e->col_names);
    free(e->col_fields);
    json_decref(e->page);
    crm_buf_free(&e->out);
    crm_buf_free(&e->scratch);
    free(e);
}
