/*
 * test_fetch.c — plugins from git (kernel/fetch.c): fetch by tag, branch,
 * commit and HEAD; missing refs; the pin working offline; update; hostile
 * repository contents (P3) refused with nothing written outside the staging
 * directory; refused transports (P4); size limits (P5).
 *
 * Repositories are made with the git CLI in a temp directory; hostile trees
 * with git's plumbing (git mktree accepts names git add would refuse).
 */
#include "t.h"

#include "../../kernel/fetch.h"

#include <dirent.h>
#include <stdarg.h>
#include <sys/stat.h>

#define NAME "hello"

static char *sh_out(const char *fmt, ...) CRM_PRINTF(1, 2);
static char *sh_out(const char *fmt, ...)
{
    char *cmd, buf[4096];
    size_t n;
    va_list ap;
    FILE *fp;

    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0) exit(2);
    va_end(ap);
    fp = popen(cmd, "r");
    if (!fp) {
        perror("popen");
        exit(2);
    }
    n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    if (pclose(fp) != 0) {
        fprintf(stderr, "  command failed: %s\n", cmd);
        free(cmd);
        return NULL;
    }
    free(cmd);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return crm_strdup(buf);
}

static bool exists(const char *fmt, ...) CRM_PRINTF(1, 2);
static bool exists(const char *fmt, ...)
{
    char path[1024];
    struct stat sb;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    return lstat(path, &sb) == 0;
}

/* Number of entries of `dir` whose name starts with `prefix`. */
static int count_prefixed(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    if (!d) return 0;
    while ((de = readdir(d)))
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) n++;
    closedir(d);
    return n;
}

/*
 * A buildable plugin repository at root/<repo>: main has two commits, the
 * first tagged v1 (annotated) and v1-light (lightweight), the second v2.
 * Returns the first commit's hex into c1 and the second's into c2.
 */
static void make_plugin_repo(const char *root, const char *repo, char c1[41], char c2[41])
{
    char *out = sh_out("set -e; cd %s; git init -q -b main %s; cd %s;"
                       "printf 'all: " NAME ".so\\n" NAME ".so: " NAME
                       ".c\\n\\t$(CC) -shared -fPIC -o $@ $<\\n'"
                       " > Makefile;"
                       "echo 'int crm_plugin_v1(void) { return 1; }' > " NAME ".c;"
                       "mkdir -p scripts; echo '-- rule' > scripts/a.lua;"
                       "git add -A; git commit -q -m one; git tag -a v1 -m v1; git tag v1-light;"
                       "git rev-parse HEAD",
                       root, repo, repo);
    REQUIRE(out);
    snprintf(c1, 41, "%s", out);
    free(out);
    out = sh_out("set -e; cd %s/%s; echo 'int crm_plugin_v1(void) { return 2; }' > " NAME ".c;"
                 "git commit -q -am two; git tag v2; git rev-parse HEAD",
                 root, repo);
    snprintf(c2, 41, "%s", out ? out : "");
    free(out);
}

typedef struct env {
    char root[300], data[340], url[340];
    char c1[41], c2[41];
    crm_fetch_opts opts;
    crm_lock *lock;
} env;

static void env_setup(env *e)
{
    const char *root = t_tmpdir();
    crm_fetch_opts init = CRM_FETCH_OPTS_INIT;
    snprintf(e->root, sizeof e->root, "%s", root);
    snprintf(e->data, sizeof e->data, "%s/data", root);
    snprintf(e->url, sizeof e->url, "%s/origin", root);
    mkdir(e->data, 0700);
    e->c1[0] = e->c2[0] = '\0';
    make_plugin_repo(root, "origin", e->c1, e->c2);
    e->opts = init;
    e->opts.data_dir = e->data;
    e->opts.sdk_dir = root; /* the fixture's Makefile does not use the SDK */
    e->lock = NULL;
    if (crm_lock_load(e->data, &e->lock) < 0) exit(2);
}

static void env_done(env *e)
{
    crm_lock_free(e->lock);
    e->lock = NULL;
}

