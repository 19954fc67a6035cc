/*
 * crm.h — the public interface of the crm platform.
 *
 * This is the one header a plugin compiles against. It is read as the manual:
 * every declaration says what it does, who owns what, and which errors it
 * returns. Everything here is stable within an ABI major version; entries are
 * only ever appended.
 *
 * Conventions (libgit2's):
 *   - functions return int: CRM_OK (0) or a negative CRM_E* code;
 *   - on failure the message is set once, at the failure site, and read with
 *     crm_error_last() on the same thread;
 *   - what comes back through an `**out` parameter is owned by the caller.
 */
#ifndef CRM_H
#define CRM_H

#include <stdint.h>
#include <stddef.h>
#include <time.h> /* time_t: its size is part of the ABI (CRM_ABI_CONFIG) */

#include <jansson.h> /* JSON values cross the plugin boundary as Jansson's json_t */

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors ------------------------------------------------------------ */

/*
 * Error codes. Few and meaningful: a caller acts on the code, a user reads the
 * message. Each maps to exactly one HTTP status (kernel/api_error.c):
 *   CRM_EINVALID 400, CRM_EDENIED 403, CRM_ENOTFOUND 404, CRM_ECONFLICT 409,
 *   CRM_ESTALE 412, CRM_ELIMIT 422, CRM_EBUSY 503, CRM_EFULL 507,
 *   CRM_EINTERNAL 500.
 */
enum crm_error_code {
    CRM_OK = 0,
    CRM_EINVALID = -1,  /* bad input: unknown type or field, wrong value, bad syntax */
    CRM_ENOTFOUND = -2, /* no such record, or not visible to the caller */
    CRM_EDENIED = -3,   /* the caller may see the thing but not do this to it */
    CRM_ECONFLICT = -4, /* a unique field already holds this value; a duplicate name */
    CRM_ESTALE = -5,    /* optimistic concurrency: the record changed since read */
    CRM_EBUSY = -6,     /* the database is locked past the busy timeout; retry */
    CRM_EFULL = -7,     /* the disk is full; reads still work */
    CRM_ELIMIT = -8,    /* a bound was hit: cascade depth, size, deadline */
    CRM_EINTERNAL = -9, /* a bug or an I/O error; the message says which */
};

/* The error of the last failing call on this thread. */
typedef struct crm_error {
    int code;            /* one of enum crm_error_code */
    const char *message; /* human readable; names the thing and, when known, the fix */
    const char *field;   /* the field at fault, or NULL */
    const char *name;    /* a specific API error code ("rule_timeout"), or NULL for the
                            code's generic name ("invalid", "not_found", ...) */
} crm_error;

/*
 * The last error set on this thread. Never NULL: when no error was set the
 * code is CRM_OK and the message "". The pointers stay valid until the next
 * failing call on this thread.
 */
const crm_error *crm_error_last(void);

/* ---- Field kinds and flags -------------------------------------------- */

/* The kind of a field: what it holds and how it is validated. */
enum crm_field_kind {
    CRM_FIELD_TEXT = 1, /* UTF-8 text, max_length characters (default 255) */
    CRM_FIELD_INT,      /* 64-bit signed integer */
    CRM_FIELD_DECIMAL,  /* exact decimal: stored as integer minor units (scale digits);
                           read and written as a string "1234.50" (numbers accepted) */
    CRM_FIELD_BOOL,     /* true / false */
    CRM_FIELD_DATE,     /* "YYYY-MM-DD" */
    CRM_FIELD_DATETIME, /* "YYYY-MM-DDTHH:MM:SSZ" (UTC; offsets accepted and converted) */
    CRM_FIELD_ENUM,     /* one of a declared list of values */
    CRM_FIELD_EMAIL,    /* local@domain.tld, lower-cased domain */
    CRM_FIELD_PHONE,    /* digits, spaces, + - ( ) . ; 5 to 20 digits */
    CRM_FIELD_URL,      /* http:, https: or mailto: only */
    CRM_FIELD_REF,      /* the id of a live record of the target type */
    CRM_FIELD_JSON,     /* any JSON value, stored as text */
};

