/*
 * openapi.c — GET /api/v1/openapi.json: the OpenAPI 3.0 document, built from
 * the live schema for the calling principal (see openapi.h for why it is
 * per caller and not public).
 *
 * Record endpoints are described once per type (/records/crm.contact, ...)
 * so that client generators get one typed model per record type:
 * components.schemas["crm.contact"] (the record as read: system fields and
 * fields, "required" as on create) and "crm.contact.patch" (the same
 * properties, nothing required). Everything else is listed once, generically.
 */
#include "openapi.h"

#include "perm.h"
#include "session.h" /* the cookie's name */

#include <string.h>

/* ---- Field schemas ---- */

static json_t *str_schema(const char *format, int max_length)
{
    json_t *s = json_pack("{s:s}", "type", "string");
    if (format) json_object_set_new(s, "format", json_string(format));
    if (max_length > 0) json_object_set_new(s, "maxLength", json_integer(max_length));
    return s;
}

json_t *crm_openapi_field_schema(const crm_field *f)
{
    json_t *s;
    switch (f->kind) {
    case CRM_FIELD_INT:
        s = json_pack("{s:s, s:s}", "type", "integer", "format", "int64");
        break;
    case CRM_FIELD_DECIMAL: {
        char *pattern = f->scale > 0 ? crm_sprintf("^-?[0-9]+(\\.[0-9]{1,%d})?$", f->scale)
                                     : crm_strdup("^-?[0-9]+$");
        s = json_pack("{s:s, s:s, s:s}", "type", "string", "pattern", pattern, "description",
                      "exact decimal as a string (numbers are accepted on input)");
        free(pattern);
        break;
    }
    case CRM_FIELD_BOOL:
        s = json_pack("{s:s}", "type", "boolean");
        break;
    case CRM_FIELD_DATE:
        s = str_schema("date", 0);
        break;
    case CRM_FIELD_DATETIME:
        s = str_schema("date-time", 0);
        break;
    case CRM_FIELD_ENUM: {
        s = json_pack("{s:s}", "type", "string");
        json_t *values = json_array();
        for (char **v = f->enum_values; v && *v; v++)
            json_array_append_new(values, json_string(*v));
        json_object_set_new(s, "enum", values);
        break;
    }
    case CRM_FIELD_EMAIL:
        s = str_schema("email", f->max_length);
        break;
    case CRM_FIELD_PHONE:
        s = str_schema(NULL, f->max_length);
        break;
    case CRM_FIELD_URL:
        s = str_schema("uri", f->max_length);
        break;
    case CRM_FIELD_REF: {
        char *d = crm_sprintf("id of a %s record", f->ref_type ? f->ref_type : "?");
        s = json_pack("{s:s, s:s, s:s, s:s}", "type", "integer", "format", "int64", "description",
                      d, "x-crm-ref", f->ref_type ? f->ref_type : "");
        free(d);
        break;
    }
    case CRM_FIELD_JSON:
        s = json_pack("{s:s}", "description", "any JSON value");
        break;
    default:
        s = str_schema(NULL, f->max_length);
        break;
    }
    if (!(f->flags & CRM_FIELD_REQUIRED) && f->kind != CRM_FIELD_JSON)
        json_object_set_new(s, "nullable", json_true());
    if (f->flags & CRM_FIELD_READONLY) json_object_set_new(s, "readOnly", json_true());
    if (f->dflt) json_object_set(s, "default", f->dflt);
    if (f->label && strcmp(f->label, f->name) != 0 && !json_object_get(s, "description"))
        json_object_set_new(s, "title", json_string(f->label));
    json_object_set_new(s, "x-crm-kind", json_string(crm_field_kind_name(f->kind)));
    return s;
}

