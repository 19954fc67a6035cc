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
    int rc = CRM_OK;
    json_t *page = NULL;
    json_t *q = query ? json_deep_copy(query) : json_object();
    if (!json_object_get(q, "limit")) json_object_set_new(q, "limit", json_integer(1000));
    for (;;) {
        if ((rc = crmp_host->record_find(ctx, type, q, &page)) != CRM_OK) goto done;
        size_t i;
        json_t *record;
        json_array_foreach(json_object_get(page, "data"), i, record)
            if ((rc = fn(record, arg)) != CRM_OK) goto done;
        json_t *next = json_object_get(page, "next");
        if (!json_is_string(next)) break;
        json_object_set(q, "cursor", next);
        json_decref(page);
        page = NULL;
    }
done:
    json_decref(page);
    json_decref(q);
    return rc;
}

int64_t crmp_cents(json_t *decimal)
{
    if (json_is_integer(decimal)) return json_integer_value(decimal) * 100;
    if (json_is_real(decimal)) {
        double x = json_real_value(decimal) * 100.0;
        return (int64_t)(x < 0 ? x - 0.5 : x + 0.5);
    }
    const char *s = json_string_value(decimal);
    if (!s) return 0;
    int negative = *s == '-';
    if (*s == '-' || *s == '+') s++;
    int64_t units = 0, cents = 0;
    while (*s >= '0' && *s <= '9') units = units * 10 + (*s++ - '0');
    if (*s == '.') {
        s++;
        for (int digits = 0; digits < 2; digits++)
            cents = cents * 10 + ((*s >= '0' && *s <= '9') ? *s++ - '0' : 0);
    }
    return (negative ? -1 : 1) * (units * 100 + cents);
}

json_t *crmp_money(int64_t cents)
{
    int64_t a = cents < 0 ? -cents : cents;
    return json_sprintf("%s%lld.%02lld", cents < 0 ? "-" : "", (long long)(a / 100),
                        (long long)(a % 100));
}

int64_t crmp_time(const char *text)
{
    struct tm tm = {0};
    if (!text) return -1;
    const char *end = strptime(text, "%Y-%m-%d", &tm);
    if (!end) return -1;
    if (*end == 'T' && !(end = strptime(end + 1, "%H:%M:%S", &tm))) return -1;
    if (*end == 'Z') end++;
    if (*end) return -1;
    int year = tm.tm_year, month = tm.tm_mon, day = tm.tm_mday;
    int64_t t = (int64_t)timegm(&tm); /* normalises: 2024-02-30 would become 03-01 */
    if (tm.tm_year != year || tm.tm_mon != month || tm.tm_mday != day) return -1;
    return t;
}

void crmp_datetime(int64_t t, char out[21])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
