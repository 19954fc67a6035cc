/*
 * rules_sandbox.c — Lua states for rules: a capped allocator, an instruction
 * hook with a wall-clock deadline, the allowlisted environment, and one run.
 *
 * Redis's lessons (CVE-2022-0543 and the sandbox escapes after it) shape this
 * file:
 *   - the environment is built from an allowlist; nothing from the global
 *     table reaches a rule, and the global table itself is emptied;
 *   - text chunks only (mode "t" on every load);
 *   - library tables are read-only proxies; the string metatable answers
 *     getmetatable with a sentinel, so it cannot be reached or changed;
 *   - the count hook raises an error each time it fires once the deadline
 *     passed (or the memory cap was hit), and pcall, xpcall and
 *     coroutine.resume re-raise instead of returning false while the run is
 *     aborted, so a timeout cannot be swallowed;
 *   - the allocator refuses to grow past the cap (Lua turns that into a
 *     memory error, which the run reports as rule_memory_limit);
 *   - setmetatable refuses __gc, so no rule code runs at collection or close;
 *   - error values are turned into text by type, never through __tostring.
 *
 * States are prepared once per thread. A run builds only a fresh _ENV (a
 * table whose metatable falls back to the shared allowlist) and the event
 * table, and swaps the _ENV upvalue of the rule file's main chunk — which all
 * functions of the file share — for the length of the run.
 *
 * Every call from C into a state goes through lua_pcall: a Lua error (even a
 * memory error while pushing) never unwinds through kernel frames.
 */
#include "rules_int.h"

#include "record.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCKED "locked"

rstate *rules_state_of(lua_State *L)
{
    return *(rstate **)lua_getextraspace(L);
}

int rules_raise(lua_State *L, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    luaL_where(L, 1);
    lua_pushstring(L, msg);
    lua_concat(L, 2);
    return lua_error(L);
}

/* ---- Allocator: the cap fails softly (Lua raises a memory error) ---- */

static void *rules_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    rstate *S = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        S->used -= old;
        return NULL;
    }
    if (nsize > old && S->used + (nsize - old) > S->cap) {
        if (S->deadline) S->abort = ABORT_MEMORY;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p) {
        if (nsize <= old) return ptr; /* Lua assumes shrinking never fails */
        if (S->deadline) S->abort = ABORT_MEMORY;
        return NULL;
    }
    S->used = S->used - old + nsize;
    return p;
}

/* ---- The hook: deadline, abort, call depth ---- */

static void hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    rstate *S = rules_state_of(L);
    if (!S->deadline && !S->abort) return;
    if (!S->abort && crm_mono_us() > S->deadline) S->abort = ABORT_TIMEOUT;
    if (S->abort) {
        lua_pushstring(L, S->abort == ABORT_TIMEOUT ? "rule stopped: time budget exceeded"
                                                    : "rule stopped: memory limit reached");
        lua_error(L);
    }
    lua_Debug d;
    if (lua_getstack(L, RULE_CALL_DEPTH_MAX, &d))
        luaL_error(L, "stack overflow (more than %d nested calls)", RULE_CALL_DEPTH_MAX);
}

static void set_hook(rstate *S, lua_State *T)
{
    lua_sethook(T, hook, LUA_MASKCOUNT, S->hook_interval);
}

static bool aborted(lua_State *L)
{
    rstate *S = rules_state_of(L);
    return S->abort != ABORT_NONE || (S->run && S->run->rejected);
}

static void check_abort(lua_State *L)
{
    if (aborted(L)) {
        lua_pushstring(L, "rule stopped");
        lua_error(L);
    }
}

/* ---- Error values as text, without metamethods ---- */

void rules_error_text(lua_State *L, int idx, char *msg, size_t len)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        snprintf(msg, len, "%.*s", (int)(n < len ? n : len - 1), s);
        break;
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            snprintf(msg, len, "%lld", (long long)lua_tointeger(L, idx));
        else
            snprintf(msg, len, "%.14g", lua_tonumber(L, idx));
        break;
    case LUA_TBOOLEAN:
        snprintf(msg, len, "%s", lua_toboolean(L, idx) ? "true" : "false");
        break;
    case LUA_TNIL:
        snprintf(msg, len, "nil");
        break;
    default:
        snprintf(msg, len, "(error object is a %s value)", lua_typename(L, lua_type(L, idx)));
    }
}

/* ---- Wrapped base functions ---- */

static int finish_pcall(lua_State *L, int status, lua_KContext extra)
{
    if (status != LUA_OK && status != LUA_YIELD) {
        if (aborted(L)) return lua_error(L); /* a stopped run cannot be resumed */
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    return lua_gettop(L) - (int)extra;
}

static int sb_pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    check_abort(L);
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, finish_pcall);
    return finish_pcall(L, status, 0);
}

static int sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    check_abort(L);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 2);
    int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_pcall);
    return finish_pcall(L, status, 2);
}

static lua_CFunction original(lua_State *L)
{
    return lua_tocfunction(L, lua_upvalueindex(1));
}

static int sb_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc finalizers are not allowed in rules");
        lua_pop(L, 1);
    }
    return original(L)(L);
}

static int sb_co_create(lua_State *L)
{
    int n = original(L)(L);
    rstate *S = rules_state_of(L);
    set_hook(S, lua_tothread(L, -1));
    return n;
}

