/*
 * schema.h — the registry of record types and their fields.
 *
 * A type is named "<owner>.<name>" (crm.contact); it lives in one table named
 * exactly that (quoted), one column per field, plus the system columns. Types
 * and fields are persisted in core_type / core_field, so custom fields added at
 * run time survive a restart. The registry is read by every request and
 * changed rarely, so reads take no lock: types and fields are only ever
 * appended into arrays of fixed capacity and published with a release store of
 * the count (readers load it with acquire). Writers serialise on a mutex. A
 * crm_type or crm_field pointer stays valid for the life of the process.
 */
#ifndef CRM_SCHEMA_H
#define CRM_SCHEMA_H

#include "store.h"

#include <jansson.h>

#define CRM_NAME_MAX 63       /* owner, type and field names */
#define CRM_TEXT_DEFAULT_MAX 255
#define CRM_TEXT_HARD_MAX 1000000
#define CRM_TYPE_MAX_FIELDS 256
#define CRM_SCHEMA_MAX_TYPES 1024

typedef struct crm_schema crm_schema;

typedef struct crm_field {
    char *name;
    int kind;           /* enum crm_field_kind */
    unsigned flags;     /* enum crm_field_flag */
    int max_length;     /* TEXT/EMAIL/PHONE/URL: characters */
    int scale;          /* DECIMAL: digits after the point (0..6, default 2) */
    char **enum_values; /* ENUM: NULL-terminated */
    char *ref_type;     /* REF: target type name */
    json_t *dflt;       /* default value (API form) or NULL */
    char *label;        /* for UIs; defaults to the name */
    char *owner;        /* who declared it: a plugin name, or "custom" */
    int position;       /* declaration order */
} crm_field;

typedef struct crm_type {
    char *name;   /* "crm.contact" */
    char *owner;  /* "crm" */
    char *label;  /* "Contact" */
    char *title_field; /* field used as the record's display name, or NULL */
    crm_field *fields[CRM_TYPE_MAX_FIELDS];
    int nfields;      /* read with crm_type_nfields() (acquire) */
    bool searchable;  /* has an FTS index (set before the field that makes it so is published) */
    bool system;     /* core.*: managed by the kernel */
    int id;          /* small integer, index into the registry (per process) */
    char *fts_table; /* "<name>:fts" */
    bool hidden;     /* its plugin is not loaded: absent from lookups (crm_schema_hide_owner) */
} crm_type;

/* A field spec for crm_schema_define_type / add_field, in API (JSON) form:
 *   {"name":"email","kind":"email","required":true,"unique":true,"indexed":true,
 *    "searchable":true,"readonly":false,"max_length":200,"values":["a","b"],
 *    "ref":"crm.company","scale":2,"default":...,"label":"E-mail"}
 */

/* Load the registry from the database (creates the kernel's core.* types). */
int crm_schema_open(crm_schema **out, crm_store *store);
void crm_schema_close(crm_schema *schema);
crm_store *crm_schema_store(crm_schema *schema);

/*
 * Declare a type with its fields (JSON array of field specs). Idempotent for
 * an existing type: fields not yet present are added (a plugin's new version
 * declares a new field), existing ones are left as they are.
 * Errors: CRM_EINVALID naming the bad name, kind or option; CRM_ECONFLICT when
 * the type exists with another owner.
 */
int crm_schema_define_type(crm_schema *schema, const char *name, const char *label,
                           const char *owner, json_t *fields);
/*
 * Add one field to an existing type at run time (ALTER TABLE ADD COLUMN, plus
 * index / FTS rebuild as the flags need). A REQUIRED field must have a default.
 * Errors: CRM_ENOTFOUND (type), CRM_EINVALID (spec), CRM_ECONFLICT (exists).
 */
int crm_schema_add_field(crm_schema *schema, const char *type, json_t *spec, const char *owner);

/* Lookups: NULL when absent. Pointers live as long as the process. */
const crm_type *crm_schema_type(crm_schema *schema, const char *name);
const crm_field *crm_type_field(const crm_type *type, const char *name);
/* Snapshot of all types (borrowed pointers) into a malloc'd array. */
int crm_schema_types(crm_schema *schema, const crm_type ***out, int *n);
/* The schema as JSON: {"name","label","owner","fields":[spec...]} */
json_t *crm_type_to_json(const crm_type *type);

/* The number of published fields (acquire load): iterate fields[0..n). */
int crm_type_nfields(const crm_type *type);
/* The FTS table of a searchable type, e.g. "crm.contact:fts" (borrowed). */
const char *crm_type_fts_table(const crm_type *type);

