/*
 * rules_load.c — reading a rule file into a Lua state: the file's top level
 * runs with `rule` and `disable` in its environment (and the allowlist);
 * `rule { ... }` checks its table into a C declaration (rules_int.h's
 * `rule`) and keeps the file's main chunk, `when` and `run` in the state's
 * index under "<file>:<name>". Text chunks only (mode "t"); a binary chunk
 * is a rule_syntax_error before Lua sees it.
 */
#include "rules_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCKED "locked"

/* ---- Loading files ---- */

static int rule_line(lua_State *L)
{
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "Sl", &ar);
        if (ar.currentline > 0) return ar.currentline;
    }
    return 0;
}

static char *opt_string(lua_State *L, int t, const char *key, char *err, size_t errlen, bool *bad)
{
    lua_pushstring(L, key);
    int ty = lua_rawget(L, t);
    char *out = NULL;
    if (ty == LUA_TSTRING) {
        out = crm_strdup(lua_tostring(L, -1));
    } else if (ty != LUA_TNIL && !*bad) {
        snprintf(err, errlen, "%s must be a string, not a %s", key, lua_typename(L, ty));
        *bad = true;
    }
    lua_pop(L, 1);
    return out;
}

static json_t *scalar_json(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        return json_string(lua_tostring(L, idx));
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        return lua_isinteger(L, idx) ? json_integer(lua_tointeger(L, idx))
                                     : json_real(lua_tonumber(L, idx));
    default:
        return NULL;
    }
}

/* "type.field" with type "owner.name": split at the last dot. */
static bool split_type_field(const char *s, char **type, char **field)
{
    const char *dot = s ? strrchr(s, '.') : NULL;
    if (!dot || dot == s || !dot[1] || !memchr(s, '.', (size_t)(dot - s))) return false;
    *type = crm_strndup(s, (size_t)(dot - s));
    *field = crm_strdup(dot + 1);
    return true;
}

static const char *const rule_keys[] = {"name",    "on",     "phase", "when", "run",   "order",
                                        "enabled", "changed", "from", "to",   "cron",  "before",
                                        "after",   "field",  "at",    "yearly", NULL};

