/*
 * service.c — tickets: routing, SLA due, escalation to a manager, satisfaction on close.
 *
 * What lives where:
 *   - Routing and the SLA due date are Lua rules the admin can edit
 *     (scripts/ticket_routing.lua, run in the before phase of crm.ticket.created). They
 *     call two functions registered here, crm.crm.sla_hours(priority) and
 *     crm.crm.ticket_assignee(priority, category), which read plugins.conf:
 *         sla.hours.<priority> = 8             (defaults: urgent 4, high 8, normal 24, low 72)
 *         ticket.route.priority.<priority> = <username or user id>
 *         ticket.route.<category> = <username or user id>
 *         ticket.route.default = <username or user id>
 *     A rule rather than C so an admin can change the policy without a rebuild; the due
 *     date is crm.now() + the hours, the platform's clock (CRM_CLOCK in tests), as
 *     everything here (host->now()).
 *   - Escalation is C, on a schedule (every 5 minutes): open tickets past sla_due that
 *     are not yet escalated get escalated = true, escalated_at, the manager of the
 *     setting sla.manager as assignee, and a note activity on the ticket; the event
 *     crm.ticket_escalated is emitted for rules and webhooks. The kernel has no notion
 *     of a team's manager (core.team is name + description), so the manager is a setting.
 *     POST /api/v1/x/crm/sla/run (admin) runs the same sweep at once.
 *   - Satisfaction: closing a ticket requires a score of 1 to 5, and a score is only
 *     accepted on a resolved or closed ticket (a before handler: 400 naming the field).
 *
 * Also here: the small helpers the service, retain and quality areas share (crmp_*,
 * declared at the end of crm_int.h).
 */
#include "crm_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H crmp_host

/* ======================================================================= */
/* ---- Shared helpers ---------------------------------------------------- */
/* ======================================================================= */

int crmp_parse_id(const char *text, int64_t *out)
{
    char *end;
    if (!text || !*text || !isdigit((unsigned char)text[0])) return 0;
    long long v = strtoll(text, &end, 10);
    if (*end || v < 1 || v > INT64_MAX / 2) return 0;
    *out = (int64_t)v;
    return 1;
}

int crmp_id_param(crm_req *req, const char *name, int64_t *out)
{
    if (!crmp_parse_id(H->req_param(req, name), out))
        return H->error_set(CRM_EINVALID, name, "%s must be a record id (a positive integer)",
                            name);
    return CRM_OK;
}

int crmp_json_id(json_t *value, int64_t *out)
{
    if (!json_is_integer(value) || json_integer_value(value) < 1) return 0;
    *out = (int64_t)json_integer_value(value);
    return 1;
}

int64_t crmp_setting_user(crm_ctx *ctx, const char *key)
{
    const char *v = H->setting(crmp_self, key);
    int64_t id = 0;
    json_t *query, *page = NULL;
    if (!v || !*v) return 0;
    if (crmp_parse_id(v, &id)) return id;
    /* A username: users are core records, read with the context's permissions. */
    query = json_pack("{s:s,s:i,s:s}", "username", v, "limit", 1, "fields", "id");
    if (H->record_find(ctx, "core.user", query, &page) == CRM_OK)
        crmp_json_id(json_object_get(json_array_get(json_object_get(page, "data"), 0), "id"),
                     &id);
    else
        H->log(crmp_self, CRM_WARN, "setting %s = %s: cannot look the user up: %s", key, v,
               H->error_last()->message);
    json_decref(query);
    json_decref(page);
    return id;
}

int crmp_log_activity(crm_ctx *ctx, const char *related_type, int64_t related_id,
                      const char *subject, const char *body)
{
    json_t *activity = json_pack("{s:s,s:s,s:s,s:I}", "kind", "note", "subject", subject,
                                 "related_type", related_type, "related_id",
                                 (json_int_t)related_id);
    if (body) json_object_set_new(activity, "body", json_string(body));
    int rc = H->record_create(ctx, "crm.activity", activity, NULL);
    json_decref(activity);
    return rc;
}

/* ======================================================================= */
/* ---- SLA --------------------------------------------------------------- */
/* ======================================================================= */

static const char *const priorities[] = {"low", "normal", "high", "urgent"};
static const int default_sla_hours[] = {72, 24, 8, 4};

