/*
 * kernel_bench.c — the kernel's figures through its C API on a large
 * crm.contact table, each side by side with bare SQLite doing the same work in
 * the same run (bench/README.md explains every figure).
 *
 *   get      crm_record_get (system and a non-admin "all" reader) vs a bare
 *            SELECT of the same columns + the same JSON object built with Jansson
 *   create   crm_record_create (one transaction: row, FTS, history, outbox)
 *            vs a bare INSERT of row + FTS row per transaction, same table shape,
 *            at synchronous=FULL and NORMAL
 *   list     crm_record_find city=<v> (limit 50): by id, by last_name, and a
 *            page deep in the last_name order; p50 / p99 latency
 *
 * The data set is generated once per row count into bench/.data/contacts-N/
 * (through crm_record_create, batched in outer transactions, synchronous=OFF)
 * and copied to bench/.data/run/ before each run, so the writes a run makes
 * never change the cache.
 *
 * Environment: BENCH_ROWS (1000000), BENCH_REPS (5), BENCH_DATA (bench/.data),
 * BENCH_REPORT (bench/REPORT.md), BENCH_ONLY (get|create|list: one group, for
 * profiling).
 */
#include "../kernel/auth.h"
#include "../kernel/kernel.h"
#include "../kernel/perm.h"
#include "../kernel/record.h"
#include "../kernel/schema.h"
#include "../kernel/store.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define TYPE "crm.contact"
#define BARE "bare.contact"
#define READER "bench_reader"
#define MAXREPS 15

static long rows_n = 1000000;
static int reps = 5;
static const char *data_root = "bench/.data";
static const char *only = NULL;

/* ---- helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    const crm_error *e = crm_error_last();
    fprintf(stderr, "bench: %s: %s\n", what, e->message && *e->message ? e->message : "(no message)");
    exit(1);
}

static void bare_check(sqlite3 *db, int rc, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE) {
        fprintf(stderr, "bench: bare %s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

static void bare_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "bench: bare exec %.80s: %s\n", sql, err);
        exit(1);
    }
}

/* splitmix64: deterministic, seeded, good enough for test data. */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static unsigned rndn(unsigned n) { return (unsigned)(rnd() % n); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double tmp[MAXREPS];
    memcpy(tmp, v, sizeof(double) * (size_t)n);
    qsort(tmp, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

static void mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    mkdir(buf, 0755);
}

static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char buf[1 << 16];
    ssize_t n;
    if (in < 0 || out < 0) {
        fprintf(stderr, "bench: copy %s -> %s: %s\n", from, to, strerror(errno));
        exit(1);
    }
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) {
            fprintf(stderr, "bench: write %s: %s\n", to, strerror(errno));
            exit(1);
        }
    close(in);
    close(out);
}

/* ---- data ---- */

/* Per language: first names, last names, cities, a country and a phone prefix. */
typedef struct lang {
    const char *first[10];
    const char *last[10];
    const char *city[20];
    const char *country;
    const char *phone;
} lang;

