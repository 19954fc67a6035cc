/*
 * test_bus.c — kernel/bus.c: handler order and phases, topic patterns, the
 * cascade bound, rollback on a handler error, the outbox, async delivery
 * (exactly once on success, retries with backoff, dead letters, per-record
 * order, durability across a crash, background workers) and the event stream.
 *
 * Most tests use custom events (crm_bus_emit); test_record_events goes through
 * the record layer for record events.
 */

#include "kfix.h"

#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#define T0 1700000000

static crm_kernel *kernel_open(const char *dir)
{
    return kfix_open_at(dir);
}

static void kernel_close(crm_kernel *k)
{
    crm_kernel_close(k);
}

static int64_t count(crm_kernel *k, const char *sql)
{
    int64_t n = -1;
    crm_conn_query_int(crm_store_conn(k->store), sql, &n, -1);
    return n;
}

static int emit(crm_kernel *k, const char *topic, json_t *payload)
{
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    return crm_bus_emit(&ctx, topic, payload);
}

/* Append a record event in its own transaction (what record.c does for a write). */
static int append_record(crm_kernel *k, const char *topic, const char *type, int64_t id, int n)
{
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, crm_principal_system(), "test");
    crm_event ev = {0};
    ev.topic = topic;
    ev.type = type;
    ev.id = id;
    ev.record = json_pack("{s:I, s:i}", "id", (json_int_t)id, "n", n);
    ev.old = json_pack("{s:I, s:i}", "id", (json_int_t)id, "n", n - 1);
    ev.changed = json_pack("[s]", "n");
    ev.via = ctx.via;
    crm_conn *conn = crm_ctx_conn(&ctx);
    int rc = crm_tx_begin(conn);
    if (rc == CRM_OK) rc = crm_bus_append(&ctx, &ev);
    if (rc == CRM_OK)
        rc = crm_tx_commit(conn);
    else
        crm_tx_rollback(conn);
    json_decref(ev.record);
    json_decref(ev.old);
    json_decref(ev.changed);
    return rc;
}

/* ---- A log handlers write to ---- */

static char trace[4096];
static void trace_reset(void)
{
    trace[0] = '\0';
}
static void trace_add(const char *s)
{
    if (trace[0]) strncat(trace, " ", sizeof trace - strlen(trace) - 1);
    strncat(trace, s, sizeof trace - strlen(trace) - 1);
}

static int h_trace(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)ev;
    trace_add(udata);
    return CRM_OK;
}

/* ---- Order and phases ---- */

static crm_bus *sub_bus; /* for h_subscribes */
static int h_subscribes(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)ev;
    (void)udata;
    trace_add("S");
    /* subscribing from a handler must not deadlock; it counts from the next dispatch */
    return crm_bus_subscribe(sub_bus, "t.late", CRM_PHASE_AFTER, 0, "late", h_trace, "L");
}

static void test_order_and_phases(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    crm_bus *b = k->bus;
    CHECK_INT(crm_bus_subscribe(b, "t.x", CRM_PHASE_AFTER, 10, "a", h_trace, "A10"), CRM_OK);
    CHECK_INT(crm_bus_subscribe(b, "t.x", CRM_PHASE_AFTER, 5, "b", h_trace, "B5"), CRM_OK);
    CHECK_INT(crm_bus_subscribe(b, "t.x", CRM_PHASE_AFTER, 10, "c", h_trace, "C10"), CRM_OK);
    CHECK_INT(crm_bus_subscribe(b, "t.x", CRM_PHASE_AFTER, -1, "d", h_trace, "D-1"), CRM_OK);
    CHECK_INT(crm_bus_subscribe(b, "t.x", CRM_PHASE_AFTER, 5, "e", h_trace, "E5"), CRM_OK);
    CHECK_INT(crm_bus_subscribe(b, "t.x", CRM_PHASE_BEFORE, 0, "f", h_trace, "BEFORE"), CRM_OK);

    trace_reset();
    CHECK_INT(emit(k, "t.x", NULL), CRM_OK);
    CHECK_STR(trace, "D-1 B5 E5 A10 C10");

    /* dispatch runs only the phase asked for */
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    crm_event ev = {0};
    ev.topic = "t.x";
    trace_reset();
    CHECK_INT(crm_bus_dispatch(&ctx, &ev, CRM_PHASE_BEFORE), CRM_OK);
    CHECK_STR(trace, "BEFORE");
    CHECK_INT(ctx.depth, 0);
    CHECK_INT(crm_bus_dispatch(&ctx, &ev, CRM_PHASE_ASYNC), CRM_EINVALID);

    /* a handler that subscribes: no deadlock, effective from the next dispatch */
    sub_bus = b;
    CHECK_INT(crm_bus_subscribe(b, "t.late", CRM_PHASE_AFTER, -5, "subscriber", h_subscribes, NULL),
              CRM_OK);
    trace_reset();
    CHECK_INT(emit(k, "t.late", NULL), CRM_OK);
    CHECK_STR(trace, "S");
    trace_reset();
    CHECK_INT(emit(k, "t.late", NULL), CRM_OK);
    CHECK_STR(trace, "S L");
    kernel_close(k);
}

