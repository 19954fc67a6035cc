/*
 * search.c — full-text search: the safe query builder and the bounded,
 * permission-checked ranking over each type's FTS5 index. See search.h for
 * the contract, the cost bound and what the tokenizer does per script.
 */
#include "search.h"

#include "perm.h"
#include "record.h"
#include "jtext.h"
#include "store.h"

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

/* ---- Scoring candidates ---- */

/*
 * Candidates are scored here, from their indexed text, rather than with
 * FTS5's bm25(): bm25 needs each phrase's document frequency, which FTS5
 * counts over every match of the phrase before the first score — 0.6 ms for
 * a 3-letter prefix matching 16k of 1M contacts, 30 ms for one matching all
 * of them — so its cost grows with the matches, not with the window. The
 * score below is BM25 without the IDF factor (k1 1.2, b 0.75, document =
 * the readable searchable fields, average length over the type's window): a
 * word's weight would be the same for every candidate, since every candidate
 * contains every word, so only the relative weight of the words is lost.
 */
#define K1 1.2
#define B  0.75

/* Lower-case and strip the commonest diacritics, as unicode61 does for matching. */
static uint32_t fold(uint32_t c)
{
    static const char latin1[] = "aaaaaaaceeeeiiiidnooooo\0ouuuuyts"  /* 0xC0-0xDF */
                                 "aaaaaaaceeeeiiiidnooooo\0ouuuuyty"; /* 0xE0-0xFF */
    if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xFF && latin1[c - 0xC0]) return (uint32_t)latin1[c - 0xC0];
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32; /* Greek */
    if (c >= 0x410 && c <= 0x42F) return c + 32;                 /* Cyrillic */
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}

typedef struct cps {
    uint32_t *v;
    int n, cap;
} cps;

/* `s` (n bytes) as folded code points, token ends marked with 0. */
static void tokenize(cps *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    bool in = false;
    out->n = 0;
    while (p < end) {
        if (out->n + 2 > out->cap) {
            out->cap = out->cap ? out->cap * 2 : 256;
            out->v = crm_realloc(out->v, (size_t)out->cap * sizeof *out->v);
        }
        uint32_t c = utf8_next(&p);
        int cls = cp_class(c);
        if (cls == CP_MARK) continue;
        if (cls == CP_SEP) {
            if (in) out->v[out->n++] = 0;
            in = false;
            continue;
        }
        out->v[out->n++] = fold(c);
        in = true;
    }
    if (in) out->v[out->n++] = 0;
}

typedef struct words {
    cps text; /* the query's words, folded, each ended by 0 */
    int start[CRM_SEARCH_MAX_WORDS], n;
} words;

/*
 * Count, in one field's tokens, those matching each word (whole-word tier:
 * equal; prefix tier: starting with it) into tf[], and the tokens into *len.
 */
static void count_field(const cps *tok, const words *w, bool whole, int *tf, int *len)
{
    for (int i = 0; i < tok->n;) {
        int j = i;
        while (tok->v[j]) j++;
        (*len)++;
        for (int k = 0; k < w->n; k++) {
            const uint32_t *q = w->text.v + w->start[k], *t = tok->v + i;
            while (*q && *q == *t) q++, t++;
            if (!*q && (!whole || !*t)) tf[k]++;
        }
        i = j + 1;
    }
}

/* ---- Searching one type ---- */

typedef struct hit {
    const crm_type *type;
    int64_t id;
    double rank;
    bool whole;
    int len;                      /* tokens in the readable searchable fields */
    int tf[CRM_SEARCH_MAX_WORDS]; /* tokens matching each word */
} hit;

typedef struct hits {
    hit *v;
    int n, cap;
    cps scratch;
} hits;

static hit *hits_add(hits *h)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = crm_realloc(h->v, (size_t)h->cap * sizeof *h->v);
    }
    hit *x = &h->v[h->n++];
    memset(x, 0, sizeof *x);
    return x;
}

static int hit_cmp(const void *a, const void *b)
{
    const hit *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    if (x->type != y->type) return strcmp(x->type->name, y->type->name);
    return x->id < y->id ? 1 : x->id > y->id ? -1 : 0; /* newer first on ties */
}

/*
 * The readable searchable fields of `t` (into cols, at most CRM_TYPE_MAX_FIELDS)
 * and the match expression as the principal sees it: `expr` alone when every
 * searchable field is readable, with a column filter of the readable ones
 * otherwise; NULL (search nothing) when none is.
 */
