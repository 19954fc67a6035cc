/*
 * record.h — reading and writing records, the one path every caller takes
 * (HTTP, Lua rules, plugins, the CLI). Each call checks the principal's
 * permissions, validates against the schema, runs the bus's before / after
 * handlers and writes history and the outbox inside one transaction.
 *
 * A record is a flat JSON object: the system fields (id, created_at,
 * updated_at, created_by, owner, team, version, deleted_at) and the fields the
 * principal may read.
 */
#ifndef CRM_RECORD_H
#define CRM_RECORD_H

#include "kernel.h"

/*
 * Read one record. Deleted records are found only with `deleted` true.
 * Errors: CRM_EINVALID (unknown type), CRM_ENOTFOUND (no such record or not
 * visible to the principal: no existence oracle).
 */
int crm_record_get(crm_ctx *ctx, const char *type, int64_t id, bool deleted, json_t **out);

/*
 * Create a record from `fields` (a JSON object of field values; system fields
 * other than owner and team are ignored; owner and team default to the
 * principal and their first team, and with "own" create scope cannot name
 * another user). Returns the stored record.
 * Errors: CRM_EINVALID naming the field, CRM_EDENIED, CRM_ECONFLICT (unique),
 * CRM_ELIMIT (cascade), CRM_EBUSY, CRM_EFULL.
 */
int crm_record_create(crm_ctx *ctx, const char *type, json_t *fields, json_t **out);

/*
 * Update the fields present in `patch`. `expect_version` > 0 makes it
 * conditional: CRM_ESTALE when the record's version differs. An update that
 * changes nothing writes nothing (no version bump, no history, no event).
 * Errors: as create, plus CRM_ENOTFOUND and CRM_ESTALE.
 */
int crm_record_update(crm_ctx *ctx, const char *type, int64_t id, json_t *patch,
                      int64_t expect_version, json_t **out);

/* Soft delete (deleted_at set); restore undoes it. Both bump the version. */
int crm_record_delete(crm_ctx *ctx, const char *type, int64_t id, int64_t expect_version);
int crm_record_restore(crm_ctx *ctx, const char *type, int64_t id, json_t **out);

/*
 * The record's history, oldest first: [{"id","at","user","via","action",
 * "changes":{field:[old,new]}}], fields the principal may not read left out.
 * Errors: as get.
 */
int crm_record_history(crm_ctx *ctx, const char *type, int64_t id, json_t **out);

/*
 * Forget values (GDPR erase): in every history row and every outbox event of
 * record `id`, replace the values of `fields` (a JSON array of names) with
 * "[erased]". The record itself is changed with crm_record_update first (that
 * update's own history row holds the old values too: forget after it). In the
 * caller's transaction. Events already delivered to webhooks cannot be
 * recalled. Admins only.
 * Errors: CRM_EDENIED, CRM_EINVALID (unknown type or field, not an array).
 */
int crm_record_forget(crm_ctx *ctx, const char *type, int64_t id, json_t *fields);

/* ---- Lists ---- */

enum crm_op { CRM_OP_EQ, CRM_OP_NE, CRM_OP_GT, CRM_OP_GTE, CRM_OP_LT, CRM_OP_LTE,
              CRM_OP_IN, CRM_OP_LIKE, CRM_OP_NULL };

#define CRM_QUERY_MAX_FILTERS 32
#define CRM_QUERY_MAX_SORT 8
#define CRM_QUERY_MAX_LIMIT 1000
#define CRM_QUERY_DEFAULT_LIMIT 50

typedef struct crm_filter {
    char *field;
    int op;
    char *value; /* text, parsed per the field's kind when the query runs */
} crm_filter;

typedef struct crm_sort {
    char *field;
    bool desc;
} crm_sort;

/* A list query: what `GET /records/{type}?...` says, parsed. */
typedef struct crm_query {
    crm_filter filters[CRM_QUERY_MAX_FILTERS];
    int nfilters;
    crm_sort sort[CRM_QUERY_MAX_SORT];
    int nsort;
    int limit;         /* 1..1000, default 50 */
    char *cursor;      /* opaque, from a previous answer's "next" */
    char **fields;     /* projection, NULL for all readable */
    int nfields;
    bool count;        /* add "count" (matching rows, ignoring cursor and limit) */
    int deleted;       /* 0 live only (default), 1 deleted only */
} crm_query;