/* ---- Values ---- */

/* System fields every record has, in column order. */
extern const char *const crm_system_fields[];
bool crm_is_system_field(const char *name);

/*
 * Validate an API value for a field and convert it to its stored form
 * (json string/integer/real/null suitable for binding). On error sets a message
 * naming the field. Does not check REF existence or uniqueness (the record
 * layer does, inside its transaction).
 */
int crm_field_to_db(const crm_field *f, json_t *value, json_t **stored);
/* Convert a stored column back to the API value. */
json_t *crm_field_from_db(const crm_field *f, crm_stmt *st, int col);
/* Convert a stored-form value (from crm_field_to_db) to the API value. New reference. */
json_t *crm_field_stored_to_api(const crm_field *f, json_t *stored);
/* Parse a query-string value (filters) into the stored form for comparison. */
int crm_field_parse_text(const crm_field *f, const char *text, json_t **stored);
/* Bind a stored-form JSON value at parameter i. */
void crm_stmt_bind_json(crm_stmt *st, int i, json_t *stored);

const char *crm_field_kind_name(int kind);
int crm_field_kind_from_name(const char *name);

/* ---- Plugins: checking declarations, renaming fields, hiding types ---- */

/*
 * Check what crm_schema_define_type would refuse, without touching the
 * database: the names, every field spec, fields declared twice, a required
 * field without default added to an existing type, and CRM_ECONFLICT when the
 * type exists with another owner. The plugin loader calls it inside a
 * plugin's init and applies the declaration after init succeeds.
 */
int crm_schema_check_type(crm_schema *schema, const char *name, const char *owner,
                          json_t *fields);
/* The same for crm_schema_add_field by `owner`: CRM_ECONFLICT when the field
 * exists with another owner (the same owner re-declaring it is fine). A type
 * that does not exist yet is accepted when `type_pending` (declared in the same
 * batch). */
int crm_schema_check_field(crm_schema *schema, const char *type, json_t *spec, const char *owner,
                           bool type_pending);
/*
 * Rename field `from` of `type` to `to`, keeping its data, indexes, full-text
 * index and field permissions, in the caller's transaction (or its own). Like
 * crm_schema_define_type, the registry shows the new name as soon as the
 * call's own savepoint is released, so the rest of an enclosing transaction
 * sees it; a caller whose enclosing transaction then rolls back restores the
 * registry with crm_schema_rename_field_revert. Meant for plugin migrations
 * at start-up, before requests are served.
 * Errors: CRM_ENOTFOUND (type or field), CRM_EINVALID (the new name),
 * CRM_ECONFLICT (a field `to` exists).
 */
int crm_schema_rename_field(crm_schema *schema, const char *type, const char *from,
                            const char *to);
/* Registry only: give field `to` of `type` its name `from` back. */
int crm_schema_rename_field_revert(crm_schema *schema, const char *type, const char *to,
                                   const char *from);
/*
 * Hide every type owned by `owner` (its plugin is disabled or refused): the
 * lookups (crm_schema_type, crm_schema_types) skip it; its table and data stay.
 * Declaring it again (crm_schema_define_type by the same owner) shows it
 * again. Returns the number of types hidden.
 */
int crm_schema_hide_owner(crm_schema *schema, const char *owner);
/*
 * Composite indexes, for lists filtered on one field and sorted by another
 * (?city=Paris&sort=last_name): `fields` is a JSON array of 2 to
 * CRM_INDEX_MAX_FIELDS field names (system fields allowed, JSON fields not).
 * The index is named "<type>:<f1>,<f2>"; adding an existing one is a no-op.
 * Building it over many rows takes a while (about a second per million).
 * crm_schema_check_index checks the declaration (`staged_type`: the type is
 * declared in the same plugin init and not applied yet).
 * Errors: CRM_ENOTFOUND (type), CRM_EINVALID naming "fields".
 */
#define CRM_INDEX_MAX_FIELDS 4
int crm_schema_check_index(crm_schema *schema, const char *type, json_t *fields, bool staged_type);
int crm_schema_add_index(crm_schema *schema, const char *type, json_t *fields);
/* The type's composite indexes as a JSON array of field-name arrays (*out new). */
int crm_schema_indexes(crm_schema *schema, const char *type, json_t **out);
/* The owners of all types (hidden or not), as a JSON array of strings. */
json_t *crm_schema_owners(crm_schema *schema);

#endif