static const lang langs[] = {
    {{"James", "Mary", "John", "Linda", "Robert", "Susan", "Emily", "David", "Sarah", "Oliver"},
     {"Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor", "Clark"},
     {"London", "Manchester", "Leeds", "Bristol", "Glasgow", "Dublin", "Boston", "Chicago", "Denver",
      "Seattle", "Austin", "Toronto", "Sydney", "Auckland", "Liverpool", "Oxford", "Cambridge",
      "Portland", "Phoenix", "Atlanta"},
     "UK", "+44 20 "},
    {{"Γιώργος", "Μαρία", "Νίκος", "Ελένη", "Κώστας", "Σοφία", "Δημήτρης", "Άννα", "Γιάννης", "Κατερίνα"},
     {"Παπαδόπουλος", "Παπαδοπούλου", "Νικολάου", "Γεωργίου", "Οικονόμου", "Δημητρίου", "Ιωάννου",
      "Κωνσταντίνου", "Βασιλείου", "Αλεξίου"},
     {"Αθήνα", "Θεσσαλονίκη", "Πάτρα", "Ηράκλειο", "Λάρισα", "Βόλος", "Ιωάννινα", "Χανιά", "Ρόδος",
      "Καβάλα", "Σέρρες", "Καλαμάτα", "Κομοτηνή", "Τρίκαλα", "Χαλκίδα", "Κέρκυρα", "Λαμία", "Δράμα",
      "Κοζάνη", "Ξάνθη"},
     "GR", "+30 210 "},
    {{"נועה", "דוד", "יעל", "משה", "שרה", "יוסף", "מיכל", "אברהם", "רחל", "דניאל"},
     {"כהן", "לוי", "מזרחי", "פרץ", "ביטון", "דהן", "אברהם", "פרידמן", "אזולאי", "מלכה"},
     {"ירושלים", "תל אביב", "חיפה", "ראשון לציון", "פתח תקווה", "אשדוד", "נתניה", "באר שבע",
      "חולון", "בני ברק", "רמת גן", "אשקלון", "רחובות", "בת ים", "הרצליה", "כפר סבא", "חדרה",
      "מודיעין", "לוד", "רעננה"},
     "IL", "+972 3 "},
    {{"محمد", "فاطمه", "علی", "زهرا", "حسین", "مریم", "رضا", "سارا", "مهدی", "نرگس"},
     {"محمدی", "حسینی", "احمدی", "رضایی", "کریمی", "موسوی", "جعفری", "کاظمی", "رحیمی", "صادقی"},
     {"تهران", "مشهد", "اصفهان", "کرج", "شیراز", "تبریز", "قم", "اهواز", "کرمانشاه", "ارومیه",
      "رشت", "زاهدان", "همدان", "کرمان", "یزد", "اردبیل", "بندرعباس", "اراک", "زنجان", "قزوین"},
     "IR", "+98 21 "},
    {{"伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋"},
     {"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"},
     {"北京", "上海", "广州", "深圳", "成都", "重庆", "天津", "武汉", "西安", "杭州", "南京", "苏州",
      "郑州", "长沙", "沈阳", "青岛", "大连", "厦门", "昆明", "哈尔滨"},
     "CN", "+86 10 "},
    {{"Александр", "Мария", "Дмитрий", "Анна", "Сергей", "Елена", "Иван", "Ольга", "Михаил", "Наталья"},
     {"Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
      "Новиков", "Федоров"},
     {"Москва", "Санкт-Петербург", "Новосибирск", "Екатеринбург", "Казань", "Нижний Новгород",
      "Челябинск", "Самара", "Омск", "Ростов-на-Дону", "Уфа", "Красноярск", "Воронеж", "Пермь",
      "Волгоград", "Краснодар", "Саратов", "Тюмень", "Тольятти", "Ижевск"},
     "RU", "+7 495 "},
};
#define NLANGS ((int)CRM_ARRAY_LEN(langs))
#define NCITIES (NLANGS * 20)

static const char *city_name(int i) { return langs[i / 20].city[i % 20]; }

/* The fields of one generated contact; `tag` keeps emails unique across sets. */
static json_t *make_contact(long i, const char *tag)
{
    const lang *l = &langs[rndn(NLANGS)];
    char email[96], phone[40];
    snprintf(email, sizeof email, "c%ld.%s%u@example%u.com", i, tag, rndn(1000), rndn(50));
    snprintf(phone, sizeof phone, "%s%03u %04u", l->phone, rndn(1000), rndn(10000));
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "first_name", l->first[rndn(10)],
                     "last_name", l->last[rndn(10)], "email", email, "phone", phone, "city",
                     l->city[rndn(20)], "country", l->country, "score", (json_int_t)rndn(1000));
}

static const char *schema_json =
    "[{\"name\":\"first_name\",\"kind\":\"text\",\"required\":true,\"searchable\":true,\"max_length\":100},"
    " {\"name\":\"last_name\",\"kind\":\"text\",\"required\":true,\"searchable\":true,\"max_length\":100},"
    " {\"name\":\"email\",\"kind\":\"email\",\"unique\":true,\"searchable\":true},"
    " {\"name\":\"phone\",\"kind\":\"phone\"},"
    " {\"name\":\"city\",\"kind\":\"text\",\"indexed\":true},"
    " {\"name\":\"country\",\"kind\":\"text\"},"
    " {\"name\":\"score\",\"kind\":\"int\",\"indexed\":true}]";

static const char *const fields[] = {"first_name", "last_name", "email", "phone",
                                     "city",       "country",   "score"};
#define NFIELDS 7

static crm_kernel *open_kernel(const char *dir, int sync)
{
    crm_kernel_opts o = CRM_KERNEL_OPTS_INIT;
    crm_kernel *k;
    o.data_dir = dir;
    o.synchronous = sync;
    if (crm_kernel_open(&k, &o)) die("kernel open");
    return k;
}

static sqlite3 *open_bare(const char *path)
{
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench: open %s: %s\n", path, sqlite3_errmsg(db));
        exit(1);
    }
    /* The kernel's pragmas (store.c), so both sides run under the same settings. */
    sqlite3_busy_timeout(db, 5000);
    bare_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                  "PRAGMA trusted_schema=OFF; PRAGMA journal_size_limit=67108864;");
    return db;
}

/* The bare twin of crm.contact: the kernel's own DDL with the name changed. */
static void bare_create_twin(sqlite3 *db)
{
    sqlite3_stmt *st;
    char **ddl = NULL;
    int n = 0;
    bare_check(db, sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND "
                                          "(tbl_name = ?1 OR name = ?1 || ':fts') ORDER BY type = 'index'",
                                      -1, &st, NULL), "ddl");
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
        ddl = realloc(ddl, sizeof *ddl * (size_t)(n + 1));
        ddl[n++] = crm_buf_detach(&b);
    }
    sqlite3_finalize(st);
    for (int i = 0; i < n; i++) {
        bare_exec(db, ddl[i]);
        free(ddl[i]);
    }
    free(ddl);
}

