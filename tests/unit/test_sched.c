/*
 * test_sched.c — kernel/sched.c: cron parsing and next times, then the
 * scheduler against a real kernel: offsets, yearly dates, catch-up after
 * downtime, restarts, failing handlers and the background thread.
 */
#include "t.h"

#include "../../kernel/perm.h"
#include "../../kernel/record.h"
#include "../../kernel/sched.h"

#include <stdatomic.h>
#include <time.h>

/* "2025-01-03T09:00Z" -> epoch seconds (the test's own inputs: a typo aborts). */
static int64_t T(const char *s)
{
    int64_t t;
    bool date_only;
    if (!crm_time_parse(s, &t, &date_only)) {
        fprintf(stderr, "bad time in test: %s\n", s);
        exit(2);
    }
    return t;
}

/* ---- Cron parsing ---- */

static void test_cron_parse_good(void)
{
    static const char *const good[] = {
        "* * * * *",       "*/15 * * * *", "0 9 * * mon-fri", "10-50/10 * * * *", "0 0 1,15 * *",
        "0 0 1 jan,JUL *", "0 12 * * 7",   "0 12 * * SUN",    "  0   3 * * *  ",  "5/15 * * * *",
        "@hourly",         "@daily",       "@midnight",       "@weekly",          "@monthly",
        "@yearly",         "@annually",    "59 23 31 12 6",   "0 0 * * 1-7",      "0 0 29 2 *",
    };
    for (size_t i = 0; i < CRM_ARRAY_LEN(good); i++) {
        crm_cron c;
        int rc = crm_cron_parse(&c, good[i]);
        if (rc != CRM_OK) fprintf(stderr, "  %s: %s\n", good[i], crm_error_last()->message);
        CHECK_INT(rc, CRM_OK);
    }

    crm_cron c;
    REQUIRE(crm_cron_parse(&c, "*/15 9-17 * * mon-fri") == CRM_OK);
    CHECK(c.minute == ((1ull << 0) | (1ull << 15) | (1ull << 30) | (1ull << 45)));
    CHECK_INT(c.hour, 0x3fe00); /* bits 9..17 */
    CHECK(c.dom_any);
    CHECK(!c.dow_any);
    CHECK_INT(c.dow, 0x3e); /* mon..fri */
    CHECK_INT(c.month, 0x1ffe);

    REQUIRE(crm_cron_parse(&c, "10-50/10 0 1 * 7") == CRM_OK);
    CHECK(c.minute == ((1ull << 10) | (1ull << 20) | (1ull << 30) | (1ull << 40) | (1ull << 50)));
    CHECK_INT(c.dow, 1); /* 7 is Sunday */
    CHECK(!c.dom_any);

    REQUIRE(crm_cron_parse(&c, "@weekly") == CRM_OK);
    CHECK(c.minute == 1);
    CHECK_INT(c.hour, 1);
    CHECK_INT(c.dow, 1);
    CHECK(c.dom_any);
}

static void test_cron_parse_bad(void)
{
    static const struct {
        const char *expr, *msg;
    } bad[] = {
        {"0 25 * * *", "cron \"0 25 * * *\": hour 25 out of range 0-23"},
        {"60 * * * *", "cron \"60 * * * *\": minute 60 out of range 0-59"},
        {"0 0 0 * *", "cron \"0 0 0 * *\": day-of-month 0 out of range 1-31"},
        {"0 0 32 * *", "cron \"0 0 32 * *\": day-of-month 32 out of range 1-31"},
        {"0 0 * 13 *", "cron \"0 0 * 13 *\": month 13 out of range 1-12"},
        {"0 0 * * 8", "cron \"0 0 * * 8\": day-of-week 8 out of range 0-7"},
        {"0 0 * foo *", "cron \"0 0 * foo *\": month \"foo\" is not a number or a name (jan..dec)"},
        {"0 0 * * fun",
         "cron \"0 0 * * fun\": day-of-week \"fun\" is not a number or a name (sun..sat)"},
        {"x * * * *", "cron \"x * * * *\": minute \"x\" is not a number"},
        {"0 jan * * *", "cron \"0 jan * * *\": hour \"jan\" is not a number"},
        {"0 5-3 * * *", "cron \"0 5-3 * * *\": hour range \"5-3\" is reversed"},
        {"*/0 * * * *", "cron \"*/0 * * * *\": minute step 0 out of range 1-59"},
        {"*/x * * * *", "cron \"*/x * * * *\": minute step in \"*/x\" is not a number"},
        {"1,,2 * * * *", "cron \"1,,2 * * * *\": minute \"1,,2\" has an empty item"},
        {"1- * * * *", "cron \"1- * * * *\": minute \"1-\" is not a number"},
        {"0 0 1-2x * *", "cron \"0 0 1-2x * *\": day-of-month \"1-2x\" is not understood"},
        {"* * * *", "cron \"* * * *\": expected 5 fields (minute hour day-of-month month "
                    "day-of-week), found 4"},
        {"* * * * * *", "found 6"},
        {"", "found 0"},
        {"@reboot", "cron \"@reboot\": unknown macro"},
        {"@daily 5", "unknown macro"},
    };
    for (size_t i = 0; i < CRM_ARRAY_LEN(bad); i++) {
        crm_cron c;
        CHECK_INT(crm_cron_parse(&c, bad[i].expr), CRM_EINVALID);
        CHECK_HAS(crm_error_last()->message, bad[i].msg);
    }
}

