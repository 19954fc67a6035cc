/*
 * api.h — the REST API's parts. Each api_<area>.c registers its routes on the
 * server with one function; `crm serve` (cli_serve.c) calls them all before
 * crm_http_start(). Routes must be registered before the server starts: the
 * route table is read without locks while serving.
 *
 * Each returns CRM_OK, or the error of the first crm_http_route() that failed
 * (CRM_EINVALID bad pattern, CRM_ECONFLICT a method + pattern registered
 * twice, e.g. by two areas claiming the same path).
 *
 * Not weak symbols, on purpose: a weak undefined reference does not make the
 * linker take the defining object out of libcrm.a, so an area would silently
 * stay unregistered.
 */
#ifndef CRM_API_H
#define CRM_API_H

#include "http.h"

/* api_auth.c: login, logout, me; users administration. */
int crm_api_auth_register(crm_http *h);
/* api_records.c: types, fields, records, lists, search, admin endpoints. */
int crm_api_records_register(crm_http *h);
/* api_io.c: CSV import, CSV / JSON export. */
int crm_api_io_register(crm_http *h);
/* api_platform.c: plugins, rules, events, webhooks, openapi.json. */
int crm_api_platform_register(crm_http *h);

#endif