/* Field flags, or-ed together. */
enum crm_field_flag {
    CRM_FIELD_REQUIRED = 1 << 0,   /* must be present and non-null on create */
    CRM_FIELD_UNIQUE = 1 << 1,     /* no two live records share a non-null value */
    CRM_FIELD_INDEXED = 1 << 2,    /* a B-tree index, for filters and sorts */
    CRM_FIELD_SEARCHABLE = 1 << 3, /* indexed in the type's full-text index */
    CRM_FIELD_READONLY = 1 << 4,   /* set on create (or by the system), never by update */
};

/* ---- Contexts and callbacks ---- */

/*
 * The context of one call into the platform: who is acting (their permissions
 * apply), on whose behalf history records the change, and how deep in a
 * cascade of handlers it runs. Opaque to plugins; handed to every callback and
 * passed back to the host API.
 */
typedef struct crm_ctx crm_ctx;

/*
 * A function callable from Lua rules as crm.<plugin>.<name>(args...). `args`
 * is a JSON array of the Lua arguments (borrowed); on success set *result to a
 * new reference (or leave it NULL for nil) and return CRM_OK; on failure return
 * an error set with the host's error API: the rule sees a Lua error with that
 * message.
 */
typedef int (*crm_lua_fn)(crm_ctx *ctx, json_t *args, json_t **result, void *udata);

/* ======================================================================= */
/* ---- Plugins ----------------------------------------------------------- */
/* ======================================================================= */

/*
 * A plugin is a shared object exporting exactly one symbol, the function
 * crm_plugin_v1, which returns a pointer to a constant descriptor:
 *
 *   static int init(crm_plugin *self, const crm_host_api *host);
 *
 *   static const crm_plugin_dep requires[] = {{"crm", ">=1.0, <2"}, {NULL, NULL}};
 *   static const crm_plugin_desc descriptor = {
 *       CRM_PLUGIN_HEADER,          // magic, ABI version, size, ABI config
 *       .name = "hotel",
 *       .version = "1.2.0",
 *       .requires = requires,
 *       .init = init,
 *   };
 *   CRM_PLUGIN_EXPORT const crm_plugin_desc *crm_plugin_v1(void) { return &descriptor; }
 *
 * The loader (PostgreSQL's PG_MODULE_MAGIC, nginx's module signature) checks
 * the descriptor before any other plugin code runs: the magic, that
 * abi_major equals the host's and abi_minor is not newer, that struct_size
 * covers the descriptor of the claimed version, that abi_config (sizes of
 * time_t, pointers, long) matches the host's, that name is the plugins.conf
 * section's and version is a semantic version. A mismatch is refused with a
 * message naming the file, the field and both values:
 *   plugins/x.so: plugin ABI mismatch: abi_major is 2, this crm supports 1
 *
 * crm_plugin_v1 must only return the pointer, and a plugin must not have
 * constructors (__attribute__((constructor)), C++ static initialisers):
 * dlopen runs them before the loader can check anything. sdk/plugin.mk's
 * `make lint` refuses them.
 */

#define CRM_PLUGIN_MAGIC 0x43524D50u /* "CRMP" */
#define CRM_ABI_MAJOR 1              /* incompatible changes: never, within a major */
#define CRM_ABI_MINOR 0              /* appended descriptor fields / host entries */

/*
 * The compile-time sizes that must agree between the host and a plugin: a
 * plugin built for a 32-bit time_t or another data model is refused.
 */
#define CRM_ABI_CONFIG                                                                   \
    ((uint32_t)(sizeof(void *) | (sizeof(time_t) << 8) | (sizeof(long) << 16) |         \
                (sizeof(size_t) << 24)))

/* Marks the one exported function; everything else stays hidden (-fvisibility=hidden). */
#define CRM_PLUGIN_EXPORT __attribute__((visibility("default")))

/*
 * A plugin's handle, given to init and passed back to every registration
 * entry of the host API. Valid for the life of the process (plugins are never
 * unloaded), so a plugin may keep it in a static variable for logging and
 * settings at run time.
 */
typedef struct crm_plugin crm_plugin;
typedef struct crm_host_api crm_host_api;

