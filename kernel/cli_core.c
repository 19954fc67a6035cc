/*
 * cli_core.c — the core commands: init, user, token, backup, version.
 */
#include "cli.h"
#include "maintain.h"

#include "auth.h"
#include "perm.h"
#include "record.h"
#include "session.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

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
static int cmd_maintain(cli *c, int argc, char **argv);
static int cmd_version(cli *c, int argc, char **argv);

const cli_command crm_cli_core_commands[] = {
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
    {"token create", cmd_token_create,
     "USERNAME [--name NAME] [--expires-days N] [--admin-actions]",
     "issue an API token",
     "Issues an API token for a user and prints it, alone on one line. It is shown\n"
     "only this once: the database keeps only its hash. Use it as\n"
     "  Authorization: Bearer <token>\n"
     "Options:\n"
     "  --name NAME         a label to recognise the token by (default \"cli\")\n"
     "  --expires-days N    the token expires after N days (default: never)\n"
     "  --admin-actions     the token may make administrative changes (rules reload,\n"
     "                      roles, grants, users' roles and admin flags). Without it\n"
     "                      those answer 403 reauth_required even for an admin's token:\n"
     "                      a token has no password to re-authenticate with.\n"},
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
    {"maintain", cmd_maintain, "", "merge the search indexes (crm serve does it daily)",
     "Merges each type's full-text search index into one segment, in short write\n"
     "transactions, so that searches read one segment instead of a dozen or more.\n"
     "Safe while the CRM runs; crm serve does the same in the background once a day.\n"
     "Prints what it did.\n"},
    {"version", cmd_version, "", "print the version", "Prints the version of crm.\n"},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---- init ---- */

static int cmd_init(cli *c, int argc, char **argv)
{
    const char *from_env = getenv("CRM_ADMIN_PASSWORD");
    char *password = NULL;
    json_t *users = NULL;
    size_t i;
    json_t *u;
    int rc;

    if ((rc = crm_cli_parse(crm_cli_command("init"), argc, argv, NULL, NULL, 0, 0, NULL)) != CLI_OK)
        return rc;
    if ((rc = crm_cli_open(c, true)) != CLI_OK) return rc;
    if (crm_user_list(c->k, &users) < 0) return crm_cli_fail();
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
        crm_cli_password_free(password);
        return crm_cli_fail();
    }
    printf("initialised %s: user \"admin\" created\n", c->data_dir);
    if (!from_env) printf("admin password: %s\n", password);
    crm_cli_password_free(password);
    return CLI_OK;
}

/* ---- user ---- */

