/*
 * rules.c — the rule engine: reading rule files into rule sets, swapping them
 * in on reload, and running the rules the bus and the scheduler trigger.
 *
 * A rule set is immutable once published and reference-counted: a thread's
 * Lua state holds the set it compiled, and a reload only replaces the
 * engine's `current` pointer, so runs in flight finish on the set they
 * started with and no request waits for a reload.
 *
 * The bus has no unsubscribe, so the engine's handlers get a small "link"
 * (and each async consumer a "slot") as their udata, kept in process-wide
 * lists: closing the engine sets the pointer inside to NULL and the handlers
 * become no-ops. A later engine on the same bus takes the slots over (the
 * bus answers ECONFLICT for a consumer name it already has).
 *
 * Loop protection: the bus bounds cascades at depth 8 (a rule's context
 * carries the depth of the event that triggered it), and a rule never runs
 * again while it is already running on the same thread — a rule's own
 * writes do not re-trigger it within the chain they started.
 */
#include "rules_int.h"

#include "perm.h"
#include "record.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct rules_link {
    _Atomic(crm_rules *) r;
    struct rules_link *next;
};

struct async_slot {
    crm_bus *bus;
    char *name;
    _Atomic(crm_rules *) r;
    struct async_slot *next;
};

/* Process-wide: reachable until exit (handlers of closed engines still point at them). */
static pthread_mutex_t globals_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rules_link *links;
static struct async_slot *slots;

struct rule_dir {
    char *dir, *owner;
    struct rule_dir *next;
};

struct crm_rules {
    crm_kernel *k;
    crm_rules_opts opts;
    pthread_mutex_t mu;      /* dirs, fns, disabled, counters, states, sched_names */
    pthread_mutex_t load_mu; /* one load at a time */
    pthread_rwlock_t set_lock;
    ruleset *current;
    atomic_uint_fast64_t gen;
    atomic_int nphase[3];
    struct rule_dir *dirs;
    rule_fn *fns;
    char **disabled;
    int ndisabled;
    rule_counters *counters;
    pthread_key_t key;
    rstate *states;
    struct rules_link *link;
    char **sched_names;
    int nsched;
};

crm_kernel *rules_kernel(crm_rules *r)
{
    return r->k;
}

rule_fn *rules_functions(crm_rules *r)
{
    return r->fns;
}

uint64_t crm_rules_generation(crm_rules *r)
{
    return atomic_load(&r->gen);
}

/* ---- Rules and sets ---- */

void rule_free(rule *ru)
{
    if (!ru) return;
    free(ru->name);
    free(ru->topic);
    for (int i = 0; i < ru->nchanged; i++)
        free(ru->changed[i]);
    free(ru->changed);
    json_decref(ru->from);
    json_decref(ru->to);
    free(ru->cron);
    free(ru->sched_type);
    free(ru->sched_field);
    free(ru->error);
    free(ru->consumer);
    free(ru->sched_name);
    free(ru->via);
    free(ru);
}

void rules_files_free(rule_file *files, int n)
{
    for (int i = 0; i < n; i++) {
        free(files[i].path);
        free(files[i].owner);
        free(files[i].source);
    }
    free(files);
}

void ruleset_release(ruleset *rs)
{
    if (!rs || atomic_fetch_sub(&rs->refs, 1) != 1) return;
    for (int i = 0; i < rs->nrules; i++)
        rule_free(rs->rules[i]);
    free(rs->rules);
    rules_files_free(rs->files, rs->nfiles);
    json_decref(rs->errors);
    free(rs);
}

static ruleset *acquire_current(crm_rules *r)
{
    pthread_rwlock_rdlock(&r->set_lock);
    ruleset *rs = r->current;
    if (rs) atomic_fetch_add(&rs->refs, 1);
    pthread_rwlock_unlock(&r->set_lock);
    return rs;
}

/* ---- Counters and logging ---- */

static rule_counters *counters_for(crm_rules *r, const char *name)
{
    pthread_mutex_lock(&r->mu);
    rule_counters *c = r->counters;
    while (c && strcmp(c->name, name) != 0)
        c = c->next;
    if (!c) {
        c = crm_calloc(1, sizeof *c);
        c->name = crm_strdup(name);
        c->next = r->counters;
        r->counters = c;
    }
    pthread_mutex_unlock(&r->mu);
    return c;
}

void rules_log(crm_rules *r, const rule *ru, int level, const char *text)
{
    rule_counters *c = ru->ctr;
    if (!c || !r) {
        crm_log(level, "rule \"%s\": %s", ru->name, text);
        return;
    }
    int64_t now = crm_mono_us() / 1000000;
    int suppressed = 0;
    bool emit;
    pthread_mutex_lock(&r->mu);
    if (now - c->log_window_start >= RULE_LOG_WINDOW) {
        suppressed = c->log_suppressed;
        c->log_window_start = now;
        c->log_lines = 0;
        c->log_suppressed = 0;
    }
    emit = c->log_lines < RULE_LOG_BURST;
    if (emit)
        c->log_lines++;
    else
        c->log_suppressed++;
    pthread_mutex_unlock(&r->mu);
    if (suppressed)
        crm_log(CRM_LOG_WARN, "rule \"%s\": %d log lines suppressed (at most %d per %d s)",
                ru->name, suppressed, RULE_LOG_BURST, RULE_LOG_WINDOW);
    if (emit) crm_log(level, "rule \"%s\": %s", ru->name, text);
}

