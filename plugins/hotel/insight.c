/*
 * insight.c — what the hotel knows about its guests, and the manager's reports.
 *
 *   GET /api/v1/x/hotel/guests/{id}/history     the guest's stays, spend, services
 *   GET /api/v1/x/hotel/guests/{id}/best-time   the months they come, the one to offer
 *   GET /api/v1/x/hotel/offers/best-time?month=YYYY-MM   whom to contact for that month
 *   GET /api/v1/x/hotel/segments?by=visits|spend|services
 *   GET /api/v1/x/hotel/reports/occupancy|adr|revpar|revenue-by-service|repeat-guests
 *
 * Everything reads through host->record_find with the caller's context: an
 * answer holds what its reader may see, and a user without hotel grants gets
 * the record layer's 403/404, never data. Each walk asks for the few fields it
 * needs (`fields`) and filters on indexed fields (arrival, date, at, status,
 * guest), so a two-year report on the demo hotel (≈ 60,000 nights) reads its
 * pages once and aggregates in memory, by id, through a small hash map.
 *
 * Answers are JSON {"report": ..., "rows": [...]}; ?format=csv replies the
 * rows as text/csv (a text cell starting with = + - @ TAB CR is escaped, as in
 * crm's reports). ?today=YYYY-MM-DD fixes "today" (reproducible answers).
 */
#include "hotel_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RANGE_DAYS 731 /* two years and a day: a leap year fits */
#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000

/* The categories of hotel.service (types.c), for segments by services. */
static const char *const categories[] = {"minibar", "spa", "transfer", "restaurant", "bar",
                                         "laundry", "parking", "room_service", "other"};
#define N_CATEGORIES ((int)(sizeof categories / sizeof categories[0]))
static const char *const category_labels[N_CATEGORIES] = {
    "Used the minibar", "Used the spa", "Took a transfer", "Ate at the restaurant",
    "Used the bar", "Used the laundry", "Parked", "Ordered room service", "Used other services"};

static const char *const month_names[12] = {"January", "February", "March", "April",
                                            "May", "June", "July", "August",
                                            "September", "October", "November", "December"};

/* ---- An id -> index map (open addressing; ids are positive) ---- */

typedef struct idmap {
    int64_t *keys;
    int *values;
    size_t cap, n;
} idmap;

static size_t slot_of(const idmap *m, int64_t key)
{
    uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 17) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    return i;
}

static int idmap_get(const idmap *m, int64_t key)
{
    if (!m->cap) return -1;
    size_t i = slot_of(m, key);
    return m->keys[i] ? m->values[i] : -1;
}

/* Map key to value (keeping an existing value); 0, or -1 when memory ran out. */
static int idmap_put(idmap *m, int64_t key, int value)
{
    if ((m->n + 1) * 2 > m->cap) {
        idmap bigger = {calloc(m->cap ? m->cap * 2 : 256, sizeof(int64_t)),
                        calloc(m->cap ? m->cap * 2 : 256, sizeof(int)), m->cap ? m->cap * 2 : 256,
                        0};
        if (!bigger.keys || !bigger.values) {
            free(bigger.keys);
            free(bigger.values);
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                size_t j = slot_of(&bigger, m->keys[i]);
                bigger.keys[j] = m->keys[i];
                bigger.values[j] = m->values[i];
                bigger.n++;
            }
        free(m->keys);
        free(m->values);
        *m = bigger;
    }
    size_t i = slot_of(m, key);
    if (!m->keys[i]) {
        m->keys[i] = key;
        m->values[i] = value;
        m->n++;
    }
    return 0;
}

static void idmap_free(idmap *m)
{
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}

static int no_memory(void)
{
    return hotelp_host->error_set(CRM_EINTERNAL, NULL, "out of memory");
}

/* ---- Parameters ---- */

static int64_t field_id(json_t *record, const char *field)
{
    int64_t id = 0;
    return crm_util_json_id(json_object_get(record, field), &id) ? id : 0;
}

static int32_t field_day(json_t *record, const char *field)
{
    return hotelp_day(json_string_value(json_object_get(record, field)));
}

static double rounded(double x) /* two decimals */
{
    return (double)(long long)(x * 100.0 + (x < 0 ? -0.5 : 0.5)) / 100.0;
}

/* obj[key] += delta, for integer counters kept in JSON objects. */
static void add_int(json_t *obj, const char *key, json_int_t delta)
{
    json_object_set_new(obj, key,
                        json_integer(json_integer_value(json_object_get(obj, key)) + delta));
}

/* "today": ?today=YYYY-MM-DD, else the platform's clock. */
static int param_today(crm_req *req, int32_t *today)
{
    const char *text = hotelp_host->req_query(req, "today");
    if (!text) {
        *today = (int32_t)(hotelp_host->now() / 86400);
        return CRM_OK;
    }
    if ((*today = hotelp_day(text)) == INT32_MIN)
        return hotelp_host->error_set(CRM_EINVALID, "today", "today must be a date YYYY-MM-DD");
    return CRM_OK;
}

static int param_format(crm_req *req, int *csv)
{
    const char *format = hotelp_host->req_query(req, "format");
    *csv = format && strcmp(format, "csv") == 0;
    if (format && !*csv && strcmp(format, "json") != 0)
        return hotelp_host->error_set(CRM_EINVALID, "format", "format is json or csv");
    return CRM_OK;
}

static int param_limit(crm_req *req, int *limit)
{
    const char *text = hotelp_host->req_query(req, "limit");
    int64_t n = DEFAULT_LIMIT;
    *limit = DEFAULT_LIMIT;
    if (text && (!crm_util_parse_id(text, &n) || n > MAX_LIMIT))
        return hotelp_host->error_set(CRM_EINVALID, "limit",
                                      "limit must be an integer from 1 to %d", MAX_LIMIT);
    *limit = (int)n;
    return CRM_OK;
}

/* A report's period: from and to (inclusive dates), by default the 30 days to today. */
static int param_range(crm_req *req, int32_t today, int32_t *from, int32_t *to)
{
    const char *f = hotelp_host->req_query(req, "from"), *t = hotelp_host->req_query(req, "to");
    *to = t ? hotelp_day(t) : today;
    if (*to == INT32_MIN)
        return hotelp_host->error_set(CRM_EINVALID, "to", "to must be a date YYYY-MM-DD");
    *from = f ? hotelp_day(f) : *to - 29;
    if (*from == INT32_MIN)
        return hotelp_host->error_set(CRM_EINVALID, "from", "from must be a date YYYY-MM-DD");
    /* the fault is the parameter the caller gave: `to`, or `from` against today */
    if (*to < *from)
        return t ? hotelp_host->error_set(CRM_EINVALID, "to", "to must not be before from")
                 : hotelp_host->error_set(CRM_EINVALID, "from", "from must not be after today");
    if (*to - *from + 1 > MAX_RANGE_DAYS)
        return hotelp_host->error_set(CRM_EINVALID, t ? "to" : "from",
                                      "the period from..to is at most %d days", MAX_RANGE_DAYS);
    return CRM_OK;
}

