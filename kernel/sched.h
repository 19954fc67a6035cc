/*
 * sched.h — turns time into events.
 *
 * Three kinds of schedule, each with a stable name:
 *   cron:   a five-field cron expression ("0 3 * * *"), in UTC;
 *   offset: N seconds before (negative) or after a date / datetime field of
 *           every live record of a type ("3 days before period_end"); a date
 *           field fires at `at_minute` minutes past midnight UTC of its day;
 *   yearly: on the month and day of a date field, every year, at at_minute
 *           (29 February fires on 28 February in common years).
 * What has fired is persisted (core_sched_state, core_sched_fired), in the same
 * transaction as the handler's writes, so a restart neither loses nor repeats
 * a firing.
 *
 * Catch-up after downtime: a cron schedule that missed several times fires
 * once for the latest missed time (like anacron); offset and yearly firings
 * missed by less than CRM_SCHED_CATCHUP seconds fire late, each once; older
 * ones are skipped and logged. A schedule registered for the first time starts
 * from now (it does not fire for the past).
 */
#ifndef CRM_SCHED_H
#define CRM_SCHED_H

#include "kernel.h"

#define CRM_SCHED_CATCHUP (7 * 86400)

typedef struct crm_firing {
    const char *name;   /* the schedule */
    int64_t due;        /* when it was due (epoch seconds) */
    int64_t now;        /* the tick's time */
    const char *type;   /* offset / yearly: the record's type; cron: NULL */
    int64_t record_id;  /* offset / yearly: the record; cron: 0 */
    json_t *record;     /* offset / yearly: the record (system view); cron: NULL */
} crm_firing;

/* Runs in a transaction with the firing's bookkeeping; an error rolls both back. */
typedef int (*crm_sched_fn)(crm_ctx *ctx, const crm_firing *f, void *udata);

int crm_sched_open(crm_sched **out, crm_kernel *k);
void crm_sched_close(crm_sched *sched);

/* Errors: CRM_EINVALID (bad expression, unknown type or field, wrong field kind),
 * CRM_ECONFLICT (name taken). */
int crm_sched_cron(crm_sched *sched, const char *name, const char *expr, crm_sched_fn fn,
                   void *udata);
int crm_sched_offset(crm_sched *sched, const char *name, const char *type, const char *field,
                     int64_t offset_seconds, int at_minute, crm_sched_fn fn, void *udata);
int crm_sched_yearly(crm_sched *sched, const char *name, const char *type, const char *field,
                     int at_minute, crm_sched_fn fn, void *udata);
/* Remove a schedule (its persisted state stays, so re-adding resumes). */
int crm_sched_remove(crm_sched *sched, const char *name);

/*
 * Fire everything due in (last tick, now], on the calling thread. Returns the
 * number of firings run (>= 0) or an error. A failing handler is logged and
 * retried on the next tick; the others still run.
 */
int crm_sched_tick(crm_sched *sched, int64_t now);
/* Tick from a background thread every `interval` seconds (crm_now() based). */
int crm_sched_start(crm_sched *sched, int interval);
void crm_sched_stop(crm_sched *sched);

/* ---- Cron expressions (exposed for tests and `crm rules check`) ---- */

typedef struct crm_cron {
    uint64_t minute;  /* bit i: minute i */
    uint32_t hour, dom, month; /* dom bits 1..31, month bits 1..12 */
    uint8_t dow;      /* bit 0 Sunday .. 6 Saturday (7 accepted as Sunday) */
    bool dom_any, dow_any;
} crm_cron;

/* Parse "m h dom mon dow" with *, lists, ranges, steps, and names (jan, mon).
 * Also @hourly @daily @weekly @monthly @yearly. Error names the field. */
int crm_cron_parse(crm_cron *out, const char *expr);
/* The first time strictly after `t` that matches (UTC), or -1 if none within 5 years. */
int64_t crm_cron_next(const crm_cron *c, int64_t t);

#endif
