/*
 * io.h — bulk import (CSV) and export (CSV, JSON) of records, shared by the
 * HTTP API (api_io.c) and the command line (cli_io.c). Both go through the
 * record layer with the caller's principal: an import is a series of
 * crm_record_create / crm_record_update calls, an export pages through
 * crm_record_find, so permissions, validation, handlers, history and field
 * redaction are exactly those of single-record calls.
 */
#ifndef CRM_IO_H
#define CRM_IO_H

#include "record.h"

#include <sys/types.h>

/* ---- Import ---- */

enum crm_import_mode {
    CRM_IMPORT_ALL = 0,  /* all-or-nothing: any bad record and nothing is written */
    CRM_IMPORT_LINE = 1, /* per line: good records are written, bad ones reported */
};

#define CRM_IMPORT_MAX_ERRORS 1000 /* errors listed in a result; more set "truncated" */
/*
 * Records per chunk: a transaction in line mode, a savepoint in all mode.
 * Large chunks: each commit writes (and checkpoints, and syncs) the pages its
 * rows touched, and a million rows' random index inserts share pages only
 * within a large batch (300k contacts: 10,000 rows 1.9x faster than 1,000;
 * 200k contacts: 50,000 rows / 1 s another 9% faster than 10,000 / 250 ms).
 * Other writers wait for a line-mode import between its transactions, so a
 * chunk ends early, after CRM_IMPORT_YIELD_MS, as soon as a writer of this
 * server is waiting (crm_group_pending), and never runs past
 * CRM_IMPORT_BATCH_MS (for writers of other processes, which it cannot see).
 */
#define CRM_IMPORT_BATCH 50000
#define CRM_IMPORT_BATCH_MS 1000
#define CRM_IMPORT_YIELD_MS 50
/* The page cache of the importing connection while it imports (KiB). */
#define CRM_IMPORT_CACHE_KIB 65536

/* "all" / "line" (NULL: all) → the mode, or -1. */
int crm_import_mode_from_name(const char *name);

/*
 * Import `len` bytes of CSV (UTF-8, optional BOM, RFC 4180) into `type`.
 *
 * The first record names the columns: fields of the type, "id" (a non-empty
 * id updates that record instead of creating one), "owner" and "team" (ids,
 * under the record layer's rules); the other system fields (created_at,
 * updated_at, created_by, version, deleted_at, as an export writes them) are
 * ignored. An empty cell leaves a field out: defaults apply on create, the
 * stored value stays on update. Cells are read per the field's kind: int and
 * ref as integers, bool as true/false/yes/no/1/0, decimal as "1234.50", json
 * as a JSON text, the rest as text. A cell an export guarded against formula
 * injection ('=...) gets its leading ' removed, so exports import unchanged.
 *
 * In CRM_IMPORT_ALL mode the whole import is one transaction (each record in
 * its own savepoint, so every bad record is found and reported); one error
 * and all is rolled back. In CRM_IMPORT_LINE mode good records are committed
 * in batches of CRM_IMPORT_BATCH and bad ones reported.
 *
 * *result: {"created":N,"updated":N,"errors":[{"line","message","field"?}]}
 * plus "truncated":true when more than CRM_IMPORT_MAX_ERRORS errors were found
 * (all mode stops reading there). "line" is the physical line the record
 * starts on, the header being line 1. In all mode with errors, created and
 * updated are 0: nothing was written.
 *
 * Errors (nothing written, *result NULL): CRM_EINVALID for a bad header
 * (empty input, unknown or hidden column, duplicate column, malformed CSV in
 * the header) naming the column; CRM_EDENIED when the principal may neither
 * create nor update the type, or names a column it may not write;
 * CRM_EBUSY / CRM_EFULL / CRM_EINTERNAL from the store (in line mode,
 * batches committed before that stay written).
 */
int crm_import_csv(crm_ctx *ctx, const char *type, const char *data, size_t len, int mode,
                   json_t **result);

/* ---- Export ---- */

enum crm_export_format { CRM_EXPORT_CSV = 0, CRM_EXPORT_JSON = 1 };

#define CRM_EXPORT_PAGE 1000 /* records read per query */

/* "csv" / "json" (NULL: csv) → the format, or -1. */
int crm_export_format_from_name(const char *name);

typedef struct crm_export crm_export;

/*
 * Start an export of the records of `type` that `q` selects (filters, sort,
 * deleted, fields; its limit and count are ignored: an export has every
 * matching record), as the context's principal sees them.
 *
 * CSV: a header row, then one row per record, CRLF line ends. Columns: id,
 * created_at, updated_at, owner, team, version and every field the principal
 * may read, in declaration order (or id plus the fields of q->fields). Cells
 * starting with = + - @ TAB or CR get a leading ' (SECURITY.md X4) unless
 * `raw`; numbers and booleans are never changed. JSON: one array of records.
 *
 * `raw` needs an administrator (CRM_EDENIED otherwise). Every export writes a
 * core_audit row: who, the type, the format, the filters and sort, raw or not.
 *
 * The first page is read here, so a bad filter or sort fails now
 * (CRM_EINVALID naming it), before any output. The export keeps its own copy
 * of the principal and of `q`: the caller's context may end once this returns.
 * Errors: as crm_record_find, CRM_EDENIED, CRM_EBUSY.
 */
int crm_export_open(crm_export **out, crm_ctx *ctx, const char *type, const crm_query *q,
                    int format, bool raw);

/*
 * The next at most `max` bytes of output into buf: the count, 0 at the end, or
 * -1 on an error (logged; crm_error_last() on this thread says which). May
 * be called from any one thread at a time; each page is read on the calling
 * thread's connection, so memory stays at about one page whatever the size.
 */
ssize_t crm_export_next(crm_export *e, char *buf, size_t max);

/* Records written so far. */
int64_t crm_export_count(const crm_export *e);

void crm_export_free(crm_export *e);

/* The suggested file name: "<type>.csv" or "<type>.json" (borrowed). */
const char *crm_export_filename(const crm_export *e);
/* "text/csv; charset=utf-8" or "application/json" (borrowed). */
const char *crm_export_content_type(const crm_export *e);

#endif
