/*
 * plugin.c — the plugin loader (see plugin.h for the contract).
 *
 * The order of a start, for each enabled plugin of plugins.conf:
 *   1. find the .so: in-tree, the built <plugin_dir>/<dir>.so; git, the locked
 *      file after its SHA-256 was checked against plugins.lock;
 *   2. dlopen(RTLD_NOW|RTLD_LOCAL): unresolved symbols fail here, not later;
 *      RTLD_LOCAL keeps one plugin's symbols from satisfying another's;
 *   3. call crm_plugin_v1() and check the descriptor before anything else of
 *      the plugin runs (PostgreSQL's PG_MODULE_MAGIC);
 *   4. order by requirements (depth-first, dependencies first), refusing
 *      missing ones, unsatisfied ranges and cycles with the chain named;
 *   5. per plugin, in that order: refuse a downgrade; run init with the
 *      host API (declarations are staged, see host.c); on success apply:
 *      migration steps, types, fields, roles, the version record, then bus
 *      handlers, routes and schedules.
 * A refused plugin refuses its dependents; the others go on.
 *
 * Applying after init is not one transaction: crm_schema_define_type
 * publishes a type when its own savepoint is released, and published types
 * cannot be withdrawn from the lock-free registry. Each step is atomic and
 * idempotent instead, so a failure half-way through (disk full) leaves a
 * consistent state that the next start completes: migration steps are
 * recorded one by one, declarations are re-applied as "add what is missing",
 * and the version is written last.
 */
#include "plugin_int.h"

#include "bus.h"
#include "lock.h"
#include "perm.h"
#include "record.h"
#include "sched.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The descriptor size of each ABI minor of this major: struct_size must cover it. */
static const uint32_t desc_size_of_minor[] = {
    (uint32_t)sizeof(crm_plugin_desc), /* 1.0 */
};

/* ---- Semantic versions ---- */

static bool parse_num(const char **s, long *out)
{
    const char *p = *s;
    if (!isdigit((unsigned char)*p)) return false;
    if (p[0] == '0' && isdigit((unsigned char)p[1])) return false; /* no leading zeros */
    long v = 0;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > 100000000) return false;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    *s = p;
    return true;
}

static bool ident_chars(const char *s, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.') return false;
    return s[0] != '.' && s[n - 1] != '.' && !strstr(s, "..");
}

bool crm_semver_parse(const char *s, crm_semver *out)
{
    crm_semver v = {0, 0, 0, ""};
    if (!s) return false;
    if (!parse_num(&s, &v.major) || *s++ != '.' || !parse_num(&s, &v.minor) || *s++ != '.' ||
        !parse_num(&s, &v.patch))
        return false;
    if (*s == '-') {
        const char *end = strchr(s + 1, '+');
        size_t n = end ? (size_t)(end - s - 1) : strlen(s + 1);
        if (n >= sizeof v.pre || !ident_chars(s + 1, n)) return false;
        memcpy(v.pre, s + 1, n);
        v.pre[n] = 0;
        s += 1 + n;
    }
    if (*s == '+') {
        if (!ident_chars(s + 1, strlen(s + 1))) return false;
        s += strlen(s);
    }
    if (*s) return false;
    *out = v;
    return true;
}

/* Pre-release precedence (semver 11.4): dot-separated, numeric < alphanumeric. */
static int cmp_pre(const char *a, const char *b)
{
    if (!*a || !*b) return *a ? -1 : *b ? 1 : 0; /* a release outranks its pre-releases */
    while (*a || *b) {
        if (!*a) return -1;
        if (!*b) return 1;
        size_t na = strcspn(a, "."), nb = strcspn(b, ".");
        bool da = true, db = true;
        for (size_t i = 0; i < na; i++) da = da && isdigit((unsigned char)a[i]);
        for (size_t i = 0; i < nb; i++) db = db && isdigit((unsigned char)b[i]);
        int c;
        if (da && db)
            c = na != nb ? (na < nb ? -1 : 1) : strncmp(a, b, na);
        else if (da != db)
            c = da ? -1 : 1;
        else {
            c = strncmp(a, b, na < nb ? na : nb);
            if (c == 0 && na != nb) c = na < nb ? -1 : 1;
        }
        if (c) return c < 0 ? -1 : 1;
        a += na + (a[na] == '.');
        b += nb + (b[nb] == '.');
    }
    return 0;
}

int crm_semver_cmp(const crm_semver *a, const crm_semver *b)
{
    if (a->major != b->major) return a->major < b->major ? -1 : 1;
    if (a->minor != b->minor) return a->minor < b->minor ? -1 : 1;
    if (a->patch != b->patch) return a->patch < b->patch ? -1 : 1;
    return cmp_pre(a->pre, b->pre);
}