static json_t *system_property(const char *name)
{
    if (strcmp(name, "created_at") == 0 || strcmp(name, "updated_at") == 0)
        return json_pack("{s:s, s:s, s:b}", "type", "string", "format", "date-time", "readOnly", 1);
    if (strcmp(name, "deleted_at") == 0)
        return json_pack("{s:s, s:s, s:b, s:b}", "type", "string", "format", "date-time",
                         "readOnly", 1, "nullable", 1);
    if (strcmp(name, "owner") == 0)
        return json_pack("{s:s, s:s, s:s}", "type", "integer", "format", "int64", "description",
                         "owning user id (defaults to the caller)");
    if (strcmp(name, "team") == 0)
        return json_pack("{s:s, s:s, s:b, s:s}", "type", "integer", "format", "int64", "nullable",
                         1, "description", "owning team id");
    if (strcmp(name, "version") == 0)
        return json_pack("{s:s, s:s, s:b, s:s}", "type", "integer", "format", "int64", "readOnly",
                         1, "description", "optimistic concurrency: send as If-Match");
    return json_pack("{s:s, s:s, s:b}", "type", "integer", "format", "int64", "readOnly", 1);
}

/* The fields of `t` the principal may see, as schema properties. */
static void type_schemas(crm_ctx *ctx, const crm_type *t, json_t *schemas)
{
    json_t *props = json_object(), *required = json_array();
    for (int i = 0; crm_system_fields[i]; i++) {
        json_object_set_new(props, crm_system_fields[i], system_property(crm_system_fields[i]));
        if (strcmp(crm_system_fields[i], "deleted_at") != 0)
            json_array_append_new(required, json_string(crm_system_fields[i]));
    }
    int n = crm_type_nfields(t);
    for (int i = 0; i < n; i++) {
        const crm_field *f = t->fields[i];
        if (crm_principal_field_access(ctx->who, t, f) == CRM_ACCESS_HIDDEN) continue;
        json_object_set_new(props, f->name, crm_openapi_field_schema(f));
        if (f->flags & CRM_FIELD_REQUIRED) json_array_append_new(required, json_string(f->name));
    }
    json_t *record = json_pack("{s:s, s:s, s:O, s:o, s:s}", "type", "object", "title", t->label,
                               "properties", props, "required", required, "x-crm-owner", t->owner);
    json_t *patch =
        json_pack("{s:s, s:s, s:o}", "type", "object", "title", t->label, "properties", props);
    char *patch_name = crm_sprintf("%s.patch", t->name);
    json_object_set_new(schemas, t->name, record);
    json_object_set_new(schemas, patch_name, patch);
    free(patch_name);
}

/* ---- Operations ---- */

static json_t *ref(const char *fmt, const char *name)
{
    char *r = crm_sprintf(fmt, name);
    json_t *o = json_pack("{s:s}", "$ref", r);
    free(r);
    return o;
}

static json_t *json_content(json_t *schema)
{
    return json_pack("{s:{s:o}}", "application/json", "schema", schema);
}

static json_t *param(const char *in, const char *name, const char *type, bool required,
                     const char *description)
{
    json_t *p = json_pack("{s:s, s:s, s:b, s:{s:s}}", "in", in, "name", name, "required", required,
                          "schema", "type", type);
    if (description) json_object_set_new(p, "description", json_string(description));
    return p;
}

enum { OP_PUBLIC = 1, OP_ADMIN = 2 };

/*
 * Add an operation. `ok` is the success status; `ok_schema` its JSON body
 * (NULL: none); `body` the JSON request body (NULL: none); params is an array
 * or NULL (references are taken).
 */
static json_t *op(json_t *paths, const char *path, const char *method, const char *tag,
                  const char *summary, unsigned flags, int ok, json_t *ok_schema, json_t *body,
                  json_t *params)
{
    json_t *item = json_object_get(paths, path);
    if (!item) {
        item = json_object();
        json_object_set_new(paths, path, item);
    }
    json_t *o = json_pack("{s:[s], s:s}", "tags", tag, "summary", summary);
    char opid[160];
    snprintf(opid, sizeof opid, "%s %s", method, path);
    json_object_set_new(o, "operationId", json_string(opid));
    if (params) json_object_set_new(o, "parameters", params);
    if (body)
        json_object_set_new(o, "requestBody",
                            json_pack("{s:b, s:o}", "required", 1, "content", json_content(body)));
    json_t *responses = json_object();
    char code[8];
    snprintf(code, sizeof code, "%d", ok);
    json_t *okr = json_pack("{s:s}", "description", "success");
    if (ok_schema) json_object_set_new(okr, "content", json_content(ok_schema));
    json_object_set_new(responses, code, okr);
    json_object_set_new(responses, "400", ref("#/components/responses/%s", "Error"));
    if (!(flags & OP_PUBLIC)) {
        json_object_set_new(responses, "401", ref("#/components/responses/%s", "Error"));
        json_object_set_new(responses, "403", ref("#/components/responses/%s", "Error"));
    } else {
        json_object_set_new(o, "security", json_array());
    }
    if (flags & OP_ADMIN)
        json_object_set_new(o, "description", json_string("Administrators only (else 403)."));
    json_object_set_new(o, "responses", responses);
    json_object_set_new(item, method, o);
    return o;
}

