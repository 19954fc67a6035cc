/*
 * main.c — the `crm` command line's entry point: global options, then the
 * command ("init") or group and command ("user add") from the tables of
 * cli.c. The commands themselves live in cli_*.c.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* ---- Dispatcher ---- */

static void print_main_help(void)
{
    printf("usage: crm [--data DIR] [--sync MODE] COMMAND [ARGS]\n\n"
           "The crm command line: set up a data directory, manage users and API tokens,\n"
           "serve the HTTP API, import and export records.\n\n"
           "Commands:\n");
    crm_cli_print_commands(stdout, NULL);
    printf("\n%s\nRun \"crm COMMAND --help\" for a command's arguments and options.\n",
           crm_cli_global_help);
}

/*
 * Take the global options out of argv, wherever they are (before "--").
 * Returns CLI_OK or CLI_USAGE with a message printed.
 */
static int take_globals(cli *c, int *argc, char **argv)
{
    int out = 1;
    bool done = false;

    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i], *value = NULL;
        bool is_data = strncmp(a, "--data", 6) == 0 && (a[6] == '\0' || a[6] == '=');
        bool is_sync = strncmp(a, "--sync", 6) == 0 && (a[6] == '\0' || a[6] == '=');
        if (strcmp(a, "--") == 0) done = true;
        if (done || (!is_data && !is_sync)) {
            argv[out++] = argv[i];
            continue;
        }
        if (a[6] == '=') {
            value = a + 7;
        } else if (i + 1 < *argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, "crm: option %s needs a value (see crm --help)\n", a);
            return CLI_USAGE;
        }
        if (is_data) {
            if (!*value) {
                fprintf(stderr, "crm: --data needs a directory (see crm --help)\n");
                return CLI_USAGE;
            }
            c->data_dir = value;
        } else if (strcmp(value, "full") == 0) {
            c->synchronous = 2;
        } else if (strcmp(value, "normal") == 0) {
            c->synchronous = 1;
        } else if (strcmp(value, "off") == 0) {
            c->synchronous = 0;
        } else {
            fprintf(stderr, "crm: --sync must be full, normal or off, not \"%s\"\n", value);
            return CLI_USAGE;
        }
    }
    *argc = out;
    argv[out] = NULL;
    return CLI_OK;
}

int main(int argc, char **argv)
{
    cli c = {"./var", 2, NULL};
    const cli_command *cmd = NULL;
    int words, rc;

    /* A command's output is its answer; the kernel's info lines would only be noise. */
    crm_log_set_level(CRM_LOG_WARN);
    if ((rc = take_globals(&c, &argc, argv)) != CLI_OK) return rc;
    if (argc < 2) {
        fprintf(stderr, "crm: missing command\n\nCommands:\n");
        crm_cli_print_commands(stderr, NULL);
        fprintf(stderr, "\nRun \"crm --help\" for more.\n");
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_main_help();
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) return crm_cli_command("version")->run(&c, 0, NULL);

    if (crm_cli_is_group(argv[1])) {
        char *name = argc > 2 ? crm_sprintf("%s %s", argv[1], argv[2]) : NULL;
        cmd = name ? crm_cli_command(name) : NULL;
        free(name);
        words = 2;
        if (!cmd) {
            bool help = argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
            FILE *out = help ? stdout : stderr;
            if (!help)
                fprintf(stderr,
                        argc > 2 ? "crm %s: unknown command \"%s\"\n"
                                 : "crm %s: missing command%s\n",
                        argv[1], argc > 2 ? argv[2] : "");
            fprintf(out, "usage: crm %s COMMAND\n\nCommands:\n", argv[1]);
            crm_cli_print_commands(out, argv[1]);
            fprintf(out, "\n%s", crm_cli_global_help);
            return help ? CLI_OK : CLI_USAGE;
        }
    } else {
        cmd = crm_cli_command(argv[1]);
        words = 1;
    }
    if (!cmd) {
        fprintf(stderr, "crm: unknown command \"%s\" (see crm --help)\n", argv[1]);
        return CLI_USAGE;
    }

    rc = cmd->run(&c, argc - 1 - words, argv + 1 + words);
    if (rc == CLI_HELP) rc = CLI_OK;
    if (c.k) crm_kernel_close(c.k);
    return rc;
}