static int sb_co_wrap(lua_State *L)
{
    int n = original(L)(L);
    rstate *S = rules_state_of(L);
    /* coroutine.wrap's closure holds the coroutine as its only upvalue */
    if (lua_getupvalue(L, -1, 1)) {
        if (lua_type(L, -1) == LUA_TTHREAD) set_hook(S, lua_tothread(L, -1));
        lua_pop(L, 1);
    }
    return n;
}

static int sb_co_resume(lua_State *L)
{
    check_abort(L);
    int n = original(L)(L);
    if (n >= 1 && !lua_toboolean(L, -n) && aborted(L)) return lua_error(L);
    return n;
}

static void log_args(lua_State *L, int level)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL); /* the rule's own values, in its own run */
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    rules_api_log(rules_state_of(L), level, lua_tostring(L, -1));
}

static int sb_print(lua_State *L)
{
    log_args(L, CRM_LOG_INFO);
    return 0;
}

static int sb_warn(lua_State *L)
{
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++)
        luaL_checkstring(L, i);
    /* "@on" / "@off" and other control messages switch Lua's stderr warnings: there are none */
    if (n == 1 && lua_tostring(L, 1)[0] == '@') return 0;
    lua_concat(L, n);
    rules_api_log(rules_state_of(L), CRM_LOG_WARN, lua_tostring(L, -1));
    return 0;
}

static void warnf(void *ud, const char *msg, int tocont)
{
    (void)ud;
    (void)tocont;
    if (msg[0] != '@') crm_log(CRM_LOG_WARN, "rules: lua warning: %s", msg);
}

/* ---- Bounded string functions (L5) ---- */

static size_t skip_set(const char *p, size_t n, size_t i)
{
    i++; /* '[' */
    if (i < n && p[i] == '^') i++;
    do {
        if (i >= n) return n;
        if (p[i] == '%')
            i += 2;
        else
            i++;
    } while (i < n && p[i] != ']');
    return i + 1;
}

/* Quantifiers (* + - ?) applied to single-character classes, as Lua's matcher reads them. */
static int count_quantifiers(const char *p, size_t n)
{
    size_t i = 0;
    int q = 0;
    if (i < n && p[i] == '^') i++;
    while (i < n) {
        char c = p[i];
        if (c == '(' || c == ')') {
            i++;
            continue;
        }
        if (c == '$' && i + 1 == n) break;
        if (c == '%' && i + 1 < n && p[i + 1] == 'b') {
            i += 4;
            continue;
        }
        if (c == '%' && i + 1 < n && p[i + 1] == 'f') {
            i = skip_set(p, n, i + 2);
            continue;
        }
        if (c == '%' && i + 1 < n && isdigit((unsigned char)p[i + 1])) {
            i += 2;
            continue;
        }
        if (c == '%')
            i += 2;
        else if (c == '[')
            i = skip_set(p, n, i);
        else
            i++;
        if (i < n && (p[i] == '*' || p[i] == '+' || p[i] == '-' || p[i] == '?')) {
            q++;
            i++;
        }
    }
    return q;
}

static void check_pattern_call(lua_State *L, const char *fn, bool may_be_plain)
{
    size_t n, pn;
    luaL_checklstring(L, 1, &n);
    const char *p = luaL_checklstring(L, 2, &pn);
    if (n > RULE_STR_SUBJECT_MAX)
        luaL_error(L, "string.%s: a subject of %d bytes is over the limit of %d bytes in rules", fn,
                   (int)(n > 999999999 ? 999999999 : n), RULE_STR_SUBJECT_MAX);
    if (may_be_plain && lua_toboolean(L, 4)) return;
    int q = count_quantifiers(p, pn);
    if (q > RULE_STR_QUANT_MAX)
        luaL_error(L, "string.%s: a pattern with %d quantifiers is over the limit of %d in rules",
                   fn, q, RULE_STR_QUANT_MAX);
    /* gmatch and gsub try every position whatever the pattern; find and match unless "^". */
    bool anchored = pn > 0 && p[0] == '^' && (strcmp(fn, "find") == 0 || strcmp(fn, "match") == 0);
    int factors = q + (anchored ? 0 : 1);
    double steps = 1;
    for (int i = 0; q > 0 && i < factors; i++) steps *= (double)(n ? n : 1);
    if (q > 0 && steps > RULE_STR_STEPS_MAX)
        luaL_error(L,
                   "string.%s: a pattern with %d quantifier%s on a %d-byte subject could run too "
                   "long in a rule; shorten the subject, use fewer quantifiers, or anchor it with ^",
                   fn, q, q == 1 ? "" : "s", (int)n);
}

static int sb_find(lua_State *L)
{
    check_pattern_call(L, "find", true);
    return original(L)(L);
}

static int sb_match(lua_State *L)
{
    check_pattern_call(L, "match", false);
    return original(L)(L);
}

static int sb_gmatch(lua_State *L)
{
    check_pattern_call(L, "gmatch", false);
    return original(L)(L);
}

static int sb_gsub(lua_State *L)
{
    check_pattern_call(L, "gsub", false);
    return original(L)(L);
}

