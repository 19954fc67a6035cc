/*
 * value.c — field values: validation of API values, their stored form, and
 * back. The stored form is a JSON scalar ready to bind: integer (int, ref,
 * bool as 0/1, decimal as minor units), string (text kinds, dates as ISO
 * text, json as compact text) or null.
 */
#include "schema.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(const crm_field *f, const char *what)
{
    return crm_error_set(CRM_EINVALID, f->name, "field \"%s\": %s", f->name, what);
}

static bool email_shape(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@') || at - s > 64) return false;
    const char *domain = at + 1;
    size_t dlen = strlen(domain);
    if (dlen < 3 || dlen > 253 || !strchr(domain, '.') || domain[0] == '.' ||
        domain[dlen - 1] == '.' || strstr(domain, ".."))
        return false;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' ||
            c == ';' || c == ':' || c == '\\' || c == '"' || c == '[' || c == ']')
            return false;
        if (p > at && !(isalnum(c) || c == '-' || c == '.' || c >= 0x80)) return false;
    }
    return true;
}

static bool phone_shape(const char *s)
{
    int digits = 0;
    for (const char *p = s; *p; p++) {
        if (isdigit((unsigned char)*p)) digits++;
        else if (*p == '+') {
            if (p != s) return false;
        } else if (!strchr(" -().", *p))
            return false;
    }
    return digits >= 5 && digits <= 20;
}

/* http(s) with a host, or mailto: — never javascript:, data:, vbscript: or others. */
static bool url_shape(const char *s)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '\\') return false;
    size_t skip = 0;
    if (strncasecmp(s, "https://", 8) == 0) skip = 8;
    else if (strncasecmp(s, "http://", 7) == 0) skip = 7;
    else if (strncasecmp(s, "mailto:", 7) == 0) return s[7] && strchr(s + 7, '@');
    else return false;
    const char *host = s + skip;
    return *host && *host != '/' && *host != '?' && *host != '#' && *host != '@';
}

/* "123", "-1.5", "0.25" → minor units at `scale`; false on junk, too many digits or overflow. */
static bool parse_decimal(const char *s, int scale, int64_t *out)
{
    bool neg = false;
    int64_t v = 0;
    int frac = -1;
    const char *p = s;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    if (!*p || *p == '.') return false;
    for (; *p; p++) {
        if (*p == '.') {
            if (frac >= 0 || !p[1]) return false;
            frac = 0;
            continue;
        }
        if (!isdigit((unsigned char)*p)) return false;
        if (frac >= 0 && ++frac > scale) return false;
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
            return false;
    }
    for (int i = frac < 0 ? 0 : frac; i < scale; i++)
        if (__builtin_mul_overflow(v, 10, &v)) return false;
    *out = neg ? -v : v;
    return true;
}

static json_t *format_decimal(int64_t v, int scale)
{
    char buf[48];
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    uint64_t div = 1;
    for (int i = 0; i < scale; i++) div *= 10;
    if (scale == 0)
        snprintf(buf, sizeof buf, "%s%llu", v < 0 ? "-" : "", (unsigned long long)mag);
    else
        snprintf(buf, sizeof buf, "%s%llu.%0*llu", v < 0 ? "-" : "", (unsigned long long)(mag / div),
                 scale, (unsigned long long)(mag % div));
    return json_string(buf);
}

/* Text checks shared by the string kinds: UTF-8, no NUL, length in characters. */
static int check_text(const crm_field *f, json_t *value, const char **out)
{
    const char *s = json_string_value(value);
    size_t n = json_string_length(value);
    if (!s) return bad(f, "expected a string");
    if (strlen(s) != n) return bad(f, "text must not contain NUL characters");
    if (!crm_utf8_valid(s, n)) return bad(f, "text is not valid UTF-8");
    size_t chars = crm_utf8_len(s, n);
    if (chars > (size_t)f->max_length)
        return crm_error_set(CRM_EINVALID, f->name,
                             "field \"%s\": %zu characters, at most %d allowed", f->name, chars,
                             f->max_length);
    *out = s;
    return CRM_OK;
}

