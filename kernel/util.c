/*
 * util.c — errors, allocation, growable strings, the clock, time formats,
 * UTF-8, identifiers, base64url and logging.
 */
#include "util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- Errors ---- */

/*
 * Thread-local so that workers never see each other's failures; the buffers
 * are fixed-size so setting an error can never itself fail.
 */
static _Thread_local char err_message[1024];
static _Thread_local char err_field[128];
static _Thread_local char err_name[64];
/* message is NULL until first use: a thread-local's address is not a constant. */
static _Thread_local crm_error err_last = {CRM_OK, NULL, NULL, NULL};

int crm_error_set(int code, const char *field, const char *fmt, ...)
{
    /*
     * Through locals: callers reword an error with its own message or field
     * as an argument, and formatting a buffer into itself is undefined.
     */
    char message[sizeof err_message], field_copy[sizeof err_field];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (field) snprintf(field_copy, sizeof field_copy, "%s", field);
    memcpy(err_message, message, sizeof message);
    err_last.code = code;
    err_last.message = err_message;
    if (field) {
        memcpy(err_field, field_copy, sizeof field_copy);
        err_last.field = err_field;
    } else {
        err_last.field = NULL;
    }
    err_last.name = NULL;
    return code;
}

int crm_error_set_named(int code, const char *name, const char *field, const char *fmt, ...)
{
    char message[sizeof err_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    crm_error_set(code, field, "%s", message);
    if (name) {
        snprintf(err_name, sizeof err_name, "%s", name);
        err_last.name = err_name;
    }
    return code;
}

void crm_error_clear(void)
{
    err_last.code = CRM_OK;
    err_message[0] = '\0';
    err_last.message = err_message;
    err_last.field = NULL;
    err_last.name = NULL;
}

const crm_error *crm_error_last(void)
{
    if (!err_last.message) err_last.message = err_message;
    return &err_last;
}

const char *crm_error_name(int code)
{
    switch (code) {
    case CRM_OK: return "ok";
    case CRM_EINVALID: return "invalid";
    case CRM_ENOTFOUND: return "not_found";
    case CRM_EDENIED: return "denied";
    case CRM_ECONFLICT: return "conflict";
    case CRM_ESTALE: return "stale";
    case CRM_EBUSY: return "busy";
    case CRM_EFULL: return "storage_full";
    case CRM_ELIMIT: return "limit";
    default: return "internal";
    }
}

/* ---- Allocation ---- */

static void oom(size_t n)
{
    fprintf(stderr, "crm: out of memory allocating %zu bytes\n", n);
    abort();
}

void *crm_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *crm_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p) oom(count * n);
    return p;
}

void *crm_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *crm_strdup(const char *s)
{
    return crm_strndup(s, strlen(s));
}

char *crm_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = crm_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *crm_sprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) oom(0);
    return s;
}

/* ---- Growable string ---- */

static void buf_grow(crm_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    size_t cap;

    if (need <= b->cap) return;
    cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    b->ptr = crm_realloc(b->ptr, cap);
    b->cap = cap;
}

void crm_buf_put(crm_buf *b, const char *s, size_t n)
{
    buf_grow(b, n);
    if (n) memcpy(b->ptr + b->len, s, n);
    b->len += n;
    b->ptr[b->len] = '\0';
}

void crm_buf_puts(crm_buf *b, const char *s)
{
    crm_buf_put(b, s, strlen(s));
}

void crm_buf_putc(crm_buf *b, char c)
{
    crm_buf_put(b, &c, 1);
}

void crm_buf_printf(crm_buf *b, const char *fmt, ...)
{
    va_list ap, again;
    size_t room;
    int n;

    buf_grow(b, 64);
    room = b->cap - b->len;
    va_start(ap, fmt);
    va_copy(again, ap);
    n = vsnprintf(b->ptr + b->len, room, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= room) {
        /* Did not fit: grow to the exact size and format again. */
        buf_grow(b, (size_t)n);
        n = vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, again);
    }
    va_end(again);
    if (n < 0) {
        b->ptr[b->len] = '\0';
        return;
    }
    b->len += (size_t)n;
}

void crm_buf_put_ident(crm_buf *b, const char *name)
{
    crm_buf_putc(b, '"');
    for (; *name; name++) {
        if (*name == '"') crm_buf_putc(b, '"');
        crm_buf_putc(b, *name);
    }
    crm_buf_putc(b, '"');
}

