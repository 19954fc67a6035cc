/*
 * bus.c — the event bus: subscriptions, before/after dispatch inside the
 * writer's transaction, the durable outbox, and async delivery from it.
 *
 * Subscriptions are kept per phase, sorted by (order, registration sequence),
 * behind a rwlock. Dispatch takes the read lock only long enough to copy the
 * matching subscriptions into a snapshot and runs the handlers without it:
 * subscriptions are never freed before the bus, so the pointers stay valid,
 * and a handler may itself write (nested dispatch) or even subscribe (seen
 * from the next dispatch on) without deadlocking on the lock. The lock is
 * never held while touching the database, so it cannot be part of a cycle
 * with SQLite's write lock.
 *
 * Async delivery. Each async subscription is a durable consumer: its position
 * in the outbox is core_consumer.cursor, its failed deliveries are core_retry
 * rows. A pass over one consumer first delivers the retries that are due and
 * are the oldest pending for their record, then reads new outbox rows past
 * the cursor. A new event for a record that still has a pending retry is not
 * delivered but queued behind it as a retry row with 0 attempts: that is what
 * keeps delivery in commit order per record while other records flow. The
 * handler runs before the cursor moves (at least once: a crash in between
 * redelivers) and outside any transaction of the bus.
 *
 * Workers: crm_bus_start(n) starts n threads that each run passes over all
 * consumers, woken by crm_bus_notify (after every commit that appended
 * events) or every second (retries fall due with time). A consumer is served
 * by one thread at a time (its own mutex; a worker skips a consumer another
 * worker holds), which keeps its order; n > 1 only lets different consumers
 * deliver in parallel. A notification that arrives during a pass bumps a
 * generation counter, so the worker holding a consumer runs again and no
 * event waits for the timeout.
 */
#include "bus.h"
#include "jtext.h"
#include "perm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define PATTERN_MAX  128
#define NAME_MAX_LEN 128
#define BATCH        100
#define BACKOFF_CAP  3600
#define WORKERS_MAX  64

struct sub {
    char *pattern;
    int phase;
    int order;
    uint64_t regno; /* registration sequence: ties of `order` keep it */
    char *name;
    crm_handler_fn fn;
    void *udata;
    pthread_mutex_t deliver_mu; /* async: one delivering thread at a time */
};

struct sub_list {
    struct sub **v;
    int n, cap;
};

struct crm_bus {
    crm_kernel *k;
    pthread_rwlock_t lock; /* guards subs[] and next_regno */
    struct sub_list subs[3];
    uint64_t next_regno;

    pthread_mutex_t mu; /* guards gen, threads, nthreads, listeners */
    pthread_cond_t cv;
    uint64_t gen; /* bumped by every notify */
    atomic_int stopping;
    pthread_t *threads;
    int nthreads;
    struct {
        void (*fn)(void *arg);
        void *arg;
    } listeners[CRM_BUS_LISTENERS];
};

/* ---- Patterns and topics ---- */

static bool pattern_valid(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    if (n == 0 || n > PATTERN_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] <= ' ' || p[i] > '~') return false;
    if (strcmp(p, "*") == 0) return true;
    const char *star = strchr(p, '*');
    if (!star) return true;
    /* the only '*' must be a trailing ".*" after a non-empty prefix */
    return star == p + n - 1 && n >= 3 && p[n - 2] == '.' && p[n - 3] != '.';
}

static bool pattern_match(const char *pattern, const char *topic)
{
    size_t n = strlen(pattern);
    if (n == 1 && pattern[0] == '*') return true;
    if (n >= 2 && pattern[n - 1] == '*') /* "a.b.*": "a.b." then at least one more character */
        return strncmp(pattern, topic, n - 1) == 0 && topic[n - 1] != '\0';
    return strcmp(pattern, topic) == 0;
}

/* "<owner>.<event>": [a-z0-9_] segments joined by dots, at least two, <= 128 chars. */
static bool topic_valid(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n == 0 || n > PATTERN_MAX) return false;
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c == '.') {
            if (i == 0 || i == n - 1 || t[i - 1] == '.') return false;
            dots++;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            return false;
        }
    }
    return dots >= 1;
}

static bool name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > NAME_MAX_LEN) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < ' ' || s[i] > '~') return false;
    return true;
}

/* ---- Open / close ---- */

int crm_bus_open(crm_bus **out, crm_kernel *k)
{
    crm_bus *bus = crm_calloc(1, sizeof *bus);
    bus->k = k;
    pthread_rwlock_init(&bus->lock, NULL);
    pthread_mutex_init(&bus->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&bus->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&bus->stopping, 0);
    *out = bus;
    return CRM_OK;
}

void crm_bus_close(crm_bus *bus)
{
    if (!bus) return;
    crm_bus_stop(bus);
    for (int ph = 0; ph < 3; ph++) {
        for (int i = 0; i < bus->subs[ph].n; i++) {
            struct sub *s = bus->subs[ph].v[i];
            pthread_mutex_destroy(&s->deliver_mu);
            free(s->pattern);
            free(s->name);
            free(s);
        }
        free(bus->subs[ph].v);
    }
    pthread_cond_destroy(&bus->cv);
    pthread_mutex_destroy(&bus->mu);
    pthread_rwlock_destroy(&bus->lock);
    free(bus);
}

