/*
 * crm_util.h — small helpers every plugin ends up needing, so none writes
 * them again: walking every record of a query, money as exact cents, dates
 * as day numbers, record ids from text. Header-only (static inline): they
 * compile into the plugin, call the platform only through the host API table
 * passed in, and add no symbol to the plugin's exports.
 *
 *   #include <crm.h>
 *   #include <crm_util.h>
 *
 *   int64_t total = 0;
 *   crm_util_each(host, ctx, "hotel.charge", query, add_amount, &total);
 */
#ifndef CRM_UTIL_H
#define CRM_UTIL_H

#include "crm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Called with each record (borrowed); a non-zero return stops the walk and is returned. */
typedef int (*crm_util_each_fn)(json_t *record, void *arg);

/*
 * Walk every record of `type` matching `query` (list parameters as in
 * host->record_find; borrowed, may be NULL) with ctx's permissions, page by
 * page along the keyset cursor (1000 a page unless the query sets "limit").
 * Returns CRM_OK, record_find's error, or the first non-zero return of fn.
 */
static inline int crm_util_each(const crm_host_api *host, crm_ctx *ctx, const char *type,
                                json_t *query, crm_util_each_fn fn, void *arg)
{
    int rc = CRM_OK;
    json_t *page = NULL;
    json_t *q = query ? json_deep_copy(query) : json_object();
    if (!json_object_get(q, "limit")) json_object_set_new(q, "limit", json_integer(1000));
    for (;;) {
        if ((rc = host->record_find(ctx, type, q, &page)) != CRM_OK) break;
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

/*
 * A decimal field's value ("1234.50", a JSON number, or null) in cents
 * (two decimals; further digits are cut, as the field's scale-2 storage
 * would). 0 when absent.
 */
static inline int64_t crm_util_cents(json_t *decimal)
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

/* Cents as a new JSON string "1234.50" (a decimal field's API form). */
static inline json_t *crm_util_money(int64_t cents)
{
    int64_t a = cents < 0 ? -cents : cents;
    return json_sprintf("%s%lld.%02lld", cents < 0 ? "-" : "", (long long)(a / 100),
                        (long long)(a % 100));
}

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" as seconds since the epoch (UTC), or -1
 * when it is not a valid date (2024-02-30 is not). */
static inline int64_t crm_util_time(const char *text)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!text) return -1;
    const char *end = strptime(text, "%Y-%m-%d", &tm);
    if (!end) return -1;
    if (*end == 'T' && !(end = strptime(end + 1, "%H:%M:%S", &tm))) return -1;
    if (*end == 'Z') end++;
    if (*end) return -1;
    int year = tm.tm_year, month = tm.tm_mon, day = tm.tm_mday;
    int64_t t = (int64_t)timegm(&tm); /* normalises: 2024-02-30 would become 03-01 */
    if (tm.tm_year != year || tm.tm_mon != month || tm.tm_mday != day) return -1;
    return t;
}

/* Seconds since the epoch as "YYYY-MM-DDTHH:MM:SSZ" into out[21]. */
static inline void crm_util_datetime(int64_t t, char out[21])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A record id from text (a positive decimal integer, no sign or spaces): 1, or 0. */
static inline int crm_util_parse_id(const char *text, int64_t *out)
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

/* A record id from JSON (a positive integer, or such a string): 1, or 0. */
static inline int crm_util_json_id(json_t *value, int64_t *out)
{
    if (json_is_integer(value) && json_integer_value(value) > 0) {
        *out = json_integer_value(value);
        return 1;
    }
    return json_is_string(value) && crm_util_parse_id(json_string_value(value), out);
}

/* ---- Declaring types and roles from JSON text ---- */

/* A type to declare: its name "<plugin>.<name>", label, and fields as JSON text (the
 * shape of GET /api/v1/types/{type}'s "fields", so the source reads like the API). */
typedef struct crm_util_type_spec {
    const char *type, *label, *fields;
} crm_util_type_spec;

/* A default role: name, description and grants as JSON text
 * ({"hotel.room": {"read":"all","create":"none",...}}, see host->role_declare). */
typedef struct crm_util_role_spec {
    const char *name, *description, *grants;
} crm_util_role_spec;

/* Parse `json` (what: a label for the error) and hand it to `declare`: the shape
 * host->type_declare and host->role_declare share. */
static inline int crm_util__declare_json(const crm_host_api *host, crm_plugin *self,
                                         int (*declare)(crm_plugin *, const char *, const char *,
                                                        json_t *),
                                         const char *name, const char *text, const char *json,
                                         const char *what)
{
    json_error_t jerr;
    json_t *v = json_loads(json, 0, &jerr);
    if (!v)
        return host->error_set(CRM_EINTERNAL, NULL, "%s: %s (column %d)", what, jerr.text,
                               jerr.column);
    int rc = declare(self, name, text, v);
    json_decref(v);
    return rc;
}

