/*
 * webhook.c — webhooks: their registry (core_webhook), the "webhooks" async
 * consumer that POSTs outbox events to them, and the outbound HTTP client.
 * The only file that includes curl/curl.h.
 *
 * Why one consumer for all webhooks rather than one per webhook: consumers
 * are subscribed at start and named for ever, webhooks come and go at run
 * time. The price is that one failing endpoint makes the whole event a retry;
 * core_webhook_delivery remembers which endpoints already took it, so the
 * retry only goes to those that did not.
 *
 * Every delivery uses a fresh easy handle: webhooks are not a hot path, and a
 * handle cached per thread would outlive the bus's worker threads in ways the
 * leak checkers dislike. No transaction is ever open across a POST.
 */
#include "webhook.h"

#include "cli.h" /* CRM_VERSION */
#include "perm.h"
#include "record.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>

#define CONNECT_TIMEOUT_MS 5000
#define TOTAL_TIMEOUT_MS   10000
#define RESPONSE_MAX       (64 * 1024) /* response bytes read before we stop listening */
#define ERROR_MAX          300

/* ---- Process-wide initialisation ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void init_libs(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) init_rc = -1;
    if (sodium_init() < 0) init_rc = -1;
}

static int ensure_init(void)
{
    pthread_once(&init_once, init_libs);
    if (init_rc)
        return crm_error_set(CRM_EINTERNAL, NULL,
                             "webhooks: libcurl or libsodium failed to "
                             "initialise");
    return CRM_OK;
}

/* ---- Small helpers ---- */

static int exec_tx(crm_conn *conn, crm_stmt *st)
{
    int rc = crm_stmt_step(st);
    crm_stmt_done(st);
    (void)conn;
    return rc < 0 ? rc : CRM_OK;
}

static json_t *text_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* ---- Topic patterns (the bus's syntax) ---- */

bool crm_webhook_topic_match(const char *pattern, const char *topic)
{
    size_t n = strlen(pattern);
    if (n == 1 && pattern[0] == '*') return true;
    if (n >= 2 && pattern[n - 1] == '*') /* "a.b.*": "a.b." then at least one more character */
        return strncmp(pattern, topic, n - 1) == 0 && topic[n - 1] != '\0';
    return strcmp(pattern, topic) == 0;
}

static bool pattern_valid(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 128) return false;
    if (strcmp(p, "*") == 0) return true;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                  (c == '*' && i == n - 1);
        if (!ok) return false;
        if (c == '.' && (i == 0 || p[i - 1] == '.')) return false;
    }
    if (p[n - 1] == '*') return n >= 3 && p[n - 2] == '.';
    return p[n - 1] != '.';
}

static bool topics_match(json_t *topics, const char *topic)
{
    size_t i;
    json_t *v;
    json_array_foreach(topics, i, v)
    {
        if (json_is_string(v) && crm_webhook_topic_match(json_string_value(v), topic)) return true;
    }
    return false;
}

static int topics_check(json_t *topics)
{
    if (!json_is_array(topics) || json_array_size(topics) == 0 ||
        json_array_size(topics) > CRM_WEBHOOK_TOPICS_MAX)
        return crm_error_set(CRM_EINVALID, "topics",
                             "\"topics\" must be an array of 1 to %d topic patterns, like "
                             "[\"crm.deal.*\"] or [\"*\"]",
                             CRM_WEBHOOK_TOPICS_MAX);
    size_t i;
    json_t *v;
    json_array_foreach(topics, i, v)
    {
        if (!json_is_string(v) || !pattern_valid(json_string_value(v)))
            return crm_error_set(CRM_EINVALID, "topics",
                                 "\"topics\"[%zu]: not a topic pattern (use \"*\", "
                                 "\"owner.type.*\" or an exact topic of a-z, 0-9, _ and dots)",
                                 i);
    }
    return CRM_OK;
}

/* ---- URLs ---- */

