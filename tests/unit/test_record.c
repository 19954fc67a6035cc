/* Tests of kernel/record.c: create, get, update, delete, restore, history. */
#include "kfix.h"

#include "../../kernel/store.h"

#include <pthread.h>

static crm_kernel *k;
static crm_ctx sys;

static json_t *get(const char *type, int64_t id)
{
    json_t *r = NULL;
    crm_record_get(&sys, type, id, false, &r);
    return r;
}

static int64_t count_rows(const char *sql)
{
    int64_t n = -1;
    crm_conn_query_int(crm_store_conn(k->store), sql, &n, -1);
    return n;
}

static void create_sets_system_fields(void)
{
    json_t *in = kfix_json("{\"name\":\"Ada\",\"age\":36,\"id\":999,\"version\":7,"
                           "\"created_by\":5}"),
           *out = NULL;
    crm_clock_set(1700000000);
    REQUIRE(crm_record_create(&sys, "test.contact", in, &out) == CRM_OK);
    CHECK(json_integer_value(json_object_get(out, "id")) != 999); /* never mass-assigned */
    CHECK_INT(json_integer_value(json_object_get(out, "version")), 1);
    CHECK_STR(json_string_value(json_object_get(out, "created_at")), "2023-11-14T22:13:20Z");
    CHECK_STR(json_string_value(json_object_get(out, "updated_at")), "2023-11-14T22:13:20Z");
    CHECK(json_is_null(json_object_get(out, "created_by")));
    CHECK(json_is_null(json_object_get(out, "deleted_at")));
    /* defaults applied */
    CHECK(json_is_false(json_object_get(out, "vip")));
    CHECK_STR(json_string_value(json_object_get(out, "stage")), "new");
    CHECK_INT(json_integer_value(json_object_get(out, "age")), 36);
    crm_clock_set(-1);
    json_decref(in);
    json_decref(out);
}

/* What a write returns is exactly what a read returns (no read-back after writing). */
static void written_equals_read(void)
{
    int64_t co = kfix_create(k, "test.company", "{\"name\":\"Initech\"}");
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"name\":\"Same\",\"age\":7,\"balance\":\"-0.5\",\"vip\":true,\"birthday\":\"2000-02-29\","
             "\"met_at\":\"2024-03-01 10:00:00-05:00\",\"email\":\"S@Ex.ORG\",\"company\":%lld,"
             "\"extra\":[1,{\"b\":null}],\"code\":\"c\"}", (long long)co);
    json_t *in = kfix_json(buf), *created = NULL, *read = NULL, *updated = NULL;
    REQUIRE(crm_record_create(&sys, "test.contact", in, &created) == CRM_OK);
    int64_t id = json_integer_value(json_object_get(created, "id"));
    read = get("test.contact", id);
    CHECK(json_equal(created, read));
    json_decref(read);
    json_t *patch = kfix_json("{\"age\":8,\"stage\":\"lost\",\"email\":null,\"balance\":3}");
    REQUIRE(crm_record_update(&sys, "test.contact", id, patch, 0, &updated) == CRM_OK);
    read = get("test.contact", id);
    CHECK(json_equal(updated, read));
    if (!json_equal(updated, read)) {
        char *a = json_dumps(updated, JSON_SORT_KEYS), *b = json_dumps(read, JSON_SORT_KEYS);
        fprintf(stderr, "    written %s\n    read    %s\n", a, b);
        free(a);
        free(b);
    }
    json_decref(read);
    json_decref(patch);
    json_decref(in);
    json_decref(created);
    json_decref(updated);
}

