/*
 * demo.c — `crm demo` data: a 120-room hotel with two years of history.
 *
 * Deterministic: a fixed-seed PRNG (splitmix64) draws everything, and dates
 * are relative to the demo's day (the hotel section's demo.today =
 * YYYY-MM-DD, else host->now()), so two runs on the same day make the same
 * records and the reports always have "the last two years" to show.
 *
 * The whole stay history is planned in memory first, then written:
 *   1. each room's calendar: stays of 1 to 14 nights (up to 20 in summer) between vacant
 *      gaps sized so that occupancy follows the season (about 55 % in
 *      winter to 88 % in August), from two years ago to three months ahead;
 *      a room's stays never overlap, so no booking can fail;
 *   2. guests for the stays, in arrival order: one-time guests, "leisure"
 *      guests who come back in their favourite month, and frequent guests
 *      (business travellers); a guest is never in two rooms at once;
 *   3. the services each stay used, from the guest's tastes (spa, parking...);
 *   4. loyalty points as scripts/loyalty.lua awards them at check-out (10 a
 *      night, 1 per 10 of the folio); frequent guests redeem some; the tier
 *      is the one the balance reached.
 * Stays that ended are created as checked_out with their folio closed, the
 * ones under way as checked_in, later ones as booked; some cancellations and
 * no-shows (which hold no nights) are added. Records go through
 * host->record_create as the system, so booking.c writes every night.
 *
 * `crm demo` runs after the crm plugin's demo (hotel requires crm); the
 * guests' contacts are created here, in the same six languages as crm's.
 */
#include "hotel_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_ROOMS 120     /* the default; the hotel section's demo.rooms = N sets 20 to 600 */
#define MAX_ROOMS 600
#define N_ONE_TIME 2200 /* guests who come once */
#define N_LEISURE 1200  /* come back, mostly in their favourite month */
#define N_FREQUENT 600  /* business travellers and regulars: many stays all year */
#define N_GUESTS (N_ONE_TIME + N_LEISURE + N_FREQUENT)
#define HISTORY_DAYS 730
#define AHEAD_DAYS 90
#define STAYS_PER_ROOM 200 /* room for two years and a quarter of short stays */

static uint64_t seed;

static uint64_t next(void)
{
    return crm_util_random(&seed);
}

static int below(int n) { return (int)(next() % (uint64_t)n); }
static double unit(void) { return (double)(next() >> 11) / 9007199254740992.0; } /* [0,1) */
#define PICK(array) ((array)[below((int)(sizeof(array) / sizeof((array)[0])))])

/* ---- Calendar arithmetic on day numbers (days since 1970-01-01) ---- */

/* The civil date of a day number (H. Hinnant's algorithm: no time zone, no libc). */
static void civil(int32_t day, int *y, int *m, int *d)
{
    int64_t z = (int64_t)day + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int32_t day_of(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + doe - 719468);
}

static int month_of(int32_t day)
{
    int y, m, d;
    civil(day, &y, &m, &d);
    return m;
}

/* "YYYY-MM-DDTHH:MM:00Z" of a day and a minute of it. */
static json_t *datetime(int32_t day, int minute)
{
    char date[11];
    hotelp_date(day, date);
    return json_sprintf("%sT%02d:%02d:00Z", date, minute / 60, minute % 60);
}

static json_t *date_json(int32_t day)
{
    char date[11];
    hotelp_date(day, date);
    return json_string(date);
}

/* ---- The hotel ---- */

static const struct room_type {
    const char *code, *name, *amenities, *description;
    int capacity;
    int64_t base; /* cents per night */
    double demand; /* relative occupancy: suites sell less often than doubles */
} room_types[] = {
    {"SGL", "Single room", "[\"wifi\",\"desk\",\"shower\"]",
     "A quiet single room with a work desk.", 1, 9000, 0.92},
    {"DBL", "Double room", "[\"wifi\",\"desk\",\"bathtub\",\"minibar\"]",
     "A double bed, a bathtub and a view of the city.", 2, 13000, 1.05},
    {"TWN", "Twin room", "[\"wifi\",\"shower\",\"minibar\"]", "Two single beds.", 2, 12500, 1.0},
    {"JRS", "Junior suite", "[\"wifi\",\"sofa bed\",\"bathtub\",\"minibar\",\"balcony\"]",
     "A bedroom and a sitting area with a sofa bed; sleeps three.", 3, 22000, 0.9},
    {"STE", "Suite", "[\"wifi\",\"living room\",\"bathtub\",\"minibar\",\"terrace\",\"espresso\"]",
     "A suite with a living room and a terrace on the top floor.", 4, 38000, 0.8},
};
#define N_TYPES ((int)(sizeof room_types / sizeof room_types[0]))

