/*
 * fetch.c — plugins from git (see fetch.h): the one file that includes git2.h.
 *
 * The order of a fetch, and why:
 *   1. check the URL's transport before libgit2 sees it;
 *   2. network part (connect, list refs, download, update refs, resolve the
 *      ref to a commit) in a forked child that an alarm kills at the time
 *      limit: libgit2 1.5 has no timeout of its own for a stalled server;
 *   3. walk the commit's tree and check every entry and the limits, then
 *      write the files into a fresh staging directory: nothing is written
 *      unless the whole commit is acceptable;
 *   4. make, with its own time limit, in its own process group;
 *   5. install the .so under its commit, hash it, save the lock.
 */
#include "fetch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <git2.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_BYTES     (50 * 1024 * 1024)
#define DEFAULT_MAX_FILES     10000
#define DEFAULT_FETCH_TIMEOUT 60
#define DEFAULT_BUILD_TIMEOUT 300
#define MAX_PATH_LEN          1024
#define BUILD_LOG_TAIL        1500

/* ---- libgit2 setup ---- */

static pthread_once_t git_once = PTHREAD_ONCE_INIT;

/*
 * No user, XDG or system git configuration: a ~/.gitconfig with insteadOf
 * could turn an accepted https:// URL into a refused transport, or turn off
 * certificate checks.
 */
static void git_setup(void)
{
    git_libgit2_init();
    git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_SYSTEM, "");
    git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_XDG, "");
    git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_GLOBAL, "");
    git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_PROGRAMDATA, "");
}

static void git_init_once(void)
{
    pthread_once(&git_once, git_setup);
}

static const char *git_message(void)
{
    const git_error *e = git_error_last();
    return e && e->message ? e->message : "unknown libgit2 error";
}

/* "50 MiB", or "200000 bytes" when not a whole number of MiB. */
static const char *size_text(int64_t n, char buf[32])
{
    if (n % (1 << 20) == 0)
        snprintf(buf, 32, "%lld MiB", (long long)(n >> 20));
    else
        snprintf(buf, 32, "%lld bytes", (long long)n);
    return buf;
}

/* ---- URL and name checks ---- */

int crm_fetch_url_check(const char *url)
{
    const char *p;
    size_t scheme_len = 0;

    if (!url || !*url) return crm_error_set(CRM_EINVALID, "git", "empty repository URL");
    for (p = url; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return crm_error_set(CRM_EINVALID, "git",
                                 "repository URL \"%s\" contains a control character", url);
    if (url[0] == '-')
        return crm_error_set(CRM_EINVALID, "git", "repository URL \"%s\" starts with '-'", url);
    if (strstr(url, "::"))
        return crm_error_set(CRM_EINVALID, "git",
                             "repository URL \"%s\": \"transport::address\" URLs (ext::, fd::) "
                             "are refused; use a local path, file://, https:// or ssh://",
                             url);
    for (p = url; (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (p > url && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'));
         p++)
        scheme_len++;
    if (scheme_len > 0 && strncmp(p, "://", 3) == 0) {
        if ((scheme_len == 4 && strncasecmp(url, "file", 4) == 0) ||
            (scheme_len == 5 && strncasecmp(url, "https", 5) == 0) ||
            (scheme_len == 3 && strncasecmp(url, "ssh", 3) == 0))
            return CRM_OK;
        return crm_error_set(CRM_EINVALID, "git",
                             "repository URL \"%s\": transport \"%.*s://\" is refused (no "
                             "authentication or encryption); use a local path, file://, "
                             "https:// or ssh://",
                             url, (int)scheme_len, url);
    }
    if (strchr(url, ':'))
        return crm_error_set(CRM_EINVALID, "git",
                             "repository URL \"%s\": scp-like \"host:path\" is refused; write "
                             "ssh://host/path (or a local path without ':')",
                             url);
    return CRM_OK;
}

/* Next code point of well-formed UTF-8 (checked by the caller). */
static uint32_t utf8_next(const unsigned char **s)
{
    const unsigned char *p = *s;
    uint32_t c = *p++;
    int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    if (extra) c &= 0x3fu >> extra;
    while (extra-- > 0)
        c = (c << 6) | (*p++ & 0x3fu);
    *s = p;
    return c;
}

/* Code points HFS+ and others ignore when comparing names (git's is_hfs_dotgit list). */
static bool ignorable(uint32_t c)
{
    return c == 0x00ad || (c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2060 && c <= 0x206f) || c == 0xfeff;
}

/* "git~1", "gitmod~12": NTFS 8.3 short names of ".git" and ".gitmodules". */
static bool short_name(const char *n, const char *stem)
{
    size_t k = strlen(stem);
    if (strncmp(n, stem, k) != 0 || n[k] != '~' || !n[k + 1]) return false;
    for (n += k + 1; *n; n++)
        if (*n < '0' || *n > '9') return false;
    return true;
}

bool crm_fetch_name_safe(const char *name, const char **why)
{
    size_t len = strlen(name), n = 0;
    char folded[256];
    const unsigned char *s;

    *why = NULL;
    if (len == 0)
        *why = "an empty name";
    else if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        *why = "a \".\" or \"..\" component";
    else if (strchr(name, '/'))
        *why = "a '/' inside a name (absolute or escaping path)";
    else if (strchr(name, '\\'))
        *why = "a backslash";
    else if (strchr(name, ':'))
        *why = "a ':' (NTFS streams, drive letters)";
    else if (len > 255)
        *why = "a name longer than 255 bytes";
    else if (!crm_utf8_valid(name, len))
        *why = "a name that is not UTF-8";
    if (*why) return false;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *why = "a control character";
            return false;
        }

    /* Fold: drop ignorable code points, lower-case ASCII, then trailing dots and spaces. */
    s = (const unsigned char *)name;
    while (*s) {
        const unsigned char *start = s;
        uint32_t c = utf8_next(&s);
        if (ignorable(c)) continue;
        for (; start < s && n < sizeof folded - 1; start++)
            folded[n++] = (char)((*start >= 'A' && *start <= 'Z') ? *start + 32 : *start);
    }
    while (n > 0 && (folded[n - 1] == '.' || folded[n - 1] == ' '))
        n--;
    folded[n] = '\0';
    if (strcmp(folded, ".git") == 0 || short_name(folded, "git")) {
        *why = "a name that filesystems may treat as \".git\"";
        return false;
    }
    if (strcmp(folded, ".gitmodules") == 0 || short_name(folded, "gitmod")) {
        *why = "a submodule (.gitmodules)";
        return false;
    }
    return true;
}

/* ---- Files ---- */

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) == 0) nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return CRM_OK;
    return crm_error_set(CRM_EINTERNAL, NULL, "cannot create %s: %s", path, strerror(errno));
}

