/*
 * http.c — the HTTP server: libmicrohttpd (the only file that includes
 * microhttpd.h), the request lifecycle and its limits, the JSON body,
 * responses with their security headers, the access log, start and stop.
 * Its neighbours: http_route.c (router, URI decoding), http_auth.c (who is
 * asking), http_metrics.c (/metrics, /healthz); http_int.h is what they share.
 *
 * Threads: MHD's internal thread pool with epoll (poll where epoll is
 * missing). A request lives on one pool thread from its first byte to its
 * last, so handlers use crm_store_conn() (thread-local) freely; store.c closes
 * a pool thread's connection when MHD joins the thread at stop.
 *
 * Request lifecycle (MHD calls the access handler several times per request):
 *   URI callback  the crm_req is born with the raw URI (path and query are
 *                 percent-decoded by us, per segment: MHD's own unescaping
 *                 would turn "%2F" into a path separator);
 *   first call    route lookup, header sanity (Content-Length / Transfer-
 *                 Encoding smuggling → 400) and the body limit (→ 413 before
 *                 a byte of the body is read). Nothing else is answered here:
 *                 MHD 0.9.75 drops keep-alive for a response queued on the
 *                 first call (DESIGN.md), so even 404 waits for the last call;
 *                 only the errors that must close the connection go out now;
 *   body calls    the body accumulates within the limit (chunked too) and
 *                 within the absolute per-request deadline;
 *   last call     authenticate, parse the JSON body within depth and size
 *                 bounds, run the handler, queue its response;
 *   completed     access log line, metrics, and the request's memory freed.
 *
 * Decisions:
 *   - A JSON body must come as Content-Type application/json (parameters
 *     allowed; a charset other than UTF-8 is refused) or the answer is 415.
 *     Besides being honest about the format, it keeps HTML forms (which can
 *     only send form or text types cross-site without a CORS preflight) out
 *     of every JSON endpoint: a second line of CSRF defence, login included.
 *   - GET /metrics needs an admin: route names, user activity and database
 *     size are not for the public. /healthz (and /health, /api/v1/healthz)
 *     is public and says only "ok".
 *   - Errors of kind CRM_EINTERNAL are logged in full with the request id and
 *     answered with a generic message naming that id: SQL and file paths stay
 *     in the log.
 *   - The access log has the path without the query string (tokens and
 *     search terms travel there), never headers, cookies or bodies.
 *   - X-Forwarded-For is not trusted (no proxy configuration yet): the client
 *     address is the socket's. X-Forwarded-Proto: https is honoured only to
 *     make cookies Secure and send HSTS, which only ever tightens things.
 *   - No CORS: the API serves its own origin (the web UI) and scripts with
 *     bearer tokens; OPTIONS answers 405 like any method a route lacks.
 *   - The per-request deadline is checked as body bytes arrive. Headers
 *     have a deadline of their own (header_timeout_s, default 10 s), which
 *     MHD 0.9.75 lacks: a connection owes a request's complete headers
 *     within it, counted from its start or from the end of its previous
 *     request, or the watchdog thread shuts its socket down and MHD closes
 *     it. So a slowloris client is cut however slowly it dribbles, and an
 *     idle keep-alive connection is closed after the same time (Apache's
 *     default keep-alive timeout is 5 s; clients reconnect). The watchdog
 *     acts only on connections still in its table, under its lock: MHD's
 *     "closed" notification takes them out before MHD closes the fd, so a
 *     reused fd number is never shut down by mistake.
 *   - Long-poll (crm_req_park): a parked request is a suspended connection,
 *     which holds no pool thread. The watchdog resumes it at its deadline,
 *     or when woken: the server listens to the bus, so every commit that
 *     appended events wakes the parked requests (commits of other processes,
 *     such as `crm import`, do not: those are seen at the deadline). A woken
 *     request is authenticated again and its handler runs again.
 */
#include "http_int.h"
#include "jtext.h"

#include "auth.h"
#include "bus.h"
#include "perm.h"
#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STREAM_BLOCK (32 * 1024)
/* How long a cut-off upload's socket is drained so the client can read our answer. */
#define LINGER_MS    200
#define LINGER_BYTES (1 << 20)
/*
 * The drain runs on a pool thread, so it stops as soon as the client pauses
 * this long: a client still streaming is drained (up to LINGER_MS), while a
 * dribbler cut at the deadline costs the thread 10 ms, not 200 ms. (100
 * dribblers reaching the deadline together stalled every other request for
 * seconds: tests/hostile.)
 */
#define LINGER_GAP_MS 10
/* The watchdog looks at header deadlines this often. */
#define WATCH_TICK_US 250000

enum { PARK_NONE, PARK_WAITING, PARK_WOKEN };

/* ---- Per-request arena (nginx pools): allocate freely, free once ---- */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_block;

#define ARENA_BLOCK 4096

static void *arena_alloc(arena_block **head, size_t n)
{
    arena_block *b = *head, *nb;
    size_t cap;
    void *p;

    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (b && b->cap - b->used >= n) {
        p = b->data + b->used;
        b->used += n;
        return p;
    }
    cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
    nb = crm_malloc(sizeof *nb + cap);
    nb->cap = cap;
    nb->used = n;
    if (b && n > ARENA_BLOCK / 2) {
        /* A big piece gets a block of its own behind the current one, whose
         * free space stays in use for the small pieces to come. */
        nb->next = b->next;
        b->next = nb;
    } else {
        nb->next = b;
        *head = nb;
    }
    return nb->data;
}

static void arena_free(arena_block *b)
{
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
}

typedef struct stream_state {
    ssize_t (*next)(void *arg, char *buf, size_t max);
    void *arg;
    void (*free_fn)(void *arg);
    _Atomic uint64_t *bytes;
} stream_state;

/* ---- Small helpers ---- */

void *crm_req_alloc(crm_req *req, size_t n)
{
    return arena_alloc(&req->arena, n);
}

char *crm_req_strdup(crm_req *req, const char *s)
{
    size_t n;
    char *p;
    if (!s) return NULL;
    n = strlen(s);
    p = crm_req_alloc(req, n + 1);
    memcpy(p, s, n + 1);
    return p;
}

