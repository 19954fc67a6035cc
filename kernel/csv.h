/*
 * csv.h — RFC 4180 CSV: a strict reader over a buffer held in memory, and a
 * writer of cells with the formula-injection guard of SECURITY.md X4.
 *
 * Reader: fields separated by ',', records by CRLF, LF or a lone CR; a field
 * may be quoted with '"', inside which '""' is one quote and commas and line
 * breaks are data. A UTF-8 byte order mark at the start is skipped. Blank
 * lines are skipped (they still count as lines). Every record reports the
 * physical line it starts on (1-based), so an error can name the line a user
 * sees in an editor. The bytes are not interpreted otherwise: NUL bytes and
 * invalid UTF-8 come through as data and are the caller's to refuse.
 *
 * Fields are borrowed: they point into the input where possible (every
 * unquoted field, and quoted ones without "" escapes) or into the reader's own
 * buffer, and stay valid until the next crm_csv_read. Nothing is allocated per
 * field; the reader's arrays grow once to the widest record.
 */
#ifndef CRM_CSV_H
#define CRM_CSV_H

#include "util.h"

/* One field of the current record: `len` bytes at `ptr`, not NUL-terminated. */
typedef struct crm_csv_field {
    const char *ptr;
    size_t len;
    size_t off;  /* internal: offset of an unescaped copy in the reader's buffer */
    bool copied; /* internal */
} crm_csv_field;

typedef struct crm_csv_reader {
    const char *p, *end; /* the unread input */
    int line;            /* the physical line the next record starts on */
    int max_fields;      /* more fields in one record is an error */
    crm_csv_field *fields; /* the current record's fields */
    int nfields;
    int cap;
    crm_buf unescaped; /* quoted fields that held "" escapes */
} crm_csv_reader;

/*
 * Start reading `len` bytes at `data` (borrowed: must outlive the reader).
 * `max_fields` bounds a record's width (hostile input: 10,000 columns).
 */
void crm_csv_reader_init(crm_csv_reader *r, const char *data, size_t len, int max_fields);
void crm_csv_reader_free(crm_csv_reader *r);

/*
 * Read the next record into r->fields[0..r->nfields). *line is the physical
 * line it starts on. Returns 1 for a record, 0 at the end of the input, or
 * CRM_EINVALID for a malformed record, with a message (without the line
 * number, which is in *line): an unterminated quoted field, a quote inside an
 * unquoted field, text after a closing quote, too many fields. After an error
 * the reader has skipped the rest of that physical line (an unterminated quote
 * swallows the rest of the input), so reading can go on.
 */
int crm_csv_read(crm_csv_reader *r, int *line);

/* ---- Writing ---- */

/* Whether a cell starting with `c` could be read as a formula by a spreadsheet. */
bool crm_csv_formula_start(char c);

/*
 * Append one cell. With `guard`, a cell starting with = + - @ TAB or CR gets a
 * ' in front (SECURITY.md X4). The cell is quoted (inner quotes doubled) when
 * it holds a comma, a quote, CR or LF. Separators and record ends are the
 * caller's: crm_buf_putc(b, ','), crm_buf_puts(b, "\r\n").
 */
void crm_csv_put(crm_buf *b, const char *s, size_t n, bool guard);

#endif
