/*
 * rules_int.h — internals shared by the rule engine's files:
 *   rules.c          the engine: rule sets, loading, reload, bus / scheduler glue
 *   rules_sandbox.c  Lua states: allocator, hook, sandboxed environment, runs
 *   rules_load.c     rule files into a state: rule{} declarations, disable
 *   rules_api.c      the `crm` table rules call, and the `t` table of rule tests
 *   rules_tools.c    `crm rules check` and `crm rules test`
 * These are the only files that include lua.h (DESIGN.md: each third-party
 * library behind one subsystem).
 */
#ifndef CRM_RULES_INT_H
#define CRM_RULES_INT_H

#include "bus.h"
#include "rules.h"
#include "sched.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <pthread.h>
#include <stdatomic.h>

#define RULE_NAME_MAX 200
#define RULE_FILE_MAX (1 << 20)   /* bytes of one rule file */
#define RULE_JSON_DEPTH 100       /* nesting of values crossing into / out of Lua */
#define RULE_STR_SUBJECT_MAX 65536 /* string.find/match/gmatch/gsub subjects */
#define RULE_STR_QUANT_MAX 3      /* quantifiers in one pattern */
/*
 * Lua's matcher backtracks: with q quantifiers, a match attempt can take about
 * n^q steps on an n-byte subject, and an unanchored search tries n start
 * positions. One C call cannot be interrupted by the instruction hook, so the
 * estimate n^(q + unanchored) must stay under this many steps (tens of ms).
 */
#define RULE_STR_STEPS_MAX 5e7
#define RULE_STR_REP_MAX (1 << 20) /* string.rep results */
#define RULE_CALL_DEPTH_MAX 4000  /* Lua call levels before "stack overflow" */
#define RULE_NEST_MAX 12          /* rule runs nested in one thread (cascade bound is 8) */
#define RULE_LOG_BURST 10         /* log lines per rule per RULE_LOG_WINDOW seconds */
#define RULE_LOG_WINDOW 10

enum rule_trigger { TRIG_EVENT, TRIG_CRON, TRIG_OFFSET, TRIG_YEARLY };
enum rule_abort { ABORT_NONE, ABORT_TIMEOUT, ABORT_MEMORY };

/* Per rule name, for the engine's lifetime (survive reloads). */
typedef struct rule_counters {
    char *name;
    atomic_uint_fast64_t runs, errors, total_us;
    char *last_error;  /* guarded by the engine's mutex */
    int64_t log_window_start;
    int log_lines, log_suppressed;
    struct rule_counters *next;
} rule_counters;

/* One declared rule (C side: everything but the functions). */
typedef struct rule {
    char *name;
    int file;     /* index into the set's files */
    int line;     /* where rule{...} was called */
    int position; /* declaration order within the file */
    int trig;
    char *topic;  /* TRIG_EVENT: a topic or pattern ("crm.deal.updated", "crm.deal.*") */
    int phase;    /* CRM_PHASE_* */
    int order;
    char **changed; /* field names; the rule fires when any of them changed */
    int nchanged;
    json_t *from, *to; /* field-value conditions on changed[0] (NULL: none) */
    bool has_when;
    char *cron;
    char *sched_type, *sched_field; /* TRIG_OFFSET / TRIG_YEARLY */
    int64_t offset;                 /* seconds; negative: before */
    int at_minute;                  /* -1: not given */
    bool declared_enabled;
    atomic_bool disabled;           /* declared disabled, or disabled by name */
    char *error;                    /* declaration or registration problem: state "error" */
    char *consumer;                 /* TRIG_EVENT + async: the bus consumer name */
    char *sched_name;               /* scheduled: "rule:<name>" */
    char *via;                      /* "rule <file>:<name>" */
    rule_counters *ctr;
} rule;

void rule_free(rule *ru);

typedef struct rule_file {
    char *path;  /* as shown to admins: "<dir>/<name>.lua" */
    char *owner; /* "site" or a plugin */
    char *source;
    size_t len;
} rule_file;

