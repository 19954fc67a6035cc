/*
 * Tests of kernel/perm.c through the record layer: the permission matrix
 * (every level × action, two teams, three users), field-level access, role
 * merging, admins and disabled users.
 */
#include "kfix.h"

static crm_kernel *k;
static crm_ctx sys;
static int64_t alice, bob, carol, team1, team2;
static int64_t rec[3]; /* owned by alice (team1), bob (team1), carol (team2) */

static void setup(void)
{
    k = kfix_open();
    crm_ctx_init(&sys, k, crm_principal_system(), NULL);
    alice = kfix_user(k, "alice");
    bob = kfix_user(k, "bob");
    carol = kfix_user(k, "carol");
    team1 = kfix_team(k, "Athens");
    team2 = kfix_team(k, "Haifa");
    crm_perm_team_member(k->perm, team1, alice, true);
    crm_perm_team_member(k->perm, team1, bob, true);
    crm_perm_team_member(k->perm, team2, carol, true);
    const int64_t owners[3] = {alice, bob, carol}, teams[3] = {team1, team1, team2};
    for (int i = 0; i < 3; i++) {
        char buf[200];
        snprintf(buf, sizeof buf, "{\"name\":\"R%d\",\"salary\":%d,\"owner\":%lld,\"team\":%lld}",
                 i, 1000 * (i + 1), (long long)owners[i], (long long)teams[i]);
        rec[i] = kfix_create(k, "test.contact", buf);
    }
}

/* The records of rec[] visible in a list, as a bitmask, and the count. */
static int list_mask(crm_ctx *ctx, int64_t *count, int *rc_out)
{
    crm_query q;
    json_t *out = NULL;
    int mask = 0;
    crm_query_init(&q);
    crm_query_add(&q, "count", "1");
    crm_query_add(&q, "name__like", "R_");
    *rc_out = crm_record_find(ctx, "test.contact", &q, &out);
    crm_query_free(&q);
    *count = json_integer_value(json_object_get(out, "count"));
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(out, "data"), i, r) {
        for (int j = 0; j < 3; j++)
            if (json_integer_value(json_object_get(r, "id")) == rec[j]) mask |= 1 << j;
    }
    json_decref(out);
    return mask;
}

/* Which of rec[] each level reaches for alice (alice=1, bob=2, carol=4). */
static const int level_mask[4] = {0, 1, 3, 7};

static int64_t grant_role(int action, int level, bool read_all)
{
    static int n;
    char name[64];
    snprintf(name, sizeof name, "matrix%d", n++);
    int64_t role = kfix_role(k, name);
    if (read_all) crm_perm_grant(k->perm, role, "test.contact", CRM_ACT_READ, CRM_LEVEL_ALL);
    crm_perm_grant(k->perm, role, "test.contact", action, level);
    crm_perm_user_role(k->perm, alice, role, true);
    return role;
}

static void read_matrix(void)
{
    crm_principal *p = kfix_principal(k, alice);
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, p, NULL);
    for (int level = CRM_LEVEL_NONE; level <= CRM_LEVEL_ALL; level++) {
        int64_t role = grant_role(CRM_ACT_READ, level, false);
        int64_t count;
        int rc;
        int mask = list_mask(&ctx, &count, &rc);
        if (level == CRM_LEVEL_NONE) {
            CHECK_INT(rc, CRM_EDENIED);
        } else {
            CHECK_INT(rc, CRM_OK);
            CHECK_INT(mask, level_mask[level]);
            CHECK_INT(count, __builtin_popcount(level_mask[level]));
        }
        for (int j = 0; j < 3; j++) {
            bool visible = level_mask[level] & (1 << j);
            json_t *r = NULL, *h = NULL;
            CHECK_INT(crm_record_get(&ctx, "test.contact", rec[j], false, &r),
                      visible ? CRM_OK : CRM_ENOTFOUND);
            CHECK_INT(crm_record_history(&ctx, "test.contact", rec[j], &h),
                      visible ? CRM_OK : CRM_ENOTFOUND);
            json_decref(r);
            json_decref(h);
        }
        crm_perm_user_role(k->perm, alice, role, false);
    }
    crm_principal_free(p);
}

