/*
 * crm.c — the base `crm` plugin: the descriptor and init.
 *
 * The plugin models the customer life cycle (FEATURES.md): companies,
 * contacts, leads, deals, products, activities, tasks, tickets, campaigns,
 * segments, e-mail templates and the mail outbox. Each area lives in a file
 * of its own and registers itself through the host API in its *_init
 * function; init calls them in dependency order (types first: everything
 * else names them). Written only against sdk/crm.h, like any plugin.
 */
#include "crm_int.h"

#include <string.h>
#include <time.h>

const crm_host_api *crmp_host;
crm_plugin *crmp_self;

/* Host entries appended after the first version that the plugin cannot do without: on an
 * older host it refuses to load, naming the entry, instead of calling through NULL. */
#define NEED(entry)                                                                      \
    if (!CRM_HOST_HAS(api, entry))                                                       \
        return api->error_set(CRM_EINVALID, NULL,                                        \
                              "the crm plugin needs a newer crm: the host API has no " #entry)

static int init(crm_plugin *plugin, const crm_host_api *api)
{
    int rc;
    crmp_host = api;
    crmp_self = plugin;
    NEED(record_forget);
    NEED(now);
    NEED(tx);
    NEED(req_ip);
    NEED(req_body);
    NEED(reply_data);
    NEED(record_history);
    NEED(as_system);
    NEED(types);

    if ((rc = crmp_types_init()) != CRM_OK ||   /* types.c: every type, default roles */
        (rc = crmp_acquire_init()) != CRM_OK || /* acquire.c: web forms, scoring, conversion */
        (rc = crmp_sales_init()) != CRM_OK ||   /* sales.c: pipeline, board, forecast, timeline */
        (rc = crmp_service_init()) != CRM_OK || /* service.c: tickets, SLA, satisfaction */
        (rc = crmp_retain_init()) != CRM_OK ||  /* retain.c: campaigns, templates, SMTP outbox */
        (rc = crmp_quality_init()) != CRM_OK || /* quality.c: duplicates, merge, GDPR */
        (rc = crmp_reports_init()) != CRM_OK || /* reports.c: reports, dashboard */
        (rc = crmp_demo_init()) != CRM_OK ||    /* demo.c: `crm demo` data */
        (rc = crmp_host->rules_dir(crmp_self, "scripts")) != CRM_OK) /* the shipped rules */
        return rc;
    return CRM_OK;
}

static const crm_plugin_desc descriptor = {
    CRM_PLUGIN_HEADER,
    .name = "crm",
    .version = "1.0.0",
    .summary = "the customer life cycle: leads, deals, service, campaigns, reports",
    .requires = NULL,
    .init = init,
    .shutdown = NULL,
};

CRM_PLUGIN_EXPORT const crm_plugin_desc *crm_plugin_v1(void)
{
    return &descriptor; /* nothing else: crm checks the descriptor before calling init */
}

/* ---- Helpers every area may use (declared in crm_int.h) ---- */

int crmp_each(crm_ctx *ctx, const char *type, json_t *query, crmp_each_fn fn, void *arg)
{
    return crm_util_each(crmp_host, ctx, type, query, fn, arg);
}