/* A loaded set of rules; immutable once published, freed with its last reference. */
typedef struct ruleset {
    atomic_int refs;
    uint64_t gen;
    rule_file *files;
    int nfiles;
    rule **rules; /* sorted by (order, file, position) */
    int nrules;
    json_t *errors; /* load errors (array) */
    int nphase[3];  /* runnable rules per phase (event triggers) */
} ruleset;

void ruleset_release(ruleset *rs);

/* A registered crm.<ns>.<name> function. */
typedef struct rule_fn {
    char *ns, *name;
    crm_lua_fn fn;
    void *udata;
    struct rule_fn *next;
} rule_fn;

typedef struct rstate rstate;

/* One rule run: what the hook, the crm functions and the host share. */
typedef struct rule_run {
    struct rule_run *prev; /* the run this one is nested in (same thread) */
    rstate *S;
    const rule *rule;
    int index; /* the rule's index in the state's compiled set */
    int phase;
    crm_event *ev;            /* event-triggered; NULL for schedules */
    json_t *changed;          /* the event's changed field names (array, borrowed) */
    const crm_firing *firing; /* scheduled; NULL otherwise */
    crm_ctx ctx;              /* system authority, via the rule */
    char via[400];
    int64_t user;             /* on whose behalf (0: the system) */
    bool tx_open;             /* the rule's savepoint is open */
    bool ran;                 /* `when` passed and `run` was called */
    bool rejected;
    char reject_field[64];
    char reject_msg[512];
    int fail_code;        /* a failure the host decided (too deep, bad record) */
    char fail_name[40];
    char fail_msg[512];
    char api_msg[600];    /* the last crm.* failure raised into Lua ... */
    int api_code;         /* ... with its kernel code and name, to map it back */
    char api_name[40];
    char api_field[64];
    char where[200];      /* position of a non-string error (message handler) */
} rule_run;

/* Collects declarations while a file loads (parse pass) or only functions (thread compile). */
typedef struct rule_loader {
    int file;
    const char *path;
    const char *owner;
    int position;
    /* called with each declared rule (ownership passes); NULL: freed at once */
    void (*on_rule)(void *arg, rule *ru);
    void (*on_disable)(void *arg, const char *name, int line);
    void *arg;
} rule_loader;

struct rstate {
    crm_rules *r; /* NULL for the tools' states */
    lua_State *L;
    size_t used, cap;
    int64_t deadline; /* crm_mono_us() bound of the current run; 0: none */
    int abort;        /* enum rule_abort, sticky until the outermost run ends */
    int hook_interval;
    int64_t budget_us;
    ruleset *rs;      /* compiled set (a reference), or NULL */
    int funcs_ref;    /* registry: [3i+1] main chunk, [3i+2] when, [3i+3] run of rule i */
    int byname_ref;   /* registry: "<file>:<name>" -> {main, when, run} (while compiling) */
    int base_ref;     /* registry: the allowlisted globals */
    int env_mt_ref;   /* registry: metatable of a run's _ENV */
    int crm_ref;      /* registry: the crm proxy (rebuilt per compile) */
    lua_State *pool[RULE_NEST_MAX]; /* one thread per nesting level */
    int pool_ref;     /* registry: table anchoring the pool */
    int depth;        /* runs in progress on this thread */
    rule_run *run;    /* innermost run */
    json_t *hold;     /* JSON kept alive across code that may raise */
    rule_loader *loader;
    void *test;       /* rules_tools.c: the test context in a test state */
    struct rstate *next; /* the engine's list */
};

/* ---- rules_sandbox.c ---- */

/* Run fn(arg) protected on L; CRM_OK (LUA_OK) or the Lua status with the message in msg. */
int rules_protected_call(rstate *S, lua_State *L, lua_CFunction fn, void *arg, char *msg,
                         size_t msglen);

/* A prepared state: libraries, sandbox, hook. NULL with the error set when it cannot. */
rstate *rules_state_new(crm_rules *r, size_t cap, int hook_interval, int64_t budget_us);
/* Collect garbage under limits, then close. */
void rules_state_free(rstate *S);
/* (rules_load.c)
 * Load and run one file's top level in `S` with `rule` and `disable` in its
 * environment. Errors: CRM_EINVALID named "rule_syntax_error" (syntax, binary
 * chunk) or "rule_invalid" (a run-time error at top level), message
 * "<file>:<line>: ..."; *line gets the line (0 unknown).
 */
