/*
 * search.c — full-text search: the safe query builder and the bounded,
 * permission-checked ranking over each type's FTS5 index. See search.h for
 * the contract, the cost bound and what the tokenizer does per script.
 */
#include "search.h"

#include "perm.h"
#include "record.h"

#include <stdlib.h>
#include <string.h>

/* ---- Words ---- */

enum { CP_SEP, CP_MARK, CP_WORD, CP_IDEO };

/*
 * Classify a code point roughly as unicode61 does (letters and digits are
 * token characters, punctuation, symbols and spaces separators). Being exact
 * matters little: every word is sent as a quoted phrase, which FTS5 tokenizes
 * itself, so a separator we keep only splits the phrase. What matters is that
 * a word made only of separators is never sent (an empty phrase would make
 * the whole AND match nothing) — hence the symbol ranges below.
 */
static int cp_class(uint32_t c)
{
    if (c < 0x80)
        return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') ? CP_WORD
                                                                                 : CP_SEP;
    if (c <= 0xBF)
        return c == 0xAA || c == 0xB5 || c == 0xBA || c == 0xB2 || c == 0xB3 || c == 0xB9 ||
                       (c >= 0xBC && c <= 0xBE) ? CP_WORD : CP_SEP;
    if (c == 0xD7 || c == 0xF7) return CP_SEP;
    if ((c >= 0x2C2 && c <= 0x2C5) || (c >= 0x2D2 && c <= 0x2DF) || (c >= 0x2E5 && c <= 0x2EB))
        return CP_SEP;
    if ((c >= 0x300 && c <= 0x36F) || (c >= 0x483 && c <= 0x489)) return CP_MARK;
    if (c == 0x37E || c == 0x387 || c == 0x55A || c == 0x589 || c == 0x58A) return CP_SEP;
    /* Hebrew points and punctuation */
    if (c >= 0x591 && c <= 0x5C7)
        return c == 0x5BE || c == 0x5C0 || c == 0x5C3 || c == 0x5C6 ? CP_SEP : CP_MARK;
    if (c == 0x5F3 || c == 0x5F4) return CP_SEP;
    /* Arabic script signs, punctuation and harakat */
    if (c >= 0x600 && c <= 0x60F) return CP_SEP;
    if ((c >= 0x610 && c <= 0x61A) || (c >= 0x64B && c <= 0x65F) || c == 0x670 ||
        (c >= 0x6D6 && c <= 0x6ED && c != 0x6E5 && c != 0x6E6))
        return CP_MARK;
    if ((c >= 0x61B && c <= 0x61F) || (c >= 0x66A && c <= 0x66D) || c == 0x6D4) return CP_SEP;
    /* combining marks of Indic scripts and others are mostly in Mn; treat the
       general combining blocks explicitly */
    if ((c >= 0x1AB0 && c <= 0x1AFF) || (c >= 0x1DC0 && c <= 0x1DFF) ||
        (c >= 0x20D0 && c <= 0x20FF) || (c >= 0xFE20 && c <= 0xFE2F) ||
        (c >= 0xFE00 && c <= 0xFE0F))
        return CP_MARK;
    /* general punctuation, super/subscripts, currency, letterlike, arrows,
       math, technical, box drawing, shapes, dingbats, misc symbols */
    if (c >= 0x2000 && c <= 0x2BFF)
        return (c >= 0x2070 && c <= 0x209F) || (c >= 0x2150 && c <= 0x218F) ? CP_WORD : CP_SEP;
    if (c >= 0x2E00 && c <= 0x2E7F) return CP_SEP;
    /* CJK punctuation; 々 〆 〇 and Hangzhou numerals are word characters */
    if (c >= 0x3000 && c <= 0x303F)
        return (c >= 0x3005 && c <= 0x3007) || (c >= 0x3021 && c <= 0x3029) ? CP_IDEO : CP_SEP;
    if ((c >= 0xFE10 && c <= 0xFE1F) || (c >= 0xFE30 && c <= 0xFE6F) ||
        (c >= 0xFF00 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) ||
        (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFF65) ||
        (c >= 0xFFF0 && c <= 0xFFFF))
        return CP_SEP;
    if (c >= 0x1F000 && c <= 0x1FAFF) return CP_SEP; /* emoji, pictographs */
    if (c >= 0xE0000 && c <= 0xE0FFF) return CP_MARK; /* tags, variation selectors */
    /* CJK, kana, Hangul: one character is a word */
    if ((c >= 0x2E80 && c <= 0x9FFF) || (c >= 0xAC00 && c <= 0xD7AF) ||
        (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x3FFFF))
        return CP_IDEO;
    return CP_WORD;
}

