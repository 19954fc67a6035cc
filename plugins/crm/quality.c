/*
 * quality.c — data quality and compliance: duplicate detection, merge, GDPR export and erase.
 *
 *   GET  /api/v1/x/crm/duplicates?type=crm.contact[&threshold=0.85]
 *   POST /api/v1/x/crm/merge {"type": "crm.contact", "keep": 1, "merge": [2, 3]}
 *   GET  /api/v1/x/crm/gdpr/{contact_id}/export                                    (admin)
 *   POST /api/v1/x/crm/gdpr/{contact_id}/erase                                     (admin)
 *
 * Duplicates: records of one type grouped when they share a normalised e-mail (trimmed,
 * lower case; Gmail's dots and +tags dropped), a normalised phone (digits only, "00" →
 * international, a national leading 0 → the setting phone.country_code when set), or a
 * name whose Levenshtein ratio (on code points, ASCII case folded, spaces collapsed, the
 * tokens sorted) reaches the threshold. Past 5,000 records names are compared only within
 * the block of their first letter.
 *
 * References are found from the schema (host->types), not from a list kept here: every
 * field of kind "ref" that targets the record's type, in any type — the plugin's own,
 * a vertical's (hotel.reservation.guest), or a custom field an admin added at run time —
 * and every type with related_type + related_id fields (activities, tasks, messages).
 *
 * Merge needs update permission on the kept record and delete permission on the merged
 * ones (an admin; a sales manager within the team). Its references are re-pointed as the
 * system (host->as_system): a reference in a record the caller cannot see still moves,
 * or it would be left pointing at a deleted record. The caller learns only how many were
 * re-pointed, never which. The writes run in one host->tx: a failure leaves nothing
 * half-done; the fact crm.records_merged is emitted with them (GET /api/v1/events: who,
 * which ids — never personal data), and a note activity goes on the kept record.
 *
 * Export and erase are admin-only: they must see every record about a person. Erase runs
 * in one host->tx and emits the fact crm.gdpr_erased; export emits crm.gdpr_exported.
 * An erase also removes the old values from the kernel's history and events
 * (host->record_forget); events already delivered to webhooks cannot be recalled. The
 * export holds the contact's change history (host->record_history) and, for each
 * related record, the address of its history.
 */
#include "crm_int.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H crmp_host

#define DUP_MAX_RECORDS 20000
#define DUP_ALL_PAIRS 5000
#define MERGE_MAX 50
#define NAME_MAX_CP 128

static const char *const mergeable[] = {"crm.contact", "crm.company", "crm.lead"};

static const char *const system_fields[] = {"id",    "created_at", "updated_at", "created_by",
                                            "owner", "team",       "version",    "deleted_at"};

static bool is_system_field(const char *name)
{
    for (size_t i = 0; i < sizeof system_fields / sizeof system_fields[0]; i++)
        if (strcmp(name, system_fields[i]) == 0) return true;
    return false;
}

static const char *mergeable_type(const char *type)
{
    for (size_t i = 0; type && i < sizeof mergeable / sizeof mergeable[0]; i++)
        if (strcmp(type, mergeable[i]) == 0) return mergeable[i];
    return NULL;
}

/* ======================================================================= */
/* ---- Walking references ------------------------------------------------ */
/* ======================================================================= */

/* Called for each record referring to the target: (type, field, record). */
typedef int (*ref_fn)(const char *type, const char *field, json_t *record, void *arg);

struct ref_walk {
    const char *type, *field;
    ref_fn fn;
    void *arg;
};

static int ref_walk_one(json_t *record, void *arg)
{
    struct ref_walk *w = arg;
    return w->fn(w->type, w->field, record, w->arg);
}

static int walk_field(crm_ctx *ctx, const char *type, const char *field, int64_t id, ref_fn fn,
                      void *arg)
{
    struct ref_walk w = {type, field, fn, arg};
    json_t *filter = json_pack("{s:I,s:i}", field, (json_int_t)id, "limit", 500);
    int rc = crmp_each(ctx, type, filter, ref_walk_one, &w);
    json_decref(filter);
    return rc;
}

/* Whether a type (as host->types describes it) has a field `name` of `kind`. */
static bool has_field(json_t *type, const char *name, const char *kind)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(type, "fields"), i, f) {
        const char *n = json_string_value(json_object_get(f, "name"));
        const char *k = json_string_value(json_object_get(f, "kind"));
        if (n && strcmp(n, name) == 0) return k && strcmp(k, kind) == 0;
    }
    return false;
}

