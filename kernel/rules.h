/*
 * rules.h — the Lua rule engine: workflow rules admins write in Lua 5.4
 * (scripts/<name>.lua and each plugin's scripts/), run on record events, custom
 * events, cron schedules and date offsets, inside a sandbox. The `crm` API a
 * rule sees is documented in sdk/RULES.md.
 *
 * Only the rule engine's files (rules*.c) include lua.h: the rest of the
 * kernel knows rules through this header.
 *
 * Life cycle (what `crm serve` does):
 *     crm_rules_open(&r, k, NULL);                    subscribes to the bus
 *     crm_rules_register_function(r, "hotel", ...);   each plugin's Lua functions
 *     crm_rules_add_dir(r, "scripts", "site");        the site's rules
 *     crm_rules_add_dir(r, "/…/plugins/hotel/scripts", "hotel");
 *     crm_rules_load(r, &report);                     and again on SIGHUP / reload
 *     crm_api_rules_register(h, r);                   GET /rules, POST /rules/reload
 *     ... serve ...
 *     crm_rules_close(r);                             after HTTP, bus and scheduler stopped
 *
 * Threads. Each thread that runs rules gets its own Lua state, prepared once
 * (libraries, sandbox, compiled rule files) and reused for every run; a run
 * builds only a fresh global environment and the event table. A reload
 * builds a new rule set and swaps it in atomically: a state picks the new
 * set up at its next top-level run, so runs in flight finish on the old one.
 *
 * How rules hook into the kernel. The engine subscribes one before and one
 * after handler to every topic ("*", bus order CRM_RULES_BUS_ORDER) and runs
 * the matching rules itself, in (order, file, position) order. Each async
 * rule is its own durable bus consumer ("rule:<name>@<topic>"), so it is
 * retried alone. Scheduled rules are scheduler entries named "rule:<name>",
 * whose persisted state makes restarts neither lose nor repeat firings.
 *
 * Authority. Rules run with system authority (DESIGN.md "Lua rules"): their
 * writes go through the record layer as crm_principal_system() with the
 * history "via" "rule <file>:<name> on behalf of user <id>" (or "of system").
 * The triggering user is visible to the rule as ev.user.
 */
#ifndef CRM_RULES_H
#define CRM_RULES_H

#include "kernel.h"

#include <stdio.h>

typedef struct crm_rules crm_rules;
typedef struct crm_http crm_http;

/* Bus order of the engine's before/after handlers: plugin handlers with a
 * lower order run before every rule, higher after. */
#define CRM_RULES_BUS_ORDER 100

typedef struct crm_rules_opts {
    int version;        /* 1 */
    int time_budget_ms; /* wall-clock budget of one run (default 50) */
    size_t memory_cap;  /* bytes per Lua state (default 16 MiB) */
    int hook_interval;  /* VM instructions between deadline checks (default 1000) */
} crm_rules_opts;

#define CRM_RULES_OPTS_INIT {1, 50, (size_t)16 << 20, 1000}

/*
 * Open the engine for kernel `k` (opts NULL: defaults) and subscribe it to the
 * bus. No rules are loaded until crm_rules_load.
 * Errors: CRM_EINVALID (options out of range).
 */
int crm_rules_open(crm_rules **out, crm_kernel *k, const crm_rules_opts *opts);

/*
 * Close the engine: removes its schedules, detaches its bus handlers (they
 * become no-ops: the bus has no unsubscribe), frees every thread's Lua state.
 * Call only when no thread runs rules any more (HTTP, bus workers and the
 * scheduler stopped). NULL is fine.
 */
void crm_rules_close(crm_rules *r);

/*
 * Add a directory of rule files (*.lua, not recursive; "tests/" is not read)
 * owned by `owner`: "site" for the site's scripts/, or a plugin's name. Read
 * at every crm_rules_load. A missing directory is not an error (it simply
 * holds no rules). Errors: CRM_EINVALID (empty owner or dir).
 */
int crm_rules_add_dir(crm_rules *r, const char *dir, const char *owner);

/*
 * Make `fn` callable from rules as crm.<ns>.<name>(...): the Lua arguments
 * arrive as a JSON array, the result (a new reference or NULL for nil) goes
 * back as a Lua value, an error becomes a Lua error with the kernel message.
 * Takes effect at the next crm_rules_load.
 * Errors: CRM_EINVALID (ns or name not [a-z][a-z0-9_]*, or a reserved
 * namespace: get, find, mail, ...), CRM_ECONFLICT (registered twice).
 */
