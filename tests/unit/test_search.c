/* Tests of kernel/search.c: the safe query builder, prefix matching per script, ranking,
   hostile queries, permission scope, hidden fields and the bounded window. */
#include "kfix.h"

#include "../../kernel/search.h"
#include "../../kernel/store.h"

static crm_kernel *k;
static crm_ctx sys;

static void setup(void)
{
    k = kfix_open();
    crm_ctx_init(&sys, k, crm_principal_system(), NULL);
}

static void teardown(void)
{
    crm_kernel_close(k);
    k = NULL;
}

/* Search as `ctx` in test.contact (or all types when all is true); rc, and *out. */
static int search_in(crm_ctx *ctx, const char *q, bool all, json_t **out)
{
    const char *types[] = {"test.contact"};
    return crm_search(ctx, q, all ? NULL : types, all ? 0 : 1, 0, out, NULL);
}

/* The "title"s of the hits joined with "|" (static buffer). */
static const char *titles(json_t *hits)
{
    static char buf[4096];
    size_t i, len = 0;
    json_t *h;
    buf[0] = 0;
    json_array_foreach(hits, i, h) {
        const char *t = json_string_value(json_object_get(h, "title"));
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? "|" : "", t ? t : "-");
    }
    return buf;
}

/* Titles found for q in test.contact as the system. */
static const char *find(const char *q)
{
    json_t *out = NULL;
    static char buf[4096];
    if (search_in(&sys, q, false, &out)) {
        snprintf(buf, sizeof buf, "ERROR %s", crm_error_last()->message);
        return buf;
    }
    snprintf(buf, sizeof buf, "%s", titles(out));
    json_decref(out);
    return buf;
}

