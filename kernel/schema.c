/*
 * schema.c — the registry of record types, their tables, and the validation
 * and conversion of field values.
 *
 * Reads are lock-free (see schema.h): a type's fields live in a fixed array
 * whose count is published last, and types are found through a hash table
 * whose chains are only ever prepended with release stores.
 */
#include "schema.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 512

typedef struct type_node {
    crm_type *type;
    struct type_node *next;
} type_node;

struct crm_schema {
    crm_store *store;
    pthread_mutex_t write_lock;
    crm_type *types[CRM_SCHEMA_MAX_TYPES];
    int ntypes;
    type_node *buckets[BUCKETS];
};

const char *const crm_system_fields[] = {"id",    "created_at", "updated_at", "created_by",
                                         "owner", "team",       "version",    "deleted_at",
                                         NULL};

static const char *const kind_names[] = {
    NULL,   "text", "int", "decimal", "bool", "date", "datetime",
    "enum", "email", "phone", "url",   "ref",  "json",
};

const char *crm_field_kind_name(int kind)
{
    if (kind < CRM_FIELD_TEXT || kind > CRM_FIELD_JSON) return "unknown";
    return kind_names[kind];
}

int crm_field_kind_from_name(const char *name)
{
    for (int k = CRM_FIELD_TEXT; k <= CRM_FIELD_JSON; k++)
        if (name && strcmp(kind_names[k], name) == 0) return k;
    return 0;
}

bool crm_is_system_field(const char *name)
{
    for (int i = 0; crm_system_fields[i]; i++)
        if (strcmp(crm_system_fields[i], name) == 0) return true;
    return false;
}

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

int crm_type_nfields(const crm_type *type)
{
    return __atomic_load_n(&type->nfields, __ATOMIC_ACQUIRE);
}

const char *crm_type_fts_table(const crm_type *type)
{
    return type->fts_table;
}

/* A type by name, hidden or not (the writers' view). */
static crm_type *find_type(crm_schema *schema, const char *name)
{
    if (!name) return NULL;
    type_node *n = __atomic_load_n(&schema->buckets[hash_name(name) % BUCKETS], __ATOMIC_ACQUIRE);
    for (; n; n = n->next)
        if (strcmp(n->type->name, name) == 0) return n->type;
    return NULL;
}

const crm_type *crm_schema_type(crm_schema *schema, const char *name)
{
    crm_type *t = find_type(schema, name);
    return t && !__atomic_load_n(&t->hidden, __ATOMIC_ACQUIRE) ? t : NULL;
}

const crm_field *crm_type_field(const crm_type *type, const char *name)
{
    int n = crm_type_nfields(type);
    for (int i = 0; i < n; i++)
        if (strcmp(type->fields[i]->name, name) == 0) return type->fields[i];
    return NULL;
}

int crm_schema_types(crm_schema *schema, const crm_type ***out, int *n)
{
    int count = __atomic_load_n(&schema->ntypes, __ATOMIC_ACQUIRE);
    const crm_type **arr = crm_calloc((size_t)count + 1, sizeof *arr);
    int m = 0;
    for (int i = 0; i < count; i++)
        if (!__atomic_load_n(&schema->types[i]->hidden, __ATOMIC_ACQUIRE)) arr[m++] = schema->types[i];
    *out = arr;
    *n = m;
    return CRM_OK;
}

crm_store *crm_schema_store(crm_schema *schema)
{
    return schema->store;
}

/* ---- Field specs ---- */

static void field_free(crm_field *f)
{
    if (!f) return;
    free(f->name);
    if (f->enum_values)
        for (char **v = f->enum_values; *v; v++) free(*v);
    free(f->enum_values);
    free(f->ref_type);
    json_decref(f->dflt);
    free(f->label);
    free(f->owner);
    free(f);
}

static bool type_name_valid(const char *name)
{
    const char *dot = name ? strchr(name, '.') : NULL;
    if (!dot || strchr(dot + 1, '.')) return false;
    char owner[CRM_NAME_MAX + 1];
    size_t olen = (size_t)(dot - name);
    if (olen == 0 || olen > CRM_NAME_MAX) return false;
    memcpy(owner, name, olen);
    owner[olen] = 0;
    return crm_ident_valid(owner, CRM_NAME_MAX) && crm_ident_valid(dot + 1, CRM_NAME_MAX);
}

static int spec_bool(json_t *spec, const char *key, bool *out)
{
    json_t *v = json_object_get(spec, key);
    *out = false;
    if (!v || json_is_null(v)) return CRM_OK;
    if (!json_is_boolean(v))
        return crm_error_set(CRM_EINVALID, key, "field option \"%s\" must be true or false", key);
    *out = json_is_true(v);
    return CRM_OK;
}

static const char *const spec_keys[] = {"name",   "kind",       "required", "unique",
                                        "indexed", "searchable", "readonly", "max_length",
                                        "values", "ref",        "scale",    "default",
                                        "label",  NULL};

