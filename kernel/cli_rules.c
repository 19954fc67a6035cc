/*
 * cli_rules.c — `crm rules check|test|list|reload`.
 *
 * reload reaches a running server by signal: `crm serve` writes its pid to
 * DATA/crm.pid and reloads its rules on SIGHUP (the same as POST
 * /api/v1/rules/reload).
 */
#include "cli.h"

#include "conf.h"
#include "rules.h"

#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int cmd_rules_check(cli *c, int argc, char **argv);
static int cmd_rules_test(cli *c, int argc, char **argv);
static int cmd_rules_list(cli *c, int argc, char **argv);
static int cmd_rules_reload(cli *c, int argc, char **argv);

const cli_command crm_cli_rules_commands[] = {
    {"rules check", cmd_rules_check, "FILE... [--no-schema]", "lint Lua rule files",
     "Checks rule files: Lua syntax, the rule declarations (trigger, phase, cron,\n"
     "durations, keys), and — against the schema of the data directory — topics,\n"
     "changed fields, from/to values of enum fields, date fields of before/after/\n"
     "yearly rules and the literal types in crm.get/find/create/update/delete calls.\n"
     "Prints one \"FILE:LINE: error|warning: message\" line per problem; exits 1 when\n"
     "there is an error. Without a database (or with --no-schema) only the files\n"
     "themselves are checked.\n"
     "Options:\n"
     "  --no-schema      do not open the data directory\n"},
    {"rules test", cmd_rules_test,
     "[FILE...] [--rules DIR] [--conf FILE [--plugin-dir DIR]] [--verbose]",
     "run rule tests against a throw-away database",
     "Runs rule test files (default: scripts/tests/*_test.lua). Each t.test(...) in a\n"
     "file runs against a fresh database in a temporary directory, with the rules of\n"
     "the directory above the test's tests/ directory loaded and the clock frozen at\n"
     "2024-01-01T09:00:00Z (see sdk/RULES.md, \"Testing rules\"). Prints ok / not ok\n"
     "per test and a last line \"N passed, N failed\"; exits 1 when a test failed.\n"
     "Options:\n"
     "  --rules DIR      load the rules of DIR instead\n"
     "  --conf FILE      load the plugins this plugins.conf enables into each test's\n"
     "                   database: their types (no t.define_type needed), their\n"
     "                   handlers, and the functions rules call as crm.<plugin>.<name>\n"
     "  --plugin-dir DIR where their .so files are (default: next to crm, plugins/)\n"
     "  --verbose        also show every rule load problem and the rules' log lines\n"},
    {"rules list", cmd_rules_list, "[--scripts DIR] [--json]", "list the site's rules",
     "Loads the site's rules (default ./scripts) against the data directory's schema\n"
     "and lists them: name, trigger, phase, state, file:line. Run counters live in the\n"
     "server: GET /api/v1/rules.\n"
     "Options:\n"
     "  --scripts DIR    the rules directory (default ./scripts)\n"
     "  --json           print the JSON of GET /api/v1/rules\n"},
    {"rules reload", cmd_rules_reload, "", "make the running server reload its rules",
     "Sends SIGHUP to the server whose pid is in DATA/crm.pid (written by crm serve);\n"
     "the server re-reads every rule directory without dropping requests. The same\n"
     "as POST /api/v1/rules/reload.\n"},
    {NULL, NULL, NULL, NULL, NULL},
};

static bool has_database(cli *c)
{
    struct stat sb;
    char *db = crm_sprintf("%s/crm.db", c->data_dir);
    bool ok = stat(db, &sb) == 0;
    free(db);
    return ok;
}

static int cmd_rules_check(cli *c, int argc, char **argv)
{
    const cli_command *cmd = crm_cli_command("rules check");
    bool no_schema = false;
    cli_opt opts[] = {{"--no-schema", NULL, &no_schema}, {NULL, NULL, NULL}};
    char **files = crm_calloc((size_t)argc + 1, sizeof *files);
    int n = 0, rc;
    if ((rc = crm_cli_parse(cmd, argc, argv, opts, files, 1, argc, &n)) != CLI_OK) goto done;
    if (!no_schema && has_database(c)) {
        if ((rc = crm_cli_open(c, false)) != CLI_OK) goto done;
    } else if (!no_schema) {
        fprintf(stderr, "note: no database in \"%s\": types and fields are not checked\n",
                c->data_dir);
    }
    int errors = 0;
    for (int i = 0; i < n; i++) {
        json_t *problems = json_array();
        errors += crm_rules_check_file(c->k, files[i], problems);
        size_t j;
        json_t *p;
        json_array_foreach(problems, j, p)
        {
            const char *msg = json_string_value(json_object_get(p, "message"));
            const char *file = json_string_value(json_object_get(p, "file"));
            int line = (int)json_integer_value(json_object_get(p, "line"));
            const char *level = json_string_value(json_object_get(p, "level"));
            /* messages from the parser start with "file:line:" already */
            char prefix[600];
            snprintf(prefix, sizeof prefix, "%s:%d:", file, line);
            if (strncmp(msg, prefix, strlen(prefix)) == 0) msg += strlen(prefix) + (msg[strlen(prefix)] == ' ');
            else if (strncmp(msg, file, strlen(file)) == 0 && msg[strlen(file)] == ':')
                msg += strlen(file) + 1 + (msg[strlen(file) + 1] == ' ');
            printf("%s:%d: %s: %s\n", file, line, level, msg);
        }
        json_decref(problems);
    }
    if (errors == 0) printf("%d file%s checked: no errors\n", n, n == 1 ? "" : "s");
    rc = errors ? CLI_FAIL : CLI_OK;
done:
    free(files);
    return rc;
}

