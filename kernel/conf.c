/*
 * conf.c — reading plugins.conf (format in conf.h and the shipped file).
 *
 * An INI dialect kept deliberately small, so every mistake has one clear
 * message naming the line: sections, "key = value", comments. No quoting, no
 * continuation lines, no includes. The file is read whole and checked whole:
 * a site with a typo does not start with half of its plugins.
 */
#include "conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096
#define FILE_MAX_BYTES (1 << 20)
#define CRM_NAME_MAX_CONF 63 /* as CRM_NAME_MAX: a plugin name is a type owner */

/* Keys the loader reads; every other key is a setting for the plugin. */
static const char *const reserved_keys[] = {"source", "git", "ref", "enabled", NULL};

static int conf_error(const char *path, int line, const char *fmt, ...) CRM_PRINTF(3, 4);

static int conf_error(const char *path, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return crm_error_set(CRM_EINVALID, NULL, "%s:%d: %s", path, line, msg);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = 0;
    return s;
}

/* A comment starts with '#' at the start of the line or after a space or tab. */
static void strip_comment(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
            *p = 0;
            return;
        }
}

static bool key_valid(const char *k)
{
    if (!*k || strlen(k) > 128) return false;
    if (!(*k >= 'a' && *k <= 'z')) return false;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_' || *k == '.' ||
              *k == '-'))
            return false;
    return true;
}

static bool is_reserved(const char *k)
{
    for (int i = 0; reserved_keys[i]; i++)
        if (strcmp(reserved_keys[i], k) == 0) return true;
    return false;
}

/* `source` relative to the directory of the file, made absolute. */
static char *resolve_source(const char *conf_path, const char *source)
{
    if (source[0] == '/') return crm_strdup(source);
    char *dir;
    const char *slash = strrchr(conf_path, '/');
    if (slash)
        dir = crm_strndup(conf_path, (size_t)(slash - conf_path));
    else
        dir = crm_strdup(".");
    if (dir[0] != '/') {
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd)) {
            char *abs = strcmp(dir, ".") == 0 ? crm_strdup(cwd) : crm_sprintf("%s/%s", cwd, dir);
            free(dir);
            dir = abs;
        }
    }
    /* "plugins/crm" and "./plugins/crm" read the same way in messages. */
    while (source[0] == '.' && source[1] == '/') source += 2;
    char *out = crm_sprintf("%s/%s", dir, source);
    free(dir);
    return out;
}

static int check_section(const char *path, crm_conf_plugin *p)
{
    if (p->source && p->git)
        return conf_error(path, p->line,
                          "plugin \"%s\" has both source and git: a plugin comes either from "
                          "an in-tree directory (source) or from a git repository (git)",
                          p->name);
    if (!p->source && !p->git)
        return conf_error(path, p->line,
                          "plugin \"%s\" needs source = DIRECTORY (in-tree) or git = URL",
                          p->name);
    if (p->ref && !p->git)
        return conf_error(path, p->line, "plugin \"%s\": ref is only for git plugins", p->name);
    return CRM_OK;
}

