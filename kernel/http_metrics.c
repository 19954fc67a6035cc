/*
 * http_metrics.c — the server's own endpoints: GET /metrics (Prometheus
 * text; admins only, see http.c) and the health check. Counters are atomics
 * kept per route and method (http_int.h), so counting costs no lock.
 */
#include "http_int.h"

#include <inttypes.h>
#include <stdio.h>

/* Prometheus' default buckets, in microseconds, with three below 5 ms where most
 * of our requests fall. */
static const int64_t bucket_us[NBUCKETS] = {500,     1000,    2500,    5000,    10000,
                                            25000,   50000,   100000,  250000,  500000,
                                            1000000, 2500000, 5000000, 10000000};

void crm_http__stats_count(handler *hd, int status)
{
    for (int i = 0; i < STATUS_SLOTS; i++) {
        int s = atomic_load(&hd->stats[i].status);
        if (s == 0) {
            int zero = 0;
            if (atomic_compare_exchange_strong(&hd->stats[i].status, &zero, status) ||
                zero == status) {
                atomic_fetch_add(&hd->stats[i].count, 1);
                return;
            }
            continue;
        }
        if (s == status) {
            atomic_fetch_add(&hd->stats[i].count, 1);
            return;
        }
    }
    /* More distinct statuses than slots: count under the last one. */
    atomic_fetch_add(&hd->stats[STATUS_SLOTS - 1].count, 1);
}

void crm_http__hist_observe(crm_http *h, int64_t us)
{
    int i = 0;
    while (i < NBUCKETS && us > bucket_us[i])
        i++;
    atomic_fetch_add(&h->hist[i], 1);
    atomic_fetch_add(&h->hist_sum_us, (uint64_t)(us < 0 ? 0 : us));
    atomic_fetch_add(&h->hist_count, 1);
}

static void put_label(crm_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') crm_buf_putc(b, '\\');
        if (*s == '\n') {
            crm_buf_puts(b, "\\n");
            continue;
        }
        crm_buf_putc(b, *s);
    }
}

static void metrics_handler_lines(crm_buf *b, const char *pattern, handler *hd)
{
    for (int i = 0; i < STATUS_SLOTS; i++) {
        int s = atomic_load(&hd->stats[i].status);
        uint64_t c = atomic_load(&hd->stats[i].count);
        if (!s || !c) continue;
        crm_buf_puts(b, "crm_http_requests_total{route=\"");
        put_label(b, pattern);
        crm_buf_puts(b, "\",method=\"");
        put_label(b, hd->method);
        crm_buf_printf(b, "\",status=\"%d\"} %" PRIu64 "\n", s, c);
    }
}

int crm_http__metrics_route(crm_req *req, void *udata)
{
    crm_http *h = udata;
    crm_conn *conn = crm_store_conn(h->k->store);
    crm_buf b = CRM_BUF_INIT;
    int64_t pages = 0, page_size = 0, lag = 0;
    uint64_t cum = 0;
    int rc;

    crm_buf_puts(&b, "# HELP crm_http_requests_total HTTP requests by route pattern, method and "
                     "status.\n# TYPE crm_http_requests_total counter\n");
    for (int i = 0; i < h->nroutes; i++)
        for (int j = 0; j < h->routes[i]->nhandlers; j++)
            metrics_handler_lines(&b, h->routes[i]->pattern, h->routes[i]->handlers[j]);
    metrics_handler_lines(&b, "unmatched", &h->unmatched);

    crm_buf_puts(&b, "# HELP crm_http_request_duration_seconds Time from the first byte of a "
                     "request to its last response byte.\n"
                     "# TYPE crm_http_request_duration_seconds histogram\n");
    for (int i = 0; i <= NBUCKETS; i++) {
        cum += atomic_load(&h->hist[i]);
        if (i < NBUCKETS)
            crm_buf_printf(&b, "crm_http_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                           (double)bucket_us[i] / 1e6, cum);
        else
            crm_buf_printf(
                &b, "crm_http_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
    }
    crm_buf_printf(&b, "crm_http_request_duration_seconds_sum %.6f\n",
                   (double)atomic_load(&h->hist_sum_us) / 1e6);
    crm_buf_printf(&b, "crm_http_request_duration_seconds_count %" PRIu64 "\n",
                   atomic_load(&h->hist_count));

    crm_buf_printf(&b,
                   "# HELP crm_http_connections Open client connections.\n"
                   "# TYPE crm_http_connections gauge\ncrm_http_connections %d\n",
                   atomic_load(&h->connections));
    crm_buf_printf(&b,
                   "# HELP crm_http_requests_in_flight Requests being received or served.\n"
                   "# TYPE crm_http_requests_in_flight gauge\n"
                   "crm_http_requests_in_flight %d\n",
                   atomic_load(&h->in_flight));
    crm_buf_printf(&b,
                   "# HELP crm_http_requests_parked Long-polls waiting (GET /events?wait=).\n"
                   "# TYPE crm_http_requests_parked gauge\ncrm_http_requests_parked %d\n"
                   "# HELP crm_http_header_timeouts_total Connections closed for not sending a "
                   "request's headers in time (slow or idle).\n"
                   "# TYPE crm_http_header_timeouts_total counter\n"
                   "crm_http_header_timeouts_total %" PRIu64 "\n",
                   atomic_load(&h->parked_count), atomic_load(&h->header_cuts));

    if ((rc = crm_conn_query_int(conn, "PRAGMA page_count", &pages, 0)) < 0 ||
        (rc = crm_conn_query_int(conn, "PRAGMA page_size", &page_size, 0)) < 0 ||
        (rc = crm_conn_query_int(
             conn,
             "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM core_consumer) THEN 0 ELSE "
             "max(0, COALESCE((SELECT max(seq) FROM core_outbox), 0) - "
             "(SELECT min(cursor) FROM core_consumer)) END",
             &lag, 0)) < 0) {
        crm_buf_free(&b);
        return rc;
    }
    crm_buf_printf(&b,
                   "# HELP crm_db_size_bytes Size of the database file.\n"
                   "# TYPE crm_db_size_bytes gauge\ncrm_db_size_bytes %" PRId64 "\n",
                   pages * page_size);
    crm_buf_printf(&b,
                   "# HELP crm_outbox_lag_events Events committed but not yet consumed by "
                   "the slowest async consumer.\n"
                   "# TYPE crm_outbox_lag_events gauge\ncrm_outbox_lag_events %" PRId64 "\n",
                   lag);
    rc = crm_req_reply_data(req, 200, "text/plain; version=0.0.4; charset=utf-8", crm_buf_str(&b),
                            b.len);
    crm_buf_free(&b);
    return rc;
}

int crm_http__health_route(crm_req *req, void *udata)
{
    crm_http *h = udata;
    int64_t one = 0;
    if (crm_conn_query_int(crm_store_conn(h->k->store), "SELECT 1", &one, 0) < 0 || one != 1) {
        crm_log(CRM_LOG_ERROR, "http: health check failed: %s", crm_error_last()->message);
        return crm_req_reply_error(req, 503, "unhealthy", NULL, "the database does not answer");
    }
    return crm_req_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}