static int write_all(int fd, const void *data, size_t n)
{
    const char *s = data;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copy a regular file (never through a symlink) to dst via a temp file + rename. */
static int install_file(const char *src, const char *dst)
{
    char *tmp = crm_sprintf("%s.tmp.XXXXXX", dst), buf[65536];
    int in = -1, out = -1, rc = CRM_OK;
    struct stat sb;
    ssize_t n;

    in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0 || fstat(in, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        rc = crm_error_set(CRM_EINTERNAL, NULL, "the build left no regular file %s", src);
        goto done;
    }
    if ((out = mkstemp(tmp)) < 0) {
        rc = crm_error_set(CRM_EINTERNAL, NULL, "cannot write %s: %s", dst, strerror(errno));
        goto done;
    }
    while ((n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || write_all(out, buf, (size_t)n) < 0) {
            rc = crm_error_set(CRM_EINTERNAL, NULL, "cannot copy %s: %s", src, strerror(errno));
            goto done;
        }
    }
    if (fchmod(out, 0755) < 0 || fsync(out) < 0 || close(out) < 0) {
        out = -1;
        rc = crm_error_set(CRM_EINTERNAL, NULL, "cannot write %s: %s", dst, strerror(errno));
        goto done;
    }
    out = -1;
    if (rename(tmp, dst) < 0) {
        rc = crm_error_set(CRM_EINTERNAL, NULL, "cannot rename to %s: %s", dst, strerror(errno));
        goto done;
    }
    free(tmp);
    tmp = NULL;

done:
    if (in >= 0) close(in);
    if (out >= 0) close(out);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    return rc;
}

int crm_fetch_sdk_dir(char **out)
{
    const char *env = getenv("CRM_SDK");
    char exe[PATH_MAX], *want, *resolved;
    ssize_t n;

    *out = NULL;
    if (env && *env) {
        want = crm_strdup(env);
    } else {
        n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n < 0)
            return crm_error_set(CRM_EINTERNAL, NULL,
                                 "cannot find the crm executable: %s (set CRM_SDK)",
                                 strerror(errno));
        exe[n] = '\0';
        want = crm_sprintf("%s/../sdk", dirname(exe));
    }
    resolved = realpath(want, NULL);
    if (!resolved) {
        int rc = crm_error_set(CRM_ENOTFOUND, NULL,
                               "no plugin SDK at %s (set CRM_SDK to the directory holding "
                               "plugin.mk)",
                               want);
        free(want);
        return rc;
    }
    free(want);
    *out = resolved;
    return CRM_OK;
}

