#include <crm.h>

#include <string.h>

/* Declares a type and a handler, then fails: nothing of it may survive. */

static int handler(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)ev;
    (void)udata;
    return CRM_OK;
}

static int route(crm_req *req, void *udata)
{
    (void)req;
    (void)udata;
    return CRM_OK;
}

static int init(crm_plugin *self, const crm_host_api *host)
{
    json_t *fields = json_loads("[{\"name\":\"title\",\"kind\":\"text\"}]", 0, NULL);
    int rc = host->type_declare(self, "initfail.thing", "Thing", fields);
    json_decref(fields);
    if (rc) return rc;
    host->subscribe(self, "initfail.thing.created", CRM_AFTER, 0, "h", handler, NULL);
    host->route(self, "GET", "/things", 0, route, NULL);
    return host->error_set(CRM_EINTERNAL, NULL, "initfail: the room service is unreachable");
}

static const crm_plugin_desc descriptor = {
    CRM_PLUGIN_HEADER,
    .name = "initfail",
    .version = "1.0.0",
    .requires = NULL,
    .init = init,
};

CRM_PLUGIN_EXPORT const crm_plugin_desc *crm_plugin_v1(void)
{
    return &descriptor;
}