/* ---- Next times ---- */

static void test_cron_next(void)
{
    static const struct {
        const char *expr, *from, *want; /* want NULL: none within 5 years */
    } cases[] = {
        {"*/15 * * * *", "2025-01-01T00:00:00Z", "2025-01-01T00:15:00Z"},
        {"*/15 * * * *", "2025-01-01T00:14:59Z", "2025-01-01T00:15:00Z"},
        {"*/15 * * * *", "2025-01-01T23:45:00Z", "2025-01-02T00:00:00Z"},
        {"* * * * *", "2025-01-01T00:14:30Z", "2025-01-01T00:15:00Z"}, /* seconds dropped */
        {"10-50/10 * * * *", "2025-01-01T00:50:00Z", "2025-01-01T01:10:00Z"},
        /* Friday 09:00 -> Monday 09:00 over the weekend */
        {"0 9 * * mon-fri", "2025-01-03T09:00:00Z", "2025-01-06T09:00:00Z"},
        {"0 9 * * mon-fri", "2025-01-03T08:59:00Z", "2025-01-03T09:00:00Z"},
        {"0 9 * * MON-FRI", "2025-01-04T12:00:00Z", "2025-01-06T09:00:00Z"},
        /* leap day: next in 2028 */
        {"0 0 29 2 *", "2025-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
        {"0 0 30 2 *", "2025-01-01T00:00:00Z", NULL},
        {"0 0 31 4 *", "2025-01-01T00:00:00Z", NULL},
        /* both restricted: the 13th OR a Friday (Jan 3 is a Friday, Jan 13 a Monday) */
        {"0 0 13 * fri", "2025-01-01T00:00:00Z", "2025-01-03T00:00:00Z"},
        {"0 0 13 * fri", "2025-01-10T00:00:00Z", "2025-01-13T00:00:00Z"},
        /* "*" step in dom counts as unrestricted: odd days AND Mondays (Jan 6 even, 13 odd) */
        {"0 0 */2 * mon", "2025-01-01T00:00:00Z", "2025-01-13T00:00:00Z"},
        /* dom restricted, dow "*": only the dom */
        {"0 0 13 * *", "2025-01-01T00:00:00Z", "2025-01-13T00:00:00Z"},
        /* month and year rollover */
        {"30 23 31 12 *", "2025-06-01T00:00:00Z", "2025-12-31T23:30:00Z"},
        {"0 0 1 * *", "2025-12-15T00:00:00Z", "2026-01-01T00:00:00Z"},
        {"0 0 31 * *", "2025-01-31T00:00:00Z", "2025-03-31T00:00:00Z"},
        {"0 0 1 jan,jul *", "2025-02-01T00:00:00Z", "2025-07-01T00:00:00Z"},
        {"@yearly", "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"},
        {"@yearly", "2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z"},
        {"@monthly", "2024-02-10T00:00:00Z", "2024-03-01T00:00:00Z"},
        {"@weekly", "2025-01-01T00:00:00Z", "2025-01-05T00:00:00Z"}, /* Sunday */
        {"@hourly", "2025-01-01T10:00:00Z", "2025-01-01T11:00:00Z"},
        {"0 12 * * 7", "2025-01-01T00:00:00Z", "2025-01-05T12:00:00Z"},
        {"0 0 * * 1-7", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"},
    };
    for (size_t i = 0; i < CRM_ARRAY_LEN(cases); i++) {
        crm_cron c;
        if (crm_cron_parse(&c, cases[i].expr) != CRM_OK) {
            CHECK_STR(crm_error_last()->message, "");
            continue;
        }
        int64_t got = crm_cron_next(&c, T(cases[i].from));
        char buf[21] = "-1";
        if (got >= 0) crm_time_format(got, buf);
        if (!cases[i].want) {
            if (got != -1) fprintf(stderr, "  %s from %s\n", cases[i].expr, cases[i].from);
            CHECK_STR(buf, "-1");
        } else {
            if (got != T(cases[i].want))
                fprintf(stderr, "  %s from %s\n", cases[i].expr, cases[i].from);
            CHECK_STR(buf, cases[i].want);
        }
    }
}

/* The search skips whole months and days: an impossible date answers quickly. */
static void test_cron_next_fast(void)
{
    crm_cron c;
    REQUIRE(crm_cron_parse(&c, "0 0 30 2 *") == CRM_OK);
    int64_t t0 = crm_mono_us();
    for (int i = 0; i < 1000; i++)
        CHECK_INT(crm_cron_next(&c, T("2025-01-01") + i * 60), -1);
    CHECK((crm_mono_us() - t0) < 2000000); /* 1000 five-year searches well under 2 s */

    /* every minute for a year, chained: each step is the next minute */
    REQUIRE(crm_cron_parse(&c, "* * * * *") == CRM_OK);
    int64_t t = T("2025-12-31T23:58:00Z");
    t = crm_cron_next(&c, t);
    CHECK_INT(t, T("2025-12-31T23:59:00Z"));
    t = crm_cron_next(&c, t);
    CHECK_INT(t, T("2026-01-01T00:00:00Z"));
}

/* ---- The scheduler against a kernel ---- */

typedef struct counter {
    atomic_int calls; /* handler invocations, including failed ones */
    int fail;         /* 1: write a record, then fail */
    int64_t last_due, last_now, last_id;
    char last_field[32];
    int64_t ids[64], dues[64];
    int n;
} counter;

static int count_fn(crm_ctx *ctx, const crm_firing *f, void *udata)
{
    counter *c = udata;
    atomic_fetch_add(&c->calls, 1);
    c->last_due = f->due;
    c->last_now = f->now;
    c->last_id = f->record_id;
    c->last_field[0] = 0;
    if (f->record) {
        json_t *v = json_object_get(f->record, "renews");
        if (json_is_string(v))
            snprintf(c->last_field, sizeof c->last_field, "%s", json_string_value(v));
    }
    if (c->n < 64) {
        c->ids[c->n] = f->record_id;
        c->dues[c->n] = f->due;
        c->n++;
    }
    if (c->fail) {
        json_t *fields = json_pack("{s:s}", "title", "from handler");
        json_t *out = NULL;
        int rc = crm_record_create(ctx, "test.sub", fields, &out);
        json_decref(fields);
        json_decref(out);
        if (rc < 0) return rc;
        return crm_error_set(CRM_EINVALID, NULL, "handler refuses");
    }
    return CRM_OK;
}

static crm_kernel *kernel_open(const char *dir)
{
    crm_kernel_opts o = CRM_KERNEL_OPTS_INIT;
    crm_kernel *k = NULL;
    o.data_dir = dir;
    o.synchronous = 0;
    if (crm_kernel_open(&k, &o) < 0) {
        fprintf(stderr, "  kernel open: %s\n", crm_error_last()->message);
        return NULL;
    }
    json_t *fields = json_loads("[{\"name\":\"title\",\"kind\":\"text\"},"
                                "{\"name\":\"renews\",\"kind\":\"date\",\"indexed\":true},"
                                "{\"name\":\"meeting\",\"kind\":\"datetime\"},"
                                "{\"name\":\"birthday\",\"kind\":\"date\"}]",
                                0, NULL);
    int rc = crm_schema_define_type(k->schema, "test.sub", "Sub", "test", fields);
    json_decref(fields);
    if (rc < 0) {
        fprintf(stderr, "  define type: %s\n", crm_error_last()->message);
        crm_kernel_close(k);
        return NULL;
    }
    return k;
}

/* Create a test.sub with one field set; returns its id (0 on failure). */
static int64_t sub_create(crm_kernel *k, const char *field, const char *value)
{
    crm_ctx ctx;
    json_t *out = NULL;
    json_t *fields = json_pack("{s:s, s:s}", "title", "sub", field, value);
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    int rc = crm_record_create(&ctx, "test.sub", fields, &out);
    json_decref(fields);
    if (rc < 0) {
        fprintf(stderr, "  create: %s\n", crm_error_last()->message);
        return 0;
    }
    int64_t id = json_integer_value(json_object_get(out, "id"));
    json_decref(out);
    return id;
}

static int64_t count_rows(crm_kernel *k, const char *sql)
{
    int64_t n = -1;
    crm_conn_query_int(crm_store_conn(k->store), sql, &n, -1);
    return n;
}

static void test_register(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    REQUIRE(k);
    counter c = {0};
    crm_sched *s = k->sched;
    CHECK_INT(crm_sched_cron(s, "nightly", "0 3 * * *", count_fn, &c), CRM_OK);
    CHECK_INT(crm_sched_cron(s, "nightly", "0 4 * * *", count_fn, &c), CRM_ECONFLICT);
    CHECK_HAS(crm_error_last()->message, "nightly");
    CHECK_INT(crm_sched_cron(s, "bad", "0 25 * * *", count_fn, &c), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "hour 25 out of range 0-23");
    CHECK_INT(crm_sched_offset(s, "o1", "test.sub", "renews", -3 * 86400, 540, count_fn, &c),
              CRM_OK);
    CHECK_INT(crm_sched_offset(s, "o1", "test.sub", "meeting", 0, -1, count_fn, &c), CRM_ECONFLICT);
    CHECK_INT(crm_sched_offset(s, "o2", "test.sub", "meeting", -900, -1, count_fn, &c), CRM_OK);
    CHECK_INT(crm_sched_offset(s, "o3", "test.nope", "renews", 0, 0, count_fn, &c), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "test.nope");
    CHECK_INT(crm_sched_offset(s, "o3", "test.sub", "nope", 0, 0, count_fn, &c), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "\"nope\"");
    CHECK_INT(crm_sched_offset(s, "o3", "test.sub", "title", 0, 0, count_fn, &c), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "not a date");
    CHECK_INT(crm_sched_offset(s, "o3", "test.sub", "renews", 0, 1440, count_fn, &c), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "at_minute 1440");
    CHECK_INT(crm_sched_yearly(s, "y1", "test.sub", "meeting", 0, count_fn, &c), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "yearly needs a date field");
    CHECK_INT(crm_sched_yearly(s, "y1", "test.sub", "birthday", 540, count_fn, &c), CRM_OK);
    CHECK_INT(crm_sched_remove(s, "y1"), CRM_OK);
    CHECK_INT(crm_sched_remove(s, "y1"), CRM_ENOTFOUND);
    CHECK_INT(crm_sched_yearly(s, "y1", "test.sub", "birthday", 540, count_fn, &c), CRM_OK);
    crm_kernel_close(k);
}

static void test_offset_date(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    REQUIRE(k);
    counter c = {0};
    int64_t a = sub_create(k, "renews", "2026-03-10");
    int64_t b = sub_create(k, "renews", "2026-03-12");
    int64_t gone = sub_create(k, "renews", "2026-03-10");
    REQUIRE(a && b && gone);
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    REQUIRE(crm_record_delete(&ctx, "test.sub", gone, 0) == CRM_OK);

    /* 3 days before renews, at 09:00 */
    REQUIRE(crm_sched_offset(k->sched, "renewal", "test.sub", "renews", -3 * 86400, 540, count_fn,
                             &c) == CRM_OK);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-01T00:00:00Z")), 0); /* first sight */
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-07T08:59:00Z")), 0);
    CHECK_INT(c.calls, 0);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-07T09:00:00Z")), 1);
    CHECK_INT(c.calls, 1);
    CHECK_INT(c.last_id, a);
    CHECK_INT(c.last_due, T("2026-03-07T09:00:00Z"));
    CHECK_INT(c.last_now, T("2026-03-07T09:00:00Z"));
    CHECK_STR(c.last_field, "2026-03-10");
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-07T12:00:00Z")), 0);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-09T08:00:00Z")), 0);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-09T09:00:30Z")), 1);
    CHECK_INT(c.last_id, b);
    CHECK_INT(c.last_due, T("2026-03-09T09:00:00Z"));
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-20T00:00:00Z")), 0);
    CHECK_INT(c.calls, 2);
    CHECK_INT(count_rows(k, "SELECT count(*) FROM core_sched_fired WHERE name = 'renewal'"), 2);
    crm_kernel_close(k);
}