/* ---- generation ---- */

static void generate(const char *dir, const char *db_path, const char *done_path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) exit(1);
    mkdirs(dir);
    fprintf(stderr, "bench: generating %ld contacts into %s ...\n", rows_n, dir);
    crm_kernel *k = open_kernel(dir, 0);
    json_t *spec = json_loads(schema_json, 0, NULL);
    if (crm_schema_define_type(k->schema, TYPE, "Contact", "crm", spec)) die("define type");
    json_decref(spec);

    /* A non-admin reader: role "bench_readers" with read "all" on contacts. */
    int64_t user, role;
    crm_ctx sys;
    crm_ctx_init(&sys, k, crm_principal_system(), NULL);
    if (crm_auth_init()) die("auth init");
    if (crm_user_create(k, READER, "bench-password-1", false, "Bench Reader", &user)) die("user");
    json_t *r = json_pack("{s:s}", "name", "bench_readers"), *out = NULL;
    if (crm_record_create(&sys, "core.role", r, &out)) die("role");
    role = json_integer_value(json_object_get(out, "id"));
    json_decref(r);
    json_decref(out);
    if (crm_perm_grant(k->perm, role, TYPE, CRM_ACT_READ, CRM_LEVEL_ALL) ||
        crm_perm_user_role(k->perm, user, role, true))
        die("grant");

    crm_conn *conn = crm_store_conn(k->store);
    rng_state = 20240601;
    double t0 = now_s();
    const long batch = 10000;
    for (long i = 0; i < rows_n; i += batch) {
        if (crm_tx_begin(conn)) die("begin");
        for (long j = i; j < i + batch && j < rows_n; j++) {
            json_t *c = make_contact(j, "g");
            if (crm_record_create(&sys, TYPE, c, NULL)) die("create");
            json_decref(c);
        }
        if (crm_tx_commit(conn)) die("commit");
        if ((i / batch) % 10 == 9)
            fprintf(stderr, "bench:   %ld rows, %.0f rows/s\n", i + batch, (i + batch) / (now_s() - t0));
    }
    double load = now_s() - t0;
    crm_kernel_close(k);

    /* The bare twin: same DDL, same rows, same FTS content. */
    double t1 = now_s();
    sqlite3 *db = open_bare(db_path);
    bare_exec(db, "PRAGMA synchronous=OFF");
    bare_create_twin(db);
    bare_exec(db, "BEGIN; INSERT INTO \"" BARE "\" SELECT * FROM \"" TYPE "\";"
                  "INSERT INTO \"" BARE ":fts\"(rowid, first_name, last_name, email) "
                  "SELECT id, first_name, last_name, email FROM \"" TYPE "\"; COMMIT;"
                  "PRAGMA wal_checkpoint(TRUNCATE);");
    sqlite3_close(db);
    double twin = now_s() - t1;
    FILE *f = fopen(done_path, "w");
    if (!f) exit(1);
    fprintf(f, "%.1f %.1f\n", load, twin);
    fclose(f);
    fprintf(stderr, "bench: generated in %.1f s (kernel load) + %.1f s (bare twin)\n", load, twin);
}

/* ---- figures ---- */

typedef struct figure {
    const char *group, *name, *unit;
    double v[MAXREPS];
    const char *bare_name;
    double bare[MAXREPS]; /* 0 when there is no bare column */
    const char *target;   /* "ratio>=0.6", "max<=2", or NULL */
    double target_value;
    bool ratio_target; /* target on crm/bare; else on the crm value (lower is better) */
    bool higher_better;
} figure;

#define MAXFIG 32
static figure figs[MAXFIG];
static int nfigs;

static figure *fig(const char *group, const char *name, const char *unit, const char *bare_name)
{
    figure *f = &figs[nfigs++];
    memset(f, 0, sizeof *f);
    f->group = group;
    f->name = name;
    f->unit = unit;
    f->bare_name = bare_name;
    return f;
}

/* ---- get ---- */

static json_t *bare_row_json(sqlite3_stmt *st)
{
    static const char *const sys[] = {"id",   "created_at", "updated_at", "created_by",
                                      "owner", "team",      "version",    "deleted_at"};
    json_t *o = json_object();
    for (int c = 0; c < 8 + NFIELDS; c++) {
        const char *key = c < 8 ? sys[c] : fields[c - 8];
        json_t *v;
        switch (sqlite3_column_type(st, c)) {
        case SQLITE_NULL: v = json_null(); break;
        case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(st, c)); break;
        default:
            v = json_stringn((const char *)sqlite3_column_text(st, c),
                             (size_t)sqlite3_column_bytes(st, c));
        }
        json_object_set_new(o, key, v);
    }
    return o;
}

