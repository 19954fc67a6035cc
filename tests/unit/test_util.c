/* test_util.c — kernel/util.c: errors, buffers, clock, time formats, text, encoding. */
#include "t.h"

#include "../../kernel/jtext.h"
#include "../../kernel/util.h"

#include <pthread.h>
#include <time.h>

static void test_error_set_and_clear(void)
{
    const crm_error *e;

    crm_error_clear();
    e = crm_error_last();
    CHECK_INT(e->code, CRM_OK);
    CHECK_STR(e->message, "");
    CHECK(e->field == NULL);

    CHECK_INT(crm_error_set(CRM_EINVALID, "email", "field \"%s\": not an email", "email"),
              CRM_EINVALID);
    e = crm_error_last();
    CHECK_INT(e->code, CRM_EINVALID);
    CHECK_STR(e->message, "field \"email\": not an email");
    CHECK_STR(e->field, "email");

    /* Rewording an error with its own message and field (as the record layer does). */
    crm_error_set(CRM_ECONFLICT, crm_error_last()->field, "contact: %s (was: %s)",
                  crm_error_last()->field, crm_error_last()->message);
    CHECK_STR(crm_error_last()->message, "contact: email (was: field \"email\": not an email)");
    CHECK_STR(crm_error_last()->field, "email");

    crm_error_set(CRM_EBUSY, NULL, "busy");
    CHECK(crm_error_last()->field == NULL);
    crm_error_clear();
    CHECK_INT(crm_error_last()->code, CRM_OK);
    CHECK_STR(crm_error_last()->message, "");
}

static void *error_thread(void *arg)
{
    int *seen = arg;
    /* A fresh thread sees no error even though the main thread has one. */
    *seen = crm_error_last()->code;
    crm_error_set(CRM_EDENIED, NULL, "thread");
    return NULL;
}

static void test_error_thread_local(void)
{
    pthread_t th;
    int seen = 99;

    crm_error_set(CRM_ENOTFOUND, NULL, "main");
    REQUIRE(pthread_create(&th, NULL, error_thread, &seen) == 0);
    pthread_join(th, NULL);
    CHECK_INT(seen, CRM_OK);
    CHECK_INT(crm_error_last()->code, CRM_ENOTFOUND);
    CHECK_STR(crm_error_last()->message, "main");
}

static void test_error_names(void)
{
    CHECK_STR(crm_error_name(CRM_EINVALID), "invalid");
    CHECK_STR(crm_error_name(CRM_ENOTFOUND), "not_found");
    CHECK_STR(crm_error_name(CRM_EDENIED), "denied");
    CHECK_STR(crm_error_name(CRM_ECONFLICT), "conflict");
    CHECK_STR(crm_error_name(CRM_ESTALE), "stale");
    CHECK_STR(crm_error_name(CRM_EBUSY), "busy");
    CHECK_STR(crm_error_name(CRM_EFULL), "storage_full");
    CHECK_STR(crm_error_name(CRM_ELIMIT), "limit");
    CHECK_STR(crm_error_name(CRM_EINTERNAL), "internal");
    CHECK_STR(crm_error_name(-1234), "internal");
}

static void test_buf(void)
{
    crm_buf b = CRM_BUF_INIT;
    char *s;

    CHECK_STR(crm_buf_str(&b), "");
    crm_buf_puts(&b, "SELECT ");
    crm_buf_put_ident(&b, "we\"ird");
    crm_buf_putc(&b, ' ');
    crm_buf_printf(&b, "LIMIT %d", 50);
    CHECK_STR(crm_buf_str(&b), "SELECT \"we\"\"ird\" LIMIT 50");
    CHECK_INT(b.len, strlen("SELECT \"we\"\"ird\" LIMIT 50"));
    /* Growth well past the first allocation keeps contents. */
    for (int i = 0; i < 1000; i++) crm_buf_put(&b, "xy", 1);
    CHECK_INT(b.len, 25 + 1000);
    CHECK(b.ptr[b.len] == '\0');
    s = crm_buf_detach(&b);
    CHECK(b.ptr == NULL && b.len == 0);
    CHECK_INT(strlen(s), 1025);
    /* A printf longer than the spare room grows the buffer and formats it whole. */
    crm_buf_puts(&b, "<");
    crm_buf_printf(&b, "%s|%s", s, s);
    CHECK_INT(b.len, 1 + 1025 * 2 + 1);
    CHECK(b.ptr[1026] == '|' && b.ptr[b.len] == '\0' && b.ptr[b.len - 1] == 'x');
    free(s);
    crm_buf_free(&b);
    crm_buf_free(&b); /* idempotent */

    s = crm_sprintf("%s-%d", "a", 7);
    CHECK_STR(s, "a-7");
    free(s);
    s = crm_strndup("abcdef", 3);
    CHECK_STR(s, "abc");
    free(s);
}

