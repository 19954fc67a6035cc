/*
 * Tests of kernel/io.c: CSV import (all-or-nothing and per-line modes, line
 * numbers and field names in errors, updates by id, header checks, hostile
 * input) and export (CSV formula guard, hidden fields, own scope, JSON, many
 * pages, audit rows, raw mode).
 */
#include "kfix.h"

#include "../../kernel/io.h"

static crm_kernel *k;
static crm_ctx sys;

static void fresh(void)
{
    if (k) crm_kernel_close(k);
    k = kfix_open();
    crm_ctx_init(&sys, k, crm_principal_system(), NULL);
}

static int64_t count_contacts(void)
{
    int64_t n = -1;
    crm_conn_query_int(crm_ctx_conn(&sys), "SELECT count(*) FROM \"test.contact\"", &n, -1);
    return n;
}

static int import(crm_ctx *ctx, const char *csv, int mode, json_t **out)
{
    return crm_import_csv(ctx, "test.contact", csv, strlen(csv), mode, out);
}

static json_int_t num(json_t *result, const char *key)
{
    return json_integer_value(json_object_get(result, key));
}

static json_t *err_at(json_t *result, size_t i)
{
    return json_array_get(json_object_get(result, "errors"), i);
}

static json_t *get(int64_t id)
{
    json_t *r = NULL;
    if (crm_record_get(&sys, "test.contact", id, false, &r)) return json_object();
    return r;
}

/* Drain an export into a malloc'd string, reading in small pieces. */
static char *drain(crm_export *e, size_t piece)
{
    crm_buf b = CRM_BUF_INIT;
    char *buf = malloc(piece);
    ssize_t n;
    crm_buf_puts(&b, "");
    while ((n = crm_export_next(e, buf, piece)) > 0) crm_buf_put(&b, buf, (size_t)n);
    free(buf);
    if (n < 0) {
        crm_buf_free(&b);
        return NULL;
    }
    return crm_buf_detach(&b);
}

static char *export_all(crm_ctx *ctx, int format, bool raw, const char *const *params)
{
    crm_query q;
    crm_export *e = NULL;
    crm_query_init(&q);
    for (int i = 0; params && params[i]; i += 2) crm_query_add(&q, params[i], params[i + 1]);
    int rc = crm_export_open(&e, ctx, "test.contact", &q, format, raw);
    crm_query_free(&q);
    if (rc) return NULL;
    char *text = drain(e, 1000);
    crm_export_free(e);
    return text;
}

/* ---- Import ---- */

static void import_every_kind(void)
{
    fresh();
    int64_t acme = kfix_create(k, "test.company", "{\"name\":\"Acme\"}");
    char csv[1024];
    snprintf(csv, sizeof csv,
             "\xEF\xBB\xBFname,age,balance,vip,birthday,met_at,stage,email,phone,site,company,"
             "extra\r\n"
             "Ann,41,1234.50,yes,1984-02-29,2024-05-01T10:00:00+02:00,won,ann@Example.COM,"
             "+30 210 1234567,https://ann.example,%lld,\"{\"\"a\"\":[1,2]}\"\r\n"
             "\"Bob, Jr.\",,,FALSE,,,,,,,,\r\n",
             (long long)acme);
    json_t *res = NULL;
    REQUIRE(import(&sys, csv, CRM_IMPORT_ALL, &res) == CRM_OK);
    CHECK_INT(num(res, "created"), 2);
    CHECK_INT(num(res, "updated"), 0);
    CHECK_INT(json_array_size(json_object_get(res, "errors")), 0);
    json_decref(res);

    json_t *ann = get(1), *bob = get(2);
    CHECK_STR(json_string_value(json_object_get(ann, "name")), "Ann");
    CHECK_INT(json_integer_value(json_object_get(ann, "age")), 41);
    CHECK_STR(json_string_value(json_object_get(ann, "balance")), "1234.50");
    CHECK(json_is_true(json_object_get(ann, "vip")));
    CHECK_STR(json_string_value(json_object_get(ann, "birthday")), "1984-02-29");
    CHECK_STR(json_string_value(json_object_get(ann, "met_at")), "2024-05-01T08:00:00Z");
    CHECK_STR(json_string_value(json_object_get(ann, "stage")), "won");
    CHECK_STR(json_string_value(json_object_get(ann, "email")), "ann@example.com");
    CHECK_STR(json_string_value(json_object_get(ann, "phone")), "+30 210 1234567");
    CHECK_INT(json_integer_value(json_object_get(ann, "company")), acme);
    json_t *extra = kfix_json("{\"a\":[1,2]}");
    CHECK(json_equal(json_object_get(ann, "extra"), extra));
    json_decref(extra);
    /* Empty cells are left out: defaults apply. */
    CHECK_STR(json_string_value(json_object_get(bob, "name")), "Bob, Jr.");
    CHECK(json_is_false(json_object_get(bob, "vip")));
    CHECK_STR(json_string_value(json_object_get(bob, "stage")), "new");
    CHECK(json_is_null(json_object_get(bob, "age")));
    json_decref(ann);
    json_decref(bob);
}

