/*
 * http_route.c — the router: patterns of exact segments, "{name}" and a
 * final "{rest*}"; the most exact match wins, segment by segment. Paths are
 * percent-decoded per segment (so "%2F" stays inside its segment), query
 * strings per pair ('+' is a space). Routes are registered before the server
 * starts and read without locks afterwards.
 */
#include "http_int.h"

#include <stdio.h>
#include <stdlib.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into the arena; `plus` turns '+' into ' ' (query strings).
 * NULL on a malformed escape or an encoded NUL. */
static char *pct_decode(crm_req *req, const char *s, size_t n, bool plus)
{
    char *out = crm_req_alloc(req, n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= n) return NULL;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return NULL;
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else if (plus && s[i] == '+') {
            *o++ = ' ';
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* ---- Routes ---- */

static void route_free(route *r)
{
    if (!r) return;
    for (int i = 0; i < r->nseg; i++)
        free(r->segs[i].text);
    for (int i = 0; i < r->nhandlers; i++)
        free(r->handlers[i]);
    free(r->pattern);
    free(r);
}

/* Split a pattern into segments; NULL with the error set when malformed. */
static route *route_parse(const char *pattern)
{
    route *r;
    const char *p;

    if (!pattern || pattern[0] != '/') {
        crm_error_set(CRM_EINVALID, NULL, "route pattern \"%s\" must start with /",
                      pattern ? pattern : "");
        return NULL;
    }
    r = crm_calloc(1, sizeof *r);
    r->pattern = crm_strdup(pattern);
    p = pattern + 1;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        seg *s;
        if (r->nseg >= MAX_SEGS || n == 0) goto bad;
        s = &r->segs[r->nseg++];
        if (p[0] == '{') {
            if (n < 3 || p[n - 1] != '}') goto bad;
            if (p[n - 2] == '*') {
                if (end || n < 4) goto bad; /* {rest*} only last */
                s->kind = SEG_REST;
                s->text = crm_strndup(p + 1, n - 3);
            } else {
                s->kind = SEG_PARAM;
                s->text = crm_strndup(p + 1, n - 2);
            }
            for (const char *c = s->text; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')) goto bad;
            for (int i = 0; i < r->nseg - 1; i++)
                if (r->segs[i].kind != SEG_EXACT && strcmp(r->segs[i].text, s->text) == 0) goto bad;
        } else {
            if (memchr(p, '{', n) || memchr(p, '}', n)) goto bad;
            s->kind = SEG_EXACT;
            s->text = crm_strndup(p, n);
        }
        if (!end) break;
        p = end + 1;
        if (!*p) goto bad; /* trailing slash */
    }
    return r;
bad:
    crm_error_set(CRM_EINVALID, NULL, "bad route pattern \"%s\"", pattern);
    route_free(r);
    return NULL;
}

static bool route_same(const route *a, const route *b)
{
    if (a->nseg != b->nseg) return false;
    for (int i = 0; i < a->nseg; i++) {
        if (a->segs[i].kind != b->segs[i].kind) return false;
        if (a->segs[i].kind == SEG_EXACT && strcmp(a->segs[i].text, b->segs[i].text) != 0)
            return false;
    }
    return true;
}

int crm_http_route(crm_http *h, const char *method, const char *pattern, unsigned flags,
                   crm_route_fn fn, void *udata)
{
    route *r, *existing = NULL;
    handler *hd;

    if (!method || !*method || strlen(method) >= sizeof hd->method || !fn)
        return crm_error_set(CRM_EINVALID, NULL, "route %s: bad method or handler", pattern);
    for (const char *c = method; *c; c++)
        if (*c < 'A' || *c > 'Z')
            return crm_error_set(CRM_EINVALID, NULL, "route %s: bad method \"%s\"", pattern,
                                 method);
    if (h->daemon)
        return crm_error_set(CRM_EINVALID, NULL, "route %s %s: the server is running already",
                             method, pattern);
    if (!(r = route_parse(pattern))) return CRM_EINVALID;
    for (int i = 0; i < h->nroutes; i++)
        if (route_same(h->routes[i], r)) {
            existing = h->routes[i];
            break;
        }
    if (existing) {
        route_free(r);
        r = existing;
        for (int i = 0; i < r->nhandlers; i++)
            if (strcmp(r->handlers[i]->method, method) == 0)
                return crm_error_set(CRM_ECONFLICT, NULL, "route %s %s registered twice", method,
                                     pattern);
        if (r->nhandlers >= MAX_METHODS)
            return crm_error_set(CRM_EINVALID, NULL, "route %s: too many methods", pattern);
    } else {
        h->routes = crm_realloc(h->routes, sizeof *h->routes * (size_t)(h->nroutes + 1));
        h->routes[h->nroutes++] = r;
    }
    hd = crm_calloc(1, sizeof *hd);
    snprintf(hd->method, sizeof hd->method, "%s", method);
    hd->flags = flags;
    hd->fn = fn;
    hd->udata = udata;
    r->handlers[r->nhandlers++] = hd;
    return CRM_OK;
}

/* Whether route `r` matches the decoded segments; `a` ranks above `b` when at
 * the first position where their kinds differ, `a` has the more exact one. */
static bool route_matches(const route *r, char **segs, int n)
{
    int i;
    for (i = 0; i < r->nseg; i++) {
        const seg *s = &r->segs[i];
        if (s->kind == SEG_REST) return true; /* the rest may be empty */
        if (i >= n) return false;
        if (s->kind == SEG_EXACT) {
            if (strcmp(s->text, segs[i]) != 0) return false;
        } else if (!segs[i][0]) {
            return false;
        }
    }
    return i == n;
}

static int seg_kind_at(const route *r, int i)
{
    if (i < r->nseg) return r->segs[i].kind;
    return r->nseg && r->segs[r->nseg - 1].kind == SEG_REST ? SEG_REST : SEG_EXACT;
}

static bool route_better(const route *a, const route *b)
{
    int n = a->nseg > b->nseg ? a->nseg : b->nseg;
    for (int i = 0; i < n; i++) {
        int ka = seg_kind_at(a, i), kb = seg_kind_at(b, i);
        if (ka != kb) return ka < kb;
    }
    return false;
}

void crm_http__routes_free(crm_http *h)
{
    for (int i = 0; i < h->nroutes; i++)
        route_free(h->routes[i]);
    free(h->routes);
    h->routes = NULL;
    h->nroutes = 0;
}

/* Split the raw URI into the path's decoded segments and the query pairs.
 * Returns false on malformed percent-escapes. */
bool crm_http__parse_uri(crm_req *req, char ***segs_out, int *nsegs_out)
{
    const char *path = req->raw_path;
    char **segs = crm_req_alloc(req, sizeof *segs * (MAX_SEGS + 1));
    int n = 0;
    const char *p;
    size_t plen = strlen(path);

    /* One trailing slash is forgiven: "/api/v1/users/" is "/api/v1/users". */
    if (plen > 1 && path[plen - 1] == '/') plen--;
    p = path + 1;
    while (p < path + plen) {
        const char *end = memchr(p, '/', (size_t)(path + plen - p));
        size_t len = end ? (size_t)(end - p) : (size_t)(path + plen - p);
        if (n >= MAX_SEGS) {
            n = MAX_SEGS + 1; /* matches nothing */
            break;
        }
        if (!(segs[n++] = pct_decode(req, p, len, false))) return false;
        if (!end) break;
        p = end + 1;
        if (p == path + plen) {
            if (n < MAX_SEGS) segs[n++] = crm_req_strdup(req, "");
            break;
        }
    }
    *segs_out = segs;
    *nsegs_out = n > MAX_SEGS ? -1 : n;

    if (req->raw_query && *req->raw_query) {
        const char *q = req->raw_query;
        int cap = 1;
        for (const char *c = q; *c; c++)
            if (*c == '&') cap++;
        req->query = crm_req_alloc(req, sizeof *req->query * (size_t)cap);
        while (*q) {
            const char *amp = strchr(q, '&');
            size_t len = amp ? (size_t)(amp - q) : strlen(q);
            const char *eq = memchr(q, '=', len);
            if (len) {
                kv *pair = &req->query[req->nquery];
                size_t klen = eq ? (size_t)(eq - q) : len;
                pair->key = pct_decode(req, q, klen, true);
                pair->value = eq ? pct_decode(req, eq + 1, len - klen - 1, true) : "";
                if (!pair->key || !pair->value) return false;
                req->nquery++;
            }
            if (!amp) break;
            q = amp + 1;
        }
    }
    return true;
}

static handler *route_handler(route *r, const char *m)
{
    for (int i = 0; i < r->nhandlers; i++)
        if (strcmp(r->handlers[i]->method, m) == 0) return r->handlers[i];
    if (strcmp(m, "HEAD") == 0) return route_handler(r, "GET");
    return NULL;
}

/*
 * The most exact route that matches the path and has the method; when none
 * has the method, 405 with the methods of the most exact match. So
 * "DELETE /items/special" reaches "/items/{id}" when "/items/special" only
 * has GET.
 */
void crm_http__route_lookup(crm_req *req, char **segs, int n)
{
    crm_http *h = req->h;
    route *best = NULL, *best_any = NULL;
    handler *hd = NULL;
    const char *m = req->method;

    if (n >= 0)
        for (int i = 0; i < h->nroutes; i++) {
            route *r = h->routes[i];
            handler *rh;
            if (!route_matches(r, segs, n)) continue;
            if (!best_any || route_better(r, best_any)) best_any = r;
            if ((rh = route_handler(r, m)) && (!best || route_better(r, best))) {
                best = r;
                hd = rh;
            }
        }
    if (!best_any) {
        req->early_status = 404;
        req->early_code = "not_found";
        req->early_message = crm_req_strdup(req, "no such endpoint");
        return;
    }
    if (!best) {
        crm_buf allow = CRM_BUF_INIT;
        bool has_get = false;
        req->route = best_any;
        for (int i = 0; i < best_any->nhandlers; i++) {
            if (allow.len) crm_buf_puts(&allow, ", ");
            crm_buf_puts(&allow, best_any->handlers[i]->method);
            if (strcmp(best_any->handlers[i]->method, "GET") == 0) has_get = true;
        }
        if (has_get) crm_buf_puts(&allow, ", HEAD");
        crm_req_set_header(req, "Allow", crm_buf_str(&allow));
        crm_buf_free(&allow);
        req->early_status = 405;
        req->early_code = "method_not_allowed";
        req->early_message = crm_req_strdup(req, "method not allowed for this endpoint");
        return;
    }
    req->route = best;
    req->handler = hd;
    /* Parameters: decoded segment values; {rest*} joins what is left. */
    for (int i = 0; i < best->nseg; i++) {
        seg *s = &best->segs[i];
        if (s->kind == SEG_PARAM) {
            req->param_names[req->nparams] = s->text;
            req->param_values[req->nparams++] = segs[i];
        } else if (s->kind == SEG_REST) {
            crm_buf rest = CRM_BUF_INIT;
            for (int j = i; j < n; j++) {
                if (j > i) crm_buf_putc(&rest, '/');
                crm_buf_puts(&rest, segs[j]);
            }
            req->param_names[req->nparams] = s->text;
            req->param_values[req->nparams++] = crm_req_strdup(req, crm_buf_str(&rest));
            crm_buf_free(&rest);
        }
    }
}
