/*
 * cli.c — the parts of the `crm` command line that every command uses, and
 * the list of command tables.
 */
#include "cli.h"

#include "auth.h"
#include "conf.h"
#include "plugin.h"
#include "rules.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

/* Every command table; a new file of commands adds one line here. */
static const cli_command *const tables[] = {
    crm_cli_core_commands,
    crm_cli_serve_commands,
    crm_cli_io_commands,
    crm_cli_rules_commands,
    crm_cli_plugin_commands,
};

const cli_command *crm_cli_command(const char *name)
{
    for (size_t t = 0; t < CRM_ARRAY_LEN(tables); t++)
        for (const cli_command *c = tables[t]; c->name; c++)
            if (strcmp(c->name, name) == 0) return c;
    return NULL;
}

bool crm_cli_is_group(const char *word)
{
    size_t n = strlen(word);
    for (size_t t = 0; t < CRM_ARRAY_LEN(tables); t++)
        for (const cli_command *c = tables[t]; c->name; c++)
            if (strncmp(c->name, word, n) == 0 && c->name[n] == ' ') return true;
    return false;
}

void crm_cli_print_help(const cli_command *cmd)
{
    printf("usage: crm %s %s\n\n%s\n%s", cmd->name, cmd->usage, cmd->help, crm_cli_global_help);
}

void crm_cli_print_commands(FILE *out, const char *group)
{
    for (size_t t = 0; t < CRM_ARRAY_LEN(tables); t++)
        for (const cli_command *c = tables[t]; c->name; c++) {
            if (group &&
                (strncmp(c->name, group, strlen(group)) != 0 || c->name[strlen(group)] != ' '))
                continue;
            fprintf(out, "  %-14s %s\n", c->name, c->summary);
        }
}

int crm_cli_usage_error(const cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "crm %s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: crm %s %s\n(see crm %s --help)\n", cmd->name, cmd->usage, cmd->name);
    return CLI_USAGE;
}

/* The failure of a kernel call: its message, exit code 1. */
int crm_cli_fail(void)
{
    const crm_error *e = crm_error_last();
    fprintf(stderr, "crm: %s\n", e->message && *e->message ? e->message : "failed");
    return CLI_FAIL;
}

/*
 * Split argv into `opts` and positional arguments (between pos_min and
 * pos_max of them). "--opt value", "--opt=value", "--" ends the options.
 * Returns CLI_OK, CLI_USAGE (message printed) or CLI_HELP (help printed).
 */
int crm_cli_parse(const cli_command *cmd, int argc, char **argv, const cli_opt *opts, char **pos,
                  int pos_min, int pos_max, int *npos)
{
    bool options_done = false;
    int n = 0;

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || strcmp(a, "-") == 0) {
            if (n >= pos_max) return crm_cli_usage_error(cmd, "unexpected argument \"%s\"", a);
            pos[n++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            crm_cli_print_help(cmd);
            return CLI_HELP;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const cli_opt *o = NULL;
        for (const cli_opt *p = opts; p && p->name; p++)
            if (strlen(p->name) == len && strncmp(p->name, a, len) == 0) o = p;
        if (!o) return crm_cli_usage_error(cmd, "unknown option \"%.*s\"", (int)len, a);
        if (o->flag) {
            if (eq) return crm_cli_usage_error(cmd, "option %s takes no value", o->name);
            *o->flag = true;
        } else if (eq) {
            *o->value = eq + 1;
        } else if (i + 1 < argc) {
            *o->value = argv[++i];
        } else {
            return crm_cli_usage_error(cmd, "option %s needs a value", o->name);
        }
    }
    if (n < pos_min) return crm_cli_usage_error(cmd, "missing argument");
    if (npos) *npos = n;
    return CLI_OK;
}

/* mkdir -p with mode 0700 (the directory holds password and token hashes). */
static int make_dirs(const char *path)
{
    char *p = crm_strdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char saved = *s;
            *s = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST) rc = -1;
            *s = saved;
            if (rc < 0 || saved == '\0') break;
        }
    }
    free(p);
    return rc;
}

/*
 * Open the kernel on the data directory. Only `create` (crm init) makes a
 * new one: every other command refuses a directory without a database, so a
 * mistyped --data does not silently start an empty CRM.
 */