static int fetch_ref(env *e, const char *url, const char *ref, char **report)
{
    crm_conf_plugin p = {NAME, 1, true, NULL, (char *)url, (char *)ref, NULL};
    return crm_fetch_plugin(&e->opts, &p, e->lock, report);
}

static void test_fetch_by_tag(void)
{
    env e;
    char *report = NULL, sha[65];
    const crm_lock_entry *pin;
    crm_lock *again = NULL;

    env_setup(&e);
    REQUIRE(e.c1[0] && e.c2[0]);
    REQUIRE(fetch_ref(&e, e.url, "v1", &report) == CRM_OK);
    CHECK_HAS(report, "hello: pinned v1 at ");
    CHECK_HAS(report, e.c1);
    pin = crm_lock_find(e.lock, NAME);
    REQUIRE(pin != NULL);
    CHECK_STR(pin->commit, e.c1); /* the annotated tag peeled to its commit */
    CHECK_STR(pin->ref, "v1");
    CHECK_STR(pin->git, e.url);
    CHECK(pin->fetched_at != NULL);
    CHECK(exists("%s/plugins/hello/repo.git/objects", e.data));
    CHECK(exists("%s/plugins/hello/src-%s/hello.c", e.data, e.c1));
    CHECK(exists("%s/plugins/hello/src-%s/scripts/a.lua", e.data, e.c1));
    CHECK(!exists("%s/plugins/hello/src-%s/.git", e.data, e.c1));
    {
        char *so = crm_sprintf("plugins/hello/%s/hello.so", e.c1);
        char *abs = crm_sprintf("%s/%s", e.data, so);
        CHECK_STR(pin->so, so);
        CHECK_INT(crm_sha256_file(abs, sha), CRM_OK);
        CHECK_STR(pin->so_sha256, sha);
        free(so);
        free(abs);
    }
    CHECK_INT(crm_lock_verify(e.data, pin), CRM_OK);
    /* saved: a fresh load sees the same pin */
    REQUIRE(crm_lock_load(e.data, &again) == CRM_OK);
    CHECK_STR(crm_lock_find(again, NAME)->commit, e.c1);
    crm_lock_free(again);
    free(report);

    /* again: nothing to do, no network needed */
    REQUIRE(fetch_ref(&e, e.url, "v1", &report) == CRM_OK);
    CHECK_HAS(report, "hello: ok at ");
    free(report);
    env_done(&e);
}

static void test_fetch_lightweight_tag_branch_commit_head(void)
{
    env e;
    char *report = NULL;
    env_setup(&e);
    REQUIRE(e.c1[0] && e.c2[0]);

    REQUIRE(fetch_ref(&e, e.url, "v1-light", &report) == CRM_OK);
    CHECK_STR(crm_lock_find(e.lock, NAME)->commit, e.c1);
    free(report);

    REQUIRE(fetch_ref(&e, e.url, "main", &report) == CRM_OK);
    CHECK_STR(crm_lock_find(e.lock, NAME)->commit, e.c2);
    CHECK_HAS(report, "\u2192"); /* the ref changed in the conf: re-pinned, old → new */
    free(report);

    REQUIRE(fetch_ref(&e, e.url, e.c1, &report) == CRM_OK);
    CHECK_STR(crm_lock_find(e.lock, NAME)->commit, e.c1);
    free(report);

    REQUIRE(fetch_ref(&e, e.url, NULL, &report) == CRM_OK);
    CHECK_STR(crm_lock_find(e.lock, NAME)->commit, e.c2);
    CHECK(crm_lock_find(e.lock, NAME)->ref == NULL);
    free(report);

    /* a tag moved upstream (force-pushed): update follows it, a plain fetch keeps the pin */
    REQUIRE(fetch_ref(&e, e.url, "v1-light", &report) == CRM_OK);
    free(report);
    CHECK_STR(crm_lock_find(e.lock, NAME)->commit, e.c1);
    {
        char *out = sh_out("cd %s && git tag -f v1-light %s >/dev/null && echo ok", e.url, e.c2);
        free(out);
    }
    REQUIRE(fetch_ref(&e, e.url, "v1-light", &report) == CRM_OK);
    free(report);
    CHECK_STR(crm_lock_find(e.lock, NAME)->commit, e.c1);
    e.opts.update = true;
    REQUIRE(fetch_ref(&e, e.url, "v1-light", &report) == CRM_OK);
    free(report);
    CHECK_STR(crm_lock_find(e.lock, NAME)->commit, e.c2);
    e.opts.update = false;

    /* file:// works as well as a path */
    {
        char *url = crm_sprintf("file://%s", e.url);
        REQUIRE(fetch_ref(&e, url, "v2", &report) == CRM_OK);
        CHECK_STR(crm_lock_find(e.lock, NAME)->commit, e.c2);
        free(report);
        free(url);
    }
    env_done(&e);
}

