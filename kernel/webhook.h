/*
 * webhook.h — webhooks: HTTP endpoints an admin registers to receive the
 * outbox's events as signed POSTs. webhook.c is the only file that includes
 * curl/curl.h (the kernel's outbound HTTP client).
 *
 * Delivery. One durable async bus consumer, "webhooks" (topic "*"), reads the
 * outbox in commit order. For each event it POSTs to every active webhook
 * whose topic patterns match:
 *
 *   POST <url>
 *   Content-Type: application/json
 *   User-Agent: crm/<version>
 *   X-CRM-Event: <topic>
 *   X-CRM-Delivery: <seq>
 *   X-CRM-Signature: sha256=<hex HMAC-SHA256(secret, body)>
 *
 *   {"seq","topic","type","id","at","record","old","changed","payload"}
 *
 * A 2xx answer is a success; any other status, a timeout (connect 5 s, total
 * 10 s) or a network error is a failure, and the consumer returns an error so
 * the bus retries the event with exponential backoff and dead-letters it after
 * CRM_BUS_MAX_ATTEMPTS (per-record order is the bus's). Every attempt is
 * recorded in core_webhook_delivery; on a retry, webhooks that already
 * answered 2xx for that event are skipped, so one failing endpoint never makes
 * the others receive an event twice (delivery stays at least once: a crash
 * between a POST and its bookkeeping resends it — receivers dedupe on
 * X-CRM-Delivery).
 *
 * Hidden fields (SECURITY A2). Webhooks run with system authority but have no
 * user to redact for, so their payloads leave out every field that is hidden
 * from ANY role (a core_field_perm row with access "hidden"), in record, old
 * and changed alike. Simple, and never leaks a field some user may not see.
 *
 * SSRF. Only admins create webhooks; URLs must be http(s) with a host and no
 * user-info, redirects are not followed, and env proxies are ignored.
 * Loopback and private addresses are allowed (local integrations and the
 * tests use them). A site that wants more sets the core_setting
 * "webhooks.allowed_hosts" to a comma-separated list of host names: only those
 * are then accepted, at creation and again at delivery.
 *
 * Secrets are stored as given (they are HMAC keys, needed in clear to sign),
 * shown once when generated, never listed and never logged.
 */
#ifndef CRM_WEBHOOK_H
#define CRM_WEBHOOK_H

#include "bus.h"

#define CRM_WEBHOOK_URL_MAX        2048
#define CRM_WEBHOOK_TOPICS_MAX     32
#define CRM_WEBHOOK_SECRET_MIN     16
#define CRM_WEBHOOK_SECRET_MAX     256
#define CRM_WEBHOOK_KEEP           1000 /* delivery rows kept per webhook */
#define CRM_WEBHOOK_CONSUMER       "webhooks"
#define CRM_WEBHOOK_SIGNATURE_SIZE 72 /* "sha256=" + 64 hex + NUL */

/*
 * Subscribe the "webhooks" consumer on k's bus (once per kernel; delivery
 * then happens on the bus's workers, or crm_bus_run_pending). Also
 * initialises libcurl once per process.
 * Errors: CRM_ECONFLICT (already started on this kernel), CRM_EINTERNAL.
 */
int crm_webhooks_start(crm_kernel *k);

/*
 * Create a webhook (ctx->who must be an admin; the caller checks). `topics`
 * is a JSON array of 1..32 bus topic patterns ("*", "crm.deal.*",
 * "crm.deal.updated"). `secret` NULL: 32 random bytes, hex. Writes an audit
 * row in the same transaction. *out: {"id","url","topics","created_at"} plus
 * "secret" when it was generated.
 * Errors: CRM_EINVALID naming "url", "topics" or "secret"; CRM_EBUSY.
 */
int crm_webhook_create(crm_ctx *ctx, const char *url, json_t *topics, const char *secret,
                       json_t **out);
/* Active webhooks, oldest first, without secrets: [{"id","url","topics","created_at",
 * "created_by"}]. */
int crm_webhook_list(crm_ctx *ctx, json_t **out);
/* Deactivate a webhook (its secret is wiped; deliveries are kept) and audit it.
 * Errors: CRM_ENOTFOUND. */
int crm_webhook_delete(crm_ctx *ctx, int64_t id);
/* The webhook's latest `limit` (1..1000) delivery attempts, newest first:
 * [{"id","seq","at","attempt","status","ok","error"}]. Errors: CRM_ENOTFOUND. */
int crm_webhook_deliveries(crm_ctx *ctx, int64_t id, int limit, json_t **out);

/* ---- Pieces, exposed for the tests ---- */

/* Check a webhook URL; CRM_EINVALID naming "url" with the reason. */
int crm_webhook_url_check(crm_kernel *k, const char *url);
/* Whether a bus topic pattern ("*", "a.b.*", "a.b.c") matches `topic`. */
bool crm_webhook_topic_match(const char *pattern, const char *topic);
/* "sha256=<hex HMAC-SHA256(secret, body)>" into out. */
void crm_webhook_sign(const char *secret, const char *body, size_t len,
                      char out[CRM_WEBHOOK_SIGNATURE_SIZE]);
/* The body sent for `ev` (new reference): hidden-for-any-role fields removed. */
int crm_webhook_payload(crm_kernel *k, const crm_event *ev, json_t **out);

#endif