static int parse(crm_conf *conf, char *text, size_t len)
{
    const char *path = conf->path;
    crm_conf_plugin *cur = NULL;
    int cap = 0, lineno = 0, rc;
    char *p = text, *end = text + len;

    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3; /* a UTF-8 byte order mark */
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        if (n > LINE_MAX_BYTES)
            return conf_error(path, lineno, "line too long (%zu bytes, at most %d)", n,
                              LINE_MAX_BYTES);
        if (memchr(p, 0, n)) return conf_error(path, lineno, "NUL byte in the line");
        if (!crm_utf8_valid(p, n))
            return conf_error(path, lineno, "invalid UTF-8 (the file must be UTF-8 text)");
        char line[LINE_MAX_BYTES + 1];
        memcpy(line, p, n);
        line[n] = 0;
        p += n + (nl ? 1 : 0);

        strip_comment(line);
        char *s = trim(line);
        if (!*s) continue;

        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || *trim(close + 1))
                return conf_error(path, lineno, "a section is written [name], alone on its line");
            *close = 0;
            char *name = trim(s + 1);
            if (!crm_ident_valid(name, CRM_NAME_MAX_CONF))
                return conf_error(path, lineno,
                                  "bad plugin name \"%s\": use a-z, 0-9 and _, starting with a "
                                  "letter, at most %d characters",
                                  name, CRM_NAME_MAX_CONF);
            for (int i = 0; i < conf->nplugins; i++)
                if (strcmp(conf->plugins[i].name, name) == 0)
                    return conf_error(path, lineno,
                                      "duplicate section [%s] (first at line %d)", name,
                                      conf->plugins[i].line);
            if (cur && (rc = check_section(path, cur))) return rc;
            if (conf->nplugins == cap) {
                cap = cap ? 2 * cap : 8;
                conf->plugins = crm_realloc(conf->plugins, (size_t)cap * sizeof *conf->plugins);
            }
            cur = &conf->plugins[conf->nplugins++];
            memset(cur, 0, sizeof *cur);
            cur->name = crm_strdup(name);
            cur->line = lineno;
            cur->enabled = true;
            cur->settings = json_object();
            continue;
        }

        char *eq = strchr(s, '=');
        if (!eq)
            return conf_error(path, lineno,
                              "expected [section] or key = value, found \"%.60s\"", s);
        *eq = 0;
        char *key = trim(s), *value = trim(eq + 1);
        if (!key_valid(key))
            return conf_error(path, lineno,
                              "bad key \"%.60s\": use a-z, 0-9, _, . and -, starting with a "
                              "letter", key);
        if (!cur)
            return conf_error(path, lineno,
                              "\"%s\" outside a section: start one with [plugin-name]", key);
        bool dup = json_object_get(cur->settings, key) != NULL;
        if ((strcmp(key, "source") == 0 && cur->source) || (strcmp(key, "git") == 0 && cur->git) ||
            (strcmp(key, "ref") == 0 && cur->ref))
            dup = true;
        if (dup) return conf_error(path, lineno, "\"%s\" is set twice in [%s]", key, cur->name);

        if (is_reserved(key) && !*value)
            return conf_error(path, lineno, "\"%s\" needs a value", key);
        if (strcmp(key, "enabled") == 0) {
            if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0)
                cur->enabled = true;
            else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0)
                cur->enabled = false;
            else
                return conf_error(path, lineno, "enabled must be yes or no, not \"%.60s\"", value);
            /* remembered so that a second "enabled" line is caught as a duplicate */
            json_object_set_new(cur->settings, "enabled", json_string(value));
        } else if (strcmp(key, "source") == 0) {
            cur->source = resolve_source(path, value);
        } else if (strcmp(key, "git") == 0) {
            cur->git = crm_strdup(value);
        } else if (strcmp(key, "ref") == 0) {
            if (strpbrk(value, " \t"))
                return conf_error(path, lineno, "ref \"%.60s\" must not contain spaces", value);
            cur->ref = crm_strdup(value);
        } else {
            json_object_set_new(cur->settings, key, json_string(value));
        }
    }
    if (cur && (rc = check_section(path, cur))) return rc;
    /* "enabled" is not a setting for the plugin. */
    for (int i = 0; i < conf->nplugins; i++) json_object_del(conf->plugins[i].settings, "enabled");
    return CRM_OK;
}

int crm_conf_load(const char *path, crm_conf **out)
{
    int rc = CRM_OK;
    crm_conf *conf = NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    *out = NULL;
    if (!(f = fopen(path, "rb"))) {
        int e = errno;
        return crm_error_set(e == ENOENT ? CRM_ENOTFOUND : CRM_EINTERNAL, NULL,
                             "%s: cannot open: %s", path, strerror(e));
    }
    text = crm_malloc(FILE_MAX_BYTES + 1);
    len = fread(text, 1, FILE_MAX_BYTES + 1, f);
    if (ferror(f)) {
        rc = crm_error_set(CRM_EINTERNAL, NULL, "%s: cannot read: %s", path, strerror(errno));
        goto done;
    }
    if (len > FILE_MAX_BYTES) {
        rc = crm_error_set(CRM_EINVALID, NULL, "%s: larger than %d bytes", path, FILE_MAX_BYTES);
        goto done;
    }
    conf = crm_calloc(1, sizeof *conf);
    conf->path = crm_strdup(path);
    if ((rc = parse(conf, text, len))) goto done;
    *out = conf;
    conf = NULL;
done:
    fclose(f);
    free(text);
    crm_conf_free(conf);
    return rc;
}

void crm_conf_free(crm_conf *conf)
{
    if (!conf) return;
    for (int i = 0; i < conf->nplugins; i++) {
        crm_conf_plugin *p = &conf->plugins[i];
        free(p->name);
        free(p->source);
        free(p->git);
        free(p->ref);
        json_decref(p->settings);
    }
    free(conf->plugins);
    free(conf->path);
    free(conf);
}

const crm_conf_plugin *crm_conf_find(const crm_conf *conf, const char *name)
{
    if (!conf || !name) return NULL;
    for (int i = 0; i < conf->nplugins; i++)
        if (strcmp(conf->plugins[i].name, name) == 0) return &conf->plugins[i];
    return NULL;
}