/* ---- Patterns and validation ---- */

static void test_patterns(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    crm_bus *b = k->bus;
    CHECK_INT(crm_bus_subscribe(b, "t.a", CRM_PHASE_AFTER, 0, "exact", h_trace, "exact"), CRM_OK);
    CHECK_INT(crm_bus_subscribe(b, "t.a.*", CRM_PHASE_AFTER, 1, "prefix", h_trace, "prefix"),
              CRM_OK);
    CHECK_INT(crm_bus_subscribe(b, "*", CRM_PHASE_AFTER, 2, "all", h_trace, "all"), CRM_OK);

    trace_reset();
    CHECK_INT(emit(k, "t.a", NULL), CRM_OK);
    CHECK_STR(trace, "exact all");
    trace_reset();
    CHECK_INT(emit(k, "t.a.b", NULL), CRM_OK);
    CHECK_STR(trace, "prefix all");
    trace_reset();
    CHECK_INT(emit(k, "t.a.b.c", NULL), CRM_OK);
    CHECK_STR(trace, "prefix all");
    trace_reset();
    CHECK_INT(emit(k, "t.ab", NULL), CRM_OK);
    CHECK_STR(trace, "all");

    static const char *const bad[] = {"",   "t.*x", "*.t", "t*",         "t.**",
                                      ".*", "t..*", "a b", "t.\xc3\xa9", "**"};
    for (size_t i = 0; i < CRM_ARRAY_LEN(bad); i++) {
        int rc = crm_bus_subscribe(b, bad[i], CRM_PHASE_AFTER, 0, "bad", h_trace, "x");
        if (rc != CRM_EINVALID) fprintf(stderr, "  pattern \"%s\" accepted\n", bad[i]);
        CHECK_INT(rc, CRM_EINVALID);
    }
    char longp[200];
    memset(longp, 'a', sizeof longp);
    longp[129] = '\0';
    CHECK_INT(crm_bus_subscribe(b, longp, CRM_PHASE_AFTER, 0, "long", h_trace, "x"), CRM_EINVALID);
    longp[128] = '\0';
    CHECK_INT(crm_bus_subscribe(b, longp, CRM_PHASE_AFTER, 0, "long", h_trace, "x"), CRM_OK);
    CHECK_INT(crm_bus_subscribe(b, "t.a", 7, 0, "phase", h_trace, "x"), CRM_EINVALID);
    CHECK_INT(crm_bus_subscribe(b, "t.a", CRM_PHASE_AFTER, 0, "", h_trace, "x"), CRM_EINVALID);
    CHECK_INT(crm_bus_subscribe(b, "t.a", CRM_PHASE_AFTER, 0, "nofn", NULL, NULL), CRM_EINVALID);

    /* async names are durable consumer names: unique */
    CHECK_INT(crm_bus_subscribe(b, "t.a", CRM_PHASE_ASYNC, 0, "mailer", h_trace, "x"), CRM_OK);
    CHECK_INT(crm_bus_subscribe(b, "t.b", CRM_PHASE_ASYNC, 0, "mailer", h_trace, "x"),
              CRM_ECONFLICT);
    CHECK_HAS(crm_error_last()->message, "mailer");
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_consumer"), 1);

    /* emitted topics: "<owner>.<event>", lower case */
    static const char *const bad_topics[] = {"",   "nodot", "T.x", "a..b",
                                             ".a", "a.",    "a.*", "a-b.c"};
    for (size_t i = 0; i < CRM_ARRAY_LEN(bad_topics); i++) {
        int rc = emit(k, bad_topics[i], NULL);
        if (rc != CRM_EINVALID) fprintf(stderr, "  topic \"%s\" accepted\n", bad_topics[i]);
        CHECK_INT(rc, CRM_EINVALID);
    }
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_outbox"), 4);
    kernel_close(k);
}

