/*
 * sales.c — selling: the pipeline, the board, the forecast and the timeline.
 *
 * Stages come from plugins.conf (`pipeline.stages = explore:10,proposal:30,
 * negotiation:60,won:100,lost:0`, name:probability in pipeline order). A stage
 * at 100% wins a deal, one at 0% loses it; both close it. A deal's stage is a
 * text field checked here (not an enum), so a site changes its stages in
 * plugins.conf without a migration. Moving a deal on the board is a plain
 * PATCH of its stage through the records API: the history shows every move.
 *
 *   GET /api/v1/x/crm/board                   deals grouped by stage
 *   GET /api/v1/x/crm/forecast?by=month|owner weighted open amount
 *   GET /api/v1/x/crm/timeline/{type}/{id}    everything about one record, by time: its
 *                                             field changes (host->record_history) and
 *                                             the records hanging off it
 */
#include "crm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_STAGES "explore:10,proposal:30,negotiation:60,won:100,lost:0"
#define MAX_STAGES 32

static crmp_stage stages[MAX_STAGES]; /* read-only after init */
static int n_stages;

const crmp_stage *crmp_stages(int *n)
{
    *n = n_stages;
    return stages;
}

const crmp_stage *crmp_stage_find(const char *name)
{
    for (int i = 0; name && i < n_stages; i++)
        if (strcmp(stages[i].name, name) == 0) return &stages[i];
    return NULL;
}

int crmp_stage_closed(const crmp_stage *stage)
{
    return stage && (stage->probability == 0 || stage->probability == 100);
}

int crmp_stage_won(const crmp_stage *stage)
{
    return stage && stage->probability == 100;
}

/* Parse pipeline.stages; a stage without ":probability" gets 100 for "won", 0 for "lost"
 * and otherwise its position's share of the open stages. */
static int parse_stages(const char *text)
{
    char buf[2048];
    int without[MAX_STAGES], n_without = 0;
    if (strlen(text) >= sizeof buf)
        return crmp_host->error_set(CRM_EINVALID, "pipeline.stages", "pipeline.stages is too long");
    strcpy(buf, text);
    n_stages = 0;
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ') item++;
        char *colon = strchr(item, ':');
        if (colon) *colon = 0;
        size_t len = strcspn(item, " ");
        item[len] = 0;
        if (n_stages == MAX_STAGES)
            return crmp_host->error_set(CRM_EINVALID, "pipeline.stages",
                                        "pipeline.stages: at most %d stages", MAX_STAGES);
        if (len == 0 || len > 64 || strspn(item, "abcdefghijklmnopqrstuvwxyz0123456789_") != len)
            return crmp_host->error_set(CRM_EINVALID, "pipeline.stages",
                                        "pipeline.stages: stage \"%s\" must be 1-64 of a-z 0-9 _ "
                                        "(as in explore:10,won:100,lost:0)", item);
        if (crmp_stage_find(item))
            return crmp_host->error_set(CRM_EINVALID, "pipeline.stages",
                                        "pipeline.stages: stage \"%s\" appears twice", item);
        crmp_stage *s = &stages[n_stages];
        snprintf(s->name, sizeof s->name, "%s", item);
        if (colon) {
            char *end;
            long p = strtol(colon + 1, &end, 10);
            while (*end == ' ') end++;
            if (end == colon + 1 || *end || p < 0 || p > 100)
                return crmp_host->error_set(CRM_EINVALID, "pipeline.stages",
                                            "pipeline.stages: the probability of \"%s\" must be "
                                            "0 to 100", item);
            s->probability = (int)p;
        } else if (strcmp(item, "won") == 0) {
            s->probability = 100;
        } else if (strcmp(item, "lost") == 0) {
            s->probability = 0;
        } else {
            without[n_without++] = n_stages;
        }
        n_stages++;
    }
    for (int i = 0; i < n_without; i++)
        stages[without[i]].probability = (i + 1) * 100 / (n_without + 1);
    if (n_stages < 2)
        return crmp_host->error_set(CRM_EINVALID, "pipeline.stages",
                                    "pipeline.stages needs at least two stages");
    return CRM_OK;
}