/* A required plugin and the versions accepted. */
typedef struct crm_plugin_dep {
    const char *name;  /* the plugin's name, e.g. "crm" */
    const char *range; /* semver comparators joined by "," (AND): ">=1.0, <2", "^1.2",
                          "~1.2.3", "=1.0.0", "1.0.0", "*"; NULL means any version */
} crm_plugin_dep;

/*
 * The descriptor. Append-only: a later ABI minor adds fields at the end, and
 * the loader reads them only when struct_size covers them.
 */
typedef struct crm_plugin_desc {
    uint32_t magic;       /* CRM_PLUGIN_MAGIC */
    uint16_t abi_major;   /* CRM_ABI_MAJOR the plugin was built against */
    uint16_t abi_minor;   /* CRM_ABI_MINOR the plugin was built against */
    uint32_t struct_size; /* sizeof(crm_plugin_desc) the plugin was built with */
    uint32_t abi_config;  /* CRM_ABI_CONFIG the plugin was built with */
    const char *name;     /* [a-z][a-z0-9_]*, equal to the plugins.conf section */
    const char *version;  /* semantic version "MAJOR.MINOR.PATCH[-pre][+build]" */
    const char *summary;  /* one line for `crm plugin list`, or NULL */
    const crm_plugin_dep *requires; /* {NULL, NULL}-terminated, or NULL for none */
    /*
     * Called once, after the plugin's requirements were initialised. Register
     * everything here through `host` (types, handlers, routes, ...); the
     * entries check each declaration and return its error at once. Return
     * CRM_OK, or an error set with host->error_set: the loader then discards
     * everything the plugin registered and reports the message. `host` stays
     * valid for the life of the process.
     */
    int (*init)(crm_plugin *self, const crm_host_api *host);
    /* Called once at shutdown, in reverse load order, if init succeeded. May be NULL. */
    void (*shutdown)(crm_plugin *self);
} crm_plugin_desc;

/* The first four fields of every descriptor. */
#define CRM_PLUGIN_HEADER                                                                \
    .magic = CRM_PLUGIN_MAGIC, .abi_major = CRM_ABI_MAJOR, .abi_minor = CRM_ABI_MINOR,   \
    .struct_size = (uint32_t)sizeof(crm_plugin_desc), .abi_config = CRM_ABI_CONFIG

/* The type of the one exported function. */
typedef const crm_plugin_desc *(*crm_plugin_v1_fn)(void);
/* The function each plugin defines (and the kernel never does): return &descriptor. */
CRM_PLUGIN_EXPORT const crm_plugin_desc *crm_plugin_v1(void);

/* ---- What plugins are handed ---- */

/*
 * A record event as handlers see it: opaque, read with host->event_* entries.
 * Topics: "<type>.created|updated|deleted|restored", and plugin events
 * "<plugin>.<event>" emitted with host->emit.
 */
typedef struct crm_event crm_event;
/* An HTTP request to one of the plugin's routes: opaque, read with host->req_*. */
typedef struct crm_req crm_req;
/* A schedule firing: opaque, read with host->firing_* entries. */
typedef struct crm_firing crm_firing;

/* Event phases. */
enum crm_event_phase {
    CRM_BEFORE = 0, /* in the write's transaction, before the row is written: may change
                       host->event_record(ev) or refuse the change by returning an error */
    CRM_AFTER = 1,  /* in the same transaction, after the row: writes are atomic with it */
    CRM_ASYNC = 2,  /* after commit, from the durable outbox, on a worker thread: at least
                       once, retried with backoff while the handler returns an error */
};

/* Log levels for host->log. */
enum crm_log_level { CRM_DEBUG = 0, CRM_INFO = 1, CRM_WARN = 2, CRM_ERROR = 3 };

/* Route flags for host->route. */
enum crm_route_flag {
    CRM_PUBLIC = 1 << 0,     /* no authentication: the handler's context is the system's */
    CRM_ADMIN_ONLY = 1 << 1, /* only administrators (others get 403) */
    CRM_RAW_BODY = 1 << 2,   /* the body is not JSON (forms, CSV): read it with req_body */
    CRM_CROSS_SITE = 1 << 3, /* with CRM_PUBLIC only: other sites' pages may post to it (a
                                web form on the business's website); without it a public
                                write from another site is refused (403 csrf) */
};