/* ---- Threads' states ---- */

static void state_destructor(void *p)
{
    rstate *S = p;
    crm_rules *r = S->r;
    bool found = false;
    pthread_mutex_lock(&r->mu);
    for (rstate **pp = &r->states; *pp; pp = &(*pp)->next) {
        if (*pp == S) {
            *pp = S->next;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (found) rules_state_free(S);
}

static rstate *state_ready(crm_rules *r)
{
    rstate *S = pthread_getspecific(r->key);
    if (!S) {
        S = rules_state_new(r, r->opts.memory_cap, r->opts.hook_interval,
                            (int64_t)r->opts.time_budget_ms * 1000);
        if (!S) return NULL;
        pthread_mutex_lock(&r->mu);
        S->next = r->states;
        r->states = S;
        pthread_mutex_unlock(&r->mu);
        pthread_setspecific(r->key, S);
    }
    /* a new set is picked up between top-level runs only: runs in flight keep theirs */
    if (S->depth == 0 && (!S->rs || S->rs->gen != atomic_load(&r->gen))) {
        ruleset *cur = acquire_current(r);
        if (cur) {
            rules_state_compile(S, cur);
            ruleset_release(cur);
        }
    }
    return S;
}

/* ---- Running one rule ---- */

static bool on_stack(rstate *S, const rule *ru)
{
    for (rule_run *x = S->run; x; x = x->prev)
        if (x->rule == ru || (x->rule->name && strcmp(x->rule->name, ru->name) == 0)) return true;
    return false;
}

static int execute(crm_rules *r, rstate *S, int index, crm_ctx *outer, crm_event *ev,
                   const crm_firing *f, json_t *changed, int phase)
{
    const rule *ru = S->rs->rules[index];
    rule_run run;
    memset(&run, 0, sizeof run);
    run.rule = ru;
    run.index = index;
    run.phase = phase;
    run.ev = ev;
    run.firing = f;
    run.changed = changed;
    run.user = ev ? ev->user_id : 0;
    if (!run.user && S->run) run.user = S->run->user; /* a rule's writes act for the same user */
    if (run.user)
        snprintf(run.via, sizeof run.via, "%s on behalf of user %lld", ru->via,
                 (long long)run.user);
    else
        snprintf(run.via, sizeof run.via, "%s on behalf of system", ru->via);
    crm_ctx_init(&run.ctx, r->k, crm_principal_system(), run.via);
    if (outer) {
        run.ctx.depth = outer->depth;
        memcpy(run.ctx.chain, outer->chain, sizeof run.ctx.chain);
    }
    int64_t t0 = crm_mono_us();
    int rc = rules_state_run(S, &run);
    int64_t dt = crm_mono_us() - t0;
    rule_counters *c = ru->ctr;
    if (c && (run.ran || rc)) {
        atomic_fetch_add(&c->runs, 1);
        atomic_fetch_add(&c->total_us, (uint_fast64_t)(dt > 0 ? dt : 0));
    }
    if (rc) {
        const crm_error *e = crm_error_last();
        bool rejected = e->name && strcmp(e->name, "rule_rejected") == 0;
        if (c && !rejected) {
            atomic_fetch_add(&c->errors, 1);
            pthread_mutex_lock(&r->mu);
            free(c->last_error);
            c->last_error = crm_strdup(e->message);
            pthread_mutex_unlock(&r->mu);
        }
        if (!rejected) {
            /* the message is the error the caller reports: log it without changing it */
            char *msg = crm_strdup(e->message);
            rules_log(r, ru, CRM_LOG_WARN, msg);
            free(msg);
        }
    }
    return rc;
}

/* The changed fields an event offers rules: updates as changed (before: really
 * different from old), creates as every non-null field, others none. */
static json_t *event_changed(crm_event *ev, int phase)
{
    json_t *out = json_array();
    if (ev->changed) {
        size_t i;
        json_t *name;
        json_array_foreach(ev->changed, i, name)
        {
            const char *n = json_string_value(name);
            if (!n) continue;
            if (phase == CRM_PHASE_BEFORE && ev->old && ev->record &&
                json_equal(json_object_get(ev->record, n), json_object_get(ev->old, n)))
                continue;
            json_array_append(out, name);
        }
    } else if (ev->type && ev->record && !ev->old) {
        const char *key;
        json_t *v;
        json_object_foreach(ev->record, key, v)
        {
            if (!json_is_null(v) && !crm_is_system_field(key))
                json_array_append_new(out, json_string(key));
        }
    }
    return out;
}

static bool value_eq(json_t *have, json_t *want)
{
    if (!have || !want) return false;
    if (json_is_number(want)) {
        double w = json_number_value(want);
        if (json_is_number(have)) return json_number_value(have) == w;
        if (json_is_string(have)) {
            char *end;
            double h = strtod(json_string_value(have), &end);
            return end != json_string_value(have) && !*end && h == w;
        }
        return false;
    }
    if (json_is_string(want))
        return json_is_string(have) && strcmp(json_string_value(have), json_string_value(want)) == 0;
    return json_equal(have, want);
}

static bool conditions_pass(const rule *ru, crm_event *ev, json_t *changed)
{
    if (ru->nchanged) {
        bool any = false;
        for (int i = 0; i < ru->nchanged && !any; i++) {
            size_t j;
            json_t *name;
            json_array_foreach(changed, j, name)
            {
                if (strcmp(json_string_value(name), ru->changed[i]) == 0) {
                    any = true;
                    break;
                }
            }
        }
        if (!any) return false;
    }
    if (ru->from && !value_eq(ev->old ? json_object_get(ev->old, ru->changed[0]) : NULL, ru->from))
        return false;
    if (ru->to &&
        !value_eq(ev->record ? json_object_get(ev->record, ru->changed[0]) : NULL, ru->to))
        return false;
    return true;
}

static bool runnable(const rule *ru)
{
    return !ru->error && !atomic_load(&ru->disabled);
}

static int on_event(crm_ctx *ctx, crm_event *ev, struct rules_link *link, int phase)
{
    crm_rules *r = atomic_load(&link->r);
    if (!r || atomic_load(&r->nphase[phase]) == 0) return CRM_OK;
    rstate *S = state_ready(r);
    if (!S) return crm_error_last()->code ? crm_error_last()->code : CRM_EINTERNAL;
    ruleset *rs = S->rs;
    if (!rs) return CRM_OK;
    json_t *changed = NULL;
    int rc = CRM_OK;
    for (int i = 0; i < rs->nrules && rc == CRM_OK; i++) {
        const rule *ru = rs->rules[i];
        if (ru->trig != TRIG_EVENT || ru->phase != phase || !runnable(ru)) continue;
        if (!rules_topic_match(ru->topic, ev->topic) || on_stack(S, ru)) continue;
        if (!changed) changed = event_changed(ev, phase);
        if (!conditions_pass(ru, ev, changed)) continue;
        rc = execute(r, S, i, ctx, ev, NULL, changed, phase);
    }
    json_decref(changed);
    return rc;
}

static int on_before(crm_ctx *ctx, crm_event *ev, void *udata)
{
    return on_event(ctx, ev, udata, CRM_PHASE_BEFORE);
}

static int on_after(crm_ctx *ctx, crm_event *ev, void *udata)
{
    return on_event(ctx, ev, udata, CRM_PHASE_AFTER);
}

static int on_async(crm_ctx *ctx, crm_event *ev, void *udata)
{
    struct async_slot *slot = udata;
    crm_rules *r = atomic_load(&slot->r);
    if (!r) return CRM_OK;
    rstate *S = state_ready(r);
    if (!S) return crm_error_last()->code ? crm_error_last()->code : CRM_EINTERNAL;
    ruleset *rs = S->rs;
    int rc = CRM_OK;
    for (int i = 0; rs && i < rs->nrules; i++) {
        const rule *ru = rs->rules[i];
        if (!ru->consumer || strcmp(ru->consumer, slot->name) != 0) continue;
        if (!runnable(ru) || !rules_topic_match(ru->topic, ev->topic) || on_stack(S, ru)) break;
        json_t *changed = event_changed(ev, CRM_PHASE_ASYNC);
        if (conditions_pass(ru, ev, changed))
            rc = execute(r, S, i, ctx, ev, NULL, changed, CRM_PHASE_ASYNC);
        json_decref(changed);
        break;
    }
    return rc;
}

static int on_schedule(crm_ctx *ctx, const crm_firing *f, void *udata)
{
    struct rules_link *link = udata;
    crm_rules *r = atomic_load(&link->r);
    if (!r) return CRM_OK;
    rstate *S = state_ready(r);
    if (!S) return crm_error_last()->code ? crm_error_last()->code : CRM_EINTERNAL;
    ruleset *rs = S->rs;
    for (int i = 0; rs && i < rs->nrules; i++) {
        const rule *ru = rs->rules[i];
        if (!ru->sched_name || strcmp(ru->sched_name, f->name) != 0) continue;
        if (!runnable(ru)) return CRM_OK;
        json_t *changed = json_array();
        int rc = execute(r, S, i, ctx, NULL, f, changed, CRM_PHASE_AFTER);
        json_decref(changed);
        return rc;
    }
    return CRM_OK;
}

/* ---- Open / close ---- */

int crm_rules_open(crm_rules **out, crm_kernel *k, const crm_rules_opts *opts)
{
    static const crm_rules_opts defaults = CRM_RULES_OPTS_INIT;
    crm_rules_opts o = opts ? *opts : defaults;
    *out = NULL;
    if (o.time_budget_ms <= 0) o.time_budget_ms = defaults.time_budget_ms;
    if (o.memory_cap == 0) o.memory_cap = defaults.memory_cap;
    if (o.hook_interval <= 0) o.hook_interval = defaults.hook_interval;
    if (o.time_budget_ms > 600000 || o.memory_cap < ((size_t)1 << 20) || o.hook_interval > 1000000)
        return crm_error_set(CRM_EINVALID, NULL,
                             "rules: time budget up to 600000 ms, memory cap at least 1 MiB, hook "
                             "interval up to 1000000 instructions");
    crm_rules *r = crm_calloc(1, sizeof *r);
    r->k = k;
    r->opts = o;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->load_mu, NULL);
    pthread_rwlock_init(&r->set_lock, NULL);
    if (pthread_key_create(&r->key, state_destructor) != 0) {
        free(r);
        return crm_error_set(CRM_EINTERNAL, NULL, "rules: no thread-local key left");
    }
    r->link = crm_calloc(1, sizeof *r->link);
    atomic_store(&r->link->r, r);
    pthread_mutex_lock(&globals_mu);
    r->link->next = links;
    links = r->link;
    pthread_mutex_unlock(&globals_mu);
    int rc;
    if (k->bus &&
        ((rc = crm_bus_subscribe(k->bus, "*", CRM_PHASE_BEFORE, CRM_RULES_BUS_ORDER,
                                 "rules (before)", on_before, r->link)) < 0 ||
         (rc = crm_bus_subscribe(k->bus, "*", CRM_PHASE_AFTER, CRM_RULES_BUS_ORDER,
                                 "rules (after)", on_after, r->link)) < 0)) {
        crm_rules_close(r);
        return rc;
    }
    *out = r;
    return CRM_OK;
}

static void remove_schedules(crm_rules *r)
{
    for (int i = 0; i < r->nsched; i++) {
        if (r->k->sched) crm_sched_remove(r->k->sched, r->sched_names[i]);
        free(r->sched_names[i]);
    }
    free(r->sched_names);
    r->sched_names = NULL;
    r->nsched = 0;
}

void crm_rules_close(crm_rules *r)
{
    if (!r) return;
    atomic_store(&r->link->r, NULL);
    pthread_mutex_lock(&globals_mu);
    for (struct async_slot *s = slots; s; s = s->next)
        if (atomic_load(&s->r) == r) atomic_store(&s->r, NULL);
    pthread_mutex_unlock(&globals_mu);
    remove_schedules(r);
    pthread_mutex_lock(&r->mu);
    rstate *S = r->states;
    r->states = NULL;
    pthread_mutex_unlock(&r->mu);
    pthread_setspecific(r->key, NULL);
    pthread_key_delete(r->key);
    while (S) {
        rstate *next = S->next;
        rules_state_free(S);
        S = next;
    }
    ruleset_release(r->current);
    while (r->dirs) {
        struct rule_dir *d = r->dirs;
        r->dirs = d->next;
        free(d->dir);
        free(d->owner);
        free(d);
    }
    while (r->fns) {
        rule_fn *f = r->fns;
        r->fns = f->next;
        free(f->ns);
        free(f->name);
        free(f);
    }
    for (int i = 0; i < r->ndisabled; i++)
        free(r->disabled[i]);
    free(r->disabled);
    while (r->counters) {
        rule_counters *c = r->counters;
        r->counters = c->next;
        free(c->name);
        free(c->last_error);
        free(c);
    }
    pthread_rwlock_destroy(&r->set_lock);
    pthread_mutex_destroy(&r->load_mu);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- Configuration ---- */

int crm_rules_add_dir(crm_rules *r, const char *dir, const char *owner)
{
    if (!dir || !*dir || !owner || !*owner)
        return crm_error_set(CRM_EINVALID, NULL, "rules: a directory and an owner are needed");
    struct rule_dir *d = crm_calloc(1, sizeof *d);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    d->dir = crm_strndup(dir, n);
    d->owner = crm_strdup(owner);
    pthread_mutex_lock(&r->mu);
    struct rule_dir **pp = &r->dirs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = d;
    pthread_mutex_unlock(&r->mu);
    return CRM_OK;
}

static const char *const reserved_ns[] = {"get",  "find", "create",   "update", "delete",
                                          "reject", "emit", "log",    "now",    "date",
                                          "datetime", "time", "mail", "null",   "core", NULL};

int crm_rules_register_function(crm_rules *r, const char *ns, const char *name, crm_lua_fn fn,
                                void *udata)
{
    if (!ns || !crm_ident_valid(ns, CRM_NAME_MAX) || !name || !crm_ident_valid(name, CRM_NAME_MAX))
        return crm_error_set(CRM_EINVALID, NULL,
                             "rules: function crm.%s.%s: names are [a-z][a-z0-9_]*", ns ? ns : "",
                             name ? name : "");
    for (int i = 0; reserved_ns[i]; i++)
        if (strcmp(ns, reserved_ns[i]) == 0)
            return crm_error_set(CRM_EINVALID, NULL,
                                 "rules: crm.%s is part of the rule API; choose another namespace",
                                 ns);
    if (!fn) return crm_error_set(CRM_EINVALID, NULL, "rules: crm.%s.%s: no function", ns, name);
    pthread_mutex_lock(&r->mu);
    rule_fn **pp = &r->fns;
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->ns, ns) == 0 && strcmp((*pp)->name, name) == 0) {
            pthread_mutex_unlock(&r->mu);
            return crm_error_set(CRM_ECONFLICT, NULL, "rules: crm.%s.%s is registered already",
                                 ns, name);
        }
    }
    rule_fn *f = crm_calloc(1, sizeof *f);
    f->ns = crm_strdup(ns);
    f->name = crm_strdup(name);
    f->fn = fn;
    f->udata = udata;
    *pp = f;
    pthread_mutex_unlock(&r->mu);
    return CRM_OK;
}