static void test_clock(void)
{
    int64_t real;

    crm_clock_set(1700000000);
    CHECK_INT(crm_now(), 1700000000);
    crm_clock_set(-1);
    real = crm_now();
    CHECK(real > 1700000000 && real - (int64_t)time(NULL) <= 1);
    CHECK(crm_mono_us() > 0);
}

static void test_time_format(void)
{
    char t[21], d[11];

    crm_time_format(0, t);
    CHECK_STR(t, "1970-01-01T00:00:00Z");
    crm_time_format(1795316400, t); /* the example in the log format */
    CHECK_STR(t, "2026-11-22T03:00:00Z");
    crm_time_format(-1, t);
    CHECK_STR(t, "1969-12-31T23:59:59Z");
    crm_time_format(951782400, t);
    CHECK_STR(t, "2000-02-29T00:00:00Z");
    crm_date_format(951868799, d);
    CHECK_STR(d, "2000-02-29");
}

static void test_civil_roundtrip(void)
{
    int bad = 0;
    for (int64_t z = -800000; z <= 800000; z += 7) {
        int y;
        unsigned m, d;
        crm_civil_from_days(z, &y, &m, &d);
        if (crm_days_from_civil(y, m, d) != z) bad++;
    }
    CHECK_INT(bad, 0);
    CHECK(crm_is_leap(2000));
    CHECK(crm_is_leap(2024));
    CHECK(!crm_is_leap(1900));
    CHECK(!crm_is_leap(2023));
}

static void test_time_parse_good(void)
{
    static const struct {
        const char *in;
        int64_t want;
        bool date_only;
    } cases[] = {
        {"1970-01-01", 0, true},
        {"2024-02-29", 1709164800, true},
        {"2000-02-29", 951782400, true},
        {"2024-02-29T12:30", 1709209800, false},
        {"2024-02-29 12:30", 1709209800, false},
        {"2024-02-29T12:30:15", 1709209815, false},
        {"2024-02-29T12:30:15Z", 1709209815, false},
        {"2024-02-29T12:30:15.999Z", 1709209815, false},
        {"2024-02-29T12:30:15.5", 1709209815, false},
        {"2024-02-29T14:30:15+02:00", 1709209815, false},
        {"2024-02-29T07:00:15-05:30", 1709209815, false},
        {"2024-03-01T01:00:00+02:00", 1709247600, false}, /* crosses back into Feb 29 */
        {"1969-12-31T23:59:59Z", -1, false},
        {"2023-12-31T23:59:59Z", 1704067199, false},
    };
    for (size_t i = 0; i < CRM_ARRAY_LEN(cases); i++) {
        int64_t t = 12345;
        bool d = !cases[i].date_only;
        bool ok = crm_time_parse(cases[i].in, &t, &d);
        if (!ok || t != cases[i].want || d != cases[i].date_only) {
            fprintf(stderr, "    %s -> ok=%d t=%lld date_only=%d\n", cases[i].in, ok,
                    (long long)t, d);
            CHECK(!"good time rejected or misparsed");
        }
    }
}