/* The records hanging off record `id` of `target` by related_type + related_id. */
static int walk_related(crm_ctx *ctx, json_t *types, const char *target, int64_t id, ref_fn fn,
                        void *arg)
{
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t) {
        if (!has_field(t, "related_type", "text") || !has_field(t, "related_id", "int")) continue;
        struct ref_walk w = {json_string_value(json_object_get(t, "name")), "related_id", fn, arg};
        json_t *filter = json_pack("{s:s,s:I,s:i}", "related_type", target, "related_id",
                                   (json_int_t)id, "limit", 500);
        int rc = crmp_each(ctx, w.type, filter, ref_walk_one, &w);
        json_decref(filter);
        if (rc != CRM_OK) return rc;
    }
    return CRM_OK;
}

/*
 * Every record referring to record `id` of `target`, with `ctx`'s permissions: by every
 * ref field of `types` (host->types) that targets it, and by related_type/_id.
 */
static int walk_refs(crm_ctx *ctx, json_t *types, const char *target, int64_t id, ref_fn fn,
                     void *arg)
{
    size_t i, j;
    json_t *t, *f;
    int rc;
    json_array_foreach(types, i, t) {
        json_array_foreach(json_object_get(t, "fields"), j, f) {
            const char *ref = json_string_value(json_object_get(f, "ref"));
            const char *kind = json_string_value(json_object_get(f, "kind"));
            if (!kind || strcmp(kind, "ref") != 0 || !ref || strcmp(ref, target) != 0) continue;
            if ((rc = walk_field(ctx, json_string_value(json_object_get(t, "name")),
                                 json_string_value(json_object_get(f, "name")), id, fn,
                                 arg)) != CRM_OK)
                return rc;
        }
    }
    return walk_related(ctx, types, target, id, fn, arg);
}

/* ======================================================================= */
/* ---- Duplicates -------------------------------------------------------- */
/* ======================================================================= */

struct candidate {
    int64_t id;
    json_t *record; /* borrowed from the list */
    char email[256], phone[32];
    uint32_t name[NAME_MAX_CP];
    int name_len;
};

static void normalise_email(const char *in, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    if (!in) return;
    while (isspace((unsigned char)*in))
        in++;
    for (; *in && n + 1 < size; in++)
        out[n++] = (char)tolower((unsigned char)*in);
    while (n && isspace((unsigned char)out[n - 1]))
        n--;
    out[n] = '\0';
    char *at = strrchr(out, '@');
    if (!at) return;
    if (strcmp(at + 1, "gmail.com") && strcmp(at + 1, "googlemail.com")) return;
    /* Gmail ignores dots and everything after + in the local part */
    char local[256];
    size_t k = 0;
    for (char *p = out; p < at && *p != '+'; p++)
        if (*p != '.') local[k++] = *p;
    local[k] = '\0';
    snprintf(out, size, "%.200s@gmail.com", local);
}

static void normalise_phone(const char *in, char *out, size_t size)
{
    char digits[64];
    size_t n = 0;
    out[0] = '\0';
    if (!in) return;
    for (; *in && n + 1 < sizeof digits; in++)
        if (isdigit((unsigned char)*in)) digits[n++] = *in;
    digits[n] = '\0';
    const char *d = digits;
    const char *cc = H->setting(crmp_self, "phone.country_code");
    if (d[0] == '0' && d[1] == '0')
        d += 2; /* 0030 210… → 30 210… */
    else if (d[0] == '0' && cc && *cc) {
        snprintf(out, size, "%.4s%.24s", cc, d + 1); /* 0210… → 30210… */
        return;
    }
    if (strlen(d) >= 7) snprintf(out, size, "%.28s", d);
}

/* UTF-8 → code points, ASCII folded to lower case, non-letters as one space. */
static int decode_name(const char *s, uint32_t *out, int max)
{
    int n = 0;
    bool space = true;
    const unsigned char *p = (const unsigned char *)s;
    while (p && *p && n < max) {
        uint32_t c = *p;
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        if (len > 1) {
            c &= 0xFF >> (len + 1);
            for (int i = 1; i < len; i++) {
                if ((p[i] & 0xC0) != 0x80) {
                    len = i;
                    break;
                }
                c = (c << 6) | (p[i] & 0x3F);
            }
        }
        p += len;
        if (c < 0x80 && !isalnum((int)c)) {
            if (!space) out[n++] = ' ', space = true;
            continue;
        }
        out[n++] = c < 0x80 ? (uint32_t)tolower((int)c) : c;
        space = false;
    }
    if (n && out[n - 1] == ' ') n--;
    return n;
}

