/*
 * stay.c — the stay: the reservation state machine, check-in and check-out, the folio
 * and the services charged to it, loyalty points, complaints, the no-show sweep, and
 * the Lua functions rules may call.
 *
 *   booked ──> checked_in ──> checked_out
 *      ├─────> cancelled
 *      └─────> no_show
 *
 * The machine is enforced in a before handler of hotel.reservation.updated, so a
 * plain PATCH of `status` obeys it exactly as the routes do, and its side effects
 * happen whichever way the status moved:
 *   - checked_in: the room must be clean (409 naming its housekeeping state);
 *     checked_in_at is stamped with the platform clock; hotel.checked_in is emitted.
 *   - checked_out: the folio is closed (charges_total = the sum of the stay's
 *     charges, folio_total = room_total + charges_total, folio_closed) and
 *     checked_out_at stamped; after the write the room is marked dirty and
 *     hotel.checked_out is emitted. Loyalty points are the rule's
 *     (scripts/loyalty.lua): an admin changes the policy without a rebuild.
 *   - cancelled / no_show: booking.c frees the nights.
 * Users cannot write the folio fields or the stay's times directly: they are
 * restored from the stored record (the system — demo data, imports — may).
 *
 *   POST /reservations/{id}/check-in | check-out | cancel | no-show
 *   POST /reservations/{id}/charges      {service, quantity, note}
 *   GET  /reservations/{id}/folio
 *   POST /reservations/{id}/complaints   {subject, description, priority} → crm.ticket
 *   POST /rooms/{id}/housekeeping        {status}
 *   POST /guests/{id}/redeem             {points, reason}
 *
 * Lua: crm.hotel.credit_points(guest, reservation|nil, points, reason) → balance;
 *      crm.hotel.room_rate(room, "YYYY-MM-DD") → "120.00".
 */
#include "hotel_int.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define H hotelp_host

static const struct transition {
    const char *from;
    const char *to[4];   /* NULL-terminated */
    const char *allowed; /* the same, for messages */
} machine[] = {
    {"booked", {"checked_in", "cancelled", "no_show", NULL}, "checked_in, cancelled, no_show"},
    {"checked_in", {"checked_out", NULL}, "checked_out"},
    {"checked_out", {NULL}, "none"},
    {"cancelled", {NULL}, "none"},
    {"no_show", {NULL}, "none"},
};