/* Decode one code point of well-formed UTF-8 at *p, advancing it. */
static uint32_t utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t c = s[0];
    int n = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    if (n) c &= 0x3F >> n;
    for (int i = 1; i <= n; i++) c = (c << 6) | (s[i] & 0x3F);
    *p = s + n + 1;
    return c;
}

int crm_search__expr(const char *q, char **out)
{
    crm_buf expr = CRM_BUF_INIT;
    int words = 0, found = 0;
    size_t len;
    *out = NULL;
    if (!q || !*q) return crm_error_set(CRM_EINVALID, "q", "parameter \"q\" is required");
    len = strlen(q);
    if (len > CRM_SEARCH_MAX_QUERY)
        return crm_error_set(CRM_EINVALID, "q", "parameter \"q\": at most %d bytes",
                             CRM_SEARCH_MAX_QUERY);
    if (!crm_utf8_valid(q, len))
        return crm_error_set(CRM_EINVALID, "q", "parameter \"q\" is not valid UTF-8");
    const unsigned char *p = (const unsigned char *)q, *end = p + len;
    while (p < end && words < CRM_SEARCH_MAX_WORDS) {
        const unsigned char *start = p, *stop;
        int letters = 0, ideo = 0, cls;
        /* skip separators (and marks with no letter before them) */
        cls = cp_class(utf8_next(&p));
        if (cls == CP_SEP || cls == CP_MARK) continue;
        letters = 1;
        ideo = cls == CP_IDEO;
        stop = p;
        while (p < end) {
            const unsigned char *here = p;
            cls = cp_class(utf8_next(&p));
            if (cls == CP_SEP) {
                p = here;
                break;
            }
            if (cls != CP_MARK) letters++;
            stop = p;
        }
        found++;
        if (letters < 2 && !ideo) continue;
        /* a quoted FTS5 string: the only special character inside is '"' and
           there is none here (it is a separator), so no escaping is needed —
           but double any quote anyway should the classifier ever change */
        if (words++) crm_buf_puts(&expr, " AND ");
        crm_buf_putc(&expr, '"');
        for (const unsigned char *s = start; s < stop; s++) {
            if (*s == '"') crm_buf_putc(&expr, '"');
            crm_buf_putc(&expr, (char)*s);
        }
        crm_buf_puts(&expr, "\"*");
    }
    if (!found) {
        crm_buf_free(&expr);
        return crm_error_set(CRM_EINVALID, "q", "parameter \"q\" has no word to search for");
    }
    *out = words ? crm_buf_detach(&expr) : NULL;
    crm_buf_free(&expr);
    return CRM_OK;
}

/* ---- Searching one type ---- */

typedef struct hit {
    const crm_type *type;
    int64_t id;
    double rank;
} hit;

typedef struct hits {
    hit *v;
    int n, cap;
} hits;

static void hits_add(hits *h, const crm_type *t, int64_t id, double rank)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 32;
        h->v = crm_realloc(h->v, (size_t)h->cap * sizeof *h->v);
    }
    h->v[h->n++] = (hit){t, id, rank};
}

static int hit_cmp(const void *a, const void *b)
{
    const hit *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    if (x->type != y->type) return strcmp(x->type->name, y->type->name);
    return x->id < y->id ? 1 : x->id > y->id ? -1 : 0; /* newer first on ties */
}

/*
 * The match expression for `t` as the principal sees it: `expr` alone when
 * every searchable field is readable, with a column filter of the readable
 * ones otherwise; NULL (search nothing) when none is.
 */
