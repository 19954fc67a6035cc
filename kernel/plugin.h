/*
 * plugin.h — the plugin loader: turns plugins.conf (and plugins.lock for git
 * plugins) into loaded, initialised plugins, in dependency order.
 *
 * For each enabled section the loader finds the .so (in-tree: the built file
 * <plugin_dir>/<basename of source>.so; git: the locked file, whose SHA-256 is
 * checked first), dlopen()s it with RTLD_NOW|RTLD_LOCAL, calls the one
 * exported function crm_plugin_v1() and checks the descriptor it returns —
 * magic, ABI major/minor, descriptor size, ABI config, name, semver version —
 * before any other plugin code runs. Then it orders the plugins by their
 * requirements (semver ranges), and runs each one's init with the host API.
 *
 * Registration is staged: what a plugin declares inside init is checked at
 * once (the entry returns the error to the plugin) and collected; only when
 * init returns CRM_OK are the declarations applied: migrations, schema DDL,
 * roles, bus subscriptions, routes, schedules. A failing init therefore leaves
 * nothing behind. A refused plugin makes its dependents refused; the others go
 * on. Plugins are never unloaded (no dlclose): their code may still be on a
 * stack, in a handler table, or in a Lua closure.
 *
 * A plugin's types that exist in the database but whose plugin is not loaded
 * this time (disabled, refused, removed from plugins.conf) are hidden from the
 * schema registry: their data stays, their API is absent.
 */
#ifndef CRM_PLUGIN_H
#define CRM_PLUGIN_H

#include "conf.h"
#include "http.h"
#include "kernel.h"

typedef struct crm_plugins crm_plugins;

typedef struct crm_plugins_opts {
    int version;            /* 1 */
    const char *plugin_dir; /* in-tree plugins' built .so files; NULL: the "plugins" directory
                               next to the running binary (build/plugins for build/crm) */
    const char *data_dir;   /* plugins.lock and fetched plugins; NULL: the kernel's data dir */
    crm_http *http;         /* routes are registered here; NULL (CLI): kept, not served */
} crm_plugins_opts;

#define CRM_PLUGINS_OPTS_INIT {1, NULL, NULL, NULL}

/*
 * Load, check, order and initialise the enabled plugins of `conf`.
 * Returns CRM_OK even when some plugins are refused: their state and error are
 * in the set (crm_plugins_json, and logged at ERROR). Errors: CRM_EINVALID
 * when plugins.lock is malformed (SECURITY P1: the server must not start).
 * `conf` may be freed after the call.
 */
int crm_plugins_load(crm_plugins **out, crm_kernel *k, const crm_conf *conf,
                     const crm_plugins_opts *opts);
/* Run every loaded plugin's shutdown (reverse load order), then free the set. */
void crm_plugins_free(crm_plugins *set);

/* Plugin states. */
#define CRM_PLUGIN_LOADED "loaded"
#define CRM_PLUGIN_DISABLED "disabled"
#define CRM_PLUGIN_REFUSED "refused"

/*
 * The plugins as JSON, in plugins.conf order:
 *   [{"name","version"|null,"source","commit"|null,"state","error"|null}]
 * "source" is the in-tree directory or the git URL. New reference.
 */
json_t *crm_plugins_json(crm_plugins *set);
/* Number of plugins in the set, and of those loaded. */
int crm_plugins_count(crm_plugins *set, int *loaded);
/* The state of plugin `name` (a CRM_PLUGIN_* string) and its error ("" when none);
 * NULL when no such plugin is in the set. */
const char *crm_plugins_state(crm_plugins *set, const char *name, const char **error);

/*
 * What the plugins registered for other subsystems, in load order. Each
 * callback returns 0 to go on, non-zero to stop (that value is returned).
 */
/* Lua functions, for the rule engine: crm.<plugin>.<name>(...). */
int crm_plugins_each_lua_function(crm_plugins *set,
                                  int (*cb)(void *arg, const char *plugin, const char *name,
                                            crm_lua_fn fn, void *udata),
                                  void *arg);
/* Rule directories (absolute paths) of loaded plugins. */
int crm_plugins_each_rule_dir(crm_plugins *set,
                              int (*cb)(void *arg, const char *plugin, const char *dir),
                              void *arg);
/* Demo data hooks, for `crm demo` (call fn(ctx, udata) with a system context). */
int crm_plugins_each_demo(crm_plugins *set,
                          int (*cb)(void *arg, const char *plugin, crm_demo_fn fn, void *udata),
                          void *arg);
/* Run every demo hook in load order, each in its own transaction, as the system. */
int crm_plugins_run_demo(crm_plugins *set, crm_kernel *k);

/* The routes registered (for tests and `crm plugin list`): "METHOD /api/v1/x/..." each. */
json_t *crm_plugins_routes(crm_plugins *set);

/* api_plugins.c: GET /api/v1/plugins (authenticated) → {"data": crm_plugins_json(set)}. */
int crm_api_plugins_register(crm_http *h, crm_plugins *set);

/* ---- Semantic versions (exposed for tests and plugin fetch) ---- */

typedef struct crm_semver {
    long major, minor, patch;
    char pre[64]; /* pre-release identifiers ("rc.1"), "" for a release */
} crm_semver;

/* Parse "MAJOR.MINOR.PATCH[-pre][+build]" strictly. */
bool crm_semver_parse(const char *s, crm_semver *out);
/* <0, 0, >0 by semver precedence (build metadata ignored). */
int crm_semver_cmp(const crm_semver *a, const crm_semver *b);
/*
 * Whether `version` satisfies `range`: comparators joined by "," (AND), each
 * one of ">=V", ">V", "<=V", "<V", "=V", "V" (exact), "^V", "~V", "*"; V may be
 * partial ("1", "1.2"). Errors: CRM_EINVALID naming the bad comparator.
 */
int crm_semver_satisfies(const char *range, const char *version, bool *ok);

#endif
