/*
 * reports.c — the reports: JSON by default, CSV with ?format=csv.
 *
 *   GET /api/v1/x/crm/reports/{name}
 *
 *   conversion-by-stage            deals that reached each stage, and the share
 *                                  that went on to the next
 *   won-this-month-vs-last         won deals (count, amount) closed this month and last
 *   leads-converted-quarter-vs-last converted leads this quarter and last
 *   sales-cycle                    average days from a deal's creation to its close
 *   ticket-resolution-time         average hours to resolve a ticket, by priority
 *   dashboard                      the caller's day: tasks, deals, leads, tickets
 *
 * Every report reads through host->record_find with the caller's context, so
 * a report shows what its reader may see: a rep's report is about their deals.
 * Every report answers {"report": name, ..., "rows": [...]}; CSV is the rows.
 * ?today=YYYY-MM-DD fixes "now" (for reproducible reports and tests).
 */
#include "crm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- Dates ---- */

/* The first day of the month `delta` months from the one of `t`, as "YYYY-MM-DD". */
static void month_start(int64_t t, int delta, char out[24])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    int months = tm.tm_year * 12 + tm.tm_mon + delta;
    snprintf(out, 24, "%04d-%02d-01", months / 12 + 1900, months % 12 + 1);
}

static void quarter_start(int64_t t, int delta, char out[24])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    int quarters = tm.tm_year * 4 + tm.tm_mon / 3 + delta;
    snprintf(out, 24, "%04d-%02d-01", quarters / 4 + 1900, (quarters % 4) * 3 + 1);
}

/* "now" for a report: ?today=YYYY-MM-DD (noon UTC of that day), else the platform's clock. */
static int report_now(crm_req *req, int64_t *now)
{
    const char *today = crmp_host->req_query(req, "today");
    *now = crmp_host->now();
    if (!today) return CRM_OK;
    int64_t t = crm_util_time(today);
    if (strlen(today) != 10 || t < 0)
        return crmp_host->error_set(CRM_EINVALID, "today", "today must be a date YYYY-MM-DD");
    *now = t + 12 * 3600;
    return CRM_OK;
}

/* ---- Walking records into sums ---- */

struct sum {
    long count;
    json_t *amounts; /* {currency: "total"} */
    double total;    /* a sum of durations, for averages */
    const char *from, *to; /* duration fields (sales cycle, resolution time) */
    double unit;           /* seconds per reported unit */
};

static int sum_record(json_t *record, void *arg)
{
    struct sum *s = arg;
    if (s->amounts) {
        const char *cur = json_string_value(json_object_get(record, "currency"));
        json_t *old = json_object_get(s->amounts, cur ? cur : "EUR");
        json_object_set_new(s->amounts, cur ? cur : "EUR",
                            crm_util_money(crm_util_cents(old) + crm_util_cents(json_object_get(record, "amount"))));
    }
    if (s->from) {
        int64_t a = crm_util_time(json_string_value(json_object_get(record, s->from)));
        int64_t b = crm_util_time(json_string_value(json_object_get(record, s->to)));
        if (a < 0 || b < 0 || b < a) return CRM_OK; /* incomplete or imported: not counted */
        s->total += (double)(b - a) / s->unit;
    }
    s->count++;
    return CRM_OK;
}

/* Count (and sum) the records of `type` matching `query`, which is consumed. */
static int summarise(crm_ctx *ctx, const char *type, json_t *query, struct sum *s)
{
    int rc = crmp_each(ctx, type, query, sum_record, s);
    json_decref(query);
    return rc;
}

static double rounded(double x) /* two decimals, for averages */
{
    return (double)(long long)(x * 100.0 + (x < 0 ? -0.5 : 0.5)) / 100.0;
}

/* The names of the winning stages, comma separated (for stage__in). */
static void won_stages(char *out, size_t size)
{
    int n;
    const crmp_stage *stages = crmp_stages(&n);
    out[0] = 0;
    for (int i = 0; i < n; i++)
        if (crmp_stage_won(&stages[i]))
            snprintf(out + strlen(out), size - strlen(out), "%s%s", *out ? "," : "", stages[i].name);
}

/* ---- The reports: each fills *out with {"report", ..., "rows": [...]} ---- */

typedef int (*report_fn)(crm_req *req, int64_t now, json_t **out);