/* Declare `n` types with host->type_declare (init only); a typo in a spec's JSON is an
 * error naming the type and the column. */
static inline int crm_util_declare_types(const crm_host_api *host, crm_plugin *self,
                                         const crm_util_type_spec *specs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char what[160];
        snprintf(what, sizeof what, "%s: field specs", specs[i].type);
        int rc = crm_util__declare_json(host, self, host->type_declare, specs[i].type,
                                        specs[i].label, specs[i].fields, what);
        if (rc != CRM_OK) return rc;
    }
    return CRM_OK;
}

/* Declare `n` default roles with host->role_declare (init only). */
static inline int crm_util_declare_roles(const crm_host_api *host, crm_plugin *self,
                                         const crm_util_role_spec *specs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char what[160];
        snprintf(what, sizeof what, "role %s: grants", specs[i].name);
        int rc = crm_util__declare_json(host, self, host->role_declare, specs[i].name,
                                        specs[i].description, specs[i].grants, what);
        if (rc != CRM_OK) return rc;
    }
    return CRM_OK;
}

/* ---- Deterministic random numbers (demo data) ---- */

/*
 * The next number of splitmix64 from `state` (any seed): a fixed seed gives the
 * same sequence on every machine, so `crm demo` loads the same data every time.
 * Not for secrets.
 */
static inline uint64_t crm_util_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- CSV for reports ---- */

/* A growing text; `failed` once an allocation failed (everything after is dropped). */
typedef struct crm_util_text {
    char *data;
    size_t len, cap;
    int failed;
} crm_util_text;

static inline void crm_util_put(crm_util_text *t, const char *s, size_t n)
{
    if (t->failed) return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2;
        char *data = (char *)realloc(t->data, cap);
        if (!data) {
            t->failed = 1;
            return;
        }
        t->data = data;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = 0;
}

/* "1234.50", "-5": a number to a spreadsheet (money is text in JSON), never a formula. */
static inline int crm_util_number_text(const char *s)
{
    if (*s == '-') s++;
    if (!*s) return 0;
    for (; *s; s++)
        if ((*s < '0' || *s > '9') && *s != '.') return 0;
    return 1;
}

/*
 * One CSV cell (RFC 4180: quoted when it holds , " CR or LF, quotes doubled). A
 * text cell starting with = + - @ TAB or CR gets a leading ' so that a spreadsheet
 * does not run it as a formula (SECURITY X4); `text` is 0 for numbers.
 */
static inline void crm_util_csv_cell(crm_util_text *t, const char *cell, int text)
{
    int formula = text && cell[0] && strchr("=+-@\t\r", cell[0]) != NULL;
    int quote = formula || strpbrk(cell, ",\"\r\n") != NULL;
    if (quote) crm_util_put(t, "\"", 1);
    if (formula) crm_util_put(t, "'", 1);
    for (const char *s = cell; *s; s++) {
        if (*s == '"') crm_util_put(t, "\"", 1); /* a quote is doubled */
        crm_util_put(t, s, 1);
    }
    if (quote) crm_util_put(t, "\"", 1);
}

/*
 * A report's rows (a JSON array of flat objects) as CSV: a header of the first
 * row's keys, then one CRLF-ended line per row in that column order; null and
 * absent cells are empty, numbers as JSON writes them. A new malloc'd string, or
 * NULL when out of memory. Reply it with host->reply_data(..., "text/csv; charset=utf-8").
 */
static inline char *crm_util_rows_csv(json_t *rows)
{
    crm_util_text t = {NULL, 0, 0, 0};
    size_t i;
    const char *key;
    json_t *row, *cell, *first = json_array_get(rows, 0);
    int col = 0;
    crm_util_put(&t, "", 0);
    json_object_foreach(first, key, cell) {
        if (col++) crm_util_put(&t, ",", 1);
        crm_util_csv_cell(&t, key, 1);
    }
    crm_util_put(&t, "\r\n", 2);
    json_array_foreach(rows, i, row) {
        col = 0;
        json_object_foreach(first, key, cell) {
            json_t *v = json_object_get(row, key);
            char *text = json_is_string(v) ? strdup(json_string_value(v))
                         : !v || json_is_null(v)
                             ? strdup("")
                             : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT |
                                                 JSON_REAL_PRECISION(12));
            if (!text) t.failed = 1;
            if (col++) crm_util_put(&t, ",", 1);
            crm_util_csv_cell(&t, text ? text : "",
                              json_is_string(v) && !crm_util_number_text(text ? text : ""));
            free(text);
        }
        crm_util_put(&t, "\r\n", 2);
    }
    if (t.failed) {
        free(t.data);
        return NULL;
    }
    return t.data;
}

#endif
