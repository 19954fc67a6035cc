/*
 * crm_int.h — shared inside the base `crm` plugin (not part of the SDK).
 * crm.c holds the descriptor and init, which calls each area's init in
 * order; every area registers through the host API table and nothing else.
 * Cross-file names start with crmp_ ("crm plugin") so they never look like
 * the SDK's crm_ names.
 */
#ifndef CRMP_INT_H
#define CRMP_INT_H

#include <crm.h>
#include <crm_util.h> /* money, dates, ids, CSV: crm_util_* */

extern const crm_host_api *crmp_host; /* set first thing in init */
extern crm_plugin *crmp_self;

/* types.c: every type of the plugin and the default roles with their grants. */
int crmp_types_init(void);
/* acquire.c: web-form capture, lead scoring hooks, nurture/recycle schedules, conversion. */
int crmp_acquire_init(void);
/* sales.c: pipeline stages, board, forecast, timeline. */
int crmp_sales_init(void);
/* reports.c: report endpoints and the daily dashboard. */
int crmp_reports_init(void);
/* demo.c: `crm demo` data. */
int crmp_demo_init(void);
/* service.c: ticket routing, SLA escalation, satisfaction. */
int crmp_service_init(void);
/* retain.c: campaigns, segments, templates, the mail outbox and SMTP delivery, upsell. */
int crmp_retain_init(void);
/* quality.c: duplicates, merge, GDPR export and erase. */
int crmp_quality_init(void);


/* ---- Helpers every area may use (crm.c) ---- */

/* Called with each record (borrowed); a non-zero return stops the walk and is returned. */
typedef int (*crmp_each_fn)(json_t *record, void *arg);
/*
 * Walk every record of `type` matching `query` (list parameters as in
 * host->record_find; borrowed, may be NULL) with `ctx`'s permissions, page
 * by page along the cursor. Returns CRM_OK, a record_find error, or fn's.
 */
int crmp_each(crm_ctx *ctx, const char *type, json_t *query, crmp_each_fn fn, void *arg);

/* ---- The pipeline (sales.c; settings pipeline.stages = name:probability,...) ---- */

typedef struct crmp_stage {
    char name[65];
    int probability; /* 0..100; 100 is won, 0 is lost: both close the deal */
} crmp_stage;
/* The stages in pipeline order (valid after crmp_sales_init), and their count. */
const crmp_stage *crmp_stages(int *n);
/* The stage named `name`, or NULL. */
const crmp_stage *crmp_stage_find(const char *name);
/* Whether a stage closes a deal (probability 0 or 100), and whether it wins it. */
int crmp_stage_closed(const crmp_stage *stage);
int crmp_stage_won(const crmp_stage *stage);

/* ---- Helpers shared by service.c, retain.c and quality.c (defined in service.c) ---- */

/* A record id from text (a positive integer): 1, or 0 when it is not one. */
int crmp_parse_id(const char *text, int64_t *out);
/* The route's placeholder `name` as a record id; CRM_EINVALID naming it otherwise. */
int crmp_id_param(crm_req *req, const char *name, int64_t *out);
/* A record id from JSON (a positive integer): 1, or 0 when it is not one. */
int crmp_json_id(json_t *value, int64_t *out);
/* The user named by setting `key` (a user id or a username); 0 when unset or unknown. */
int64_t crmp_setting_user(crm_ctx *ctx, const char *key);
/* A note activity on a record (the plugin's audit trail next to the kernel's history). */
int crmp_log_activity(crm_ctx *ctx, const char *related_type, int64_t related_id,
                      const char *subject, const char *body);

#endif