/* ---- Deals: a known stage, its probability, closed_at (before create / update) ---- */

static int changed(crm_event *ev, const char *field)
{
    json_t *list = crmp_host->event_changed(ev);
    size_t i;
    json_t *name;
    if (!list) return json_object_get(crmp_host->event_record(ev), field) != NULL; /* create */
    json_array_foreach(list, i, name)
        if (json_is_string(name) && strcmp(json_string_value(name), field) == 0) return 1;
    return 0;
}

static int deal_before(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)udata;
    json_t *deal = crmp_host->event_record(ev);
    json_t *stage_value = json_object_get(deal, "stage");
    if (!stage_value || json_is_null(stage_value)) {
        json_object_set_new(deal, "stage", json_string(stages[0].name));
        stage_value = json_object_get(deal, "stage");
    }
    const crmp_stage *stage = crmp_stage_find(json_string_value(stage_value));
    if (!stage)
        return crmp_host->error_set(CRM_EINVALID, "stage",
                                    "stage \"%s\" is not in pipeline.stages (%s...)",
                                    json_is_string(stage_value) ? json_string_value(stage_value) : "?",
                                    stages[0].name);
    if (crm_util_cents(json_object_get(deal, "amount")) < 0)
        return crmp_host->error_set(CRM_EINVALID, "amount", "amount must not be negative");
    json_t *probability = json_object_get(deal, "probability");
    if (probability && !json_is_null(probability) &&
        (json_integer_value(probability) < 0 || json_integer_value(probability) > 100))
        return crmp_host->error_set(CRM_EINVALID, "probability", "probability is 0 to 100 (%%)");
    if (changed(ev, "stage")) {
        /* a move sets the stage's probability unless the same write names its own */
        if (!changed(ev, "probability") || !probability || json_is_null(probability))
            json_object_set_new(deal, "probability", json_integer(stage->probability));
        if (crmp_stage_closed(stage)) {
            char now[21];
            crm_util_datetime(crmp_host->now(), now);
            if (!json_is_string(json_object_get(deal, "closed_at")) || !changed(ev, "closed_at"))
                json_object_set_new(deal, "closed_at", json_string(now));
        } else {
            json_object_set_new(deal, "closed_at", json_null()); /* reopened */
        }
    }
    return CRM_OK;
}

/* ---- Query-string helpers: every bad parameter is a 400 naming it ---- */

static int query_int(crm_req *req, const char *key, long min, long max, long dflt, long *out)
{
    const char *text = crmp_host->req_query(req, key);
    char *end;
    *out = dflt;
    if (!text) return CRM_OK;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < min || v > max)
        return crmp_host->error_set(CRM_EINVALID, key, "%s must be a whole number %ld to %ld", key,
                                    min, max);
    *out = v;
    return CRM_OK;
}

static int query_date(crm_req *req, const char *key, const char **out)
{
    *out = crmp_host->req_query(req, key);
    if (*out && (strlen(*out) != 10 || crm_util_time(*out) < 0))
        return crmp_host->error_set(CRM_EINVALID, key, "%s must be a date YYYY-MM-DD", key);
    return CRM_OK;
}

/* Sum an amount into an object {currency: "total"}. */
static void add_amount(json_t *totals, const char *currency, int64_t cents)
{
    if (!currency) currency = "EUR";
    json_t *old = json_object_get(totals, currency);
    json_object_set_new(totals, currency, crm_util_money(crm_util_cents(old) + cents));
}

/* ---- GET /board ---- */

struct stage_sum {
    json_t *totals;
    long count;
};

static int sum_stage(json_t *deal, void *arg)
{
    struct stage_sum *sum = arg;
    add_amount(sum->totals, json_string_value(json_object_get(deal, "currency")),
               crm_util_cents(json_object_get(deal, "amount")));
    sum->count++;
    return CRM_OK;
}