/* Whether `host` is in the comma-separated allowlist (case-insensitive). */
static bool host_listed(const char *list, const char *host)
{
    size_t hn = strlen(host);
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *end = e;
        while (end > p && end[-1] == ' ')
            end--;
        if ((size_t)(end - p) == hn && hn && strncasecmp(p, host, hn) == 0) return true;
        p = e;
    }
    return false;
}

int crm_webhook_url_check(crm_kernel *k, const char *url)
{
    int rc = ensure_init();
    if (rc) return rc;
    size_t n = url ? strlen(url) : 0;
    if (n == 0 || n > CRM_WEBHOOK_URL_MAX)
        return crm_error_set(CRM_EINVALID, "url",
                             "\"url\" must be an http(s) URL of at most %d "
                             "characters",
                             CRM_WEBHOOK_URL_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= ' ' || (unsigned char)url[i] >= 0x7f)
            return crm_error_set(CRM_EINVALID, "url",
                                 "\"url\": spaces, control and non-ASCII "
                                 "characters must be percent-encoded");
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return crm_error_set(CRM_EINVALID, "url", "\"url\" must start with http:// or https://");
    /* libcurl forgives "http:///x" (taking "x" as the host): we do not */
    const char *authority = url + (url[4] == ':' ? 7 : 8);
    if (strchr("/?#@", *authority))
        return crm_error_set(CRM_EINVALID, "url", "\"url\" has no host");

    CURLU *u = curl_url();
    char *host = NULL, *user = NULL, *password = NULL;
    if (!u) return crm_error_set(CRM_EINTERNAL, NULL, "webhooks: out of memory");
    rc = CRM_OK;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
        rc = crm_error_set(CRM_EINVALID, "url", "\"url\" is not a valid http(s) URL with a host");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
        rc = crm_error_set(CRM_EINVALID, "url",
                           "\"url\" must not carry credentials (user@host): authenticate the "
                           "request with the signature instead");
        goto done;
    }
    if (k) {
        char *allow = crm_setting_get(crm_store_conn(k->store), "webhooks.allowed_hosts");
        /* brackets of IPv6 literals are part of what an admin would write */
        if (allow && !host_listed(allow, host))
            rc = crm_error_set(CRM_EINVALID, "url",
                               "\"url\": host %s is not in the setting webhooks.allowed_hosts",
                               host);
        free(allow);
    }
done:
    curl_free(host);
    curl_free(user);
    curl_free(password);
    curl_url_cleanup(u);
    return rc;
}

/* ---- Signature ---- */

void crm_webhook_sign(const char *secret, const char *body, size_t len,
                      char out[CRM_WEBHOOK_SIGNATURE_SIZE])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    (void)ensure_init();
    /* the _init form takes a key of any length (HMAC's own rules), as receivers expect */
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
    memcpy(out, "sha256=", 7);
    crm_hex(mac, sizeof mac, out + 7);
}

/* ---- Registry ---- */

static int audit(crm_conn *conn, crm_ctx *ctx, const char *action, int64_t id, json_t *detail)
{
    crm_stmt *st = NULL;
    char at[21], target[32];
    char *text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
    crm_time_format(crm_now(), at);
    snprintf(target, sizeof target, "webhook:%lld", (long long)id);
    int rc = crm_stmt_prepare(conn, &st,
                              "INSERT INTO core_audit(at, user_id, action, target, detail) "
                              "VALUES (?1, ?2, ?3, ?4, ?5)");
    if (rc == CRM_OK) {
        int64_t user = crm_principal_user(ctx->who);
        crm_stmt_bind_text(st, 1, at, -1);
        if (user)
            crm_stmt_bind_int(st, 2, user);
        else
            crm_stmt_bind_null(st, 2);
        crm_stmt_bind_text(st, 3, action, -1);
        crm_stmt_bind_text(st, 4, target, -1);
        crm_stmt_bind_text(st, 5, text ? text : "{}", -1);
        rc = exec_tx(conn, st);
    }
    free(text);
    return rc;
}

