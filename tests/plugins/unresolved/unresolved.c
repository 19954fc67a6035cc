#include <crm.h>

#include <string.h>

/* Calls a function no library defines: dlopen(RTLD_NOW) must fail (P8). */
int no_such_function(void);

static int init(crm_plugin *self, const crm_host_api *host)
{
    (void)self;
    (void)host;
    return no_such_function();
}

static const crm_plugin_desc descriptor = {
    CRM_PLUGIN_HEADER,
    .name = "unresolved",
    .version = "1.0.0",
    .requires = NULL,
    .init = init,
};

CRM_PLUGIN_EXPORT const crm_plugin_desc *crm_plugin_v1(void)
{
    return &descriptor;
}
