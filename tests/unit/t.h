/*
 * t.h — the unit tests' harness: a test is a function, a check is a macro that
 * records a failure with file:line and goes on. Each suite ends with
 *   <suite>: N passed, N failed
 * counting test functions; tests/run.sh sums the suites.
 */
#ifndef CRM_T_H
#define CRM_T_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int t_passed, t_failed, t_current_failed;
static const char *t_current;
static char t_dir[256];

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "  FAIL %s (%s:%d): %s\n", t_current, __FILE__, __LINE__, #cond); \
            t_current_failed++;                                                              \
        }                                                                                    \
    } while (0)

#define CHECK_INT(a, b)                                                                      \
    do {                                                                                     \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                              \
        if (t_a_ != t_b_) {                                                                  \
            fprintf(stderr, "  FAIL %s (%s:%d): %s == %lld, expected %lld\n", t_current,      \
                    __FILE__, __LINE__, #a, t_a_, t_b_);                                     \
            t_current_failed++;                                                              \
        }                                                                                    \
    } while (0)

#define CHECK_STR(a, b)                                                                      \
    do {                                                                                     \
        const char *t_a_ = (a), *t_b_ = (b);                                                 \
        if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0) {                                     \
            fprintf(stderr, "  FAIL %s (%s:%d): %s == \"%s\", expected \"%s\"\n", t_current,  \
                    __FILE__, __LINE__, #a, t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)"); \
            t_current_failed++;                                                              \
        }                                                                                    \
    } while (0)

/* Substring check, for error messages. */
#define CHECK_HAS(hay, needle)                                                               \
    do {                                                                                     \
        const char *t_h_ = (hay), *t_n_ = (needle);                                          \
        if (!t_h_ || !strstr(t_h_, t_n_)) {                                                  \
            fprintf(stderr, "  FAIL %s (%s:%d): \"%s\" does not contain \"%s\"\n", t_current, \
                    __FILE__, __LINE__, t_h_ ? t_h_ : "(null)", t_n_);                        \
            t_current_failed++;                                                              \
        }                                                                                    \
    } while (0)

/* A check whose failure stops the test function (later checks would only crash). */
#define REQUIRE(cond)                                                                        \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "  FAIL %s (%s:%d): %s (stopping this test)\n", t_current,        \
                    __FILE__, __LINE__, #cond);                                              \
            t_current_failed++;                                                              \
            return;                                                                          \
        }                                                                                    \
    } while (0)

static int t_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

/* A fresh empty directory for the test (removed when the next one is made and at exit). */
static const char *t_tmpdir(void)
{
    if (t_dir[0]) nftw(t_dir, t_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    snprintf(t_dir, sizeof t_dir, "/tmp/crm-test-XXXXXX");
    if (!mkdtemp(t_dir)) { perror("mkdtemp"); exit(2); }
    return t_dir;
}

static void t_run(const char *name, void (*fn)(void))
{
    t_current = name;
    t_current_failed = 0;
    fn();
    if (t_current_failed) { t_failed++; fprintf(stderr, "not ok %s\n", name); }
    else { t_passed++; fprintf(stderr, "ok %s\n", name); }
}

#define RUN(fn) t_run(#fn, fn)

static int t_finish(const char *suite)
{
    if (t_dir[0]) nftw(t_dir, t_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    printf("%s: %d passed, %d failed\n", suite, t_passed, t_failed);
    return t_failed ? 1 : 0;
}

#endif
