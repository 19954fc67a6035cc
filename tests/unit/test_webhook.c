/*
 * test_webhook.c — kernel/webhook.c: the HMAC signature, topic patterns, URL
 * checks, the registry (create / list / delete / audit), payload redaction of
 * fields hidden from any role, and delivery against a tiny HTTP receiver on
 * 127.0.0.1 run by the test: headers and signature, retries with backoff,
 * dead letters, and one failing webhook not making another receive twice.
 */

#include "kfix.h"

#include "../../kernel/cli.h"
#include "../../kernel/webhook.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>

#define T0 1700000000

/* ---- A tiny HTTP receiver: records requests, answers 200 or what a path is told ---- */

#define RX_MAX 64

struct rx_req {
    char path[256];
    char head[8192]; /* request line and headers */
    char *body;
};

struct receiver {
    int fd, port;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t mu;
    struct rx_req reqs[RX_MAX];
    int n;
    char fail_prefix[64]; /* paths starting with this answer 500 ("" none, "/" all) */
};

static bool read_request(int c, struct rx_req *r)
{
    char buf[65536];
    size_t got = 0;
    char *end = NULL;
    while (!end && got < sizeof buf - 1) {
        ssize_t k = recv(c, buf + got, sizeof buf - 1 - got, 0);
        if (k <= 0) return false;
        got += (size_t)k;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end) return false;
    size_t head_len = (size_t)(end - buf);
    snprintf(r->head, sizeof r->head, "%.*s", (int)head_len, buf);
    sscanf(buf, "%*s %255s", r->path);
    size_t clen = 0;
    const char *cl = strcasestr(r->head, "\r\nContent-Length:");
    if (cl) clen = strtoul(cl + 17, NULL, 10);
    r->body = calloc(1, clen + 1);
    size_t have = got - head_len - 4;
    if (have > clen) have = clen;
    memcpy(r->body, end + 4, have);
    while (have < clen) {
        ssize_t k = recv(c, r->body + have, clen - have, 0);
        if (k <= 0) return false;
        have += (size_t)k;
    }
    return true;
}

