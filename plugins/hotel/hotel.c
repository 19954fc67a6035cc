/*
 * hotel.c — the `hotel` plugin: the descriptor and init.
 *
 * The first vertical (FEATURES.md, "hotel"): rooms and their types, guests
 * linked to crm contacts, reservations that never double-book a room, the
 * stay from check-in to check-out with its folio, services charged to a stay,
 * a loyalty club, and the reports a hotel manager reads. It builds on the
 * base `crm` plugin (contacts, tickets, messages) and is written only against
 * sdk/crm.h, like any plugin.
 */
#include "hotel_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const crm_host_api *hotelp_host;
crm_plugin *hotelp_self;

static int init(crm_plugin *plugin, const crm_host_api *api)
{
    int rc;
    hotelp_host = api;
    hotelp_self = plugin;
    /* every entry used below is in this host (appended after ABI 1.0: check) */
    if (!CRM_HOST_HAS(api, types))
        return api->error_set(CRM_EINVALID, NULL,
                              "hotel needs a crm with the as_system and types host entries");

    if ((rc = hotelp_types_init()) != CRM_OK ||   /* types.c: every type, default roles */
        (rc = hotelp_booking_init()) != CRM_OK || /* booking.c: availability, booking */
        (rc = hotelp_stay_init()) != CRM_OK ||    /* stay.c: check-in/out, folio, loyalty */
        (rc = hotelp_insight_init()) != CRM_OK || /* insight.c: segmentation, reports */
        (rc = hotelp_demo_init()) != CRM_OK ||    /* demo.c: `crm demo` data */
        (rc = hotelp_host->rules_dir(hotelp_self, "scripts")) != CRM_OK) /* shipped rules */
        return rc;
    return CRM_OK;
}

static const crm_plugin_dep requires[] = {{"crm", ">=1.0, <2"}, {NULL, NULL}};

static const crm_plugin_desc descriptor = {
    CRM_PLUGIN_HEADER,
    .name = "hotel",
    .version = "1.0.0",
    .summary = "hotel: rooms, guests, reservations, stays, services, loyalty, reports",
    .requires = requires,
    .init = init,
    .shutdown = NULL,
};

CRM_PLUGIN_EXPORT const crm_plugin_desc *crm_plugin_v1(void)
{
    return &descriptor; /* nothing else: crm checks the descriptor before calling init */
}

/* ---- Helpers every area may use (declared in hotel_int.h) ---- */

int hotelp_each(crm_ctx *ctx, const char *type, json_t *query, hotelp_each_fn fn, void *arg)
{
    return crm_util_each(hotelp_host, ctx, type, query, fn, arg);
}

int32_t hotelp_day(const char *date)
{
    if (!date || strlen(date) != 10) return INT32_MIN; /* a date, not a datetime */
    int64_t t = crm_util_time(date);
    return t == -1 ? INT32_MIN : (int32_t)(t / 86400); /* midnights: exact multiples */
}

void hotelp_date(int32_t day, char out[11])
{
    char datetime[21];
    crm_util_datetime((int64_t)day * 86400, datetime);
    memcpy(out, datetime, 10);
    out[10] = 0;
}

int hotelp_id_param(crm_req *req, const char *name, int64_t *out)
{
    if (crm_util_parse_id(hotelp_host->req_param(req, name), out)) return CRM_OK;
    return hotelp_host->error_set(CRM_EINVALID, name, "%s must be a record id (a positive integer)",
                                  name);
}
