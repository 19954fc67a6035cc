/*
 * cli_plugin.c — `crm plugin fetch|update|verify|list`: plugins from git,
 * pinned in plugins.lock (fetch.c, lock.c), and the loader's view of every
 * plugin in plugins.conf (plugin.c).
 */
#include "cli.h"

#include "conf.h"
#include "fetch.h"
#include "lock.h"
#include "plugin.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

static int cmd_plugin_fetch(cli *c, int argc, char **argv);
static int cmd_plugin_update(cli *c, int argc, char **argv);
static int cmd_plugin_verify(cli *c, int argc, char **argv);
static int cmd_plugin_list(cli *c, int argc, char **argv);
static int cmd_demo(cli *c, int argc, char **argv);

#define CONF_HELP                                                                                  \
    "  --conf FILE      plugins.conf to read (default: $CRM_PLUGINS_CONF, else\n"                  \
    "                   plugins.conf in the current directory)\n"

const cli_command crm_cli_plugin_commands[] = {
    {"plugin fetch", cmd_plugin_fetch, "[NAME] [--conf FILE]",
     "fetch, build and pin git plugins (plugins.lock)",
     "For every enabled plugin of plugins.conf with a git repository (or only NAME):\n"
     "fetch it into DATA/plugins/NAME/repo.git, read the files of one commit (never a\n"
     "work tree), build them with the SDK's plugin.mk and install the .so under\n"
     "DATA/plugins/NAME/<commit>/. plugins.lock records the commit and the .so's\n"
     "SHA-256.\n"
     "A plugin the lock pins stays at its commit: nothing happens when its .so is\n"
     "intact, and a missing .so is rebuilt from the local repository, offline. A\n"
     "plugin without a pin, or whose git or ref changed in plugins.conf, is pinned\n"
     "to what its ref names now. Use \"crm plugin update NAME\" to move a pin.\n"
     "Repositories: local paths (relative to plugins.conf), file://, https:// and\n"
     "ssh://; git:// and ext:: are refused. Symlinks, submodules and paths that\n"
     "could escape the plugin directory refuse the whole commit.\n"
     "Environment: CRM_SDK the SDK directory (default: ../sdk next to the crm\n"
     "executable).\n"
     "Options:\n" CONF_HELP},
    {"plugin update", cmd_plugin_update, "NAME [--conf FILE]", "move a plugin's pin to its ref",
     "Fetches NAME's repository, resolves its ref (tag, branch or commit in\n"
     "plugins.conf; none: the remote's HEAD) to a commit, builds it and moves the\n"
     "pin in plugins.lock. Prints\n"
     "  NAME: <old commit> \u2192 <new commit>\n"
     "or \"NAME: already at <commit>\".\n"
     "Options:\n" CONF_HELP},
    {"plugin verify", cmd_plugin_verify, "", "check the installed .so files against plugins.lock",
     "Checks that every plugin pinned in DATA/plugins.lock has its .so with the\n"
     "locked SHA-256. Prints one line per plugin; exits 1 naming every plugin whose\n"
     "file is missing or differs (a server start refuses those plugins).\n"},
    {"plugin list", cmd_plugin_list, "[--conf FILE] [--json]",
     "list the plugins and whether they load",
     "Loads the plugins of plugins.conf as the server would (dependency order,\n"
     "ABI and integrity checks, init) and prints for each: name, version, source,\n"
     "commit, state (loaded, disabled, refused) and the error of a refused one.\n"
     "Options:\n" CONF_HELP "  --json           print a JSON array instead of a table\n"},
    {"demo", cmd_demo, "[--conf FILE] [--plugin-dir DIR]",
     "load the demo data of the enabled plugins",
     "Runs the demo-data hook of every enabled, loaded plugin (in dependency order),\n"
     "as the system. Each plugin's demo data is deterministic.\n"
     "Options:\n" CONF_HELP "  --plugin-dir DIR where in-tree plugins' .so files are\n"},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---- shared ---- */

static const char *conf_path(const char *opt)
{
    const char *env = getenv("CRM_PLUGINS_CONF");
    if (opt) return opt;
    if (env && *env) return env;
    return "plugins.conf";
}

static int load_conf(const char *path, crm_conf **conf)
{
    if (crm_conf_load(path, conf) < 0) return crm_cli_fail();
    return CLI_OK;
}

/* Fetch (or update) `only`, or every enabled git plugin. */
static int fetch_plugins(cli *c, const char *conf_file, const char *only, bool update)
{
    crm_fetch_opts opts = CRM_FETCH_OPTS_INIT;
    crm_conf *conf = NULL;
    crm_lock *lock = NULL;
    char *conf_copy = NULL, *base = NULL;
    int rc, failed = 0, done = 0;
    bool seen = false;

    if ((rc = load_conf(conf_file, &conf)) != CLI_OK) return rc;
    if (crm_lock_load(c->data_dir, &lock) < 0) {
        rc = crm_cli_fail();
        goto out;
    }
    conf_copy = crm_strdup(conf->path ? conf->path : conf_file);
    base = realpath(dirname(conf_copy), NULL);
    opts.data_dir = c->data_dir;
    opts.base_dir = base;
    opts.update = update;
    for (int i = 0; i < conf->nplugins; i++) {
        const crm_conf_plugin *p = &conf->plugins[i];
        char *report = NULL;
        if (only && strcmp(p->name, only) != 0) continue;
        seen = true;
        if (!p->git) {
            if (only) {
                fprintf(stderr, "crm: plugin \"%s\" is in-tree (source = %s): nothing to fetch\n",
                        p->name, p->source ? p->source : "?");
                failed++;
            }
            continue;
        }
        if (!p->enabled && !only) continue;
        done++;
        if (crm_fetch_plugin(&opts, p, lock, &report) < 0) {
            crm_cli_fail();
            failed++;
            continue;
        }
        printf("%s\n", report);
        free(report);
    }
    if (only && !seen) {
        fprintf(stderr, "crm: plugin \"%s\" is not in %s\n", only,
                conf->path ? conf->path : conf_file);
        failed++;
    } else if (!only && done == 0) {
        printf("no enabled git plugins in %s\n", conf->path ? conf->path : conf_file);
    }
    rc = failed ? CLI_FAIL : CLI_OK;

out:
    free(base);
    free(conf_copy);
    crm_lock_free(lock);
    crm_conf_free(conf);
    return rc;
}

/* ---- the commands ---- */

static int cmd_plugin_fetch(cli *c, int argc, char **argv)
{
    const char *conf = NULL;
    cli_opt opts[] = {{"--conf", &conf, NULL}, {NULL, NULL, NULL}};
    char *pos[1] = {NULL};
    int rc;

    if ((rc = crm_cli_parse(crm_cli_command("plugin fetch"), argc, argv, opts, pos, 0, 1, NULL)) !=
        CLI_OK)
        return rc;
    return fetch_plugins(c, conf_path(conf), pos[0], false);
}

static int cmd_plugin_update(cli *c, int argc, char **argv)
{
    const char *conf = NULL;
    cli_opt opts[] = {{"--conf", &conf, NULL}, {NULL, NULL, NULL}};
    char *pos[1] = {NULL};
    int rc;

    if ((rc = crm_cli_parse(crm_cli_command("plugin update"), argc, argv, opts, pos, 1, 1, NULL)) !=
        CLI_OK)
        return rc;
    return fetch_plugins(c, conf_path(conf), pos[0], true);
}

static int cmd_plugin_verify(cli *c, int argc, char **argv)
{
    crm_lock *lock = NULL;
    int rc, bad = 0;

    if ((rc = crm_cli_parse(crm_cli_command("plugin verify"), argc, argv, NULL, NULL, 0, 0,
                            NULL)) != CLI_OK)
        return rc;
    if (crm_lock_load(c->data_dir, &lock) < 0) return crm_cli_fail();
    if (lock->n == 0) printf("%s: no plugins pinned\n", lock->path);
    for (int i = 0; i < lock->n; i++) {
        const crm_lock_entry *e = &lock->entries[i];
        if (crm_lock_verify(c->data_dir, e) < 0) {
            crm_cli_fail();
            bad++;
        } else {
            printf("%s: ok %s (commit %s)\n", e->name, e->so_sha256, e->commit);
        }
    }
    if (bad) fprintf(stderr, "crm: %d plugin(s) failed verification\n", bad);
    crm_lock_free(lock);
    return bad ? CLI_FAIL : CLI_OK;
}

static const char *str_or(json_t *v, const char *dflt)
{
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static int cmd_plugin_list(cli *c, int argc, char **argv)
{
    const char *conf_opt = NULL;
    bool as_json = false;
    cli_opt opts[] = {{"--conf", &conf_opt, NULL}, {"--json", NULL, &as_json}, {NULL, NULL, NULL}};
    crm_plugins_opts popts = CRM_PLUGINS_OPTS_INIT;
    crm_plugins *set = NULL;
    crm_conf *conf = NULL;
    json_t *list = NULL, *p;
    int rc, w_name = 4, w_ver = 7, w_src = 6;
    size_t i;

    if ((rc = crm_cli_parse(crm_cli_command("plugin list"), argc, argv, opts, NULL, 0, 0, NULL)) !=
        CLI_OK)
        return rc;
    if ((rc = load_conf(conf_path(conf_opt), &conf)) != CLI_OK) return rc;
    if ((rc = crm_cli_open(c, false)) != CLI_OK) goto done;
    popts.data_dir = c->data_dir;
    if (crm_plugins_load(&set, c->k, conf, &popts) < 0) {
        rc = crm_cli_fail();
        goto done;
    }
    list = crm_plugins_json(set);
    if (as_json) {
        char *text = json_dumps(list, JSON_INDENT(2));
        printf("%s\n", text);
        free(text);
        goto done;
    }
    json_array_foreach(list, i, p)
    {
        int a = (int)strlen(str_or(json_object_get(p, "name"), ""));
        int b = (int)strlen(str_or(json_object_get(p, "version"), "-"));
        int s = (int)strlen(str_or(json_object_get(p, "source"), "-"));
        w_name = a > w_name ? a : w_name;
        w_ver = b > w_ver ? b : w_ver;
        w_src = s > w_src ? s : w_src;
    }
    printf("%-*s  %-*s  %-*s  %-12s  %-8s  %s\n", w_name, "NAME", w_ver, "VERSION", w_src, "SOURCE",
           "COMMIT", "STATE", "ERROR");
    json_array_foreach(list, i, p)
    {
        const char *commit = str_or(json_object_get(p, "commit"), "-");
        printf("%-*s  %-*s  %-*s  %-12.12s  %-8s  %s\n", w_name,
               str_or(json_object_get(p, "name"), ""), w_ver,
               str_or(json_object_get(p, "version"), "-"), w_src,
               str_or(json_object_get(p, "source"), "-"), commit,
               str_or(json_object_get(p, "state"), "?"), str_or(json_object_get(p, "error"), ""));
    }

done:
    json_decref(list);
    if (set) crm_plugins_free(set);
    crm_conf_free(conf);
    return rc;
}

static int cmd_demo(cli *c, int argc, char **argv)
{
    const char *conf = NULL, *plugin_dir = NULL;
    cli_opt opts[] = {{"--conf", &conf, NULL}, {"--plugin-dir", &plugin_dir, NULL}, {NULL, NULL, NULL}};
    crm_plugins *set = NULL;
    int rc;

    if ((rc = crm_cli_parse(crm_cli_command("demo"), argc, argv, opts, NULL, 0, 0, NULL)) != CLI_OK)
        return rc;
    if ((rc = crm_cli_open(c, false)) != CLI_OK) return rc;
    if ((rc = crm_cli_load_plugins(c, conf, plugin_dir, NULL, &set)) != CLI_OK) return rc;
    rc = crm_plugins_run_demo(set, c->k) < 0 ? crm_cli_fail() : CLI_OK;
    crm_plugins_free(set);
    if (rc == CLI_OK) printf("demo data loaded\n");
    return rc;
}
