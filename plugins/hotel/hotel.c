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
    int rc = CRM_OK;
    json_t *page = NULL;
    json_t *q = query ? json_deep_copy(query) : json_object();
    if (!json_object_get(q, "limit")) json_object_set_new(q, "limit", json_integer(1000));
    for (;;) {
        if ((rc = hotelp_host->record_find(ctx, type, q, &page)) != CRM_OK) goto done;
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

int64_t hotelp_cents(json_t *decimal)
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

json_t *hotelp_money(int64_t cents)
{
    int64_t a = cents < 0 ? -cents : cents;
    return json_sprintf("%s%lld.%02lld", cents < 0 ? "-" : "", (long long)(a / 100),
                        (long long)(a % 100));
}

int32_t hotelp_day(const char *date)
{
    struct tm tm = {0};
    if (!date || strlen(date) != 10) return INT32_MIN;
    const char *end = strptime(date, "%Y-%m-%d", &tm);
    if (!end || *end) return INT32_MIN;
    int year = tm.tm_year, month = tm.tm_mon, day = tm.tm_mday;
    int64_t t = (int64_t)timegm(&tm); /* normalises: 2024-02-30 would become 03-01 */
    if (tm.tm_year != year || tm.tm_mon != month || tm.tm_mday != day) return INT32_MIN;
    return (int32_t)(t / 86400);
}

void hotelp_date(int32_t day, char out[11])
{
    time_t t = (time_t)day * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

int hotelp_parse_id(const char *text, int64_t *out)
{
    int64_t v = 0;
    if (!text || !*text || strlen(text) > 18) return 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (*p - '0');
    }
    if (v <= 0) return 0;
    *out = v;
    return 1;
}

int hotelp_json_id(json_t *value, int64_t *out)
{
    if (json_is_integer(value) && json_integer_value(value) > 0) {
        *out = json_integer_value(value);
        return 1;
    }
    return json_is_string(value) && hotelp_parse_id(json_string_value(value), out);
}

int hotelp_id_param(crm_req *req, const char *name, int64_t *out)
{
    if (hotelp_parse_id(hotelp_host->req_param(req, name), out)) return CRM_OK;
    return hotelp_host->error_set(CRM_EINVALID, name, "%s must be a record id (a positive integer)",
                                  name);
}