/* by=day|month for the nightly reports. */
static int param_by_month(crm_req *req, int *by_month)
{
    const char *by = hotelp_host->req_query(req, "by");
    *by_month = by && strcmp(by, "month") == 0;
    if (by && !*by_month && strcmp(by, "day") != 0)
        return hotelp_host->error_set(CRM_EINVALID, "by", "by is day or month");
    return CRM_OK;
}

/* Reply `out` (consumed): JSON, or its "rows" as CSV. */
static int reply(crm_req *req, json_t *out, int csv)
{
    if (!csv) return hotelp_host->reply_json(req, 200, out);
    char *text = crm_util_rows_csv(json_object_get(out, "rows"));
    json_decref(out);
    if (!text) return no_memory();
    int rc = hotelp_host->reply_data(req, 200, "text/csv; charset=utf-8", text, strlen(text));
    free(text);
    return rc;
}

/* ---- Small lookups: services and rooms by id ---- */

typedef struct catalogue {
    idmap ids;
    json_t *records; /* array, in map order */
} catalogue;

static int add_to_catalogue(json_t *record, void *arg)
{
    catalogue *c = arg;
    int64_t id = field_id(record, "id");
    if (!id) return CRM_OK;
    if (idmap_put(&c->ids, id, (int)json_array_size(c->records)) != 0) return no_memory();
    json_array_append(c->records, record);
    return CRM_OK;
}

/* Every record of `type` (a small table: services, rooms) with `fields`. */
static int catalogue_load(crm_ctx *ctx, const char *type, const char *fields, catalogue *c)
{
    c->records = json_array();
    memset(&c->ids, 0, sizeof c->ids);
    json_t *q = json_pack("{s:s}", "fields", fields);
    int rc = hotelp_each(ctx, type, q, add_to_catalogue, c);
    json_decref(q);
    return rc;
}

static json_t *catalogue_get(const catalogue *c, int64_t id)
{
    int i = idmap_get(&c->ids, id);
    return i < 0 ? NULL : json_array_get(c->records, (size_t)i);
}

static void catalogue_free(catalogue *c)
{
    idmap_free(&c->ids);
    json_decref(c->records);
    c->records = NULL;
}

static int category_index(const char *category)
{
    for (int i = 0; category && i < N_CATEGORIES; i++)
        if (strcmp(categories[i], category) == 0) return i;
    return N_CATEGORIES - 1; /* "other" */
}

/* A reservation's spend: the folio when it is made up, else room and charges. */
static int64_t spend_of(json_t *reservation)
{
    json_t *folio = json_object_get(reservation, "folio_total");
    if (json_is_string(folio) || json_is_number(folio)) return crm_util_cents(folio);
    return crm_util_cents(json_object_get(reservation, "room_total")) +
           crm_util_cents(json_object_get(reservation, "charges_total"));
}

static int is_visit(json_t *reservation) /* a stay that took place (or is under way) */
{
    const char *s = json_string_value(json_object_get(reservation, "status"));
    return s && (strcmp(s, "checked_out") == 0 || strcmp(s, "checked_in") == 0);
}

/* Weight of an arrival for "when do they come": recent years count more. */
static double recency_weight(int32_t today, int32_t arrival)
{
    int years_ago = arrival < today ? (today - arrival) / 365 : 0;
    return 1.0 / (1.0 + years_ago);
}

static void month_parts(int32_t day, int *year, int *month)
{
    char date[11];
    hotelp_date(day, date);
    *year = atoi(date);
    *month = atoi(date + 5);
}

/* ---- Per-guest aggregates over reservations (segments, offers) ---- */

typedef struct guest_stat {
    int64_t id;
    int visits;
    int64_t spend, nights;
    int32_t first, last; /* arrivals of the first and last visit */
    unsigned categories; /* bit i: used a service of categories[i] */
    double weight[12];   /* arrival months, weighted to recent years */
    int stays[12];
    int booked;          /* a reservation arriving in the offer's month */
} guest_stat;

typedef struct guests {
    idmap ids;
    guest_stat *stats;
    size_t n, cap;
    idmap reservations; /* reservation id -> guest index (segments by services) */
    int want_reservations;
    int32_t today;
    int offer_year, offer_month; /* offers: flag bookings arriving in this month */
    int closed; /* the guests are listed: a reservation of another guest is skipped (a
                   reader of reservations but not of that guest learns nothing of them) */
} guests;

static guest_stat *guest_slot(guests *g, int64_t id)
{
    int i = idmap_get(&g->ids, id);
    if (i >= 0) return &g->stats[i];
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 1024;
        guest_stat *stats = realloc(g->stats, cap * sizeof *stats);
        if (!stats) return NULL;
        g->stats = stats;
        g->cap = cap;
    }
    if (idmap_put(&g->ids, id, (int)g->n) != 0) return NULL;
    guest_stat *s = &g->stats[g->n++];
    memset(s, 0, sizeof *s);
    s->id = id;
    s->first = INT32_MAX;
    s->last = INT32_MIN;
    return s;
}

static int guests_guest(json_t *record, void *arg)
{
    guests *g = arg;
    int64_t id = field_id(record, "id");
    if (id && !guest_slot(g, id)) return no_memory();
    return CRM_OK;
}

static int guests_reservation(json_t *record, void *arg)
{
    guests *g = arg;
    int64_t id = field_id(record, "guest");
    int32_t arrival = field_day(record, "arrival");
    if (!id || arrival == INT32_MIN || (g->closed && idmap_get(&g->ids, id) < 0))
        return CRM_OK;
    guest_stat *s = guest_slot(g, id);
    if (!s) return no_memory();
    int y, m;
    month_parts(arrival, &y, &m);
    if (y == g->offer_year && m == g->offer_month) s->booked = 1;
    if (!is_visit(record)) return CRM_OK; /* booked: only whether it falls in that month */
    s->visits++;
    s->spend += spend_of(record);
    int32_t departure = field_day(record, "departure");
    s->nights += departure > arrival ? departure - arrival : 0;
    if (arrival < s->first) s->first = arrival;
    if (arrival > s->last) s->last = arrival;
    if (arrival < g->today) {
        s->weight[m - 1] += recency_weight(g->today, arrival);
        s->stays[m - 1]++;
    }
    if (g->want_reservations &&
        idmap_put(&g->reservations, field_id(record, "id"), (int)(s - g->stats)) != 0)
        return no_memory();
    return CRM_OK;
}

struct charge_walk {
    guests *g;
    catalogue *services;
};