/* ---- Cascades and rollback ---- */

static int loop_calls;
static int h_loop(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    loop_calls++;
    return crm_bus_emit(ctx, ev->topic, ev->payload);
}

static void test_cascade_bound(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    CHECK_INT(crm_bus_subscribe(k->bus, "t.a", CRM_PHASE_AFTER, 0, "loop", h_loop, NULL), CRM_OK);
    loop_calls = 0;
    json_t *p = json_pack("{s:i}", "n", 1);
    CHECK_INT(emit(k, "t.a", p), CRM_ELIMIT);
    json_decref(p);
    const char *msg = crm_error_last()->message;
    CHECK_HAS(msg, "cascade depth limit 8 exceeded: t.a \xe2\x86\x92 t.a \xe2\x86\x92 t.a");
    /* the whole chain: the 8 topics on it plus the one refused */
    int arrows = 0;
    for (const char *s = msg; (s = strstr(s, "\xe2\x86\x92")); s++)
        arrows++;
    CHECK_INT(arrows, 8);
    CHECK_INT(loop_calls, 8);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_outbox"), 0);
    CHECK_INT(crm_tx_depth(crm_store_conn(k->store)), 0);
    kernel_close(k);
}

static int h_refuse(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)ev;
    (void)udata;
    return crm_error_set(CRM_EINVALID, "amount", "amount above the limit");
}

static int h_silent(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)ev;
    (void)udata;
    return CRM_EDENIED; /* without crm_error_set */
}

static int64_t seen_seq;
static int h_seq(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)udata;
    seen_seq = ev->seq;
    return CRM_OK;
}

static void test_after_error_rolls_back(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    crm_bus *b = k->bus;
    CHECK_INT(crm_bus_subscribe(b, "t.ok", CRM_PHASE_AFTER, 0, "seq", h_seq, NULL), CRM_OK);
    CHECK_INT(crm_bus_subscribe(b, "t.refused", CRM_PHASE_AFTER, 0, "refuse", h_refuse, NULL),
              CRM_OK);
    CHECK_INT(crm_bus_subscribe(b, "t.refused", CRM_PHASE_AFTER, 1, "never", h_trace, "never"),
              CRM_OK);
    CHECK_INT(crm_bus_subscribe(b, "t.silent", CRM_PHASE_AFTER, 0, "quiet one", h_silent, NULL),
              CRM_OK);

    trace_reset();
    CHECK_INT(emit(k, "t.refused", NULL), CRM_EINVALID);
    CHECK_STR(crm_error_last()->message, "amount above the limit"); /* not overwritten */
    CHECK_STR(crm_error_last()->field, "amount");
    CHECK_STR(trace, ""); /* the first error stops the chain */
    CHECK_INT(emit(k, "t.silent", NULL), CRM_EDENIED);
    CHECK_HAS(crm_error_last()->message, "quiet one");
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_outbox"), 0);

    /* after handlers see the outbox seq */
    seen_seq = 0;
    CHECK_INT(emit(k, "t.ok", NULL), CRM_OK);
    CHECK_INT(seen_seq, count(k, "SELECT MAX(seq) FROM core_outbox"));

    /* inside a caller's transaction a failed emit undoes only itself */
    crm_conn *conn = crm_store_conn(k->store);
    CHECK_INT(crm_tx_begin(conn), CRM_OK);
    CHECK_INT(emit(k, "t.ok", NULL), CRM_OK);
    CHECK_INT(emit(k, "t.refused", NULL), CRM_EINVALID);
    CHECK_INT(crm_tx_commit(conn), CRM_OK);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_outbox"), 2);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_outbox WHERE topic = 't.refused'"), 0);
    kernel_close(k);
}