static void every_kind_round_trips(void)
{
    int64_t co = kfix_create(k, "test.company", "{\"name\":\"Acme\"}");
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"name\":\"Ελένη Παπαδοπούλου\",\"age\":-5,\"balance\":\"1234.5\",\"vip\":true,"
             "\"birthday\":\"1990-02-28\",\"met_at\":\"2024-03-01T10:00:00+02:00\","
             "\"stage\":\"won\",\"email\":\"Eleni@Example.COM\",\"phone\":\"+30 (210) 555-1234\","
             "\"site\":\"https://example.com/x\",\"company\":%lld,\"extra\":{\"a\":[1,2]},"
             "\"code\":\"X1\"}",
             (long long)co);
    int64_t id = kfix_create(k, "test.contact", buf);
    json_t *r = get("test.contact", id);
    REQUIRE(r);
    CHECK_STR(json_string_value(json_object_get(r, "name")), "Ελένη Παπαδοπούλου");
    CHECK_INT(json_integer_value(json_object_get(r, "age")), -5);
    CHECK_STR(json_string_value(json_object_get(r, "balance")), "1234.50");
    CHECK(json_is_true(json_object_get(r, "vip")));
    CHECK_STR(json_string_value(json_object_get(r, "birthday")), "1990-02-28");
    CHECK_STR(json_string_value(json_object_get(r, "met_at")), "2024-03-01T08:00:00Z");
    CHECK_STR(json_string_value(json_object_get(r, "email")), "Eleni@example.com");
    CHECK_INT(json_integer_value(json_object_get(r, "company")), co);
    CHECK_INT(json_integer_value(json_array_get(json_object_get(json_object_get(r, "extra"), "a"), 1)), 2);
    CHECK_STR(json_string_value(json_object_get(r, "code")), "X1");
    /* the create's history: every non-null field as [null, value as the API shows it] */
    json_t *h = NULL;
    REQUIRE(crm_record_history(&sys, "test.contact", id, &h) == CRM_OK);
    json_t *changes = json_object_get(json_array_get(h, 0), "changes");
    const char *key;
    json_t *v;
    int n = 0;
    json_object_foreach(r, key, v)
    {
        if (!crm_type_field(crm_schema_type(k->schema, "test.contact"), key) || json_is_null(v))
            continue;
        json_t *pair = json_object_get(changes, key);
        n++;
        if (!json_is_array(pair) || !json_is_null(json_array_get(pair, 0)) ||
            !json_equal(json_array_get(pair, 1), v)) {
            fprintf(stderr, "    history of %s differs\n", key);
            CHECK(0);
        }
    }
    CHECK_INT((int64_t)json_object_size(changes), n);
    CHECK_INT(n, 13); /* every field given (salary was not) */
    json_decref(h);
    json_decref(r);
}