int crm_webhook_create(crm_ctx *ctx, const char *url, json_t *topics, const char *secret,
                       json_t **out)
{
    int rc = crm_webhook_url_check(ctx->k, url);
    if (rc) return rc;
    if ((rc = topics_check(topics))) return rc;
    char generated[65];
    if (secret) {
        size_t n = strlen(secret);
        if (n < CRM_WEBHOOK_SECRET_MIN || n > CRM_WEBHOOK_SECRET_MAX || !crm_utf8_valid(secret, n))
            return crm_error_set(CRM_EINVALID, "secret",
                                 "\"secret\" must be %d to %d characters (or leave it out to "
                                 "have one generated)",
                                 CRM_WEBHOOK_SECRET_MIN, CRM_WEBHOOK_SECRET_MAX);
    } else {
        unsigned char raw[32];
        randombytes_buf(raw, sizeof raw);
        crm_hex(raw, sizeof raw, generated);
        sodium_memzero(raw, sizeof raw);
    }
    const char *key = secret ? secret : generated;

    char at[21];
    crm_time_format(crm_now(), at);
    char *topics_text = json_dumps(topics, JSON_COMPACT);
    crm_conn *conn = crm_ctx_conn(ctx);
    crm_stmt *st = NULL;
    int64_t id = 0, user = crm_principal_user(ctx->who);
    if ((rc = crm_tx_begin(conn))) goto fail;
    rc = crm_stmt_prepare(conn, &st,
                          "INSERT INTO core_webhook(url, secret, topics, created_at, created_by) "
                          "VALUES (?1, ?2, ?3, ?4, ?5)");
    if (rc == CRM_OK) {
        crm_stmt_bind_text(st, 1, url, -1);
        crm_stmt_bind_text(st, 2, key, -1);
        crm_stmt_bind_text(st, 3, topics_text, -1);
        crm_stmt_bind_text(st, 4, at, -1);
        if (user)
            crm_stmt_bind_int(st, 5, user);
        else
            crm_stmt_bind_null(st, 5);
        rc = exec_tx(conn, st);
    }
    if (rc == CRM_OK) {
        id = crm_conn_last_rowid(conn);
        json_t *detail = json_pack("{s:s, s:O}", "url", url, "topics", topics);
        rc = audit(conn, ctx, "webhook.create", id, detail);
        json_decref(detail);
    }
    if (rc) {
        crm_tx_rollback(conn);
        goto fail;
    }
    if ((rc = crm_tx_commit(conn))) goto fail;
    free(topics_text);

    json_t *o = json_pack("{s:I, s:s, s:O, s:s}", "id", (json_int_t)id, "url", url, "topics",
                          topics, "created_at", at);
    if (!secret) json_object_set_new(o, "secret", json_string(generated));
    sodium_memzero(generated, sizeof generated);
    *out = o;
    return CRM_OK;
fail:
    free(topics_text);
    sodium_memzero(generated, sizeof generated);
    return rc;
}

int crm_webhook_list(crm_ctx *ctx, json_t **out)
{
    crm_stmt *st = NULL;
    int rc = crm_stmt_prepare(crm_ctx_conn(ctx), &st,
                              "SELECT id, url, topics, created_at, created_by FROM core_webhook "
                              "WHERE active = 1 ORDER BY id");
    if (rc) return rc;
    json_t *arr = json_array();
    while ((rc = crm_stmt_step(st)) > 0) {
        const char *topics = crm_stmt_column_text(st, 2);
        json_t *t = topics ? json_loads(topics, 0, NULL) : NULL;
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(crm_stmt_column_int(st, 0)));
        json_object_set_new(o, "url", text_or_null(crm_stmt_column_text(st, 1)));
        json_object_set_new(o, "topics", t ? t : json_array());
        json_object_set_new(o, "created_at", text_or_null(crm_stmt_column_text(st, 3)));
        json_object_set_new(o, "created_by",
                            crm_stmt_column_type(st, 4) == CRM_COL_NULL
                                ? json_null()
                                : json_integer(crm_stmt_column_int(st, 4)));
        json_array_append_new(arr, o);
    }
    crm_stmt_done(st);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return CRM_OK;
}

