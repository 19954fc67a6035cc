/*
 * http_auth.c — who is asking: bearer API tokens, session tokens and session
 * cookies (with the CSRF checks cookie writes need), the principal of the
 * request, the admin check of CRM_ROUTE_ADMIN, and the recent-authentication
 * check of administrative changes (CRM_ROUTE_REAUTH, SECURITY.md A4). See session.h for
 * sessions and api_auth.c for the endpoints.
 */
#include "http_int.h"

#include "auth.h"
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

/* ---- Principals, cached per pool thread ---- */

/*
 * Loading a principal costs three queries (user, roles, teams); most requests
 * come from a few users. Each pool thread keeps the last few it loaded. A
 * request takes its principal out of the cache and gives it back at its end,
 * so two requests interleaved on one thread (a streamed export and a GET)
 * never share one. An entry is used only while the permission generation is
 * unchanged (roles, grants, teams) and for at most PRINCIPAL_TTL_US after it
 * was loaded: a change of is_admin reaches every thread within that time.
 * Whether the user is disabled or deleted is checked by the token or session
 * lookup of every request, not here.
 */
#define PRINCIPAL_CACHE  8
#define PRINCIPAL_TTL_US 1000000

typedef struct principal_slot {
    crm_perm *perm;
    int64_t user_id;
    uint64_t generation;
    int64_t loaded_us;
    crm_principal *p;
} principal_slot;

static pthread_key_t principal_key;
static pthread_once_t principal_once = PTHREAD_ONCE_INIT;

static void principal_cache_free(void *v)
{
    principal_slot *slots = v;
    for (int i = 0; i < PRINCIPAL_CACHE; i++)
        crm_principal_free(slots[i].p);
    free(slots);
}

static void principal_key_make(void)
{
    pthread_key_create(&principal_key, principal_cache_free);
}

static principal_slot *principal_cache(void)
{
    principal_slot *slots;
    pthread_once(&principal_once, principal_key_make);
    slots = pthread_getspecific(principal_key);
    if (!slots) {
        slots = crm_calloc(PRINCIPAL_CACHE, sizeof *slots);
        pthread_setspecific(principal_key, slots);
    }
    return slots;
}

static int principal_take(crm_req *req, int64_t uid)
{
    crm_perm *perm = req->h->k->perm;
    principal_slot *slots = principal_cache();
    uint64_t gen = crm_perm_generation(perm);
    int64_t now = crm_mono_us();

    for (int i = 0; i < PRINCIPAL_CACHE; i++) {
        principal_slot *sl = &slots[i];
        if (!sl->p || sl->perm != perm || sl->user_id != uid) continue;
        if (sl->generation == gen && now - sl->loaded_us < PRINCIPAL_TTL_US) {
            req->who = sl->p;
            req->who_generation = sl->generation;
            req->who_loaded_us = sl->loaded_us;
            sl->p = NULL;
            return CRM_OK;
        }
        crm_principal_free(sl->p);
        sl->p = NULL;
    }
    req->who_generation = gen;
    req->who_loaded_us = now;
    return crm_principal_load(perm, uid, &req->who);
}

/* At the request's end: back into the cache (the oldest entry makes room). */
void crm_http__principal_give(crm_req *req)
{
    principal_slot *slots, *victim;
    if (!req->who) return;
    slots = principal_cache();
    victim = &slots[0];
    for (int i = 0; i < PRINCIPAL_CACHE; i++) {
        if (!slots[i].p) {
            victim = &slots[i];
            break;
        }
        if (slots[i].loaded_us < victim->loaded_us) victim = &slots[i];
    }
    crm_principal_free(victim->p);
    victim->perm = req->h->k->perm;
    victim->user_id = req->user_id;
    victim->generation = req->who_generation;
    victim->loaded_us = req->who_loaded_us;
    victim->p = req->who;
    req->who = NULL;
}

/* ---- Authentication ---- */

/* Whether a browser request comes from another site: Sec-Fetch-Site says so,
 * or an Origin is present and is not this server's own. */
bool crm_http__cross_site(crm_req *req)
{
    const char *sfs = crm_req_header(req, "Sec-Fetch-Site");
    const char *origin = crm_req_header(req, "Origin");
    const char *host = crm_req_header(req, "Host");
    char self[300];

    if (sfs && (strcasecmp(sfs, "cross-site") == 0 || strcasecmp(sfs, "same-site") == 0))
        return true;
    if (!origin) return false;
    if (!host) return true;
    snprintf(self, sizeof self, "%s://%s", crm_req_https(req) ? "https" : "http", host);
    return strcasecmp(origin, self) != 0;
}

static bool administrative_change(crm_req *req);

/* Authenticate for a non-public route. Returns true when the request may go
 * on; otherwise the error reply is set. */