static bool name_disabled(crm_rules *r, const char *name)
{
    for (int i = 0; i < r->ndisabled; i++)
        if (strcmp(r->disabled[i], name) == 0) return true;
    return false;
}

int crm_rules_disable(crm_rules *r, const char *rule_name)
{
    if (!rule_name || !*rule_name)
        return crm_error_set(CRM_EINVALID, NULL, "rules: disable needs a rule name");
    pthread_mutex_lock(&r->mu);
    if (!name_disabled(r, rule_name)) {
        r->disabled = crm_realloc(r->disabled, (size_t)(r->ndisabled + 1) * sizeof *r->disabled);
        r->disabled[r->ndisabled++] = crm_strdup(rule_name);
    }
    pthread_mutex_unlock(&r->mu);
    ruleset *rs = acquire_current(r);
    for (int i = 0; rs && i < rs->nrules; i++)
        if (rs->rules[i]->name && strcmp(rs->rules[i]->name, rule_name) == 0)
            atomic_store(&rs->rules[i]->disabled, true);
    ruleset_release(rs);
    return CRM_OK;
}

/* ---- Loading ---- */

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_error(json_t *errors, const char *file, int line, const char *rule_name,
                      const char *code, const char *message)
{
    json_array_append_new(errors, json_pack("{s:s,s:i,s:o,s:s,s:s}", "file", file ? file : "",
                                            "line", line, "rule",
                                            rule_name ? json_string(rule_name) : json_null(),
                                            "code", code, "message", message));
}