static int not_found(int64_t id)
{
    return crm_error_set(CRM_ENOTFOUND, NULL, "no webhook %lld", (long long)id);
}

int crm_webhook_delete(crm_ctx *ctx, int64_t id)
{
    crm_conn *conn = crm_ctx_conn(ctx);
    crm_stmt *st = NULL;
    int rc = crm_tx_begin(conn);
    if (rc) return rc;
    rc = crm_stmt_prepare(conn, &st,
                          "UPDATE core_webhook SET active = 0, secret = '' "
                          "WHERE id = ?1 AND active = 1");
    if (rc == CRM_OK) {
        crm_stmt_bind_int(st, 1, id);
        rc = exec_tx(conn, st);
    }
    if (rc == CRM_OK && crm_conn_changes(conn) == 0) rc = not_found(id);
    if (rc == CRM_OK) {
        json_t *detail = json_object();
        rc = audit(conn, ctx, "webhook.delete", id, detail);
        json_decref(detail);
    }
    if (rc) {
        crm_tx_rollback(conn);
        return rc;
    }
    return crm_tx_commit(conn);
}

int crm_webhook_deliveries(crm_ctx *ctx, int64_t id, int limit, json_t **out)
{
    crm_conn *conn = crm_ctx_conn(ctx);
    crm_stmt *st = NULL;
    int64_t exists = 0;
    if (limit < 1) limit = 1;
    if (limit > CRM_WEBHOOK_KEEP) limit = CRM_WEBHOOK_KEEP;
    int rc = crm_stmt_prepare(conn, &st, "SELECT 1 FROM core_webhook WHERE id = ?1 AND active = 1");
    if (rc) return rc;
    crm_stmt_bind_int(st, 1, id);
    rc = crm_stmt_step(st);
    exists = rc > 0;
    crm_stmt_done(st);
    if (rc < 0) return rc;
    if (!exists) return not_found(id);

    rc = crm_stmt_prepare(conn, &st,
                          "SELECT id, seq, at, attempt, status, error FROM core_webhook_delivery "
                          "WHERE webhook_id = ?1 ORDER BY id DESC LIMIT ?2");
    if (rc) return rc;
    crm_stmt_bind_int(st, 1, id);
    crm_stmt_bind_int(st, 2, limit);
    json_t *arr = json_array();
    while ((rc = crm_stmt_step(st)) > 0) {
        bool has_status = crm_stmt_column_type(st, 4) != CRM_COL_NULL;
        int64_t status = crm_stmt_column_int(st, 4);
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(crm_stmt_column_int(st, 0)));
        json_object_set_new(o, "seq", json_integer(crm_stmt_column_int(st, 1)));
        json_object_set_new(o, "at", text_or_null(crm_stmt_column_text(st, 2)));
        json_object_set_new(o, "attempt", json_integer(crm_stmt_column_int(st, 3)));
        json_object_set_new(o, "status", has_status ? json_integer(status) : json_null());
        json_object_set_new(o, "ok", json_boolean(has_status && status >= 200 && status < 300));
        json_object_set_new(o, "error", text_or_null(crm_stmt_column_text(st, 5)));
        json_array_append_new(arr, o);
    }
    crm_stmt_done(st);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return CRM_OK;
}

/* ---- Payload ---- */

/* Names of `type`'s fields hidden from any role, as a JSON object used as a set. */
static int hidden_fields(crm_conn *conn, const char *type, json_t **out)
{
    crm_stmt *st = NULL;
    int rc = crm_stmt_prepare(conn, &st,
                              "SELECT DISTINCT field FROM core_field_perm "
                              "WHERE type = ?1 AND access = 0");
    if (rc) return rc;
    crm_stmt_bind_text(st, 1, type, -1);
    json_t *set = json_object();
    while ((rc = crm_stmt_step(st)) > 0)
        json_object_set_new(set, crm_stmt_column_text(st, 0), json_true());
    crm_stmt_done(st);
    if (rc < 0) {
        json_decref(set);
        return rc;
    }
    *out = set;
    return CRM_OK;
}