static char *req_strndup(crm_req *req, const char *s, size_t n)
{
    char *p = crm_req_alloc(req, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ---- Status mapping: the one place ---- */

int crm_http_status(int code)
{
    switch (code) {
    case CRM_OK:
        return 200;
    case CRM_EINVALID:
        return 400;
    case CRM_EDENIED:
        return 403;
    case CRM_ENOTFOUND:
        return 404;
    case CRM_ECONFLICT:
        return 409;
    case CRM_ESTALE:
        return 412;
    case CRM_ELIMIT:
        return 422;
    case CRM_EBUSY:
        return 503;
    case CRM_EFULL:
        return 507;
    default:
        return 500;
    }
}

/* ---- Opening and listening ---- */

static int parse_listen(crm_http *h, const char *listen)
{
    const char *colon;
    int64_t port;

    if (!listen || !*listen) return crm_error_set(CRM_EINVALID, "listen", "empty listen address");
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return crm_error_set(CRM_EINVALID, "listen",
                                 "listen address \"%s\": expected [IPv6]:PORT", listen);
        h->host = crm_strndup(listen + 1, (size_t)(close - listen - 1));
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            return crm_error_set(CRM_EINVALID, "listen",
                                 "listen address \"%s\": expected HOST:PORT", listen);
        if (memchr(listen, ':', (size_t)(colon - listen)))
            return crm_error_set(CRM_EINVALID, "listen",
                                 "listen address \"%s\": write IPv6 as [ADDR]:PORT", listen);
        h->host =
            colon == listen ? crm_strdup("0.0.0.0") : crm_strndup(listen, (size_t)(colon - listen));
    }
    if (!crm_parse_int64(colon + 1, &port) || port < 0 || port > 65535 || colon[1] == '+' ||
        colon[1] == '-')
        return crm_error_set(CRM_EINVALID, "listen", "listen address \"%s\": bad port", listen);
    h->port_wanted = (int)port;
    return CRM_OK;
}

int crm_http_open(crm_http **out, crm_kernel *k, const crm_http_opts *opts)
{
    crm_http_opts defaults = CRM_HTTP_OPTS_INIT;
    unsigned char rnd[4];
    crm_http *h;
    int rc;

    *out = NULL;
    h = crm_calloc(1, sizeof *h);
    h->k = k;
    h->opts = opts ? *opts : defaults;
    if (!h->opts.listen) h->opts.listen = defaults.listen;
    if (h->opts.max_connections <= 0) h->opts.max_connections = defaults.max_connections;
    if (h->opts.max_per_ip < 0) h->opts.max_per_ip = defaults.max_per_ip;
    if (h->opts.timeout_s <= 0) h->opts.timeout_s = defaults.timeout_s;
    if (h->opts.request_deadline_s <= 0) h->opts.request_deadline_s = defaults.request_deadline_s;
    if (h->opts.max_body == 0) h->opts.max_body = defaults.max_body;
    if (h->opts.max_import_body == 0) h->opts.max_import_body = defaults.max_import_body;
    if (h->opts.json_max_depth <= 0) h->opts.json_max_depth = defaults.json_max_depth;
    if (h->opts.json_max_items <= 0) h->opts.json_max_items = defaults.json_max_items;
    if (h->opts.conn_memory < 8192) h->opts.conn_memory = defaults.conn_memory;
    if (h->opts.header_timeout_s == 0) h->opts.header_timeout_s = defaults.header_timeout_s;
    pthread_mutex_init(&h->stop_lock, NULL);
    pthread_mutex_init(&h->watch_lock, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&h->watch_cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    snprintf(h->unmatched.method, sizeof h->unmatched.method, "*");
    if (crm_auth_init() < 0) {
        crm_http_close(h);
        return CRM_EINTERNAL;
    }
    /* A per-process prefix keeps request ids unique across restarts in one log. */
    randombytes_buf(rnd, sizeof rnd);
    crm_hex(rnd, sizeof rnd, h->id_prefix);
    if ((rc = parse_listen(h, h->opts.listen)) < 0) {
        crm_http_close(h);
        return rc;
    }
    /* The server's own endpoints. */
    if ((rc = crm_http_route(h, "GET", "/api/v1/healthz", CRM_ROUTE_PUBLIC, crm_http__health_route,
                             h)) ||
        (rc = crm_http_route(h, "GET", "/healthz", CRM_ROUTE_PUBLIC, crm_http__health_route, h)) ||
        (rc = crm_http_route(h, "GET", "/health", CRM_ROUTE_PUBLIC, crm_http__health_route, h)) ||
        (rc = crm_http_route(h, "GET", "/metrics", CRM_ROUTE_ADMIN, crm_http__metrics_route, h)) ||
        (rc = crm_http_route(h, "GET", "/api/v1/metrics", CRM_ROUTE_ADMIN, crm_http__metrics_route,
                             h))) {
        crm_http_close(h);
        return rc;
    }
    *out = h;
    return CRM_OK;
}

const char *crm_http_library_version(void)
{
    return MHD_get_version();
}

crm_kernel *crm_http_kernel(crm_http *h)
{
    return h->k;
}

/* ---- Responses ---- */

static void req_set_response(crm_req *req, struct MHD_Response *resp, int status,
                             const char *content_type, uint64_t bytes)
{
    if (req->resp) {
        /* A handler replied twice: keep the first, it is what the contract promises. */
        crm_log(CRM_LOG_ERROR, "http: %s %s replied twice (bug); the second reply is dropped",
                req->method, req->raw_path);
        MHD_destroy_response(resp);
        return;
    }
    req->resp = resp;
    req->status = status;
    req->content_type = content_type ? crm_req_strdup(req, content_type) : NULL;
    req->bytes = bytes;
}

int crm_req_reply_json(crm_req *req, int status, json_t *body)
{
    char *text;

    if (!body)
        return crm_error_set(CRM_EINTERNAL, NULL, "reply with no JSON body (out of memory?)");
    size_t len;
    text = crm_jtext_dumps(body, CRM_JTEXT_REPLY, &len);
    json_decref(body);
    return crm_req_reply_json_text(req, status, text, len);
}

int crm_req_reply_json_text(crm_req *req, int status, char *text, size_t len)
{
    struct MHD_Response *resp;
    if (!text) return crm_error_set(CRM_EINTERNAL, NULL, "reply with no JSON text");
    resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return crm_error_set(CRM_EINTERNAL, NULL, "cannot create the response");
    }
    req_set_response(req, resp, status, "application/json", len);
    return CRM_OK;
}

int crm_req_reply_data(crm_req *req, int status, const char *content_type, const char *data,
                       size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(data ? data : ""), MHD_RESPMEM_MUST_COPY);
    if (!resp) return crm_error_set(CRM_EINTERNAL, NULL, "cannot create the response");
    req_set_response(req, resp, status, content_type, len);
    return CRM_OK;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_state *s = cls;
    ssize_t n;
    (void)pos;
    n = s->next(s->arg, buf, max);
    if (n < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    if (n == 0) return MHD_CONTENT_READER_END_OF_STREAM;
    if ((size_t)n > max) return MHD_CONTENT_READER_END_WITH_ERROR;
    if (s->bytes) atomic_fetch_add(s->bytes, (uint64_t)n);
    return n;
}

static void stream_free(void *cls)
{
    stream_state *s = cls;
    if (s->free_fn) s->free_fn(s->arg);
    free(s);
}

int crm_req_reply_stream(crm_req *req, int status, const char *content_type,
                         ssize_t (*next)(void *arg, char *buf, size_t max), void *arg,
                         void (*free_fn)(void *arg))
{
    stream_state *s = crm_calloc(1, sizeof *s);
    struct MHD_Response *resp;

    s->next = next;
    s->arg = arg;
    s->free_fn = free_fn;
    s->bytes = &req->stream_bytes;
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, s,
                                             stream_free);
    if (!resp) {
        stream_free(s);
        return crm_error_set(CRM_EINTERNAL, NULL, "cannot create the response");
    }
    req_set_response(req, resp, status, content_type, 0);
    return CRM_OK;
}

