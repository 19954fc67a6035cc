#include <crm.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The well-behaved test plugin: registers one of everything. */

static const crm_host_api *host;
static crm_plugin *self;

/* Each of good and good2 defines a global helper(): each must call its own (P8). */
int helper(void);
int helper(void)
{
    return 1;
}

static int before_item(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)udata;
    json_t *rec = host->event_record(ev);
    if (json_is_integer(json_object_get(rec, "n")))
        json_object_set_new(rec, "n", json_integer(2 * json_integer_value(json_object_get(rec, "n"))));
    if (json_is_string(json_object_get(rec, "name")) &&
        strcmp(json_string_value(json_object_get(rec, "name")), "forbidden") == 0)
        return host->error_set(CRM_EINVALID, "name", "good: the name \"forbidden\" is refused");
    return CRM_OK;
}

static int hello(crm_req *req, void *udata)
{
    (void)udata;
    return host->reply_json(req, 200, json_pack("{s:s}", "hello", "world"));
}

/* POST /echo (raw body): the body back as text, with the client's address. */
static int echo(crm_req *req, void *udata)
{
    (void)udata;
    size_t n;
    const char *body = host->req_body(req, &n);
    char out[512];
    int len = snprintf(out, sizeof out, "%.*s from %s", (int)(n > 400 ? 400 : n), body,
                       host->req_ip(req));
    return host->reply_data(req, 200, "text/plain; charset=utf-8", out, (size_t)len);
}

/* Two items in one transaction: both or neither. */
static int make_pair(crm_ctx *ctx, void *arg)
{
    json_t *names = arg;
    for (size_t i = 0; i < json_array_size(names); i++) {
        json_t *rec = json_pack("{s:O}", "name", json_array_get(names, i));
        int rc = host->record_create(ctx, "good.item", rec, NULL);
        json_decref(rec);
        if (rc) return rc;
    }
    return CRM_OK;
}

/* POST /pair {"names":[a,b]} */
static int pair(crm_req *req, void *udata)
{
    (void)udata;
    json_t *names = json_object_get(host->req_json(req), "names");
    if (!json_is_array(names))
        return host->error_set(CRM_EINVALID, "names", "names must be an array");
    int rc = host->tx(host->req_ctx(req), make_pair, names);
    if (rc) return rc;
    return host->reply_json(req, 201, json_pack("{s:I}", "created", (json_int_t)json_array_size(names)));
}

/* GET /history/{id}: a good.item's history, and the platform's clock. */
static int history(crm_req *req, void *udata)
{
    (void)udata;
    const char *id = host->req_param(req, "id");
    json_t *h = NULL;
    int rc = host->record_history(host->req_ctx(req), "good.item", id ? atoll(id) : 0, &h);
    if (rc) return rc;
    return host->reply_json(req, 200, json_pack("{s:o,s:I}", "history", h, "now",
                                                (json_int_t)host->now()));
}

/* Count good.item records through `ctx`: how many one page of 1000 holds, or -1 if refused. */
static int count_items(crm_ctx *ctx, void *arg)
{
    json_t *q = json_pack("{s:i}", "limit", 1000), *page = NULL;
    int rc = host->record_find(ctx, "good.item", q, &page);
    json_decref(q);
    *(json_int_t *)arg = rc ? -1 : (json_int_t)json_array_size(json_object_get(page, "data"));
    json_decref(page);
    return CRM_OK;
}

/* GET /census: items the caller sees, items the system sees, and whether the
 * caller's type list names good.item and with which fields. */
static int census(crm_req *req, void *udata)
{
    (void)udata;
    crm_ctx *ctx = host->req_ctx(req);
    json_int_t mine = 0, all = 0;
    json_t *types = NULL, *fields = json_array(), *t;
    size_t i, j;
    count_items(ctx, &mine);
    int rc = host->as_system(ctx, count_items, &all);
    if (!rc) rc = host->types(ctx, &types);
    if (rc) {
        json_decref(fields);
        return rc;
    }
    json_array_foreach(types, i, t) {
        if (strcmp(json_string_value(json_object_get(t, "name")), "good.item")) continue;
        json_t *f;
        json_array_foreach(json_object_get(t, "fields"), j, f)
            json_array_append(fields, json_object_get(f, "name"));
    }
    json_decref(types);
    return host->reply_json(req, 200, json_pack("{s:I,s:I,s:o}", "mine", mine, "all", all,
                                                "fields", fields));
}