int crm_field_to_db(const crm_field *f, json_t *value, json_t **stored)
{
    const char *s;
    int rc;
    int64_t t;
    bool date_only;
    *stored = NULL;
    if (!value || json_is_null(value)) {
        *stored = json_null();
        return CRM_OK;
    }
    switch (f->kind) {
    case CRM_FIELD_TEXT:
        if ((rc = check_text(f, value, &s))) return rc;
        *stored = json_incref(value);
        return CRM_OK;
    case CRM_FIELD_INT:
        if (!json_is_integer(value)) return bad(f, "expected an integer");
        *stored = json_incref(value);
        return CRM_OK;
    case CRM_FIELD_REF:
        if (!json_is_integer(value) || json_integer_value(value) <= 0)
            return crm_error_set(CRM_EINVALID, f->name,
                                 "field \"%s\": expected the id of a %s record", f->name,
                                 f->ref_type);
        *stored = json_incref(value);
        return CRM_OK;
    case CRM_FIELD_BOOL:
        if (!json_is_boolean(value)) return bad(f, "expected true or false");
        *stored = json_integer(json_is_true(value));
        return CRM_OK;
    case CRM_FIELD_DECIMAL: {
        char buf[64];
        int64_t minor;
        if (json_is_integer(value))
            snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        else if (json_is_real(value))
            snprintf(buf, sizeof buf, "%.*f", f->scale, json_real_value(value));
        else if (json_is_string(value) && json_string_length(value) < sizeof buf)
            snprintf(buf, sizeof buf, "%s", json_string_value(value));
        else
            return bad(f, "expected a decimal number such as \"1234.50\"");
        if (json_is_real(value)) {
            /* A binary double must round to the field's scale exactly as written. */
            double d = json_real_value(value);
            if (d != d || d > 9e15 || d < -9e15) return bad(f, "decimal out of range");
        }
        if (!parse_decimal(buf, f->scale, &minor))
            return crm_error_set(CRM_EINVALID, f->name,
                                 "field \"%s\": \"%s\" is not a decimal with at most %d digits "
                                 "after the point", f->name, buf, f->scale);
        *stored = json_integer(minor);
        return CRM_OK;
    }
    case CRM_FIELD_DATE:
    case CRM_FIELD_DATETIME: {
        s = json_string_value(value);
        if (!s || !crm_time_parse(s, &t, &date_only))
            return bad(f, f->kind == CRM_FIELD_DATE ? "expected a date YYYY-MM-DD"
                                                    : "expected a date-time YYYY-MM-DDTHH:MM:SSZ");
        char buf[21];
        if (f->kind == CRM_FIELD_DATE) {
            if (!date_only) return bad(f, "expected a date YYYY-MM-DD, without a time");
            crm_date_format(t, buf);
        } else {
            crm_time_format(t, buf);
        }
        *stored = json_string(buf);
        return CRM_OK;
    }
    case CRM_FIELD_ENUM:
        s = json_string_value(value);
        if (s && strlen(s) != json_string_length(value)) s = NULL; /* "won\0x" is not "won" */
        if (s)
            for (char **v = f->enum_values; *v; v++)
                if (strcmp(*v, s) == 0) {
                    *stored = json_incref(value);
                    return CRM_OK;
                }
        {
            crm_buf msg = CRM_BUF_INIT;
            crm_buf_printf(&msg, "field \"%s\": expected one of ", f->name);
            for (char **v = f->enum_values; *v; v++)
                crm_buf_printf(&msg, "%s%s", v == f->enum_values ? "" : ", ", *v);
            rc = crm_error_set(CRM_EINVALID, f->name, "%s", crm_buf_str(&msg));
            crm_buf_free(&msg);
            return rc;
        }
    case CRM_FIELD_EMAIL: {
        if ((rc = check_text(f, value, &s))) return rc;
        if (!email_shape(s)) return bad(f, "not an email address");
        /* The domain is case-insensitive: store it lower-cased so unique and = work. */
        char *copy = crm_strdup(s);
        for (char *p = strchr(copy, '@'); *p; p++) *p = (char)tolower((unsigned char)*p);
        *stored = json_string(copy);
        free(copy);
        return CRM_OK;
    }
    case CRM_FIELD_PHONE:
        if ((rc = check_text(f, value, &s))) return rc;
        if (!phone_shape(s))
            return bad(f, "not a phone number (5 to 20 digits, with + - ( ) . or spaces)");
        *stored = json_incref(value);
        return CRM_OK;
    case CRM_FIELD_URL:
        if ((rc = check_text(f, value, &s))) return rc;
        if (!url_shape(s)) return bad(f, "not a URL: only http://, https:// and mailto: are allowed");
        *stored = json_incref(value);
        return CRM_OK;
    case CRM_FIELD_JSON: {
        char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text) return bad(f, "not encodable as JSON");
        if (strlen(text) > 65536) {
            free(text);
            return bad(f, "JSON value larger than 64 KiB");
        }
        *stored = json_string(text);
        free(text);
        return CRM_OK;
    }
    }
    return bad(f, "unknown field kind");
}