static void test_ref_not_found(void)
{
    env e;
    char *report = NULL, *want;
    env_setup(&e);
    CHECK_INT(fetch_ref(&e, e.url, "v9", &report), CRM_ENOTFOUND);
    want = crm_sprintf("plugin \"hello\": ref \"v9\" not found in %s", e.url);
    CHECK_HAS(crm_error_last()->message, want);
    free(want);
    CHECK(report == NULL);
    CHECK(crm_lock_find(e.lock, NAME) == NULL);
    CHECK(!exists("%s/plugins.lock", e.data));

    CHECK_INT(fetch_ref(&e, e.url, "0123456789abcdef0123456789abcdef01234567", &report),
              CRM_ENOTFOUND);
    CHECK_HAS(crm_error_last()->message, "not found");

    want = crm_sprintf("%s/nowhere", e.root);
    CHECK_INT(fetch_ref(&e, want, "v1", &report), CRM_ENOTFOUND);
    CHECK_HAS(crm_error_last()->message, "cannot fetch from");
    free(want);
    env_done(&e);
}

static void test_pin_works_offline_and_update_moves_it(void)
{
    env e;
    char *report = NULL, *moved;
    env_setup(&e);
    REQUIRE(fetch_ref(&e, e.url, "main", &report) == CRM_OK);
    free(report);
    CHECK_STR(crm_lock_find(e.lock, NAME)->commit, e.c2);

    /* the origin disappears and the installed .so with it: rebuilt from repo.git */
    moved = crm_sprintf("%s/origin-away", e.root);
    REQUIRE(rename(e.url, moved) == 0);
    {
        char *dir = crm_sprintf("%s/plugins/hello/%s", e.data, e.c2);
        char *out = sh_out("rm -rf '%s' && echo gone", dir);
        free(out);
        free(dir);
    }
    REQUIRE(fetch_ref(&e, e.url, "main", &report) == CRM_OK);
    CHECK_HAS(report, "rebuilt");
    free(report);
    CHECK_INT(crm_lock_verify(e.data, crm_lock_find(e.lock, NAME)), CRM_OK);

    /* update needs the remote: a clear error, the pin stays */
    e.opts.update = true;
    CHECK(fetch_ref(&e, e.url, "main", &report) < 0);
    CHECK_HAS(crm_error_last()->message, "cannot fetch from");
    CHECK_STR(crm_lock_find(e.lock, NAME)->commit, e.c2);

    /* back online with a new commit on main: update moves the pin, old → new */
    REQUIRE(rename(moved, e.url) == 0);
    {
        char *c3 = sh_out("set -e; cd %s; echo 'int crm_plugin_v1(void) { return 3; }' > hello.c;"
                          "git commit -q -am three; git rev-parse HEAD",
                          e.url);
        char *want = crm_sprintf("hello: %s \u2192 %s", e.c2, c3 ? c3 : "?");
        REQUIRE(c3 != NULL);
        /* without update the pin holds */
        e.opts.update = false;
        REQUIRE(fetch_ref(&e, e.url, "main", &report) == CRM_OK);
        CHECK_HAS(report, "ok at");
        free(report);
        CHECK_STR(crm_lock_find(e.lock, NAME)->commit, e.c2);
        e.opts.update = true;
        REQUIRE(fetch_ref(&e, e.url, "main", &report) == CRM_OK);
        CHECK_STR(report, want);
        free(report);
        CHECK_STR(crm_lock_find(e.lock, NAME)->commit, c3);
        REQUIRE(fetch_ref(&e, e.url, "main", &report) == CRM_OK);
        CHECK_HAS(report, "already at");
        free(report);
        free(want);
        free(c3);
    }
    free(moved);
    env_done(&e);
}

