/*
 * booking.c — prices, availability, booking, and the nights that make a double
 * booking impossible.
 *
 * The invariant: a reservation that holds its room (booked, checked_in, checked_out)
 * has exactly one live hotel.night per night of [arrival, departure), keyed
 * "<room id>:<YYYY-MM-DD>". The key is unique over live records, so the database
 * itself refuses a second booking of a room-night, whatever the concurrency and
 * whichever way the reservation was written: this plugin's routes, POST
 * /api/v1/records/hotel.reservation, a Lua rule, `crm demo`, an import. That is
 * why the work is in handlers of hotel.reservation's events and not in a route:
 *   - before created / updated: check the input (dates, party, room), compute
 *     nights, rate (average per night), room_total (sum of the nightly rates:
 *     the room type's base_rate, or the latest-created hotel.rate covering the
 *     night) and currency. A user books (status "booked"); the system (demo,
 *     imports of history) may create any status.
 *   - after created / updated / deleted / restored, in the same transaction:
 *     write, re-write or free the nights. A unique conflict comes back as 409
 *     naming the reservation that holds the night, and the whole write rolls back.
 * Nights are plugin bookkeeping, written as the system (host->as_system) so a
 * role that may book need not be granted nights, and the conflict check sees
 * every reservation whatever the caller may read.
 *
 *   GET  /api/v1/x/hotel/availability?arrival=&departure=&guests=[&room_type=]
 *   POST /api/v1/x/hotel/bookings
 */
#include "hotel_int.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H hotelp_host

/* A stay as the nights need it: checked input plus what the room and its type say. */
struct stay {
    int64_t room, room_type, capacity;
    char number[24];       /* the room's number, for messages */
    char housekeeping[24]; /* clean | dirty | out_of_service */
    char currency[8];
    int32_t arrival; /* day numbers; the nights are [arrival, arrival + nights) */
    int nights;
    int64_t adults, children;
    int64_t rates[HOTELP_MAX_NIGHTS]; /* cents, per night */
    int64_t total;
};

int hotelp_holds_nights(const char *status)
{
    return status && (strcmp(status, "booked") == 0 || strcmp(status, "checked_in") == 0 ||
                      strcmp(status, "checked_out") == 0);
}

static const char *str(json_t *record, const char *field)
{
    return json_string_value(json_object_get(record, field));
}

static int64_t id_of(json_t *record, const char *field)
{
    int64_t id = 0;
    return crm_util_json_id(json_object_get(record, field), &id) ? id : 0;
}

/* ---- Rates ---- */

struct rate_walk {
    int32_t arrival;
    int nights;
    int64_t *rates;
};

/* Overrides come sorted by id: a later-created one overwrites the nights it covers. */
static int apply_rate(json_t *rate, void *arg)
{
    struct rate_walk *w = arg;
    int32_t from = hotelp_day(str(rate, "starts")), to = hotelp_day(str(rate, "ends"));
    if (from == INT32_MIN || to == INT32_MIN) return CRM_OK;
    int64_t cents = crm_util_cents(json_object_get(rate, "rate"));
    for (int32_t d = from < w->arrival ? w->arrival : from; d <= to && d < w->arrival + w->nights;
         d++)
        w->rates[d - w->arrival] = cents;
    return CRM_OK;
}

int hotelp_night_rates(crm_ctx *ctx, int64_t room_type, int32_t arrival, int nights, int64_t *rates)
{
    json_t *type = NULL;
    char first[11], last[11];
    int rc = H->record_get(ctx, "hotel.room_type", room_type, &type);
    if (rc != CRM_OK) return rc;
    int64_t base = crm_util_cents(json_object_get(type, "base_rate"));
    json_decref(type);
    for (int i = 0; i < nights; i++)
        rates[i] = base;
    hotelp_date(arrival, first);
    hotelp_date(arrival + nights - 1, last);
    json_t *q =
        json_pack("{s:I,s:s,s:s,s:s,s:s}", "room_type", (json_int_t)room_type, "starts__lte", last,
                  "ends__gte", first, "sort", "id", "fields", "starts,ends,rate");
    struct rate_walk w = {arrival, nights, rates};
    rc = hotelp_each(ctx, "hotel.rate", q, apply_rate, &w);
    json_decref(q);
    return rc;
}

/* ---- Checking a reservation's input ---- */

static int date_field(json_t *rec, const char *name, int32_t *out)
{
    json_t *v = json_object_get(rec, name);
    if (!v || json_is_null(v))
        return H->error_set(CRM_EINVALID, name, "%s is required (a date YYYY-MM-DD)", name);
    int32_t day = json_is_string(v) ? hotelp_day(json_string_value(v)) : INT32_MIN;
    if (day == INT32_MIN)
        return H->error_set(CRM_EINVALID, name, "%s must be a date YYYY-MM-DD", name);
    *out = day;
    return CRM_OK;
}

