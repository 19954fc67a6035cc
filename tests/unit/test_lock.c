/*
 * test_lock.c — plugins.lock (kernel/lock.c): round trip, pin format (P1),
 * .so integrity (P2), atomic save.
 */
#include "t.h"

#include "../../kernel/lock.h"

#include <dirent.h>
#include <sys/stat.h>

#define COMMIT "0123456789abcdef0123456789abcdef01234567"
#define SHA    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (!fp) {
        perror(path);
        exit(2);
    }
    fputs(text, fp);
    fclose(fp);
}

static char *lock_text(const char *commit, const char *sha)
{
    return crm_sprintf("{\"version\": 1, \"plugins\": {\"hotel\": {\"git\": \"/srv/git/hotel\", "
                       "\"ref\": \"v1.2\", \"commit\": \"%s\", \"so\": "
                       "\"plugins/hotel/x/hotel.so\", \"so_sha256\": \"%s\"}}}",
                       commit, sha);
}

static void test_absent_is_empty(void)
{
    const char *dir = t_tmpdir();
    crm_lock *lock = NULL;
    REQUIRE(crm_lock_load(dir, &lock) == CRM_OK);
    CHECK_INT(lock->n, 0);
    CHECK(crm_lock_find(lock, "hotel") == NULL);
    crm_lock_free(lock);
}

static void test_round_trip(void)
{
    const char *dir = t_tmpdir();
    crm_lock *lock = NULL, *again = NULL;
    crm_lock_entry e = {
        "hotel", "/srv/git/hotel",      "v1.2.0", COMMIT, "plugins/hotel/" COMMIT "/hotel.so",
        SHA,     "2026-11-24T03:00:00Z"};
    crm_lock_entry g = {
        "gym", "https://example.org/gym.git", NULL, COMMIT, "plugins/gym/x/gym.so", SHA, NULL};
    const crm_lock_entry *h;

    REQUIRE(crm_lock_load(dir, &lock) == CRM_OK);
    crm_lock_put(lock, &e);
    crm_lock_put(lock, &g);
    e.ref = "v1.3.0";
    crm_lock_put(lock, &e); /* replaces */
    CHECK_INT(lock->n, 2);
    REQUIRE(crm_lock_save(lock) == CRM_OK);
    crm_lock_free(lock);

    REQUIRE(crm_lock_load(dir, &again) == CRM_OK);
    CHECK_INT(again->n, 2);
    h = crm_lock_find(again, "hotel");
    REQUIRE(h != NULL);
    CHECK_STR(h->git, "/srv/git/hotel");
    CHECK_STR(h->ref, "v1.3.0");
    CHECK_STR(h->commit, COMMIT);
    CHECK_STR(h->so_sha256, SHA);
    CHECK_STR(h->fetched_at, "2026-11-24T03:00:00Z");
    h = crm_lock_find(again, "gym");
    REQUIRE(h != NULL);
    CHECK(h->ref == NULL);
    CHECK(h->fetched_at == NULL);
    /* put an entry of the lock into the same lock: copies before freeing */
    crm_lock_put(again, crm_lock_find(again, "gym"));
    CHECK_STR(crm_lock_find(again, "gym")->git, "https://example.org/gym.git");
    crm_lock_free(again);
}

static void expect_refused(const char *text, const char *needle)
{
    const char *dir = t_tmpdir();
    char *path = crm_sprintf("%s/plugins.lock", dir);
    crm_lock *lock = NULL;
    write_file(path, text);
    CHECK_INT(crm_lock_load(dir, &lock), CRM_EINVALID);
    CHECK(lock == NULL);
    CHECK_HAS(crm_error_last()->message, needle);
    free(path);
}

static void test_branch_or_tag_as_commit_refused(void)
{
    char *t = lock_text("main", SHA);
    expect_refused(t, "plugin \"hotel\": commit \"main\" is not a 40-hex commit id");
    free(t);
    t = lock_text("v1.2", SHA);
    expect_refused(t, "commit \"v1.2\"");
    free(t);
    /* 40 characters, but upper case / not hex */
    t = lock_text("0123456789ABCDEF0123456789ABCDEF01234567", SHA);
    expect_refused(t, "commit");
    free(t);
    t = lock_text(COMMIT "0", SHA);
    expect_refused(t, "commit");
    free(t);
}