/* ---- Async delivery ---- */

struct delivery {
    int64_t seq;
    int n;
    int attempt;
    int64_t id;
    char topic[64];
};
static struct delivery got[256];
static atomic_int ngot;
static int fail_seq_below; /* async handler fails for payload/record n < this */
static int fail_id;        /* ... and only for this record id (0: any) */

static int h_async(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    int i = atomic_fetch_add(&ngot, 1);
    if (i >= (int)CRM_ARRAY_LEN(got)) return CRM_OK;
    struct delivery *d = &got[i];
    d->seq = ev->seq;
    d->attempt = ev->attempt;
    d->id = ev->id;
    snprintf(d->topic, sizeof d->topic, "%s", ev->topic);
    json_t *src = ev->payload ? ev->payload : ev->record;
    d->n = (int)json_integer_value(json_object_get(src, "n"));
    if (!ctx->via || strncmp(ctx->via, "async ", 6) != 0) d->n = -1000;
    if (d->n < fail_seq_below && (fail_id == 0 || fail_id == ev->id))
        return crm_error_set(CRM_EINTERNAL, NULL, "smtp: connection refused (n=%d)", d->n);
    return CRM_OK;
}

static void async_reset(void)
{
    atomic_store(&ngot, 0);
    memset(got, 0, sizeof got);
    fail_seq_below = -1000000;
    fail_id = 0;
}

static int emit_n(crm_kernel *k, const char *topic, int n)
{
    json_t *p = json_pack("{s:i}", "n", n);
    int rc = emit(k, topic, p);
    json_decref(p);
    return rc;
}

static void test_async_exactly_once(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    async_reset();
    CHECK_INT(crm_bus_subscribe(k->bus, "t.*", CRM_PHASE_ASYNC, 0, "c1", h_async, NULL), CRM_OK);
    for (int i = 0; i < 5; i++)
        CHECK_INT(emit_n(k, "t.x", i), CRM_OK);
    CHECK_INT(emit_n(k, "other.x", 99), CRM_OK); /* not matched */
    CHECK_INT(atomic_load(&ngot), 0);            /* nothing async inside the emit */
    CHECK_INT(crm_bus_run_pending(k->bus), 5);
    REQUIRE(atomic_load(&ngot) == 5);
    for (int i = 0; i < 5; i++) {
        CHECK_INT(got[i].n, i);
        CHECK_INT(got[i].attempt, 1);
        CHECK_STR(got[i].topic, "t.x");
        if (i) CHECK(got[i].seq > got[i - 1].seq);
    }
    CHECK_INT(crm_bus_run_pending(k->bus), 0);
    CHECK_INT(atomic_load(&ngot), 5);
    /* the cursor covers the unmatched event too */
    CHECK_INT(count(k, "SELECT cursor FROM core_consumer WHERE name = 'c1'"),
              count(k, "SELECT MAX(seq) FROM core_outbox"));
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_retry"), 0);

    /* inside a transaction delivery is refused: handlers run after commit */
    crm_conn *conn = crm_store_conn(k->store);
    CHECK_INT(crm_tx_begin(conn), CRM_OK);
    CHECK_INT(crm_bus_run_pending(k->bus), CRM_EINVALID);
    crm_tx_rollback(conn);
    kernel_close(k);
}

