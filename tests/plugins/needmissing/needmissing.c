#include <crm.h>

#include <string.h>

static int init(crm_plugin *self, const crm_host_api *host)
{
    (void)self;
    (void)host;
    return CRM_OK;
}

static const crm_plugin_dep requires[] = {{"nothere", ">=1.0"}, {NULL, NULL}};

static const crm_plugin_desc descriptor = {
    CRM_PLUGIN_HEADER,
    .name = "needmissing",
    .version = "1.0.0",
    .requires = requires,
    .init = init,
};

CRM_PLUGIN_EXPORT const crm_plugin_desc *crm_plugin_v1(void)
{
    return &descriptor;
}
