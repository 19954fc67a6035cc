/*
 * csv.c — RFC 4180 reader and writer.
 *
 * Why not libcsv (Debian's libcsv-dev, 3.0.3)? STYLE.md asks for a
 * well-kept library where one beats hand-rolling; here it does not:
 *   - Errors must name the physical line a record starts on. libcsv reports
 *     neither lines nor record offsets, and by default drops empty rows
 *     silently, so lines could only be reconstructed by re-scanning the input
 *     around its callbacks.
 *   - Import must reject malformed CSV record by record and go on (line
 *     mode). libcsv's strict mode stops the whole parse at the first error;
 *     resuming means re-creating the parser at a guessed offset.
 *   - The input is already one buffer in memory (the HTTP server buffers the
 *     body, the CLI reads the file). libcsv copies every field into its own
 *     growing buffer and calls back per field; this reader points into the
 *     input for every field that has no "" escape, which is what a 1M-row
 *     import wants (no per-field copy, no per-field call).
 *   - libcsv's last release is from 2013; it would be a new build and CI
 *     dependency for ~150 lines of a state machine whose whole grammar is five
 *     rules (RFC 4180 section 2), tested by tests/unit/test_csv.c.
 * The writer is a dozen lines either way and needs the formula guard, which
 * libcsv does not have.
 */
#include "csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void crm_csv_reader_init(crm_csv_reader *r, const char *data, size_t len, int max_fields)
{
    memset(r, 0, sizeof *r);
    r->p = data;
    r->end = data + len;
    r->line = 1;
    r->max_fields = max_fields > 0 ? max_fields : 1;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) r->p += 3;
}

void crm_csv_reader_free(crm_csv_reader *r)
{
    free(r->fields);
    crm_buf_free(&r->unescaped);
    memset(r, 0, sizeof *r);
}

/* Line breaks in s[0..e): LF, CRLF (once) or a lone CR. */
static int count_lines(const char *s, const char *e)
{
    int n = 0;
    for (; s < e; s++)
        if (*s == '\n' || (*s == '\r' && (s + 1 == e || s[1] != '\n'))) n++;
    return n;
}

/* At a record end (p < end, *p is CR or LF): step over it. */
static const char *skip_newline(const char *p, const char *end)
{
    if (*p == '\r' && p + 1 < end && p[1] == '\n') return p + 2;
    return p + 1;
}

/* After an error: drop the rest of the physical line. */
static void skip_line(crm_csv_reader *r)
{
    while (r->p < r->end && *r->p != '\n' && *r->p != '\r') r->p++;
    if (r->p < r->end) {
        r->p = skip_newline(r->p, r->end);
        r->line++;
    }
}

static crm_csv_field *next_field(crm_csv_reader *r)
{
    if (r->nfields == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->fields = crm_realloc(r->fields, (size_t)r->cap * sizeof *r->fields);
    }
    crm_csv_field *f = &r->fields[r->nfields++];
    memset(f, 0, sizeof *f);
    return f;
}

static int fail(crm_csv_reader *r, const char *message)
{
    skip_line(r);
    return crm_error_set(CRM_EINVALID, NULL, "%s", message);
}

/* A quoted field; r->p is at the opening quote. */
static int read_quoted(crm_csv_reader *r, crm_csv_field *f)
{
    const char *q = r->p + 1, *seg = q, *end = r->end;
    for (;;) {
        const char *dq = memchr(q, '"', (size_t)(end - q));
        if (!dq) {
            r->p = end;
            return crm_error_set(CRM_EINVALID, NULL,
                                 "unterminated quoted field: the quote opened on this line is "
                                 "never closed");
        }
        r->line += count_lines(q, dq);
        if (dq + 1 < end && dq[1] == '"') {
            /* An escaped quote: keep the text so far and one quote. */
            if (!f->copied) {
                f->copied = true;
                f->off = r->unescaped.len;
            }
            crm_buf_put(&r->unescaped, seg, (size_t)(dq + 1 - seg));
            q = seg = dq + 2;
            continue;
        }
        if (f->copied) {
            crm_buf_put(&r->unescaped, seg, (size_t)(dq - seg));
            f->len = r->unescaped.len - f->off;
        } else {
            f->ptr = seg;
            f->len = (size_t)(dq - seg);
        }
        r->p = dq + 1;
        if (r->p < end && *r->p != ',' && *r->p != '\r' && *r->p != '\n')
            return fail(r, "unexpected text after a closing quote (a quote inside a quoted field "
                           "is written \"\")");
        return CRM_OK;
    }
}

int crm_csv_read(crm_csv_reader *r, int *line)
{
    const char *end = r->end;
    int rc;

    r->nfields = 0;
    r->unescaped.len = 0;
    /* Blank lines between records are not records. */
    while (r->p < end && (*r->p == '\r' || *r->p == '\n')) {
        r->p = skip_newline(r->p, end);
        r->line++;
    }
    *line = r->line;
    if (r->p >= end) return 0;

    for (;;) {
        if (r->nfields >= r->max_fields) {
            /* The rest of the record may hold quoted line breaks; resync on the line. */
            char msg[80];
            snprintf(msg, sizeof msg, "more than %d fields in one record", r->max_fields);
            return fail(r, msg);
        }
        crm_csv_field *f = next_field(r);
        if (r->p < end && *r->p == '"') {
            if ((rc = read_quoted(r, f))) return rc;
        } else {
            const char *s = r->p;
            while (r->p < end && *r->p != ',' && *r->p != '\n' && *r->p != '\r') {
                if (*r->p == '"')
                    return fail(r, "a quote inside an unquoted field (quote the whole field and "
                                   "write the quote as \"\")");
                r->p++;
            }
            f->ptr = s;
            f->len = (size_t)(r->p - s);
        }
        if (r->p < end && *r->p == ',') {
            r->p++;
            continue; /* a ',' at the end of the input still opens one (empty) field */
        }
        if (r->p < end) {
            r->p = skip_newline(r->p, end);
            r->line++;
        }
        break;
    }
    /* The unescaped buffer may have moved while it grew: point into it now. */
    for (int i = 0; i < r->nfields; i++)
        if (r->fields[i].copied) r->fields[i].ptr = r->unescaped.ptr + r->fields[i].off;
    return 1;
}

/* ---- Writing ---- */

bool crm_csv_formula_start(char c)
{
    return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
}

void crm_csv_put(crm_buf *b, const char *s, size_t n, bool guard)
{
    bool quote = false;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (quote) crm_buf_putc(b, '"');
    if (guard && n && crm_csv_formula_start(s[0])) crm_buf_putc(b, '\'');
    if (!quote) {
        crm_buf_put(b, s, n);
        return;
    }
    const char *seg = s, *e = s + n;
    for (const char *dq; (dq = memchr(seg, '"', (size_t)(e - seg)));) {
        crm_buf_put(b, seg, (size_t)(dq - seg + 1));
        crm_buf_putc(b, '"');
        seg = dq + 1;
    }
    crm_buf_put(b, seg, (size_t)(e - seg));
    crm_buf_putc(b, '"');
}