void crm_req_set_header(crm_req *req, const char *name, const char *value)
{
    header_pending *hp;
    if (!name || !value) return;
    /* Header injection: a value with CR or LF would start a header of its own. */
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) {
        crm_log(CRM_LOG_WARN, "http: header \"%s\" with CR/LF dropped", name);
        return;
    }
    hp = crm_req_alloc(req, sizeof *hp);
    hp->name = crm_req_strdup(req, name);
    hp->value = crm_req_strdup(req, value);
    hp->next = req->headers;
    req->headers = hp;
}

static bool header_set(crm_req *req, const char *name)
{
    for (header_pending *hp = req->headers; hp; hp = hp->next)
        if (strcasecmp(hp->name, name) == 0) return true;
    return false;
}

static json_t *error_body(const char *code, const char *field, const char *message)
{
    json_t *e = json_pack("{s:s, s:s}", "code", code, "message", message ? message : "");
    if (!e) e = json_pack("{s:s, s:s}", "code", code, "message", "(message not UTF-8)");
    if (field && *field) json_object_set_new(e, "field", json_string(field));
    return json_pack("{s:o}", "error", e);
}

int crm_req_reply_error(crm_req *req, int status, const char *code, const char *field,
                        const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (req->resp) {
        MHD_destroy_response(req->resp);
        req->resp = NULL;
    }
    if (status == 401 && !header_set(req, "WWW-Authenticate"))
        crm_req_set_header(req, "WWW-Authenticate", "Bearer");
    if ((status == 503 || status == 429) && !header_set(req, "Retry-After"))
        crm_req_set_header(req, "Retry-After", "1");
    crm_req_reply_json(req, status, error_body(code, field, msg));
    return CRM_OK;
}

/* The JSON error reply for a kernel error code with this thread's message. */
void crm_http__reply_error(crm_req *req, int code)
{
    const crm_error *e = crm_error_last();
    int status = crm_http_status(code);
    if (status == 500) {
        crm_log(CRM_LOG_ERROR, "http: %s %s (request %s): %s", req->method, req->raw_path, req->id,
                e->message && *e->message ? e->message : "internal error");
        crm_req_reply_error(req, 500, "internal", NULL, "internal error (request %s)", req->id);
        return;
    }
    /* A specific code ("rule_timeout") when the failure site named one. */
    const char *name = e->code == code && e->name ? e->name : crm_error_name(code);
    crm_req_reply_error(req, status, name, e->field, "%s",
                        e->message && *e->message ? e->message : name);
}

bool crm_req_https(crm_req *req)
{
    const char *p = crm_req_header(req, "X-Forwarded-Proto");
    return p && strcasecmp(p, "https") == 0;
}

int crm_req_reply_failure(crm_req *req, int code)
{
    crm_http__reply_error(req, code);
    return CRM_OK;
}

/*
 * Deferred replies (MHD suspend/resume). The handler suspends its connection
 * here, inside the access callback as MHD requires, before handing the work
 * to another thread; that thread sets the reply and calls crm_req_resume,
 * after which MHD calls the access callback again and on_access queues the
 * reply. Resuming before the handler has even returned is fine: MHD acts on
 * it from its event loop, after the callback.
 */
void crm_req_defer(crm_req *req)
{
    req->deferred = true;
    MHD_suspend_connection(req->mc);
}

void crm_req_resume(crm_req *req)
{
    MHD_resume_connection(req->mc);
}

/* ---- Long-poll and the watchdog ---- */

static int max_parked(crm_http *h)
{
    return h->opts.max_connections / 4 > 0 ? h->opts.max_connections / 4 : 1;
}

static void unpark_locked(crm_http *h, crm_req *req)
{
    if (req->park_prev)
        req->park_prev->park_next = req->park_next;
    else
        h->parked = req->park_next;
    if (req->park_next) req->park_next->park_prev = req->park_prev;
    req->park_prev = req->park_next = NULL;
    req->park_state = PARK_WOKEN;
    h->nparked--;
    atomic_store(&h->parked_count, h->nparked);
}

int crm_req_park(crm_req *req, int wait_ms)
{
    crm_http *h = req->h;
    bool now;

    pthread_mutex_lock(&h->watch_lock);
    if (!h->watch_running || h->watch_stop || atomic_load(&h->stopping)) {
        pthread_mutex_unlock(&h->watch_lock);
        return crm_error_set(CRM_EBUSY, NULL, "the server is stopping");
    }
    if (h->nparked >= max_parked(h)) {
        int n = h->nparked;
        pthread_mutex_unlock(&h->watch_lock);
        return crm_error_set(CRM_EBUSY, NULL,
                             "%d requests are waiting already, the limit; ask again later", n);
    }
    h->nparked++; /* reserved: the watchdog cannot resume what is not suspended yet */
    atomic_store(&h->parked_count, h->nparked);
    pthread_mutex_unlock(&h->watch_lock);

    req->park_deadline_us = req->t0_us + (int64_t)wait_ms * 1000;
    crm_req_defer(req);

    pthread_mutex_lock(&h->watch_lock);
    /* A wake since the handler started may concern what it just found missing. */
    now = h->watch_stop || atomic_load(&h->wake_gen) != req->run_gen;
    if (now) {
        h->nparked--;
        atomic_store(&h->parked_count, h->nparked);
        req->park_state = PARK_WOKEN;
    } else {
        req->park_state = PARK_WAITING;
        req->park_prev = NULL;
        req->park_next = h->parked;
        if (h->parked) h->parked->park_prev = req;
        h->parked = req;
        pthread_cond_signal(&h->watch_cv); /* its deadline may be the nearest */
    }
    pthread_mutex_unlock(&h->watch_lock);
    if (now) crm_req_resume(req);
    return CRM_OK;
}

