/* Tests of kernel/query.c: filters, sort, keyset pagination, projection, count, hostile input. */
#include "kfix.h"

#include "../../kernel/store.h"

#include <stdarg.h>

static crm_kernel *k;
static crm_ctx sys;

/* Run a list query given as "key", "value", ... NULL; returns rc, *out the answer. */
static int find(json_t **out, ...)
{
    crm_query q;
    va_list ap;
    int rc = CRM_OK;
    crm_query_init(&q);
    va_start(ap, out);
    for (const char *key; (key = va_arg(ap, const char *));) {
        const char *value = va_arg(ap, const char *);
        if (!rc) rc = crm_query_add(&q, key, value);
    }
    va_end(ap);
    *out = NULL;
    if (!rc) rc = crm_record_find(&sys, "test.contact", &q, out);
    crm_query_free(&q);
    return rc;
}

/* The "name"s of a list answer joined with spaces. */
static char *names(json_t *out)
{
    static char buf[4096];
    size_t i, len = 0;
    json_t *r;
    buf[0] = 0;
    json_array_foreach(json_object_get(out, "data"), i, r) {
        const char *n = json_string_value(json_object_get(r, "name"));
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? " " : "", n ? n : "-");
    }
    return buf;
}

static void setup(void)
{
    k = kfix_open();
    crm_ctx_init(&sys, k, crm_principal_system(), NULL);
    /* ages with ties and NULLs, balances, stages */
    static const char *const rows[] = {
        "{\"name\":\"a\",\"age\":30,\"balance\":\"10.00\",\"stage\":\"won\",\"email\":\"a@x.io\"}",
        "{\"name\":\"b\",\"age\":20,\"balance\":\"5.50\",\"stage\":\"new\"}",
        "{\"name\":\"c\",\"balance\":\"-1\",\"stage\":\"lost\"}",
        "{\"name\":\"d\",\"age\":30,\"stage\":\"won\",\"vip\":true}",
        "{\"name\":\"e\",\"age\":40,\"birthday\":\"1980-05-05\"}",
        "{\"name\":\"f\",\"birthday\":\"1999-12-31\"}",
        "{\"name\":\"g\",\"age\":20,\"vip\":true}",
        "{\"name\":\"h\",\"age\":50,\"stage\":\"lost\"}",
        "{\"name\":\"O'Brien; DROP TABLE x\",\"age\":60}",
        "{\"name\":\"Ωμέγα\",\"age\":70}",
    };
    for (size_t i = 0; i < CRM_ARRAY_LEN(rows); i++) kfix_create(k, "test.contact", rows[i]);
}

static void filter_ops(void)
{
    static const struct {
        const char *key, *value, *expect;
    } cases[] = {
        {"age", "30", "a d"},
        {"age__eq", "30", "a d"},
        {"age__ne", "30", "O'Brien; DROP TABLE x b c e f g h Ωμέγα"},
        {"age__gt", "40", "O'Brien; DROP TABLE x h Ωμέγα"},
        {"age__gte", "40", "O'Brien; DROP TABLE x e h Ωμέγα"},
        {"age__lt", "30", "b g"},
        {"age__lte", "20", "b g"},
        {"age__in", "20,40,99", "b e g"},
        {"age__null", "1", "c f"},
        {"age__null", "0", "O'Brien; DROP TABLE x a b d e g h Ωμέγα"},
        {"stage", "lost", "c h"},
        {"stage__in", "won,lost", "a c d h"},
        {"vip", "true", "d g"},
        {"balance__gt", "5", "a b"},
        {"balance", "5.5", "b"},
        {"birthday__lt", "1990-01-01", "e"},
        {"name__like", "O'B%", "O'Brien; DROP TABLE x"},
        {"name", "Ωμέγα", "Ωμέγα"},
        {"email", "a@X.IO", "a"},
        {"name", "O'Brien; DROP TABLE x", "O'Brien; DROP TABLE x"},
        {"id", "1 OR 1=1", NULL},
        {"name", "x') OR 1=1--", ""},
    };
    for (size_t i = 0; i < CRM_ARRAY_LEN(cases); i++) {
        json_t *out;
        int rc = find(&out, cases[i].key, cases[i].value, "sort", "name", "limit", "100", NULL);
        if (!cases[i].expect) {
            CHECK_INT(rc, CRM_EINVALID);
            continue;
        }
        CHECK_INT(rc, CRM_OK);
        if (rc) fprintf(stderr, "    %s=%s: %s\n", cases[i].key, cases[i].value, crm_error_last()->message);
        CHECK_STR(names(out), cases[i].expect);
        json_decref(out);
    }
}