static int conversion_by_stage(crm_req *req, int64_t now, json_t **out)
{
    (void)now;
    int n, rc = CRM_OK;
    const crmp_stage *stages = crmp_stages(&n);
    long at[64] = {0}, lost = 0, total = 0;
    json_t *rows = json_array();
    /* how many deals sit at each stage now */
    for (int i = 0; i < n && i < 64; i++) {
        struct sum s = {0};
        if ((rc = summarise(crmp_host->req_ctx(req), "crm.deal",
                            json_pack("{s:s}", "stage", stages[i].name), &s)) != CRM_OK)
            goto done;
        at[i] = s.count;
        total += s.count;
        if (crmp_stage_closed(&stages[i]) && !crmp_stage_won(&stages[i])) lost += s.count;
    }
    /* a deal reached its stage and every stage before it; a lost deal only the first */
    long reached_prev = -1;
    for (int i = 0; i < n && i < 64; i++) {
        if (crmp_stage_closed(&stages[i]) && !crmp_stage_won(&stages[i])) continue;
        long reached = 0;
        for (int j = i; j < n && j < 64; j++)
            if (!(crmp_stage_closed(&stages[j]) && !crmp_stage_won(&stages[j]))) reached += at[j];
        if (reached_prev < 0) reached += lost; /* the first stage: every deal entered it */
        json_t *row = json_pack("{s:s,s:i,s:I,s:I}", "stage", stages[i].name, "probability",
                                stages[i].probability, "deals_now", (json_int_t)at[i], "reached",
                                (json_int_t)reached);
        json_object_set_new(row, "conversion_pct",
                            reached_prev > 0 ? json_real(rounded(100.0 * reached / reached_prev))
                                             : json_null());
        json_array_append_new(rows, row);
        reached_prev = reached;
    }
    *out = json_pack("{s:s,s:I,s:I,s:O}", "report", "conversion-by-stage", "deals",
                     (json_int_t)total, "lost", (json_int_t)lost, "rows", rows);
done:
    json_decref(rows);
    return rc;
}

static int won_month(crm_req *req, int64_t now, json_t **out)
{
    int rc = CRM_OK;
    char won[1024], starts[3][24];
    won_stages(won, sizeof won);
    month_start(now, -1, starts[0]);
    month_start(now, 0, starts[1]);
    month_start(now, 1, starts[2]);
    static const char *const labels[] = {"last_month", "this_month"};
    json_t *rows = json_array();
    for (int i = 1; i >= 0; i--) {
        struct sum s = {0, json_object(), 0, NULL, NULL, 1};
        json_t *q = json_pack("{s:s,s:s,s:s}", "stage__in", won, "closed_at__gte", starts[i],
                              "closed_at__lt", starts[i + 1]);
        rc = summarise(crmp_host->req_ctx(req), "crm.deal", q, &s);
        json_array_append_new(rows, json_pack("{s:s,s:s,s:I,s:o}", "period", labels[i], "from",
                                              starts[i], "won", (json_int_t)s.count, "amount",
                                              s.amounts));
        if (rc != CRM_OK) goto done;
    }
    json_t *this = json_array_get(rows, 0), *last = json_array_get(rows, 1);
    json_int_t a = json_integer_value(json_object_get(this, "won"));
    json_int_t b = json_integer_value(json_object_get(last, "won"));
    *out = json_pack("{s:s,s:I,s:O}", "report", "won-this-month-vs-last", "change",
                     (json_int_t)(a - b), "rows", rows);
done:
    json_decref(rows);
    return rc;
}

static int leads_quarter(crm_req *req, int64_t now, json_t **out)
{
    int rc = CRM_OK;
    char starts[3][24];
    quarter_start(now, -1, starts[0]);
    quarter_start(now, 0, starts[1]);
    quarter_start(now, 1, starts[2]);
    static const char *const labels[] = {"last_quarter", "this_quarter"};
    json_t *rows = json_array();
    for (int i = 1; i >= 0; i--) {
        struct sum converted = {0}, created = {0};
        json_t *q = json_pack("{s:s,s:s,s:s}", "status", "converted", "converted_at__gte",
                              starts[i], "converted_at__lt", starts[i + 1]);
        if ((rc = summarise(crmp_host->req_ctx(req), "crm.lead", q, &converted)) != CRM_OK ||
            (rc = summarise(crmp_host->req_ctx(req), "crm.lead",
                            json_pack("{s:s,s:s}", "created_at__gte", starts[i], "created_at__lt",
                                      starts[i + 1]),
                            &created)) != CRM_OK)
            goto done;
        json_array_append_new(rows, json_pack("{s:s,s:s,s:I,s:I}", "period", labels[i], "from",
                                              starts[i], "converted", (json_int_t)converted.count,
                                              "created", (json_int_t)created.count));
    }
    json_int_t a = json_integer_value(json_object_get(json_array_get(rows, 0), "converted"));
    json_int_t b = json_integer_value(json_object_get(json_array_get(rows, 1), "converted"));
    *out = json_pack("{s:s,s:I,s:O}", "report", "leads-converted-quarter-vs-last", "change",
                     (json_int_t)(a - b), "rows", rows);
done:
    json_decref(rows);
    return rc;
}