void rules_read_dir(const char *dir, const char *owner, rule_file **files, int *n, json_t *errors)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno != ENOENT)
            add_error(errors, dir, 0, NULL, "rule_invalid", strerror(errno));
        return;
    }
    char **names = NULL;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0) continue;
        names = crm_realloc(names, (size_t)(count + 1) * sizeof *names);
        names[count++] = crm_strdup(e->d_name);
    }
    closedir(d);
    if (count > 1) qsort(names, (size_t)count, sizeof *names, cmp_name);
    for (int i = 0; i < count; i++) {
        char *path = crm_sprintf("%s/%s", dir, names[i]);
        struct stat sb;
        FILE *fp = NULL;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) goto next;
        if (sb.st_size > RULE_FILE_MAX) {
            char *msg = crm_sprintf("%s: %lld bytes is over the limit of %d bytes for a rule file",
                                    path, (long long)sb.st_size, RULE_FILE_MAX);
            add_error(errors, path, 0, NULL, "rule_syntax_error", msg);
            free(msg);
            goto next;
        }
        fp = fopen(path, "rb");
        if (!fp) {
            char *msg = crm_sprintf("%s: %s", path, strerror(errno));
            add_error(errors, path, 0, NULL, "rule_invalid", msg);
            free(msg);
            goto next;
        }
        char *src = crm_malloc((size_t)sb.st_size + 1);
        size_t got = fread(src, 1, (size_t)sb.st_size, fp);
        src[got] = '\0';
        fclose(fp);
        *files = crm_realloc(*files, (size_t)(*n + 1) * sizeof **files);
        (*files)[*n] = (rule_file){crm_strdup(path), crm_strdup(owner), src, got};
        (*n)++;
    next:
        free(path);
        free(names[i]);
    }
    free(names);
}

