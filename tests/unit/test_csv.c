/*
 * Tests of kernel/csv.c: the RFC 4180 reader (a table of inputs and the
 * records they must give, with their starting lines and errors) and the
 * writer's quoting and formula guard (golden strings).
 */
#include "t.h"

#include "../../kernel/csv.h"

/*
 * Read all of `in` (n bytes) and render it as "LINE[f1|f2]..." per record and
 * "LINE!" per malformed record, e.g. "1[a|b]3[c]4!".
 */
static char *render(const char *in, size_t n, int max_fields)
{
    crm_csv_reader r;
    crm_buf out = CRM_BUF_INIT;
    int line, rc;
    crm_csv_reader_init(&r, in, n, max_fields);
    crm_buf_puts(&out, "");
    while ((rc = crm_csv_read(&r, &line)) != 0) {
        if (rc < 0) {
            crm_buf_printf(&out, "%d!", line);
            continue;
        }
        crm_buf_printf(&out, "%d[", line);
        for (int i = 0; i < r.nfields; i++) {
            if (i) crm_buf_putc(&out, '|');
            crm_buf_put(&out, r.fields[i].ptr, r.fields[i].len);
        }
        crm_buf_putc(&out, ']');
    }
    crm_csv_reader_free(&r);
    return crm_buf_detach(&out);
}

static void check_case(const char *in, const char *expected)
{
    char *got = render(in, strlen(in), 100);
    if (strcmp(got, expected) != 0) {
        fprintf(stderr, "  FAIL %s: input \"%s\"\n    got      \"%s\"\n    expected \"%s\"\n",
                t_current, in, got, expected);
        t_current_failed++;
    }
    free(got);
}

static void rfc4180_table(void)
{
    static const char *const cases[][2] = {
        /* record ends: CRLF, LF, lone CR, none at the end */
        {"a,b,c\r\nd,e,f\r\n", "1[a|b|c]2[d|e|f]"},
        {"a,b\nc,d\n", "1[a|b]2[c|d]"},
        {"a,b\nc,d", "1[a|b]2[c|d]"},
        {"a\rb\r", "1[a]2[b]"},
        {"a\r\nb", "1[a]2[b]"},
        /* quoting */
        {"\"a,1\",b\n", "1[a,1|b]"},
        {"\"say \"\"hi\"\"\",x\n", "1[say \"hi\"|x]"},
        {"\"\"\"\"\n", "1[\"]"},
        {"\"\",x\n", "1[|x]"},
        {"x,\"\"\n", "1[x|]"},
        {"\"a\"\"b\"\"c\",\"d\"\"\"\n", "1[a\"b\"c|d\"]"},
        /* line breaks inside quotes belong to the field and count as lines */
        {"\"l1\nl2\",x\ny,z\n", "1[l1\nl2|x]3[y|z]"},
        {"\"l1\r\nl2\r\nl3\",x\r\ny,z\r\n", "1[l1\r\nl2\r\nl3|x]4[y|z]"},
        {"\"a\"\"\nb\"\"\",c\nd\n", "1[a\"\nb\"|c]3[d]"},
        /* BOM, empty fields, trailing comma */
        {"\xEF\xBB\xBF" "a,b\n", "1[a|b]"},
        {"\xEF\xBB\xBF", ""},
        {"", ""},
        {",,\n", "1[||]"},
        {"a,,b\n", "1[a||b]"},
        {"a,\n", "1[a|]"},
        {"a,", "1[a|]"},
        /* blank lines are skipped but counted */
        {"a\n\n\nb\n", "1[a]4[b]"},
        {"\n\na\r\n\r\n", "3[a]"},
        /* spaces are data */
        {" a , b \n", "1[ a | b ]"},
        /* malformed: an error for that record, then reading goes on */
        {"a\n\"b,c\nd\n", "1[a]2!"},
        {"a\nb\"c,d\ne\n", "1[a]2!3[e]"},
        {"\"a\"b,c\nd\n", "1!2[d]"},
        {"\"a\" ,c\nd\n", "1!2[d]"},
        {"x\n\"multi\nline\"junk\nnext\n", "1[x]2!4[next]"},
        {"\"", "1!"},
    };
    for (size_t i = 0; i < CRM_ARRAY_LEN(cases); i++) check_case(cases[i][0], cases[i][1]);
}