/* ---- One fetch ---- */

typedef struct fetch {
    const crm_fetch_opts *opts;
    const crm_conf_plugin *p;
    const char *url;
    int64_t max_bytes;
    int max_files, fetch_timeout, build_timeout;
    char *plugin_dir, *repo_path, *url_owned;
    git_repository *repo;
    /* The tree walk's findings. */
    struct entry {
        char *path;
        git_oid id;
        bool is_dir, exec;
    } * entries;
    int nentries, nfiles;
    int64_t bytes;
    int refused;
    char commit_hex[GIT_OID_HEXSZ + 1];
} fetch;

static int open_repo(fetch *f)
{
    struct stat sb;
    if (f->repo) return CRM_OK;
    if (stat(f->repo_path, &sb) == 0) {
        if (git_repository_open_bare(&f->repo, f->repo_path) < 0)
            return crm_error_set(CRM_EINTERNAL, NULL, "plugin \"%s\": cannot open %s: %s",
                                 f->p->name, f->repo_path, git_message());
        return CRM_OK;
    }
    if (git_repository_init(&f->repo, f->repo_path, 1) < 0)
        return crm_error_set(CRM_EINTERNAL, NULL, "plugin \"%s\": cannot create %s: %s", f->p->name,
                             f->repo_path, git_message());
    return CRM_OK;
}

static void close_repo(fetch *f)
{
    git_repository_free(f->repo);
    f->repo = NULL;
}

/* -- network part, in the child -- */

typedef struct net {
    fetch *f;
    bool too_big;
} net;

static int cert_check(git_cert *cert, int valid, const char *host, void *payload)
{
    char why[300];
    (void)cert;
    (void)payload;
    if (valid) return 0;
    snprintf(why, sizeof why,
             "the certificate or host key of %s is not trusted (TLS verification or "
             "known_hosts)",
             host ? host : "?");
    git_error_set_str(GIT_ERROR_NET, why);
    return GIT_ECERTIFICATE;
}

static int transfer_progress(const git_indexer_progress *stats, void *payload)
{
    net *n = payload;
    if ((int64_t)stats->received_bytes > n->f->max_bytes) {
        n->too_big = true;
        return -1;
    }
    return 0;
}

static bool is_hex40(const char *s)
{
    if (!s || strlen(s) != 40) return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return false;
    return true;
}

/*
 * Connect, find the ref among the remote's refs, download heads and tags,
 * update refs in repo.git, peel the ref to a commit. Writes "OK <hex>" or
 * "<code> <message>" into `msg`. Runs in the child.
 */
