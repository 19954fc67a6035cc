/*
 * template.c — a working crm plugin to copy: one record type, a bus handler,
 * an HTTP route, a Lua function, a role, a schedule, demo data and a rules
 * directory. Rename "template" everywhere (file names, PLUGIN in the Makefile,
 * the descriptor's name, type names) and change what it models.
 *
 * It models notes: a title, a status (open / done) and a due date.
 *
 * Rules of the road (sdk/README.md explains each):
 *   - everything except crm_plugin_v1 is static (hidden anyway);
 *   - no constructors: register in init, which runs after crm checked us;
 *   - call the platform only through `host`; keep no kernel headers;
 *   - JSON handed to host entries is borrowed; JSON returned is ours to free.
 */
#include <crm.h>

#include <stdio.h>
#include <string.h>

static const crm_host_api *host; /* valid for the life of the process */
static crm_plugin *self;

/* ---- A before handler: a new note without a status is "open" ---- */

static int note_defaults(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)udata;
    json_t *record = host->event_record(ev); /* before: the values about to be written */
    json_t *title = json_object_get(record, "title");
    if (json_is_string(title) && strlen(json_string_value(title)) > 0 &&
        json_string_value(title)[0] == ' ')
        return host->error_set(CRM_EINVALID, "title", "a title must not start with a space");
    if (!json_object_get(record, "status"))
        json_object_set_new(record, "status", json_string("open"));
    return CRM_OK;
}

/* ---- GET /api/v1/x/template/summary: how many notes are open ---- */

static int summary_route(crm_req *req, void *udata)
{
    (void)udata;
    json_t *query = json_pack("{s:s,s:i,s:i}", "status", "open", "limit", 1, "count", 1);
    json_t *page = NULL;
    /* The caller's context: they see only the notes their role lets them see. */
    int rc = host->record_find(host->req_ctx(req), "template.note", query, &page);
    json_decref(query);
    if (rc != CRM_OK) return rc; /* the error is set: the server answers with it */
    json_t *count = json_object_get(page, "count");
    rc = host->reply_json(req, 200, json_pack("{s:O}", "open", count ? count : json_null()));
    json_decref(page);
    return rc;
}

/* ---- crm.template.greeting(name) for Lua rules ---- */

static int lua_greeting(crm_ctx *ctx, json_t *args, json_t **result, void *udata)
{
    (void)ctx;
    (void)udata;
    const char *name = json_string_value(json_array_get(args, 0));
    const char *greeting = host->setting(self, "greeting"); /* plugins.conf: greeting = ... */
    if (!name) return host->error_set(CRM_EINVALID, NULL, "greeting(name): name must be a string");
    *result = json_sprintf("%s, %s!", greeting ? greeting : "Hello", name);
    return CRM_OK;
}

/* ---- Every night: log how many notes are overdue ---- */

static int nightly(crm_ctx *ctx, const crm_firing *firing, void *udata)
{
    (void)udata;
    (void)firing;
    json_t *page = NULL;
    json_t *query = json_pack("{s:s,s:i,s:i}", "status", "open", "limit", 1, "count", 1);
    int rc = host->record_find(ctx, "template.note", query, &page);
    json_decref(query);
    if (rc != CRM_OK) return rc;
    host->log(self, CRM_INFO, "%lld open notes",
              (long long)json_integer_value(json_object_get(page, "count")));
    json_decref(page);
    return CRM_OK;
}

/* ---- Demo data for `crm demo` ---- */

static int demo(crm_ctx *ctx, void *udata)
{
    (void)udata;
    static const char *const titles[] = {"Call the plumber", "Renew the domain", "Plan Q3"};
    for (size_t i = 0; i < sizeof titles / sizeof titles[0]; i++) {
        json_t *note = json_pack("{s:s}", "title", titles[i]);
        int rc = host->record_create(ctx, "template.note", note, NULL);
        json_decref(note);
        if (rc != CRM_OK) return rc;
    }
    return CRM_OK;
}

/* ---- init: declare everything; crm applies it when we return CRM_OK ---- */

static int init(crm_plugin *plugin, const crm_host_api *api)
{
    int rc;
    host = api;
    self = plugin;

    json_t *fields = json_loads(
        "[{\"name\":\"title\",\"kind\":\"text\",\"required\":true,\"searchable\":true,"
        "  \"max_length\":200},"
        " {\"name\":\"status\",\"kind\":\"enum\",\"values\":[\"open\",\"done\"],"
        "  \"indexed\":true},"
        " {\"name\":\"due\",\"kind\":\"date\"}]",
        0, NULL);
    rc = host->type_declare(self, "template.note", "Note", fields);
    json_decref(fields);
    if (rc != CRM_OK) return rc;

    json_t *grants = json_pack("{s:{s:s,s:s,s:s,s:s}}", "template.note", "read", "all", "create",
                               "all", "update", "own", "delete", "own");
    rc = host->role_declare(self, "note taker", "reads all notes, edits their own", grants);
    json_decref(grants);
    if (rc != CRM_OK) return rc;

    if ((rc = host->subscribe(self, "template.note.created", CRM_BEFORE, 100, "defaults",
                              note_defaults, NULL)) != CRM_OK ||
        (rc = host->route(self, "GET", "/summary", 0, summary_route, NULL)) != CRM_OK ||
        (rc = host->lua_function(self, "greeting", lua_greeting, NULL)) != CRM_OK ||
        (rc = host->rules_dir(self, "scripts")) != CRM_OK ||
        (rc = host->schedule_cron(self, "nightly", "0 3 * * *", nightly, NULL)) != CRM_OK ||
        (rc = host->demo(self, demo, NULL)) != CRM_OK)
        return rc;
    return CRM_OK;
}

/* ---- The descriptor: the one exported symbol ---- */

static const crm_plugin_desc descriptor = {
    CRM_PLUGIN_HEADER,
    .name = "template",
    .version = "1.0.0",
    .summary = "notes with a status and a due date (the SDK's template)",
    .requires = NULL, /* e.g. (const crm_plugin_dep[]){{"crm", "^1.0"}, {NULL, NULL}} */
    .init = init,
    .shutdown = NULL,
};

CRM_PLUGIN_EXPORT const crm_plugin_desc *crm_plugin_v1(void)
{
    return &descriptor; /* nothing else: crm checks the descriptor before calling init */
}