static int board_route(crm_req *req, void *udata)
{
    (void)udata;
    int rc;
    long limit, owner;
    crm_ctx *ctx = crmp_host->req_ctx(req);
    json_t *columns = json_array(), *query = NULL, *page = NULL;
    if ((rc = query_int(req, "limit", 0, 200, 20, &limit)) != CRM_OK ||
        (rc = query_int(req, "owner", 1, INT32_MAX, 0, &owner)) != CRM_OK)
        goto done;
    for (int i = 0; i < n_stages; i++) {
        struct stage_sum sum = {json_object(), 0};
        query = json_pack("{s:s}", "stage", stages[i].name);
        if (owner) json_object_set_new(query, "owner", json_integer(owner));
        rc = crmp_each(ctx, "crm.deal", query, sum_stage, &sum);
        json_t *deals = json_array();
        if (rc == CRM_OK && limit > 0) {
            json_object_set_new(query, "sort", json_string("-amount,id"));
            json_object_set_new(query, "limit", json_integer(limit));
            rc = crmp_host->record_find(ctx, "crm.deal", query, &page);
            if (rc == CRM_OK) json_array_extend(deals, json_object_get(page, "data"));
            json_decref(page);
            page = NULL;
        }
        json_decref(query);
        query = NULL;
        json_array_append_new(columns,
                              json_pack("{s:s,s:i,s:b,s:I,s:o,s:o}", "stage", stages[i].name,
                                        "probability", stages[i].probability, "closed",
                                        crmp_stage_closed(&stages[i]), "count",
                                        (json_int_t)sum.count, "totals", sum.totals, "deals",
                                        deals));
        if (rc != CRM_OK) goto done;
    }
    rc = crmp_host->reply_json(req, 200, json_pack("{s:O}", "stages", columns));
done:
    json_decref(columns);
    return rc;
}

/* ---- GET /forecast?by=month|owner[&from=&to=] ---- */

struct forecast {
    json_t *groups; /* key -> {key, count, amount{cur}, weighted{cur}} */
    int by_owner;
};

static int forecast_deal(json_t *deal, void *arg)
{
    struct forecast *f = arg;
    const crmp_stage *stage = crmp_stage_find(json_string_value(json_object_get(deal, "stage")));
    if (!stage || crmp_stage_closed(stage)) return CRM_OK;
    char key[32];
    if (f->by_owner) {
        snprintf(key, sizeof key, "%lld", (long long)json_integer_value(json_object_get(deal, "owner")));
    } else {
        const char *close = json_string_value(json_object_get(deal, "close_date"));
        snprintf(key, sizeof key, "%.7s", close ? close : "none");
    }
    json_t *group = json_object_get(f->groups, key);
    if (!group) {
        group = json_pack("{s:s,s:i,s:{},s:{}}", f->by_owner ? "owner" : "month", key, "count", 0,
                          "amount", "weighted");
        if (f->by_owner) json_object_set_new(group, "owner", json_integer(atoll(key)));
        json_object_set_new(f->groups, key, group);
    }
    json_t *p = json_object_get(deal, "probability");
    int64_t probability = json_is_integer(p) ? json_integer_value(p) : stage->probability;
    int64_t cents = crm_util_cents(json_object_get(deal, "amount"));
    const char *currency = json_string_value(json_object_get(deal, "currency"));
    json_object_set_new(group, "count",
                        json_integer(json_integer_value(json_object_get(group, "count")) + 1));
    add_amount(json_object_get(group, "amount"), currency, cents);
    /* weighted = amount × probability, rounded half up to the cent */
    add_amount(json_object_get(group, "weighted"), currency, (cents * probability + 50) / 100);
    return CRM_OK;
}