static void test_offset_datetime(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    REQUIRE(k);
    counter c = {0};
    int64_t a = sub_create(k, "meeting", "2026-03-05T14:30:00Z");
    int64_t b = sub_create(k, "meeting", "2026-03-05T16:30:00+02:00"); /* 14:30Z too */
    REQUIRE(a && b);
    REQUIRE(crm_sched_offset(k->sched, "reminder", "test.sub", "meeting", -15 * 60, -1, count_fn,
                             &c) == CRM_OK);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-05T00:00:00Z")), 0);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-05T14:14:59Z")), 0);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-05T14:15:00Z")), 2);
    CHECK_INT(c.last_due, T("2026-03-05T14:15:00Z"));
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-05T14:16:00Z")), 0);
    CHECK_INT(c.calls, 2);
    crm_kernel_close(k);
}

static void test_restart_no_repeat(void)
{
    const char *dir = t_tmpdir();
    counter c = {0};
    crm_kernel *k = kernel_open(dir);
    REQUIRE(k);
    REQUIRE(sub_create(k, "renews", "2026-03-10"));
    REQUIRE(crm_sched_offset(k->sched, "renewal", "test.sub", "renews", -3 * 86400, 540, count_fn,
                             &c) == CRM_OK);
    REQUIRE(crm_sched_cron(k->sched, "hourly", "0 * * * *", count_fn, &c) == CRM_OK);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-07T08:30:00Z")), 0);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-07T09:00:00Z")), 2); /* offset + cron */
    crm_kernel_close(k);

    /* A new process over the same data directory, the same window again. */
    k = kernel_open(dir);
    REQUIRE(k);
    REQUIRE(crm_sched_offset(k->sched, "renewal", "test.sub", "renews", -3 * 86400, 540, count_fn,
                             &c) == CRM_OK);
    REQUIRE(crm_sched_cron(k->sched, "hourly", "0 * * * *", count_fn, &c) == CRM_OK);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-07T09:00:00Z")), 0);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-07T09:30:00Z")), 0);
    CHECK_INT(c.calls, 2);

    /* A crash after the firing committed but before last_tick moved: the fired row
     * stops the offset repeating. */
    CHECK_INT(crm_conn_exec(crm_store_conn(k->store),
                            "UPDATE core_sched_state SET last_tick = last_tick - 7200 "
                            "WHERE name = 'renewal'"),
              CRM_OK);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-07T09:45:00Z")), 0);
    CHECK_INT(c.calls, 2);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-07T10:00:00Z")), 1); /* the next hour */
    crm_kernel_close(k);
}

