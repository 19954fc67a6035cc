/*
 * cli.h — what the `crm` commands share: the command table entry, option
 * parsing, opening the data directory, reading passwords, and errors.
 *
 * A command is `static int cmd_x(cli *c, int argc, char **argv)` plus a row in
 * a NULL-terminated table of its file (cli_core.c, cli_serve.c, ...); the
 * tables are listed once, in cli.c.
 *
 * Exit codes: 0 done, 1 the command failed (the kernel's message on stderr),
 * 2 the command line was wrong (a usage message on stderr).
 */
#ifndef CRM_CLI_H
#define CRM_CLI_H

#include "kernel.h"

#include <stdio.h>

#ifndef CRM_VERSION
#define CRM_VERSION "0.1.0"
#endif

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_HELP = 3 /* parse: --help was printed */ };

typedef struct cli {
    const char *data_dir; /* --data, default ./var */
    int synchronous;      /* --sync: 0 off, 1 normal, 2 full */
    crm_kernel *k;        /* opened by cli_open, closed by main */
} cli;

typedef struct cli_command {
    const char *name;                          /* "init", "user add" */
    int (*run)(cli *c, int argc, char **argv); /* argv: the arguments after the name */
    const char *usage;                         /* "USERNAME [--admin]" */
    const char *summary;                       /* one line for `crm --help` */
    const char *help;                          /* what it does and every option */
} cli_command;

/* One option of a command: a flag (`flag` set) or an option with a value. */
typedef struct cli_opt {
    const char *name; /* "--name" */
    const char **value;
    bool *flag;
} cli_opt;

extern const char *const crm_cli_global_help;

/* The command named "init" or "user add" in any table, or NULL. */
const cli_command *crm_cli_command(const char *name);
/* Whether some command is "<word> ..." (a group like "user"). */
bool crm_cli_is_group(const char *word);
/* List the commands (of `group`, or all) one a line. */
void crm_cli_print_commands(FILE *out, const char *group);
void crm_cli_print_help(const cli_command *cmd);

/* Print "crm CMD: <message>" and the usage; returns CLI_USAGE. */
int crm_cli_usage_error(const cli_command *cmd, const char *fmt, ...) CRM_PRINTF(2, 3);
/* The failure of a kernel call: its message on stderr; returns CLI_FAIL. */
int crm_cli_fail(void);
/*
 * Split argv into `opts` and positional arguments (between pos_min and
 * pos_max of them). "--opt value", "--opt=value", "--" ends the options.
 * Returns CLI_OK, CLI_USAGE (message printed) or CLI_HELP (help printed).
 */
int crm_cli_parse(const cli_command *cmd, int argc, char **argv, const cli_opt *opts, char **pos,
                  int pos_min, int pos_max, int *npos);
/*
 * Open the kernel on the data directory. Only `create` (crm init) makes a
 * new one: every other command refuses a directory without a database, so a
 * mistyped --data does not silently start an empty CRM.
 */
int crm_cli_open(cli *c, bool create);
/*
 * A password from the environment variable `env`, else one line of stdin
 * (without echo when stdin is a terminal). Malloc'd into *out.
 */
int crm_cli_read_password(const char *env, char **out);
/* Wipe and free a password. */
void crm_cli_password_free(char *password);

/*
 * Read plugins.conf (the --conf option, else $CRM_PLUGINS_CONF, else
 * ./plugins.conf) and load the enabled plugins into the open kernel, their
 * routes into `http` (NULL: none). A missing default plugins.conf means no
 * plugins; a missing file named explicitly, or a malformed one, is an error.
 * Returns CLI_OK or CLI_FAIL (message printed).
 */
struct crm_plugins;
struct crm_http;
int crm_cli_load_plugins(cli *c, const char *conf_opt, const char *plugin_dir, struct crm_http *http,
                         struct crm_plugins **out);

/*
 * Open the rules engine on the open kernel with the site's rules from
 * `scripts` and every loaded plugin's Lua functions and rules directories,
 * and load them: writes made by this command then run the same rules as
 * over HTTP. A rule file with errors is logged and skipped.
 * Returns CLI_OK or CLI_FAIL (message printed); crm_rules_close(*out) after.
 */
struct crm_rules;
int crm_cli_load_rules(cli *c, struct crm_plugins *plugins, const char *scripts,
                       struct crm_rules **out);

/* The command tables, each ending with a row whose name is NULL. */
extern const cli_command crm_cli_core_commands[];
extern const cli_command crm_cli_serve_commands[];
extern const cli_command crm_cli_io_commands[];
extern const cli_command crm_cli_rules_commands[];
extern const cli_command crm_cli_plugin_commands[];

#endif