static int sb_rep(lua_State *L)
{
    size_t l, lsep = 0;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (n > 0) {
        double total = (double)l * (double)n + (double)lsep * (double)(n - 1);
        if (total > RULE_STR_REP_MAX) {
            rules_state_of(L)->abort = ABORT_MEMORY;
            return luaL_error(L, "string.rep: a result of %.0f bytes is over the limit of %d bytes",
                              total, RULE_STR_REP_MAX);
        }
    }
    return original(L)(L);
}

/* ---- Read-only proxies ---- */

static int ro_newindex(lua_State *L)
{
    return luaL_error(L, "attempt to modify read-only table '%s'",
                      lua_tostring(L, lua_upvalueindex(1)));
}

/* pairs(proxy): iterate the hidden table without handing it out. */
static int proxy_next(lua_State *L)
{
    lua_settop(L, 2);
    if (lua_next(L, lua_upvalueindex(1))) return 2;
    lua_pushnil(L);
    return 1;
}

static int proxy_pairs(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, proxy_next, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

void rules_push_proxy(lua_State *L, int idx, const char *name)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L);                  /* proxy */
    lua_createtable(L, 0, 4);         /* its metatable */
    lua_pushvalue(L, idx);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name);
    lua_pushcclosure(L, ro_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, idx);
    lua_pushcclosure(L, proxy_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushliteral(L, LOCKED);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

/* pairs(_ENV) of a run: the allowlist (unless shadowed), then the run's own globals. */
static int env_next(lua_State *L)
{
    lua_settop(L, 2);
    int base = lua_upvalueindex(1);
    bool own = false;
    if (!lua_isnil(L, 2)) {
        lua_pushvalue(L, 2);
        own = lua_rawget(L, 1) != LUA_TNIL;
        lua_pop(L, 1);
    }
    if (!own) {
        lua_pushvalue(L, 2);
        while (lua_next(L, base)) {
            lua_pushvalue(L, -2);
            if (lua_rawget(L, 1) == LUA_TNIL) { /* not shadowed */
                lua_pop(L, 1);
                return 2;
            }
            lua_pop(L, 2);
        }
        lua_pushnil(L); /* the own phase starts */
    } else {
        lua_pushvalue(L, 2);
    }
    if (lua_next(L, 1)) return 2;
    lua_pushnil(L);
    return 1;
}

static int env_pairs(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, env_next, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* ---- State set-up ---- */

static void copy_field(lua_State *L, int from, int to, const char *name)
{
    lua_getfield(L, from, name);
    lua_setfield(L, to, name);
}

static void wrap_field(lua_State *L, int tbl, const char *name, lua_CFunction w)
{
    lua_getfield(L, tbl, name);
    lua_pushcclosure(L, w, 1);
    lua_setfield(L, tbl, name);
}

static int init_state(lua_State *L)
{
    rstate *S = lua_touserdata(L, 1);
    lua_settop(L, 0);
    luaL_requiref(L, "_G", luaopen_base, 0);            /* 1 */
    luaL_requiref(L, "string", luaopen_string, 0);      /* 2 */
    luaL_requiref(L, "table", luaopen_table, 0);        /* 3 */
    luaL_requiref(L, "math", luaopen_math, 0);          /* 4 */
    luaL_requiref(L, "utf8", luaopen_utf8, 0);          /* 5 */
    luaL_requiref(L, "coroutine", luaopen_coroutine, 0); /* 6 */
    lua_newtable(L);                                    /* 7: the allowlist */
    static const char *const base_names[] = {"_VERSION", "assert", "error", "getmetatable",
                                             "ipairs", "next", "pairs", "select",
                                             "tonumber", "tostring", "type"};
    for (size_t i = 0; i < CRM_ARRAY_LEN(base_names); i++)
        copy_field(L, 1, 7, base_names[i]);
    lua_pushcfunction(L, sb_pcall);
    lua_setfield(L, 7, "pcall");
    lua_pushcfunction(L, sb_xpcall);
    lua_setfield(L, 7, "xpcall");
    lua_getfield(L, 1, "setmetatable");
    lua_pushcclosure(L, sb_setmetatable, 1);
    lua_setfield(L, 7, "setmetatable");
    lua_pushcfunction(L, sb_print);
    lua_setfield(L, 7, "print");
    lua_pushcfunction(L, sb_warn);
    lua_setfield(L, 7, "warn");

    /* Each library keeps exactly its allowlist, whatever the Lua build adds (LUA_COMPAT_MATHLIB
     * etc.); string.dump, string.pack & co and math.randomseed (shared generator state would
     * leak across runs) are not on it. The real string table is also the strings' __index,
     * so it is filtered and wrapped in place. */
    static const char *const allow[5][27] = {
        {"byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match", "rep",
         "reverse", "sub", "upper", NULL},
        {"concat", "insert", "move", "pack", "remove", "sort", "unpack", NULL},
        {"abs", "acos", "asin", "atan", "ceil", "cos", "deg", "exp", "floor", "fmod", "huge", "log",
         "max", "maxinteger", "min", "mininteger", "modf", "pi", "rad", "random", "sin", "sqrt",
         "tan", "tointeger", "type", "ult", NULL},
        {"char", "charpattern", "codepoint", "codes", "len", "offset", NULL},
        {"close", "create", "isyieldable", "resume", "running", "status", "wrap", "yield", NULL},
    };
    for (int lib = 0; lib < 5; lib++) {
        int t = 2 + lib;
        bool again = true;
        while (again) { /* removing while iterating is not allowed: restart after each */
            again = false;
            lua_pushnil(L);
            while (lua_next(L, t)) {
                lua_pop(L, 1);
                bool ok = false;
                for (int i = 0; allow[lib][i] && lua_type(L, -1) == LUA_TSTRING; i++)
                    if (strcmp(lua_tostring(L, -1), allow[lib][i]) == 0) ok = true;
                if (!ok) {
                    lua_pushnil(L);
                    lua_rawset(L, t);
                    again = true;
                    break;
                }
            }
        }
    }
    wrap_field(L, 2, "find", sb_find);
    wrap_field(L, 2, "match", sb_match);
    wrap_field(L, 2, "gmatch", sb_gmatch);
    wrap_field(L, 2, "gsub", sb_gsub);
    wrap_field(L, 2, "rep", sb_rep);
    wrap_field(L, 6, "create", sb_co_create);
    wrap_field(L, 6, "wrap", sb_co_wrap);
    wrap_field(L, 6, "resume", sb_co_resume);

    static const char *const libs[] = {"string", "table", "math", "utf8", "coroutine"};
    for (int i = 0; i < 5; i++) {
        rules_push_proxy(L, 2 + i, libs[i]);
        lua_setfield(L, 7, libs[i]);
    }

    /* The string metatable: getmetatable("") answers a locked sentinel whose
     * __index is the read-only string proxy. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);       /* the real string metatable */
    lua_createtable(L, 0, 1);
    lua_getfield(L, 7, "string");
    lua_setfield(L, -2, "__index");
    rules_push_proxy(L, -1, "string metatable");
    lua_setfield(L, -3, "__metatable");
    lua_pop(L, 3);

    /* The global table is never an environment: empty it for good measure. */
    lua_newtable(L);
    lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);

    /* _ENV metatable of runs */
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, 7);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, 7);
    lua_pushcclosure(L, env_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushliteral(L, LOCKED);
    lua_setfield(L, -2, "__metatable");
    S->env_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 7);
    S->base_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    /* One thread per nesting level: a nested run never touches a suspended thread's stack. */
    lua_createtable(L, RULE_NEST_MAX, 0);
    for (int i = 0; i < RULE_NEST_MAX; i++) {
        S->pool[i] = lua_newthread(L);
        set_hook(S, S->pool[i]);
        lua_rawseti(L, -2, i + 1);
    }
    S->pool_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    return 0;
}