/* A partial version in a range: "1", "1.2", "1.2.3", "1.2.3-rc.1"; *parts = how many numbers. */
static bool parse_partial(const char *s, crm_semver *v, int *parts)
{
    memset(v, 0, sizeof *v);
    *parts = 0;
    if (!parse_num(&s, &v->major)) return false;
    *parts = 1;
    if (*s == '.') {
        s++;
        if (!parse_num(&s, &v->minor)) return false;
        *parts = 2;
        if (*s == '.') {
            s++;
            if (!parse_num(&s, &v->patch)) return false;
            *parts = 3;
            if (*s == '-') {
                size_t n = strcspn(s + 1, "+");
                if (n >= sizeof v->pre || !ident_chars(s + 1, n)) return false;
                memcpy(v->pre, s + 1, n);
                v->pre[n] = 0;
                s += 1 + n;
            }
            if (*s == '+') s += strlen(s);
        }
    }
    return *s == 0;
}

static bool comparator_ok(const char *op, const crm_semver *v, int parts, const crm_semver *ver)
{
    crm_semver hi = *v; /* the exclusive upper bound of ^, ~ and partial "=" */
    hi.pre[0] = 0;
    int c = crm_semver_cmp(ver, v);
    if (strcmp(op, ">=") == 0) return c >= 0;
    if (strcmp(op, ">") == 0) {
        if (parts < 3) { /* ">1.2" means ">=1.3.0" */
            if (parts == 1) hi.major++, hi.minor = 0;
            else hi.minor++;
            hi.patch = 0;
            return crm_semver_cmp(ver, &hi) >= 0;
        }
        return c > 0;
    }
    if (strcmp(op, "<") == 0) return c < 0;
    if (strcmp(op, "<=") == 0) {
        if (parts < 3) { /* "<=1.2" means "<1.3.0" */
            if (parts == 1) hi.major++, hi.minor = 0;
            else hi.minor++;
            hi.patch = 0;
            return crm_semver_cmp(ver, &hi) < 0;
        }
        return c <= 0;
    }
    if (strcmp(op, "^") == 0) {
        if (c < 0) return false;
        if (v->major > 0 || parts == 1) hi.major++, hi.minor = 0, hi.patch = 0;
        else if (v->minor > 0 || parts == 2) hi.minor++, hi.patch = 0;
        else hi.patch++;
        return crm_semver_cmp(ver, &hi) < 0;
    }
    if (strcmp(op, "~") == 0) {
        if (c < 0) return false;
        if (parts == 1) hi.major++, hi.minor = 0;
        else hi.minor++;
        hi.patch = 0;
        return crm_semver_cmp(ver, &hi) < 0;
    }
    /* "=" or bare: exact, or every version of a partial one ("1.2" = 1.2.x) */
    if (parts == 3) return c == 0;
    if (c < 0) return false;
    if (parts == 1) hi.major++, hi.minor = 0;
    else hi.minor++;
    hi.patch = 0;
    return crm_semver_cmp(ver, &hi) < 0;
}

int crm_semver_satisfies(const char *range, const char *version, bool *ok)
{
    crm_semver ver;
    *ok = false;
    if (!crm_semver_parse(version, &ver))
        return crm_error_set(CRM_EINVALID, NULL, "\"%s\" is not a semantic version",
                             version ? version : "");
    if (!range) range = "*";
    bool all = true;
    const char *s = range;
    do {
        size_t n = strcspn(s, ",");
        char item[128];
        if (n >= sizeof item)
            return crm_error_set(CRM_EINVALID, NULL, "version range \"%s\" is too long", range);
        memcpy(item, s, n);
        item[n] = 0;
        s += n + (s[n] == ',');
        char *c = item, *e = item + strlen(item);
        while (*c == ' ' || *c == '\t') c++;
        while (e > c && (e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
        if (strcmp(c, "*") == 0 || strcmp(c, "x") == 0) continue;
        char op[3] = "";
        if (strncmp(c, ">=", 2) == 0 || strncmp(c, "<=", 2) == 0) {
            memcpy(op, c, 2);
            op[2] = 0;
            c += 2;
        } else if (*c == '>' || *c == '<' || *c == '=' || *c == '^' || *c == '~') {
            op[0] = *c++;
            op[1] = 0;
        }
        while (*c == ' ') c++;
        crm_semver v;
        int parts;
        if (!*c || !parse_partial(c, &v, &parts))
            return crm_error_set(CRM_EINVALID, NULL,
                                 "bad version range \"%s\": each comparator is one of >=V >V "
                                 "<=V <V =V ^V ~V V or *, joined by commas", range);
        if (!comparator_ok(op, &v, parts, &ver)) all = false;
    } while (*s);
    *ok = all;
    return CRM_OK;
}

/* ---- The set ---- */

static void plugin_free(crm_plugin *p)
{
    crm_host__discard(p);
    free(p->name);
    free(p->source);
    free(p->git);
    free(p->ref);
    free(p->commit);
    free(p->so_path);
    free(p->src_dir);
    json_decref(p->settings);
    free(p->version);
    free(p->installed_version);
    free(p->error);
    free(p->reg_error);
    free(p);
}

/* Refuse `p` with a message (printf-style); logged at ERROR. */
static void refuse(crm_plugin *p, const char *fmt, ...) CRM_PRINTF(2, 3);

static void refuse(crm_plugin *p, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (strcmp(p->state, CRM_PLUGIN_REFUSED) == 0) return; /* the first reason is the one to fix */
    p->state = CRM_PLUGIN_REFUSED;
    free(p->error);
    p->error = crm_strdup(msg);
    crm_log(CRM_LOG_ERROR, "plugin %s refused: %s", p->name, msg);
}

static crm_plugin *find(crm_plugins *set, const char *name)
{
    for (int i = 0; i < set->n; i++)
        if (strcmp(set->all[i]->name, name) == 0) return set->all[i];
    return NULL;
}

/* The directory of the running binary + "/plugins". */
static char *default_plugin_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return crm_strdup("plugins");
    exe[n] = 0;
    return crm_sprintf("%s/plugins", dirname(exe));
}

static const char *base_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    const char *b = path + n;
    while (b > path && b[-1] != '/') b--;
    return b;
}