/* The name's tokens in sorted order, so "Smith John" matches "John Smith". */
static int sorted_tokens(const uint32_t *in, int n, uint32_t *out)
{
    int starts[NAME_MAX_CP], lens[NAME_MAX_CP], k = 0;
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && in[j] != ' ')
            j++;
        starts[k] = i;
        lens[k++] = j - i;
        i = j + 1;
    }
    for (int a = 1; a < k; a++) /* insertion sort: a name has a few tokens */
        for (int b = a; b > 0; b--) {
            int s1 = starts[b - 1], s2 = starts[b], l1 = lens[b - 1], l2 = lens[b], c = 0;
            for (int i = 0; i < l1 && i < l2 && !c; i++)
                c = in[s1 + i] < in[s2 + i] ? -1 : in[s1 + i] > in[s2 + i];
            if (c < 0 || (c == 0 && l1 <= l2)) break;
            starts[b - 1] = s2, starts[b] = s1, lens[b - 1] = l2, lens[b] = l1;
        }
    int m = 0;
    for (int t = 0; t < k; t++) {
        if (t) out[m++] = ' ';
        memcpy(out + m, in + starts[t], (size_t)lens[t] * sizeof *out);
        m += lens[t];
    }
    return m;
}

static double similarity(const uint32_t *a, int n, const uint32_t *b, int m)
{
    int prev[NAME_MAX_CP + 1], cur[NAME_MAX_CP + 1];
    int longest = n > m ? n : m;
    if (!longest) return 0;
    for (int j = 0; j <= m; j++)
        prev[j] = j;
    for (int i = 1; i <= n; i++) {
        cur[0] = i;
        for (int j = 1; j <= m; j++) {
            int best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < best) best = prev[j] + 1;
            if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
            cur[j] = best;
        }
        memcpy(prev, cur, (size_t)(m + 1) * sizeof *prev);
    }
    return 1.0 - (double)prev[m] / (double)longest;
}

/* Union-find over candidate indexes. */
static int find_root(int *parent, int i)
{
    while (parent[i] != i)
        i = parent[i] = parent[parent[i]];
    return i;
}

struct dup_state {
    struct candidate *c;
    int n, cap;
    const char *type;
};

static int collect_candidate(json_t *record, void *arg)
{
    struct dup_state *st = arg;
    if (st->n >= DUP_MAX_RECORDS)
        return H->error_set(CRM_ELIMIT, "type", "more than %d %s records: filter them first",
                            DUP_MAX_RECORDS, st->type);
    if (st->n == st->cap) {
        int cap = st->cap ? st->cap * 2 : 256;
        struct candidate *c = realloc(st->c, (size_t)cap * sizeof *c);
        if (!c) return H->error_set(CRM_EINTERNAL, NULL, "out of memory");
        st->c = c;
        st->cap = cap;
    }
    struct candidate *c = &st->c[st->n++];
    char name[512];
    uint32_t raw[NAME_MAX_CP];
    c->id = (int64_t)json_integer_value(json_object_get(record, "id"));
    c->record = record;
    normalise_email(json_string_value(json_object_get(record, "email")), c->email, sizeof c->email);
    normalise_phone(json_string_value(json_object_get(record, "phone")), c->phone, sizeof c->phone);
    if (!c->phone[0])
        normalise_phone(json_string_value(json_object_get(record, "mobile")), c->phone,
                        sizeof c->phone);
    const char *first = json_string_value(json_object_get(record, "first_name"));
    const char *last = json_string_value(json_object_get(record, "last_name"));
    const char *whole = json_string_value(json_object_get(record, "name"));
    snprintf(name, sizeof name, "%s %s", whole ? whole : first ? first : "", whole ? "" : last ? last : "");
    int n = decode_name(name, raw, NAME_MAX_CP);
    c->name_len = sorted_tokens(raw, n, c->name);
    return CRM_OK;
}

static void add_reason(json_t *reasons, const char *reason)
{
    size_t i;
    json_t *v;
    json_array_foreach(reasons, i, v) if (strcmp(json_string_value(v), reason) == 0) return;
    json_array_append_new(reasons, json_string(reason));
}