#define SELECT_COLS                                                                              \
    "id, created_at, updated_at, created_by, owner, team, version, deleted_at, \"first_name\", " \
    "\"last_name\", \"email\", \"phone\", \"city\", \"country\", \"score\""

static void bench_get(crm_kernel *k, sqlite3 *db, crm_principal *reader, int64_t maxid)
{
    const int n = 30000;
    int64_t *ids = malloc(sizeof *ids * n);
    figure *fs = fig("get", "get by id, system principal", "ops/s", "SELECT + Jansson object");
    figure *fr = fig("get", "get by id, non-admin reader (role: read all)", "ops/s",
                     "SELECT + Jansson object");
    figure *fb = fig("get", "bare SELECT alone (no JSON), for reference", "ops/s", NULL);
    fs->target = fr->target = "≥ 0.6 × bare";
    fs->target_value = fr->target_value = 0.6;
    fs->ratio_target = fr->ratio_target = true;
    fs->higher_better = fr->higher_better = fb->higher_better = true;
    crm_ctx sys, rd;
    crm_ctx_init(&sys, k, crm_principal_system(), NULL);
    crm_ctx_init(&rd, k, reader, NULL);
    sqlite3_stmt *st;
    bare_check(db, sqlite3_prepare_v2(db, "SELECT " SELECT_COLS " FROM \"" TYPE "\" WHERE id = ?",
                                      -1, &st, NULL), "prepare get");
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < n; i++) ids[i] = 1 + (int64_t)(rnd() % (uint64_t)maxid);
        for (int variant = 0; variant < 4; variant++) {
            double t0 = now_s();
            for (int i = 0; i < n; i++) {
                json_t *out = NULL;
                if (variant < 2) {
                    if (crm_record_get(variant ? &rd : &sys, TYPE, ids[i], false, &out)) die("get");
                    json_decref(out);
                } else {
                    sqlite3_bind_int64(st, 1, ids[i]);
                    if (sqlite3_step(st) != SQLITE_ROW) bare_check(db, SQLITE_ERROR, "get");
                    if (variant == 2) json_decref(bare_row_json(st));
                    else (void)sqlite3_column_text(st, 9);
                    sqlite3_reset(st);
                }
            }
            double rate = n / (now_s() - t0);
            if (variant == 0) fs->v[r] = rate;
            else if (variant == 1) fr->v[r] = rate;
            else if (variant == 2) fs->bare[r] = fr->bare[r] = rate;
            else fb->v[r] = rate;
        }
        fprintf(stderr, "bench: get rep %d: sys %.0f reader %.0f bare+json %.0f bare %.0f /s\n", r + 1,
                fs->v[r], fr->v[r], fs->bare[r], fb->v[r]);
    }
    sqlite3_finalize(st);
    free(ids);
}

/* ---- create ---- */

static void bench_create(crm_kernel *k, sqlite3 *db, int sync, int n)
{
    static char names[2][64];
    const char *level = sync == 2 ? "FULL" : "NORMAL";
    snprintf(names[sync - 1], sizeof names[0], "create, synchronous=%s (%d per run)", level, n);
    figure *f = fig("create", names[sync - 1], "ops/s", "INSERT row + FTS row");
    f->target = "≥ 0.5 × bare";
    f->target_value = 0.5;
    f->ratio_target = true;
    f->higher_better = true;
    crm_ctx sys;
    crm_ctx_init(&sys, k, crm_principal_system(), NULL);
    crm_conn *conn = crm_store_conn(k->store);
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA synchronous=%s", level);
    if (crm_conn_exec(conn, pragma)) die("pragma");
    bare_exec(db, pragma);
    sqlite3_stmt *ins, *fts, *begin, *commit;
    bare_check(db, sqlite3_prepare_v2(db, "INSERT INTO \"" BARE "\" (created_at, updated_at, "
                                          "created_by, owner, team, version, first_name, last_name, "
                                          "email, phone, city, country, score) VALUES "
                                          "(?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)",
                                      -1, &ins, NULL), "prepare insert");
    bare_check(db, sqlite3_prepare_v2(db, "INSERT INTO \"" BARE ":fts\"(rowid, first_name, "
                                          "last_name, email) VALUES (?, ?, ?, ?)", -1, &fts, NULL),
               "prepare fts");
    bare_check(db, sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL), "begin");
    bare_check(db, sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL), "commit");
    json_t **in = malloc(sizeof *in * (size_t)n);
    for (int r = 0; r < reps; r++) {
        char tag[32];
        /* Alternate who goes first, and start each side with an empty WAL, so that
         * neither pays for checkpointing the other's pages. */
        for (int turn = 0; turn < 2; turn++) {
            int side = turn ^ (r & 1);
            snprintf(tag, sizeof tag, "%s%d%c", level, r, side ? 'b' : 'k');
            for (int i = 0; i < n; i++) in[i] = make_contact(i, tag);
            bare_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
            double t0 = now_s();
            for (int i = 0; i < n; i++) {
                if (side == 0) {
                    if (crm_record_create(&sys, TYPE, in[i], NULL)) die("create");
                    continue;
                }
                char at[21];
                crm_time_format(crm_now(), at);
                bare_check(db, sqlite3_step(begin), "begin");
                sqlite3_reset(begin);
                sqlite3_bind_text(ins, 1, at, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(ins, 2, at, -1, SQLITE_TRANSIENT);
                sqlite3_bind_null(ins, 3);
                sqlite3_bind_null(ins, 4);
                sqlite3_bind_null(ins, 5);
                for (int c = 0; c < NFIELDS; c++) {
                    json_t *v = json_object_get(in[i], fields[c]);
                    if (json_is_integer(v)) sqlite3_bind_int64(ins, 6 + c, json_integer_value(v));
                    else sqlite3_bind_text(ins, 6 + c, json_string_value(v), -1, SQLITE_STATIC);
                }
                bare_check(db, sqlite3_step(ins), "insert");
                sqlite3_reset(ins);
                sqlite3_bind_int64(fts, 1, sqlite3_last_insert_rowid(db));
                for (int c = 0; c < 3; c++)
                    sqlite3_bind_text(fts, 2 + c, json_string_value(json_object_get(in[i], fields[c])),
                                      -1, SQLITE_STATIC);
                bare_check(db, sqlite3_step(fts), "fts insert");
                sqlite3_reset(fts);
                bare_check(db, sqlite3_step(commit), "commit");
                sqlite3_reset(commit);
            }
            double rate = n / (now_s() - t0);
            if (side == 0) f->v[r] = rate;
            else f->bare[r] = rate;
            for (int i = 0; i < n; i++) json_decref(in[i]);
        }
        fprintf(stderr, "bench: create %s rep %d: crm %.0f bare %.0f /s\n", level, r + 1, f->v[r],
                f->bare[r]);
    }
    free(in);
    sqlite3_finalize(ins);
    sqlite3_finalize(fts);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
}

