/*
 * api_plugins.c — GET /api/v1/plugins: the plugins of plugins.conf, their
 * versions, sources, pinned commits, and why a refused one was refused.
 * Authenticated (any user): an integrator checks what is running; the error
 * texts name files of the server, not secrets.
 */
#include "plugin.h"

static int get_plugins(crm_req *req, void *udata)
{
    crm_plugins *set = udata;
    return crm_req_reply_json(req, 200, json_pack("{s:o}", "data", crm_plugins_json(set)));
}

int crm_api_plugins_register(crm_http *h, crm_plugins *set)
{
    return crm_http_route(h, "GET", "/api/v1/plugins", 0, get_plugins, set);
}