static void *rx_main(void *arg)
{
    struct receiver *rx = arg;
    while (!atomic_load(&rx->stop)) {
        struct pollfd p = {rx->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept(rx->fd, NULL, NULL);
        if (c < 0) continue;
        struct rx_req r;
        memset(&r, 0, sizeof r);
        if (read_request(c, &r)) {
            int status = 200;
            pthread_mutex_lock(&rx->mu);
            if (rx->fail_prefix[0] &&
                strncmp(r.path, rx->fail_prefix, strlen(rx->fail_prefix)) == 0)
                status = 500;
            if (rx->n < RX_MAX)
                rx->reqs[rx->n++] = r;
            else
                free(r.body);
            pthread_mutex_unlock(&rx->mu);
            char resp[200];
            int len = snprintf(resp, sizeof resp,
                               "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                               status);
            (void)!send(c, resp, (size_t)len, MSG_NOSIGNAL);
        } else {
            free(r.body);
        }
        close(c);
    }
    return NULL;
}

static struct receiver *rx_start(void)
{
    struct receiver *rx = calloc(1, sizeof *rx);
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof a;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rx->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rx->fd < 0 || bind(rx->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(rx->fd, 16) != 0 || getsockname(rx->fd, (struct sockaddr *)&a, &alen) != 0) {
        perror("receiver");
        exit(2);
    }
    rx->port = ntohs(a.sin_port);
    pthread_mutex_init(&rx->mu, NULL);
    pthread_create(&rx->thread, NULL, rx_main, rx);
    return rx;
}

static void rx_stop(struct receiver *rx)
{
    atomic_store(&rx->stop, 1);
    pthread_join(rx->thread, NULL);
    close(rx->fd);
    for (int i = 0; i < rx->n; i++)
        free(rx->reqs[i].body);
    pthread_mutex_destroy(&rx->mu);
    free(rx);
}

static void rx_fail(struct receiver *rx, const char *prefix)
{
    pthread_mutex_lock(&rx->mu);
    snprintf(rx->fail_prefix, sizeof rx->fail_prefix, "%s", prefix);
    pthread_mutex_unlock(&rx->mu);
}

/* Requests received for paths starting with `prefix`. */
static int rx_count(struct receiver *rx, const char *prefix)
{
    int n = 0;
    pthread_mutex_lock(&rx->mu);
    for (int i = 0; i < rx->n; i++)
        if (strncmp(rx->reqs[i].path, prefix, strlen(prefix)) == 0) n++;
    pthread_mutex_unlock(&rx->mu);
    return n;
}

/* A header's value of request r (static buffer), or NULL. */
static const char *rx_header(const struct rx_req *r, const char *name)
{
    static char value[512];
    char pat[128];
    snprintf(pat, sizeof pat, "\r\n%s:", name);
    const char *h = strcasestr(r->head, pat);
    if (!h) return NULL;
    h += strlen(pat);
    while (*h == ' ')
        h++;
    size_t n = strcspn(h, "\r\n");
    snprintf(value, sizeof value, "%.*s", (int)n, h);
    return value;
}

/* ---- Fixtures ---- */

static crm_kernel *open_started(void)
{
    crm_kernel *k = kfix_open();
    if (crm_webhooks_start(k) != CRM_OK) {
        fprintf(stderr, "webhooks start: %s\n", crm_error_last()->message);
        exit(2);
    }
    return k;
}

/* Create a webhook as the system; returns its id. */
static int64_t hook(crm_kernel *k, struct receiver *rx, const char *path, const char *topics,
                    const char *secret)
{
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", rx->port, path);
    json_t *t = kfix_json(topics), *out = NULL;
    if (crm_webhook_create(&ctx, url, t, secret, &out) != CRM_OK) {
        fprintf(stderr, "webhook create: %s\n", crm_error_last()->message);
        exit(2);
    }
    int64_t id = json_integer_value(json_object_get(out, "id"));
    json_decref(t);
    json_decref(out);
    return id;
}

static int64_t count(crm_kernel *k, const char *sql)
{
    int64_t n = -1;
    crm_conn_query_int(crm_store_conn(k->store), sql, &n, -1);
    return n;
}

static int run(crm_kernel *k)
{
    int n = crm_bus_run_pending(k->bus);
    if (n < 0) fprintf(stderr, "  run_pending: %s\n", crm_error_last()->message);
    return n;
}

static void update(crm_kernel *k, const char *type, int64_t id, const char *patch)
{
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    json_t *p = kfix_json(patch), *out = NULL;
    if (crm_record_update(&ctx, type, id, p, 0, &out) != CRM_OK) {
        fprintf(stderr, "update: %s\n", crm_error_last()->message);
        exit(2);
    }
    json_decref(p);
    json_decref(out);
}

/* ---- Tests ---- */

static void test_signature_golden(void)
{
    char sig[CRM_WEBHOOK_SIGNATURE_SIZE];
    const char *fox = "The quick brown fox jumps over the lazy dog";
    crm_webhook_sign("key", fox, strlen(fox), sig); /* RFC 2104 example value, as Wikipedia's */
    CHECK_STR(sig, "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    /* a key longer than the block size is hashed first (HMAC's rule, what receivers do) */
    char longkey[101];
    memset(longkey, 'k', 100);
    longkey[100] = '\0';
    crm_webhook_sign(longkey, "abc", 3, sig);
    CHECK_STR(sig, "sha256=b58b2b694fdba0dd76da3ebe99174f728d327560f36ece224e90867972479922");
    /* the length is the body's, not up to a NUL */
    crm_webhook_sign("key", "abcdef", 3, sig);
    char sig2[CRM_WEBHOOK_SIGNATURE_SIZE];
    crm_webhook_sign("key", "abc", 3, sig2);
    CHECK_STR(sig, sig2);
}

static void test_topic_match(void)
{
    CHECK(crm_webhook_topic_match("*", "crm.deal.updated"));
    CHECK(crm_webhook_topic_match("crm.deal.*", "crm.deal.updated"));
    CHECK(crm_webhook_topic_match("crm.deal.updated", "crm.deal.updated"));
    CHECK(crm_webhook_topic_match("crm.*", "crm.deal.updated"));
    CHECK(!crm_webhook_topic_match("crm.deal.*", "crm.dealer.updated"));
    CHECK(!crm_webhook_topic_match("crm.deal.*", "crm.deal"));
    CHECK(!crm_webhook_topic_match("crm.deal.*", "crm.deal."));
    CHECK(!crm_webhook_topic_match("crm.deal.created", "crm.deal.updated"));
    CHECK(!crm_webhook_topic_match("crm.deal", "crm.deal.updated"));
}

static void test_url_check(void)
{
    crm_kernel *k = kfix_open();
    static const char *const good[] = {"http://127.0.0.1:8080/hook", "https://example.com/x?y=1",
                                       "HTTPS://example.com", "http://[::1]:9/a"};
    static const char *const bad[] = {"ftp://example.com/",
                                      "javascript:alert(1)",
                                      "file:///etc/passwd",
                                      "http://",
                                      "http:///path",
                                      "example.com/hook",
                                      "http://a b.com/",
                                      "http://user:pw@example.com/",
                                      "gopher://example.com:70/_x",
                                      "",
                                      "http://example.com/\r\nX: y"};
    for (size_t i = 0; i < CRM_ARRAY_LEN(good); i++) {
        int rc = crm_webhook_url_check(k, good[i]);
        if (rc) fprintf(stderr, "  %s: %s\n", good[i], crm_error_last()->message);
        CHECK_INT(rc, CRM_OK);
    }
    for (size_t i = 0; i < CRM_ARRAY_LEN(bad); i++) {
        int rc = crm_webhook_url_check(k, bad[i]);
        if (rc != CRM_EINVALID) fprintf(stderr, "  accepted: %s\n", bad[i]);
        CHECK_INT(rc, CRM_EINVALID);
        CHECK_STR(crm_error_last()->field, "url");
    }
    /* the admin's allowlist, when set, is the only way out */
    CHECK_INT(crm_conn_exec(crm_store_conn(k->store),
                            "INSERT INTO core_setting(key, value) VALUES "
                            "('webhooks.allowed_hosts', 'hooks.example.com, 127.0.0.1')"),
              CRM_OK);
    CHECK_INT(crm_webhook_url_check(k, "https://hooks.example.com/in"), CRM_OK);
    CHECK_INT(crm_webhook_url_check(k, "http://127.0.0.1:9/in"), CRM_OK);
    CHECK_INT(crm_webhook_url_check(k, "https://evil.example.com/in"), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "allowed_hosts");
    CHECK_INT(crm_webhook_url_check(k, "https://hooks.example.com.evil.net/"), CRM_EINVALID);
    crm_kernel_close(k);
}

static void test_registry(void)
{
    crm_kernel *k = kfix_open();
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    json_t *topics = kfix_json("[\"test.contact.*\", \"test.company.created\"]");
    json_t *out = NULL, *list = NULL;

    /* generated secret: 32 random bytes as hex, shown once */
    REQUIRE(crm_webhook_create(&ctx, "http://127.0.0.1:9/a", topics, NULL, &out) == CRM_OK);
    const char *secret = json_string_value(json_object_get(out, "secret"));
    REQUIRE(secret);
    CHECK_INT(strlen(secret), 64);
    CHECK_INT(strspn(secret, "0123456789abcdef"), 64);
    int64_t id = json_integer_value(json_object_get(out, "id"));
    CHECK(id > 0);
    CHECK(json_equal(json_object_get(out, "topics"), topics));
    json_decref(out);

    /* a given secret is not echoed */
    REQUIRE(crm_webhook_create(&ctx, "https://example.com/b", topics, "a-secret-of-16-chars",
                               &out) == CRM_OK);
    CHECK(!json_object_get(out, "secret"));
    int64_t id2 = json_integer_value(json_object_get(out, "id"));
    json_decref(out);

    /* listing never shows secrets */
    REQUIRE(crm_webhook_list(&ctx, &list) == CRM_OK);
    CHECK_INT(json_array_size(list), 2);
    char *text = json_dumps(list, 0);
    CHECK(!strstr(text, "secret"));
    CHECK(!strstr(text, "a-secret-of-16-chars"));
    free(text);
    json_decref(list);

    /* bad input names its field */
    json_t *bad_topics[] = {kfix_json("[]"),          kfix_json("\"*\""), kfix_json("[\"a..b\"]"),
                            kfix_json("[\"a.*.b\"]"), kfix_json("[1]"),   kfix_json("[\"A.B\"]")};
    for (size_t i = 0; i < CRM_ARRAY_LEN(bad_topics); i++) {
        CHECK_INT(crm_webhook_create(&ctx, "http://127.0.0.1:9/", bad_topics[i], NULL, &out),
                  CRM_EINVALID);
        CHECK_STR(crm_error_last()->field, "topics");
        json_decref(bad_topics[i]);
    }
    CHECK_INT(crm_webhook_create(&ctx, "http://127.0.0.1:9/", topics, "short", &out), CRM_EINVALID);
    CHECK_STR(crm_error_last()->field, "secret");
    CHECK_INT(crm_webhook_create(&ctx, "ftp://127.0.0.1/", topics, NULL, &out), CRM_EINVALID);
    CHECK_STR(crm_error_last()->field, "url");
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_webhook"), 2);

    /* delete: gone from the list, secret wiped, audited; twice is not found */
    CHECK_INT(crm_webhook_delete(&ctx, id), CRM_OK);
    CHECK_INT(crm_webhook_delete(&ctx, id), CRM_ENOTFOUND);
    CHECK_INT(crm_webhook_delete(&ctx, 999), CRM_ENOTFOUND);
    REQUIRE(crm_webhook_list(&ctx, &list) == CRM_OK);
    CHECK_INT(json_array_size(list), 1);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(list, 0), "id")), id2);
    json_decref(list);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_webhook WHERE secret <> '' AND active = 0"), 0);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_audit WHERE action = 'webhook.create'"), 2);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_audit WHERE action = 'webhook.delete'"), 1);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_audit WHERE detail LIKE '%secret%'"), 0);
    CHECK_INT(crm_webhook_deliveries(&ctx, id, 10, &out), CRM_ENOTFOUND);
    json_decref(topics);
    crm_kernel_close(k);
}

