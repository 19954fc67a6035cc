/*
 * sched.c — the scheduler: cron expressions, date offsets and yearly dates
 * turned into handler calls, with what has fired persisted so that a restart
 * neither loses nor repeats a firing.
 *
 * Bookkeeping invariants:
 *   - core_sched_state.last_tick only moves forward, and only once everything
 *     due up to it has run (or was skipped as too old);
 *   - a cron firing writes last_tick in its own transaction, so its commit is
 *     the record that it happened;
 *   - an offset / yearly firing inserts (name, record_id, due) into
 *     core_sched_fired in its own transaction, so a crash before last_tick is
 *     written re-selects the record on the next tick and the fired row stops
 *     the repeat. A failing handler leaves last_tick where it was, so the next
 *     tick's window still covers it (until it is older than CRM_SCHED_CATCHUP).
 */
#include "sched.h"
#include "maintain.h"

#include "perm.h"
#include "record.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DAY 86400
/* How far crm_cron_next / cron_prev look before giving up. */
#define CRON_HORIZON (5 * 366 * (int64_t)DAY)
/* Fired rows older than this can never fall into a window again (last_tick never moves back
 * and a window never reaches further back than CRM_SCHED_CATCHUP); kept a while for audit. */
#define FIRED_KEEP (2 * (int64_t)CRM_SCHED_CATCHUP)

/* ---- Cron expressions ---- */

typedef struct cron_field {
    const char *name; /* as error messages say it */
    int lo, hi;
    const char *const *names; /* three-letter names for lo, lo+1, ... or NULL */
    const char *names_hint;
} cron_field;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                          "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const cron_field cron_fields[5] = {
    {"minute", 0, 59, NULL, NULL},
    {"hour", 0, 23, NULL, NULL},
    {"day-of-month", 1, 31, NULL, NULL},
    {"month", 1, 12, month_names, "jan..dec"},
    /* 7 is Sunday too (folded into bit 0 after parsing) */
    {"day-of-week", 0, 7, dow_names, "sun..sat"},
};

static const struct {
    const char *macro, *expansion;
} cron_macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* One value of a field: a number, or a name where the field has names. *p advances. */
static int cron_value(const char *expr, const cron_field *f, const char *item, const char **p,
                      int *out)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s)) {
            if (v < 1000) v = v * 10 + (*s - '0');
            s++;
        }
        if (v < f->lo || v > f->hi)
            return crm_error_set(CRM_EINVALID, NULL, "cron \"%s\": %s %ld out of range %d-%d", expr,
                                 f->name, v, f->lo, f->hi);
        *out = (int)v;
        *p = s;
        return CRM_OK;
    }
    if (f->names && isalpha((unsigned char)s[0]) && isalpha((unsigned char)s[1]) &&
        isalpha((unsigned char)s[2]) && !isalpha((unsigned char)s[3])) {
        for (int i = 0; f->names[i]; i++) {
            if (strncasecmp(s, f->names[i], 3) == 0) {
                *out = f->lo + i;
                *p = s + 3;
                return CRM_OK;
            }
        }
    }
    if (f->names)
        return crm_error_set(CRM_EINVALID, NULL,
                             "cron \"%s\": %s \"%s\" is not a number or a name (%s)", expr, f->name,
                             item, f->names_hint);
    return crm_error_set(CRM_EINVALID, NULL, "cron \"%s\": %s \"%s\" is not a number", expr,
                         f->name, item);
}