static int sales_cycle(crm_req *req, int64_t now, json_t **out)
{
    (void)now;
    int n, rc = CRM_OK;
    const crmp_stage *stages = crmp_stages(&n);
    json_t *rows = json_array();
    for (int won = 1; won >= 0; won--) {
        struct sum s = {0, NULL, 0, "created_at", "closed_at", 86400.0};
        for (int i = 0; i < n; i++) {
            if (!crmp_stage_closed(&stages[i]) || crmp_stage_won(&stages[i]) != won) continue;
            if ((rc = summarise(crmp_host->req_ctx(req), "crm.deal",
                                json_pack("{s:s,s:b}", "stage", stages[i].name, "closed_at__null",
                                          0),
                                &s)) != CRM_OK)
                goto done;
        }
        json_t *row = json_pack("{s:s,s:I}", "outcome", won ? "won" : "lost", "deals",
                                (json_int_t)s.count);
        json_object_set_new(row, "avg_days", s.count ? json_real(rounded(s.total / s.count))
                                                     : json_null());
        json_array_append_new(rows, row);
    }
    *out = json_pack("{s:s,s:O}", "report", "sales-cycle", "rows", rows);
done:
    json_decref(rows);
    return rc;
}

static int ticket_resolution(crm_req *req, int64_t now, json_t **out)
{
    (void)now;
    int rc = CRM_OK;
    static const char *const priorities[] = {"low", "normal", "high", "urgent"};
    struct sum all = {0, NULL, 0, "created_at", "resolved_at", 3600.0};
    json_t *rows = json_array();
    for (size_t i = 0; i < sizeof priorities / sizeof priorities[0]; i++) {
        struct sum s = {0, NULL, 0, "created_at", "resolved_at", 3600.0};
        if ((rc = summarise(crmp_host->req_ctx(req), "crm.ticket",
                            json_pack("{s:s,s:b}", "priority", priorities[i], "resolved_at__null",
                                      0),
                            &s)) != CRM_OK)
            goto done;
        json_t *row = json_pack("{s:s,s:I}", "priority", priorities[i], "tickets",
                                (json_int_t)s.count);
        json_object_set_new(row, "avg_hours", s.count ? json_real(rounded(s.total / s.count))
                                                      : json_null());
        json_array_append_new(rows, row);
        all.count += s.count;
        all.total += s.total;
    }
    *out = json_pack("{s:s,s:I,s:o,s:O}", "report", "ticket-resolution-time", "tickets",
                     (json_int_t)all.count, "avg_hours",
                     all.count ? json_real(rounded(all.total / all.count)) : json_null(), "rows",
                     rows);
done:
    json_decref(rows);
    return rc;
}

