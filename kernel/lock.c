/*
 * lock.c — plugins.lock: the pinned commit and the SHA-256 of the built .so
 * of every plugin fetched from git (see lock.h for the format).
 *
 * The lock is the one thing a start trusts when it runs offline, so loading
 * is strict (SECURITY P1): a commit that is not 40 hex characters ("main",
 * "v1.2") or a hash that is not 64 hex characters is an error that names the
 * plugin and the field, and the server refuses to start on it rather than
 * guess. Saving is atomic: a crash leaves either the old or the new file.
 */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_FILE    "plugins.lock"
#define LOCK_VERSION 1

static bool is_hex(const char *s, size_t n)
{
    if (!s || strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

/* "so" is joined to the data directory: it must stay inside it. */
static bool relative_path_ok(const char *s)
{
    const char *p = s;
    if (!*s || *s == '/' || strchr(s, '\\')) return false;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n;
        if (*p == '/') p++;
    }
    return true;
}

static void entry_clear(crm_lock_entry *e)
{
    free(e->name);
    free(e->git);
    free(e->ref);
    free(e->commit);
    free(e->so);
    free(e->so_sha256);
    free(e->fetched_at);
    memset(e, 0, sizeof *e);
}

static char *dup_or_null(const char *s)
{
    return s ? crm_strdup(s) : NULL;
}

/* A string member: required ones must be present, optional ones may be null. */
static int get_string(const char *path, const char *name, json_t *obj, const char *key,
                      bool required, char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (!required) return CRM_OK;
        return crm_error_set(CRM_EINVALID, key,
                             "%s: plugin \"%s\": missing \"%s\" (run \"crm plugin update %s\")",
                             path, name, key, name);
    }
    if (!json_is_string(v))
        return crm_error_set(CRM_EINVALID, key, "%s: plugin \"%s\": \"%s\" must be a string", path,
                             name, key);
    *out = crm_strdup(json_string_value(v));
    return CRM_OK;
}

static int parse_entry(const char *path, const char *name, json_t *obj, crm_lock_entry *e)
{
    int rc;

    memset(e, 0, sizeof *e);
    e->name = crm_strdup(name);
    if (!crm_ident_valid(name, 64))
        return crm_error_set(CRM_EINVALID, "name", "%s: plugin \"%s\": not a valid plugin name",
                             path, name);
    if (!json_is_object(obj))
        return crm_error_set(CRM_EINVALID, NULL, "%s: plugin \"%s\": entry must be an object", path,
                             name);
    if ((rc = get_string(path, name, obj, "git", true, &e->git)) < 0 ||
        (rc = get_string(path, name, obj, "ref", false, &e->ref)) < 0 ||
        (rc = get_string(path, name, obj, "commit", true, &e->commit)) < 0 ||
        (rc = get_string(path, name, obj, "so", true, &e->so)) < 0 ||
        (rc = get_string(path, name, obj, "so_sha256", true, &e->so_sha256)) < 0 ||
        (rc = get_string(path, name, obj, "fetched_at", false, &e->fetched_at)) < 0)
        return rc;
    if (!is_hex(e->commit, 40))
        return crm_error_set(CRM_EINVALID, "commit",
                             "%s: plugin \"%s\": commit \"%s\" is not a 40-hex commit id "
                             "(a lock pins exact commits, never a branch or tag; run \"crm "
                             "plugin update %s\")",
                             path, name, e->commit, name);
    if (!is_hex(e->so_sha256, 64))
        return crm_error_set(CRM_EINVALID, "so_sha256",
                             "%s: plugin \"%s\": so_sha256 \"%s\" is not 64 lower-case hex "
                             "characters (run \"crm plugin fetch %s\")",
                             path, name, e->so_sha256, name);
    if (!relative_path_ok(e->so))
        return crm_error_set(CRM_EINVALID, "so",
                             "%s: plugin \"%s\": so \"%s\" must be a path inside the data "
                             "directory",
                             path, name, e->so);
    return CRM_OK;
}

int crm_lock_load(const char *data_dir, crm_lock **out)
{
    crm_lock *lock = crm_calloc(1, sizeof *lock);
    json_error_t jerr;
    json_t *root = NULL, *plugins, *v, *entry;
    const char *key;
    int rc = CRM_OK;

    *out = NULL;
    lock->path = crm_sprintf("%s/%s", data_dir, LOCK_FILE);
    if (access(lock->path, F_OK) != 0 && errno == ENOENT) {
        *out = lock;
        return CRM_OK;
    }
    root = json_load_file(lock->path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = crm_error_set(CRM_EINVALID, NULL, "%s:%d: %s", lock->path, jerr.line, jerr.text);
        goto done;
    }
    v = json_object_get(root, "version");
    if (!json_is_object(root) || !json_is_integer(v) || json_integer_value(v) != LOCK_VERSION) {
        rc = crm_error_set(CRM_EINVALID, "version",
                           "%s: not a plugins.lock of version %d (expected {\"version\": 1, "
                           "\"plugins\": {...}})",
                           lock->path, LOCK_VERSION);
        goto done;
    }
    plugins = json_object_get(root, "plugins");
    if (plugins && !json_is_object(plugins)) {
        rc =
            crm_error_set(CRM_EINVALID, "plugins", "%s: \"plugins\" must be an object", lock->path);
        goto done;
    }
    lock->entries = crm_calloc(json_object_size(plugins) + 1, sizeof *lock->entries);
    json_object_foreach(plugins, key, entry)
    {
        crm_lock_entry *e = &lock->entries[lock->n++];
        if ((rc = parse_entry(lock->path, key, entry, e)) < 0) goto done;
    }

done:
    json_decref(root);
    if (rc < 0) {
        crm_lock_free(lock);
        return rc;
    }
    *out = lock;
    return CRM_OK;
}