/* Step 1: where the .so is (and for git, that its hash is the locked one). */
static void locate(crm_plugins *set, crm_plugin *p, const char *plugin_dir, const crm_lock *lock)
{
    struct stat sb;
    if (p->source) {
        char *dir = crm_strdup(base_name(p->source));
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/') dir[--n] = 0;
        p->so_path = crm_sprintf("%s/%s.so", plugin_dir, dir);
        p->src_dir = crm_strdup(p->source);
        free(dir);
        if (stat(p->so_path, &sb) != 0)
            refuse(p, "%s: not built (%s); build in-tree plugins with make", p->so_path,
                   strerror(errno));
        return;
    }
    const crm_lock_entry *e = lock ? crm_lock_find(lock, p->name) : NULL;
    if (!e) {
        refuse(p, "not fetched: plugins.lock has no entry for \"%s\"; run crm plugin fetch %s",
               p->name, p->name);
        return;
    }
    if (!e->git || strcmp(e->git, p->git) != 0 ||
        ((p->ref || e->ref) && (!p->ref || !e->ref || strcmp(p->ref, e->ref) != 0))) {
        refuse(p, "plugins.conf names %s%s%s but plugins.lock pins %s%s%s; run crm plugin "
               "fetch %s", p->git, p->ref ? " " : "", p->ref ? p->ref : "", e->git ? e->git : "?",
               e->ref ? " " : "", e->ref ? e->ref : "", p->name);
        return;
    }
    p->commit = e->commit ? crm_strdup(e->commit) : NULL;
    p->so_path = crm_sprintf("%s/%s", set->data_dir, e->so);
    p->src_dir = crm_sprintf("%s/plugins/%s/src-%s", set->data_dir, p->name,
                             e->commit ? e->commit : "");
    if (crm_lock_verify(set->data_dir, e) != CRM_OK) refuse(p, "%s", crm_error_last()->message);
}

/* Steps 2 and 3: load the object and check its descriptor. */
static void open_and_check(crm_plugin *p)
{
    const char *so = p->so_path;
    dlerror();
    p->dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        const char *e = dlerror();
        refuse(p, "%s: cannot load: %s", so, e ? e : "unknown error");
        return;
    }
    crm_plugin_v1_fn entry;
    void *sym = dlsym(p->dl, "crm_plugin_v1");
    if (!sym) {
        refuse(p, "%s: no crm_plugin_v1 symbol: not a crm plugin, or the descriptor function "
               "lacks CRM_PLUGIN_EXPORT", so);
        return;
    }
    memcpy(&entry, &sym, sizeof entry); /* object pointer to function pointer, as POSIX allows */
    const crm_plugin_desc *d = entry();
    if (!d) {
        refuse(p, "%s: crm_plugin_v1 returned NULL", so);
        return;
    }
    if (d->magic != CRM_PLUGIN_MAGIC) {
        refuse(p, "%s: plugin ABI mismatch: magic is 0x%08X, expected 0x%08X (not a crm "
               "plugin descriptor)", so, (unsigned)d->magic, CRM_PLUGIN_MAGIC);
        return;
    }
    if (d->abi_major != CRM_ABI_MAJOR) {
        refuse(p, "%s: plugin ABI mismatch: abi_major is %u, this crm supports %d (rebuild the "
               "plugin against this crm's sdk/crm.h)", so, (unsigned)d->abi_major, CRM_ABI_MAJOR);
        return;
    }
    if (d->abi_minor > CRM_ABI_MINOR) {
        refuse(p, "%s: plugin ABI mismatch: abi_minor is %u, this crm supports up to %d (the "
               "plugin needs a newer crm)", so, (unsigned)d->abi_minor, CRM_ABI_MINOR);
        return;
    }
    uint32_t need = desc_size_of_minor[d->abi_minor];
    if (d->struct_size < need) {
        refuse(p, "%s: plugin ABI mismatch: struct_size is %u, ABI %u.%u needs at least %u", so,
               (unsigned)d->struct_size, (unsigned)d->abi_major, (unsigned)d->abi_minor,
               (unsigned)need);
        return;
    }
    if (d->abi_config != CRM_ABI_CONFIG) {
        uint32_t a = d->abi_config, b = CRM_ABI_CONFIG;
        refuse(p, "%s: plugin ABI mismatch: abi_config is 0x%08X, this crm has 0x%08X "
               "(sizeof void* %u/%u, time_t %u/%u, long %u/%u, size_t %u/%u)", so, (unsigned)a,
               (unsigned)b, a & 0xff, b & 0xff, (a >> 8) & 0xff, (b >> 8) & 0xff,
               (a >> 16) & 0xff, (b >> 16) & 0xff, a >> 24, b >> 24);
        return;
    }
    if (!d->name || strcmp(d->name, p->name) != 0) {
        refuse(p, "%s: the plugin is named \"%s\" but its plugins.conf section is [%s]", so,
               d->name ? d->name : "(null)", p->name);
        return;
    }
    crm_semver v;
    if (!d->version || !crm_semver_parse(d->version, &v)) {
        refuse(p, "%s: version \"%s\" is not a semantic version (MAJOR.MINOR.PATCH)", so,
               d->version ? d->version : "(null)");
        return;
    }
    if (!d->init) {
        refuse(p, "%s: the descriptor has no init function", so);
        return;
    }
    p->desc = d;
    p->version = crm_strdup(d->version);
}