/* ---- Subscriptions ---- */

/* An async consumer starts at the end of the outbox; an existing one keeps its cursor. */
static int consumer_create(crm_bus *bus, const char *name)
{
    crm_conn *conn = crm_store_conn(bus->k->store);
    crm_stmt *st = NULL;
    int rc = crm_tx_begin(conn);
    if (rc) return rc;
    rc = crm_stmt_prepare(conn, &st,
                          "INSERT OR IGNORE INTO core_consumer(name, cursor) "
                          "SELECT ?1, COALESCE(MAX(seq), 0) FROM core_outbox");
    if (rc) goto done;
    crm_stmt_bind_text(st, 1, name, -1);
    rc = crm_stmt_step(st);
    if (rc > 0) rc = CRM_OK;
    crm_stmt_done(st);
done:
    if (rc) {
        crm_tx_rollback(conn);
        return rc;
    }
    return crm_tx_commit(conn);
}

static bool async_name_taken(crm_bus *bus, const char *name)
{
    const struct sub_list *l = &bus->subs[CRM_PHASE_ASYNC];
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i]->name, name) == 0) return true;
    return false;
}

int crm_bus_subscribe(crm_bus *bus, const char *topic, int phase, int order, const char *name,
                      crm_handler_fn fn, void *udata)
{
    if (!pattern_valid(topic))
        return crm_error_set(CRM_EINVALID, NULL,
                             "bad topic pattern \"%s\": use \"owner.event\", \"owner.*\" or \"*\" "
                             "(printable, at most %d characters)",
                             topic ? topic : "", PATTERN_MAX);
    if (phase != CRM_PHASE_BEFORE && phase != CRM_PHASE_AFTER && phase != CRM_PHASE_ASYNC)
        return crm_error_set(CRM_EINVALID, NULL, "handler \"%s\": bad phase %d", name ? name : "",
                             phase);
    if (!name_valid(name))
        return crm_error_set(CRM_EINVALID, NULL,
                             "handler for \"%s\": a name of 1 to %d printable characters is needed",
                             topic, NAME_MAX_LEN);
    if (!fn) return crm_error_set(CRM_EINVALID, NULL, "handler \"%s\": no function", name);

    if (phase == CRM_PHASE_ASYNC) {
        /* Checked before and after the database write: the lock is never held across SQL. */
        pthread_rwlock_rdlock(&bus->lock);
        bool taken = async_name_taken(bus, name);
        pthread_rwlock_unlock(&bus->lock);
        if (taken) goto conflict;
        int rc = consumer_create(bus, name);
        if (rc) return rc;
    }

    struct sub *s = crm_calloc(1, sizeof *s);
    s->pattern = crm_strdup(topic);
    s->phase = phase;
    s->order = order;
    s->name = crm_strdup(name);
    s->fn = fn;
    s->udata = udata;
    pthread_mutex_init(&s->deliver_mu, NULL);

    pthread_rwlock_wrlock(&bus->lock);
    if (phase == CRM_PHASE_ASYNC && async_name_taken(bus, name)) {
        pthread_rwlock_unlock(&bus->lock);
        pthread_mutex_destroy(&s->deliver_mu);
        free(s->pattern);
        free(s->name);
        free(s);
        goto conflict;
    }
    s->regno = bus->next_regno++;
    struct sub_list *l = &bus->subs[phase];
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = crm_realloc(l->v, (size_t)l->cap * sizeof *l->v);
    }
    /* after every subscription of an equal or lower order: registration order breaks ties */
    int at = l->n;
    while (at > 0 && l->v[at - 1]->order > order)
        at--;
    memmove(&l->v[at + 1], &l->v[at], (size_t)(l->n - at) * sizeof *l->v);
    l->v[at] = s;
    l->n++;
    pthread_rwlock_unlock(&bus->lock);
    return CRM_OK;

conflict:
    return crm_error_set(
        CRM_ECONFLICT, NULL,
        "async handler name \"%s\" is already taken: consumer names must be unique", name);
}

/*
 * The subscriptions of `phase` matching `topic` (or all of them when topic is
 * NULL), in order. Returns a malloc'd array or `stackbuf` when it fits.
 */
static struct sub **snapshot(crm_bus *bus, int phase, const char *topic, struct sub **stackbuf,
                             int stackn, int *n)
{
    struct sub **v = stackbuf;
    int cap = stackn, cnt = 0;
    pthread_rwlock_rdlock(&bus->lock);
    const struct sub_list *l = &bus->subs[phase];
    for (int i = 0; i < l->n; i++) {
        if (topic && !pattern_match(l->v[i]->pattern, topic)) continue;
        if (cnt == cap) {
            cap *= 2;
            if (v == stackbuf) {
                v = crm_malloc((size_t)cap * sizeof *v);
                memcpy(v, stackbuf, (size_t)cnt * sizeof *v);
            } else {
                v = crm_realloc(v, (size_t)cap * sizeof *v);
            }
        }
        v[cnt++] = l->v[i];
    }
    pthread_rwlock_unlock(&bus->lock);
    *n = cnt;
    return v;
}

