/*
 * test_conf.c — plugins.conf (kernel/conf.c): a good file read whole, and
 * every malformed input refused with "plugins.conf:LINE: what".
 */
#include "t.h"

#include "../../kernel/conf.h"

#include <jansson.h>

static char conf_path[512];

static const char *write_conf(const char *text, size_t len)
{
    snprintf(conf_path, sizeof conf_path, "%s/plugins.conf", t_tmpdir());
    FILE *f = fopen(conf_path, "wb");
    if (!f) exit(2);
    fwrite(text, 1, len, f);
    fclose(f);
    return conf_path;
}

/* Load `text`; return the error message ("" when it loaded). */
static const char *load_error(const char *text)
{
    crm_conf *conf = NULL;
    int rc = crm_conf_load(write_conf(text, strlen(text)), &conf);
    crm_conf_free(conf);
    return rc == CRM_OK ? "" : crm_error_last()->message;
}

/* The message must be exactly "<path>:<suffix>". */
#define CHECK_CONF_ERROR(text, suffix)                                                     \
    do {                                                                                   \
        const char *msg_ = load_error(text);                                               \
        char want_[1024];                                                                  \
        snprintf(want_, sizeof want_, "%s:%s", conf_path, suffix);                         \
        CHECK_STR(msg_, want_);                                                            \
        CHECK_INT(crm_error_last()->code, CRM_EINVALID);                                   \
    } while (0)

static void test_good_file(void)
{
    const char *text = "\xEF\xBB\xBF# plugins of the site\n"
                       "\n"
                       "[crm]                      # the base\n"
                       "source = plugins/crm\n"
                       "pipeline.stages = new,won   # a setting\n"
                       "\r\n"
                       "[hotel]\r\n"
                       "git = /srv/git/crm-hotel\r\n"
                       "ref = v1.2.0\n"
                       "requires = crm >= 1.0, < 2\n"
                       "enabled = no\n"
                       "[hr]\n"
                       "  source=/opt/crm/hr\n"
                       "  enabled = yes\n"
                       "  color = #ff0000\n"
                       "  empty =\n";
    crm_conf *conf = NULL;
    REQUIRE(crm_conf_load(write_conf(text, strlen(text)), &conf) == CRM_OK);
    CHECK_INT(conf->nplugins, 3);
    const crm_conf_plugin *crm = crm_conf_find(conf, "crm");
    REQUIRE(crm);
    CHECK_INT(crm->line, 3);
    CHECK(crm->enabled);
    char want[600];
    snprintf(want, sizeof want, "%s/plugins/crm", t_dir);
    CHECK_STR(crm->source, want); /* relative to the file's directory, absolute */
    CHECK(crm->git == NULL);
    CHECK_STR(json_string_value(json_object_get(crm->settings, "pipeline.stages")), "new,won");
    CHECK_INT(json_object_size(crm->settings), 1);

    const crm_conf_plugin *hotel = crm_conf_find(conf, "hotel");
    REQUIRE(hotel);
    CHECK(!hotel->enabled);
    CHECK_STR(hotel->git, "/srv/git/crm-hotel");
    CHECK_STR(hotel->ref, "v1.2.0");
    CHECK(hotel->source == NULL);
    CHECK_STR(json_string_value(json_object_get(hotel->settings, "requires")), "crm >= 1.0, < 2");
    CHECK(json_object_get(hotel->settings, "enabled") == NULL); /* not a setting */

    const crm_conf_plugin *hr = crm_conf_find(conf, "hr");
    REQUIRE(hr);
    CHECK_STR(hr->source, "/opt/crm/hr");
    CHECK(hr->enabled);
    CHECK(hr->ref == NULL);
    /* "#" after a space starts a comment, so "#ff0000" is one: the value is empty */
    CHECK_STR(json_string_value(json_object_get(hr->settings, "color")), "");
    CHECK_STR(json_string_value(json_object_get(hr->settings, "empty")), "");
    CHECK(crm_conf_find(conf, "nope") == NULL);
    crm_conf_free(conf);
}

static void test_empty_file(void)
{
    crm_conf *conf = NULL;
    REQUIRE(crm_conf_load(write_conf("# nothing enabled\n", 18), &conf) == CRM_OK);
    CHECK_INT(conf->nplugins, 0);
    crm_conf_free(conf);
}

static void test_missing_file(void)
{
    crm_conf *conf = NULL;
    char path[600];
    snprintf(path, sizeof path, "%s/no-such.conf", t_tmpdir());
    CHECK_INT(crm_conf_load(path, &conf), CRM_ENOTFOUND);
    CHECK(conf == NULL);
    CHECK_HAS(crm_error_last()->message, path);
    CHECK_HAS(crm_error_last()->message, "No such file");
}

static void test_duplicate_section(void)
{
    CHECK_CONF_ERROR("[crm]\nsource = a\n\n[crm]\nsource = b\n",
                     "4: duplicate section [crm] (first at line 1)");
}