static int count_field(json_t *rec, const char *name, int64_t min, int64_t dflt, int64_t *out)
{
    json_t *v = json_object_get(rec, name);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return CRM_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > 1000)
        return H->error_set(CRM_EINVALID, name, "%s must be a whole number from %lld to 1000", name,
                            (long long)min);
    *out = json_integer_value(v);
    return CRM_OK;
}

struct check {
    crm_ctx *caller;
    json_t *rec;
    bool new_room; /* a booking or a move: the room must be in service */
    struct stay *stay;
};

/* As the system: the room and its type exist for the price whatever the caller reads. */
static int load_stay(crm_ctx *sys, void *arg)
{
    struct check *c = arg;
    struct stay *s = c->stay;
    json_t *room = NULL, *type = NULL;
    int32_t departure;
    int rc;
    if ((rc = date_field(c->rec, "arrival", &s->arrival)) != CRM_OK ||
        (rc = date_field(c->rec, "departure", &departure)) != CRM_OK)
        return rc;
    if (departure <= s->arrival)
        return H->error_set(CRM_EINVALID, "departure", "departure (%s) must be after arrival (%s)",
                            str(c->rec, "departure"), str(c->rec, "arrival"));
    if (departure - s->arrival > HOTELP_MAX_NIGHTS)
        return H->error_set(CRM_EINVALID, "departure",
                            "a stay is at most %d nights; %s to %s is %d", HOTELP_MAX_NIGHTS,
                            str(c->rec, "arrival"), str(c->rec, "departure"),
                            (int)(departure - s->arrival));
    s->nights = (int)(departure - s->arrival);
    if ((rc = count_field(c->rec, "adults", 1, 1, &s->adults)) != CRM_OK ||
        (rc = count_field(c->rec, "children", 0, 0, &s->children)) != CRM_OK)
        return rc;
    json_t *room_id = json_object_get(c->rec, "room");
    if (!room_id || json_is_null(room_id))
        return H->error_set(CRM_EINVALID, "room", "room is required (a hotel.room id)");
    if (!crm_util_json_id(room_id, &s->room))
        return H->error_set(CRM_EINVALID, "room", "room must be a hotel.room id");
    if ((rc = H->record_get(sys, "hotel.room", s->room, &room)) != CRM_OK) {
        if (rc == CRM_ENOTFOUND)
            rc = H->error_set(CRM_EINVALID, "room", "room %lld does not exist", (long long)s->room);
        goto done;
    }
    snprintf(s->number, sizeof s->number, "%s", str(room, "number") ? str(room, "number") : "?");
    snprintf(s->housekeeping, sizeof s->housekeeping, "%s",
             str(room, "housekeeping") ? str(room, "housekeeping") : "clean");
    s->room_type = id_of(room, "room_type");
    if (c->new_room && strcmp(s->housekeeping, "out_of_service") == 0) {
        rc = H->error_set(CRM_EINVALID, "room", "room %s is out of service: choose another room",
                          s->number);
        goto done;
    }
    if ((rc = H->record_get(sys, "hotel.room_type", s->room_type, &type)) != CRM_OK) goto done;
    s->capacity = json_integer_value(json_object_get(type, "capacity"));
    snprintf(s->currency, sizeof s->currency, "%s",
             str(type, "currency") ? str(type, "currency") : "EUR");
    if (s->adults + s->children > s->capacity) {
        rc = H->error_set(CRM_EINVALID, "adults",
                          "room %s (%s) sleeps %lld; %lld adults and %lld children do not fit",
                          s->number, str(type, "name") ? str(type, "name") : "?",
                          (long long)s->capacity, (long long)s->adults, (long long)s->children);
        goto done;
    }
    if ((rc = hotelp_night_rates(sys, s->room_type, s->arrival, s->nights, s->rates)) != CRM_OK)
        goto done;
    s->total = 0;
    for (int i = 0; i < s->nights; i++)
        s->total += s->rates[i];
done:
    json_decref(room);
    json_decref(type);
    return rc;
}

/* Companions: a list of other guests' ids (at most 20, each a live hotel.guest). */
static int check_companions(crm_ctx *sys, json_t *rec)
{
    json_t *list = json_object_get(rec, "companions"), *v, *g = NULL;
    size_t i;
    if (!list || json_is_null(list)) return CRM_OK;
    if (!json_is_array(list) || json_array_size(list) > 20)
        return H->error_set(CRM_EINVALID, "companions",
                            "companions must be a list of at most 20 hotel.guest ids");
    json_array_foreach(list, i, v)
    {
        int64_t id;
        if (!crm_util_json_id(v, &id))
            return H->error_set(CRM_EINVALID, "companions",
                                "companions[%zu] must be a hotel.guest id", i);
        int rc = H->record_get(sys, "hotel.guest", id, &g);
        json_decref(g);
        g = NULL;
        if (rc == CRM_ENOTFOUND)
            return H->error_set(CRM_EINVALID, "companions",
                                "companions[%zu]: guest %lld does not exist", i, (long long)id);
        if (rc != CRM_OK) return rc;
    }
    return CRM_OK;
}