static void update_and_delete_matrix(void)
{
    crm_principal *p = kfix_principal(k, alice);
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, p, NULL);
    for (int action = CRM_ACT_UPDATE; action <= CRM_ACT_DELETE; action++) {
        for (int level = CRM_LEVEL_NONE; level <= CRM_LEVEL_ALL; level++) {
            int64_t role = grant_role(action, level, true);
            for (int j = 0; j < 3; j++) {
                bool allowed = level_mask[level] & (1 << j);
                int rc;
                if (action == CRM_ACT_UPDATE) {
                    json_t *patch = json_pack("{s:i}", "age", level * 10 + j);
                    rc = crm_record_update(&ctx, "test.contact", rec[j], patch, 0, NULL);
                    json_decref(patch);
                } else {
                    rc = crm_record_delete(&ctx, "test.contact", rec[j], 0);
                    if (rc == CRM_OK) CHECK_INT(crm_record_restore(&ctx, "test.contact", rec[j], NULL), CRM_OK);
                }
                CHECK_INT(rc, allowed ? CRM_OK : CRM_EDENIED);
                if (!allowed) CHECK_HAS(crm_error_last()->message, "you may not");
            }
            crm_perm_user_role(k->perm, alice, role, false);
        }
    }
    crm_principal_free(p);
}

static void create_matrix(void)
{
    crm_principal *p = kfix_principal(k, alice);
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, p, NULL);
    const int64_t owners[3] = {alice, bob, carol};
    for (int level = CRM_LEVEL_NONE; level <= CRM_LEVEL_ALL; level++) {
        int64_t role = grant_role(CRM_ACT_CREATE, level, true);
        for (int j = 0; j < 3; j++) {
            json_t *in = json_pack("{s:s,s:I}", "name", "New", "owner", (json_int_t)owners[j]), *out = NULL;
            bool allowed = level_mask[level] & (1 << j);
            int rc = crm_record_create(&ctx, "test.contact", in, &out);
            CHECK_INT(rc, allowed ? CRM_OK : CRM_EDENIED);
            if (rc == CRM_OK) {
                CHECK_INT(json_integer_value(json_object_get(out, "owner")), owners[j]);
                CHECK_INT(json_integer_value(json_object_get(out, "created_by")), alice);
            }
            json_decref(in);
            json_decref(out);
        }
        /* without an owner, the record is the creator's, in the creator's team */
        json_t *in = json_pack("{s:s}", "name", "Mine"), *out = NULL;
        int rc = crm_record_create(&ctx, "test.contact", in, &out);
        CHECK_INT(rc, level == CRM_LEVEL_NONE ? CRM_EDENIED : CRM_OK);
        if (rc == CRM_OK) {
            CHECK_INT(json_integer_value(json_object_get(out, "owner")), alice);
            CHECK_INT(json_integer_value(json_object_get(out, "team")), team1);
        }
        json_decref(in);
        json_decref(out);
        crm_perm_user_role(k->perm, alice, role, false);
    }
    crm_principal_free(p);
}

/* An "own" updater cannot hand a record to someone else (mass assignment). */
static void ownership_not_mass_assignable(void)
{
    crm_principal *p = kfix_principal(k, alice);
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, p, NULL);
    int64_t role = grant_role(CRM_ACT_UPDATE, CRM_LEVEL_OWN, true);
    json_t *patch = json_pack("{s:I}", "owner", (json_int_t)carol);
    CHECK_INT(crm_record_update(&ctx, "test.contact", rec[0], patch, 0, NULL), CRM_EDENIED);
    CHECK_STR(crm_error_last()->field, "owner");
    json_decref(patch);
    patch = json_pack("{s:I}", "team", (json_int_t)team2);
    CHECK_INT(crm_record_update(&ctx, "test.contact", rec[0], patch, 0, NULL), CRM_EDENIED);
    json_decref(patch);
    /* system fields other than owner/team are ignored, never written */
    patch = kfix_json("{\"created_by\":3,\"version\":99,\"id\":5,\"age\":77}");
    json_t *out = NULL;
    REQUIRE(crm_record_update(&ctx, "test.contact", rec[0], patch, 0, &out) == CRM_OK);
    CHECK_INT(json_integer_value(json_object_get(out, "id")), rec[0]);
    CHECK(json_integer_value(json_object_get(out, "version")) != 99);
    CHECK(json_integer_value(json_object_get(out, "created_by")) != 3);
    CHECK_INT(json_integer_value(json_object_get(out, "owner")), alice);
    json_decref(out);
    json_decref(patch);
    crm_perm_user_role(k->perm, alice, role, false);
    crm_principal_free(p);
}