static void test_unknown_syntax(void)
{
    CHECK_CONF_ERROR("[crm]\nsource = a\nthis is not a line\n",
                     "3: expected [section] or key = value, found \"this is not a line\"");
    CHECK_CONF_ERROR("[crm\nsource = a\n", "1: a section is written [name], alone on its line");
    CHECK_CONF_ERROR("[crm] x\nsource = a\n", "1: a section is written [name], alone on its line");
    CHECK_CONF_ERROR("[crm]\nSource = a\n",
                     "2: bad key \"Source\": use a-z, 0-9, _, . and -, starting with a letter");
    CHECK_CONF_ERROR("[crm]\nsource = a\nsource = b\n", "3: \"source\" is set twice in [crm]");
    CHECK_CONF_ERROR("[crm]\nsource =\n", "2: \"source\" needs a value");
}

static void test_source_and_git(void)
{
    CHECK_CONF_ERROR("[a]\nsource = x\n[crm]\nsource = plugins/crm\ngit = /srv/git/crm\n",
                     "3: plugin \"crm\" has both source and git: a plugin comes either from an "
                     "in-tree directory (source) or from a git repository (git)");
}

static void test_neither(void)
{
    CHECK_CONF_ERROR("[crm]\nenabled = yes\n[b]\nsource = x\n",
                     "1: plugin \"crm\" needs source = DIRECTORY (in-tree) or git = URL");
    /* the last section too */
    CHECK_CONF_ERROR("[b]\nsource = x\n[crm]\n",
                     "3: plugin \"crm\" needs source = DIRECTORY (in-tree) or git = URL");
    CHECK_CONF_ERROR("[crm]\nsource = x\nref = v1\n",
                     "1: plugin \"crm\": ref is only for git plugins");
}

static void test_bad_name(void)
{
    CHECK_CONF_ERROR("[Hotel]\nsource = x\n",
                     "1: bad plugin name \"Hotel\": use a-z, 0-9 and _, starting with a letter, "
                     "at most 63 characters");
    CHECK_CONF_ERROR("[1crm]\nsource = x\n",
                     "1: bad plugin name \"1crm\": use a-z, 0-9 and _, starting with a letter, "
                     "at most 63 characters");
    CHECK_CONF_ERROR("[]\nsource = x\n",
                     "1: bad plugin name \"\": use a-z, 0-9 and _, starting with a letter, at "
                     "most 63 characters");
    CHECK_CONF_ERROR("[../x]\nsource = x\n",
                     "1: bad plugin name \"../x\": use a-z, 0-9 and _, starting with a letter, "
                     "at most 63 characters");
}

static void test_enabled_maybe(void)
{
    CHECK_CONF_ERROR("[crm]\nsource = x\nenabled = maybe\n",
                     "3: enabled must be yes or no, not \"maybe\"");
    CHECK_CONF_ERROR("[crm]\nsource = x\nenabled = yes\nenabled = no\n",
                     "4: \"enabled\" is set twice in [crm]");
}

static void test_key_outside_section(void)
{
    CHECK_CONF_ERROR("# top\nsource = plugins/crm\n[crm]\nsource = x\n",
                     "2: \"source\" outside a section: start one with [plugin-name]");
}

static void test_long_line(void)
{
    size_t n = 10 * 1024;
    char *text = malloc(n + 64);
    strcpy(text, "[crm]\nsource = x\nnote = ");
    size_t used = strlen(text);
    memset(text + used, 'a', n);
    strcpy(text + used + n, "\n");
    CHECK_CONF_ERROR(text, "3: line too long (10247 bytes, at most 4096)");
    free(text);
}

static void test_invalid_utf8(void)
{
    CHECK_CONF_ERROR("[crm]\nsource = x\nnote = caf\xC3\n",
                     "3: invalid UTF-8 (the file must be UTF-8 text)");
    CHECK_CONF_ERROR("[crm]\nnote = \xED\xA0\x80\n", /* a surrogate */
                     "2: invalid UTF-8 (the file must be UTF-8 text)");
    /* and valid UTF-8 in a setting is kept as is */
    CHECK_STR(load_error("[crm]\nsource = x\ngreeting = Grüß Gott\n"), "");
}

static void test_nul_byte(void)
{
    crm_conf *conf = NULL;
    static const char text[] = "[crm]\nsource = x\x00y\n";
    CHECK_INT(crm_conf_load(write_conf(text, sizeof text - 1), &conf), CRM_EINVALID);
    char want[600];
    snprintf(want, sizeof want, "%s:2: NUL byte in the line", conf_path);
    CHECK_STR(crm_error_last()->message, want);
}

int main(void)
{
    RUN(test_good_file);
    RUN(test_empty_file);
    RUN(test_missing_file);
    RUN(test_duplicate_section);
    RUN(test_unknown_syntax);
    RUN(test_source_and_git);
    RUN(test_neither);
    RUN(test_bad_name);
    RUN(test_enabled_maybe);
    RUN(test_key_outside_section);
    RUN(test_long_line);
    RUN(test_invalid_utf8);
    RUN(test_nul_byte);
    return t_finish("test_conf");
}
