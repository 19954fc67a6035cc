/*
 * util.h — the kernel's small shared helpers: errors, allocation, growable
 * strings, the clock, UTF-8 and time formats. Internal to the kernel.
 */
#ifndef CRM_UTIL_H
#define CRM_UTIL_H

#include "../sdk/crm.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CRM_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---- Errors ---- */

/*
 * Set this thread's error and return `code`, so a failure site reads
 *   return crm_error_set(CRM_EINVALID, "email", "field \"email\": not an email address");
 * `field` may be NULL. Never call this while propagating a callee's error.
 */
int crm_error_set(int code, const char *field, const char *fmt, ...) CRM_PRINTF(3, 4);
/*
 * The same with a specific API error code that the HTTP layer answers instead
 * of the code's generic name: crm_error_set_named(CRM_ELIMIT, "rule_timeout", ...).
 */
int crm_error_set_named(int code, const char *name, const char *field, const char *fmt, ...)
    CRM_PRINTF(4, 5);
/* Clear this thread's error (code CRM_OK, empty message). */
void crm_error_clear(void);
/* A short stable name for a code ("invalid", "not_found", ...), used as the API error code. */
const char *crm_error_name(int code);

/* ---- Allocation: abort on out-of-memory (the kernel's own bookkeeping) ---- */

void *crm_malloc(size_t n);
void *crm_calloc(size_t count, size_t n);
void *crm_realloc(void *p, size_t n);
char *crm_strdup(const char *s);
char *crm_strndup(const char *s, size_t n);
char *crm_sprintf(const char *fmt, ...) CRM_PRINTF(1, 2);

/* ---- Growable string ---- */

typedef struct crm_buf {
    char *ptr;  /* always NUL-terminated once anything was added */
    size_t len; /* bytes used, excluding the NUL */
    size_t cap;
} crm_buf;

#define CRM_BUF_INIT {NULL, 0, 0}
void crm_buf_put(crm_buf *b, const char *s, size_t n);
void crm_buf_puts(crm_buf *b, const char *s);
void crm_buf_putc(crm_buf *b, char c);
void crm_buf_printf(crm_buf *b, const char *fmt, ...) CRM_PRINTF(2, 3);
/* Append `name` as a double-quoted SQL identifier (inner quotes doubled). */
void crm_buf_put_ident(crm_buf *b, const char *name);
/* The contents ("" when empty); borrowed. */
const char *crm_buf_str(const crm_buf *b);
/* Give the string to the caller (free with free()) and reset the buffer. */
char *crm_buf_detach(crm_buf *b);
void crm_buf_free(crm_buf *b);

/* ---- Clock ---- */

/*
 * Wall-clock time in seconds since the epoch (UTC). Tests and `crm rules test`
 * move it with crm_clock_set(); CRM_CLOCK=<epoch> in the environment sets it
 * at start. All kernel code reads time through here, never time(2).
 */
int64_t crm_now(void);
/* Freeze the clock at `t` (t < 0: back to the real clock). */
void crm_clock_set(int64_t t);
/* Monotonic microseconds, for durations. */
int64_t crm_mono_us(void);

/* ---- Time formats (UTC) ---- */

/* "YYYY-MM-DDTHH:MM:SSZ" into out (at least 21 bytes). */
void crm_time_format(int64_t t, char out[21]);
/* "YYYY-MM-DD" into out (at least 11 bytes). */
void crm_date_format(int64_t t, char out[11]);
/*
 * Parse "YYYY-MM-DD" (date) or "YYYY-MM-DDTHH:MM[:SS][.frac](Z|±HH:MM)" or with a space
 * instead of T. Validates the calendar. Returns true and the epoch seconds.
 */
bool crm_time_parse(const char *s, int64_t *out, bool *date_only);
/* Days since the epoch for a civil date, and back (Howard Hinnant's algorithms). */
int64_t crm_days_from_civil(int y, unsigned m, unsigned d);
void crm_civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d);
bool crm_is_leap(int y);

/* ---- Text ---- */

/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool crm_utf8_valid(const char *s, size_t n);
/* Number of code points in well-formed UTF-8. */
size_t crm_utf8_len(const char *s, size_t n);
/* True when s is a valid identifier: [a-z][a-z0-9_]{0,maxlen-1}. */
bool crm_ident_valid(const char *s, size_t maxlen);
/* Parse a whole string as a base-10 int64 (optional sign); false on junk or overflow. */
bool crm_parse_int64(const char *s, int64_t *out);

/* ---- Encoding ---- */

/* Base64url without padding. Returns a malloc'd string. */
char *crm_b64url_encode(const unsigned char *data, size_t n);
/* Decode; returns malloc'd bytes and their length, or NULL on malformed input. */
unsigned char *crm_b64url_decode(const char *s, size_t *outlen);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void crm_hex(const unsigned char *data, size_t n, char *out);

/* ---- Logging: one line to stderr, structured enough to grep ---- */

enum { CRM_LOG_DEBUG, CRM_LOG_INFO, CRM_LOG_WARN, CRM_LOG_ERROR };
void crm_log(int level, const char *fmt, ...) CRM_PRINTF(2, 3);
void crm_log_set_level(int level);

#endif
