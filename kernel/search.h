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
 * Ranked, but bounded. Per type, a search looks at no more than
 * 2 × CRM_SEARCH_WINDOW candidates, in two tiers:
 *   1. whole words: rows where every word of q is a whole word of a readable
 *      searchable field ("smith" finds "Smith", not "Smithers"), the newest
 *      CRM_SEARCH_WINDOW of them (by id);
 *   2. prefixes, only when tier 1 found fewer than `limit` hits over all the
 *      types: rows where every word starts a word ("smi" finds both), the
 *      newest CRM_SEARCH_WINDOW of them.
 * Every whole-word hit ranks before every prefix-only hit, so a complete
 * word finds its record first even when thousands of newer records merely
 * start with it. Within a tier, candidates are ranked by a BM25 score of
 * their indexed text (search.c says why not FTS5's bm25()): more occurrences
 * of the words and shorter text rank first; ties go to the newest.
 * A query matching no more than the window in a tier is fully ranked; an
 * unselective one ("jo" on a million contacts) ranks only its newest
 * matches, and *more says so: adding a word narrows it. A scoped
 * ("own"/"team") principal sees the in-scope rows among those newest matches.
 * What is not bounded is FTS5's own work to read a word's list of matches:
 * ~0.2 ms for a 3-letter prefix matching 16k of 1M contacts, ~4 ms for one
 * matching all of them (an e-mail domain); the window itself costs ~1 µs per
 * candidate (its indexed text is read and scored) plus the `limit` records
 * returned.
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
#define CRM_SEARCH_WINDOW 128     /* newest matches ranked per type and tier, at most */
#define CRM_SEARCH_MAX_TYPES 64   /* names in `types` */

/*
 * Search `q` in `types` (ntypes names; ntypes 0: every searchable type the
 * principal may read), best `limit` (0: CRM_SEARCH_DEFAULT_LIMIT) results
 * over all types, ordered by rank. *out is a new array of
 *   {"type","id","title","rank","record"}
 * where rank is lower for better hits: in (-2, -1] for whole-word hits, in
 * (-1, 0] for prefix-only ones (see above); title the value of the type's
 * title field (null when the principal may not read it) and record the record
 * as crm_record_get would return it. *more (may be NULL) is true when matches
 * may exist beyond the answer: it was cut at `limit`, or a tier's window was
 * full, or tier 2 was not needed.
 * Errors: CRM_EINVALID naming "q" (missing, no word in it, too long, not
 * UTF-8), "limit" (outside 1..100) or "types" (unknown — or unreadable, which
 * answers the same — or not searchable).
 * A query whose words are all one letter long finds nothing (not an error).
 */
int crm_search(crm_ctx *ctx, const char *q, const char *const *types, int ntypes, int limit,
               json_t **out, bool *more);

/*
 * The same search answered as JSON text, {"data":[hits as above],"more":b}, written
 * straight from the rows (the HTTP answer): *out malloc'd, *len its length.
 * Errors: as crm_search.
 */
int crm_search_text(crm_ctx *ctx, const char *q, const char *const *types, int ntypes, int limit,
                    char **out, size_t *len);

/*
 * The FTS5 match expression for `q` without column filter, e.g.
 *   "smi"* AND "jo"*
 * into a malloc'd *out; *out is NULL (and CRM_OK returned) when q has words
 * but all too short to search. Errors: as crm_search for "q". For tests.
 */
int crm_search__expr(const char *q, char **out);

#endif