int crm_rules_register_function(crm_rules *r, const char *ns, const char *name, crm_lua_fn fn,
                                void *udata);

/*
 * Disable the rule named `rule_name` (any owner's) from now on, across
 * reloads; a site file can do the same with `disable "name"`. Unknown names
 * are remembered (the rule may appear at the next load).
 */
int crm_rules_disable(crm_rules *r, const char *rule_name);

/*
 * (Re)load every directory: parse each file in a scratch Lua state, check the
 * declarations, register schedules and async consumers, swap the new set in.
 * A file with a syntax or run-time error at load is reported and skipped;
 * the others load. Never fails because of a rule file.
 * *report (optional, new reference):
 *   {"generation":N,"rules":N,"files":N,
 *    "errors":[{"file","line","rule"|null,"code","message"}]}
 * with code "rule_syntax_error" (syntax, binary chunk) or "rule_invalid"
 * (a bad declaration, an unknown type for a schedule, a duplicate name).
 * Errors: CRM_EBUSY / CRM_EINTERNAL from the database (async consumers).
 */
int crm_rules_load(crm_rules *r, json_t **report);

/*
 * The loaded rules, for GET /api/v1/rules and `crm rules list` (new reference):
 *   {"generation":N,"data":[{"name","file","line","source","trigger","phase",
 *     "order","state":"enabled"|"disabled"|"error","error":msg|null,
 *     "runs","errors","last_error","total_us"}],
 *    "errors":[load errors as in crm_rules_load's report]}
 * "trigger" is a text such as "on crm.deal.updated", "cron 0 3 * * *",
 * "3d before crm.subscription.period_end at 09:00", "yearly crm.contact.birthday".
 * Counters are kept in memory per rule name since the engine opened.
 */
json_t *crm_rules_json(crm_rules *r);

/* The generation of the loaded set (0 before the first load). */
uint64_t crm_rules_generation(crm_rules *r);

/* ---- HTTP (api_rules.c) ---- */

/*
 * GET /api/v1/rules (admin) → crm_rules_json; POST /api/v1/rules/reload
 * (admin) → the crm_rules_load report, status 200 even when files had errors.
 */
int crm_api_rules_register(crm_http *h, crm_rules *rules);

/* ---- Tools (`crm rules check`, `crm rules test`) ---- */

/*
 * Lint one rule file: syntax, declarations, cron expressions, and — when `k`
 * is not NULL — topics, types and fields against k's live schema, plus the
 * literal type names in crm.get/find/create/update/delete calls. Appends
 * problems to `problems` (a JSON array) as {"file","line","message","level":
 * "error"|"warning"}. Returns the number of errors (warnings not counted).
 */
int crm_rules_check_file(crm_kernel *k, const char *path, json_t *problems);

/* What a run of rule test files found. */
typedef struct crm_rules_test_result {
    int passed, failed;
} crm_rules_test_result;

/*
 * Run the rule test file `path` (see sdk/RULES.md, "Testing rules"): every
 * t.test(...) in it runs against a fresh throw-away database in a temporary
 * directory, with the rules of `rules_dir` loaded (NULL: the directory above
 * the test file's "tests/" directory, or the test file's own directory).
 * Prints "ok"/"not ok" lines to `out`. Adds to *res. Returns CRM_OK, or an
 * error when the file itself cannot be read or compiled (counted as one
 * failure too). No plugins are loaded: the file declares the types it needs
 * with t.define_type.
 */
struct crm_conf;
int crm_rules_test_file(const char *path, const char *rules_dir, bool verbose, FILE *out,
                        crm_rules_test_result *res);
/*
 * The same, with the plugins of `conf` (plugins.conf, parsed; NULL: none) loaded
 * into each test's fresh database from `plugin_dir` (NULL: the default): their
 * types, handlers and the Lua functions rules call as crm.<plugin>.<name>. The
 * plugins' own rule directories are not added: the rules under test are the
 * ones of `rules_dir`.
 */
int crm_rules_test_file_with(const char *path, const char *rules_dir, bool verbose, FILE *out,
                             crm_rules_test_result *res, const struct crm_conf *conf,
                             const char *plugin_dir);

#endif