/* A bus handler: CRM_OK, or an error (host->error_set) refusing the change / retrying. */
typedef int (*crm_event_fn)(crm_ctx *ctx, crm_event *ev, void *udata);
/*
 * A route handler: set exactly one reply (host->reply_json / reply_error) and
 * return CRM_OK, or return an error set with host->error_set and the server
 * answers {"error":{...}} with the code's status (400, 403, 404, 409, ...).
 */
typedef int (*crm_route_handler)(crm_req *req, void *udata);
/* A schedule handler, run as the system inside a transaction with the firing's bookkeeping. */
typedef int (*crm_schedule_fn)(crm_ctx *ctx, const crm_firing *firing, void *udata);
/*
 * A migration step, run once when the installed version is older than the
 * step's version, as the system, in a transaction with the record of the step.
 * `from_version` is the version installed before this start.
 */
typedef int (*crm_migration_fn)(crm_ctx *ctx, const char *from_version, void *udata);
/* A demo-data hook, run by `crm demo` as the system in a transaction. */
typedef int (*crm_demo_fn)(crm_ctx *ctx, void *udata);

/* ---- The host API ---- */

/*
 * The table of functions the platform offers a plugin (SQLite's
 * sqlite3_api_routines). Const and append-only: entries are never removed or
 * reordered within an ABI major; a newer host only adds entries at the end.
 * A plugin built against a newer crm.h than the running host tests for an
 * entry before calling it:
 *
 *   if (CRM_HOST_HAS(host, some_new_entry)) host->some_new_entry(...);
 *
 * Every entry returning int returns CRM_OK or a negative code with the error
 * set (read it with host->error_last). Strings and JSON passed in are
 * borrowed (copied when kept); JSON returned through `**out` is a new
 * reference the plugin must json_decref.
 *
 * "init only" entries register something; they work only while the plugin's
 * init runs (CRM_EINVALID "registration is only possible inside init"
 * afterwards). What they register takes effect when init returns CRM_OK.
 */
struct crm_host_api {
    uint32_t version; /* CRM_HOST_API_VERSION of the host */
    uint32_t size;    /* sizeof(crm_host_api) of the host: see CRM_HOST_HAS */

    /* ---- Errors and logging ---- */