/* GET /duplicates?type=crm.contact&threshold=0.85 */
static int duplicates_route(crm_req *req, void *udata)
{
    (void)udata;
    const char *type = mergeable_type(H->req_query(req, "type"));
    const char *threshold_text = H->req_query(req, "threshold");
    double threshold = 0.85;
    struct dup_state st = {.type = type};
    json_t *page = NULL, *filter = NULL, *edges = NULL, *groups = NULL, *by_key = NULL;
    int *parent = NULL, rc;
    if (!type)
        return H->error_set(CRM_EINVALID, "type", "type must be crm.contact, crm.company or crm.lead");
    if (threshold_text) {
        char *end;
        threshold = strtod(threshold_text, &end);
        if (*end || end == threshold_text || threshold < 0.5 || threshold > 1.0)
            return H->error_set(CRM_EINVALID, "threshold", "threshold must be from 0.5 to 1");
    }
    /* The records stay in `page` (borrowed by the candidates) */
    edges = json_object();
    page = json_array();
    filter = json_pack("{s:i}", "limit", 1000);
    {
        json_t *q = json_deep_copy(filter), *p = NULL;
        for (;;) {
            if ((rc = H->record_find(H->req_ctx(req), type, q, &p)) != CRM_OK) break;
            json_array_extend(page, json_object_get(p, "data"));
            json_t *next = json_object_get(p, "next");
            if (!json_is_string(next) || json_array_size(page) > DUP_MAX_RECORDS) break;
            json_object_set(q, "cursor", next);
            json_decref(p);
            p = NULL;
        }
        json_decref(p);
        json_decref(q);
        if (rc != CRM_OK) goto done;
    }
    size_t i;
    json_t *record;
    json_array_foreach(page, i, record) if ((rc = collect_candidate(record, &st)) != CRM_OK) goto done;

    if (!(parent = malloc((size_t)(st.n ? st.n : 1) * sizeof *parent))) {
        rc = H->error_set(CRM_EINTERNAL, NULL, "out of memory");
        goto done;
    }
    for (int k = 0; k < st.n; k++)
        parent[k] = k;
    /* edges: "a:b" → [reasons], a < b being candidate indexes */
    by_key = json_object();
#define LINK(a, b, reason)                                                                       \
    do {                                                                                         \
        char ek[32];                                                                             \
        int x_ = (a) < (b) ? (a) : (b), y_ = (a) < (b) ? (b) : (a);                               \
        snprintf(ek, sizeof ek, "%d:%d", x_, y_);                                                \
        json_t *r_ = json_object_get(edges, ek);                                                 \
        if (!r_) json_object_set_new(edges, ek, r_ = json_array());                              \
        add_reason(r_, reason);                                                                  \
        parent[find_root(parent, x_)] = find_root(parent, y_);                                   \
    } while (0)
    for (int k = 0; k < st.n; k++) {
        char key[300];
        json_t *seen;
        if (st.c[k].email[0]) {
            snprintf(key, sizeof key, "e:%s", st.c[k].email);
            if ((seen = json_object_get(by_key, key)))
                LINK((int)json_integer_value(seen), k, "email");
            else
                json_object_set_new(by_key, key, json_integer(k));
        }
        if (st.c[k].phone[0]) {
            snprintf(key, sizeof key, "p:%s", st.c[k].phone);
            if ((seen = json_object_get(by_key, key)))
                LINK((int)json_integer_value(seen), k, "phone");
            else
                json_object_set_new(by_key, key, json_integer(k));
        }
    }
    for (int a = 0; a < st.n; a++) {
        const struct candidate *x = &st.c[a];
        if (x->name_len < 4) continue;
        for (int b = a + 1; b < st.n; b++) {
            const struct candidate *y = &st.c[b];
            if (y->name_len < 4) continue;
            if (st.n > DUP_ALL_PAIRS && x->name[0] != y->name[0]) continue;
            int longer = x->name_len > y->name_len ? x->name_len : y->name_len;
            int diff = abs(x->name_len - y->name_len);
            if ((double)diff > (1.0 - threshold) * longer) continue; /* ratio cannot reach it */
            if (similarity(x->name, x->name_len, y->name, y->name_len) >= threshold)
                LINK(a, b, "name");
        }
    }
#undef LINK
    /* Groups: candidates sharing a root, with the reasons of their edges */
    json_t *by_root = json_object();
    const char *ek;
    json_t *reasons;
    json_object_foreach(edges, ek, reasons)
    {
        int a, b;
        char rk[16];
        if (sscanf(ek, "%d:%d", &a, &b) != 2) continue;
        snprintf(rk, sizeof rk, "%d", find_root(parent, a));
        json_t *g = json_object_get(by_root, rk);
        if (!g) {
            g = json_pack("{s:[],s:[],s:{}}", "records", "reasons", "_members");
            json_object_set_new(by_root, rk, g);
        }
        size_t j;
        json_t *r;
        json_array_foreach(reasons, j, r) add_reason(json_object_get(g, "reasons"), json_string_value(r));
        int ends[2] = {a, b};
        for (int e = 0; e < 2; e++) {
            char mk[16];
            snprintf(mk, sizeof mk, "%d", ends[e]);
            if (json_object_get(json_object_get(g, "_members"), mk)) continue;
            json_object_set_new(json_object_get(g, "_members"), mk, json_true());
            const struct candidate *c = &st.c[ends[e]];
            json_t *shown = json_pack("{s:I}", "id", (json_int_t)c->id);
            const char *fields[] = {"name", "first_name", "last_name", "email", "phone", "mobile"};
            for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
                json_t *v = json_object_get(c->record, fields[f]);
                if (v && !json_is_null(v)) json_object_set(shown, fields[f], v);
            }
            json_array_append_new(json_object_get(g, "records"), shown);
        }
    }
    groups = json_array();
    const char *rk;
    json_t *g;
    json_object_foreach(by_root, rk, g)
    {
        json_object_del(g, "_members");
        json_array_append(groups, g);
    }
    json_decref(by_root);
    rc = H->reply_json(req, 200,
                       json_pack("{s:s,s:i,s:f,s:O}", "type", type, "checked", st.n, "threshold",
                                 threshold, "groups", groups));