static void test_downtime_catch_up(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    REQUIRE(k);
    counter c = {0};
    int64_t a = sub_create(k, "renews", "2026-03-11"); /* due 03-08 09:00 */
    int64_t b = sub_create(k, "renews", "2026-03-12"); /* due 03-09 09:00 */
    int64_t later = sub_create(k, "renews", "2026-03-20");
    REQUIRE(a && b && later);
    REQUIRE(crm_sched_offset(k->sched, "renewal", "test.sub", "renews", -3 * 86400, 540, count_fn,
                             &c) == CRM_OK);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-07T12:00:00Z")), 0);
    /* down for two days: both missed firings run, once, late */
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-09T12:00:00Z")), 2);
    CHECK_INT(c.n, 2);
    CHECK_INT(c.ids[0], a);
    CHECK_INT(c.dues[0], T("2026-03-08T09:00:00Z"));
    CHECK_INT(c.ids[1], b);
    CHECK_INT(c.dues[1], T("2026-03-09T09:00:00Z"));
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-09T13:00:00Z")), 0);
    CHECK_INT(c.calls, 2);
    crm_kernel_close(k);
}

static void test_downtime_too_old(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    REQUIRE(k);
    counter c = {0};
    int64_t old = sub_create(k, "renews", "2026-03-05");    /* due 03-02 09:00 */
    int64_t recent = sub_create(k, "renews", "2026-03-09"); /* due 03-06 09:00 */
    REQUIRE(old && recent);
    REQUIRE(crm_sched_offset(k->sched, "renewal", "test.sub", "renews", -3 * 86400, 540, count_fn,
                             &c) == CRM_OK);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-01T00:00:00Z")), 0);
    /* down ten days: the window reaches back 7 days (to 03-04 00:00) */
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-11T00:00:00Z")), 1);
    CHECK_INT(c.calls, 1);
    CHECK_INT(c.last_id, recent);
    /* and the skipped one does not come back later */
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-12T00:00:00Z")), 0);
    CHECK_INT(c.calls, 1);
    crm_kernel_close(k);
}