static int cmd_rules_test(cli *c, int argc, char **argv)
{
    const cli_command *cmd = crm_cli_command("rules test");
    const char *rules_dir = NULL, *conf_path = NULL, *plugin_dir = NULL;
    bool verbose = false;
    cli_opt opts[] = {{"--rules", &rules_dir, NULL},
                      {"--conf", &conf_path, NULL},
                      {"--plugin-dir", &plugin_dir, NULL},
                      {"--verbose", NULL, &verbose},
                      {NULL, NULL, NULL}};
    crm_conf *conf = NULL;
    char **files = crm_calloc((size_t)argc + 1, sizeof *files);
    int n = 0, rc;
    glob_t g = {0};
    (void)c;
    if ((rc = crm_cli_parse(cmd, argc, argv, opts, files, 0, argc, &n)) != CLI_OK) goto done;
    if (verbose) crm_log_set_level(CRM_LOG_INFO);
    if (plugin_dir && !conf_path) {
        rc = crm_cli_usage_error(cmd, "--plugin-dir needs --conf (the plugins to load)");
        goto done;
    }
    if (conf_path && crm_conf_load(conf_path, &conf) < 0) {
        rc = crm_cli_fail();
        goto done;
    }
    if (n == 0) {
        if (glob("scripts/tests/*_test.lua", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
            fprintf(stderr, "crm rules test: no scripts/tests/*_test.lua here; name the files\n");
            rc = CLI_FAIL;
            goto done;
        }
    }
    crm_rules_test_result res = {0, 0};
    int count = n ? n : (int)g.gl_pathc;
    for (int i = 0; i < count; i++)
        crm_rules_test_file_with(n ? files[i] : g.gl_pathv[i], rules_dir, verbose, stdout, &res,
                                 conf, plugin_dir);
    printf("%d passed, %d failed\n", res.passed, res.failed);
    rc = res.failed ? CLI_FAIL : CLI_OK;
done:
    if (g.gl_pathv) globfree(&g);
    crm_conf_free(conf);
    free(files);
    return rc;
}

static int cmd_rules_list(cli *c, int argc, char **argv)
{
    const cli_command *cmd = crm_cli_command("rules list");
    const char *scripts = "scripts";
    bool as_json = false;
    cli_opt opts[] = {{"--scripts", &scripts, NULL}, {"--json", NULL, &as_json}, {NULL, NULL, NULL}};
    crm_rules *r = NULL;
    int rc;
    if ((rc = crm_cli_parse(cmd, argc, argv, opts, NULL, 0, 0, NULL)) != CLI_OK) return rc;
    if ((rc = crm_cli_open(c, false)) != CLI_OK) return rc;
    if (crm_rules_open(&r, c->k, NULL) < 0 || crm_rules_add_dir(r, scripts, "site") < 0 ||
        crm_rules_load(r, NULL) < 0) {
        crm_rules_close(r);
        return crm_cli_fail();
    }
    json_t *j = crm_rules_json(r);
    if (as_json) {
        char *s = json_dumps(j, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
    } else {
        printf("%-32s %-44s %-9s %-9s %s\n", "name", "trigger", "phase", "state", "file");
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(j, "data"), i, x)
        {
            printf("%-32s %-44s %-9s %-9s %s:%d\n",
                   json_string_value(json_object_get(x, "name")),
                   json_string_value(json_object_get(x, "trigger")),
                   json_string_value(json_object_get(x, "phase")),
                   json_string_value(json_object_get(x, "state")),
                   json_string_value(json_object_get(x, "file")),
                   (int)json_integer_value(json_object_get(x, "line")));
            if (json_is_string(json_object_get(x, "error")))
                printf("    error: %s\n", json_string_value(json_object_get(x, "error")));
        }
    }
    json_decref(j);
    crm_rules_close(r);
    return CLI_OK;
}

static int cmd_rules_reload(cli *c, int argc, char **argv)
{
    const cli_command *cmd = crm_cli_command("rules reload");
    int rc;
    if ((rc = crm_cli_parse(cmd, argc, argv, NULL, NULL, 0, 0, NULL)) != CLI_OK) return rc;
    char *path = crm_sprintf("%s/crm.pid", c->data_dir);
    FILE *fp = fopen(path, "r");
    long long pid = 0;
    if (!fp || fscanf(fp, "%lld", &pid) != 1 || pid <= 1) {
        fprintf(stderr,
                "crm rules reload: no running server found (%s %s); start \"crm serve\" or use "
                "POST /api/v1/rules/reload\n",
                path, fp ? "holds no pid" : "is missing");
        if (fp) fclose(fp);
        free(path);
        return CLI_FAIL;
    }
    fclose(fp);
    if (kill((pid_t)pid, SIGHUP) != 0) {
        fprintf(stderr, "crm rules reload: cannot signal server %lld (from %s): %s\n", pid, path,
                strerror(errno));
        free(path);
        return CLI_FAIL;
    }
    printf("asked server %lld to reload its rules\n", pid);
    free(path);
    return CLI_OK;
}