static void test_time_parse_bad(void)
{
    static const char *const bad[] = {
        "",
        "2023-02-29",           /* not a leap year */
        "1900-02-29",           /* century, not leap */
        "2023-13-01",           /* month */
        "2023-00-10",
        "2023-04-31",           /* April has 30 */
        "2023-01-00",
        "2023-01-32",
        "2023-1-01",
        "23-01-01",
        "2023/01/01",
        "2023-01-01T24:00",     /* no 24:00 */
        "2023-01-01T12:60",
        "2023-01-01T12:00:60",
        "2023-01-01T12",
        "2023-01-01T",
        "2023-01-01X12:00",
        "2023-01-01 ",
        "2023-01-01T12:00:00ZZ",
        "2023-01-01T12:00:00 junk",
        "2023-01-01junk",
        "2023-01-01T12:00:00.",  /* fraction without digits */
        "2023-01-01T12:00:00+2:00",
        "2023-01-01T12:00:00+0200",
        "2023-01-01T12:00:00+24:00",
        "2023-01-01T12:00:00+02:60",
        "2023-01-01T1:00",
        " 2023-01-01",
        "2023-01-01\n",
    };
    for (size_t i = 0; i < CRM_ARRAY_LEN(bad); i++) {
        int64_t t;
        bool d;
        if (crm_time_parse(bad[i], &t, &d)) {
            fprintf(stderr, "    accepted \"%s\"\n", bad[i]);
            CHECK(!"bad time accepted");
        }
    }
}

static void test_utf8(void)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"", true},
        {"plain ascii", true},
        {"caf\xc3\xa9", true},                 /* é */
        {"\xe2\x82\xac", true},                /* € */
        {"\xf0\x9f\x98\x80", true},            /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", true},            /* U+10FFFF */
        {"\xed\x9f\xbf", true},                /* U+D7FF */
        {"\xee\x80\x80", true},                /* U+E000 */
        {"\xc0\xaf", false},                   /* overlong '/' */
        {"\xc1\xbf", false},                   /* overlong */
        {"\xe0\x80\xaf", false},               /* overlong 3-byte */
        {"\xf0\x80\x80\xaf", false},           /* overlong 4-byte */
        {"\xed\xa0\x80", false},               /* U+D800 surrogate */
        {"\xed\xbf\xbf", false},               /* U+DFFF surrogate */
        {"\xf4\x90\x80\x80", false},           /* U+110000 */
        {"\xf8\x88\x80\x80\x80", false},       /* 5-byte form */
        {"\xff", false},
        {"\x80", false},                       /* lone continuation */
        {"caf\xc3", false},                    /* truncated */
        {"\xe2\x82", false},
        {"\xe2\x28\xa1", false},               /* bad continuation */
    };
    for (size_t i = 0; i < CRM_ARRAY_LEN(cases); i++) {
        if (crm_utf8_valid(cases[i].s, strlen(cases[i].s)) != cases[i].ok) {
            fprintf(stderr, "    case %zu: expected %s\n", i, cases[i].ok ? "valid" : "invalid");
            CHECK(!"utf8 validation wrong");
        }
    }
    /* An embedded NUL is a valid code point; the length is what counts. */
    CHECK(crm_utf8_valid("a\0b", 3));
    /* n bounds the check: a truncated sequence past n is not read. */
    CHECK(crm_utf8_valid("ab\xe2\x82\xac", 2));
    CHECK(!crm_utf8_valid("ab\xe2\x82\xac", 4));
    CHECK_INT(crm_utf8_len("caf\xc3\xa9\xf0\x9f\x98\x80", 9), 5);
}

static void test_ident(void)
{
    CHECK(crm_ident_valid("a", 63));
    CHECK(crm_ident_valid("contact_2", 63));
    CHECK(crm_ident_valid("abc", 3));
    CHECK(!crm_ident_valid("abcd", 3));
    CHECK(!crm_ident_valid("", 63));
    CHECK(!crm_ident_valid("2abc", 63));
    CHECK(!crm_ident_valid("_abc", 63));
    CHECK(!crm_ident_valid("Abc", 63));
    CHECK(!crm_ident_valid("ab-c", 63));
    CHECK(!crm_ident_valid("ab c", 63));
    CHECK(!crm_ident_valid("name;drop", 63));
    CHECK(!crm_ident_valid("caf\xc3\xa9", 63));
    CHECK(!crm_ident_valid("a", 0));
}