/*
 * A repository "evil" whose main branch is one commit: a Makefile that makes
 * an empty hello.so, plus `tree_lines` (git mktree input inside a shell
 * double-quoted printf format) where $B is a blob "hi", $T a tree holding
 * file "x", $T2 a tree holding ".." → $T, and $H a tree holding "hooks" → $T.
 * Returns the commit.
 */
static char *hostile_repo(const char *root, const char *tree_lines)
{
    return sh_out("set -e; cd %s; git init -q -b main evil; cd evil;"
                  "B=$(echo hi | git hash-object -w --stdin);"
                  "M=$(printf 'all:\\n\\ttouch " NAME ".so\\n' | git hash-object -w --stdin);"
                  "T=$(printf \"100644 blob $B\\tx\\n\" | git mktree);"
                  "T2=$(printf \"040000 tree $T\\t..\\n\" | git mktree);"
                  "H=$(printf \"040000 tree $T\\thooks\\n\" | git mktree);"
                  "R=$(printf \"100644 blob $M\\tMakefile\\n%s\" | git mktree);"
                  "C=$(git commit-tree -m hostile $R); git update-ref refs/heads/main $C; echo $C",
                  root, tree_lines);
}

/* Fetch "evil"; expect refusal with `why` (or success when why is NULL). */
static void check_hostile(const char *tree_lines, const char *why)
{
    env e;
    char *report = NULL, *commit, *url, *pdir;
    env_setup(&e);
    commit = hostile_repo(e.root, tree_lines);
    REQUIRE(commit);
    url = crm_sprintf("%s/evil", e.root);
    pdir = crm_sprintf("%s/plugins/hello", e.data);
    if (!why) {
        CHECK_INT(fetch_ref(&e, url, "main", &report), CRM_OK);
        CHECK_HAS(report, "pinned main");
        goto done;
    }
    CHECK_INT(fetch_ref(&e, url, "main", &report), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "plugin \"hello\": refused: ");
    CHECK_HAS(crm_error_last()->message, why);
    CHECK_HAS(crm_error_last()->message, commit);
    CHECK(report == NULL);
    /* nothing outside the staging dir, and the staging dir itself is gone */
    CHECK_INT(count_prefixed(e.data, ""), 3); /* ".", "..", "plugins" */
    CHECK_INT(count_prefixed(e.data, "plugins.lock"), 0);
    CHECK_INT(count_prefixed(pdir, ""), 3); /* ".", "..", "repo.git": nothing else */
    CHECK_INT(count_prefixed(pdir, "src-"), 0);
    CHECK(exists("%s/repo.git", pdir));
    CHECK(!exists("%s/x", pdir));
    CHECK(!exists("%s/plugins/x", e.data));
    CHECK(!exists("%s/x", e.data));
    CHECK(!exists("%s/x", e.root));
    CHECK(!exists("%s/hooks", pdir));
    CHECK(crm_lock_find(e.lock, NAME) == NULL);
done:
    free(report);
    free(pdir);
    free(url);
    free(commit);
    env_done(&e);
}

