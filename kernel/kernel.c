/*
 * kernel.c — opening and closing a data directory: the store, then the
 * schema registry, permissions, bus and scheduler, each built on the last.
 */
#include "kernel.h"

#include "bus.h"
#include "group.h"
#include "perm.h"
#include "sched.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int crm_kernel_open(crm_kernel **out, const crm_kernel_opts *opts)
{
    static const crm_kernel_opts defaults = CRM_KERNEL_OPTS_INIT;
    crm_kernel *k = crm_calloc(1, sizeof *k);
    crm_store_opts sopts = CRM_STORE_OPTS_INIT;
    int rc;
    *out = NULL;
    if (!opts) opts = &defaults;
    k->data_dir = crm_strdup(opts->data_dir && *opts->data_dir ? opts->data_dir : "./var");
    if (mkdir(k->data_dir, 0700) != 0 && errno != EEXIST) {
        rc = crm_error_set(CRM_EINTERNAL, NULL, "cannot create data directory %s: %s", k->data_dir,
                           strerror(errno));
        goto fail;
    }
    char *path = crm_sprintf("%s/crm.db", k->data_dir);
    sopts.path = path;
    sopts.synchronous = opts->synchronous;
    sopts.busy_timeout_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000;
    rc = crm_store_open(&k->store, &sopts);
    free(path);
    if (rc) goto fail;
    if ((rc = crm_schema_open(&k->schema, k->store)) || (rc = crm_perm_open(&k->perm, k)) ||
        (rc = crm_bus_open(&k->bus, k)) || (rc = crm_sched_open(&k->sched, k)) ||
        (rc = crm_group_open(&k->group, k->store, 0)))
        goto fail;
    *out = k;
    return CRM_OK;
fail:
    crm_kernel_close(k);
    return rc;
}

void crm_kernel_close(crm_kernel *k)
{
    if (!k) return;
    crm_group_close(k->group); /* finishes queued writes first */
    if (k->sched) {
        crm_sched_stop(k->sched);
        crm_sched_close(k->sched);
    }
    if (k->bus) {
        crm_bus_stop(k->bus);
        crm_bus_close(k->bus);
    }
    crm_perm_close(k->perm);
    crm_schema_close(k->schema);
    crm_store_close(k->store);
    free(k->data_dir);
    free(k);
}