/* Seasonal overrides, each year: month/day of the first and last night, percent of base. */
static const struct season {
    const char *name;
    int from_month, from_day, to_month, to_day; /* to before from: ends next year */
    int percent;
} seasons[] = {
    {"Winter low season", 1, 8, 2, 28, 80},
    {"Summer high season", 7, 1, 8, 31, 130},
    {"Christmas and New Year", 12, 22, 1, 2, 125},
};
#define N_SEASONS ((int)(sizeof seasons / sizeof seasons[0]))

/* Occupancy targets by month (percent). */
static const int occupancy[12] = {55, 57, 62, 68, 74, 82, 86, 88, 78, 68, 56, 64};

static const struct service {
    const char *code, *name, *category, *price;
    int per; /* 0: a quantity of 1-3, 1: per night, 2: per night and adult, 3: per adult */
} services[] = {
    {"MINIBAR", "Minibar", "minibar", "8.50", 0},
    {"SPA-MASSAGE", "Massage (50 minutes)", "spa", "85.00", 0},
    {"SPA-DAY", "Spa day pass", "spa", "40.00", 3},
    {"TRANSFER", "Airport transfer", "transfer", "55.00", 0},
    {"DINNER", "Dinner at the restaurant", "restaurant", "42.00", 3},
    {"BREAKFAST", "Breakfast", "restaurant", "18.00", 2},
    {"BAR", "Bar", "bar", "12.00", 0},
    {"LAUNDRY", "Laundry and pressing", "laundry", "16.00", 0},
    {"PARKING", "Parking (per night)", "parking", "22.00", 1},
    {"ROOM-SERVICE", "Room service", "room_service", "28.00", 0},
    {"LATE-CHECKOUT", "Late check-out", "other", "35.00", 0},
};
#define N_SERVICES ((int)(sizeof services / sizeof services[0]))

/* ---- Guests: six languages, as crm's demo ---- */

static const struct culture {
    const char *language, *country, *phone, *domain;
    int family_first; /* the name is written family name first (Chinese) */
    const char *first[10], *last[10], *city[3];
} cultures[] = {
    {"en", "GB", "+44 161 496 ", "example.co.uk", 0,
     {"Charlotte", "William", "Sophie", "Thomas", "Lucy", "James", "Olivia", "Henry", "Chloe",
      "Samuel"},
     {"Clarke", "Hughes", "Edwards", "Green", "Hall", "Wood", "Harris", "Lewis", "Martin",
      "Turner"},
     {"London", "Edinburgh", "Cardiff"}},
    {"el", "GR", "+30 231 555 ", "example.gr", 0,
     {"Αλέξανδρος", "Ευαγγελία", "Παναγιώτης", "Χριστίνα", "Βασίλης", "Δέσποινα", "Σπύρος",
      "Ιωάννα", "Θανάσης", "Αγγελική"},
     {"Κωνσταντίνου", "Δημητρίου", "Αλεξίου", "Μιχαηλίδης", "Σταματόπουλος", "Λαμπράκης",
      "Ζαχαρίου", "Πετρίδης", "Αντωνίου", "Μαυρίδης"},
     {"Αθήνα", "Θεσσαλονίκη", "Χανιά"}},
    {"he", "IL", "+972 4 555 ", "example.co.il", 0,
     {"אורי", "יעל", "עומר", "הילה", "גיל", "נטע", "רון", "מיכל", "אלון", "ליאת"},
     {"גולדברג", "רוזן", "בן דוד", "אשכנזי", "חדד", "ויס", "קליין", "עמר", "סגל", "ברק"},
     {"תל אביב", "חיפה", "אילת"}},
    {"fa", "IR", "+98 31 5555 ", "example.ir", 0,
     {"مهدی", "لیلا", "حمید", "شیرین", "بهرام", "پریسا", "کامران", "نسرین", "داریوش", "مینا"},
     {"نوری", "تهرانی", "شریفی", "قاسمی", "اکبری", "یزدانی", "فرهادی", "مرادی", "بهرامی", "سلطانی"},
     {"تهران", "اصفهان", "مشهد"}},
    {"zh", "CN", "+86 21 5555 ", "example.cn", 1,
     {"明", "丽", "强", "婷", "杰", "霞", "涛", "琳", "鹏", "雪"},
     {"孙", "马", "朱", "胡", "郭", "何", "高", "林", "罗", "郑"},
     {"上海", "广州", "成都"}},
    {"ru", "RU", "+7 812 555 ", "example.ru", 0,
     {"Андрей", "Татьяна", "Алексей", "Светлана", "Николай", "Ирина", "Павел", "Юлия", "Виктор",
      "Екатерина"},
     {"Морозов", "Волков", "Лебедев", "Козлов", "Орлов", "Зайцев", "Белов", "Комаров", "Медведев",
      "Яковлев"},
     {"Москва", "Санкт-Петербург", "Сочи"}},
};
#define N_CULTURES ((int)(sizeof cultures / sizeof cultures[0]))
#define LATIN "abcdefghijklmnopqrstuvwxyz"