bool crm_http__authenticate(crm_req *req)
{
    crm_kernel *k = req->h->k;
    const char *authz = crm_req_header(req, "Authorization");
    const char *cookie = NULL;
    int64_t uid = 0, sid = 0;
    int rc;

    if (authz) {
        const char *tok = authz;
        if (strncasecmp(tok, "Bearer ", 7) != 0) {
            crm_req_reply_error(req, 401, "unauthenticated", NULL,
                                "Authorization must be \"Bearer <token>\"");
            return false;
        }
        tok += 7;
        while (*tok == ' ')
            tok++;
        if (strncmp(tok, "crm_", 4) == 0) {
            req->auth_kind = CRM_AUTH_TOKEN;
            rc = crm_token_verify_scoped(k, tok, &uid, &req->token_admin_actions);
        } else if (strncmp(tok, CRM_SESSION_TOKEN_PREFIX, strlen(CRM_SESSION_TOKEN_PREFIX)) == 0) {
            req->auth_kind = CRM_AUTH_SESSION_BEARER;
            req->session_secret = crm_req_strdup(req, tok + strlen(CRM_SESSION_TOKEN_PREFIX));
            rc = crm_session_verify(k, req->session_secret, &uid, &sid);
        } else {
            rc = crm_error_set(CRM_EDENIED, NULL, "invalid token");
        }
    } else if ((cookie = crm_req_cookie(req, CRM_SESSION_COOKIE_SECURE)) ||
               (cookie = crm_req_cookie(req, CRM_SESSION_COOKIE))) {
        req->auth_kind = CRM_AUTH_SESSION_COOKIE;
        req->session_secret = crm_req_strdup(req, cookie);
        rc = crm_session_verify(k, req->session_secret, &uid, &sid);
    } else {
        crm_req_reply_error(req, 401, "unauthenticated", NULL, "authentication required");
        return false;
    }
    if (rc == CRM_EDENIED) {
        crm_req_reply_error(req, 401, "unauthenticated", NULL, "%s", crm_error_last()->message);
        return false;
    }
    if (rc < 0) {
        crm_http__reply_error(req, rc);
        return false;
    }
    req->session_id = sid;

    /* A cookie rides along with any request the browser makes, whoever asked
     * for it: writes need proof that our own page sent them. */
    if (req->auth_kind == CRM_AUTH_SESSION_COOKIE && !crm_http__method_safe(req->method)) {
        const char *csrf = crm_req_header(req, CRM_CSRF_HEADER);
        if (crm_http__cross_site(req)) {
            crm_req_reply_error(req, 403, "csrf", NULL, "cross-site request refused");
            return false;
        }
        if (!csrf || !crm_session_csrf_ok(req->session_secret, csrf)) {
            crm_req_reply_error(req, 403, "csrf", NULL,
                                "missing or wrong " CRM_CSRF_HEADER " header");
            return false;
        }
    }

    rc = principal_take(req, uid);
    if (rc == CRM_ENOTFOUND || rc == CRM_EDENIED) {
        crm_req_reply_error(req, 401, "unauthenticated", NULL, "%s", crm_error_last()->message);
        return false;
    }
    if (rc < 0) {
        crm_http__reply_error(req, rc);
        return false;
    }
    req->user_id = uid;
    if ((req->handler->flags & (CRM_ROUTE_ADMIN | CRM_ROUTE_REAUTH)) &&
        !crm_principal_is_admin(req->who)) {
        crm_req_reply_error(req, 403, "denied", NULL, "this endpoint is for administrators");
        return false;
    }
    if (administrative_change(req) && (rc = crm_req_require_recent_auth(req)) < 0) {
        crm_http__reply_error(req, rc);
        return false;
    }
    return true;
}

/*
 * Whether the request is an administrative change (A4): a route flagged so,
 * or an admin's write to users or roles through any route taking a {type}
 * (records, import, fields), which would otherwise be a way around the
 * flagged routes (is_admin is a field of core.user; deleting a role takes
 * its grants from its users). Teams are left out: a team record grants
 * nothing, its members change through the flagged /teams/{id}/members routes.
 */
static bool administrative_change(crm_req *req)
{
    const char *type;
    if (req->handler->flags & CRM_ROUTE_REAUTH) return true;
    if (crm_http__method_safe(req->method) || !crm_principal_is_admin(req->who)) return false;
    type = crm_req_param(req, "type");
    return type && (strcmp(type, "core.user") == 0 || strcmp(type, "core.role") == 0);
}

int crm_req_require_recent_auth(crm_req *req)
{
    int64_t at = 0, now = crm_now();
    int rc;

    switch (req->auth_kind) {
    case CRM_AUTH_TOKEN:
        if (req->token_admin_actions) return CRM_OK;
        return crm_error_set_named(CRM_EDENIED, "reauth_required", NULL,
                                   "this API token may not make administrative changes: issue "
                                   "one with `crm token create USER --admin-actions`, or use a "
                                   "session and POST /api/v1/auth/reauth with the password");
    case CRM_AUTH_SESSION_BEARER:
    case CRM_AUTH_SESSION_COOKIE:
        if ((rc = crm_session_reauth_at(req->h->k, req->session_id, &at)) < 0) return rc;
        /* A clock set back (at > now) proves nothing about the last ten minutes. */
        if (at > 0 && at <= now && now - at <= CRM_REAUTH_WINDOW) return CRM_OK;
        break;
    default:
        break;
    }
    return crm_error_set_named(CRM_EDENIED, "reauth_required", NULL,
                               "administrative changes need the password within the last %d "
                               "minutes: POST /api/v1/auth/reauth {\"password\": ...}, then "
                               "repeat the request",
                               CRM_REAUTH_WINDOW / 60);
}