/* Run fn(arg) protected on L; CRM_OK or the message of the error in msg. */
int rules_protected_call(rstate *S, lua_State *L, lua_CFunction fn, void *arg, char *msg,
                         size_t msglen)
{
    if (!lua_checkstack(L, 4)) {
        snprintf(msg, msglen, "out of Lua stack");
        return LUA_ERRMEM;
    }
    int top = lua_gettop(L);
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, arg);
    int status = lua_pcall(L, 1, 0, 0);
    if (status != LUA_OK) rules_error_text(L, -1, msg, msglen);
    lua_settop(L, top);
    (void)S;
    return status;
}

rstate *rules_state_new(crm_rules *r, size_t cap, int hook_interval, int64_t budget_us)
{
    rstate *S = crm_calloc(1, sizeof *S);
    char msg[300];
    S->r = r;
    S->cap = cap;
    S->hook_interval = hook_interval > 0 ? hook_interval : 1000;
    S->budget_us = budget_us;
    S->funcs_ref = S->byname_ref = S->crm_ref = LUA_NOREF;
    S->L = lua_newstate(rules_alloc, S);
    if (!S->L) {
        free(S);
        crm_error_set(CRM_EINTERNAL, NULL, "rules: cannot create a Lua state (memory cap %zu)",
                      cap);
        return NULL;
    }
    *(rstate **)lua_getextraspace(S->L) = S;
    lua_setwarnf(S->L, warnf, S);
    set_hook(S, S->L);
    if (rules_protected_call(S, S->L, init_state, S, msg, sizeof msg) != LUA_OK) {
        lua_close(S->L);
        free(S);
        crm_error_set(CRM_EINTERNAL, NULL, "rules: cannot prepare a Lua state: %s", msg);
        return NULL;
    }
    return S;
}

void rules_state_free(rstate *S)
{
    if (!S) return;
    /* __gc is refused at setmetatable, so collection runs no rule code; bound it anyway */
    S->deadline = crm_mono_us() + S->budget_us;
    lua_gc(S->L, LUA_GCCOLLECT);
    S->deadline = 0;
    lua_close(S->L);
    if (S->rs) ruleset_release(S->rs);
    json_decref(S->hold);
    free(S);
}

/* ---- Compiling a set into a thread's state ---- */

typedef struct compile_args {
    rstate *S;
    ruleset *rs;
} compile_args;