enum guest_class { ONE_TIME, LEISURE, FREQUENT };

/* The plan: everything decided before the first record is written. */
typedef struct plan_guest {
    int class, culture, first, last;
    int fav_month;     /* leisure guests: the month they like to come (1-12) */
    int likes[2];      /* service categories' indexes into services[] (-1: none) */
    int target;        /* visits the plan aims at */
    int visits;        /* stays assigned */
    int32_t free_from; /* the departure of the guest's last stay: no two rooms at once */
    int member;        /* in the loyalty club */
    int64_t points;    /* balance after every entry */
    int64_t peak;      /* the highest balance: a tier once earned is kept */
    int64_t id;        /* the hotel.guest's id once created */
} plan_guest;

typedef struct plan_stay {
    int room, guest, nights, adults, children;
    int32_t arrival;
} plan_stay;

struct demo {
    crm_ctx *ctx;
    int32_t today;
    int n_rooms, max_stays;
    int64_t type_ids[N_TYPES], service_ids[N_SERVICES], room_ids[MAX_ROOMS];
    int room_type[MAX_ROOMS];
    char room_number[MAX_ROOMS][24];
    /* rate overrides in memory, to price stays as booking.c does */
    int n_rates;
    struct rate { int type; int32_t first, last; int64_t rate; } rates[64];
    plan_guest *guests;
    plan_stay *stays;
    int n_stays;
    long n_nights, n_charges, n_entries, n_fixed;
};

/* Create one record (fields consumed); its stored form into *out when out is not NULL. */
static int make(struct demo *d, const char *type, json_t *fields, json_t **out)
{
    int rc = hotelp_host->record_create(d->ctx, type, fields, out);
    json_decref(fields);
    return rc;
}

static int make_id(struct demo *d, const char *type, json_t *fields, int64_t *id)
{
    json_t *stored = NULL;
    int rc = make(d, type, fields, &stored);
    if (rc == CRM_OK) *id = json_integer_value(json_object_get(stored, "id"));
    json_decref(stored);
    return rc;
}

/* The price of one night of a room type, as booking.c computes it: the override covering
 * the date (the one that starts last, if several do), else the type's base rate. */
static int64_t night_rate(const struct demo *d, int type, int32_t day)
{
    int64_t rate = room_types[type].base;
    int32_t best = INT32_MIN;
    for (int i = 0; i < d->n_rates; i++)
        if (d->rates[i].type == type && d->rates[i].first <= day && day <= d->rates[i].last &&
            d->rates[i].first > best) {
            best = d->rates[i].first;
            rate = d->rates[i].rate;
        }
    return rate;
}

/* ---- 1. The hotel: room types, rates, rooms, services ---- */

/* Two rooms under renovation: out of service, never sold in the history. */
static int out_of_service(int room)
{
    return room == 17 || room == 58;
}