static void error_messages(void)
{
    crm_csv_reader r;
    int line;
    const char *in = "a,b\n\"open,x\nmore\n";
    crm_csv_reader_init(&r, in, strlen(in), 10);
    CHECK_INT(crm_csv_read(&r, &line), 1);
    CHECK_INT(crm_csv_read(&r, &line), CRM_EINVALID);
    CHECK_INT(line, 2);
    CHECK_HAS(crm_error_last()->message, "unterminated quoted field");
    CHECK_INT(crm_csv_read(&r, &line), 0);
    crm_csv_reader_free(&r);

    in = "ok\nab\"c\n";
    crm_csv_reader_init(&r, in, strlen(in), 10);
    CHECK_INT(crm_csv_read(&r, &line), 1);
    CHECK_INT(crm_csv_read(&r, &line), CRM_EINVALID);
    CHECK_INT(line, 2);
    CHECK_HAS(crm_error_last()->message, "quote inside an unquoted field");
    crm_csv_reader_free(&r);
}

static void max_fields(void)
{
    static const char in[] = "a,b,c,d\ne\n\"x\ny\",1,2,3\nz\n";
    char *got = render(in, sizeof in - 1, 3);
    CHECK_STR(got, "1!2[e]3!5[z]");
    free(got);
    got = render("a,b,c\n", 6, 3);
    CHECK_STR(got, "1[a|b|c]");
    free(got);

    /* 10,000 columns against a bound of 300: one clean error. */
    crm_buf wide = CRM_BUF_INIT;
    for (int i = 0; i < 10000; i++) crm_buf_puts(&wide, i ? ",c" : "c");
    crm_buf_puts(&wide, "\nnext\n");
    got = render(wide.ptr, wide.len, 300);
    CHECK_STR(got, "1!2[next]");
    free(got);
    crm_buf_free(&wide);
}

static void nul_and_binary_pass_through(void)
{
    static const char in[] = "a\0b,\"c\0\"\"d\"\n\xff\xfe,x\n";
    crm_csv_reader r;
    int line;
    crm_csv_reader_init(&r, in, sizeof in - 1, 10);
    REQUIRE(crm_csv_read(&r, &line) == 1);
    CHECK_INT(r.nfields, 2);
    CHECK_INT(r.fields[0].len, 3);
    CHECK(memcmp(r.fields[0].ptr, "a\0b", 3) == 0);
    CHECK_INT(r.fields[1].len, 4);
    CHECK(memcmp(r.fields[1].ptr, "c\0\"d", 4) == 0);
    REQUIRE(crm_csv_read(&r, &line) == 1);
    CHECK_INT(line, 2);
    CHECK_INT(r.fields[0].len, 2);
    CHECK_INT(crm_csv_read(&r, &line), 0);
    crm_csv_reader_free(&r);
}

/* Many escaped fields in one record: the unescape buffer grows (and moves) mid-record. */
static void escaped_fields_survive_buffer_growth(void)
{
    crm_buf in = CRM_BUF_INIT;
    for (int i = 0; i < 200; i++) {
        if (i) crm_buf_putc(&in, ',');
        crm_buf_printf(&in, "\"%d\"\"", i);
        for (int j = 0; j < 50; j++) crm_buf_putc(&in, 'x');
        crm_buf_puts(&in, "\"");
    }
    crm_buf_puts(&in, "\nplain\n");
    crm_csv_reader r;
    int line;
    crm_csv_reader_init(&r, in.ptr, in.len, 1000);
    REQUIRE(crm_csv_read(&r, &line) == 1);
    REQUIRE(r.nfields == 200);
    for (int i = 0; i < 200; i++) {
        char expect[80];
        int n = snprintf(expect, sizeof expect, "%d\"", i);
        memset(expect + n, 'x', 50);
        expect[n + 50] = '\0';
        CHECK_INT(r.fields[i].len, strlen(expect));
        CHECK(memcmp(r.fields[i].ptr, expect, r.fields[i].len) == 0);
    }
    REQUIRE(crm_csv_read(&r, &line) == 1);
    CHECK_INT(r.fields[0].len, 5);
    crm_csv_reader_free(&r);
    crm_buf_free(&in);
}