static json_t *any_object(void)
{
    return json_pack("{s:s}", "type", "object");
}

static json_t *list_of(json_t *item)
{
    return json_pack("{s:s, s:{s:{s:s, s:o}, s:{s:s, s:b}}}", "type", "object", "properties",
                     "data", "type", "array", "items", item, "next", "type", "string", "nullable",
                     1);
}

static json_t *id_param(void)
{
    return param("path", "id", "integer", true, NULL);
}

static void record_paths(json_t *paths, const crm_type *t)
{
    char *coll = crm_sprintf("/records/%s", t->name);
    char *one = crm_sprintf("/records/%s/{id}", t->name);
    char *restore = crm_sprintf("/records/%s/{id}/restore", t->name);
    char *history = crm_sprintf("/records/%s/{id}/history", t->name);
    const char *tag = t->name;
    char *summary;

    json_t *lp = json_array();
    json_array_append_new(lp, param("query", "limit", "integer", false, "1..1000, default 50"));
    json_array_append_new(lp,
                          param("query", "cursor", "string", false, "from a previous \"next\""));
    json_array_append_new(lp, param("query", "sort", "string", false, "e.g. -amount,name"));
    json_array_append_new(lp, param("query", "fields", "string", false, "projection: a,b"));
    json_array_append_new(lp, param("query", "count", "integer", false, "1 adds \"count\""));
    json_array_append_new(lp, param("query", "deleted", "integer", false, "1: deleted records"));
    json_t *list = list_of(ref("#/components/schemas/%s", t->name));
    json_object_set_new(json_object_get(list, "properties"), "count",
                        json_pack("{s:s}", "type", "integer"));
    summary = crm_sprintf("List %s records", t->name);
    json_t *o = op(paths, coll, "get", tag, summary, 0, 200, list, NULL, lp);
    json_object_set_new(o, "description",
                        json_string("Filters: field=value or field__op=value with op in ne, gt, "
                                    "gte, lt, lte, in, like, null (fields the caller may read)."));
    free(summary);
    summary = crm_sprintf("Create a %s record", t->name);
    op(paths, coll, "post", tag, summary, 0, 201, ref("#/components/schemas/%s", t->name),
       ref("#/components/schemas/%s", t->name), NULL);
    free(summary);

    summary = crm_sprintf("Read a %s record", t->name);
    o = op(paths, one, "get", tag, summary, 0, 200, ref("#/components/schemas/%s", t->name), NULL,
           json_pack("[o]", id_param()));
    json_object_set_new(json_object_get(o, "responses"), "404",
                        ref("#/components/responses/%s", "Error"));
    free(summary);
    summary = crm_sprintf("Update a %s record", t->name);
    char *patch_name = crm_sprintf("%s.patch", t->name);
    json_t *pp = json_pack("[o, o]", id_param(),
                           param("header", "If-Match", "integer", false,
                                 "the version read; 412 when the record changed since"));
    o = op(paths, one, "patch", tag, summary, 0, 200, ref("#/components/schemas/%s", t->name),
           ref("#/components/schemas/%s", patch_name), pp);
    json_object_set_new(json_object_get(o, "responses"), "412",
                        ref("#/components/responses/%s", "Error"));
    json_object_set_new(json_object_get(o, "responses"), "409",
                        ref("#/components/responses/%s", "Error"));
    free(patch_name);
    free(summary);
    summary = crm_sprintf("Delete a %s record (soft)", t->name);
    op(paths, one, "delete", tag, summary, 0, 204, NULL, NULL, json_pack("[o]", id_param()));
    free(summary);
    summary = crm_sprintf("Restore a deleted %s record", t->name);
    op(paths, restore, "post", tag, summary, 0, 200, ref("#/components/schemas/%s", t->name), NULL,
       json_pack("[o]", id_param()));
    free(summary);
    summary = crm_sprintf("History of a %s record", t->name);
    op(paths, history, "get", tag, summary, 0, 200,
       json_pack("{s:s, s:{s:{s:s, s:{s:s}}}}", "type", "object", "properties", "data", "type",
                 "array", "items", "type", "object"),
       NULL, json_pack("[o]", id_param()));
    free(summary);
    free(coll);
    free(one);
    free(restore);
    free(history);
}