static void test_expr(void)
{
    char *e = NULL;
    CHECK_INT(crm_search__expr("Jo Smith", &e), CRM_OK);
    CHECK_STR(e, "\"Jo\"* AND \"Smith\"*");
    free(e);
    /* operators and column filters are separators, never syntax */
    CHECK_INT(crm_search__expr("email:x\"y NEAR(ab cd) ^zz OR -- {a b}:*", &e), CRM_OK);
    CHECK_STR(e, "\"email\"* AND \"NEAR\"* AND \"ab\"* AND \"cd\"* AND \"zz\"* AND \"OR\"*");
    free(e);
    /* one-letter words are dropped; a lone CJK character is a word */
    CHECK_INT(crm_search__expr("a b c", &e), CRM_OK);
    CHECK(e == NULL);
    CHECK_INT(crm_search__expr("J 张", &e), CRM_OK);
    CHECK_STR(e, "\"张\"*");
    free(e);
    /* marks stay inside their word; symbols-only words are never sent */
    CHECK_INT(crm_search__expr("שָׁלוֹם ★★ —", &e), CRM_OK);
    CHECK_STR(e, "\"שָׁלוֹם\"*");
    free(e);
    /* nothing to search: errors naming q */
    const char *bad[] = {"", "   ", "***", "\"\"", "★ ★", "()", NULL};
    for (int i = 0; i < 7; i++) {
        e = NULL;
        CHECK_INT(crm_search__expr(bad[i], &e), CRM_EINVALID);
        CHECK_STR(crm_error_last()->field, "q");
        CHECK(e == NULL);
    }
    CHECK_INT(crm_search__expr("ab\xff", &e), CRM_EINVALID);
    char big[CRM_SEARCH_MAX_QUERY + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK_INT(crm_search__expr(big, &e), CRM_EINVALID);
    /* at most CRM_SEARCH_MAX_WORDS words */
    CHECK_INT(crm_search__expr("aa bb cc dd ee ff gg hh ii jj kk ll mm nn oo pp qq rr", &e), CRM_OK);
    CHECK(e && !strstr(e, "qq"));
    free(e);
}

static void test_prefix(void)
{
    setup();
    kfix_create(k, "test.contact", "{\"name\":\"John Smith\",\"email\":\"john@acme.io\"}");
    kfix_create(k, "test.contact", "{\"name\":\"Joanna Smithers\"}");
    kfix_create(k, "test.contact", "{\"name\":\"Bob Jones\",\"email\":\"bob@zeta.org\"}");
    CHECK_STR(find("jo"), "John Smith|Joanna Smithers|Bob Jones"); /* John: name and email */
    CHECK_STR(find("john"), "John Smith");
    CHECK_STR(find("smith jo"), "Joanna Smithers|John Smith");
    CHECK_STR(find("SMITHERS"), "Joanna Smithers");
    CHECK_STR(find("acme"), "John Smith");   /* the email is searchable too */
    CHECK_STR(find("zeta.org"), "Bob Jones");
    CHECK_STR(find("nobody"), "");
    CHECK_STR(find("j"), "");                /* too short: nothing, not an error */
    /* the answer's shape */
    json_t *out = NULL;
    REQUIRE(search_in(&sys, "bob", true, &out) == CRM_OK);
    REQUIRE(json_array_size(out) == 1);
    json_t *h = json_array_get(out, 0);
    CHECK_STR(json_string_value(json_object_get(h, "type")), "test.contact");
    CHECK_INT(json_integer_value(json_object_get(h, "id")), 3);
    CHECK(json_is_real(json_object_get(h, "rank")));
    CHECK_STR(json_string_value(json_object_get(json_object_get(h, "record"), "email")),
              "bob@zeta.org");
    json_decref(out);
    teardown();
}

static void test_multilingual(void)
{
    setup();
    kfix_create(k, "test.contact", "{\"name\":\"Ωμέγα Παπαδόπουλος\"}");
    kfix_create(k, "test.contact", "{\"name\":\"דוד כהן\"}");
    kfix_create(k, "test.contact", "{\"name\":\"دانیال رضایی\"}");
    kfix_create(k, "test.contact", "{\"name\":\"张伟 王芳\"}");
    kfix_create(k, "test.contact", "{\"name\":\"Иван Петров\"}");
    kfix_create(k, "test.contact", "{\"name\":\"José Müller\"}");
    kfix_create(k, "test.contact", "{\"name\":\"שָׁלוֹם לוי\"}");
    /* Greek: case folded, accents kept (unicode61 folds Latin diacritics only) */
    CHECK_STR(find("ωμέγα"), "Ωμέγα Παπαδόπουλος");
    CHECK_STR(find("ΠΑΠΑΔ"), "Ωμέγα Παπαδόπουλος");
    CHECK_STR(find("ωμεγα"), "");
    /* Hebrew, Persian, Russian: prefixes */
    CHECK_STR(find("כה"), "דוד כהן");
    CHECK_STR(find("دانی"), "دانیال رضایی");
    CHECK_STR(find("رضایی"), "دانیال رضایی");
    CHECK_STR(find("ива петр"), "Иван Петров");
    CHECK_STR(find("ИВАН"), "Иван Петров");
    /* Latin accents folded both ways */
    CHECK_STR(find("jose mull"), "José Müller");
    CHECK_STR(find("MÜLLER"), "José Müller");
    /* Chinese: a run of Han is one token: its start matches, a later character does not */
    CHECK_STR(find("张"), "张伟 王芳");
    CHECK_STR(find("张伟"), "张伟 王芳");
    CHECK_STR(find("王芳"), "张伟 王芳");
    CHECK_STR(find("伟"), "");
    /* pointed Hebrew: the same pointing matches; the unpointed word does not */
    CHECK_STR(find("שָׁלוֹם"), "שָׁלוֹם לוי");
    CHECK_STR(find("לוי"), "שָׁלוֹם לוי");
    CHECK_STR(find("שלום"), "");
    teardown();
}

static void test_ranking(void)
{
    setup();
    kfix_create(k, "test.contact", "{\"name\":\"Anna Petrova Ivanovna Smirnova\"}");
    kfix_create(k, "test.contact", "{\"name\":\"Anna Anna Anna\"}");
    kfix_create(k, "test.contact", "{\"name\":\"Anna Lee\",\"email\":\"anna@lee.io\"}");
    kfix_create(k, "test.company", "{\"name\":\"Anna Anna Anna Anna\"}");
    /* more occurrences, shorter text first */
    CHECK_STR(find("anna"), "Anna Anna Anna|Anna Lee|Anna Petrova Ivanovna Smirnova");
    /* several types merge by rank, and the limit applies to the merged list */
    json_t *out = NULL;
    REQUIRE(crm_search(&sys, "anna", NULL, 0, 2, &out, NULL) == CRM_OK);
    CHECK_INT(json_array_size(out), 2);
    double r0 = json_real_value(json_object_get(json_array_get(out, 0), "rank"));
    double r1 = json_real_value(json_object_get(json_array_get(out, 1), "rank"));
    CHECK(r0 <= r1);
    json_decref(out);
    const char *both[] = {"test.company", "test.contact", "test.contact"};
    REQUIRE(crm_search(&sys, "anna", both, 3, 10, &out, NULL) == CRM_OK);
    CHECK_INT(json_array_size(out), 4);
    for (size_t i = 1; i < json_array_size(out); i++)
        CHECK(json_real_value(json_object_get(json_array_get(out, i - 1), "rank")) <=
              json_real_value(json_object_get(json_array_get(out, i), "rank")));
    json_decref(out);
    /* limits and type lists */
    CHECK_INT(crm_search(&sys, "anna", NULL, 0, 101, &out, NULL), CRM_EINVALID);
    CHECK_STR(crm_error_last()->field, "limit");
    CHECK_INT(crm_search(&sys, "anna", NULL, 0, -1, &out, NULL), CRM_EINVALID);
    const char *unknown[] = {"test.nope"};
    CHECK_INT(crm_search(&sys, "anna", unknown, 1, 0, &out, NULL), CRM_EINVALID);
    CHECK_STR(crm_error_last()->field, "types");
    const char *plain[] = {"core.role"};
    CHECK_INT(crm_search(&sys, "anna", plain, 1, 0, &out, NULL), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "searchable");
    teardown();
}

static void test_hostile(void)
{
    setup();
    kfix_create(k, "test.contact", "{\"name\":\"O'Brien \\\"Bob\\\" NEAR\",\"email\":\"ob@x.io\"}");
    static const char *const qs[] = {
        "bob\"", "\"bob", "NEAR(bob", "NEAR(bob obr, 2)", "bob*", "*bob", "^bob",
        "email:ob", "name : bob", "{name email}: bob", "-name: bob", "bob OR obr", "bob AND",
        "NOT bob", "bob NOT", "(bob", "bob)", "+bob", "bob -obr", "'; DROP TABLE x; --",
        "\\\"bob\\\"", "bob\x01\x02", "b\"o\"b", "ob@x.io", "%bob%", "bob:", ":bob", "{bob}",
        "\"NEAR\"", "near(", "o'brien", "bob' OR '1'='1", "rowid:1", "rank:1",
    };
    for (size_t i = 0; i < CRM_ARRAY_LEN(qs); i++) {
        json_t *out = NULL;
        int rc = search_in(&sys, qs[i], false, &out);
        if (rc != CRM_OK) {
            fprintf(stderr, "    q=%s: %s\n", qs[i], crm_error_last()->message);
            CHECK_INT(rc, CRM_OK);
        }
        json_decref(out);
    }
    CHECK_STR(find("o'brien"), "O'Brien \"Bob\" NEAR");
    CHECK_STR(find("NEAR(bob"), "O'Brien \"Bob\" NEAR");
    CHECK_STR(find("email:ob"), "");  /* "email" is a word here, not a column filter */
    CHECK_STR(find("\"bob"), "O'Brien \"Bob\" NEAR");
    json_t *out = NULL;
    CHECK_INT(search_in(&sys, "", false, &out), CRM_EINVALID);
    CHECK_INT(search_in(&sys, NULL, false, &out), CRM_EINVALID);
    CHECK_INT(search_in(&sys, "\"*^:(){}", false, &out), CRM_EINVALID);
    CHECK_INT(search_in(&sys, "\"\"\"", false, &out), CRM_EINVALID);
    CHECK_INT(search_in(&sys, "%_%", false, &out), CRM_EINVALID);
    CHECK_STR(crm_error_last()->field, "q");
    teardown();
}

/* A role reading test.contact at `level`, with `hidden` (may be NULL) hidden. */
static int64_t role_with(const char *name, int level, const char *hidden)
{
    int64_t role = kfix_role(k, name);
    crm_perm_grant(k->perm, role, "test.contact", CRM_ACT_READ, level);
    crm_perm_grant(k->perm, role, "test.contact", CRM_ACT_CREATE, level);
    if (hidden) crm_perm_field(k->perm, role, "test.contact", hidden, CRM_ACCESS_HIDDEN);
    return role;
}

static void create_as(crm_principal *p, const char *json)
{
    crm_ctx ctx;
    json_t *in = kfix_json(json), *out = NULL;
    crm_ctx_init(&ctx, k, p, NULL);
    if (crm_record_create(&ctx, "test.contact", in, &out))
        fprintf(stderr, "create: %s\n", crm_error_last()->message);
    json_decref(in);
    json_decref(out);
}

static void test_scope(void)
{
    setup();
    int64_t own = role_with("own", CRM_LEVEL_OWN, NULL), team = role_with("team", CRM_LEVEL_TEAM, NULL);
    int64_t ua = kfix_user(k, "alice"), ub = kfix_user(k, "bob"), uc = kfix_user(k, "carol");
    int64_t red = kfix_team(k, "red");
    crm_perm_user_role(k->perm, ua, own, true);
    crm_perm_user_role(k->perm, ub, own, true);
    crm_perm_user_role(k->perm, uc, team, true);
    crm_perm_team_member(k->perm, red, ua, true);
    crm_perm_team_member(k->perm, red, uc, true);
    crm_principal *pa = kfix_principal(k, ua), *pb = kfix_principal(k, ub),
                  *pc = kfix_principal(k, uc);
    create_as(pa, "{\"name\":\"Zorro of Alice\"}");
    create_as(pb, "{\"name\":\"Zorro of Bob\"}");
    kfix_create(k, "test.contact", "{\"name\":\"Zorro of nobody\"}");
    crm_ctx ca, cb, cc;
    crm_ctx_init(&ca, k, pa, NULL);
    crm_ctx_init(&cb, k, pb, NULL);
    crm_ctx_init(&cc, k, pc, NULL);
    json_t *out = NULL;
    REQUIRE(search_in(&ca, "zorro", false, &out) == CRM_OK);
    CHECK_STR(titles(out), "Zorro of Alice");
    json_decref(out);
    REQUIRE(search_in(&cb, "zorro", true, &out) == CRM_OK);
    CHECK_STR(titles(out), "Zorro of Bob");
    json_decref(out);
    /* carol shares team red with alice */
    REQUIRE(search_in(&cc, "zorro", false, &out) == CRM_OK);
    CHECK_STR(titles(out), "Zorro of Alice");
    json_decref(out);
    /* a type the principal cannot read: absent from "all", unknown when named */
    const char *company[] = {"test.company"};
    kfix_create(k, "test.company", "{\"name\":\"Zorro Corp\"}");
    CHECK_INT(crm_search(&ca, "zorro", company, 1, 0, &out, NULL), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "unknown type");
    REQUIRE(search_in(&sys, "zorro", true, &out) == CRM_OK);
    CHECK_INT(json_array_size(out), 4);
    json_decref(out);
    /* deleted records are not found; restored ones are again */
    crm_ctx_init(&ca, k, pa, NULL);
    CHECK_INT(crm_record_delete(&sys, "test.contact", 1, 0), CRM_OK);
    REQUIRE(search_in(&ca, "zorro", false, &out) == CRM_OK);
    CHECK_INT(json_array_size(out), 0);
    json_decref(out);
    CHECK_INT(crm_record_restore(&sys, "test.contact", 1, NULL), CRM_OK);
    REQUIRE(search_in(&ca, "zorro", false, &out) == CRM_OK);
    CHECK_INT(json_array_size(out), 1);
    json_decref(out);
    crm_principal_free(pa);
    crm_principal_free(pb);
    crm_principal_free(pc);
    teardown();
}

static void test_hidden_field(void)
{
    setup();
    int64_t role = role_with("no-email", CRM_LEVEL_ALL, "email");
    int64_t u = kfix_user(k, "dave");
    crm_perm_user_role(k->perm, u, role, true);
    crm_principal *p = kfix_principal(k, u);
    crm_ctx ctx;
    crm_ctx_init(&ctx, k, p, NULL);
    kfix_create(k, "test.contact", "{\"name\":\"Visible Name\",\"email\":\"secretword@hidden.io\"}");
    json_t *out = NULL;
    /* the system finds it by the email; dave must not */
    REQUIRE(search_in(&sys, "secretword", false, &out) == CRM_OK);
    CHECK_INT(json_array_size(out), 1);
    json_decref(out);
    REQUIRE(search_in(&ctx, "secretword", false, &out) == CRM_OK);
    CHECK_INT(json_array_size(out), 0);
    json_decref(out);
    REQUIRE(search_in(&ctx, "visible secretword", true, &out) == CRM_OK);
    CHECK_INT(json_array_size(out), 0);
    json_decref(out);
    /* found by the name, without the email in the record */
    REQUIRE(search_in(&ctx, "visible", false, &out) == CRM_OK);
    REQUIRE(json_array_size(out) == 1);
    json_t *rec = json_object_get(json_array_get(out, 0), "record");
    CHECK(json_object_get(rec, "email") == NULL);
    CHECK_STR(json_string_value(json_object_get(rec, "name")), "Visible Name");
    json_decref(out);
    /* every searchable field hidden: the type contributes nothing */
    crm_perm_field(k->perm, role, "test.contact", "name", CRM_ACCESS_HIDDEN);
    REQUIRE(search_in(&ctx, "visible", false, &out) == CRM_OK);
    CHECK_INT(json_array_size(out), 0);
    json_decref(out);
    /* the title follows the title field's visibility */
    crm_perm_field(k->perm, role, "test.contact", "email", CRM_ACCESS_READ);
    REQUIRE(search_in(&ctx, "secretword", false, &out) == CRM_OK);
    REQUIRE(json_array_size(out) == 1);
    CHECK(json_is_null(json_object_get(json_array_get(out, 0), "title")));
    json_decref(out);
    crm_principal_free(p);
    teardown();
}

/* More matches than the window: ranking covers the newest CRM_SEARCH_WINDOW of them. */
static void test_window(void)
{
    setup();
    crm_conn *conn = crm_store_conn(k->store);
    kfix_create(k, "test.contact", "{\"name\":\"Quokka Quokka Quokka Rarename\"}");
    REQUIRE(crm_tx_begin(conn) == CRM_OK);
    for (int i = 0; i < CRM_SEARCH_WINDOW + 10; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "{\"name\":\"Quokka filler number %d\"}", i);
        kfix_create(k, "test.contact", buf);
    }
    REQUIRE(crm_tx_commit(conn) == CRM_OK);
    json_t *out = NULL;
    int64_t t0 = crm_mono_us();
    REQUIRE(search_in(&sys, "quokka", false, &out) == CRM_OK);
    int64_t us = crm_mono_us() - t0;
    CHECK_INT(json_array_size(out), CRM_SEARCH_DEFAULT_LIMIT);
    /* the old, best-matching record is outside the window... */
    size_t i;
    json_t *h;
    json_array_foreach(out, i, h) CHECK(json_integer_value(json_object_get(h, "id")) != 1);
    json_decref(out);
    /* ...and a more specific query finds it */
    CHECK_STR(find("quokka rarename"), "Quokka Quokka Quokka Rarename");
    fprintf(stderr, "    unselective search over %d matches: %lld us\n", CRM_SEARCH_WINDOW + 11,
            (long long)us);
    teardown();
}