bool crm_req_wait_over(crm_req *req, int wait_ms)
{
    return atomic_load(&req->h->stopping) ||
           crm_mono_us() >= req->t0_us + (int64_t)wait_ms * 1000;
}

void crm_http_wake(crm_http *h)
{
    atomic_fetch_add(&h->wake_gen, 1);
    if (atomic_load(&h->parked_count) == 0) return;
    pthread_mutex_lock(&h->watch_lock);
    h->wake_pending = true;
    pthread_cond_signal(&h->watch_cv);
    pthread_mutex_unlock(&h->watch_lock);
}

static void wake_from_bus(void *arg)
{
    crm_http_wake(arg);
}

/* Shut down the connections that owe their headers past the deadline (under watch_lock). */
static void cut_slow_headers(crm_http *h, int64_t now)
{
    static _Atomic int64_t last_log;
    int64_t limit = (int64_t)h->opts.header_timeout_s * 1000000, prev;
    int n = 0;

    for (conn_watch *c = h->conns; c; c = c->next) {
        if (c->cut || atomic_load(&c->in_request) || now - atomic_load(&c->since_us) < limit)
            continue;
        /* MHD sees the end of the stream at its next read and closes the connection. */
        shutdown(c->fd, SHUT_RDWR);
        c->cut = true;
        n++;
    }
    if (!n) return;
    atomic_fetch_add(&h->header_cuts, (uint64_t)n);
    prev = atomic_load(&last_log);
    if (now - prev > 60000000 && atomic_compare_exchange_strong(&last_log, &prev, now))
        crm_log(CRM_LOG_INFO,
                "http: closed connections that sent no complete request headers within %d s "
                "(%" PRIu64 " so far: idle keep-alive or slow clients)",
                h->opts.header_timeout_s, atomic_load(&h->header_cuts));
}

static void resume_list(crm_req *r)
{
    while (r) {
        crm_req *next = r->park_next; /* r may be gone once resumed */
        r->park_next = NULL;
        crm_req_resume(r);
        r = next;
    }
}

static void *watchdog(void *arg)
{
    crm_http *h = arg;

    pthread_mutex_lock(&h->watch_lock);
    while (!h->watch_stop) {
        int64_t now = crm_mono_us(), next = now + WATCH_TICK_US;
        bool all = h->wake_pending || atomic_load(&h->stopping);
        crm_req *due = NULL;
        struct timespec ts;

        h->wake_pending = false;
        if (h->opts.header_timeout_s > 0) cut_slow_headers(h, now);
        for (crm_req *r = h->parked, *nx; r; r = nx) {
            nx = r->park_next;
            if (all || now >= r->park_deadline_us) {
                unpark_locked(h, r);
                r->park_next = due;
                due = r;
            } else if (r->park_deadline_us < next) {
                next = r->park_deadline_us;
            }
        }
        if (due) {
            /* MHD is not called under our lock: its callbacks take it. */
            pthread_mutex_unlock(&h->watch_lock);
            resume_list(due);
            pthread_mutex_lock(&h->watch_lock);
            continue;
        }
        /* The condition variable runs on CLOCK_MONOTONIC: wait `next - now` from its now. */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)((next - now) / 1000000);
        ts.tv_nsec += (long)((next - now) % 1000000) * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!h->wake_pending && !h->watch_stop)
            pthread_cond_timedwait(&h->watch_cv, &h->watch_lock, &ts);
    }
    /* Stopping: nothing stays suspended, or MHD could not stop. */
    {
        crm_req *due = NULL;
        while (h->parked) {
            crm_req *r = h->parked;
            unpark_locked(h, r);
            r->park_next = due;
            due = r;
        }
        pthread_mutex_unlock(&h->watch_lock);
        resume_list(due);
    }
    return NULL;
}

static void watch_start(crm_http *h)
{
    pthread_mutex_lock(&h->watch_lock);
    h->watch_stop = false;
    h->wake_pending = false;
    h->watch_running = pthread_create(&h->watch_thread, NULL, watchdog, h) == 0;
    pthread_mutex_unlock(&h->watch_lock);
    if (!h->watch_running)
        crm_log(CRM_LOG_ERROR, "http: cannot start the watchdog thread: no header deadline, "
                               "no long-poll");
    else if (h->k && h->k->bus && crm_bus_listen(h->k->bus, wake_from_bus, h) < 0)
        crm_log(CRM_LOG_WARN, "http: %s: long-polls wait for their deadline",
                crm_error_last()->message);
}

static void watch_stop(crm_http *h)
{
    bool running;
    if (h->k && h->k->bus) crm_bus_unlisten(h->k->bus, wake_from_bus, h);
    pthread_mutex_lock(&h->watch_lock);
    running = h->watch_running;
    h->watch_stop = true;
    pthread_cond_signal(&h->watch_cv);
    pthread_mutex_unlock(&h->watch_lock);
    if (running) pthread_join(h->watch_thread, NULL);
    pthread_mutex_lock(&h->watch_lock);
    h->watch_running = false;
    pthread_mutex_unlock(&h->watch_lock);
}

static void add_std_headers(crm_req *req, struct MHD_Response *resp)
{
    const char *ct = req->content_type;
    for (header_pending *hp = req->headers; hp; hp = hp->next)
        MHD_add_response_header(resp, hp->name, hp->value);
    if (ct && !header_set(req, "Content-Type")) MHD_add_response_header(resp, "Content-Type", ct);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "same-origin");
    if (!header_set(req, "Cache-Control"))
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (ct && strncasecmp(ct, "text/html", 9) == 0 && !header_set(req, "Content-Security-Policy"))
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; script-src 'self'; object-src 'none'; "
                                "frame-ancestors 'none'");
    MHD_add_response_header(resp, "X-Request-Id", req->id);
    if (crm_req_https(req))
        MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
    if (req->close_after || atomic_load(&req->h->stopping))
        MHD_add_response_header(resp, "Connection", "close");
}

/* Counted when the answer is decided, not when the connection is done with
 * it: a client that has read its answer sees it in /metrics. */
static void count_status(crm_req *req, int status)
{
    if (req->counted_status) return;
    req->counted_status = true;
    crm_http__stats_count(req->handler ? req->handler : &req->h->unmatched, status);
}