/* Each bad value is refused with an error naming the field, and nothing is written. */
static void bad_values_refused_naming_the_field(void)
{
    static const struct {
        const char *json;
        const char *field;
        const char *msg;
    } cases[] = {
        {"{\"age\":1}", "name", "required"},
        {"{\"name\":\"\"}", "name", "required"},
        {"{\"name\":null}", "name", "required"},
        {"{\"name\":\"x\",\"nope\":1}", "nope", "unknown field"},
        {"{\"name\":\"x\",\"age\":\"12\"}", "age", "integer"},
        {"{\"name\":\"x\",\"age\":1.5}", "age", "integer"},
        {"{\"name\":\"x\",\"balance\":\"1.234\"}", "balance", "decimal"},
        {"{\"name\":\"x\",\"balance\":\"12a\"}", "balance", "decimal"},
        {"{\"name\":\"x\",\"balance\":\"99999999999999999999\"}", "balance", "decimal"},
        {"{\"name\":\"x\",\"vip\":1}", "vip", "true or false"},
        {"{\"name\":\"x\",\"birthday\":\"2023-02-29\"}", "birthday", "date"},
        {"{\"name\":\"x\",\"birthday\":\"2024-01-01T10:00:00Z\"}", "birthday", "without a time"},
        {"{\"name\":\"x\",\"met_at\":\"yesterday\"}", "met_at", "date-time"},
        {"{\"name\":\"x\",\"stage\":\"maybe\"}", "stage", "new, won, lost"},
        {"{\"name\":\"x\",\"email\":\"not-an-email\"}", "email", "email"},
        {"{\"name\":\"x\",\"email\":\"a@b\"}", "email", "email"},
        {"{\"name\":\"x\",\"phone\":\"call me\"}", "phone", "phone"},
        {"{\"name\":\"x\",\"phone\":\"12\"}", "phone", "phone"},
        {"{\"name\":\"x\",\"site\":\"javascript:alert(1)\"}", "site", "URL"},
        {"{\"name\":\"x\",\"site\":\"data:text/html,x\"}", "site", "URL"},
        {"{\"name\":\"x\",\"site\":\"vbscript:x\"}", "site", "URL"},
        {"{\"name\":\"x\",\"company\":424242}", "company", "no test.company record"},
        {"{\"name\":\"x\",\"company\":\"1\"}", "company", "test.company"},
        {"{\"name\":\"0123456789012345678901234567890123456789x\"}", "name", "at most 40"},
        {"{\"name\":\"x\",\"owner\":\"me\"}", "owner", "user id"},
        {"{\"name\":\"x\",\"owner\":987654}", "owner", "no user"},
    };
    int64_t before = count_rows("SELECT count(*) FROM \"test.contact\"");
    int64_t hist = count_rows("SELECT count(*) FROM core_history");
    int64_t outbox = count_rows("SELECT count(*) FROM core_outbox");
    for (size_t i = 0; i < CRM_ARRAY_LEN(cases); i++) {
        json_t *in = kfix_json(cases[i].json), *out = NULL;
        int rc = crm_record_create(&sys, "test.contact", in, &out);
        CHECK_INT(rc, CRM_EINVALID);
        CHECK_STR(crm_error_last()->field, cases[i].field);
        CHECK_HAS(crm_error_last()->message, cases[i].msg);
        CHECK(out == NULL);
        json_decref(in);
    }
    /* an enum value with an embedded NUL is not the value before the NUL */
    json_t *nul = kfix_json("{\"name\":\"x\"}");
    json_object_set_new(nul, "stage", json_stringn("won\0evil", 8));
    CHECK_INT(crm_record_create(&sys, "test.contact", nul, NULL), CRM_EINVALID);
    CHECK_STR(crm_error_last()->field, "stage");
    json_decref(nul);
    /* invalid UTF-8 inside a string (made without Jansson's check) */
    json_t *in = json_object();
    json_object_set_new(in, "name", json_stringn_nocheck("ab\xff\xfe", 4));
    CHECK_INT(crm_record_create(&sys, "test.contact", in, NULL), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "UTF-8");
    json_decref(in);
    in = kfix_json("{\"name\":\"x\"}");
    CHECK_INT(crm_record_create(&sys, "test.nosuch", in, NULL), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "unknown type \"test.nosuch\"");
    json_decref(in);
    CHECK_INT(count_rows("SELECT count(*) FROM \"test.contact\""), before);
    CHECK_INT(count_rows("SELECT count(*) FROM core_history"), hist);
    CHECK_INT(count_rows("SELECT count(*) FROM core_outbox"), outbox);
}

static void unique_conflict_names_field(void)
{
    kfix_create(k, "test.contact", "{\"name\":\"A\",\"email\":\"dup@example.com\"}");
    json_t *in = kfix_json("{\"name\":\"B\",\"email\":\"dup@EXAMPLE.com\"}");
    CHECK_INT(crm_record_create(&sys, "test.contact", in, NULL), CRM_ECONFLICT);
    CHECK_STR(crm_error_last()->field, "email");
    CHECK_HAS(crm_error_last()->message, "another test.contact record");
    json_decref(in);
}