static int check_stay(crm_ctx *ctx, json_t *rec, bool new_room, struct stay *s)
{
    struct check c = {ctx, rec, new_room, s};
    return H->as_system(ctx, load_stay, &c);
}

static int companions_sys(crm_ctx *sys, void *arg)
{
    return check_companions(sys, arg);
}

/* Write what check_stay computed into the record about to be stored. */
static void set_price(json_t *rec, const struct stay *s)
{
    int64_t avg = (s->total + s->nights / 2) / s->nights;
    json_object_set_new(rec, "nights", json_integer(s->nights));
    json_object_set_new(rec, "room_total", crm_util_money(s->total));
    json_object_set_new(rec, "rate", crm_util_money(avg));
    json_object_set_new(rec, "currency", json_string(s->currency));
    json_object_set_new(rec, "adults", json_integer(s->adults));
    json_object_set_new(rec, "children", json_integer(s->children));
}

/* ---- Nights ---- */

struct nights_job {
    crm_ctx *caller;
    int64_t reservation;
    json_t *rec;
};

/* The 409 of a taken night, naming the reservation holding it when the caller may read it. */
static int night_conflict(crm_ctx *sys, crm_ctx *caller, const char *key, const char *number,
                          const char *date)
{
    json_t *q = json_pack("{s:s,s:i,s:s}", "key", key, "limit", 1, "fields", "reservation");
    json_t *page = NULL, *holder = NULL;
    int64_t other = 0;
    if (H->record_find(sys, "hotel.night", q, &page) == CRM_OK)
        other = id_of(json_array_get(json_object_get(page, "data"), 0), "reservation");
    json_decref(q);
    json_decref(page);
    if (other && H->record_get(caller, "hotel.reservation", other, &holder) == CRM_OK) {
        int rc = H->error_set(CRM_ECONFLICT, "room",
                              "room %s is already booked on %s by reservation %lld "
                              "(arrival %s, departure %s)",
                              number, date, (long long)other, str(holder, "arrival"),
                              str(holder, "departure"));
        json_decref(holder);
        return rc;
    }
    return H->error_set(CRM_ECONFLICT, "room", "room %s is already booked on %s", number, date);
}

static int write_nights(crm_ctx *sys, void *arg)
{
    struct nights_job *j = arg;
    struct stay *s = calloc(1, sizeof *s);
    struct check c = {j->caller, j->rec, false, s};
    int rc = s ? load_stay(sys, &c) : H->error_set(CRM_EINTERNAL, NULL, "out of memory");
    for (int i = 0; rc == CRM_OK && i < s->nights; i++) {
        char date[11], key[48];
        hotelp_date(s->arrival + i, date);
        snprintf(key, sizeof key, "%lld:%s", (long long)s->room, date);
        json_t *night = json_pack("{s:s,s:I,s:s,s:I,s:o}", "key", key, "room", (json_int_t)s->room,
                                  "date", date, "reservation", (json_int_t)j->reservation, "rate",
                                  crm_util_money(s->rates[i]));
        rc = H->record_create(sys, "hotel.night", night, NULL);
        json_decref(night);
        if (rc == CRM_ECONFLICT) rc = night_conflict(sys, j->caller, key, s->number, date);
    }
    free(s);
    return rc;
}

static int collect_id(json_t *record, void *arg)
{
    json_array_append(arg, json_object_get(record, "id"));
    return CRM_OK;
}

/* Soft-delete the reservation's live nights: the keys are free again. */
static int free_nights(crm_ctx *sys, void *arg)
{
    struct nights_job *j = arg;
    json_t *ids = json_array(), *v;
    json_t *q = json_pack("{s:I,s:s}", "reservation", (json_int_t)j->reservation, "fields", "id");
    int rc = hotelp_each(sys, "hotel.night", q, collect_id, ids);
    size_t i;
    json_array_foreach(ids, i, v)
    {
        if (rc == CRM_OK) rc = H->record_delete(sys, "hotel.night", json_integer_value(v));
    }
    json_decref(q);
    json_decref(ids);
    return rc;
}

static int rewrite_nights(crm_ctx *sys, void *arg)
{
    int rc = free_nights(sys, arg);
    return rc == CRM_OK ? write_nights(sys, arg) : rc;
}

/* ---- Reservation handlers ---- */

