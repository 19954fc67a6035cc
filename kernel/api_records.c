/*
 * api_records.c — the REST API of types, custom fields, records, lists,
 * history and search (DESIGN.md "HTTP API (v1)").
 *
 * Handlers are thin: they turn path, query and body into one call of the
 * record / query / search layer with the caller's context and turn the result
 * into JSON. Permissions are never decided here — the record layer enforces
 * them for every caller — with one exception that is about the API's shape:
 * which types a principal sees listed under /types.
 *
 * Status codes come from the kernel's error codes through crm_http_status();
 * handlers only add what HTTP itself defines: 201 + Location, 204, ETag and
 * If-Match.
 */
#include "api.h"
#include "api_admin.h"

#include "perm.h"
#include "group.h"
#include "record.h"
#include "search.h"

#include <stdlib.h>
#include <string.h>

/* ---- Helpers ---- */

/*
 * The type named by the {type} path segment. A name that is no type is a
 * missing resource (404), not bad input: the path names a collection.
 */
static int path_type(crm_req *req, const crm_type **out)
{
    const char *name = crm_req_param(req, "type");
    *out = name ? crm_schema_type(crm_req_ctx(req)->k->schema, name) : NULL;
    if (!*out)
        return crm_error_set(CRM_ENOTFOUND, "type", "unknown type \"%s\"", name ? name : "");
    return CRM_OK;
}

/* The JSON object body of a create / update; 400 when absent or not an object. */
static int body_object(crm_req *req, json_t **out)
{
    *out = crm_req_json(req);
    if (!json_is_object(*out))
        return crm_error_set(CRM_EINVALID, NULL, "the request body must be a JSON object");
    return CRM_OK;
}

/*
 * If-Match: absent or "*" → 0 (unconditional); a version as 3, "3" or W/"3"
 * → 3; anything else (lists, other entity tags) → 400.
 */