/* The SLA of a priority in hours: sla.hours.<priority>, else the default; -1: unknown. */
static int sla_hours(const char *priority)
{
    for (size_t i = 0; i < sizeof priorities / sizeof priorities[0]; i++) {
        if (strcmp(priority, priorities[i]) != 0) continue;
        char key[64];
        snprintf(key, sizeof key, "sla.hours.%s", priority);
        const char *v = H->setting(crmp_self, key);
        int64_t hours;
        if (v && crmp_parse_id(v, &hours) && hours <= 24 * 365) return (int)hours;
        if (v) H->log(crmp_self, CRM_WARN, "%s = \"%s\": not 1 to 8760 hours; using %d", key, v,
                      default_sla_hours[i]);
        return default_sla_hours[i];
    }
    return -1;
}

/* crm.crm.sla_hours(priority) → hours */
static int lua_sla_hours(crm_ctx *ctx, json_t *args, json_t **result, void *udata)
{
    (void)ctx;
    (void)udata;
    const char *priority = json_string_value(json_array_get(args, 0));
    int hours = priority ? sla_hours(priority) : -1;
    if (hours < 0)
        return H->error_set(CRM_EINVALID, "priority",
                            "sla_hours: priority must be low, normal, high or urgent");
    *result = json_integer(hours);
    return CRM_OK;
}

/* crm.crm.ticket_assignee(priority, category) → user id or nil, from the routing settings */
static int lua_ticket_assignee(crm_ctx *ctx, json_t *args, json_t **result, void *udata)
{
    (void)udata;
    const char *priority = json_string_value(json_array_get(args, 0));
    const char *category = json_string_value(json_array_get(args, 1));
    char key[200];
    int64_t user = 0;
    if (priority && strlen(priority) < 64) {
        snprintf(key, sizeof key, "ticket.route.priority.%s", priority);
        user = crmp_setting_user(ctx, key);
    }
    if (!user && category && *category && strlen(category) < 100) {
        snprintf(key, sizeof key, "ticket.route.%s", category);
        user = crmp_setting_user(ctx, key);
    }
    if (!user) user = crmp_setting_user(ctx, "ticket.route.default");
    *result = user ? json_integer(user) : NULL;
    return CRM_OK;
}

/* ---- Escalation ---- */

struct sweep {
    crm_ctx *ctx;
    int64_t now;
    int64_t manager; /* 0: none configured, keep the assignee */
    int escalated;
};

static int escalate_one(json_t *ticket, void *arg)
{
    struct sweep *sw = arg;
    crm_ctx *ctx = sw->ctx;
    int64_t id = (int64_t)json_integer_value(json_object_get(ticket, "id"));
    char at[21], subject[160];
    int rc;
    crm_util_datetime(sw->now, at);
    json_t *patch = json_pack("{s:b,s:s}", "escalated", 1, "escalated_at", at);
    if (sw->manager) json_object_set_new(patch, "assignee", json_integer(sw->manager));
    rc = H->record_update(ctx, "crm.ticket", id, patch, NULL);
    json_decref(patch);
    if (rc != CRM_OK) return rc;
    snprintf(subject, sizeof subject, "SLA breached: ticket escalated%s",
             sw->manager ? " to the manager" : " (no sla.manager configured)");
    const char *due = json_string_value(json_object_get(ticket, "sla_due"));
    char body[200];
    snprintf(body, sizeof body, "SLA due %s, escalated %s.", due ? due : "?", at);
    if ((rc = crmp_log_activity(ctx, "crm.ticket", id, subject, body)) != CRM_OK) return rc;
    json_t *payload = json_pack("{s:I,s:s}", "ticket", (json_int_t)id, "sla_due", due ? due : "");
    if (sw->manager) json_object_set_new(payload, "manager", json_integer(sw->manager));
    rc = H->emit(ctx, "crm.ticket_escalated", payload);
    json_decref(payload);
    if (rc == CRM_OK) sw->escalated++;
    return rc;
}

/* Escalate every open ticket whose SLA due is before `now`; *count: how many. */
static int sla_sweep(crm_ctx *ctx, int64_t now, int *count)
{
    char at[21];
    struct sweep sw = {.ctx = ctx, .now = now, .manager = crmp_setting_user(ctx, "sla.manager")};
    crm_util_datetime(now, at);
    json_t *filter = json_pack("{s:s,s:b,s:s,s:s}", "status__in", "new,open,pending",
                               "escalated", 0, "sla_due__lt", at, "sort", "sla_due");
    json_object_set_new(filter, "limit", json_integer(200));
    /* No upper bound: each page is re-read after the updates of the previous one. */
    int rc = crmp_each(ctx, "crm.ticket", filter, escalate_one, &sw);
    json_decref(filter);
    if (count) *count = sw.escalated;
    if (sw.escalated)
        H->log(crmp_self, CRM_INFO, "SLA: %d ticket(s) escalated", sw.escalated);
    return rc;
}