static int reservation_before_create(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    json_t *rec = H->event_record(ev);
    const char *status = str(rec, "status");
    bool system = H->ctx_user(ctx) == 0;
    if (!status)
        return H->error_set(CRM_EINVALID, "status",
                            "status must be booked, checked_in, checked_out, cancelled or no_show");
    if (!system && strcmp(status, "booked") != 0)
        return H->error_set(CRM_EINVALID, "status",
                            "a new reservation is \"booked\"; it moves on by check-in, "
                            "cancellation or no-show");
    if (!system) { /* the folio and the stay's times are the state machine's to write */
        static const char *const computed[] = {"charges_total", "folio_total", "checked_in_at",
                                               "checked_out_at", "cancelled_at"};
        for (size_t i = 0; i < sizeof computed / sizeof computed[0]; i++)
            json_object_set_new(rec, computed[i], json_null());
        json_object_set_new(rec, "folio_closed", json_false());
    }
    struct stay *s = calloc(1, sizeof *s);
    if (!s) return H->error_set(CRM_EINTERNAL, NULL, "out of memory");
    int rc = check_stay(ctx, rec, strcmp(status, "booked") == 0, s);
    if (rc == CRM_OK) rc = H->as_system(ctx, companions_sys, rec);
    if (rc == CRM_OK) set_price(rec, s);
    free(s);
    return rc;
}

static int reservation_after_create(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    json_t *rec = H->event_record(ev);
    if (!hotelp_holds_nights(str(rec, "status"))) return CRM_OK; /* cancelled, no_show */
    struct nights_job j = {ctx, H->event_id(ev), rec};
    return H->as_system(ctx, write_nights, &j);
}

/* Whether `field` differs between the record about to be written and the old one. */
static bool differs(json_t *rec, json_t *old, const char *field)
{
    json_t *a = json_object_get(rec, field), *b = json_object_get(old, field);
    int64_t x, y;
    if (crm_util_json_id(a, &x) && crm_util_json_id(b, &y)) return x != y;
    return !json_equal(a ? a : json_null(), b ? b : json_null());
}

static const char *const stay_fields[] = {"room", "arrival", "departure"};

static int reservation_before_update(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    json_t *rec = H->event_record(ev), *old = H->event_old(ev);
    const char *from = str(old, "status"), *to = str(rec, "status");
    const char *moved = NULL;
    for (size_t i = 0; i < sizeof stay_fields / sizeof stay_fields[0] && !moved; i++)
        if (differs(rec, old, stay_fields[i])) moved = stay_fields[i];
    bool party = differs(rec, old, "adults") || differs(rec, old, "children");
    if (moved && !(from && to && strcmp(from, "booked") == 0 && strcmp(to, "booked") == 0))
        return H->error_set(CRM_EINVALID, moved,
                            "%s can change only while the reservation stays booked (it is %s)",
                            moved, from ? from : "?");
    if (differs(rec, old, "companions")) {
        int rc = H->as_system(ctx, companions_sys, rec);
        if (rc != CRM_OK) return rc;
    }
    if (!moved) {
        /* Derived fields stay derived, and a price once agreed stays: nights and prices
         * follow a change of room or dates only (not a new rate, not a bigger party). */
        static const char *const derived[] = {"nights", "rate", "room_total", "currency"};
        for (size_t i = 0; i < sizeof derived / sizeof derived[0]; i++)
            json_object_set(rec, derived[i],
                            json_object_get(old, derived[i]) ? json_object_get(old, derived[i])
                                                             : json_null());
        if (!party) return CRM_OK;
    }
    struct stay *s = calloc(1, sizeof *s);
    if (!s) return H->error_set(CRM_EINTERNAL, NULL, "out of memory");
    int rc = check_stay(ctx, rec, differs(rec, old, "room"), s);
    if (rc == CRM_OK && moved) set_price(rec, s);
    free(s);
    return rc;
}

static int reservation_after_update(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    json_t *rec = H->event_record(ev), *old = H->event_old(ev);
    bool held = hotelp_holds_nights(str(old, "status")),
         holds = hotelp_holds_nights(str(rec, "status"));
    struct nights_job j = {ctx, H->event_id(ev), rec};
    if (held && !holds) return H->as_system(ctx, free_nights, &j); /* cancelled, no_show */
    if (!held && holds) return H->as_system(ctx, write_nights, &j);
    bool moved = false;
    for (size_t i = 0; i < sizeof stay_fields / sizeof stay_fields[0]; i++)
        moved = moved || differs(rec, old, stay_fields[i]);
    return holds && moved ? H->as_system(ctx, rewrite_nights, &j) : CRM_OK;
}

/* A deleted reservation frees its room; restored, it takes the nights back (or 409). */
static int reservation_after_delete(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    struct nights_job j = {ctx, H->event_id(ev), H->event_record(ev)};
    return H->as_system(ctx, free_nights, &j);
}

