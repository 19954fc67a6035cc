/*
 * group.c — the committer thread behind crm_group_run (see group.h).
 */
#include "group.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct job {
    int (*fn)(void *);
    void *arg;
    int rc;
    bool done;
    char *message; /* the error carried back to the caller's thread */
    char *field;
    char *name;
    void (*done_fn)(void *, int); /* submitted jobs: called after the batch, then freed */
    void *done_arg;
    struct job *next;
} job;

struct crm_group {
    crm_store *store;
    int max_batch;
    pthread_mutex_t lock;
    pthread_cond_t work; /* jobs queued, or stop */
    pthread_cond_t done; /* a batch finished */
    job *head, *tail;
    bool started, stop;
    pthread_t thread;
    uint64_t batches, jobs;
    _Atomic int pending; /* jobs queued or in the batch being run */
};

int crm_group_open(crm_group **out, crm_store *store, int max_batch)
{
    crm_group *g = crm_calloc(1, sizeof *g);
    g->store = store;
    g->max_batch = max_batch > 0 ? max_batch : 64;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->work, NULL);
    pthread_cond_init(&g->done, NULL);
    *out = g;
    return CRM_OK;
}

/* Record the committer thread's current error in the job. */
static void keep_error(job *j, int rc)
{
    const crm_error *e = crm_error_last();
    j->rc = rc;
    free(j->message);
    free(j->field);
    j->message = crm_strdup(e->code == rc && e->message && *e->message ? e->message
                                                                       : crm_error_name(rc));
    free(j->name);
    j->field = e->code == rc && e->field ? crm_strdup(e->field) : NULL;
    j->name = e->code == rc && e->name ? crm_strdup(e->name) : NULL;
}

/* Errors after which the outer transaction cannot be trusted to still be open. */
static bool fatal(int rc)
{
    return rc == CRM_EFULL || rc == CRM_EBUSY || rc == CRM_EINTERNAL;
}

static void run_batch(crm_group *g, job *batch)
{
    crm_conn *conn = crm_store_conn(g->store);
    int rc = crm_tx_begin(conn);
    job *j;
    if (rc) {
        for (j = batch; j; j = j->next) keep_error(j, rc);
        return;
    }
    for (j = batch; j; j = j->next) {
        int r = crm_tx_begin(conn);
        if (!r) {
            crm_error_clear();
            r = j->fn(j->arg);
            if (r) crm_tx_rollback(conn);
            else r = crm_tx_commit(conn);
        }
        if (!r) {
            j->rc = CRM_OK;
            continue;
        }
        keep_error(j, r);
        if (fatal(r)) {
            /* The whole transaction is lost: every job of the batch fails with this error. */
            crm_tx_rollback(conn);
            for (job *k = batch; k; k = k->next)
                if (k != j) keep_error(k, r);
            return;
        }
    }
    rc = crm_tx_commit(conn);
    if (rc)
        for (j = batch; j; j = j->next)
            if (j->rc == CRM_OK) keep_error(j, rc);
}

static void *committer(void *arg)
{
    crm_group *g = arg;
    pthread_mutex_lock(&g->lock);
    for (;;) {
        while (!g->head && !g->stop) pthread_cond_wait(&g->work, &g->lock);
        if (!g->head && g->stop) break;
        /* Take what is waiting now, up to max_batch. */
        job *batch = g->head, *last = g->head;
        int n = 1;
        while (last->next && n < g->max_batch) {
            last = last->next;
            n++;
        }
        g->head = last->next;
        if (!g->head) g->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&g->lock);

        run_batch(g, batch);

        /*
         * Submitted jobs learn their result here, on this thread, after the
         * commit; they are taken out of the batch first (they are freed), so
         * what is left is the waiting callers' jobs, on their stacks.
         */
        job *waiting = NULL, **tail = &waiting;
        for (job *j = batch, *next; j; j = next) {
            next = j->next;
            if (!j->done_fn) {
                *tail = j;
                tail = &j->next;
                continue;
            }
            if (j->rc) crm_error_set_named(j->rc, j->name, j->field, "%s", j->message);
            else crm_error_clear();
            j->done_fn(j->done_arg, j->rc);
            free(j->message);
            free(j->field);
            free(j->name);
            free(j);
        }
        *tail = NULL;
        pthread_mutex_lock(&g->lock);
        atomic_fetch_sub(&g->pending, n);
        g->batches++;
        g->jobs += (uint64_t)n;
        for (job *j = waiting; j; j = j->next) j->done = true;
        pthread_cond_broadcast(&g->done);
    }
    pthread_mutex_unlock(&g->lock);
    crm_store_release_thread(g->store);
    return NULL;
}

/* Queue `j` (starting the committer on first use). Called with the lock held. */
static int enqueue(crm_group *g, job *j)
{
    if (g->stop) return crm_error_set(CRM_EBUSY, NULL, "the server is shutting down");
    if (!g->started) {
        if (pthread_create(&g->thread, NULL, committer, g) != 0)
            return crm_error_set(CRM_EINTERNAL, NULL, "cannot start the committer thread");
        g->started = true;
    }
    if (g->tail) g->tail->next = j;
    else g->head = j;
    g->tail = j;
    atomic_fetch_add(&g->pending, 1);
    pthread_cond_signal(&g->work);
    return CRM_OK;
}

int crm_group_run(crm_group *g, int (*fn)(void *arg), void *arg)
{
    job j = {.fn = fn, .arg = arg};
    pthread_mutex_lock(&g->lock);
    int rc = enqueue(g, &j);
    if (rc) {
        pthread_mutex_unlock(&g->lock);
        return rc;
    }
    while (!j.done) pthread_cond_wait(&g->done, &g->lock);
    pthread_mutex_unlock(&g->lock);
    if (j.rc) crm_error_set_named(j.rc, j.name, j.field, "%s", j.message);
    free(j.message);
    free(j.field);
    free(j.name);
    return j.rc;
}

int crm_group_submit(crm_group *g, int (*fn)(void *arg), void *arg,
                     void (*done)(void *done_arg, int rc), void *done_arg)
{
    job *j = crm_calloc(1, sizeof *j);
    j->fn = fn;
    j->arg = arg;
    j->done_fn = done;
    j->done_arg = done_arg;
    pthread_mutex_lock(&g->lock);
    int rc = enqueue(g, j);
    pthread_mutex_unlock(&g->lock);
    if (rc) free(j);
    return rc;
}

void crm_group_stats(crm_group *g, uint64_t *batches, uint64_t *jobs)
{
    pthread_mutex_lock(&g->lock);
    *batches = g->batches;
    *jobs = g->jobs;
    pthread_mutex_unlock(&g->lock);
}

void crm_group_close(crm_group *g)
{
    if (!g) return;
    pthread_mutex_lock(&g->lock);
    /* One line for operators (and bench/http_bench.py): how well writes were batched. */
    if (g->batches)
        crm_log(CRM_LOG_INFO, "group commit: %llu jobs in %llu batches (mean %.2f per commit)",
                (unsigned long long)g->jobs, (unsigned long long)g->batches,
                (double)g->jobs / (double)g->batches);
    g->stop = true;
    pthread_cond_signal(&g->work);
    bool started = g->started;
    pthread_mutex_unlock(&g->lock);
    if (started) pthread_join(g->thread, NULL);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->work);
    pthread_cond_destroy(&g->done);
    free(g);
}

int crm_group_pending(crm_group *g)
{
    return g ? atomic_load(&g->pending) : 0;
}