static void platform_paths(json_t *paths, json_t *type_names)
{
    json_t *type_param = param("path", "type", "string", true, "a record type name");
    if (json_array_size(type_names))
        json_object_set(json_object_get(type_param, "schema"), "enum", type_names);

    /* auth */
    op(paths, "/auth/login", "post", "auth", "Log in: a token and a session cookie", OP_PUBLIC, 200,
       json_pack("{s:s, s:{s:{s:s}, s:{s:s}}}", "type", "object", "properties", "token", "type",
                 "string", "user", "type", "object"),
       json_pack("{s:s, s:[s,s], s:{s:{s:s}, s:{s:s}}}", "type", "object", "required", "username",
                 "password", "properties", "username", "type", "string", "password", "type",
                 "string"),
       NULL);
    json_object_set_new(
        json_object_get(json_object_get(json_object_get(paths, "/auth/login"), "post"),
                        "responses"),
        "429", ref("#/components/responses/%s", "Error"));
    op(paths, "/auth/logout", "post", "auth", "Log out (ends the session)", 0, 204, NULL, NULL,
       NULL);
    op(paths, "/auth/login-token", "get", "auth",
       "A browser's pre-session token (and its cookie): send it as X-Login-Token with the login "
       "to get the session cookie",
       OP_PUBLIC, 200,
       json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}}}", "type", "object", "properties",
                 "login_token", "type", "string", "header", "type", "string", "expires_in", "type",
                 "integer"),
       NULL, NULL);
    op(paths, "/auth/reauth", "post", "auth",
       "Prove the password again: administrative changes need it within 10 minutes", 0, 200,
       json_pack("{s:s, s:{s:{s:s}, s:{s:s}}}", "type", "object", "properties", "reauth_at",
                 "type", "string", "valid_until", "type", "string"),
       json_pack("{s:s, s:[s], s:{s:{s:s}}}", "type", "object", "required", "password",
                 "properties", "password", "type", "string"),
       NULL);

    /* schema */
    op(paths, "/types", "get", "schema", "Record types", 0, 200,
       json_pack("{s:s, s:{s:{s:s}}}", "type", "object", "properties", "data", "type", "array"),
       NULL, NULL);
    op(paths, "/types/{type}", "get", "schema", "One record type with its fields", 0, 200,
       any_object(), NULL, json_pack("[O]", type_param));
    op(paths, "/types/{type}/fields", "post", "schema", "Add a custom field", OP_ADMIN, 201,
       any_object(),
       json_pack("{s:s, s:[s,s], s:{s:{s:s}, s:{s:s}}}", "type", "object", "required", "name",
                 "kind", "properties", "name", "type", "string", "kind", "type", "string"),
       json_pack("[O]", type_param));

    /* search, import, export */
    op(paths, "/search", "get", "records",
       "Full-text search: prefix matching, ranked but bounded (whole-word hits first, then "
       "prefix hits, each tier from its newest 128 matches per type); more: true when matches "
       "may exist beyond the answer (cut at limit, or a tier's window was full)",
       0, 200,
       json_pack("{s:s, s:{s:{s:s, s:o}, s:{s:s}}}", "type", "object", "properties", "data",
                 "type", "array", "items", any_object(), "more", "type", "boolean"),
       NULL,
       json_pack("[o, o, o]", param("query", "q", "string", true, NULL),
                 param("query", "types", "string", false, "a,b"),
                 param("query", "limit", "integer", false, NULL)));
    json_t *o = op(paths, "/import/{type}", "post", "io",
                   "Import CSV (RFC 4180): created, updated and per-line errors", 0, 200,
                   json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}}}", "type", "object", "properties",
                             "created", "type", "integer", "updated", "type", "integer", "errors",
                             "type", "array"),
                   NULL, json_pack("[O]", type_param));
    json_object_set_new(o, "requestBody",
                        json_pack("{s:b, s:{s:{s:{s:s}}}}", "required", 1, "content", "text/csv",
                                  "schema", "type", "string"));
    json_object_set_new(json_object_get(o, "responses"), "413",
                        ref("#/components/responses/%s", "Error"));
    o = op(paths, "/export/{type}", "get", "io", "Export as CSV or JSON (streamed)", 0, 200, NULL,
           NULL,
           json_pack("[O, o]", type_param,
                     param("query", "format", "string", false, "csv (default) or json")));
    json_object_set_new(json_object_get(json_object_get(o, "responses"), "200"), "content",
                        json_pack("{s:{s:{s:s}}, s:{s:{s:s}}}", "text/csv", "schema", "type",
                                  "string", "application/json", "schema", "type", "array"));

    /* events, webhooks, dead letters */
    op(paths, "/events", "get", "platform",
       "The outbox as a stream, oldest first (only events the caller may read)", 0, 200,
       json_pack("{s:s, s:{s:{s:s, s:{s:s}}, s:{s:s}}}", "type", "object", "properties", "data",
                 "type", "array", "items", "$ref", "#/components/schemas/Event", "next", "type",
                 "integer"),
       NULL,
       json_pack("[o, o, o]",
                 param("query", "after", "integer", false, "sequence number, default 0"),
                 param("query", "limit", "integer", false, "1..1000, default 100"),
                 param("query", "wait", "integer", false,
                       "long-poll: 0..30 s to wait for a visible event, default 0")));
    json_t *hook = ref("#/components/schemas/%s", "Webhook");
    op(paths, "/webhooks", "get", "platform", "Webhooks (without secrets)", OP_ADMIN, 200,
       list_of(hook), NULL, NULL);
    op(paths, "/webhooks", "post", "platform",
       "Create a webhook (the secret is shown once when generated)", OP_ADMIN, 201,
       ref("#/components/schemas/%s", "Webhook"),
       json_pack("{s:s, s:[s,s], s:{s:{s:s, s:s}, s:{s:s, s:{s:s}}, s:{s:s, s:i}}}", "type",
                 "object", "required", "url", "topics", "properties", "url", "type", "string",
                 "format", "uri", "topics", "type", "array", "items", "type", "string", "secret",
                 "type", "string", "minLength", 16),
       NULL);
    op(paths, "/webhooks/{id}", "delete", "platform", "Delete a webhook", OP_ADMIN, 204, NULL, NULL,
       json_pack("[o]", id_param()));
    op(paths, "/webhooks/{id}/deliveries", "get", "platform", "Recent delivery attempts", OP_ADMIN,
       200, list_of(any_object()), NULL,
       json_pack("[o, o]", id_param(), param("query", "limit", "integer", false, "1..1000")));
    op(paths, "/dead-letters", "get", "platform", "Async deliveries that gave up", OP_ADMIN, 200,
       list_of(any_object()), NULL, NULL);
    op(paths, "/dead-letters/{id}/retry", "post", "platform", "Retry a dead letter now", OP_ADMIN,
       200, any_object(), NULL, json_pack("[o]", id_param()));

    /* operations */
    op(paths, "/healthz", "get", "operations", "Liveness and readiness", OP_PUBLIC, 200,
       any_object(), NULL, NULL);
    o = op(paths, "/metrics", "get", "operations", "Prometheus metrics (text format)", 0, 200, NULL,
           NULL, NULL);
    json_object_set_new(json_object_get(json_object_get(o, "responses"), "200"), "content",
                        json_pack("{s:{s:{s:s}}}", "text/plain", "schema", "type", "string"));
    op(paths, "/openapi.json", "get", "operations", "This document (for the caller)", 0, 200,
       any_object(), NULL, NULL);
    json_decref(type_param);
}