static int compile_index(lua_State *L)
{
    compile_args *a = lua_touserdata(L, 1);
    rstate *S = a->S;
    lua_createtable(L, a->rs->nrules * 3, 0); /* 2: funcs */
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->byname_ref); /* 3 */
    for (int i = 0; i < a->rs->nrules; i++) {
        const rule *ru = a->rs->rules[i];
        if (!ru->name) continue;
        lua_pushfstring(L, "%d:%s", ru->file, ru->name);
        if (lua_rawget(L, 3) == LUA_TTABLE) {
            for (int k = 1; k <= 3; k++) {
                lua_rawgeti(L, -1, k);
                lua_rawseti(L, 2, 3 * i + k);
            }
        }
        lua_pop(L, 1);
    }
    lua_pushvalue(L, 2);
    S->funcs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* A fresh function index, and crm (with the plugins' functions as they are now): files
 * may take crm.log or crm.<plugin>.<fn> into locals at their top level. */
static int begin_compile(lua_State *L)
{
    rstate *S = lua_touserdata(L, 1);
    lua_newtable(L);
    S->byname_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->base_ref);
    rules_api_push_crm(L, S, S->r ? rules_functions(S->r) : NULL);
    lua_setfield(L, -2, "crm");
    return 0;
}

int rules_state_begin(rstate *S)
{
    char msg[300];
    if (rules_protected_call(S, S->L, begin_compile, S, msg, sizeof msg) != LUA_OK)
        return crm_error_set(CRM_EINTERNAL, NULL, "rules: cannot prepare a state: %s", msg);
    return CRM_OK;
}

void rules_state_reset(rstate *S)
{
    luaL_unref(S->L, LUA_REGISTRYINDEX, S->funcs_ref);
    luaL_unref(S->L, LUA_REGISTRYINDEX, S->byname_ref);
    S->funcs_ref = S->byname_ref = LUA_NOREF;
    if (S->rs) ruleset_release(S->rs);
    S->rs = NULL;
}

void rules_state_compile(rstate *S, ruleset *rs)
{
    char msg[300];
    rules_state_reset(S);
    atomic_fetch_add(&rs->refs, 1);
    S->rs = rs;
    if (rules_state_begin(S) < 0) {
        crm_log(CRM_LOG_ERROR, "%s", crm_error_last()->message);
        return;
    }
    for (int f = 0; f < rs->nfiles; f++) {
        rule_loader ld = {.file = f, .path = rs->files[f].path, .owner = rs->files[f].owner};
        int line;
        /* Files that failed in the parse pass have no rules in the set: skip them. */
        bool used = false;
        for (int i = 0; i < rs->nrules && !used; i++)
            used = rs->rules[i]->file == f && !rs->rules[i]->error;
        if (!used) continue;
        if (rules_state_load_file(S, &ld, rs->files[f].source, rs->files[f].len, &line) < 0)
            crm_log(CRM_LOG_ERROR, "rules: %s", crm_error_last()->message);
    }
    compile_args a = {S, rs};
    if (rules_protected_call(S, S->L, compile_index, &a, msg, sizeof msg) != LUA_OK)
        crm_log(CRM_LOG_ERROR, "rules: cannot index the rule set: %s", msg);
    luaL_unref(S->L, LUA_REGISTRYINDEX, S->byname_ref);
    S->byname_ref = LUA_NOREF;
    lua_gc(S->L, LUA_GCCOLLECT);
}

/* ---- Lua <-> JSON ---- */

static json_t *to_json(lua_State *L, int idx, int depth, char *err, size_t errlen, bool *too_deep);

static bool is_array(lua_State *L, int idx, lua_Integer *len)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
            lua_pop(L, 1);
            return false;
        }
        count++;
    }
    *len = n;
    return n > 0 && count == n;
}

static json_t *to_json(lua_State *L, int idx, int depth, char *err, size_t errlen, bool *too_deep)
{
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) return json_integer(lua_tointeger(L, idx));
        if (!isfinite(lua_tonumber(L, idx))) {
            snprintf(err, errlen, "NaN and infinity cannot be stored");
            return NULL;
        }
        return json_real(lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        json_t *v = json_stringn(s, n);
        if (!v) snprintf(err, errlen, "a string is not valid UTF-8");
        return v;
    }
    case LUA_TTABLE:
        break;
    default:
        snprintf(err, errlen, "a %s value cannot be converted to JSON",
                 lua_typename(L, lua_type(L, idx)));
        return NULL;
    }
    if (depth >= RULE_JSON_DEPTH) {
        snprintf(err, errlen, "a value is nested deeper than %d levels", RULE_JSON_DEPTH);
        *too_deep = true;
        return NULL;
    }
    if (!lua_checkstack(L, 6)) {
        snprintf(err, errlen, "out of Lua stack converting a value");
        return NULL;
    }
    lua_Integer n;
    if (is_array(L, idx, &n)) {
        json_t *arr = json_array();
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            json_t *v = to_json(L, -1, depth + 1, err, errlen, too_deep);
            lua_pop(L, 1);
            if (!v) {
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, v);
        }
        return arr;
    }
    json_t *obj = json_object();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        char key[64];
        const char *k;
        if (lua_type(L, -2) == LUA_TSTRING) {
            k = lua_tostring(L, -2);
        } else if (lua_isinteger(L, -2)) {
            snprintf(key, sizeof key, "%lld", (long long)lua_tointeger(L, -2));
            k = key;
        } else {
            snprintf(err, errlen, "a table key of type %s cannot be a JSON key",
                     lua_typename(L, lua_type(L, -2)));
            lua_pop(L, 2);
            json_decref(obj);
            return NULL;
        }
        json_t *v = to_json(L, -1, depth + 1, err, errlen, too_deep);
        lua_pop(L, 1);
        if (!v) {
            lua_pop(L, 1);
            json_decref(obj);
            return NULL;
        }
        if (json_object_set_new(obj, k, v) < 0) {
            snprintf(err, errlen, "a table key is not valid UTF-8");
            lua_pop(L, 1);
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *rules_to_json(lua_State *L, int idx, char *err, size_t errlen, bool *too_deep)
{
    bool deep = false;
    json_t *v = to_json(L, idx, 0, err, errlen, &deep);
    if (too_deep) *too_deep = deep;
    return v;
}

void rules_push_json(lua_State *L, json_t *v)
{
    luaL_checkstack(L, 4, "nested value");
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        lua_createtable(L, 0, (int)json_object_size(v));
        json_object_foreach(v, k, x)
        {
            if (json_is_null(x)) continue;
            rules_push_json(L, x);
            lua_setfield(L, -2, k);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        lua_createtable(L, (int)json_array_size(v), 0);
        json_array_foreach(v, i, x)
        {
            rules_push_json(L, x);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, json_integer_value(v));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(v));
        break;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        break;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        break;
    default:
        lua_pushnil(L);
    }
}

