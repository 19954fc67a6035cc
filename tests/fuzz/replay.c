/*
 * replay.c — a main for the fuzz targets without libFuzzer: feeds every file
 * named on the command line (directories: every file in them, sorted) to
 * LLVMFuzzerTestOneInput once. Used by tests/fuzz/run.sh in `make test` and
 * `make asan`, so the seed corpora and the regression inputs run everywhere,
 * with or without clang. Prints "<target>: N passed, 0 failed"; a crash
 * (abort, sanitizer report) ends the process, which the suite counts.
 */
#include "fuzz.h"

#include <dirent.h>
#include <sys/stat.h>

static int inputs;

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    size_t cap = 4096, n = 0, r;
    uint8_t *buf = malloc(cap);
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) { fputs("out of memory\n", stderr); exit(2); }
    /* libFuzzer hands over an exact-size copy: do the same so overreads are caught */
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    inputs++;
}

static void run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return; /* an absent corpus dir holds no inputs */
    if (!S_ISDIR(st.st_mode)) { run_file(path); return; }
    DIR *d = opendir(path);
    if (!d) { perror(path); exit(2); }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (n + 1) * sizeof *names);
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        snprintf(names[n++], len, "%s/%s", path, e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp);
    for (size_t i = 0; i < n; i++) {
        run_path(names[i]);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    for (int i = 1; i < argc; i++) run_path(argv[i]);
    printf("%s: %d passed, 0 failed\n", name, inputs);
    fflush(stdout);
    fz_kernel_close(); /* so that LeakSanitizer sees only real leaks */
    return 0;
}