/* Parse and check a field spec; *out owned by the caller. */
static int field_from_spec(json_t *spec, const char *owner, crm_field **out)
{
    int rc = CRM_OK;
    crm_field *f = crm_calloc(1, sizeof *f);
    *out = NULL;
    if (!json_is_object(spec)) {
        rc = crm_error_set(CRM_EINVALID, NULL, "a field spec must be a JSON object");
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(spec, key, val) {
        bool known = false;
        for (int i = 0; spec_keys[i]; i++)
            if (strcmp(spec_keys[i], key) == 0) known = true;
        if (!known) {
            rc = crm_error_set(CRM_EINVALID, key, "unknown field option \"%s\"", key);
            goto done;
        }
    }
    const char *name = json_string_value(json_object_get(spec, "name"));
    if (!name || !crm_ident_valid(name, CRM_NAME_MAX)) {
        rc = crm_error_set(CRM_EINVALID, "name",
                           "field name \"%s\" is not valid: use a-z, 0-9 and _, starting with "
                           "a letter, at most %d characters",
                           name ? name : "", CRM_NAME_MAX);
        goto done;
    }
    f->name = crm_strdup(name);
    if (crm_is_system_field(name)) {
        rc = crm_error_set(CRM_EINVALID, name, "\"%s\" is a system field name", name);
        goto done;
    }
    const char *kind = json_string_value(json_object_get(spec, "kind"));
    f->kind = crm_field_kind_from_name(kind);
    if (!f->kind) {
        rc = crm_error_set(CRM_EINVALID, name,
                           "field \"%s\": unknown kind \"%s\" (text, int, decimal, bool, date, "
                           "datetime, enum, email, phone, url, ref, json)",
                           name, kind ? kind : "");
        goto done;
    }
    bool b;
    static const struct {
        const char *key;
        unsigned flag;
    } flags[] = {{"required", CRM_FIELD_REQUIRED},   {"unique", CRM_FIELD_UNIQUE},
                 {"indexed", CRM_FIELD_INDEXED},     {"searchable", CRM_FIELD_SEARCHABLE},
                 {"readonly", CRM_FIELD_READONLY}};
    for (size_t i = 0; i < CRM_ARRAY_LEN(flags); i++) {
        if ((rc = spec_bool(spec, flags[i].key, &b))) goto done;
        if (b) f->flags |= flags[i].flag;
    }
    bool textual = f->kind == CRM_FIELD_TEXT || f->kind == CRM_FIELD_EMAIL ||
                   f->kind == CRM_FIELD_PHONE || f->kind == CRM_FIELD_URL;
    if ((f->flags & CRM_FIELD_SEARCHABLE) && !textual && f->kind != CRM_FIELD_ENUM) {
        rc = crm_error_set(CRM_EINVALID, name, "field \"%s\": only text-like fields can be searchable",
                           name);
        goto done;
    }
    if ((f->flags & CRM_FIELD_UNIQUE) && (f->kind == CRM_FIELD_JSON || f->kind == CRM_FIELD_BOOL)) {
        rc = crm_error_set(CRM_EINVALID, name, "field \"%s\": a %s field cannot be unique", name,
                           kind);
        goto done;
    }
    json_t *ml = json_object_get(spec, "max_length");
    f->max_length = f->kind == CRM_FIELD_URL ? 2048 : f->kind == CRM_FIELD_EMAIL ? 254
                    : f->kind == CRM_FIELD_PHONE ? 32 : CRM_TEXT_DEFAULT_MAX;
    if (ml && !json_is_null(ml)) {
        if (!textual || !json_is_integer(ml) || json_integer_value(ml) < 1 ||
            json_integer_value(ml) > CRM_TEXT_HARD_MAX) {
            rc = crm_error_set(CRM_EINVALID, name,
                               "field \"%s\": max_length must be an integer 1..%d on a text field",
                               name, CRM_TEXT_HARD_MAX);
            goto done;
        }
        f->max_length = (int)json_integer_value(ml);
    }
    json_t *scale = json_object_get(spec, "scale");
    f->scale = 2;
    if (scale && !json_is_null(scale)) {
        if (f->kind != CRM_FIELD_DECIMAL || !json_is_integer(scale) ||
            json_integer_value(scale) < 0 || json_integer_value(scale) > 6) {
            rc = crm_error_set(CRM_EINVALID, name,
                               "field \"%s\": scale must be 0..6 on a decimal field", name);
            goto done;
        }
        f->scale = (int)json_integer_value(scale);
    }
    json_t *values = json_object_get(spec, "values");
    if (f->kind == CRM_FIELD_ENUM) {
        size_t n = json_array_size(values);
        if (!json_is_array(values) || n == 0 || n > 200) {
            rc = crm_error_set(CRM_EINVALID, name,
                               "field \"%s\": an enum needs \"values\", 1 to 200 strings", name);
            goto done;
        }
        f->enum_values = crm_calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
            const char *v = json_string_value(json_array_get(values, i));
            if (!v || !*v || strlen(v) > 100) {
                rc = crm_error_set(CRM_EINVALID, name,
                                   "field \"%s\": enum values must be non-empty strings of at most "
                                   "100 bytes", name);
                goto done;
            }
            for (size_t j = 0; j < i; j++)
                if (strcmp(f->enum_values[j], v) == 0) {
                    rc = crm_error_set(CRM_EINVALID, name,
                                       "field \"%s\": enum value \"%s\" appears twice", name, v);
                    goto done;
                }
            f->enum_values[i] = crm_strdup(v);
        }
    } else if (values && !json_is_null(values)) {
        rc = crm_error_set(CRM_EINVALID, name, "field \"%s\": \"values\" is only for enum fields",
                           name);
        goto done;
    }
    const char *ref = json_string_value(json_object_get(spec, "ref"));
    if (f->kind == CRM_FIELD_REF) {
        if (!ref || !type_name_valid(ref)) {
            rc = crm_error_set(CRM_EINVALID, name,
                               "field \"%s\": a ref field needs \"ref\": the target type name", name);
            goto done;
        }
        f->ref_type = crm_strdup(ref);
    } else if (ref) {
        rc = crm_error_set(CRM_EINVALID, name, "field \"%s\": \"ref\" is only for ref fields", name);
        goto done;
    }
    const char *label = json_string_value(json_object_get(spec, "label"));
    f->label = crm_strdup(label && *label ? label : name);
    f->owner = crm_strdup(owner ? owner : "custom");
    json_t *dflt = json_object_get(spec, "default");
    if (dflt && !json_is_null(dflt)) {
        json_t *stored = NULL;
        if ((rc = crm_field_to_db(f, dflt, &stored))) goto done;
        json_decref(stored);
        f->dflt = json_deep_copy(dflt);
    }
    *out = f;
    f = NULL;
done:
    field_free(f);
    return rc;
}