done:
    free(st.c);
    free(parent);
    json_decref(page);
    json_decref(filter);
    json_decref(edges);
    json_decref(groups);
    json_decref(by_key);
    return rc;
}

/* ======================================================================= */
/* ---- Merge ------------------------------------------------------------- */
/* ======================================================================= */

/* One merge: what the route checked, and what the transaction did. */
struct merge {
    const char *type;
    int64_t keep;
    json_t *merge;     /* [ids], borrowed from the request */
    int repointed;
    json_t *filled;    /* field names copied into the kept record */
    json_t *conflicts; /* field → {kept, merged_id, merged} */
};

struct repoint {
    crm_ctx *ctx;
    int64_t keep;
    int count;
};

static int repoint_one(const char *type, const char *field, json_t *record, void *arg)
{
    struct repoint *rp = arg;
    int64_t id = (int64_t)json_integer_value(json_object_get(record, "id"));
    json_t *patch = json_pack("{s:I}", field, (json_int_t)rp->keep);
    int rc = H->record_update(rp->ctx, type, id, patch, NULL);
    json_decref(patch);
    if (rc == CRM_OK) rp->count++;
    return rc;
}

/* As the system (host->as_system): every reference to a merged record, in every type,
 * now names the kept one. The schema is read as the system too, so no type is missed. */
static int repoint_all(crm_ctx *sys, void *arg)
{
    struct merge *m = arg;
    struct repoint rp = {sys, m->keep, 0};
    json_t *types = NULL, *v;
    size_t i;
    int rc = H->types(sys, &types);
    json_array_foreach(m->merge, i, v) {
        if (rc != CRM_OK) break;
        rc = walk_refs(sys, types, m->type, (int64_t)json_integer_value(v), repoint_one, &rp);
    }
    json_decref(types);
    m->repointed = rp.count;
    return rc;
}

static bool empty_value(json_t *v)
{
    return !v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v));
}

/* In host->tx, with the caller's context: the merged records' values, their deletion, the
 * references (as the system), the kept record, the note and the fact. */
static int merge_records(crm_ctx *ctx, void *arg)
{
    struct merge *m = arg;
    json_t *kept = NULL, *patch = json_object(), *payload = NULL, *v;
    char note[600];
    size_t used = 0, i;
    int rc;
    if ((rc = H->record_get(ctx, m->type, m->keep, &kept)) != CRM_OK) goto done;
    used += (size_t)snprintf(note, sizeof note, "Merged into this record:");
    json_array_foreach(m->merge, i, v) {
        int64_t id = (int64_t)json_integer_value(v);
        json_t *merged = NULL;
        if ((rc = H->record_get(ctx, m->type, id, &merged)) != CRM_OK) goto done;
        /* Nothing lost: fields empty on the kept record come from the merged one (the
         * first merged record wins); differing values are reported, and stay in the
         * merged record, which is soft-deleted with its history. */
        const char *key;
        json_t *value;
        json_object_foreach(merged, key, value) {
            if (is_system_field(key) || empty_value(value)) continue;
            json_t *ours = json_object_get(patch, key) ? json_object_get(patch, key)
                                                       : json_object_get(kept, key);
            if (empty_value(ours)) {
                json_object_set(patch, key, value);
                json_array_append_new(m->filled, json_string(key));
            } else if (!json_equal(ours, value) && !json_object_get(m->conflicts, key)) {
                json_object_set_new(m->conflicts, key,
                                    json_pack("{s:O,s:I,s:O}", "kept", ours, "merged_id",
                                              (json_int_t)id, "merged", value));
            }
        }
        json_decref(merged);
        /* the caller's permission to delete it decides whether the merge may happen */
        if ((rc = H->record_delete(ctx, m->type, id)) != CRM_OK) goto done;
        if (used < sizeof note)
            used += (size_t)snprintf(note + used, sizeof note - used, " %s #%lld", m->type,
                                     (long long)id);
    }
    if ((rc = H->as_system(ctx, repoint_all, m)) != CRM_OK) goto done;
    /* After the deletes, so a unique value moving over meets no live twin. */
    if (json_object_size(patch) &&
        (rc = H->record_update(ctx, m->type, m->keep, patch, NULL)) != CRM_OK)
        goto done;
    if ((rc = crmp_log_activity(ctx, m->type, m->keep, "Records merged", note)) != CRM_OK)
        goto done;
    payload = json_pack("{s:s,s:I,s:O,s:I,s:i}", "type", m->type, "keep", (json_int_t)m->keep,
                        "merged", m->merge, "by", (json_int_t)H->ctx_user(ctx),
                        "references_repointed", m->repointed);
    if ((rc = H->emit(ctx, "crm.records_merged", payload)) != CRM_OK) goto done;
    H->log(crmp_self, CRM_INFO, "merge by user %lld: %s", (long long)H->ctx_user(ctx), note);
done:
    json_decref(kept);
    json_decref(patch);
    json_decref(payload);
    return rc;
}

