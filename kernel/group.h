/*
 * group.h — group commit: concurrent write transactions share one COMMIT, so
 * one fsync at synchronous=FULL acknowledges a whole batch.
 *
 * A caller hands a write job to the committer thread and waits. The committer
 * opens one BEGIN IMMEDIATE transaction for the jobs waiting at that moment
 * (up to max_batch), runs each in its own savepoint (a failing job is rolled
 * back alone), commits once, and only then wakes the callers: none is
 * acknowledged before its data is durable. A lone writer pays a thread
 * hand-off (microseconds) and gets the same single commit as before.
 * PostgreSQL's commit_delay and SQLite's own WAL make the same trade.
 */
#ifndef CRM_GROUP_H
#define CRM_GROUP_H

#include "store.h"

typedef struct crm_group crm_group;

/* A committer for `store` (its thread starts on first use). max_batch 0: 64. */
int crm_group_open(crm_group **out, crm_store *store, int max_batch);
/* Finish the queued jobs, stop the thread, free. */
void crm_group_close(crm_group *g);

/*
 * Run `fn(arg)` on the committer thread inside the shared transaction (in its
 * own savepoint; fn uses crm_store_conn(store) as usual, and may nest
 * transactions) and return once the batch has committed: fn's result, or the
 * commit's error (CRM_EBUSY, CRM_EFULL, ...). The error set on the committer
 * thread is carried back to the caller's thread. fn must not call
 * crm_group_run itself (it would wait for its own batch).
 */
int crm_group_run(crm_group *g, int (*fn)(void *arg), void *arg);

/*
 * The same without waiting: `fn(arg)` runs on the committer thread in a
 * batch, and once the batch has committed (or failed) `done(done_arg, rc)` is
 * called on the committer thread with the job's result, this thread's error
 * set to the job's. No request waits with a thread blocked, so any number of
 * writers can share one commit (the HTTP layer suspends the connection).
 * Errors: CRM_EBUSY when the committer is stopping (done is not called).
 */
int crm_group_submit(crm_group *g, int (*fn)(void *arg), void *arg,
                     void (*done)(void *done_arg, int rc), void *done_arg);

/* Writers waiting: jobs queued or in the batch being run (0 for a NULL group). A
   long writer outside the group (an import) yields the write lock when it is > 0. */
int crm_group_pending(crm_group *g);

/* Counters since open: batches committed and jobs run (jobs / batches = mean batch). */
void crm_group_stats(crm_group *g, uint64_t *batches, uint64_t *jobs);

#endif
