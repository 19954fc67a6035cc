/*
 * auth.h — users' credentials: passwords (Argon2id, libsodium) and API tokens
 * (256 random bits, stored as SHA-256 hashes). Users themselves are records
 * of core.user (username, display_name, email, is_admin, disabled); this file
 * creates them and checks what they present.
 */
#ifndef CRM_AUTH_H
#define CRM_AUTH_H

#include "kernel.h"

#define CRM_PASSWORD_MIN 8
#define CRM_PASSWORD_MAX 1024

/* Initialise libsodium once per process. */
int crm_auth_init(void);

/* Argon2id hash string of `password` (t=2, m=64 MiB, p=1) into a malloc'd string. */
int crm_password_hash(const char *password, char **out);
/* Whether `password` matches `hash`; *rehash set when the parameters are outdated. */
bool crm_password_verify(const char *hash, const char *password, bool *rehash);
/* The hex SHA-256 of `text` into out[65]: what the database keeps of a token or a
 * session secret (core_token.hash, core_session.hash), never the secret itself. */
void crm_sha256_hex(const char *text, char out[65]);

/*
 * Create a user (a core.user record, written by the system) with a password.
 * Errors: CRM_EINVALID (bad username, password too short / long), CRM_ECONFLICT
 * (username taken).
 */
int crm_user_create(crm_kernel *k, const char *username, const char *password, bool admin,
                    const char *display_name, int64_t *id_out);
/* Find a user by username; CRM_ENOTFOUND when absent. */
int crm_user_find(crm_kernel *k, const char *username, int64_t *id_out);
int crm_user_set_password(crm_kernel *k, int64_t user_id, const char *password);
int crm_user_set_disabled(crm_kernel *k, int64_t user_id, bool disabled);
/* [{"id","username","display_name","email","is_admin","disabled"}] */
int crm_user_list(crm_kernel *k, json_t **out);

/*
 * Check a username and password. The same work and the same error
 * (CRM_EDENIED, "invalid username or password") whether the user is unknown
 * or the password wrong; a disabled user gets CRM_EDENIED "user disabled"
 * only after a correct password.
 */
int crm_user_authenticate(crm_kernel *k, const char *username, const char *password,
                          int64_t *user_out);

/*
 * Issue a token for a user: "crm_" + 43 base64url characters, returned once
 * (malloc'd); only its hash is stored. expires_at 0 = never.
 */
int crm_token_create(crm_kernel *k, int64_t user_id, const char *name, int64_t expires_at,
                     char **token_out, int64_t *token_id_out);
/* The user of a live token; CRM_EDENIED when unknown, revoked, expired or the user disabled. */
int crm_token_verify(crm_kernel *k, const char *token, int64_t *user_out);
/*
 * As crm_token_verify, and whether the token may make administrative
 * changes (rules, roles, grants, admin flags: SECURITY.md A4). A token has
 * no password to re-authenticate with, so that right is given at issue time,
 * by whoever holds the data directory: `crm token create --admin-actions`.
 */
int crm_token_verify_scoped(crm_kernel *k, const char *token, int64_t *user_out,
                            bool *admin_actions_out);
/* Give (or take) token `token_id` the right to make administrative changes. */
int crm_token_set_admin_actions(crm_kernel *k, int64_t token_id, bool on);
int crm_token_revoke(crm_kernel *k, int64_t token_id);
/* [{"id","user_id","name","created_at","expires_at","last_used_at","revoked","admin_actions"}] */
int crm_token_list(crm_kernel *k, int64_t user_id /* 0: all */, json_t **out);

#endif