/* Hide `field` of test.contact from a role that nobody in the test uses. */
static void hide_for_some_role(crm_kernel *k, const char *field)
{
    int64_t role = kfix_role(k, "hr-blind");
    if (crm_perm_field(k->perm, role, "test.contact", field, CRM_ACCESS_HIDDEN) != CRM_OK) {
        fprintf(stderr, "perm field: %s\n", crm_error_last()->message);
        exit(2);
    }
}

static void test_payload_redaction(void)
{
    crm_kernel *k = kfix_open();
    hide_for_some_role(k, "salary");
    int64_t id = kfix_create(k, "test.contact", "{\"name\":\"Ann\",\"salary\":5000}");
    update(k, "test.contact", id, "{\"name\":\"Anna\",\"salary\":6000}");

    json_t *events = NULL;
    REQUIRE(crm_bus_events(k->bus, 0, 100, &events) == CRM_OK);
    json_t *upd = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "topic")), "test.contact.updated") == 0)
            upd = e;
    }
    REQUIRE(upd);
    /* the outbox itself holds the system's view */
    CHECK(json_object_get(json_object_get(upd, "record"), "salary"));

    crm_event ev = {0};
    ev.topic = json_string_value(json_object_get(upd, "topic"));
    ev.type = json_string_value(json_object_get(upd, "type"));
    ev.id = json_integer_value(json_object_get(upd, "id"));
    ev.seq = json_integer_value(json_object_get(upd, "seq"));
    ev.record = json_object_get(upd, "record");
    ev.old = json_object_get(upd, "old");
    ev.changed = json_object_get(upd, "changed");
    json_t *body = NULL;
    REQUIRE(crm_webhook_payload(k, &ev, &body) == CRM_OK);
    json_t *rec = json_object_get(body, "record"), *old = json_object_get(body, "old");
    CHECK(!json_object_get(rec, "salary"));
    CHECK(!json_object_get(old, "salary"));
    CHECK_STR(json_string_value(json_object_get(rec, "name")), "Anna");
    CHECK_STR(json_string_value(json_object_get(old, "name")), "Ann");
    CHECK_INT(json_integer_value(json_object_get(rec, "id")), id);
    json_t *changed = json_object_get(body, "changed");
    CHECK_INT(json_array_size(changed), 1);
    CHECK_STR(json_string_value(json_array_get(changed, 0)), "name");
    CHECK_STR(json_string_value(json_object_get(body, "at")),
              json_string_value(json_object_get(upd, "at")));
    CHECK_INT(json_integer_value(json_object_get(body, "seq")), ev.seq);
    char *text = json_dumps(body, 0);
    CHECK(!strstr(text, "salary"));
    CHECK(!strstr(text, "6000"));
    free(text);
    /* the event itself is left alone */
    CHECK(json_object_get(ev.record, "salary"));
    json_decref(body);
    json_decref(events);
    crm_kernel_close(k);
}