static json_t *field_to_spec(const crm_field *f)
{
    json_t *o = json_pack("{s:s,s:s}", "name", f->name, "kind", crm_field_kind_name(f->kind));
    if (f->flags & CRM_FIELD_REQUIRED) json_object_set_new(o, "required", json_true());
    if (f->flags & CRM_FIELD_UNIQUE) json_object_set_new(o, "unique", json_true());
    if (f->flags & CRM_FIELD_INDEXED) json_object_set_new(o, "indexed", json_true());
    if (f->flags & CRM_FIELD_SEARCHABLE) json_object_set_new(o, "searchable", json_true());
    if (f->flags & CRM_FIELD_READONLY) json_object_set_new(o, "readonly", json_true());
    if (f->kind == CRM_FIELD_TEXT || f->kind == CRM_FIELD_EMAIL || f->kind == CRM_FIELD_PHONE ||
        f->kind == CRM_FIELD_URL)
        json_object_set_new(o, "max_length", json_integer(f->max_length));
    if (f->kind == CRM_FIELD_DECIMAL) json_object_set_new(o, "scale", json_integer(f->scale));
    if (f->enum_values) {
        json_t *a = json_array();
        for (char **v = f->enum_values; *v; v++) json_array_append_new(a, json_string(*v));
        json_object_set_new(o, "values", a);
    }
    if (f->ref_type) json_object_set_new(o, "ref", json_string(f->ref_type));
    if (f->dflt) json_object_set(o, "default", f->dflt);
    json_object_set_new(o, "label", json_string(f->label));
    return o;
}

json_t *crm_type_to_json(const crm_type *type)
{
    json_t *fields = json_array();
    int n = crm_type_nfields(type);
    for (int i = 0; i < n; i++) {
        json_t *spec = field_to_spec(type->fields[i]);
        json_object_set_new(spec, "owner", json_string(type->fields[i]->owner));
        json_array_append_new(fields, spec);
    }
    json_t *o = json_pack("{s:s,s:s,s:s,s:o}", "name", type->name, "label", type->label, "owner",
                          type->owner, "fields", fields);
    if (type->title_field) json_object_set_new(o, "title_field", json_string(type->title_field));
    json_object_set_new(o, "searchable", json_boolean(type->searchable));
    return o;
}

/* ---- DDL ---- */

static const char *column_type(int kind)
{
    switch (kind) {
    case CRM_FIELD_INT:
    case CRM_FIELD_DECIMAL:
    case CRM_FIELD_BOOL:
    case CRM_FIELD_REF: return "INTEGER";
    default: return "TEXT";
    }
}

/* An index name: "<type>:<field>" (unique: "<type>:<field>:u"). */
static void put_index_name(crm_buf *b, const crm_type *t, const char *field, const char *suffix)
{
    char *name = crm_sprintf("%s:%s%s", t->name, field, suffix);
    crm_buf_put_ident(b, name);
    free(name);
}

static int create_field_indexes(crm_conn *conn, const crm_type *t, const crm_field *f)
{
    int rc = CRM_OK;
    crm_buf sql = CRM_BUF_INIT;
    if (f->flags & CRM_FIELD_UNIQUE) {
        /* Partial: soft-deleted records do not hold on to their values. */
        crm_buf_puts(&sql, "CREATE UNIQUE INDEX IF NOT EXISTS ");
        put_index_name(&sql, t, f->name, ":u");
        crm_buf_puts(&sql, " ON ");
        crm_buf_put_ident(&sql, t->name);
        crm_buf_putc(&sql, '(');
        crm_buf_put_ident(&sql, f->name);
        crm_buf_puts(&sql, ") WHERE deleted_at IS NULL;");
    }
    if (f->flags & (CRM_FIELD_INDEXED | CRM_FIELD_UNIQUE)) {
        /* A full index too, for sorts and filters that include deleted records. */
        crm_buf_puts(&sql, "CREATE INDEX IF NOT EXISTS ");
        put_index_name(&sql, t, f->name, "");
        crm_buf_puts(&sql, " ON ");
        crm_buf_put_ident(&sql, t->name);
        crm_buf_putc(&sql, '(');
        crm_buf_put_ident(&sql, f->name);
        crm_buf_puts(&sql, ");");
    }
    if (sql.len) rc = crm_conn_exec(conn, crm_buf_str(&sql));
    crm_buf_free(&sql);
    return rc;
}

/*
 * (Re)build the type's FTS5 table over `fields` (the searchable ones, which may
 * include one not yet published). A regular FTS5 table keyed by the record id:
 * it holds its own copy of the searchable text, so the record layer maintains
 * it with plain INSERT / DELETE, and live records only are indexed.
 */
static int rebuild_fts(crm_conn *conn, const crm_type *t, const crm_field *const *fields, int n)
{
    int rc;
    crm_buf sql = CRM_BUF_INIT;
    crm_buf_puts(&sql, "DROP TABLE IF EXISTS ");
    crm_buf_put_ident(&sql, t->fts_table);
    crm_buf_puts(&sql, "; CREATE VIRTUAL TABLE ");
    crm_buf_put_ident(&sql, t->fts_table);
    crm_buf_puts(&sql, " USING fts5(");
    for (int i = 0; i < n; i++) {
        crm_buf_put_ident(&sql, fields[i]->name);
        crm_buf_puts(&sql, ", ");
    }
    crm_buf_puts(&sql, "prefix='2 3', tokenize='unicode61 remove_diacritics 2'); INSERT INTO ");
    crm_buf_put_ident(&sql, t->fts_table);
    crm_buf_puts(&sql, "(rowid");
    for (int i = 0; i < n; i++) {
        crm_buf_putc(&sql, ',');
        crm_buf_put_ident(&sql, fields[i]->name);
    }
    crm_buf_puts(&sql, ") SELECT id");
    for (int i = 0; i < n; i++) {
        crm_buf_putc(&sql, ',');
        crm_buf_put_ident(&sql, fields[i]->name);
    }
    crm_buf_puts(&sql, " FROM ");
    crm_buf_put_ident(&sql, t->name);
    crm_buf_puts(&sql, " WHERE deleted_at IS NULL;");
    rc = crm_conn_exec(conn, crm_buf_str(&sql));
    crm_buf_free(&sql);
    return rc;
}