static int lua_helper(crm_ctx *ctx, json_t *args, json_t **result, void *udata)
{
    (void)ctx;
    (void)args;
    (void)udata;
    *result = json_integer(helper());
    return CRM_OK;
}

static int lua_setting(crm_ctx *ctx, json_t *args, json_t **result, void *udata)
{
    (void)ctx;
    (void)udata;
    const char *v = host->setting(self, json_string_value(json_array_get(args, 0)));
    *result = v ? json_string(v) : NULL;
    return CRM_OK;
}

/* Registration after init must fail: the error comes back as this function's. */
static int lua_late(crm_ctx *ctx, json_t *args, json_t **result, void *udata)
{
    (void)ctx;
    (void)args;
    (void)udata;
    (void)result;
    return host->type_declare(self, "good.late", "Late", NULL);
}

static int nightly(crm_ctx *ctx, const crm_firing *f, void *udata)
{
    (void)ctx;
    (void)f;
    (void)udata;
    return CRM_OK;
}

static int demo(crm_ctx *ctx, void *udata)
{
    (void)udata;
    json_t *rec = json_pack("{s:s,s:i}", "name", "demo", "n", 21);
    int rc = host->record_create(ctx, "good.item", rec, NULL);
    json_decref(rec);
    return rc;
}

static int init(crm_plugin *plugin, const crm_host_api *api)
{
    int rc;
    host = api;
    self = plugin;
    if (!CRM_HOST_HAS(host, demo)) return host->error_set(CRM_EINTERNAL, NULL, "host too old");
    json_t *fields = json_loads("[{\"name\":\"name\",\"kind\":\"text\",\"required\":true},"
                                " {\"name\":\"n\",\"kind\":\"int\"}]", 0, NULL);
    rc = host->type_declare(self, "good.item", "Item", fields);
    json_decref(fields);
    if (rc) return rc;
    if (CRM_HOST_HAS(host, index_declare)) { /* on the type staged just above */
        json_t *ix = json_pack("[s,s]", "name", "n");
        rc = host->index_declare(self, "good.item", ix);
        json_decref(ix);
        if (rc) return rc;
    }
    json_t *grants = json_pack("{s:{s:s,s:s}}", "good.item", "read", "all", "create", "own");
    rc = host->role_declare(self, "good reader", "reads items", grants);
    json_decref(grants);
    if (rc) return rc;
    if ((rc = host->subscribe(self, "good.item.created", CRM_BEFORE, 10, "double", before_item,
                              NULL)) ||
        (rc = host->route(self, "GET", "/hello", 0, hello, NULL)) ||
        (CRM_HOST_HAS(host, record_history) &&
         ((rc = host->route(self, "POST", "/echo", CRM_RAW_BODY, echo, NULL)) ||
          (rc = host->route(self, "POST", "/pair", 0, pair, NULL)) ||
          (rc = host->route(self, "GET", "/history/{id}", 0, history, NULL)))) ||
        (CRM_HOST_HAS(host, types) &&
         (rc = host->route(self, "GET", "/census", 0, census, NULL))) ||
        (rc = host->lua_function(self, "helper", lua_helper, NULL)) ||
        (rc = host->lua_function(self, "setting", lua_setting, NULL)) ||
        (rc = host->lua_function(self, "late", lua_late, NULL)) ||
        (rc = host->rules_dir(self, "scripts")) ||
        (rc = host->schedule_cron(self, "nightly", "0 3 * * *", nightly, NULL)) ||
        (rc = host->demo(self, demo, NULL)))
        return rc;
    return CRM_OK;
}

static const crm_plugin_desc descriptor = {
    CRM_PLUGIN_HEADER,
    .name = "good",
    .version = "1.4.2",
    .requires = NULL,
    .init = init,
};

CRM_PLUGIN_EXPORT const crm_plugin_desc *crm_plugin_v1(void)
{
    return &descriptor;
}