/* ---- One run ---- */

static const char *phase_name(int phase)
{
    return phase == CRM_PHASE_BEFORE ? "before" : phase == CRM_PHASE_ASYNC ? "async" : "after";
}

static void push_event(lua_State *L, rule_run *run)
{
    lua_createtable(L, 0, 10);
    int ev = lua_gettop(L);
    if (run->ev) {
        crm_event *e = run->ev;
        lua_pushstring(L, e->topic);
        lua_setfield(L, ev, "topic");
        lua_pushstring(L, phase_name(run->phase));
        lua_setfield(L, ev, "phase");
        if (e->type) {
            lua_pushstring(L, e->type);
            lua_setfield(L, ev, "type");
        }
        if (e->id > 0) {
            lua_pushinteger(L, e->id);
            lua_setfield(L, ev, "id");
        }
        if (e->record) {
            rules_push_json(L, e->record);
            if (e->id > 0) {
                lua_pushinteger(L, e->id);
                lua_setfield(L, -2, "id");
            }
            lua_setfield(L, ev, "record");
        }
        if (e->old) {
            rules_push_json(L, e->old);
            lua_setfield(L, ev, "old");
        }
        if (e->payload) {
            rules_push_json(L, e->payload);
            lua_setfield(L, ev, "payload");
        }
        if (e->seq) {
            lua_pushinteger(L, e->seq);
            lua_setfield(L, ev, "seq");
        }
        if (e->attempt) {
            lua_pushinteger(L, e->attempt);
            lua_setfield(L, ev, "attempt");
        }
        lua_createtable(L, 0, (int)json_array_size(run->changed));
        size_t i;
        json_t *name;
        json_array_foreach(run->changed, i, name)
        {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, json_string_value(name));
        }
        lua_setfield(L, ev, "changed");
    } else if (run->firing) {
        const crm_firing *f = run->firing;
        lua_pushstring(L, "schedule");
        lua_setfield(L, ev, "phase");
        lua_pushinteger(L, f->due);
        lua_setfield(L, ev, "due");
        lua_pushinteger(L, f->now);
        lua_setfield(L, ev, "now");
        if (f->type) {
            lua_pushstring(L, f->type);
            lua_setfield(L, ev, "type");
            lua_pushinteger(L, f->record_id);
            lua_setfield(L, ev, "id");
        }
        if (f->record) {
            rules_push_json(L, f->record);
            lua_setfield(L, ev, "record");
        }
        lua_newtable(L);
        lua_setfield(L, ev, "changed");
    }
    if (run->user) {
        lua_pushinteger(L, run->user);
        lua_setfield(L, ev, "user");
    }
}

static void fail(rule_run *run, int code, const char *name, const char *fmt, ...)
    CRM_PRINTF(4, 5);
static void fail(rule_run *run, int code, const char *name, const char *fmt, ...)
{
    va_list ap;
    run->fail_code = code;
    snprintf(run->fail_name, sizeof run->fail_name, "%s", name);
    va_start(ap, fmt);
    vsnprintf(run->fail_msg, sizeof run->fail_msg, fmt, ap);
    va_end(ap);
}

/* A before rule's changes to ev.record go back into the event (known fields only). */
static int read_back_record(lua_State *L, rule_run *run, int ev)
{
    crm_event *e = run->ev;
    rstate *S = run->S;
    char err[300];
    bool deep = false;
    lua_pushliteral(L, "record");
    if (lua_rawget(L, ev) != LUA_TTABLE) {
        lua_pop(L, 1);
        fail(run, CRM_ELIMIT, "rule_error", "ev.record must stay a table in a before rule");
        return -1;
    }
    json_t *rec = rules_to_json(L, -1, err, sizeof err, &deep);
    lua_pop(L, 1);
    if (!rec) {
        fail(run, CRM_ELIMIT, deep ? "rule_result_too_deep" : "rule_error", "ev.record: %s", err);
        return -1;
    }
    json_decref(S->hold);
    S->hold = rec;
    const crm_type *t = crm_schema_type(run->ctx.k->schema, e->type);
    const char *key;
    json_t *v;
    if (!json_is_object(rec)) { /* an emptied record reads back as [] or {} */
        json_decref(rec);
        S->hold = NULL;
        rec = json_object();
        S->hold = rec;
    }
    json_object_foreach(rec, key, v)
    {
        if (crm_is_system_field(key)) continue;
        if ((!t || !crm_type_field(t, key)) && !json_object_get(e->record, key)) {
            fail(run, CRM_ELIMIT, "rule_error", "ev.record.%s: %s has no such field", key,
                 e->type);
            return -1;
        }
    }
    /* fields the rule cleared (nil) are absent from rec */
    void *iter = json_object_iter(e->record);
    while (iter) {
        key = json_object_iter_key(iter);
        iter = json_object_iter_next(e->record, iter);
        if (!crm_is_system_field(key) && !json_object_get(rec, key))
            json_object_set_new(e->record, key, json_null());
    }
    json_object_foreach(rec, key, v)
    {
        if (!crm_is_system_field(key)) json_object_set(e->record, key, v);
    }
    json_decref(S->hold);
    S->hold = NULL;
    return 0;
}

