/*
 * http.h — the HTTP server as API handlers see it. http.c is the only file
 * that includes microhttpd.h; handlers (api_*.c, and plugins' routes later)
 * see requests and responses only through these functions.
 *
 * A handler runs on one of the server's pool threads, after the whole body
 * was received within the limits, the JSON body (if any) parsed within depth
 * and size bounds, and the caller authenticated (unless the route is public).
 * It sets exactly one response and returns CRM_OK, or returns an error code
 * with the error set (crm_error_set) and the server answers with the JSON
 * error shape {"error":{"code","message","field"}} and the status of
 * crm_http_status(code). Everything allocated with crm_req_alloc is freed when
 * the request ends.
 */
#ifndef CRM_HTTP_H
#define CRM_HTTP_H

#include "kernel.h"

#include <sys/types.h>

typedef struct crm_http crm_http;
typedef struct crm_req crm_req;

typedef struct crm_http_opts {
    int version;              /* 1 */
    const char *listen;       /* "127.0.0.1:8080" */
    int threads;              /* pool size; 0 = 2 per core */
    int max_connections;      /* default 1024 */
    int max_per_ip;           /* default 32 */
    int timeout_s;            /* idle connection timeout, default 30 */
    int request_deadline_s;   /* absolute per-request deadline, default 60 */
    size_t max_body;          /* default 1 MiB; larger → 413 before reading the body */
    size_t max_import_body;   /* routes flagged CRM_ROUTE_LARGE_BODY; default 256 MiB */
    int json_max_depth;       /* default 64 */
    int json_max_items;       /* members + elements, default 10000 */
    /* Per-connection memory for MHD (request line, headers, reply headers),
     * default 32 KiB as MHD's own. MHD clears it for every request on a
     * kept-alive connection: at 64 KiB that was 5% of a GET's CPU. */
    size_t conn_memory;
    bool access_log;          /* one JSON line per request on stderr, default true */
    /* Appended: a connection must send a request's headers within this many
     * seconds of its start, or of the end of its previous request (default
     * 10; < 0: no header deadline). */
    int header_timeout_s;
} crm_http_opts;

#define CRM_HTTP_OPTS_INIT                                                                       \
    {1, "127.0.0.1:8080", 0, 1024, 32, 30, 60, 1 << 20, 256u << 20, 64, 10000, 32768, true, 10}

/* Route flags. */
enum {
    CRM_ROUTE_PUBLIC = 1 << 0,     /* no authentication (login, healthz, form capture) */
    CRM_ROUTE_ADMIN = 1 << 1,      /* the principal must be an admin (else 403) */
    CRM_ROUTE_RAW_BODY = 1 << 2,   /* the body is not JSON (CSV import): not parsed */
    CRM_ROUTE_LARGE_BODY = 1 << 3, /* allow up to max_import_body */
    /* An administrative change (SECURITY.md A4): the principal must be an
     * admin (else 403 denied) who proved their password within the last
     * CRM_REAUTH_WINDOW seconds, by login or POST /api/v1/auth/reauth (else
     * 403 reauth_required); an API token needs --admin-actions instead. */
    CRM_ROUTE_REAUTH = 1 << 4,
    /* With CRM_ROUTE_PUBLIC only: a write other sites' pages may send (a web form
     * embedded on the business's website posting leads). No cookie or session is
     * read on a public route, so there is nothing for another site to ride on. */
    CRM_ROUTE_CROSS_SITE = 1 << 5,
};

/*
 * A route handler. `udata` is what was given to crm_http_route. Returns CRM_OK
 * after setting a response, or an error (already set) for the JSON error reply.
 */
typedef int (*crm_route_fn)(crm_req *req, void *udata);

int crm_http_open(crm_http **out, crm_kernel *k, const crm_http_opts *opts);
/*
 * Register a route. `pattern` is a path whose segments may be "{name}"
 * placeholders (one segment each) or end in "{name*}" (the rest of the path):
 *   "/api/v1/records/{type}/{id}", "/api/v1/x/{plugin}/{rest*}".
 * Exact segments win over placeholders; a path that matches no route is 404,
 * a path that matches with another method is 405 with Allow.
 * Errors: CRM_EINVALID (bad pattern), CRM_ECONFLICT (same method + pattern).
 */
int crm_http_route(crm_http *h, const char *method, const char *pattern, unsigned flags,
                   crm_route_fn fn, void *udata);
/* Start listening (MHD internal thread pool with epoll). */
int crm_http_start(crm_http *h);
/* The port actually bound (useful with port 0). */
int crm_http_port(crm_http *h);
/*
 * Graceful stop: stop accepting, let in-flight requests finish (at most
 * `grace_s` seconds), then close. Safe to call from any thread.
 */
void crm_http_stop(crm_http *h, int grace_s);
void crm_http_close(crm_http *h);
crm_kernel *crm_http_kernel(crm_http *h);

/* The one place error codes become HTTP statuses. */
int crm_http_status(int code);

/* ---- Requests ---- */

const char *crm_req_method(crm_req *req);
const char *crm_req_path(crm_req *req);
/* A path placeholder's value (percent-decoded), or NULL. */
const char *crm_req_param(crm_req *req, const char *name);
/* A query-string value (first occurrence), or NULL. */
const char *crm_req_query(crm_req *req, const char *key);
/* Call fn for every query-string pair in order; stops at the first non-zero return. */
int crm_req_query_each(crm_req *req, int (*fn)(void *arg, const char *key, const char *value),
                       void *arg);