static int cmd_user_add(cli *c, int argc, char **argv)
{
    const cli_command *cmd = crm_cli_command("user add");
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

    if ((rc = crm_cli_parse(cmd, argc, argv, opts, pos, 1, 1, NULL)) != CLI_OK) return rc;
    if ((rc = crm_cli_read_password("CRM_PASSWORD", &password)) != CLI_OK) return rc;
    if ((rc = crm_cli_open(c, false)) != CLI_OK) goto done;

    /* The user and their e-mail in one transaction: a bad address creates nothing. */
    conn = crm_store_conn(c->k->store);
    rc = CLI_FAIL;
    if (crm_tx_begin(conn) < 0) {
        crm_cli_fail();
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
    crm_cli_fail();
done:
    crm_cli_password_free(password);
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

    if ((rc = crm_cli_parse(crm_cli_command("user list"), argc, argv, opts, NULL, 0, 0, NULL)) !=
        CLI_OK)
        return rc;
    if ((rc = crm_cli_open(c, false)) != CLI_OK) return rc;
    if (crm_user_list(c->k, &users) < 0) return crm_cli_fail();
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

    if ((rc = crm_cli_parse(crm_cli_command(name), argc, argv, NULL, pos, 1, 1, NULL)) != CLI_OK)
        return rc;
    if ((rc = crm_cli_open(c, false)) != CLI_OK) return rc;
    if (crm_user_find(c->k, pos[0], &id) < 0 || crm_user_set_disabled(c->k, id, disabled) < 0)
        return crm_cli_fail();
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

    if ((rc = crm_cli_parse(crm_cli_command("user passwd"), argc, argv, NULL, pos, 1, 1, NULL)) !=
        CLI_OK)
        return rc;
    if ((rc = crm_cli_open(c, false)) != CLI_OK) return rc;
    if (crm_user_find(c->k, pos[0], &id) < 0) return crm_cli_fail();
    if ((rc = crm_cli_read_password("CRM_PASSWORD", &password)) != CLI_OK) return rc;
    /* A new password ends every session of the user (SECURITY S5). */
    rc = crm_user_set_password(c->k, id, password) < 0 || crm_session_revoke_user(c->k, id, 0) < 0
             ? crm_cli_fail()
             : CLI_OK;
    if (rc == CLI_OK) printf("password of \"%s\" changed\n", pos[0]);
    crm_cli_password_free(password);
    return rc;
}

/* ---- token ---- */

static int cmd_token_create(cli *c, int argc, char **argv)
{
    const cli_command *cmd = crm_cli_command("token create");
    const char *name = "cli", *days_text = NULL;
    bool admin_actions = false;
    cli_opt opts[] = {{"--name", &name, NULL},
                      {"--expires-days", &days_text, NULL},
                      {"--admin-actions", NULL, &admin_actions},
                      {NULL, NULL, NULL}};
    int64_t user_id, days = 0, token_id;
    char *pos[1], *token;
    int rc;

    if ((rc = crm_cli_parse(cmd, argc, argv, opts, pos, 1, 1, NULL)) != CLI_OK) return rc;
    if (days_text && (!crm_parse_int64(days_text, &days) || days < 1 || days > 36500))
        return crm_cli_usage_error(
            cmd, "--expires-days must be a number of days from 1 to 36500, not \"%s\"", days_text);
    if ((rc = crm_cli_open(c, false)) != CLI_OK) return rc;
    if (crm_user_find(c->k, pos[0], &user_id) < 0 ||
        crm_token_create(c->k, user_id, name, days ? crm_now() + days * 86400 : 0, &token,
                         &token_id) < 0)
        return crm_cli_fail();
    if (admin_actions && crm_token_set_admin_actions(c->k, token_id, true) < 0) {
        /* Never print a token that is not what was asked for. */
        rc = crm_cli_fail();
        crm_token_revoke(c->k, token_id);
        sodium_memzero(token, strlen(token));
        free(token);
        return rc;
    }
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

    if ((rc = crm_cli_parse(crm_cli_command("token list"), argc, argv, opts, pos, 0, 1, &npos)) !=
        CLI_OK)
        return rc;
    if ((rc = crm_cli_open(c, false)) != CLI_OK) return rc;
    if ((npos == 1 && crm_user_find(c->k, pos[0], &user_id) < 0) ||
        crm_token_list(c->k, user_id, &tokens) < 0 || crm_user_list(c->k, &users) < 0) {
        rc = crm_cli_fail();
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
        bool admin_actions = json_is_true(json_object_get(t, "admin_actions"));
        const char *state = json_is_true(json_object_get(t, "revoked"))                  ? "revoked"
                            : strcmp(expires, "never") != 0 && strcmp(expires, iso) <= 0 ? "expired"
                            : admin_actions ? "active, admin actions"
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
    const cli_command *cmd = crm_cli_command("token revoke");
    char *pos[1];
    int64_t id;
    int rc;

    if ((rc = crm_cli_parse(cmd, argc, argv, NULL, pos, 1, 1, NULL)) != CLI_OK) return rc;
    if (!crm_parse_int64(pos[0], &id) || id < 1)
        return crm_cli_usage_error(cmd, "ID must be a token id (see crm token list), not \"%s\"",
                                   pos[0]);
    if ((rc = crm_cli_open(c, false)) != CLI_OK) return rc;
    if (crm_token_revoke(c->k, id) < 0) return crm_cli_fail();
    printf("token %" PRId64 " revoked\n", id);
    return CLI_OK;
}

/* ---- backup, version ---- */

static int cmd_backup(cli *c, int argc, char **argv)
{
    char *pos[1];
    int rc;

    if ((rc = crm_cli_parse(crm_cli_command("backup"), argc, argv, NULL, pos, 1, 1, NULL)) !=
        CLI_OK)
        return rc;
    if ((rc = crm_cli_open(c, false)) != CLI_OK) return rc;
    /* The store refuses an existing FILE itself (O_EXCL, no check-then-write window). */
    if (crm_store_backup(c->k->store, pos[0]) < 0) return crm_cli_fail();
    printf("backup written to %s\n", pos[0]);
    return CLI_OK;
}

static int cmd_maintain(cli *c, int argc, char **argv)
{
    crm_maintain_stats st;
    int rc;

    if ((rc = crm_cli_parse(crm_cli_command("maintain"), argc, argv, NULL, NULL, 0, 0, NULL)) !=
        CLI_OK)
        return rc;
    if ((rc = crm_cli_open(c, false)) != CLI_OK) return rc;
    if (crm_maintain_run(c->k, -1, &st) < 0) return crm_cli_fail();
    if (st.merged)
        printf("search indexes: merged %d of %d in %d steps, %lld ms\n", st.merged, st.indexes,
               st.steps, (long long)(st.us / 1000));
    else
        printf("search indexes: %d, each already one segment\n", st.indexes);
    return CLI_OK;
}

static int cmd_version(cli *c, int argc, char **argv)
{
    int rc = crm_cli_parse(crm_cli_command("version"), argc, argv, NULL, NULL, 0, 0, NULL);
    if (rc != CLI_OK) return rc;
    printf("crm %s (kernel schema %d, libsodium %s, jansson %s)\n", CRM_VERSION,
           crm_store_schema_version(), sodium_version_string(), JANSSON_VERSION);
    return CLI_OK;
}