static void test_new_consumer_no_replay(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    async_reset();
    for (int i = 0; i < 3; i++)
        CHECK_INT(emit_n(k, "t.x", i), CRM_OK);
    CHECK_INT(crm_bus_subscribe(k->bus, "*", CRM_PHASE_ASYNC, 0, "late", h_async, NULL), CRM_OK);
    CHECK_INT(crm_bus_run_pending(k->bus), 0);
    CHECK_INT(emit_n(k, "t.x", 3), CRM_OK);
    CHECK_INT(crm_bus_run_pending(k->bus), 1);
    CHECK_INT(got[0].n, 3);
    kernel_close(k);
}

static void test_async_retry_and_dead_letter(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    async_reset();
    int64_t now = T0;
    crm_clock_set(now);
    fail_seq_below = 1000; /* everything fails */
    CHECK_INT(crm_bus_subscribe(k->bus, "t.x", CRM_PHASE_ASYNC, 0, "mailer", h_async, NULL),
              CRM_OK);
    CHECK_INT(emit_n(k, "t.x", 7), CRM_OK);

    CHECK_INT(crm_bus_run_pending(k->bus), 1);
    CHECK_INT(count(k, "SELECT attempts FROM core_retry"), 1);
    CHECK_INT(count(k, "SELECT next_at FROM core_retry"), now + 1);
    /* backoff 1, 2, 4, ... : not due a second early, due on time */
    for (int attempt = 2; attempt <= CRM_BUS_MAX_ATTEMPTS; attempt++) {
        int64_t wait = (int64_t)1 << (attempt - 2);
        crm_clock_set(now + wait - 1);
        CHECK_INT(crm_bus_run_pending(k->bus), 0);
        now += wait;
        crm_clock_set(now);
        CHECK_INT(crm_bus_run_pending(k->bus), 1);
        CHECK_INT(got[atomic_load(&ngot) - 1].attempt, attempt);
    }
    CHECK_INT(atomic_load(&ngot), CRM_BUS_MAX_ATTEMPTS);
    crm_clock_set(now + 100000);
    CHECK_INT(crm_bus_run_pending(k->bus), 0); /* dead: no more attempts */

    json_t *dead = NULL;
    CHECK_INT(crm_bus_dead_letters(k->bus, &dead), CRM_OK);
    REQUIRE(json_array_size(dead) == 1);
    json_t *d = json_array_get(dead, 0);
    CHECK_STR(json_string_value(json_object_get(d, "consumer")), "mailer");
    CHECK_STR(json_string_value(json_object_get(d, "topic")), "t.x");
    CHECK_INT(json_integer_value(json_object_get(d, "attempts")), CRM_BUS_MAX_ATTEMPTS);
    CHECK_INT(json_integer_value(json_object_get(d, "seq")), got[0].seq);
    CHECK_HAS(json_string_value(json_object_get(d, "last_error")), "connection refused");
    int64_t id = json_integer_value(json_object_get(d, "id"));
    json_decref(dead);

    /* re-queued: delivered at once, now that the handler works */
    CHECK_INT(crm_bus_retry(k->bus, id + 1000), CRM_ENOTFOUND);
    fail_seq_below = -1000000;
    CHECK_INT(crm_bus_retry(k->bus, id), CRM_OK);
    CHECK_INT(crm_bus_retry(k->bus, id), CRM_ENOTFOUND); /* no longer dead */
    CHECK_INT(crm_bus_run_pending(k->bus), 1);
    CHECK_INT(got[atomic_load(&ngot) - 1].attempt, 1);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_retry"), 0);
    CHECK_INT(crm_bus_dead_letters(k->bus, &dead), CRM_OK);
    CHECK_INT(json_array_size(dead), 0);
    json_decref(dead);
    crm_clock_set(-1);
    kernel_close(k);
}