/* Records 3 and 5 (lines 4 and 7, after a two-line record) are bad. */
static const char *const mixed_csv =
    "name,age,email\n"
    "Good One,30,one@example.com\n"
    "\"Two\nLines\",31,two@example.com\n"
    "Bad Age,thirty,three@example.com\n"
    "Good Four,33,four@example.com\n"
    "Bad Mail,34,not-an-email\n"
    "Good Six,35,six@example.com\n";

static void all_or_nothing(void)
{
    fresh();
    json_t *res = NULL;
    REQUIRE(import(&sys, mixed_csv, CRM_IMPORT_ALL, &res) == CRM_OK);
    CHECK_INT(num(res, "created"), 0);
    CHECK_INT(num(res, "updated"), 0);
    CHECK_INT(num(res, "failed"), 2);
    REQUIRE(json_array_size(json_object_get(res, "errors")) == 2);
    CHECK_INT(num(err_at(res, 0), "line"), 5);
    CHECK_STR(json_string_value(json_object_get(err_at(res, 0), "field")), "age");
    CHECK_HAS(json_string_value(json_object_get(err_at(res, 0), "message")), "integer");
    CHECK_INT(num(err_at(res, 1), "line"), 7);
    CHECK_STR(json_string_value(json_object_get(err_at(res, 1), "field")), "email");
    CHECK_INT(count_contacts(), 0);
    CHECK_INT(crm_tx_depth(crm_ctx_conn(&sys)), 0);
    /* No history, no outbox rows survive either. */
    int64_t hist = -1;
    crm_conn_query_int(crm_ctx_conn(&sys),
                       "SELECT count(*) FROM core_history WHERE type = 'test.contact'", &hist, -1);
    CHECK_INT(hist, 0);
    json_decref(res);

    /* A unique conflict between two lines of the same file is found too. */
    const char *dup = "name,email\nA,same@example.com\nB,same@example.com\n";
    REQUIRE(import(&sys, dup, CRM_IMPORT_ALL, &res) == CRM_OK);
    CHECK_INT(num(res, "failed"), 1);
    CHECK_INT(num(err_at(res, 0), "line"), 3);
    CHECK_STR(json_string_value(json_object_get(err_at(res, 0), "field")), "email");
    CHECK_INT(count_contacts(), 0);
    json_decref(res);
}

static void line_mode_keeps_good_records(void)
{
    fresh();
    json_t *res = NULL;
    REQUIRE(import(&sys, mixed_csv, CRM_IMPORT_LINE, &res) == CRM_OK);
    CHECK_INT(num(res, "created"), 4);
    CHECK_INT(num(res, "failed"), 2);
    CHECK_INT(num(err_at(res, 0), "line"), 5);
    CHECK_INT(num(err_at(res, 1), "line"), 7);
    CHECK_INT(count_contacts(), 4);
    json_t *two = get(2);
    CHECK_STR(json_string_value(json_object_get(two, "name")), "Two\nLines");
    json_decref(two);
    json_decref(res);

    /* Malformed CSV and a wrong width are errors of their lines only. */
    const char *broken = "name,age\n"
                         "A,1\n"
                         "B,2,extra\n"
                         "C\"x,3\n"
                         "D,4\n"
                         "\"E,5\n";
    REQUIRE(import(&sys, broken, CRM_IMPORT_LINE, &res) == CRM_OK);
    CHECK_INT(num(res, "created"), 2);
    CHECK_INT(num(res, "failed"), 3);
    CHECK_INT(num(err_at(res, 0), "line"), 3);
    CHECK_HAS(json_string_value(json_object_get(err_at(res, 0), "message")), "3 fields");
    CHECK_INT(num(err_at(res, 1), "line"), 4);
    CHECK_HAS(json_string_value(json_object_get(err_at(res, 1), "message")), "quote");
    CHECK_INT(num(err_at(res, 2), "line"), 6);
    CHECK_HAS(json_string_value(json_object_get(err_at(res, 2), "message")), "unterminated");
    CHECK_INT(count_contacts(), 6);
    json_decref(res);
}

/* Line mode commits in batches; bad records on both sides of a boundary cost only themselves. */
static void line_mode_batches(void)
{
    fresh();
    int total = 2 * CRM_IMPORT_BATCH + 10, bad = 0;
    crm_buf csv = CRM_BUF_INIT;
    crm_buf_puts(&csv, "name,age\n");
    for (int i = 0; i < total; i++) {
        bool is_bad = i % 500 == 7 || i == CRM_IMPORT_BATCH - 1 || i == CRM_IMPORT_BATCH;
        bad += is_bad;
        if (is_bad) crm_buf_printf(&csv, ",%d\n", i); /* no name: required */
        else crm_buf_printf(&csv, "P%d,%d\n", i, i);
    }
    json_t *res = NULL;
    REQUIRE(crm_import_csv(&sys, "test.contact", csv.ptr, csv.len, CRM_IMPORT_LINE, &res) ==
            CRM_OK);
    CHECK_INT(num(res, "failed"), bad);
    CHECK_INT(num(res, "created"), total - bad);
    CHECK_INT(count_contacts(), total - bad);
    CHECK_INT(num(err_at(res, 0), "line"), 9);
    CHECK_INT(crm_tx_depth(crm_ctx_conn(&sys)), 0);
    json_decref(res);
    crm_buf_free(&csv);
}