int crm_cli_open(cli *c, bool create)
{
    crm_kernel_opts opts = CRM_KERNEL_OPTS_INIT;
    struct stat sb;
    char *db;
    int rc;

    if (stat(c->data_dir, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "crm: --data \"%s\" is not a directory\n", c->data_dir);
        return CLI_FAIL;
    }
    if (create && make_dirs(c->data_dir) < 0) {
        fprintf(stderr, "crm: cannot create data directory \"%s\": %s\n", c->data_dir,
                strerror(errno));
        return CLI_FAIL;
    }
    db = crm_sprintf("%s/crm.db", c->data_dir);
    rc = stat(db, &sb);
    free(db);
    if (!create && rc != 0) {
        fprintf(stderr, "crm: no database in \"%s\" (run \"crm init\" first, or pass --data DIR)\n",
                c->data_dir);
        return CLI_FAIL;
    }
    if (crm_auth_init() < 0) return crm_cli_fail();
    opts.data_dir = c->data_dir;
    opts.synchronous = c->synchronous;
    if (crm_kernel_open(&c->k, &opts) < 0) {
        c->k = NULL;
        fprintf(stderr, "crm: cannot open data directory \"%s\": %s\n", c->data_dir,
                crm_error_last()->message);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/*
 * A password from the environment variable `env`, else one line of stdin
 * (without echo when stdin is a terminal). Malloc'd into *out.
 */
int crm_cli_read_password(const char *env, char **out)
{
    const char *from_env = getenv(env);
    struct termios saved, quiet;
    bool tty = isatty(STDIN_FILENO);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    *out = NULL;
    if (from_env) {
        *out = crm_strdup(from_env);
        return CLI_OK;
    }
    if (tty) {
        fprintf(stderr, "Password: ");
        fflush(stderr);
        if (tcgetattr(STDIN_FILENO, &saved) == 0) {
            quiet = saved;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        } else {
            tty = false;
        }
    }
    n = getline(&line, &cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fprintf(stderr, "\n");
    }
    if (n < 0) {
        free(line);
        fprintf(stderr, "crm: no password: set %s or give it on standard input\n", env);
        return CLI_FAIL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    *out = line;
    return CLI_OK;
}

void crm_cli_password_free(char *password)
{
    if (password) {
        sodium_memzero(password, strlen(password));
        free(password);
    }
}

const char *const crm_cli_global_help =
    "Global options (before or after the command):\n"
    "  --data DIR               data directory holding crm.db (default ./var)\n"
    "  --sync full|normal|off   SQLite synchronous mode (default full)\n";

int crm_cli_load_plugins(cli *c, const char *conf_opt, const char *plugin_dir, crm_http *http,
                         crm_plugins **out)
{
    const char *env = getenv("CRM_PLUGINS_CONF");
    const char *path = conf_opt ? conf_opt : env && *env ? env : "plugins.conf";
    bool explicit_path = conf_opt || (env && *env);
    crm_plugins_opts opts = CRM_PLUGINS_OPTS_INIT;
    crm_conf *conf = NULL;
    int rc;

    *out = NULL;
    if (crm_conf_load(path, &conf) < 0) {
        if (crm_error_last()->code != CRM_ENOTFOUND || explicit_path) return crm_cli_fail();
        crm_log(CRM_LOG_INFO, "plugins: no %s here: running without plugins", path);
        conf = crm_calloc(1, sizeof *conf);
        conf->path = crm_strdup(path);
    }
    opts.plugin_dir = plugin_dir;
    opts.data_dir = c->data_dir;
    opts.http = http;
    rc = crm_plugins_load(out, c->k, conf, &opts) < 0 ? crm_cli_fail() : CLI_OK;
    crm_conf_free(conf);
    return rc;
}

static int add_lua_function(void *arg, const char *plugin, const char *name, crm_lua_fn fn,
                            void *udata)
{
    return crm_rules_register_function(arg, plugin, name, fn, udata);
}

static int add_rule_dir(void *arg, const char *plugin, const char *dir)
{
    return crm_rules_add_dir(arg, dir, plugin);
}

int crm_cli_load_rules(cli *c, crm_plugins *plugins, const char *scripts, crm_rules **out)
{
    crm_rules *rules = NULL;
    *out = NULL;
    /* crm_rules_load logs each file's problem itself (the file is skipped) */
    if (crm_rules_open(&rules, c->k, NULL) < 0 || crm_rules_add_dir(rules, scripts, "site") < 0 ||
        (plugins && (crm_plugins_each_lua_function(plugins, add_lua_function, rules) < 0 ||
                     crm_plugins_each_rule_dir(plugins, add_rule_dir, rules) < 0)) ||
        crm_rules_load(rules, NULL) < 0) {
        int rc = crm_cli_fail();
        if (rules) crm_rules_close(rules);
        return rc;
    }
    *out = rules;
    return CLI_OK;
}