static void test_deliver_signed(void)
{
    struct receiver *rx = rx_start();
    crm_kernel *k = open_started();
    hide_for_some_role(k, "salary");
    const char *secret = "test-secret-0123456789";
    int64_t hid = hook(k, rx, "/hook", "[\"test.contact.*\"]", secret);
    int64_t id = kfix_create(k, "test.contact", "{\"name\":\"Bob\",\"salary\":7000}");
    kfix_create(k, "test.company", "{\"name\":\"Acme\"}"); /* not subscribed */

    CHECK(run(k) >= 1);
    REQUIRE(rx_count(rx, "/") == 1);
    struct rx_req *r = &rx->reqs[0];
    CHECK_STR(r->path, "/hook");
    CHECK(strncmp(r->head, "POST ", 5) == 0);
    CHECK_STR(rx_header(r, "Content-Type"), "application/json");
    CHECK_STR(rx_header(r, "X-CRM-Event"), "test.contact.created");
    CHECK_STR(rx_header(r, "User-Agent"), "crm/" CRM_VERSION);
    json_t *body = kfix_json(r->body);
    int64_t seq = json_integer_value(json_object_get(body, "seq"));
    char seqtext[32];
    snprintf(seqtext, sizeof seqtext, "%lld", (long long)seq);
    CHECK_STR(rx_header(r, "X-CRM-Delivery"), seqtext);
    char sig[CRM_WEBHOOK_SIGNATURE_SIZE];
    crm_webhook_sign(secret, r->body, strlen(r->body), sig);
    CHECK_STR(rx_header(r, "X-CRM-Signature"), sig);
    CHECK_STR(json_string_value(json_object_get(body, "topic")), "test.contact.created");
    CHECK_STR(json_string_value(json_object_get(body, "type")), "test.contact");
    CHECK_INT(json_integer_value(json_object_get(body, "id")), id);
    json_t *rec = json_object_get(body, "record");
    CHECK_STR(json_string_value(json_object_get(rec, "name")), "Bob");
    CHECK(!json_object_get(rec, "salary"));
    CHECK(!strstr(r->body, "7000"));
    json_decref(body);

    /* the attempt is recorded; nothing is left to retry; a second pass sends nothing */
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    json_t *d = NULL;
    REQUIRE(crm_webhook_deliveries(&ctx, hid, 10, &d) == CRM_OK);
    CHECK_INT(json_array_size(d), 1);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(d, 0), "status")), 200);
    CHECK(json_is_true(json_object_get(json_array_get(d, 0), "ok")));
    json_decref(d);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_retry"), 0);
    run(k);
    CHECK_INT(rx_count(rx, "/"), 1);

    /* a deleted webhook gets nothing more */
    CHECK_INT(crm_webhook_delete(&ctx, hid), CRM_OK);
    update(k, "test.contact", id, "{\"name\":\"Bobby\"}");
    run(k);
    CHECK_INT(rx_count(rx, "/"), 1);
    crm_kernel_close(k);
    rx_stop(rx);
}