static void update_by_id(void)
{
    fresh();
    int64_t a = kfix_create(k, "test.contact", "{\"name\":\"Ann\",\"age\":40,\"phone\":\"12345\"}");
    char csv[256];
    snprintf(csv, sizeof csv, "id,name,age,phone\n%lld,,41,\n,New,1,\n", (long long)a);
    json_t *res = NULL;
    REQUIRE(import(&sys, csv, CRM_IMPORT_ALL, &res) == CRM_OK);
    CHECK_INT(num(res, "updated"), 1);
    CHECK_INT(num(res, "created"), 1);
    json_decref(res);
    json_t *ann = get(a);
    CHECK_STR(json_string_value(json_object_get(ann, "name")), "Ann"); /* empty: unchanged */
    CHECK_INT(json_integer_value(json_object_get(ann, "age")), 41);
    CHECK_STR(json_string_value(json_object_get(ann, "phone")), "12345");
    CHECK_INT(json_integer_value(json_object_get(ann, "version")), 2);
    json_decref(ann);

    /* An id that does not exist, and one that is not an id. */
    REQUIRE(import(&sys, "id,age\n999,1\nabc,2\n", CRM_IMPORT_LINE, &res) == CRM_OK);
    CHECK_INT(num(res, "failed"), 2);
    CHECK_HAS(json_string_value(json_object_get(err_at(res, 0), "message")), "999");
    CHECK_STR(json_string_value(json_object_get(err_at(res, 1), "field")), "id");
    json_decref(res);
}

static void header_errors_before_any_write(void)
{
    fresh();
    json_t *res = NULL;
    CHECK_INT(import(&sys, "name,nope\nA,1\n", CRM_IMPORT_LINE, &res), CRM_EINVALID);
    CHECK(res == NULL);
    CHECK_STR(crm_error_last()->field, "nope");
    CHECK_HAS(crm_error_last()->message, "unknown column \"nope\"");
    CHECK_INT(import(&sys, "name,age,name\nA,1,B\n", CRM_IMPORT_LINE, &res), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "appears twice");
    CHECK_INT(import(&sys, "", CRM_IMPORT_LINE, &res), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "empty");
    CHECK_INT(import(&sys, "name,\nA,1\n", CRM_IMPORT_LINE, &res), CRM_EINVALID);
    CHECK_INT(import(&sys, "\"name\n", CRM_IMPORT_LINE, &res), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "line 1");
    CHECK_INT(crm_import_csv(&sys, "test.nope", "a\n", 2, CRM_IMPORT_ALL, &res), CRM_EINVALID);
    CHECK_INT(import(&sys, "name\nA\n", 7, &res), CRM_EINVALID);
    CHECK_INT(count_contacts(), 0);
    CHECK_INT(crm_tx_depth(crm_ctx_conn(&sys)), 0);
    /* System columns from an export are accepted and ignored. */
    REQUIRE(import(&sys, "created_at,version,name,deleted_at\n2000-01-01,7,A,\n", CRM_IMPORT_ALL,
                   &res) == CRM_OK);
    CHECK_INT(num(res, "created"), 1);
    json_t *a = get(1);
    CHECK_INT(json_integer_value(json_object_get(a, "version")), 1);
    json_decref(a);
    json_decref(res);
}

/* A user with a hidden and a read-only field, own scope. */
static int64_t restricted_user(const char *name, int64_t *role_out)
{
    int64_t u = kfix_user(k, name);
    char rname[64];
    snprintf(rname, sizeof rname, "role_%s", name);
    int64_t role = kfix_role(k, rname);
    for (int a = CRM_ACT_READ; a <= CRM_ACT_DELETE; a++)
        crm_perm_grant(k->perm, role, "test.contact", a, CRM_LEVEL_OWN);
    crm_perm_grant(k->perm, role, "test.company", CRM_ACT_READ, CRM_LEVEL_ALL);
    crm_perm_field(k->perm, role, "test.contact", "salary", CRM_ACCESS_HIDDEN);
    crm_perm_field(k->perm, role, "test.contact", "code", CRM_ACCESS_READ);
    crm_perm_user_role(k->perm, u, role, true);
    if (role_out) *role_out = role;
    return u;
}