static void test_bad_sha_refused(void)
{
    char *t = lock_text(COMMIT, "abc");
    expect_refused(t, "plugin \"hotel\": so_sha256 \"abc\" is not 64");
    free(t);
    t = lock_text(COMMIT, "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    expect_refused(t, "so_sha256");
    free(t);
}

static void test_bad_format_refused(void)
{
    expect_refused("{\"version\": 2, \"plugins\": {}}", "version");
    expect_refused("not json", "plugins.lock:1");
    expect_refused("{\"version\": 1, \"plugins\": []}", "\"plugins\" must be an object");
    expect_refused("{\"version\": 1, \"plugins\": {\"hotel\": {\"commit\": \"" COMMIT "\"}}}",
                   "missing \"git\"");
    expect_refused(
        "{\"version\": 1, \"plugins\": {\"hotel\": {\"git\": \"g\", \"commit\": \"" COMMIT
        "\", \"so\": \"../../etc/x.so\", \"so_sha256\": \"" SHA "\"}}}",
        "inside the data directory");
    expect_refused("{\"version\": 1, \"plugins\": {\"Bad-Name\": {}}}", "not a valid plugin name");
}

static void test_sha256_file(void)
{
    const char *dir = t_tmpdir();
    char *path = crm_sprintf("%s/f", dir), out[65];
    write_file(path, "abc");
    REQUIRE(crm_sha256_file(path, out) == CRM_OK);
    CHECK_STR(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    free(path);
    path = crm_sprintf("%s/none", dir);
    CHECK_INT(crm_sha256_file(path, out), CRM_ENOTFOUND);
    free(path);
}

static void test_verify_and_tamper(void)
{
    const char *dir = t_tmpdir();
    char *sub = crm_sprintf("%s/plugins", dir), *path = crm_sprintf("%s/plugins/h.so", dir);
    char sha[65];
    crm_lock_entry e = {"hotel", "/g", NULL, COMMIT, "plugins/h.so", sha, NULL};
    FILE *fp;

    mkdir(sub, 0755);
    write_file(path, "\177ELF pretend shared object");
    REQUIRE(crm_sha256_file(path, sha) == CRM_OK);
    CHECK_INT(crm_lock_verify(dir, &e), CRM_OK);

    /* flip one byte */
    fp = fopen(path, "r+");
    REQUIRE(fp != NULL);
    fseek(fp, 5, SEEK_SET);
    fputc('P' ^ 0x01, fp);
    fclose(fp);
    CHECK_INT(crm_lock_verify(dir, &e), CRM_EDENIED);
    CHECK_HAS(crm_error_last()->message, "plugin hotel: sha256 mismatch");
    CHECK_HAS(crm_error_last()->message, sha);

    unlink(path);
    CHECK_INT(crm_lock_verify(dir, &e), CRM_ENOTFOUND);
    CHECK_HAS(crm_error_last()->message, "missing");
    free(sub);
    free(path);
}

static void test_atomic_save_no_temp_files(void)
{
    const char *dir = t_tmpdir();
    crm_lock *lock = NULL;
    crm_lock_entry e = {"hotel", "/g", "v1", COMMIT, "plugins/h.so", SHA, NULL};
    DIR *d;
    struct dirent *de;
    int files = 0;
    struct stat sb;
    char *path = crm_sprintf("%s/plugins.lock", dir);

    REQUIRE(crm_lock_load(dir, &lock) == CRM_OK);
    crm_lock_put(lock, &e);
    for (int i = 0; i < 5; i++)
        CHECK_INT(crm_lock_save(lock), CRM_OK);
    crm_lock_free(lock);
    d = opendir(dir);
    REQUIRE(d != NULL);
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            files++;
            CHECK_STR(de->d_name, "plugins.lock");
        }
    closedir(d);
    CHECK_INT(files, 1);
    CHECK(stat(path, &sb) == 0 && sb.st_size > 0);

    /* a save into a directory that is gone fails cleanly */
    REQUIRE(crm_lock_load(dir, &lock) == CRM_OK);
    free(lock->path);
    lock->path = crm_sprintf("%s/missing/plugins.lock", dir);
    CHECK_INT(crm_lock_save(lock), CRM_EINTERNAL);
    crm_lock_free(lock);
    free(path);
}

int main(void)
{
    RUN(test_absent_is_empty);
    RUN(test_round_trip);
    RUN(test_branch_or_tag_as_commit_refused);
    RUN(test_bad_sha_refused);
    RUN(test_bad_format_refused);
    RUN(test_sha256_file);
    RUN(test_verify_and_tamper);
    RUN(test_atomic_save_no_temp_files);
    return t_finish("lock");
}