/* A whole word finds its record first, even when more newer records than the window merely
   start with it; "more" tells the answer is bounded. */
static void test_whole_word_first(void)
{
    setup();
    crm_conn *conn = crm_store_conn(k->store);
    int64_t old = kfix_create(k, "test.contact", "{\"name\":\"Zed Wombat\"}");
    REQUIRE(crm_tx_begin(conn) == CRM_OK);
    for (int i = 0; i < CRM_SEARCH_WINDOW + 10; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "{\"name\":\"Zed Wombats%d Wombatsson\"}", i);
        kfix_create(k, "test.contact", buf);
    }
    REQUIRE(crm_tx_commit(conn) == CRM_OK);
    json_t *out = NULL;
    bool more = false;
    const char *types[] = {"test.contact"};
    REQUIRE(crm_search(&sys, "wombat", types, 1, 0, &out, &more) == CRM_OK);
    REQUIRE(json_array_size(out) == CRM_SEARCH_DEFAULT_LIMIT);
    json_t *first = json_array_get(out, 0);
    CHECK_INT(json_integer_value(json_object_get(first, "id")), old);
    double r0 = json_real_value(json_object_get(first, "rank"));
    CHECK(r0 <= -1 && r0 > -2); /* whole-word hits rank in (-2, -1] */
    /* the rest are prefix hits, newest first on equal scores, all ranked after it */
    for (size_t i = 1; i < json_array_size(out); i++) {
        double r = json_real_value(json_object_get(json_array_get(out, i), "rank"));
        CHECK(r > -1 && r <= 0);
    }
    CHECK(more);
    json_decref(out);
    /* a prefix only: the old record is older than the window of prefix matches */
    REQUIRE(crm_search(&sys, "womba", types, 1, 100, &out, &more) == CRM_OK);
    CHECK_INT(json_array_size(out), 100);
    size_t i;
    json_t *h;
    json_array_foreach(out, i, h) CHECK(json_integer_value(json_object_get(h, "id")) != old);
    CHECK(more);
    json_decref(out);
    /* a selective query is fully ranked and says there is nothing more */
    REQUIRE(crm_search(&sys, "wombats7", types, 1, 0, &out, &more) == CRM_OK);
    CHECK_STR(json_string_value(json_object_get(json_array_get(out, 0), "title")),
              "Zed Wombats7 Wombatsson");
    CHECK_INT(json_array_size(out), 11); /* wombats7, wombats70..79 */
    CHECK(!more);
    json_decref(out);
    /* cut at the limit: more */
    REQUIRE(crm_search(&sys, "wombats7", types, 1, 5, &out, &more) == CRM_OK);
    CHECK_INT(json_array_size(out), 5);
    CHECK(more);
    json_decref(out);
    teardown();
}