static void update_versions_history_and_noop(void)
{
    int64_t id = kfix_create(k, "test.contact", "{\"name\":\"Bob\",\"age\":30}");
    json_t *patch = kfix_json("{\"age\":31,\"stage\":\"won\"}"), *out = NULL;
    REQUIRE(crm_record_update(&sys, "test.contact", id, patch, 1, &out) == CRM_OK);
    CHECK_INT(json_integer_value(json_object_get(out, "version")), 2);
    CHECK_INT(json_integer_value(json_object_get(out, "age")), 31);
    json_decref(out);
    /* stale version */
    CHECK_INT(crm_record_update(&sys, "test.contact", id, patch, 1, &out), CRM_ESTALE);
    CHECK_HAS(crm_error_last()->message, "version 1");
    /* same values again: nothing written */
    REQUIRE(crm_record_update(&sys, "test.contact", id, patch, 0, &out) == CRM_OK);
    CHECK_INT(json_integer_value(json_object_get(out, "version")), 2);
    json_decref(out);
    json_decref(patch);
    /* readonly field */
    patch = kfix_json("{\"code\":\"Z\"}");
    crm_principal *p = kfix_principal(k, kfix_user(k, "ro_tester"));
    crm_ctx uctx;
    crm_ctx_init(&uctx, k, p, NULL);
    int64_t role = kfix_role(k, "editors");
    crm_perm_grant(k->perm, role, "test.contact", CRM_ACT_READ, CRM_LEVEL_ALL);
    crm_perm_grant(k->perm, role, "test.contact", CRM_ACT_UPDATE, CRM_LEVEL_ALL);
    crm_perm_user_role(k->perm, crm_principal_user(p), role, true);
    CHECK_INT(crm_record_update(&uctx, "test.contact", id, patch, 0, NULL), CRM_EDENIED);
    CHECK_STR(crm_error_last()->field, "code");
    crm_principal_free(p);
    json_decref(patch);

    json_t *h = NULL;
    REQUIRE(crm_record_history(&sys, "test.contact", id, &h) == CRM_OK);
    CHECK_INT(json_array_size(h), 2);
    json_t *upd = json_array_get(h, 1);
    CHECK_STR(json_string_value(json_object_get(upd, "action")), "update");
    json_t *age = json_object_get(json_object_get(upd, "changes"), "age");
    CHECK_INT(json_integer_value(json_array_get(age, 0)), 30);
    CHECK_INT(json_integer_value(json_array_get(age, 1)), 31);
    json_t *stage = json_object_get(json_object_get(upd, "changes"), "stage");
    CHECK_STR(json_string_value(json_array_get(stage, 0)), "new");
    CHECK_STR(json_string_value(json_array_get(stage, 1)), "won");
    CHECK(json_object_get(json_object_get(upd, "changes"), "name") == NULL);
    json_decref(h);
}

static void history_records_via(void)
{
    crm_ctx rule;
    crm_ctx_init(&rule, k, crm_principal_system(), "rule scripts/a.lua:scoring");
    json_t *in = kfix_json("{\"name\":\"Via\"}"), *out = NULL, *h = NULL;
    REQUIRE(crm_record_create(&rule, "test.contact", in, &out) == CRM_OK);
    int64_t id = json_integer_value(json_object_get(out, "id"));
    REQUIRE(crm_record_history(&sys, "test.contact", id, &h) == CRM_OK);
    CHECK_STR(json_string_value(json_object_get(json_array_get(h, 0), "via")),
              "rule scripts/a.lua:scoring");
    json_decref(in);
    json_decref(out);
    json_decref(h);
}

static void soft_delete_and_restore(void)
{
    int64_t id = kfix_create(k, "test.contact", "{\"name\":\"Del\",\"email\":\"del@example.com\"}");
    CHECK_INT(crm_record_delete(&sys, "test.contact", id, 5), CRM_ESTALE);
    REQUIRE(crm_record_delete(&sys, "test.contact", id, 1) == CRM_OK);
    json_t *r = NULL;
    CHECK_INT(crm_record_get(&sys, "test.contact", id, false, &r), CRM_ENOTFOUND);
    REQUIRE(crm_record_get(&sys, "test.contact", id, true, &r) == CRM_OK);
    CHECK(json_is_string(json_object_get(r, "deleted_at")));
    json_decref(r);
    /* a soft-deleted record frees its unique value ... */
    int64_t other = kfix_create(k, "test.contact", "{\"name\":\"New\",\"email\":\"del@example.com\"}");
    /* ... so restoring it now conflicts */
    CHECK_INT(crm_record_restore(&sys, "test.contact", id, &r), CRM_ECONFLICT);
    REQUIRE(crm_record_delete(&sys, "test.contact", other, 0) == CRM_OK);
    REQUIRE(crm_record_restore(&sys, "test.contact", id, &r) == CRM_OK);
    CHECK(json_is_null(json_object_get(r, "deleted_at")));
    CHECK_INT(json_integer_value(json_object_get(r, "version")), 3);
    json_decref(r);
    CHECK_INT(crm_record_delete(&sys, "test.contact", 999999, 0), CRM_ENOTFOUND);
    json_t *h = NULL;
    REQUIRE(crm_record_history(&sys, "test.contact", id, &h) == CRM_OK);
    CHECK_INT(json_array_size(h), 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(h, 1), "action")), "delete");
    CHECK_STR(json_string_value(json_object_get(json_array_get(h, 2), "action")), "restore");
    json_decref(h);
}