static void net_fetch(fetch *f, const char *want_ref, char *msg, size_t msgsize)
{
    git_remote *remote = NULL;
    git_remote_callbacks cb;
    git_fetch_options fo;
    const git_remote_head **heads;
    char *refspec_list[] = {"+refs/heads/*:refs/remotes/origin/*",
                            "+HEAD:refs/remotes/origin/HEAD"};
    git_strarray refspecs = {refspec_list, 2};
    git_object *obj = NULL, *peeled = NULL;
    git_oid target;
    bool found = false;
    net n = {f, false};
    size_t nheads;
    const char *name = f->p->name;

    git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    cb.certificate_check = cert_check;
    cb.transfer_progress = transfer_progress;
    cb.payload = &n;
    fo.callbacks = cb;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL;
    fo.update_fetchhead = 0;
    fo.follow_redirects = GIT_REMOTE_REDIRECT_INITIAL;

    if (open_repo(f) < 0) {
        snprintf(msg, msgsize, "%d %s", crm_error_last()->code, crm_error_last()->message);
        return;
    }
    if (git_remote_create_anonymous(&remote, f->repo, f->url) < 0 ||
        git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL) < 0 ||
        git_remote_ls(&heads, &nheads, remote) < 0) {
        snprintf(msg, msgsize, "%d plugin \"%s\": cannot fetch from %s: %s", CRM_ENOTFOUND, name,
                 f->url, git_message());
        goto done;
    }

    /* A tag wins over a branch of the same name, as in git rev-parse. */
    {
        char *as_tag = want_ref ? crm_sprintf("refs/tags/%s", want_ref) : NULL;
        char *as_head = want_ref ? crm_sprintf("refs/heads/%s", want_ref) : NULL;
        const char *order[3] = {want_ref ? as_tag : "HEAD", as_head, want_ref};
        for (int k = 0; k < 3 && !found; k++)
            for (size_t i = 0; order[k] && i < nheads && !found; i++)
                if (strcmp(heads[i]->name, order[k]) == 0) {
                    git_oid_cpy(&target, &heads[i]->oid);
                    found = true;
                }
        free(as_tag);
        free(as_head);
    }
    if (!found && is_hex40(want_ref)) {
        git_oid_fromstr(&target, want_ref);
        found = true;
    }
    if (!found) {
        if (want_ref)
            snprintf(msg, msgsize, "%d plugin \"%s\": ref \"%s\" not found in %s", CRM_ENOTFOUND,
                     name, want_ref, f->url);
        else
            snprintf(msg, msgsize, "%d plugin \"%s\": %s has no HEAD (empty repository?)",
                     CRM_ENOTFOUND, name, f->url);
        goto done;
    }
    if (git_remote_download(remote, &refspecs, &fo) < 0) {
        char size[32];
        if (n.too_big)
            snprintf(msg, msgsize, "%d plugin \"%s\": refused: download from %s exceeds %s",
                     CRM_ELIMIT, name, f->url, size_text(f->max_bytes, size));
        else
            snprintf(msg, msgsize, "%d plugin \"%s\": cannot fetch from %s: %s", CRM_ENOTFOUND,
                     name, f->url, git_message());
        goto done;
    }
    if (git_remote_update_tips(remote, &cb, 0, GIT_REMOTE_DOWNLOAD_TAGS_ALL, "crm plugin fetch") <
        0) {
        snprintf(msg, msgsize, "%d plugin \"%s\": cannot update refs in %s: %s", CRM_EINTERNAL,
                 name, f->repo_path, git_message());
        goto done;
    }
    if (git_object_lookup(&obj, f->repo, &target, GIT_OBJECT_ANY) < 0) {
        char hex[GIT_OID_HEXSZ + 1];
        git_oid_tostr(hex, sizeof hex, &target);
        snprintf(msg, msgsize, "%d plugin \"%s\": commit %s not found in %s", CRM_ENOTFOUND, name,
                 hex, f->url);
        goto done;
    }
    if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) < 0) {
        snprintf(msg, msgsize, "%d plugin \"%s\": ref \"%s\" in %s does not name a commit",
                 CRM_EINVALID, name, want_ref ? want_ref : "HEAD", f->url);
        goto done;
    }
    snprintf(msg, msgsize, "OK %s", git_oid_tostr_s(git_object_id(peeled)));

done:
    git_object_free(peeled);
    git_object_free(obj);
    if (remote) git_remote_disconnect(remote);
    git_remote_free(remote);
}

/*
 * Run net_fetch in a child killed at the time limit. On success the commit
 * is in f->commit_hex and repo.git holds it.
 */
