/*
 * maintain.h — upkeep of the database that no request does: the full-text
 * indexes merged into one segment each.
 *
 * FTS5 keeps each index as segments, merged a few at a time as rows come in
 * (automerge): a type written over months holds a dozen segments or more, and
 * every search reads each of them (1M contacts: 17 segments on 9 levels; a
 * 3-letter prefix query 156 µs against 51 µs once merged, a whole word 35 µs
 * against 7.5 µs). A merge is FTS5's own incremental command ('merge' with a
 * negative page count, a whole-index merge done a little at a time), run in
 * short write transactions of CRM_MAINTAIN_PAGES pages (a few ms of the write
 * lock each), so writers barely notice it.
 *
 * `crm serve` runs it from the kernel's background thread once a day
 * (CRM_MAINTAIN_INTERVAL), at most CRM_MAINTAIN_TICK_MS of work per scheduler
 * tick; `crm maintain` runs it to the end at once.
 */
#ifndef CRM_MAINTAIN_H
#define CRM_MAINTAIN_H

#include "kernel.h"

#include <stdbool.h>
#include <stdint.h>

#define CRM_MAINTAIN_PAGES 64         /* pages of merge work per transaction */
#define CRM_MAINTAIN_TICK_MS 250      /* work per scheduler tick, in crm serve */
#define CRM_MAINTAIN_INTERVAL 86400   /* seconds between two complete runs */
#define CRM_MAINTAIN_SETTING "maintain.fts_merged_at" /* core_setting: last complete run */

typedef struct crm_maintain_stats {
    int indexes;    /* full-text indexes looked at */
    int merged;     /* of which needed merging */
    int steps;      /* merge transactions that did work */
    int64_t us;     /* time spent */
    bool done;      /* every index is one segment (or empty) */
} crm_maintain_stats;

/*
 * Merge the full-text indexes, for at most budget_ms of work (< 0: until done).
 * On completion, records the time (crm_now) in core_setting CRM_MAINTAIN_SETTING.
 * Errors: those of the store (CRM_EBUSY when the write lock cannot be had).
 */
int crm_maintain_run(crm_kernel *k, int64_t budget_ms, crm_maintain_stats *st);

/* crm serve's background step: a bounded run when the last complete one is
   CRM_MAINTAIN_INTERVAL old or more (or never was). */
int crm_maintain_tick(crm_kernel *k, int64_t now);

#endif