static void fts_follows_writes(void)
{
    int64_t id = kfix_create(k, "test.contact", "{\"name\":\"Zebulon Quartz\"}");
    CHECK_INT(count_rows("SELECT count(*) FROM \"test.contact:fts\" WHERE \"test.contact:fts\" "
                         "MATCH 'zebu*'"), 1);
    json_t *patch = kfix_json("{\"name\":\"Yolanda Quartz\"}");
    REQUIRE(crm_record_update(&sys, "test.contact", id, patch, 0, NULL) == CRM_OK);
    CHECK_INT(count_rows("SELECT count(*) FROM \"test.contact:fts\" WHERE \"test.contact:fts\" "
                         "MATCH 'zebu*'"), 0);
    CHECK_INT(count_rows("SELECT count(*) FROM \"test.contact:fts\" WHERE \"test.contact:fts\" "
                         "MATCH 'yola*'"), 1);
    REQUIRE(crm_record_delete(&sys, "test.contact", id, 0) == CRM_OK);
    CHECK_INT(count_rows("SELECT count(*) FROM \"test.contact:fts\" WHERE \"test.contact:fts\" "
                         "MATCH 'yola*'"), 0);
    REQUIRE(crm_record_restore(&sys, "test.contact", id, NULL) == CRM_OK);
    CHECK_INT(count_rows("SELECT count(*) FROM \"test.contact:fts\" WHERE \"test.contact:fts\" "
                         "MATCH 'yola*'"), 1);
    json_decref(patch);
    /* index writes wait for the commit, and go with a rollback */
    crm_conn *conn = crm_store_conn(k->store);
    REQUIRE(crm_tx_begin(conn) == CRM_OK);
    kfix_create(k, "test.contact", "{\"name\":\"Quokka Island\"}");
    crm_tx_rollback(conn);
    REQUIRE(crm_tx_begin(conn) == CRM_OK);
    kfix_create(k, "test.contact", "{\"name\":\"Wombat Burrow\"}");
    REQUIRE(crm_tx_commit(conn) == CRM_OK);
    CHECK_INT(count_rows("SELECT count(*) FROM \"test.contact:fts\" WHERE \"test.contact:fts\" "
                         "MATCH 'quokk*'"), 0);
    CHECK_INT(count_rows("SELECT count(*) FROM \"test.contact:fts\" WHERE \"test.contact:fts\" "
                         "MATCH 'womba*'"), 1);
}

