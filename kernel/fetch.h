/*
 * fetch.h — plugins from git: fetch a repository into the data directory,
 * pin a commit, read the plugin's files from that commit, build it against
 * the SDK and record the commit and the .so's SHA-256 in plugins.lock.
 *
 * fetch.c is the only file that includes git2.h (libgit2); the rest of the
 * kernel sees this API.
 *
 * Layout under the data directory, for a plugin "hotel":
 *
 *   plugins/hotel/repo.git/            bare repository (objects + remote refs)
 *   plugins/hotel/src-<commit>/        the commit's files, written from its tree
 *   plugins/hotel/<commit>/hotel.so    the built plugin (the lock's "so")
 *   plugins/hotel/build.log            output of the last build
 *
 * Security (SECURITY.md P1-P5):
 *   - transports: local paths, file://, https:// (certificate verified by
 *     libgit2; an invalid certificate is refused) and ssh:// (host key checked
 *     against known_hosts by libgit2 >= 1.5.1). git://, http://, ext:: and any
 *     other "transport::address", and scp-like "host:path" are refused. User
 *     and system git configuration is not read (no insteadOf rewriting);
 *   - files come from the pinned commit's tree, never from a work tree: no
 *     checkout, no filters, no hooks. Symlinks, submodules (gitlinks and
 *     .gitmodules), "." and ".." components, slashes and backslashes in names,
 *     ':' and control characters, and every name a filesystem could take for
 *     ".git" (".GIT", ".git.", ".git ", "git~1", ".g\u200cit") refuse the whole
 *     commit before a single file is written; the staging directory is
 *     removed on any failure;
 *   - limits: a commit with more than 50 MiB of files or more than 10,000
 *     files and directories, a download over 50 MiB, a fetch over 60 s or a
 *     build over 300 s is aborted. The network part runs in a child process
 *     killed at the limit.
 *
 * Building runs the plugin's own Makefile (make -C src-<commit>
 * CRM_SDK=<sdk>): only fetch plugins you would also load.
 */
#ifndef CRM_FETCH_H
#define CRM_FETCH_H

#include "conf.h"
#include "lock.h"

#define CRM_FETCH_OPTS_VERSION 1

typedef struct crm_fetch_opts {
    int version;          /* CRM_FETCH_OPTS_VERSION */
    const char *data_dir; /* required */
    const char *sdk_dir;  /* the SDK (holding plugin.mk); NULL: crm_fetch_sdk_dir() */
    const char *base_dir; /* a relative local repository path is relative to this directory
                             (plugins.conf's); NULL: the current directory */
    bool update;          /* re-resolve the ref against the remote and move the pin */
    int64_t max_bytes;    /* files of a commit and size of a download; 0: 50 MiB */
    int max_files;        /* files and directories of a commit; 0: 10,000 */
    int fetch_timeout;    /* seconds for the network part; 0: 60 */
    int build_timeout;    /* seconds for make; 0: 300 */
} crm_fetch_opts;

#define CRM_FETCH_OPTS_INIT                                                                        \
    {                                                                                              \
        CRM_FETCH_OPTS_VERSION, NULL, NULL, NULL, false, 0, 0, 0, 0                                \
    }

/*
 * Fetch, pin, build and install the git plugin `p` (p->git set), and save
 * the lock with its entry. The entry's "git" is p->git as written in
 * plugins.conf (so the loader can match them), its "ref" p->ref.
 *
 * Without opts->update, a plugin the lock pins (same git URL and ref as in
 * plugins.conf) stays at its commit: when its .so is present with the locked
 * hash nothing else happens (offline); otherwise the pinned commit is read
 * from repo.git (fetched only when the commit is missing there) and rebuilt.
 * A plugin without a pin, or whose URL or ref changed in plugins.conf, or
 * any plugin with opts->update, gets its ref resolved against the remote (a
 * tag is preferred over a branch of the same name; a 40-hex ref is a
 * commit; no ref is the remote's HEAD) and is pinned to the resulting commit.
 *
 * *report (owned by the caller, free()) receives one line for a person:
 *   "hotel: pinned v1.2.0 at <commit>", "hotel: ok at <commit>",
 *   "hotel: <old commit> → <new commit>", "hotel: already at <commit>".
 * Errors name the plugin: CRM_EINVALID for a refused URL or refused
 * repository contents ("plugin \"x\": refused: symlink \"a/b\" in commit
 * <sha>"), CRM_ENOTFOUND for a ref or commit that does not exist, CRM_ELIMIT
 * for a limit, CRM_EBUSY when another fetch holds the plugins directory,
 * CRM_EINTERNAL for I/O and build failures (the build's last lines included).
 */
int crm_fetch_plugin(const crm_fetch_opts *opts, const crm_conf_plugin *p, crm_lock *lock,
                     char **report);

/*
 * Whether `url` uses an accepted transport (see above). CRM_EINVALID with
 * the reason otherwise.
 */
int crm_fetch_url_check(const char *url);

/*
 * Whether `name`, one component of a path in a plugin's tree, may be written
 * to disk. False with *why (a static string) for the refused names above.
 */
bool crm_fetch_name_safe(const char *name, const char **why);

/*
 * The SDK directory: $CRM_SDK, else <directory of the crm executable>/../sdk,
 * resolved with realpath. Malloc'd into *out. CRM_ENOTFOUND when it does not
 * exist.
 */
int crm_fetch_sdk_dir(char **out);

#endif