static int reservation_after_restore(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    json_t *rec = H->event_record(ev);
    if (!hotelp_holds_nights(str(rec, "status"))) return CRM_OK;
    struct nights_job j = {ctx, H->event_id(ev), rec};
    return H->as_system(ctx, write_nights, &j);
}

/* Nights are this file's bookkeeping, kept in step with the reservations: a user (even
 * one granted hotel.night) books, moves or cancels the reservation instead. */
static int night_guard(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ev;
    (void)udata;
    if (H->ctx_user(ctx) == 0) return CRM_OK;
    return H->error_set(CRM_EDENIED, NULL,
                        "nights follow their reservation: book, move or cancel the reservation "
                        "instead of writing hotel.night");
}

/* ---- Shared by the routes ---- */

/* The query parameter `name` as a date (400 naming it). */
static int query_date(crm_req *req, const char *name, int32_t *out)
{
    const char *v = H->req_query(req, name);
    if (!v || !*v) return H->error_set(CRM_EINVALID, name, "?%s=YYYY-MM-DD is required", name);
    if ((*out = hotelp_day(v)) == INT32_MIN)
        return H->error_set(CRM_EINVALID, name, "%s must be a date YYYY-MM-DD", name);
    return CRM_OK;
}

/* Sorted ids, for membership tests over a few thousand rooms. */
struct idset {
    int64_t *ids;
    size_t n, cap;
};

static int add_room_id(json_t *night, void *arg)
{
    struct idset *set = arg;
    int64_t id = id_of(night, "room");
    if (!id) return CRM_OK;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 256;
        int64_t *ids = realloc(set->ids, cap * sizeof *ids);
        if (!ids) return H->error_set(CRM_EINTERNAL, NULL, "out of memory");
        set->ids = ids;
        set->cap = cap;
    }
    set->ids[set->n++] = id;
    return CRM_OK;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static bool idset_has(const struct idset *set, int64_t id)
{
    return set->n && bsearch(&id, set->ids, set->n, sizeof id, cmp_id) != NULL;
}

/* The rooms with a live night in [arrival, arrival + nights), read as `ctx`. */
static int busy_rooms(crm_ctx *ctx, int32_t arrival, int nights, struct idset *busy)
{
    char first[11], end[11];
    hotelp_date(arrival, first);
    hotelp_date(arrival + nights, end);
    json_t *q = json_pack("{s:s,s:s,s:s}", "date__gte", first, "date__lt", end, "fields", "room");
    int rc = hotelp_each(ctx, "hotel.night", q, add_room_id, busy);
    json_decref(q);
    if (rc == CRM_OK && busy->n) qsort(busy->ids, busy->n, sizeof *busy->ids, cmp_id);
    return rc;
}

/* ---- GET /availability ---- */

struct type_offer {
    json_t *type;  /* borrowed from the page */
    json_t *rooms; /* free rooms */
    int64_t *rates;
};

struct avail {
    struct type_offer *offers;
    size_t n;
    const struct idset *busy;
};

static int offer_room(json_t *room, void *arg)
{
    struct avail *a = arg;
    int64_t type = id_of(room, "room_type"), id = id_of(room, "id");
    if (idset_has(a->busy, id)) return CRM_OK;
    for (size_t i = 0; i < a->n; i++)
        if (id_of(a->offers[i].type, "id") == type) {
            json_object_del(room, "room_type");
            json_array_append(a->offers[i].rooms, room);
            break;
        }
    return CRM_OK;
}