/* ---- list ---- */

/* Latencies (ms) of `nq` list queries of one kind; kind 0 by id, 1 by last_name, 2 deep page. */
typedef struct deep {
    int city;
    char *cursor;                 /* kernel cursor */
    char last_name[128];          /* the same position for the bare query */
    int64_t id;
} deep;

static void bare_list(sqlite3_stmt *st)
{
    json_t *data = json_array();
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW)
        if (rows++ < 50) json_array_append_new(data, bare_row_json(st));
    sqlite3_reset(st);
    json_decref(data);
}

static void bench_list(crm_kernel *k, sqlite3 *db)
{
    const int nq = 1000;
    static const char *const names[] = {"list city=<v>, sort by id, limit 50",
                                        "list city=<v>, sort by last_name (index city,last_name), limit 50",
                                        "list city=<v>, sort by last_name (index city,last_name), page at ~90% (cursor)"};
    static const char *const bare_sql[] = {
        "SELECT " SELECT_COLS " FROM \"" TYPE "\" WHERE deleted_at IS NULL AND \"city\" = ? "
        "ORDER BY \"id\" LIMIT 51",
        "SELECT " SELECT_COLS " FROM \"" TYPE "\" WHERE deleted_at IS NULL AND \"city\" = ? "
        "ORDER BY \"last_name\", \"id\" LIMIT 51",
        "SELECT " SELECT_COLS " FROM \"" TYPE "\" WHERE deleted_at IS NULL AND \"city\" = ? AND "
        "((\"last_name\" > ?) OR (\"last_name\" = ? AND \"id\" > ?)) "
        "ORDER BY \"last_name\", \"id\" LIMIT 51"};
    figure *p50[3], *p99[3];
    sqlite3_stmt *st[3];
    crm_ctx sys;
    crm_ctx_init(&sys, k, crm_principal_system(), NULL);
    for (int kind = 0; kind < 3; kind++) {
        static char label[3][2][96];
        snprintf(label[kind][0], sizeof label[0][0], "%s: p50", names[kind]);
        snprintf(label[kind][1], sizeof label[0][1], "%s: p99", names[kind]);
        p50[kind] = fig("list", label[kind][0], "ms", "same SQL + Jansson");
        p99[kind] = fig("list", label[kind][1], "ms", "same SQL + Jansson");
        p99[kind]->target = "p99 ≤ 2 ms";
        p99[kind]->target_value = 2;
        bare_check(db, sqlite3_prepare_v2(db, bare_sql[kind], -1, &st[kind], NULL), "prepare list");
    }

    /* A cursor ~90% deep into each city's last_name order, found by paging with limit 1000. */
    deep dp[NCITIES];
    double t0 = now_s();
    for (int c = 0; c < NCITIES; c++) {
        crm_query q;
        json_t *out = NULL;
        int64_t total;
        crm_query_init(&q);
        crm_query_add(&q, "city", city_name(c));
        crm_query_add(&q, "count", "1");
        crm_query_add(&q, "limit", "1");
        if (crm_record_find(&sys, TYPE, &q, &out)) die("count");
        total = json_integer_value(json_object_get(out, "count"));
        json_decref(out);
        crm_query_free(&q);
        dp[c].city = c;
        dp[c].cursor = NULL;
        long seen = 0, want = (long)(total * 0.9);
        while (seen < want) {
            char lim[16];
            long step = want - seen > 1000 ? 1000 : want - seen;
            snprintf(lim, sizeof lim, "%ld", step);
            crm_query_init(&q);
            crm_query_add(&q, "city", city_name(c));
            crm_query_add(&q, "sort", "last_name");
            crm_query_add(&q, "limit", lim);
            if (dp[c].cursor) crm_query_add(&q, "cursor", dp[c].cursor);
            if (crm_record_find(&sys, TYPE, &q, &out)) die("page");
            json_t *data = json_object_get(out, "data"), *lastrow;
            lastrow = json_array_get(data, json_array_size(data) - 1);
            const char *next = json_string_value(json_object_get(out, "next"));
            seen += (long)json_array_size(data);
            free(dp[c].cursor);
            dp[c].cursor = next ? strdup(next) : NULL;
            if (lastrow) {
                snprintf(dp[c].last_name, sizeof dp[c].last_name, "%s",
                         json_string_value(json_object_get(lastrow, "last_name")));
                dp[c].id = json_integer_value(json_object_get(lastrow, "id"));
            }
            json_decref(out);
            crm_query_free(&q);
            if (!next) break;
        }
    }
    fprintf(stderr, "bench: deep cursors for %d cities in %.1f s\n", NCITIES, now_s() - t0);

    double *lat = malloc(sizeof *lat * (size_t)nq), *blat = malloc(sizeof *blat * (size_t)nq);
    int *pick = malloc(sizeof *pick * (size_t)nq);
    for (int r = 0; r < reps; r++)
        for (int kind = 0; kind < 3; kind++) {
            for (int i = 0; i < nq; i++) pick[i] = (int)rndn(NCITIES);
            for (int i = 0; i < nq; i++) {
                crm_query q;
                json_t *out = NULL;
                const deep *d = &dp[pick[i]];
                crm_query_init(&q);
                crm_query_add(&q, "city", city_name(pick[i]));
                if (kind) crm_query_add(&q, "sort", "last_name");
                if (kind == 2 && d->cursor) crm_query_add(&q, "cursor", d->cursor);
                double a = now_s();
                if (crm_record_find(&sys, TYPE, &q, &out)) die("find");
                lat[i] = (now_s() - a) * 1e3;
                json_decref(out);
                crm_query_free(&q);

                a = now_s();
                sqlite3_bind_text(st[kind], 1, city_name(pick[i]), -1, SQLITE_STATIC);
                if (kind == 2) {
                    sqlite3_bind_text(st[kind], 2, d->last_name, -1, SQLITE_STATIC);
                    sqlite3_bind_text(st[kind], 3, d->last_name, -1, SQLITE_STATIC);
                    sqlite3_bind_int64(st[kind], 4, d->id);
                }
                bare_list(st[kind]);
                blat[i] = (now_s() - a) * 1e3;
            }
            p50[kind]->v[r] = pct(lat, nq, 0.50);
            p99[kind]->v[r] = pct(lat, nq, 0.99);
            p50[kind]->bare[r] = pct(blat, nq, 0.50);
            p99[kind]->bare[r] = pct(blat, nq, 0.99);
            fprintf(stderr, "bench: list %d rep %d: p50 %.3f p99 %.3f ms (bare %.3f / %.3f)\n", kind,
                    r + 1, p50[kind]->v[r], p99[kind]->v[r], p50[kind]->bare[r], p99[kind]->bare[r]);
        }
    for (int c = 0; c < NCITIES; c++) free(dp[c].cursor);
    for (int kind = 0; kind < 3; kind++) sqlite3_finalize(st[kind]);
    free(lat);
    free(blat);
    free(pick);
}

