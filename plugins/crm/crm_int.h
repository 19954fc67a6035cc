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

#endif