static void import_respects_permissions(void)
{
    fresh();
    int64_t u = restricted_user("uma", NULL);
    crm_principal *p = kfix_principal(k, u);
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, p, NULL);
    json_t *res = NULL;
    /* A hidden field is "unknown", exactly like a field that does not exist. */
    CHECK_INT(import(&ctx, "name,salary\nA,1\n", CRM_IMPORT_ALL, &res), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "unknown column \"salary\"");
    CHECK_INT(import(&ctx, "name,code\nA,1\n", CRM_IMPORT_ALL, &res), CRM_EDENIED);
    CHECK_STR(crm_error_last()->field, "code");
    /* Own scope: another user's record cannot be updated (and is not even found). */
    int64_t other = kfix_create(k, "test.contact", "{\"name\":\"Other\"}");
    char csv[128];
    snprintf(csv, sizeof csv, "id,name\n%lld,Mine now\n,Mine\n", (long long)other);
    REQUIRE(import(&ctx, csv, CRM_IMPORT_LINE, &res) == CRM_OK);
    CHECK_INT(num(res, "created"), 1);
    CHECK_INT(num(res, "failed"), 1);
    CHECK_INT(num(err_at(res, 0), "line"), 2);
    json_decref(res);
    json_t *o = get(other);
    CHECK_STR(json_string_value(json_object_get(o, "name")), "Other");
    json_decref(o);
    json_t *mine = get(other + 1);
    CHECK_INT(json_integer_value(json_object_get(mine, "owner")), u);
    json_decref(mine);
    /* No create right and no id column: refused up front. */
    int64_t v = kfix_user(k, "vic");
    int64_t role = kfix_role(k, "readers");
    crm_perm_grant(k->perm, role, "test.contact", CRM_ACT_READ, CRM_LEVEL_ALL);
    crm_perm_user_role(k->perm, v, role, true);
    crm_principal *pv = kfix_principal(k, v);
    crm_ctx vctx;
    crm_ctx_init(&vctx, k, pv, NULL);
    CHECK_INT(import(&vctx, "name\nA\n", CRM_IMPORT_LINE, &res), CRM_EDENIED);
    crm_principal_free(pv);
    crm_principal_free(p);
}

static void hostile_input(void)
{
    fresh();
    json_t *res = NULL;
    /* A 1 MB field. */
    size_t big = 1 << 20;
    crm_buf csv = CRM_BUF_INIT;
    crm_buf_puts(&csv, "name,age\n\"");
    for (size_t i = 0; i < big; i++) crm_buf_putc(&csv, 'x');
    crm_buf_puts(&csv, "\",1\nok,2\n");
    REQUIRE(crm_import_csv(&sys, "test.contact", csv.ptr, csv.len, CRM_IMPORT_LINE, &res) ==
            CRM_OK);
    CHECK_INT(num(res, "created"), 1);
    CHECK_INT(num(res, "failed"), 1);
    CHECK_STR(json_string_value(json_object_get(err_at(res, 0), "field")), "name");
    CHECK_HAS(json_string_value(json_object_get(err_at(res, 0), "message")), "at most 40");
    json_decref(res);
    crm_buf_free(&csv);

    /* 10,000 columns: a header error, nothing written. */
    crm_buf_puts(&csv, "name");
    for (int i = 0; i < 10000; i++) crm_buf_printf(&csv, ",c%d", i);
    crm_buf_puts(&csv, "\nA\n");
    CHECK_INT(crm_import_csv(&sys, "test.contact", csv.ptr, csv.len, CRM_IMPORT_ALL, &res),
              CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "more than");
    crm_buf_free(&csv);
    /* 10,000 columns in a record under a small header: that line's error. */
    crm_buf_puts(&csv, "name\nA\n");
    for (int i = 0; i < 10000; i++) crm_buf_puts(&csv, "x,");
    crm_buf_puts(&csv, "\nB\n");
    REQUIRE(crm_import_csv(&sys, "test.contact", csv.ptr, csv.len, CRM_IMPORT_LINE, &res) ==
            CRM_OK);
    CHECK_INT(num(res, "created"), 2);
    CHECK_INT(num(err_at(res, 0), "line"), 3);
    json_decref(res);
    crm_buf_free(&csv);

    /* NUL bytes and invalid UTF-8, in text, enum and a header. */
    static const char nul[] = "name,stage\nA\0B,new\nC,new\0evil\nD,won\n";
    REQUIRE(crm_import_csv(&sys, "test.contact", nul, sizeof nul - 1, CRM_IMPORT_LINE, &res) ==
            CRM_OK);
    CHECK_INT(num(res, "created"), 1);
    CHECK_INT(num(res, "failed"), 2);
    CHECK_STR(json_string_value(json_object_get(err_at(res, 0), "field")), "name");
    CHECK_HAS(json_string_value(json_object_get(err_at(res, 0), "message")), "NUL");
    CHECK_STR(json_string_value(json_object_get(err_at(res, 1), "field")), "stage");
    json_decref(res);
    static const char bad_utf8[] = "name,extra\n\xff\xfe,1\nok,\"\xc3\x28\"\nfine,\"\"\"\xe2\x82\"\"\"\n";
    REQUIRE(crm_import_csv(&sys, "test.contact", bad_utf8, sizeof bad_utf8 - 1, CRM_IMPORT_LINE,
                           &res) == CRM_OK);
    CHECK_INT(num(res, "failed"), 3);
    CHECK_HAS(json_string_value(json_object_get(err_at(res, 0), "message")), "UTF-8");
    CHECK_STR(json_string_value(json_object_get(err_at(res, 1), "field")), "extra");
    /* The result itself is valid JSON (no raw bytes echoed into messages). */
    char *text = json_dumps(res, 0);
    CHECK(text != NULL);
    free(text);
    json_decref(res);
    static const char bad_header[] = "na\xffme\nA\n";
    CHECK_INT(crm_import_csv(&sys, "test.contact", bad_header, sizeof bad_header - 1,
                             CRM_IMPORT_LINE, &res), CRM_EINVALID);
    static const char nul_header[] = "name\0x\nA\n";
    CHECK_INT(crm_import_csv(&sys, "test.contact", nul_header, sizeof nul_header - 1,
                             CRM_IMPORT_LINE, &res), CRM_EINVALID);
    /* Bad kinds: bool, ref, json. */
    REQUIRE(import(&sys, "name,vip,company,extra\nA,maybe,,\nB,,-3,\nC,,,{oops\n", CRM_IMPORT_ALL,
                   &res) == CRM_OK);
    CHECK_INT(num(res, "failed"), 3);
    CHECK_STR(json_string_value(json_object_get(err_at(res, 0), "field")), "vip");
    CHECK_STR(json_string_value(json_object_get(err_at(res, 1), "field")), "company");
    CHECK_STR(json_string_value(json_object_get(err_at(res, 2), "field")), "extra");
    json_decref(res);
}

