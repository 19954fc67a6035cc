/*
 * lock.h — plugins.lock in the data directory: for each plugin fetched from
 * git, the exact commit and the SHA-256 of the built .so (Cargo.lock, go.sum).
 * A start from the lock works offline; a .so whose hash differs is refused.
 *
 *   {"version": 1,
 *    "plugins": {"hotel": {"git": "...", "ref": "v1.2.0",
 *                          "commit": "<40 hex>", "so": "plugins/hotel/<commit>/hotel.so",
 *                          "so_sha256": "<64 hex>", "fetched_at": "2026-11-24T03:00:00Z"}}}
 *
 * "so" is relative to the data directory.
 */
#ifndef CRM_LOCK_H
#define CRM_LOCK_H

#include "util.h"

#include <jansson.h>

typedef struct crm_lock_entry {
    char *name, *git, *ref, *commit, *so, *so_sha256, *fetched_at;
} crm_lock_entry;

typedef struct crm_lock {
    char *path;
    crm_lock_entry *entries;
    int n;
} crm_lock;

/*
 * Read DATA_DIR/plugins.lock (an absent file is an empty lock). Errors:
 * CRM_EINVALID naming the entry and field when a commit is not 40 hex
 * characters ("main", "v1.2" refused), a so_sha256 not 64 hex, or the file
 * is not the format above.
 */
int crm_lock_load(const char *data_dir, crm_lock **out);
/* Write atomically (temp file + rename). */
int crm_lock_save(const crm_lock *lock);
void crm_lock_free(crm_lock *lock);
const crm_lock_entry *crm_lock_find(const crm_lock *lock, const char *name);
/* Add or replace an entry (strings copied). */
void crm_lock_put(crm_lock *lock, const crm_lock_entry *entry);
/* SHA-256 of a file as 64 lower-case hex characters into out[65]. */
int crm_sha256_file(const char *path, char out[65]);
/*
 * Whether the entry's .so (under data_dir) exists and has the locked hash.
 * Errors: CRM_EDENIED "plugin NAME: sha256 mismatch for FILE (lock A, file B)",
 * CRM_ENOTFOUND when the file is missing.
 */
int crm_lock_verify(const char *data_dir, const crm_lock_entry *entry);

#endif