/* A 1 MB quoted field: one field, its lines counted. */
static void big_field(void)
{
    size_t n = 1 << 20;
    char *in = malloc(n + 16);
    in[0] = '"';
    for (size_t i = 1; i < n; i++) in[i] = (i % 1000 == 0) ? '\n' : 'y';
    memcpy(in + n, "\",z\nq\n", 6);
    crm_csv_reader r;
    int line;
    crm_csv_reader_init(&r, in, n + 6, 10);
    REQUIRE(crm_csv_read(&r, &line) == 1);
    CHECK_INT(r.fields[0].len, n - 1);
    CHECK_INT(r.nfields, 2);
    REQUIRE(crm_csv_read(&r, &line) == 1);
    CHECK_INT(line, 1 + (int)((n - 1) / 1000) + 1);
    crm_csv_reader_free(&r);
    free(in);
}

/* ---- Writer ---- */

static char *cell(const char *s, size_t n, bool guard)
{
    crm_buf b = CRM_BUF_INIT;
    crm_buf_puts(&b, "");
    crm_csv_put(&b, s, n, guard);
    return crm_buf_detach(&b);
}

static void writer_golden(void)
{
    static const struct {
        const char *in;
        bool guard;
        const char *out;
    } cases[] = {
        {"abc", true, "abc"},
        {"", true, ""},
        {"a,b", true, "\"a,b\""},
        {"say \"hi\"", true, "\"say \"\"hi\"\"\""},
        {"\"", true, "\"\"\"\""},
        {"l1\nl2", true, "\"l1\nl2\""},
        {"l1\r\nl2", false, "\"l1\r\nl2\""},
        {" spaced ", true, " spaced "},
        {"a=b", true, "a=b"},
        /* SECURITY.md X4: = + - @ TAB CR get a leading ' */
        {"=1+2", true, "'=1+2"},
        {"=HYPERLINK(\"http://x\",\"y\")", true, "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""},
        {"+1 555 0100", true, "'+1 555 0100"},
        {"-2+3", true, "'-2+3"},
        {"@SUM(A1:A9)", true, "'@SUM(A1:A9)"},
        {"\tcmd", true, "'\tcmd"},
        {"\rcmd", true, "\"'\rcmd\""},
        {"=a,b", true, "\"'=a,b\""},
        {"'=already", true, "'=already"},
        /* raw: no guard */
        {"=1+2", false, "=1+2"},
        {"@x", false, "@x"},
    };
    for (size_t i = 0; i < CRM_ARRAY_LEN(cases); i++) {
        char *got = cell(cases[i].in, strlen(cases[i].in), cases[i].guard);
        CHECK_STR(got, cases[i].out);
        free(got);
    }
    char *got = cell("a\0b", 3, true);
    CHECK_INT(strlen(got), 1); /* bytes are written as they are */
    free(got);
}

/* What the writer writes, the reader reads back (formula guard aside). */
static void writer_reader_round_trip(void)
{
    static const char *const values[] = {"plain", "", "a,b", "q\"uote", "multi\nline", "cr\r\nlf",
                                         "\"\"", ",", " x "};
    crm_buf b = CRM_BUF_INIT;
    size_t nv = CRM_ARRAY_LEN(values);
    for (size_t i = 0; i < nv; i++) {
        if (i) crm_buf_putc(&b, ',');
        crm_csv_put(&b, values[i], strlen(values[i]), true);
    }
    crm_buf_puts(&b, "\r\n");
    crm_csv_reader r;
    int line;
    crm_csv_reader_init(&r, b.ptr, b.len, 100);
    REQUIRE(crm_csv_read(&r, &line) == 1);
    REQUIRE(r.nfields == (int)nv);
    for (size_t i = 0; i < nv; i++) {
        CHECK_INT(r.fields[i].len, strlen(values[i]));
        CHECK(memcmp(r.fields[i].ptr, values[i], r.fields[i].len) == 0);
    }
    CHECK_INT(crm_csv_read(&r, &line), 0);
    crm_csv_reader_free(&r);
    crm_buf_free(&b);
}

int main(void)
{
    (void)t_tmpdir; /* t.h's, for tests with files; these need none */
    RUN(rfc4180_table);
    RUN(error_messages);
    RUN(max_fields);
    RUN(nul_and_binary_pass_through);
    RUN(escaped_fields_survive_buffer_growth);
    RUN(big_field);
    RUN(writer_golden);
    RUN(writer_reader_round_trip);
    return t_finish("test_csv");
}