static json_t *entry_json(const crm_lock_entry *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "git", json_string(e->git ? e->git : ""));
    json_object_set_new(o, "ref", e->ref ? json_string(e->ref) : json_null());
    json_object_set_new(o, "commit", json_string(e->commit ? e->commit : ""));
    json_object_set_new(o, "so", json_string(e->so ? e->so : ""));
    json_object_set_new(o, "so_sha256", json_string(e->so_sha256 ? e->so_sha256 : ""));
    if (e->fetched_at) json_object_set_new(o, "fetched_at", json_string(e->fetched_at));
    return o;
}

static int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Temp file in the same directory, fsync, rename over the old file, fsync the
 * directory: readers see the old lock or the new one, never half of either.
 */
int crm_lock_save(const crm_lock *lock)
{
    json_t *root = json_object(), *plugins = json_object();
    char *text = NULL, *tmp = crm_sprintf("%s.tmp.XXXXXX", lock->path), *dir_copy = NULL;
    int fd = -1, dfd = -1, rc = CRM_OK;

    json_object_set_new(root, "version", json_integer(LOCK_VERSION));
    for (int i = 0; i < lock->n; i++)
        json_object_set_new(plugins, lock->entries[i].name, entry_json(&lock->entries[i]));
    json_object_set_new(root, "plugins", plugins);
    text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);

    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = crm_error_set(CRM_EINTERNAL, NULL, "cannot write %s: %s", lock->path, strerror(errno));
        goto done;
    }
    if (write_all(fd, text, strlen(text)) < 0 || write_all(fd, "\n", 1) < 0 ||
        fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
        rc = crm_error_set(CRM_EINTERNAL, NULL, "cannot write %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = crm_error_set(CRM_EINTERNAL, NULL, "cannot write %s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp, lock->path) < 0) {
        rc = crm_error_set(CRM_EINTERNAL, NULL, "cannot rename %s to %s: %s", tmp, lock->path,
                           strerror(errno));
        goto done;
    }
    free(tmp);
    tmp = NULL;
    dir_copy = crm_strdup(lock->path);
    dfd = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) fsync(dfd);

done:
    if (fd >= 0) close(fd);
    if (dfd >= 0) close(dfd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(dir_copy);
    free(text);
    json_decref(root);
    return rc;
}

void crm_lock_free(crm_lock *lock)
{
    if (!lock) return;
    for (int i = 0; i < lock->n; i++)
        entry_clear(&lock->entries[i]);
    free(lock->entries);
    free(lock->path);
    free(lock);
}

const crm_lock_entry *crm_lock_find(const crm_lock *lock, const char *name)
{
    for (int i = 0; lock && i < lock->n; i++)
        if (strcmp(lock->entries[i].name, name) == 0) return &lock->entries[i];
    return NULL;
}

void crm_lock_put(crm_lock *lock, const crm_lock_entry *entry)
{
    crm_lock_entry copy, *slot = NULL;

    /* Copy first: `entry` may point into the lock itself. */
    copy.name = crm_strdup(entry->name);
    copy.git = dup_or_null(entry->git);
    copy.ref = dup_or_null(entry->ref);
    copy.commit = dup_or_null(entry->commit);
    copy.so = dup_or_null(entry->so);
    copy.so_sha256 = dup_or_null(entry->so_sha256);
    copy.fetched_at = dup_or_null(entry->fetched_at);
    for (int i = 0; i < lock->n; i++)
        if (strcmp(lock->entries[i].name, entry->name) == 0) slot = &lock->entries[i];
    if (slot) {
        entry_clear(slot);
    } else {
        lock->entries = crm_realloc(lock->entries, (size_t)(lock->n + 1) * sizeof *lock->entries);
        slot = &lock->entries[lock->n++];
    }
    *slot = copy;
}

int crm_sha256_file(const char *path, char out[65])
{
    crypto_hash_sha256_state st;
    unsigned char buf[65536], digest[crypto_hash_sha256_BYTES];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    out[0] = '\0';
    if (fd < 0)
        return crm_error_set(errno == ENOENT ? CRM_ENOTFOUND : CRM_EINTERNAL, NULL,
                             "cannot read %s: %s", path, strerror(errno));
    crypto_hash_sha256_init(&st);
    for (;;) {
        n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
    }
    if (n < 0) {
        int err = errno;
        close(fd);
        return crm_error_set(CRM_EINTERNAL, NULL, "cannot read %s: %s", path, strerror(err));
    }
    close(fd);
    crypto_hash_sha256_final(&st, digest);
    crm_hex(digest, sizeof digest, out);
    return CRM_OK;
}

int crm_lock_verify(const char *data_dir, const crm_lock_entry *entry)
{
    char *file = crm_sprintf("%s/%s", data_dir, entry->so), got[65];
    struct stat sb;
    int rc = CRM_OK;

    if (stat(file, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = crm_error_set(CRM_ENOTFOUND, NULL,
                           "plugin %s: %s is missing (run \"crm plugin fetch %s\")", entry->name,
                           file, entry->name);
        goto done;
    }
    if ((rc = crm_sha256_file(file, got)) < 0) goto done;
    if (!entry->so_sha256 || strcmp(got, entry->so_sha256) != 0)
        rc =
            crm_error_set(CRM_EDENIED, NULL, "plugin %s: sha256 mismatch for %s (lock %s, file %s)",
                          entry->name, file, entry->so_sha256 ? entry->so_sha256 : "none", got);

done:
    free(file);
    return rc;
}
