/*
 * hotel_int.h — shared inside the `hotel` plugin (not part of the SDK).
 * hotel.c holds the descriptor and init, which calls each area's init in
 * order; every area registers through the host API table and nothing else.
 * Cross-file names start with hotelp_ so they never look like the SDK's.
 *
 * The model (types.c has the field specs):
 *   hotel.room_type   code, name, capacity, base_rate, currency, amenities
 *   hotel.rate        a rate override: room_type, starts, ends (inclusive dates), rate
 *   hotel.room        number, floor, room_type, housekeeping clean|dirty|out_of_service
 *   hotel.guest       a profile linked to crm.contact: birthday, preferences,
 *                     loyalty_tier, loyalty_points, companions
 *   hotel.reservation guest, companions, room, arrival, departure, nights,
 *                     adults, children, rate, room_total, channel, status
 *                     booked -> checked_in -> checked_out | cancelled | no_show,
 *                     folio_total, folio_closed
 *   hotel.night       one per booked room-night: key "<room>:<date>" (unique over
 *                     live records: the database itself refuses a double booking,
 *                     under any concurrency), room, date, reservation, rate
 *   hotel.service     the catalogue: code, name, category, price
 *   hotel.charge      a service delivered during a stay: reservation, service,
 *                     quantity, unit_price, amount, at
 *   hotel.loyalty_entry  points earned (+) or redeemed (-) by a guest, with reason
 */
#ifndef HOTELP_INT_H
#define HOTELP_INT_H

#include <crm.h>
#include <crm_util.h> /* money, dates, ids, CSV: crm_util_* */

extern const crm_host_api *hotelp_host; /* set first thing in init */
extern crm_plugin *hotelp_self;

/* types.c: every type of the plugin, the fields it adds to crm types, default roles. */
int hotelp_types_init(void);
/* booking.c: rates, availability search, booking (nights), cancellation, moves. */
int hotelp_booking_init(void);
/* stay.c: check-in / check-out state machine, charges, folio, loyalty, no-show schedule,
 * complaints, Lua functions for the shipped rules. */
int hotelp_stay_init(void);
/* insight.c: guest history, segmentation, best time to offer a stay, reports. */
int hotelp_insight_init(void);
/* demo.c: `crm demo` data — a 120-room hotel with two years of history. */
int hotelp_demo_init(void);

/* ---- Helpers every area may use (hotel.c) ---- */

/* Called with each record (borrowed); a non-zero return stops the walk and is returned. */
typedef int (*hotelp_each_fn)(json_t *record, void *arg);
/* Walk every record of `type` matching `query` (list parameters as in
 * host->record_find; borrowed, may be NULL) page by page along the cursor. */
int hotelp_each(crm_ctx *ctx, const char *type, json_t *query, hotelp_each_fn fn, void *arg);
/* "YYYY-MM-DD" as a day number (days since 1970-01-01), or INT32_MIN when not a valid date. */
int32_t hotelp_day(const char *date);
/* A day number as "YYYY-MM-DD" into out[11]. */
void hotelp_date(int32_t day, char out[11]);
/* The route's placeholder `name` as a record id; CRM_EINVALID naming it otherwise. */
int hotelp_id_param(crm_req *req, const char *name, int64_t *out);

/* ---- Shared by booking.c and stay.c ---- */

#define HOTELP_MAX_NIGHTS 365
/* The nightly rates (cents) of `room_type` for `nights` nights from day `arrival`: its
 * base_rate, or the latest-created hotel.rate whose [starts, ends] covers the night.
 * Reads as `ctx` (pass a system context for prices the caller need not read). */
int hotelp_night_rates(crm_ctx *ctx, int64_t room_type, int32_t arrival, int nights,
                       int64_t *rates);
/* Whether a reservation in `status` holds its room's nights (booked, checked_in, checked_out). */
int hotelp_holds_nights(const char *status);
/* The reservation state machine: CRM_OK when `from` may go to `to`, else CRM_EINVALID
 * naming the allowed transitions (stay.c). */
int hotelp_transition_check(const char *from, const char *to);

#endif