static int fetch_remote(fetch *f, const char *want_ref)
{
    char msg[1024];
    size_t len = 0;
    int fds[2], status, code;
    pid_t pid;
    ssize_t r;

    /* libgit2 calls a missing local path an "unsupported URL protocol": say what it is. */
    if (!strstr(f->url, "://")) {
        struct stat sb;
        if (stat(f->url, &sb) != 0 || !S_ISDIR(sb.st_mode))
            return crm_error_set(CRM_ENOTFOUND, NULL,
                                 "plugin \"%s\": cannot fetch from %s: no such repository",
                                 f->p->name, f->url);
    }
    if (pipe(fds) < 0) return crm_error_set(CRM_EINTERNAL, NULL, "pipe: %s", strerror(errno));
    close_repo(f); /* the child writes refs; reopen after */
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return crm_error_set(CRM_EINTERNAL, NULL, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        signal(SIGALRM, SIG_DFL);
        alarm((unsigned)f->fetch_timeout);
        msg[0] = '\0';
        net_fetch(f, want_ref, msg, sizeof msg);
        if (write_all(fds[1], msg, strlen(msg)) < 0) _exit(2);
        _exit(0);
    }
    close(fds[1]);
    while (len < sizeof msg - 1) {
        r = read(fds[0], msg + len, sizeof msg - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
    }
    msg[len] = '\0';
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        return crm_error_set(CRM_ELIMIT, NULL,
                             "plugin \"%s\": fetch from %s took longer than %d s: aborted",
                             f->p->name, f->url, f->fetch_timeout);
    if (strncmp(msg, "OK ", 3) == 0 && is_hex40(msg + 3)) {
        memcpy(f->commit_hex, msg + 3, sizeof f->commit_hex);
        return CRM_OK;
    }
    if (len == 0)
        return crm_error_set(CRM_EINTERNAL, NULL, "plugin \"%s\": fetch from %s failed (status %d)",
                             f->p->name, f->url, status);
    code = (int)strtol(msg, NULL, 10);
    if (code >= 0 || code < CRM_EINTERNAL) code = CRM_EINTERNAL;
    return crm_error_set(code, NULL, "%s", strchr(msg, ' ') ? strchr(msg, ' ') + 1 : msg);
}

/* -- the tree -- */

static int refuse(fetch *f, const char *fmt, ...) CRM_PRINTF(2, 3);
static int refuse(fetch *f, const char *fmt, ...)
{
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    f->refused = crm_error_set(CRM_EINVALID, NULL, "plugin \"%s\": refused: %s in commit %s",
                               f->p->name, what, f->commit_hex);
    return -1;
}

static int walk_cb(const char *root, const git_tree_entry *entry, void *payload)
{
    fetch *f = payload;
    const char *name = git_tree_entry_name(entry), *why;
    git_filemode_t mode = git_tree_entry_filemode_raw(entry);
    char *path = crm_sprintf("%s%s", root, name);
    struct entry *e;
    int rc = 0;

    if (mode == GIT_FILEMODE_LINK) {
        rc = refuse(f, "symlink \"%s\"", path);
    } else if (mode == GIT_FILEMODE_COMMIT) {
        rc = refuse(f, "submodule \"%s\"", path);
    } else if (!crm_fetch_name_safe(name, &why)) {
        rc = refuse(f, "path \"%s\" has %s", path, why);
    } else if (strlen(path) > MAX_PATH_LEN) {
        rc = refuse(f, "path \"%.60s...\" is longer than %d bytes", path, MAX_PATH_LEN);
    } else if (mode != GIT_FILEMODE_TREE && mode != GIT_FILEMODE_BLOB &&
               mode != GIT_FILEMODE_BLOB_EXECUTABLE) {
        rc = refuse(f, "\"%s\" has file mode %06o", path, (unsigned)mode);
    }
    if (rc < 0) goto done;

    /* Directories count too: a million empty trees cost as much as files. */
    if (++f->nfiles > f->max_files) {
        rc = refuse(f, "more than %d files and directories", f->max_files);
        goto done;
    }
    if (mode != GIT_FILEMODE_TREE) {
        git_odb *odb = NULL;
        size_t size = 0;
        git_object_t type;
        int err = git_repository_odb(&odb, f->repo);
        if (err == 0) err = git_odb_read_header(&size, &type, odb, git_tree_entry_id(entry));
        git_odb_free(odb);
        if (err < 0) {
            f->refused = crm_error_set(CRM_EINTERNAL, NULL, "plugin \"%s\": cannot read \"%s\": %s",
                                       f->p->name, path, git_message());
            rc = -1;
            goto done;
        }
        f->bytes += (int64_t)size;
        if (f->bytes > f->max_bytes) {
            char limit[32];
            rc = refuse(f, "more than %s of files", size_text(f->max_bytes, limit));
            goto done;
        }
    }
    f->entries = crm_realloc(f->entries, (size_t)(f->nentries + 1) * sizeof *f->entries);
    e = &f->entries[f->nentries++];
    e->path = path;
    path = NULL;
    git_oid_cpy(&e->id, git_tree_entry_id(entry));
    e->is_dir = mode == GIT_FILEMODE_TREE;
    e->exec = mode == GIT_FILEMODE_BLOB_EXECUTABLE;

done:
    free(path);
    return rc;
}

static void entries_free(fetch *f)
{
    for (int i = 0; i < f->nentries; i++)
        free(f->entries[i].path);
    free(f->entries);
    f->entries = NULL;
    f->nentries = f->nfiles = 0;
    f->bytes = 0;
}

/*
 * Write the checked entries under the staging directory. Every path was
 * checked, none is a symlink, and the directory is new: openat with
 * O_EXCL|O_NOFOLLOW cannot land outside it.
 */
static int write_entries(fetch *f, const char *staging)
{
    int root = -1, rc = CRM_OK;
    git_blob *blob = NULL;

    if (mkdir(staging, 0755) < 0)
        return crm_error_set(CRM_EINTERNAL, NULL, "cannot create %s: %s", staging, strerror(errno));
    root = open(staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root < 0) {
        rc = crm_error_set(CRM_EINTERNAL, NULL, "cannot open %s: %s", staging, strerror(errno));
        goto done;
    }
    for (int i = 0; i < f->nentries; i++) {
        struct entry *e = &f->entries[i];
        int fd;
        if (e->is_dir) {
            if (mkdirat(root, e->path, 0755) < 0) {
                rc = crm_error_set(CRM_EINTERNAL, NULL, "cannot create %s/%s: %s", staging, e->path,
                                   strerror(errno));
                goto done;
            }
            continue;
        }
        if (git_blob_lookup(&blob, f->repo, &e->id) < 0) {
            rc = crm_error_set(CRM_EINTERNAL, NULL, "plugin \"%s\": cannot read \"%s\": %s",
                               f->p->name, e->path, git_message());
            goto done;
        }
        fd = openat(root, e->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    e->exec ? 0755 : 0644);
        if (fd < 0 ||
            write_all(fd, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob)) < 0) {
            rc = crm_error_set(CRM_EINTERNAL, NULL, "cannot write %s/%s: %s", staging, e->path,
                               strerror(errno));
            if (fd >= 0) close(fd);
            goto done;
        }
        close(fd);
        git_blob_free(blob);
        blob = NULL;
    }

done:
    git_blob_free(blob);
    if (root >= 0) close(root);
    return rc;
}