static int if_match(crm_req *req, int64_t *version)
{
    const char *h = crm_req_header(req, "If-Match");
    char buf[32];
    *version = 0;
    if (!h) return CRM_OK;
    while (*h == ' ' || *h == '\t') h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t')) n--;
    if (n == 1 && h[0] == '*') return CRM_OK;
    if (n > 2 && h[0] == 'W' && h[1] == '/') h += 2, n -= 2;
    if (n >= 2 && h[0] == '"' && h[n - 1] == '"') h++, n -= 2;
    if (n == 0 || n >= sizeof buf) goto bad;
    memcpy(buf, h, n);
    buf[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (buf[i] < '0' || buf[i] > '9') goto bad;
    if (!crm_parse_int64(buf, version) || *version < 1) goto bad;
    return CRM_OK;
bad:
    *version = 0;
    return crm_error_set(CRM_EINVALID, "If-Match",
                         "If-Match must be a record version, e.g. \"3\" (from the ETag)");
}

/* Reply with a record, its version as the ETag. */
static int reply_record(crm_req *req, int status, json_t *record)
{
    char etag[32];
    snprintf(etag, sizeof etag, "\"%lld\"",
             (long long)json_integer_value(json_object_get(record, "version")));
    crm_req_set_header(req, "ETag", etag);
    return crm_req_reply_json(req, status, record);
}

/* ---- Types ---- */

static int get_types(crm_req *req, void *udata)
{
    json_t *data = crm_types_view(crm_req_ctx(req));
    if (!data) return crm_error_last()->code;
    return crm_req_reply_json(req, 200, json_pack("{s:o}", "data", data));
}

static int get_type(crm_req *req, void *udata)
{
    crm_ctx *ctx = crm_req_ctx(req);
    const crm_type *t;
    int rc;
    if ((rc = path_type(req, &t))) return rc;
    if (!crm_type_readable(ctx, t)) /* no oracle: as unknown */
        return crm_error_set(CRM_ENOTFOUND, "type", "unknown type \"%s\"", t->name);
    json_t *view = crm_type_view(ctx, t), *indexes = NULL;
    /* Index names list field names: only administrators, who see every field. */
    if (crm_principal_is_admin(ctx->who)) {
        if ((rc = crm_schema_indexes(ctx->k->schema, t->name, &indexes))) {
            json_decref(view);
            return rc;
        }
        json_object_set_new(view, "indexes", indexes);
    }
    return crm_req_reply_json(req, 200, view);
}

/* POST /types/{type}/indexes (admin) {"fields":["city","last_name"]}: a composite index. */
static int add_index(crm_req *req, void *udata)
{
    crm_ctx *ctx = crm_req_ctx(req);
    const crm_type *t;
    json_t *body, *indexes = NULL;
    int rc;
    if ((rc = path_type(req, &t)) || (rc = body_object(req, &body))) return rc;
    if ((rc = crm_schema_add_index(ctx->k->schema, t->name, json_object_get(body, "fields"))) ||
        (rc = crm_api__audit(ctx, "index.add", t->name, body)) ||
        (rc = crm_schema_indexes(ctx->k->schema, t->name, &indexes)))
        return rc;
    return crm_req_reply_json(req, 201, json_pack("{s:s,s:o}", "type", t->name, "indexes", indexes));
}

/* POST /types/{type}/fields (admin): a custom field, live at once. */
static int add_field(crm_req *req, void *udata)
{
    crm_ctx *ctx = crm_req_ctx(req);
    const crm_type *t;
    json_t *spec;
    int rc;
    if ((rc = path_type(req, &t)) || (rc = body_object(req, &spec))) return rc;
    if ((rc = crm_schema_add_field(ctx->k->schema, t->name, spec, "custom"))) return rc;
    /* The schema change committed in its own transaction (it is published
       right after); the audit row follows it. */
    if ((rc = crm_api__audit(ctx, "field.add", t->name, spec))) return rc;
    char loc[CRM_NAME_MAX * 2 + 32];
    snprintf(loc, sizeof loc, "/api/v1/types/%s", t->name);
    crm_req_set_header(req, "Location", loc);
    return crm_req_reply_json(req, 201, crm_type_to_json(t));
}

/* ---- Records ---- */

typedef struct query_arg {
    crm_query *q;
    int rc;
} query_arg;

static int add_pair(void *arg, const char *key, const char *value)
{
    query_arg *a = arg;
    a->rc = crm_query_add(a->q, key, value ? value : "");
    return a->rc;
}

static int list_records(crm_req *req, void *udata)
{
    crm_ctx *ctx = crm_req_ctx(req);
    const crm_type *t;
    crm_query q;
    char *out = NULL;
    size_t len = 0;
    int rc;
    if ((rc = path_type(req, &t))) return rc;
    crm_query_init(&q);
    query_arg a = {&q, CRM_OK};
    crm_req_query_each(req, add_pair, &a);
    rc = a.rc;
    /* As text straight from the rows: no Jansson tree to build, dump and free. */
    if (!rc) rc = crm_record_find_text(ctx, t->name, &q, &out, &len);
    crm_query_free(&q);
    if (rc) return rc;
    return crm_req_reply_json_text(req, 200, out, len);
}

/*
 * Writes go through the kernel's group committer (group.h): concurrent
 * requests share one COMMIT, so at synchronous=FULL one fsync acknowledges a
 * batch. The request does not hold a pool thread while it waits: its
 * connection is suspended (crm_req_defer), the committer runs the write and,
 * after the commit, sets the reply and resumes the connection. The write runs
 * with a principal of its own: the pool thread's cached one keeps serving
 * other requests meanwhile.
 */
enum { WRITE_CREATE, WRITE_UPDATE, WRITE_DELETE, WRITE_RESTORE };

typedef struct write_job {
    crm_req *req;
    crm_ctx ctx;
    crm_principal *who;
    int op;
    const char *type;
    int64_t id, version;
    json_t *body, *out;
} write_job;

static int run_write(void *arg)
{
    write_job *w = arg;
    switch (w->op) {
    case WRITE_CREATE: return crm_record_create(&w->ctx, w->type, w->body, &w->out);
    case WRITE_UPDATE:
        return crm_record_update(&w->ctx, w->type, w->id, w->body, w->version, &w->out);
    case WRITE_DELETE: return crm_record_delete(&w->ctx, w->type, w->id, w->version);
    default: return crm_record_restore(&w->ctx, w->type, w->id, &w->out);
    }
}

static int reply_record(crm_req *req, int status, json_t *record);

/* On the committer thread, after the batch committed (rc 0) or failed. */
static void write_done(void *arg, int rc)
{
    write_job *w = arg;
    crm_req *req = w->req;
    if (rc) {
        json_decref(w->out);
        crm_req_reply_failure(req, rc);
    } else if (w->op == WRITE_DELETE) {
        crm_req_reply_data(req, 204, "application/json", "", 0);
    } else {
        if (w->op == WRITE_CREATE) {
            char loc[CRM_NAME_MAX * 2 + 48];
            snprintf(loc, sizeof loc, "/api/v1/records/%s/%lld", w->type,
                     (long long)json_integer_value(json_object_get(w->out, "id")));
            crm_req_set_header(req, "Location", loc);
        }
        reply_record(req, w->op == WRITE_CREATE ? 201 : 200, w->out);
    }
    w->out = NULL;
    crm_principal_free(w->who);
    crm_req_resume(req);
}

/* Start a write: the reply is set later, by write_done. */
static int write_deferred(crm_req *req, int op, const char *type, int64_t id, int64_t version,
                          json_t *body)
{
    crm_kernel *k = crm_req_ctx(req)->k;
    write_job *w = crm_req_alloc(req, sizeof *w);
    int rc;
    memset(w, 0, sizeof *w);
    if ((rc = crm_principal_load(k->perm, crm_req_user(req), &w->who))) return rc;
    crm_ctx_init(&w->ctx, k, w->who, NULL);
    w->req = req;
    w->op = op;
    w->type = type;
    w->id = id;
    w->version = version;
    w->body = body;
    /* Suspend first, so that the committer's resume can never come before it. */
    crm_req_defer(req);
    if ((rc = crm_group_submit(k->group, run_write, w, write_done, w))) {
        crm_principal_free(w->who);
        crm_req_reply_failure(req, rc);
        crm_req_resume(req);
    }
    return CRM_OK;
}

static int create_record(crm_req *req, void *udata)
{
    const crm_type *t;
    json_t *body;
    int rc;
    if ((rc = path_type(req, &t)) || (rc = body_object(req, &body))) return rc;
    return write_deferred(req, WRITE_CREATE, t->name, 0, 0, body);
}

/* The {type} and {id} of a record path. */
static int record_path(crm_req *req, const crm_type **t, int64_t *id)
{
    int rc;
    if ((rc = path_type(req, t))) return rc;
    return crm_req_param_id(req, "id", id);
}

static int get_record(crm_req *req, void *udata)
{
    const crm_type *t;
    int64_t id;
    json_t *out = NULL;
    int rc;
    if ((rc = record_path(req, &t, &id))) return rc;
    if ((rc = crm_record_get(crm_req_ctx(req), t->name, id, false, &out))) return rc;
    return reply_record(req, 200, out);
}

static int patch_record(crm_req *req, void *udata)
{
    const crm_type *t;
    int64_t id, version;
    json_t *body;
    int rc;
    if ((rc = record_path(req, &t, &id)) || (rc = if_match(req, &version)) ||
        (rc = body_object(req, &body)))
        return rc;
    return write_deferred(req, WRITE_UPDATE, t->name, id, version, body);
}

static int delete_record(crm_req *req, void *udata)
{
    const crm_type *t;
    int64_t id, version;
    int rc;
    if ((rc = record_path(req, &t, &id)) || (rc = if_match(req, &version))) return rc;
    return write_deferred(req, WRITE_DELETE, t->name, id, version, NULL);
}

static int restore_record(crm_req *req, void *udata)
{
    const crm_type *t;
    int64_t id;
    int rc;
    if ((rc = record_path(req, &t, &id))) return rc;
    return write_deferred(req, WRITE_RESTORE, t->name, id, 0, NULL);
}

static int record_history(crm_req *req, void *udata)
{
    const crm_type *t;
    int64_t id;
    json_t *out = NULL;
    int rc;
    if ((rc = record_path(req, &t, &id))) return rc;
    if ((rc = crm_record_history(crm_req_ctx(req), t->name, id, &out))) return rc;
    return crm_req_reply_json(req, 200, json_pack("{s:o}", "data", out));
}

/* ---- Search ---- */

static int search(crm_req *req, void *udata)
{
    const char *q = crm_req_query(req, "q"), *types = crm_req_query(req, "types"),
               *limit_s = crm_req_query(req, "limit");
    const char *names[CRM_SEARCH_MAX_TYPES];
    int ntypes = 0, rc;
    int64_t limit = 0;
    char *out = NULL;
    size_t len = 0;
    if (limit_s && (!crm_parse_int64(limit_s, &limit) || limit < 1 || limit > CRM_SEARCH_MAX_LIMIT))
        return crm_error_set(CRM_EINVALID, "limit", "limit must be an integer from 1 to %d",
                             CRM_SEARCH_MAX_LIMIT);
    if (types) {
        /* "a,b": split in request memory; an empty item is a mistake */
        char *list = crm_req_strdup(req, types), *save = NULL;
        if (!*list)
            return crm_error_set(CRM_EINVALID, "types", "parameter \"types\" is empty");
        for (const char *p = list; *p; p++)
            if (*p == ',' && (p == list || p[1] == ',' || p[1] == 0))
                return crm_error_set(CRM_EINVALID, "types", "parameter \"types\" has an empty item");
        for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (ntypes == CRM_SEARCH_MAX_TYPES)
                return crm_error_set(CRM_EINVALID, "types", "at most %d types",
                                     CRM_SEARCH_MAX_TYPES);
            names[ntypes++] = tok;
        }
    }
    /* As text straight from the rows, as lists are. */
    if ((rc = crm_search_text(crm_req_ctx(req), q, names, ntypes, (int)limit, &out, &len)))
        return rc;
    return crm_req_reply_json_text(req, 200, out, len);
}