const char *crm_buf_str(const crm_buf *b)
{
    return b->ptr ? b->ptr : "";
}

char *crm_buf_detach(crm_buf *b)
{
    char *s = b->ptr ? b->ptr : crm_strdup("");
    b->ptr = NULL;
    b->len = b->cap = 0;
    return s;
}

void crm_buf_free(crm_buf *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
}

/* ---- Clock ---- */

/*
 * INT64_MIN: not yet initialised from CRM_CLOCK; -1: real clock; otherwise the
 * frozen time. Atomic because the scheduler thread reads what a test sets.
 */
static _Atomic int64_t clock_frozen = INT64_MIN;

static int64_t clock_state(void)
{
    int64_t v = atomic_load(&clock_frozen);
    if (v == INT64_MIN) {
        const char *env = getenv("CRM_CLOCK");
        int64_t t = -1, expected = INT64_MIN;
        if (env && !crm_parse_int64(env, &t)) t = -1;
        if (t < 0) t = -1;
        /* Lose the race gracefully to a concurrent crm_clock_set(). */
        atomic_compare_exchange_strong(&clock_frozen, &expected, t);
        v = atomic_load(&clock_frozen);
    }
    return v;
}

int64_t crm_now(void)
{
    int64_t v = clock_state();
    return v >= 0 ? v : (int64_t)time(NULL);
}

void crm_clock_set(int64_t t)
{
    atomic_store(&clock_frozen, t >= 0 ? t : -1);
}

int64_t crm_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- Time formats ---- */

bool crm_is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int y, unsigned m)
{
    static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && crm_is_leap(y) ? 29 : dim[m - 1];
}

int64_t crm_days_from_civil(int y, unsigned m, unsigned d)
{
    int64_t yy = (int64_t)y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    unsigned yoe = (unsigned)(yy - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void crm_civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    int64_t era, yy;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    yy = (int64_t)yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Zero-padded decimal of exactly `width` digits (callers keep v in range). */
static char *put_digits(char *o, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        o[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return o + width;
}

/* Years outside 0..9999 do not fit the formats; clamp rather than overflow out. */
static char *put_date(char *o, int64_t days)
{
    int y;
    unsigned m, d;

    crm_civil_from_days(days, &y, &m, &d);
    if (y < 0) y = 0;
    if (y > 9999) y = 9999;
    o = put_digits(o, (unsigned)y, 4);
    *o++ = '-';
    o = put_digits(o, m, 2);
    *o++ = '-';
    return put_digits(o, d, 2);
}

void crm_time_format(int64_t t, char out[21])
{
    int64_t days = floor_div(t, 86400), secs = t - days * 86400;
    char *o = put_date(out, days);

    *o++ = 'T';
    o = put_digits(o, (unsigned)(secs / 3600), 2);
    *o++ = ':';
    o = put_digits(o, (unsigned)(secs / 60 % 60), 2);
    *o++ = ':';
    o = put_digits(o, (unsigned)(secs % 60), 2);
    *o++ = 'Z';
    *o = '\0';
}

void crm_date_format(int64_t t, char out[11])
{
    *put_date(out, floor_div(t, 86400)) = '\0';
}

/* Exactly n ASCII digits at *p; advances p. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

bool crm_time_parse(const char *s, int64_t *out, bool *date_only)
{
    const char *p = s;
    int y, mo, d, hh = 0, mm = 0, ss = 0, off = 0;
    bool only_date = true;

    if (!s) return false;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || (unsigned)d > days_in_month(y, (unsigned)mo)) return false;

    if (*p == 'T' || *p == ' ') {
        only_date = false;
        p++;
        if (!digits(&p, 2, &hh) || *p++ != ':' || !digits(&p, 2, &mm)) return false;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &ss)) return false;
            if (*p == '.') {
                /* Fractions are accepted and dropped: the kernel stores whole seconds. */
                p++;
                if (*p < '0' || *p > '9') return false;
                while (*p >= '0' && *p <= '9') p++;
            }
        }
        if (hh > 23 || mm > 59 || ss > 59) return false;
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om;
            p++;
            if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om)) return false;
            if (oh > 23 || om > 59) return false;
            off = sign * (oh * 3600 + om * 60);
        }
        /* No designator: the time is taken as UTC, like the dates are. */
    }
    if (*p != '\0') return false;

    *out = crm_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + hh * 3600 + mm * 60 + ss -
           off;
    if (date_only) *date_only = only_date;
    return true;
}