static enum MHD_Result queue_reply(crm_req *req)
{
    enum MHD_Result ret;
    if (!req->resp) return MHD_NO;
    count_status(req, req->status);
    add_std_headers(req, req->resp);
    ret = MHD_queue_response(req->mc, (unsigned)req->status, req->resp);
    MHD_destroy_response(req->resp);
    req->resp = NULL;
    return ret;
}

/*
 * Answer and close while the client is still sending its body (over the
 * limit, past the deadline, shutting down). MHD 0.9.75 accepts a response
 * only before or after the body, so this one is written to the socket
 * directly; then the socket is drained briefly so that the client reads the
 * answer instead of a reset, and MHD closes the connection.
 */
static enum MHD_Result abort_upload(crm_req *req, int status, const char *reason, const char *code,
                                    const char *message)
{
    const union MHD_ConnectionInfo *ci;
    char head[512], body[512], sink[16384];
    size_t drained = 0;
    int64_t until;
    int fd, hn, bn;

    req->status = status;
    count_status(req, status);
    bn = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
                  message);
    hn = snprintf(head, sizeof head,
                  "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                  "Connection: close\r\nX-Content-Type-Options: nosniff\r\n"
                  "Referrer-Policy: same-origin\r\nCache-Control: no-store\r\n"
                  "X-Request-Id: %s\r\n\r\n",
                  status, reason, bn, req->id);
    req->bytes = (uint64_t)bn;
    ci = MHD_get_connection_info(req->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return MHD_NO;
    fd = ci->connect_fd;
    if (send(fd, head, (size_t)hn, MSG_NOSIGNAL | MSG_DONTWAIT) != hn ||
        send(fd, body, (size_t)bn, MSG_NOSIGNAL | MSG_DONTWAIT) != bn)
        return MHD_NO;
    shutdown(fd, SHUT_WR);
    until = crm_mono_us() + LINGER_MS * 1000;
    while (drained < LINGER_BYTES) {
        struct pollfd p = {fd, POLLIN, 0};
        int64_t left = (until - crm_mono_us()) / 1000;
        ssize_t n;
        if (left <= 0 || poll(&p, 1, (int)(left < LINGER_GAP_MS ? left : LINGER_GAP_MS)) <= 0)
            break;
        n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n <= 0) break;
        drained += (size_t)n;
    }
    return MHD_NO;
}

/* ---- Request accessors ---- */

const char *crm_req_method(crm_req *req)
{
    return req->method;
}

const char *crm_req_path(crm_req *req)
{
    return req->raw_path;
}

const char *crm_req_param(crm_req *req, const char *name)
{
    for (int i = 0; i < req->nparams; i++)
        if (strcmp(req->param_names[i], name) == 0) return req->param_values[i];
    return NULL;
}

int crm_req_param_id(crm_req *req, const char *name, int64_t *out)
{
    const char *v = crm_req_param(req, name);
    *out = 0;
    if (!v || !crm_parse_int64(v, out) || *out <= 0 || v[0] == '+' || v[0] == '-') {
        *out = 0;
        return crm_error_set(CRM_EINVALID, name, "%s must be a positive integer id", name);
    }
    return CRM_OK;
}

const char *crm_req_query(crm_req *req, const char *key)
{
    for (int i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].key, key) == 0) return req->query[i].value;
    return NULL;
}

int crm_req_query_each(crm_req *req, int (*fn)(void *arg, const char *key, const char *value),
                       void *arg)
{
    for (int i = 0; i < req->nquery; i++) {
        int rc = fn(arg, req->query[i].key, req->query[i].value);
        if (rc) return rc;
    }
    return 0;
}

const char *crm_req_header(crm_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->mc, MHD_HEADER_KIND, name);
}

const char *crm_req_cookie(crm_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->mc, MHD_COOKIE_KIND, name);
}

const char *crm_req_ip(crm_req *req)
{
    return req->ip;
}

json_t *crm_req_json(crm_req *req)
{
    return req->json;
}

const char *crm_req_body(crm_req *req, size_t *len)
{
    if (len) *len = req->body_len;
    return req->body ? req->body : "";
}

crm_ctx *crm_req_ctx(crm_req *req)
{
    if (!req->ctx_ready) {
        crm_ctx_init(&req->ctx, req->h->k, req->who ? req->who : crm_principal_system(), NULL);
        req->ctx_ready = true;
    }
    return &req->ctx;
}

int64_t crm_req_user(crm_req *req)
{
    return req->user_id;
}

const char *crm_req_id(crm_req *req)
{
    return req->id;
}

void crm_req__set_user(crm_req *req, int64_t user_id)
{
    req->user_id = user_id;
}

int crm_req__auth(crm_req *req, int64_t *session_id, const char **secret)
{
    if (session_id) *session_id = req->session_id;
    if (secret) *secret = req->session_secret;
    return req->auth_kind;
}

/* ---- Request parsing ---- */

typedef struct header_counts {
    int content_length, transfer_encoding;
    const char *te_value, *cl_value;
} header_counts;

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    header_counts *c = cls;
    (void)kind;
    if (!key) return MHD_YES;
    if (strcasecmp(key, "Content-Length") == 0) {
        c->content_length++;
        c->cl_value = value;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        c->transfer_encoding++;
        c->te_value = value;
    }
    return MHD_YES;
}

/* Queue an error now, on the first call: MHD then closes the connection
 * without reading the body, which is the point. */
static enum MHD_Result reply_now_and_close(crm_req *req, int status, const char *code,
                                           const char *fmt, const char *arg)
{
    req->close_after = true;
    req->replied_early = true;
    crm_req_reply_error(req, status, code, NULL, fmt, arg);
    return queue_reply(req);
}

static enum MHD_Result req_begin(crm_req *req, const char *method)
{
    crm_http *h = req->h;
    header_counts hc = {0, 0, NULL, NULL};
    char **segs = NULL;
    int nsegs = 0;
    uint64_t length = 0;
    bool chunked = false;