static char *type_expr(crm_ctx *ctx, const crm_type *t, const char *expr)
{
    int n = crm_type_nfields(t), searchable = 0, readable = 0;
    crm_buf cols = CRM_BUF_INIT;
    for (int i = 0; i < n; i++) {
        const crm_field *f = t->fields[i];
        if (!(f->flags & CRM_FIELD_SEARCHABLE)) continue;
        searchable++;
        if (crm_principal_field_access(ctx->who, t, f) == CRM_ACCESS_HIDDEN) continue;
        crm_buf_puts(&cols, readable++ ? " \"" : "\"");
        crm_buf_puts(&cols, f->name); /* identifiers [a-z][a-z0-9_]*: nothing to escape */
        crm_buf_putc(&cols, '"');
    }
    char *r = NULL;
    if (readable == searchable) r = crm_strdup(expr);
    else if (readable) r = crm_sprintf("{%s} : (%s)", crm_buf_str(&cols), expr);
    crm_buf_free(&cols);
    return r;
}

/*
 * The newest CRM_SEARCH_WINDOW matches of one type, joined with the live rows
 * in the principal's read scope, into `h` with their bm25 rank. One FTS5
 * query: the window subquery is not flattened into the join (it has a LIMIT),
 * so the index is read newest-first and stops after the window; ranking is
 * done by the caller over what this returns.
 */
static int search_type(crm_ctx *ctx, const crm_type *t, const char *expr, hits *h)
{
    crm_buf sql = CRM_BUF_INIT;
    json_t *params = json_array();
    crm_stmt *st = NULL;
    int rc;
    const char *fts = crm_type_fts_table(t);
    char *match = type_expr(ctx, t, expr);
    if (!match) {
        rc = CRM_OK;
        goto done;
    }
    crm_buf_puts(&sql, "SELECT c.rid, c.score FROM (SELECT rowid AS rid, rank AS score FROM ");
    crm_buf_put_ident(&sql, fts);
    crm_buf_puts(&sql, " WHERE ");
    crm_buf_put_ident(&sql, fts);
    crm_buf_puts(&sql, " MATCH ? ORDER BY rowid DESC LIMIT ?) AS c JOIN ");
    crm_buf_put_ident(&sql, t->name);
    crm_buf_puts(&sql, " AS t ON t.id = c.rid WHERE t.deleted_at IS NULL");
    json_array_append_new(params, json_string(match));
    json_array_append_new(params, json_integer(CRM_SEARCH_WINDOW));
    if ((rc = crm_perm_scope_sql(ctx->who, t, CRM_ACT_READ, "t", &sql, params))) goto done;
    if ((rc = crm_stmt_prepare(crm_ctx_conn(ctx), &st, crm_buf_str(&sql)))) goto done;
    size_t i;
    json_t *v;
    json_array_foreach(params, i, v) crm_stmt_bind_json(st, (int)i + 1, v);
    while ((rc = crm_stmt_step(st)) == 1)
        hits_add(h, t, crm_stmt_column_int(st, 0), crm_stmt_column_double(st, 1));
    crm_stmt_done(st);
    st = NULL;
    rc = rc < 0 ? rc : CRM_OK;
done:
    if (st) crm_stmt_done(st);
    free(match);
    crm_buf_free(&sql);
    json_decref(params);
    return rc;
}