static void test_cron_catch_up(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    REQUIRE(k);
    counter c = {0};
    REQUIRE(crm_sched_cron(k->sched, "hourly", "0 * * * *", count_fn, &c) == CRM_OK);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-01T00:30:00Z")), 0); /* first sight */
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-01T00:59:59Z")), 0);
    /* missed 01:00 .. 05:00: one firing, for the latest */
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-01T05:30:00Z")), 1);
    CHECK_INT(c.calls, 1);
    CHECK_INT(c.last_due, T("2026-03-01T05:00:00Z"));
    CHECK_INT(c.last_id, 0);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-01T05:45:00Z")), 0);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-01T06:00:00Z")), 1);
    CHECK_INT(c.last_due, T("2026-03-01T06:00:00Z"));
    CHECK_INT(c.calls, 2);
    /* a monthly schedule down across a month boundary */
    counter m = {0};
    REQUIRE(crm_sched_cron(k->sched, "monthly", "@monthly", count_fn, &m) == CRM_OK);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-01T07:00:00Z")), 1); /* hourly only */
    CHECK_INT(crm_sched_tick(k->sched, T("2026-05-15T07:00:00Z")), 2);
    CHECK_INT(m.calls, 1);
    CHECK_INT(m.last_due, T("2026-05-01T00:00:00Z"));
    crm_kernel_close(k);
}

