/*
 * test_http.c — kernel/http.c through its contract: route registration and
 * matching, path and query decoding, the error mapping, the handler bug
 * guard, streamed replies and response headers. A real server on a loopback
 * port, driven by a minimal blocking client (one request per connection).
 */
#include "kfix.h"

#include "../../kernel/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static crm_kernel *k;
static crm_http *h;
static int port;

/* ---- A tiny client ---- */

typedef struct reply {
    int status;
    char head[4096];
    char *body;
} reply;

static void reply_free(reply *r)
{
    free(r->body);
    r->body = NULL;
}

static int fetch(reply *r, const char *method, const char *path, const char *extra_headers,
                 const char *body)
{
    struct sockaddr_in sa = {0};
    crm_buf in = CRM_BUF_INIT;
    char req[8192], buf[65536];
    const char *sep;
    int fd, n;

    memset(r, 0, sizeof *r);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) return -1;
    n = snprintf(req, sizeof req,
                 "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s%s"
                 "Content-Length: %zu\r\n\r\n%s",
                 method, path, extra_headers ? extra_headers : "",
                 body && !(extra_headers && strstr(extra_headers, "Content-Type"))
                     ? "Content-Type: application/json\r\n"
                     : "",
                 body ? strlen(body) : 0, body ? body : "");
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    while ((n = (int)read(fd, buf, sizeof buf)) > 0)
        crm_buf_put(&in, buf, (size_t)n);
    close(fd);
    if (!in.ptr || sscanf(in.ptr, "HTTP/1.1 %d", &r->status) != 1) {
        crm_buf_free(&in);
        return -1;
    }
    sep = strstr(in.ptr, "\r\n\r\n");
    if (sep) {
        size_t hl = (size_t)(sep - in.ptr);
        snprintf(r->head, sizeof r->head, "%.*s",
                 (int)(hl < sizeof r->head - 1 ? hl : sizeof r->head - 1), in.ptr);
        r->body = crm_strdup(sep + 4);
    } else {
        r->body = crm_strdup("");
    }
    crm_buf_free(&in);
    return 0;
}

static const char *error_code_of(reply *r, char *out, size_t n)
{
    json_t *j = json_loads(r->body, 0, NULL);
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    snprintf(out, n, "%s", c ? c : "(none)");
    json_decref(j);
    return out;
}

/* ---- Test routes ---- */

static int echo_route(crm_req *req, void *udata)
{
    json_t *params = json_object();
    const char *names[] = {"id", "rest", "type"};
    for (size_t i = 0; i < CRM_ARRAY_LEN(names); i++)
        if (crm_req_param(req, names[i]))
            json_object_set_new(params, names[i], json_string(crm_req_param(req, names[i])));
    return crm_req_reply_json(req, 200,
                              json_pack("{s:s, s:o, s:s}", "route", (const char *)udata, "params",
                                        params, "method", crm_req_method(req)));
}

static int collect_pair(void *arg, const char *key, const char *value)
{
    json_array_append_new(arg, json_pack("[s,s]", key, value));
    return 0;
}

static int query_route(crm_req *req, void *udata)
{
    json_t *pairs = json_array();
    crm_req_query_each(req, collect_pair, pairs);
    return crm_req_reply_json(
        req, 200, json_pack("{s:o, s:s?}", "pairs", pairs, "a", crm_req_query(req, "a")));
}

/* Returns the error code named by ?code=N, with field "f". */
static int fail_route(crm_req *req, void *udata)
{
    int64_t code = 0;
    const char *c = crm_req_query(req, "code");
    crm_req_set_header(req, "X-Should-Not-Leak", "1");
    if (!c || !crm_parse_int64(c, &code)) return crm_error_set(CRM_EINVALID, "code", "no code");
    return crm_error_set((int)code, "f", "secret detail of error %d", (int)code);
}

static int silent_route(crm_req *req, void *udata)
{
    return CRM_OK; /* the bug: no reply */
}

static int html_route(crm_req *req, void *udata)
{
    return crm_req_reply_data(req, 200, "text/html; charset=utf-8", "<p>hi</p>", 9);
}

typedef struct counter {
    int left;
    int freed;
} counter;

static counter stream_state;

static ssize_t stream_next(void *arg, char *buf, size_t max)
{
    counter *c = arg;
    if (c->left == 0) return 0;
    c->left--;
    return snprintf(buf, max, "chunk%d;", c->left);
}

static void stream_done(void *arg)
{
    ((counter *)arg)->freed++;
}

static int stream_route(crm_req *req, void *udata)
{
    stream_state.left = 3;
    stream_state.freed = 0;
    return crm_req_reply_stream(req, 200, "text/plain", stream_next, &stream_state, stream_done) ==
                   CRM_OK
               ? CRM_OK
               : CRM_EINTERNAL;
}