static int forecast_route(crm_req *req, void *udata)
{
    (void)udata;
    int rc;
    const char *by = crmp_host->req_query(req, "by");
    const char *from, *to;
    struct forecast f = {json_object(), 0};
    json_t *query = json_object(), *rows = json_array();
    if (by && strcmp(by, "month") != 0 && strcmp(by, "owner") != 0) {
        rc = crmp_host->error_set(CRM_EINVALID, "by", "by is month or owner");
        goto done;
    }
    f.by_owner = by && strcmp(by, "owner") == 0;
    if ((rc = query_date(req, "from", &from)) != CRM_OK ||
        (rc = query_date(req, "to", &to)) != CRM_OK)
        goto done;
    if (from) json_object_set_new(query, "close_date__gte", json_string(from));
    if (to) json_object_set_new(query, "close_date__lte", json_string(to));
    if ((rc = crmp_each(crmp_host->req_ctx(req), "crm.deal", query, forecast_deal, &f)) != CRM_OK)
        goto done;
    /* rows in key order: months ascend ("none" last), owners by id */
    const char *key;
    json_t *group, *total = json_pack("{s:i,s:{},s:{}}", "count", 0, "amount", "weighted");
    json_object_foreach(f.groups, key, group) {
        size_t at = 0;
        while (at < json_array_size(rows)) {
            json_t *other = json_array_get(rows, at);
            int less = f.by_owner
                           ? json_integer_value(json_object_get(group, "owner")) <
                                 json_integer_value(json_object_get(other, "owner"))
                           : strcmp(key, json_string_value(json_object_get(other, "month"))) < 0;
            if (less) break;
            at++;
        }
        json_array_insert(rows, at, group);
        json_object_set_new(total, "count",
                            json_integer(json_integer_value(json_object_get(total, "count")) +
                                         json_integer_value(json_object_get(group, "count"))));
        const char *cur;
        json_t *v;
        json_object_foreach(json_object_get(group, "amount"), cur, v)
            add_amount(json_object_get(total, "amount"), cur, crm_util_cents(v));
        json_object_foreach(json_object_get(group, "weighted"), cur, v)
            add_amount(json_object_get(total, "weighted"), cur, crm_util_cents(v));
    }
    rc = crmp_host->reply_json(req, 200, json_pack("{s:s,s:O,s:o}", "by", f.by_owner ? "owner" : "month",
                                                   "data", rows, "total", total));
done:
    json_decref(f.groups);
    json_decref(query);
    json_decref(rows);
    return rc;
}

/* ---- GET /timeline/{type}/{id}: changes, activities, tasks, tickets, messages, deals ---- */

struct timeline {
    json_t *items;
    const char *kind;  /* "activity", "task", ... */
    const char *field; /* the record field that gives the item's time */
};

static int timeline_item(json_t *record, void *arg)
{
    struct timeline *t = arg;
    json_t *at = json_object_get(record, t->field);
    if (!json_is_string(at)) at = json_object_get(record, "created_at");
    const char *summary = NULL;
    static const char *const title_fields[] = {"subject", "title", "name"};
    for (size_t i = 0; !summary && i < sizeof title_fields / sizeof title_fields[0]; i++)
        summary = json_string_value(json_object_get(record, title_fields[i]));
    json_array_append_new(t->items, json_pack("{s:O,s:s,s:I,s:s,s:O}", "at", at, "kind", t->kind,
                                              "id", json_integer_value(json_object_get(record, "id")),
                                              "summary", summary ? summary : "", "record",
                                              record));
    return CRM_OK;
}

static int by_time_desc(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "at"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "at"));
    int c = strcmp(y ? y : "", x ? x : "");
    if (c) return c;
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "kind")),
                  json_string_value(json_object_get(*(json_t *const *)b, "kind")));
}

/* A value in a change summary: text as it is, other JSON written out, null as "-". */
static void summary_value(json_t *v, char *out, size_t size)
{
    if (json_is_string(v)) {
        snprintf(out, size, "%s", json_string_value(v));
    } else if (!v || json_is_null(v)) {
        snprintf(out, size, "-");
    } else {
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(out, size, "%s", text ? text : "?");
        free(text);
    }
}

/*
 * The record's own changes, one item per history row after its creation: "changes"
 * {field: [old, new]} as record_history gives them (fields the caller may not read are
 * already left out) and a one-line summary "stage: proposal -> negotiation". The
 * bookkeeping fields (updated_at, version) are not news.
 */