/* The live row of a hit, redacted; NULL when it went away meanwhile. */
static int load_hit(crm_ctx *ctx, const hit *x, json_t **out)
{
    const crm_type *t = x->type;
    int n = crm_type_nfields(t), rc;
    crm_buf sql = CRM_BUF_INIT;
    crm_stmt *st;
    *out = NULL;
    crm_buf_puts(&sql, "SELECT ");
    crm_record__select_cols(&sql, t, n);
    crm_buf_puts(&sql, " FROM ");
    crm_buf_put_ident(&sql, t->name);
    crm_buf_puts(&sql, " WHERE id = ? AND deleted_at IS NULL");
    rc = crm_stmt_prepare(crm_ctx_conn(ctx), &st, crm_buf_str(&sql));
    crm_buf_free(&sql);
    if (rc) return rc;
    crm_stmt_bind_int(st, 1, x->id);
    rc = crm_stmt_step(st);
    if (rc == 1) *out = crm_record__row(ctx, t, n, st, true, NULL, 0);
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

/* Resolve the requested types (or all searchable readable ones). */
static int pick_types(crm_ctx *ctx, const char *const *names, int nnames,
                      const crm_type ***out, int *n)
{
    const crm_type **all = NULL;
    int nall = 0, rc;
    *out = NULL;
    *n = 0;
    if (nnames > CRM_SEARCH_MAX_TYPES)
        return crm_error_set(CRM_EINVALID, "types", "at most %d types", CRM_SEARCH_MAX_TYPES);
    if (nnames == 0) {
        if ((rc = crm_schema_types(ctx->k->schema, &all, &nall))) return rc;
        int k = 0;
        for (int i = 0; i < nall; i++)
            if (all[i]->searchable &&
                crm_principal_level(ctx->who, all[i], CRM_ACT_READ) != CRM_LEVEL_NONE)
                all[k++] = all[i];
        *out = all;
        *n = k;
        return CRM_OK;
    }
    all = crm_calloc((size_t)nnames, sizeof *all);
    for (int i = 0; i < nnames; i++) {
        const crm_type *t = crm_schema_type(ctx->k->schema, names[i]);
        /* An unreadable type answers like an unknown one: no oracle. */
        if (!t || crm_principal_level(ctx->who, t, CRM_ACT_READ) == CRM_LEVEL_NONE) {
            free(all);
            return crm_error_set(CRM_EINVALID, "types", "unknown type \"%s\"", names[i]);
        }
        if (!t->searchable) {
            free(all);
            return crm_error_set(CRM_EINVALID, "types", "type %s has no searchable fields",
                                 t->name);
        }
        bool dup = false;
        for (int j = 0; j < nall; j++) dup = dup || all[j] == t;
        if (!dup) all[nall++] = t;
    }
    *out = all;
    *n = nall;
    return CRM_OK;
}

int crm_search(crm_ctx *ctx, const char *q, const char *const *types, int ntypes, int limit,
               json_t **out)
{
    const crm_type **list = NULL;
    int nlist = 0, rc;
    char *expr = NULL;
    hits h = {0};
    json_t *result = json_array();
    *out = NULL;
    if (limit == 0) limit = CRM_SEARCH_DEFAULT_LIMIT;
    if (limit < 1 || limit > CRM_SEARCH_MAX_LIMIT) {
        rc = crm_error_set(CRM_EINVALID, "limit", "limit must be an integer from 1 to %d",
                           CRM_SEARCH_MAX_LIMIT);
        goto done;
    }
    if ((rc = crm_search__expr(q, &expr))) goto done;
    if ((rc = pick_types(ctx, types, ntypes, &list, &nlist))) goto done;
    for (int i = 0; expr && i < nlist; i++)
        if ((rc = search_type(ctx, list[i], expr, &h))) goto done;
    if (h.n > 1) qsort(h.v, (size_t)h.n, sizeof *h.v, hit_cmp);
    for (int i = 0, taken = 0; i < h.n && taken < limit; i++) {
        json_t *record;
        if ((rc = load_hit(ctx, &h.v[i], &record))) goto done;
        if (!record) continue;
        const char *tf = h.v[i].type->title_field;
        json_t *title = tf ? json_object_get(record, tf) : NULL;
        json_array_append_new(result, json_pack("{s:s,s:I,s:O,s:f,s:o}", "type",
                                                h.v[i].type->name, "id", (json_int_t)h.v[i].id,
                                                "title", title ? title : json_null(), "rank",
                                                h.v[i].rank, "record", record));
        taken++;
    }
    *out = result;
    result = NULL;
done:
    json_decref(result);
    free(list);
    free(expr);
    free(h.v);
    return rc;
}