static char *type_expr(crm_ctx *ctx, const crm_type *t, const char *expr,
                       const crm_field **cols, int *ncols)
{
    int n = crm_type_nfields(t), searchable = 0, readable = 0;
    crm_buf filter = CRM_BUF_INIT;
    for (int i = 0; i < n; i++) {
        const crm_field *f = t->fields[i];
        if (!(f->flags & CRM_FIELD_SEARCHABLE)) continue;
        searchable++;
        if (crm_principal_field_access(ctx->who, t, f) == CRM_ACCESS_HIDDEN) continue;
        cols[readable] = f;
        crm_buf_puts(&filter, readable++ ? " \"" : "\"");
        crm_buf_puts(&filter, f->name); /* identifiers [a-z][a-z0-9_]*: nothing to escape */
        crm_buf_putc(&filter, '"');
    }
    *ncols = readable;
    char *r = NULL;
    if (readable == searchable) r = crm_strdup(expr);
    else if (readable) r = crm_sprintf("{%s} : (%s)", crm_buf_str(&filter), expr);
    crm_buf_free(&filter);
    return r;
}

static bool seen(const hits *h, int from, int to, const crm_type *t, int64_t id)
{
    for (int i = from; i < to; i++)
        if (h->v[i].type == t && h->v[i].id == id) return true;
    return false;
}

/*
 * One tier of one type: the newest CRM_SEARCH_WINDOW matches of `expr`
 * (FTS5 reads the index newest-first and stops there), in the principal's
 * read scope, scored into `h`; *full when the window was filled (older
 * matches were not looked at). Hits already found by the whole-word tier
 * (h->v[skip_from..skip_to)) are not added twice. The FTS5 table holds live
 * rows only (record.c keeps it in step), so a principal reading "all" needs
 * no join with the type's table; "own" / "team" do, for the scope.
 */
static int search_type(crm_ctx *ctx, const crm_type *t, const char *expr, bool whole,
                       const words *w, hits *h, int skip_from, int skip_to, bool *full)
{
    crm_buf sql = CRM_BUF_INIT, scope = CRM_BUF_INIT;
    json_t *params = json_array();
    crm_stmt *st = NULL;
    const crm_field *cols[CRM_TYPE_MAX_FIELDS];
    int ncols = 0, rc, first = h->n, rows = 0;
    const char *fts = crm_type_fts_table(t);
    char *match = type_expr(ctx, t, expr, cols, &ncols);
    if (!match) {
        rc = CRM_OK;
        goto done;
    }
    json_array_append_new(params, json_string(match));
    json_array_append_new(params, json_integer(CRM_SEARCH_WINDOW));
    if ((rc = crm_perm_scope_sql(ctx->who, t, CRM_ACT_READ, "t", &scope, params))) goto done;
    /* With a scope, a LEFT JOIN: rows out of scope come back with t.id NULL
       and are skipped, so the window's size is still what FTS5 returned. */
    bool join = scope.len > 0;
    int text_col = join ? 2 : 1;
    crm_buf_puts(&sql, join ? "SELECT c.rid, t.id" : "SELECT rowid");
    for (int i = 0; i < ncols; i++) {
        crm_buf_puts(&sql, join ? ", c." : ", ");
        crm_buf_put_ident(&sql, cols[i]->name);
    }
    if (join) {
        crm_buf_puts(&sql, " FROM (SELECT rowid AS rid");
        for (int i = 0; i < ncols; i++) {
            crm_buf_puts(&sql, ", ");
            crm_buf_put_ident(&sql, cols[i]->name);
        }
    }
    crm_buf_puts(&sql, " FROM ");
    crm_buf_put_ident(&sql, fts);
    crm_buf_puts(&sql, " WHERE ");
    crm_buf_put_ident(&sql, fts);
    crm_buf_puts(&sql, " MATCH ? ORDER BY rowid DESC LIMIT ?");
    if (join) {
        crm_buf_puts(&sql, ") AS c LEFT JOIN ");
        crm_buf_put_ident(&sql, t->name);
        crm_buf_puts(&sql, " AS t ON t.id = c.rid AND t.deleted_at IS NULL");
        crm_buf_puts(&sql, crm_buf_str(&scope));
    }
    if ((rc = crm_stmt_prepare(crm_ctx_conn(ctx), &st, crm_buf_str(&sql)))) goto done;
    size_t i;
    json_t *v;
    json_array_foreach(params, i, v) crm_stmt_bind_json(st, (int)i + 1, v);
    while ((rc = crm_stmt_step(st)) == 1) {
        int64_t id = crm_stmt_column_int(st, 0);
        rows++;
        if (join && crm_stmt_column_type(st, 1) == CRM_COL_NULL) continue; /* out of scope */
        if (seen(h, skip_from, skip_to, t, id)) continue;
        hit *x = hits_add(h);
        x->type = t;
        x->id = id;
        x->whole = whole;
        for (int c = 0; c < ncols; c++) {
            const char *text = crm_stmt_column_text(st, text_col + c);
            if (!text) continue;
            tokenize(&h->scratch, text, (size_t)crm_stmt_column_bytes(st, text_col + c));
            count_field(&h->scratch, w, whole, x->tf, &x->len);
        }
    }
    crm_stmt_done(st);
    st = NULL;
    if (rc < 0) goto done;
    rc = CRM_OK;
    *full = *full || rows == CRM_SEARCH_WINDOW;
    double avg = 0;
    for (int k = first; k < h->n; k++) avg += h->v[k].len;
    avg = h->n > first ? avg / (h->n - first) : 1;
    if (avg < 1) avg = 1;
    for (int k = first; k < h->n; k++) {
        hit *x = &h->v[k];
        double score = 0, norm = K1 * (1 - B + B * x->len / avg);
        for (int j = 0; j < w->n; j++)
            if (x->tf[j]) score += x->tf[j] * (K1 + 1) / (x->tf[j] + norm);
        /* (-2, -1] for whole-word hits, (-1, 0] for prefix hits: lower is better. */
        x->rank = -(whole ? 1.0 : 0.0) - score / (1 + score);
    }
done:
    if (st) crm_stmt_done(st);
    free(match);
    crm_buf_free(&sql);
    crm_buf_free(&scope);
    json_decref(params);
    return rc;
}