static int create_table(crm_conn *conn, const crm_type *t)
{
    crm_buf sql = CRM_BUF_INIT;
    crm_buf_puts(&sql, "CREATE TABLE IF NOT EXISTS ");
    crm_buf_put_ident(&sql, t->name);
    crm_buf_puts(&sql, " (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT "
                       "NULL, created_by INTEGER, owner INTEGER, team INTEGER, version INTEGER NOT "
                       "NULL DEFAULT 1, deleted_at TEXT);");
    /* Row scopes ("own", "team") filter on these. */
    crm_buf_puts(&sql, "CREATE INDEX IF NOT EXISTS ");
    put_index_name(&sql, t, "owner", "");
    crm_buf_puts(&sql, " ON ");
    crm_buf_put_ident(&sql, t->name);
    crm_buf_puts(&sql, "(owner); CREATE INDEX IF NOT EXISTS ");
    put_index_name(&sql, t, "team", "");
    crm_buf_puts(&sql, " ON ");
    crm_buf_put_ident(&sql, t->name);
    crm_buf_puts(&sql, "(team);");
    int rc = crm_conn_exec(conn, crm_buf_str(&sql));
    crm_buf_free(&sql);
    return rc;
}

static int add_column(crm_conn *conn, const crm_type *t, const crm_field *f)
{
    int rc;
    crm_buf sql = CRM_BUF_INIT;
    crm_buf_puts(&sql, "ALTER TABLE ");
    crm_buf_put_ident(&sql, t->name);
    crm_buf_puts(&sql, " ADD COLUMN ");
    crm_buf_put_ident(&sql, f->name);
    crm_buf_printf(&sql, " %s", column_type(f->kind));
    if ((rc = crm_conn_exec(conn, crm_buf_str(&sql)))) goto done;
    if (f->dflt) {
        /* Existing records take the default; the value is bound, never spliced. */
        crm_stmt *st;
        json_t *stored = NULL;
        sql.len = 0;
        sql.ptr[0] = 0;
        crm_buf_puts(&sql, "UPDATE ");
        crm_buf_put_ident(&sql, t->name);
        crm_buf_puts(&sql, " SET ");
        crm_buf_put_ident(&sql, f->name);
        crm_buf_puts(&sql, " = ?");
        if ((rc = crm_field_to_db(f, f->dflt, &stored))) goto done;
        if ((rc = crm_stmt_prepare(conn, &st, crm_buf_str(&sql)))) {
            json_decref(stored);
            goto done;
        }
        crm_stmt_bind_json(st, 1, stored);
        rc = crm_stmt_step(st);
        rc = rc < 0 ? rc : CRM_OK;
        crm_stmt_done(st);
        json_decref(stored);
    }
done:
    crm_buf_free(&sql);
    return rc;
}

/* ---- The registry ---- */

static crm_type *type_new(const char *name, const char *label, const char *owner)
{
    crm_type *t = crm_calloc(1, sizeof *t);
    t->name = crm_strdup(name);
    t->owner = crm_strdup(owner);
    t->label = crm_strdup(label && *label ? label : name);
    t->fts_table = crm_sprintf("%s:fts", name);
    t->system = strncmp(name, "core.", 5) == 0;
    return t;
}

static void type_free(crm_type *t)
{
    for (int i = 0; i < t->nfields; i++) field_free(t->fields[i]);
    free(t->name);
    free(t->owner);
    free(t->label);
    free(t->title_field);
    free(t->fts_table);
    free(t);
}

/* Make `t` visible to readers. Caller holds write_lock. */
static void publish_type(crm_schema *s, crm_type *t)
{
    t->id = s->ntypes;
    s->types[s->ntypes] = t;
    __atomic_store_n(&s->ntypes, s->ntypes + 1, __ATOMIC_RELEASE);
    type_node *n = crm_malloc(sizeof *n);
    uint32_t b = hash_name(t->name) % BUCKETS;
    n->type = t;
    n->next = s->buckets[b];
    __atomic_store_n(&s->buckets[b], n, __ATOMIC_RELEASE);
}

static void publish_field(crm_type *t, crm_field *f)
{
    f->position = t->nfields;
    t->fields[t->nfields] = f;
    if (f->flags & CRM_FIELD_SEARCHABLE) t->searchable = true;
    if (!t->title_field && f->kind == CRM_FIELD_TEXT) t->title_field = crm_strdup(f->name);
    __atomic_store_n(&t->nfields, t->nfields + 1, __ATOMIC_RELEASE);
}

/*
 * Persist and build one new field of `t` in the caller's transaction, without
 * publishing it. `fresh` is true when the table was just created with no rows.
 */
static int field_install(crm_conn *conn, crm_type *t, crm_field *f)
{
    int rc;
    crm_stmt *st = NULL;
    if (t->nfields >= CRM_TYPE_MAX_FIELDS)
        return crm_error_set(CRM_ELIMIT, f->name, "type %s already has %d fields", t->name,
                             CRM_TYPE_MAX_FIELDS);
    if ((rc = add_column(conn, t, f))) return rc;
    if ((rc = create_field_indexes(conn, t, f))) return rc;
    if (f->flags & CRM_FIELD_SEARCHABLE) {
        const crm_field *search[CRM_TYPE_MAX_FIELDS];
        int n = 0;
        for (int i = 0; i < t->nfields; i++)
            if (t->fields[i]->flags & CRM_FIELD_SEARCHABLE) search[n++] = t->fields[i];
        search[n++] = f;
        if ((rc = rebuild_fts(conn, t, search, n))) return rc;
    }
    json_t *spec = field_to_spec(f);
    char *text = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);
    if ((rc = crm_stmt_prepare(conn, &st, "INSERT INTO core_field(type, name, position, spec, "
                                          "owner) VALUES (?, ?, ?, ?, ?)")))
        goto done;
    crm_stmt_bind_text(st, 1, t->name, -1);
    crm_stmt_bind_text(st, 2, f->name, -1);
    crm_stmt_bind_int(st, 3, t->nfields);
    crm_stmt_bind_text(st, 4, text, -1);
    crm_stmt_bind_text(st, 5, f->owner, -1);
    rc = crm_stmt_step(st);
    rc = rc < 0 ? rc : CRM_OK;
done:
    if (st) crm_stmt_done(st);
    free(text);
    return rc;
}