static void test_async_per_record_order(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    async_reset();
    int64_t now = T0;
    crm_clock_set(now);
    CHECK_INT(crm_bus_subscribe(k->bus, "t.rec.*", CRM_PHASE_ASYNC, 0, "sync", h_async, NULL),
              CRM_OK);
    fail_seq_below = 2; /* record X's first event (n=1) fails */
    fail_id = 10;
    CHECK_INT(append_record(k, "t.rec.updated", "t.rec", 10, 1), CRM_OK); /* X1 */
    CHECK_INT(append_record(k, "t.rec.updated", "t.rec", 20, 1), CRM_OK); /* Y1 */
    CHECK_INT(append_record(k, "t.rec.updated", "t.rec", 10, 2), CRM_OK); /* X2 */
    CHECK_INT(append_record(k, "t.rec.updated", "t.rec", 20, 2), CRM_OK); /* Y2 */

    CHECK_INT(crm_bus_run_pending(k->bus), 3); /* X1 (fails), Y1, Y2; X2 waits */
    REQUIRE(atomic_load(&ngot) == 3);
    CHECK(got[0].id == 10 && got[0].n == 1);
    CHECK(got[1].id == 20 && got[1].n == 1);
    CHECK(got[2].id == 20 && got[2].n == 2);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_retry WHERE state = 'pending'"), 2);
    /* record events carry the record, old values and changed fields */
    CHECK_STR(got[0].topic, "t.rec.updated");

    /* X1 still failing: X2 still waits even though it is due */
    now += 1;
    crm_clock_set(now);
    CHECK_INT(crm_bus_run_pending(k->bus), 1);
    CHECK(got[3].id == 10 && got[3].n == 1 && got[3].attempt == 2);

    /* X1 succeeds: X2 follows in the same pass, then a new X3 goes straight through */
    fail_seq_below = -1000000;
    now += 2;
    crm_clock_set(now);
    CHECK_INT(crm_bus_run_pending(k->bus), 2);
    REQUIRE(atomic_load(&ngot) == 6);
    CHECK(got[4].id == 10 && got[4].n == 1 && got[4].attempt == 3);
    CHECK(got[5].id == 10 && got[5].n == 2 && got[5].attempt == 1);
    CHECK_INT(append_record(k, "t.rec.updated", "t.rec", 10, 3), CRM_OK);
    CHECK_INT(crm_bus_run_pending(k->bus), 1);
    CHECK(got[6].id == 10 && got[6].n == 3);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_retry"), 0);
    crm_clock_set(-1);
    kernel_close(k);
}

/* ---- Durability across processes ---- */

static int h_crash(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)ev;
    (void)udata;
    _exit(0); /* the process dies in the middle of a delivery */
}

static int h_noop(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)ev;
    (void)udata;
    return CRM_OK;
}

static void test_durable_outbox(void)
{
    const char *dir = t_tmpdir();
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        /* commits three events, delivers nothing, and exits without closing anything */
        crm_kernel *k = kernel_open(dir);
        if (crm_bus_subscribe(k->bus, "t.*", CRM_PHASE_ASYNC, 0, "durable", h_noop, NULL)) _exit(3);
        for (int i = 0; i < 3; i++)
            if (emit_n(k, "t.x", i)) _exit(4);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* a second child starts delivering and dies inside the handler */
    fflush(NULL);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        crm_kernel *k = kernel_open(dir);
        if (crm_bus_subscribe(k->bus, "t.*", CRM_PHASE_ASYNC, 0, "durable", h_crash, NULL))
            _exit(3);
        crm_bus_run_pending(k->bus);
        _exit(5); /* not reached: the handler exits */
    }
    waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    crm_kernel *k = kernel_open(dir);
    async_reset();
    CHECK_INT(crm_bus_subscribe(k->bus, "t.*", CRM_PHASE_ASYNC, 0, "durable", h_async, NULL),
              CRM_OK);
    CHECK_INT(crm_bus_run_pending(k->bus), 3); /* at least once: the crashed one again */
    REQUIRE(atomic_load(&ngot) == 3);
    for (int i = 0; i < 3; i++)
        CHECK_INT(got[i].n, i);
    CHECK_INT(crm_bus_run_pending(k->bus), 0);
    kernel_close(k);
}