static void hidden_field_never_shows(void)
{
    crm_principal *p = kfix_principal(k, alice);
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, p, NULL);
    int64_t role = grant_role(CRM_ACT_UPDATE, CRM_LEVEL_ALL, true);
    crm_perm_field(k->perm, role, "test.contact", "salary", CRM_ACCESS_HIDDEN);
    crm_perm_field(k->perm, role, "test.contact", "age", CRM_ACCESS_READ);
    /* a change to salary by someone else, so history has it */
    json_t *patch = kfix_json("{\"salary\":5555}");
    crm_record_update(&sys, "test.contact", rec[0], patch, 0, NULL);
    json_decref(patch);

    json_t *r = NULL;
    REQUIRE(crm_record_get(&ctx, "test.contact", rec[0], false, &r) == CRM_OK);
    CHECK(json_object_get(r, "salary") == NULL);
    CHECK(json_object_get(r, "age") != NULL);
    json_decref(r);
    crm_query q;
    json_t *out = NULL;
    crm_query_init(&q);
    REQUIRE(crm_record_find(&ctx, "test.contact", &q, &out) == CRM_OK);
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(out, "data"), i, row) CHECK(json_object_get(row, "salary") == NULL);
    json_decref(out);
    crm_query_free(&q);
    /* filters and sorts on it answer exactly as for a field that does not exist */
    static const char *const keys[][2] = {{"salary", "5555"}, {"salary__gt", "1"}, {"sort", "salary"},
                                          {"sort", "-name,salary"}, {"fields", "name,salary"}};
    for (size_t j = 0; j < CRM_ARRAY_LEN(keys); j++) {
        crm_query_init(&q);
        crm_query_add(&q, keys[j][0], keys[j][1]);
        CHECK_INT(crm_record_find(&ctx, "test.contact", &q, &out), CRM_EINVALID);
        CHECK_STR(crm_error_last()->message, "unknown field \"salary\" for test.contact");
        crm_query_free(&q);
    }
    crm_query_init(&q);
    crm_query_add(&q, "nosuchfield", "1");
    CHECK_INT(crm_record_find(&ctx, "test.contact", &q, &out), CRM_EINVALID);
    CHECK_STR(crm_error_last()->message, "unknown field \"nosuchfield\" for test.contact");
    crm_query_free(&q);
    /* history leaves it out */
    json_t *h = NULL;
    REQUIRE(crm_record_history(&ctx, "test.contact", rec[0], &h) == CRM_OK);
    json_array_foreach(h, i, row) CHECK(json_object_get(json_object_get(row, "changes"), "salary") == NULL);
    json_decref(h);
    /* writes: hidden is unknown, read-only is denied, and nothing changes */
    patch = kfix_json("{\"salary\":1}");
    CHECK_INT(crm_record_update(&ctx, "test.contact", rec[0], patch, 0, NULL), CRM_EINVALID);
    CHECK_STR(crm_error_last()->field, "salary");
    json_decref(patch);
    patch = kfix_json("{\"age\":1}");
    CHECK_INT(crm_record_update(&ctx, "test.contact", rec[0], patch, 0, NULL), CRM_EDENIED);
    CHECK_STR(crm_error_last()->field, "age");
    json_decref(patch);
    REQUIRE(crm_record_get(&sys, "test.contact", rec[0], false, &r) == CRM_OK);
    CHECK_INT(json_integer_value(json_object_get(r, "salary")), 5555);
    json_decref(r);

    /* most permissive merge: a second role on the type without a rule shows it ... */
    int64_t role2 = grant_role(CRM_ACT_READ, CRM_LEVEL_OWN, false);
    REQUIRE(crm_record_get(&ctx, "test.contact", rec[0], false, &r) == CRM_OK);
    CHECK_INT(json_integer_value(json_object_get(r, "salary")), 5555);
    json_decref(r);
    crm_perm_user_role(k->perm, alice, role2, false);
    /* ... but a role granting nothing on the type does not */
    int64_t role3 = kfix_role(k, "unrelated");
    crm_perm_grant(k->perm, role3, "test.company", CRM_ACT_READ, CRM_LEVEL_ALL);
    crm_perm_user_role(k->perm, alice, role3, true);
    REQUIRE(crm_record_get(&ctx, "test.contact", rec[0], false, &r) == CRM_OK);
    CHECK(json_object_get(r, "salary") == NULL);
    json_decref(r);
    crm_perm_user_role(k->perm, alice, role3, false);
    crm_perm_user_role(k->perm, alice, role, false);
    crm_principal_free(p);
}