/* POST /merge {"type", "keep", "merge": [ids]} */
static int merge_route(crm_req *req, void *udata)
{
    (void)udata;
    crm_ctx *ctx = H->req_ctx(req);
    json_t *body = H->req_json(req), *record = NULL;
    int64_t keep, id;
    size_t i, j;
    json_t *v;
    int rc;
    if (!json_is_object(body))
        return H->error_set(CRM_EINVALID, NULL,
                            "the body must be {\"type\": ..., \"keep\": id, \"merge\": [ids]}");
    const char *type = mergeable_type(json_string_value(json_object_get(body, "type")));
    json_t *merge = json_object_get(body, "merge");
    if (!type)
        return H->error_set(CRM_EINVALID, "type", "type must be crm.contact, crm.company or crm.lead");
    if (!crmp_json_id(json_object_get(body, "keep"), &keep))
        return H->error_set(CRM_EINVALID, "keep", "keep must be the id of the record to keep");
    if (!json_is_array(merge) || !json_array_size(merge) || json_array_size(merge) > MERGE_MAX)
        return H->error_set(CRM_EINVALID, "merge", "merge must list 1 to %d record ids", MERGE_MAX);
    json_array_foreach(merge, i, v)
    {
        if (!crmp_json_id(v, &id) || id == keep)
            return H->error_set(CRM_EINVALID, "merge",
                                "merge must list ids of records other than keep");
        for (j = 0; j < i; j++)
            if (json_equal(json_array_get(merge, j), v))
                return H->error_set(CRM_EINVALID, "merge", "merge lists %lld twice", (long long)id);
    }
    /* Every record must exist before anything is written: 404 naming the one missing */
    for (i = 0; i <= json_array_size(merge); i++) {
        id = i ? (int64_t)json_integer_value(json_array_get(merge, i - 1)) : keep;
        if ((rc = H->record_get(ctx, type, id, &record)) != CRM_OK)
            return H->error_set(rc, i ? "merge" : "keep", "%s %lld: %s", type, (long long)id,
                                H->error_last()->message);
        json_decref(record);
        record = NULL;
    }
    struct merge m = {type, keep, merge, 0, json_array(), json_object()};
    if ((rc = H->tx(ctx, merge_records, &m)) != CRM_OK) goto done;
    if ((rc = H->record_get(ctx, type, keep, &record)) != CRM_OK) goto done;
    rc = H->reply_json(req, 200,
                       json_pack("{s:o,s:O,s:i,s:O,s:O}", "record", record, "merged", merge,
                                 "references_repointed", m.repointed, "filled", m.filled,
                                 "conflicts", m.conflicts));
done:
    json_decref(m.filled);
    json_decref(m.conflicts);
    return rc;
}

/* ======================================================================= */
/* ---- GDPR -------------------------------------------------------------- */
/* ======================================================================= */

static json_t *history_address(const char *type, int64_t id)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/records/%s/%lld/history", type, (long long)id);
    return json_string(path);
}

struct export {
    crm_ctx *ctx;
    json_t *types;   /* host->types */
    json_t *related; /* type → [records] */
    json_t *history; /* [addresses] */
    json_t *seen;    /* "type:id" → true */
};

static int export_add(const char *type, const char *field, json_t *record, void *arg)
{
    struct export *ex = arg;
    int64_t id = (int64_t)json_integer_value(json_object_get(record, "id"));
    char key[96];
    snprintf(key, sizeof key, "%s:%lld", type, (long long)id);
    if (json_object_get(ex->seen, key)) return CRM_OK;
    json_object_set_new(ex->seen, key, json_true());
    json_t *list = json_object_get(ex->related, type);
    if (!list) json_object_set_new(ex->related, type, list = json_array());
    json_array_append(list, record);
    json_array_append_new(ex->history, history_address(type, id));
    /* What hangs off the person's tickets, deals and leads is about them too (one level:
     * what hangs off an activity is not looked for). */
    if (strcmp(field, "related_id") != 0)
        return walk_related(ex->ctx, ex->types, type, id, export_add, ex);
    return CRM_OK;
}