static void test_hostile_symlink(void)
{
    env e;
    char *report = NULL, *url, *out, *pdir;
    env_setup(&e);
    out = sh_out("set -e; cd %s; git init -q -b main evil; cd evil; printf 'all:\\n' > Makefile;"
                 "mkdir scripts; ln -s /etc/passwd scripts/evil; git add -A; git commit -q -m s;"
                 "echo ok",
                 e.root);
    REQUIRE(out);
    free(out);
    url = crm_sprintf("%s/evil", e.root);
    pdir = crm_sprintf("%s/plugins/hello", e.data);
    CHECK_INT(fetch_ref(&e, url, "main", &report), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message,
              "plugin \"hello\": refused: symlink \"scripts/evil\" in commit ");
    CHECK_INT(count_prefixed(e.data, "plugins.lock"), 0);
    CHECK_INT(count_prefixed(pdir, "src-"), 0);
    free(pdir);
    free(url);
    env_done(&e);
}

static void test_hostile_submodule(void)
{
    check_hostile("160000 commit 0123456789abcdef0123456789abcdef01234567\\tlib\\n",
                  "submodule \"lib\"");
    check_hostile("100644 blob $B\\t.gitmodules\\n", "submodule (.gitmodules)");
    check_hostile("040000 tree $T\\tsub\\n100644 blob $B\\tgitmod~1\\n", "submodule");
}

static void test_hostile_dotdot(void)
{
    check_hostile("040000 tree $T\\t..\\n", "path \"..\" has a \".\" or \"..\" component");
    check_hostile("040000 tree $T2\\t..\\n", "\"..\"");         /* ../../x */
    check_hostile("040000 tree $T2\\tok\\n", "path \"ok/..\""); /* ok/../x */
    check_hostile("040000 tree $T\\t.\\n", "\".\" or \"..\"");
}

static void test_hostile_dotgit_variants(void)
{
    check_hostile("040000 tree $H\\t.GIT\\n",
                  "path \".GIT\" has a name that filesystems may treat");
    check_hostile("040000 tree $H\\t.git\\n", "\".git\"");
    check_hostile("040000 tree $T\\tgit~1\\n", "\"git~1\"");
    check_hostile("040000 tree $T\\t.git.\\n", "\".git.\"");
    check_hostile("040000 tree $T\\t.git \\n", "\".git \"");
    check_hostile("040000 tree $T\\t.Git...  \\n", ".git");
    check_hostile("040000 tree $T\\t.g\\342\\200\\214it\\n", ".git"); /* U+200C */
    check_hostile("040000 tree $T\\t.git\\342\\200\\215\\n", ".git"); /* U+200D */
    check_hostile("040000 tree $T\\t\\357\\273\\277.git\\n", ".git"); /* U+FEFF */
    check_hostile("040000 tree $T\\t.git::\\$INDEX_ALLOCATION\\n", "a ':'");
    check_hostile("040000 tree $T\\tsrc\\n040000 tree $H\\tz\\n100644 blob $B\\tz.c\\n"
                  "040000 tree $T\\tzz\\n",
                  NULL); /* control: ordinary names pass */
}

static void test_hostile_backslash_and_controls(void)
{
    check_hostile("100644 blob $B\\ta\\\\\\\\b\\n", "backslash");
    check_hostile("100644 blob $B\\t..\\\\\\\\x\\n", "backslash");
    check_hostile("100644 blob $B\\ta\\001b\\n", "control character");
    check_hostile("120000 blob $B\\tlink\\n", "symlink \"link\"");
    check_hostile("100664 blob $B\\todd\\n", "file mode");
}

