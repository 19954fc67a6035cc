/*
 * api_rules.c — the rules part of the HTTP API (admin only):
 *   GET  /api/v1/rules         the loaded rules with trigger, source, state and counters
 *   POST /api/v1/rules/reload  re-read every rule directory; 200 with the report even when
 *                              some files had errors (those are skipped, the others load).
 *                              An administrative change: recent authentication (A4).
 */
#include "http.h"
#include "rules.h"

static int get_rules(crm_req *req, void *udata)
{
    return crm_req_reply_json(req, 200, crm_rules_json(udata));
}

static int reload_rules(crm_req *req, void *udata)
{
    json_t *report = NULL;
    int rc = crm_rules_load(udata, &report);
    if (rc < 0) return rc;
    return crm_req_reply_json(req, 200, report);
}

int crm_api_rules_register(crm_http *h, crm_rules *rules)
{
    int rc;
    if ((rc = crm_http_route(h, "GET", "/api/v1/rules", CRM_ROUTE_ADMIN, get_rules, rules)) < 0)
        return rc;
    /* Rules are code run with system authority: loading them is an administrative change (A4). */
    return crm_http_route(h, "POST", "/api/v1/rules/reload", CRM_ROUTE_ADMIN | CRM_ROUTE_REAUTH,
                          reload_rules, rules);
}