/* Parse a rule{} table at index 1 into a rule; problems go to ru->error. */
static rule *parse_rule(lua_State *L, rule_loader *ld)
{
    rule *ru = crm_calloc(1, sizeof *ru);
    char err[400] = "";
    bool bad = false;
    char *phase = NULL, *before = NULL, *after = NULL, *field = NULL, *at = NULL, *yearly = NULL;
    ru->file = ld->file;
    ru->line = rule_line(L);
    ru->position = ld->position++;
    ru->phase = CRM_PHASE_AFTER;
    ru->at_minute = -1;
    ru->declared_enabled = true;

    /* unknown keys are typos: say so rather than ignore a condition */
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        bool known = false;
        if (lua_type(L, -1) == LUA_TSTRING)
            for (int i = 0; rule_keys[i]; i++)
                if (strcmp(lua_tostring(L, -1), rule_keys[i]) == 0) known = true;
        if (!known && !bad) {
            if (lua_type(L, -1) == LUA_TSTRING)
                snprintf(err, sizeof err,
                         "unknown key \"%s\" (known: name, on, phase, when, run, order, enabled, "
                         "changed, from, to, cron, before, after, field, at, yearly)",
                         lua_tostring(L, -1));
            else
                snprintf(err, sizeof err, "rule tables take only named keys (name = ..., run = ...)");
            bad = true;
        }
    }

    ru->name = opt_string(L, 1, "name", err, sizeof err, &bad);
    if (!ru->name && !bad) {
        snprintf(err, sizeof err, "a rule needs a name (name = \"...\")");
        bad = true;
    } else if (ru->name) {
        size_t n = strlen(ru->name);
        bool printable = n > 0 && n <= RULE_NAME_MAX && crm_utf8_valid(ru->name, n);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)ru->name[i] < ' ' || ru->name[i] == 0x7f) printable = false;
        if (!printable && !bad) {
            snprintf(err, sizeof err, "a rule name is 1 to %d printable characters", RULE_NAME_MAX);
            bad = true;
        }
    }
    ru->topic = opt_string(L, 1, "on", err, sizeof err, &bad);
    phase = opt_string(L, 1, "phase", err, sizeof err, &bad);
    ru->cron = opt_string(L, 1, "cron", err, sizeof err, &bad);
    field = opt_string(L, 1, "field", err, sizeof err, &bad);
    at = opt_string(L, 1, "at", err, sizeof err, &bad);
    yearly = opt_string(L, 1, "yearly", err, sizeof err, &bad);

    /* before / after: a duration string or seconds */
    static const char *const offs[] = {"before", "after"};
    for (int k = 0; k < 2; k++) {
        lua_pushstring(L, offs[k]);
        int ty = lua_rawget(L, 1);
        if (ty == LUA_TSTRING) {
            if (k == 0)
                before = crm_strdup(lua_tostring(L, -1));
            else
                after = crm_strdup(lua_tostring(L, -1));
        } else if (ty == LUA_TNUMBER) {
            char buf[32];
            snprintf(buf, sizeof buf, "%lld", (long long)lua_tointeger(L, -1));
            if (k == 0)
                before = crm_strdup(buf);
            else
                after = crm_strdup(buf);
        } else if (ty != LUA_TNIL && !bad) {
            snprintf(err, sizeof err, "%s must be a duration such as \"3d\", \"2h\" or \"30m\"",
                     offs[k]);
            bad = true;
        }
        lua_pop(L, 1);
    }

    lua_pushliteral(L, "order");
    int ty = lua_rawget(L, 1);
    if (ty == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= -1000000 &&
        lua_tointeger(L, -1) <= 1000000)
        ru->order = (int)lua_tointeger(L, -1);
    else if (ty != LUA_TNIL && !bad) {
        snprintf(err, sizeof err, "order must be a whole number from -1000000 to 1000000");
        bad = true;
    }
    lua_pop(L, 1);

    lua_pushliteral(L, "enabled");
    ty = lua_rawget(L, 1);
    if (ty == LUA_TBOOLEAN)
        ru->declared_enabled = lua_toboolean(L, -1);
    else if (ty != LUA_TNIL && !bad) {
        snprintf(err, sizeof err, "enabled must be true or false");
        bad = true;
    }
    lua_pop(L, 1);

    lua_pushliteral(L, "run");
    if (lua_rawget(L, 1) != LUA_TFUNCTION && !bad) {
        snprintf(err, sizeof err, "a rule needs run = function(ev) ... end");
        bad = true;
    }
    lua_pop(L, 1);
    lua_pushliteral(L, "when");
    ty = lua_rawget(L, 1);
    ru->has_when = ty == LUA_TFUNCTION;
    if (ty != LUA_TNIL && ty != LUA_TFUNCTION && !bad) {
        snprintf(err, sizeof err, "when must be a function(ev) returning true or false");
        bad = true;
    }
    lua_pop(L, 1);

    /* changed: a field name or a list of them */
    lua_pushliteral(L, "changed");
    ty = lua_rawget(L, 1);
    if (ty == LUA_TSTRING) {
        ru->changed = crm_calloc(1, sizeof *ru->changed);
        ru->changed[0] = crm_strdup(lua_tostring(L, -1));
        ru->nchanged = 1;
    } else if (ty == LUA_TTABLE) {
        int n = (int)lua_rawlen(L, -1);
        if (n < 1 || n > 64) {
            if (!bad) snprintf(err, sizeof err, "changed must name 1 to 64 fields");
            bad = true;
        } else {
            ru->changed = crm_calloc((size_t)n, sizeof *ru->changed);
            for (int i = 1; i <= n; i++) {
                if (lua_rawgeti(L, -1, i) == LUA_TSTRING) {
                    ru->changed[ru->nchanged++] = crm_strdup(lua_tostring(L, -1));
                } else if (!bad) {
                    snprintf(err, sizeof err, "changed must list field names (strings)");
                    bad = true;
                }
                lua_pop(L, 1);
            }
        }
    } else if (ty != LUA_TNIL && !bad) {
        snprintf(err, sizeof err, "changed must be a field name or a list of them");
        bad = true;
    }
    lua_pop(L, 1);
    static const char *const vals[] = {"from", "to"};
    for (int k = 0; k < 2; k++) {
        lua_pushstring(L, vals[k]);
        ty = lua_rawget(L, 1);
        if (ty != LUA_TNIL) {
            json_t *v = scalar_json(L, -1);
            if (!v && !bad) {
                snprintf(err, sizeof err, "%s must be a string, number or boolean", vals[k]);
                bad = true;
            }
            if (k == 0)
                ru->from = v;
            else
                ru->to = v;
        }
        lua_pop(L, 1);
    }

    /* which trigger */
    int kinds = (ru->topic != NULL) + (ru->cron != NULL) + (before || after) + (yearly != NULL);
    if (before && after && !bad) {
        snprintf(err, sizeof err, "give before or after, not both");
        bad = true;
    }
    if (kinds != 1 && !bad) {
        snprintf(err, sizeof err,
                 kinds ? "give one trigger: on, cron, before/after + field, or yearly"
                       : "a rule needs a trigger: on = \"type.updated\", cron = \"0 3 * * *\", "
                         "before = \"3d\" + field = \"type.field\", or yearly = \"type.field\"");
        bad = true;
    }
    if (ru->topic) {
        ru->trig = TRIG_EVENT;
        if (!rules_topic_valid(ru->topic) && !bad) {
            snprintf(err, sizeof err,
                     "on = \"%s\": use a topic such as \"crm.deal.updated\" (or \"crm.deal.*\")",
                     ru->topic);
            bad = true;
        }
        if (phase) {
            if (strcmp(phase, "before") == 0)
                ru->phase = CRM_PHASE_BEFORE;
            else if (strcmp(phase, "after") == 0)
                ru->phase = CRM_PHASE_AFTER;
            else if (strcmp(phase, "async") == 0)
                ru->phase = CRM_PHASE_ASYNC;
            else if (!bad) {
                snprintf(err, sizeof err, "phase = \"%s\": use \"before\", \"after\" or \"async\"",
                         phase);
                bad = true;
            }
        }
    } else if (phase && !bad) {
        snprintf(err, sizeof err, "phase applies only to rules with on = \"...\"");
        bad = true;
    }
    if ((ru->from || ru->to) && ru->nchanged != 1 && !bad) {
        snprintf(err, sizeof err, "from / to need exactly one field in changed = \"field\"");
        bad = true;
    }
    if ((ru->nchanged || ru->from || ru->to) && !ru->topic && !bad) {
        snprintf(err, sizeof err, "changed / from / to apply only to rules with on = \"...\"");
        bad = true;
    }
    if (ru->cron) {
        crm_cron c;
        ru->trig = TRIG_CRON;
        if (crm_cron_parse(&c, ru->cron) < 0 && !bad) {
            snprintf(err, sizeof err, "%s", crm_error_last()->message);
            bad = true;
        }
    }
    if (before || after) {
        ru->trig = TRIG_OFFSET;
        int64_t secs = 0;
        if (!rules_parse_duration(before ? before : after, &secs) && !bad) {
            snprintf(err, sizeof err,
                     "%s = \"%s\": use a duration such as \"3d\", \"2h\", \"30m\", \"1w\" or \"45s\"",
                     before ? "before" : "after", before ? before : after);
            bad = true;
        }
        ru->offset = before ? -secs : secs;
        if (!field && !bad) {
            snprintf(err, sizeof err, "%s needs field = \"type.field\" (a date or datetime field)",
                     before ? "before" : "after");
            bad = true;
        } else if (field && !split_type_field(field, &ru->sched_type, &ru->sched_field) && !bad) {
            snprintf(err, sizeof err, "field = \"%s\": use \"owner.type.field\"", field);
            bad = true;
        }
    } else if (field && !yearly && !bad) {
        snprintf(err, sizeof err, "field applies only with before / after");
        bad = true;
    }
    if (yearly) {
        ru->trig = TRIG_YEARLY;
        if (!split_type_field(yearly, &ru->sched_type, &ru->sched_field) && !bad) {
            snprintf(err, sizeof err, "yearly = \"%s\": use \"owner.type.field\" (a date field)",
                     yearly);
            bad = true;
        }
    }
    if (at) {
        int h, m;
        char extra;
        if (sscanf(at, "%d:%d%c", &h, &m, &extra) != 2 || h < 0 || h > 23 || m < 0 || m > 59 ||
            strlen(at) != 5) {
            if (!bad) snprintf(err, sizeof err, "at = \"%s\": use \"HH:MM\" (UTC)", at);
            bad = true;
        } else {
            ru->at_minute = h * 60 + m;
        }
        if (ru->trig != TRIG_OFFSET && ru->trig != TRIG_YEARLY && !bad) {
            snprintf(err, sizeof err, "at applies only to before / after / yearly rules");
            bad = true;
        }
    }
    if (bad) ru->error = crm_strdup(err);
    free(phase);
    free(before);
    free(after);
    free(field);
    free(at);
    free(yearly);
    return ru;
}