static int make_hotel(struct demo *d)
{
    int rc = CRM_OK, ty, tm, td;
    civil(d->today, &ty, &tm, &td);
    for (int i = 0; i < N_TYPES && rc == CRM_OK; i++) {
        json_t *amenities = json_loads(room_types[i].amenities, 0, NULL);
        rc = make_id(d, "hotel.room_type",
                     json_pack("{s:s,s:s,s:i,s:o,s:s,s:o,s:s}", "code", room_types[i].code, "name",
                               room_types[i].name, "capacity", room_types[i].capacity,
                               "base_rate", crm_util_money(room_types[i].base), "currency", "EUR",
                               "amenities", amenities ? amenities : json_array(), "description",
                               room_types[i].description),
                     &d->type_ids[i]);
    }
    /* seasons of the years the history and the bookings ahead touch */
    for (int year = ty - 2; year <= ty + 1 && rc == CRM_OK; year++)
        for (int s = 0; s < N_SEASONS && rc == CRM_OK; s++) {
            int32_t first = day_of(year, seasons[s].from_month, seasons[s].from_day);
            int32_t last = day_of(year + (seasons[s].to_month < seasons[s].from_month),
                                  seasons[s].to_month, seasons[s].to_day);
            if (seasons[s].to_month == 2 && seasons[s].to_day == 28) /* to the end of February */
                last = day_of(year, 3, 1) - 1;
            if (last < d->today - HISTORY_DAYS - 14 || first > d->today + AHEAD_DAYS + 14)
                continue;
            for (int t = 0; t < N_TYPES && rc == CRM_OK; t++) {
                int64_t rate = room_types[t].base * seasons[s].percent / 100;
                rc = make(d, "hotel.rate",
                          json_pack("{s:I,s:o,s:o,s:o,s:s++}", "room_type",
                                    (json_int_t)d->type_ids[t], "starts", date_json(first), "ends",
                                    date_json(last), "rate", crm_util_money(rate), "name",
                                    seasons[s].name, " ", year == ty ? "" : "(other year)"),
                          NULL);
                if (rc == CRM_OK && d->n_rates < 64)
                    d->rates[d->n_rates++] = (struct rate){t, first, last, rate};
            }
        }
    /* floors of twenty rooms, 101-120, 201-220, ... (six floors by default): the lower
     * floors singles, doubles, twins and a few junior suites; the top floor junior
     * suites and suites */
    int top = (d->n_rooms + 19) / 20;
    for (int i = 0; i < d->n_rooms && rc == CRM_OK; i++) {
        int floor = i / 20 + 1, n = i % 20 + 1;
        int t = floor < top ? (n <= 5 ? 0 : n <= 13 ? 1 : n <= 18 ? 2 : 3) : (n <= 12 ? 3 : 4);
        d->room_type[i] = t;
        snprintf(d->room_number[i], sizeof d->room_number[i], "%d%02d", floor, n);
        /* two rooms under renovation, a few not yet made up */
        const char *hk = out_of_service(i) ? "out_of_service" : below(10) < 2 ? "dirty" : "clean";
        json_t *f = json_pack("{s:s,s:i,s:I,s:s}", "number", d->room_number[i], "floor", floor,
                              "room_type", (json_int_t)d->type_ids[t], "housekeeping", hk);
        if (n == 1 || n == 20)
            json_object_set_new(f, "amenities", json_pack("[s]", "corner view"));
        if (strcmp(hk, "out_of_service") == 0)
            json_object_set_new(f, "notes", json_string("Bathroom renovation"));
        rc = make_id(d, "hotel.room", f, &d->room_ids[i]);
    }
    for (int i = 0; i < N_SERVICES && rc == CRM_OK; i++)
        rc = make_id(d, "hotel.service",
                     json_pack("{s:s,s:s,s:s,s:s,s:b}", "code", services[i].code, "name",
                               services[i].name, "category", services[i].category, "price",
                               services[i].price, "active", 1),
                     &d->service_ids[i]);
    return rc;
}

/* ---- 2. The plan: calendars, then guests for the stays ---- */

static int stay_nights(void)
{
    static const int weights[14] = {14, 20, 18, 13, 10, 6, 9, 3, 2, 2, 1, 1, 0, 1};
    int r = below(100), n = 0;
    while (n < 13 && r >= weights[n]) r -= weights[n++];
    return n + 1;
}

static int by_arrival(const void *a, const void *b)
{
    const plan_stay *x = a, *y = b;
    if (x->arrival != y->arrival) return x->arrival < y->arrival ? -1 : 1;
    return x->room - y->room;
}

static void plan_calendars(struct demo *d)
{
    int32_t start = d->today - HISTORY_DAYS, end = d->today + AHEAD_DAYS;
    for (int r = 0; r < d->n_rooms; r++) {
        if (out_of_service(r)) continue; /* nothing to sell */
        int32_t day = start - below(4);
        while (d->n_stays < d->max_stays) {
            int nights = stay_nights();
            int m = month_of(day);
            if ((m == 7 || m == 8) && below(3) == 0) nights += 2 + below(5); /* summer holidays */
            double occ = occupancy[m - 1] / 100.0 * room_types[d->room_type[r]].demand;
            if (day > d->today) /* bookings ahead thin out towards the horizon */
                occ *= 1.0 - (double)(day - d->today) / (AHEAD_DAYS + 20);
            if (occ > 0.97) occ = 0.97;
            if (occ < 0.05) occ = 0.05;
            double gap = nights * (1.0 - occ) / occ; /* mean vacancy before the stay */
            day += (int32_t)(2.0 * gap * unit() + 0.5);
            if (day + nights > end) break;
            if (day + nights > start) {
                plan_stay *s = &d->stays[d->n_stays++];
                int cap = room_types[d->room_type[r]].capacity;
                *s = (plan_stay){r, -1, nights, cap == 1 ? 1 : 1 + below(2), 0, day};
                if (cap >= 3 && below(2)) s->children = 1 + below(cap - 2);
                if (s->adults + s->children > cap) s->children = cap - s->adults;
            }
            day += nights;
        }
    }
    qsort(d->stays, (size_t)d->n_stays, sizeof *d->stays, by_arrival);
}