void crm_query_init(crm_query *q);
void crm_query_free(crm_query *q);
/*
 * Take one query-string pair: limit, cursor, sort ("-amount,name"), fields
 * ("a,b"), count ("1"), deleted ("1"), or a filter "field" / "field__op".
 * Names are checked against the schema when the query runs.
 * Errors: CRM_EINVALID naming the parameter.
 */
int crm_query_add(crm_query *q, const char *key, const char *value);

/*
 * Run a list query: {"data":[record...],"next":cursor|null[,"count":N]}.
 * Only records within the principal's read scope; filters and sorts on fields
 * the principal may not read are refused (CRM_EINVALID naming the field).
 */
int crm_record_find(crm_ctx *ctx, const char *type, const crm_query *q, json_t **out);
/*
 * The same answer as JSON text (what json_dumps(JSON_COMPACT) of
 * crm_record_find's *out would be), written straight from the rows: the HTTP
 * list uses it. *out is malloc'd (free()), *len its length. Errors: as
 * crm_record_find.
 */
int crm_record_find_text(crm_ctx *ctx, const char *type, const crm_query *q, char **out,
                         size_t *len);

/*
 * Turn an API record (stored row) into JSON for the principal: used by the
 * other layers that read rows of a type themselves (search, export, events).
 * Drops the fields the principal may not read.
 */
json_t *crm_record_redact(crm_ctx *ctx, const crm_type *type, json_t *record);

/* ---- Semi-private: shared by record.c and query.c (and search/export later) ---- */

#define CRM_SYSTEM_COLUMNS 8
/* Append the column list "id, created_at, ..., <field 0>, ..., <field n-1>". */
void crm_record__select_cols(crm_buf *sql, const crm_type *t, int n);
/*
 * The JSON of a row selected with crm_record__select_cols(t, n). `redact`
 * drops fields the context's principal may not read; `fields` (nfields > 0)
 * keeps only those (plus id).
 */
json_t *crm_record__row(crm_ctx *ctx, const crm_type *t, int n, crm_stmt *st, bool redact,
                        char *const *fields, int nfields);
/*
 * The same row as JSON text, appended to `b`: byte for byte what
 * json_dumps(JSON_COMPACT) of crm_record__row gives (lists answer with it
 * without building Jansson trees). The plan holds which columns appear and
 * their keys, pre-encoded: made once per query by crm_record__row_plan with
 * crm_record__row's arguments, freed with crm_record__row_plan_free.
 */
typedef struct crm_row_plan crm_row_plan;
crm_row_plan *crm_record__row_plan(crm_ctx *ctx, const crm_type *t, int n, bool redact,
                                   char *const *fields, int nfields);
void crm_record__row_plan_free(crm_row_plan *plan);
void crm_record__row_text(crm_buf *b, const crm_row_plan *plan, crm_stmt *st);
/* Append the value of field `f` at select-list column `col` as JSON text ("null" when absent). */
void crm_record__put_field(crm_buf *b, const crm_field *f, crm_stmt *st, int col);
/*
 * Whether a live (not deleted) record `id` of `type` exists, with no
 * permission check: CRM_OK, or CRM_ENOTFOUND "no <what> with id N".
 */
int crm_record__exists(crm_conn *conn, const char *type, int64_t id, const char *what);
/*
 * crm_record_create, in its own savepoint when `own_tx`; without one
 * (bulk import) the caller holds the transaction and must roll it back as a
 * whole when this fails, since a failure may leave part of the record written.
 */
int crm_record__create(crm_ctx *ctx, const char *type, json_t *fields, json_t **out, bool own_tx);
/* The type, or CRM_EINVALID "unknown type". */
int crm_record__type(crm_ctx *ctx, const char *name, const crm_type **out);

#endif
