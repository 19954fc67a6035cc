#include <crm.h>

#include <string.h>

/* Declares dupa.thing too: refused, dupa owns it. */
static int init(crm_plugin *self, const crm_host_api *host)
{
    json_t *fields = json_loads("[{\"name\":\"title\",\"kind\":\"text\"}]", 0, NULL);
    int rc = host->type_declare(self, "dupa.thing", "Thing", fields);
    json_decref(fields);
    return rc;
}

static const crm_plugin_desc descriptor = {
    CRM_PLUGIN_HEADER,
    .name = "dupb",
    .version = "1.0.0",
    .requires = NULL,
    .init = init,
};

CRM_PLUGIN_EXPORT const crm_plugin_desc *crm_plugin_v1(void)
{
    return &descriptor;
}