/* The caller's day: what they own or are assigned, as the record layer lets them see it. */
static int dashboard(crm_req *req, int64_t now, json_t **out)
{
    int rc = CRM_OK, n;
    crm_ctx *ctx = crmp_host->req_ctx(req);
    json_int_t me = (json_int_t)crmp_host->ctx_user(ctx);
    char today[11], day_start[21], month[3][24];
    crm_util_datetime(now, day_start);
    snprintf(today, sizeof today, "%.10s", day_start);
    snprintf(day_start + 10, sizeof day_start - 10, "T00:00:00Z");
    month_start(now, 0, month[0]);
    month_start(now, 1, month[1]);
    const crmp_stage *stages = crmp_stages(&n);
    char open[1024] = "";
    for (int i = 0; i < n; i++)
        if (!crmp_stage_closed(&stages[i]))
            snprintf(open + strlen(open), sizeof open - strlen(open), "%s%s", *open ? "," : "",
                     stages[i].name);
    struct {
        const char *metric, *type;
        json_t *query;
        int with_amount;
    } metrics[] = {
        {"tasks_due_today", "crm.task", json_pack("{s:I,s:s,s:s}", "assignee", me, "status", "open",
                                                  "due", today), 0},
        {"tasks_overdue", "crm.task", json_pack("{s:I,s:s,s:s}", "assignee", me, "status", "open",
                                                "due__lt", today), 0},
        {"open_deals", "crm.deal", json_pack("{s:I,s:s}", "owner", me, "stage__in", open), 1},
        {"deals_closing_this_month", "crm.deal",
         json_pack("{s:I,s:s,s:s,s:s}", "owner", me, "stage__in", open, "close_date__gte",
                   month[0], "close_date__lt", month[1]), 1},
        {"new_leads_today", "crm.lead", json_pack("{s:I,s:s}", "owner", me, "created_at__gte",
                                                  day_start), 0},
        {"open_tickets", "crm.ticket", json_pack("{s:I,s:s}", "assignee", me, "status__in",
                                                 "new,open,pending"), 0},
    };
    size_t n_metrics = sizeof metrics / sizeof metrics[0];
    json_t *rows = json_array();
    for (size_t i = 0; i < n_metrics; i++) {
        struct sum s = {0, metrics[i].with_amount ? json_object() : NULL, 0, NULL, NULL, 1};
        rc = crmp_each(ctx, metrics[i].type, metrics[i].query, sum_record, &s);
        if (rc == CRM_ENOTFOUND || rc == CRM_EDENIED) rc = CRM_OK; /* the role cannot read it */
        json_t *row = json_pack("{s:s,s:I}", "metric", metrics[i].metric, "value",
                                (json_int_t)s.count);
        if (s.amounts) json_object_set_new(row, "amount", s.amounts);
        json_array_append_new(rows, row);
        if (rc != CRM_OK) break;
    }
    for (size_t i = 0; i < n_metrics; i++) json_decref(metrics[i].query);
    if (rc == CRM_OK)
        *out = json_pack("{s:s,s:I,s:s,s:O}", "report", "dashboard", "user", me, "date", today,
                         "rows", rows);
    json_decref(rows);
    return rc;
}

static const struct {
    const char *name;
    report_fn fn;
} reports[] = {
    {"conversion-by-stage", conversion_by_stage},
    {"won-this-month-vs-last", won_month},
    {"leads-converted-quarter-vs-last", leads_quarter},
    {"sales-cycle", sales_cycle},
    {"ticket-resolution-time", ticket_resolution},
    {"dashboard", dashboard},
};

/* ---- GET /reports/{name}[?format=json|csv][&today=YYYY-MM-DD] ---- */

static int report_route(crm_req *req, void *udata)
{
    (void)udata;
    int rc;
    int64_t now;
    const char *name = crmp_host->req_param(req, "name");
    const char *format = crmp_host->req_query(req, "format");
    json_t *out = NULL;
    size_t i, n = sizeof reports / sizeof reports[0];
    for (i = 0; i < n && strcmp(reports[i].name, name) != 0; i++) {}
    if (i == n)
        return crmp_host->error_set(CRM_ENOTFOUND, "name",
                                    "no report \"%s\" (conversion-by-stage, "
                                    "won-this-month-vs-last, leads-converted-quarter-vs-last, "
                                    "sales-cycle, ticket-resolution-time, dashboard)", name);
    if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0)
        return crmp_host->error_set(CRM_EINVALID, "format", "format is json or csv");
    if ((rc = report_now(req, &now)) != CRM_OK) return rc;
    if ((rc = reports[i].fn(req, now, &out)) != CRM_OK) return rc;
    if (format && strcmp(format, "csv") == 0) {
        char *csv = crm_util_rows_csv(json_object_get(out, "rows"));
        json_decref(out);
        if (!csv) return crmp_host->error_set(CRM_EINTERNAL, NULL, "report CSV: out of memory");
        if (CRM_HOST_HAS(crmp_host, reply_data)) {
            rc = crmp_host->reply_data(req, 200, "text/csv; charset=utf-8", csv, strlen(csv));
            free(csv);
            return rc;
        }
        /* An older host replies JSON only: the CSV text travels in {"csv": ...}. */
        json_t *answer = json_pack("{s:s,s:s,s:s}", "report", name, "format", "csv", "csv", csv);
        free(csv);
        return crmp_host->reply_json(req, 200, answer);
    }
    return crmp_host->reply_json(req, 200, out);
}

int crmp_reports_init(void)
{
    return crmp_host->route(crmp_self, "GET", "/reports/{name}", 0, report_route, NULL);
}