static int guests_charge(json_t *record, void *arg)
{
    struct charge_walk *w = arg;
    int i = idmap_get(&w->g->reservations, field_id(record, "reservation"));
    json_t *service = catalogue_get(w->services, field_id(record, "service"));
    if (i < 0 || !service) return CRM_OK;
    w->g->stats[i].categories |=
        1u << category_index(json_string_value(json_object_get(service, "category")));
    return CRM_OK;
}

/* Every guest the caller may read, with their visits (and services when `services`). */
static int guests_load(crm_ctx *ctx, guests *g, int services)
{
    int rc;
    json_t *q = json_pack("{s:s}", "fields", "id");
    rc = hotelp_each(ctx, "hotel.guest", q, guests_guest, g);
    json_decref(q);
    if (rc != CRM_OK) return rc;
    g->closed = 1;
    g->want_reservations = services;
    q = json_pack("{s:s,s:s}", "status__in", "booked,checked_in,checked_out", "fields",
                  "id,guest,arrival,departure,status,folio_total,room_total,charges_total");
    rc = hotelp_each(ctx, "hotel.reservation", q, guests_reservation, g);
    json_decref(q);
    if (rc != CRM_OK || !services) return rc;
    catalogue cat;
    if ((rc = catalogue_load(ctx, "hotel.service", "id,category", &cat)) == CRM_OK) {
        struct charge_walk w = {g, &cat};
        q = json_pack("{s:s}", "fields", "reservation,service");
        rc = hotelp_each(ctx, "hotel.charge", q, guests_charge, &w);
        json_decref(q);
    }
    catalogue_free(&cat);
    return rc;
}

static void guests_free(guests *g)
{
    idmap_free(&g->ids);
    idmap_free(&g->reservations);
    free(g->stats);
}

/* The guest's usual month: the heaviest (ties: more stays, then the earlier month); 0 if none. */
static int best_month(const guest_stat *s)
{
    int best = 0;
    for (int m = 1; m <= 12; m++) {
        if (s->stays[m - 1] == 0) continue;
        if (!best || s->weight[m - 1] > s->weight[best - 1] + 1e-9 ||
            (s->weight[m - 1] > s->weight[best - 1] - 1e-9 && s->stays[m - 1] > s->stays[best - 1]))
            best = m;
    }
    return best;
}

/* A "usual" month: at least half the weight of the best one. */
static int is_usual(const guest_stat *s, int month)
{
    int best = best_month(s);
    return best && s->stays[month - 1] > 0 &&
           s->weight[month - 1] >= s->weight[best - 1] / 2.0 - 1e-9;
}

/* ---- GET /guests/{id}/history ---- */

struct history {
    json_t *stays;
    idmap index; /* reservation id -> position in stays */
    json_t *services; /* per stay: {service id: {quantity, amount}} */
};

static int history_reservation(json_t *record, void *arg)
{
    struct history *h = arg;
    const char *status = json_string_value(json_object_get(record, "status"));
    if (!status || strcmp(status, "cancelled") == 0 || strcmp(status, "no_show") == 0)
        return CRM_OK;
    if (idmap_put(&h->index, field_id(record, "id"), (int)json_array_size(h->stays)) != 0)
        return no_memory();
    json_array_append(h->stays, record);
    json_array_append_new(h->services, json_object());
    return CRM_OK;
}

static int history_charge(json_t *record, void *arg)
{
    struct history *h = arg;
    int i = idmap_get(&h->index, field_id(record, "reservation"));
    if (i < 0) return CRM_OK;
    json_t *used = json_array_get(h->services, (size_t)i);
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)field_id(record, "service"));
    json_t *entry = json_object_get(used, key);
    if (!entry) {
        entry = json_pack("{s:i,s:I}", "quantity", 0, "amount", (json_int_t)0);
        json_object_set_new(used, key, entry);
    }
    json_int_t qty = json_integer_value(json_object_get(record, "quantity"));
    add_int(entry, "quantity", qty > 0 ? qty : 1);
    add_int(entry, "amount", crm_util_cents(json_object_get(record, "amount")));
    return CRM_OK;
}

/* The charges of the stays in h, 100 reservations a query (the `in` filter's bound). */
static int history_charges(crm_ctx *ctx, struct history *h)
{
    int rc = CRM_OK;
    size_t n = json_array_size(h->stays);
    for (size_t start = 0; start < n && rc == CRM_OK; start += 100) {
        char ids[100 * 21] = "";
        size_t len = 0;
        for (size_t i = start; i < n && i < start + 100; i++)
            len += (size_t)snprintf(ids + len, sizeof ids - len, "%s%lld", len ? "," : "",
                                    (long long)field_id(json_array_get(h->stays, i), "id"));
        json_t *q = json_pack("{s:s,s:s}", "reservation__in", ids, "fields",
                              "reservation,service,quantity,amount");
        rc = hotelp_each(ctx, "hotel.charge", q, history_charge, h);
        json_decref(q);
    }
    return rc;
}

/* Services used by a guest: on more stays first, then the larger amount, then the lower id. */
static int by_use(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t sx = json_integer_value(json_object_get(x, "stays"));
    json_int_t sy = json_integer_value(json_object_get(y, "stays"));
    json_int_t ax = json_integer_value(json_object_get(x, "amount"));
    json_int_t ay = json_integer_value(json_object_get(y, "amount"));
    json_int_t ix = json_integer_value(json_object_get(x, "service"));
    json_int_t iy = json_integer_value(json_object_get(y, "service"));
    if (sx != sy) return sx > sy ? -1 : 1;
    if (ax != ay) return ax > ay ? -1 : 1;
    return ix < iy ? -1 : ix > iy;
}

