/*
 * http_int.h — what the HTTP server's files share: the server and request
 * structures and the semi-private functions between them. Internal to
 * http.c (libmicrohttpd, request lifecycle, responses), http_route.c (router,
 * URI decoding), http_auth.c (authentication, principals) and
 * http_metrics.c (/metrics, /healthz). Only http.c includes microhttpd.h:
 * MHD's types appear here as opaque pointers.
 */
#ifndef CRM_HTTP_INT_H
#define CRM_HTTP_INT_H

#include "http.h"

#include "perm.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

struct MHD_Daemon;
struct MHD_Connection;
struct MHD_Response;

#define MAX_SEGS     24
#define MAX_METHODS  8
#define STATUS_SLOTS 24

typedef struct arena_block arena_block;

/* ---- Routes and their metrics ---- */

enum { SEG_EXACT, SEG_PARAM, SEG_REST };

typedef struct seg {
    int kind;
    char *text; /* the literal, or the placeholder's name */
} seg;

typedef struct status_slot {
    _Atomic int status;
    _Atomic uint64_t count;
} status_slot;

typedef struct handler {
    char method[16];
    unsigned flags;
    crm_route_fn fn;
    void *udata;
    status_slot stats[STATUS_SLOTS];
} handler;

typedef struct route {
    char *pattern;
    int nseg;
    seg segs[MAX_SEGS];
    handler *handlers[MAX_METHODS];
    int nhandlers;
} route;

/*
 * A connection as the header deadline sees it (http.c): created by MHD's
 * connection notification, found again through the socket context, freed
 * when MHD closes the connection (before it closes the fd).
 */
typedef struct conn_watch {
    struct conn_watch *prev, *next; /* under crm_http.watch_lock */
    int fd;
    _Atomic int64_t since_us; /* when it began owing a request's headers */
    _Atomic bool in_request;  /* headers received, request not ended */
    bool cut;                 /* shut down by the watchdog (under watch_lock) */
} conn_watch;

/* Latency histogram buckets (http_metrics.c has their bounds). */
#define NBUCKETS 14

struct crm_http {
    crm_kernel *k;
    crm_http_opts opts;
    char *host;
    int port_wanted;
    struct MHD_Daemon *daemon;
    route **routes;
    int nroutes;
    handler unmatched; /* metrics of 404 / 405 / requests refused before routing */

    _Atomic int in_flight; /* requests from their first byte to their end */
    _Atomic int active;    /* of those, the ones whose headers were complete */
    _Atomic int uploading; /* of those, the ones still receiving their body */
    _Atomic int connections;
    _Atomic bool stopping;
    _Atomic uint64_t next_id;
    char id_prefix[9];
    pthread_mutex_t stop_lock;

    /* The watchdog thread: header deadlines and parked (long-poll) requests. */
    pthread_mutex_t watch_lock;
    pthread_cond_t watch_cv;
    pthread_t watch_thread;
    bool watch_running, watch_stop, wake_pending; /* under watch_lock */
    conn_watch *conns;                            /* under watch_lock */
    crm_req *parked;                              /* under watch_lock */
    int nparked;                                  /* reserved + parked, under watch_lock */
    _Atomic int parked_count;                     /* nparked, read without the lock */
    _Atomic uint64_t wake_gen;                    /* bumped by every crm_http_wake */
    _Atomic uint64_t header_cuts;

    _Atomic uint64_t hist[NBUCKETS + 1]; /* last: +Inf */
    _Atomic uint64_t hist_sum_us;
    _Atomic uint64_t hist_count;
};

/* ---- Requests ---- */

typedef struct kv {
    const char *key, *value;
} kv;

typedef struct header_pending {
    struct header_pending *next;
    const char *name, *value;
} header_pending;

struct crm_req {
    crm_http *h;
    struct MHD_Connection *mc;
    arena_block *arena;
    char id[24];
    const char *method;
    const char *raw_path;  /* as sent, without the query */
    const char *raw_query; /* after '?', or NULL */
    char ip[INET6_ADDRSTRLEN];
    int64_t t0_us;

    bool started, counted_upload, replied_early, counted_status;
    bool deferred; /* the reply comes from another thread (crm_req_defer) */
    conn_watch *watch;
    /* long-poll (crm_req_park) */
    int park_state;          /* PARK_NONE, PARK_WAITING, PARK_WOKEN */
    int64_t park_deadline_us;
    uint64_t run_gen;        /* wake_gen when the handler started */
    crm_req *park_prev, *park_next;
    route *route;
    handler *handler;
    int early_status; /* an error found on the first call, answered on the last */
    const char *early_code, *early_message;

    /* path parameters */
    const char *param_names[MAX_SEGS];
    const char *param_values[MAX_SEGS];
    int nparams;
    kv *query;
    int nquery;

    /* body */
    char *body;
    size_t body_len, body_cap, body_limit;
    json_t *json;

    /* authentication */
    int auth_kind;
    bool token_admin_actions; /* an API token issued with --admin-actions */
    int64_t user_id, session_id;
    const char *session_secret;
    crm_principal *who;
    uint64_t who_generation;
    int64_t who_loaded_us;
    crm_ctx ctx;
    bool ctx_ready;

    /* response */
    struct MHD_Response *resp;
    int status;
    const char *content_type;
    header_pending *headers;
    uint64_t bytes;
    _Atomic uint64_t stream_bytes;
    bool close_after;
};

static inline bool crm_http__method_safe(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0;
}

/* http.c: the JSON error reply for kernel error `code` with this thread's message. */
void crm_http__reply_error(crm_req *req, int code);

/* http_route.c */
void crm_http__routes_free(crm_http *h);
/* Split the raw URI into decoded path segments (n = -1: too many) and the query
 * pairs; false on a malformed percent-escape. */
bool crm_http__parse_uri(crm_req *req, char ***segs, int *n);
/* Find the handler (or set the 404 / 405 answer) and the path parameters. */
void crm_http__route_lookup(crm_req *req, char **segs, int n);

/* http_auth.c */
/* Whether a browser request comes from another site (Sec-Fetch-Site, Origin). */
bool crm_http__cross_site(crm_req *req);
/* Authenticate for a non-public route: true to go on, else the error reply is set. */
bool crm_http__authenticate(crm_req *req);
/* At the request's end, on its pool thread: keep its principal for the next. */
void crm_http__principal_give(crm_req *req);

/* http_metrics.c */
void crm_http__stats_count(handler *hd, int status);
void crm_http__hist_observe(crm_http *h, int64_t us);
int crm_http__metrics_route(crm_req *req, void *udata);
int crm_http__health_route(crm_req *req, void *udata);

#endif
