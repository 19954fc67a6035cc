/*
 * jtext.h — JSON text written straight into a crm_buf, byte for byte what
 * json_dumps(JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(p)) writes,
 * without Jansson's per-character callbacks: the hot replies (a record, a
 * list page) and every outbox payload go through here (json_dumps was 6–8% of
 * the CPU of a GET by id and of an import; perf, 1M contacts).
 */
#ifndef CRM_JTEXT_H
#define CRM_JTEXT_H

#include "util.h"
#include <jansson.h>
#include <stdbool.h>

/* s (n bytes) as a JSON string, escaped as Jansson escapes it. `check_utf8`:
   refuse (false, nothing written) text that is not valid UTF-8. */
bool crm_jtext_string(crm_buf *b, const char *s, size_t n, bool check_utf8);
void crm_jtext_int(crm_buf *b, int64_t v);
/* Significant digits of reals: Jansson's default (round trip), and the one of
   HTTP replies (a computed 69.49 prints as 69.49, not 69.489999999999995). */
#define CRM_JTEXT_EXACT 17
#define CRM_JTEXT_REPLY 15
/* A real as Jansson writes it ("69.49", "1.0", "1e20"). */
void crm_jtext_real(crm_buf *b, double v, int precision);
/* Any Jansson value. */
void crm_jtext_value(crm_buf *b, const json_t *v, int precision);
/* The text of v, malloc'd (free()); NULL only when v is NULL. */
char *crm_jtext_dumps(const json_t *v, int precision, size_t *len);

#endif