    req->method = crm_req_strdup(req, method);
    atomic_fetch_add(&h->active, 1);
    {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(req->mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        req->watch = ci ? ci->socket_context : NULL;
        if (req->watch) atomic_store(&req->watch->in_request, true); /* headers complete */
    }
    if (!crm_http__parse_uri(req, &segs, &nsegs)) {
        req->early_status = 400;
        req->early_code = "invalid";
        req->early_message = "malformed percent-encoding in the URL";
    } else {
        crm_http__route_lookup(req, segs, nsegs);
    }

    MHD_get_connection_values(req->mc, MHD_HEADER_KIND, count_header, &hc);
    /* Request smuggling (the MHD 1.0.4 lesson): a body must have one framing. */
    if (hc.content_length > 1)
        return reply_now_and_close(req, 400, "invalid", "%s",
                                   "more than one Content-Length header");
    if (hc.content_length && hc.transfer_encoding)
        return reply_now_and_close(req, 400, "invalid", "%s",
                                   "both Content-Length and Transfer-Encoding");
    if (hc.transfer_encoding > 1 ||
        (hc.transfer_encoding && strcasecmp(hc.te_value ? hc.te_value : "", "chunked") != 0))
        return reply_now_and_close(req, 400, "invalid", "%s",
                                   "only Transfer-Encoding: chunked is accepted");
    chunked = hc.transfer_encoding == 1;
    if (hc.content_length) {
        const char *v = hc.cl_value ? hc.cl_value : "";
        size_t nd = strspn(v, "0123456789");
        if (nd == 0 || v[nd] != '\0' || nd > 19)
            return reply_now_and_close(req, 400, "invalid", "%s", "malformed Content-Length");
        length = strtoull(v, NULL, 10);
    }
    req->body_limit = req->handler && (req->handler->flags & CRM_ROUTE_LARGE_BODY)
                          ? h->opts.max_import_body
                          : h->opts.max_body;
    if (length > req->body_limit) {
        char msg[128];
        snprintf(msg, sizeof msg, "the body is larger than the limit of %zu bytes",
                 req->body_limit);
        return reply_now_and_close(req, 413, "body_too_large", "%s", msg);
    }
    if (length > 0 || chunked) {
        /* A known length is allocated once; chunked bodies grow. */
        if (length > 0 && req->handler && !req->early_status) {
            req->body_cap = (size_t)length + 1;
            req->body = malloc(req->body_cap);
            if (!req->body)
                return reply_now_and_close(req, 503, "busy", "%s", "out of memory for the body");
        }
        req->counted_upload = true;
        atomic_fetch_add(&h->uploading, 1);
    }
    return MHD_YES;
}

static void upload_done(crm_req *req)
{
    if (req->counted_upload) {
        req->counted_upload = false;
        atomic_fetch_sub(&req->h->uploading, 1);
    }
}

static enum MHD_Result req_body(crm_req *req, const char *data, size_t *size)
{
    crm_http *h = req->h;
    size_t n = *size;

    if (req->replied_early) {
        *size = 0;
        return MHD_YES;
    }
    if (atomic_load(&h->stopping))
        return abort_upload(req, 503, "Service Unavailable", "busy", "the server is shutting down");
    if (crm_mono_us() - req->t0_us > (int64_t)h->opts.request_deadline_s * 1000000)
        return abort_upload(req, 408, "Request Timeout", "request_timeout",
                            "the request took longer than the server's deadline");
    if (n > req->body_limit - req->body_len) {
        upload_done(req);
        return abort_upload(req, 413, "Payload Too Large", "body_too_large",
                            "the body is larger than the server's limit");
    }
    if (!req->handler || req->early_status) {
        /* Nobody will read it: count it against the limit, keep nothing. */
        req->body_len += n;
        *size = 0;
        return MHD_YES;
    }
    if (req->body_len + n + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 16384;
        char *nb;
        while (cap < req->body_len + n + 1)
            cap *= 2;
        if (cap > req->body_limit + 1) cap = req->body_limit + 1;
        nb = realloc(req->body, cap);
        if (!nb) {
            upload_done(req);
            return abort_upload(req, 503, "Service Unavailable", "busy",
                                "out of memory for the body");
        }
        req->body = nb;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
    req->body[req->body_len] = '\0';
    *size = 0;
    return MHD_YES;
}

/* ---- JSON body ---- */

/*
 * Depth and item count before Jansson sees the text: Jansson recurses per
 * nesting level (CVE-2016-4425) and allocates per item, so both are bounded
 * by a linear scan that allocates nothing. Items are counted as containers
 * plus commas, an upper bound of members + elements.
 */
static int json_prescan(const char *s, size_t n, int max_depth, int max_items)
{
    int depth = 0;
    long items = 0;
    bool in_string = false;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
        case '"':
            in_string = true;
            break;
        case '[':
        case '{':
            if (++depth > max_depth) return 1;
            if (++items > max_items) return 2;
            break;
        case ']':
        case '}':
            depth--;
            break;
        case ',':
            if (++items > max_items) return 2;
            break;
        default:
            break;
        }
    }
    return 0;
}

static bool content_type_json(const char *ct)
{
    size_t n = strlen("application/json");
    const char *p;
    if (!ct || strncasecmp(ct, "application/json", n) != 0) return false;
    p = ct + n;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p) return true;
    if (*p != ';') return false;
    /* A charset, if named, must be UTF-8 (RFC 8259). */
    for (const char *c = strcasestr(p, "charset="); c; c = NULL) {
        c += 8;
        if (*c == '"') c++;
        if (strncasecmp(c, "utf-8", 5) != 0) return false;
    }
    return true;
}

static bool parse_body(crm_req *req)
{
    crm_http *h = req->h;
    json_error_t err;
    int scan;

    if ((req->handler->flags & CRM_ROUTE_RAW_BODY) || req->body_len == 0) return true;
    if (!content_type_json(crm_req_header(req, "Content-Type"))) {
        crm_req_reply_error(req, 415, "unsupported_media_type", NULL,
                            "the body must be JSON, sent as Content-Type: application/json");
        return false;
    }
    scan = json_prescan(req->body, req->body_len, h->opts.json_max_depth, h->opts.json_max_items);
    if (scan == 1) {
        crm_req_reply_error(req, 400, "json_too_deep", NULL,
                            "the JSON body nests deeper than %d levels", h->opts.json_max_depth);
        return false;
    }
    if (scan == 2) {
        crm_req_reply_error(req, 400, "json_too_large", NULL,
                            "the JSON body has more than %d members and elements",
                            h->opts.json_max_items);
        return false;
    }
    req->json = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!req->json) {
        crm_req_reply_error(req, 400, "invalid_json", NULL,
                            "invalid JSON at line %d, column %d: %s", err.line, err.column,
                            err.text);
        return false;
    }
    return true;
}

/* ---- The last call: run the handler ---- */

static enum MHD_Result run_handler(crm_req *req);