/* Check the commit's whole tree, then write it into a fresh staging directory. */
static int checkout_commit(fetch *f, const char *staging)
{
    git_oid oid;
    git_commit *commit = NULL;
    git_tree *tree = NULL;
    int rc = CRM_OK;

    remove_tree(staging);
    git_oid_fromstr(&oid, f->commit_hex);
    if (git_commit_lookup(&commit, f->repo, &oid) < 0) {
        rc = crm_error_set(CRM_ENOTFOUND, NULL, "plugin \"%s\": commit %s not found in %s",
                           f->p->name, f->commit_hex, f->repo_path);
        goto done;
    }
    if (git_commit_tree(&tree, commit) < 0) {
        rc = crm_error_set(CRM_EINTERNAL, NULL, "plugin \"%s\": cannot read the tree of %s: %s",
                           f->p->name, f->commit_hex, git_message());
        goto done;
    }
    f->refused = 0;
    if (git_tree_walk(tree, GIT_TREEWALK_PRE, walk_cb, f) != 0) {
        rc = f->refused ? f->refused
                        : crm_error_set(CRM_EINTERNAL, NULL,
                                        "plugin \"%s\": cannot read the tree of %s: %s", f->p->name,
                                        f->commit_hex, git_message());
        goto done;
    }
    if ((rc = write_entries(f, staging)) < 0) goto done;

done:
    if (rc < 0) remove_tree(staging);
    entries_free(f);
    git_tree_free(tree);
    git_commit_free(commit);
    return rc;
}

/* -- build -- */

static char *log_tail(const char *path)
{
    char buf[BUILD_LOG_TAIL + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    off_t size;
    ssize_t n;
    if (fd < 0) return crm_strdup("");
    size = lseek(fd, 0, SEEK_END);
    lseek(fd, size > BUILD_LOG_TAIL ? size - BUILD_LOG_TAIL : 0, SEEK_SET);
    n = read(fd, buf, BUILD_LOG_TAIL);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return crm_strdup(buf);
}

/* make -C staging CRM_SDK=sdk, output into build.log, killed (whole group) at the limit. */
static int build(fetch *f, const char *staging, const char *sdk)
{
    char *log = crm_sprintf("%s/build.log", f->plugin_dir),
         *sdk_arg = crm_sprintf("CRM_SDK=%s", sdk);
    int64_t deadline = crm_mono_us() + (int64_t)f->build_timeout * 1000000;
    int status = 0, rc = CRM_OK;
    bool timed_out = false;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        rc = crm_error_set(CRM_EINTERNAL, NULL, "fork: %s", strerror(errno));
        goto done;
    }
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        setpgid(0, 0);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        /* An outer make's jobserver and flags are not the plugin's business. */
        unsetenv("MAKEFLAGS");
        unsetenv("MFLAGS");
        unsetenv("MAKELEVEL");
        execlp("make", "make", "-C", staging, sdk_arg, (char *)NULL);
        fprintf(stderr, "cannot run make: %s\n", strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) break;
        if (crm_mono_us() > deadline) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            timed_out = true;
            break;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (timed_out) {
        rc = crm_error_set(CRM_ELIMIT, NULL, "plugin \"%s\": build took longer than %d s: aborted",
                           f->p->name, f->build_timeout);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *tail = log_tail(log);
        rc = crm_error_set(CRM_EINTERNAL, NULL,
                           "plugin \"%s\": build of commit %s failed (make -C %s CRM_SDK=%s; "
                           "log %s):\n%s",
                           f->p->name, f->commit_hex, staging, sdk, log, tail);
        free(tail);
    }

done:
    free(log);
    free(sdk_arg);
    return rc;
}