static int timeline_history(crm_ctx *ctx, const char *type, int64_t id, json_t *items)
{
    json_t *history = NULL;
    int rc = crmp_host->record_history(ctx, type, id, &history);
    if (rc != CRM_OK) return rc;
    size_t i;
    json_t *row;
    json_array_foreach(history, i, row) {
        const char *action = json_string_value(json_object_get(row, "action"));
        if (!action || strcmp(action, "create") == 0) continue; /* the "created" item */
        json_t *changes = json_object();
        char summary[300] = "";
        size_t used = 0;
        const char *field;
        json_t *pair;
        json_object_foreach(json_object_get(row, "changes"), field, pair) {
            if (strcmp(field, "updated_at") == 0 || strcmp(field, "version") == 0) continue;
            json_object_set(changes, field, pair);
            char from[80], to[80];
            summary_value(json_array_get(pair, 0), from, sizeof from);
            summary_value(json_array_get(pair, 1), to, sizeof to);
            if (used < sizeof summary)
                used += (size_t)snprintf(summary + used, sizeof summary - used, "%s%s: %s -> %s",
                                         used ? ", " : "", field, from, to);
        }
        if (!json_object_size(changes) && strcmp(action, "update") == 0) {
            json_decref(changes); /* only bookkeeping changed */
            continue;
        }
        json_array_append_new(items, json_pack("{s:O,s:s,s:O,s:s,s:s,s:O,s:o}", "at",
                                               json_object_get(row, "at"), "kind", "change", "id",
                                               json_object_get(row, "id"), "action", action,
                                               "summary", used ? summary : action, "user",
                                               json_object_get(row, "user"), "changes", changes));
    }
    json_decref(history);
    return CRM_OK;
}

static int timeline_route(crm_req *req, void *udata)
{
    (void)udata;
    int rc;
    long limit;
    crm_ctx *ctx = crmp_host->req_ctx(req);
    const char *type = crmp_host->req_param(req, "type");
    const char *id_text = crmp_host->req_param(req, "id");
    char *end;
    long long id = id_text ? strtoll(id_text, &end, 10) : 0;
    json_t *record = NULL, *items = json_array(), *query = NULL;
    if (!id_text || end == id_text || *end || id <= 0) {
        rc = crmp_host->error_set(CRM_EINVALID, "id", "id must be a positive whole number");
        goto done;
    }
    if ((rc = query_int(req, "limit", 1, 500, 100, &limit)) != CRM_OK) goto done;
    /* the record itself, with the caller's permissions: 400 unknown type, 404 not visible */
    if ((rc = crmp_host->record_get(ctx, type, id, &record)) != CRM_OK) goto done;
    json_array_append_new(items, json_pack("{s:O,s:s,s:I,s:s}", "at",
                                           json_object_get(record, "created_at"), "kind", "created",
                                           "id", (json_int_t)id, "summary", type));
    if ((rc = timeline_history(ctx, type, id, items)) != CRM_OK) goto done;

    /* what hangs off it: by related_type/related_id, and by the ref fields that point here */
    const char *ref_field = strcmp(type, "crm.contact") == 0   ? "contact"
                            : strcmp(type, "crm.company") == 0 ? "company"
                            : strcmp(type, "crm.deal") == 0    ? "deal"
                                                               : NULL;
    static const struct {
        const char *type, *kind, *time_field, *ref; /* ref: the field naming the record */
    } sources[] = {
        {"crm.activity", "activity", "at", NULL},    {"crm.task", "task", "due", NULL},
        {"crm.message", "message", "sent_at", NULL}, {"crm.task", "task", "due", "deal"},
        {"crm.ticket", "ticket", "created_at", "contact"},
        {"crm.ticket", "ticket", "created_at", "company"},
        {"crm.message", "message", "sent_at", "contact"},
        {"crm.deal", "deal", "created_at", "contact"},
        {"crm.deal", "deal", "created_at", "company"},
    };
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        struct timeline t = {items, sources[i].kind, sources[i].time_field};
        if (sources[i].ref) {
            if (!ref_field || strcmp(ref_field, sources[i].ref) != 0) continue;
            query = json_pack("{s:I,s:s,s:i}", sources[i].ref, (json_int_t)id, "sort", "-id",
                              "limit", (int)limit);
        } else {
            query = json_pack("{s:s,s:I,s:s,s:i}", "related_type", type, "related_id",
                              (json_int_t)id, "sort", "-id", "limit", (int)limit);
        }
        json_t *page = NULL;
        /* one page each, newest first: the caller's permissions hide what they may not read */
        rc = crmp_host->record_find(ctx, sources[i].type, query, &page);
        json_decref(query);
        query = NULL;
        if (rc == CRM_ENOTFOUND || rc == CRM_EDENIED) { /* a type the role cannot read at all */
            rc = CRM_OK;
            continue;
        }
        if (rc != CRM_OK) goto done;
        size_t k;
        json_t *r;
        json_array_foreach(json_object_get(page, "data"), k, r) {
            int seen = 0; /* a message both related to and addressed to a contact: once */
            size_t m;
            json_t *old;
            json_array_foreach(items, m, old)
                if (strcmp(json_string_value(json_object_get(old, "kind")), sources[i].kind) == 0 &&
                    json_integer_value(json_object_get(old, "id")) ==
                        json_integer_value(json_object_get(r, "id")))
                    seen = 1;
            if (!seen) timeline_item(r, &t);
        }
        json_decref(page);
    }
    /* newest first, at most `limit` */
    size_t n = json_array_size(items);
    json_t **sorted = calloc(n ? n : 1, sizeof *sorted);
    for (size_t i = 0; i < n; i++) sorted[i] = json_array_get(items, i);
    qsort(sorted, n, sizeof *sorted, by_time_desc);
    json_t *data = json_array();
    for (size_t i = 0; i < n && (long)i < limit; i++) json_array_append(data, sorted[i]);
    free(sorted);
    rc = crmp_host->reply_json(req, 200, json_pack("{s:s,s:I,s:o}", "type", type, "id",
                                                   (json_int_t)id, "data", data));