/* One field's text (a token without blanks) into a bit set. */
static int cron_parse_field(const char *expr, const cron_field *f, const char *text, uint64_t *bits)
{
    int rc = CRM_OK;
    char *copy = crm_strdup(text);
    char *save = NULL;
    *bits = 0;
    /* strtok would merge ",," silently; check for empty items first */
    size_t n = strlen(text);
    if (n == 0 || text[0] == ',' || text[n - 1] == ',' || strstr(text, ",,")) {
        rc = crm_error_set(CRM_EINVALID, NULL, "cron \"%s\": %s \"%s\" has an empty item", expr,
                           f->name, text);
        goto done;
    }
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        const char *p = item;
        int lo, hi, step = 1;
        bool range = false;
        if (*p == '*') {
            lo = f->lo;
            /* day-of-week "*" means 0-6: 7 would only repeat Sunday */
            hi = f->hi == 7 ? 6 : f->hi;
            range = true;
            p++;
        } else {
            if ((rc = cron_value(expr, f, item, &p, &lo)) < 0) goto done;
            hi = lo;
            if (*p == '-') {
                p++;
                if ((rc = cron_value(expr, f, item, &p, &hi)) < 0) goto done;
                if (hi < lo) {
                    rc = crm_error_set(CRM_EINVALID, NULL,
                                       "cron \"%s\": %s range \"%s\" is reversed", expr, f->name,
                                       item);
                    goto done;
                }
                range = true;
            }
        }
        if (*p == '/') {
            p++;
            long v = 0;
            if (!isdigit((unsigned char)*p)) {
                rc = crm_error_set(CRM_EINVALID, NULL,
                                   "cron \"%s\": %s step in \"%s\" is not a number", expr, f->name,
                                   item);
                goto done;
            }
            while (isdigit((unsigned char)*p)) {
                if (v < 1000) v = v * 10 + (*p - '0');
                p++;
            }
            if (v < 1 || v > f->hi) {
                rc = crm_error_set(CRM_EINVALID, NULL, "cron \"%s\": %s step %ld out of range 1-%d",
                                   expr, f->name, v, f->hi);
                goto done;
            }
            step = (int)v;
            /* "5/15" means 5-max/15, as cronie reads it */
            if (!range) hi = f->hi == 7 ? 6 : f->hi;
        }
        if (*p != '\0') {
            rc = crm_error_set(CRM_EINVALID, NULL, "cron \"%s\": %s \"%s\" is not understood", expr,
                               f->name, item);
            goto done;
        }
        for (int v = lo; v <= hi; v += step)
            *bits |= (uint64_t)1 << v;
    }
done:
    free(copy);
    return rc;
}

int crm_cron_parse(crm_cron *out, const char *expr)
{
    const char *src = expr;
    char *fields[5] = {0};
    uint64_t bits[5];
    int rc = CRM_OK, n = 0;
    crm_cron c;

    memset(&c, 0, sizeof c);
    if (!expr) return crm_error_set(CRM_EINVALID, NULL, "cron expression missing");
    while (isspace((unsigned char)*src))
        src++;
    if (*src == '@') {
        size_t len = strcspn(src, " \t\r\n");
        const char *rest = src + len;
        while (isspace((unsigned char)*rest))
            rest++;
        for (size_t i = 0; i < CRM_ARRAY_LEN(cron_macros) && !*rest; i++) {
            if (strlen(cron_macros[i].macro) == len &&
                strncasecmp(src, cron_macros[i].macro, len) == 0) {
                src = cron_macros[i].expansion;
                break;
            }
        }
        if (*src == '@')
            return crm_error_set(CRM_EINVALID, NULL,
                                 "cron \"%s\": unknown macro (use @hourly, @daily, @midnight, "
                                 "@weekly, @monthly, @yearly or @annually)",
                                 expr);
    }
    for (const char *p = src; *p;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p) break;
        size_t len = strcspn(p, " \t\r\n");
        if (n < 5) fields[n] = crm_strndup(p, len);
        n++;
        p += len;
    }
    if (n != 5) {
        rc = crm_error_set(CRM_EINVALID, NULL,
                           "cron \"%s\": expected 5 fields (minute hour day-of-month month "
                           "day-of-week), found %d",
                           expr, n);
        goto done;
    }
    for (int i = 0; i < 5; i++)
        if ((rc = cron_parse_field(expr, &cron_fields[i], fields[i], &bits[i])) < 0) goto done;
    c.minute = bits[0];
    c.hour = (uint32_t)bits[1];
    c.dom = (uint32_t)bits[2];
    c.month = (uint32_t)bits[3];
    c.dow = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f);
    /* Vixie cron: a field starting with '*' (also "*\/2") counts as unrestricted for the
     * day-of-month / day-of-week OR rule. */
    c.dom_any = fields[2][0] == '*';
    c.dow_any = fields[4][0] == '*';
    *out = c;
done:
    for (int i = 0; i < 5; i++)
        free(fields[i]);
    return rc;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool cron_day_matches(const crm_cron *c, int64_t days, unsigned dom)
{
    int dow = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
    bool dm = (c->dom >> dom) & 1, wm = (c->dow >> dow) & 1;
    if (c->dom_any || c->dow_any) return dm && wm;
    return dm || wm;
}

