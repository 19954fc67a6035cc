/*
 * kfix.h — fixtures shared by the kernel's unit tests: a fresh kernel in a
 * temporary directory with a small "test" schema, and helpers for users,
 * roles and teams.
 */
#ifndef CRM_KFIX_H
#define CRM_KFIX_H

#include "t.h"

#include "../../kernel/auth.h"
#include "../../kernel/bus.h"
#include "../../kernel/perm.h"
#include "../../kernel/record.h"

#include <jansson.h>

static inline crm_kernel *kfix_open_at(const char *dir)
{
    crm_kernel_opts opts = CRM_KERNEL_OPTS_INIT;
    crm_kernel *k = NULL;
    opts.data_dir = dir;
    opts.synchronous = 1; /* tests need no fsync per commit */
    if (crm_kernel_open(&k, &opts) != CRM_OK) {
        fprintf(stderr, "kernel open failed: %s\n", crm_error_last()->message);
        exit(2);
    }
    return k;
}

static inline json_t *kfix_json(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
    if (!v) {
        fprintf(stderr, "bad test JSON (%s): %s\n", err.text, text);
        exit(2);
    }
    return v;
}

/* A kernel with "test.company" and "test.contact" (every field kind). */
static inline crm_kernel *kfix_open(void)
{
    crm_kernel *k = kfix_open_at(t_tmpdir());
    json_t *company = kfix_json("[{\"name\":\"name\",\"kind\":\"text\",\"required\":true,"
                                "\"searchable\":true,\"indexed\":true}]");
    json_t *contact = kfix_json(
        "[{\"name\":\"name\",\"kind\":\"text\",\"required\":true,\"searchable\":true,"
        "  \"indexed\":true,\"max_length\":40},"
        " {\"name\":\"age\",\"kind\":\"int\",\"indexed\":true},"
        " {\"name\":\"balance\",\"kind\":\"decimal\",\"scale\":2},"
        " {\"name\":\"vip\",\"kind\":\"bool\",\"default\":false},"
        " {\"name\":\"birthday\",\"kind\":\"date\"},"
        " {\"name\":\"met_at\",\"kind\":\"datetime\"},"
        " {\"name\":\"stage\",\"kind\":\"enum\",\"values\":[\"new\",\"won\",\"lost\"],\"default\":\"new\"},"
        " {\"name\":\"email\",\"kind\":\"email\",\"unique\":true,\"searchable\":true},"
        " {\"name\":\"phone\",\"kind\":\"phone\"},"
        " {\"name\":\"site\",\"kind\":\"url\"},"
        " {\"name\":\"company\",\"kind\":\"ref\",\"ref\":\"test.company\"},"
        " {\"name\":\"extra\",\"kind\":\"json\"},"
        " {\"name\":\"salary\",\"kind\":\"int\"},"
        " {\"name\":\"code\",\"kind\":\"text\",\"readonly\":true}]");
    if (crm_schema_define_type(k->schema, "test.company", "Company", "test", company) ||
        crm_schema_define_type(k->schema, "test.contact", "Contact", "test", contact)) {
        fprintf(stderr, "define failed: %s\n", crm_error_last()->message);
        exit(2);
    }
    json_decref(company);
    json_decref(contact);
    return k;
}

/* Create a record as the system; returns its id (exits on failure). */
static inline int64_t kfix_create(crm_kernel *k, const char *type, const char *json)
{
    crm_ctx ctx;
    json_t *in = kfix_json(json), *out = NULL;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    if (crm_record_create(&ctx, type, in, &out)) {
        fprintf(stderr, "create %s %s failed: %s\n", type, json, crm_error_last()->message);
        exit(2);
    }
    int64_t id = json_integer_value(json_object_get(out, "id"));
    json_decref(in);
    json_decref(out);
    return id;
}

/* A user (password "password123"), returned as a loaded principal. */
static inline int64_t kfix_user(crm_kernel *k, const char *name)
{
    int64_t id;
    if (crm_user_create(k, name, "password123", false, name, &id)) {
        fprintf(stderr, "user %s: %s\n", name, crm_error_last()->message);
        exit(2);
    }
    return id;
}

static inline crm_principal *kfix_principal(crm_kernel *k, int64_t user)
{
    crm_principal *p = NULL;
    if (crm_principal_load(k->perm, user, &p)) {
        fprintf(stderr, "principal %lld: %s\n", (long long)user, crm_error_last()->message);
        exit(2);
    }
    return p;
}

static inline int64_t kfix_role(crm_kernel *k, const char *name)
{
    char buf[128];
    snprintf(buf, sizeof buf, "{\"name\":\"%s\"}", name);
    return kfix_create(k, "core.role", buf);
}

static inline int64_t kfix_team(crm_kernel *k, const char *name)
{
    char buf[128];
    snprintf(buf, sizeof buf, "{\"name\":\"%s\"}", name);
    return kfix_create(k, "core.team", buf);
}

#endif