/* GET /gdpr/{contact_id}/export */
static int export_route(crm_req *req, void *udata)
{
    (void)udata;
    crm_ctx *ctx = H->req_ctx(req);
    struct export ex = {.ctx = ctx, .related = json_object(), .history = json_array(),
                        .seen = json_object()};
    json_t *contact = NULL, *company = NULL, *payload = NULL, *history = NULL;
    int64_t id, company_id;
    int rc;
    if ((rc = crmp_id_param(req, "contact_id", &id)) != CRM_OK) goto done;
    if ((rc = H->record_get(ctx, "crm.contact", id, &contact)) != CRM_OK) goto done;
    if ((rc = H->record_history(ctx, "crm.contact", id, &history)) != CRM_OK) goto done;
    if ((rc = H->types(ctx, &ex.types)) != CRM_OK) goto done;
    json_array_append_new(ex.history, history_address("crm.contact", id));
    if (crmp_json_id(json_object_get(contact, "company"), &company_id))
        H->record_get(ctx, "crm.company", company_id, &company); /* may be gone: then null */
    if ((rc = walk_refs(ctx, ex.types, "crm.contact", id, export_add, &ex)) != CRM_OK) goto done;
    payload = json_pack("{s:I,s:I}", "contact", (json_int_t)id, "by", (json_int_t)H->ctx_user(ctx));
    if ((rc = H->emit(ctx, "crm.gdpr_exported", payload)) != CRM_OK) goto done;
    H->log(crmp_self, CRM_INFO, "GDPR export of crm.contact %lld by user %lld", (long long)id,
           (long long)H->ctx_user(ctx));
    rc = H->reply_json(
        req, 200,
        json_pack("{s:s,s:I,s:O,s:o,s:O,s:O,s:O,s:s}", "format", "crm.gdpr_export/1",
                  "contact_id", (json_int_t)id, "contact", contact, "company",
                  company ? company : json_null(), "contact_history", history, "related",
                  ex.related, "history", ex.history, "history_note",
                  "contact_history is the contact's change history (who, when, old and new "
                  "values); each address in history answers that of one record"));
    company = NULL;
done:
    json_decref(history);
    json_decref(ex.types);
    json_decref(contact);
    json_decref(company);
    json_decref(payload);
    json_decref(ex.related);
    json_decref(ex.history);
    json_decref(ex.seen);
    return rc;
}

/* What erasing a person does to each type: fields nulled, and text fields replaced. */
static const struct erase_rule {
    const char *type;
    const char *const nulls[12];
    const char *const texts[4]; /* set to "[erased]" (required text fields) */
} erase_rules[] = {
    {"crm.contact",
     {"last_name", "email", "phone", "mobile", "job_title", "birthday", "language", "city",
      "notes", "consent_updated_at", NULL},
     {NULL}},
    {"crm.lead", {"last_name", "email", "phone", "website", "job_title", "message", NULL},
     {"first_name", NULL}},
    {"crm.message", {"cc", "body", NULL}, {"subject", NULL}},
    {"crm.ticket", {"description", "satisfaction_comment", NULL}, {"subject", NULL}},
    {"crm.activity", {"body", NULL}, {"subject", NULL}},
    {"crm.task", {"description", NULL}, {"title", NULL}},
};

/*
 * The old values of the fields an erase just changed also live in the record's
 * history and events, that update's own included: forget them there too.
 */
static int forget_patched(crm_ctx *ctx, const char *type, int64_t id, json_t *patch)
{
    json_t *fields = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(patch, key, v) json_array_append_new(fields, json_string(key));
    int rc = H->record_forget(ctx, type, id, fields);
    json_decref(fields);
    return rc;
}

struct erase {
    crm_ctx *ctx;
    int64_t contact;
    json_t *types;  /* host->types */
    json_t *counts; /* type → n */
};

static int erase_one(const char *type, const char *field, json_t *record, void *arg)
{
    (void)field;
    struct erase *er = arg;
    int64_t id = (int64_t)json_integer_value(json_object_get(record, "id"));
    json_t *patch = json_object();
    int rc = CRM_OK;
    for (size_t i = 0; i < sizeof erase_rules / sizeof erase_rules[0]; i++) {
        if (strcmp(erase_rules[i].type, type) != 0) continue;
        for (const char *const *f = erase_rules[i].nulls; *f; f++)
            if (!empty_value(json_object_get(record, *f))) json_object_set_new(patch, *f, json_null());
        for (const char *const *f = erase_rules[i].texts; *f; f++)
            if (!empty_value(json_object_get(record, *f)))
                json_object_set_new(patch, *f, json_string("[erased]"));
    }
    if (strcmp(type, "crm.message") == 0) /* the address is the person; keep the row valid */
        json_object_set_new(patch, "to", json_string("erased@erased.invalid"));
    if (strcmp(type, "crm.activity") == 0 && strcmp(field, "related_id") == 0 &&
        json_is_string(json_object_get(record, "subject")) &&
        strncmp(json_string_value(json_object_get(record, "subject")), "GDPR", 4) == 0)
        json_object_clear(patch); /* keep earlier erase notes: they are the audit trail */
    if (json_object_size(patch)) {
        rc = H->record_update(er->ctx, type, id, patch, NULL);
        if (rc == CRM_OK) rc = forget_patched(er->ctx, type, id, patch);
        if (rc == CRM_OK) {
            json_t *n = json_object_get(er->counts, type);
            json_object_set_new(er->counts, type, json_integer(json_integer_value(n) + 1));
        }
    }
    json_decref(patch);
    return rc;
}