static void levels_merge_across_roles(void)
{
    crm_principal *p = kfix_principal(k, alice);
    int64_t r1 = grant_role(CRM_ACT_READ, CRM_LEVEL_OWN, false);
    int64_t r2 = grant_role(CRM_ACT_READ, CRM_LEVEL_TEAM, false);
    const crm_type *t = crm_schema_type(k->schema, "test.contact");
    CHECK_INT(crm_principal_level(p, t, CRM_ACT_READ), CRM_LEVEL_TEAM);
    /* "*" grants cover every type; a specific grant of the same role beats it */
    int64_t r3 = kfix_role(k, "wildcard");
    crm_perm_grant(k->perm, r3, "*", CRM_ACT_DELETE, CRM_LEVEL_ALL);
    crm_perm_user_role(k->perm, alice, r3, true);
    CHECK_INT(crm_principal_level(p, t, CRM_ACT_DELETE), CRM_LEVEL_ALL);
    crm_perm_grant(k->perm, r3, "test.contact", CRM_ACT_DELETE, CRM_LEVEL_OWN);
    CHECK_INT(crm_principal_level(p, t, CRM_ACT_DELETE), CRM_LEVEL_OWN);
    const crm_type *co = crm_schema_type(k->schema, "test.company");
    CHECK_INT(crm_principal_level(p, co, CRM_ACT_DELETE), CRM_LEVEL_ALL);
    crm_perm_user_role(k->perm, alice, r1, false);
    crm_perm_user_role(k->perm, alice, r2, false);
    crm_perm_user_role(k->perm, alice, r3, false);
    CHECK_INT(crm_principal_level(p, t, CRM_ACT_READ), CRM_LEVEL_NONE);
    crm_principal_free(p);
}

static void admin_and_disabled(void)
{
    int64_t admin;
    REQUIRE(crm_user_create(k, "root2", "password123", true, "Root", &admin) == CRM_OK);
    crm_principal *p = kfix_principal(k, admin);
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, p, NULL);
    int64_t count;
    int rc;
    CHECK_INT(list_mask(&ctx, &count, &rc), 7);
    crm_principal_free(p);
    REQUIRE(crm_user_set_disabled(k, bob, true) == CRM_OK);
    CHECK_INT(crm_principal_load(k->perm, bob, &p), CRM_EDENIED);
    CHECK_INT(crm_principal_load(k->perm, 424242, &p), CRM_ENOTFOUND);
    crm_user_set_disabled(k, bob, false);
}

static void admin_api_validates(void)
{
    int64_t role = kfix_role(k, "validating");
    CHECK_INT(crm_perm_grant(k->perm, role, "test.nope", CRM_ACT_READ, CRM_LEVEL_ALL), CRM_EINVALID);
    CHECK_INT(crm_perm_grant(k->perm, role, "test.contact", 9, CRM_LEVEL_ALL), CRM_EINVALID);
    CHECK_INT(crm_perm_grant(k->perm, role, "test.contact", CRM_ACT_READ, 7), CRM_EINVALID);
    CHECK_INT(crm_perm_grant(k->perm, 999999, "test.contact", CRM_ACT_READ, CRM_LEVEL_ALL), CRM_ENOTFOUND);
    CHECK_INT(crm_perm_field(k->perm, role, "test.contact", "nope", CRM_ACCESS_HIDDEN), CRM_EINVALID);
    CHECK_INT(crm_perm_user_role(k->perm, 999999, role, true), CRM_ENOTFOUND);
    CHECK_INT(crm_perm_team_member(k->perm, 999999, alice, true), CRM_ENOTFOUND);
    REQUIRE(crm_perm_grant(k->perm, role, "test.contact", CRM_ACT_UPDATE, CRM_LEVEL_TEAM) == CRM_OK);
    REQUIRE(crm_perm_field(k->perm, role, "test.contact", "salary", CRM_ACCESS_HIDDEN) == CRM_OK);
    json_t *j = NULL;
    REQUIRE(crm_perm_role_json(k->perm, role, &j) == CRM_OK);
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(j, "grants"),
                                                                "test.contact"), "update")), "team");
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(j, "fields"),
                                                                "test.contact"), "salary")), "hidden");
    json_decref(j);
    CHECK_INT(crm_level_from_name("team"), CRM_LEVEL_TEAM);
    CHECK_INT(crm_level_from_name("most"), -1);
    CHECK_INT(crm_action_from_name("delete"), CRM_ACT_DELETE);
    CHECK_INT(crm_access_from_name("hidden"), CRM_ACCESS_HIDDEN);
}

int main(void)
{
    setup();
    RUN(read_matrix);
    RUN(update_and_delete_matrix);
    RUN(create_matrix);
    RUN(ownership_not_mass_assignable);
    RUN(hidden_field_never_shows);
    RUN(levels_merge_across_roles);
    RUN(admin_and_disabled);
    RUN(admin_api_validates);
    crm_kernel_close(k);
    return t_finish("test_perm");
}