/* ---- report ---- */

static void range_str(char *out, size_t n, const double *v, const char *unit)
{
    double lo = v[0], hi = v[0];
    for (int i = 1; i < reps; i++) {
        if (v[i] < lo) lo = v[i];
        if (v[i] > hi) hi = v[i];
    }
    if (strcmp(unit, "ms") == 0)
        snprintf(out, n, "%.3f (%.3f–%.3f)", median(v, reps), lo, hi);
    else
        snprintf(out, n, "%.0f (%.0f–%.0f)", median(v, reps), lo, hi);
}

/* One row: figure, crm, bare, ratio, target, met. */
static void row_cells(const figure *f, char cells[6][160])
{
    double m = median(f->v, reps);
    char crm[80], bare[80];
    range_str(crm, sizeof crm, f->v, f->unit);
    snprintf(cells[0], 160, "%s [%s]", f->name, f->unit);
    snprintf(cells[1], 160, "%s", crm);
    if (f->bare_name) {
        range_str(bare, sizeof bare, f->bare, f->unit);
        snprintf(cells[2], 160, "%s: %s", f->bare_name, bare);
        double bm = median(f->bare, reps);
        /* ratio as "how much of bare's speed": rate/rate, or time(bare)/time(crm) */
        double ratio = f->higher_better ? m / bm : bm / m;
        snprintf(cells[3], 160, "%.2f", ratio);
        if (f->target) {
            bool met = f->ratio_target ? ratio >= f->target_value : m <= f->target_value;
            snprintf(cells[4], 160, "%s", f->target);
            snprintf(cells[5], 160, "%s", met ? "yes" : "**no**");
            return;
        }
    } else {
        snprintf(cells[2], 160, "—");
        snprintf(cells[3], 160, "—");
    }
    snprintf(cells[4], 160, "%s", f->target ? f->target : "—");
    if (f->target) snprintf(cells[5], 160, "%s", m <= f->target_value ? "yes" : "**no**");
    else snprintf(cells[5], 160, "—");
}