int crm_schema_add_field(crm_schema *schema, const char *type, json_t *spec, const char *owner)
{
    int rc;
    crm_field *f = NULL;
    crm_conn *conn = crm_store_conn(schema->store);
    pthread_mutex_lock(&schema->write_lock);
    crm_type *t = find_type(schema, type);
    if (!t) {
        rc = crm_error_set(CRM_ENOTFOUND, NULL, "unknown type \"%s\"", type ? type : "");
        goto done;
    }
    if ((rc = field_from_spec(spec, owner, &f))) goto done;
    if (crm_type_field(t, f->name)) {
        rc = crm_error_set(CRM_ECONFLICT, f->name, "type %s already has a field \"%s\"", t->name,
                           f->name);
        goto done;
    }
    if ((f->flags & CRM_FIELD_REQUIRED) && !f->dflt) {
        rc = crm_error_set(CRM_EINVALID, f->name,
                           "field \"%s\": a required field added to an existing type needs a "
                           "\"default\" for the records it already has", f->name);
        goto done;
    }
    if ((rc = crm_tx_begin(conn))) goto done;
    if ((rc = field_install(conn, t, f)) || (rc = crm_tx_commit(conn))) {
        crm_tx_rollback(conn);
        goto done;
    }
    publish_field(t, f);
    f = NULL;
done:
    pthread_mutex_unlock(&schema->write_lock);
    field_free(f);
    return rc;
}

/* ---- Composite indexes ---- */

/*
 * A composite index is named "<type>:<f1>,<f2>[,...]" — the field names, in
 * order, are the index's identity, so declaring it again is a no-op and
 * crm_schema_indexes() reads the list back from sqlite_schema: the database is
 * the only record of which exist (no registry entry to keep in step).
 */
int crm_schema_check_index(crm_schema *schema, const char *type, json_t *fields, bool staged_type)
{
    const crm_type *t = crm_schema_type(schema, type);
    if (!t && !staged_type)
        return crm_error_set(CRM_ENOTFOUND, NULL, "unknown type \"%s\"", type ? type : "");
    size_t n = json_array_size(fields);
    if (!json_is_array(fields) || n < 2 || n > CRM_INDEX_MAX_FIELDS)
        return crm_error_set(CRM_EINVALID, "fields",
                             "an index names 2 to %d fields, as a JSON array of field names",
                             CRM_INDEX_MAX_FIELDS);
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(fields, i));
        if (!name || !crm_ident_valid(name, CRM_NAME_MAX))
            return crm_error_set(CRM_EINVALID, "fields", "index field %zu is not a field name",
                                 i + 1);
        for (size_t j = 0; j < i; j++)
            if (strcmp(name, json_string_value(json_array_get(fields, j))) == 0)
                return crm_error_set(CRM_EINVALID, "fields", "index field \"%s\" appears twice",
                                     name);
        if (!t) continue; /* a type staged in the same init: checked when it is applied */
        const crm_field *f = crm_type_field(t, name);
        if (!f && !crm_is_system_field(name))
            return crm_error_set(CRM_EINVALID, "fields", "type %s has no field \"%s\"", t->name,
                                 name);
        if (f && f->kind == CRM_FIELD_JSON)
            return crm_error_set(CRM_EINVALID, "fields",
                                 "field \"%s\" holds JSON, which cannot be indexed", name);
    }
    return CRM_OK;
}

int crm_schema_add_index(crm_schema *schema, const char *type, json_t *fields)
{
    int rc;
    if ((rc = crm_schema_check_index(schema, type, fields, false))) return rc;
    const crm_type *t = crm_schema_type(schema, type);
    crm_buf name = CRM_BUF_INIT, sql = CRM_BUF_INIT;
    crm_buf_printf(&name, "%s:", t->name);
    for (size_t i = 0; i < json_array_size(fields); i++)
        crm_buf_printf(&name, "%s%s", i ? "," : "", json_string_value(json_array_get(fields, i)));
    crm_buf_puts(&sql, "CREATE INDEX IF NOT EXISTS ");
    crm_buf_put_ident(&sql, crm_buf_str(&name));
    crm_buf_puts(&sql, " ON ");
    crm_buf_put_ident(&sql, t->name);
    crm_buf_putc(&sql, '(');
    for (size_t i = 0; i < json_array_size(fields); i++) {
        if (i) crm_buf_putc(&sql, ',');
        crm_buf_put_ident(&sql, json_string_value(json_array_get(fields, i)));
    }
    crm_buf_puts(&sql, ")");
    pthread_mutex_lock(&schema->write_lock);
    rc = crm_conn_exec(crm_store_conn(schema->store), crm_buf_str(&sql));
    pthread_mutex_unlock(&schema->write_lock);
    crm_buf_free(&name);
    crm_buf_free(&sql);
    return rc;
}

int crm_schema_indexes(crm_schema *schema, const char *type, json_t **out)
{
    crm_stmt *st;
    int rc;
    *out = NULL;
    if ((rc = crm_stmt_prepare(crm_store_conn(schema->store), &st,
                               "SELECT name FROM sqlite_schema WHERE type = 'index' AND "
                               "tbl_name = ?1 AND substr(name, 1, length(?1) + 1) = ?1 || ':' "
                               "AND instr(name, ',') > 0 ORDER BY name")))
        return rc;
    crm_stmt_bind_text(st, 1, type, -1);
    json_t *list = json_array();
    size_t skip = strlen(type) + 1;
    while ((rc = crm_stmt_step(st)) == 1) {
        const char *name = crm_stmt_column_text(st, 0) + skip;
        json_t *fields = json_array();
        for (const char *p = name; *p;) {
            size_t len = strcspn(p, ",");
            json_array_append_new(fields, json_stringn(p, len));
            p += len + (p[len] == ',');
        }
        json_array_append_new(list, fields);
    }
    crm_stmt_done(st);
    if (rc < 0) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return CRM_OK;
}

