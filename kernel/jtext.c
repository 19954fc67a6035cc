/*
 * jtext.c — JSON text into a crm_buf (see jtext.h).
 */
#include "jtext.h"
#include <stdio.h>
#include <string.h>

static inline char *reserve(crm_buf *b, size_t n)
{
    if (b->cap - b->len < n + 1 || !b->ptr) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap - b->len < n + 1) cap *= 2;
        b->ptr = crm_realloc(b->ptr, cap);
        b->cap = cap;
    }
    return b->ptr + b->len;
}

/*
 * Escaped as Jansson escapes it: '"', '\\' and the C0 controls (\b \f \n \r
 * \t by name, the rest as \u00XX); '/', DEL and non-ASCII as they are.
 */
bool crm_jtext_string(crm_buf *b, const char *s, size_t n, bool check_utf8)
{
    static const char hex[] = "0123456789ABCDEF";
    bool plain = true, ascii = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        plain &= c >= 0x20 && c != '"' && c != '\\';
        ascii &= c < 0x80;
    }
    if (check_utf8 && !ascii && !crm_utf8_valid(s, n)) return false;
    char *w = reserve(b, plain ? n + 2 : n * 6 + 2), *start = w;
    *w++ = '"';
    if (plain) {
        memcpy(w, s, n);
        w += n;
    } else {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c >= 0x20 && c != '"' && c != '\\') {
                *w++ = (char)c;
                continue;
            }
            *w++ = '\\';
            switch (c) {
            case '"': *w++ = '"'; break;
            case '\\': *w++ = '\\'; break;
            case '\b': *w++ = 'b'; break;
            case '\f': *w++ = 'f'; break;
            case '\n': *w++ = 'n'; break;
            case '\r': *w++ = 'r'; break;
            case '\t': *w++ = 't'; break;
            default:
                memcpy(w, "u00", 3);
                w[3] = hex[c >> 4];
                w[4] = hex[c & 15];
                w += 5;
            }
        }
    }
    *w++ = '"';
    b->len += (size_t)(w - start);
    b->ptr[b->len] = '\0';
    return true;
}

void crm_jtext_int(crm_buf *b, int64_t v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do *--p = (char)('0' + mag % 10);
    while ((mag /= 10));
    if (v < 0) *--p = '-';
    size_t n = (size_t)(tmp + sizeof tmp - p);
    memcpy(reserve(b, n), p, n);
    b->len += n;
    b->ptr[b->len] = '\0';
}

/* As Jansson's jsonp_dtostr: %.<precision>g, ".0" when it reads as an
   integer, and an exponent without '+' or leading zeros. The C locale's '.'
   is assumed (crm never calls setlocale). */
void crm_jtext_real(crm_buf *b, double v, int precision)
{
    char tmp[48];
    int n = snprintf(tmp, sizeof tmp - 2, "%.*g", precision, v);
    if (n < 0 || n >= (int)sizeof tmp - 2) n = 0;
    if (!strpbrk(tmp, ".eE")) {
        tmp[n++] = '.';
        tmp[n++] = '0';
        tmp[n] = '\0';
    }
    char *e = strchr(tmp, 'e');
    if (e) {
        char *src = e + 1, *dst = e + 1;
        if (*src == '-') *dst++ = *src++;
        else if (*src == '+') src++;
        while (*src == '0' && src[1]) src++;
        memmove(dst, src, strlen(src) + 1);
        n = (int)strlen(tmp);
    }
    crm_buf_put(b, tmp, (size_t)n);
}

void crm_jtext_value(crm_buf *b, const json_t *v, int precision)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *m;
        bool first = true;
        crm_buf_putc(b, '{');
        json_object_foreach((json_t *)v, key, m)
        {
            if (!first) crm_buf_putc(b, ',');
            first = false;
            crm_jtext_string(b, key, strlen(key), false);
            crm_buf_putc(b, ':');
            crm_jtext_value(b, m, precision);
        }
        crm_buf_putc(b, '}');
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        crm_buf_putc(b, '[');
        for (size_t i = 0; i < n; i++) {
            if (i) crm_buf_putc(b, ',');
            crm_jtext_value(b, json_array_get(v, i), precision);
        }
        crm_buf_putc(b, ']');
        break;
    }
    case JSON_STRING:
        crm_jtext_string(b, json_string_value(v), json_string_length(v), false);
        break;
    case JSON_INTEGER: crm_jtext_int(b, json_integer_value(v)); break;
    case JSON_REAL: crm_jtext_real(b, json_real_value(v), precision); break;
    case JSON_TRUE: crm_buf_put(b, "true", 4); break;
    case JSON_FALSE: crm_buf_put(b, "false", 5); break;
    case JSON_NULL: crm_buf_put(b, "null", 4); break;
    }
}

char *crm_jtext_dumps(const json_t *v, int precision, size_t *len)
{
    crm_buf b = CRM_BUF_INIT;
    if (!v) return NULL;
    crm_jtext_value(&b, v, precision);
    if (len) *len = b.len;
    return crm_buf_detach(&b);
}
