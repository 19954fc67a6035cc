/* Tests of kernel/schema.c: type declaration, names, persistence, concurrent readers. */
#include "kfix.h"

#include "../../kernel/store.h"

#include <pthread.h>

static crm_kernel *k;

static int define(const char *name, const char *owner, const char *fields)
{
    json_t *f = kfix_json(fields);
    int rc = crm_schema_define_type(k->schema, name, "Label", owner, f);
    json_decref(f);
    return rc;
}

static void core_types_exist(void)
{
    static const char *const names[] = {"core.user", "core.role", "core.team"};
    for (size_t i = 0; i < CRM_ARRAY_LEN(names); i++) {
        const crm_type *t = crm_schema_type(k->schema, names[i]);
        REQUIRE(t);
        CHECK(t->system);
    }
    const crm_type *u = crm_schema_type(k->schema, "core.user");
    CHECK(crm_type_field(u, "username") != NULL);
    CHECK(crm_type_field(u, "password") == NULL); /* hashes live outside the record */
}

static void type_names_checked(void)
{
    static const char *const bad[] = {"contact", "crm.", ".contact", "crm.con.tact", "Crm.contact",
                                      "crm.con tact", "crm.contact;drop", "crm.\"x\"", ""};
    for (size_t i = 0; i < CRM_ARRAY_LEN(bad); i++) {
        CHECK_INT(define(bad[i], "crm", "[]"), CRM_EINVALID);
        CHECK_HAS(crm_error_last()->message, "not valid");
    }
    CHECK_INT(define("crm.thing", "Bad Owner", "[]"), CRM_EINVALID);
    CHECK_INT(define("crm.thing", "crm", "{}"), CRM_EINVALID);
    CHECK(crm_schema_type(k->schema, "crm.thing") == NULL);
}

static void define_is_idempotent_and_owned(void)
{
    REQUIRE(define("shop.item", "shop", "[{\"name\":\"title\",\"kind\":\"text\"}]") == CRM_OK);
    /* a plugin's next version re-declares with one more field */
    REQUIRE(define("shop.item", "shop",
                   "[{\"name\":\"title\",\"kind\":\"text\"},{\"name\":\"price\",\"kind\":\"decimal\"}]") == CRM_OK);
    const crm_type *t = crm_schema_type(k->schema, "shop.item");
    REQUIRE(t);
    CHECK_INT(crm_type_nfields(t), 2);
    CHECK_STR(t->title_field, "title");
    /* another owner cannot take it over */
    CHECK_INT(define("shop.item", "other", "[]"), CRM_ECONFLICT);
    CHECK_HAS(crm_error_last()->message, "already declared by \"shop\"");
    /* a field declared twice in one declaration */
    CHECK_INT(define("shop.dup", "shop",
                     "[{\"name\":\"a\",\"kind\":\"text\"},{\"name\":\"a\",\"kind\":\"int\"}]"), CRM_EINVALID);
    CHECK(crm_schema_type(k->schema, "shop.dup") == NULL);
    /* a bad field rolls the whole declaration back: no table left behind */
    CHECK_INT(define("shop.half", "shop",
                     "[{\"name\":\"ok\",\"kind\":\"text\"},{\"name\":\"bad\",\"kind\":\"nope\"}]"), CRM_EINVALID);
    CHECK(crm_schema_type(k->schema, "shop.half") == NULL);
    int64_t n = -1;
    crm_conn_query_int(crm_store_conn(k->store),
                       "SELECT count(*) FROM sqlite_master WHERE name = 'shop.half'", &n, -1);
    CHECK_INT(n, 0);
}

static void type_json_describes_fields(void)
{
    const crm_type *t = crm_schema_type(k->schema, "test.contact");
    REQUIRE(t);
    json_t *j = crm_type_to_json(t);
    CHECK_STR(json_string_value(json_object_get(j, "name")), "test.contact");
    CHECK(json_is_true(json_object_get(j, "searchable")));
    json_t *fields = json_object_get(j, "fields");
    CHECK_INT(json_array_size(fields), crm_type_nfields(t));
    json_t *stage = json_array_get(fields, 6);
    CHECK_STR(json_string_value(json_object_get(stage, "name")), "stage");
    CHECK_STR(json_string_value(json_object_get(stage, "kind")), "enum");
    CHECK_INT(json_array_size(json_object_get(stage, "values")), 3);
    CHECK_STR(json_string_value(json_object_get(stage, "default")), "new");
    CHECK_STR(json_string_value(json_object_get(stage, "owner")), "test");
    json_decref(j);
}

/* Readers look types and fields up while a writer adds fields: no lock, no torn reads. */
static int stop_readers;

static void *reader(void *arg)
{
    long seen = 0;
    (void)arg;
    while (!__atomic_load_n(&stop_readers, __ATOMIC_ACQUIRE)) {
        const crm_type *t = crm_schema_type(k->schema, "test.contact");
        if (!t) return (void *)-1L;
        int n = crm_type_nfields(t);
        for (int i = 0; i < n; i++)
            if (!t->fields[i] || !t->fields[i]->name || t->fields[i]->position != i) return (void *)-1L;
        seen += n;
    }
    return (void *)seen;
}

static void concurrent_readers_while_adding_fields(void)
{
    pthread_t th[4];
    __atomic_store_n(&stop_readers, 0, __ATOMIC_RELEASE);
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, reader, NULL);
    int added = 0;
    for (int i = 0; i < 40; i++) {
        char buf[96];
        snprintf(buf, sizeof buf, "{\"name\":\"extra_%d\",\"kind\":\"int\",\"indexed\":true}", i);
        json_t *spec = kfix_json(buf);
        added += crm_schema_add_field(k->schema, "test.contact", spec, "custom") == CRM_OK;
        json_decref(spec);
    }
    __atomic_store_n(&stop_readers, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(th[i], &res);
        CHECK((long)res > 0);
    }
    CHECK_INT(added, 40);
    CHECK(crm_type_field(crm_schema_type(k->schema, "test.contact"), "extra_39") != NULL);
}

static void registry_survives_restart(void)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s", k->data_dir);
    int before = crm_type_nfields(crm_schema_type(k->schema, "test.contact"));
    crm_kernel_close(k);
    k = kfix_open_at(dir);
    const crm_type *t = crm_schema_type(k->schema, "test.contact");
    REQUIRE(t);
    CHECK_INT(crm_type_nfields(t), before);
    CHECK(crm_schema_type(k->schema, "shop.item") != NULL);
    for (int i = 0; i < crm_type_nfields(t); i++) CHECK_INT(t->fields[i]->position, i);
}

int main(void)
{
    k = kfix_open();
    RUN(core_types_exist);
    RUN(type_names_checked);
    RUN(define_is_idempotent_and_owned);
    RUN(type_json_describes_fields);
    RUN(concurrent_readers_while_adding_fields);
    RUN(registry_survives_restart);
    crm_kernel_close(k);
    return t_finish("test_schema");
}