static int guest_history(crm_req *req, void *udata)
{
    (void)udata;
    crm_ctx *ctx = hotelp_host->req_ctx(req);
    int64_t id;
    int csv, rc;
    json_t *guest = NULL, *q, *favourites = NULL;
    struct history h = {json_array(), {0}, json_array()};
    catalogue services = {{0}, NULL}, rooms = {{0}, NULL};
    if ((rc = hotelp_id_param(req, "id", &id)) != CRM_OK ||
        (rc = param_format(req, &csv)) != CRM_OK ||
        (rc = hotelp_host->record_get(ctx, "hotel.guest", id, &guest)) != CRM_OK)
        goto done;
    q = json_pack("{s:I,s:s,s:s}", "guest", (json_int_t)id, "sort", "arrival,id", "fields",
                  "id,room,arrival,departure,nights,status,rate,room_total,charges_total,"
                  "folio_total,currency,channel");
    rc = hotelp_each(ctx, "hotel.reservation", q, history_reservation, &h);
    json_decref(q);
    if (rc != CRM_OK || (rc = history_charges(ctx, &h)) != CRM_OK ||
        (rc = catalogue_load(ctx, "hotel.service", "id,code,name,category", &services)) != CRM_OK ||
        (rc = catalogue_load(ctx, "hotel.room", "id,number", &rooms)) != CRM_OK)
        goto done;

    json_t *rows = json_array();
    json_t *used_by_service = json_object(); /* service id -> {stays, quantity, amount} */
    int visits = 0, upcoming = 0;
    int64_t nights = 0, spend = 0;
    const char *first = NULL, *last = NULL;
    size_t i;
    json_t *stay;
    json_array_foreach(h.stays, i, stay) {
        int32_t a = field_day(stay, "arrival"), b = field_day(stay, "departure");
        int64_t n = json_is_integer(json_object_get(stay, "nights"))
                        ? json_integer_value(json_object_get(stay, "nights"))
                        : (a != INT32_MIN && b > a ? b - a : 0);
        json_t *room = catalogue_get(&rooms, field_id(stay, "room"));
        json_t *used = json_array_get(h.services, i), *list = json_array();
        const char *key;
        json_t *entry;
        json_object_foreach(used, key, entry) {
            int64_t sid = 0;
            crm_util_parse_id(key, &sid);
            json_t *svc = catalogue_get(&services, sid);
            json_int_t qty = json_integer_value(json_object_get(entry, "quantity"));
            int64_t amount = json_integer_value(json_object_get(entry, "amount"));
            json_array_append_new(
                list, json_pack("{s:I,s:O?,s:O?,s:O?,s:I,s:o}", "service", (json_int_t)sid,
                                "code", json_object_get(svc, "code"), "name",
                                json_object_get(svc, "name"), "category",
                                json_object_get(svc, "category"), "quantity", qty, "amount",
                                crm_util_money(amount)));
            if (!is_visit(stay)) continue;
            json_t *total = json_object_get(used_by_service, key);
            if (!total) {
                total = json_pack("{s:I,s:i,s:I,s:I}", "service", (json_int_t)sid, "stays", 0,
                                  "quantity", (json_int_t)0, "amount", (json_int_t)0);
                json_object_set_new(used_by_service, key, total);
            }
            add_int(total, "stays", 1);
            add_int(total, "quantity", qty);
            add_int(total, "amount", amount);
        }
        int64_t s = spend_of(stay);
        if (is_visit(stay)) {
            visits++;
            nights += n;
            spend += s;
            if (!first) first = json_string_value(json_object_get(stay, "arrival"));
            last = json_string_value(json_object_get(stay, "arrival"));
        } else {
            upcoming++;
        }
        json_array_append_new(
            rows, json_pack("{s:O,s:O,s:O,s:O,s:O?,s:I,s:O,s:o,s:o,s:o,s:o}", "reservation",
                            json_object_get(stay, "id"), "arrival",
                            json_object_get(stay, "arrival"), "departure",
                            json_object_get(stay, "departure"), "room",
                            json_object_get(stay, "room"), "room_number",
                            json_object_get(room, "number"), "nights",
                            (json_int_t)n, "status", json_object_get(stay, "status"), "room_total",
                            crm_util_money(crm_util_cents(json_object_get(stay, "room_total"))),
                            "charges_total",
                            crm_util_money(crm_util_cents(json_object_get(stay, "charges_total"))),
                            "spend", crm_util_money(s), "services", list));
    }
    /* favourite services: used on the most stays, then the largest amount; the top three */
    favourites = json_array();
    size_t n_used = json_object_size(used_by_service), n_ranked = 0;
    json_t **ranked = malloc((n_used ? n_used : 1) * sizeof *ranked);
    if (!ranked) {
        json_decref(used_by_service);
        json_decref(rows);
        rc = no_memory();
        goto done;
    }
    const char *key;
    json_t *entry;
    json_object_foreach(used_by_service, key, entry) ranked[n_ranked++] = entry;
    qsort(ranked, n_ranked, sizeof *ranked, by_use);
    for (size_t k = 0; k < n_ranked && k < 3; k++) {
        json_t *svc =
            catalogue_get(&services, json_integer_value(json_object_get(ranked[k], "service")));
        json_array_append_new(
            favourites,
            json_pack("{s:O,s:O?,s:O?,s:O?,s:O,s:O,s:o}", "service",
                      json_object_get(ranked[k], "service"), "code", json_object_get(svc, "code"),
                      "name", json_object_get(svc, "name"), "category",
                      json_object_get(svc, "category"), "stays",
                      json_object_get(ranked[k], "stays"), "quantity",
                      json_object_get(ranked[k], "quantity"), "amount",
                      crm_util_money(json_integer_value(json_object_get(ranked[k], "amount")))));
    }
    free(ranked);
    json_decref(used_by_service);
    json_t *out = json_pack("{s:s,s:I,s:O?,s:{s:i,s:I,s:o,s:i,s:s?,s:s?,s:O},s:o}", "report",
                            "guest-history", "guest", (json_int_t)id, "name",
                            json_object_get(guest, "name"), "totals", "visits", visits, "nights",
                            (json_int_t)nights, "spend", crm_util_money(spend), "upcoming",
                            upcoming, "first_stay", first, "last_stay", last,
                            "favourite_services", favourites, "rows", rows);
    if (csv) { /* a spreadsheet cell per stay: "Breakfast x4; Parking (per night) x2" */
        json_t *row;
        json_array_foreach(rows, i, row) {
            size_t j;
            json_t *svc;
            char text[1024] = "";
            size_t len = 0;
            json_array_foreach(json_object_get(row, "services"), j, svc)
                if (len < sizeof text)
                    len += (size_t)snprintf(
                        text + len, sizeof text - len, "%s%s x%lld", len ? "; " : "",
                        json_string_value(json_object_get(svc, "name"))
                            ? json_string_value(json_object_get(svc, "name"))
                            : "?",
                        (long long)json_integer_value(json_object_get(svc, "quantity")));
            json_object_set_new(row, "services", json_string(text));
        }
    }
    rc = reply(req, out, csv);
done:
    json_decref(favourites);
    json_decref(guest);
    json_decref(h.stays);
    json_decref(h.services);
    idmap_free(&h.index);
    catalogue_free(&services);
    catalogue_free(&rooms);
    return rc;
}

/* ---- GET /segments?by=visits|spend|services[&limit=N] ---- */

typedef struct segment {
    const char *name, *label;
    int64_t low, high; /* visits or cents: [low, high); high < 0 means no bound */
} segment;

static const segment visit_segments[] = {
    {"no_stay", "No stay yet", 0, 1},
    {"first_time", "First-time (1 stay)", 1, 2},
    {"returning", "Returning (2-4 stays)", 2, 5},
    {"loyal", "Loyal (5 or more stays)", 5, -1},
};
static const segment spend_segments[] = {
    {"none", "No spend yet", 0, 1},
    {"under_500", "Under 500", 1, 50000},
    {"500_to_2000", "500 to 2,000", 50000, 200000},
    {"2000_to_5000", "2,000 to 5,000", 200000, 500000},
    {"5000_and_more", "5,000 and more", 500000, -1},
};

