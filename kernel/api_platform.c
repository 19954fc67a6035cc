/*
 * api_platform.c — the platform part of the HTTP API: the event stream,
 * webhooks, dead letters and openapi.json. (/plugins and /rules join here
 * when plugins and rules exist; /healthz and /metrics belong to the server.)
 *
 * GET /events?after=SEQ&limit=N — the outbox, oldest first, as the caller may
 * see it:
 *   - record events only for records the caller may read (the read scope is
 *     checked against the owner and team of the event's record — of `old`
 *     for a delete — as they were when the event happened), with the fields
 *     hidden from the caller removed from record, old and changed;
 *   - custom events (plugin / rule events, no type) only for admins: their
 *     payload is free-form, so nothing can be redacted in it;
 *   - admins see every event unredacted.
 * "next" is the seq of the last event examined (visible or not), or `after`
 * when there was none: the caller passes it back as `after` to go on, so a
 * page of events the caller may not see does not stall it.
 * Long-poll: `wait=N` (seconds, 0..30, default 0) holds a request that
 * finds no visible event until one commits or N seconds pass, then answers
 * as above (an empty "data" on timeout). The request is parked
 * (crm_req_park: its connection suspended, no pool thread held); each
 * commit that appends events wakes it, and it looks again with the same
 * permissions (authenticated again, so a logout or a lost role counts). A
 * page full of events the caller may not see is answered at once (empty,
 * "next" advanced), as without `wait`. At most a quarter of the server's
 * connection limit waits at once: beyond, 503 with Retry-After (an
 * immediate empty answer would turn waiting clients into a busy loop).
 *
 * Webhooks, dead letters: admin only (route flag), see webhook.h.
 * GET /openapi.json: any authenticated caller, see openapi.h.
 */
#include "api.h"
#include "bus.h"
#include "cli.h" /* CRM_VERSION */
#include "openapi.h"
#include "perm.h"
#include "record.h"
#include "webhook.h"

#include <string.h>

#define EVENTS_DEFAULT_LIMIT 100
#define EVENTS_MAX_LIMIT     1000
#define EVENTS_MAX_WAIT      30 /* seconds: below common proxies' 60 s idle timeouts */

/* Parse an optional integer query parameter within [lo, hi]. */
static int query_int(crm_req *req, const char *name, int64_t dflt, int64_t lo, int64_t hi,
                     int64_t *out)
{
    const char *s = crm_req_query(req, name);
    *out = dflt;
    if (!s) return CRM_OK;
    int64_t v;
    if (!crm_parse_int64(s, &v) || v < lo || v > hi)
        return crm_error_set(CRM_EINVALID, name, "\"%s\" must be an integer from %lld to %lld",
                             name, (long long)lo, (long long)hi);
    *out = v;
    return CRM_OK;
}

/* ---- Events ---- */

static int64_t int_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* The event as the caller may see it (new reference), or NULL when it may not. */
static json_t *event_for(crm_ctx *ctx, json_t *e)
{
    if (crm_principal_is_admin(ctx->who)) return json_incref(e);
    const char *type = json_string_value(json_object_get(e, "type"));
    if (!type) return NULL;
    const crm_type *t = crm_schema_type(ctx->k->schema, type);
    if (!t) return NULL;
    json_t *rec = json_object_get(e, "record");
    if (!json_is_object(rec)) rec = json_object_get(e, "old");
    if (!json_is_object(rec)) return NULL;
    if (!crm_perm_in_scope(ctx->who, t, CRM_ACT_READ, int_of(rec, "owner"), int_of(rec, "team")))
        return NULL;

    json_t *out = json_copy(e);
    static const char *const parts[] = {"record", "old"};
    for (size_t i = 0; i < CRM_ARRAY_LEN(parts); i++) {
        json_t *r = json_object_get(e, parts[i]);
        if (json_is_object(r)) json_object_set_new(out, parts[i], crm_record_redact(ctx, t, r));
    }
    json_t *changed = json_object_get(e, "changed");
    if (json_is_array(changed)) {
        json_t *visible = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(changed, i, v)
        {
            const char *name = json_string_value(v);
            if (!name) continue;
            const crm_field *f = crm_type_field(t, name);
            if (f ? crm_principal_field_access(ctx->who, t, f) != CRM_ACCESS_HIDDEN
                  : crm_is_system_field(name))
                json_array_append(visible, v);
        }
        json_object_set_new(out, "changed", visible);
    }
    return out;
}

static int get_events(crm_req *req, void *udata)
{
    (void)udata;
    crm_ctx *ctx = crm_req_ctx(req);
    int64_t after, limit, wait;
    int rc = query_int(req, "after", 0, 0, INT64_MAX, &after);
    if (rc == CRM_OK)
        rc = query_int(req, "limit", EVENTS_DEFAULT_LIMIT, 1, EVENTS_MAX_LIMIT, &limit);
    if (rc == CRM_OK) rc = query_int(req, "wait", 0, 0, EVENTS_MAX_WAIT, &wait);
    if (rc) return rc;
    json_t *events = NULL;
    if ((rc = crm_bus_events(ctx->k->bus, after, (int)limit, &events))) return rc;
    size_t examined = json_array_size(events);
    json_t *data = json_array();
    int64_t next = after;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        next = int_of(e, "seq");
        json_t *v = event_for(ctx, e);
        if (v) json_array_append_new(data, v);
    }
    json_decref(events);
    if (json_array_size(data) == 0 && examined < (size_t)limit && wait > 0 &&
        !crm_req_wait_over(req, (int)wait * 1000)) {
        /* Nothing to say yet: this handler runs again when woken or at the deadline. */
        json_decref(data);
        return crm_req_park(req, (int)wait * 1000);
    }
    return crm_req_reply_json(req, 200,
                              json_pack("{s:o, s:I}", "data", data, "next", (json_int_t)next));
}