json_t *crm_field_from_db(const crm_field *f, crm_stmt *st, int col)
{
    if (crm_stmt_column_type(st, col) == CRM_COL_NULL) return json_null();
    switch (f->kind) {
    case CRM_FIELD_INT:
    case CRM_FIELD_REF: return json_integer(crm_stmt_column_int(st, col));
    case CRM_FIELD_BOOL: return json_boolean(crm_stmt_column_int(st, col) != 0);
    case CRM_FIELD_DECIMAL: return format_decimal(crm_stmt_column_int(st, col), f->scale);
    case CRM_FIELD_JSON: {
        json_t *v = json_loads(crm_stmt_column_text(st, col), JSON_DECODE_ANY, NULL);
        return v ? v : json_null();
    }
    default: {
        const char *s = crm_stmt_column_text(st, col);
        return s ? json_stringn(s, (size_t)crm_stmt_column_bytes(st, col)) : json_null();
    }
    }
}

json_t *crm_field_stored_to_api(const crm_field *f, json_t *stored)
{
    if (!stored || json_is_null(stored)) return json_null();
    switch (f->kind) {
    case CRM_FIELD_BOOL: return json_boolean(json_integer_value(stored) != 0);
    case CRM_FIELD_DECIMAL: return format_decimal(json_integer_value(stored), f->scale);
    case CRM_FIELD_JSON: {
        json_t *v = json_loads(json_string_value(stored), JSON_DECODE_ANY, NULL);
        return v ? v : json_null();
    }
    default: return json_incref(stored);
    }
}

int crm_field_parse_text(const crm_field *f, const char *text, json_t **stored)
{
    int rc;
    json_t *v = NULL;
    int64_t n;
    *stored = NULL;
    switch (f->kind) {
    case CRM_FIELD_INT:
    case CRM_FIELD_REF:
        if (!crm_parse_int64(text, &n))
            return crm_error_set(CRM_EINVALID, f->name, "filter on \"%s\": \"%s\" is not an integer",
                                 f->name, text);
        v = json_integer(n);
        break;
    case CRM_FIELD_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0) v = json_true();
        else if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0) v = json_false();
        else
            return crm_error_set(CRM_EINVALID, f->name,
                                 "filter on \"%s\": expected true or false", f->name);
        break;
    case CRM_FIELD_DECIMAL:
    case CRM_FIELD_JSON:
        v = json_string(text);
        break;
    default:
        if (!crm_utf8_valid(text, strlen(text)))
            return crm_error_set(CRM_EINVALID, f->name, "filter on \"%s\": not valid UTF-8",
                                 f->name);
        v = json_string(text);
        break;
    }
    if (!v) return crm_error_set(CRM_EINVALID, f->name, "filter on \"%s\": bad value", f->name);
    if (f->kind == CRM_FIELD_JSON)
        return crm_error_set(CRM_EINVALID, f->name, "field \"%s\": json fields cannot be filtered",
                             f->name);
    rc = crm_field_to_db(f, v, stored);
    json_decref(v);
    if (rc && f->kind == CRM_FIELD_TEXT) {
        /* A filter value longer than the field allows simply matches nothing. */
        crm_error_clear();
        *stored = json_string(text);
        rc = CRM_OK;
    }
    return rc;
}

void crm_stmt_bind_json(crm_stmt *st, int i, json_t *stored)
{
    if (!stored || json_is_null(stored)) crm_stmt_bind_null(st, i);
    else if (json_is_integer(stored)) crm_stmt_bind_int(st, i, json_integer_value(stored));
    else if (json_is_boolean(stored)) crm_stmt_bind_int(st, i, json_is_true(stored));
    else if (json_is_real(stored)) crm_stmt_bind_double(st, i, json_real_value(stored));
    else if (json_is_string(stored))
        crm_stmt_bind_text(st, i, json_string_value(stored), (int)json_string_length(stored));
    else crm_stmt_bind_null(st, i);
}