int64_t crm_cron_next(const crm_cron *c, int64_t t)
{
    int64_t start = floor_div(t, 60) * 60 + 60, limit = t + CRON_HORIZON;
    int64_t days = floor_div(start, DAY);
    int secs = (int)(start - days * DAY);
    int hour = secs / 3600, min = secs % 3600 / 60;

    /* Each step skips a whole non-matching month, day or hour, so a search over five
     * years takes at most a few thousand steps. */
    while (days * DAY <= limit) {
        int y;
        unsigned m, d;
        crm_civil_from_days(days, &y, &m, &d);
        if (!((c->month >> m) & 1)) {
            days = m == 12 ? crm_days_from_civil(y + 1, 1, 1) : crm_days_from_civil(y, m + 1, 1);
            hour = min = 0;
            continue;
        }
        if (!cron_day_matches(c, days, d)) {
            days++;
            hour = min = 0;
            continue;
        }
        int h = hour;
        while (h < 24 && !((c->hour >> h) & 1))
            h++;
        if (h == 24) {
            days++;
            hour = min = 0;
            continue;
        }
        if (h != hour) min = 0;
        hour = h;
        int mi = min;
        while (mi < 60 && !((c->minute >> mi) & 1))
            mi++;
        if (mi == 60) {
            if (++hour == 24) {
                days++;
                hour = 0;
            }
            min = 0;
            continue;
        }
        int64_t r = days * DAY + hour * 3600 + mi * 60;
        return r <= limit ? r : -1;
    }
    return -1;
}

/* The latest matching time at or before `t` (seconds truncated), or -1 within the horizon. */
static int64_t cron_prev(const crm_cron *c, int64_t t)
{
    int64_t start = floor_div(t, 60) * 60, limit = t - CRON_HORIZON;
    int64_t days = floor_div(start, DAY);
    int secs = (int)(start - days * DAY);
    int hour = secs / 3600, min = secs % 3600 / 60;

    while ((days + 1) * DAY > limit) {
        int y;
        unsigned m, d;
        crm_civil_from_days(days, &y, &m, &d);
        if (!((c->month >> m) & 1)) {
            days = crm_days_from_civil(y, m, 1) - 1;
            hour = 23;
            min = 59;
            continue;
        }
        if (!cron_day_matches(c, days, d)) {
            days--;
            hour = 23;
            min = 59;
            continue;
        }
        int h = hour;
        while (h >= 0 && !((c->hour >> h) & 1))
            h--;
        if (h < 0) {
            days--;
            hour = 23;
            min = 59;
            continue;
        }
        if (h != hour) min = 59;
        hour = h;
        int mi = min;
        while (mi >= 0 && !((c->minute >> mi) & 1))
            mi--;
        if (mi < 0) {
            if (--hour < 0) {
                days--;
                hour = 23;
            }
            min = 59;
            continue;
        }
        int64_t r = days * DAY + hour * 3600 + mi * 60;
        return r >= limit ? r : -1;
    }
    return -1;
}

/* ---- The registry ---- */

enum { SCHED_CRON, SCHED_OFFSET, SCHED_YEARLY };

typedef struct schedule {
    char *name;
    int kind;
    crm_cron cron;
    char *type, *field; /* offset / yearly */
    int field_kind;     /* CRM_FIELD_DATE or CRM_FIELD_DATETIME */
    int64_t offset;     /* seconds added to the field's moment */
    int at_minute;      /* minutes past midnight UTC for date fields */
    crm_sched_fn fn;
    void *udata;
} schedule;

struct crm_sched {
    crm_kernel *k;
    pthread_mutex_t mu; /* items, and the thread's flags */
    schedule **items;
    int n, cap;
    /* One tick at a time: the background thread and a caller of crm_sched_tick must not
     * both fire the same cron time. (So a handler must not call crm_sched_tick itself.) */
    pthread_mutex_t tick_mu;
    pthread_cond_t wake;
    pthread_t thread;
    bool running, stopping;
    int interval;
};

static void schedule_free(schedule *sc)
{
    if (!sc) return;
    free(sc->name);
    free(sc->type);
    free(sc->field);
    free(sc);
}

static schedule *schedule_copy(const schedule *src)
{
    schedule *sc = crm_malloc(sizeof *sc);
    *sc = *src;
    sc->name = crm_strdup(src->name);
    sc->type = src->type ? crm_strdup(src->type) : NULL;
    sc->field = src->field ? crm_strdup(src->field) : NULL;
    return sc;
}

int crm_sched_open(crm_sched **out, crm_kernel *k)
{
    crm_sched *s = crm_calloc(1, sizeof *s);
    pthread_condattr_t attr;
    s->k = k;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->tick_mu, NULL);
    /* A monotonic clock, so stepping the wall clock neither stalls nor rushes ticks. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &attr);
    pthread_condattr_destroy(&attr);
    *out = s;
    return CRM_OK;
}

void crm_sched_close(crm_sched *s)
{
    if (!s) return;
    crm_sched_stop(s);
    for (int i = 0; i < s->n; i++)
        schedule_free(s->items[i]);
    free(s->items);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->tick_mu);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Takes ownership of sc. */