/* ---- Webhooks ---- */

static int post_webhook(crm_req *req, void *udata)
{
    (void)udata;
    json_t *body = crm_req_json(req);
    if (!json_is_object(body))
        return crm_error_set(CRM_EINVALID, NULL,
                             "the body must be a JSON object {\"url\",\"topics\",\"secret\"?}");
    json_t *url = json_object_get(body, "url");
    json_t *secret = json_object_get(body, "secret");
    if (!json_is_string(url))
        return crm_error_set(CRM_EINVALID, "url", "\"url\" is required: an http(s) URL");
    if (secret && !json_is_null(secret) && !json_is_string(secret))
        return crm_error_set(CRM_EINVALID, "secret", "\"secret\" must be a string");
    json_t *out = NULL;
    int rc = crm_webhook_create(crm_req_ctx(req), json_string_value(url),
                                json_object_get(body, "topics"),
                                json_is_string(secret) ? json_string_value(secret) : NULL, &out);
    if (rc) return rc;
    return crm_req_reply_json(req, 201, out);
}

static int get_webhooks(crm_req *req, void *udata)
{
    (void)udata;
    json_t *list = NULL;
    int rc = crm_webhook_list(crm_req_ctx(req), &list);
    if (rc) return rc;
    return crm_req_reply_json(req, 200, json_pack("{s:o, s:n}", "data", list, "next"));
}

static int delete_webhook(crm_req *req, void *udata)
{
    (void)udata;
    int64_t id;
    int rc = crm_req_param_id(req, "id", &id);
    if (rc == CRM_OK) rc = crm_webhook_delete(crm_req_ctx(req), id);
    if (rc) return rc;
    return crm_req_reply_data(req, 204, "application/json", "", 0);
}

static int get_deliveries(crm_req *req, void *udata)
{
    (void)udata;
    int64_t id, limit;
    json_t *list = NULL;
    int rc = crm_req_param_id(req, "id", &id);
    if (rc == CRM_OK) rc = query_int(req, "limit", 50, 1, CRM_WEBHOOK_KEEP, &limit);
    if (rc == CRM_OK) rc = crm_webhook_deliveries(crm_req_ctx(req), id, (int)limit, &list);
    if (rc) return rc;
    return crm_req_reply_json(req, 200, json_pack("{s:o, s:n}", "data", list, "next"));
}

/* ---- Dead letters ---- */

static int get_dead_letters(crm_req *req, void *udata)
{
    (void)udata;
    json_t *list = NULL;
    int rc = crm_bus_dead_letters(crm_req_ctx(req)->k->bus, &list);
    if (rc) return rc;
    return crm_req_reply_json(req, 200, json_pack("{s:o, s:n}", "data", list, "next"));
}

static int retry_dead_letter(crm_req *req, void *udata)
{
    (void)udata;
    int64_t id;
    int rc = crm_req_param_id(req, "id", &id);
    if (rc == CRM_OK) rc = crm_bus_retry(crm_req_ctx(req)->k->bus, id);
    if (rc) return rc;
    return crm_req_reply_json(req, 200,
                              json_pack("{s:I, s:s}", "id", (json_int_t)id, "state", "pending"));
}

/* ---- OpenAPI ---- */

static int get_openapi(crm_req *req, void *udata)
{
    (void)udata;
    return crm_req_reply_json(req, 200, crm_openapi_document(crm_req_ctx(req), CRM_VERSION));
}

/* ---- Registration ---- */

int crm_api_platform_register(crm_http *h)
{
    static const struct {
        const char *method, *pattern;
        unsigned flags;
        crm_route_fn fn;
    } routes[] = {
        {"GET", "/api/v1/events", 0, get_events},
        {"GET", "/api/v1/webhooks", CRM_ROUTE_ADMIN, get_webhooks},
        {"POST", "/api/v1/webhooks", CRM_ROUTE_ADMIN, post_webhook},
        {"DELETE", "/api/v1/webhooks/{id}", CRM_ROUTE_ADMIN, delete_webhook},
        {"GET", "/api/v1/webhooks/{id}/deliveries", CRM_ROUTE_ADMIN, get_deliveries},
        {"GET", "/api/v1/dead-letters", CRM_ROUTE_ADMIN, get_dead_letters},
        {"POST", "/api/v1/dead-letters/{id}/retry", CRM_ROUTE_ADMIN, retry_dead_letter},
        {"GET", "/api/v1/openapi.json", 0, get_openapi},
    };
    for (size_t i = 0; i < CRM_ARRAY_LEN(routes); i++) {
        int rc = crm_http_route(h, routes[i].method, routes[i].pattern, routes[i].flags,
                                routes[i].fn, NULL);
        if (rc) return rc;
    }
    /* the consumer is durable: a restart picks up where the last run stopped */
    int rc = crm_webhooks_start(crm_http_kernel(h));
    if (rc == CRM_ECONFLICT) rc = CRM_OK; /* a second server on the same kernel */
    return rc;
}