/* ---- Step 4: dependency order ---- */

/* The requirements of `p`: the descriptor's, plus a "requires" setting in plugins.conf
 * ("crm >= 1.0, < 2; mail ^1"). Calls fn(name, range) for each; stops at non-zero. */
static int each_requirement(crm_plugin *p, int (*fn)(crm_plugins *, crm_plugin *, const char *,
                                                      const char *, void *),
                            void *arg)
{
    int rc;
    for (const crm_plugin_dep *d = p->desc->requires; d && d->name; d++)
        if ((rc = fn(p->set, p, d->name, d->range, arg))) return rc;
    const char *extra = json_string_value(json_object_get(p->settings, "requires"));
    if (!extra) return 0;
    char *copy = crm_strdup(extra), *save = NULL;
    rc = 0;
    for (char *item = strtok_r(copy, ";", &save); item && !rc; item = strtok_r(NULL, ";", &save)) {
        while (*item == ' ') item++;
        size_t n = strcspn(item, " \t<>=^~");
        char name[64];
        if (n == 0 || n >= sizeof name) continue;
        memcpy(name, item, n);
        name[n] = 0;
        const char *range = item + n;
        while (*range == ' ') range++;
        rc = fn(p->set, p, name, *range ? range : NULL, arg);
    }
    free(copy);
    return rc;
}

typedef struct visit_state {
    crm_plugin **stack;
    int depth;
    int *mark; /* per plugin index in set->all: 0 new, 1 on the stack, 2 done */
} visit_state;

static int index_of(crm_plugins *set, crm_plugin *p)
{
    for (int i = 0; i < set->n; i++)
        if (set->all[i] == p) return i;
    return -1;
}

static void visit(crm_plugins *set, crm_plugin *p, visit_state *vs);

static int visit_dep(crm_plugins *set, crm_plugin *p, const char *name, const char *range,
                     void *arg)
{
    visit_state *vs = arg;
    crm_plugin *d = find(set, name);
    if (!d || !d->desc) return 0; /* reported when p is initialised */
    int i = index_of(set, d);
    if (vs->mark[i] == 1) {
        /* A cycle: the stack from d to p, then d again. */
        crm_buf chain = CRM_BUF_INIT;
        int from = 0;
        for (int j = 0; j < vs->depth; j++)
            if (vs->stack[j] == d) from = j;
        for (int j = from; j < vs->depth; j++) {
            crm_buf_puts(&chain, vs->stack[j]->name);
            crm_buf_puts(&chain, " -> ");
        }
        crm_buf_puts(&chain, d->name);
        for (int j = from; j < vs->depth; j++)
            refuse(vs->stack[j], "dependency cycle: %s", crm_buf_str(&chain));
        crm_buf_free(&chain);
        return 0;
    }
    if (vs->mark[i] == 0) visit(set, d, vs);
    return 0;
}

static void visit(crm_plugins *set, crm_plugin *p, visit_state *vs)
{
    int i = index_of(set, p);
    vs->mark[i] = 1;
    vs->stack[vs->depth++] = p;
    each_requirement(p, visit_dep, vs);
    vs->depth--;
    vs->mark[i] = 2;
    set->order[set->norder++] = p;
}

/* Checked just before init: each requirement loaded, in range. */
static int check_dep(crm_plugins *set, crm_plugin *p, const char *name, const char *range,
                     void *arg)
{
    (void)arg;
    crm_plugin *d = find(set, name);
    bool ok;
    if (!d) {
        refuse(p, "requires plugin \"%s\"%s%s, which is not in plugins.conf", name,
               range ? " " : "", range ? range : "");
        return 1;
    }
    if (!d->enabled) {
        refuse(p, "requires plugin \"%s\", which is disabled in plugins.conf", name);
        return 1;
    }
    if (strcmp(d->state, CRM_PLUGIN_LOADED) != 0) {
        refuse(p, "requires plugin \"%s\", which was refused: %s", name,
               d->error ? d->error : "");
        return 1;
    }
    if (crm_semver_satisfies(range, d->version, &ok) != CRM_OK) {
        refuse(p, "requires \"%s %s\": %s", name, range, crm_error_last()->message);
        return 1;
    }
    if (!ok) {
        refuse(p, "requires \"%s %s\", found %s %s", name, range, name, d->version);
        return 1;
    }
    return 0;
}

/* ---- Step 5: versions, init, apply ---- */