static int id_route(crm_req *req, void *udata)
{
    int64_t id;
    int rc = crm_req_param_id(req, "id", &id);
    if (rc < 0) return rc;
    return crm_req_reply_json(req, 200,
                              json_pack("{s:I, s:b}", "id", (json_int_t)id, "system",
                                        crm_principal_is_admin(crm_req_ctx(req)->who) &&
                                            crm_principal_user(crm_req_ctx(req)->who) == 0));
}

static int body_route(crm_req *req, void *udata)
{
    size_t n;
    const char *b = crm_req_body(req, &n);
    json_t *j = crm_req_json(req);
    return crm_req_reply_json(req, 200,
                              json_pack("{s:I, s:b, s:s#}", "len", (json_int_t)n, "json", j != NULL,
                                        "body", b, n < 20 ? (int)n : 20));
}

/* ---- Tests ---- */

static void test_registration_errors(void)
{
    CHECK_INT(crm_http_route(h, "GET", "/t/items/{id}", CRM_ROUTE_PUBLIC, echo_route, "dup"),
              CRM_ECONFLICT);
    CHECK_INT(crm_http_route(h, "GET", "t/no-slash", 0, echo_route, NULL), CRM_EINVALID);
    CHECK_INT(crm_http_route(h, "GET", "/t/{open", 0, echo_route, NULL), CRM_EINVALID);
    CHECK_INT(crm_http_route(h, "GET", "/t/{rest*}/more", 0, echo_route, NULL), CRM_EINVALID);
    CHECK_INT(crm_http_route(h, "GET", "/t//double", 0, echo_route, NULL), CRM_EINVALID);
    CHECK_INT(crm_http_route(h, "GET", "/t/{x}/{x}", 0, echo_route, NULL), CRM_EINVALID);
    CHECK_INT(crm_http_route(h, "GET", "/t/trailing/", 0, echo_route, NULL), CRM_EINVALID);
    CHECK_INT(crm_http_route(h, "get", "/t/lower", 0, echo_route, NULL), CRM_EINVALID);
}

static void test_exact_beats_placeholder(void)
{
    reply r;
    REQUIRE(fetch(&r, "GET", "/t/items/special", NULL, NULL) == 0);
    CHECK_INT(r.status, 200);
    CHECK_HAS(r.body, "\"route\":\"special\"");
    reply_free(&r);
    REQUIRE(fetch(&r, "GET", "/t/items/42", NULL, NULL) == 0);
    CHECK_HAS(r.body, "\"route\":\"item\"");
    CHECK_HAS(r.body, "\"id\":\"42\"");
    reply_free(&r);
    /* DELETE has no exact route: the placeholder one takes it. */
    REQUIRE(fetch(&r, "DELETE", "/t/items/special", NULL, NULL) == 0);
    CHECK_INT(r.status, 200);
    CHECK_HAS(r.body, "\"route\":\"item-delete\"");
    reply_free(&r);
    REQUIRE(fetch(&r, "PUT", "/t/items/special", NULL, NULL) == 0);
    CHECK_INT(r.status, 405);
    CHECK_HAS(r.head, "Allow: GET, HEAD");
    reply_free(&r);
}

static void test_params_are_decoded_per_segment(void)
{
    reply r;
    REQUIRE(fetch(&r, "GET", "/t/items/a%2Fb%20c", NULL, NULL) == 0);
    CHECK_HAS(r.body, "\"id\":\"a/b c\"");
    reply_free(&r);
    REQUIRE(fetch(&r, "GET", "/t/files/a/b%2Fc/d", NULL, NULL) == 0);
    CHECK_HAS(r.body, "\"rest\":\"a/b/c/d\"");
    reply_free(&r);
    REQUIRE(fetch(&r, "GET", "/t/files", NULL, NULL) == 0);
    CHECK_INT(r.status, 200);
    CHECK_HAS(r.body, "\"rest\":\"\"");
    reply_free(&r);
    REQUIRE(fetch(&r, "GET", "/t/items/%00", NULL, NULL) == 0);
    CHECK_INT(r.status, 400);
    reply_free(&r);
    REQUIRE(fetch(&r, "GET", "/t/items/%4", NULL, NULL) == 0);
    CHECK_INT(r.status, 400);
    reply_free(&r);
    REQUIRE(fetch(&r, "GET", "/t/items", NULL, NULL) == 0);
    CHECK_INT(r.status, 404);
    reply_free(&r);
}