static enum MHD_Result req_finish(crm_req *req)
{
    upload_done(req);
    if (req->early_status) {
        crm_req_reply_error(req, req->early_status, req->early_code, NULL, "%s",
                            req->early_message);
        return queue_reply(req);
    }
    if (!(req->handler->flags & CRM_ROUTE_PUBLIC)) {
        if (!crm_http__authenticate(req)) return queue_reply(req);
    } else if (!crm_http__method_safe(req->method) && crm_http__cross_site(req) &&
               !(req->handler->flags & CRM_ROUTE_CROSS_SITE) &&
               !crm_req_header(req, "Authorization")) {
        /* Public writes (login): refuse other sites' pages (login CSRF), unless the route
           is meant to be posted to from them (a web form on the business's own site). */
        crm_req_reply_error(req, 403, "csrf", NULL, "cross-site request refused");
        return queue_reply(req);
    }
    if (!parse_body(req)) return queue_reply(req);
    return run_handler(req);
}

/* A parked request, woken: who is asking may have changed during the wait
 * (logged out, lost a role), so it is authenticated again. */
static enum MHD_Result req_rerun(crm_req *req)
{
    req->deferred = false;
    req->park_state = PARK_NONE;
    if (!(req->handler->flags & CRM_ROUTE_PUBLIC)) {
        crm_principal_free(req->who);
        req->who = NULL;
        req->ctx_ready = false;
        if (!crm_http__authenticate(req)) return queue_reply(req);
    }
    return run_handler(req);
}

static enum MHD_Result run_handler(crm_req *req)
{
    int rc;

    crm_error_clear();
    req->run_gen = atomic_load(&req->h->wake_gen);
    rc = req->handler->fn(req, req->handler->udata);
    if (rc < 0) {
        /* What the handler meant for its success (a Set-Cookie, say) must
         * not ride on its failure. */
        req->headers = NULL;
        crm_http__reply_error(req, rc);
    } else if (req->deferred) {
        return MHD_YES; /* suspended: the reply comes with crm_req_resume */
    } else if (!req->resp) {
        crm_log(CRM_LOG_ERROR, "http: handler of %s %s returned without a reply (bug)", req->method,
                req->route->pattern);
        crm_req_reply_error(req, 500, "internal", NULL, "internal error (request %s)", req->id);
    }
    return queue_reply(req);
}

/* ---- MHD callbacks ---- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
    crm_http *h = cls;
    crm_req *req = crm_calloc(1, sizeof *req);
    const union MHD_ConnectionInfo *ci;
    const char *q;

    req->h = h;
    req->mc = mc;
    req->t0_us = crm_mono_us();
    snprintf(req->id, sizeof req->id, "%s-%" PRIx64, h->id_prefix,
             atomic_fetch_add(&h->next_id, 1) + 1);
    q = uri ? strchr(uri, '?') : NULL;
    req->raw_path = uri ? req_strndup(req, uri, q ? (size_t)(q - uri) : strlen(uri)) : "";
    req->raw_query = q ? crm_req_strdup(req, q + 1) : NULL;
    if (req->raw_path[0] != '/') req->raw_path = "/";
    req->method = "-";
    ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, req->ip,
                      sizeof req->ip);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      req->ip, sizeof req->ip);
    }
    if (!req->ip[0]) snprintf(req->ip, sizeof req->ip, "unknown");
    atomic_fetch_add(&h->in_flight, 1);
    return req;
}

/* Path unescaping is ours (per segment, see parse_uri); MHD's would decode %2F. */
static size_t on_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *mc, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_size, void **con_cls)
{
    crm_req *req = *con_cls;
    (void)url;
    (void)version;

    if (!req) {
        /* Not reached: the URI callback makes every request; be safe anyway. */
        req = on_uri(cls, url, mc);
        *con_cls = req;
    }
    if (!req->started) {
        req->started = true;
        req->mc = mc;
        return req_begin(req, method);
    }
    if (req->deferred) {
        if (req->park_state == PARK_WOKEN) return req_rerun(req);
        return queue_reply(req); /* resumed: the reply is ready */
    }
    if (*upload_size > 0) return req_body(req, upload_data, upload_size);
    if (req->replied_early) return MHD_YES;
    return req_finish(req);
}

static void json_escape_into(crm_buf *b, const char *s, size_t max)
{
    size_t n = 0;
    for (; *s && n < max; s++, n++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            crm_buf_putc(b, '\\');
            crm_buf_putc(b, (char)c);
        } else if (c < 0x20 || c >= 0x7f) {
            crm_buf_printf(b, "\\u%04x", c);
        } else {
            crm_buf_putc(b, (char)c);
        }
    }
}

static void access_log(crm_req *req, int64_t us, enum MHD_RequestTerminationCode toe)
{
    struct timespec ts;
    struct tm tm;
    char when[40];
    crm_buf b = CRM_BUF_INIT;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    crm_buf_printf(&b, "{\"t\":\"%s.%03ldZ\",\"id\":\"%s\",\"method\":\"", when,
                   ts.tv_nsec / 1000000, req->id);
    json_escape_into(&b, req->method, 16);
    crm_buf_puts(&b, "\",\"path\":\"");
    json_escape_into(&b, req->raw_path, 512);
    crm_buf_printf(&b, "\",\"status\":%d,\"us\":%" PRId64 ",\"user\":", req->status, us);
    if (req->user_id)
        crm_buf_printf(&b, "%" PRId64, req->user_id);
    else
        crm_buf_puts(&b, "null");
    crm_buf_printf(&b, ",\"bytes\":%" PRIu64 ",\"ip\":\"%s\"",
                   req->bytes + atomic_load(&req->stream_bytes), req->ip);
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        const char *why = toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED   ? "timeout"
                          : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? "shutdown"
                          : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT    ? "client_abort"
                          : toe == MHD_REQUEST_TERMINATED_READ_ERROR      ? "read_error"
                                                                          : "error";
        crm_buf_printf(&b, ",\"end\":\"%s\"", why);
    }
    crm_buf_puts(&b, "}\n");
    fwrite(b.ptr, 1, b.len, stderr);
    crm_buf_free(&b);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    crm_http *h = cls;
    crm_req *req = *con_cls;
    int64_t us;
    (void)mc;

    if (!req) return;
    *con_cls = NULL;
    us = crm_mono_us() - req->t0_us;
    upload_done(req);
    crm_http__hist_observe(h, us);
    if (h->opts.access_log) access_log(req, us, toe);

    if (req->resp) MHD_destroy_response(req->resp);
    if (req->watch) {
        /* The next request's headers are owed from now (since first, then the flag). */
        atomic_store(&req->watch->since_us, crm_mono_us());
        atomic_store(&req->watch->in_request, false);
    }
    if (req->started) atomic_fetch_sub(&h->active, 1);
    json_decref(req->json);
    /* Completion runs on the request's pool thread, except at daemon stop. */
    if (req->who && toe != MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN) crm_http__principal_give(req);
    crm_principal_free(req->who);
    if (req->body) {
        free(req->body);
    }
    arena_free(req->arena);
    atomic_fetch_sub(&h->in_flight, 1);
    free(req);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    crm_http *h = cls;
    conn_watch *c;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        atomic_fetch_add(&h->connections, 1);
        if (!ci) return;
        c = crm_calloc(1, sizeof *c);
        c->fd = ci->connect_fd;
        atomic_init(&c->since_us, crm_mono_us());
        atomic_init(&c->in_request, false);
        pthread_mutex_lock(&h->watch_lock);
        c->next = h->conns;
        if (h->conns) h->conns->prev = c;
        h->conns = c;
        pthread_mutex_unlock(&h->watch_lock);
        *socket_ctx = c;
        return;
    }
    atomic_fetch_sub(&h->connections, 1);
    c = *socket_ctx;
    if (!c) return;
    /* Out of the table before MHD closes the fd: the watchdog never sees a reused one. */
    pthread_mutex_lock(&h->watch_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    pthread_mutex_unlock(&h->watch_lock);
    *socket_ctx = NULL;
    free(c);
}

