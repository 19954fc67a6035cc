/*
 * fuzz_query.c — the list query parser and planner (SECURITY.md D8, H10):
 * the input is query-string pairs, one "key=value" per line (as the HTTP
 * layer hands them over after percent-decoding: any byte but NUL), fed to
 * crm_query_add until one is refused, then run with crm_record_find over
 * fz.thing, followed through one "next" cursor, and as a CSV export.
 */
#include "fuzz.h"

#include "../../kernel/io.h"

static void run_export(crm_ctx *ctx, const crm_query *q)
{
    crm_export *e = NULL;
    char buf[4096];
    if (crm_export_open(&e, ctx, FZ_TYPE, q, CRM_EXPORT_CSV, false) != CRM_OK) return;
    while (crm_export_next(e, buf, sizeof buf) > 0) {}
    crm_export_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crm_kernel *k = fz_kernel_get();
    if (size > 1 << 16) return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;

    crm_query q;
    crm_query_init(&q);
    int rc = CRM_OK;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && rc == CRM_OK;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        const char *value = "";
        if (eq) {
            *eq = 0;
            value = eq + 1;
        }
        rc = crm_query_add(&q, line, value);
    }
    if (rc == CRM_OK) {
        crm_ctx ctx;
        json_t *out = NULL;
        crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
        if (crm_record_find(&ctx, FZ_TYPE, &q, &out) == CRM_OK) {
            const char *next = json_string_value(json_object_get(out, "next"));
            if (next && crm_query_add(&q, "cursor", next) == CRM_OK) {
                json_t *page2 = NULL;
                if (crm_record_find(&ctx, FZ_TYPE, &q, &page2) == CRM_OK) json_decref(page2);
            }
            json_decref(out);
            run_export(&ctx, &q);
        }
    }
    crm_query_free(&q);
    free(text);
    return 0;
}