static int sla_cron(crm_ctx *ctx, const crm_firing *firing, void *udata)
{
    (void)udata;
    return sla_sweep(ctx, H->firing_due(firing), NULL);
}

/* POST /api/v1/x/crm/sla/run {"now": "2024-01-01T10:00:00Z"} (admin): the sweep, at once. */
static int sla_run_route(crm_req *req, void *udata)
{
    (void)udata;
    json_t *body = H->req_json(req);
    int64_t now = H->now();
    int count = 0, rc;
    if (body && !json_is_object(body))
        return H->error_set(CRM_EINVALID, NULL, "the body must be a JSON object");
    json_t *at = json_object_get(body, "now");
    if (at) {
        now = json_is_string(at) ? crm_util_time(json_string_value(at)) : -1;
        if (now < 0)
            return H->error_set(CRM_EINVALID, "now", "now must be a datetime YYYY-MM-DDTHH:MM:SSZ");
    }
    if ((rc = sla_sweep(H->req_ctx(req), now, &count)) != CRM_OK) return rc;
    return H->reply_json(req, 200, json_pack("{s:i}", "escalated", count));
}

/* ---- Satisfaction on close ---- */

static bool valid_score(json_t *score)
{
    return json_is_integer(score) && json_integer_value(score) >= 1 &&
           json_integer_value(score) <= 5;
}

/* Before update the event's record is the whole record as it will be written. */
static int ticket_before_update(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)udata;
    json_t *rec = H->event_record(ev);
    json_t *score = json_object_get(rec, "satisfaction");
    json_t *old_score = json_object_get(H->event_old(ev), "satisfaction");
    const char *st = json_string_value(json_object_get(rec, "status"));
    bool closed = st && strcmp(st, "closed") == 0;
    bool done = closed || (st && strcmp(st, "resolved") == 0);
    if (score && !json_is_null(score)) {
        if (!valid_score(score))
            return H->error_set(CRM_EINVALID, "satisfaction",
                                "satisfaction must be a whole number from 1 to 5");
        /* A reopened ticket keeps its old score; a new score needs a finished ticket. */
        if (!done && !json_equal(score, old_score))
            return H->error_set(CRM_EINVALID, "satisfaction",
                                "satisfaction is given when the ticket is resolved or closed");
    } else if (closed) {
        return H->error_set(CRM_EINVALID, "satisfaction",
                            "closing a ticket needs the customer's satisfaction (1 to 5)");
    }
    return CRM_OK;
}

static int ticket_before_create(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)udata;
    json_t *rec = H->event_record(ev);
    json_t *score = json_object_get(rec, "satisfaction");
    const char *st = json_string_value(json_object_get(rec, "status"));
    if (score && !json_is_null(score) &&
        !valid_score(score))
        return H->error_set(CRM_EINVALID, "satisfaction",
                            "satisfaction must be a whole number from 1 to 5");
    if (st && strcmp(st, "closed") == 0 && (!score || json_is_null(score)))
        return H->error_set(CRM_EINVALID, "satisfaction",
                            "closing a ticket needs the customer's satisfaction (1 to 5)");
    return CRM_OK;
}

int crmp_service_init(void)
{
    int rc;
    for (size_t i = 0; i < sizeof priorities / sizeof priorities[0]; i++)
        (void)sla_hours(priorities[i]); /* warn about bad settings at start, not at 3 a.m. */
    if ((rc = H->lua_function(crmp_self, "sla_hours", lua_sla_hours, NULL)) ||
        (rc = H->lua_function(crmp_self, "ticket_assignee", lua_ticket_assignee, NULL)) ||
        (rc = H->subscribe(crmp_self, "crm.ticket.created", CRM_BEFORE, 50, "ticket_satisfaction_new",
                           ticket_before_create, NULL)) ||
        (rc = H->subscribe(crmp_self, "crm.ticket.updated", CRM_BEFORE, 50, "ticket_satisfaction",
                           ticket_before_update, NULL)) ||
        (rc = H->schedule_cron(crmp_self, "sla_escalation", "*/5 * * * *", sla_cron, NULL)) ||
        (rc = H->route(crmp_self, "POST", "/sla/run", CRM_ADMIN_ONLY, sla_run_route, NULL)))
        return rc;
    return CRM_OK;
}