static void test_parse_int64(void)
{
    int64_t v = 0;

    CHECK(crm_parse_int64("0", &v) && v == 0);
    CHECK(crm_parse_int64("-42", &v) && v == -42);
    CHECK(crm_parse_int64("+42", &v) && v == 42);
    CHECK(crm_parse_int64("9223372036854775807", &v) && v == INT64_MAX);
    CHECK(crm_parse_int64("-9223372036854775808", &v) && v == INT64_MIN);
    v = 7;
    CHECK(!crm_parse_int64("9223372036854775808", &v));
    CHECK(!crm_parse_int64("-9223372036854775809", &v));
    CHECK(!crm_parse_int64("99999999999999999999", &v));
    CHECK(!crm_parse_int64("", &v));
    CHECK(!crm_parse_int64("-", &v));
    CHECK(!crm_parse_int64("12a", &v));
    CHECK(!crm_parse_int64(" 12", &v));
    CHECK(!crm_parse_int64("12 ", &v));
    CHECK(!crm_parse_int64("1.5", &v));
    CHECK(!crm_parse_int64("0x10", &v));
    CHECK_INT(v, 7); /* untouched on failure */
}

static void test_b64url(void)
{
    unsigned char all[256];
    char *enc;
    unsigned char *dec;
    size_t n;

    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    /* Every length 0..40 round-trips, and no padding or +/ ever appear. */
    for (size_t len = 0; len <= 40; len++) {
        enc = crm_b64url_encode(all + 200, len > 56 ? 56 : len);
        CHECK(strchr(enc, '=') == NULL && strchr(enc, '+') == NULL && strchr(enc, '/') == NULL);
        dec = crm_b64url_decode(enc, &n);
        CHECK(dec != NULL && n == len && memcmp(dec, all + 200, len) == 0);
        free(dec);
        free(enc);
    }
    enc = crm_b64url_encode(all, 256);
    dec = crm_b64url_decode(enc, &n);
    CHECK(dec && n == 256 && memcmp(dec, all, 256) == 0);
    free(dec);
    free(enc);

    enc = crm_b64url_encode((const unsigned char *)"\xfb\xff", 2);
    CHECK_STR(enc, "-_8");
    free(enc);
    enc = crm_b64url_encode((const unsigned char *)"hello", 5);
    CHECK_STR(enc, "aGVsbG8");
    free(enc);

    CHECK(crm_b64url_decode("aGVsbG8=", &n) == NULL);   /* padding */
    CHECK(crm_b64url_decode("aGV+bG8", &n) == NULL);    /* standard alphabet */
    CHECK(crm_b64url_decode("aGV/bG8", &n) == NULL);
    CHECK(crm_b64url_decode("aGVsb", &n) == NULL);      /* length 5 mod 4 == 1 */
    CHECK(crm_b64url_decode("aGV sbG8", &n) == NULL);
    CHECK(crm_b64url_decode("aGVsbG9", &n) == NULL);    /* non-zero trailing bits */
    dec = crm_b64url_decode("", &n);
    CHECK(dec != NULL && n == 0);
    free(dec);
}

static void test_hex(void)
{
    char out[9];
    crm_hex((const unsigned char *)"\x00\xab\x10\xff", 4, out);
    CHECK_STR(out, "00ab10ff");
}

static void test_log_format(void)
{
    char path[300];
    FILE *f;
    char line[512] = "";
    int saved = dup(2);

    snprintf(path, sizeof path, "%s/log", t_tmpdir());
    REQUIRE(freopen(path, "w", stderr) != NULL);
    crm_log_set_level(CRM_LOG_WARN);
    crm_log(CRM_LOG_INFO, "hidden");
    crm_log(CRM_LOG_WARN, "shown %d\nsecond", 1);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    setvbuf(stderr, NULL, _IONBF, 0);
    crm_log_set_level(CRM_LOG_INFO);

    f = fopen(path, "r");
    REQUIRE(f != NULL);
    CHECK(fgets(line, sizeof line, f) != NULL);
    /* "2026-11-24T03:00:00Z warn shown 1 second" */
    CHECK(strlen(line) > 21 && line[4] == '-' && line[10] == 'T' && line[19] == 'Z');
    CHECK_STR(line + 21, "warn shown 1 second\n");
    CHECK(fgets(line, sizeof line, f) == NULL); /* "hidden" was filtered, one line only */
    fclose(f);
}