static void bad_parameters(void)
{
    static const struct {
        const char *key, *value, *field, *msg;
    } cases[] = {
        {"limit", "0", "limit", "1 to 1000"},
        {"limit", "1001", "limit", "1 to 1000"},
        {"limit", "ten", "limit", "1 to 1000"},
        {"age__between", "1", "age__between", "unknown filter operator"},
        {"sort", "name;DROP TABLE x", "name;DROP TABLE x", "unknown field"},
        {"sort", "(SELECT 1)", "(SELECT 1)", "unknown field"},
        {"sort", "name,,age", "sort", "empty item"},
        {"sort", "extra", "extra", "cannot be sorted"},
        {"id) OR 1=1--", "1", "id) OR 1=1--", "unknown field"},
        {"age", "abc", "age", "not an integer"},
        {"vip", "maybe", "vip", "true or false"},
        {"birthday", "2023-02-30", "birthday", "date"},
        {"stage", "nope", "stage", "expected one of"},
        {"age__null", "perhaps", "age", "1 or 0"},
        {"age__like", "1%", "age", "only on text"},
        {"count", "yes", "count", "1 or 0"},
        {"cursor", "garbage!!", "cursor", "not valid"},
        {"fields", "name,nope", "nope", "unknown field"},
        {"extra", "1", "extra", "cannot be filtered"},
        {"deleted_at", "x", "deleted_at", "unknown field"},
    };
    for (size_t i = 0; i < CRM_ARRAY_LEN(cases); i++) {
        json_t *out;
        CHECK_INT(find(&out, cases[i].key, cases[i].value, NULL), CRM_EINVALID);
        CHECK_STR(crm_error_last()->field, cases[i].field);
        CHECK_HAS(crm_error_last()->message, cases[i].msg);
        CHECK(out == NULL);
    }
    /* the table is still there */
    json_t *out;
    CHECK_INT(find(&out, "count", "1", NULL), CRM_OK);
    CHECK_INT(json_integer_value(json_object_get(out, "count")), 10);
    json_decref(out);
    /* unknown type */
    crm_query q;
    crm_query_init(&q);
    CHECK_INT(crm_record_find(&sys, "nope.nope", &q, &out), CRM_EINVALID);
}

/* Walk every page with a given sort; pages join to the full sorted list, in order. */
static void walk(const char *sort, int limit, const char *expect)
{
    char lim[16], all[4096] = "";
    char *cursor = NULL;
    int pages = 0;
    snprintf(lim, sizeof lim, "%d", limit);
    for (;;) {
        json_t *out;
        int rc = cursor ? find(&out, "sort", sort, "limit", lim, "cursor", cursor, NULL)
                        : find(&out, "sort", sort, "limit", lim, NULL);
        free(cursor);
        cursor = NULL;
        CHECK_INT(rc, CRM_OK);
        if (rc) break;
        CHECK((int)json_array_size(json_object_get(out, "data")) <= limit);
        if (*all && json_array_size(json_object_get(out, "data"))) strcat(all, " ");
        strcat(all, names(out));
        json_t *next = json_object_get(out, "next");
        if (json_is_string(next)) cursor = crm_strdup(json_string_value(next));
        json_decref(out);
        if (!cursor || ++pages > 20) break;
    }
    free(cursor);
    CHECK_STR(all, expect);
}