/* Guest indexes ordered by spend (descending), then id: the most valuable first. */
static _Thread_local const guests *sort_guests; /* routes run on several threads */
static int by_value(const void *a, const void *b)
{
    const guest_stat *x = &sort_guests->stats[*(const int *)a];
    const guest_stat *y = &sort_guests->stats[*(const int *)b];
    if (x->spend != y->spend) return x->spend > y->spend ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int in_segment(const guest_stat *s, const char *by, int k)
{
    if (by[1] == 'e') { /* services: category k, or none (k == N_CATEGORIES) */
        if (!s->visits) return 0;
        return k < N_CATEGORIES ? (s->categories >> k) & 1 : s->categories == 0;
    }
    const segment *seg = by[0] == 'v' ? &visit_segments[k] : &spend_segments[k];
    int64_t v = by[0] == 'v' ? s->visits : s->spend;
    return v >= seg->low && (seg->high < 0 || v < seg->high);
}

static int segments(crm_req *req, void *udata)
{
    (void)udata;
    int csv, limit, rc;
    const char *by = hotelp_host->req_query(req, "by");
    guests g = {0};
    int *order = NULL;
    if (!by) by = "visits";
    if (strcmp(by, "visits") != 0 && strcmp(by, "spend") != 0 && strcmp(by, "services") != 0)
        return hotelp_host->error_set(CRM_EINVALID, "by", "by is visits, spend or services");
    if ((rc = param_format(req, &csv)) != CRM_OK || (rc = param_limit(req, &limit)) != CRM_OK ||
        (rc = param_today(req, &g.today)) != CRM_OK ||
        (rc = guests_load(hotelp_host->req_ctx(req), &g, by[1] == 'e')) != CRM_OK)
        goto done;
    if (!(order = malloc((g.n ? g.n : 1) * sizeof *order))) {
        rc = no_memory();
        goto done;
    }
    for (size_t i = 0; i < g.n; i++) order[i] = (int)i;
    sort_guests = &g; /* the route runs on one thread; qsort has no argument for it */
    qsort(order, g.n, sizeof *order, by_value);
    int n_segments = by[0] == 'v'   ? (int)(sizeof visit_segments / sizeof visit_segments[0])
                     : by[1] == 'p' ? (int)(sizeof spend_segments / sizeof spend_segments[0])
                                    : N_CATEGORIES + 1;
    json_t *rows = json_array();
    for (int k = 0; k < n_segments; k++) {
        json_t *ids = json_array();
        long count = 0;
        for (size_t i = 0; i < g.n; i++) {
            const guest_stat *s = &g.stats[order[i]];
            if (!in_segment(s, by, k)) continue;
            if (count++ < limit) json_array_append_new(ids, json_integer(s->id));
        }
        const char *name = by[0] == 'v'   ? visit_segments[k].name
                           : by[1] == 'p' ? spend_segments[k].name
                           : k < N_CATEGORIES ? categories[k]
                                              : "no_services";
        const char *label = by[0] == 'v'   ? visit_segments[k].label
                            : by[1] == 'p' ? spend_segments[k].label
                            : k < N_CATEGORIES ? category_labels[k]
                                               : "Stayed, used no service";
        json_array_append_new(
            rows, json_pack("{s:s,s:s,s:I,s:f,s:o,s:b}", "segment", name, "label", label,
                            "guests", (json_int_t)count, "share_pct",
                            g.n ? rounded(100.0 * (double)count / (double)g.n) : 0.0, "ids", ids,
                            "more", count > limit));
    }
    rc = reply(req,
               json_pack("{s:s,s:s,s:I,s:i,s:o}", "report", "segments", "by", by, "guests",
                         (json_int_t)g.n, "limit", limit, "rows", rows),
               csv);
done:
    free(order);
    guests_free(&g);
    return rc;
}

/* ---- Best time to offer a stay ---- */

static json_t *months_rows(const guest_stat *s)
{
    json_t *rows = json_array();
    for (int m = 1; m <= 12; m++)
        if (s->stays[m - 1])
            json_array_append_new(rows, json_pack("{s:i,s:s,s:i,s:f,s:b}", "month", m,
                                                  "month_name", month_names[m - 1], "stays",
                                                  s->stays[m - 1], "weight",
                                                  rounded(s->weight[m - 1]), "usual",
                                                  is_usual(s, m)));
    return rows;
}

struct one_guest {
    guests *g;
    guest_stat *s;
    int32_t next_booking; /* the first booked arrival from today, or INT32_MAX */
};

static int one_guest_reservation(json_t *record, void *arg)
{
    struct one_guest *o = arg;
    const char *status = json_string_value(json_object_get(record, "status"));
    int32_t arrival = field_day(record, "arrival");
    if (status && strcmp(status, "booked") == 0 && arrival >= o->g->today &&
        arrival < o->next_booking)
        o->next_booking = arrival;
    return guests_reservation(record, o->g);
}

static int guest_best_time(crm_req *req, void *udata)
{
    (void)udata;
    crm_ctx *ctx = hotelp_host->req_ctx(req);
    int64_t id;
    int csv, rc;
    guests g = {0};
    json_t *guest = NULL;
    if ((rc = hotelp_id_param(req, "id", &id)) != CRM_OK ||
        (rc = param_format(req, &csv)) != CRM_OK || (rc = param_today(req, &g.today)) != CRM_OK ||
        (rc = hotelp_host->record_get(ctx, "hotel.guest", id, &guest)) != CRM_OK)
        goto done;
    struct one_guest o = {&g, guest_slot(&g, id), INT32_MAX};
    if (!o.s) {
        rc = no_memory();
        goto done;
    }
    g.closed = 1;
    json_t *q = json_pack("{s:I,s:s,s:s}", "guest", (json_int_t)id, "status__in",
                          "booked,checked_in,checked_out", "fields",
                          "id,guest,arrival,departure,status,folio_total,room_total,charges_total");
    rc = hotelp_each(ctx, "hotel.reservation", q, one_guest_reservation, &o);
    json_decref(q);
    if (rc != CRM_OK) goto done;
    guest_stat *s = &g.stats[0];
    int repeat = s->visits >= 2, best = best_month(s);
    json_t *usual = json_array(), *suggested = json_null(), *contact_on = json_null();
    for (int m = 1; m <= 12; m++)
        if (is_usual(s, m)) json_array_append_new(usual, json_integer(m));
    if (repeat && best) {
        /* the next time the month comes round after this one; contact two months before */
        int y, m;
        month_parts(g.today, &y, &m);
        int year = best > m ? y : y + 1;
        char first[11], contact[11];
        snprintf(first, sizeof first, "%04d-%02d-01", year, best);
        int32_t when = hotelp_day(first) - 60;
        hotelp_date(when > g.today ? when : g.today, contact);
        suggested = json_sprintf("%04d-%02d", year, best);
        contact_on = json_string(contact);
    }
    char next[11] = "";
    if (o.next_booking != INT32_MAX) hotelp_date(o.next_booking, next);
    json_t *out = json_pack("{s:s,s:I,s:O?,s:i,s:b,s:o,s:o,s:o,s:s?,s:o}", "report",
                            "guest-best-time", "guest", (json_int_t)id, "name",
                            json_object_get(guest, "name"), "visits", s->visits, "repeat", repeat,
                            "usual_months", usual, "suggested_month", suggested, "contact_on",
                            contact_on, "next_booking", *next ? next : NULL, "rows",
                            months_rows(s));
    rc = reply(req, out, csv);
done:
    json_decref(guest);
    guests_free(&g);
    return rc;
}

/* Offer candidates ordered by their weight for the month, then visits, then id. */
static _Thread_local int offer_month;
static int by_weight(const void *a, const void *b)
{
    const guest_stat *x = &sort_guests->stats[*(const int *)a];
    const guest_stat *y = &sort_guests->stats[*(const int *)b];
    double wx = x->weight[offer_month - 1], wy = y->weight[offer_month - 1];
    if (wx > wy + 1e-9 || wx < wy - 1e-9) return wx > wy ? -1 : 1;
    if (x->visits != y->visits) return x->visits > y->visits ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

struct names {
    json_t *by_id; /* "id" -> guest record */
};

static int add_name(json_t *record, void *arg)
{
    struct names *n = arg;
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)field_id(record, "id"));
    json_object_set(n->by_id, key, record);
    return CRM_OK;
}