static void custom_field_at_run_time(void)
{
    int64_t id = kfix_create(k, "test.contact", "{\"name\":\"Before\"}");
    json_t *spec = kfix_json("{\"name\":\"loyalty\",\"kind\":\"int\",\"required\":true}");
    CHECK_INT(crm_schema_add_field(k->schema, "test.contact", spec, "custom"), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "default");
    json_decref(spec);
    spec = kfix_json("{\"name\":\"loyalty\",\"kind\":\"int\",\"required\":true,\"default\":10,"
                     "\"indexed\":true}");
    REQUIRE(crm_schema_add_field(k->schema, "test.contact", spec, "custom") == CRM_OK);
    CHECK_INT(crm_schema_add_field(k->schema, "test.contact", spec, "custom"), CRM_ECONFLICT);
    json_decref(spec);
    json_t *r = get("test.contact", id);
    CHECK_INT(json_integer_value(json_object_get(r, "loyalty")), 10);
    json_decref(r);
    spec = kfix_json("{\"name\":\"nickname\",\"kind\":\"text\",\"searchable\":true}");
    REQUIRE(crm_schema_add_field(k->schema, "test.contact", spec, "custom") == CRM_OK);
    json_decref(spec);
    int64_t id2 = kfix_create(k, "test.contact", "{\"name\":\"After\",\"nickname\":\"Xylophone\"}");
    CHECK_INT(count_rows("SELECT count(*) FROM \"test.contact:fts\" WHERE \"test.contact:fts\" "
                         "MATCH 'xylo*'"), 1);
    r = get("test.contact", id2);
    CHECK_STR(json_string_value(json_object_get(r, "nickname")), "Xylophone");
    json_decref(r);
    /* bad specs */
    static const char *const bad[] = {
        "{\"name\":\"id\",\"kind\":\"int\"}",
        "{\"name\":\"Bad-Name\",\"kind\":\"int\"}",
        "{\"name\":\"x1\",\"kind\":\"money\"}",
        "{\"name\":\"x2\",\"kind\":\"enum\"}",
        "{\"name\":\"x3\",\"kind\":\"ref\"}",
        "{\"name\":\"x4\",\"kind\":\"int\",\"searchable\":true}",
        "{\"name\":\"x5\",\"kind\":\"text\",\"max_length\":0}",
        "{\"name\":\"x6\",\"kind\":\"int\",\"default\":\"ten\"}",
        "{\"name\":\"x7\",\"kind\":\"int\",\"colour\":\"red\"}",
    };
    for (size_t i = 0; i < CRM_ARRAY_LEN(bad); i++) {
        spec = kfix_json(bad[i]);
        CHECK_INT(crm_schema_add_field(k->schema, "test.contact", spec, "custom"), CRM_EINVALID);
        json_decref(spec);
    }
    /* survives a restart */
    char dir[256];
    snprintf(dir, sizeof dir, "%s", k->data_dir);
    crm_kernel_close(k);
    k = kfix_open_at(dir);
    crm_ctx_init(&sys, k, crm_principal_system(), NULL);
    const crm_type *t = crm_schema_type(k->schema, "test.contact");
    REQUIRE(t);
    CHECK(crm_type_field(t, "loyalty") != NULL);
    CHECK(t->searchable);
    r = get("test.contact", id2);
    CHECK_STR(json_string_value(json_object_get(r, "nickname")), "Xylophone");
    json_decref(r);
}

/* An after handler that changes the record again: bumps 31 to 50. */
static int bump_to_50(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    if (json_integer_value(json_object_get(ev->record, "age")) != 31) return CRM_OK;
    json_t *patch = json_pack("{s:i}", "age", 50);
    int rc = crm_record_update(ctx, ev->type, ev->id, patch, 0, NULL);
    json_decref(patch);
    return rc;
}

/* The outbox is in commit order: a handler's nested change comes after the change that caused it. */
static void outbox_order_with_nested_after_change(void)
{
    REQUIRE(crm_bus_subscribe(k->bus, "test.contact.updated", CRM_PHASE_AFTER, 0, "bump", bump_to_50,
                              NULL) == CRM_OK);
    int64_t id = kfix_create(k, "test.contact", "{\"name\":\"Nested\",\"age\":30}");
    json_t *patch = kfix_json("{\"age\":31}"), *events = NULL;
    REQUIRE(crm_record_update(&sys, "test.contact", id, patch, 0, NULL) == CRM_OK);
    json_decref(patch);
    REQUIRE(crm_bus_events(k->bus, 0, 1000, &events) == CRM_OK);
    int64_t last_age = -1, prev_seq = 0;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) {
        CHECK(json_integer_value(json_object_get(e, "seq")) > prev_seq);
        prev_seq = json_integer_value(json_object_get(e, "seq"));
        if (json_integer_value(json_object_get(e, "id")) == id &&
            strcmp(json_string_value(json_object_get(e, "topic")), "test.contact.updated") == 0)
            last_age = json_integer_value(json_object_get(json_object_get(e, "record"), "age"));
    }
    CHECK_INT(last_age, 50);
    json_t *r = get("test.contact", id);
    CHECK_INT(json_integer_value(json_object_get(r, "age")), 50);
    json_decref(r);
    json_decref(events);
}