/* Per type met among the hits: its row plan for text answers (built on first use). */
typedef struct type_plan {
    const crm_type *type;
    crm_row_plan *plan;
    const crm_field *title; /* NULL when none or hidden from the principal */
} type_plan;

typedef struct answer {
    json_t *json;    /* the Jansson answer, or */
    crm_buf *text;   /* the text answer */
    type_plan plans[CRM_SEARCH_MAX_LIMIT]; /* types of found hits: at most limit */
    int nplans;
    int n;           /* hits written */
} answer;

static type_plan *plan_of(crm_ctx *ctx, answer *a, const crm_type *t)
{
    for (int i = 0; i < a->nplans; i++)
        if (a->plans[i].type == t) return &a->plans[i];
    type_plan *p = &a->plans[a->nplans++];
    p->type = t;
    p->plan = crm_record__row_plan(ctx, t, crm_type_nfields(t), true, NULL, 0);
    p->title = t->title_field ? crm_type_field(t, t->title_field) : NULL;
    if (p->title && !crm_principal_is_admin(ctx->who) &&
        crm_principal_field_access(ctx->who, t, p->title) == CRM_ACCESS_HIDDEN)
        p->title = NULL;
    return p;
}

/*
 * Add the hit's live row, redacted, to the answer; *found false when it went
 * away meanwhile. Both forms are the same JSON:
 *   {"type","id","title","rank","record"}.
 */