static int availability_route(crm_req *req, void *udata)
{
    (void)udata;
    crm_ctx *ctx = H->req_ctx(req);
    int32_t arrival, departure;
    int64_t guests = 1, only_type = 0;
    int rc;
    struct idset busy = {0};
    struct avail a = {0};
    json_t *types = NULL, *q = NULL, *out = NULL;
    if ((rc = query_date(req, "arrival", &arrival)) != CRM_OK ||
        (rc = query_date(req, "departure", &departure)) != CRM_OK)
        return rc;
    if (departure <= arrival)
        return H->error_set(CRM_EINVALID, "departure", "departure must be after arrival");
    if (departure - arrival > HOTELP_MAX_NIGHTS)
        return H->error_set(CRM_EINVALID, "departure", "a stay is at most %d nights",
                            HOTELP_MAX_NIGHTS);
    const char *g = H->req_query(req, "guests");
    if (g && (!crm_util_parse_id(g, &guests) || guests > 1000))
        return H->error_set(CRM_EINVALID, "guests", "guests must be a whole number from 1 to 1000");
    const char *t = H->req_query(req, "room_type");
    if (t && !crm_util_parse_id(t, &only_type))
        return H->error_set(CRM_EINVALID, "room_type", "room_type must be a hotel.room_type id");
    int nights = (int)(departure - arrival);

    q = json_pack("{s:I,s:s,s:i}", "capacity__gte", (json_int_t)guests, "sort", "base_rate,id",
                  "limit", 1000);
    if (only_type) json_object_set_new(q, "id", json_integer(only_type));
    if ((rc = H->record_find(ctx, "hotel.room_type", q, &types)) != CRM_OK) goto done;
    json_decref(q);
    q = NULL;
    json_t *list = json_object_get(types, "data"), *type;
    if (only_type && json_array_size(list) == 0) {
        json_t *one = NULL;
        rc = H->record_get(ctx, "hotel.room_type", only_type, &one);
        json_decref(one);
        if (rc == CRM_OK) goto reply; /* it exists, it is too small: nothing to offer */
        goto done;
    }
    a.n = json_array_size(list);
    a.offers = calloc(a.n ? a.n : 1, sizeof *a.offers);
    if (!a.offers) {
        rc = H->error_set(CRM_EINTERNAL, NULL, "out of memory");
        goto done;
    }
    size_t i;
    json_array_foreach(list, i, type)
    {
        a.offers[i].type = type;
        a.offers[i].rooms = json_array();
        a.offers[i].rates = calloc((size_t)nights, sizeof(int64_t));
        if (!a.offers[i].rates) {
            rc = H->error_set(CRM_EINTERNAL, NULL, "out of memory");
            goto done;
        }
        if ((rc = hotelp_night_rates(ctx, id_of(type, "id"), arrival, nights, a.offers[i].rates)) !=
            CRM_OK)
            goto done;
    }
    if ((rc = busy_rooms(ctx, arrival, nights, &busy)) != CRM_OK) goto done;
    a.busy = &busy;
    q = json_pack("{s:s,s:s,s:s}", "housekeeping__ne", "out_of_service", "sort", "number", "fields",
                  "id,number,floor,room_type,housekeeping");
    if (a.n && (rc = hotelp_each(ctx, "hotel.room", q, offer_room, &a)) != CRM_OK) goto done;
reply:
    out = json_pack("{s:s,s:s,s:i,s:I,s:[]}", "arrival", H->req_query(req, "arrival"), "departure",
                    H->req_query(req, "departure"), "nights", nights, "guests", (json_int_t)guests,
                    "room_types");
    for (i = 0; i < a.n; i++) {
        struct type_offer *o = &a.offers[i];
        if (json_array_size(o->rooms) == 0) continue;
        json_t *nightly = json_array();
        int64_t total = 0;
        for (int n = 0; n < nights; n++) {
            char date[11];
            hotelp_date(arrival + n, date);
            json_array_append_new(
                nightly, json_pack("{s:s,s:o}", "date", date, "rate", crm_util_money(o->rates[n])));
            total += o->rates[n];
        }
        json_array_append_new(
            json_object_get(out, "room_types"),
            json_pack("{s:O,s:O,s:O,s:O,s:O,s:o,s:o,s:o,s:I,s:O}", "room_type",
                      json_object_get(o->type, "id"), "code", json_object_get(o->type, "code"),
                      "name", json_object_get(o->type, "name"), "capacity",
                      json_object_get(o->type, "capacity"), "currency",
                      json_object_get(o->type, "currency"), "nightly", nightly, "total",
                      crm_util_money(total), "rate", crm_util_money((total + nights / 2) / nights),
                      "available", (json_int_t)json_array_size(o->rooms), "rooms", o->rooms));
    }
    rc = H->reply_json(req, 200, out);
    out = NULL;
done:
    for (i = 0; i < a.n && a.offers; i++) {
        json_decref(a.offers[i].rooms);
        free(a.offers[i].rates);
    }
    free(a.offers);
    free(busy.ids);
    json_decref(types);
    json_decref(q);
    json_decref(out);
    return rc;
}

/* ---- POST /bookings ---- */

static const char *const booking_keys[] = {"guest",      "room",   "room_type", "arrival",
                                           "departure",  "adults", "children",  "channel",
                                           "companions", "notes"};
static const char *const guest_keys[] = {"name",     "email",       "phone",       "birthday",
                                         "language", "nationality", "preferences", "notes"};

static int known_keys(json_t *obj, const char *const *keys, size_t n, const char *prefix)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        size_t i = 0;
        while (i < n && strcmp(key, keys[i]) != 0)
            i++;
        if (i == n) {
            char field[300];
            snprintf(field, sizeof field, "%s%.200s", prefix, key);
            return H->error_set(CRM_EINVALID, field, "unknown field \"%s\"", field);
        }
    }
    return CRM_OK;
}