static void plan_guests(struct demo *d)
{
    static const int fav_weights[12] = {3, 4, 6, 9, 10, 12, 16, 16, 9, 6, 3, 6}; /* sum 100 */
    for (int g = 0; g < N_GUESTS; g++) {
        plan_guest *p = &d->guests[g];
        p->class = g < N_ONE_TIME ? ONE_TIME : g < N_ONE_TIME + N_LEISURE ? LEISURE : FREQUENT;
        p->culture = below(N_CULTURES);
        p->first = below(10);
        p->last = below(10);
        int r = below(100), m = 0;
        while (m < 11 && r >= fav_weights[m]) r -= fav_weights[m++];
        p->fav_month = m + 1;
        p->likes[0] = below(N_SERVICES);
        p->likes[1] = below(10) < 3 ? below(N_SERVICES) : -1;
        /* business travellers park (services[8]) and have shirts pressed (services[7]) */
        if (p->class == FREQUENT && below(2)) p->likes[0] = 8;
        if (p->class == FREQUENT && p->likes[1] < 0) p->likes[1] = 7;
        p->target = p->class == ONE_TIME ? 1 : p->class == LEISURE ? 2 + below(3) : 40;
        p->member = p->class != ONE_TIME || below(10) < 2;
        p->free_from = INT32_MIN;
    }
}

/* A free guest of `class` (and favourite month, when month > 0) with visits to spare,
 * tried from a random place; -1 when none is found in a few tries. */
static int find_guest(struct demo *d, int lo, int hi, int month, int32_t arrival, int tries)
{
    for (int t = 0; t < tries; t++) {
        int g = lo + below(hi - lo);
        plan_guest *p = &d->guests[g];
        if (p->free_from <= arrival && p->visits < p->target &&
            (month == 0 || p->fav_month == month))
            return g;
    }
    return -1;
}

static void plan_assign(struct demo *d)
{
    int next_one_time = 0;
    const int leisure = N_ONE_TIME, frequent = N_ONE_TIME + N_LEISURE;
    for (int i = 0; i < d->n_stays; i++) {
        plan_stay *s = &d->stays[i];
        int m = month_of(s->arrival), r = below(100), g = -1;
        if (r < 32) g = find_guest(d, leisure, frequent, r < 29 ? m : 0, s->arrival, 60);
        else if (r < 47 && next_one_time < N_ONE_TIME) g = next_one_time++;
        if (g < 0) g = find_guest(d, frequent, N_GUESTS, 0, s->arrival, 40);
        if (g < 0 && next_one_time < N_ONE_TIME) g = next_one_time++;
        for (int t = 0; g < 0; t++) { /* anyone free: the pools are large, this ends */
            int c = (int)((next() + (uint64_t)t) % N_GUESTS);
            if (d->guests[c].free_from <= s->arrival) g = c;
        }
        s->guest = g;
        d->guests[g].visits++;
        d->guests[g].free_from = s->arrival + s->nights;
    }
}

/* ---- 3. Writing: contacts and guests, then the stays ---- */

static json_t *mailbox(const struct culture *c, int n)
{
    return json_sprintf("%c%c.%d@%s", LATIN[n % 26], LATIN[(n / 26) % 26], n, c->domain);
}

static json_t *preferences(void)
{
    static const char *const floors[] = {"high", "low", "any"};
    static const char *const pillows[] = {"firm", "soft", "feather-free"};
    static const char *const diets[] = {"vegetarian", "gluten-free", "kosher", "halal", "none"};
    json_t *p = json_object();
    if (below(2)) json_object_set_new(p, "floor", json_string(PICK(floors)));
    if (below(3) == 0) json_object_set_new(p, "pillow", json_string(PICK(pillows)));
    if (below(3) == 0) json_object_set_new(p, "diet", json_string(PICK(diets)));
    if (below(4) == 0) json_object_set_new(p, "quiet_room", json_true());
    return p;
}