/* Whole-word hits rank before prefix-only ones whatever their counts; within a tier, more
   occurrences and shorter text first; accents and case fold as the index folds them. */
static void test_tiers(void)
{
    setup();
    kfix_create(k, "test.contact", "{\"name\":\"Annabel Annabel Annabel\"}");
    kfix_create(k, "test.contact", "{\"name\":\"Anna Maria Lopez Garcia\"}");
    kfix_create(k, "test.contact", "{\"name\":\"ANNA Anna\"}");
    kfix_create(k, "test.contact", "{\"name\":\"Annette\"}");
    CHECK_STR(find("anna"), "ANNA Anna|Anna Maria Lopez Garcia|Annabel Annabel Annabel");
    CHECK_STR(find("ann"), "Annabel Annabel Annabel|ANNA Anna|Annette|Anna Maria Lopez Garcia");
    kfix_create(k, "test.contact", "{\"name\":\"Zoë Müller\"}");
    kfix_create(k, "test.contact", "{\"name\":\"Zoe Muller Muller\"}");
    CHECK_STR(find("muller"), "Zoe Muller Muller|Zoë Müller");
    CHECK_STR(find("MÜLL"), "Zoe Muller Muller|Zoë Müller");
    teardown();
}

/* The HTTP answer (text) is the Jansson answer, byte for byte, for every principal. */
static void test_text_answer(void)
{
    setup();
    int64_t role = role_with("no-email-text", CRM_LEVEL_ALL, "email");
    int64_t own = role_with("own-text", CRM_LEVEL_OWN, NULL);
    int64_t noname = role_with("no-name-text", CRM_LEVEL_ALL, "name");
    int64_t ud = kfix_user(k, "dora"), ue = kfix_user(k, "emil"), uf = kfix_user(k, "fay");
    crm_perm_user_role(k->perm, ud, role, true);
    crm_perm_user_role(k->perm, uf, noname, true);
    crm_perm_user_role(k->perm, ue, own, true);
    crm_principal *pd = kfix_principal(k, ud), *pe = kfix_principal(k, ue),
                  *pf = kfix_principal(k, uf);
    kfix_create(k, "test.contact",
                "{\"name\":\"Anna \\\"Q\\\" Lee\\t\\u0001\",\"email\":\"anna@lee.io\","
                "\"balance\":\"1.50\",\"extra\":{\"a\":[1,2.5]},\"vip\":true}");
    kfix_create(k, "test.contact", "{\"name\":\"Anna Anna\",\"age\":-3}");
    create_as(pe, "{\"name\":\"Annabel of Emil\",\"email\":\"annabel@emil.io\"}");
    kfix_create(k, "test.company", "{\"name\":\"Anna Corp\"}");
    crm_ctx cd, ce, cf;
    crm_ctx_init(&cd, k, pd, NULL);
    crm_ctx_init(&ce, k, pe, NULL);
    crm_ctx_init(&cf, k, pf, NULL);
    crm_ctx *ctxs[] = {&sys, &cd, &ce, &cf};
    const char *qs[] = {"anna", "ann", "lee anna", "annabel", "nothing", "a"};
    for (size_t c = 0; c < CRM_ARRAY_LEN(ctxs); c++)
        for (size_t i = 0; i < CRM_ARRAY_LEN(qs); i++)
            for (int limit = 0; limit <= 1; limit++) {
                json_t *out = NULL;
                bool more = false;
                char *text = NULL;
                size_t len = 0;
                REQUIRE(crm_search(ctxs[c], qs[i], NULL, 0, limit, &out, &more) == CRM_OK);
                REQUIRE(crm_search_text(ctxs[c], qs[i], NULL, 0, limit, &text, &len) == CRM_OK);
                json_t *doc = json_pack("{s:o,s:b}", "data", out, "more", more);
                char *want = json_dumps(doc, JSON_COMPACT);
                CHECK_STR(text, want);
                CHECK_INT((int64_t)len, (int64_t)strlen(want));
                if (c == 1) CHECK(!strstr(text, "lee.io"));
                if (c == 3 && i == 0) CHECK(strstr(text, "\"title\":null"));
                free(want);
                free(text);
                json_decref(doc);
            }
    char *text = NULL;
    size_t len;
    CHECK_INT(crm_search_text(&sys, "", NULL, 0, 0, &text, &len), CRM_EINVALID);
    CHECK(text == NULL);
    crm_principal_free(pd);
    crm_principal_free(pe);
    crm_principal_free(pf);
    teardown();
}

int main(void)
{
    RUN(test_expr);
    RUN(test_prefix);
    RUN(test_multilingual);
    RUN(test_ranking);
    RUN(test_hostile);
    RUN(test_scope);
    RUN(test_hidden_field);
    RUN(test_window);
    RUN(test_whole_word_first);
    RUN(test_tiers);
    RUN(test_text_answer);
    return t_finish("test_search");
}