/*
 * The global connection limit is ours: MHD's own splits the limit between
 * the pool threads and, once a thread's share is full, leaves new
 * connections waiting in the kernel's backlog, where a client hangs. Here an
 * extra connection is closed at once, which a client notices (H4). MHD's
 * limit stays as a backstop above ours.
 */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    crm_http *h = cls;
    static _Atomic int64_t last_warn;
    (void)addr;
    (void)addrlen;
    if (atomic_load(&h->connections) < h->opts.max_connections) return MHD_YES;
    int64_t now = crm_mono_us(), prev = atomic_load(&last_warn);
    if (now - prev > 10000000 && atomic_compare_exchange_strong(&last_warn, &prev, now))
        crm_log(CRM_LOG_WARN, "http: %d connections open, the limit: refusing new ones",
                h->opts.max_connections);
    return MHD_NO;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    crm_log(CRM_LOG_WARN, "http: %s", msg);
}

int crm_http_start(crm_http *h)
{
    struct sockaddr_storage ss;
    struct addrinfo hints, *ai = NULL;
    char portstr[8];
    /* Suspend/resume: a write's connection waits for its group commit without a thread. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;
    unsigned threads = h->opts.threads > 0 ? (unsigned)h->opts.threads : 0;
    int gai;

    if (h->daemon) return crm_error_set(CRM_EINVALID, NULL, "the server is running already");
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof portstr, "%d", h->port_wanted);
    if ((gai = getaddrinfo(h->host, portstr, &hints, &ai)) != 0 || !ai)
        return crm_error_set(CRM_EINVALID, "listen", "cannot resolve listen host \"%s\": %s",
                             h->host, gai_strerror(gai));
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;

    if (!threads) {
        /*
         * Two per core. Record writes do not hold a pool thread (they wait for
         * their group commit on a suspended connection), but plugin routes that
         * write in host->tx still fsync on theirs, and reads block on page
         * faults of the mmap'd database: one per core would leave a core idle
         * then. More than two only queue behind each other. Measured here (2
         * cores, 1M contacts, wrk -t2 -c64, 3 alternating runs): against 4 per
         * core, GET by id 37k/s against 42k/s (wrk, on the same cores, gets
         * more of them when the server has fewer threads), list p99 13 ms
         * against 20 ms, search p99 32 ms against 60 ms, creates at 16
         * connections 5.0k/s against 5.0k/s. --threads trades one for the other.
         */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? 2 * (unsigned)n : 2;
    }
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;

    h->daemon = MHD_start_daemon(
        flags, (uint16_t)h->port_wanted, on_accept, h, on_access, h,
        /* The logger first, or MHD logs the other options' complaints to stderr itself. */
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)h->opts.max_connections + 16 * threads, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)h->opts.max_per_ip, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)h->opts.timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, h->opts.conn_memory, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, h,
        MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
    if (!h->daemon)
        return crm_error_set(CRM_EINTERNAL, "listen", "cannot listen on %s (%s)", h->opts.listen,
                             errno ? strerror(errno) : "see the log");
    watch_start(h);
    return CRM_OK;
}

int crm_http_port(crm_http *h)
{
    const union MHD_DaemonInfo *info;
    if (!h->daemon) return 0;
    info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

void crm_http_stop(crm_http *h, int grace_s)
{
    int64_t deadline;
    MHD_socket fd;

    pthread_mutex_lock(&h->stop_lock);
    if (!h->daemon) {
        pthread_mutex_unlock(&h->stop_lock);
        return;
    }
    atomic_store(&h->stopping, true);
    /* Stop accepting: MHD hands the listening socket back; closing it makes
     * new connections fail at once instead of queueing in the backlog. */
    fd = MHD_quiesce_daemon(h->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    /* Parked long-polls answer now (crm_req_wait_over is true while stopping). */
    pthread_mutex_lock(&h->watch_lock);
    h->wake_pending = true;
    pthread_cond_signal(&h->watch_cv);
    pthread_mutex_unlock(&h->watch_lock);
    /*
     * Let the requests being served finish. A request still sending its
     * headers or body is not waited for: nothing says it will ever finish,
     * and a client dribbling its bytes must not hold the shutdown hostage (a
     * body is answered 503 at its next bytes; either is cut when the daemon
     * stops).
     */
    deadline = crm_mono_us() + (int64_t)(grace_s > 0 ? grace_s : 0) * 1000000;
    while (atomic_load(&h->active) - atomic_load(&h->uploading) > 0 && crm_mono_us() < deadline)
        usleep(10000);
    /* MHD refuses to stop with a connection suspended: the watchdog resumes all as it ends. */
    watch_stop(h);
    MHD_stop_daemon(h->daemon);
    h->daemon = NULL;
    if (crm_conn_exec(crm_store_conn(h->k->store), "PRAGMA wal_checkpoint(TRUNCATE)") < 0)
        crm_log(CRM_LOG_WARN, "http: WAL checkpoint at stop failed: %s", crm_error_last()->message);
    pthread_mutex_unlock(&h->stop_lock);
}

void crm_http_close(crm_http *h)
{
    if (!h) return;
    crm_http_stop(h, 0);
    crm_http__routes_free(h);
    free(h->host);
    pthread_mutex_destroy(&h->stop_lock);
    pthread_mutex_destroy(&h->watch_lock);
    pthread_cond_destroy(&h->watch_cv);
    free(h);
}
