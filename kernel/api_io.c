/*
 * api_io.c — POST /api/v1/import/{type} (CSV) and GET /api/v1/export/{type}
 * (CSV or JSON, streamed). The work is io.c's; this file maps HTTP onto it.
 *
 * Import statuses: 200 {"created","updated","failed","errors"} when the
 * import ran (in line mode some records may have failed: see "errors");
 * 422 with the same shape when an all-or-nothing import found bad records
 * and wrote nothing; 400 for a bad header (unknown, hidden or duplicate
 * column, malformed header, empty body) or a bad ?mode; 403 when the caller
 * may not create/update the type or names a read-only column; 404 for a type
 * the caller cannot see; 413 past max_import_body (the server's check).
 *
 * Export: 200 with the body streamed page by page; a bad filter, sort or
 * ?format is a 400 before any byte is sent. A failure while streaming (the
 * database gone busy for longer than its timeout) can only cut the body
 * short: the status line has gone out by then.
 */
#include "api.h"

#include "io.h"
#include "perm.h"

#include <stdio.h>
#include <string.h>

/* The type from the path, hidden from callers who may not read it (no oracle). */
static int path_type(crm_req *req, const crm_type **out)
{
    crm_ctx *ctx = crm_req_ctx(req);
    const char *name = crm_req_param(req, "type");
    *out = name ? crm_schema_type(ctx->k->schema, name) : NULL;
    if (*out && !crm_principal_is_admin(ctx->who) &&
        crm_principal_level(ctx->who, *out, CRM_ACT_READ) == CRM_LEVEL_NONE &&
        crm_principal_level(ctx->who, *out, CRM_ACT_CREATE) == CRM_LEVEL_NONE)
        *out = NULL;
    if (!*out) return crm_error_set(CRM_ENOTFOUND, "type", "unknown type \"%s\"", name ? name : "");
    return CRM_OK;
}

static int import_csv(crm_req *req, void *udata)
{
    crm_ctx *ctx = crm_req_ctx(req);
    const crm_type *t;
    const char *mode_name = crm_req_query(req, "mode");
    json_t *result = NULL;
    size_t len;
    int rc, mode;

    if ((rc = path_type(req, &t))) return rc;
    if ((mode = crm_import_mode_from_name(mode_name)) < 0)
        return crm_error_set(CRM_EINVALID, "mode", "mode must be \"all\" or \"line\", not \"%s\"",
                             mode_name);
    const char *body = crm_req_body(req, &len);
    if ((rc = crm_import_csv(ctx, t->name, body, len, mode, &result))) return rc;
    bool rejected = mode == CRM_IMPORT_ALL && json_integer_value(json_object_get(result, "failed"));
    return crm_req_reply_json(req, rejected ? 422 : 200, result);
}

typedef struct query_arg {
    crm_query *q;
    int rc;
} query_arg;

/* List parameters become the export's query; format and raw are the export's own. */
static int add_param(void *arg, const char *key, const char *value)
{
    query_arg *a = arg;
    if (strcmp(key, "format") == 0 || strcmp(key, "raw") == 0) return 0;
    if (strcmp(key, "limit") == 0 || strcmp(key, "cursor") == 0 || strcmp(key, "count") == 0) {
        a->rc = crm_error_set(CRM_EINVALID, key, "parameter \"%s\" does not apply to an export: "
                                                 "it has every matching record", key);
        return a->rc;
    }
    a->rc = crm_query_add(a->q, key, value ? value : "");
    return a->rc;
}

static ssize_t export_next(void *arg, char *buf, size_t max)
{
    return crm_export_next(arg, buf, max);
}

static void export_free(void *arg)
{
    crm_export_free(arg);
}

static int export_records(crm_req *req, void *udata)
{
    crm_ctx *ctx = crm_req_ctx(req);
    const crm_type *t;
    const char *format_name = crm_req_query(req, "format"), *raw_text = crm_req_query(req, "raw");
    crm_export *e = NULL;
    crm_query q;
    query_arg a = {&q, CRM_OK};
    bool raw = false;
    int rc, format;

    if ((rc = path_type(req, &t))) return rc;
    if ((format = crm_export_format_from_name(format_name)) < 0)
        return crm_error_set(CRM_EINVALID, "format", "format must be \"csv\" or \"json\", not "
                                                     "\"%s\"", format_name);
    if (raw_text) {
        raw = strcmp(raw_text, "1") == 0 || strcmp(raw_text, "true") == 0;
        if (!raw && strcmp(raw_text, "0") != 0 && strcmp(raw_text, "false") != 0)
            return crm_error_set(CRM_EINVALID, "raw", "raw must be 1 or 0");
    }
    crm_query_init(&q);
    crm_req_query_each(req, add_param, &a);
    rc = a.rc;
    if (!rc) rc = crm_export_open(&e, ctx, t->name, &q, format, raw);
    crm_query_free(&q);
    if (rc) return rc;
    char disposition[CRM_NAME_MAX * 2 + 64];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s\"",
             crm_export_filename(e));
    crm_req_set_header(req, "Content-Disposition", disposition);
    crm_req_set_header(req, "Cache-Control", "no-store");
    /* The stream owns the export from here, also when replying fails. */
    return crm_req_reply_stream(req, 200, crm_export_content_type(e), export_next, e, export_free);
}

int crm_api_io_register(crm_http *h)
{
    int rc;
    if ((rc = crm_http_route(h, "POST", "/api/v1/import/{type}",
                             CRM_ROUTE_RAW_BODY | CRM_ROUTE_LARGE_BODY, import_csv, NULL)))
        return rc;
    return crm_http_route(h, "GET", "/api/v1/export/{type}", 0, export_records, NULL);
}