static void test_name_safe(void)
{
    static const char *bad[] = {
        "",
        ".",
        "..",
        "a/b",
        "/abs",
        "a\\b",
        ".git",
        ".GIT",
        ".Git",
        ".git.",
        ".git..",
        ".git ",
        ".git . .",
        "git~1",
        "GIT~2",
        ".gitmodules",
        ".GITMODULES",
        ".gitmodules.",
        "gitmod~1",
        "c:",
        ".git::$INDEX_ALLOCATION",
        "a\tb",
        "a\nb",
        "a\x7f",
        ".g\xe2\x80\x8cit",
        ".gi\xe2\x80\x8dt",
        "\xef\xbb\xbf.git",
        ".git\xe2\x80\x8e",
        "\xff\xfe", /* not UTF-8 */
    };
    static const char *good[] = {"a",       ".gitignore",  ".gitattributes", "git",
                                 ".github", "git~x",       "x.git",          "..x",
                                 "x..",     "caf\xc3\xa9", ".git-foo",       "README.md"};
    const char *why;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool ok = crm_fetch_name_safe(bad[i], &why);
        if (ok) fprintf(stderr, "  accepted bad name #%zu \"%s\"\n", i, bad[i]);
        CHECK(!ok);
        CHECK(why != NULL);
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        bool ok = crm_fetch_name_safe(good[i], &why);
        if (!ok) fprintf(stderr, "  refused good name \"%s\": %s\n", good[i], why);
        CHECK(ok);
    }
}

static void test_url_transports(void)
{
    static const char *bad[] = {"git://example.org/x.git",
                                "GIT://example.org/x",
                                "ext::sh -c touch% /tmp/pwned",
                                "fd::17",
                                "http://example.org/x.git",
                                "ftp://example.org/x",
                                "host:path",
                                "git@example.org:x.git",
                                "",
                                "-uhelp",
                                "a\nb",
                                "https::example.org"};
    static const char *good[] = {"https://example.org/x.git",
                                 "ssh://git@example.org/x.git",
                                 "file:///srv/git/x",
                                 "/srv/git/x",
                                 "relative/dir",
                                 "HTTPS://e/x"};
    env e;
    char *report = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = crm_fetch_url_check(bad[i]);
        if (rc == CRM_OK) fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
        CHECK_INT(rc, CRM_EINVALID);
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_INT(crm_fetch_url_check(good[i]), CRM_OK);

    env_setup(&e);
    CHECK_INT(fetch_ref(&e, "git://127.0.0.1/x.git", "v1", &report), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "plugin \"hello\": repository URL \"git://");
    CHECK_HAS(crm_error_last()->message, "refused");
    CHECK_INT(fetch_ref(&e, "ext::sh -c touch% /tmp/crm-ext-pwned", "v1", &report), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "ext::");
    CHECK(!exists("/tmp/crm-ext-pwned"));
    CHECK(!exists("%s/plugins", e.data));
    env_done(&e);
}

static void test_size_limits(void)
{
    env e;
    char *report = NULL, *out;
    env_setup(&e);

    /* 3 files and a directory in the commit */
    e.opts.max_files = 3;
    CHECK_INT(fetch_ref(&e, e.url, "v1", &report), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "refused: more than 3 files and directories in commit");
    e.opts.max_files = 4;
    CHECK_INT(fetch_ref(&e, e.url, "v1", &report), CRM_OK);
    free(report);
    report = NULL;

    /* 300 kB of zeros: a tiny pack, but too many bytes of files */
    out = sh_out("set -e; cd %s; head -c 300000 /dev/zero > zeros; git add zeros;"
                 "git commit -q -m zeros; git tag big; echo ok",
                 e.url);
    free(out);
    e.opts.max_files = 0;
    e.opts.max_bytes = 200000;
    CHECK_INT(fetch_ref(&e, e.url, "big", &report), CRM_EINVALID);
    CHECK_HAS(crm_error_last()->message, "refused: more than 200000 bytes of files in commit");
    CHECK_STR(crm_lock_find(e.lock, NAME)->ref, "v1"); /* the old pin stands */

    /* 300 kB of random bytes: the download itself is too big */
    out = sh_out("set -e; cd %s; head -c 300000 /dev/urandom > noise; git add noise;"
                 "git commit -q -m noise; git tag noisy; echo ok",
                 e.url);
    free(out);
    CHECK(fetch_ref(&e, e.url, "noisy", &report) < 0);
    CHECK_HAS(crm_error_last()->message, "refused");
    CHECK_HAS(crm_error_last()->message, "200000 bytes");
    env_done(&e);
}