/* ---- Background workers ---- */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_background_workers(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    async_reset();
    CHECK_INT(crm_bus_subscribe(k->bus, "t.*", CRM_PHASE_ASYNC, 0, "bg", h_async, NULL), CRM_OK);
    CHECK_INT(crm_bus_subscribe(k->bus, "t.*", CRM_PHASE_ASYNC, 0, "bg2", h_noop, NULL), CRM_OK);
    CHECK_INT(crm_bus_start(k->bus, 2), CRM_OK);
    CHECK_INT(crm_bus_start(k->bus, 2), CRM_EINVALID);
    /* let the workers go idle so the events below need the commit's wake-up */
    usleep(50 * 1000);
    double t0 = mono_s();
    for (int i = 0; i < 3; i++)
        CHECK_INT(emit_n(k, "t.x", i), CRM_OK);
    while (atomic_load(&ngot) < 3 && mono_s() - t0 < 2.0)
        usleep(5 * 1000);
    CHECK_INT(atomic_load(&ngot), 3);
    CHECK(mono_s() - t0 < 0.5); /* woken by the commit, not by the 1 s timer */
    double t1 = mono_s();
    crm_bus_stop(k->bus);
    CHECK(mono_s() - t1 < 1.0);
    /* read what the workers wrote only after joining them */
    for (int i = 0; i < 3 && i < atomic_load(&ngot); i++)
        CHECK_INT(got[i].n, i);
    CHECK_INT(emit_n(k, "t.x", 3), CRM_OK);
    usleep(50 * 1000);
    CHECK_INT(atomic_load(&ngot), 3);          /* stopped */
    CHECK_INT(crm_bus_run_pending(k->bus), 2); /* bg and bg2 */
    CHECK_INT(atomic_load(&ngot), 4);
    kernel_close(k);
}

/* ---- The event stream ---- */

static void test_events_paging(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    crm_clock_set(T0);
    for (int i = 0; i < 5; i++)
        CHECK_INT(emit_n(k, "t.x", i), CRM_OK);
    CHECK_INT(append_record(k, "t.rec.updated", "t.rec", 42, 9), CRM_OK);

    json_t *page = NULL;
    CHECK_INT(crm_bus_events(k->bus, 0, 2, &page), CRM_OK);
    REQUIRE(json_array_size(page) == 2);
    json_t *e = json_array_get(page, 0);
    int64_t s0 = json_integer_value(json_object_get(e, "seq"));
    CHECK_STR(json_string_value(json_object_get(e, "topic")), "t.x");
    CHECK_STR(json_string_value(json_object_get(e, "at")), "2023-11-14T22:13:20Z");
    CHECK(json_is_null(json_object_get(e, "type")));
    CHECK(json_is_null(json_object_get(e, "user")));
    CHECK_INT(json_integer_value(json_object_get(json_object_get(e, "payload"), "n")), 0);
    int64_t after = json_integer_value(json_object_get(json_array_get(page, 1), "seq"));
    CHECK(after > s0);
    json_decref(page);

    CHECK_INT(crm_bus_events(k->bus, after, 1000, &page), CRM_OK);
    REQUIRE(json_array_size(page) == 4);
    CHECK(json_integer_value(json_object_get(json_array_get(page, 0), "seq")) > after);
    e = json_array_get(page, 3);
    CHECK_STR(json_string_value(json_object_get(e, "type")), "t.rec");
    CHECK_INT(json_integer_value(json_object_get(e, "id")), 42);
    CHECK_STR(json_string_value(json_object_get(e, "via")), "test");
    CHECK_INT(json_integer_value(json_object_get(json_object_get(e, "record"), "n")), 9);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(e, "old"), "n")), 8);
    CHECK_STR(json_string_value(json_array_get(json_object_get(e, "changed"), 0)), "n");
    CHECK(!json_object_get(e, "payload"));
    int64_t last = json_integer_value(json_object_get(e, "seq"));
    json_decref(page);

    CHECK_INT(crm_bus_events(k->bus, last, 10, &page), CRM_OK);
    CHECK_INT(json_array_size(page), 0);
    json_decref(page);
    CHECK_INT(crm_bus_events(k->bus, 0, 0, &page), CRM_OK); /* clamped to 1 */
    CHECK_INT(json_array_size(page), 1);
    json_decref(page);
    crm_clock_set(-1);
    kernel_close(k);
}