/* A shallow copy of `record` without the keys in `hidden`. */
static json_t *without(json_t *record, json_t *hidden)
{
    if (!json_is_object(record)) return json_null();
    json_t *r = json_copy(record);
    const char *key;
    json_t *v;
    json_object_foreach(hidden, key, v)
    {
        json_object_del(r, key);
    }
    return r;
}

static int event_at(crm_conn *conn, int64_t seq, char at[21])
{
    crm_stmt *st = NULL;
    at[0] = '\0';
    int rc = crm_stmt_prepare(conn, &st, "SELECT at FROM core_outbox WHERE seq = ?1");
    if (rc) return rc;
    crm_stmt_bind_int(st, 1, seq);
    rc = crm_stmt_step(st);
    if (rc > 0 && crm_stmt_column_text(st, 0)) snprintf(at, 21, "%s", crm_stmt_column_text(st, 0));
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

int crm_webhook_payload(crm_kernel *k, const crm_event *ev, json_t **out)
{
    crm_conn *conn = crm_store_conn(k->store);
    char at[21];
    int rc = event_at(conn, ev->seq, at);
    if (rc) return rc;
    if (!at[0]) crm_time_format(crm_now(), at);

    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer(ev->seq));
    json_object_set_new(o, "topic", json_string(ev->topic));
    json_object_set_new(o, "type", text_or_null(ev->type));
    json_object_set_new(o, "id", ev->type ? json_integer(ev->id) : json_null());
    json_object_set_new(o, "at", json_string(at));
    json_object_set_new(o, "user", ev->user_id ? json_integer(ev->user_id) : json_null());
    json_object_set_new(o, "via", text_or_null(ev->via));
    if (ev->type) {
        json_t *hidden = NULL;
        if ((rc = hidden_fields(conn, ev->type, &hidden))) {
            json_decref(o);
            return rc;
        }
        json_object_set_new(o, "record", without(ev->record, hidden));
        json_object_set_new(o, "old", without(ev->old, hidden));
        if (json_is_array(ev->changed)) {
            json_t *changed = json_array();
            size_t i;
            json_t *v;
            json_array_foreach(ev->changed, i, v)
            {
                if (json_is_string(v) && !json_object_get(hidden, json_string_value(v)))
                    json_array_append(changed, v);
            }
            json_object_set_new(o, "changed", changed);
        } else {
            json_object_set_new(o, "changed", json_null());
        }
        json_object_set_new(o, "payload", json_null());
        json_decref(hidden);
    } else {
        /* custom events: the payload a plugin or rule emitted, as it emitted it */
        json_object_set_new(o, "record", json_null());
        json_object_set_new(o, "old", json_null());
        json_object_set_new(o, "changed", json_null());
        json_object_set(o, "payload", ev->payload ? ev->payload : json_null());
    }
    *out = o;
    return CRM_OK;
}

/* ---- Outbound HTTP ---- */

struct sink {
    size_t n;
    bool over;
};

/* Discard the response body; stop listening after RESPONSE_MAX bytes. */
static size_t sink_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct sink *s = arg;
    size_t len = size * nmemb;
    (void)data;
    s->n += len;
    if (s->n > RESPONSE_MAX) {
        s->over = true;
        return 0; /* aborts the transfer; the status line was already read */
    }
    return len;
}

/*
 * POST body to url. *status: the HTTP status (0 when none came back). Returns
 * true on a 2xx; else *err says why (malloc'd).
 */