static void test_build_failure_and_timeout(void)
{
    env e;
    char *report = NULL, *out;
    env_setup(&e);
    out =
        sh_out("set -e; cd %s; printf 'all:\\n\\t@echo compiler says no >&2; false\\n' > Makefile;"
               "git commit -q -am broken; git tag broken;"
               "printf 'all:\\n\\tsleep 20\\n' > Makefile; git commit -q -am slow; git tag slow;"
               "echo ok",
               e.url);
    free(out);
    CHECK_INT(fetch_ref(&e, e.url, "broken", &report), CRM_EINTERNAL);
    CHECK_HAS(crm_error_last()->message, "plugin \"hello\": build of commit");
    CHECK_HAS(crm_error_last()->message, "compiler says no");
    CHECK(crm_lock_find(e.lock, NAME) == NULL);

    e.opts.build_timeout = 1;
    {
        int64_t t0 = crm_mono_us();
        CHECK_INT(fetch_ref(&e, e.url, "slow", &report), CRM_ELIMIT);
        CHECK_HAS(crm_error_last()->message, "build took longer than 1 s");
        CHECK(crm_mono_us() - t0 < 10 * 1000000);
    }
    env_done(&e);
}

/* P5: a server that accepts and then says nothing is abandoned at the time limit. */
static void test_fetch_timeout(void)
{
    env e;
    char *report = NULL, *port, *url;
    int64_t t0;
    env_setup(&e);
    port = sh_out("( timeout 10 python3 -c 'import socket,time\n"
                  "s=socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(4)\n"
                  "print(s.getsockname()[1], flush=True)\n"
                  "c=s.accept(); time.sleep(30)' > %s/port 2>/dev/null & );"
                  "for i in $(seq 50); do [ -s %s/port ] && break; sleep 0.1; done; cat %s/port",
                  e.root, e.root, e.root);
    REQUIRE(port && *port);
    url = crm_sprintf("https://127.0.0.1:%s/hello.git", port);
    e.opts.fetch_timeout = 1;
    t0 = crm_mono_us();
    CHECK_INT(fetch_ref(&e, url, "v1", &report), CRM_ELIMIT);
    CHECK_HAS(crm_error_last()->message, "took longer than 1 s: aborted");
    CHECK(crm_mono_us() - t0 < 5 * 1000000);
    CHECK(crm_lock_find(e.lock, NAME) == NULL);
    free(url);
    free(port);
    env_done(&e);
}

static void test_sdk_dir(void)
{
    const char *dir = t_tmpdir();
    char *sdk = NULL, *want = realpath(dir, NULL);
    setenv("CRM_SDK", dir, 1);
    CHECK_INT(crm_fetch_sdk_dir(&sdk), CRM_OK);
    CHECK_STR(sdk, want);
    free(sdk);
    setenv("CRM_SDK", "/nonexistent/sdk", 1);
    CHECK_INT(crm_fetch_sdk_dir(&sdk), CRM_ENOTFOUND);
    CHECK_HAS(crm_error_last()->message, "CRM_SDK");
    unsetenv("CRM_SDK");
    free(want);
}

int main(void)
{
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
    setenv("GIT_AUTHOR_NAME", "t", 1);
    setenv("GIT_AUTHOR_EMAIL", "t@example.org", 1);
    setenv("GIT_COMMITTER_NAME", "t", 1);
    setenv("GIT_COMMITTER_EMAIL", "t@example.org", 1);
    RUN(test_fetch_by_tag);
    RUN(test_fetch_lightweight_tag_branch_commit_head);
    RUN(test_ref_not_found);
    RUN(test_pin_works_offline_and_update_moves_it);
    RUN(test_hostile_symlink);
    RUN(test_hostile_submodule);
    RUN(test_hostile_dotdot);
    RUN(test_hostile_dotgit_variants);
    RUN(test_hostile_backslash_and_controls);
    RUN(test_name_safe);
    RUN(test_url_transports);
    RUN(test_size_limits);
    RUN(test_build_failure_and_timeout);
    RUN(test_fetch_timeout);
    RUN(test_sdk_dir);
    return t_finish("fetch");
}