static int sched_add(crm_sched *s, schedule *sc)
{
    int rc = CRM_OK;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n; i++) {
        if (strcmp(s->items[i]->name, sc->name) == 0) {
            rc = crm_error_set(CRM_ECONFLICT, NULL, "schedule \"%s\" already exists", sc->name);
            goto done;
        }
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->items = crm_realloc(s->items, (size_t)s->cap * sizeof *s->items);
    }
    s->items[s->n++] = sc;
    sc = NULL;
done:
    pthread_mutex_unlock(&s->mu);
    schedule_free(sc);
    return rc;
}

static int check_name(const char *name, crm_sched_fn fn)
{
    if (!name || !*name || strlen(name) > 200)
        return crm_error_set(CRM_EINVALID, NULL, "schedule name must be 1 to 200 characters");
    if (!fn) return crm_error_set(CRM_EINVALID, NULL, "schedule \"%s\": no handler", name);
    return CRM_OK;
}

int crm_sched_cron(crm_sched *s, const char *name, const char *expr, crm_sched_fn fn, void *udata)
{
    crm_cron c;
    int rc;
    if ((rc = check_name(name, fn)) < 0) return rc;
    if ((rc = crm_cron_parse(&c, expr)) < 0) return rc;
    schedule *sc = crm_calloc(1, sizeof *sc);
    sc->name = crm_strdup(name);
    sc->kind = SCHED_CRON;
    sc->cron = c;
    sc->fn = fn;
    sc->udata = udata;
    return sched_add(s, sc);
}

/* Shared by offset and yearly: the type and field must exist and hold a date. */
static int sched_dated(crm_sched *s, int kind, const char *name, const char *type,
                       const char *field, int64_t offset, int at_minute, crm_sched_fn fn,
                       void *udata)
{
    int rc, fkind = 0;
    const crm_type *t;
    const crm_field *f;

    if ((rc = check_name(name, fn)) < 0) return rc;
    if (!type || !(t = crm_schema_type(s->k->schema, type)))
        return crm_error_set(CRM_EINVALID, NULL, "schedule \"%s\": unknown type \"%s\"", name,
                             type ? type : "");
    /* registry reads take no lock: fields are append-only and never freed */
    f = field ? crm_type_field(t, field) : NULL;
    if (f) fkind = f->kind;
    if (!f)
        return crm_error_set(CRM_EINVALID, NULL, "schedule \"%s\": type %s has no field \"%s\"",
                             name, type, field ? field : "");
    if (kind == SCHED_YEARLY && fkind != CRM_FIELD_DATE)
        return crm_error_set(CRM_EINVALID, NULL,
                             "schedule \"%s\": yearly needs a date field; %s.%s is %s", name, type,
                             field, crm_field_kind_name(fkind));
    if (fkind != CRM_FIELD_DATE && fkind != CRM_FIELD_DATETIME)
        return crm_error_set(CRM_EINVALID, NULL,
                             "schedule \"%s\": %s.%s is %s, not a date or datetime", name, type,
                             field, crm_field_kind_name(fkind));
    if (at_minute < -1 || at_minute > 1439)
        return crm_error_set(CRM_EINVALID, NULL,
                             "schedule \"%s\": at_minute %d out of range 0-1439 (or -1)", name,
                             at_minute);
    /* ±100 years is far beyond any sensible reminder and keeps the window sums in range */
    if (offset < -100 * 366 * (int64_t)DAY || offset > 100 * 366 * (int64_t)DAY)
        return crm_error_set(CRM_EINVALID, NULL, "schedule \"%s\": offset out of range", name);

    schedule *sc = crm_calloc(1, sizeof *sc);
    sc->name = crm_strdup(name);
    sc->kind = kind;
    sc->type = crm_strdup(type);
    sc->field = crm_strdup(field);
    sc->field_kind = fkind;
    sc->offset = offset;
    /* a datetime carries its own time of day */
    sc->at_minute = fkind == CRM_FIELD_DATE && at_minute > 0 ? at_minute : 0;
    sc->fn = fn;
    sc->udata = udata;
    return sched_add(s, sc);
}

int crm_sched_offset(crm_sched *s, const char *name, const char *type, const char *field,
                     int64_t offset_seconds, int at_minute, crm_sched_fn fn, void *udata)
{
    return sched_dated(s, SCHED_OFFSET, name, type, field, offset_seconds, at_minute, fn, udata);
}

int crm_sched_yearly(crm_sched *s, const char *name, const char *type, const char *field,
                     int at_minute, crm_sched_fn fn, void *udata)
{
    return sched_dated(s, SCHED_YEARLY, name, type, field, 0, at_minute, fn, udata);
}