static bool http_post(const char *url, const char *topic, int64_t seq, const char *signature,
                      const char *body, size_t len, long *status, char **err)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    char h_event[200], h_delivery[64], h_sig[CRM_WEBHOOK_SIGNATURE_SIZE + 32];
    struct curl_slist *headers = NULL;
    struct sink sink = {0, false};
    *status = 0;
    *err = NULL;
    CURL *c = curl_easy_init();
    if (!c) {
        *err = crm_strdup("cannot create an HTTP client (out of memory)");
        return false;
    }
    snprintf(h_event, sizeof h_event, "X-CRM-Event: %s", topic);
    snprintf(h_delivery, sizeof h_delivery, "X-CRM-Delivery: %lld", (long long)seq);
    snprintf(h_sig, sizeof h_sig, "X-CRM-Signature: %s", signature);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, h_event);
    headers = curl_slist_append(headers, h_delivery);
    headers = curl_slist_append(headers, h_sig);
    headers = curl_slist_append(headers, "Expect:"); /* no 100-continue round trip */

    curl_easy_setopt(c, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");    /* ignore http_proxy & co from the environment */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)TOTAL_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "crm/" CRM_VERSION);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);

    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);

    bool answered = cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && sink.over);
    if (answered && *status >= 200 && *status < 300) return true;
    if (answered)
        *err = crm_sprintf("HTTP %ld", *status);
    else
        *err = crm_sprintf("%.*s", ERROR_MAX, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    return false;
}

/* ---- The consumer ---- */

struct hook {
    int64_t id;
    char *url;
    char *secret;
};

/* Active webhooks whose patterns match `topic`. */
static int matching_hooks(crm_conn *conn, const char *topic, struct hook **out, int *n)
{
    crm_stmt *st = NULL;
    int rc = crm_stmt_prepare(conn, &st,
                              "SELECT id, url, secret, topics FROM core_webhook "
                              "WHERE active = 1 ORDER BY id");
    *out = NULL;
    *n = 0;
    if (rc) return rc;
    int cap = 0;
    while ((rc = crm_stmt_step(st)) > 0) {
        const char *text = crm_stmt_column_text(st, 3);
        json_t *topics = text ? json_loads(text, 0, NULL) : NULL;
        bool match = topics && topics_match(topics, topic);
        json_decref(topics);
        if (!match) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            *out = crm_realloc(*out, (size_t)cap * sizeof **out);
        }
        (*out)[*n].id = crm_stmt_column_int(st, 0);
        (*out)[*n].url = crm_strdup(crm_stmt_column_text(st, 1));
        (*out)[*n].secret = crm_strdup(crm_stmt_column_text(st, 2));
        (*n)++;
    }
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

static void hooks_free(struct hook *h, int n)
{
    for (int i = 0; i < n; i++) {
        free(h[i].url);
        sodium_memzero(h[i].secret, strlen(h[i].secret));
        free(h[i].secret);
    }
    free(h);
}

/* Whether webhook `id` already answered 2xx for event `seq`. */
static int already_delivered(crm_conn *conn, int64_t id, int64_t seq, bool *yes)
{
    crm_stmt *st = NULL;
    int rc = crm_stmt_prepare(conn, &st,
                              "SELECT 1 FROM core_webhook_delivery WHERE webhook_id = ?1 "
                              "AND seq = ?2 AND status BETWEEN 200 AND 299 LIMIT 1");
    if (rc) return rc;
    crm_stmt_bind_int(st, 1, id);
    crm_stmt_bind_int(st, 2, seq);
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    if (rc < 0) return rc;
    *yes = rc > 0;
    return CRM_OK;
}