static void test_retry_then_success(void)
{
    struct receiver *rx = rx_start();
    crm_clock_set(T0);
    crm_kernel *k = open_started();
    int64_t hid = hook(k, rx, "/hook", "[\"*\"]", "retry-secret-0123456789");
    rx_fail(rx, "/");
    int64_t id = kfix_create(k, "test.contact", "{\"name\":\"Cy\"}");
    update(k, "test.contact", id, "{\"name\":\"Cyd\"}");

    run(k);
    /* the create failed; the update is queued behind it (per-record order): one request */
    CHECK_INT(rx_count(rx, "/"), 1);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_retry WHERE consumer = 'webhooks' AND "
                       "state = 'pending'"),
              2);
    run(k); /* backoff: not due yet */
    CHECK_INT(rx_count(rx, "/"), 1);

    crm_clock_set(T0 + 1); /* first backoff is 1 s; still failing */
    run(k);
    CHECK_INT(rx_count(rx, "/"), 2);
    rx_fail(rx, "");
    crm_clock_set(T0 + 1 + 2);
    run(k);
    /* the create, then the update, in order */
    REQUIRE(rx_count(rx, "/") == 4);
    json_t *b2 = kfix_json(rx->reqs[2].body), *b3 = kfix_json(rx->reqs[3].body);
    CHECK_STR(json_string_value(json_object_get(b2, "topic")), "test.contact.created");
    CHECK_STR(json_string_value(json_object_get(b3, "topic")), "test.contact.updated");
    CHECK(json_integer_value(json_object_get(b2, "seq")) <
          json_integer_value(json_object_get(b3, "seq")));
    CHECK_STR(rx_header(&rx->reqs[2], "X-CRM-Delivery"), rx_header(&rx->reqs[0], "X-CRM-Delivery"));
    json_decref(b2);
    json_decref(b3);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_retry"), 0);

    crm_ctx ctx;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    json_t *d = NULL;
    REQUIRE(crm_webhook_deliveries(&ctx, hid, 10, &d) == CRM_OK);
    CHECK_INT(json_array_size(d), 4);
    json_t *first = json_array_get(d, 3); /* newest first */
    CHECK_INT(json_integer_value(json_object_get(first, "status")), 500);
    CHECK_INT(json_integer_value(json_object_get(first, "attempt")), 1);
    CHECK_STR(json_string_value(json_object_get(first, "error")), "HTTP 500");
    CHECK_INT(json_integer_value(json_object_get(json_array_get(d, 2), "attempt")), 2);
    json_decref(d);
    crm_kernel_close(k);
    crm_clock_set(-1);
    rx_stop(rx);
}

