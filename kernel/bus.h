/*
 * bus.h — the event bus.
 *
 * Topics: "<type>.created|updated|deleted|restored" for records, and any
 * "<plugin>.<event>" a plugin emits. Handlers subscribe to a topic ("*" and a
 * trailing ".*" match many) with a phase and an order number; equal orders run
 * in registration order.
 *   before: inside the write's transaction, before the row is written; may
 *           change ev->record or refuse the change by returning an error;
 *   after:  inside the same transaction, after the row, history and outbox
 *           rows are written; its writes commit or roll back with the change;
 *   async:  after commit, from the durable outbox, on worker threads; at
 *           least once, in commit order per record, retried with exponential
 *           backoff and dead-lettered after CRM_BUS_MAX_ATTEMPTS.
 * Every event is appended to the outbox (core_outbox) in its transaction, so
 * the same stream is readable as GET /events?after=SEQ.
 */
#ifndef CRM_BUS_H
#define CRM_BUS_H

#include "kernel.h"

enum crm_phase { CRM_PHASE_BEFORE, CRM_PHASE_AFTER, CRM_PHASE_ASYNC };

#define CRM_BUS_MAX_ATTEMPTS 8

typedef struct crm_event {
    const char *topic;  /* "crm.deal.updated" */
    const char *type;   /* record events: the type; custom events: NULL */
    int64_t id;         /* record events: the record id (0 in before-create) */
    json_t *record;     /* before: the values to write (mutable); after/async: the record */
    json_t *old;        /* updated/deleted/restored: the record before; else NULL */
    json_t *changed;    /* updated: array of changed field names; else NULL */
    json_t *payload;    /* custom events: what was emitted; else NULL */
    int64_t seq;        /* outbox sequence (after / async); 0 before */
    int64_t user_id;    /* who acted (0: the system) */
    const char *via;    /* on whose behalf, as in history */
    int attempt;        /* async: 1 on first delivery */
} crm_event;

/*
 * A handler returns CRM_OK, or an error (set with crm_error_set) that refuses
 * the change (before / after) or schedules a retry (async).
 */
typedef int (*crm_handler_fn)(crm_ctx *ctx, crm_event *ev, void *udata);

int crm_bus_open(crm_bus **out, crm_kernel *k);
void crm_bus_close(crm_bus *bus);

/*
 * Subscribe. `name` identifies the handler in errors and, for async handlers,
 * is the durable consumer name whose position in the outbox is persisted: it
 * must be unique among async handlers and stable across restarts. A new async
 * consumer starts at the end of the outbox (it does not replay history).
 * Errors: CRM_EINVALID (bad topic pattern or phase), CRM_ECONFLICT (name).
 */
int crm_bus_subscribe(crm_bus *bus, const char *topic, int phase, int order, const char *name,
                      crm_handler_fn fn, void *udata);

/*
 * Run the `phase` (before or after) handlers for `ev` in the caller's
 * transaction. Bounds the cascade: at depth CRM_CASCADE_MAX it fails with
 * CRM_ELIMIT and a message naming the chain of topics.
 */
int crm_bus_dispatch(crm_ctx *ctx, crm_event *ev, int phase);

/* Append `ev` to the outbox (caller's transaction); sets ev->seq. */
int crm_bus_append(crm_ctx *ctx, crm_event *ev);

/*
 * Emit a custom event: in its own transaction (or the caller's), runs the
 * after handlers and appends it to the outbox. `payload` is borrowed.
 */
int crm_bus_emit(crm_ctx *ctx, const char *topic, json_t *payload);

/* ---- Async delivery ---- */

/* Start `nthreads` delivery workers (0: none; deliver with crm_bus_run_pending). */
int crm_bus_start(crm_bus *bus, int nthreads);
void crm_bus_stop(crm_bus *bus);
/* Wake the workers (called after a commit that appended events). */
void crm_bus_notify(crm_bus *bus);

/*
 * Listeners: fn(arg) runs on the committing thread after every commit that
 * appended events (from crm_bus_notify), under the bus's lock: it must be
 * quick, must not write and must not call the bus. The HTTP server uses one
 * to wake long-polling GET /events requests. At most CRM_BUS_LISTENERS
 * (CRM_ELIMIT beyond). After crm_bus_unlisten returns, fn is not running and
 * will not run again for that (fn, arg).
 */
#define CRM_BUS_LISTENERS 8
int crm_bus_listen(crm_bus *bus, void (*fn)(void *arg), void *arg);
void crm_bus_unlisten(crm_bus *bus, void (*fn)(void *arg), void *arg);
/*
 * Deliver everything pending and due now, on the calling thread; returns the
 * number of deliveries attempted (>= 0) or an error.
 */
int crm_bus_run_pending(crm_bus *bus);
/* Dead letters: [{"id","consumer","seq","topic","attempts","last_error"}]. */
int crm_bus_dead_letters(crm_bus *bus, json_t **out);
/* Put a dead letter back in the queue for an immediate retry. */
int crm_bus_retry(crm_bus *bus, int64_t dead_letter_id);
/* Outbox events after `after_seq`, at most `limit`, oldest first. */
int crm_bus_events(crm_bus *bus, int64_t after_seq, int limit, json_t **out);

#endif
