/*
 * http_tool.c — helpers of the HTTP benchmark (bench/http_bench.py), and the
 * bare-SQLite limits it compares crm with. Linked against build-release/libcrm.a
 * only to define the contact type the same way the kernel benchmark does.
 *
 *   http_tool mktype DIR               define crm.contact in a fresh data dir (DIR/crm.db)
 *   http_tool csv DB N OUT.csv         the first N contacts of a data set as CSV
 *   http_tool lua DB OUT_DIR           wrk scripts' data: cities and search prefixes (Lua tables)
 *   http_tool bareload DDL_DB CSV OUT  bare bulk insert of the CSV into a twin table + FTS,
 *                                      one transaction at synchronous=FULL; prints seconds
 *   http_tool bareinsert DB N          N inserts (row + FTS row) into "bare.contact", one
 *                                      transaction each at synchronous=FULL; prints ops/s
 *   http_tool maxid DB                 max(id) of crm.contact
 */
#include "../kernel/csv.h"
#include "../kernel/kernel.h"
#include "../kernel/schema.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TYPE "crm.contact"
#define BARE "bare.contact"

/* The schema of bench/kernel_bench.c (keep them equal). */
static const char *schema_json =
    "[{\"name\":\"first_name\",\"kind\":\"text\",\"required\":true,\"searchable\":true,\"max_length\":100},"
    " {\"name\":\"last_name\",\"kind\":\"text\",\"required\":true,\"searchable\":true,\"max_length\":100},"
    " {\"name\":\"email\",\"kind\":\"email\",\"unique\":true,\"searchable\":true},"
    " {\"name\":\"phone\",\"kind\":\"phone\"},"
    " {\"name\":\"city\",\"kind\":\"text\",\"indexed\":true},"
    " {\"name\":\"country\",\"kind\":\"text\"},"
    " {\"name\":\"score\",\"kind\":\"int\",\"indexed\":true}]";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(sqlite3 *db, const char *what)
{
    fprintf(stderr, "http_tool: %s: %s\n", what, db ? sqlite3_errmsg(db) : "");
    exit(1);
}

static sqlite3 *open_db(const char *path, int flags)
{
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) fail(db, path);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "http_tool: %.100s: %s\n", sql, err);
        exit(1);
    }
}

static void step_done(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) fail(db, what);
    sqlite3_reset(st);
}

static int cmd_mktype(const char *dir)
{
    crm_kernel_opts o = CRM_KERNEL_OPTS_INIT;
    crm_kernel *k;
    o.data_dir = dir;
    if (crm_kernel_open(&k, &o)) {
        fprintf(stderr, "http_tool: kernel open: %s\n", crm_error_last()->message);
        return 1;
    }
    json_t *spec = json_loads(schema_json, 0, NULL);
    if (crm_schema_define_type(k->schema, TYPE, "Contact", "crm", spec)) {
        fprintf(stderr, "http_tool: define type: %s\n", crm_error_last()->message);
        return 1;
    }
    json_decref(spec);
    crm_kernel_close(k);
    return 0;
}

static void csv_cell(FILE *f, const char *s)
{
    if (!s) return;
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"') fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
}

static int cmd_csv(const char *dbpath, long n, const char *out)
{
    sqlite3 *db = open_db(dbpath, SQLITE_OPEN_READONLY);
    sqlite3_stmt *st;
    FILE *f = fopen(out, "w");
    if (!f) fail(NULL, out);
    if (sqlite3_prepare_v2(db, "SELECT first_name, last_name, email, phone, city, country, score "
                               "FROM \"" TYPE "\" ORDER BY id LIMIT ?", -1, &st, NULL))
        fail(db, "prepare");
    sqlite3_bind_int64(st, 1, n);
    fputs("first_name,last_name,email,phone,city,country,score\r\n", f);
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < 7; c++) {
            if (c) fputc(',', f);
            csv_cell(f, (const char *)sqlite3_column_text(st, c));
        }
        fputs("\r\n", f);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return fclose(f) != 0;
}

/* Lua string literal with URL-encoded bytes (for paths and query strings). */
static void lua_urlstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.')
            fputc(*p, f);
        else
            fprintf(f, "%%%02X", *p);
    }
    fputc('"', f);
}

