/*
 * fuzz_json_record.c — a JSON request body → record mapping (SECURITY.md
 * H10): every member's value through crm_field_to_db for every field kind of
 * fz.thing (with a round-trip oracle: a value accepted, turned back into its
 * API form and mapped again must give the same stored value), then the whole
 * body through crm_record_create and, when that succeeds, crm_record_update.
 */
#include "fuzz.h"

static void check_round_trip(const crm_field *f, json_t *stored)
{
    json_t *api = crm_field_stored_to_api(f, stored), *again = NULL;
    if (!api) {
        fprintf(stderr, "field %s: a stored value has no API form\n", f->name);
        abort();
    }
    if (crm_field_to_db(f, api, &again) != CRM_OK) {
        char *s = json_dumps(api, JSON_ENCODE_ANY);
        fprintf(stderr, "field %s (%s): its own API value %s is refused: %s\n", f->name,
                crm_field_kind_name(f->kind), s, crm_error_last()->message);
        abort();
    }
    if (!json_equal(stored, again)) {
        char *a = json_dumps(stored, JSON_ENCODE_ANY), *b = json_dumps(again, JSON_ENCODE_ANY);
        fprintf(stderr, "field %s (%s): stored %s maps back to %s\n", f->name,
                crm_field_kind_name(f->kind), a, b);
        abort();
    }
    json_decref(again);
    json_decref(api);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crm_kernel *k = fz_kernel_get();
    const crm_type *t = crm_schema_type(k->schema, FZ_TYPE);
    json_error_t err;
    /* What the HTTP layer does with a body (its depth/size prescan aside). */
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
    if (!body) return 0;

    if (json_is_object(body)) {
        const char *key;
        json_t *value;
        int n = crm_type_nfields(t);
        json_object_foreach(body, key, value) {
            for (int i = 0; i < n; i++) {
                json_t *stored = NULL;
                if (crm_field_to_db(t->fields[i], value, &stored) == CRM_OK) {
                    check_round_trip(t->fields[i], stored);
                    json_decref(stored);
                }
            }
        }
    }

    crm_ctx ctx;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    json_t *out = NULL;
    if (crm_record_create(&ctx, FZ_TYPE, body, &out) == CRM_OK) {
        int64_t id = json_integer_value(json_object_get(out, "id"));
        json_t *upd = NULL, *got = NULL;
        if (crm_record_update(&ctx, FZ_TYPE, id, body, 0, &upd) == CRM_OK) json_decref(upd);
        if (crm_record_get(&ctx, FZ_TYPE, id, false, &got) == CRM_OK) json_decref(got);
        /* keep unique values free for the next inputs */
        crm_record_delete(&ctx, FZ_TYPE, id, 0);
        json_decref(out);
    }
    json_decref(body);
    return 0;
}