static void sort_and_pages(void)
{
    /* binary collation: upper case sorts before lower case */
    const char *asc = "O'Brien; DROP TABLE x a b c d e f g h Ωμέγα";
    walk("name", 3, asc);
    walk("name", 1, asc);
    walk("name", 100, asc);
    walk("-name", 4, "Ωμέγα h g f e d c b a O'Brien; DROP TABLE x");
    /* NULLs first ascending, last descending; ties broken by id */
    walk("age,name", 3, "c f b g a d e h O'Brien; DROP TABLE x Ωμέγα");
    walk("-age,name", 3, "Ωμέγα O'Brien; DROP TABLE x h e a d b g c f");
    walk("-age,-name", 2, "Ωμέγα O'Brien; DROP TABLE x h e d a g b f c");
    /* stage defaults to "new"; within a stage, balance descending with NULLs last */
    walk("stage,-balance", 3, "c h b e f g O'Brien; DROP TABLE x Ωμέγα a d");
    walk("id", 4, "a b c d e f g h O'Brien; DROP TABLE x Ωμέγα"); /* insertion order */
    walk("-id", 4, "Ωμέγα O'Brien; DROP TABLE x h g f e d c b a");
}

static void cursor_is_bound_to_its_sort(void)
{
    json_t *out;
    REQUIRE(find(&out, "sort", "name", "limit", "2", NULL) == CRM_OK);
    char *cursor = crm_strdup(json_string_value(json_object_get(out, "next")));
    json_decref(out);
    CHECK_INT(find(&out, "sort", "-age", "limit", "2", "cursor", cursor, NULL), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "cursor");
    /* a forged cursor with the right shape but a string where the id goes */
    char *forged = crm_b64url_encode((const unsigned char *)"{\"s\":\"name,id\",\"v\":[\"a\",\"x\"]}", 29);
    CHECK_INT(find(&out, "sort", "name", "cursor", forged, NULL), CRM_EINVALID);
    free(forged);
    free(cursor);
}

static void projection_and_count(void)
{
    json_t *out;
    REQUIRE(find(&out, "fields", "name,age", "age", "30", "count", "1", "limit", "1", NULL) == CRM_OK);
    CHECK_INT(json_integer_value(json_object_get(out, "count")), 2);
    json_t *r = json_array_get(json_object_get(out, "data"), 0);
    CHECK(json_object_get(r, "id") != NULL);
    CHECK(json_object_get(r, "name") != NULL);
    CHECK(json_object_get(r, "age") != NULL);
    CHECK(json_object_get(r, "stage") == NULL);
    CHECK(json_object_get(r, "version") == NULL);
    CHECK(json_is_string(json_object_get(out, "next")));
    json_decref(out);
}

static void deleted_lists(void)
{
    json_t *out;
    REQUIRE(find(&out, "name", "h", NULL) == CRM_OK);
    int64_t id = json_integer_value(json_object_get(json_array_get(json_object_get(out, "data"), 0), "id"));
    json_decref(out);
    REQUIRE(crm_record_delete(&sys, "test.contact", id, 0) == CRM_OK);
    REQUIRE(find(&out, "count", "1", NULL) == CRM_OK);
    CHECK_INT(json_integer_value(json_object_get(out, "count")), 9);
    json_decref(out);
    REQUIRE(find(&out, "deleted", "1", NULL) == CRM_OK);
    CHECK_STR(names(out), "h");
    json_decref(out);
    crm_record_restore(&sys, "test.contact", id, NULL);
}

/* The HTTP list's text answer is byte for byte the JSON of crm_record_find, for every kind,
   escapes, projection, count, cursors and a principal with a hidden field. */