/* ---- Registration ---- */

int crm_api_records_register(crm_http *h)
{
    static const struct {
        const char *method, *pattern;
        unsigned flags;
        crm_route_fn fn;
    } routes[] = {
        {"GET", "/api/v1/types", 0, get_types},
        {"GET", "/api/v1/types/{type}", 0, get_type},
        {"POST", "/api/v1/types/{type}/fields", CRM_ROUTE_ADMIN, add_field},
        {"POST", "/api/v1/types/{type}/indexes", CRM_ROUTE_ADMIN, add_index},
        {"GET", "/api/v1/records/{type}", 0, list_records},
        {"POST", "/api/v1/records/{type}", 0, create_record},
        {"GET", "/api/v1/records/{type}/{id}", 0, get_record},
        {"PATCH", "/api/v1/records/{type}/{id}", 0, patch_record},
        {"DELETE", "/api/v1/records/{type}/{id}", 0, delete_record},
        {"POST", "/api/v1/records/{type}/{id}/restore", 0, restore_record},
        {"GET", "/api/v1/records/{type}/{id}/history", 0, record_history},
        {"GET", "/api/v1/search", 0, search},
    };
    int rc;
    for (size_t i = 0; i < CRM_ARRAY_LEN(routes); i++)
        if ((rc = crm_http_route(h, routes[i].method, routes[i].pattern, routes[i].flags,
                                 routes[i].fn, NULL)))
            return rc;
    return crm_api__admin_register(h);
}