/* The hand-written JSON writer says byte for byte what json_dumps says. */
static void same_as_jansson(json_t *v, int precision)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(precision));
    size_t len = 0;
    char *got = crm_jtext_dumps(v, precision, &len);
    REQUIRE(want && got);
    CHECK_STR(got, want);
    CHECK_INT((int64_t)len, (int64_t)strlen(want));
    free(want);
    free(got);
    json_decref(v);
}

static void test_jtext_matches_jansson(void)
{
    static const double reals[] = {0.0, -0.0, 1.0, -1.5, 69.49, 0.1, 1e20, 1e-7, 123456789012345678.0,
                                   3.14159265358979, 1e300, -2.5e-300, 100.0, 1e15, 1e16, 5e-324};
    for (int p = 15; p <= 17; p += 2)
        for (size_t i = 0; i < sizeof reals / sizeof *reals; i++) same_as_jansson(json_real(reals[i]), p);
    static const json_int_t ints[] = {0, 1, -1, 42, INT64_MAX, INT64_MIN, 1000000007};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) same_as_jansson(json_integer(ints[i]), 15);
    /* Every escape: the C0 controls, quote, backslash, slash, DEL, non-ASCII. */
    char all[128];
    for (int c = 1; c < 128; c++) all[c - 1] = (char)c;
    same_as_jansson(json_stringn(all, 127), 17);
    same_as_jansson(json_string("Μαρία \xe2\x80\xa8 王 \xf0\x9f\x98\x80 \"q\" \\ </script>"), 17);
    same_as_jansson(json_stringn("a\0b", 3), 17);
    same_as_jansson(json_string(""), 17);
    same_as_jansson(json_true(), 17);
    same_as_jansson(json_false(), 17);
    same_as_jansson(json_null(), 17);
    same_as_jansson(json_object(), 17);
    same_as_jansson(json_array(), 17);
    /* Nesting, insertion order kept, keys escaped. */
    same_as_jansson(json_pack("{s:{s:[i,f,s,n,b,{}]},s:[[],[[]]],s:s,s:f}", "record", "a\"b", 1, 2.5,
                              "x\ny", 0, "old", "ünï\tcode", "z", "last", 1e-5),
                    15);
    /* A pseudo-random mix, as a record with history would carry. */
    uint64_t seed = 7;
    json_t *arr = json_array();
    for (int i = 0; i < 500; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        switch ((seed >> 33) % 5) {
        case 0: json_array_append_new(arr, json_integer((json_int_t)(seed >> 7) - (json_int_t)(1LL << 55))); break;
        case 1: json_array_append_new(arr, json_real((double)(seed >> 11) / 3e7)); break;
        case 2: {
            char tmp[8];
            for (int k = 0; k < 7; k++) tmp[k] = (char)(1 + ((seed >> (k * 8)) % 127));
            json_array_append_new(arr, json_stringn(tmp, 7));
            break;
        }
        case 3: json_array_append_new(arr, json_pack("{s:i}", "k", i)); break;
        default: json_array_append_new(arr, json_null());
        }
    }
    same_as_jansson(arr, 17);
}

int main(void)
{
    RUN(test_error_set_and_clear);
    RUN(test_error_thread_local);
    RUN(test_error_names);
    RUN(test_buf);
    RUN(test_clock);
    RUN(test_time_format);
    RUN(test_civil_roundtrip);
    RUN(test_time_parse_good);
    RUN(test_time_parse_bad);
    RUN(test_utf8);
    RUN(test_ident);
    RUN(test_parse_int64);
    RUN(test_b64url);
    RUN(test_hex);
    RUN(test_log_format);
    RUN(test_jtext_matches_jansson);
    return t_finish("test_util");
}