/* rule { ... } at a file's top level */
static int lua_rule(lua_State *L)
{
    rstate *S = rules_state_of(L);
    rule_loader *ld = S->loader;
    if (!ld) return luaL_error(L, "rule{} is only valid at the top level of a rule file");
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    rule *ru = parse_rule(L, ld);
    if (ru->name && S->byname_ref != LUA_NOREF) {
        /* keep the functions under "<file>:<name>"; the first declaration wins */
        lua_rawgeti(L, LUA_REGISTRYINDEX, S->byname_ref); /* 2 */
        lua_pushfstring(L, "%d:%s", ld->file, ru->name);  /* 3 */
        lua_pushvalue(L, 3);
        if (lua_rawget(L, 2) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_createtable(L, 3, 0);
            lua_pushvalue(L, lua_upvalueindex(1)); /* the file's main chunk */
            lua_rawseti(L, -2, 1);
            lua_pushliteral(L, "when");
            lua_rawget(L, 1);
            lua_rawseti(L, -2, 2);
            lua_pushliteral(L, "run");
            lua_rawget(L, 1);
            lua_rawseti(L, -2, 3);
            lua_rawset(L, 2);
        }
        lua_settop(L, 1);
    }
    if (ld->on_rule)
        ld->on_rule(ld->arg, ru);
    else
        rule_free(ru);
    return 0;
}