/* A kernel error about a new guest's or contact's field, renamed "guest.<field>". */
static int guest_error(int rc)
{
    const crm_error *e = H->error_last();
    char field[80], message[600];
    if (rc != CRM_EINVALID) return rc;
    snprintf(field, sizeof field, "guest%s%s", e->field ? "." : "", e->field ? e->field : "");
    snprintf(message, sizeof message, "guest: %s", e->message);
    return H->error_set(rc, field, "%s", message);
}

/* The first record of `type` whose `field` equals `value` (0: none), read as ctx. */
static int find_one(crm_ctx *ctx, const char *type, const char *field, const char *value,
                    int64_t *out)
{
    json_t *q =
        json_pack("{s:s,s:i,s:s,s:s}", field, value, "limit", 1, "fields", "id", "sort", "id");
    json_t *page = NULL;
    int rc = H->record_find(ctx, type, q, &page);
    *out = rc == CRM_OK ? id_of(json_array_get(json_object_get(page, "data"), 0), "id") : 0;
    json_decref(q);
    json_decref(page);
    return rc;
}

/*
 * A new guest {name, email, ...}: the guest with that e-mail when there is one; else a
 * hotel.guest linked to the crm.contact with that e-mail, or to a new contact.
 */
static int new_guest(crm_ctx *ctx, json_t *spec, int64_t *out)
{
    int rc;
    int64_t contact = 0;
    json_t *created = NULL, *fields = NULL;
    const char *name = str(spec, "name"), *email = str(spec, "email");
    if ((rc = known_keys(spec, guest_keys, sizeof guest_keys / sizeof guest_keys[0], "guest.")))
        return rc;
    if (!name || !*name)
        return H->error_set(CRM_EINVALID, "guest.name", "a new guest needs a name");
    if (json_object_get(spec, "email") && !json_is_null(json_object_get(spec, "email")) && !email)
        return H->error_set(CRM_EINVALID, "guest.email", "guest.email must be an e-mail address");
    if (email && *email) {
        if ((rc = find_one(ctx, "hotel.guest", "email", email, out)) != CRM_OK)
            return guest_error(rc);
        if (*out) return CRM_OK;
        if ((rc = find_one(ctx, "crm.contact", "email", email, &contact)) != CRM_OK)
            return guest_error(rc);
    }
    if (!contact) { /* a contact "First Last": the last word is the family name */
        const char *space = strrchr(name, ' ');
        fields = json_object();
        if (space && space != name && space[1]) {
            json_object_set_new(fields, "first_name", json_stringn(name, (size_t)(space - name)));
            json_object_set_new(fields, "last_name", json_string(space + 1));
        } else {
            json_object_set_new(fields, "first_name", json_string(name));
        }
        static const char *const copied[] = {"email", "phone", "birthday", "language"};
        for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++)
            if (json_object_get(spec, copied[i]))
                json_object_set(fields, copied[i], json_object_get(spec, copied[i]));
        rc = H->record_create(ctx, "crm.contact", fields, &created);
        json_decref(fields);
        fields = NULL;
        if (rc != CRM_OK) return guest_error(rc);
        contact = id_of(created, "id");
        json_decref(created);
        created = NULL;
    }
    fields = json_deep_copy(spec);
    json_object_set_new(fields, "contact", json_integer(contact));
    rc = H->record_create(ctx, "hotel.guest", fields, &created);
    json_decref(fields);
    if (rc != CRM_OK) return guest_error(rc);
    *out = id_of(created, "id");
    json_decref(created);
    return CRM_OK;
}

/* The first free room in service of a type for the dates, by number (409 when none). */
static int pick_room(crm_ctx *ctx, int64_t room_type, json_t *body, int64_t *out)
{
    int32_t arrival, departure;
    int rc;
    struct idset busy = {0};
    json_t *page = NULL;
    if ((rc = date_field(body, "arrival", &arrival)) != CRM_OK ||
        (rc = date_field(body, "departure", &departure)) != CRM_OK)
        return rc;
    if (departure <= arrival || departure - arrival > HOTELP_MAX_NIGHTS)
        return H->error_set(CRM_EINVALID, "departure",
                            "departure must be after arrival, at most %d nights later",
                            HOTELP_MAX_NIGHTS);
    if ((rc = busy_rooms(ctx, arrival, (int)(departure - arrival), &busy)) != CRM_OK) goto done;
    json_t *q =
        json_pack("{s:I,s:s,s:s,s:s,s:i}", "room_type", (json_int_t)room_type, "housekeeping__ne",
                  "out_of_service", "sort", "number", "fields", "id", "limit", 1000);
    rc = H->record_find(ctx, "hotel.room", q, &page);
    json_decref(q);
    if (rc != CRM_OK) goto done;
    size_t i;
    json_t *room;
    *out = 0;
    json_array_foreach(json_object_get(page, "data"), i, room)
    {
        if (!idset_has(&busy, id_of(room, "id"))) {
            *out = id_of(room, "id");
            break;
        }
    }
    if (!*out)
        rc = H->error_set(CRM_ECONFLICT, "room_type", "no room of type %lld is free from %s to %s",
                          (long long)room_type, str(body, "arrival"), str(body, "departure"));
done:
    free(busy.ids);
    json_decref(page);
    return rc;
}