static void test_failing_handler(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    REQUIRE(k);
    counter c = {0}, ok = {0};
    int64_t a = sub_create(k, "renews", "2026-03-10");
    int64_t b = sub_create(k, "renews", "2026-03-10");
    REQUIRE(a && b);
    REQUIRE(crm_sched_offset(k->sched, "flaky", "test.sub", "renews", 0, 0, count_fn, &c) ==
            CRM_OK);
    REQUIRE(crm_sched_cron(k->sched, "flaky-cron", "0 0 * * *", count_fn, &c) == CRM_OK);
    REQUIRE(crm_sched_cron(k->sched, "steady", "0 0 * * *", count_fn, &ok) == CRM_OK);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-09T12:00:00Z")), 0);

    c.fail = 1;
    /* two offset firings and one cron firing fail; the other schedule still runs */
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-10T00:00:00Z")), 1);
    CHECK_INT(c.calls, 3);
    CHECK_INT(ok.calls, 1);
    /* their writes were rolled back with them */
    CHECK_INT(count_rows(k, "SELECT count(*) FROM \"test.sub\" WHERE title = 'from handler'"), 0);
    CHECK_INT(count_rows(k, "SELECT count(*) FROM core_sched_fired WHERE name = 'flaky'"), 0);

    /* next tick: retried, now succeeding; each once */
    c.fail = 0;
    c.n = 0;
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-10T00:01:00Z")), 3);
    CHECK_INT(c.calls, 6);
    CHECK_INT(c.n, 3);
    CHECK_INT(ok.calls, 1);
    CHECK_INT(count_rows(k, "SELECT count(*) FROM core_sched_fired WHERE name = 'flaky'"), 2);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-10T00:02:00Z")), 0);
    CHECK_INT(c.calls, 6);

    /* a handler's writes commit with its firing when it succeeds */
    counter w = {0};
    REQUIRE(sub_create(k, "renews", "2026-03-11"));
    REQUIRE(crm_sched_offset(k->sched, "writer", "test.sub", "renews", 0, 0, count_fn, &w) ==
            CRM_OK);
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-10T06:00:00Z")), 0);
    w.fail = 1;
    /* "flaky" (no longer failing) fires for the new record too, and the two cron */
    CHECK_INT(crm_sched_tick(k->sched, T("2026-03-11T00:00:00Z")), 3);
    CHECK_INT(w.calls, 1);
    CHECK_INT(count_rows(k, "SELECT count(*) FROM \"test.sub\" WHERE title = 'from handler'"), 0);
    crm_kernel_close(k);
}

