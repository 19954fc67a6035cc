/*
 * perm.h — who may do what (EspoCRM's model).
 *
 * Roles grant, per record type and action, a level: none, own, team, all. A
 * user with several roles gets the most permissive level of each. Per role and
 * field, an access: hidden, read or write (absent: write); across roles the
 * most permissive wins. Admins bypass all of it. The record layer enforces
 * this for every caller; list queries get the scope as SQL.
 *
 * Users, roles and teams are records of core.user, core.role and core.team;
 * their links and the grants live in kernel tables managed here.
 */
#ifndef CRM_PERM_H
#define CRM_PERM_H

#include "kernel.h"

enum crm_action { CRM_ACT_READ, CRM_ACT_CREATE, CRM_ACT_UPDATE, CRM_ACT_DELETE, CRM_ACT_COUNT };
enum crm_level { CRM_LEVEL_NONE, CRM_LEVEL_OWN, CRM_LEVEL_TEAM, CRM_LEVEL_ALL };
enum crm_access { CRM_ACCESS_HIDDEN, CRM_ACCESS_READ, CRM_ACCESS_WRITE };

int crm_perm_open(crm_perm **out, crm_kernel *k);
void crm_perm_close(crm_perm *perm);

/* ---- Principals: the acting user with their merged permissions ---- */

/*
 * Load user `user_id`: their admin flag, roles and teams. Grants are read
 * lazily per type and cached in the principal until any grant changes.
 * Errors: CRM_ENOTFOUND (no such user), CRM_EDENIED (user disabled or deleted).
 */
int crm_principal_load(crm_perm *perm, int64_t user_id, crm_principal **out);
void crm_principal_free(crm_principal *p);
/* The kernel itself: every level "all", every field writable. Static; never freed. */
crm_principal *crm_principal_system(void);
int64_t crm_principal_user(const crm_principal *p); /* 0 for the system */
bool crm_principal_is_admin(const crm_principal *p); /* true for the system too */
/* The principal's teams (borrowed). */
const int64_t *crm_principal_teams(crm_principal *p, int *n);

/* The level `p` holds for `action` on `type`. */
int crm_principal_level(crm_principal *p, const crm_type *type, int action);
/* The access `p` has to `field` of `type` (system fields: read, id always read). */
int crm_principal_field_access(crm_principal *p, const crm_type *type, const crm_field *field);

/*
 * Append the row scope for `action` as SQL to `sql` (" AND (...)" or nothing
 * for "all"), with its values appended to the JSON array `params` in order.
 * `alias` qualifies the columns ("t" or NULL).
 * Errors: CRM_EDENIED when the level is none.
 */
int crm_perm_scope_sql(crm_principal *p, const crm_type *type, int action, const char *alias,
                       crm_buf *sql, json_t *params);
/* Whether a record with this owner and team is within `action`'s scope. */
bool crm_perm_in_scope(crm_principal *p, const crm_type *type, int action, int64_t owner, int64_t team);

/* Whether the context's principal may read some records of `t` (admins: always). */
bool crm_type_readable(crm_ctx *ctx, const crm_type *t);
/* The type's schema (crm_type_to_json) with the fields the principal cannot read
 * left out, and its title field unnamed when hidden. A new reference. */
json_t *crm_type_view(crm_ctx *ctx, const crm_type *t);
/* Every type the principal may read, as crm_type_view shows it; NULL on error (set). */
json_t *crm_types_view(crm_ctx *ctx);

/* ---- Administration (the caller checks that the actor is an admin) ---- */

/* Set role `role_id`'s level for `action` on `type` (type "*" for every type). */
int crm_perm_grant(crm_perm *perm, int64_t role_id, const char *type, int action, int level);
/* Set role `role_id`'s access to `type`.`field`. */
int crm_perm_field(crm_perm *perm, int64_t role_id, const char *type, const char *field, int access);
/* Give / take a role; join / leave a team. */
int crm_perm_user_role(crm_perm *perm, int64_t user_id, int64_t role_id, bool on);
int crm_perm_team_member(crm_perm *perm, int64_t team_id, int64_t user_id, bool on);
/* The role's grants as JSON {"grants":{type:{read:"own",...}},"fields":{type:{field:"hidden"}}}. */
int crm_perm_role_json(crm_perm *perm, int64_t role_id, json_t **out);
/* Bumped by every change above; principals reload grants when it moves. */
uint64_t crm_perm_generation(crm_perm *perm);

const char *crm_action_name(int action);
int crm_action_from_name(const char *s);
const char *crm_level_name(int level);
int crm_level_from_name(const char *s);
const char *crm_access_name(int access);
int crm_access_from_name(const char *s);

#endif