struct booking {
    json_t *body;
    json_t *out;
};

/* In one transaction: the writer lock is held from the first read, so the room picked
 * is still free when the nights are written, and a failure leaves no guest behind. */
static int book(crm_ctx *ctx, void *arg)
{
    struct booking *b = arg;
    json_t *body = b->body, *g = json_object_get(body, "guest");
    json_t *fields = json_object();
    int64_t guest = 0, room = 0, room_type = 0;
    int rc = CRM_OK;
    if (json_is_object(g)) {
        if ((rc = new_guest(ctx, g, &guest)) != CRM_OK) goto done;
    } else if (!g || json_is_null(g)) {
        rc = H->error_set(CRM_EINVALID, "guest",
                          "guest is required: a hotel.guest id or a new guest {name, email, ...}");
        goto done;
    } else if (!crm_util_json_id(g, &guest)) {
        rc = H->error_set(CRM_EINVALID, "guest",
                          "guest must be a hotel.guest id or a new guest {name, email, ...}");
        goto done;
    }
    json_t *r = json_object_get(body, "room"), *rt = json_object_get(body, "room_type");
    if (r && !json_is_null(r)) {
        if (!crm_util_json_id(r, &room)) {
            rc = H->error_set(CRM_EINVALID, "room", "room must be a hotel.room id");
            goto done;
        }
    } else if (rt && !json_is_null(rt)) {
        json_t *type = NULL;
        if (!crm_util_json_id(rt, &room_type)) {
            rc = H->error_set(CRM_EINVALID, "room_type", "room_type must be a hotel.room_type id");
            goto done;
        }
        if ((rc = H->record_get(ctx, "hotel.room_type", room_type, &type)) != CRM_OK) goto done;
        json_decref(type);
        if ((rc = pick_room(ctx, room_type, body, &room)) != CRM_OK) goto done;
    } else {
        rc = H->error_set(CRM_EINVALID, "room", "give a room, or a room_type to pick a free room");
        goto done;
    }
    json_object_update(fields, body);
    json_object_del(fields, "room_type");
    json_object_set_new(fields, "guest", json_integer(guest));
    json_object_set_new(fields, "room", json_integer(room));
    json_object_set_new(fields, "status", json_string("booked"));
    rc = H->record_create(ctx, "hotel.reservation", fields, &b->out);
done:
    json_decref(fields);
    return rc;
}

static int bookings_route(crm_req *req, void *udata)
{
    (void)udata;
    json_t *body = H->req_json(req);
    int rc;
    if (!json_is_object(body))
        return H->error_set(CRM_EINVALID, NULL, "the body must be a JSON object");
    if ((rc = known_keys(body, booking_keys, sizeof booking_keys / sizeof booking_keys[0], "")))
        return rc;
    struct booking b = {body, NULL};
    if ((rc = H->tx(H->req_ctx(req), book, &b)) != CRM_OK) {
        json_decref(b.out);
        return rc;
    }
    return H->reply_json(req, 201, b.out);
}

int hotelp_booking_init(void)
{
    int rc;
    crm_plugin *p = hotelp_self;
    if ((rc = H->subscribe(p, "hotel.reservation.created", CRM_BEFORE, 20, "reservation_price",
                           reservation_before_create, NULL)) ||
        (rc = H->subscribe(p, "hotel.reservation.created", CRM_AFTER, 20, "reservation_nights",
                           reservation_after_create, NULL)) ||
        (rc = H->subscribe(p, "hotel.reservation.updated", CRM_BEFORE, 20, "reservation_reprice",
                           reservation_before_update, NULL)) ||
        (rc = H->subscribe(p, "hotel.reservation.updated", CRM_AFTER, 20, "reservation_renights",
                           reservation_after_update, NULL)) ||
        (rc = H->subscribe(p, "hotel.reservation.deleted", CRM_AFTER, 20, "reservation_free",
                           reservation_after_delete, NULL)) ||
        (rc = H->subscribe(p, "hotel.reservation.restored", CRM_AFTER, 20, "reservation_retake",
                           reservation_after_restore, NULL)) ||
        (rc = H->subscribe(p, "hotel.night.*", CRM_BEFORE, 0, "night_guard", night_guard, NULL)) ||
        (rc = H->route(p, "GET", "/availability", 0, availability_route, NULL)) ||
        (rc = H->route(p, "POST", "/bookings", 0, bookings_route, NULL)))
        return rc;
    return CRM_OK;
}