/* GDPR erase: the old values leave history and the outbox too. */
static void forget_erases_history_and_events(void)
{
    int64_t id = kfix_create(k, "test.contact", "{\"name\":\"Forget Me\",\"email\":\"forget@me.io\"}");
    json_t *patch = kfix_json("{\"email\":null,\"name\":\"Erased\"}");
    REQUIRE(crm_record_update(&sys, "test.contact", id, patch, 0, NULL) == CRM_OK);
    json_decref(patch);
    json_t *fields = kfix_json("[\"email\",\"name\"]");
    /* not for ordinary users */
    crm_principal *p = kfix_principal(k, kfix_user(k, "forgetter"));
    crm_ctx uctx;
    crm_ctx_init(&uctx, k, p, NULL);
    CHECK_INT(crm_record_forget(&uctx, "test.contact", id, fields), CRM_EDENIED);
    crm_principal_free(p);
    json_t *bad = kfix_json("[\"nope\"]");
    CHECK_INT(crm_record_forget(&sys, "test.contact", id, bad), CRM_EINVALID);
    json_decref(bad);
    REQUIRE(crm_record_forget(&sys, "test.contact", id, fields) == CRM_OK);
    json_decref(fields);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM core_history WHERE type = 'test.contact' AND "
             "record_id = %lld AND (changes LIKE '%%forget@me.io%%' OR changes LIKE '%%Forget Me%%')",
             (long long)id);
    CHECK_INT(count_rows(sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM core_outbox WHERE type = 'test.contact' AND "
             "record_id = %lld AND (payload LIKE '%%forget@me.io%%' OR payload LIKE '%%Forget Me%%')",
             (long long)id);
    CHECK_INT(count_rows(sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM core_history WHERE type = 'test.contact' AND "
             "record_id = %lld AND changes LIKE '%%[erased]%%'", (long long)id);
    CHECK_INT(count_rows(sql), 2);
    /* the record as it is now is untouched by forgetting */
    json_t *r = get("test.contact", id);
    CHECK_STR(json_string_value(json_object_get(r, "name")), "Erased");
    json_decref(r);
}

/* 8 threads increment a counter with read-modify-write under optimistic concurrency. */
typedef struct {
    int64_t id;
    int stale, ok, other;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    for (int i = 0; i < 25;) {
        json_t *r = NULL;
        if (crm_record_get(&ctx, "test.contact", a->id, false, &r)) {
            a->other++;
            break;
        }
        int64_t v = json_integer_value(json_object_get(r, "version"));
        json_t *patch = json_pack("{s:I}", "age", json_integer_value(json_object_get(r, "age")) + 1);
        int rc = crm_record_update(&ctx, "test.contact", a->id, patch, v, NULL);
        json_decref(patch);
        json_decref(r);
        if (rc == CRM_OK) {
            a->ok++;
            i++;
        } else if (rc == CRM_ESTALE) a->stale++;
        else {
            a->other++;
            fprintf(stderr, "worker: %s\n", crm_error_last()->message);
            break;
        }
    }
    crm_store_release_thread(k->store);
    return NULL;
}

static void no_lost_updates_under_8_threads(void)
{
    int64_t id = kfix_create(k, "test.contact", "{\"name\":\"Counter\",\"age\":0}");
    pthread_t th[8];
    worker_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (worker_arg){.id = id};
        pthread_create(&th[i], NULL, worker, &args[i]);
    }
    int ok = 0, other = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok;
        other += args[i].other;
    }
    CHECK_INT(other, 0); /* no SQLITE_BUSY or anything else escaped */
    CHECK_INT(ok, 200);
    json_t *r = get("test.contact", id);
    CHECK_INT(json_integer_value(json_object_get(r, "age")), 200);
    CHECK_INT(json_integer_value(json_object_get(r, "version")), 201);
    json_decref(r);
}

int main(void)
{
    k = kfix_open();
    crm_ctx_init(&sys, k, crm_principal_system(), NULL);
    RUN(create_sets_system_fields);
    RUN(every_kind_round_trips);
    RUN(written_equals_read);
    RUN(bad_values_refused_naming_the_field);
    RUN(unique_conflict_names_field);
    RUN(update_versions_history_and_noop);
    RUN(history_records_via);
    RUN(soft_delete_and_restore);
    RUN(fts_follows_writes);
    RUN(custom_field_at_run_time);
    RUN(no_lost_updates_under_8_threads);
    RUN(outbox_order_with_nested_after_change);
    RUN(forget_erases_history_and_events);
    crm_kernel_close(k);
    return t_finish("test_record");
}
