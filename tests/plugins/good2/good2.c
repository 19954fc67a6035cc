#include <crm.h>

#include <string.h>

/* Requires good; adds a field to good.item; has its own global helper(). */

static const crm_host_api *host;

int helper(void);
int helper(void)
{
    return 2;
}

static int lua_helper(crm_ctx *ctx, json_t *args, json_t **result, void *udata)
{
    (void)ctx;
    (void)args;
    (void)udata;
    *result = json_integer(helper());
    return CRM_OK;
}

static int init(crm_plugin *self, const crm_host_api *api)
{
    int rc;
    host = api;
    json_t *spec = json_pack("{s:s,s:s}", "name", "good2_note", "kind", "text");
    rc = host->field_add(self, "good.item", spec);
    json_decref(spec);
    if (rc) return rc;
    return host->lua_function(self, "helper", lua_helper, NULL);
}

static const crm_plugin_dep requires[] = {{"good", ">=1.0, <2"}, {NULL, NULL}};

static const crm_plugin_desc descriptor = {
    CRM_PLUGIN_HEADER,
    .name = "good2",
    .version = "0.1.0",
    .requires = requires,
    .init = init,
};

CRM_PLUGIN_EXPORT const crm_plugin_desc *crm_plugin_v1(void)
{
    return &descriptor;
}