static void test_yearly_leap_day(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    REQUIRE(k);
    counter c = {0};
    int64_t leap = sub_create(k, "birthday", "2000-02-29");
    int64_t march = sub_create(k, "birthday", "1990-03-01");
    int64_t future = sub_create(k, "birthday", "2030-02-28");
    REQUIRE(leap && march && future);
    REQUIRE(crm_sched_yearly(k->sched, "birthday", "test.sub", "birthday", 540, count_fn, &c) ==
            CRM_OK);
    CHECK_INT(crm_sched_tick(k->sched, T("2027-02-01T00:00:00Z")), 0);
    CHECK_INT(crm_sched_tick(k->sched, T("2027-02-28T08:59:00Z")), 0);
    /* common year: 29 February's birthday on the 28th (the 2030 date is not due yet) */
    CHECK_INT(crm_sched_tick(k->sched, T("2027-02-28T09:00:00Z")), 1);
    CHECK_INT(c.last_id, leap);
    CHECK_INT(c.last_due, T("2027-02-28T09:00:00Z"));
    CHECK_INT(crm_sched_tick(k->sched, T("2027-02-28T23:00:00Z")), 0);
    CHECK_INT(crm_sched_tick(k->sched, T("2027-03-01T10:00:00Z")), 1);
    CHECK_INT(c.last_id, march);
    CHECK_INT(c.calls, 2);

    /* leap year: on the 29th, and not on the 28th */
    CHECK_INT(crm_sched_tick(k->sched, T("2028-02-27T00:00:00Z")), 0);
    CHECK_INT(crm_sched_tick(k->sched, T("2028-02-28T10:00:00Z")), 0);
    CHECK_INT(c.calls, 2);
    CHECK_INT(crm_sched_tick(k->sched, T("2028-02-29T09:00:00Z")), 1);
    CHECK_INT(c.last_id, leap);
    CHECK_INT(c.last_due, T("2028-02-29T09:00:00Z"));
    CHECK_INT(crm_sched_tick(k->sched, T("2028-02-29T12:00:00Z")), 0);
    CHECK_INT(c.calls, 3);

    /* a two-day outage over a birthday: it still fires, once */
    CHECK_INT(crm_sched_tick(k->sched, T("2029-02-27T00:00:00Z")), 0);
    CHECK_INT(crm_sched_tick(k->sched, T("2029-03-02T00:00:00Z")),
              2); /* 02-29 (on the 28th), 03-01 */
    CHECK_INT(crm_sched_tick(k->sched, T("2029-03-02T01:00:00Z")), 0);
    CHECK_INT(c.calls, 5);
    crm_kernel_close(k);
}

static void test_thread(void)
{
    crm_kernel *k = kernel_open(t_tmpdir());
    REQUIRE(k);
    counter c = {0};
    REQUIRE(crm_sched_cron(k->sched, "minutely", "* * * * *", count_fn, &c) == CRM_OK);
    crm_clock_set(T("2026-03-01T00:00:30Z"));
    REQUIRE(crm_sched_start(k->sched, 1) == CRM_OK);
    CHECK_INT(crm_sched_start(k->sched, 1), CRM_ECONFLICT);
    usleep(300000); /* the first tick records the schedule */
    crm_clock_set(T("2026-03-01T00:01:10Z"));
    for (int i = 0; i < 40 && atomic_load(&c.calls) < 1; i++)
        usleep(100000);
    CHECK_INT(atomic_load(&c.calls), 1);
    crm_sched_stop(k->sched);

    /* a long interval: stop does not wait for it */
    REQUIRE(crm_sched_start(k->sched, 3600) == CRM_OK);
    usleep(100000);
    int64_t t0 = crm_mono_us();
    crm_sched_stop(k->sched);
    CHECK(crm_mono_us() - t0 < 500000);
    crm_clock_set(-1);
    crm_kernel_close(k);
}

int main(void)
{
    crm_log_set_level(CRM_LOG_ERROR + 1); /* handlers fail on purpose */
    RUN(test_cron_parse_good);
    RUN(test_cron_parse_bad);
    RUN(test_cron_next);
    RUN(test_cron_next_fast);
    RUN(test_register);
    RUN(test_offset_date);
    RUN(test_offset_datetime);
    RUN(test_restart_no_repeat);
    RUN(test_downtime_catch_up);
    RUN(test_downtime_too_old);
    RUN(test_cron_catch_up);
    RUN(test_failing_handler);
    RUN(test_yearly_leap_day);
    RUN(test_thread);
    return t_finish("test_sched");
}