/* ---- Text ---- */

bool crm_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

size_t crm_utf8_len(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) count++;
    return count;
}

bool crm_ident_valid(const char *s, size_t maxlen)
{
    size_t i;

    if (!s || s[0] < 'a' || s[0] > 'z') return false;
    for (i = 1; s[i]; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
        if (i >= maxlen) return false;
    }
    return i <= maxlen;
}

bool crm_parse_int64(const char *s, int64_t *out)
{
    const char *p = s;
    bool neg = false;
    uint64_t v = 0, limit;

    if (!s) return false;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    if (*p < '0' || *p > '9') return false;
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *p; p++) {
        unsigned dgt;
        if (*p < '0' || *p > '9') return false;
        dgt = (unsigned)(*p - '0');
        if (v > (limit - dgt) / 10) return false;
        v = v * 10 + dgt;
    }
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return true;
}

/* ---- Encoding ---- */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *crm_b64url_encode(const unsigned char *data, size_t n)
{
    char *out = crm_malloc((n + 2) / 3 * 4 + 1), *o = out;
    size_t i;

    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *o++ = b64url_alphabet[v >> 18 & 63];
        *o++ = b64url_alphabet[v >> 12 & 63];
        *o++ = b64url_alphabet[v >> 6 & 63];
        *o++ = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;
        *o++ = b64url_alphabet[v >> 18 & 63];
        *o++ = b64url_alphabet[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
        *o++ = b64url_alphabet[v >> 18 & 63];
        *o++ = b64url_alphabet[v >> 12 & 63];
        *o++ = b64url_alphabet[v >> 6 & 63];
    }
    *o = '\0';
    return out;
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

unsigned char *crm_b64url_decode(const char *s, size_t *outlen)
{
    size_t n = strlen(s), i, o = 0;
    unsigned char *out;
    uint32_t acc = 0;
    int bits = 0;

    /* A single leftover character cannot encode a whole byte. */
    if (n % 4 == 1) return NULL;
    out = crm_malloc(n / 4 * 3 + 3);
    for (i = 0; i < n; i++) {
        int v = b64url_value(s[i]);
        if (v < 0) goto bad;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Canonical form only: the unused trailing bits must be zero. */
    if (acc != 0) goto bad;
    *outlen = o;
    return out;
bad:
    free(out);
    return NULL;
}

void crm_hex(const unsigned char *data, size_t n, char *out)
{
    static const char hexd[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[data[i] >> 4];
        out[2 * i + 1] = hexd[data[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- Logging ---- */

/* -1: not yet read from CRM_LOG. */
static _Atomic int log_level = -1;

static int log_level_get(void)
{
    int lvl = atomic_load(&log_level);
    if (lvl < 0) {
        const char *env = getenv("CRM_LOG");
        int expected = -1;
        lvl = CRM_LOG_INFO;
        if (env) {
            if (!strcmp(env, "debug")) lvl = CRM_LOG_DEBUG;
            else if (!strcmp(env, "warn")) lvl = CRM_LOG_WARN;
            else if (!strcmp(env, "error")) lvl = CRM_LOG_ERROR;
        }
        atomic_compare_exchange_strong(&log_level, &expected, lvl);
        lvl = atomic_load(&log_level);
    }
    return lvl;
}

void crm_log_set_level(int level)
{
    atomic_store(&log_level, level < CRM_LOG_DEBUG ? CRM_LOG_DEBUG : level);
}

void crm_log(int level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char when[21], line[2048];
    va_list ap;
    int n;

    if (level < log_level_get()) return;
    if (level < CRM_LOG_DEBUG) level = CRM_LOG_DEBUG;
    if (level > CRM_LOG_ERROR) level = CRM_LOG_ERROR;
    /* Log lines carry the real time even when tests freeze crm_now(). */
    crm_time_format((int64_t)time(NULL), when);
    n = snprintf(line, sizeof line, "%s %s ", when, names[level]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    /* One write per line so concurrent threads do not interleave within a line. */
    for (char *c = line + n; *c; c++)
        if (*c == '\n') *c = ' ';
    n = (int)strlen(line);
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
}