/* Erase walks what hangs off the person's tickets and leads too (their own words). */
static int erase_deep(const char *type, const char *field, json_t *record, void *arg)
{
    struct erase *er = arg;
    int rc = erase_one(type, field, record, arg);
    if (rc != CRM_OK) return rc;
    if (strcmp(type, "crm.ticket") && strcmp(type, "crm.lead")) return CRM_OK;
    return walk_related(er->ctx, er->types, type,
                        (int64_t)json_integer_value(json_object_get(record, "id")), erase_one, er);
}

/* In host->tx: anonymise the person, keep the numbers; the fact crm.gdpr_erased with it. */
static int erase_person(crm_ctx *ctx, void *arg)
{
    struct erase *er = arg;
    int64_t id = er->contact;
    json_t *contact = NULL, *payload = NULL;
    int rc;
    char note[200];
    if ((rc = H->record_get(ctx, "crm.contact", id, &contact)) != CRM_OK) goto done;
    if ((rc = H->types(ctx, &er->types)) != CRM_OK) goto done;
    /* Related records first: the walk finds them by the contact's id, which stays. */
    if ((rc = walk_refs(ctx, er->types, "crm.contact", id, erase_deep, er)) != CRM_OK) goto done;
    json_t *patch = json_pack("{s:s,s:b,s:b,s:b,s:s}", "first_name", "Erased", "consent_email", 0,
                              "consent_sms", 0, "consent_phone", 0, "preferred_channel", "none");
    char last[32];
    snprintf(last, sizeof last, "#%lld", (long long)id);
    json_object_set_new(patch, "last_name", json_string(last));
    for (const char *const *f = erase_rules[0].nulls; *f; f++)
        if (strcmp(*f, "last_name") && !empty_value(json_object_get(contact, *f)))
            json_object_set_new(patch, *f, json_null());
    rc = H->record_update(ctx, "crm.contact", id, patch, NULL);
    if (rc == CRM_OK) rc = forget_patched(ctx, "crm.contact", id, patch);
    json_decref(patch);
    if (rc != CRM_OK) goto done;
    json_object_set_new(er->counts, "crm.contact", json_integer(1));
    snprintf(note, sizeof note, "Personal data erased by user %lld (GDPR art. 17).",
             (long long)H->ctx_user(ctx));
    if ((rc = crmp_log_activity(ctx, "crm.contact", id, "GDPR erase", note)) != CRM_OK) goto done;
    /* who and which contact, never personal data: the event outlives the erase */
    payload = json_pack("{s:I,s:I,s:O}", "contact", (json_int_t)id, "by",
                        (json_int_t)H->ctx_user(ctx), "anonymised", er->counts);
    if ((rc = H->emit(ctx, "crm.gdpr_erased", payload)) != CRM_OK) goto done;
    H->log(crmp_self, CRM_INFO, "GDPR erase of crm.contact %lld by user %lld", (long long)id,
           (long long)H->ctx_user(ctx));
done:
    json_decref(contact);
    json_decref(payload);
    return rc;
}

/* POST /gdpr/{contact_id}/erase */
static int erase_route(crm_req *req, void *udata)
{
    (void)udata;
    struct erase er = {.ctx = H->req_ctx(req), .counts = json_object()};
    int rc;
    if ((rc = crmp_id_param(req, "contact_id", &er.contact)) != CRM_OK) goto done;
    if ((rc = H->tx(er.ctx, erase_person, &er)) != CRM_OK) goto done;
    rc = H->reply_json(req, 200,
                       json_pack("{s:I,s:O,s:s}", "contact", (json_int_t)er.contact, "anonymised",
                                 er.counts, "note",
                                 "deal amounts, ticket and message counts, dates and "
                                 "satisfaction scores are kept; the old values are [erased] in "
                                 "the change history and events too, but events already "
                                 "delivered to webhooks cannot be recalled"));
done:
    json_decref(er.types);
    json_decref(er.counts);
    return rc;
}

int crmp_quality_init(void)
{
    int rc;
    if ((rc = H->route(crmp_self, "GET", "/duplicates", 0, duplicates_route, NULL)) ||
        /* not admin-only: the caller's update and delete permissions decide (merge_records) */
        (rc = H->route(crmp_self, "POST", "/merge", 0, merge_route, NULL)) ||
        (rc = H->route(crmp_self, "GET", "/gdpr/{contact_id}/export", CRM_ADMIN_ONLY,
                       export_route, NULL)) ||
        (rc = H->route(crmp_self, "POST", "/gdpr/{contact_id}/erase", CRM_ADMIN_ONLY,
                       erase_route, NULL)))
        return rc;
    return CRM_OK;
}