static int do_run(lua_State *L)
{
    rule_run *run = lua_touserdata(L, 1);
    rstate *S = run->S;
    int base = 3 * run->index;
    lua_settop(L, 1);
    lua_createtable(L, 0, 0); /* 2: _ENV */
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->env_mt_ref);
    lua_setmetatable(L, 2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->funcs_ref); /* 3 */
    lua_rawgeti(L, 3, base + 1);                     /* 4: main chunk */
    lua_pushvalue(L, 2);
    lua_setupvalue(L, 4, 1);
    push_event(L, run); /* 5 */
    if (lua_rawgeti(L, 3, base + 2) == LUA_TFUNCTION) {
        lua_pushvalue(L, 5);
        lua_call(L, 1, 1);
        bool pass = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (!pass) return 0;
    } else {
        lua_pop(L, 1);
    }
    run->ran = true;
    lua_rawgeti(L, 3, base + 3);
    lua_pushvalue(L, 5);
    lua_call(L, 1, 1);
    if (!lua_isnil(L, -1)) {
        char err[300];
        bool deep = false;
        json_t *res = rules_to_json(L, -1, err, sizeof err, &deep);
        if (!res) {
            fail(run, CRM_ELIMIT, deep ? "rule_result_too_deep" : "rule_error",
                 "the value run returned: %s", err);
            return luaL_error(L, "%s", run->fail_msg);
        }
        json_decref(res);
    }
    if (run->phase == CRM_PHASE_BEFORE && run->ev && run->ev->record && run->ev->type &&
        read_back_record(L, run, 5) < 0)
        return luaL_error(L, "%s", run->fail_msg);
    return 0;
}

/* Message handler: remember where a non-string error was raised; never touch the value. */
static int msgh(lua_State *L)
{
    rstate *S = rules_state_of(L);
    if (S->run && lua_type(L, 1) != LUA_TSTRING && !S->run->where[0]) {
        lua_Debug ar;
        for (int level = 1; lua_getstack(L, level, &ar); level++) {
            if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
                snprintf(S->run->where, sizeof S->run->where, "%s:%d", ar.short_src,
                         ar.currentline);
                break;
            }
        }
    }
    return 1;
}

static bool propagates(int code, const char *name)
{
    if (name && strncmp(name, "rule_", 5) == 0) return true;
    return code == CRM_EBUSY || code == CRM_EFULL;
}