/* Build the pinned commit and install its .so; fills so (relative) and sha. */
static int build_and_install(fetch *f, char **so_rel, char sha[65])
{
    char *staging = crm_sprintf("%s/src-%s", f->plugin_dir, f->commit_hex);
    char *built = crm_sprintf("%s/%s.so", staging, f->p->name);
    char *dest_dir = crm_sprintf("%s/%s", f->plugin_dir, f->commit_hex);
    char *dest = crm_sprintf("%s/%s.so", dest_dir, f->p->name);
    char *sdk = NULL;
    int rc;

    *so_rel = NULL;
    if (f->opts->sdk_dir) {
        sdk = realpath(f->opts->sdk_dir, NULL);
        if (!sdk) {
            rc = crm_error_set(CRM_ENOTFOUND, NULL, "no plugin SDK at %s", f->opts->sdk_dir);
            goto done;
        }
    } else if ((rc = crm_fetch_sdk_dir(&sdk)) < 0) {
        goto done;
    }
    if ((rc = open_repo(f)) < 0) goto done;
    if ((rc = checkout_commit(f, staging)) < 0) goto done;
    if ((rc = build(f, staging, sdk)) < 0) goto done;
    if ((rc = make_dir(dest_dir)) < 0) goto done;
    if ((rc = install_file(built, dest)) < 0) goto done;
    if ((rc = crm_sha256_file(dest, sha)) < 0) goto done;
    *so_rel = crm_sprintf("plugins/%s/%s/%s.so", f->p->name, f->commit_hex, f->p->name);

done:
    free(sdk);
    free(staging);
    free(built);
    free(dest_dir);
    free(dest);
    return rc;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool commit_in_repo(fetch *f, const char *hex)
{
    git_oid oid;
    git_commit *c = NULL;
    if (open_repo(f) < 0) return false;
    git_oid_fromstr(&oid, hex);
    if (git_commit_lookup(&c, f->repo, &oid) < 0) return false;
    git_commit_free(c);
    return true;
}

/* Serialise fetches of one data directory (two would race on repo.git and the lock). */
static int lock_plugins_dir(const char *plugins_dir, int *fd_out)
{
    char *path = crm_sprintf("%s/.fetch.lock", plugins_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(path);
    *fd_out = -1;
    if (fd < 0)
        return crm_error_set(CRM_EINTERNAL, NULL, "cannot lock %s: %s", plugins_dir,
                             strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        return crm_error_set(CRM_EBUSY, NULL,
                             "another \"crm plugin fetch\" is running on %s; try again",
                             plugins_dir);
    }
    *fd_out = fd;
    return CRM_OK;
}

int crm_fetch_plugin(const crm_fetch_opts *opts, const crm_conf_plugin *p, crm_lock *lock,
                     char **report)
{
    fetch f = {0};
    const crm_lock_entry *pin = crm_lock_find(lock, p->name);
    char *plugins_dir = NULL, *so_rel = NULL, *old_commit = NULL, sha[65], now[21];
    bool pinned_here = false, rebuilt = false;
    int lock_fd = -1, rc = CRM_OK;
    crm_lock_entry e;
    struct stat sb;

    *report = NULL;
    if (!p->git)
        return crm_error_set(CRM_EINVALID, NULL,
                             "plugin \"%s\" is in-tree (source = %s): nothing to fetch", p->name,
                             p->source ? p->source : "?");
    if (!crm_ident_valid(p->name, 64))
        return crm_error_set(CRM_EINVALID, NULL, "plugin \"%s\": not a valid plugin name", p->name);
    if ((rc = crm_fetch_url_check(p->git)) < 0)
        return crm_error_set(rc, "git", "plugin \"%s\": %s", p->name, crm_error_last()->message);
    if (p->ref && (!*p->ref || p->ref[0] == '-' || strstr(p->ref, "..") || strchr(p->ref, ':')))
        return crm_error_set(CRM_EINVALID, "ref", "plugin \"%s\": ref \"%s\" is not a valid ref",
                             p->name, p->ref);
    if (stat(opts->data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return crm_error_set(CRM_ENOTFOUND, NULL,
                             "data directory \"%s\" does not exist (run \"crm init\" first)",
                             opts->data_dir);
    git_init_once();

    f.opts = opts;
    f.p = p;
    f.url = p->git;
    /* A relative local path is relative to plugins.conf, not to wherever crm runs. */
    if (p->git[0] != '/' && !strchr(p->git, ':') && opts->base_dir)
        f.url = f.url_owned = crm_sprintf("%s/%s", opts->base_dir, p->git);
    f.max_bytes = opts->max_bytes > 0 ? opts->max_bytes : DEFAULT_MAX_BYTES;
    f.max_files = opts->max_files > 0 ? opts->max_files : DEFAULT_MAX_FILES;
    f.fetch_timeout = opts->fetch_timeout > 0 ? opts->fetch_timeout : DEFAULT_FETCH_TIMEOUT;
    f.build_timeout = opts->build_timeout > 0 ? opts->build_timeout : DEFAULT_BUILD_TIMEOUT;
    plugins_dir = crm_sprintf("%s/plugins", opts->data_dir);
    f.plugin_dir = crm_sprintf("%s/%s", plugins_dir, p->name);
    f.repo_path = crm_sprintf("%s/repo.git", f.plugin_dir);
    if ((rc = make_dir(plugins_dir)) < 0 || (rc = lock_plugins_dir(plugins_dir, &lock_fd)) < 0 ||
        (rc = make_dir(f.plugin_dir)) < 0)
        goto done;

    if (pin) old_commit = crm_strdup(pin->commit);
    /* The pin holds unless asked to move it, or plugins.conf now names another source. */
    if (pin && !opts->update && same_str(pin->git, p->git) && same_str(pin->ref, p->ref)) {
        pinned_here = true;
        if (crm_lock_verify(opts->data_dir, pin) == CRM_OK) {
            *report = crm_sprintf("%s: ok at %s", p->name, pin->commit);
            goto done;
        }
        memcpy(f.commit_hex, pin->commit, sizeof f.commit_hex);
        /* Offline when repo.git has the commit; otherwise fetch and look again. */
        if (!commit_in_repo(&f, pin->commit)) {
            if ((rc = fetch_remote(&f, p->ref)) < 0) goto done;
            memcpy(f.commit_hex, pin->commit, sizeof f.commit_hex);
            if (!commit_in_repo(&f, pin->commit)) {
                rc = crm_error_set(CRM_ENOTFOUND, NULL,
                                   "plugin \"%s\": pinned commit %s not found in %s (run \"crm "
                                   "plugin update %s\" to move the pin)",
                                   p->name, pin->commit, p->git, p->name);
                goto done;
            }
        }
        rebuilt = true;
    } else {
        if ((rc = fetch_remote(&f, p->ref)) < 0) goto done;
        if (pin && strcmp(pin->commit, f.commit_hex) == 0 &&
            crm_lock_verify(opts->data_dir, pin) == CRM_OK && same_str(pin->git, p->git) &&
            same_str(pin->ref, p->ref)) {
            *report = crm_sprintf("%s: already at %s", p->name, pin->commit);
            goto done;
        }
    }

    if ((rc = build_and_install(&f, &so_rel, sha)) < 0) goto done;
    crm_time_format(crm_now(), now);
    e.name = p->name;
    e.git = p->git;
    e.ref = p->ref;
    e.commit = f.commit_hex;
    e.so = so_rel;
    e.so_sha256 = sha;
    e.fetched_at = now;
    crm_lock_put(lock, &e); /* invalidates `pin` */
    pin = NULL;
    if ((rc = crm_lock_save(lock)) < 0) goto done;

    if (pinned_here && rebuilt) {
        *report = crm_sprintf("%s: rebuilt %s", p->name, f.commit_hex);
    } else if (old_commit && strcmp(old_commit, f.commit_hex) != 0) {
        /*
         * The pin moved: the old commit's files and .so go (a running server
         * keeps its mapping of the old .so; the next start loads the new one).
         */
        char *old_dir = crm_sprintf("%s/%s", f.plugin_dir, old_commit);
        char *old_src = crm_sprintf("%s/src-%s", f.plugin_dir, old_commit);
        if (is_hex40(old_commit)) {
            remove_tree(old_dir);
            remove_tree(old_src);
        }
        free(old_dir);
        free(old_src);
        *report = crm_sprintf("%s: %s \u2192 %s", p->name, old_commit, f.commit_hex);
    } else if (old_commit) {
        *report = crm_sprintf("%s: already at %s (rebuilt)", p->name, f.commit_hex);
    } else {
        *report =
            crm_sprintf("%s: pinned %s at %s", p->name, p->ref ? p->ref : "HEAD", f.commit_hex);
    }

done:
    close_repo(&f);
    if (lock_fd >= 0) close(lock_fd);
    free(so_rel);
    free(old_commit);
    free(plugins_dir);
    free(f.plugin_dir);
    free(f.repo_path);
    free(f.url_owned);
    return rc;
}