/* A request header (case-insensitive), or NULL. */
const char *crm_req_header(crm_req *req, const char *name);
/* A cookie's value, or NULL. */
const char *crm_req_cookie(crm_req *req, const char *name);
/* The client address as text. */
const char *crm_req_ip(crm_req *req);
/* The parsed JSON body (borrowed), or NULL when there was none. */
json_t *crm_req_json(crm_req *req);
/* The raw body and its length ("" and 0 when none). */
const char *crm_req_body(crm_req *req, size_t *len);
/* The caller's context: kernel, principal (system for public routes), via NULL. */
crm_ctx *crm_req_ctx(crm_req *req);
/* Per-request memory, freed when the request ends; never NULL. */
void *crm_req_alloc(crm_req *req, size_t n);
char *crm_req_strdup(crm_req *req, const char *s);
/* Parse a path parameter as a positive id; CRM_EINVALID naming it otherwise. */
int crm_req_param_id(crm_req *req, const char *name, int64_t *out);

/* ---- Responses (exactly one per request) ---- */

/* Reply with `body` serialised as JSON (takes the reference). */
int crm_req_reply_json(crm_req *req, int status, json_t *body);
/* Reply with JSON already serialised: takes `text` (malloc'd, len bytes), no copy. */
int crm_req_reply_json_text(crm_req *req, int status, char *text, size_t len);
/* Reply with bytes (copied). */
int crm_req_reply_data(crm_req *req, int status, const char *content_type, const char *data,
                       size_t len);
/*
 * Reply with a body produced in chunks as the client reads it: `next` fills
 * buf with up to max bytes and returns the count, 0 at the end, or -1 on error
 * (the connection is closed). `free_fn(arg)` runs when the response is done.
 */
int crm_req_reply_stream(crm_req *req, int status, const char *content_type,
                         ssize_t (*next)(void *arg, char *buf, size_t max), void *arg,
                         void (*free_fn)(void *arg));
/* Add a response header (before replying). */
void crm_req_set_header(crm_req *req, const char *name, const char *value);

/* ---- Appended after v1 of this contract ---- */

/* The authenticated user's id; 0 on public routes. */
int64_t crm_req_user(crm_req *req);
/* This request's id, also sent as the X-Request-Id header and in the access log. */
const char *crm_req_id(crm_req *req);
/* Whether the client reached us over HTTPS (X-Forwarded-Proto: https from a TLS proxy). */
bool crm_req_https(crm_req *req);
/*
 * Reply with the JSON error shape and a code of the caller's choosing
 * ("throttled", "csrf", ...) instead of crm_error_name(); `field` may be NULL.
 * Returns CRM_OK: the reply is set, so a handler can `return crm_req_reply_error(...)`.
 */
int crm_req_reply_error(crm_req *req, int status, const char *code, const char *field,
                        const char *fmt, ...) CRM_PRINTF(5, 6);

/*
 * Reply with the JSON error for `code` from this thread's last error, as the
 * server does when a handler returns an error. Returns CRM_OK.
 */
int crm_req_reply_failure(crm_req *req, int code);

/*
 * Deferred replies. A handler that hands its work to another thread calls
 * crm_req_defer (the connection is suspended: no pool thread waits) and
 * returns CRM_OK without replying. Later, on any thread, exactly one reply is
 * set (crm_req_reply_*), then crm_req_resume: the server sends it. The request
 * and its memory stay valid until then. Used by writes, which wait for their
 * group commit (group.h).
 */
void crm_req_defer(crm_req *req);
void crm_req_resume(crm_req *req);

/*
 * For a handler whose change is administrative only in some cases (an admin
 * setting another user's password): CRM_OK when the caller authenticated
 * recently enough for CRM_ROUTE_REAUTH, else CRM_EDENIED named
 * "reauth_required" with a message saying how.
 */
int crm_req_require_recent_auth(crm_req *req);

/*
 * Long-poll. A handler with nothing to answer yet calls crm_req_park and
 * returns CRM_OK without replying: the connection is suspended (no pool
 * thread waits) until crm_http_wake or until `wait_ms` after the request
 * arrived; then the request is authenticated again (the caller may have
 * logged out or lost a role meanwhile) and its handler runs again from the
 * start, on a pool thread. crm_req_wait_over tells the handler to answer
 * now: the wait is over, or the server is stopping. At most a quarter of
 * max_connections requests are parked at once; beyond, and while stopping,
 * crm_req_park returns CRM_EBUSY (503 + Retry-After) with nothing parked.
 * A wake that comes while the handler runs is not lost: it is parked and
 * woken at once. MHD does not watch a suspended socket, so a client that
 * hangs up while parked is noticed at the next wake or the deadline.
 */
int crm_req_park(crm_req *req, int wait_ms);
bool crm_req_wait_over(crm_req *req, int wait_ms);
/* Wake every parked request (something they wait for may have happened). Any thread. */
void crm_http_wake(crm_http *h);

/* libmicrohttpd's version string, for the start-up log. */
const char *crm_http_library_version(void);

#endif