done:
    json_decref(record);
    json_decref(items);
    return rc;
}

/* ---- Lua: crm.crm.stage_probability(name), crm.crm.stage_won(name) ---- */

static int lua_stage_probability(crm_ctx *ctx, json_t *args, json_t **result, void *udata)
{
    (void)ctx;
    (void)udata;
    const crmp_stage *stage = crmp_stage_find(json_string_value(json_array_get(args, 0)));
    *result = stage ? json_integer(stage->probability) : NULL;
    return CRM_OK;
}

static int lua_stage_won(crm_ctx *ctx, json_t *args, json_t **result, void *udata)
{
    (void)ctx;
    (void)udata;
    *result = json_boolean(crmp_stage_won(crmp_stage_find(json_string_value(json_array_get(args, 0)))));
    return CRM_OK;
}

int crmp_sales_init(void)
{
    int rc;
    const char *setting = crmp_host->setting(crmp_self, "pipeline.stages");
    if ((rc = parse_stages(setting ? setting : DEFAULT_STAGES)) != CRM_OK) return rc;
    if ((rc = crmp_host->subscribe(crmp_self, "crm.deal.created", CRM_BEFORE, 50, "deal_create",
                                   deal_before, NULL)) != CRM_OK ||
        (rc = crmp_host->subscribe(crmp_self, "crm.deal.updated", CRM_BEFORE, 50, "deal_update",
                                   deal_before, NULL)) != CRM_OK ||
        (rc = crmp_host->route(crmp_self, "GET", "/board", 0, board_route, NULL)) != CRM_OK ||
        (rc = crmp_host->route(crmp_self, "GET", "/forecast", 0, forecast_route, NULL)) != CRM_OK ||
        (rc = crmp_host->route(crmp_self, "GET", "/timeline/{type}/{id}", 0, timeline_route,
                               NULL)) != CRM_OK ||
        (rc = crmp_host->lua_function(crmp_self, "stage_probability", lua_stage_probability,
                                      NULL)) != CRM_OK ||
        (rc = crmp_host->lua_function(crmp_self, "stage_won", lua_stage_won, NULL)) != CRM_OK)
        return rc;
    return CRM_OK;
}
