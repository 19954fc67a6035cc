/*
 * fuzz.h — shared by the fuzz targets (tests/fuzz/fuzz_*.c): the libFuzzer
 * entry point's prototype, and a kernel fixture opened once per process in
 * a temporary directory (removed at exit) with a type "fz.thing" holding one
 * field of every kind.
 *
 * Each target is built twice: with clang -fsanitize=fuzzer for `make fuzz`,
 * and with the build's own compiler plus tests/fuzz/replay.c (a main that
 * feeds files to LLVMFuzzerTestOneInput) for `make test`, which replays the
 * seed corpora and the regression inputs (tests/fuzz/run.sh).
 */
#ifndef CRM_FUZZ_H
#define CRM_FUZZ_H

#include "../../kernel/perm.h"
#include "../../kernel/record.h"

#include <ftw.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_dir[64];
static crm_kernel *fz_kernel;

static inline int fz_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static inline void fz_cleanup(void)
{
    /* The kernel stays open (its threads may still run); only the files go. */
    if (fz_dir[0]) nftw(fz_dir, fz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh temporary directory, removed at exit. */
static inline const char *fz_tmpdir(void)
{
    if (fz_dir[0]) return fz_dir;
    snprintf(fz_dir, sizeof fz_dir, "/tmp/crm-fuzz-XXXXXX");
    if (!mkdtemp(fz_dir)) { perror("mkdtemp"); abort(); }
    atexit(fz_cleanup);
    return fz_dir;
}

#define FZ_TYPE "fz.thing"

/* The fixture kernel: opened on first use, fz.thing defined, a few records. */
static inline crm_kernel *fz_kernel_get(void)
{
    if (fz_kernel) return fz_kernel;
    crm_log_set_level(CRM_LOG_ERROR + 1); /* inputs are meant to fail: no log noise */
    crm_kernel_opts opts = CRM_KERNEL_OPTS_INIT;
    opts.data_dir = fz_tmpdir();
    opts.synchronous = 0;
    if (crm_kernel_open(&fz_kernel, &opts) != CRM_OK) {
        fprintf(stderr, "fuzz: kernel open failed: %s\n", crm_error_last()->message);
        abort();
    }
    json_error_t err;
    json_t *fields = json_loads(
        "[{\"name\":\"name\",\"kind\":\"text\",\"searchable\":true,\"indexed\":true,"
        "  \"max_length\":40},"
        " {\"name\":\"age\",\"kind\":\"int\",\"indexed\":true},"
        " {\"name\":\"balance\",\"kind\":\"decimal\",\"scale\":2},"
        " {\"name\":\"rate\",\"kind\":\"decimal\",\"scale\":6},"
        " {\"name\":\"vip\",\"kind\":\"bool\",\"default\":false},"
        " {\"name\":\"birthday\",\"kind\":\"date\"},"
        " {\"name\":\"met_at\",\"kind\":\"datetime\"},"
        " {\"name\":\"stage\",\"kind\":\"enum\",\"values\":[\"new\",\"won\",\"lost\"],"
        "  \"default\":\"new\"},"
        " {\"name\":\"email\",\"kind\":\"email\",\"unique\":true,\"searchable\":true},"
        " {\"name\":\"phone\",\"kind\":\"phone\"},"
        " {\"name\":\"site\",\"kind\":\"url\"},"
        " {\"name\":\"parent\",\"kind\":\"ref\",\"ref\":\"fz.thing\"},"
        " {\"name\":\"extra\",\"kind\":\"json\"},"
        " {\"name\":\"code\",\"kind\":\"text\",\"readonly\":true},"
        " {\"name\":\"notes\",\"kind\":\"text\",\"max_length\":2000}]",
        0, &err);
    if (!fields || crm_schema_define_type(fz_kernel->schema, FZ_TYPE, "Thing", "fz", fields)) {
        fprintf(stderr, "fuzz: define failed: %s\n", fields ? crm_error_last()->message : err.text);
        abort();
    }
    json_decref(fields);
    static const char *const seeds[] = {
        "{\"name\":\"Ada\",\"age\":36,\"balance\":\"10.50\",\"vip\":true,\"stage\":\"won\","
        "\"email\":\"ada@example.com\",\"birthday\":\"1815-12-10\"}",
        "{\"name\":\"Émile\",\"age\":-3,\"balance\":\"-0.01\",\"met_at\":\"2024-02-29T12:00:00Z\","
        "\"site\":\"https://example.org/x\",\"parent\":1,\"extra\":{\"a\":[1,2]}}",
        "{\"name\":\"李雷\",\"phone\":\"+86 10 1234 5678\",\"stage\":\"lost\"}",
    };
    crm_ctx ctx;
    crm_ctx_init(&ctx, fz_kernel, crm_principal_system(), NULL);
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
        json_t *in = json_loads(seeds[i], 0, &err), *out = NULL;
        if (!in || crm_record_create(&ctx, FZ_TYPE, in, &out)) {
            fprintf(stderr, "fuzz: seed record %zu: %s\n", i, crm_error_last()->message);
            abort();
        }
        json_decref(in);
        json_decref(out);
    }
    return fz_kernel;
}

/* Close the fixture kernel (if opened) and remove its files: replay's exit. */
static inline void fz_kernel_close(void)
{
    if (fz_kernel) crm_kernel_close(fz_kernel);
    fz_kernel = NULL;
    fz_cleanup();
    fz_dir[0] = 0;
}

#endif