static int offers_best_time(crm_req *req, void *udata)
{
    (void)udata;
    crm_ctx *ctx = hotelp_host->req_ctx(req);
    int csv, limit, rc, year = 0, month = 0;
    guests g = {0};
    int *order = NULL;
    struct names names = {json_object()};
    const char *text = hotelp_host->req_query(req, "month");
    char first[16] = "";
    int digits = text && strlen(text) == 7 && text[4] == '-';
    for (int i = 0; digits && i < 7; i++)
        digits = i == 4 || (text[i] >= '0' && text[i] <= '9');
    if (digits) snprintf(first, sizeof first, "%s-01", text);
    if (!digits || hotelp_day(first) == INT32_MIN) {
        rc = hotelp_host->error_set(CRM_EINVALID, "month", "month must be YYYY-MM");
        goto done;
    }
    year = atoi(text);
    month = atoi(text + 5);
    g.offer_year = year;
    g.offer_month = month;
    if ((rc = param_format(req, &csv)) != CRM_OK || (rc = param_limit(req, &limit)) != CRM_OK ||
        (rc = param_today(req, &g.today)) != CRM_OK || (rc = guests_load(ctx, &g, 0)) != CRM_OK)
        goto done;
    if (!(order = malloc((g.n ? g.n : 1) * sizeof *order))) {
        rc = no_memory();
        goto done;
    }
    size_t n = 0;
    long booked = 0;
    for (size_t i = 0; i < g.n; i++) {
        const guest_stat *s = &g.stats[i];
        if (s->visits < 2 || !is_usual(s, month)) continue;
        if (s->booked) { /* already coming that month: nothing to offer */
            booked++;
            continue;
        }
        order[n++] = (int)i;
    }
    sort_guests = &g;
    offer_month = month;
    qsort(order, n, sizeof *order, by_weight);
    size_t shown = n < (size_t)limit ? n : (size_t)limit;
    /* names and addresses of the guests shown, 100 a query */
    for (size_t start = 0; start < shown && rc == CRM_OK; start += 100) {
        char ids[100 * 21] = "";
        size_t len = 0;
        for (size_t i = start; i < shown && i < start + 100; i++)
            len += (size_t)snprintf(ids + len, sizeof ids - len, "%s%lld", len ? "," : "",
                                    (long long)g.stats[order[i]].id);
        json_t *q = json_pack("{s:s,s:s}", "id__in", ids, "fields", "id,name,email,language");
        rc = hotelp_each(ctx, "hotel.guest", q, add_name, &names);
        json_decref(q);
    }
    if (rc != CRM_OK) goto done;
    json_t *rows = json_array();
    for (size_t i = 0; i < shown; i++) {
        const guest_stat *s = &g.stats[order[i]];
        char key[24], last[11];
        snprintf(key, sizeof key, "%lld", (long long)s->id);
        hotelp_date(s->last, last);
        json_t *rec = json_object_get(names.by_id, key);
        json_array_append_new(
            rows, json_pack("{s:I,s:O?,s:O?,s:O?,s:i,s:i,s:f,s:s,s:o}", "guest",
                            (json_int_t)s->id, "name", json_object_get(rec, "name"), "email",
                            json_object_get(rec, "email"), "language",
                            json_object_get(rec, "language"), "visits", s->visits,
                            "stays_in_month", s->stays[month - 1], "weight",
                            rounded(s->weight[month - 1]), "last_stay", last, "spend",
                            crm_util_money(s->spend)));
    }
    rc = reply(req,
               json_pack("{s:s,s:s,s:s,s:I,s:I,s:i,s:o}", "report", "offers-best-time", "month",
                         text, "month_name", month_names[month - 1], "candidates", (json_int_t)n,
                         "already_booked", (json_int_t)booked, "limit", limit, "rows", rows),
               csv);
done:
    free(order);
    guests_free(&g);
    json_decref(names.by_id);
    return rc;
}

/* ---- Nightly reports: occupancy, ADR, RevPAR ---- */

struct nightly {
    int32_t from, to;
    idmap out_of_service; /* room ids */
    long rooms, available_rooms;
    long *occupied;   /* per day */
    int64_t *revenue; /* per day, cents */
    long skipped;     /* nights in rooms out of service */
};

static int nightly_room(json_t *record, void *arg)
{
    struct nightly *n = arg;
    const char *hk = json_string_value(json_object_get(record, "housekeeping"));
    n->rooms++;
    if (hk && strcmp(hk, "out_of_service") == 0) {
        if (idmap_put(&n->out_of_service, field_id(record, "id"), 1) != 0) return no_memory();
    } else {
        n->available_rooms++;
    }
    return CRM_OK;
}

static int nightly_night(json_t *record, void *arg)
{
    struct nightly *n = arg;
    int32_t day = field_day(record, "date");
    if (day < n->from || day > n->to) return CRM_OK;
    if (idmap_get(&n->out_of_service, field_id(record, "room")) >= 0) {
        n->skipped++;
        return CRM_OK;
    }
    n->occupied[day - n->from]++;
    n->revenue[day - n->from] += crm_util_cents(json_object_get(record, "rate"));
    return CRM_OK;
}