static json_t *components(void)
{
    json_t *error =
        json_pack("{s:s, s:[s], s:{s:{s:s, s:[s,s], s:{s:{s:s}, s:{s:s}, s:{s:s, s:b}}}}}", "type",
                  "object", "required", "error", "properties", "error", "type", "object",
                  "required", "code", "message", "properties", "code", "type", "string", "message",
                  "type", "string", "field", "type", "string", "nullable", 1);
    json_t *event = json_pack(
        "{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s, s:b}, s:{s:s, s:b}, s:{s:s, s:s}, s:{s:s, s:b},"
        " s:{s:s, s:b}, s:{s:s, s:b}, s:{s:s, s:b}, s:{s:s, s:b}, s:{}}}",
        "type", "object", "properties", "seq", "type", "integer", "topic", "type", "string", "type",
        "type", "string", "nullable", 1, "id", "type", "integer", "nullable", 1, "at", "type",
        "string", "format", "date-time", "user", "type", "integer", "nullable", 1, "via", "type",
        "string", "nullable", 1, "record", "type", "object", "nullable", 1, "old", "type", "object",
        "nullable", 1, "changed", "type", "array", "nullable", 1, "payload");
    json_t *webhook =
        json_pack("{s:s, s:{s:{s:s}, s:{s:s, s:s}, s:{s:s, s:{s:s}}, s:{s:s, s:s}, s:{s:s, s:s}}}",
                  "type", "object", "properties", "id", "type", "integer", "url", "type", "string",
                  "format", "uri", "topics", "type", "array", "items", "type", "string",
                  "created_at", "type", "string", "format", "date-time", "secret", "type", "string",
                  "description", "only in the answer to a create that generated it");
    return json_pack("{s:{s:o, s:o, s:o}, s:{s:{s:s, s:{s:{s:{s:s}}}}},"
                     " s:{s:{s:s, s:s}, s:{s:s, s:s, s:s}}}",
                     "schemas", "Error", error, "Event", event, "Webhook", webhook, "responses",
                     "Error", "description", "error", "content", "application/json", "schema",
                     "$ref", "#/components/schemas/Error", "securitySchemes", "bearer", "type",
                     "http", "scheme", "bearer", "cookie", "type", "apiKey", "in", "cookie", "name",
                     CRM_SESSION_COOKIE);
}

