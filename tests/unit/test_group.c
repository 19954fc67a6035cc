/* Tests of kernel/group.c: group commit. */
#include "kfix.h"

#include "../../kernel/group.h"
#include "../../kernel/store.h"

#include <pthread.h>

static crm_kernel *k;

typedef struct {
    int thread, i;
    const char *email; /* NULL: unique per job */
} create_arg;

static int create_job(void *p)
{
    create_arg *a = p;
    crm_ctx ctx;
    char name[64], email[64];
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    snprintf(name, sizeof name, "t%d-%d", a->thread, a->i);
    snprintf(email, sizeof email, "%s", a->email ? a->email : "");
    json_t *in = a->email ? json_pack("{s:s,s:s}", "name", name, "email", email)
                          : json_pack("{s:s}", "name", name);
    int rc = crm_record_create(&ctx, "test.contact", in, NULL);
    json_decref(in);
    return rc;
}

static int failures;

static void *writer(void *p)
{
    int t = (int)(intptr_t)p;
    for (int i = 0; i < 50; i++) {
        create_arg a = {t, i, NULL};
        if (crm_group_run(k->group, create_job, &a) != CRM_OK) __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void concurrent_writers_share_commits(void)
{
    pthread_t th[16];
    for (int i = 0; i < 16; i++) pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i);
    for (int i = 0; i < 16; i++) pthread_join(th[i], NULL);
    CHECK_INT(failures, 0);
    int64_t n = -1;
    crm_conn_query_int(crm_store_conn(k->store), "SELECT count(*) FROM \"test.contact\"", &n, -1);
    CHECK_INT(n, 800);
    crm_conn_query_int(crm_store_conn(k->store), "SELECT count(*) FROM core_history", &n, -1);
    CHECK(n >= 800);
    uint64_t batches, jobs;
    crm_group_stats(k->group, &batches, &jobs);
    CHECK_INT(jobs, 800);
    CHECK(batches < jobs); /* 16 concurrent writers: commits were shared */
}

/* A failing job is rolled back alone; its batch-mates commit; its error reaches its caller. */
typedef struct {
    int rc;
    char message[256], field[64];
    create_arg a;
} result;

static void *dup_writer(void *p)
{
    result *r = p;
    r->rc = crm_group_run(k->group, create_job, &r->a);
    snprintf(r->message, sizeof r->message, "%s", crm_error_last()->message);
    snprintf(r->field, sizeof r->field, "%s", crm_error_last()->field ? crm_error_last()->field : "");
    return NULL;
}

static void failing_job_alone(void)
{
    pthread_t th[8];
    result res[8];
    for (int i = 0; i < 8; i++) {
        memset(&res[i], 0, sizeof res[i]);
        res[i].a = (create_arg){100, i, "same@example.com"};
        pthread_create(&th[i], NULL, dup_writer, &res[i]);
    }
    int ok = 0, conflict = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        if (res[i].rc == CRM_OK) ok++;
        if (res[i].rc == CRM_ECONFLICT) {
            conflict++;
            CHECK_STR(res[i].field, "email");
            CHECK_HAS(res[i].message, "another test.contact record");
        }
    }
    CHECK_INT(ok, 1);
    CHECK_INT(conflict, 7);
    int64_t n = -1;
    crm_conn_query_int(crm_store_conn(k->store),
                       "SELECT count(*) FROM \"test.contact\" WHERE email = 'same@example.com'", &n, -1);
    CHECK_INT(n, 1);
}

static int bad_job(void *p)
{
    (void)p;
    return crm_error_set(CRM_EINVALID, "x", "refused by the job");
}

static void error_carried_back(void)
{
    crm_error_clear();
    CHECK_INT(crm_group_run(k->group, bad_job, NULL), CRM_EINVALID);
    CHECK_STR(crm_error_last()->message, "refused by the job");
    CHECK_STR(crm_error_last()->field, "x");
}

int main(void)
{
    k = kfix_open();
    RUN(concurrent_writers_share_commits);
    RUN(failing_job_alone);
    RUN(error_carried_back);
    crm_kernel_close(k);
    return t_finish("test_group");
}