/* ---- Synchronous dispatch ---- */

static int cascade_error(const crm_ctx *ctx, const char *topic)
{
    crm_buf chain = CRM_BUF_INIT;
    for (int i = 0; i < ctx->depth && i < CRM_CASCADE_MAX; i++) {
        crm_buf_puts(&chain, ctx->chain[i] ? ctx->chain[i] : "?");
        crm_buf_puts(&chain, " \xe2\x86\x92 "); /* → */
    }
    crm_buf_puts(&chain, topic);
    int rc = crm_error_set(CRM_ELIMIT, NULL,
                           "cascade depth limit %d exceeded: %s (a handler's write triggers "
                           "handlers again; break the loop with a condition)",
                           CRM_CASCADE_MAX, crm_buf_str(&chain));
    crm_buf_free(&chain);
    return rc;
}

/* Call one handler; make sure an error comes back with a code and a message. */
static int call_handler(struct sub *s, crm_ctx *ctx, crm_event *ev)
{
    crm_error_clear();
    int rc = s->fn(ctx, ev, s->udata);
    if (rc == CRM_OK) return CRM_OK;
    const crm_error *e = crm_error_last();
    if (e->code == CRM_OK)
        return crm_error_set(rc < 0 ? rc : CRM_EINTERNAL, NULL,
                             "handler \"%s\" on \"%s\" failed (code %d) without a message", s->name,
                             ev->topic, rc);
    return rc < 0 ? rc : e->code;
}

int crm_bus_dispatch(crm_ctx *ctx, crm_event *ev, int phase)
{
    if (phase != CRM_PHASE_BEFORE && phase != CRM_PHASE_AFTER)
        return crm_error_set(CRM_EINVALID, NULL,
                             "dispatch of \"%s\": only before and after run "
                             "synchronously",
                             ev->topic);
    if (ctx->depth >= CRM_CASCADE_MAX) return cascade_error(ctx, ev->topic);
    crm_bus *bus = ctx->k->bus;
    if (!bus) return CRM_OK;

    struct sub *stackbuf[16];
    int n;
    struct sub **subs = snapshot(bus, phase, ev->topic, stackbuf, (int)CRM_ARRAY_LEN(stackbuf), &n);
    int rc = CRM_OK;
    ctx->chain[ctx->depth++] = ev->topic;
    for (int i = 0; i < n && rc == CRM_OK; i++)
        rc = call_handler(subs[i], ctx, ev);
    ctx->depth--;
    if (subs != stackbuf) free(subs);
    return rc;
}

/* ---- Outbox ---- */

static void wake_after_commit(void *arg)
{
    crm_bus_notify(arg);
}

