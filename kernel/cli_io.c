/*
 * cli_io.c — `crm import` and `crm export`: io.c from the command line, as the
 * system (the default) or as a user (--as: their permissions and hidden
 * fields apply, as over HTTP).
 */
#include "cli.h"

#include "auth.h"
#include "io.h"
#include "perm.h"
#include "plugin.h"
#include "rules.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int cmd_import(cli *c, int argc, char **argv);
static int cmd_export(cli *c, int argc, char **argv);

const cli_command crm_cli_io_commands[] = {
    {"import", cmd_import,
     "TYPE FILE [--mode all|line] [--as USERNAME] [--conf FILE] [--plugin-dir DIR] "
     "[--scripts DIR]",
     "import records from a CSV file",
     "Imports the records of a CSV file (RFC 4180, UTF-8, optional BOM; FILE \"-\" is\n"
     "standard input) into TYPE. The first line names the columns: fields of TYPE,\n"
     "and \"id\" to update existing records (an empty id creates a new record),\n"
     "\"owner\" and \"team\" as ids. Other system columns (created_at, version, ...) are\n"
     "ignored, so the output of \"crm export\" imports as it is. An empty cell leaves\n"
     "the field out. Prints the result as JSON:\n"
     "  {\"created\":N,\"updated\":N,\"failed\":N,\"errors\":[{\"line\",\"message\",\"field\"}]}\n"
     "\"line\" is the line of the file the record starts on (1 is the header).\n"
     "Exits 1 when any record failed.\n"
     "The plugins of plugins.conf are loaded and the rules (the site's and the\n"
     "plugins') run, as for an import over HTTP: a plugin's checks and the work its\n"
     "handlers do on a write (a hotel reservation's nights, say) happen here too.\n"
     "Options:\n"
     "  --mode all       all or nothing (default): one bad record and nothing is\n"
     "                   imported; every bad record is reported\n"
     "  --mode line      import the good records, report the bad ones\n"
     "  --as USERNAME    act as this user (default: the system, no restrictions)\n"
     "  --conf FILE      plugins.conf (default: $CRM_PLUGINS_CONF, else ./plugins.conf)\n"
     "  --plugin-dir DIR where plugin .so files are (default: next to crm, plugins/)\n"
     "  --scripts DIR    the site's Lua rules (default ./scripts)\n"},
    {"export", cmd_export,
     "TYPE [--format csv|json] [--out FILE] [--raw] [--as USERNAME] [--conf FILE] "
     "[--plugin-dir DIR] [FILTER...]",
     "export records as CSV or JSON",
     "Writes the records of TYPE to standard output or FILE: CSV (a header line, then\n"
     "one line per record) or a JSON array. FILTER arguments select and order records\n"
     "like the list API's query: field=value, field__op=value (op: ne gt gte lt lte in\n"
     "like null), sort=-field,field, fields=a,b, deleted=1.\n"
     "CSV cells starting with = + - @ TAB or CR get a leading ' so that spreadsheets\n"
     "do not run them as formulas. Each export is recorded in the audit log.\n"
     "Options:\n"
     "  --format csv|json   the output format (default csv)\n"
     "  --out FILE          write to FILE instead of standard output\n"
     "  --raw               no formula guard (administrators only; audited)\n"
     "  --as USERNAME       act as this user: only their records and fields\n"
     "  --conf FILE         plugins.conf: the types of plugins it does not enable are\n"
     "                      not exported (default: $CRM_PLUGINS_CONF, else ./plugins.conf)\n"
     "  --plugin-dir DIR    where plugin .so files are\n"},
    {NULL, NULL, NULL, NULL, NULL},
};

/* The acting principal: the system, or the user named by --as. */
static int load_principal(cli *c, const char *as, crm_principal **out)
{
    int64_t id;
    *out = crm_principal_system();
    if (!as) return CLI_OK;
    if (crm_user_find(c->k, as, &id) < 0 || crm_principal_load(c->k->perm, id, out) < 0) {
        *out = NULL;
        return crm_cli_fail();
    }
    return CLI_OK;
}

static void principal_free(crm_principal *p)
{
    if (p && p != crm_principal_system()) crm_principal_free(p);
}

