/*
 * plugin_int.h — what the loader (plugin.c) and the host API (host.c) share:
 * a plugin's state and the declarations it staged during init.
 */
#ifndef CRM_PLUGIN_INT_H
#define CRM_PLUGIN_INT_H

#include "plugin.h"

typedef struct staged_type {
    char *name, *label;
    json_t *fields;
} staged_type;

typedef struct staged_field {
    char *type;
    json_t *spec;
} staged_field;

typedef struct staged_role {
    char *name, *description;
    json_t *grants; /* {type: {action: level}} */
} staged_role;

typedef struct staged_sub {
    char *topic, *name; /* name: "<plugin>.<handler>" */
    int phase, order;
    crm_event_fn fn;
    void *udata;
} staged_sub;

typedef struct staged_route {
    char *method, *path; /* path: the full "/api/v1/x/<plugin>/..." */
    unsigned flags;      /* CRM_ROUTE_* (http.h) */
    crm_route_handler fn;
    void *udata;
} staged_route;

typedef struct staged_lua {
    char *name;
    crm_lua_fn fn;
    void *udata;
} staged_lua;

enum { SCHED_CRON, SCHED_OFFSET, SCHED_YEARLY };

typedef struct staged_sched {
    int kind;
    char *name; /* "<plugin>.<schedule>" */
    char *cron, *type, *field;
    int64_t offset;
    int at_minute;
    crm_schedule_fn fn;
    void *udata;
} staged_sched;

typedef struct staged_migration {
    char *version;
    crm_semver v;
    crm_migration_fn fn;
    void *udata;
} staged_migration;

typedef struct staged_demo {
    crm_demo_fn fn;
    void *udata;
} staged_demo;

/* A growable array of T: `T *items; int n, cap;` */
#define STAGED(T, name) \
    T *name;            \
    int n_##name, cap_##name

struct crm_plugin {
    crm_plugins *set;
    char *name;        /* the plugins.conf section */
    char *source;      /* in-tree directory (absolute), or NULL */
    char *git, *ref;   /* git plugins */
    char *commit;      /* git plugins: the locked commit */
    char *so_path;     /* the shared object loaded */
    char *src_dir;     /* the plugin's files (rules directories are relative to it) */
    json_t *settings;  /* from plugins.conf */
    bool enabled;

    void *dl;                   /* never dlclose()d */
    const crm_plugin_desc *desc; /* checked; NULL until then */
    char *version;              /* desc->version, copied */
    char *installed_version;    /* from core_plugin, NULL on a first install */
    const char *state;          /* CRM_PLUGIN_* */
    char *error;                /* why refused */

    bool registering;   /* inside init */
    char *reg_error;    /* the first registration entry that failed */
    bool initialised;   /* init returned CRM_OK and the declarations were applied */

    STAGED(staged_type, types);
    STAGED(staged_field, fields);
    STAGED(staged_field, indexes); /* spec: the array of field names */
    STAGED(staged_role, roles);
    STAGED(staged_sub, subs);
    STAGED(staged_route, routes);
    STAGED(staged_lua, luas);
    STAGED(char *, rule_dirs);
    STAGED(staged_sched, scheds);
    STAGED(staged_migration, migrations);
    STAGED(staged_demo, demos);
};

struct crm_plugins {
    crm_kernel *k;
    crm_http *http;
    char *data_dir;
    crm_plugin **all; /* plugins.conf order */
    int n;
    crm_plugin **order; /* init order (dependencies first): the loaded ones */
    int norder;
};

/* Append one zeroed item to a STAGED array and return it. */
#define STAGE_PUSH(p, name)                                                                  \
    ((p)->n_##name == (p)->cap_##name                                                        \
         ? ((p)->cap_##name = (p)->cap_##name ? 2 * (p)->cap_##name : 4,                     \
            (p)->name = crm_realloc((p)->name, (size_t)(p)->cap_##name * sizeof *(p)->name)) \
         : (p)->name,                                                                        \
     memset(&(p)->name[(p)->n_##name], 0, sizeof *(p)->name), &(p)->name[(p)->n_##name++])

/* host.c: the table handed to init. */
const crm_host_api *crm_host__api(void);
/* host.c: free everything staged by `p` (after a failed init, or at the end). */
void crm_host__discard(crm_plugin *p);
/* host.c: the plugin whose migration runs on this thread (field_rename checks it). */
void crm_host__set_migrating(crm_plugin *p);
/* host.c: undo in the registry the renames of the migration step that failed. */
void crm_host__revert_renames(crm_schema *schema);

#endif