int crm_bus_append(crm_ctx *ctx, crm_event *ev)
{
    crm_conn *conn = crm_ctx_conn(ctx);
    crm_stmt *st = NULL;
    char *payload = NULL;
    char at[21];
    /* One INSERT is atomic: a transaction of its own only when the caller has none. */
    bool own = crm_tx_depth(conn) == 0;
    int rc = own ? crm_tx_begin(conn) : CRM_OK;
    if (rc) return rc;

    json_t *doc = json_object();
    if (ev->record) json_object_set(doc, "record", ev->record);
    if (ev->old) json_object_set(doc, "old", ev->old);
    if (ev->changed) json_object_set(doc, "changed", ev->changed);
    if (ev->payload) json_object_set(doc, "payload", ev->payload);
    payload = crm_jtext_dumps(doc, CRM_JTEXT_EXACT, NULL);
    json_decref(doc);
    crm_time_format(crm_now(), at);

    rc = crm_stmt_prepare(
        conn, &st,
        "INSERT INTO core_outbox(topic, type, record_id, at, user_id, via, payload) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (rc) goto done;
    crm_stmt_bind_text(st, 1, ev->topic, -1);
    if (ev->type)
        crm_stmt_bind_text(st, 2, ev->type, -1);
    else
        crm_stmt_bind_null(st, 2);
    if (ev->type)
        crm_stmt_bind_int(st, 3, ev->id);
    else
        crm_stmt_bind_null(st, 3);
    crm_stmt_bind_text(st, 4, at, -1);
    if (ev->user_id)
        crm_stmt_bind_int(st, 5, ev->user_id);
    else
        crm_stmt_bind_null(st, 5);
    if (ev->via)
        crm_stmt_bind_text(st, 6, ev->via, -1);
    else
        crm_stmt_bind_null(st, 6);
    crm_stmt_bind_text(st, 7, payload, -1);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    if (rc < 0) goto done;
    rc = CRM_OK;
    ev->seq = crm_conn_last_rowid(conn);
    if (ctx->k->bus) crm_tx_on_commit(conn, wake_after_commit, ctx->k->bus);

done:
    free(payload);
    if (!own) return rc;
    if (rc) {
        crm_tx_rollback(conn);
        return rc;
    }
    return crm_tx_commit(conn);
}

/*
 * The outbox row is written before the after handlers run, as bus.h promises
 * ("after the row, history and outbox rows are written"): they see ev->seq,
 * and events they emit in turn follow this one in the outbox. An error of any
 * handler rolls the row back with everything else.
 */
int crm_bus_emit(crm_ctx *ctx, const char *topic, json_t *payload)
{
    if (!topic_valid(topic))
        return crm_error_set(
            CRM_EINVALID, NULL,
            "bad event topic \"%s\": use \"owner.event\" with a-z, 0-9, _ and dots",
            topic ? topic : "");
    crm_conn *conn = crm_ctx_conn(ctx);
    int rc = crm_tx_begin(conn);
    if (rc) return rc;
    crm_event ev = {0};
    ev.topic = topic;
    ev.payload = payload;
    ev.user_id = ctx->who ? crm_principal_user(ctx->who) : 0;
    ev.via = ctx->via;
    rc = crm_bus_append(ctx, &ev);
    if (rc == CRM_OK) rc = crm_bus_dispatch(ctx, &ev, CRM_PHASE_AFTER);
    if (rc) {
        crm_tx_rollback(conn);
        return rc;
    }
    return crm_tx_commit(conn);
}

/* ---- Async delivery ---- */

struct row {
    int64_t seq;
    char *topic;
    char *type;
    int64_t record_id;
    char *at;
    int64_t user_id;
    char *via;
    char *payload;
};

static char *col_dup(crm_stmt *st, int i)
{
    const char *s = crm_stmt_column_text(st, i);
    return s ? crm_strdup(s) : NULL;
}

#define ROW_COLS "seq, topic, type, record_id, at, user_id, via, payload"

static void row_read(crm_stmt *st, struct row *r)
{
    r->seq = crm_stmt_column_int(st, 0);
    r->topic = col_dup(st, 1);
    r->type = col_dup(st, 2);
    r->record_id = crm_stmt_column_int(st, 3);
    r->at = col_dup(st, 4);
    r->user_id = crm_stmt_column_int(st, 5);
    r->via = col_dup(st, 6);
    r->payload = col_dup(st, 7);
}

static void row_free(struct row *r)
{
    free(r->topic);
    free(r->type);
    free(r->at);
    free(r->via);
    free(r->payload);
}

/* Records are ordered per (type, id); a custom event is its own key (no ordering). */
static char *record_key(const struct row *r)
{
    if (r->type) return crm_sprintf("%s:%lld", r->type, (long long)r->record_id);
    return crm_sprintf("%s:%lld", r->topic, (long long)r->seq);
}

static int64_t backoff(int attempts)
{
    if (attempts < 1) return 0;
    if (attempts - 1 >= 12) return BACKOFF_CAP; /* 1 << 12 > 3600 */
    int64_t d = (int64_t)1 << (attempts - 1);
    return d < BACKOFF_CAP ? d : BACKOFF_CAP;
}

/* Rebuild the event from its outbox row and hand it to the consumer. *err: why it failed. */
static int deliver(crm_bus *bus, struct sub *s, const struct row *r, int attempt, char **err)
{
    json_t *doc = NULL;
    char *via = crm_sprintf("async %s", s->name);
    crm_ctx ctx;
    crm_ctx_init(&ctx, bus->k, crm_principal_system(), via);
    crm_event ev = {0};
    ev.topic = r->topic;
    ev.type = r->type;
    ev.id = r->type ? r->record_id : 0;
    if (r->payload) {
        json_error_t jerr;
        doc = json_loads(r->payload, 0, &jerr);
        if (!doc)
            crm_log(CRM_LOG_WARN, "bus: outbox seq %lld: bad payload JSON: %s", (long long)r->seq,
                    jerr.text);
    }
    if (json_is_object(doc)) {
        ev.record = json_object_get(doc, "record");
        ev.old = json_object_get(doc, "old");
        ev.changed = json_object_get(doc, "changed");
        ev.payload = json_object_get(doc, "payload");
    }
    ev.seq = r->seq;
    ev.user_id = r->user_id;
    ev.via = r->via;
    ev.attempt = attempt;

    int rc = call_handler(s, &ctx, &ev);
    if (rc) *err = crm_strdup(crm_error_last()->message);

    /* A handler must not leave a transaction open: it would swallow the bus's bookkeeping. */
    crm_conn *conn = crm_store_conn(bus->k->store);
    if (crm_tx_depth(conn) > 0) {
        crm_log(CRM_LOG_ERROR, "bus: async handler \"%s\" left a transaction open; rolled back",
                s->name);
        while (crm_tx_depth(conn) > 0)
            crm_tx_rollback(conn);
        if (rc == CRM_OK) {
            rc = CRM_EINTERNAL;
            *err = crm_sprintf("handler \"%s\" left a transaction open", s->name);
        }
    }
    json_decref(doc);
    free(via);
    return rc;
}

/* Run one bookkeeping statement with up to three int and two text parameters (NULL: skip). */
static int exec_bound(crm_conn *conn, const char *sql, const char *t1, const char *t2, int64_t i3,
                      int64_t i4, int64_t i5)
{
    crm_stmt *st = NULL;
    int rc = crm_stmt_prepare(conn, &st, sql);
    if (rc) return rc;
    int np = crm_stmt_param_count(st);
    if (np >= 1) {
        if (t1)
            crm_stmt_bind_text(st, 1, t1, -1);
        else
            crm_stmt_bind_null(st, 1);
    }
    if (np >= 2) {
        if (t2)
            crm_stmt_bind_text(st, 2, t2, -1);
        else
            crm_stmt_bind_null(st, 2);
    }
    if (np >= 3) crm_stmt_bind_int(st, 3, i3);
    if (np >= 4) crm_stmt_bind_int(st, 4, i4);
    if (np >= 5) crm_stmt_bind_int(st, 5, i5);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

static int load_row(crm_conn *conn, int64_t seq, struct row *r, bool *found)
{
    crm_stmt *st = NULL;
    *found = false;
    int rc = crm_stmt_prepare(conn, &st, "SELECT " ROW_COLS " FROM core_outbox WHERE seq = ?1");
    if (rc) return rc;
    crm_stmt_bind_int(st, 1, seq);
    rc = crm_stmt_step(st);
    if (rc > 0) {
        row_read(st, r);
        *found = true;
    }
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

struct due_retry {
    int64_t id, seq;
    int attempts;
};

/*
 * Retries due now that are the oldest pending one of their record. Loops
 * because a success may unblock the next event of the same record, which was
 * queued with next_at = then (<= now). A failure pushes next_at past now, so
 * the loop ends.
 */
static int run_retries(crm_bus *bus, struct sub *s, crm_conn *conn, int *attempts_made, bool worker)
{
    for (;;) {
        struct due_retry due[BATCH];
        int n = 0;
        crm_stmt *st = NULL;
        int64_t now = crm_now();
        int rc =
            crm_stmt_prepare(conn, &st,
                             "SELECT r.id, r.seq, r.attempts FROM core_retry r "
                             "WHERE r.consumer = ?1 AND r.state = 'pending' AND r.next_at <= ?2 "
                             "AND NOT EXISTS (SELECT 1 FROM core_retry p WHERE "
                             "p.consumer = r.consumer AND p.record_key = r.record_key "
                             "AND p.state = 'pending' AND p.seq < r.seq) "
                             "ORDER BY r.seq LIMIT 100");
        if (rc) return rc;
        crm_stmt_bind_text(st, 1, s->name, -1);
        crm_stmt_bind_int(st, 2, now);
        while (n < BATCH && (rc = crm_stmt_step(st)) > 0) {
            due[n].id = crm_stmt_column_int(st, 0);
            due[n].seq = crm_stmt_column_int(st, 1);
            due[n].attempts = (int)crm_stmt_column_int(st, 2);
            n++;
        }
        crm_stmt_done(st);
        if (rc < 0) return rc;
        if (n == 0) return CRM_OK;

        for (int i = 0; i < n; i++) {
            if (worker && atomic_load(&bus->stopping)) return CRM_OK;
            struct row r = {0};
            bool found;
            char *err = NULL;
            rc = load_row(conn, due[i].seq, &r, &found);
            if (rc) return rc;
            int attempt = due[i].attempts + 1;
            int drc;
            if (!found) {
                drc = CRM_ENOTFOUND;
                err = crm_sprintf("event %lld is no longer in the outbox", (long long)due[i].seq);
                attempt = CRM_BUS_MAX_ATTEMPTS;
            } else {
                drc = deliver(bus, s, &r, attempt, &err);
                (*attempts_made)++;
            }
            if (drc == CRM_OK) {
                rc = exec_bound(conn, "DELETE FROM core_retry WHERE id = ?3", NULL, NULL, due[i].id,
                                0, 0);
            } else {
                bool dead = attempt >= CRM_BUS_MAX_ATTEMPTS;
                rc = exec_bound(conn,
                                "UPDATE core_retry SET state = ?1, last_error = ?2, attempts = ?3, "
                                "next_at = ?4 WHERE id = ?5",
                                dead ? "dead" : "pending", err, attempt,
                                crm_now() + backoff(attempt), due[i].id);
                if (dead)
                    crm_log(CRM_LOG_WARN,
                            "bus: consumer \"%s\" gave up on event %lld after %d "
                            "attempts: %s",
                            s->name, (long long)due[i].seq, attempt, err);
            }
            free(err);
            row_free(&r);
            if (rc) return rc;
        }
    }
}

/* Whether record `key` has a pending (not dead) retry for this consumer. */
static int key_blocked(crm_conn *conn, const char *consumer, const char *key, bool *blocked)
{
    crm_stmt *st = NULL;
    int rc = crm_stmt_prepare(conn, &st,
                              "SELECT 1 FROM core_retry WHERE consumer = ?1 AND record_key = ?2 "
                              "AND state = 'pending' LIMIT 1");
    if (rc) return rc;
    crm_stmt_bind_text(st, 1, consumer, -1);
    crm_stmt_bind_text(st, 2, key, -1);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    if (rc < 0) return rc;
    *blocked = rc > 0;
    return CRM_OK;
}

static int read_cursor(crm_bus *bus, crm_conn *conn, const char *name, int64_t *cursor)
{
    for (int tries = 0; tries < 2; tries++) {
        crm_stmt *st = NULL;
        int rc = crm_stmt_prepare(conn, &st, "SELECT cursor FROM core_consumer WHERE name = ?1");
        if (rc) return rc;
        crm_stmt_bind_text(st, 1, name, -1);
        rc = crm_stmt_step(st);
        if (rc > 0) *cursor = crm_stmt_column_int(st, 0);
        crm_stmt_done(st);
        if (rc < 0) return rc;
        if (rc > 0) return CRM_OK;
        /* the row made at subscribe was rolled back with its caller: start from here */
        rc = consumer_create(bus, name);
        if (rc) return rc;
    }
    return crm_error_set(CRM_EINTERNAL, NULL, "bus: consumer \"%s\" has no cursor", name);
}

/*
 * After event r (delivered, queued or skipped): move the cursor and, when
 * needed, record the retry, in one transaction.
 */
static int settle(crm_conn *conn, const char *consumer, const struct row *r, const char *key,
                  int attempts, const char *err)
{
    crm_stmt *st = NULL;
    int rc = crm_tx_begin(conn);
    if (rc) return rc;
    if (key) {
        rc =
            crm_stmt_prepare(conn, &st,
                             "INSERT INTO core_retry(consumer, seq, record_key, attempts, next_at, "
                             "state, last_error) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6) "
                             "ON CONFLICT (consumer, seq) DO NOTHING");
        if (rc) goto done;
        crm_stmt_bind_text(st, 1, consumer, -1);
        crm_stmt_bind_int(st, 2, r->seq);
        crm_stmt_bind_text(st, 3, key, -1);
        crm_stmt_bind_int(st, 4, attempts);
        crm_stmt_bind_int(st, 5, crm_now() + backoff(attempts));
        if (err)
            crm_stmt_bind_text(st, 6, err, -1);
        else
            crm_stmt_bind_null(st, 6);
        rc = crm_stmt_step(st);
        crm_stmt_done(st);
        if (rc < 0) goto done;
    }
    rc = exec_bound(conn, "UPDATE core_consumer SET cursor = ?3 WHERE name = ?1 AND cursor < ?3",
                    consumer, NULL, r->seq, 0, 0);
done:
    if (rc) {
        crm_tx_rollback(conn);
        return rc;
    }
    return crm_tx_commit(conn);
}

static int run_new(crm_bus *bus, struct sub *s, crm_conn *conn, int *attempts_made, bool worker)
{
    int64_t cursor = 0;
    int rc = read_cursor(bus, conn, s->name, &cursor);
    if (rc) return rc;
    for (;;) {
        struct row rows[BATCH];
        int n = 0;
        crm_stmt *st = NULL;
        rc = crm_stmt_prepare(conn, &st,
                              "SELECT " ROW_COLS
                              " FROM core_outbox WHERE seq > ?1 ORDER BY seq LIMIT 100");
        if (rc) return rc;
        crm_stmt_bind_int(st, 1, cursor);
        while (n < BATCH && (rc = crm_stmt_step(st)) > 0) {
            memset(&rows[n], 0, sizeof rows[n]);
            row_read(st, &rows[n++]);
        }
        crm_stmt_done(st);
        if (rc > 0) rc = CRM_OK;

        /*
         * Events that need no retry row (delivered, or not for this consumer)
         * only move the cursor, and the cursor is written once per batch, not
         * once per event: at-least-once still holds (a crash re-delivers from
         * the last written cursor) and a quiet consumer costs one small
         * transaction per 100 events instead of one per event.
         */
        int i = 0;
        int64_t advance_to = 0;
        for (; rc >= 0 && i < n; i++) {
            const struct row *r = &rows[i];
            if (worker && atomic_load(&bus->stopping)) break;
            if (!pattern_match(s->pattern, r->topic)) {
                advance_to = r->seq;
                continue;
            }
            char *key = record_key(r);
            char *err = NULL;
            bool blocked = false;
            int attempts = 0;
            rc = r->type ? key_blocked(conn, s->name, key, &blocked) : CRM_OK;
            if (rc == CRM_OK && !blocked) {
                (*attempts_made)++;
                if (deliver(bus, s, r, 1, &err) != CRM_OK) attempts = 1;
            }
            if (rc == CRM_OK && (blocked || attempts > 0)) {
                /* queued behind a pending retry, or failed: a retry row, with the cursor */
                rc = settle(conn, s->name, r, key, attempts, err);
                if (rc == CRM_OK) cursor = r->seq;
                advance_to = 0;
            } else if (rc == CRM_OK) {
                advance_to = r->seq;
            }
            free(key);
            free(err);
        }
        if (rc >= 0 && advance_to > cursor) {
            struct row tail = {.seq = advance_to};
            rc = settle(conn, s->name, &tail, NULL, 0, NULL);
            if (rc == CRM_OK) cursor = advance_to;
        }
        for (int j = 0; j < n; j++)
            row_free(&rows[j]);
        if (rc < 0) return rc;
        if (i < n || n < BATCH) return CRM_OK;
    }
}

/* One pass over every async consumer; returns delivery attempts or an error. */
static int run_pass(crm_bus *bus, bool worker)
{
    struct sub *stackbuf[16];
    int n, total = 0, rc = CRM_OK;
    crm_conn *conn = crm_store_conn(bus->k->store);
    if (crm_tx_depth(conn) > 0)
        return crm_error_set(CRM_EINVALID, NULL,
                             "async delivery cannot run inside a transaction (handlers run after "
                             "commit)");
    struct sub **subs =
        snapshot(bus, CRM_PHASE_ASYNC, NULL, stackbuf, (int)CRM_ARRAY_LEN(stackbuf), &n);
    for (int i = 0; i < n && rc == CRM_OK; i++) {
        struct sub *s = subs[i];
        if (worker && atomic_load(&bus->stopping)) break;
        if (worker) {
            if (pthread_mutex_trylock(&s->deliver_mu) != 0) continue; /* another worker has it */
        } else {
            pthread_mutex_lock(&s->deliver_mu);
        }
        rc = run_retries(bus, s, conn, &total, worker);
        if (rc == CRM_OK) rc = run_new(bus, s, conn, &total, worker);
        pthread_mutex_unlock(&s->deliver_mu);
    }
    if (subs != stackbuf) free(subs);
    return rc ? rc : total;
}

int crm_bus_run_pending(crm_bus *bus)
{
    return run_pass(bus, false);
}

static void *worker_main(void *arg)
{
    crm_bus *bus = arg;
    pthread_mutex_lock(&bus->mu);
    while (!atomic_load(&bus->stopping)) {
        uint64_t seen = bus->gen;
        pthread_mutex_unlock(&bus->mu);
        int rc = run_pass(bus, true);
        if (rc < 0)
            crm_log(CRM_LOG_WARN, "bus: async delivery pass failed: %s", crm_error_last()->message);
        pthread_mutex_lock(&bus->mu);
        if (!atomic_load(&bus->stopping) && bus->gen == seen) {
            /* retries fall due with time: look again within a second */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&bus->cv, &bus->mu, &ts);
        }
    }
    pthread_mutex_unlock(&bus->mu);
    crm_store_release_thread(bus->k->store);
    return NULL;
}

int crm_bus_start(crm_bus *bus, int nthreads)
{
    if (nthreads < 0 || nthreads > WORKERS_MAX)
        return crm_error_set(CRM_EINVALID, NULL, "bus: %d workers: use 0 to %d", nthreads,
                             WORKERS_MAX);
    pthread_mutex_lock(&bus->mu);
    if (bus->nthreads > 0) {
        pthread_mutex_unlock(&bus->mu);
        return crm_error_set(CRM_EINVALID, NULL, "bus: delivery workers are already running");
    }
    atomic_store(&bus->stopping, 0);
    bus->threads = nthreads ? crm_calloc((size_t)nthreads, sizeof *bus->threads) : NULL;
    int started = 0;
    for (; started < nthreads; started++)
        if (pthread_create(&bus->threads[started], NULL, worker_main, bus) != 0) break;
    bus->nthreads = started;
    pthread_mutex_unlock(&bus->mu);
    if (started < nthreads) {
        crm_bus_stop(bus);
        return crm_error_set(CRM_EINTERNAL, NULL, "bus: cannot start delivery worker %d of %d",
                             started + 1, nthreads);
    }
    return CRM_OK;
}

void crm_bus_stop(crm_bus *bus)
{
    pthread_mutex_lock(&bus->mu);
    pthread_t *threads = bus->threads;
    int n = bus->nthreads;
    bus->threads = NULL;
    bus->nthreads = 0;
    atomic_store(&bus->stopping, 1);
    pthread_cond_broadcast(&bus->cv);
    pthread_mutex_unlock(&bus->mu);
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    atomic_store(&bus->stopping, 0);
}

void crm_bus_notify(crm_bus *bus)
{
    if (!bus) return;
    pthread_mutex_lock(&bus->mu);
    bus->gen++;
    pthread_cond_broadcast(&bus->cv);
    /* Under the lock, so that crm_bus_unlisten returning means no call is running. */
    for (int i = 0; i < CRM_BUS_LISTENERS; i++)
        if (bus->listeners[i].fn) bus->listeners[i].fn(bus->listeners[i].arg);
    pthread_mutex_unlock(&bus->mu);
}

int crm_bus_listen(crm_bus *bus, void (*fn)(void *arg), void *arg)
{
    int rc = crm_error_set(CRM_ELIMIT, NULL, "more than %d bus listeners", CRM_BUS_LISTENERS);
    pthread_mutex_lock(&bus->mu);
    for (int i = 0; i < CRM_BUS_LISTENERS; i++)
        if (!bus->listeners[i].fn) {
            bus->listeners[i].fn = fn;
            bus->listeners[i].arg = arg;
            crm_error_clear();
            rc = CRM_OK;
            break;
        }
    pthread_mutex_unlock(&bus->mu);
    return rc;
}

void crm_bus_unlisten(crm_bus *bus, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&bus->mu);
    for (int i = 0; i < CRM_BUS_LISTENERS; i++)
        if (bus->listeners[i].fn == fn && bus->listeners[i].arg == arg) {
            bus->listeners[i].fn = NULL;
            bus->listeners[i].arg = NULL;
        }
    pthread_mutex_unlock(&bus->mu);
}

/* ---- Dead letters and the event stream ---- */

int crm_bus_dead_letters(crm_bus *bus, json_t **out)
{
    crm_conn *conn = crm_store_conn(bus->k->store);
    crm_stmt *st = NULL;
    int rc = crm_stmt_prepare(conn, &st,
                              "SELECT r.id, r.consumer, r.seq, o.topic, r.attempts, r.last_error "
                              "FROM core_retry r LEFT JOIN core_outbox o ON o.seq = r.seq "
                              "WHERE r.state = 'dead' ORDER BY r.id");
    if (rc) return rc;
    json_t *arr = json_array();
    while ((rc = crm_stmt_step(st)) > 0) {
        const char *topic = crm_stmt_column_text(st, 3);
        const char *err = crm_stmt_column_text(st, 5);
        json_array_append_new(arr, json_pack("{s:I, s:s, s:I, s:o, s:i, s:o}", "id",
                                             (json_int_t)crm_stmt_column_int(st, 0), "consumer",
                                             crm_stmt_column_text(st, 1), "seq",
                                             (json_int_t)crm_stmt_column_int(st, 2), "topic",
                                             topic ? json_string(topic) : json_null(), "attempts",
                                             (int)crm_stmt_column_int(st, 4), "last_error",
                                             err ? json_string(err) : json_null()));
    }
    crm_stmt_done(st);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return CRM_OK;
}

int crm_bus_retry(crm_bus *bus, int64_t dead_letter_id)
{
    crm_conn *conn = crm_store_conn(bus->k->store);
    int rc = crm_tx_begin(conn);
    if (rc) return rc;
    rc = exec_bound(conn,
                    "UPDATE core_retry SET state = 'pending', attempts = 0, next_at = ?3 "
                    "WHERE id = ?4 AND state = 'dead'",
                    NULL, NULL, crm_now(), dead_letter_id, 0);
    if (rc == CRM_OK && crm_conn_changes(conn) == 0)
        rc = crm_error_set(CRM_ENOTFOUND, NULL, "no dead letter %lld", (long long)dead_letter_id);
    if (rc) {
        crm_tx_rollback(conn);
        return rc;
    }
    crm_tx_on_commit(conn, wake_after_commit, bus);
    return crm_tx_commit(conn);
}

static json_t *int_or_null(crm_stmt *st, int i)
{
    return crm_stmt_column_type(st, i) == CRM_COL_NULL ? json_null()
                                                       : json_integer(crm_stmt_column_int(st, i));
}

static json_t *text_or_null(crm_stmt *st, int i)
{
    const char *s = crm_stmt_column_text(st, i);
    return s ? json_string(s) : json_null();
}

int crm_bus_events(crm_bus *bus, int64_t after_seq, int limit, json_t **out)
{
    if (limit < 1) limit = 1;
    if (limit > 1000) limit = 1000;
    crm_conn *conn = crm_store_conn(bus->k->store);
    crm_stmt *st = NULL;
    int rc = crm_stmt_prepare(
        conn, &st, "SELECT " ROW_COLS " FROM core_outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2");
    if (rc) return rc;
    crm_stmt_bind_int(st, 1, after_seq);
    crm_stmt_bind_int(st, 2, limit);
    json_t *arr = json_array();
    while ((rc = crm_stmt_step(st)) > 0) {
        json_t *e = json_object();
        json_object_set_new(e, "seq", json_integer(crm_stmt_column_int(st, 0)));
        json_object_set_new(e, "topic", text_or_null(st, 1));
        json_object_set_new(e, "type", text_or_null(st, 2));
        json_object_set_new(e, "id", int_or_null(st, 3));
        json_object_set_new(e, "at", text_or_null(st, 4));
        json_object_set_new(e, "user", int_or_null(st, 5));
        json_object_set_new(e, "via", text_or_null(st, 6));
        const char *payload = crm_stmt_column_text(st, 7);
        json_t *doc = payload ? json_loads(payload, 0, NULL) : NULL;
        if (json_is_object(doc)) {
            static const char *const parts[] = {"record", "old", "changed", "payload"};
            for (size_t p = 0; p < CRM_ARRAY_LEN(parts); p++) {
                json_t *v = json_object_get(doc, parts[p]);
                if (v) json_object_set(e, parts[p], v);
            }
        }
        json_decref(doc);
        json_array_append_new(arr, e);
    }
    crm_stmt_done(st);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return CRM_OK;
}