static int make_guest(struct demo *d, int g)
{
    plan_guest *p = &d->guests[g];
    const struct culture *c = &cultures[p->culture];
    const char *first = c->first[p->first], *last = c->last[p->last];
    char birthday[11], name[256];
    hotelp_date(d->today - (int32_t)(22 * 365 + below(50 * 365)), birthday);
    if (c->family_first) snprintf(name, sizeof name, "%s%s", last, first);
    else snprintf(name, sizeof name, "%s %s", first, last);
    json_t *phone = json_sprintf("%s%04d", c->phone, below(10000));
    const char *city = PICK(c->city);
    int64_t contact = 0;
    int consent = below(10) < 7;
    int rc = make_id(d, "crm.contact",
                     json_pack("{s:s,s:s,s:o,s:O,s:s,s:s,s:s,s:s,s:b}", "first_name", first,
                               "last_name", last, "email", mailbox(c, 20000 + g), "phone", phone,
                               "birthday", birthday, "language", c->language, "country",
                               c->country, "city", city, "consent_email", consent),
                     &contact);
    if (rc != CRM_OK) {
        json_decref(phone);
        return rc;
    }
    json_t *f = json_pack("{s:I,s:s,s:o,s:o,s:s,s:s,s:s,s:o}", "contact", (json_int_t)contact,
                          "name", name, "email", mailbox(c, 20000 + g), "phone", phone,
                          "birthday", birthday, "language", c->language, "nationality",
                          c->country, "preferences", preferences());
    if (below(3) == 0) { /* travels with someone */
        static const char *const relations[] = {"spouse", "partner", "child", "friend",
                                                "colleague"};
        char born[11];
        const char *relation = PICK(relations);
        const char *cfirst = c->first[below(10)];
        hotelp_date(d->today - (int32_t)((strcmp(relation, "child") == 0 ? 3 : 25) * 365 +
                                         below(15 * 365)),
                    born);
        json_object_set_new(f, "companions",
                            json_pack("[{s:s++,s:s,s:s}]", "name", cfirst, " ", last, "relation",
                                      relation, "birthday", born));
    }
    if (p->class == FREQUENT && below(8) == 0) json_object_set_new(f, "vip", json_true());
    if (p->class == LEISURE && below(5) == 0)
        json_object_set_new(f, "notes",
                            json_string("Likes to come back at the same time of year."));
    if ((rc = make_id(d, "hotel.guest", f, &p->id)) != CRM_OK || !p->member) return rc;
    /* some members bring a balance over from the hotel's previous loyalty system */
    int64_t carried = p->class == FREQUENT && below(3) == 0  ? 500 * (1 + below(9))
                      : p->class == LEISURE && below(10) == 0 ? 100 * (2 + below(9))
                                                               : 0;
    if (!carried) return CRM_OK;
    p->points = p->peak = carried;
    d->n_entries++;
    return make(d, "hotel.loyalty_entry",
                json_pack("{s:I,s:I,s:s,s:s}", "guest", (json_int_t)p->id, "points",
                          (json_int_t)carried, "kind", "adjust", "reason",
                          "balance carried over from the previous loyalty system"),
                NULL);
}

/* A service a stay used: drawn before the reservation is written, so that the
 * reservation is created with its folio's totals and no later update. */
typedef struct plan_charge {
    int service, quantity, minute;
    int32_t day;
    int64_t amount;
} plan_charge;

/* The charges of a stay that has begun, from the guest's tastes, up to `last_day`. */
static int plan_charges(const plan_stay *s, const plan_guest *p, int32_t last_day,
                        plan_charge out[3], int64_t *total)
{
    int n = 0;
    *total = 0;
    for (int k = 0; k < 3; k++) {
        int sv = k < 2 ? p->likes[k] : below(N_SERVICES);
        if (sv < 0 || below(100) >= (k < 2 ? 65 : 20)) continue;
        int32_t days = last_day - s->arrival + 1; /* days of the stay so far */
        if (days > s->nights) days = s->nights;
        if (days < 1) days = 1;
        int qty = services[sv].per == 1   ? days
                  : services[sv].per == 2 ? days * s->adults
                  : services[sv].per == 3 ? s->adults
                                          : 1 + below(3);
        json_t *price = json_string(services[sv].price);
        int64_t unit_price = crm_util_cents(price);
        json_decref(price);
        int32_t day = s->arrival + below(days);
        out[n++] = (plan_charge){sv, qty, 9 * 60 + below(13 * 60), day, unit_price * qty};
        *total += unit_price * qty;
    }
    return n;
}