/* Record one attempt; keep the latest CRM_WEBHOOK_KEEP rows of the webhook. */
static int record_attempt(crm_conn *conn, int64_t id, int64_t seq, int attempt, long status,
                          const char *err)
{
    crm_stmt *st = NULL;
    char at[21];
    crm_time_format(crm_now(), at);
    int rc = crm_tx_begin(conn);
    if (rc) return rc;
    rc = crm_stmt_prepare(conn, &st,
                          "INSERT INTO core_webhook_delivery(webhook_id, seq, at, status, attempt, "
                          "error) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (rc == CRM_OK) {
        crm_stmt_bind_int(st, 1, id);
        crm_stmt_bind_int(st, 2, seq);
        crm_stmt_bind_text(st, 3, at, -1);
        if (status)
            crm_stmt_bind_int(st, 4, status);
        else
            crm_stmt_bind_null(st, 4);
        crm_stmt_bind_int(st, 5, attempt);
        if (err)
            crm_stmt_bind_text(st, 6, err, -1);
        else
            crm_stmt_bind_null(st, 6);
        rc = exec_tx(conn, st);
    }
    /* pruning every 64th row keeps it cheap; the bound is approximate by design */
    if (rc == CRM_OK && (crm_conn_last_rowid(conn) & 63) == 0) {
        rc = crm_stmt_prepare(conn, &st,
                              "DELETE FROM core_webhook_delivery WHERE webhook_id = ?1 AND id < "
                              "(SELECT id FROM core_webhook_delivery WHERE webhook_id = ?1 "
                              "ORDER BY id DESC LIMIT 1 OFFSET ?2)");
        if (rc == CRM_OK) {
            crm_stmt_bind_int(st, 1, id);
            crm_stmt_bind_int(st, 2, CRM_WEBHOOK_KEEP - 1);
            rc = exec_tx(conn, st);
        }
    }
    if (rc) {
        crm_tx_rollback(conn);
        return rc;
    }
    return crm_tx_commit(conn);
}

static int on_event(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    crm_conn *conn = crm_ctx_conn(ctx);
    struct hook *hooks = NULL;
    int n = 0;
    int rc = matching_hooks(conn, ev->topic, &hooks, &n);
    if (rc || n == 0) {
        hooks_free(hooks, n);
        return rc;
    }
    json_t *doc = NULL;
    if ((rc = crm_webhook_payload(ctx->k, ev, &doc))) {
        hooks_free(hooks, n);
        return rc;
    }
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!body) {
        hooks_free(hooks, n);
        return crm_error_set(CRM_EINTERNAL, NULL, "webhooks: event %lld cannot be encoded",
                             (long long)ev->seq);
    }
    size_t len = strlen(body);
    char *allow = crm_setting_get(conn, "webhooks.allowed_hosts");
    int failed = 0;
    crm_buf why = CRM_BUF_INIT;

    for (int i = 0; i < n && rc == CRM_OK; i++) {
        bool done = false;
        if ((rc = already_delivered(conn, hooks[i].id, ev->seq, &done))) break;
        if (done) continue;
        long status = 0;
        char *err = NULL;
        bool ok = false;
        if (allow && crm_webhook_url_check(ctx->k, hooks[i].url) != CRM_OK) {
            err = crm_strdup(crm_error_last()->message); /* allowlist changed since creation */
        } else {
            char sig[CRM_WEBHOOK_SIGNATURE_SIZE];
            crm_webhook_sign(hooks[i].secret, body, len, sig);
            ok = http_post(hooks[i].url, ev->topic, ev->seq, sig, body, len, &status, &err);
        }
        rc = record_attempt(conn, hooks[i].id, ev->seq, ev->attempt, status, err);
        if (!ok) {
            failed++;
            if (why.len) crm_buf_puts(&why, "; ");
            crm_buf_printf(&why, "webhook %lld: %s", (long long)hooks[i].id, err ? err : "failed");
        }
        free(err);
    }
    free(allow);
    free(body);
    hooks_free(hooks, n);
    if (rc == CRM_OK && failed)
        rc = crm_error_set(CRM_EINTERNAL, NULL, "%d of %d webhooks failed for event %lld: %s",
                           failed, n, (long long)ev->seq, crm_buf_str(&why));
    crm_buf_free(&why);
    return rc;
}

int crm_webhooks_start(crm_kernel *k)
{
    int rc = ensure_init();
    if (rc) return rc;
    return crm_bus_subscribe(k->bus, "*", CRM_PHASE_ASYNC, 0, CRM_WEBHOOK_CONSUMER, on_event, NULL);
}