static int read_installed(crm_plugins *set, crm_plugin *p)
{
    crm_stmt *st;
    crm_conn *conn = crm_store_conn(set->k->store);
    int rc = crm_stmt_prepare(conn, &st, "SELECT version FROM core_plugin WHERE name = ?");
    if (rc) return rc;
    crm_stmt_bind_text(st, 1, p->name, -1);
    rc = crm_stmt_step(st);
    if (rc == 1 && crm_stmt_column_text(st, 0))
        p->installed_version = crm_strdup(crm_stmt_column_text(st, 0));
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

static int exec_bound(crm_conn *conn, const char *sql, const char *a, const char *b,
                      const char *c, const char *d)
{
    crm_stmt *st;
    int rc = crm_stmt_prepare(conn, &st, sql);
    if (rc) return rc;
    const char *v[] = {a, b, c, d};
    for (int i = 0; i < 4 && i < crm_stmt_param_count(st); i++) {
        if (v[i])
            crm_stmt_bind_text(st, i + 1, v[i], -1);
        else
            crm_stmt_bind_null(st, i + 1);
    }
    rc = crm_stmt_step(st);
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

static bool migration_done(crm_conn *conn, const char *plugin, const char *version)
{
    crm_stmt *st;
    bool done = false;
    if (crm_stmt_prepare(conn, &st, "SELECT 1 FROM core_plugin_migration WHERE plugin = ? AND "
                                    "version = ?"))
        return false;
    crm_stmt_bind_text(st, 1, plugin, -1);
    crm_stmt_bind_text(st, 2, version, -1);
    done = crm_stmt_step(st) == 1;
    crm_stmt_done(st);
    return done;
}

static int cmp_migration(const void *a, const void *b)
{
    return crm_semver_cmp(&((const staged_migration *)a)->v, &((const staged_migration *)b)->v);
}

/* Migration steps (installed, current], each once, each in its own transaction. */
static int run_migrations(crm_plugins *set, crm_plugin *p)
{
    crm_semver from, to;
    crm_conn *conn = crm_store_conn(set->k->store);
    if (!p->installed_version || !crm_semver_parse(p->installed_version, &from)) return CRM_OK;
    crm_semver_parse(p->version, &to);
    if (p->n_migrations > 1)
        qsort(p->migrations, (size_t)p->n_migrations, sizeof *p->migrations, cmp_migration);
    for (int i = 0; i < p->n_migrations; i++) {
        staged_migration *m = &p->migrations[i];
        if (crm_semver_cmp(&m->v, &from) <= 0 || crm_semver_cmp(&m->v, &to) > 0) continue;
        if (migration_done(conn, p->name, m->version)) continue;
        char *via = crm_sprintf("plugin %s migration %s", p->name, m->version);
        char at[21];
        crm_ctx ctx;
        int rc;
        crm_ctx_init(&ctx, set->k, crm_principal_system(), via);
        crm_time_format(crm_now(), at);
        if ((rc = crm_tx_begin(conn))) {
            free(via);
            return rc;
        }
        crm_host__set_migrating(p);
        crm_error_clear();
        rc = m->fn(&ctx, p->installed_version, m->udata);
        if (rc == CRM_OK)
            rc = exec_bound(conn, "INSERT INTO core_plugin_migration(plugin, version, "
                                  "from_version, applied_at) VALUES (?, ?, ?, ?)",
                            p->name, m->version, p->installed_version, at);
        if (rc == CRM_OK) rc = crm_tx_commit(conn);
        else crm_tx_rollback(conn);
        if (rc) crm_host__revert_renames(set->k->schema);
        crm_host__set_migrating(NULL);
        free(via);
        if (rc) {
            const char *msg = crm_error_last()->message;
            return crm_error_set(rc < 0 ? rc : CRM_EINTERNAL, NULL, "migration %s -> %s failed: %s",
                                 p->installed_version, m->version,
                                 msg && *msg ? msg : "(the step set no message)");
        }
        crm_log(CRM_LOG_INFO, "plugin %s: migration %s -> %s applied", p->name,
                p->installed_version, m->version);
    }
    return CRM_OK;
}

static int find_role(crm_kernel *k, const char *name, int64_t *id)
{
    crm_stmt *st;
    crm_conn *conn = crm_store_conn(k->store);
    int rc = crm_stmt_prepare(conn, &st, "SELECT id FROM \"core.role\" WHERE name = ? AND "
                                         "deleted_at IS NULL");
    if (rc) return rc;
    crm_stmt_bind_text(st, 1, name, -1);
    rc = crm_stmt_step(st);
    *id = rc == 1 ? crm_stmt_column_int(st, 0) : 0;
    crm_stmt_done(st);
    return rc < 0 ? rc : CRM_OK;
}

static bool grant_exists(crm_kernel *k, int64_t role, const char *type, int action)
{
    crm_stmt *st;
    bool found = false;
    if (crm_stmt_prepare(crm_store_conn(k->store), &st,
                         "SELECT 1 FROM core_grant WHERE role_id = ? AND type = ? AND action = ?"))
        return false;
    crm_stmt_bind_int(st, 1, role);
    crm_stmt_bind_text(st, 2, type, -1);
    crm_stmt_bind_int(st, 3, action);
    found = crm_stmt_step(st) == 1;
    crm_stmt_done(st);
    return found;
}

/* A role is created once; grants are added where the role has none for (type, action). */
static int apply_role(crm_plugins *set, crm_plugin *p, staged_role *r)
{
    int64_t id;
    int rc;
    const char *type, *action;
    json_t *actions, *level;
    if ((rc = find_role(set->k, r->name, &id))) return rc;
    if (!id) {
        crm_ctx ctx;
        json_t *fields = json_pack("{s:s}", "name", r->name), *out = NULL;
        char *via = crm_sprintf("plugin %s", p->name);
        if (r->description) json_object_set_new(fields, "description", json_string(r->description));
        crm_ctx_init(&ctx, set->k, crm_principal_system(), via);
        rc = crm_record_create(&ctx, "core.role", fields, &out);
        if (!rc) id = json_integer_value(json_object_get(out, "id"));
        json_decref(fields);
        json_decref(out);
        free(via);
        if (rc) return rc;
    }
    json_object_foreach(r->grants, type, actions) {
        json_object_foreach(actions, action, level) {
            int a = crm_action_from_name(action);
            if (grant_exists(set->k, id, type, a)) continue;
            if ((rc = crm_perm_grant(set->k->perm, id, type, a,
                                     crm_level_from_name(json_string_value(level)))))
                return rc;
        }
    }
    return CRM_OK;
}

static bool field_owned_by(crm_schema *schema, const char *type, json_t *spec, const char *owner)
{
    const crm_type *t = crm_schema_type(schema, type);
    const char *name = json_string_value(json_object_get(spec, "name"));
    const crm_field *f = t && name ? crm_type_field(t, name) : NULL;
    return f && strcmp(f->owner, owner) == 0;
}

static int apply(crm_plugins *set, crm_plugin *p)
{
    int rc;
    crm_kernel *k = set->k;
    crm_conn *conn = crm_store_conn(k->store);
    char at[21];

    if ((rc = run_migrations(set, p))) return rc;
    for (int i = 0; i < p->n_types; i++)
        if ((rc = crm_schema_define_type(k->schema, p->types[i].name, p->types[i].label, p->name,
                                         p->types[i].fields)))
            return rc;
    for (int i = 0; i < p->n_fields; i++) {
        if (field_owned_by(k->schema, p->fields[i].type, p->fields[i].spec, p->name)) continue;
        if ((rc = crm_schema_add_field(k->schema, p->fields[i].type, p->fields[i].spec, p->name)))
            return rc;
    }
    for (int i = 0; i < p->n_indexes; i++)
        if ((rc = crm_schema_add_index(k->schema, p->indexes[i].type, p->indexes[i].spec)))
            return rc;
    for (int i = 0; i < p->n_roles; i++)
        if ((rc = apply_role(set, p, &p->roles[i]))) return rc;
    crm_time_format(crm_now(), at);
    if ((rc = exec_bound(conn, "INSERT INTO core_plugin(name, version, installed_at, updated_at) "
                               "VALUES (?1, ?2, ?3, ?3) ON CONFLICT(name) DO UPDATE SET "
                               "version = ?2, updated_at = ?3 WHERE version <> ?2",
                         p->name, p->version, at, NULL)))
        return rc;

    /* Nothing below can be undone; host.c checked each item when it was staged. */
    for (int i = 0; i < p->n_subs; i++) {
        staged_sub *s = &p->subs[i];
        if ((rc = crm_bus_subscribe(k->bus, s->topic, s->phase, s->order, s->name, s->fn,
                                    s->udata)))
            return rc;
    }
    for (int i = 0; i < p->n_routes && set->http; i++) {
        staged_route *r = &p->routes[i];
        if ((rc = crm_http_route(set->http, r->method, r->path, r->flags, r->fn, r->udata)))
            return rc;
    }
    for (int i = 0; i < p->n_scheds; i++) {
        staged_sched *s = &p->scheds[i];
        rc = s->kind == SCHED_CRON
                 ? crm_sched_cron(k->sched, s->name, s->cron, s->fn, s->udata)
             : s->kind == SCHED_OFFSET
                 ? crm_sched_offset(k->sched, s->name, s->type, s->field, s->offset, s->at_minute,
                                    s->fn, s->udata)
                 : crm_sched_yearly(k->sched, s->name, s->type, s->field, s->at_minute, s->fn,
                                    s->udata);
        if (rc) return rc;
    }
    return CRM_OK;
}

static void init_one(crm_plugins *set, crm_plugin *p)
{
    crm_semver inst, cur;
    int rc;

    if (each_requirement(p, check_dep, NULL)) return;
    if ((rc = read_installed(set, p))) {
        refuse(p, "cannot read the installed version: %s", crm_error_last()->message);
        return;
    }
    if (p->installed_version && crm_semver_parse(p->installed_version, &inst) &&
        crm_semver_parse(p->version, &cur) && crm_semver_cmp(&inst, &cur) > 0) {
        refuse(p, "%s: version %s is older than the installed %s: downgrades are refused "
               "(install %s or newer, or restore a backup made before the upgrade)",
               p->so_path, p->version, p->installed_version, p->installed_version);
        return;
    }

    p->registering = true;
    crm_error_clear();
    rc = p->desc->init(p, crm_host__api());
    p->registering = false;
    if (rc != CRM_OK) {
        const char *msg = crm_error_last()->message;
        refuse(p, "init failed: %s", msg && *msg ? msg : "(the plugin set no message)");
        crm_host__discard(p);
        return;
    }
    if (p->reg_error) {
        refuse(p, "init returned OK, but a registration failed: %s", p->reg_error);
        crm_host__discard(p);
        return;
    }
    if ((rc = apply(set, p))) {
        refuse(p, "%s", crm_error_last()->message);
        return;
    }
    p->initialised = true;
    p->state = CRM_PLUGIN_LOADED;
    crm_log(CRM_LOG_INFO, "plugin %s %s loaded from %s%s%s", p->name, p->version, p->so_path,
            p->installed_version && strcmp(p->installed_version, p->version) != 0 ? ", upgraded from "
                                                                                  : "",
            p->installed_version && strcmp(p->installed_version, p->version) != 0
                ? p->installed_version
                : "");
}

/* Hide the types of plugins not loaded now: named in plugins.conf, or installed before. */
static void hide_absent(crm_plugins *set)
{
    json_t *owners = crm_schema_owners(set->k->schema);
    size_t i;
    json_t *o;
    json_array_foreach(owners, i, o) {
        const char *owner = json_string_value(o);
        crm_plugin *p = find(set, owner);
        bool absent;
        if (p) {
            absent = strcmp(p->state, CRM_PLUGIN_LOADED) != 0;
        } else {
            crm_stmt *st;
            absent = false;
            if (crm_stmt_prepare(crm_store_conn(set->k->store), &st,
                                 "SELECT 1 FROM core_plugin WHERE name = ?") == CRM_OK) {
                crm_stmt_bind_text(st, 1, owner, -1);
                absent = crm_stmt_step(st) == 1;
                crm_stmt_done(st);
            }
        }
        if (absent) {
            int n = crm_schema_hide_owner(set->k->schema, owner);
            if (n) crm_log(CRM_LOG_INFO, "plugin %s is not loaded: its %d type(s) are hidden", owner, n);
        }
    }
    json_decref(owners);
}

int crm_plugins_load(crm_plugins **out, crm_kernel *k, const crm_conf *conf,
                     const crm_plugins_opts *opts)
{
    static const crm_plugins_opts defaults = CRM_PLUGINS_OPTS_INIT;
    crm_plugins *set = crm_calloc(1, sizeof *set);
    crm_lock *lock = NULL;
    char *plugin_dir = NULL;
    int rc = CRM_OK;
    bool any_git = false;

    *out = NULL;
    if (!opts) opts = &defaults;
    set->k = k;
    set->http = opts->http;
    set->data_dir = crm_strdup(opts->data_dir ? opts->data_dir : k->data_dir);
    plugin_dir = opts->plugin_dir ? crm_strdup(opts->plugin_dir) : default_plugin_dir();

    int n = conf ? conf->nplugins : 0;
    set->all = crm_calloc((size_t)n + 1, sizeof *set->all);
    set->order = crm_calloc((size_t)n + 1, sizeof *set->order);
    for (int i = 0; i < n; i++) {
        const crm_conf_plugin *c = &conf->plugins[i];
        crm_plugin *p = crm_calloc(1, sizeof *p);
        p->set = set;
        p->name = crm_strdup(c->name);
        p->source = c->source ? crm_strdup(c->source) : NULL;
        p->git = c->git ? crm_strdup(c->git) : NULL;
        p->ref = c->ref ? crm_strdup(c->ref) : NULL;
        p->settings = c->settings ? json_deep_copy(c->settings) : json_object();
        p->enabled = c->enabled;
        p->state = c->enabled ? "pending" : CRM_PLUGIN_DISABLED;
        any_git = any_git || (c->enabled && c->git);
        set->all[set->n++] = p;
    }
    /* A malformed lock stops the start (SECURITY P1); a missing one is empty. */
    if (any_git && (rc = crm_lock_load(set->data_dir, &lock))) goto fail;

    for (int i = 0; i < set->n; i++) {
        crm_plugin *p = set->all[i];
        if (!p->enabled) continue;
        locate(set, p, plugin_dir, lock);
        if (strcmp(p->state, CRM_PLUGIN_REFUSED) == 0) continue;
        open_and_check(p);
    }

    /* Order every plugin whose descriptor passed; refusals come with the init pass. */
    visit_state vs = {crm_calloc((size_t)set->n + 1, sizeof(crm_plugin *)), 0,
                      crm_calloc((size_t)set->n + 1, sizeof(int))};
    for (int i = 0; i < set->n; i++) {
        crm_plugin *p = set->all[i];
        if (p->desc && vs.mark[i] == 0) visit(set, p, &vs);
    }
    free(vs.stack);
    free(vs.mark);
    for (int i = 0; i < set->norder; i++) {
        crm_plugin *p = set->order[i];
        if (strcmp(p->state, CRM_PLUGIN_REFUSED) == 0) continue;
        init_one(set, p);
    }
    /* Keep only what loaded in the order (shutdown and the each_* walks use it). */
    int m = 0;
    for (int i = 0; i < set->norder; i++)
        if (strcmp(set->order[i]->state, CRM_PLUGIN_LOADED) == 0) set->order[m++] = set->order[i];
    set->norder = m;
    hide_absent(set);

    crm_lock_free(lock);
    free(plugin_dir);
    *out = set;
    return CRM_OK;
fail:
    crm_lock_free(lock);
    free(plugin_dir);
    set->norder = 0;
    crm_plugins_free(set);
    return rc;
}

void crm_plugins_free(crm_plugins *set)
{
    if (!set) return;
    for (int i = set->norder - 1; i >= 0; i--) {
        crm_plugin *p = set->order[i];
        if (p->initialised && p->desc->shutdown) p->desc->shutdown(p);
    }
    for (int i = 0; i < set->n; i++) plugin_free(set->all[i]);
    free(set->all);
    free(set->order);
    free(set->data_dir);
    free(set);
}

/* ---- Reading the set ---- */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *crm_plugins_json(crm_plugins *set)
{
    json_t *arr = json_array();
    for (int i = 0; set && i < set->n; i++) {
        crm_plugin *p = set->all[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(p->name));
        json_object_set_new(o, "version", str_or_null(p->version));
        json_object_set_new(o, "source", str_or_null(p->source ? p->source : p->git));
        json_object_set_new(o, "commit", str_or_null(p->commit));
        json_object_set_new(o, "state", json_string(p->state));
        json_object_set_new(o, "error", str_or_null(p->error));
        if (p->ref) json_object_set_new(o, "ref", json_string(p->ref));
        if (p->desc && p->desc->summary)
            json_object_set_new(o, "summary", json_string(p->desc->summary));
        json_array_append_new(arr, o);
    }
    return arr;
}

int crm_plugins_count(crm_plugins *set, int *loaded)
{
    if (loaded) *loaded = set ? set->norder : 0;
    return set ? set->n : 0;
}

const char *crm_plugins_state(crm_plugins *set, const char *name, const char **error)
{
    crm_plugin *p = set && name ? find(set, name) : NULL;
    if (!p) return NULL;
    if (error) *error = p->error ? p->error : "";
    return p->state;
}

int crm_plugins_each_lua_function(crm_plugins *set,
                                  int (*cb)(void *arg, const char *plugin, const char *name,
                                            crm_lua_fn fn, void *udata),
                                  void *arg)
{
    int rc;
    for (int i = 0; set && i < set->norder; i++) {
        crm_plugin *p = set->order[i];
        for (int j = 0; j < p->n_luas; j++)
            if ((rc = cb(arg, p->name, p->luas[j].name, p->luas[j].fn, p->luas[j].udata)))
                return rc;
    }
    return 0;
}

int crm_plugins_each_rule_dir(crm_plugins *set,
                              int (*cb)(void *arg, const char *plugin, const char *dir), void *arg)
{
    int rc;
    for (int i = 0; set && i < set->norder; i++) {
        crm_plugin *p = set->order[i];
        for (int j = 0; j < p->n_rule_dirs; j++)
            if ((rc = cb(arg, p->name, p->rule_dirs[j]))) return rc;
    }
    return 0;
}

int crm_plugins_each_demo(crm_plugins *set,
                          int (*cb)(void *arg, const char *plugin, crm_demo_fn fn, void *udata),
                          void *arg)
{
    int rc;
    for (int i = 0; set && i < set->norder; i++) {
        crm_plugin *p = set->order[i];
        for (int j = 0; j < p->n_demos; j++)
            if ((rc = cb(arg, p->name, p->demos[j].fn, p->demos[j].udata))) return rc;
    }
    return 0;
}

int crm_plugins_run_demo(crm_plugins *set, crm_kernel *k)
{
    crm_conn *conn = crm_store_conn(k->store);
    for (int i = 0; set && i < set->norder; i++) {
        crm_plugin *p = set->order[i];
        for (int j = 0; j < p->n_demos; j++) {
            char *via = crm_sprintf("plugin %s demo", p->name);
            crm_ctx ctx;
            int rc;
            crm_ctx_init(&ctx, k, crm_principal_system(), via);
            if ((rc = crm_tx_begin(conn))) {
                free(via);
                return rc;
            }
            crm_error_clear();
            rc = p->demos[j].fn(&ctx, p->demos[j].udata);
            if (rc == CRM_OK) rc = crm_tx_commit(conn);
            else crm_tx_rollback(conn);
            free(via);
            if (rc) {
                const char *msg = crm_error_last()->message;
                return crm_error_set(rc, NULL, "plugin %s: demo data failed: %s", p->name,
                                     msg && *msg ? msg : "(no message)");
            }
        }
    }
    return CRM_OK;
}

json_t *crm_plugins_routes(crm_plugins *set)
{
    json_t *arr = json_array();
    for (int i = 0; set && i < set->norder; i++) {
        crm_plugin *p = set->order[i];
        for (int j = 0; j < p->n_routes; j++)
            json_array_append_new(arr, json_sprintf("%s %s", p->routes[j].method,
                                                    p->routes[j].path));
    }
    return arr;
}