static int cmd_lua(const char *dbpath, const char *outdir)
{
    sqlite3 *db = open_db(dbpath, SQLITE_OPEN_READONLY);
    sqlite3_stmt *st;
    char path[4096];
    FILE *f;

    /* Cities: every distinct value of the indexed field (cheap through the index). */
    snprintf(path, sizeof path, "%s/cities.lua", outdir);
    if (!(f = fopen(path, "w"))) fail(NULL, path);
    if (sqlite3_prepare_v2(db, "SELECT DISTINCT city FROM \"" TYPE "\" ORDER BY city", -1, &st,
                           NULL))
        fail(db, "prepare cities");
    fputs("return {", f);
    while (sqlite3_step(st) == SQLITE_ROW) {
        lua_urlstr(f, (const char *)sqlite3_column_text(st, 0));
        fputs(",\n", f);
    }
    fputs("}\n", f);
    fclose(f);
    sqlite3_finalize(st);

    /* Search prefixes: the first 3 characters of the distinct last and first names. */
    snprintf(path, sizeof path, "%s/prefixes.lua", outdir);
    if (!(f = fopen(path, "w"))) fail(NULL, path);
    if (sqlite3_prepare_v2(db, "SELECT DISTINCT substr(last_name, 1, 3) FROM (SELECT last_name FROM "
                               "\"" TYPE "\" WHERE id <= 20000) UNION SELECT DISTINCT "
                               "substr(first_name, 1, 3) FROM (SELECT first_name FROM \"" TYPE
                               "\" WHERE id <= 20000)",
                           -1, &st, NULL))
        fail(db, "prepare prefixes");
    fputs("return {", f);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        if (!s || !*s) continue;
        lua_urlstr(f, s);
        fputs(",\n", f);
    }
    fputs("}\n", f);
    fclose(f);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}

/* The twin's DDL: the kernel's own with the type name changed. */
static void create_twin(sqlite3 *from, sqlite3 *to)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(from, "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND "
                                 "(tbl_name = ?1 OR name = ?1 || ':fts') ORDER BY type = 'index'",
                           -1, &st, NULL))
        fail(from, "ddl");
    sqlite3_bind_text(st, 1, TYPE, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        crm_buf b = CRM_BUF_INIT;
        for (const char *p = s; *p;) {
            if (strncmp(p, TYPE, strlen(TYPE)) == 0) {
                crm_buf_puts(&b, BARE);
                p += strlen(TYPE);
            } else {
                crm_buf_putc(&b, *p++);
            }
        }
        exec(to, crm_buf_str(&b));
        crm_buf_free(&b);
    }
    sqlite3_finalize(st);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail(NULL, path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) fail(NULL, path);
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

/*
 * Bare bulk load: the CSV parsed with the kernel's own reader (what an import
 * must do too), each row bound into a prepared INSERT of the twin table and its
 * FTS row, all in one transaction at synchronous=FULL, WAL like the kernel.
 */
