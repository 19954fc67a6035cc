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

#ifdef __cplusplus
}
#endif
#endif /* CRM_H */
