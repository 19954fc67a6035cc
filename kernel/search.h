/*
 * search.h — full-text search over the searchable fields of record types
 * (FTS5, one index per type: schema.c builds it, record.c keeps it in step).
 *
 * What a user types is never handed to FTS5's query language: the text is
 * split into words (runs of letters, digits and combining marks), each word
 * becomes a quoted prefix phrase ("smi"*), and the phrases are ANDed. Quotes,
 * NEAR(, *, ^, ":" column filters and the like are plain separators. Words of
 * one letter are dropped (a one-letter prefix would touch most of the index),
 * except a single CJK / kana / Hangul character, which is a word of its own.
 *
 * Permissions are those of the record layer: only types the principal may
 * read, only rows within their read scope, and only fields they may read —
 * a hidden searchable field is excluded from matching with an FTS5 column
 * filter, so a search can never reveal what a hidden field holds.
 *
 * Cost is bounded: per type, one FTS5 query reads the newest
 * CRM_SEARCH_WINDOW matches (rowid order, newest first), joins them with the
 * live rows in the read scope, and bm25-ranks what remains; the best `limit`
 * over all types are kept. A query matching fewer rows than the window is
 * fully ranked; an unselective one ("jo" on a million contacts) ranks only
 * its newest matches — adding a word narrows it. A scoped ("own"/"team")
 * principal sees the in-scope rows among those newest matches.
 * What is not bounded is FTS5's own per-query work proportional to the
 * number of matches: building a prefix doclist (a word of 4+ characters is
 * past the prefix='2 3' indexes) and bm25's document frequencies — about
 * 0.15 µs per matching row measured here, so ~1.5 ms for a word matching 10k
 * rows and ~15 ms for one matching 100k; the window itself costs ~2 ms
 * (1024 bm25 scores and primary-key reads). Expect p99 of a few ms on 1M
 * contacts for name-like queries (a word matching ≤ 1% of the rows).
 *
 * Tokenizer notes (unicode61 remove_diacritics 2, measured on SQLite 3.40):
 *   - Latin, Cyrillic, Persian/Arabic (unpointed), Hebrew (unpointed):
 *     case-insensitive prefix matching of each word; Latin accents are
 *     folded ("jose" finds "José", "mull" finds "Müller").
 *   - Greek: case is folded but accents (tonos) are not: "ωμέγα" finds
 *     "Ωμέγα", "ωμεγα" does not; "Παπαδ" finds "Παπαδόπουλος".
 *   - Hebrew / Arabic with vowel points: points are separators in the index,
 *     so a pointed word matches only the same pointing (unpointed names, the
 *     common case, work).
 *   - Chinese / Japanese: unicode61 does not segment: a run of Han characters
 *     is one token, so "张" and "张伟" find "张伟 王芳" (prefix of a run) but
 *     "王" finds "王芳" only where it starts a run (after a space).
 */
#ifndef CRM_SEARCH_H
#define CRM_SEARCH_H

#include "kernel.h"

#define CRM_SEARCH_DEFAULT_LIMIT 20
#define CRM_SEARCH_MAX_LIMIT 100
#define CRM_SEARCH_MAX_QUERY 1024 /* bytes of q */
#define CRM_SEARCH_MAX_WORDS 16   /* words beyond this are ignored */
#define CRM_SEARCH_WINDOW 1024    /* newest matches ranked per type, at most */
#define CRM_SEARCH_MAX_TYPES 64   /* names in `types` */

/*
 * Search `q` in `types` (ntypes names; ntypes 0: every searchable type the
 * principal may read), best `limit` (0: CRM_SEARCH_DEFAULT_LIMIT) results
 * over all types, ordered by rank. *out is a new array of
 *   {"type","id","title","rank","record"}
 * where rank is FTS5's bm25 (lower is better), title the value of the type's
 * title field (null when the principal may not read it) and record the record
 * as crm_record_get would return it.
 * Errors: CRM_EINVALID naming "q" (missing, no word in it, too long, not
 * UTF-8), "limit" (outside 1..100) or "types" (unknown — or unreadable, which
 * answers the same — or not searchable).
 * A query whose words are all one letter long finds nothing (not an error).
 */
int crm_search(crm_ctx *ctx, const char *q, const char *const *types, int ntypes, int limit,
               json_t **out);

/*
 * The FTS5 match expression for `q` without column filter, e.g.
 *   "smi"* AND "jo"*
 * into a malloc'd *out; *out is NULL (and CRM_OK returned) when q has words
 * but all too short to search. Errors: as crm_search for "q". For tests.
 */
int crm_search__expr(const char *q, char **out);

#endif