    /* Set this thread's error and return `code` (as crm_error_set in the kernel):
     *   return host->error_set(CRM_EINVALID, "nights", "nights must be 1 to 365"); */
    int (*error_set)(int code, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* The last error on this thread (never NULL). */
    const crm_error *(*error_last)(void);
    /* One log line, prefixed with the plugin's name. */
    void (*log)(crm_plugin *self, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* ---- The plugin itself ---- */

    /* The plugin's name (borrowed). */
    const char *(*plugin_name)(crm_plugin *self);
    /* A setting from the plugin's plugins.conf section ("pipeline.stages = new,won"),
     * or NULL when absent. Borrowed, valid for the life of the process. */
    const char *(*setting)(crm_plugin *self, const char *key);

    /* ---- Schema (init only) ---- */

    /*
     * Declare a record type "<plugin>.<name>" owned by the plugin, with its
     * fields as a JSON array of field specs:
     *   [{"name":"email","kind":"email","required":true,"unique":true,
     *     "indexed":true,"searchable":true,"readonly":false,"max_length":200,
     *     "values":["a","b"],"ref":"crm.company","scale":2,"default":...,
     *     "label":"E-mail"}]
     * Declaring again on a later start is fine: fields not yet in the database
     * are added (new plugin versions), existing ones stay as they are.
     * Errors: CRM_EINVALID (bad name, spec, or a type outside "<plugin>."),
     * CRM_ECONFLICT (the type belongs to another plugin, or declared twice).
     */
    int (*type_declare)(crm_plugin *self, const char *type, const char *label, json_t *fields);
    /*
     * Add a field to a type of another plugin this plugin requires (hotel adds
     * "loyalty_tier" to crm.contact). The field is owned by this plugin.
     * Errors: CRM_ENOTFOUND (type), CRM_EINVALID (spec), CRM_ECONFLICT (exists with
     * another owner).
     */
    int (*field_add)(crm_plugin *self, const char *type, json_t *spec);
    /*
     * Declare a role and its default grants, created the first time only (an
     * admin's later changes are kept; grants for types new in this version
     * are added). `grants` maps types to actions to levels:
     *   {"hotel.reservation": {"read":"all","create":"team","update":"own","delete":"none"}}
     * Errors: CRM_EINVALID (name, action, level, unknown type).
     */
    int (*role_declare)(crm_plugin *self, const char *role, const char *description,
                        json_t *grants);

    /* ---- Events ---- */

    /*
     * (init only) Run `fn` for events whose topic matches `topic` ("crm.deal.updated",
     * "crm.deal.*", "*") in `phase` (CRM_BEFORE/AFTER/ASYNC); lower `order` runs
     * first, equal orders in registration order. `name` is unique within the
     * plugin; for async handlers it is the durable consumer name (stable
     * across restarts). Errors: CRM_EINVALID (pattern, phase, name), CRM_ECONFLICT.
     */
    int (*subscribe)(crm_plugin *self, const char *topic, int phase, int order,
                     const char *name, crm_event_fn fn, void *udata);
    /* The event's topic, and for record events the type and record id (NULL / 0 otherwise). */
    const char *(*event_topic)(const crm_event *ev);
    const char *(*event_type)(const crm_event *ev);
    int64_t (*event_id)(const crm_event *ev);
    /* Record events: the record (before: the values about to be written, which a
     * before handler may change in place). Borrowed; NULL for custom events. */
    json_t *(*event_record)(crm_event *ev);
    /* Updates, deletes, restores: the record before (borrowed), else NULL. */
    json_t *(*event_old)(const crm_event *ev);
    /* Updates: the array of changed field names (borrowed), else NULL. */
    json_t *(*event_changed)(const crm_event *ev);
    /* Custom events: the payload emitted (borrowed), else NULL. */
    json_t *(*event_payload)(const crm_event *ev);
    /* Who acted (a user id; 0 for the system). */
    int64_t (*event_user)(const crm_event *ev);
    /*
     * Emit a custom event "<plugin>.<event>" with a JSON object payload
     * (borrowed): after handlers run in the caller's transaction, async ones
     * from the outbox. Errors: CRM_EINVALID (topic), handler errors.
     */
    int (*emit)(crm_ctx *ctx, const char *topic, json_t *payload);

    /* ---- Records: every call checks the context's permissions ---- */

    /* Read one record. Errors: CRM_EINVALID (type), CRM_ENOTFOUND (absent or not visible). */
    int (*record_get)(crm_ctx *ctx, const char *type, int64_t id, json_t **out);
    /*
     * List records. `query` is a JSON object of list parameters, as in the
     * HTTP API's query string: {"stage":"won","amount__gt":"100",
     * "sort":"-amount","limit":10,"fields":"name,amount","cursor":...}
     * (values may be strings, numbers or booleans), or NULL for the first
     * page. *out is {"data":[...],"next":cursor|null}.
     * Errors: CRM_EINVALID naming the parameter.
     */
    int (*record_find)(crm_ctx *ctx, const char *type, json_t *query, json_t **out);
    /* Create; *out (if out is not NULL) the stored record. Errors: CRM_EINVALID naming
     * the field, CRM_EDENIED, CRM_ECONFLICT, CRM_ELIMIT (cascade depth). */
    int (*record_create)(crm_ctx *ctx, const char *type, json_t *fields, json_t **out);
    /* Update the fields in `patch`; as create, plus CRM_ENOTFOUND. */
    int (*record_update)(crm_ctx *ctx, const char *type, int64_t id, json_t *patch,
                         json_t **out);
    /* Soft delete. Errors: CRM_ENOTFOUND, CRM_EDENIED. */
    int (*record_delete)(crm_ctx *ctx, const char *type, int64_t id);
    /* The acting user's id (0: the system), and whether they are an administrator. */
    int64_t (*ctx_user)(crm_ctx *ctx);
    int (*ctx_is_admin)(crm_ctx *ctx);

    /* ---- HTTP ---- */

    /*
     * (init only) Serve `method` `path` under /api/v1/x/<plugin>: path "/rooms/{id}"
     * becomes /api/v1/x/hotel/rooms/{id}. Segments may be "{name}" placeholders,
     * and the last one "{name*}" (the rest of the path). Authenticated unless
     * flags has CRM_PUBLIC. Errors: CRM_EINVALID (method, pattern),
     * CRM_ECONFLICT (the same method and path twice).
     */
    int (*route)(crm_plugin *self, const char *method, const char *path, unsigned flags,
                 crm_route_handler fn, void *udata);
    /* The request's method, a path placeholder's value, a query-string value,
     * a header (case-insensitive): borrowed, NULL when absent. */
    const char *(*req_method)(crm_req *req);
    const char *(*req_param)(crm_req *req, const char *name);
    const char *(*req_query)(crm_req *req, const char *key);
    const char *(*req_header)(crm_req *req, const char *name);
    /* The parsed JSON body (borrowed), or NULL when there was none. */
    json_t *(*req_json)(crm_req *req);
    /* The caller's context (its permissions apply to record calls). */
    crm_ctx *(*req_ctx)(crm_req *req);
    /* Reply with JSON (takes the reference to `body`). Returns CRM_OK. */
    int (*reply_json)(crm_req *req, int status, json_t *body);
    /* Reply {"error":{"code","message","field"}} with `status`; field may be NULL. */
    int (*reply_error)(crm_req *req, int status, const char *code, const char *field,
                       const char *message);

    /* ---- Lua rules ---- */

    /* (init only) Make `fn` callable from rules as crm.<plugin>.<name>(...).
     * Errors: CRM_EINVALID (name), CRM_ECONFLICT (twice). */
    int (*lua_function)(crm_plugin *self, const char *name, crm_lua_fn fn, void *udata);
    /* (init only) Load the plugin's rules (*.lua) from `dir`, relative to the plugin's
     * source directory ("scripts"). Errors: CRM_EINVALID (absolute or escaping path). */
    int (*rules_dir)(crm_plugin *self, const char *dir);

    /* ---- Schedules (init only) ---- */

    /* Every time the cron expression matches (UTC), e.g. "0 3 * * *". `name` unique
     * within the plugin. Errors: CRM_EINVALID naming the bad cron field, CRM_ECONFLICT. */
    int (*schedule_cron)(crm_plugin *self, const char *name, const char *cron,
                         crm_schedule_fn fn, void *udata);
    /* `offset_seconds` after (negative: before) the date or datetime `field` of every
     * live record of `type`; a date fires at `at_minute` past midnight UTC. */
    int (*schedule_offset)(crm_plugin *self, const char *name, const char *type,
                           const char *field, int64_t offset_seconds, int at_minute,
                           crm_schedule_fn fn, void *udata);
    /* Every year on the month and day of the date `field` (birthdays), at `at_minute`. */
    int (*schedule_yearly)(crm_plugin *self, const char *name, const char *type,
                           const char *field, int at_minute, crm_schedule_fn fn, void *udata);
    /* The firing: schedule name (without the plugin prefix), due time (epoch seconds),
     * and for offset / yearly the record's type, id and record (system view, borrowed). */
    const char *(*firing_name)(const crm_firing *f);
    int64_t (*firing_due)(const crm_firing *f);
    const char *(*firing_type)(const crm_firing *f);
    int64_t (*firing_record_id)(const crm_firing *f);
    json_t *(*firing_record)(const crm_firing *f);

    /* ---- Versions, migrations, demo data ---- */

    /*
     * (init only) A migration step to `version` (semver): it runs once, when the
     * installed version is older than `version` and this plugin's version is at
     * least `version`, in version order, before the types declared in init
     * are applied — the database is as the installed version left it. Each
     * step runs in its own transaction with its record in core_plugin_migration.
     * Errors: CRM_EINVALID (version), CRM_ECONFLICT (the same version twice).
     */
    int (*migration)(crm_plugin *self, const char *version, crm_migration_fn fn, void *udata);
    /*
     * (inside a migration step only) Rename a field of one of the plugin's types,
     * keeping its data (and indexes, full-text index, history).
     * Errors: CRM_ENOTFOUND (type, field), CRM_ECONFLICT (the new name exists),
     * CRM_EDENIED (not in a migration, or another plugin's type).
     */
    int (*field_rename)(crm_ctx *ctx, const char *type, const char *from, const char *to);
    /* The version recorded in the database before this start, or NULL on a first install. */
    const char *(*installed_version)(crm_plugin *self);
    /* (init only) Demo data for `crm demo`. */
    int (*demo)(crm_plugin *self, crm_demo_fn fn, void *udata);

    /* ---- Appended after version 1 (test with CRM_HOST_HAS) ---- */

    /*
     * Forget values (GDPR erase): in every history row and outbox event of the
     * record, replace the values of `fields` (a JSON array of field names,
     * borrowed) with "[erased]". Change the record itself first with
     * record_update: that update's history row holds the old values too. In
     * the caller's transaction; events already delivered to webhooks cannot be
     * recalled. Errors: CRM_EDENIED (the context is not an admin's),
     * CRM_EINVALID (unknown type or field).
     */
    int (*record_forget)(crm_ctx *ctx, const char *type, int64_t id, json_t *fields);

    /*
     * The platform's clock, seconds since the epoch (UTC). Use it rather than
     * time(2): tests and `crm rules test` move it.
     */
    int64_t (*now)(void);
    /*
     * Run `fn(ctx, arg)` in one transaction: every record call it makes
     * commits together, or none does (fn's error, or a failing commit).
     * Nests inside a caller's transaction (handlers already run in one).
     */
    int (*tx)(crm_ctx *ctx, int (*fn)(crm_ctx *ctx, void *arg), void *arg);
    /* The client's address as text (IPv4 or IPv6), as the server saw it. */
    const char *(*req_ip)(crm_req *req);
    /*
     * The raw request body and its length ("" and 0 when none). For routes
     * declared with CRM_RAW_BODY the body is not parsed as JSON.
     */
    const char *(*req_body)(crm_req *req, size_t *len);
    /* Reply with bytes of any content type (CSV, text); they are copied. */
    int (*reply_data)(crm_req *req, int status, const char *content_type, const char *data,
                      size_t len);
    /*
     * The record's history, oldest first, for the context's principal (fields
     * it may not read left out): [{"id","at","user","via","action",
     * "changes":{field:[old,new]}}]. *out is a new reference.
     * Errors: CRM_ENOTFOUND (no such record, or not visible).
     */
    int (*record_history)(crm_ctx *ctx, const char *type, int64_t id, json_t **out);
    /*
     * Run `fn(sys, arg)` with a context acting as the system (every record
     * visible and writable) in the caller's connection and transaction, with
     * the caller's "via" and cascade depth. For checks that must see every
     * record whatever the caller may read: a double booking, a duplicate, a
     * reference to re-point on merge. What fn reads must not be handed back
     * to a caller who may not read it. Returns fn's result.
     */
    int (*as_system)(crm_ctx *ctx, int (*fn)(crm_ctx *sys, void *arg), void *arg);
    /*
     * Every type the context may read, with its fields as GET /api/v1/types
     * shows them (fields it may not read left out):
     *   [{"name","label","owner","title_field","fields":[{"name","kind","ref",...}]}]
     * *out is a new reference. For code that follows references generically
     * (merge re-points every "ref" field targeting the merged type).
     */
    int (*types)(crm_ctx *ctx, json_t **out);
    /*
     * (init only) A composite index on a type of the plugin or of a plugin it
     * requires, for lists filtered on one field and sorted by another
     * (?status=booked&sort=arrival → ["status","arrival"]): `fields` is a JSON
     * array of 2 to 4 field names (system fields allowed, JSON fields not),
     * most selective equality filter first, the sort field last. Declaring it
     * again on a later start is a no-op; the first build over existing rows
     * takes about a second per million. Errors: CRM_EINVALID naming "fields",
     * CRM_ENOTFOUND (type).
     */
    int (*index_declare)(crm_plugin *self, const char *type, json_t *fields);
};

#define CRM_HOST_API_VERSION 1

/* Whether the running host offers `entry` (a member of crm_host_api). */
#define CRM_HOST_HAS(host, entry)                                                        \
    ((host)->size >= offsetof(crm_host_api, entry) + sizeof(void *) && (host)->entry != NULL)

#ifdef __cplusplus
}
#endif
#endif /* CRM_H */
