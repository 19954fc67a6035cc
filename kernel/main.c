/*
 * main.c — the `crm` command line: a table of commands, each a function with
 * its own help text, and a small dispatcher. Commands of one word ("init")
 * or two ("user add"); `crm user --help` lists a group.
 *
 * Exit codes: 0 done, 1 the command failed (the kernel's message on stderr),
 * 2 the command line was wrong (a usage message on stderr).
 *
 * Adding a command: write `static int cmd_x(cli *c, int argc, char **argv)`
 * and a row in `commands[]`. When commands move to their own files, the
 * "Shared by commands" section below becomes kernel/cli.h.
 */
#include "auth.h"
#include "perm.h"
#include "record.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#ifndef CRM_VERSION
#define CRM_VERSION "0.1.0"
#endif

/* ---- Shared by commands ---- */

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

static void print_help(const cli_command *cmd);

static int usage_error(const cli_command *cmd, const char *fmt, ...) CRM_PRINTF(2, 3);
static int usage_error(const cli_command *cmd, const char *fmt, ...)
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
static int fail(void)
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
static int cli_parse(const cli_command *cmd, int argc, char **argv, const cli_opt *opts, char **pos,
                     int pos_min, int pos_max, int *npos)
{
    bool options_done = false;
    int n = 0;

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || strcmp(a, "-") == 0) {
            if (n >= pos_max) return usage_error(cmd, "unexpected argument \"%s\"", a);
            pos[n++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help(cmd);
            return CLI_HELP;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const cli_opt *o = NULL;
        for (const cli_opt *p = opts; p && p->name; p++)
            if (strlen(p->name) == len && strncmp(p->name, a, len) == 0) o = p;
        if (!o) return usage_error(cmd, "unknown option \"%.*s\"", (int)len, a);
        if (o->flag) {
            if (eq) return usage_error(cmd, "option %s takes no value", o->name);
            *o->flag = true;
        } else if (eq) {
            *o->value = eq + 1;
        } else if (i + 1 < argc) {
            *o->value = argv[++i];
        } else {
            return usage_error(cmd, "option %s needs a value", o->name);
        }
    }
    if (n < pos_min) return usage_error(cmd, "missing argument");
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
static int cli_open(cli *c, bool create)
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
    if (crm_auth_init() < 0) return fail();
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
static int read_password(const char *env, char **out)
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

static void password_free(char *password)
{
    if (password) {
        sodium_memzero(password, strlen(password));
        free(password);
    }
}

static const char *global_help =
    "Global options (before or after the command):\n"
    "  --data DIR               data directory holding crm.db (default ./var)\n"
    "  --sync full|normal|off   SQLite synchronous mode (default full)\n";

/* ---- The commands ---- */

static int cmd_init(cli *c, int argc, char **argv);
static int cmd_user_add(cli *c, int argc, char **argv);
static int cmd_user_list(cli *c, int argc, char **argv);
static int cmd_user_disable(cli *c, int argc, char **argv);
static int cmd_user_enable(cli *c, int argc, char **argv);
static int cmd_user_passwd(cli *c, int argc, char **argv);
static int cmd_token_create(cli *c, int argc, char **argv);
static int cmd_token_list(cli *c, int argc, char **argv);
static int cmd_token_revoke(cli *c, int argc, char **argv);
static int cmd_backup(cli *c, int argc, char **argv);
static int cmd_version(cli *c, int argc, char **argv);

static const cli_command commands[] = {
    {"init", cmd_init, "", "create the data directory, the database and the admin user",
     "Creates the data directory (--data) and its database, then the user \"admin\".\n"
     "The admin password comes from the environment variable CRM_ADMIN_PASSWORD;\n"
     "without it a random one is generated and printed once:\n"
     "  admin password: ...\n"
     "When an admin user exists already, says so and changes nothing.\n"},
    {"user add", cmd_user_add, "USERNAME [--admin] [--name NAME] [--email EMAIL]", "create a user",
     "Creates a user. USERNAME is 1 to 64 characters of a-z 0-9 . _ @ -.\n"
     "The password comes from the environment variable CRM_PASSWORD, or else one\n"
     "line of standard input: UTF-8, at least 8 characters, at most 1024 bytes.\n"
     "Options:\n"
     "  --admin          the user is an administrator (all permissions)\n"
     "  --name NAME      display name\n"
     "  --email EMAIL    e-mail address\n"},
    {"user list", cmd_user_list, "[--json]", "list users",
     "Lists the users: id, username, name, admin, disabled.\n"
     "Options:\n"
     "  --json           print a JSON array instead of a table\n"},
    {"user disable", cmd_user_disable, "USERNAME", "stop a user from logging in",
     "Disables a user: logins and the user's API tokens are refused until enabled.\n"},
    {"user enable", cmd_user_enable, "USERNAME", "allow a disabled user again",
     "Enables a user disabled with \"crm user disable\".\n"},
    {"user passwd", cmd_user_passwd, "USERNAME", "set a user's password",
     "Sets a user's password, read from the environment variable CRM_PASSWORD, or\n"
     "else one line of standard input: UTF-8, at least 8 characters, at most 1024 bytes.\n"},
    {"token create", cmd_token_create, "USERNAME [--name NAME] [--expires-days N]",
     "issue an API token",
     "Issues an API token for a user and prints it, alone on one line. It is shown\n"
     "only this once: the database keeps only its hash. Use it as\n"
     "  Authorization: Bearer <token>\n"
     "Options:\n"
     "  --name NAME         a label to recognise the token by (default \"cli\")\n"
     "  --expires-days N    the token expires after N days (default: never)\n"},
    {"token list", cmd_token_list, "[USERNAME] [--json]", "list API tokens",
     "Lists API tokens (all, or a user's): id, user, name, created, expires,\n"
     "last used, state. Never the tokens themselves.\n"
     "Options:\n"
     "  --json           print a JSON array instead of a table\n"},
    {"token revoke", cmd_token_revoke, "ID", "revoke an API token",
     "Revokes the token with this ID (see \"crm token list\"); it is refused from now on.\n"},
    {"backup", cmd_backup, "FILE", "copy the database to FILE (online backup)",
     "Writes a consistent copy of the database to FILE while the CRM may be running\n"
     "(SQLite online backup). Refuses to overwrite an existing FILE.\n"},
    {"version", cmd_version, "", "print the version", "Prints the version of crm.\n"},
};

static const cli_command *command_named(const char *name)
{
    for (size_t i = 0; i < CRM_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

/* ---- init ---- */

static int cmd_init(cli *c, int argc, char **argv)
{
    const char *from_env = getenv("CRM_ADMIN_PASSWORD");
    char *password = NULL;
    json_t *users = NULL;
    size_t i;
    json_t *u;
    int rc;

    if ((rc = cli_parse(command_named("init"), argc, argv, NULL, NULL, 0, 0, NULL)) != CLI_OK)
        return rc;
    if ((rc = cli_open(c, true)) != CLI_OK) return rc;
    if (crm_user_list(c->k, &users) < 0) return fail();
    json_array_foreach(users, i, u)
    {
        if (json_is_true(json_object_get(u, "is_admin"))) {
            printf("already initialised: %s has an admin user (\"%s\")\n", c->data_dir,
                   json_string_value(json_object_get(u, "username")));
            json_decref(users);
            return CLI_OK;
        }
    }
    json_decref(users);

    if (from_env) {
        password = crm_strdup(from_env);
    } else {
        unsigned char raw[16];
        randombytes_buf(raw, sizeof raw);
        password = crm_b64url_encode(raw, sizeof raw);
        sodium_memzero(raw, sizeof raw);
    }
    if (crm_user_create(c->k, "admin", password, true, "Administrator", NULL) < 0) {
        password_free(password);
        return fail();
    }
    printf("initialised %s: user \"admin\" created\n", c->data_dir);
    if (!from_env) printf("admin password: %s\n", password);
    password_free(password);
    return CLI_OK;
}

/* ---- user ---- */

static int cmd_user_add(cli *c, int argc, char **argv)
{
    const cli_command *cmd = command_named("user add");
    const char *name = NULL, *email = NULL;
    bool admin = false;
    char *pos[1], *password = NULL;
    cli_opt opts[] = {{"--admin", NULL, &admin},
                      {"--name", &name, NULL},
                      {"--email", &email, NULL},
                      {NULL, NULL, NULL}};
    crm_conn *conn;
    int64_t id;
    int rc;

    if ((rc = cli_parse(cmd, argc, argv, opts, pos, 1, 1, NULL)) != CLI_OK) return rc;
    if ((rc = read_password("CRM_PASSWORD", &password)) != CLI_OK) return rc;
    if ((rc = cli_open(c, false)) != CLI_OK) goto done;

    /* The user and their e-mail in one transaction: a bad address creates nothing. */
    conn = crm_store_conn(c->k->store);
    rc = CLI_FAIL;
    if (crm_tx_begin(conn) < 0) {
        fail();
        goto done;
    }
    if (crm_user_create(c->k, pos[0], password, admin, name, &id) < 0) goto rollback;
    if (email) {
        json_t *patch = json_pack("{s:s}", "email", email);
        crm_ctx ctx;
        crm_ctx_init(&ctx, c->k, crm_principal_system(), "cli");
        int err = crm_record_update(&ctx, "core.user", id, patch, 0, NULL);
        json_decref(patch);
        if (err < 0) goto rollback;
    }
    if (crm_tx_commit(conn) < 0) goto rollback;
    printf("created user \"%s\" (id %" PRId64 ")\n", pos[0], id);
    rc = CLI_OK;
    goto done;

rollback:
    crm_tx_rollback(conn);
    fail();
done:
    password_free(password);
    return rc;
}

static const char *str_or(json_t *v, const char *dflt)
{
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static int cmd_user_list(cli *c, int argc, char **argv)
{
    bool as_json = false;
    cli_opt opts[] = {{"--json", NULL, &as_json}, {NULL, NULL, NULL}};
    json_t *users, *u;
    int w_user = 8, w_name = 4, rc;
    size_t i;

    if ((rc = cli_parse(command_named("user list"), argc, argv, opts, NULL, 0, 0, NULL)) != CLI_OK)
        return rc;
    if ((rc = cli_open(c, false)) != CLI_OK) return rc;
    if (crm_user_list(c->k, &users) < 0) return fail();
    if (as_json) {
        char *text = json_dumps(users, JSON_INDENT(2));
        printf("%s\n", text);
        free(text);
        json_decref(users);
        return CLI_OK;
    }
    json_array_foreach(users, i, u)
    {
        int a = (int)strlen(str_or(json_object_get(u, "username"), ""));
        int b = (int)strlen(str_or(json_object_get(u, "display_name"), ""));
        w_user = a > w_user ? a : w_user;
        w_name = b > w_name ? b : w_name;
    }
    printf("%-6s  %-*s  %-*s  %-5s  %s\n", "id", w_user, "username", w_name, "name", "admin",
           "disabled");
    json_array_foreach(users, i, u)
    {
        printf("%-6" JSON_INTEGER_FORMAT "  %-*s  %-*s  %-5s  %s\n",
               json_integer_value(json_object_get(u, "id")), w_user,
               str_or(json_object_get(u, "username"), ""), w_name,
               str_or(json_object_get(u, "display_name"), ""),
               json_is_true(json_object_get(u, "is_admin")) ? "yes" : "no",
               json_is_true(json_object_get(u, "disabled")) ? "yes" : "no");
    }
    json_decref(users);
    return CLI_OK;
}

static int set_disabled(cli *c, const char *name, int argc, char **argv, bool disabled)
{
    char *pos[1];
    int64_t id;
    int rc;

    if ((rc = cli_parse(command_named(name), argc, argv, NULL, pos, 1, 1, NULL)) != CLI_OK)
        return rc;
    if ((rc = cli_open(c, false)) != CLI_OK) return rc;
    if (crm_user_find(c->k, pos[0], &id) < 0 || crm_user_set_disabled(c->k, id, disabled) < 0)
        return fail();
    printf("user \"%s\" %s\n", pos[0], disabled ? "disabled" : "enabled");
    return CLI_OK;
}

static int cmd_user_disable(cli *c, int argc, char **argv)
{
    return set_disabled(c, "user disable", argc, argv, true);
}

static int cmd_user_enable(cli *c, int argc, char **argv)
{
    return set_disabled(c, "user enable", argc, argv, false);
}

static int cmd_user_passwd(cli *c, int argc, char **argv)
{
    char *pos[1], *password = NULL;
    int64_t id;
    int rc;

    if ((rc = cli_parse(command_named("user passwd"), argc, argv, NULL, pos, 1, 1, NULL)) != CLI_OK)
        return rc;
    if ((rc = cli_open(c, false)) != CLI_OK) return rc;
    if (crm_user_find(c->k, pos[0], &id) < 0) return fail();
    if ((rc = read_password("CRM_PASSWORD", &password)) != CLI_OK) return rc;
    rc = crm_user_set_password(c->k, id, password) < 0 ? fail() : CLI_OK;
    if (rc == CLI_OK) printf("password of \"%s\" changed\n", pos[0]);
    password_free(password);
    return rc;
}

/* ---- token ---- */

static int cmd_token_create(cli *c, int argc, char **argv)
{
    const cli_command *cmd = command_named("token create");
    const char *name = "cli", *days_text = NULL;
    cli_opt opts[] = {
        {"--name", &name, NULL}, {"--expires-days", &days_text, NULL}, {NULL, NULL, NULL}};
    int64_t user_id, days = 0, token_id;
    char *pos[1], *token;
    int rc;

    if ((rc = cli_parse(cmd, argc, argv, opts, pos, 1, 1, NULL)) != CLI_OK) return rc;
    if (days_text && (!crm_parse_int64(days_text, &days) || days < 1 || days > 36500))
        return usage_error(
            cmd, "--expires-days must be a number of days from 1 to 36500, not \"%s\"", days_text);
    if ((rc = cli_open(c, false)) != CLI_OK) return rc;
    if (crm_user_find(c->k, pos[0], &user_id) < 0 ||
        crm_token_create(c->k, user_id, name, days ? crm_now() + days * 86400 : 0, &token,
                         &token_id) < 0)
        return fail();
    printf("%s\n", token);
    sodium_memzero(token, strlen(token));
    free(token);
    return CLI_OK;
}

static const char *username_of(json_t *users, json_int_t id, char *buf, size_t n)
{
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u)
    {
        if (json_integer_value(json_object_get(u, "id")) == id)
            return str_or(json_object_get(u, "username"), "");
    }
    snprintf(buf, n, "#%" JSON_INTEGER_FORMAT, id); /* a deleted user */
    return buf;
}

static int cmd_token_list(cli *c, int argc, char **argv)
{
    bool as_json = false;
    cli_opt opts[] = {{"--json", NULL, &as_json}, {NULL, NULL, NULL}};
    json_t *tokens = NULL, *users = NULL, *t;
    char *pos[1], iso[21], buf[32];
    int64_t user_id = 0;
    int npos, rc;
    size_t i;

    if ((rc = cli_parse(command_named("token list"), argc, argv, opts, pos, 0, 1, &npos)) != CLI_OK)
        return rc;
    if ((rc = cli_open(c, false)) != CLI_OK) return rc;
    if ((npos == 1 && crm_user_find(c->k, pos[0], &user_id) < 0) ||
        crm_token_list(c->k, user_id, &tokens) < 0 || crm_user_list(c->k, &users) < 0) {
        rc = fail();
        goto done;
    }
    if (as_json) {
        char *text = json_dumps(tokens, JSON_INDENT(2));
        printf("%s\n", text);
        free(text);
        goto done;
    }
    crm_time_format(crm_now(), iso);
    printf("%-6s  %-16s  %-16s  %-20s  %-20s  %-20s  %s\n", "id", "user", "name", "created",
           "expires", "last used", "state");
    json_array_foreach(tokens, i, t)
    {
        const char *expires = str_or(json_object_get(t, "expires_at"), "never");
        const char *state = json_is_true(json_object_get(t, "revoked"))                  ? "revoked"
                            : strcmp(expires, "never") != 0 && strcmp(expires, iso) <= 0 ? "expired"
                                                                                         : "active";
        printf(
            "%-6" JSON_INTEGER_FORMAT "  %-16s  %-16s  %-20s  %-20s  %-20s  %s\n",
            json_integer_value(json_object_get(t, "id")),
            username_of(users, json_integer_value(json_object_get(t, "user_id")), buf, sizeof buf),
            str_or(json_object_get(t, "name"), ""), str_or(json_object_get(t, "created_at"), ""),
            expires, str_or(json_object_get(t, "last_used_at"), "never"), state);
    }
done:
    json_decref(tokens);
    json_decref(users);
    return rc;
}

static int cmd_token_revoke(cli *c, int argc, char **argv)
{
    const cli_command *cmd = command_named("token revoke");
    char *pos[1];
    int64_t id;
    int rc;

    if ((rc = cli_parse(cmd, argc, argv, NULL, pos, 1, 1, NULL)) != CLI_OK) return rc;
    if (!crm_parse_int64(pos[0], &id) || id < 1)
        return usage_error(cmd, "ID must be a token id (see crm token list), not \"%s\"", pos[0]);
    if ((rc = cli_open(c, false)) != CLI_OK) return rc;
    if (crm_token_revoke(c->k, id) < 0) return fail();
    printf("token %" PRId64 " revoked\n", id);
    return CLI_OK;
}

/* ---- backup, version ---- */

static int cmd_backup(cli *c, int argc, char **argv)
{
    char *pos[1];
    int rc;

    if ((rc = cli_parse(command_named("backup"), argc, argv, NULL, pos, 1, 1, NULL)) != CLI_OK)
        return rc;
    if ((rc = cli_open(c, false)) != CLI_OK) return rc;
    /* The store refuses an existing FILE itself (O_EXCL, no check-then-write window). */
    if (crm_store_backup(c->k->store, pos[0]) < 0) return fail();
    printf("backup written to %s\n", pos[0]);
    return CLI_OK;
}

static int cmd_version(cli *c, int argc, char **argv)
{
    int rc = cli_parse(command_named("version"), argc, argv, NULL, NULL, 0, 0, NULL);
    if (rc != CLI_OK) return rc;
    printf("crm %s (kernel schema %d, libsodium %s, jansson %s)\n", CRM_VERSION,
           crm_store_schema_version(), sodium_version_string(), JANSSON_VERSION);
    return CLI_OK;
}

/* ---- Dispatcher ---- */

static void print_help(const cli_command *cmd)
{
    printf("usage: crm %s %s\n\n%s\n%s", cmd->name, cmd->usage, cmd->help, global_help);
}

static void print_commands(FILE *out, const char *group)
{
    for (size_t i = 0; i < CRM_ARRAY_LEN(commands); i++) {
        const char *name = commands[i].name;
        if (group && (strncmp(name, group, strlen(group)) != 0 || name[strlen(group)] != ' '))
            continue;
        fprintf(out, "  %-14s %s\n", name, commands[i].summary);
    }
}

static void print_main_help(void)
{
    printf("usage: crm [--data DIR] [--sync MODE] COMMAND [ARGS]\n\n"
           "The crm command line: set up a data directory, manage users and API tokens.\n\n"
           "Commands:\n");
    print_commands(stdout, NULL);
    printf("\n%s\nRun \"crm COMMAND --help\" for a command's arguments and options.\n",
           global_help);
}

/* Whether some command is "<word> ..." (a group like "user"). */
static bool is_group(const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i < CRM_ARRAY_LEN(commands); i++)
        if (strncmp(commands[i].name, word, n) == 0 && commands[i].name[n] == ' ') return true;
    return false;
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
        print_commands(stderr, NULL);
        fprintf(stderr, "\nRun \"crm --help\" for more.\n");
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_main_help();
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) return cmd_version(&c, 0, NULL);

    if (is_group(argv[1])) {
        char *name = argc > 2 ? crm_sprintf("%s %s", argv[1], argv[2]) : NULL;
        cmd = name ? command_named(name) : NULL;
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
            print_commands(out, argv[1]);
            fprintf(out, "\n%s", global_help);
            return help ? CLI_OK : CLI_USAGE;
        }
    } else {
        cmd = command_named(argv[1]);
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