static void error_list_is_bounded(void)
{
    fresh();
    crm_buf csv = CRM_BUF_INIT;
    crm_buf_puts(&csv, "name,age\n");
    for (int i = 0; i < CRM_IMPORT_MAX_ERRORS + 500; i++) crm_buf_puts(&csv, "x,bad\n");
    json_t *res = NULL;
    REQUIRE(crm_import_csv(&sys, "test.contact", csv.ptr, csv.len, CRM_IMPORT_LINE, &res) ==
            CRM_OK);
    CHECK_INT(json_array_size(json_object_get(res, "errors")), CRM_IMPORT_MAX_ERRORS);
    CHECK_INT(num(res, "failed"), CRM_IMPORT_MAX_ERRORS + 500);
    CHECK(json_is_true(json_object_get(res, "truncated")));
    json_decref(res);
    REQUIRE(crm_import_csv(&sys, "test.contact", csv.ptr, csv.len, CRM_IMPORT_ALL, &res) ==
            CRM_OK);
    CHECK_INT(json_array_size(json_object_get(res, "errors")), CRM_IMPORT_MAX_ERRORS);
    CHECK(json_is_true(json_object_get(res, "truncated")));
    json_decref(res);
    crm_buf_free(&csv);
}

/* ---- Export ---- */

static void export_csv_guards_formulas(void)
{
    fresh();
    kfix_create(k, "test.contact", "{\"name\":\"=HYPERLINK(\\\"http://x\\\")\",\"age\":-5,"
                                   "\"balance\":\"-12.50\",\"phone\":\"+1 555 0100\","
                                   "\"extra\":-1,\"vip\":true}");
    kfix_create(k, "test.contact", "{\"name\":\"@SUM(A1)\",\"code\":\"\\tx\",\"extra\":{\"k\":\"v,w\"}}");
    kfix_create(k, "test.contact", "{\"name\":\"-2+3\",\"code\":\"\\rcmd\"}");
    char *csv = export_all(&sys, CRM_EXPORT_CSV, false, NULL);
    REQUIRE(csv != NULL);
    /* Header, then the records with system columns cut off for the comparison. */
    CHECK(strncmp(csv, "id,created_at,updated_at,owner,team,version,name,age,balance,vip,"
                       "birthday,met_at,stage,email,phone,site,company,extra,salary,code\r\n",
                  strlen("id,created_at,updated_at,owner,team,version,name,age,balance,vip,"
                         "birthday,met_at,stage,email,phone,site,company,extra,salary,code\r\n")) ==
          0);
    CHECK_HAS(csv, ",1,\"'=HYPERLINK(\"\"http://x\"\")\",-5,-12.50,true,,,new,,'+1 555 0100,,,'-1,,\r\n");
    CHECK_HAS(csv, ",1,'@SUM(A1),,,false,,,new,,,,,\"{\"\"k\"\":\"\"v,w\"\"}\",,'\tx\r\n");
    CHECK_HAS(csv, ",1,'-2+3,,,false,,,new,,,,,,,\"'\rcmd\"\r\n");
    free(csv);

    /* raw: admins only, no guard, audited as such. */
    csv = export_all(&sys, CRM_EXPORT_CSV, true, NULL);
    REQUIRE(csv != NULL);
    CHECK_HAS(csv, ",@SUM(A1),");
    CHECK(strstr(csv, "'@SUM") == NULL);
    free(csv);
    int64_t n = 0;
    crm_conn_query_int(crm_ctx_conn(&sys),
                       "SELECT count(*) FROM core_audit WHERE action = 'export.raw' AND target = "
                       "'test.contact'", &n, 0);
    CHECK_INT(n, 1);
    int64_t u = restricted_user("rita", NULL);
    crm_principal *p = kfix_principal(k, u);
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, p, NULL);
    crm_export *e = NULL;
    CHECK_INT(crm_export_open(&e, &ctx, "test.contact", NULL, CRM_EXPORT_CSV, true), CRM_EDENIED);
    CHECK(e == NULL);
    crm_principal_free(p);
}