typedef struct parse_acc {
    rule **rules;
    int n, cap;
    json_t *disabled;
} parse_acc;

static void acc_rule(void *arg, rule *ru)
{
    parse_acc *a = arg;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->rules = crm_realloc(a->rules, (size_t)a->cap * sizeof *a->rules);
    }
    a->rules[a->n++] = ru;
}

static void acc_disable(void *arg, const char *name, int line)
{
    parse_acc *a = arg;
    (void)line;
    if (a->disabled) json_array_append_new(a->disabled, json_string(name));
}

static int cmp_rule(const void *pa, const void *pb)
{
    const rule *a = *(rule *const *)pa, *b = *(rule *const *)pb;
    if (a->order != b->order) return a->order < b->order ? -1 : 1;
    if (a->file != b->file) return a->file < b->file ? -1 : 1;
    return a->position < b->position ? -1 : a->position > b->position;
}

ruleset *rules_parse_files(crm_rules *r, rule_file *files, int nfiles, json_t *errors,
                           json_t *disabled, const crm_rules_opts *opts)
{
    ruleset *rs = crm_calloc(1, sizeof *rs);
    atomic_init(&rs->refs, 1);
    rs->files = files;
    rs->nfiles = nfiles;
    rs->errors = json_incref(errors);
    parse_acc acc = {.disabled = disabled};
    rstate *S = rules_state_new(r, opts->memory_cap, opts->hook_interval,
                                (int64_t)opts->time_budget_ms * 1000);
    if (!S) {
        add_error(errors, "", 0, NULL, "rule_invalid", crm_error_last()->message);
        return rs;
    }
    if (rules_state_begin(S) < 0) add_error(errors, "", 0, NULL, "rule_invalid",
                                            crm_error_last()->message);
    for (int f = 0; f < nfiles; f++) {
        rule_loader ld = {.file = f,
                          .path = files[f].path,
                          .owner = files[f].owner,
                          .on_rule = acc_rule,
                          .on_disable = acc_disable,
                          .arg = &acc};
        int before = acc.n, line = 0;
        if (rules_state_load_file(S, &ld, files[f].source, files[f].len, &line) < 0) {
            const crm_error *e = crm_error_last();
            add_error(errors, files[f].path, line, NULL, e->name ? e->name : "rule_invalid",
                      e->message);
            /* a file that failed contributes nothing: its other rules may depend on it */
            for (int i = before; i < acc.n; i++)
                rule_free(acc.rules[i]);
            acc.n = before;
        }
    }
    rules_state_free(S);
    for (int i = 0; i < acc.n; i++) {
        rule *ru = acc.rules[i];
        const char *path = files[ru->file].path;
        if (!ru->error && ru->name) {
            for (int j = 0; j < i; j++) {
                const rule *o = acc.rules[j]; /* NULL: an unnamed rule, already freed */
                if (o && o->name && strcmp(o->name, ru->name) == 0) {
                    ru->error = crm_sprintf("duplicate rule name (first declared at %s:%d)",
                                            files[o->file].path, o->line);
                    break;
                }
            }
        }
        if (ru->error) {
            char *msg = crm_sprintf("%s:%d: rule%s%s%s: %s", path, ru->line, ru->name ? " \"" : "",
                                    ru->name ? ru->name : "", ru->name ? "\"" : "", ru->error);
            add_error(errors, path, ru->line, ru->name, "rule_invalid", msg);
            free(msg);
        }
        if (!ru->name) { /* unnamed: only reported */
            rule_free(ru);
            acc.rules[i] = NULL;
            continue;
        }
        ru->via = crm_sprintf("rule %s:%s", path, ru->name);
        atomic_init(&ru->disabled, !ru->declared_enabled);
        if (r) ru->ctr = counters_for(r, ru->name);
    }
    int n = 0;
    for (int i = 0; i < acc.n; i++)
        if (acc.rules[i]) acc.rules[n++] = acc.rules[i];
    if (n > 1) qsort(acc.rules, (size_t)n, sizeof *acc.rules, cmp_rule);
    rs->rules = acc.rules;
    rs->nrules = n;
    return rs;
}