int crm_sched_remove(crm_sched *s, const char *name)
{
    int rc = CRM_OK;
    pthread_mutex_lock(&s->mu);
    int i = 0;
    while (i < s->n && strcmp(s->items[i]->name, name) != 0)
        i++;
    if (i == s->n) {
        rc = crm_error_set(CRM_ENOTFOUND, NULL, "no schedule \"%s\"", name);
        goto done;
    }
    schedule_free(s->items[i]);
    memmove(&s->items[i], &s->items[i + 1], (size_t)(s->n - i - 1) * sizeof *s->items);
    s->n--;
done:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- Persistence ---- */

static int state_read(crm_conn *conn, const char *name, int64_t *last, bool *found)
{
    crm_stmt *st;
    int rc = crm_stmt_prepare(conn, &st, "SELECT last_tick FROM core_sched_state WHERE name = ?");
    if (rc < 0) return rc;
    crm_stmt_bind_text(st, 1, name, -1);
    rc = crm_stmt_step(st);
    *found = rc == 1;
    if (rc == 1) *last = crm_stmt_column_int(st, 0);
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

/* Inside a transaction. */
static int state_write(crm_conn *conn, const char *name, int64_t last)
{
    crm_stmt *st;
    int rc = crm_stmt_prepare(conn, &st,
                              "INSERT INTO core_sched_state (name, last_tick) VALUES (?, ?) "
                              "ON CONFLICT (name) DO UPDATE SET last_tick = excluded.last_tick");
    if (rc < 0) return rc;
    crm_stmt_bind_text(st, 1, name, -1);
    crm_stmt_bind_int(st, 2, last);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

/* The schedule's last tick becomes `now`, and fired rows too old to matter go. */
static int state_advance(crm_conn *conn, const schedule *sc, int64_t now)
{
    crm_stmt *st;
    int depth = crm_tx_depth(conn);
    int rc = crm_tx_begin(conn);
    if (rc < 0) return rc;
    if ((rc = state_write(conn, sc->name, now)) < 0) goto done;
    if (sc->kind != SCHED_CRON) {
        if ((rc = crm_stmt_prepare(conn, &st,
                                   "DELETE FROM core_sched_fired WHERE name = ? AND due < ?")) < 0)
            goto done;
        crm_stmt_bind_text(st, 1, sc->name, -1);
        crm_stmt_bind_int(st, 2, now - FIRED_KEEP);
        rc = crm_stmt_step(st);
        crm_stmt_done(st);
        if (rc < 0) goto done;
    }
    rc = crm_tx_commit(conn);
done:
    /* a failed commit may or may not have closed the level (savepoint vs outermost) */
    if (rc < 0 && crm_tx_depth(conn) > depth) crm_tx_rollback(conn);
    return rc < 0 ? rc : CRM_OK;
}

/* ---- Firing ---- */

typedef struct candidate {
    int64_t id, due;
} candidate;

typedef struct candidates {
    candidate *v;
    int n, cap;
} candidates;

static void candidates_push(candidates *c, int64_t id, int64_t due)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->v = crm_realloc(c->v, (size_t)c->cap * sizeof *c->v);
    }
    c->v[c->n].id = id;
    c->v[c->n].due = due;
    c->n++;
}

static void log_failure(const schedule *sc, int64_t record_id, int rc)
{
    const crm_error *e = crm_error_last();
    const char *msg = e->code == rc && e->message && *e->message ? e->message : "(no message)";
    if (record_id)
        crm_log(CRM_LOG_ERROR, "schedule \"%s\": record %s/%lld: %s: %s (retried next tick)",
                sc->name, sc->type, (long long)record_id, crm_error_name(rc), msg);
    else
        crm_log(CRM_LOG_ERROR, "schedule \"%s\": %s: %s (retried next tick)", sc->name,
                crm_error_name(rc), msg);
}

/*
 * One firing in its own transaction with its bookkeeping. Returns 1 when the handler
 * ran and committed, 0 when there was nothing to do (fired before, record gone), or an
 * error (already logged) that rolled everything back.
 */
static int fire(crm_sched *s, const schedule *sc, int64_t record_id, int64_t due, int64_t now)
{
    crm_kernel *k = s->k;
    crm_conn *conn = crm_store_conn(k->store);
    char *via = crm_sprintf("schedule %s", sc->name);
    int depth = crm_tx_depth(conn);
    json_t *rec = NULL;
    crm_stmt *st;
    crm_ctx ctx;
    int rc;

    if ((rc = crm_tx_begin(conn)) < 0) goto done;
    if (sc->kind == SCHED_CRON) {
        if ((rc = state_write(conn, sc->name, now)) < 0) goto done;
    } else {
        /* The fired row is both the dedupe check and the record of the firing. */
        if ((rc = crm_stmt_prepare(conn, &st,
                                   "INSERT OR IGNORE INTO core_sched_fired "
                                   "(name, record_id, due, fired_at) VALUES (?, ?, ?, ?)")) < 0)
            goto done;
        crm_stmt_bind_text(st, 1, sc->name, -1);
        crm_stmt_bind_int(st, 2, record_id);
        crm_stmt_bind_int(st, 3, due);
        crm_stmt_bind_int(st, 4, now);
        rc = crm_stmt_step(st);
        crm_stmt_done(st);
        if (rc < 0) goto done;
        if (crm_conn_changes(conn) == 0) { /* fired before */
            rc = 0;
            goto done;
        }
    }
    crm_ctx_init(&ctx, k, crm_principal_system(), via);
    if (sc->kind != SCHED_CRON) {
        rc = crm_record_get(&ctx, sc->type, record_id, false, &rec);
        if (rc == CRM_ENOTFOUND) { /* deleted since it was selected */
            rc = 0;
            goto done;
        }
        if (rc < 0) goto done;
    }
    crm_firing f = {sc->name,
                    due,
                    now,
                    sc->kind == SCHED_CRON ? NULL : sc->type,
                    sc->kind == SCHED_CRON ? 0 : record_id,
                    rec};
    if ((rc = sc->fn(&ctx, &f, sc->udata)) < 0) goto done;
    if ((rc = crm_tx_commit(conn)) < 0) goto done;
    rc = 1;
done:
    if (rc < 0) log_failure(sc, record_id, rc);
    /* rc 0 (nothing to do) rolls back the fired row's no-op; a failed commit may or may
     * not have closed the level (savepoint vs outermost) */
    if (rc <= 0 && crm_tx_depth(conn) > depth) crm_tx_rollback(conn);
    json_decref(rec);
    free(via);
    return rc;
}

static int run_cron(crm_sched *s, const schedule *sc, int64_t now, int64_t last)
{
    crm_conn *conn = crm_store_conn(s->k->store);
    int64_t next = crm_cron_next(&sc->cron, last);
    if (next < 0 || next > now) return state_advance(conn, sc, now);
    /* Missed several times: run once, for the latest (anacron's catch-up). */
    int64_t due = cron_prev(&sc->cron, now);
    if (due < next) due = next;
    int rc = fire(s, sc, 0, due, now);
    /* On failure last_tick stays, so the next tick fires again. */
    return rc < 0 ? 0 : rc;
}

/*
 * Offset: records whose moment + offset is in (lo, hi]. The range predicate on the field
 * (stored as fixed-width ISO text, which sorts like time) lets an index on it help.
 */
static int collect_offset(crm_sched *s, const schedule *sc, int64_t lo, int64_t hi, candidates *out)
{
    crm_conn *conn = crm_store_conn(s->k->store);
    crm_buf sql = CRM_BUF_INIT;
    crm_stmt *st = NULL;
    char a[21], b[21];
    int64_t shift = sc->offset + (int64_t)sc->at_minute * 60;
    int rc = CRM_OK;

    if (lo >= hi) return CRM_OK;
    crm_buf_puts(&sql, "SELECT id, ");
    crm_buf_put_ident(&sql, sc->field);
    crm_buf_puts(&sql, " FROM ");
    crm_buf_put_ident(&sql, sc->type);
    crm_buf_puts(&sql, " WHERE deleted_at IS NULL AND ");
    crm_buf_put_ident(&sql, sc->field);
    if (sc->field_kind == CRM_FIELD_DATE) {
        /* days D with D*86400 in (lo - shift, hi - shift] */
        int64_t dmin = floor_div(lo - shift, DAY) + 1, dmax = floor_div(hi - shift, DAY);
        if (dmin > dmax) goto done;
        crm_date_format(dmin * DAY, a);
        crm_date_format(dmax * DAY, b);
        crm_buf_puts(&sql, " >= ? AND ");
    } else {
        crm_time_format(lo - shift, a);
        crm_time_format(hi - shift, b);
        crm_buf_puts(&sql, " > ? AND ");
    }
    crm_buf_put_ident(&sql, sc->field);
    crm_buf_puts(&sql, " <= ? ORDER BY ");
    crm_buf_put_ident(&sql, sc->field);
    crm_buf_puts(&sql, ", id");
    if ((rc = crm_stmt_prepare(conn, &st, crm_buf_str(&sql))) < 0) goto done;
    crm_stmt_bind_text(st, 1, a, -1);
    crm_stmt_bind_text(st, 2, b, -1);
    while ((rc = crm_stmt_step(st)) == 1) {
        const char *v = crm_stmt_column_text(st, 1);
        int64_t moment;
        bool date_only;
        if (!v || !crm_time_parse(v, &moment, &date_only)) continue;
        int64_t due = moment + shift;
        /* re-check in integers: the text bounds are only as precise as the format */
        if (due > lo && due <= hi) candidates_push(out, crm_stmt_column_int(st, 0), due);
    }
done:
    if (st) crm_stmt_done(st);
    crm_buf_free(&sql);
    return rc < 0 ? rc : CRM_OK;
}

/* Yearly: records whose month-day is day `days`'s (29 Feb also on 28 Feb of a common year). */
static int collect_yearly_day(crm_sched *s, const schedule *sc, int64_t days, candidates *out)
{
    crm_conn *conn = crm_store_conn(s->k->store);
    crm_buf sql = CRM_BUF_INIT;
    crm_stmt *st = NULL;
    char date[11], md[6];
    int y;
    unsigned m, d;
    int rc = CRM_OK;

    crm_civil_from_days(days, &y, &m, &d);
    crm_date_format(days * DAY, date);
    snprintf(md, sizeof md, "%02u-%02u", m, d);
    bool feb28 = m == 2 && d == 28 && !crm_is_leap(y);

    crm_buf_puts(&sql, "SELECT id FROM ");
    crm_buf_put_ident(&sql, sc->type);
    crm_buf_puts(&sql, " WHERE deleted_at IS NULL AND substr(");
    crm_buf_put_ident(&sql, sc->field);
    crm_buf_puts(&sql, ", 6, 5) IN (?, ?) AND ");
    /* an anniversary does not fire before the date itself (a future date is not due yet) */
    crm_buf_put_ident(&sql, sc->field);
    crm_buf_puts(&sql, " <= ? ORDER BY id");
    if ((rc = crm_stmt_prepare(conn, &st, crm_buf_str(&sql))) < 0) goto done;
    crm_stmt_bind_text(st, 1, md, -1);
    crm_stmt_bind_text(st, 2, feb28 ? "02-29" : md, -1);
    crm_stmt_bind_text(st, 3, date, -1);
    int64_t due = days * DAY + (int64_t)sc->at_minute * 60;
    while ((rc = crm_stmt_step(st)) == 1)
        candidates_push(out, crm_stmt_column_int(st, 0), due);
done:
    if (st) crm_stmt_done(st);
    crm_buf_free(&sql);
    return rc < 0 ? rc : CRM_OK;
}

/* Days D whose moment D*86400 + at_minute*60 is in (lo, hi], capped to the last `max` days. */
static int collect_yearly(crm_sched *s, const schedule *sc, int64_t lo, int64_t hi, int64_t max,
                          candidates *out)
{
    int64_t at = (int64_t)sc->at_minute * 60;
    int64_t dmin = floor_div(lo - at, DAY) + 1, dmax = floor_div(hi - at, DAY);
    int rc = CRM_OK;
    if (dmax - dmin + 1 > max) dmin = dmax - max + 1;
    for (int64_t d = dmin; d <= dmax && rc == CRM_OK; d++)
        rc = collect_yearly_day(s, sc, d, out);
    return rc;
}

static int run_dated(crm_sched *s, const schedule *sc, int64_t now, int64_t last)
{
    crm_conn *conn = crm_store_conn(s->k->store);
    candidates due = {0}, skipped = {0};
    int64_t floor_t = now - CRM_SCHED_CATCHUP;
    int64_t lo = last > floor_t ? last : floor_t;
    int rc, fired = 0, failed = 0;

    if (last < floor_t) {
        /* Too old to run late: count them for the log. A yearly schedule down for years
         * only looks at the last year of it (every date came round once by then). */
        rc = sc->kind == SCHED_OFFSET ? collect_offset(s, sc, last, floor_t, &skipped)
                                      : collect_yearly(s, sc, last, floor_t, 366, &skipped);
        if (rc < 0) goto done;
        if (skipped.n)
            crm_log(CRM_LOG_WARN,
                    "schedule \"%s\": skipped %d firing(s) due more than %d days ago "
                    "(downtime beyond the catch-up window)",
                    sc->name, skipped.n, CRM_SCHED_CATCHUP / DAY);
    }
    rc = sc->kind == SCHED_OFFSET
             ? collect_offset(s, sc, lo, now, &due)
             : collect_yearly(s, sc, lo, now, CRM_SCHED_CATCHUP / DAY + 1, &due);
    if (rc < 0) goto done;
    for (int i = 0; i < due.n; i++) {
        int r = fire(s, sc, due.v[i].id, due.v[i].due, now);
        if (r < 0)
            failed++;
        else
            fired += r;
    }
    /* A failure keeps last_tick, so the next tick's window covers it again; what did
     * fire is not repeated thanks to its fired row. */
    rc = failed ? CRM_OK : state_advance(conn, sc, now);
done:
    free(due.v);
    free(skipped.v);
    return rc < 0 ? rc : fired;
}

static int run_schedule(crm_sched *s, const schedule *sc, int64_t now)
{
    crm_conn *conn = crm_store_conn(s->k->store);
    int64_t last = 0;
    bool found;
    int rc = state_read(conn, sc->name, &last, &found);
    if (rc < 0) return rc;
    /* First sight: start from now, do not fire for the past. */
    if (!found) return state_advance(conn, sc, now);
    if (last >= now) return 0; /* nothing new (or the clock went back: last_tick stays) */
    return sc->kind == SCHED_CRON ? run_cron(s, sc, now, last) : run_dated(s, sc, now, last);
}

int crm_sched_tick(crm_sched *s, int64_t now)
{
    schedule **snap = NULL;
    int n = 0, total = 0, first_rc = CRM_OK;
    char *first_msg = NULL;

    pthread_mutex_lock(&s->tick_mu);
    /* Work on a copy, so handlers may add or remove schedules without deadlock. */
    pthread_mutex_lock(&s->mu);
    if (s->n) {
        snap = crm_malloc((size_t)s->n * sizeof *snap);
        for (n = 0; n < s->n; n++)
            snap[n] = schedule_copy(s->items[n]);
    }
    pthread_mutex_unlock(&s->mu);

    for (int i = 0; i < n; i++) {
        int rc = run_schedule(s, snap[i], now);
        if (rc >= 0) {
            total += rc;
            continue;
        }
        /* Bookkeeping failed (busy, disk full): the others still run; report the first. */
        crm_log(CRM_LOG_ERROR, "schedule \"%s\": %s", snap[i]->name, crm_error_last()->message);
        if (first_rc == CRM_OK) {
            first_rc = rc;
            first_msg = crm_strdup(crm_error_last()->message);
        }
    }
    for (int i = 0; i < n; i++)
        schedule_free(snap[i]);
    free(snap);
    pthread_mutex_unlock(&s->tick_mu);
    if (first_rc < 0) {
        /* restore the first failure's message, which later schedules' errors replaced */
        crm_error_set(first_rc, NULL, "%s", first_msg);
        free(first_msg);
        return first_rc;
    }
    return total;
}

/* ---- The background thread ---- */

static void *sched_main(void *arg)
{
    crm_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        pthread_mutex_unlock(&s->mu);
        /* Tick first: a restart catches up at once rather than an interval later. */
        if (crm_sched_tick(s, crm_now()) < 0)
            crm_log(CRM_LOG_WARN, "scheduler tick: %s", crm_error_last()->message);
        /* The database's upkeep (maintain.h): a bounded step, once a day. */
        if (crm_maintain_tick(s->k, crm_now()) < 0)
            crm_log(CRM_LOG_WARN, "maintain: %s", crm_error_last()->message);
        pthread_mutex_lock(&s->mu);
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += s->interval;
        while (!s->stopping) {
            if (pthread_cond_timedwait(&s->wake, &s->mu, &deadline) == ETIMEDOUT) break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    crm_store_release_thread(s->k->store);
    return NULL;
}

int crm_sched_start(crm_sched *s, int interval)
{
    int rc = CRM_OK;
    if (interval < 1)
        return crm_error_set(CRM_EINVALID, NULL, "scheduler interval %d: must be 1 second or more",
                             interval);
    pthread_mutex_lock(&s->mu);
    if (s->running) {
        rc = crm_error_set(CRM_ECONFLICT, NULL, "scheduler already running");
        goto done;
    }
    s->interval = interval;
    s->stopping = false;
    int err = pthread_create(&s->thread, NULL, sched_main, s);
    if (err != 0) {
        rc =
            crm_error_set(CRM_EINTERNAL, NULL, "scheduler: cannot start thread: %s", strerror(err));
        goto done;
    }
    s->running = true;
done:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void crm_sched_stop(crm_sched *s)
{
    pthread_mutex_lock(&s->mu);
    if (!s->running) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    s->stopping = true;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_lock(&s->mu);
    s->running = false;
    s->stopping = false;
    pthread_mutex_unlock(&s->mu);
}