/* The guarded export imports back unchanged: re-importing it changes nothing. */
static void export_import_round_trip(void)
{
    fresh();
    kfix_create(k, "test.company", "{\"name\":\"Acme\"}");
    kfix_create(k, "test.contact", "{\"name\":\"=cmd\",\"age\":-5,\"balance\":\"-0.50\","
                                   "\"phone\":\"+1 555 0100\",\"extra\":[-1,\"a\\nb\"],"
                                   "\"company\":1,\"birthday\":\"2000-02-29\","
                                   "\"met_at\":\"2024-01-01T00:00:00Z\",\"site\":\"https://x.y\","
                                   "\"email\":\"a@b.cd\",\"stage\":\"won\",\"vip\":true}");
    kfix_create(k, "test.contact", "{\"name\":\"multi\\nline, \\\"quoted\\\"\",\"extra\":\"-s\"}");
    char *csv = export_all(&sys, CRM_EXPORT_CSV, false, NULL);
    REQUIRE(csv != NULL);
    json_t *res = NULL;
    REQUIRE(crm_import_csv(&sys, "test.contact", csv, strlen(csv), CRM_IMPORT_ALL, &res) == CRM_OK);
    CHECK_INT(num(res, "updated"), 2);
    CHECK_INT(num(res, "failed"), 0);
    json_decref(res);
    for (int id = 1; id <= 2; id++) {
        json_t *r = get(id);
        CHECK_INT(json_integer_value(json_object_get(r, "version")), 1); /* nothing changed */
        json_decref(r);
    }
    free(csv);
}

static void export_hides_fields_and_other_records(void)
{
    fresh();
    int64_t u = restricted_user("hana", NULL);
    char buf[200];
    snprintf(buf, sizeof buf, "{\"name\":\"Hers\",\"salary\":9000,\"owner\":%lld}", (long long)u);
    kfix_create(k, "test.contact", buf);
    kfix_create(k, "test.contact", "{\"name\":\"Not hers\",\"salary\":7000}");
    crm_principal *p = kfix_principal(k, u);
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, p, NULL);

    char *csv = export_all(&ctx, CRM_EXPORT_CSV, false, NULL);
    REQUIRE(csv != NULL);
    CHECK(strstr(csv, "salary") == NULL);
    CHECK(strstr(csv, "9000") == NULL);
    CHECK(strstr(csv, "Not hers") == NULL);
    CHECK_HAS(csv, "Hers");
    CHECK_HAS(csv, ",code\r\n"); /* read-only fields are readable */
    free(csv);
    char *js = export_all(&ctx, CRM_EXPORT_JSON, false, NULL);
    REQUIRE(js != NULL);
    json_t *arr = json_loads(js, 0, NULL);
    REQUIRE(json_is_array(arr));
    CHECK_INT(json_array_size(arr), 1);
    CHECK(json_object_get(json_array_get(arr, 0), "salary") == NULL);
    json_decref(arr);
    free(js);

    /* Filtering, sorting or projecting on a hidden field is refused like an unknown field. */
    static const char *const by_salary[] = {"salary__gt", "1", NULL};
    CHECK(export_all(&ctx, CRM_EXPORT_CSV, false, by_salary) == NULL);
    CHECK_STR(crm_error_last()->field, "salary");
    static const char *const sort_salary[] = {"sort", "salary", NULL};
    CHECK(export_all(&ctx, CRM_EXPORT_CSV, false, sort_salary) == NULL);
    static const char *const proj_salary[] = {"fields", "name,salary", NULL};
    CHECK(export_all(&ctx, CRM_EXPORT_CSV, false, proj_salary) == NULL);
    crm_principal_free(p);
}