int rules_state_run(rstate *S, rule_run *run)
{
    const rule *ru = run->rule;
    const char *file = S->rs && ru->file < S->rs->nfiles ? S->rs->files[ru->file].path : "?";
    char msg[600];
    int rc = CRM_OK;
    if (S->depth >= RULE_NEST_MAX)
        return crm_error_set_named(CRM_ELIMIT, "rule_error", NULL,
                                   "rule \"%s\": rules nested more than %d deep", ru->name,
                                   RULE_NEST_MAX);
    lua_State *T = S->pool[S->depth];
    run->S = S;
    if (!lua_checkstack(T, 8))
        return crm_error_set_named(CRM_ELIMIT, "rule_memory_limit", NULL,
                                   "rule \"%s\": out of Lua stack", ru->name);
    lua_settop(T, 0);
    lua_pushcfunction(T, msgh);                      /* 1 */
    lua_rawgeti(T, LUA_REGISTRYINDEX, S->funcs_ref); /* 2 */
    if (lua_type(T, 2) != LUA_TTABLE || lua_rawgeti(T, 2, 3 * run->index + 1) != LUA_TFUNCTION ||
        lua_rawgeti(T, 2, 3 * run->index + 3) != LUA_TFUNCTION) {
        lua_settop(T, 0);
        return crm_error_set_named(CRM_ELIMIT, "rule_error", NULL,
                                   "rule \"%s\" (%s:%d) is not compiled in this thread", ru->name,
                                   file, ru->line);
    }
    lua_pop(T, 1);               /* 3: main chunk */
    lua_getupvalue(T, 3, 1);     /* 4: its _ENV before this run (an outer run's) */
    lua_pushcfunction(T, do_run);
    lua_pushlightuserdata(T, run);

    int64_t t0 = crm_mono_us();
    int64_t saved_deadline = S->deadline;
    int64_t deadline = t0 + S->budget_us;
    if (saved_deadline && saved_deadline < deadline) deadline = saved_deadline;
    run->prev = S->run;
    S->run = run;
    S->depth++;
    S->deadline = deadline;
    int status = lua_pcall(T, 1, 0, 1);
    int abort = S->abort;
    S->deadline = saved_deadline;
    S->depth--;
    S->run = run->prev;
    S->abort = ABORT_NONE; /* an outer run's own deadline is checked again by the hook */

    lua_pushvalue(T, 4);
    lua_setupvalue(T, 3, 1);
    if (status != LUA_OK) rules_error_text(T, 5, msg, sizeof msg);
    lua_settop(T, 0);

    int ms = (int)(S->budget_us / 1000);
    if (run->rejected) {
        rc = crm_error_set_named(CRM_EINVALID, "rule_rejected",
                                 run->reject_field[0] ? run->reject_field : NULL, "%s",
                                 run->reject_msg);
    } else if (status == LUA_OK) {
        rc = CRM_OK;
    } else if (abort == ABORT_TIMEOUT) {
        rc = crm_error_set_named(CRM_ELIMIT, "rule_timeout", NULL,
                                 "rule \"%s\" (%s:%d) was stopped: it ran longer than its %d ms "
                                 "budget",
                                 ru->name, file, ru->line, ms);
    } else if (abort == ABORT_MEMORY || status == LUA_ERRMEM) {
        rc = crm_error_set_named(CRM_ELIMIT, "rule_memory_limit", NULL,
                                 "rule \"%s\" (%s:%d) was stopped: it used more than %zu MiB of "
                                 "memory%s%s",
                                 ru->name, file, ru->line, S->cap >> 20,
                                 strstr(msg, "string.rep") ? ": " : "",
                                 strstr(msg, "string.rep") ? msg : "");
    } else if (run->fail_code) {
        rc = crm_error_set_named(run->fail_code, run->fail_name, NULL, "rule \"%s\" (%s:%d): %s",
                                 ru->name, file, ru->line, run->fail_msg);
    } else if (run->api_code && strcmp(msg, run->api_msg) == 0 &&
               propagates(run->api_code, run->api_name)) {
        rc = crm_error_set_named(run->api_code, run->api_name[0] ? run->api_name : NULL,
                                 run->api_field[0] ? run->api_field : NULL, "%s", run->api_msg);
    } else if (run->where[0]) {
        rc = crm_error_set_named(CRM_ELIMIT, "rule_error", NULL, "rule \"%s\" (%s:%d): %s: %s",
                                 ru->name, file, ru->line, run->where, msg);
    } else {
        rc = crm_error_set_named(CRM_ELIMIT, "rule_error", NULL, "rule \"%s\" (%s:%d): %s",
                                 ru->name, file, ru->line, msg);
    }
    if (run->tx_open) {
        crm_conn *conn = crm_ctx_conn(&run->ctx);
        if (rc == CRM_OK)
            rc = crm_tx_commit(conn);
        else
            crm_tx_rollback(conn);
        run->tx_open = false;
    }
    if (abort != ABORT_NONE) lua_gc(S->L, LUA_GCCOLLECT);
    json_decref(S->hold);
    S->hold = NULL;
    return rc;
}

int rules_state_pcall(rstate *S, lua_State *L, int nargs, int64_t budget_us, char *msg,
                      size_t msglen)
{
    int64_t saved = S->deadline;
    S->deadline = crm_mono_us() + budget_us;
    S->abort = ABORT_NONE;
    int status = lua_pcall(L, nargs, 0, 0);
    int abort = S->abort;
    S->deadline = saved;
    S->abort = ABORT_NONE;
    if (status == LUA_OK) return CRM_OK;
    if (abort == ABORT_TIMEOUT)
        snprintf(msg, msglen, "stopped: ran longer than %lld ms", (long long)(budget_us / 1000));
    else if (abort == ABORT_MEMORY || status == LUA_ERRMEM)
        snprintf(msg, msglen, "stopped: memory limit reached");
    else
        rules_error_text(L, -1, msg, msglen);
    lua_pop(L, 1);
    return CRM_ELIMIT;
}

/* ---- Small parsers ---- */

bool rules_parse_duration(const char *s, int64_t *out)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s)) return false;
    long long n = strtoll(s, &end, 10);
    int64_t unit;
    switch (*end) {
    case '\0':
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    case 'w':
        unit = 7 * 86400;
        break;
    default:
        return false;
    }
    if (*end && end[1]) return false;
    if (n < 0 || n > 100LL * 366 * 86400 / unit) return false;
    *out = (int64_t)n * unit;
    return true;
}

bool rules_topic_valid(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    if (n == 0 || n > 128) return false;
    if (strcmp(p, "*") == 0) return true;
    size_t end = n;
    if (n >= 3 && p[n - 1] == '*' && p[n - 2] == '.') end = n - 2;
    int dots = 0;
    for (size_t i = 0; i < end; i++) {
        char c = p[i];
        if (c == '.') {
            if (i == 0 || i == end - 1 || p[i - 1] == '.') return false;
            dots++;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            return false;
        }
    }
    return end < n || dots >= 1;
}

bool rules_topic_match(const char *p, const char *t)
{
    size_t n = strlen(p);
    if (n == 1 && p[0] == '*') return true;
    if (n >= 2 && p[n - 1] == '*') return strncmp(p, t, n - 1) == 0 && t[n - 1] != '\0';
    return strcmp(p, t) == 0;
}
