/*
 * session.h — browser and API sessions, CSRF tokens and login throttling.
 *
 * A session is born at login. Its secret is 32 random bytes, base64url (43
 * characters); the database keeps only SHA-256(secret) in core_session, so a
 * leaked database yields no usable session. The same secret reaches the client
 * twice: as the HttpOnly cookie `crm_sid` (browsers) and, prefixed "crms_", as
 * the bearer token of the login answer (scripts). Either way it names the one
 * session, so logging out with one ends both.
 *
 * The CSRF token of a session is derived from its secret (keyed BLAKE2b), so
 * it can be checked and handed out again without storing it; core_session
 * keeps its hash only for the record.
 *
 * Lifetimes: a session ends after CRM_SESSION_IDLE seconds without use, or
 * CRM_SESSION_ABSOLUTE seconds after login, whichever comes first, or when
 * revoked (logout, password change, user disabled). Time is crm_now().
 */
#ifndef CRM_SESSION_H
#define CRM_SESSION_H

#include "http.h"

#define CRM_SESSION_IDLE     (8 * 3600)
#define CRM_SESSION_ABSOLUTE (7 * 86400)
/* Bearer tokens that name a session start with this; API tokens with "crm_". */
#define CRM_SESSION_TOKEN_PREFIX "crms_"
#define CRM_SESSION_SECRET_LEN   43
#define CRM_CSRF_HEADER          "X-CSRF-Token"
/* Cookie names: the __Host- form only over HTTPS (browsers refuse it otherwise). */
#define CRM_SESSION_COOKIE        "crm_sid"
#define CRM_SESSION_COOKIE_SECURE "__Host-crm_sid"

/* Change the lifetimes (seconds; <= 0 keeps the current value). For tests and config. */
void crm_session_set_lifetimes(int64_t idle, int64_t absolute);
int64_t crm_session_absolute(void);

/*
 * Start a session for `user_id` from `ip` (may be NULL). *secret_out (the
 * cookie value) and *csrf_out are malloc'd; the caller wipes and frees them.
 * Errors: CRM_EBUSY, CRM_EINTERNAL.
 */
int crm_session_create(crm_kernel *k, int64_t user_id, const char *ip, char **secret_out,
                       char **csrf_out, int64_t *session_id_out);
/*
 * The user and session id of a live session secret (without the "crms_"
 * prefix). Refreshes last_seen_at at most once a minute.
 * Errors: CRM_EDENIED (unknown, revoked, idle or expired) — all of them mean
 * "authenticate again".
 */
int crm_session_verify(crm_kernel *k, const char *secret, int64_t *user_out,
                       int64_t *session_id_out);
/* End one session (logout). Ending an ended session is CRM_OK. */
int crm_session_revoke(crm_kernel *k, int64_t session_id);
/* End every session of a user except `keep_session_id` (0: all). Returns the count or an error. */
int crm_session_revoke_user(crm_kernel *k, int64_t user_id, int64_t keep_session_id);

/*
 * Set a user's password and end their other sessions (all but
 * `keep_session_id`; 0 ends all): what a password change means to anyone
 * who stole the old one. Errors: as crm_user_set_password.
 */
int crm_session_change_password(crm_kernel *k, int64_t user_id, const char *password,
                                int64_t keep_session_id);

/*
 * Recent authentication (SECURITY.md A4). Administrative changes (rules,
 * roles and grants, users' roles and admin flags: routes flagged
 * CRM_ROUTE_REAUTH) need the password proven within CRM_REAUTH_WINDOW
 * seconds: a login counts, and so does POST /api/v1/auth/reauth. Stored in
 * core_session.reauth_at (the row is found by the secret's hash).
 */
#define CRM_REAUTH_WINDOW (10 * 60)

/* When session `session_id` last proved its password (0: never, or no such session). */
int crm_session_reauth_at(crm_kernel *k, int64_t session_id, int64_t *at_out);
/* Record that session `session_id` proved its password now. Errors: CRM_EDENIED (ended). */
int crm_session_reauth(crm_kernel *k, int64_t session_id);

/*
 * Login CSRF (SECURITY.md S6): the pre-session token of GET
 * /api/v1/auth/login-token. It travels twice, as the HttpOnly cookie
 * `crm_login` and in the X-Login-Token header of the login; the two must
 * match (double submit). 32 random bytes, base64url; nothing is stored.
 */
#define CRM_LOGIN_COOKIE        "crm_login"
#define CRM_LOGIN_COOKIE_SECURE "__Host-crm_login"
#define CRM_LOGIN_HEADER        "X-Login-Token"
#define CRM_LOGIN_TOKEN_TTL     600
/* A fresh pre-session token (CRM_SESSION_SECRET_LEN characters + NUL). */
void crm_login_token_new(char out[CRM_SESSION_SECRET_LEN + 1]);
/* Whether the header's token is the cookie's (constant time; false if either is missing). */
bool crm_login_token_ok(const char *cookie, const char *header);

/* The CSRF token of a session secret (base64url, 43 characters + NUL). */
void crm_session_csrf(const char *secret, char out[CRM_SESSION_SECRET_LEN + 1]);
/* Whether `presented` is the session's CSRF token (constant time). */
bool crm_session_csrf_ok(const char *secret, const char *presented);

/* ---- Login throttling (in memory, per account and per client address) ---- */

/*
 * After CRM_THROTTLE_ACCOUNT failures for one account, or CRM_THROTTLE_IP for
 * one address, within CRM_THROTTLE_WINDOW seconds, further attempts are
 * refused without checking the password for a backoff that starts at
 * CRM_THROTTLE_BASE seconds and doubles with each further failure, up to
 * CRM_THROTTLE_WINDOW. The address threshold is higher because an office
 * behind one NAT address shares it.
 */
#define CRM_THROTTLE_ACCOUNT 5
#define CRM_THROTTLE_IP      20
#define CRM_THROTTLE_WINDOW  (15 * 60)
#define CRM_THROTTLE_BASE    30

/* Seconds until `username` from `ip` may try again; 0 when allowed now. */
int crm_login_throttled(const char *username, const char *ip);
/* Record the outcome of a checked attempt. A success clears the account's failures. */
void crm_login_record(const char *username, const char *ip, bool success);
/* Forget everything (tests). */
void crm_login_throttle_reset(void);

/* ---- What http.c tells the auth endpoints about the current request ---- */

enum { CRM_AUTH_NONE, CRM_AUTH_TOKEN, CRM_AUTH_SESSION_BEARER, CRM_AUTH_SESSION_COOKIE };
/* How the request was authenticated, its session id (0 when not a session) and
 * the session secret (NULL when not a session; borrowed for the request). */
int crm_req__auth(crm_req *req, int64_t *session_id, const char **secret);
/* Name the user in the access log of a public request that found out who it is (login). */
void crm_req__set_user(crm_req *req, int64_t user_id);

#endif