static int nightly_load(crm_ctx *ctx, struct nightly *n)
{
    size_t days = (size_t)(n->to - n->from + 1);
    n->occupied = calloc(days, sizeof *n->occupied);
    n->revenue = calloc(days, sizeof *n->revenue);
    if (!n->occupied || !n->revenue) return no_memory();
    json_t *q = json_pack("{s:s}", "fields", "id,housekeeping");
    int rc = hotelp_each(ctx, "hotel.room", q, nightly_room, n);
    json_decref(q);
    if (rc != CRM_OK) return rc;
    char from[11], to[11];
    hotelp_date(n->from, from);
    hotelp_date(n->to, to);
    /* in date order: the date index serves both the filter and each page's keyset */
    q = json_pack("{s:s,s:s,s:s,s:s}", "date__gte", from, "date__lte", to, "sort", "date",
                  "fields", "date,room,rate");
    rc = hotelp_each(ctx, "hotel.night", q, nightly_night, n);
    json_decref(q);
    return rc;
}

enum nightly_kind { OCCUPANCY, ADR, REVPAR };

static json_t *ratio(int64_t num_cents, long den) /* money per unit, or null */
{
    return den > 0 ? crm_util_money((num_cents + den / 2) / den) : json_null();
}

static json_t *nightly_row(int kind, const char *period, long available, long occupied,
                           int64_t revenue)
{
    json_t *row = json_pack("{s:s,s:I,s:I}", "period", period, "available", (json_int_t)available,
                            "occupied", (json_int_t)occupied);
    if (kind == OCCUPANCY)
        json_object_set_new(row, "occupancy_pct",
                            available ? json_real(rounded(100.0 * occupied / available))
                                      : json_null());
    else
        json_object_set_new(row, "revenue", crm_util_money(revenue));
    if (kind == ADR) json_object_set_new(row, "adr", ratio(revenue, occupied));
    if (kind == REVPAR) json_object_set_new(row, "revpar", ratio(revenue, available));
    return row;
}

static int nightly_report(crm_req *req, int kind)
{
    static const char *const names[] = {"occupancy", "adr", "revpar"};
    int csv, by_month, rc;
    int32_t today;
    struct nightly n = {0};
    if ((rc = param_format(req, &csv)) != CRM_OK || (rc = param_today(req, &today)) != CRM_OK ||
        (rc = param_range(req, today, &n.from, &n.to)) != CRM_OK ||
        (rc = param_by_month(req, &by_month)) != CRM_OK ||
        (rc = nightly_load(hotelp_host->req_ctx(req), &n)) != CRM_OK)
        goto done;
    json_t *rows = json_array();
    long available = 0, occupied = 0, bucket_available = 0, bucket_occupied = 0;
    int64_t revenue = 0, bucket_revenue = 0;
    for (int32_t day = n.from; day <= n.to; day++) {
        char date[11], next[11];
        hotelp_date(day, date);
        hotelp_date(day + 1, next);
        long occ = n.occupied[day - n.from];
        int64_t rev = n.revenue[day - n.from];
        available += n.available_rooms;
        occupied += occ;
        revenue += rev;
        bucket_available += n.available_rooms;
        bucket_occupied += occ;
        bucket_revenue += rev;
        /* a row per day, or per month (at the month's last day or the period's) */
        if (!by_month || day == n.to || strncmp(date, next, 7) != 0) {
            date[by_month ? 7 : 10] = 0;
            json_array_append_new(rows, nightly_row(kind, date, bucket_available, bucket_occupied,
                                                    bucket_revenue));
            bucket_available = bucket_occupied = 0;
            bucket_revenue = 0;
        }
    }
    char from[11], to[11];
    hotelp_date(n.from, from);
    hotelp_date(n.to, to);
    json_t *total = nightly_row(kind, "total", available, occupied, revenue);
    json_object_del(total, "period");
    json_t *out = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:o,s:o}", "report", names[kind],
                            "from", from, "to", to, "by", by_month ? "month" : "day", "rooms",
                            (json_int_t)n.rooms, "rooms_out_of_service",
                            (json_int_t)(n.rooms - n.available_rooms),
                            "nights_in_rooms_out_of_service", (json_int_t)n.skipped, "total",
                            total, "rows", rows);
    rc = reply(req, out, csv);
done:
    idmap_free(&n.out_of_service);
    free(n.occupied);
    free(n.revenue);
    return rc;
}

static int report_occupancy(crm_req *req, void *udata)
{
    (void)udata;
    return nightly_report(req, OCCUPANCY);
}

static int report_adr(crm_req *req, void *udata)
{
    (void)udata;
    return nightly_report(req, ADR);
}

static int report_revpar(crm_req *req, void *udata)
{
    (void)udata;
    return nightly_report(req, REVPAR);
}

/* ---- GET /reports/revenue-by-service ---- */

struct by_service {
    catalogue services;
    long *charges, *quantity; /* per catalogue position */
    int64_t *amount;
    long unknown;
};

static int service_charge(json_t *record, void *arg)
{
    struct by_service *b = arg;
    int i = idmap_get(&b->services.ids, field_id(record, "service"));
    if (i < 0) { /* a service the caller may not read */
        b->unknown++;
        return CRM_OK;
    }
    json_int_t qty = json_integer_value(json_object_get(record, "quantity"));
    b->charges[i]++;
    b->quantity[i] += qty > 0 ? qty : 1;
    b->amount[i] += crm_util_cents(json_object_get(record, "amount"));
    return CRM_OK;
}