static int make_stay(struct demo *d, const plan_stay *s)
{
    static const char *const channels[] = {"direct", "direct", "web", "web", "web", "ota",
                                           "ota", "ota", "phone", "agency", "walk_in"};
    plan_guest *p = &d->guests[s->guest];
    int32_t departure = s->arrival + s->nights;
    int begun = s->arrival < d->today, ended = departure <= d->today;
    int64_t room_total = 0, charges = 0, id = 0;
    plan_charge planned[3];
    int n_planned = 0;
    for (int32_t n = s->arrival; n < departure; n++)
        room_total += night_rate(d, d->room_type[s->room], n);
    if (begun) n_planned = plan_charges(s, p, ended ? departure - 1 : d->today, planned, &charges);
    const char *channel = PICK(channels);
    json_t *f = json_pack("{s:I,s:I,s:o,s:o,s:i,s:i,s:s,s:s,s:s}", "guest", (json_int_t)p->id,
                          "room", (json_int_t)d->room_ids[s->room], "arrival",
                          date_json(s->arrival), "departure", date_json(departure), "adults",
                          s->adults, "children", s->children, "currency", "EUR", "channel",
                          channel, "status",
                          ended ? "checked_out" : begun ? "checked_in" : "booked");
    if (begun) {
        json_object_set_new(f, "checked_in_at", datetime(s->arrival, 14 * 60 + below(360)));
        json_object_set_new(f, "charges_total", crm_util_money(charges));
        json_object_set_new(f, "folio_total", crm_util_money(room_total + charges));
    }
    if (ended) {
        json_object_set_new(f, "checked_out_at", datetime(departure, 7 * 60 + below(270)));
        json_object_set_new(f, "folio_closed", json_true());
    }
    json_t *stored = NULL;
    int rc = make(d, "hotel.reservation", f, &stored);
    if (rc != CRM_OK) return rc;
    id = json_integer_value(json_object_get(stored, "id"));
    json_t *priced = json_object_get(stored, "room_total");
    if (begun && json_is_string(priced) && crm_util_cents(priced) != room_total) {
        /* booking.c priced it otherwise: its price makes the folio */
        room_total = crm_util_cents(priced);
        json_t *patch = json_pack("{s:o}", "folio_total", crm_util_money(room_total + charges));
        rc = hotelp_host->record_update(d->ctx, "hotel.reservation", id, patch, NULL);
        json_decref(patch);
        d->n_fixed++;
    }
    json_decref(stored);
    d->n_nights += s->nights;
    for (int i = 0; i < n_planned && rc == CRM_OK; i++) {
        const plan_charge *c = &planned[i];
        json_t *unit_price = json_string(services[c->service].price);
        rc = make(d, "hotel.charge",
                  json_pack("{s:I,s:I,s:i,s:o,s:o,s:o}", "reservation", (json_int_t)id,
                            "service", (json_int_t)d->service_ids[c->service], "quantity",
                            c->quantity, "unit_price", unit_price, "amount",
                            crm_util_money(c->amount), "at", datetime(c->day, c->minute)),
                  NULL);
        d->n_charges++;
    }
    if (rc != CRM_OK || !ended || !p->member) return rc;
    /* the club, as scripts/loyalty.lua counts at check-out: 10 points a night and one per
     * 10 of the folio; some frequent guests spend theirs on a free night */
    int64_t points = 10 * s->nights + (room_total + charges) / 1000;
    char reason[128], first[11], last[11];
    hotelp_date(s->arrival, first);
    hotelp_date(departure, last);
    json_t *folio = crm_util_money(room_total + charges);
    snprintf(reason, sizeof reason, "stay %s to %s: %d nights, folio %s", first, last,
             s->nights, json_string_value(folio));
    json_decref(folio);
    rc = make(d, "hotel.loyalty_entry",
              json_pack("{s:I,s:I,s:I,s:s,s:s}", "guest", (json_int_t)p->id, "reservation",
                        (json_int_t)id, "points", (json_int_t)points, "kind", "earn", "reason",
                        reason),
              NULL);
    p->points += points;
    if (p->points > p->peak) p->peak = p->points;
    d->n_entries++;
    if (rc == CRM_OK && p->class == FREQUENT && p->points >= 1500 && below(4) == 0) {
        rc = make(d, "hotel.loyalty_entry",
                  json_pack("{s:I,s:i,s:s,s:s}", "guest", (json_int_t)p->id, "points", -1000,
                            "kind", "redeem", "reason", "a free night"),
                  NULL);
        p->points -= 1000;
        d->n_entries++;
    }
    return rc;
}

/* Cancellations and no-shows: no nights, so anywhere in the history. */
static int make_lost_bookings(struct demo *d)
{
    int rc = CRM_OK, n = d->n_stays / 16;
    for (int i = 0; i < n && rc == CRM_OK; i++) {
        const plan_guest *p = &d->guests[N_ONE_TIME + below(N_GUESTS - N_ONE_TIME)];
        int room = below(d->n_rooms), nights = 1 + below(5), no_show = below(4) == 0;
        int32_t arrival = d->today - HISTORY_DAYS + below(HISTORY_DAYS + AHEAD_DAYS);
        if (no_show && arrival >= d->today) arrival = d->today - 1 - below(300);
        json_t *f = json_pack("{s:I,s:I,s:o,s:o,s:i,s:s,s:s}", "guest", (json_int_t)p->id,
                              "room", (json_int_t)d->room_ids[room], "arrival",
                              date_json(arrival), "departure", date_json(arrival + nights),
                              "adults", 1, "channel", below(2) ? "ota" : "web", "status",
                              no_show ? "no_show" : "cancelled");
        if (!no_show)
            json_object_set_new(f, "cancelled_at",
                                datetime(arrival - 1 - below(40), 600 + below(600)));
        rc = make(d, "hotel.reservation", f, NULL);
    }
    return rc;
}