/* ---- Record events, through the record layer ---- */

static char rec_topics[8][64];
static int rec_n;
static int64_t rec_id, rec_old_age, rec_new_age;
static char rec_changed[64];

static int h_record_async(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)udata;
    if (rec_n < 8) snprintf(rec_topics[rec_n++], sizeof rec_topics[0], "%s", ev->topic);
    if (strcmp(ev->topic, "test.contact.updated") == 0) {
        rec_id = ev->type && strcmp(ev->type, "test.contact") == 0 ? ev->id : -1;
        rec_old_age = json_integer_value(json_object_get(ev->old, "age"));
        rec_new_age = json_integer_value(json_object_get(ev->record, "age"));
        snprintf(rec_changed, sizeof rec_changed, "%s",
                 json_string_value(json_array_get(ev->changed, 0)));
    }
    return CRM_OK;
}

/* Every update triggers another: the cascade bound must stop it. */
static int h_bump(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    json_t *patch =
        json_pack("{s:I}", "age", json_integer_value(json_object_get(ev->record, "age")) + 1);
    json_t *out = NULL;
    int rc = crm_record_update(ctx, ev->type, ev->id, patch, 0, &out);
    json_decref(patch);
    json_decref(out);
    return rc;
}

static void test_record_events(void)
{
    crm_kernel *k = kfix_open();
    rec_n = 0;
    CHECK_INT(crm_bus_subscribe(k->bus, "test.contact.*", CRM_PHASE_ASYNC, 0, "rec", h_record_async,
                                NULL),
              CRM_OK);
    int64_t id = kfix_create(k, "test.contact", "{\"name\":\"Ann\",\"age\":30}");
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    json_t *patch = json_pack("{s:i}", "age", 31), *out = NULL;
    CHECK_INT(crm_record_update(&ctx, "test.contact", id, patch, 0, &out), CRM_OK);
    json_decref(patch);
    json_decref(out);

    CHECK_INT(crm_bus_run_pending(k->bus), 2);
    REQUIRE(rec_n == 2);
    CHECK_STR(rec_topics[0], "test.contact.created");
    CHECK_STR(rec_topics[1], "test.contact.updated");
    CHECK_INT(rec_id, id);
    CHECK_INT(rec_old_age, 30);
    CHECK_INT(rec_new_age, 31);
    CHECK_STR(rec_changed, "age");

    /* a record write in an after handler re-triggers it: stopped at depth 8, all undone */
    int64_t outbox = count(k, "SELECT COUNT(*) FROM core_outbox");
    CHECK_INT(
        crm_bus_subscribe(k->bus, "test.contact.updated", CRM_PHASE_AFTER, 0, "bump", h_bump, NULL),
        CRM_OK);
    patch = json_pack("{s:i}", "age", 40);
    out = NULL;
    CHECK_INT(crm_record_update(&ctx, "test.contact", id, patch, 0, &out), CRM_ELIMIT);
    json_decref(patch);
    json_decref(out);
    CHECK_HAS(crm_error_last()->message, "cascade depth limit 8 exceeded: test.contact.updated "
                                         "\xe2\x86\x92 test.contact.updated");
    CHECK_INT(ctx.depth, 0);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_outbox"), outbox);
    CHECK_INT(count(k, "SELECT age FROM \"test.contact\""), 31);
    crm_kernel_close(k);
}

int main(void)
{
    crm_log_set_level(CRM_LOG_ERROR + 1);
    RUN(test_order_and_phases);
    RUN(test_patterns);
    RUN(test_cascade_bound);
    RUN(test_after_error_rolls_back);
    RUN(test_async_exactly_once);
    RUN(test_new_consumer_no_replay);
    RUN(test_async_retry_and_dead_letter);
    RUN(test_async_per_record_order);
    RUN(test_durable_outbox);
    RUN(test_background_workers);
    RUN(test_events_paging);
    RUN(test_record_events);
    return t_finish("test_bus");
}