static void test_query_string(void)
{
    reply r;
    REQUIRE(fetch(&r, "GET", "/t/query?a=1&b=x+y&c=%41%2B&a=2&flag&=empty", NULL, NULL) == 0);
    CHECK_INT(r.status, 200);
    CHECK_HAS(r.body, "\"a\":\"1\"");
    CHECK_HAS(r.body, "[\"b\",\"x y\"]");
    CHECK_HAS(r.body, "[\"c\",\"A+\"]");
    CHECK_HAS(r.body, "[\"a\",\"2\"]");
    CHECK_HAS(r.body, "[\"flag\",\"\"]");
    reply_free(&r);
    REQUIRE(fetch(&r, "GET", "/t/query?a=%zz", NULL, NULL) == 0);
    CHECK_INT(r.status, 400);
    reply_free(&r);
}

static void test_error_mapping(void)
{
    static const struct {
        int code, status;
        const char *name;
    } cases[] = {
        {CRM_EINVALID, 400, "invalid"},    {CRM_EDENIED, 403, "denied"},
        {CRM_ENOTFOUND, 404, "not_found"}, {CRM_ECONFLICT, 409, "conflict"},
        {CRM_ESTALE, 412, "stale"},        {CRM_ELIMIT, 422, "limit"},
        {CRM_EBUSY, 503, "busy"},          {CRM_EFULL, 507, "storage_full"},
        {CRM_EINTERNAL, 500, "internal"},
    };
    char path[64], code[64];
    reply r;

    for (size_t i = 0; i < CRM_ARRAY_LEN(cases); i++) {
        CHECK_INT(crm_http_status(cases[i].code), cases[i].status);
        snprintf(path, sizeof path, "/t/fail?code=%d", cases[i].code);
        REQUIRE(fetch(&r, "GET", path, NULL, NULL) == 0);
        CHECK_INT(r.status, cases[i].status);
        CHECK_STR(error_code_of(&r, code, sizeof code), cases[i].name);
        CHECK(strstr(r.head, "X-Should-Not-Leak") == NULL);
        CHECK_HAS(r.head, "X-Content-Type-Options: nosniff");
        if (cases[i].status == 500) {
            CHECK(strstr(r.body, "secret detail") == NULL);
            CHECK_HAS(r.body, "request");
        } else {
            CHECK_HAS(r.body, "secret detail");
            CHECK_HAS(r.body, "\"field\":\"f\"");
        }
        if (cases[i].status == 503) CHECK_HAS(r.head, "Retry-After: 1");
        reply_free(&r);
    }
}

static void test_handler_without_reply_is_500(void)
{
    reply r;
    char code[64];
    REQUIRE(fetch(&r, "GET", "/t/silent", NULL, NULL) == 0);
    CHECK_INT(r.status, 500);
    CHECK_STR(error_code_of(&r, code, sizeof code), "internal");
    reply_free(&r);
}

static void test_stream_reply(void)
{
    reply r;
    REQUIRE(fetch(&r, "GET", "/t/stream", NULL, NULL) == 0);
    CHECK_INT(r.status, 200);
    /* Chunked transfer: the pieces appear in order inside the framing. */
    CHECK_HAS(r.body, "chunk2;");
    CHECK(strstr(r.body, "chunk2;") < strstr(r.body, "chunk0;"));
    reply_free(&r);
    usleep(100000);
    CHECK_INT(stream_state.freed, 1);
}

static void test_html_gets_csp(void)
{
    reply r;
    REQUIRE(fetch(&r, "GET", "/t/html", NULL, NULL) == 0);
    CHECK_HAS(r.head, "Content-Security-Policy: default-src 'self'; script-src 'self'; "
                      "object-src 'none'; frame-ancestors 'none'");
    CHECK_HAS(r.head, "Referrer-Policy: same-origin");
    reply_free(&r);
    REQUIRE(fetch(&r, "GET", "/t/items/1", NULL, NULL) == 0);
    CHECK(strstr(r.head, "Content-Security-Policy") == NULL);
    reply_free(&r);
}

static void test_param_id_and_public_context(void)
{
    reply r;
    REQUIRE(fetch(&r, "GET", "/t/id/17", NULL, NULL) == 0);
    CHECK_INT(r.status, 200);
    CHECK_HAS(r.body, "\"id\":17");
    CHECK_HAS(r.body, "\"system\":true");
    reply_free(&r);
    const char *bad[] = {"/t/id/0", "/t/id/-3", "/t/id/+3", "/t/id/1x",
                         "/t/id/99999999999999999999"};
    for (size_t i = 0; i < CRM_ARRAY_LEN(bad); i++) {
        REQUIRE(fetch(&r, "GET", bad[i], NULL, NULL) == 0);
        CHECK_INT(r.status, 400);
        CHECK_HAS(r.body, "\"field\":\"id\"");
        reply_free(&r);
    }
}