bool rules_sched_check(crm_kernel *k, const rule *ru, char *err, size_t len)
{
    if (ru->trig != TRIG_OFFSET && ru->trig != TRIG_YEARLY) return true;
    const crm_type *t = crm_schema_type(k->schema, ru->sched_type);
    if (!t) {
        snprintf(err, len, "unknown type \"%s\"", ru->sched_type);
        return false;
    }
    const crm_field *f = crm_type_field(t, ru->sched_field);
    if (!f) {
        snprintf(err, len, "type %s has no field \"%s\"", ru->sched_type, ru->sched_field);
        return false;
    }
    if (ru->trig == TRIG_YEARLY && f->kind != CRM_FIELD_DATE) {
        snprintf(err, len, "yearly needs a date field; %s.%s is %s", ru->sched_type,
                 ru->sched_field, crm_field_kind_name(f->kind));
        return false;
    }
    if (f->kind != CRM_FIELD_DATE && f->kind != CRM_FIELD_DATETIME) {
        snprintf(err, len, "%s.%s is %s, not a date or datetime", ru->sched_type,
                 ru->sched_field, crm_field_kind_name(f->kind));
        return false;
    }
    return true;
}

/* A bus consumer / schedule name: readable when it fits, a hash when it does not. */
static char *stable_name(const char *prefix, const char *a, const char *b, size_t max)
{
    char *s = b ? crm_sprintf("%s%s@%s", prefix, a, b) : crm_sprintf("%s%s", prefix, a);
    bool ascii = true;
    for (const char *p = s; *p; p++)
        if (*p < ' ' || *p > '~') ascii = false;
    if (ascii && strlen(s) <= max) return s;
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = s; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    free(s);
    return crm_sprintf("%s%016llx", prefix, (unsigned long long)h);
}