/* The arguments of a type declaration: its name, its owner, a fields array. */
static int check_declaration(const char *name, const char *owner, json_t *fields)
{
    if (!type_name_valid(name))
        return crm_error_set(CRM_EINVALID, NULL,
                             "type name \"%s\" is not valid: use <owner>.<name>, each a-z, 0-9 "
                             "and _, starting with a letter", name ? name : "");
    if (!owner || !crm_ident_valid(owner, CRM_NAME_MAX))
        return crm_error_set(CRM_EINVALID, NULL, "type %s: owner \"%s\" is not valid", name,
                             owner ? owner : "");
    if (fields && !json_is_array(fields))
        return crm_error_set(CRM_EINVALID, NULL, "type %s: fields must be a JSON array", name);
    return CRM_OK;
}

int crm_schema_define_type(crm_schema *schema, const char *name, const char *label,
                           const char *owner, json_t *fields)
{
    int rc = CRM_OK;
    crm_conn *conn = crm_store_conn(schema->store);
    crm_type *t = NULL;
    bool created = false, in_tx = false;
    crm_field *pending[CRM_TYPE_MAX_FIELDS];
    int npending = 0;

    if ((rc = check_declaration(name, owner, fields))) return rc;

    pthread_mutex_lock(&schema->write_lock);
    t = find_type(schema, name);
    if (t && strcmp(t->owner, owner) != 0) {
        rc = crm_error_set(CRM_ECONFLICT, NULL, "type %s is already declared by \"%s\"", name,
                           t->owner);
        t = NULL;
        goto done;
    }
    if (!t) {
        if (schema->ntypes >= CRM_SCHEMA_MAX_TYPES) {
            rc = crm_error_set(CRM_ELIMIT, NULL, "too many types (%d)", CRM_SCHEMA_MAX_TYPES);
            goto done;
        }
        t = type_new(name, label, owner);
        created = true;
    }
    if ((rc = crm_tx_begin(conn))) goto done;
    in_tx = true;
    if (created) {
        crm_stmt *st;
        char at[21];
        crm_time_format(crm_now(), at);
        if ((rc = create_table(conn, t))) goto done;
        if ((rc = crm_stmt_prepare(conn, &st, "INSERT INTO core_type(name, owner, label, "
                                              "created_at) VALUES (?, ?, ?, ?)")))
            goto done;
        crm_stmt_bind_text(st, 1, t->name, -1);
        crm_stmt_bind_text(st, 2, t->owner, -1);
        crm_stmt_bind_text(st, 3, t->label, -1);
        crm_stmt_bind_text(st, 4, at, -1);
        rc = crm_stmt_step(st);
        crm_stmt_done(st);
        if (rc < 0) goto done;
        rc = CRM_OK;
    }
    size_t i;
    json_t *spec;
    json_array_foreach(fields, i, spec) {
        crm_field *f;
        if ((rc = field_from_spec(spec, owner, &f))) goto done;
        bool dup = crm_type_field(t, f->name) != NULL;
        for (int j = 0; j < npending; j++)
            if (strcmp(pending[j]->name, f->name) == 0) dup = true;
        if (dup) {
            /* Already there (a plugin re-declaring at start): keep the stored definition. */
            if (!created) { field_free(f); continue; }
            rc = crm_error_set(CRM_EINVALID, f->name, "type %s: field \"%s\" is declared twice",
                               name, f->name);
            field_free(f);
            goto done;
        }
        if ((f->flags & CRM_FIELD_REQUIRED) && !f->dflt && !created) {
            rc = crm_error_set(CRM_EINVALID, f->name,
                               "field \"%s\": a required field added to an existing type needs "
                               "a \"default\"", f->name);
            field_free(f);
            goto done;
        }
        /* Install against a view that includes the fields pending before it. */
        int saved = t->nfields;
        for (int j = 0; j < npending; j++) t->fields[saved + j] = pending[j];
        t->nfields = saved + npending;
        rc = field_install(conn, t, f);
        t->nfields = saved;
        if (rc) { field_free(f); goto done; }
        pending[npending++] = f;
    }
    if ((rc = crm_tx_commit(conn))) { in_tx = false; goto done; }
    in_tx = false;
    if (created) publish_type(schema, t);
    for (int j = 0; j < npending; j++) publish_field(t, pending[j]);
    __atomic_store_n(&t->hidden, false, __ATOMIC_RELEASE); /* its owner declares it again */
    npending = 0;
    t = NULL;
done:
    if (in_tx) crm_tx_rollback(conn);
    for (int j = 0; j < npending; j++) field_free(pending[j]);
    if (created && t) type_free(t);
    pthread_mutex_unlock(&schema->write_lock);
    return rc;
}

/* ---- Loading ---- */