int hotelp_transition_check(const char *from, const char *to)
{
    for (size_t i = 0; from && i < sizeof machine / sizeof machine[0]; i++) {
        if (strcmp(machine[i].from, from) != 0) continue;
        for (const char *const *t = machine[i].to; to && *t; t++)
            if (strcmp(*t, to) == 0) return CRM_OK;
        return H->error_set(CRM_EINVALID, "status",
                            "status cannot go from %s to %.40s; allowed from %s: %s", from,
                            to ? to : "null", from, machine[i].allowed);
    }
    return H->error_set(CRM_EINVALID, "status", "status cannot go from %s to %.40s",
                        from ? from : "null", to ? to : "null");
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

static json_t *now_datetime(void)
{
    time_t t = (time_t)H->now();
    struct tm tm;
    char out[21];
    gmtime_r(&t, &tm);
    strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(out);
}

static bool is(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* ---- The state machine, whichever way the status moves ---- */

static int sum_amount(json_t *charge, void *arg)
{
    *(int64_t *)arg += crm_util_cents(json_object_get(charge, "amount"));
    return CRM_OK;
}

struct stay_ref {
    int64_t id;     /* a reservation, or a room */
    json_t *record; /* read: a new reference; or what to write (borrowed) */
    int64_t cents;
};

static int charges_sum(crm_ctx *sys, void *arg)
{
    struct stay_ref *r = arg;
    json_t *q = json_pack("{s:I,s:s}", "reservation", (json_int_t)r->id, "fields", "amount");
    r->cents = 0;
    int rc = hotelp_each(sys, "hotel.charge", q, sum_amount, &r->cents);
    json_decref(q);
    return rc;
}

static int room_get(crm_ctx *sys, void *arg)
{
    struct stay_ref *r = arg;
    return H->record_get(sys, "hotel.room", r->id, &r->record);
}

static int room_update(crm_ctx *sys, void *arg)
{
    struct stay_ref *r = arg;
    return H->record_update(sys, "hotel.room", r->id, r->record, NULL);
}

static int reservation_status_before(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    json_t *rec = H->event_record(ev), *old = H->event_old(ev);
    const char *from = str(old, "status"), *to = str(rec, "status");
    int rc;
    if (H->ctx_user(ctx) != 0) {
        static const char *const kept[] = {"charges_total", "folio_total",    "folio_closed",
                                           "checked_in_at", "checked_out_at", "cancelled_at"};
        for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
            json_t *v = json_object_get(old, kept[i]);
            json_object_set(rec, kept[i], v ? v : json_null());
        }
    }
    if (is(from, to)) return CRM_OK;
    if ((rc = hotelp_transition_check(from, to)) != CRM_OK) return rc;
    if (is(to, "checked_in")) {
        struct stay_ref room = {id_of(rec, "room"), NULL, 0};
        if ((rc = H->as_system(ctx, room_get, &room)) != CRM_OK) return rc;
        const char *hk = str(room.record, "housekeeping");
        if (!is(hk, "clean"))
            rc = H->error_set(CRM_ECONFLICT, "room",
                              "room %s is %s: housekeeping must mark it clean before check-in",
                              str(room.record, "number"), hk ? hk : "not ready");
        json_decref(room.record);
        if (rc != CRM_OK) return rc;
        json_object_set_new(rec, "checked_in_at", now_datetime());
    } else if (is(to, "checked_out")) {
        struct stay_ref r = {H->event_id(ev), NULL, 0};
        if ((rc = H->as_system(ctx, charges_sum, &r)) != CRM_OK) return rc;
        int64_t room_total = crm_util_cents(json_object_get(rec, "room_total"));
        json_object_set_new(rec, "charges_total", crm_util_money(r.cents));
        json_object_set_new(rec, "folio_total", crm_util_money(room_total + r.cents));
        json_object_set_new(rec, "folio_closed", json_true());
        json_object_set_new(rec, "checked_out_at", now_datetime());
    } else if (is(to, "cancelled")) {
        json_object_set_new(rec, "cancelled_at", now_datetime());
    }
    return CRM_OK;
}

static int reservation_status_after(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    json_t *rec = H->event_record(ev), *old = H->event_old(ev);
    const char *from = str(old, "status"), *to = str(rec, "status");
    int rc = CRM_OK;
    if (is(from, to) || !(is(to, "checked_in") || is(to, "checked_out"))) return CRM_OK;
    if (is(to, "checked_out")) {
        json_t *patch = json_pack("{s:s}", "housekeeping", "dirty");
        struct stay_ref room = {id_of(rec, "room"), patch, 0};
        rc = H->as_system(ctx, room_update, &room);
        json_decref(patch);
        if (rc != CRM_OK) return rc;
    }
    json_t *payload =
        json_pack("{s:I,s:O,s:O,s:O,s:O}", "reservation", (json_int_t)H->event_id(ev), "guest",
                  json_object_get(rec, "guest"), "room", json_object_get(rec, "room"), "arrival",
                  json_object_get(rec, "arrival"), "departure", json_object_get(rec, "departure"));
    if (is(to, "checked_out")) {
        json_object_set(payload, "nights", json_object_get(rec, "nights"));
        json_object_set(payload, "folio_total", json_object_get(rec, "folio_total"));
    }
    rc = H->emit(ctx, is(to, "checked_in") ? "hotel.checked_in" : "hotel.checked_out", payload);
    json_decref(payload);
    return rc;
}

/* ---- Charges: priced from the catalogue, only during a stay ---- */

static int reservation_get_sys(crm_ctx *sys, void *arg)
{
    struct stay_ref *r = arg;
    return H->record_get(sys, "hotel.reservation", r->id, &r->record);
}

static int service_get_sys(crm_ctx *sys, void *arg)
{
    struct stay_ref *r = arg;
    return H->record_get(sys, "hotel.service", r->id, &r->record);
}

/* Before created / updated: a user charges a checked-in stay at the catalogue price; the
 * system (demo, imports of past stays) may write history and give its own prices. */
static int charge_before(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    json_t *rec = H->event_record(ev), *q = json_object_get(rec, "quantity");
    bool system = H->ctx_user(ctx) == 0;
    struct stay_ref res = {0, NULL, 0}, svc = {0, NULL, 0};
    int rc = CRM_OK;
    if (!crm_util_json_id(json_object_get(rec, "reservation"), &res.id))
        return H->error_set(CRM_EINVALID, "reservation",
                            "reservation must be a hotel.reservation id");
    if (!crm_util_json_id(json_object_get(rec, "service"), &svc.id))
        return H->error_set(CRM_EINVALID, "service", "service must be a hotel.service id");
    if (q && !json_is_null(q) &&
        (!json_is_integer(q) || json_integer_value(q) < 1 || json_integer_value(q) > 1000))
        return H->error_set(CRM_EINVALID, "quantity",
                            "quantity must be a whole number from 1 to 1000");
    int64_t quantity = q && json_is_integer(q) ? json_integer_value(q) : 1;
    if ((rc = H->as_system(ctx, reservation_get_sys, &res)) != CRM_OK) {
        if (rc == CRM_ENOTFOUND)
            rc = H->error_set(CRM_EINVALID, "reservation", "reservation %lld does not exist",
                              (long long)res.id);
        goto done;
    }
    if ((rc = H->as_system(ctx, service_get_sys, &svc)) != CRM_OK) {
        if (rc == CRM_ENOTFOUND)
            rc = H->error_set(CRM_EINVALID, "service", "service %lld does not exist",
                              (long long)svc.id);
        goto done;
    }
    if (!system) {
        const char *status = str(res.record, "status");
        if (!is(status, "checked_in")) {
            rc = H->error_set(CRM_ECONFLICT, "reservation",
                              "services are charged while the guest is checked in; reservation "
                              "%lld is %s",
                              (long long)res.id, status ? status : "?");
            goto done;
        }
        if (json_is_false(json_object_get(svc.record, "active"))) {
            rc = H->error_set(CRM_EINVALID, "service", "service %s is not offered any more",
                              str(svc.record, "code"));
            goto done;
        }
    }
    json_t *unit = json_object_get(rec, "unit_price");
    if (!system || !unit || json_is_null(unit))
        json_object_set(rec, "unit_price", json_object_get(svc.record, "price"));
    json_t *amount = json_object_get(rec, "amount");
    if (!system || !amount || json_is_null(amount))
        json_object_set_new(
            rec, "amount",
            crm_util_money(quantity * crm_util_cents(json_object_get(rec, "unit_price"))));
    json_object_set_new(rec, "quantity", json_integer(quantity));
    if (!json_is_string(json_object_get(rec, "at"))) json_object_set_new(rec, "at", now_datetime());
done:
    json_decref(res.record);
    json_decref(svc.record);
    return rc;
}

/* A user removes (or brings back) a charge only while the folio is open. */
static int charge_before_delete(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    struct stay_ref res = {0, NULL, 0};
    if (H->ctx_user(ctx) == 0) return CRM_OK;
    if (!crm_util_json_id(json_object_get(H->event_old(ev), "reservation"), &res.id)) return CRM_OK;
    int rc = H->as_system(ctx, reservation_get_sys, &res);
    if (rc == CRM_OK && json_is_true(json_object_get(res.record, "folio_closed")))
        rc = H->error_set(CRM_ECONFLICT, "reservation",
                          "the folio of reservation %lld is closed: its charges are final",
                          (long long)res.id);
    json_decref(res.record);
    return rc == CRM_ENOTFOUND ? CRM_OK : rc;
}

/* ---- Routes ---- */

static int body_object(crm_req *req, json_t **out, const char *const *keys, size_t n)
{
    json_t *body = H->req_json(req), *v;
    const char *key;
    *out = NULL;
    if (body && !json_is_object(body))
        return H->error_set(CRM_EINVALID, NULL, "the body must be a JSON object");
    json_object_foreach(body, key, v)
    {
        size_t i = 0;
        while (i < n && strcmp(keys[i], key) != 0)
            i++;
        if (i == n) return H->error_set(CRM_EINVALID, key, "unknown field \"%.100s\"", key);
    }
    *out = body;
    return CRM_OK;
}

struct move {
    int64_t id;
    const char *to;
    json_t *out;
};

/* The route checks the transition itself: a PATCH to the same status is a no-op, but
 * cancelling a cancelled reservation is an error the caller must see. */
static int move(crm_ctx *ctx, void *arg)
{
    struct move *m = arg;
    json_t *res = NULL, *patch = NULL;
    int rc = H->record_get(ctx, "hotel.reservation", m->id, &res);
    if (rc == CRM_OK) rc = hotelp_transition_check(str(res, "status"), m->to);
    if (rc == CRM_OK) {
        patch = json_pack("{s:s}", "status", m->to);
        rc = H->record_update(ctx, "hotel.reservation", m->id, patch, &m->out);
    }
    json_decref(res);
    json_decref(patch);
    return rc;
}

static int transition_route(crm_req *req, void *udata)
{
    struct move m = {0, udata, NULL};
    json_t *body;
    int rc;
    if ((rc = hotelp_id_param(req, "id", &m.id)) != CRM_OK ||
        (rc = body_object(req, &body, NULL, 0)) != CRM_OK)
        return rc;
    if ((rc = H->tx(H->req_ctx(req), move, &m)) != CRM_OK) {
        json_decref(m.out);
        return rc;
    }
    return H->reply_json(req, 200, m.out);
}

struct charge_job {
    int64_t reservation;
    json_t *body;
    json_t *out;
};

static int charge(crm_ctx *ctx, void *arg)
{
    struct charge_job *c = arg;
    json_t *res = NULL, *fields = NULL;
    int rc = H->record_get(ctx, "hotel.reservation", c->reservation, &res);
    if (rc != CRM_OK) goto done;
    if (!is(str(res, "status"), "checked_in")) {
        rc = H->error_set(CRM_ECONFLICT, "status",
                          "services are charged while the guest is checked in; reservation %lld "
                          "is %s",
                          (long long)c->reservation, str(res, "status"));
        goto done;
    }
    json_t *svc = json_object_get(c->body, "service");
    int64_t sid;
    if (!svc || json_is_null(svc)) {
        rc = H->error_set(CRM_EINVALID, "service", "service is required (a hotel.service id)");
        goto done;
    }
    if (!crm_util_json_id(svc, &sid)) {
        rc = H->error_set(CRM_EINVALID, "service", "service must be a hotel.service id");
        goto done;
    }
    fields = json_deep_copy(c->body);
    json_object_set_new(fields, "reservation", json_integer(c->reservation));
    json_object_set_new(fields, "service", json_integer(sid));
    rc = H->record_create(ctx, "hotel.charge", fields, &c->out);
done:
    json_decref(res);
    json_decref(fields);
    return rc;
}

static int charges_route(crm_req *req, void *udata)
{
    (void)udata;
    static const char *const keys[] = {"service", "quantity", "note"};
    struct charge_job c = {0, NULL, NULL};
    int rc;
    if ((rc = hotelp_id_param(req, "id", &c.reservation)) != CRM_OK ||
        (rc = body_object(req, &c.body, keys, 3)) != CRM_OK)
        return rc;
    if (!c.body)
        return H->error_set(CRM_EINVALID, "service", "a body {service, quantity} is required");
    if ((rc = H->tx(H->req_ctx(req), charge, &c)) != CRM_OK) {
        json_decref(c.out);
        return rc;
    }
    return H->reply_json(req, 201, c.out);
}

struct folio {
    crm_ctx *ctx;
    json_t *charges;
    int64_t total;
};

static int folio_charge(json_t *charge, void *arg)
{
    struct folio *f = arg;
    json_t *svc = NULL;
    int64_t sid = id_of(charge, "service");
    if (sid && H->record_get(f->ctx, "hotel.service", sid, &svc) == CRM_OK)
        json_object_set(charge, "service_name", json_object_get(svc, "name"));
    json_decref(svc);
    f->total += crm_util_cents(json_object_get(charge, "amount"));
    json_array_append(f->charges, charge);
    return CRM_OK;
}

static int folio_route(crm_req *req, void *udata)
{
    (void)udata;
    crm_ctx *ctx = H->req_ctx(req);
    int64_t id;
    json_t *res = NULL, *nights = NULL, *q = NULL;
    struct folio f = {ctx, json_array(), 0};
    int rc;
    if ((rc = hotelp_id_param(req, "id", &id)) != CRM_OK) goto done;
    if ((rc = H->record_get(ctx, "hotel.reservation", id, &res)) != CRM_OK) goto done;
    q = json_pack("{s:I,s:s,s:s,s:i}", "reservation", (json_int_t)id, "sort", "date", "fields",
                  "date,rate", "limit", 1000);
    if ((rc = H->record_find(ctx, "hotel.night", q, &nights)) != CRM_OK) goto done;
    json_decref(q);
    q = json_pack("{s:I,s:s,s:s}", "reservation", (json_int_t)id, "sort", "at,id", "fields",
                  "service,quantity,unit_price,amount,at,note");
    if ((rc = hotelp_each(ctx, "hotel.charge", q, folio_charge, &f)) != CRM_OK) goto done;
    json_t *list = json_object_get(nights, "data"), *n;
    size_t i;
    json_array_foreach(list, i, n)
    {
        json_object_del(n, "id");
    }
    int64_t room_total = crm_util_cents(json_object_get(res, "room_total"));
    json_t *out = json_pack(
        "{s:I,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:o,s:o,s:o,s:o,s:o}", "reservation", (json_int_t)id,
        "guest", json_object_get(res, "guest"), "room", json_object_get(res, "room"), "arrival",
        json_object_get(res, "arrival"), "departure", json_object_get(res, "departure"), "status",
        json_object_get(res, "status"), "currency", json_object_get(res, "currency"), "nights",
        list, "charges", f.charges, "room_total", crm_util_money(room_total), "charges_total",
        crm_util_money(f.total), "total", crm_util_money(room_total + f.total), "closed",
        json_boolean(json_is_true(json_object_get(res, "folio_closed"))));
    f.charges = NULL;
    rc = H->reply_json(req, 200, out);
done:
    json_decref(res);
    json_decref(nights);
    json_decref(q);
    json_decref(f.charges);
    return rc;
}

static int housekeeping_route(crm_req *req, void *udata)
{
    (void)udata;
    static const char *const keys[] = {"status"};
    int64_t id;
    json_t *body, *out = NULL;
    int rc;
    if ((rc = hotelp_id_param(req, "id", &id)) != CRM_OK ||
        (rc = body_object(req, &body, keys, 1)) != CRM_OK)
        return rc;
    const char *status = str(body, "status");
    if (!is(status, "clean") && !is(status, "dirty") && !is(status, "out_of_service"))
        return H->error_set(CRM_EINVALID, "status",
                            "status must be clean, dirty or out_of_service");
    json_t *patch = json_pack("{s:s}", "housekeeping", status);
    rc = H->record_update(H->req_ctx(req), "hotel.room", id, patch, &out);
    json_decref(patch);
    if (rc != CRM_OK) return rc;
    return H->reply_json(req, 200, out);
}

/* ---- Loyalty ---- */

struct credit {
    int64_t guest, reservation, points;
    const char *kind, *reason;
    int64_t balance;
    json_t *entry;
};

/* Add (or, negative, take) points: an entry and the guest's balance, together. */
static int credit_points(crm_ctx *ctx, void *arg)
{
    struct credit *c = arg;
    json_t *guest = NULL, *entry = NULL, *patch = NULL;
    int rc = H->record_get(ctx, "hotel.guest", c->guest, &guest);
    if (rc != CRM_OK) goto done;
    int64_t have = json_integer_value(json_object_get(guest, "loyalty_points"));
    c->balance = have + c->points;
    if (c->balance < 0) {
        rc = H->error_set(CRM_ECONFLICT, "points",
                          "guest %lld has %lld points; %lld cannot be redeemed",
                          (long long)c->guest, (long long)have, (long long)-c->points);
        goto done;
    }
    entry = json_pack("{s:I,s:I,s:s,s:s}", "guest", (json_int_t)c->guest, "points",
                      (json_int_t)c->points, "kind", c->kind, "reason", c->reason);
    if (c->reservation) json_object_set_new(entry, "reservation", json_integer(c->reservation));
    if ((rc = H->record_create(ctx, "hotel.loyalty_entry", entry, &c->entry)) != CRM_OK) goto done;
    patch = json_pack("{s:I}", "loyalty_points", (json_int_t)c->balance);
    rc = H->record_update(ctx, "hotel.guest", c->guest, patch, NULL);
done:
    json_decref(guest);
    json_decref(entry);
    json_decref(patch);
    return rc;
}

static int redeem_route(crm_req *req, void *udata)
{
    (void)udata;
    static const char *const keys[] = {"points", "reason"};
    json_t *body;
    struct credit c = {0, 0, 0, "redeem", NULL, 0, NULL};
    int rc;
    if ((rc = hotelp_id_param(req, "id", &c.guest)) != CRM_OK ||
        (rc = body_object(req, &body, keys, 2)) != CRM_OK)
        return rc;
    json_t *points = json_object_get(body, "points");
    if (!json_is_integer(points) || json_integer_value(points) < 1 ||
        json_integer_value(points) > 100000000)
        return H->error_set(CRM_EINVALID, "points",
                            "points must be a whole number from 1 to 100000000");
    c.points = -json_integer_value(points);
    c.reason = str(body, "reason");
    if (!c.reason || !*c.reason)
        return H->error_set(CRM_EINVALID, "reason", "reason is required (what the points buy)");
    if ((rc = H->tx(H->req_ctx(req), credit_points, &c)) != CRM_OK) {
        json_decref(c.entry);
        return rc;
    }
    return H->reply_json(req, 200,
                         json_pack("{s:I,s:I,s:I,s:o}", "guest", (json_int_t)c.guest, "redeemed",
                                   (json_int_t)-c.points, "balance", (json_int_t)c.balance, "entry",
                                   c.entry));
}

/* crm.hotel.credit_points(guest, reservation|nil, points, reason) → the new balance */
static int lua_credit_points(crm_ctx *ctx, json_t *args, json_t **result, void *udata)
{
    (void)udata;
    struct credit c = {0, 0, 0, "earn", NULL, 0, NULL};
    json_t *points = json_array_get(args, 2), *res = json_array_get(args, 1);
    if (!crm_util_json_id(json_array_get(args, 0), &c.guest))
        return H->error_set(CRM_EINVALID, "guest", "credit_points: guest must be a hotel.guest id");
    if (res && !json_is_null(res) && !crm_util_json_id(res, &c.reservation))
        return H->error_set(CRM_EINVALID, "reservation",
                            "credit_points: reservation must be a hotel.reservation id or nil");
    if (!json_is_integer(points) || json_integer_value(points) == 0 ||
        json_integer_value(points) > 100000000 || json_integer_value(points) < -100000000)
        return H->error_set(CRM_EINVALID, "points",
                            "credit_points: points must be a non-zero whole number");
    c.points = json_integer_value(points);
    c.kind = c.points > 0 ? "earn" : "redeem";
    c.reason = json_string_value(json_array_get(args, 3));
    if (!c.reason || !*c.reason)
        return H->error_set(CRM_EINVALID, "reason", "credit_points: reason is required");
    int rc = H->tx(ctx, credit_points, &c);
    json_decref(c.entry);
    if (rc != CRM_OK) return rc;
    *result = json_integer(c.balance);
    return CRM_OK;
}

/* crm.hotel.room_rate(room, "YYYY-MM-DD") → that night's rate, "120.00" */
static int lua_room_rate(crm_ctx *ctx, json_t *args, json_t **result, void *udata)
{
    (void)udata;
    int64_t room_id, rate;
    json_t *room = NULL;
    int32_t day = hotelp_day(json_string_value(json_array_get(args, 1)));
    if (!crm_util_json_id(json_array_get(args, 0), &room_id))
        return H->error_set(CRM_EINVALID, "room", "room_rate: room must be a hotel.room id");
    if (day == INT32_MIN)
        return H->error_set(CRM_EINVALID, "date", "room_rate: date must be YYYY-MM-DD");
    int rc = H->record_get(ctx, "hotel.room", room_id, &room);
    if (rc == CRM_OK) {
        int64_t type = id_of(room, "room_type");
        rc = hotelp_night_rates(ctx, type, day, 1, &rate);
    }
    json_decref(room);
    if (rc != CRM_OK) return rc;
    *result = crm_util_money(rate);
    return CRM_OK;
}

/* ---- Complaints: a crm.ticket for the guest's contact (the crm plugin's SLA applies) ---- */

struct complaint {
    int64_t reservation;
    json_t *body;
    json_t *out;
};

/* The guest's crm.contact, created (and linked) for a guest who has none yet. */
static int guest_contact(crm_ctx *ctx, json_t *guest, int64_t *out)
{
    json_t *contact = NULL, *patch = NULL;
    *out = id_of(guest, "contact");
    if (*out) return CRM_OK;
    json_t *fields = json_pack("{s:O}", "first_name", json_object_get(guest, "name"));
    if (json_is_string(json_object_get(guest, "email")))
        json_object_set(fields, "email", json_object_get(guest, "email"));
    int rc = H->record_create(ctx, "crm.contact", fields, &contact);
    if (rc == CRM_OK) {
        *out = id_of(contact, "id");
        patch = json_pack("{s:I}", "contact", (json_int_t)*out);
        rc = H->record_update(ctx, "hotel.guest", id_of(guest, "id"), patch, NULL);
    }
    json_decref(fields);
    json_decref(contact);
    json_decref(patch);
    return rc;
}

static int complain(crm_ctx *ctx, void *arg)
{
    struct complaint *c = arg;
    json_t *res = NULL, *guest = NULL, *ticket = NULL, *room = NULL;
    int64_t contact;
    int rc = H->record_get(ctx, "hotel.reservation", c->reservation, &res);
    if (rc != CRM_OK) goto done;
    if ((rc = H->record_get(ctx, "hotel.guest", id_of(res, "guest"), &guest)) != CRM_OK) goto done;
    if ((rc = guest_contact(ctx, guest, &contact)) != CRM_OK) goto done;
    struct stay_ref r = {id_of(res, "room"), NULL, 0};
    if (H->as_system(ctx, room_get, &r) == CRM_OK) room = r.record;
    const char *description = str(c->body, "description");
    json_t *text = json_sprintf(
        "%s%sReservation %lld: room %s, %s to %s (guest %s).", description ? description : "",
        description ? "\n\n" : "", (long long)c->reservation,
        str(room, "number") ? str(room, "number") : "?", str(res, "arrival"), str(res, "departure"),
        str(guest, "name") ? str(guest, "name") : "?");
    ticket = json_deep_copy(c->body);
    json_object_set_new(ticket, "description", text ? text : json_null());
    json_object_set_new(ticket, "contact", json_integer(contact));
    json_object_set_new(ticket, "category", json_string("complaint"));
    json_object_set_new(ticket, "channel", json_string("other"));
    rc = H->record_create(ctx, "crm.ticket", ticket, &c->out);
done:
    json_decref(res);
    json_decref(guest);
    json_decref(ticket);
    json_decref(room);
    return rc;
}

static int complaints_route(crm_req *req, void *udata)
{
    (void)udata;
    static const char *const keys[] = {"subject", "description", "priority"};
    struct complaint c = {0, NULL, NULL};
    int rc;
    if ((rc = hotelp_id_param(req, "id", &c.reservation)) != CRM_OK ||
        (rc = body_object(req, &c.body, keys, 3)) != CRM_OK)
        return rc;
    if (!json_is_string(json_object_get(c.body, "subject")) || !*str(c.body, "subject"))
        return H->error_set(CRM_EINVALID, "subject", "subject is required (text)");
    /* checked here: the crm plugin's routing rule reads the priority before the kernel does */
    const char *priority = str(c.body, "priority");
    json_t *pv = json_object_get(c.body, "priority");
    if (pv && !json_is_null(pv) && !is(priority, "low") && !is(priority, "normal") &&
        !is(priority, "high") && !is(priority, "urgent"))
        return H->error_set(CRM_EINVALID, "priority",
                            "priority must be low, normal, high or urgent");
    json_t *d = json_object_get(c.body, "description");
    if (d && !json_is_null(d) && !json_is_string(d))
        return H->error_set(CRM_EINVALID, "description", "description must be text");
    if (d && json_is_string(d) && json_string_length(d) > 19000)
        return H->error_set(CRM_EINVALID, "description", "description is at most 19000 characters");
    if ((rc = H->tx(H->req_ctx(req), complain, &c)) != CRM_OK) {
        json_decref(c.out);
        return rc;
    }
    return H->reply_json(req, 201, c.out);
}

/* ---- No-show: booked reservations whose arrival day has passed ---- */

static int collect_id(json_t *record, void *arg)
{
    json_array_append(arg, json_object_get(record, "id"));
    return CRM_OK;
}

static int no_show_sweep(crm_ctx *ctx, const crm_firing *firing, void *udata)
{
    (void)udata;
    char today[11];
    hotelp_date((int32_t)(H->firing_due(firing) / 86400), today);
    json_t *ids = json_array(), *v;
    json_t *q =
        json_pack("{s:s,s:s,s:s}", "status", "booked", "arrival__lt", today, "fields", "id");
    json_t *patch = json_pack("{s:s}", "status", "no_show");
    int rc = hotelp_each(ctx, "hotel.reservation", q, collect_id, ids);
    size_t i;
    json_array_foreach(ids, i, v)
    {
        if (rc == CRM_OK)
            rc = H->record_update(ctx, "hotel.reservation", json_integer_value(v), patch, NULL);
    }
    if (rc == CRM_OK && json_array_size(ids))
        H->log(hotelp_self, CRM_INFO, "no-show: %zu reservation(s) arriving before %s",
               json_array_size(ids), today);
    json_decref(ids);
    json_decref(q);
    json_decref(patch);
    return rc;
}

int hotelp_stay_init(void)
{
    int rc;
    crm_plugin *p = hotelp_self;
    if ((rc = H->subscribe(p, "hotel.reservation.updated", CRM_BEFORE, 10, "status_machine",
                           reservation_status_before, NULL)) ||
        (rc = H->subscribe(p, "hotel.reservation.updated", CRM_AFTER, 10, "status_effects",
                           reservation_status_after, NULL)) ||
        (rc = H->subscribe(p, "hotel.charge.created", CRM_BEFORE, 10, "charge_price", charge_before,
                           NULL)) ||
        (rc = H->subscribe(p, "hotel.charge.updated", CRM_BEFORE, 10, "charge_reprice",
                           charge_before, NULL)) ||
        (rc = H->subscribe(p, "hotel.charge.deleted", CRM_BEFORE, 10, "charge_final",
                           charge_before_delete, NULL)) ||
        (rc = H->subscribe(p, "hotel.charge.restored", CRM_BEFORE, 10, "charge_final_restore",
                           charge_before_delete, NULL)) ||
        (rc = H->route(p, "POST", "/reservations/{id}/check-in", 0, transition_route,
                       (void *)"checked_in")) ||
        (rc = H->route(p, "POST", "/reservations/{id}/check-out", 0, transition_route,
                       (void *)"checked_out")) ||
        (rc = H->route(p, "POST", "/reservations/{id}/cancel", 0, transition_route,
                       (void *)"cancelled")) ||
        (rc = H->route(p, "POST", "/reservations/{id}/no-show", 0, transition_route,
                       (void *)"no_show")) ||
        (rc = H->route(p, "POST", "/reservations/{id}/charges", 0, charges_route, NULL)) ||
        (rc = H->route(p, "GET", "/reservations/{id}/folio", 0, folio_route, NULL)) ||
        (rc = H->route(p, "POST", "/reservations/{id}/complaints", 0, complaints_route, NULL)) ||
        (rc = H->route(p, "POST", "/rooms/{id}/housekeeping", 0, housekeeping_route, NULL)) ||
        (rc = H->route(p, "POST", "/guests/{id}/redeem", 0, redeem_route, NULL)) ||
        (rc = H->schedule_cron(p, "no_show", "0 * * * *", no_show_sweep, NULL)) ||
        (rc = H->lua_function(p, "credit_points", lua_credit_points, NULL)) ||
        (rc = H->lua_function(p, "room_rate", lua_room_rate, NULL)))
        return rc;
    return CRM_OK;
}