/* The tier the balance reached (scripts/loyalty.lua): silver from 500 points, gold 2,000,
 * platinum 5,000; redeeming never lowers it. */
static const char *tier(int64_t points)
{
    return points >= 5000 ? "platinum" : points >= 2000 ? "gold" : points >= 500 ? "silver"
                                                                                : "member";
}

/* Set each member's balance and tier, unless stay.c's handlers already keep them. */
static int settle_guest(json_t *record, void *arg)
{
    struct demo *d = arg;
    int64_t id;
    if (!crm_util_json_id(json_object_get(record, "id"), &id)) return CRM_OK;
    int lo = 0, hi = N_GUESTS - 1; /* ids grow with g (created in order): a binary search */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (d->guests[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    const plan_guest *p = &d->guests[lo];
    if (p->id != id) return CRM_OK; /* a guest someone made before the demo */
    const char *want = tier(p->peak);
    const char *has = json_string_value(json_object_get(record, "loyalty_tier"));
    if (json_integer_value(json_object_get(record, "loyalty_points")) == p->points && has &&
        strcmp(has, want) == 0)
        return CRM_OK;
    json_t *patch = json_pack("{s:I,s:s}", "loyalty_points", (json_int_t)p->points,
                              "loyalty_tier", want);
    int rc = hotelp_host->record_update(d->ctx, "hotel.guest", id, patch, NULL);
    json_decref(patch);
    d->n_fixed++;
    return rc;
}

static int demo(crm_ctx *ctx, void *udata)
{
    (void)udata;
    static struct demo d; /* `crm demo` runs once, on one thread */
    int rc;
    memset(&d, 0, sizeof d);
    d.ctx = ctx;
    seed = 20260707; /* fixed: the same hotel every time */
    const char *today = hotelp_host->setting(hotelp_self, "demo.today");
    d.today = today ? hotelp_day(today) : INT32_MIN;
    if (today && d.today == INT32_MIN)
        return hotelp_host->error_set(CRM_EINVALID, "demo.today",
                                      "demo.today must be a date YYYY-MM-DD, not \"%s\"", today);
    if (!today) d.today = (int32_t)(hotelp_host->now() / 86400);
    const char *rooms = hotelp_host->setting(hotelp_self, "demo.rooms");
    int64_t n_rooms = N_ROOMS;
    if (rooms && (!crm_util_parse_id(rooms, &n_rooms) || n_rooms < 20 || n_rooms > MAX_ROOMS))
        return hotelp_host->error_set(CRM_EINVALID, "demo.rooms",
                                      "demo.rooms must be a number of rooms from 20 to %d, not "
                                      "\"%s\"", MAX_ROOMS, rooms);
    d.n_rooms = (int)n_rooms;
    d.max_stays = d.n_rooms * STAYS_PER_ROOM;
    d.guests = calloc(N_GUESTS, sizeof *d.guests);
    d.stays = calloc((size_t)d.max_stays, sizeof *d.stays);
    if (!d.guests || !d.stays) {
        rc = hotelp_host->error_set(CRM_EINTERNAL, NULL, "demo data: out of memory");
        goto done;
    }
    if ((rc = make_hotel(&d)) != CRM_OK) goto done;
    plan_calendars(&d);
    plan_guests(&d);
    plan_assign(&d);
    for (int g = 0; g < N_GUESTS; g++)
        if ((rc = make_guest(&d, g)) != CRM_OK) goto done;
    for (int i = 0; i < d.n_stays; i++)
        if ((rc = make_stay(&d, &d.stays[i])) != CRM_OK) goto done;
    if ((rc = make_lost_bookings(&d)) != CRM_OK) goto done;
    json_t *q = json_pack("{s:s}", "fields", "id,loyalty_points,loyalty_tier");
    rc = hotelp_each(ctx, "hotel.guest", q, settle_guest, &d);
    json_decref(q);
    if (rc != CRM_OK) goto done;
    hotelp_host->log(hotelp_self, CRM_INFO,
                     "demo data: %d rooms, %d guests, %d stays (%ld nights), %ld charges, "
                     "%ld loyalty entries, %ld later updates (balances, repriced folios)",
                     d.n_rooms, N_GUESTS, d.n_stays, d.n_nights, d.n_charges, d.n_entries,
                     d.n_fixed);
done:
    free(d.guests);
    free(d.stays);
    return rc;
}

int hotelp_demo_init(void)
{
    return hotelp_host->demo(hotelp_self, demo, NULL);
}