static int add_hit(crm_ctx *ctx, answer *a, const hit *x, bool *found)
{
    const crm_type *t = x->type;
    int n = crm_type_nfields(t), rc;
    crm_buf sql = CRM_BUF_INIT;
    crm_stmt *st;
    *found = false;
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
    if (rc == 1 && a->text) {
        type_plan *p = plan_of(ctx, a, t);
        crm_buf *b = a->text;
        crm_buf_puts(b, a->n++ ? ",{\"type\":" : "{\"type\":");
        crm_jtext_string(b, t->name, strlen(t->name), false);
        crm_buf_printf(b, ",\"id\":%lld,\"title\":", (long long)x->id);
        if (p->title)
            crm_record__put_field(b, p->title, st, CRM_SYSTEM_COLUMNS + p->title->position);
        else
            crm_buf_puts(b, "null");
        crm_buf_puts(b, ",\"rank\":");
        crm_jtext_real(b, x->rank, CRM_JTEXT_EXACT);
        crm_buf_puts(b, ",\"record\":");
        crm_record__row_text(b, p->plan, st);
        crm_buf_putc(b, '}');
    } else if (rc == 1) {
        json_t *record = crm_record__row(ctx, t, n, st, true, NULL, 0);
        const char *tf = t->title_field;
        json_t *title = tf ? json_object_get(record, tf) : NULL;
        json_array_append_new(a->json, json_pack("{s:s,s:I,s:O,s:f,s:o}", "type", t->name, "id",
                                                 (json_int_t)x->id, "title",
                                                 title ? title : json_null(), "rank", x->rank,
                                                 "record", record));
        a->n++;
    }
    *found = rc == 1;
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

/* The words of a match expression ("w1"* AND "w2"*), folded, into w. */
static void expr_words(const char *expr, words *w)
{
    const char *p = expr;
    w->n = 0;
    while ((p = strchr(p, '"')) && w->n < CRM_SEARCH_MAX_WORDS) {
        const char *start = ++p;
        while (*p && !(p[0] == '"' && p[1] != '"')) p += p[0] == '"' ? 2 : 1;
        cps tok = {0};
        tokenize(&tok, start, (size_t)(p - start));
        /* A word the classifier splits (it sends FTS5 one phrase) counts by its first part. */
        int len = 0;
        while (len < tok.n && tok.v[len]) len++;
        if (len) {
            w->start[w->n++] = w->text.n;
            for (int k = 0; k <= len; k++) {
                if (w->text.n + 1 > w->text.cap) {
                    w->text.cap = w->text.cap ? w->text.cap * 2 : 64;
                    w->text.v = crm_realloc(w->text.v, (size_t)w->text.cap * sizeof *w->text.v);
                }
                w->text.v[w->text.n++] = k < len ? tok.v[k] : 0;
            }
        }
        free(tok.v);
        if (*p) p++;
    }
}

/* The search, answered as a Jansson array (a->json) or as JSON text (a->text). */
static int run(crm_ctx *ctx, const char *q, const char *const *types, int ntypes, int limit,
               answer *a, bool *more)
{
    const crm_type **list = NULL;
    int nlist = 0, rc;
    char *expr = NULL, *whole_expr = NULL;
    hits h = {0};
    words w = {0};
    bool full = false, read_tx = false;
    if (more) *more = false;
    if (limit == 0) limit = CRM_SEARCH_DEFAULT_LIMIT;
    if (limit < 1 || limit > CRM_SEARCH_MAX_LIMIT) {
        rc = crm_error_set(CRM_EINVALID, "limit", "limit must be an integer from 1 to %d",
                           CRM_SEARCH_MAX_LIMIT);
        goto done;
    }
    if ((rc = crm_search__expr(q, &expr))) goto done;
    if ((rc = pick_types(ctx, types, ntypes, &list, &nlist))) goto done;
    if (expr) {
        /* The whole-word form: each phrase without its prefix star ('"' only ends a phrase
           followed by '*'; inner quotes are doubled). */
        whole_expr = crm_strdup(expr);
        char *d = whole_expr;
        for (const char *p = expr; *p; p++)
            if (!(p[0] == '*' && p > expr && p[-1] == '"')) *d++ = *p;
        *d = 0;
        expr_words(expr, &w);
    }
    /*
     * One read transaction for the whole search (unless the caller is in one):
     * both tiers and the hits' rows come from one snapshot, and the WAL read
     * lock is taken once instead of per statement (~25 statements, each with
     * its lock syscalls: 5% of a search).
     */
    if (crm_tx_depth(crm_ctx_conn(ctx)) == 0 && crm_conn_exec(crm_ctx_conn(ctx), "BEGIN") == CRM_OK)
        read_tx = true;
    /* Tier 1: whole words; tier 2, only when tier 1 cannot fill the answer: prefixes. */
    for (int i = 0; expr && i < nlist; i++)
        if ((rc = search_type(ctx, list[i], whole_expr, true, &w, &h, 0, 0, &full))) goto done;
    int whole_hits = h.n;
    if (expr && whole_hits < limit) {
        for (int i = 0; i < nlist; i++)
            if ((rc = search_type(ctx, list[i], expr, false, &w, &h, 0, whole_hits, &full)))
                goto done;
    } else if (expr) {
        full = true; /* prefix-only matches were not looked at */
    }
    if (h.n > 1) qsort(h.v, (size_t)h.n, sizeof *h.v, hit_cmp);
    int i = 0;
    for (; i < h.n && a->n < limit; i++) {
        bool found;
        if ((rc = add_hit(ctx, a, &h.v[i], &found))) goto done;
    }
    if (more) *more = full || i < h.n;
done:
    if (read_tx) crm_conn_exec(crm_ctx_conn(ctx), "COMMIT");
    for (int k = 0; k < a->nplans; k++) crm_record__row_plan_free(a->plans[k].plan);
    free(list);
    free(expr);
    free(whole_expr);
    free(h.v);
    free(h.scratch.v);
    free(w.text.v);
    return rc;
}

int crm_search(crm_ctx *ctx, const char *q, const char *const *types, int ntypes, int limit,
               json_t **out, bool *more)
{
    answer a = {.json = json_array()};
    int rc = run(ctx, q, types, ntypes, limit, &a, more);
    *out = NULL;
    if (rc) json_decref(a.json);
    else *out = a.json;
    return rc;
}

int crm_search_text(crm_ctx *ctx, const char *q, const char *const *types, int ntypes, int limit,
                    char **out, size_t *len)
{
    crm_buf text = CRM_BUF_INIT;
    answer a = {.text = &text};
    bool more = false;
    *out = NULL;
    *len = 0;
    crm_buf_puts(&text, "{\"data\":[");
    int rc = run(ctx, q, types, ntypes, limit, &a, &more);
    if (rc) {
        crm_buf_free(&text);
        return rc;
    }
    crm_buf_puts(&text, more ? "],\"more\":true}" : "],\"more\":false}");
    *len = text.len;
    *out = crm_buf_detach(&text);
    return CRM_OK;
}