/* disable "name" — a site file switching off a (plugin's) rule */
static int lua_disable(lua_State *L)
{
    rstate *S = rules_state_of(L);
    rule_loader *ld = S->loader;
    const char *name = luaL_checkstring(L, 1);
    if (!ld) return luaL_error(L, "disable is only valid at the top level of a rule file");
    if (strcmp(ld->owner, "site") != 0)
        return luaL_error(L, "disable \"%s\": only the site's own rule files may disable rules",
                          name);
    if (ld->on_disable) ld->on_disable(ld->arg, name, rule_line(L));
    return 0;
}

typedef struct load_args {
    rstate *S;
    rule_loader *ld;
    const char *src;
    size_t len;
    int status; /* of the load itself */
    char msg[600];
    bool ran;
} load_args;

static int load_file(lua_State *L)
{
    load_args *a = lua_touserdata(L, 1);
    rstate *S = a->S;
    char chunk[300];
    snprintf(chunk, sizeof chunk, "@%s", a->ld->path);
    a->status = luaL_loadbufferx(L, a->src, a->len, chunk, "t");
    if (a->status != LUA_OK) {
        rules_error_text(L, -1, a->msg, sizeof a->msg);
        return 0;
    }
    int main_fn = lua_gettop(L);
    /* the file's environment while it loads: the allowlist, rule and disable */
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, main_fn);
    lua_pushcclosure(L, lua_rule, 1);
    lua_setfield(L, -2, "rule");
    lua_pushcfunction(L, lua_disable);
    lua_setfield(L, -2, "disable");
    lua_createtable(L, 0, 2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->base_ref);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, LOCKED);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_setupvalue(L, main_fn, 1);
    a->ran = true;
    lua_call(L, 0, 0);
    return 0;
}

static int error_line(const char *msg, const char *path)
{
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && msg[n] == ':') return atoi(msg + n + 1);
    return 0;
}

int rules_state_load_file(rstate *S, rule_loader *ld, const char *src, size_t len, int *line)
{
    load_args a = {.S = S, .ld = ld, .src = src, .len = len};
    char msg[600];
    *line = 0;
    if (len > 0 && src[0] == LUA_SIGNATURE[0])
        return crm_error_set_named(CRM_EINVALID, "rule_syntax_error", NULL,
                                   "%s: binary (precompiled) chunks are not accepted; rules are "
                                   "Lua source text",
                                   ld->path);
    if (len > RULE_FILE_MAX)
        return crm_error_set_named(CRM_EINVALID, "rule_syntax_error", NULL,
                                   "%s: %zu bytes is over the limit of %d bytes for a rule file",
                                   ld->path, len, RULE_FILE_MAX);
    S->loader = ld;
    S->deadline = crm_mono_us() + 4 * S->budget_us;
    S->abort = ABORT_NONE;
    int status = rules_protected_call(S, S->L, load_file, &a, msg, sizeof msg);
    int abort = S->abort;
    S->deadline = 0;
    S->abort = ABORT_NONE;
    S->loader = NULL;
    if (a.status != LUA_OK) {
        *line = error_line(a.msg, ld->path);
        return crm_error_set_named(CRM_EINVALID, "rule_syntax_error", NULL, "%s", a.msg);
    }
    if (status != LUA_OK) {
        *line = error_line(msg, ld->path);
        if (abort == ABORT_TIMEOUT)
            return crm_error_set_named(CRM_EINVALID, "rule_invalid", NULL,
                                       "%s: the file's top level ran longer than %lld ms",
                                       ld->path, (long long)(4 * S->budget_us / 1000));
        if (abort == ABORT_MEMORY || status == LUA_ERRMEM)
            return crm_error_set_named(CRM_EINVALID, "rule_invalid", NULL,
                                       "%s: the file's top level hit the memory limit", ld->path);
        if (*line)
            return crm_error_set_named(CRM_EINVALID, "rule_invalid", NULL, "%s", msg);
        return crm_error_set_named(CRM_EINVALID, "rule_invalid", NULL, "%s: %s", ld->path, msg);
    }
    return CRM_OK;
}