static void cpu_model(char *out, size_t n)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    snprintf(out, n, "unknown");
    if (!f) return;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                p += 1 + (p[1] == ' ');
                p[strcspn(p, "\n")] = 0;
                snprintf(out, n, "%s", p);
            }
            break;
        }
    fclose(f);
}

static void report(const char *path, double load_s, double twin_s, bool generated, double run_s)
{
    crm_buf md = CRM_BUF_INIT;
    char cpu[256], date[64], host[300] = "";
    time_t t = time(NULL);
    struct utsname u;
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&t));
    cpu_model(cpu, sizeof cpu);
    if (uname(&u) == 0) snprintf(host, sizeof host, "%s %s", u.sysname, u.release);

    /* stdout: a plain table */
    printf("\nkernel benchmarks — %ld contacts, %d runs each, median (min–max)\n", rows_n, reps);
    printf("%-72s %-28s %-48s %-6s %-14s %s\n", "figure", "crm", "bare", "ratio", "target", "met");
    for (int i = 0; i < nfigs; i++) {
        char c[6][160];
        row_cells(&figs[i], c);
        printf("%-72s %-28s %-48s %-6s %-14s %s\n", c[0], c[1], c[2], c[3], c[4], c[5]);
    }
    printf("data set: %s in %.1f s (kernel load, synchronous=OFF) + %.1f s (bare twin)%s; run %.0f s\n",
           generated ? "generated" : "cached, generated earlier", load_s, twin_s,
           generated ? "" : "", run_s);

    crm_buf_puts(&md, "<!-- kernel:begin -->\n## Kernel (C API)\n\n");
    crm_buf_printf(&md, "- Date: %s\n- Machine: %ld CPUs (nproc), %s, %s\n", date,
                   sysconf(_SC_NPROCESSORS_ONLN), cpu, host);
    crm_buf_printf(&md, "- SQLite %s, Jansson %s\n", sqlite3_libversion(), JANSSON_VERSION);
    crm_buf_printf(&md, "- Data: %ld crm.contact rows; %d runs of each figure; **median (min–max)**, "
                        "ratios are median / median\n",
                   rows_n, reps);
    crm_buf_printf(&md, "- Load: %ld records through crm_record_create in batches of 10,000 "
                        "(synchronous=OFF) took %.1f s (%.0f records/s); the bare twin table took "
                        "%.1f s%s\n\n",
                   rows_n, load_s, load_s > 0 ? rows_n / load_s : 0, twin_s,
                   generated ? "" : " (cached data set, generated by an earlier run)");
    crm_buf_puts(&md, "| figure | crm | bare limit | ratio | target | met |\n"
                      "|---|---|---|---|---|---|\n");
    for (int i = 0; i < nfigs; i++) {
        char c[6][160];
        row_cells(&figs[i], c);
        crm_buf_printf(&md, "| %s | %s | %s | %s | %s | %s |\n", c[0], c[1], c[2], c[3], c[4], c[5]);
    }
    crm_buf_puts(&md, "\nRatio: crm's rate / bare's rate (get, create) or bare's latency / crm's "
                      "latency (list); 1.00 would be as fast as bare SQLite. See bench/README.md.\n"
                      "<!-- kernel:end -->\n");

    /* Replace only the kernel section of an existing report. */
    char *old = NULL;
    FILE *f = fopen(path, "r");
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        old = calloc(1, (size_t)n + 1);
        if (fread(old, 1, (size_t)n, f) != (size_t)n) n = 0;
        fclose(f);
    }
    crm_buf all = CRM_BUF_INIT;
    const char *b = old ? strstr(old, "<!-- kernel:begin -->") : NULL;
    const char *e = b ? strstr(b, "<!-- kernel:end -->") : NULL;
    if (b && e) {
        e += strlen("<!-- kernel:end -->");
        if (*e == '\n') e++;
        crm_buf_put(&all, old, (size_t)(b - old));
        crm_buf_puts(&all, crm_buf_str(&md));
        crm_buf_puts(&all, e);
    } else if (old && *old) {
        crm_buf_puts(&all, old);
        if (all.len && all.ptr[all.len - 1] != '\n') crm_buf_putc(&all, '\n');
        crm_buf_putc(&all, '\n');
        crm_buf_puts(&all, crm_buf_str(&md));
    } else {
        crm_buf_puts(&all, "# Benchmark report\n\nWritten by `make bench` (bench/README.md explains "
                           "each figure). Sections are replaced independently.\n\n");
        crm_buf_puts(&all, crm_buf_str(&md));
    }
    f = fopen(path, "w");
    if (!f || fwrite(all.ptr, 1, all.len, f) != all.len) {
        fprintf(stderr, "bench: cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
    printf("report: %s\n", path);
    free(old);
    crm_buf_free(&all);
    crm_buf_free(&md);
}

int main(void)
{
    const char *s;
    if ((s = getenv("BENCH_ROWS")) && *s) rows_n = atol(s);
    if ((s = getenv("BENCH_REPS")) && *s) reps = atoi(s);
    if ((s = getenv("BENCH_DATA")) && *s) data_root = s;
    if ((s = getenv("BENCH_ONLY")) && *s) only = s;
    const char *report_path = (s = getenv("BENCH_REPORT")) && *s ? s : "bench/REPORT.md";
    if (rows_n < 1000 || reps < 1 || reps > MAXREPS) {
        fprintf(stderr, "bench: BENCH_ROWS >= 1000, 1 <= BENCH_REPS <= %d\n", MAXREPS);
        return 2;
    }
    crm_log_set_level(CRM_LOG_WARN);
    double start = now_s();

    char cache[4096], cache_db[4200], done[4200], run[4096], run_db[4200];
    snprintf(cache, sizeof cache, "%s/contacts-%ld", data_root, rows_n);
    snprintf(cache_db, sizeof cache_db, "%s/crm.db", cache);
    snprintf(done, sizeof done, "%s/complete", cache);
    snprintf(run, sizeof run, "%s/run", data_root);
    snprintf(run_db, sizeof run_db, "%s/crm.db", run);
    bool generated = false;
    double load_s = 0, twin_s = 0;
    FILE *f = fopen(done, "r");
    if (!f) {
        generate(cache, cache_db, done);
        generated = true;
        f = fopen(done, "r");
    }
    if (!f || fscanf(f, "%lf %lf", &load_s, &twin_s) != 2) {
        fprintf(stderr, "bench: bad %s\n", done);
        return 1;
    }
    fclose(f);

    /* A working copy: this run's writes never touch the cached data set. */
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", run);
    if (system(cmd) != 0) return 1;
    mkdirs(run);
    double t0 = now_s();
    copy_file(cache_db, run_db);
    fprintf(stderr, "bench: copied the data set in %.1f s\n", now_s() - t0);

    crm_kernel *k = open_kernel(run, 2);
    /* The composite index a site adds for lists filtered by city and sorted by name
     * (POST /types/{type}/indexes); the bare queries below use it too. */
    t0 = now_s();
    json_t *ix = json_pack("[s,s]", "city", "last_name");
    if (crm_schema_add_index(k->schema, TYPE, ix)) die("add index");
    json_decref(ix);
    fprintf(stderr, "bench: index (city, last_name) in %.1f s\n", now_s() - t0);
    sqlite3 *db = open_bare(run_db);
    int64_t reader_id, maxid = 0;
    crm_principal *reader;
    if (crm_user_find(k, READER, &reader_id) || crm_principal_load(k->perm, reader_id, &reader))
        die("reader");
    if (crm_conn_query_int(crm_store_conn(k->store), "SELECT max(id) FROM \"" TYPE "\"", &maxid, 0))
        die("max id");
    rng_state = 7;

    if (!only || strcmp(only, "get") == 0) bench_get(k, db, reader, maxid);
    /* Lists before creates, so they read the data set as generated. */
    if (!only || strcmp(only, "list") == 0) bench_list(k, db);
    if (!only || strcmp(only, "create") == 0) {
        int nf = rows_n >= 100000 ? 2000 : 500, nn = rows_n >= 100000 ? 20000 : 2000;
        if ((s = getenv("BENCH_CREATE_FULL"))) nf = atoi(s);
        if ((s = getenv("BENCH_CREATE_NORMAL"))) nn = atoi(s);
        bench_create(k, db, 2, nf);
        bench_create(k, db, 1, nn);
        crm_conn_exec(crm_store_conn(k->store), "PRAGMA synchronous=FULL");
    }

    crm_principal_free(reader);
    sqlite3_close(db);
    crm_kernel_close(k);
    if (!only) report(report_path, load_s, twin_s, generated, now_s() - start);
    else report("/dev/null", load_s, twin_s, generated, now_s() - start);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", run);
    if (system(cmd) != 0) return 1;
    return 0;
}
