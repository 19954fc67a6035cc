/* test_maintain.c — kernel/maintain.c: the search indexes merged, once a day, without
   changing what a search finds. */
#include "kfix.h"

#include "../../kernel/maintain.h"
#include "../../kernel/search.h"
#include "../../kernel/store.h"

#include <stdlib.h>

/* Every hit's id and title for q, as text (malloc'd). */
static char *found(crm_kernel *k, const char *q)
{
    crm_ctx sys;
    json_t *out = NULL, *h;
    const char *types[] = {"test.contact"};
    size_t i;
    crm_buf b = CRM_BUF_INIT;
    crm_ctx_init(&sys, k, crm_principal_system(), NULL);
    if (crm_search(&sys, q, types, 1, 50, &out, NULL)) return crm_strdup("ERROR");
    json_array_foreach(out, i, h)
        crm_buf_printf(&b, "%lld:%s|", (long long)json_integer_value(json_object_get(h, "id")),
                       json_string_value(json_object_get(h, "title")));
    json_decref(out);
    return crm_buf_detach(&b);
}

static char *setting(crm_kernel *k)
{
    crm_conn *c = crm_store_conn(k->store);
    crm_stmt *st;
    char *v = NULL;
    if (crm_stmt_prepare(c, &st, "SELECT value FROM core_setting WHERE key = '" CRM_MAINTAIN_SETTING
                                 "'"))
        return NULL;
    if (crm_stmt_step(st) == 1) v = crm_strdup(crm_stmt_column_text(st, 0));
    crm_stmt_done(st);
    return v;
}

/* Records written one transaction each, as users do: FTS5 flushes a segment per commit. */
static void write_contacts(crm_kernel *k, int from, int n)
{
    static const char *const names[] = {"Maria", "Marek", "Martha", "Mario", "Nikos", "Νίκος",
                                        "Марина", "Mark"};
    for (int i = from; i < from + n; i++) {
        char json[160];
        snprintf(json, sizeof json, "{\"name\":\"%s %d\",\"email\":\"m%d@example.org\"}",
                 names[i % 8], i, i);
        kfix_create(k, "test.contact", json);
    }
}

static void test_merge_keeps_answers(void)
{
    crm_kernel *k = kfix_open();
    crm_maintain_stats st;
    write_contacts(k, 0, 300);
    char *before_mar = found(k, "mar"), *before_word = found(k, "nikos"),
         *before_cyr = found(k, "мар");
    CHECK(strstr(before_mar, "Maria") != NULL);
    CHECK(strstr(before_cyr, "Марина") != NULL);

    CHECK_INT(crm_maintain_run(k, -1, &st), CRM_OK);
    CHECK(st.done);
    CHECK(st.indexes >= 2);       /* test.company, test.contact (and core.user) */
    CHECK_INT(st.merged, 1);      /* test.contact had segments to merge; the others none */
    CHECK(st.steps >= 1);
    char *when = setting(k);
    REQUIRE(when != NULL);
    CHECK(llabs(strtoll(when, NULL, 10) - crm_now()) <= 5);

    /* Merged: FTS5 finds nothing more to do, and every search finds what it found. */
    CHECK_INT(crm_maintain_run(k, -1, &st), CRM_OK);
    CHECK_INT(st.merged, 0);
    CHECK_INT(st.steps, 0);
    char *after_mar = found(k, "mar"), *after_word = found(k, "nikos"), *after_cyr = found(k, "мар");
    CHECK_STR(after_mar, before_mar);
    CHECK_STR(after_word, before_word);
    CHECK_STR(after_cyr, before_cyr);

    /* Writes after the merge are found, deletes are gone, and a second merge takes them in. */
    write_contacts(k, 300, 40);
    int64_t gone = kfix_create(k, "test.contact", "{\"name\":\"Marvin Gone\"}");
    crm_ctx sys;
    crm_ctx_init(&sys, k, crm_principal_system(), NULL);
    REQUIRE(crm_record_delete(&sys, "test.contact", gone, 0) == CRM_OK);
    char *fresh = found(k, "marek");
    CHECK(strstr(fresh, "Marek 337") != NULL);
    CHECK_INT(crm_maintain_run(k, -1, &st), CRM_OK);
    CHECK_INT(st.merged, 1);
    char *fresh2 = found(k, "marek");
    CHECK_STR(fresh2, fresh);
    char *marvin = found(k, "marvin");
    CHECK_STR(marvin, "");

    free(before_mar), free(before_word), free(before_cyr), free(when);
    free(after_mar), free(after_word), free(after_cyr), free(fresh), free(fresh2), free(marvin);
    crm_kernel_close(k);
}

/* A budget stops the work part way; the next run goes on from there. */
static void test_budget(void)
{
    crm_kernel *k = kfix_open();
    crm_maintain_stats st;
    write_contacts(k, 0, 600);
    CHECK_INT(crm_maintain_run(k, 0, &st), CRM_OK);
    CHECK(!st.done);
    CHECK_INT(st.steps, 0);
    char *none = setting(k);
    CHECK(none == NULL); /* not recorded as done */
    int runs = 0;
    do {
        CHECK_INT(crm_maintain_run(k, 1, &st), CRM_OK);
    } while (!st.done && ++runs < 10000);
    CHECK(st.done);
    char *when = setting(k);
    CHECK(when != NULL);
    free(none);
    free(when);
    crm_kernel_close(k);
}

/* crm serve's tick: once a day, not at every tick. */
static void test_tick_daily(void)
{
    crm_kernel *k = kfix_open();
    crm_conn *c = crm_store_conn(k->store);
    crm_maintain_stats st;
    write_contacts(k, 0, 200);
    CHECK_INT(crm_maintain_tick(k, crm_now()), CRM_OK); /* never ran: runs */
    char *first = setting(k);
    REQUIRE(first != NULL);
    write_contacts(k, 200, 60); /* new segments */
    REQUIRE(crm_conn_exec(c, "UPDATE core_setting SET value = '1000' WHERE key = '"
                             CRM_MAINTAIN_SETTING "'") == CRM_OK);
    /* a day after 1000: too soon; the segments stay */
    CHECK_INT(crm_maintain_tick(k, 1000 + CRM_MAINTAIN_INTERVAL - 1), CRM_OK);
    char *kept = setting(k);
    CHECK_STR(kept, "1000");
    /* a day and more: runs, and records when */
    CHECK_INT(crm_maintain_tick(k, 1000 + CRM_MAINTAIN_INTERVAL), CRM_OK);
    char *again = setting(k);
    CHECK(strcmp(again, "1000") != 0);
    CHECK_INT(crm_maintain_run(k, -1, &st), CRM_OK);
    CHECK_INT(st.steps, 0); /* the tick merged them all */
    free(first);
    free(kept);
    free(again);
    crm_kernel_close(k);
}

int main(void)
{
    RUN(test_merge_keeps_answers);
    RUN(test_budget);
    RUN(test_tick_daily);
    return t_finish("test_maintain");
}