static int ensure_async(crm_rules *r, rule *ru)
{
    crm_bus *bus = r->k->bus;
    if (!bus) return CRM_OK;
    struct async_slot *slot = crm_calloc(1, sizeof *slot);
    slot->bus = bus;
    slot->name = crm_strdup(ru->consumer);
    atomic_store(&slot->r, r);
    int rc = crm_bus_subscribe(bus, ru->topic, CRM_PHASE_ASYNC, 0, ru->consumer, on_async, slot);
    pthread_mutex_lock(&globals_mu);
    if (rc == CRM_OK) {
        /* older slots of this name and bus address belong to a closed bus */
        for (struct async_slot *s = slots; s; s = s->next)
            if (s->bus == bus && strcmp(s->name, slot->name) == 0) atomic_store(&s->r, NULL);
        slot->next = slots;
        slots = slot;
    } else if (rc == CRM_ECONFLICT) {
        for (struct async_slot *s = slots; s; s = s->next) {
            if (s->bus == bus && strcmp(s->name, slot->name) == 0) {
                atomic_store(&s->r, r);
                rc = CRM_OK;
                break;
            }
        }
    }
    bool added = false;
    for (struct async_slot *s = slots; s && !added; s = s->next)
        added = s == slot;
    pthread_mutex_unlock(&globals_mu);
    if (!added) {
        free(slot->name);
        free(slot);
    }
    return rc;
}

int crm_rules_load(crm_rules *r, json_t **report)
{
    rule_file *files = NULL;
    int nfiles = 0;
    json_t *errors = json_array(), *disabled = json_array();
    if (report) *report = NULL;
    pthread_mutex_lock(&r->load_mu);
    pthread_mutex_lock(&r->mu);
    int ndirs = 0;
    for (struct rule_dir *d = r->dirs; d; d = d->next)
        ndirs++;
    char **dirs = crm_calloc((size_t)ndirs + 1, sizeof *dirs);
    char **owners = crm_calloc((size_t)ndirs + 1, sizeof *owners);
    int i = 0;
    for (struct rule_dir *d = r->dirs; d; d = d->next, i++) {
        dirs[i] = crm_strdup(d->dir);
        owners[i] = crm_strdup(d->owner);
    }
    pthread_mutex_unlock(&r->mu);
    for (i = 0; i < ndirs; i++) {
        rules_read_dir(dirs[i], owners[i], &files, &nfiles, errors);
        free(dirs[i]);
        free(owners[i]);
    }
    free(dirs);
    free(owners);

    ruleset *rs = rules_parse_files(r, files, nfiles, errors, disabled, &r->opts);
    int nphase[3] = {0, 0, 0};
    pthread_mutex_lock(&r->mu);
    for (i = 0; i < rs->nrules; i++) {
        rule *ru = rs->rules[i];
        bool off = name_disabled(r, ru->name);
        size_t j;
        json_t *name;
        json_array_foreach(disabled, j, name)
        {
            if (strcmp(json_string_value(name), ru->name) == 0) off = true;
        }
        if (off) atomic_store(&ru->disabled, true);
    }
    pthread_mutex_unlock(&r->mu);
    for (i = 0; i < rs->nrules; i++) {
        rule *ru = rs->rules[i];
        char err[300];
        if (!ru->error && !rules_sched_check(r->k, ru, err, sizeof err)) {
            ru->error = crm_strdup(err);
            char *msg = crm_sprintf("%s:%d: rule \"%s\": %s", rs->files[ru->file].path, ru->line,
                                    ru->name, err);
            add_error(errors, rs->files[ru->file].path, ru->line, ru->name, "rule_invalid", msg);
            free(msg);
        }
        if (ru->error) continue;
        if (ru->trig == TRIG_EVENT && ru->phase == CRM_PHASE_ASYNC) {
            ru->consumer = stable_name("rule:", ru->name, ru->topic, 128);
            if (ensure_async(r, ru) < 0) {
                ru->error = crm_sprintf("cannot subscribe: %s", crm_error_last()->message);
                add_error(errors, rs->files[ru->file].path, ru->line, ru->name, "rule_invalid",
                          ru->error);
                continue;
            }
        } else if (ru->trig != TRIG_EVENT) {
            ru->sched_name = stable_name("rule:", ru->name, NULL, 200);
        }
        if (ru->trig == TRIG_EVENT) nphase[ru->phase]++;
    }

    /* publish, then move the schedules over (a firing between finds its rule or nothing) */
    pthread_rwlock_wrlock(&r->set_lock);
    ruleset *old = r->current;
    rs->gen = atomic_load(&r->gen) + 1;
    r->current = rs;
    for (int p = 0; p < 3; p++)
        atomic_store(&r->nphase[p], nphase[p]);
    atomic_store(&r->gen, rs->gen);
    pthread_rwlock_unlock(&r->set_lock);
    ruleset_release(old);

    pthread_mutex_lock(&r->mu);
    remove_schedules(r);
    for (i = 0; i < rs->nrules; i++) {
        rule *ru = rs->rules[i];
        if (!ru->sched_name || ru->error || !r->k->sched) continue;
        int rc;
        int at = ru->at_minute >= 0 ? ru->at_minute : 0;
        if (ru->trig == TRIG_CRON)
            rc = crm_sched_cron(r->k->sched, ru->sched_name, ru->cron, on_schedule, r->link);
        else if (ru->trig == TRIG_OFFSET)
            rc = crm_sched_offset(r->k->sched, ru->sched_name, ru->sched_type, ru->sched_field,
                                  ru->offset, at, on_schedule, r->link);
        else
            rc = crm_sched_yearly(r->k->sched, ru->sched_name, ru->sched_type, ru->sched_field, at,
                                  on_schedule, r->link);
        if (rc < 0) {
            crm_log(CRM_LOG_ERROR, "rules: %s:%d: rule \"%s\": cannot schedule: %s",
                    rs->files[ru->file].path, ru->line, ru->name, crm_error_last()->message);
            continue;
        }
        r->sched_names = crm_realloc(r->sched_names, (size_t)(r->nsched + 1) * sizeof(char *));
        r->sched_names[r->nsched++] = crm_strdup(ru->sched_name);
    }
    pthread_mutex_unlock(&r->mu);

    size_t nerr = json_array_size(errors);
    for (size_t e = 0; e < nerr; e++)
        crm_log(CRM_LOG_WARN, "rules: %s",
                json_string_value(json_object_get(json_array_get(errors, e), "message")));
    crm_log(CRM_LOG_INFO, "rules: loaded %d rules from %d files (generation %llu, %zu problems)",
            rs->nrules, rs->nfiles, (unsigned long long)rs->gen, nerr);
    if (report)
        *report = json_pack("{s:I,s:i,s:i,s:O}", "generation", (json_int_t)rs->gen, "rules",
                            rs->nrules, "files", rs->nfiles, "errors", errors);
    json_decref(errors);
    json_decref(disabled);
    pthread_mutex_unlock(&r->load_mu);
    return CRM_OK;
}