int rules_state_load_file(rstate *S, rule_loader *ld, const char *src, size_t len, int *line);
/* Start loading files into S: a fresh function index and the crm table. */
int rules_state_begin(rstate *S);
/* Compile every file of `rs` into S (per-thread) and index its rules' functions. */
void rules_state_compile(rstate *S, ruleset *rs);
/* Forget the compiled functions (before recompiling). */
void rules_state_reset(rstate *S);
/*
 * Run rule run->index of S's compiled set: fresh _ENV, the event table,
 * `when` then `run`, under the deadline and memory cap, with the rule's
 * writes in a savepoint. CRM_OK (ran or skipped by `when`: see run->ran), or
 * the error set with its API name (rule_timeout, rule_memory_limit,
 * rule_error, rule_result_too_deep, rule_rejected, or a propagated kernel error).
 */
int rules_state_run(rstate *S, rule_run *run);
/* Run fn(L) protected on the state's main thread with the state's limits
 * (tools use it for test functions). */
int rules_state_pcall(rstate *S, lua_State *L, int nargs, int64_t budget_us, char *msg,
                      size_t msglen);

/* Lua <-> JSON. to_json never raises: NULL and a message in err (too_deep set when
 * the nesting bound was the reason). push_json may raise (memory): keep v alive. */
json_t *rules_to_json(lua_State *L, int idx, char *err, size_t errlen, bool *too_deep);
void rules_push_json(lua_State *L, json_t *v);
/* Push a kernel result, taking the reference (freed even if the push raises a
 * memory error: it is held in the state meanwhile), and return 1 (rules_api.c). */
int rules_push_owned(lua_State *L, json_t *v);
/* A read-only proxy of the table at idx, named for error messages; pushes it. */
void rules_push_proxy(lua_State *L, int idx, const char *name);
/* The state of a Lua thread (any coroutine of it). */
rstate *rules_state_of(lua_State *L);
/* Copy a Lua error value into msg without invoking metamethods. */
void rules_error_text(lua_State *L, int idx, char *msg, size_t len);
/* Raise `msg` as a Lua error (never returns). */
int rules_raise(lua_State *L, const char *fmt, ...);
/* Duration "3d", "2h", "30m", "1w", "45s" or a number of seconds. */
bool rules_parse_duration(const char *s, int64_t *out);
/* Whether pattern p (rule `on`) matches topic t; and whether p is well-formed. */
bool rules_topic_match(const char *p, const char *t);
bool rules_topic_valid(const char *p);

/* ---- rules_api.c ---- */

/* Build the crm table (with the registered plugin functions) and leave its proxy on top. */
void rules_api_push_crm(lua_State *L, rstate *S, rule_fn *fns);
/* Route print / warn / crm.log: one rate-limited log line tagged with the rule. */
void rules_api_log(rstate *S, int level, const char *text);
/* Open the current run's savepoint before its first write. */
int rules_api_begin_write(rule_run *run);

/* ---- rules_tools.c ---- */

/* print() in a rule test: to the test's output. */
void rules_test_print(rstate *S, const char *text);

/* ---- rules.c (used by the other parts) ---- */

crm_kernel *rules_kernel(crm_rules *r);
rule_fn *rules_functions(crm_rules *r);
/* Rate-limit and write one log line for a rule. */
void rules_log(crm_rules *r, const rule *ru, int level, const char *text);
/* Fresh set and counters for a tool (check / test) with no engine. */
ruleset *rules_parse_files(crm_rules *r, rule_file *files, int nfiles, json_t *errors,
                           json_t *disabled, const crm_rules_opts *opts);
/* Check a scheduled rule's type and field against the schema; message in err. */
bool rules_sched_check(crm_kernel *k, const rule *ru, char *err, size_t len);
/* Read *.lua files of dir (sorted) into *files / *n (appending). */
void rules_read_dir(const char *dir, const char *owner, rule_file **files, int *n, json_t *errors);
void rules_files_free(rule_file *files, int n);

#endif