static int load_types(crm_schema *s)
{
    int rc;
    crm_conn *conn = crm_store_conn(s->store);
    crm_stmt *st = NULL;
    if ((rc = crm_stmt_prepare(conn, &st, "SELECT name, owner, label FROM core_type ORDER BY "
                                          "created_at, rowid")))
        return rc;
    while ((rc = crm_stmt_step(st)) == 1) {
        if (s->ntypes >= CRM_SCHEMA_MAX_TYPES) break;
        publish_type(s, type_new(crm_stmt_column_text(st, 0), crm_stmt_column_text(st, 2),
                                 crm_stmt_column_text(st, 1)));
    }
    crm_stmt_done(st);
    if (rc < 0) return rc;
    if ((rc = crm_stmt_prepare(conn, &st, "SELECT type, spec, owner FROM core_field ORDER BY "
                                          "type, position")))
        return rc;
    while ((rc = crm_stmt_step(st)) == 1) {
        crm_type *t = (crm_type *)crm_schema_type(s, crm_stmt_column_text(st, 0));
        json_t *spec = json_loads(crm_stmt_column_text(st, 1), 0, NULL);
        crm_field *f = NULL;
        if (!t || !spec || field_from_spec(spec, crm_stmt_column_text(st, 2), &f)) {
            rc = crm_error_set(CRM_EINTERNAL, NULL, "core_field: bad stored field of %s",
                               crm_stmt_column_text(st, 0));
            json_decref(spec);
            break;
        }
        json_decref(spec);
        publish_field(t, f);
    }
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

/* The kernel's own types. Their grants are admin-only unless an admin grants more. */
static int define_core_types(crm_schema *s)
{
    int rc;
    json_t *user = json_loads(
        "[{\"name\":\"username\",\"kind\":\"text\",\"required\":true,\"unique\":true,"
        "  \"searchable\":true,\"max_length\":64},"
        " {\"name\":\"display_name\",\"kind\":\"text\",\"searchable\":true,\"max_length\":200},"
        " {\"name\":\"email\",\"kind\":\"email\",\"searchable\":true},"
        " {\"name\":\"is_admin\",\"kind\":\"bool\",\"default\":false},"
        " {\"name\":\"disabled\",\"kind\":\"bool\",\"default\":false}]",
        0, NULL);
    json_t *role = json_loads(
        "[{\"name\":\"name\",\"kind\":\"text\",\"required\":true,\"unique\":true,\"max_length\":100},"
        " {\"name\":\"description\",\"kind\":\"text\",\"max_length\":1000}]",
        0, NULL);
    rc = crm_schema_define_type(s, "core.user", "User", "core", user);
    if (!rc) rc = crm_schema_define_type(s, "core.role", "Role", "core", role);
    if (!rc) rc = crm_schema_define_type(s, "core.team", "Team", "core", role);
    json_decref(user);
    json_decref(role);
    return rc;
}

int crm_schema_open(crm_schema **out, crm_store *store)
{
    int rc;
    crm_schema *s = crm_calloc(1, sizeof *s);
    s->store = store;
    pthread_mutex_init(&s->write_lock, NULL);
    *out = NULL;
    if ((rc = load_types(s)) || (rc = define_core_types(s))) {
        crm_schema_close(s);
        return rc;
    }
    *out = s;
    return CRM_OK;
}

void crm_schema_close(crm_schema *s)
{
    if (!s) return;
    for (int i = 0; i < BUCKETS; i++) {
        type_node *n = s->buckets[i];
        while (n) {
            type_node *next = n->next;
            free(n);
            n = next;
        }
    }
    for (int i = 0; i < s->ntypes; i++) type_free(s->types[i]);
    pthread_mutex_destroy(&s->write_lock);
    free(s);
}

/* ---- Plugins: checking declarations, renaming fields, hiding types ---- */

int crm_schema_check_type(crm_schema *schema, const char *name, const char *owner,
                          json_t *fields)
{
    int rc = CRM_OK;
    crm_field *seen[CRM_TYPE_MAX_FIELDS];
    int nseen = 0;
    size_t i;
    json_t *spec;

    if ((rc = check_declaration(name, owner, fields))) return rc;
    const crm_type *t = find_type(schema, name);
    if (t && strcmp(t->owner, owner) != 0)
        return crm_error_set(CRM_ECONFLICT, NULL, "type %s is already declared by \"%s\"", name,
                             t->owner);
    json_array_foreach(fields, i, spec) {
        crm_field *f;
        if ((rc = field_from_spec(spec, owner, &f))) goto done;
        bool dup = false;
        for (int j = 0; j < nseen; j++)
            if (strcmp(seen[j]->name, f->name) == 0) dup = true;
        if (dup || nseen == CRM_TYPE_MAX_FIELDS) {
            rc = dup ? crm_error_set(CRM_EINVALID, f->name,
                                     "type %s: field \"%s\" is declared twice", name, f->name)
                     : crm_error_set(CRM_ELIMIT, f->name, "type %s has more than %d fields", name,
                                     CRM_TYPE_MAX_FIELDS);
            field_free(f);
            goto done;
        }
        if (t && !crm_type_field(t, f->name) && (f->flags & CRM_FIELD_REQUIRED) && !f->dflt) {
            rc = crm_error_set(CRM_EINVALID, f->name,
                               "field \"%s\": a required field added to an existing type needs "
                               "a \"default\"", f->name);
            field_free(f);
            goto done;
        }
        seen[nseen++] = f;
    }
done:
    for (int j = 0; j < nseen; j++) field_free(seen[j]);
    return rc;
}

int crm_schema_check_field(crm_schema *schema, const char *type, json_t *spec, const char *owner,
                           bool type_pending)
{
    int rc;
    crm_field *f = NULL;
    const crm_type *t = find_type(schema, type);
    if (!t && !type_pending)
        return crm_error_set(CRM_ENOTFOUND, NULL, "unknown type \"%s\"", type ? type : "");
    if ((rc = field_from_spec(spec, owner, &f))) return rc;
    const crm_field *have = t ? crm_type_field(t, f->name) : NULL;
    if (have && strcmp(have->owner, f->owner) != 0)
        rc = crm_error_set(CRM_ECONFLICT, f->name, "type %s already has a field \"%s\" (of \"%s\")",
                           t->name, f->name, have->owner);
    else if (t && !have && (f->flags & CRM_FIELD_REQUIRED) && !f->dflt)
        rc = crm_error_set(CRM_EINVALID, f->name,
                           "field \"%s\": a required field added to an existing type needs a "
                           "\"default\" for the records it already has", f->name);
    field_free(f);
    return rc;
}

/*
 * A renamed field's old name is never freed while the process runs (a reader
 * may be comparing against it); it stays reachable from this list.
 */
typedef struct rename_job {
    crm_field *field;
    char *name;
} rename_job;

static pthread_mutex_t graveyard_mu = PTHREAD_MUTEX_INITIALIZER;
static void **graveyard;
static size_t ngraveyard, capgraveyard;

static void graveyard_keep(void *p)
{
    pthread_mutex_lock(&graveyard_mu);
    if (ngraveyard == capgraveyard) {
        capgraveyard = capgraveyard ? 2 * capgraveyard : 16;
        graveyard = crm_realloc(graveyard, capgraveyard * sizeof *graveyard);
    }
    graveyard[ngraveyard++] = p;
    pthread_mutex_unlock(&graveyard_mu);
}

static void publish_rename(rename_job *job)
{
    graveyard_keep(job->field->name);
    __atomic_store_n(&job->field->name, job->name, __ATOMIC_RELEASE);
    job->name = NULL;
}

int crm_schema_rename_field_revert(crm_schema *schema, const char *type, const char *to,
                                   const char *from)
{
    int rc = CRM_OK;
    pthread_mutex_lock(&schema->write_lock);
    crm_type *t = find_type(schema, type);
    crm_field *f = t ? (crm_field *)crm_type_field(t, to) : NULL;
    if (!f) {
        rc = crm_error_set(CRM_ENOTFOUND, NULL, "no field %s.%s to revert", type, to);
    } else {
        rename_job job = {f, crm_strdup(from)};
        publish_rename(&job);
    }
    pthread_mutex_unlock(&schema->write_lock);
    return rc;
}

static int drop_field_indexes(crm_conn *conn, const crm_type *t, const char *field)
{
    crm_buf sql = CRM_BUF_INIT;
    crm_buf_puts(&sql, "DROP INDEX IF EXISTS ");
    put_index_name(&sql, t, field, ":u");
    crm_buf_puts(&sql, "; DROP INDEX IF EXISTS ");
    put_index_name(&sql, t, field, "");
    crm_buf_puts(&sql, ";");
    int rc = crm_conn_exec(conn, crm_buf_str(&sql));
    crm_buf_free(&sql);
    return rc;
}

int crm_schema_rename_field(crm_schema *schema, const char *type, const char *from, const char *to)
{
    int rc;
    crm_conn *conn = crm_store_conn(schema->store);
    crm_buf sql = CRM_BUF_INIT;
    crm_stmt *st = NULL;
    char *spec_text = NULL;
    bool in_tx = false;

    pthread_mutex_lock(&schema->write_lock);
    crm_type *t = find_type(schema, type);
    crm_field *f = t && from ? (crm_field *)crm_type_field(t, from) : NULL;
    if (!t) {
        rc = crm_error_set(CRM_ENOTFOUND, NULL, "unknown type \"%s\"", type ? type : "");
        goto done;
    }
    if (!f) {
        rc = crm_error_set(CRM_ENOTFOUND, from, "type %s has no field \"%s\"", type,
                           from ? from : "");
        goto done;
    }
    if (!to || !crm_ident_valid(to, CRM_NAME_MAX) || crm_is_system_field(to)) {
        rc = crm_error_set(CRM_EINVALID, to, "cannot rename %s.%s to \"%s\": not a valid field "
                           "name", type, from, to ? to : "");
        goto done;
    }
    if (crm_type_field(t, to)) {
        rc = crm_error_set(CRM_ECONFLICT, to, "type %s already has a field \"%s\"", type, to);
        goto done;
    }
    if ((rc = crm_tx_begin(conn))) goto done;
    in_tx = true;
    crm_buf_puts(&sql, "ALTER TABLE ");
    crm_buf_put_ident(&sql, t->name);
    crm_buf_puts(&sql, " RENAME COLUMN ");
    crm_buf_put_ident(&sql, from);
    crm_buf_puts(&sql, " TO ");
    crm_buf_put_ident(&sql, to);
    if ((rc = crm_conn_exec(conn, crm_buf_str(&sql)))) goto done;

    /* Indexes and the FTS table are named / built after the field: redo them. */
    crm_field renamed = *f;
    renamed.name = (char *)to;
    if ((rc = drop_field_indexes(conn, t, from)) || (rc = create_field_indexes(conn, t, &renamed)))
        goto done;
    if (f->flags & CRM_FIELD_SEARCHABLE) {
        const crm_field *search[CRM_TYPE_MAX_FIELDS];
        int n = 0;
        for (int i = 0; i < t->nfields; i++)
            if (t->fields[i]->flags & CRM_FIELD_SEARCHABLE)
                search[n++] = t->fields[i] == f ? &renamed : t->fields[i];
        if ((rc = rebuild_fts(conn, t, search, n))) goto done;
    }
    json_t *spec = field_to_spec(&renamed);
    spec_text = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);
    static const char *const updates[] = {
        "UPDATE core_field SET name = ?1, spec = ?4 WHERE type = ?2 AND name = ?3",
        "UPDATE core_field_perm SET field = ?1 WHERE type = ?2 AND field = ?3 AND ?4 IS NOT NULL",
    };
    for (size_t i = 0; i < CRM_ARRAY_LEN(updates); i++) {
        if ((rc = crm_stmt_prepare(conn, &st, updates[i]))) goto done;
        crm_stmt_bind_text(st, 1, to, -1);
        crm_stmt_bind_text(st, 2, t->name, -1);
        crm_stmt_bind_text(st, 3, from, -1);
        crm_stmt_bind_text(st, 4, spec_text, -1);
        rc = crm_stmt_step(st);
        crm_stmt_done(st);
        if (rc < 0) goto done;
        rc = CRM_OK;
    }
    in_tx = false;
    if ((rc = crm_tx_commit(conn))) goto done;
    /* Published now, as define_type publishes: later statements of an enclosing
     * transaction (a migration's data step) see the new name. */
    rename_job job = {f, crm_strdup(to)};
    publish_rename(&job);
done:
    if (in_tx) crm_tx_rollback(conn);
    pthread_mutex_unlock(&schema->write_lock);
    crm_buf_free(&sql);
    free(spec_text);
    return rc;
}

int crm_schema_hide_owner(crm_schema *schema, const char *owner)
{
    int hidden = 0;
    pthread_mutex_lock(&schema->write_lock);
    for (int i = 0; i < schema->ntypes; i++) {
        crm_type *t = schema->types[i];
        if (!t->system && strcmp(t->owner, owner) == 0 && !t->hidden) {
            __atomic_store_n(&t->hidden, true, __ATOMIC_RELEASE);
            hidden++;
        }
    }
    pthread_mutex_unlock(&schema->write_lock);
    return hidden;
}

json_t *crm_schema_owners(crm_schema *schema)
{
    json_t *owners = json_array();
    int count = __atomic_load_n(&schema->ntypes, __ATOMIC_ACQUIRE);
    for (int i = 0; i < count; i++) {
        const char *o = schema->types[i]->owner;
        bool seen = false;
        size_t j;
        json_t *v;
        json_array_foreach(owners, j, v) if (strcmp(json_string_value(v), o) == 0) seen = true;
        if (!seen) json_array_append_new(owners, json_string(o));
    }
    return owners;
}