/* ---- Status ---- */

static json_t *trigger_json(const rule *ru)
{
    char at[16] = "";
    if (ru->at_minute >= 0) snprintf(at, sizeof at, " at %02d:%02d", ru->at_minute / 60,
                                     ru->at_minute % 60);
    switch (ru->trig) {
    case TRIG_EVENT:
        return ru->topic ? json_sprintf("on %s", ru->topic) : json_string("?");
    case TRIG_CRON:
        return json_sprintf("cron %s", ru->cron ? ru->cron : "?");
    case TRIG_OFFSET: {
        int64_t s = ru->offset < 0 ? -ru->offset : ru->offset;
        char d[32];
        if (s % 86400 == 0)
            snprintf(d, sizeof d, "%lldd", (long long)(s / 86400));
        else if (s % 3600 == 0)
            snprintf(d, sizeof d, "%lldh", (long long)(s / 3600));
        else if (s % 60 == 0)
            snprintf(d, sizeof d, "%lldm", (long long)(s / 60));
        else
            snprintf(d, sizeof d, "%llds", (long long)s);
        return json_sprintf("%s %s %s.%s%s", d, ru->offset < 0 ? "before" : "after",
                            ru->sched_type ? ru->sched_type : "?",
                            ru->sched_field ? ru->sched_field : "?", at);
    }
    default:
        return json_sprintf("yearly %s.%s%s", ru->sched_type ? ru->sched_type : "?",
                            ru->sched_field ? ru->sched_field : "?", at);
    }
}

json_t *crm_rules_json(crm_rules *r)
{
    ruleset *rs = acquire_current(r);
    json_t *data = json_array();
    for (int i = 0; rs && i < rs->nrules; i++) {
        const rule *ru = rs->rules[i];
        const rule_counters *c = ru->ctr;
        const char *phase = ru->trig != TRIG_EVENT            ? "schedule"
                            : ru->phase == CRM_PHASE_BEFORE ? "before"
                            : ru->phase == CRM_PHASE_ASYNC  ? "async"
                                                            : "after";
        json_t *o = json_pack(
            "{s:s,s:s,s:i,s:s,s:o,s:s,s:i,s:s,s:o}", "name", ru->name, "file",
            rs->files[ru->file].path, "line", ru->line, "source", rs->files[ru->file].owner,
            "trigger", trigger_json(ru), "phase", phase, "order", ru->order, "state",
            ru->error ? "error" : atomic_load(&ru->disabled) ? "disabled" : "enabled", "error",
            ru->error ? json_string(ru->error) : json_null());
        pthread_mutex_lock(&r->mu);
        json_object_set_new(o, "last_error",
                            c && c->last_error ? json_string(c->last_error) : json_null());
        pthread_mutex_unlock(&r->mu);
        json_object_set_new(o, "runs", json_integer(c ? (json_int_t)atomic_load(&c->runs) : 0));
        json_object_set_new(o, "errors",
                            json_integer(c ? (json_int_t)atomic_load(&c->errors) : 0));
        json_object_set_new(o, "total_us",
                            json_integer(c ? (json_int_t)atomic_load(&c->total_us) : 0));
        json_array_append_new(data, o);
    }
    json_t *out = json_pack("{s:I,s:o,s:o}", "generation",
                            (json_int_t)(rs ? rs->gen : 0), "data", data, "errors",
                            rs && rs->errors ? json_deep_copy(rs->errors) : json_array());
    ruleset_release(rs);
    return out;
}