/* The whole of FILE ("-": stdin) into a malloc'd buffer. */
static int read_all(const char *path, char **out, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 1 << 16, n = 0;
    char *data;
    if (!f) {
        fprintf(stderr, "crm: cannot open %s: %s\n", path, strerror(errno));
        return CLI_FAIL;
    }
    data = crm_malloc(cap);
    for (;;) {
        if (n == cap) data = crm_realloc(data, cap *= 2);
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    bool failed = ferror(f);
    if (f != stdin) fclose(f);
    if (failed) {
        fprintf(stderr, "crm: cannot read %s\n", path);
        free(data);
        return CLI_FAIL;
    }
    *out = data;
    *len = n;
    return CLI_OK;
}

static int cmd_import(cli *c, int argc, char **argv)
{
    const cli_command *cmd = crm_cli_command("import");
    const char *mode_name = NULL, *as = NULL, *conf = NULL, *plugin_dir = NULL,
               *scripts = "scripts";
    cli_opt opts[] = {{"--mode", &mode_name, NULL},     {"--as", &as, NULL},
                      {"--conf", &conf, NULL},          {"--plugin-dir", &plugin_dir, NULL},
                      {"--scripts", &scripts, NULL},    {NULL, NULL, NULL}};
    char *pos[2], *data = NULL;
    crm_principal *who = NULL;
    crm_plugins *plugins = NULL;
    crm_rules *rules = NULL;
    json_t *result = NULL;
    size_t len = 0;
    int rc, mode;

    if ((rc = crm_cli_parse(cmd, argc, argv, opts, pos, 2, 2, NULL)) != CLI_OK) return rc;
    if ((mode = crm_import_mode_from_name(mode_name)) < 0)
        return crm_cli_usage_error(cmd, "--mode must be all or line, not \"%s\"", mode_name);
    if ((rc = read_all(pos[1], &data, &len)) != CLI_OK) return rc;
    if ((rc = crm_cli_open(c, false)) != CLI_OK) goto done;
    if ((rc = crm_cli_load_plugins(c, conf, plugin_dir, NULL, &plugins)) != CLI_OK ||
        (rc = crm_cli_load_rules(c, plugins, scripts, &rules)) != CLI_OK)
        goto done;
    if ((rc = load_principal(c, as, &who)) != CLI_OK) goto done;

    crm_ctx ctx;
    crm_ctx_init(&ctx, c->k, who, "cli import");
    if (crm_import_csv(&ctx, pos[0], data, len, mode, &result) < 0) {
        rc = crm_cli_fail();
        goto done;
    }
    char *text = json_dumps(result, JSON_INDENT(2));
    printf("%s\n", text);
    free(text);
    json_int_t failed = json_integer_value(json_object_get(result, "failed"));
    rc = CLI_OK;
    if (failed) {
        fprintf(stderr, "crm: %" JSON_INTEGER_FORMAT " record%s failed; %s\n", failed,
                failed == 1 ? "" : "s",
                mode == CRM_IMPORT_ALL ? "nothing was imported" : "the others were imported");
        rc = CLI_FAIL;
    }
done:
    json_decref(result);
    principal_free(who);
    if (rules) crm_rules_close(rules);
    if (plugins) crm_plugins_free(plugins);
    free(data);
    return rc;
}

static int cmd_export(cli *c, int argc, char **argv)
{
    const cli_command *cmd = crm_cli_command("export");
    const char *format_name = NULL, *out_path = NULL, *as = NULL;
    bool raw = false;
    const char *conf = NULL, *plugin_dir = NULL;
    cli_opt opts[] = {{"--format", &format_name, NULL}, {"--out", &out_path, NULL},
                      {"--raw", NULL, &raw},            {"--as", &as, NULL},
                      {"--conf", &conf, NULL},          {"--plugin-dir", &plugin_dir, NULL},
                      {NULL, NULL, NULL}};
    crm_plugins *plugins = NULL;
    char *pos[1 + CRM_QUERY_MAX_FILTERS + 8];
    crm_principal *who = NULL;
    crm_export *exp = NULL;
    crm_query q;
    FILE *out = NULL;
    int rc, npos, format;

    crm_query_init(&q);
    if ((rc = crm_cli_parse(cmd, argc, argv, opts, pos, 1, (int)CRM_ARRAY_LEN(pos), &npos)) !=
        CLI_OK)
        return rc;
    if ((format = crm_export_format_from_name(format_name)) < 0)
        return crm_cli_usage_error(cmd, "--format must be csv or json, not \"%s\"", format_name);
    for (int i = 1; i < npos; i++) {
        char *eq = strchr(pos[i], '=');
        if (!eq || eq == pos[i])
            return crm_cli_usage_error(cmd, "a filter is field=value, not \"%s\"", pos[i]);
        *eq = '\0';
        if (strcmp(pos[i], "limit") == 0 || strcmp(pos[i], "count") == 0 ||
            strcmp(pos[i], "cursor") == 0) {
            crm_query_free(&q);
            return crm_cli_usage_error(cmd, "\"%s\" does not apply to an export", pos[i]);
        }
        if (crm_query_add(&q, pos[i], eq + 1) < 0) {
            crm_query_free(&q);
            return crm_cli_fail();
        }
    }
    if ((rc = crm_cli_open(c, false)) != CLI_OK) goto done;
    if ((rc = crm_cli_load_plugins(c, conf, plugin_dir, NULL, &plugins)) != CLI_OK) goto done;
    if ((rc = load_principal(c, as, &who)) != CLI_OK) goto done;

    crm_ctx ctx;
    crm_ctx_init(&ctx, c->k, who, "cli export");
    if (crm_export_open(&exp, &ctx, pos[0], &q, format, raw) < 0) {
        rc = crm_cli_fail();
        goto done;
    }
    out = out_path ? fopen(out_path, "wb") : stdout;
    if (!out) {
        fprintf(stderr, "crm: cannot write %s: %s\n", out_path, strerror(errno));
        rc = CLI_FAIL;
        goto done;
    }
    static char buf[1 << 16];
    ssize_t n;
    while ((n = crm_export_next(exp, buf, sizeof buf)) > 0)
        if (fwrite(buf, 1, (size_t)n, out) != (size_t)n) break;
    bool write_failed = n > 0 || fflush(out) != 0 || ferror(out);
    if (n < 0) {
        rc = crm_cli_fail();
    } else if (write_failed) {
        fprintf(stderr, "crm: cannot write %s: %s\n", out_path ? out_path : "the output",
                strerror(errno));
        rc = CLI_FAIL;
    } else {
        rc = CLI_OK;
    }
    if (out_path) {
        if (fclose(out) != 0 && rc == CLI_OK) {
            fprintf(stderr, "crm: cannot write %s: %s\n", out_path, strerror(errno));
            rc = CLI_FAIL;
        }
        if (rc != CLI_OK) remove(out_path); /* no half-written file left behind */
        else
            printf("exported %lld %s records to %s\n", (long long)crm_export_count(exp), pos[0],
                   out_path);
    }
done:
    crm_export_free(exp);
    crm_query_free(&q);
    principal_free(who);
    if (plugins) crm_plugins_free(plugins);
    return rc;
}