static void text_answer_is_the_json_answer(void)
{
    kfix_create(k, "test.contact",
                "{\"name\":\"q\\\"b\\\\s/\\t\\n\\r\\b\\f\\u0001\\u001f\\u007f é 中\",\"age\":-9,"
                "\"balance\":\"-0.05\",\"vip\":true,\"birthday\":\"2001-02-03\","
                "\"met_at\":\"2020-01-02T03:04:05Z\",\"email\":\"Q@X.io\",\"phone\":\"+1 555 0100\","
                "\"site\":\"https://x.io/a?b=c\",\"extra\":{\"k\":[1,2.5,\"x\",null,true]},"
                "\"salary\":9223372036854775807}");
    int64_t role = kfix_role(k, "reader-no-salary");
    crm_perm_grant(k->perm, role, "test.contact", CRM_ACT_READ, CRM_LEVEL_ALL);
    crm_perm_field(k->perm, role, "test.contact", "salary", CRM_ACCESS_HIDDEN);
    int64_t u = kfix_user(k, "lister");
    crm_perm_user_role(k->perm, u, role, true);
    crm_principal *p = kfix_principal(k, u);
    crm_ctx reader;
    crm_ctx_init(&reader, k, p, NULL);
    static const char *const queries[][8] = {
        {NULL},
        {"limit", "3", NULL},
        {"limit", "2", "sort", "-age,name", NULL},
        {"count", "1", "limit", "4", NULL},
        {"fields", "name,extra,deleted_at,updated_at", "limit", "20", NULL},
        {"name__like", "q%", NULL},
        {"age", "12345", "count", "1", NULL},
    };
    for (int who = 0; who < 2; who++)
        for (size_t i = 0; i < CRM_ARRAY_LEN(queries); i++) {
            crm_query q;
            json_t *out = NULL;
            char *text = NULL;
            size_t len = 0;
            crm_query_init(&q);
            for (int j = 0; queries[i][j]; j += 2)
                REQUIRE(crm_query_add(&q, queries[i][j], queries[i][j + 1]) == CRM_OK);
            crm_ctx *ctx = who ? &reader : &sys;
            REQUIRE(crm_record_find(ctx, "test.contact", &q, &out) == CRM_OK);
            REQUIRE(crm_record_find_text(ctx, "test.contact", &q, &text, &len) == CRM_OK);
            char *want = json_dumps(out, JSON_COMPACT);
            CHECK_STR(text, want);
            CHECK_INT((int64_t)len, (int64_t)strlen(want));
            if (who) CHECK(!strstr(text, "salary"));
            if (i == 5) CHECK(strstr(text, "\\u0001\\u001F\x7f") && strstr(text, "\\\"b\\\\s/"));
            free(want);
            free(text);
            json_decref(out);
            crm_query_free(&q);
        }
    /* errors are the same */
    crm_query q;
    char *text = NULL;
    size_t len;
    crm_query_init(&q);
    REQUIRE(crm_query_add(&q, "salary", "1") == CRM_OK);
    CHECK_INT(crm_record_find_text(&reader, "test.contact", &q, &text, &len), CRM_EINVALID);
    CHECK(text == NULL);
    crm_query_free(&q);
    crm_principal_free(p);
}

/* A keyset page deep into a list reads about a page of rows, not everything before it. */
static void deep_pages_use_the_index(void)
{
    crm_conn *conn = crm_store_conn(k->store);
    crm_tx_begin(conn);
    for (int i = 0; i < 3000; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "{\"name\":\"bulk%05d\",\"age\":%d}", i, i % 97);
        kfix_create(k, "test.contact", buf);
    }
    crm_tx_commit(conn);
    json_t *out;
    REQUIRE(find(&out, "sort", "name", "name__like", "bulk%", "limit", "1000", NULL) == CRM_OK);
    const char *c1 = json_string_value(json_object_get(out, "next"));
    REQUIRE(c1);
    char *cursor = crm_strdup(c1);
    json_decref(out);
    REQUIRE(find(&out, "sort", "name", "name__like", "bulk%", "limit", "1000", "cursor", cursor, NULL) == CRM_OK);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(out, "data"), 0), "name")),
              "bulk01000");
    json_decref(out);
    free(cursor);
}

int main(void)
{
    setup();
    RUN(filter_ops);
    RUN(bad_parameters);
    RUN(sort_and_pages);
    RUN(cursor_is_bound_to_its_sort);
    RUN(projection_and_count);
    RUN(deleted_lists);
    RUN(text_answer_is_the_json_answer);
    RUN(deep_pages_use_the_index);
    crm_kernel_close(k);
    return t_finish("test_query");
}