static int cmd_bareload(const char *ddl_db, const char *csv, const char *out)
{
    sqlite3 *from = open_db(ddl_db, SQLITE_OPEN_READONLY);
    unlink(out);
    char wal[4200];
    snprintf(wal, sizeof wal, "%s-wal", out);
    unlink(wal);
    sqlite3 *db = open_db(out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
    create_twin(from, db);
    sqlite3_close(from);
    size_t len;
    char *data = slurp(csv, &len);

    double t0 = now_s();
    sqlite3_stmt *ins, *fts;
    if (sqlite3_prepare_v2(db, "INSERT INTO \"" BARE "\" (created_at, updated_at, created_by, owner, "
                               "team, version, first_name, last_name, email, phone, city, country, "
                               "score) VALUES (?, ?, NULL, NULL, NULL, 1, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &ins, NULL) ||
        sqlite3_prepare_v2(db, "INSERT INTO \"" BARE ":fts\"(rowid, first_name, last_name, email) "
                               "VALUES (?, ?, ?, ?)", -1, &fts, NULL))
        fail(db, "prepare");
    crm_csv_reader r;
    int line;
    long rows = 0;
    crm_csv_reader_init(&r, data, len, 64);
    if (crm_csv_read(&r, &line) <= 0) fail(NULL, "csv header");
    exec(db, "BEGIN IMMEDIATE");
    while (crm_csv_read(&r, &line) > 0) {
        char at[32];
        time_t t = time(NULL);
        strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
        sqlite3_bind_text(ins, 1, at, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 2, at, -1, SQLITE_TRANSIENT);
        for (int c = 0; c < 6; c++)
            sqlite3_bind_text(ins, 3 + c, r.fields[c].ptr, (int)r.fields[c].len, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 9, strtoll(r.fields[6].ptr, NULL, 10));
        step_done(db, ins, "insert");
        sqlite3_bind_int64(fts, 1, sqlite3_last_insert_rowid(db));
        for (int c = 0; c < 3; c++)
            sqlite3_bind_text(fts, 2 + c, r.fields[c].ptr, (int)r.fields[c].len, SQLITE_STATIC);
        step_done(db, fts, "fts");
        rows++;
    }
    exec(db, "COMMIT");
    double s = now_s() - t0;
    crm_csv_reader_free(&r);
    sqlite3_finalize(ins);
    sqlite3_finalize(fts);
    sqlite3_close(db);
    free(data);
    printf("%ld %.3f\n", rows, s);
    return 0;
}

/* One transaction per row at FULL (or `sync`: NORMAL): the limit of the create figures
 * (as kernel_bench.c). */
static int cmd_bareinsert(const char *dbpath, long n, const char *sync)
{
    sqlite3 *db = open_db(dbpath, SQLITE_OPEN_READWRITE);
    exec(db, strcmp(sync, "NORMAL") == 0
                 ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                 : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
    sqlite3_stmt *ins, *fts, *begin, *commit;
    if (sqlite3_prepare_v2(db, "INSERT INTO \"" BARE "\" (created_at, updated_at, created_by, owner, "
                               "team, version, first_name, last_name, email, phone, city, country, "
                               "score) VALUES (?, ?, NULL, NULL, NULL, 1, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &ins, NULL) ||
        sqlite3_prepare_v2(db, "INSERT INTO \"" BARE ":fts\"(rowid, first_name, last_name, email) "
                               "VALUES (?, ?, ?, ?)", -1, &fts, NULL) ||
        sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL) ||
        sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL))
        fail(db, "prepare");
    /* 64 random bits: pid ^ time repeated once in a full run (a UNIQUE failure on email) */
    unsigned long long seed;
    sqlite3_randomness(sizeof seed, &seed);
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        char at[32], email[96], first[32], last[32], phone[32];
        time_t t = time(NULL);
        strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
        snprintf(email, sizeof email, "bare%llx.%ld@example.com", seed, i);
        snprintf(first, sizeof first, "Bench%ld", i % 997);
        snprintf(last, sizeof last, "Writer%ld", i % 991);
        snprintf(phone, sizeof phone, "+44 20 %04ld", i % 10000);
        step_done(db, begin, "begin");
        sqlite3_bind_text(ins, 1, at, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 2, at, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 3, first, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 4, last, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 5, email, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 6, phone, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 7, "London", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 8, "UK", -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 9, i % 1000);
        step_done(db, ins, "insert");
        sqlite3_bind_int64(fts, 1, sqlite3_last_insert_rowid(db));
        sqlite3_bind_text(fts, 2, first, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(fts, 3, last, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(fts, 4, email, -1, SQLITE_TRANSIENT);
        step_done(db, fts, "fts");
        step_done(db, commit, "commit");
    }
    double s = now_s() - t0;
    sqlite3_finalize(ins);
    sqlite3_finalize(fts);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_close(db);
    printf("%.1f\n", n / s);
    return 0;
}

static int cmd_maxid(const char *dbpath)
{
    sqlite3 *db = open_db(dbpath, SQLITE_OPEN_READONLY);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT max(id) FROM \"" TYPE "\"", -1, &st, NULL)) fail(db, "maxid");
    if (sqlite3_step(st) != SQLITE_ROW) fail(db, "maxid");
    printf("%lld\n", (long long)sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "mktype") == 0) return cmd_mktype(argv[2]);
    if (argc >= 5 && strcmp(argv[1], "csv") == 0) return cmd_csv(argv[2], atol(argv[3]), argv[4]);
    if (argc >= 4 && strcmp(argv[1], "lua") == 0) return cmd_lua(argv[2], argv[3]);
    if (argc >= 5 && strcmp(argv[1], "bareload") == 0) return cmd_bareload(argv[2], argv[3], argv[4]);
    if (argc >= 4 && strcmp(argv[1], "bareinsert") == 0)
        return cmd_bareinsert(argv[2], atol(argv[3]), argc >= 5 ? argv[4] : "FULL");
    if (argc >= 3 && strcmp(argv[1], "maxid") == 0) return cmd_maxid(argv[2]);
    fprintf(stderr, "usage: see the comment at the top of bench/http_tool.c\n");
    return 2;
}