static void export_json_round_trips(void)
{
    fresh();
    kfix_create(k, "test.contact", "{\"name\":\"A\",\"extra\":{\"x\":[1,null]},\"balance\":\"3.10\"}");
    kfix_create(k, "test.contact", "{\"name\":\"B \\u00e9\\u4e2d\",\"vip\":true}");
    char *js = export_all(&sys, CRM_EXPORT_JSON, false, NULL);
    REQUIRE(js != NULL);
    json_error_t err;
    json_t *arr = json_loads(js, 0, &err);
    REQUIRE(json_is_array(arr));
    CHECK_INT(json_array_size(arr), 2);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *rec = json_array_get(arr, i);
        json_t *stored = get(json_integer_value(json_object_get(rec, "id")));
        CHECK(json_equal(rec, stored));
        json_decref(stored);
    }
    json_decref(arr);
    free(js);

    /* An empty export is still valid JSON, and a CSV of just the header. */
    static const char *const none[] = {"name", "nobody", NULL};
    js = export_all(&sys, CRM_EXPORT_JSON, false, none);
    REQUIRE(js != NULL);
    arr = json_loads(js, 0, NULL);
    CHECK(json_is_array(arr) && json_array_size(arr) == 0);
    json_decref(arr);
    free(js);
    static const char *const proj[] = {"name", "nobody", "fields", "name,age", NULL};
    char *csv = export_all(&sys, CRM_EXPORT_CSV, false, proj);
    CHECK_STR(csv, "id,name,age\r\n");
    free(csv);
}

static void export_walks_many_pages(void)
{
    fresh();
    int total = 2 * CRM_EXPORT_PAGE + 345;
    crm_buf in = CRM_BUF_INIT;
    crm_buf_puts(&in, "name,age\n");
    for (int i = 0; i < total; i++) crm_buf_printf(&in, "N%d,%d\n", i, (i * 7919) % total);
    json_t *res = NULL;
    REQUIRE(crm_import_csv(&sys, "test.contact", in.ptr, in.len, CRM_IMPORT_ALL, &res) == CRM_OK);
    REQUIRE(num(res, "created") == total);
    json_decref(res);
    crm_buf_free(&in);

    static const char *const params[] = {"sort", "-age", "age__gte", "5", NULL};
    crm_query q;
    crm_export *e = NULL;
    crm_query_init(&q);
    for (int i = 0; params[i]; i += 2) crm_query_add(&q, params[i], params[i + 1]);
    REQUIRE(crm_export_open(&e, &sys, "test.contact", &q, CRM_EXPORT_CSV, false) == CRM_OK);
    crm_query_free(&q);
    char *csv = drain(e, 4096);
    CHECK_INT(crm_export_count(e), total - 5);
    crm_export_free(e);
    REQUIRE(csv != NULL);
    /* Every age from total-1 down to 5, once each, in order. */
    int expect = total - 1, rows = 0;
    char *save = NULL;
    for (char *line = strtok_r(csv, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (rows++ == 0) continue;
        int field = 0;
        char *p = line;
        while (field < 7 && (p = strchr(p, ','))) field++, p++;
        if (!p) break;
        if (atoi(p) != expect) {
            CHECK_INT(atoi(p), expect);
            break;
        }
        expect--;
    }
    CHECK_INT(expect, 4);
    free(csv);

    /* Read one byte at a time through a page boundary: the same bytes. */
    crm_query_init(&q);
    crm_query_add(&q, "age__lt", "1100");
    crm_query_add(&q, "age__gte", "900");
    REQUIRE(crm_export_open(&e, &sys, "test.contact", &q, CRM_EXPORT_JSON, false) == CRM_OK);
    char *slow = drain(e, 1);
    crm_export_free(e);
    REQUIRE(crm_export_open(&e, &sys, "test.contact", &q, CRM_EXPORT_JSON, false) == CRM_OK);
    char *fast = drain(e, 1 << 20);
    crm_export_free(e);
    crm_query_free(&q);
    CHECK(slow && fast && strcmp(slow, fast) == 0);
    json_t *arr = json_loads(fast, 0, NULL);
    CHECK_INT(json_array_size(arr), 200);
    json_decref(arr);
    free(slow);
    free(fast);
}

static void export_is_audited(void)
{
    fresh();
    int64_t u = restricted_user("audra", NULL);
    crm_principal *p = kfix_principal(k, u);
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, p, "test");
    static const char *const params[] = {"name__like", "A%", "sort", "-name", NULL};
    char *csv = export_all(&ctx, CRM_EXPORT_JSON, false, params);
    CHECK(csv != NULL);
    free(csv);
    crm_stmt *st;
    REQUIRE(crm_stmt_prepare(crm_ctx_conn(&sys), &st, "SELECT user_id, action, target, detail "
                                                       "FROM core_audit ORDER BY id") == CRM_OK);
    REQUIRE(crm_stmt_step(st) == 1);
    CHECK_INT(crm_stmt_column_int(st, 0), u);
    CHECK_STR(crm_stmt_column_text(st, 1), "export");
    CHECK_STR(crm_stmt_column_text(st, 2), "test.contact");
    json_t *detail = json_loads(crm_stmt_column_text(st, 3), 0, NULL);
    CHECK_STR(json_string_value(json_object_get(detail, "format")), "json");
    json_t *f0 = json_array_get(json_object_get(detail, "filters"), 0);
    CHECK_STR(json_string_value(json_object_get(f0, "field")), "name");
    CHECK_STR(json_string_value(json_object_get(f0, "op")), "like");
    CHECK_STR(json_string_value(json_object_get(f0, "value")), "A%");
    CHECK_STR(json_string_value(json_array_get(json_object_get(detail, "sort"), 0)), "-name");
    json_decref(detail);
    CHECK_INT(crm_stmt_step(st), 0);
    crm_stmt_done(st);
    /* A refused export is not audited as done. */
    static const char *const bad[] = {"nope", "1", NULL};
    CHECK(export_all(&ctx, CRM_EXPORT_CSV, false, bad) == NULL);
    int64_t n = 0;
    crm_conn_query_int(crm_ctx_conn(&sys), "SELECT count(*) FROM core_audit", &n, 0);
    CHECK_INT(n, 1);
    crm_principal_free(p);
}

