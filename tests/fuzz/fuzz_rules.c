/*
 * fuzz_rules.c — the rule loader (kernel/rules*.c, SECURITY.md L17): the
 * input is a rule file, loaded by crm_rules_load into a live engine (the
 * sandbox, its CPU and memory limits, the declaration checks), linted by
 * crm_rules_check_file, and then triggered: a fz.thing record is created,
 * updated and deleted so that rules declared on those topics run.
 * Oracles: loading never fails because of a rule file, and the report has
 * its documented shape.
 */
#include "fuzz.h"

#include "../../kernel/rules.h"

#include <sys/stat.h>

static crm_rules *rules;
static char rule_path[160];

static void trigger(crm_kernel *k)
{
    crm_ctx ctx;
    json_t *in = json_pack("{s:s,s:i}", "name", "rule fuzz", "age", 7), *out = NULL;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    if (crm_record_create(&ctx, FZ_TYPE, in, &out) == CRM_OK) {
        int64_t id = json_integer_value(json_object_get(out, "id"));
        json_t *patch = json_pack("{s:i,s:s}", "age", 8, "stage", "won"), *upd = NULL;
        if (crm_record_update(&ctx, FZ_TYPE, id, patch, 0, &upd) == CRM_OK) json_decref(upd);
        json_decref(patch);
        crm_record_delete(&ctx, FZ_TYPE, id, 0);
        json_decref(out);
    }
    json_decref(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crm_kernel *k = fz_kernel_get();
    if (size > 1 << 16) return 0;
    if (!rules) {
        char dir[128];
        crm_rules_opts opts = CRM_RULES_OPTS_INIT;
        opts.time_budget_ms = 20; /* fuzzing wants many runs: a tighter budget */
        snprintf(dir, sizeof dir, "%s/scripts", fz_tmpdir());
        mkdir(dir, 0700);
        snprintf(rule_path, sizeof rule_path, "%s/fuzz.lua", dir);
        if (crm_rules_open(&rules, k, &opts) || crm_rules_add_dir(rules, dir, "site")) {
            fprintf(stderr, "fuzz: rules: %s\n", crm_error_last()->message);
            abort();
        }
    }
    FILE *f = fopen(rule_path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);

    json_t *report = NULL;
    int rc = crm_rules_load(rules, &report);
    if (rc != CRM_OK) {
        fprintf(stderr, "rules: load failed because of a rule file: %s\n",
                crm_error_last()->message);
        abort();
    }
    if (!json_is_object(report) || !json_is_array(json_object_get(report, "errors"))) {
        fprintf(stderr, "rules: the load report lacks its shape\n");
        abort();
    }
    json_decref(report);

    json_t *problems = json_array();
    crm_rules_check_file(k, rule_path, problems);
    json_decref(problems);

    trigger(k);
    return 0;
}