static void test_dead_letter(void)
{
    struct receiver *rx = rx_start();
    int64_t now = T0;
    crm_clock_set(now);
    crm_kernel *k = open_started();
    hook(k, rx, "/hook", "[\"test.company.*\"]", "dead-secret-0123456789");
    rx_fail(rx, "/");
    kfix_create(k, "test.company", "{\"name\":\"Dead Co\"}");
    for (int i = 0; i < CRM_BUS_MAX_ATTEMPTS + 2; i++) {
        run(k);
        now += 4000; /* past the longest backoff */
        crm_clock_set(now);
    }
    CHECK_INT(rx_count(rx, "/"), CRM_BUS_MAX_ATTEMPTS);
    json_t *dead = NULL;
    REQUIRE(crm_bus_dead_letters(k->bus, &dead) == CRM_OK);
    REQUIRE(json_array_size(dead) == 1);
    json_t *dl = json_array_get(dead, 0);
    CHECK_STR(json_string_value(json_object_get(dl, "consumer")), CRM_WEBHOOK_CONSUMER);
    CHECK_HAS(json_string_value(json_object_get(dl, "last_error")), "HTTP 500");

    /* the endpoint recovers; an admin retries the dead letter */
    rx_fail(rx, "");
    CHECK_INT(crm_bus_retry(k->bus, json_integer_value(json_object_get(dl, "id"))), CRM_OK);
    run(k);
    CHECK_INT(rx_count(rx, "/"), CRM_BUS_MAX_ATTEMPTS + 1);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_retry"), 0);
    json_decref(dead);
    crm_kernel_close(k);
    crm_clock_set(-1);
    rx_stop(rx);
}