/* An after handler that vetoes age 13, once the row, its FTS entry and its history are written. */
static int veto_13(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)udata;
    if (json_integer_value(json_object_get(ev->record, "age")) != 13) return CRM_OK;
    return crm_error_set(CRM_EINVALID, "age", "13 is vetoed by a handler");
}

static int64_t count_sql(const char *sql)
{
    int64_t n = -1;
    crm_conn_query_int(crm_ctx_conn(&sys), sql, &n, -1);
    return n;
}

/*
 * Records that fail after part of them was written (a unique conflict at the INSERT, an after
 * handler's veto) cost only their own line, in both modes, inside and across chunks: every
 * imported record exists once, with one history row and one outbox row; nothing of a bad line
 * remains.
 */
static void failures_after_the_write(void)
{
    for (int mode = 0; mode < 2; mode++) {
        fresh();
        REQUIRE(crm_bus_subscribe(k->bus, "test.contact.created", CRM_PHASE_AFTER, 0, "veto13",
                                  veto_13, NULL) == CRM_OK);
        int total = CRM_IMPORT_BATCH + 50, bad = 0;
        crm_buf csv = CRM_BUF_INIT;
        crm_buf_puts(&csv, "name,age,email\n");
        for (int i = 0; i < total; i++) {
            if (i == 3 || i == CRM_IMPORT_BATCH + 7) {
                crm_buf_printf(&csv, "dup%d,20,p%d@x.io\n", i, i - 1); /* the line before's email */
                bad++;
            } else if (i == 10 || i == CRM_IMPORT_BATCH - 1) {
                crm_buf_printf(&csv, "veto%d,13,p%d@x.io\n", i, i);
                bad++;
            } else {
                crm_buf_printf(&csv, "ok%d,%d,p%d@x.io\n", i, 20 + i % 50, i); /* never 13 */
            }
        }
        json_t *res = NULL;
        int m = mode ? CRM_IMPORT_ALL : CRM_IMPORT_LINE;
        REQUIRE(crm_import_csv(&sys, "test.contact", csv.ptr, csv.len, m, &res) == CRM_OK);
        CHECK_INT(num(res, "failed"), bad);
        CHECK_INT(num(err_at(res, 0), "line"), 5);  /* i = 3 */
        CHECK_INT(num(err_at(res, 1), "line"), 12); /* i = 10 */
        CHECK_HAS(json_string_value(json_object_get(err_at(res, 1), "message")), "vetoed");
        CHECK_INT(num(err_at(res, 2), "line"), CRM_IMPORT_BATCH + 1);
        CHECK_INT(num(err_at(res, 3), "line"), CRM_IMPORT_BATCH + 9);
        int64_t want = mode ? 0 : total - bad;
        CHECK_INT(num(res, "created"), want);
        CHECK_INT(count_contacts(), want);
        CHECK_INT(count_sql("SELECT count(*) FROM \"test.contact\" WHERE name LIKE 'dup%' OR "
                            "name LIKE 'veto%'"), 0);
        CHECK_INT(count_sql("SELECT count(DISTINCT record_id) FROM core_history WHERE type = "
                            "'test.contact' AND action = 'create'"), want);
        CHECK_INT(count_sql("SELECT count(*) FROM core_history WHERE type = 'test.contact'"), want);
        CHECK_INT(count_sql("SELECT count(DISTINCT record_id) FROM core_outbox WHERE type = "
                            "'test.contact'"), want);
        CHECK_INT(count_sql("SELECT count(*) FROM core_outbox WHERE type = 'test.contact'"), want);
        CHECK_INT(count_sql("SELECT count(*) FROM \"test.contact:fts\""), want);
        json_decref(res);
        crm_buf_free(&csv);
    }
}

int main(void)
{
    RUN(import_every_kind);
    RUN(all_or_nothing);
    RUN(line_mode_keeps_good_records);
    RUN(line_mode_batches);
    RUN(failures_after_the_write);
    RUN(update_by_id);
    RUN(header_errors_before_any_write);
    RUN(import_respects_permissions);
    RUN(hostile_input);
    RUN(error_list_is_bounded);
    RUN(export_csv_guards_formulas);
    RUN(export_import_round_trip);
    RUN(export_hides_fields_and_other_records);
    RUN(export_json_round_trips);
    RUN(export_walks_many_pages);
    RUN(export_is_audited);
    if (k) crm_kernel_close(k);
    return t_finish("test_io");
}
