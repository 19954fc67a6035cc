/*
 * api_admin.h — shared between api_records.c and api_admin.c: the admin
 * routes for roles, grants, user roles and team members, and the audit log
 * writer every admin action uses.
 */
#ifndef CRM_API_ADMIN_H
#define CRM_API_ADMIN_H

#include "http.h"

/* Register /roles/{id}/grants, /users/{id}/roles/{role_id}, /teams/{id}/members/{user_id}. */
int crm_api__admin_register(crm_http *h);

/*
 * Append one row to core_audit: now, the acting user, `action` ("grant.set",
 * "field.add", ...), `target` ("role:3", "crm.contact") and `detail` (borrowed
 * JSON, stored compact). Runs in the caller's transaction when there is one.
 */
int crm_api__audit(crm_ctx *ctx, const char *action, const char *target, json_t *detail);

#endif