static void test_one_failing_hook(void)
{
    struct receiver *rx = rx_start();
    int64_t now = T0;
    crm_clock_set(now);
    crm_kernel *k = open_started();
    hook(k, rx, "/good", "[\"test.contact.created\"]", "good-secret-0123456789");
    hook(k, rx, "/bad", "[\"test.*\"]", "bad-secret-01234567890");
    rx_fail(rx, "/bad");
    kfix_create(k, "test.contact", "{\"name\":\"Dee\"}");
    run(k);
    CHECK_INT(rx_count(rx, "/good"), 1);
    CHECK_INT(rx_count(rx, "/bad"), 1);
    for (int i = 0; i < 3; i++) {
        now += 4000;
        crm_clock_set(now);
        run(k);
    }
    CHECK_INT(rx_count(rx, "/bad"), 4);
    CHECK_INT(rx_count(rx, "/good"), 1); /* retries skip the webhook that took it */
    rx_fail(rx, "");
    now += 4000;
    crm_clock_set(now);
    run(k);
    CHECK_INT(rx_count(rx, "/bad"), 5);
    CHECK_INT(rx_count(rx, "/good"), 1);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_retry"), 0);
    /* the same body went to both, each signed with its own secret */
    pthread_mutex_lock(&rx->mu);
    const struct rx_req *good = NULL, *bad = NULL;
    for (int i = 0; i < rx->n; i++) {
        if (strcmp(rx->reqs[i].path, "/good") == 0) good = &rx->reqs[i];
        if (strcmp(rx->reqs[i].path, "/bad") == 0) bad = &rx->reqs[i];
    }
    pthread_mutex_unlock(&rx->mu);
    REQUIRE(good && bad);
    CHECK_STR(good->body, bad->body);
    char sig[CRM_WEBHOOK_SIGNATURE_SIZE], sig_good[CRM_WEBHOOK_SIGNATURE_SIZE];
    crm_webhook_sign("good-secret-0123456789", good->body, strlen(good->body), sig_good);
    crm_webhook_sign("bad-secret-01234567890", bad->body, strlen(bad->body), sig);
    CHECK_STR(rx_header(good, "X-CRM-Signature"), sig_good);
    CHECK_STR(rx_header(bad, "X-CRM-Signature"), sig);
    crm_kernel_close(k);
    crm_clock_set(-1);
    rx_stop(rx);
}

static void test_unreachable(void)
{
    /* a port nobody listens on: a network error is a failure with a message, promptly */
    struct receiver *rx = rx_start();
    int port = rx->port;
    rx_stop(rx);
    crm_clock_set(T0);
    crm_kernel *k = open_started();
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", port);
    json_t *t = kfix_json("[\"*\"]"), *out = NULL;
    REQUIRE(crm_webhook_create(&ctx, url, t, NULL, &out) == CRM_OK);
    int64_t hid = json_integer_value(json_object_get(out, "id"));
    json_decref(out);
    json_decref(t);
    kfix_create(k, "test.company", "{\"name\":\"Nobody\"}");
    int64_t t0 = crm_mono_us();
    run(k);
    CHECK(crm_mono_us() - t0 < 6000000);
    json_t *d = NULL;
    REQUIRE(crm_webhook_deliveries(&ctx, hid, 10, &d) == CRM_OK);
    REQUIRE(json_array_size(d) == 1);
    CHECK(json_is_null(json_object_get(json_array_get(d, 0), "status")));
    CHECK(json_string_value(json_object_get(json_array_get(d, 0), "error")) != NULL);
    CHECK(json_is_false(json_object_get(json_array_get(d, 0), "ok")));
    json_decref(d);
    CHECK_INT(count(k, "SELECT COUNT(*) FROM core_retry WHERE state = 'pending'"), 1);
    crm_kernel_close(k);
    crm_clock_set(-1);
}

int main(void)
{
    RUN(test_signature_golden);
    RUN(test_topic_match);
    RUN(test_url_check);
    RUN(test_registry);
    RUN(test_payload_redaction);
    RUN(test_deliver_signed);
    RUN(test_retry_then_success);
    RUN(test_dead_letter);
    RUN(test_one_failing_hook);
    RUN(test_unreachable);
    return t_finish("test_webhook");
}
