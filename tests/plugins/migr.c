/*
 * The same plugin at two versions (MIGR_V): 1.0.0 has migr.person {name, phone};
 * 2.0.0 renames phone to mobile (a migration step) and adds email; 3.0.0 has a
 * step that renames mobile to cell and then fails: the rename must not survive.
 */
#include <crm.h>

#include <string.h>

#ifndef MIGR_V
#define MIGR_V 1
#endif

static const crm_host_api *host;

#if MIGR_V >= 2
static int to_2(crm_ctx *ctx, const char *from, void *udata)
{
    (void)from;
    (void)udata;
    int rc = host->field_rename(ctx, "migr.person", "phone", "mobile");
    if (rc) return rc;
    /* a data step too: records get a note of the upgrade, in the same transaction */
    json_t *page = NULL, *rec;
    size_t i;
    if ((rc = host->record_find(ctx, "migr.person", NULL, &page))) return rc;
    json_array_foreach(json_object_get(page, "data"), i, rec) {
        json_t *patch = json_pack("{s:s}", "name", "migrated");
        json_t *name = json_object_get(rec, "name");
        if (json_is_string(name)) {
            json_decref(patch);
            patch = json_pack("{s:s+}", "name", json_string_value(name), " (v2)");
        }
        rc = host->record_update(ctx, "migr.person", json_integer_value(json_object_get(rec, "id")),
                                 patch, NULL);
        json_decref(patch);
        if (rc) break;
    }
    json_decref(page);
    return rc;
}
#endif

#if MIGR_V >= 3
static int to_3(crm_ctx *ctx, const char *from, void *udata)
{
    (void)from;
    (void)udata;
    int rc = host->field_rename(ctx, "migr.person", "mobile", "cell");
    if (rc) return rc;
    return host->error_set(CRM_EINTERNAL, NULL, "migr: step 3.0.0 fails on purpose");
}
#endif

static int init(crm_plugin *self, const crm_host_api *api)
{
    int rc;
    host = api;
#if MIGR_V >= 2
    const char *fields_json = "[{\"name\":\"name\",\"kind\":\"text\",\"required\":true},"
                              " {\"name\":\"mobile\",\"kind\":\"phone\",\"indexed\":true},"
                              " {\"name\":\"email\",\"kind\":\"email\"}]";
    if ((rc = host->migration(self, "2.0.0", to_2, NULL))) return rc;
#if MIGR_V >= 3
    if ((rc = host->migration(self, "3.0.0", to_3, NULL))) return rc;
#endif
#else
    const char *fields_json = "[{\"name\":\"name\",\"kind\":\"text\",\"required\":true},"
                              " {\"name\":\"phone\",\"kind\":\"phone\",\"indexed\":true}]";
#endif
    json_t *fields = json_loads(fields_json, 0, NULL);
    rc = host->type_declare(self, "migr.person", "Person", fields);
    json_decref(fields);
    return rc;
}

static const crm_plugin_desc descriptor = {
    CRM_PLUGIN_HEADER,
    .name = "migr",
#if MIGR_V >= 3
    .version = "3.0.0",
#elif MIGR_V >= 2
    .version = "2.0.0",
#else
    .version = "1.0.0",
#endif
    .init = init,
};

CRM_PLUGIN_EXPORT const crm_plugin_desc *crm_plugin_v1(void)
{
    return &descriptor;
}
