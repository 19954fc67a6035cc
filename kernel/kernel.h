/*
 * kernel.h — the kernel as one object: the store, the schema registry, the
 * permission engine, the event bus and the scheduler of one data directory;
 * and the per-call context every record operation runs in.
 */
#ifndef CRM_KERNEL_H
#define CRM_KERNEL_H

#include "schema.h"

typedef struct crm_perm crm_perm;
typedef struct crm_bus crm_bus;
typedef struct crm_sched crm_sched;
typedef struct crm_principal crm_principal;
typedef struct crm_group crm_group;

typedef struct crm_kernel {
    char *data_dir;
    crm_store *store;
    crm_schema *schema;
    crm_perm *perm;
    crm_bus *bus;
    crm_sched *sched;
    crm_group *group; /* group commit for concurrent writers (group.h) */
} crm_kernel;

typedef struct crm_kernel_opts {
    int version;         /* 1 */
    const char *data_dir; /* created if missing; holds crm.db */
    int synchronous;     /* 0 OFF, 1 NORMAL, 2 FULL */
    int busy_timeout_ms;
} crm_kernel_opts;

#define CRM_KERNEL_OPTS_INIT {1, "./var", 2, 5000}

/* Open (creating if needed) the data directory's database and every subsystem. */
int crm_kernel_open(crm_kernel **out, const crm_kernel_opts *opts);
/* Stop the async workers and the scheduler thread, then close everything. */
void crm_kernel_close(crm_kernel *k);

/* Cascade bound: a write made by a handler may trigger handlers this deep. */
#define CRM_CASCADE_MAX 8

/*
 * The context of one call into the record layer: who is acting (their
 * permissions apply), on whose behalf history records it ("via"), and how deep
 * in a cascade of handlers we are. Lives on the caller's stack.
 */
typedef struct crm_ctx {
    crm_kernel *k;
    crm_principal *who;  /* never NULL: crm_principal_system() for the kernel itself */
    const char *via;     /* NULL for a direct call; "rule scripts/a.lua:name", "plugin hotel" */
    int depth;           /* number of topics on the chain */
    const char *chain[CRM_CASCADE_MAX + 1];
} crm_ctx;

/* A context for `who` (borrowed; must outlive the context). */
void crm_ctx_init(crm_ctx *ctx, crm_kernel *k, crm_principal *who, const char *via);
/* This thread's connection for the context's kernel. */
crm_conn *crm_ctx_conn(crm_ctx *ctx);

#endif