json_t *crm_openapi_document(crm_ctx *ctx, const char *version)
{
    json_t *doc = json_pack(
        "{s:s, s:{s:s, s:s, s:s}, s:[{s:s}], s:[{s:[]}, {s:[]}]}", "openapi", "3.0.3", "info",
        "title", "crm API", "version", version ? version : "0", "description",
        "Generated from the live schema for the calling user: types they cannot read and fields "
        "hidden from them are left out. Errors: {\"error\":{\"code\",\"message\",\"field\"}}. "
        "Cookie-authenticated writes need the X-CSRF-Token header.",
        "servers", "url", "/api/v1", "security", "bearer", "cookie");
    json_t *paths = json_object();
    json_t *comps = components();
    json_t *schemas = json_object_get(comps, "schemas");
    json_t *names = json_array();

    const crm_type **types = NULL;
    int n = 0;
    if (crm_schema_types(ctx->k->schema, &types, &n) != CRM_OK) n = 0;
    for (int i = 0; i < n; i++) {
        const crm_type *t = types[i];
        if (crm_principal_level(ctx->who, t, CRM_ACT_READ) == CRM_LEVEL_NONE &&
            crm_principal_level(ctx->who, t, CRM_ACT_CREATE) == CRM_LEVEL_NONE)
            continue;
        json_array_append_new(names, json_string(t->name));
        type_schemas(ctx, t, schemas);
        record_paths(paths, t);
    }
    free(types);
    platform_paths(paths, names);
    json_decref(names);
    json_object_set_new(doc, "paths", paths);
    json_object_set_new(doc, "components", comps);
    return doc;
}