static void test_bodies(void)
{
    reply r;
    REQUIRE(fetch(&r, "POST", "/t/body", NULL, "{\"a\":1}") == 0);
    CHECK_INT(r.status, 200);
    CHECK_HAS(r.body, "\"json\":true");
    CHECK_HAS(r.body, "\"len\":7");
    reply_free(&r);
    /* A raw route takes any bytes. */
    REQUIRE(fetch(&r, "POST", "/t/raw", "Content-Type: text/csv\r\n", "a,b\n{{{") == 0);
    CHECK_INT(r.status, 200);
    CHECK_HAS(r.body, "\"json\":false");
    CHECK_HAS(r.body, "\"len\":7");
    reply_free(&r);
    /* ...while a JSON route refuses another type. */
    REQUIRE(fetch(&r, "POST", "/t/body", "Content-Type: text/csv\r\n", "a,b\n") == 0);
    CHECK_INT(r.status, 415);
    reply_free(&r);
    REQUIRE(fetch(&r, "POST", "/t/body", NULL, "{\"a\":1,\"a\":2}") == 0);
    CHECK_INT(r.status, 400);
    reply_free(&r);
    REQUIRE(fetch(&r, "POST", "/t/body", NULL, "[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]") == 0);
    CHECK_INT(r.status, 400);
    CHECK_HAS(r.body, "json_too_deep");
    reply_free(&r);
}

static void test_bad_listen_addresses(void)
{
    const char *bad[] = {"nocolon", "1.2.3.4:99999", "1.2.3.4:-1", "::1:80", "[::1]80", ""};
    for (size_t i = 0; i < CRM_ARRAY_LEN(bad); i++) {
        crm_http_opts o = CRM_HTTP_OPTS_INIT;
        crm_http *x = NULL;
        o.listen = bad[i];
        CHECK_INT(crm_http_open(&x, k, &o), CRM_EINVALID);
        CHECK(x == NULL);
    }
}

int main(void)
{
    crm_http_opts o = CRM_HTTP_OPTS_INIT;
    int rc;

    crm_log_set_level(CRM_LOG_ERROR);
    k = kfix_open_at(t_tmpdir());
    o.listen = "127.0.0.1:0";
    o.threads = 2;
    o.access_log = false;
    o.json_max_depth = 16;
    if (crm_http_open(&h, k, &o) != CRM_OK) {
        fprintf(stderr, "open: %s\n", crm_error_last()->message);
        return 2;
    }
    rc = crm_http_route(h, "GET", "/t/items/{id}", CRM_ROUTE_PUBLIC, echo_route, "item");
    rc |= crm_http_route(h, "GET", "/t/items/special", CRM_ROUTE_PUBLIC, echo_route, "special");
    rc |= crm_http_route(h, "DELETE", "/t/items/{id}", CRM_ROUTE_PUBLIC, echo_route, "item-delete");
    rc |= crm_http_route(h, "GET", "/t/files/{rest*}", CRM_ROUTE_PUBLIC, echo_route, "files");
    rc |= crm_http_route(h, "GET", "/t/query", CRM_ROUTE_PUBLIC, query_route, NULL);
    rc |= crm_http_route(h, "GET", "/t/fail", CRM_ROUTE_PUBLIC, fail_route, NULL);
    rc |= crm_http_route(h, "GET", "/t/silent", CRM_ROUTE_PUBLIC, silent_route, NULL);
    rc |= crm_http_route(h, "GET", "/t/stream", CRM_ROUTE_PUBLIC, stream_route, NULL);
    rc |= crm_http_route(h, "GET", "/t/html", CRM_ROUTE_PUBLIC, html_route, NULL);
    rc |= crm_http_route(h, "GET", "/t/id/{id}", CRM_ROUTE_PUBLIC, id_route, NULL);
    rc |= crm_http_route(h, "POST", "/t/body", CRM_ROUTE_PUBLIC, body_route, NULL);
    rc |= crm_http_route(h, "POST", "/t/raw", CRM_ROUTE_PUBLIC | CRM_ROUTE_RAW_BODY, body_route,
                         NULL);
    if (rc != CRM_OK) {
        fprintf(stderr, "route: %s\n", crm_error_last()->message);
        return 2;
    }
    RUN(test_registration_errors);
    if (crm_http_start(h) != CRM_OK) {
        fprintf(stderr, "start: %s\n", crm_error_last()->message);
        return 2;
    }
    port = crm_http_port(h);
    RUN(test_exact_beats_placeholder);
    RUN(test_params_are_decoded_per_segment);
    RUN(test_query_string);
    RUN(test_error_mapping);
    RUN(test_handler_without_reply_is_500);
    RUN(test_stream_reply);
    RUN(test_html_gets_csp);
    RUN(test_param_id_and_public_context);
    RUN(test_bodies);
    RUN(test_bad_listen_addresses);
    crm_http_stop(h, 1);
    crm_http_close(h);
    crm_kernel_close(k);
    return t_finish("test_http");
}