static int report_revenue_by_service(crm_req *req, void *udata)
{
    (void)udata;
    crm_ctx *ctx = hotelp_host->req_ctx(req);
    int csv, rc;
    int32_t today, from, to;
    struct by_service b = {{{0}, NULL}, NULL, NULL, NULL, 0};
    if ((rc = param_format(req, &csv)) != CRM_OK || (rc = param_today(req, &today)) != CRM_OK ||
        (rc = param_range(req, today, &from, &to)) != CRM_OK ||
        (rc = catalogue_load(ctx, "hotel.service", "id,code,name,category", &b.services)) != CRM_OK)
        goto done;
    size_t n = json_array_size(b.services.records);
    b.charges = calloc(n + 1, sizeof *b.charges);
    b.quantity = calloc(n + 1, sizeof *b.quantity);
    b.amount = calloc(n + 1, sizeof *b.amount);
    if (!b.charges || !b.quantity || !b.amount) {
        rc = no_memory();
        goto done;
    }
    char start[24], end[24], from_text[11], to_text[11];
    hotelp_date(from, from_text);
    hotelp_date(to, to_text);
    hotelp_date(from, start);
    hotelp_date(to + 1, end);
    strcat(start, "T00:00:00Z");
    strcat(end, "T00:00:00Z");
    json_t *q = json_pack("{s:s,s:s,s:s,s:s}", "at__gte", start, "at__lt", end, "sort", "at",
                          "fields", "service,quantity,amount");
    rc = hotelp_each(ctx, "hotel.charge", q, service_charge, &b);
    json_decref(q);
    if (rc != CRM_OK) goto done;
    /* rows: services with charges, the largest amount first */
    json_t *rows = json_array();
    int64_t by_category[N_CATEGORIES] = {0}, total = 0;
    long category_charges[N_CATEGORIES] = {0}, charges = 0;
    for (;;) {
        size_t best = n;
        for (size_t i = 0; i < n; i++)
            if (b.charges[i] > 0 && (best == n || b.amount[i] > b.amount[best])) best = i;
        if (best == n) break;
        json_t *svc = json_array_get(b.services.records, best);
        const char *category = json_string_value(json_object_get(svc, "category"));
        int c = category_index(category);
        by_category[c] += b.amount[best];
        category_charges[c] += b.charges[best];
        total += b.amount[best];
        charges += b.charges[best];
        json_array_append_new(
            rows, json_pack("{s:O,s:O?,s:O?,s:s,s:I,s:I,s:o}", "service",
                            json_object_get(svc, "id"), "code", json_object_get(svc, "code"),
                            "name", json_object_get(svc, "name"), "category", categories[c],
                            "charges", (json_int_t)b.charges[best], "quantity",
                            (json_int_t)b.quantity[best], "amount", crm_util_money(b.amount[best])));
        b.charges[best] = 0; /* taken */
    }
    json_t *cats = json_array();
    for (int c = 0; c < N_CATEGORIES; c++)
        if (category_charges[c])
            json_array_append_new(cats, json_pack("{s:s,s:I,s:o}", "category", categories[c],
                                                  "charges", (json_int_t)category_charges[c],
                                                  "amount", crm_util_money(by_category[c])));
    rc = reply(req,
               json_pack("{s:s,s:s,s:s,s:I,s:o,s:o,s:o}", "report", "revenue-by-service", "from",
                         from_text, "to", to_text, "charges", (json_int_t)charges, "total",
                         crm_util_money(total), "categories", cats, "rows", rows),
               csv);
done:
    catalogue_free(&b.services);
    free(b.charges);
    free(b.quantity);
    free(b.amount);
    return rc;
}

/* ---- GET /reports/repeat-guests ---- */

struct repeat {
    int32_t from, to;
    idmap ids;       /* guest -> index */
    int32_t *first;  /* per guest: earliest arrival of any stay */
    int *in_period;  /* per guest: stays arriving in the period */
    size_t n, cap;
};

static int repeat_reservation(json_t *record, void *arg)
{
    struct repeat *r = arg;
    int64_t guest = field_id(record, "guest");
    int32_t arrival = field_day(record, "arrival");
    if (!guest || arrival == INT32_MIN) return CRM_OK;
    int i = idmap_get(&r->ids, guest);
    if (i < 0) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 1024;
            int32_t *first = realloc(r->first, cap * sizeof *first);
            if (first) r->first = first;
            int *in = first ? realloc(r->in_period, cap * sizeof *in) : NULL;
            if (!in) return no_memory();
            r->in_period = in;
            r->cap = cap;
        }
        if (idmap_put(&r->ids, guest, (int)r->n) != 0) return no_memory();
        i = (int)r->n++;
        r->first[i] = arrival;
        r->in_period[i] = 0;
    }
    if (arrival < r->first[i]) r->first[i] = arrival;
    if (arrival >= r->from && arrival <= r->to) r->in_period[i]++;
    return CRM_OK;
}

static int report_repeat_guests(crm_req *req, void *udata)
{
    (void)udata;
    int csv, rc;
    int32_t today;
    struct repeat r = {0};
    if ((rc = param_format(req, &csv)) != CRM_OK || (rc = param_today(req, &today)) != CRM_OK ||
        (rc = param_range(req, today, &r.from, &r.to)) != CRM_OK)
        goto done;
    char from[11], to[11];
    hotelp_date(r.from, from);
    hotelp_date(r.to, to);
    /* stays that took place or will (not cancelled, not no-shows) arriving by the period's end */
    json_t *q = json_pack("{s:s,s:s,s:s}", "status__in", "booked,checked_in,checked_out",
                          "arrival__lte", to, "fields", "guest,arrival");
    rc = hotelp_each(hotelp_host->req_ctx(req), "hotel.reservation", q, repeat_reservation, &r);
    json_decref(q);
    if (rc != CRM_OK) goto done;
    long visitors = 0, returning = 0, several = 0;
    for (size_t i = 0; i < r.n; i++) {
        if (!r.in_period[i]) continue;
        visitors++;
        if (r.first[i] < r.from) returning++;
        if (r.in_period[i] > 1) several++;
    }
    json_t *rows = json_pack(
        "[{s:s,s:s,s:I,s:I,s:I,s:o,s:I}]", "from", from, "to", to, "guests", (json_int_t)visitors,
        "returning", (json_int_t)returning, "new", (json_int_t)(visitors - returning),
        "repeat_pct", visitors ? json_real(rounded(100.0 * returning / visitors)) : json_null(),
        "several_stays_in_period", (json_int_t)several);
    json_t *row = json_array_get(rows, 0);
    rc = reply(req,
               json_pack("{s:s,s:s,s:s,s:O,s:O,s:O,s:O,s:o}", "report", "repeat-guests", "from",
                         from, "to", to, "guests", json_object_get(row, "guests"), "returning",
                         json_object_get(row, "returning"), "new", json_object_get(row, "new"),
                         "repeat_pct", json_object_get(row, "repeat_pct"), "rows", rows),
               csv);
done:
    idmap_free(&r.ids);
    free(r.first);
    free(r.in_period);
    return rc;
}

int hotelp_insight_init(void)
{
    static const struct {
        const char *path;
        crm_route_handler fn;
    } routes[] = {
        {"/guests/{id}/history", guest_history},
        {"/guests/{id}/best-time", guest_best_time},
        {"/offers/best-time", offers_best_time},
        {"/segments", segments},
        {"/reports/occupancy", report_occupancy},
        {"/reports/adr", report_adr},
        {"/reports/revpar", report_revpar},
        {"/reports/revenue-by-service", report_revenue_by_service},
        {"/reports/repeat-guests", report_repeat_guests},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int rc = hotelp_host->route(hotelp_self, "GET", routes[i].path, 0, routes[i].fn, NULL);
        if (rc != CRM_OK) return rc;
    }
    return CRM_OK;
}
