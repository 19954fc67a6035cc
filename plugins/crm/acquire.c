/*
 * acquire.c — winning leads: web-form capture, lead conversion, recycling.
 *
 *   POST /api/v1/x/crm/forms/{form}        public: a web form's submission → a lead
 *   POST /api/v1/x/crm/leads/{id}/convert  lead → contact + company + deal, atomically
 *
 * A submission is an HTML form post (application/x-www-form-urlencoded) or JSON. The
 * kernel refuses public writes that a browser marks cross-site (Origin or
 * Sec-Fetch-Site: the login-CSRF guard), so a form page must be served from crm's own
 * origin, or post through the site's server, until the kernel lets a route opt out.
 *
 * Scoring and nurturing are Lua rules the site can edit or disable
 * (scripts/lead_scoring.lua, scripts/nurture.lua); recycling stale leads is a
 * C schedule here. Settings (plugins.conf, [crm]):
 *
 *   forms.<form>.secret   the form's shared secret (X-Form-Secret header or "secret"
 *                         field); a form without one does not exist (404)
 *   forms.<form>.owner    user id owning the form's leads (default: the system)
 *   forms.<form>.campaign crm.campaign id the form's leads come from
 *   forms.rate_limit      submissions per minute per client and form (default 10)
 *   forms.trust_proxy     the reverse proxies in front of crm: "no" (the default: the client
 *                         is the connection's address, X-Forwarded-For is ignored), a list
 *                         of their addresses ("127.0.0.1, ::1"), or "yes" (every peer is a
 *                         proxy: only when nothing else can reach the port). When the peer
 *                         is a proxy, the client is the right-most X-Forwarded-For address
 *                         that is not a proxy: the left part of the header is whatever the
 *                         client sent, so it never decides the client (a forged header would
 *                         buy a fresh rate-limit budget per request). The proxy must send
 *                         one X-Forwarded-For line (nginx's $proxy_add_x_forwarded_for):
 *                         host->req_header gives a request's first line only.
 *   leads.recycle_days    nurturing / disqualified leads untouched this long are
 *                         recycled (default 90)
 */
#include "crm_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Rate limiting: a fixed one-minute window per (form, client), in memory ---- */

#define BUCKETS 4096
#define PROXIES_MAX 16
#define IP_MAX 64 /* an IPv6 text form is at most 45 characters */

static struct bucket {
    char key[128];
    int64_t window; /* minute since the epoch */
    int count;
} buckets[BUCKETS];
static pthread_mutex_t buckets_lock = PTHREAD_MUTEX_INITIALIZER;
static long rate_limit = 10;
/* forms.trust_proxy: read-only after init */
static int trust_any_proxy;
static char proxies[PROXIES_MAX][IP_MAX];
static int n_proxies;

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

/* Whether one more submission fits; counts it when it does. The platform's clock, so a
 * test's frozen clock keeps every submission in one window. */
static int rate_allow(const char *form, const char *client)
{
    char key[128];
    int64_t now = crmp_host->now() / 60;
    int allowed = 0;
    snprintf(key, sizeof key, "%s|%s", form, client);
    pthread_mutex_lock(&buckets_lock);
    uint64_t h = hash(key);
    /* probe a few slots: ours, else an expired one to reuse, else the oldest */
    struct bucket *slot = NULL, *oldest = NULL;
    for (int i = 0; i < 8 && !slot; i++) {
        struct bucket *b = &buckets[(h + (uint64_t)i) % BUCKETS];
        if (strcmp(b->key, key) == 0) slot = b;
        else if (!oldest || b->window < oldest->window) oldest = b;
    }
    if (!slot) {
        slot = oldest;
        snprintf(slot->key, sizeof slot->key, "%s", key);
        slot->window = now;
        slot->count = 0;
    }
    if (slot->window != now) {
        slot->window = now;
        slot->count = 0;
    }
    if (slot->count < rate_limit) {
        slot->count++;
        allowed = 1;
    }
    pthread_mutex_unlock(&buckets_lock);
    return allowed;
}

static int is_proxy(const char *ip)
{
    if (trust_any_proxy) return 1;
    for (int i = 0; i < n_proxies; i++)
        if (strcmp(proxies[i], ip) == 0) return 1;
    return 0;
}

/* forms.trust_proxy: no (default), yes, or a list of addresses. */
static int parse_trust_proxy(const char *text)
{
    if (!text || strcmp(text, "no") == 0) return CRM_OK;
    if (strcmp(text, "yes") == 0) {
        trust_any_proxy = 1;
        return CRM_OK;
    }
    char copy[PROXIES_MAX * IP_MAX];
    snprintf(copy, sizeof copy, "%s", text);
    for (char *save = NULL, *tok = strtok_r(copy, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
        if (n_proxies == PROXIES_MAX || strlen(tok) >= IP_MAX ||
            strspn(tok, "0123456789abcdefABCDEF.:") != strlen(tok))
            return crmp_host->error_set(CRM_EINVALID, "forms.trust_proxy",
                                        "forms.trust_proxy is no, yes or up to %d proxy "
                                        "addresses (\"127.0.0.1, ::1\"); \"%s\" is not one",
                                        PROXIES_MAX, tok);
        snprintf(proxies[n_proxies++], IP_MAX, "%s", tok);
    }
    return CRM_OK;
}

/*
 * The client a submission counts against: the connection's address, unless that is a
 * trusted proxy; then the right-most X-Forwarded-For entry that is not a proxy (each
 * proxy appends the address it saw, so that is the last one a proxy of ours vouches for).
 */
static void client_address(crm_req *req, char out[IP_MAX])
{
    const char *peer = crmp_host->req_ip(req);
    const char *forwarded = crmp_host->req_header(req, "X-Forwarded-For");
    snprintf(out, IP_MAX, "%s", peer && *peer ? peer : "unknown");
    if (!is_proxy(out) || !forwarded) return;
    const char *end = forwarded + strlen(forwarded);
    while (end > forwarded) {
        const char *start = end;
        while (start > forwarded && start[-1] != ',') start--;
        const char *a = start, *b = end;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        end = start > forwarded ? start - 1 : forwarded;
        if (b == a) continue;
        snprintf(out, IP_MAX, "%.*s", (int)(b - a < IP_MAX - 1 ? b - a : IP_MAX - 1), a);
        if (!is_proxy(out)) return;
    }
}

/* ---- POST /forms/{form} ---- */

static const char *form_setting(const char *form, const char *key)
{
    char name[160];
    snprintf(name, sizeof name, "forms.%s.%s", form, key);
    return crmp_host->setting(crmp_self, name);
}

/* Equal without leaking where they differ. */
static int secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la; i++) diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0;
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decode s[0..n) ('+' is a space) into a new string; NULL when malformed or when
 * it would hold a NUL byte (%00 would cut the value short). */
static char *url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] != '%') {
            *o++ = s[i];
        } else if (i + 2 < n && (hi = hex_value(s[i + 1])) >= 0 &&
                   (lo = hex_value(s[i + 2])) >= 0 && (hi | lo)) {
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            free(out);
            return NULL;
        }
    }
    *o = '\0';
    return out;
}

/*
 * An application/x-www-form-urlencoded body (what an HTML <form method="post"> sends) as
 * a JSON object of strings. A field given twice, bad %-escapes or text that is not UTF-8
 * are refused naming the field (a NUL byte too: it would cut the value short).
 */
static int parse_urlencoded(const char *body, size_t len, json_t **out)
{
    json_t *fields = json_object();
    size_t i = 0;
    *out = NULL;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&') end++;
        size_t eq = i;
        while (eq < end && body[eq] != '=') eq++;
        if (end > i) {
            char *key = url_decode(body + i, eq - i);
            char *value = eq < end ? url_decode(body + eq + 1, end - eq - 1) : strdup("");
            json_t *v = NULL;
            int rc = CRM_OK;
            if (!key || !value || memchr(body + i, '\0', end - i))
                rc = crmp_host->error_set(CRM_EINVALID, key ? key : "body",
                                          "the form body is not valid "
                                          "application/x-www-form-urlencoded");
            else if (!*key)
                rc = crmp_host->error_set(CRM_EINVALID, "body", "a form field without a name");
            else if (json_object_get(fields, key))
                rc = crmp_host->error_set(CRM_EINVALID, key, "the form field \"%s\" is given twice",
                                          key);
            else if (!(v = json_string(value)))
                rc = crmp_host->error_set(CRM_EINVALID, key, "%s is not UTF-8 text", key);
            else
                json_object_set_new(fields, key, v);
            free(key);
            free(value);
            if (rc != CRM_OK) {
                json_decref(fields);
                return rc;
            }
        }
        i = end + 1;
    }
    *out = fields;
    return CRM_OK;
}

/* Whether the Content-Type header names `type` (parameters such as charset allowed). */
static int content_type_is(const char *header, const char *type)
{
    size_t n = strlen(type);
    return header && strncasecmp(header, type, n) == 0 &&
           (header[n] == '\0' || header[n] == ';' || header[n] == ' ');
}

/*
 * The submission as a JSON object: a JSON body (Content-Type application/json), or an
 * HTML form's (application/x-www-form-urlencoded). *fields is a new reference; a reply
 * already set (415) leaves it NULL and returns CRM_OK.
 */
static int form_body(crm_req *req, json_t **fields)
{
    size_t len = 0;
    const char *body = crmp_host->req_body(req, &len);
    const char *type = crmp_host->req_header(req, "Content-Type");
    *fields = NULL;
    if (content_type_is(type, "application/x-www-form-urlencoded"))
        return parse_urlencoded(body, len, fields);
    if (content_type_is(type, "application/json") || (!type && len == 0)) {
        json_error_t jerr;
        json_t *json = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : json_object();
        if (!json)
            return crmp_host->error_set(CRM_EINVALID, "body", "invalid JSON at line %d, column %d: %s",
                                        jerr.line, jerr.column, jerr.text);
        if (!json_is_object(json)) {
            json_decref(json);
            return crmp_host->error_set(CRM_EINVALID, "body",
                                        "send the form's fields as a JSON object");
        }
        *fields = json;
        return CRM_OK;
    }
    return crmp_host->reply_error(req, 415, "unsupported_media_type", NULL,
                                  "send the form as application/x-www-form-urlencoded (an HTML "
                                  "form) or application/json");
}

/* The form's fields and the lead field each fills; anything else is refused. */
static const struct {
    const char *form, *lead;
} form_fields[] = {
    {"first_name", "first_name"}, {"last_name", "last_name"},  {"email", "email"},
    {"phone", "phone"},           {"company", "company_name"}, {"company_name", "company_name"},
    {"job_title", "job_title"},   {"website", "website"},      {"country", "country"},
    {"message", "message"},       {"consent_email", "consent_email"},
};

static int form_route(crm_req *req, void *udata)
{
    (void)udata;
    int rc;
    const char *form = crmp_host->req_param(req, "form");
    const char *secret = form ? form_setting(form, "secret") : NULL;
    json_t *body = NULL, *lead = NULL, *stored = NULL;
    char client[IP_MAX];
    if (!secret || !*secret)
        return crmp_host->error_set(CRM_ENOTFOUND, "form", "no web form \"%s\"", form ? form : "");

    /* throttle before anything else costs us: per form and client address */
    client_address(req, client);
    if (!rate_allow(form, client))
        return crmp_host->reply_error(req, 429, "throttled", NULL,
                                      "too many submissions of this form; try again in a minute");

    if ((rc = form_body(req, &body)) != CRM_OK || !body) return rc; /* !body: 415 replied */
    const char *given = crmp_host->req_header(req, "X-Form-Secret");
    if (!given) given = json_string_value(json_object_get(body, "secret"));
    if (!given || !secret_equal(given, secret)) {
        rc = crmp_host->error_set(CRM_EDENIED, "secret", "wrong or missing form secret");
        goto done;
    }

    lead = json_pack("{s:s,s:s,s:s}", "source", "web_form", "form", form, "status", "new");
    const char *key;
    json_t *value;
    json_object_foreach(body, key, value) {
        size_t i, n = sizeof form_fields / sizeof form_fields[0];
        if (strcmp(key, "secret") == 0) continue;
        for (i = 0; i < n && strcmp(form_fields[i].form, key) != 0; i++) {}
        if (i == n) {
            rc = crmp_host->error_set(CRM_EINVALID, key, "unknown form field \"%s\"", key);
            goto done;
        }
        if (strcmp(key, "consent_email") == 0 && json_is_string(value)) { /* HTML checkboxes */
            const char *v = json_string_value(value);
            value = json_boolean(strcmp(v, "on") == 0 || strcmp(v, "yes") == 0 ||
                                 strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
            json_object_set_new(lead, form_fields[i].lead, value);
        } else if (!json_is_string(value) && !json_is_boolean(value)) {
            rc = crmp_host->error_set(CRM_EINVALID, key, "%s must be text", key);
            goto done;
        } else if (!json_is_string(value) || *json_string_value(value)) { /* "" = not given */
            json_object_set(lead, form_fields[i].lead, value);
        }
    }
    if (!json_object_get(lead, "email") && !json_object_get(lead, "phone")) {
        rc = crmp_host->error_set(CRM_EINVALID, "email", "an email or a phone number is required");
        goto done;
    }
    const char *owner = form_setting(form, "owner"), *campaign = form_setting(form, "campaign");
    if (owner) json_object_set_new(lead, "owner", json_integer(atoll(owner)));
    if (campaign) json_object_set_new(lead, "campaign", json_integer(atoll(campaign)));
    /* a public route acts as the system; the record layer validates every field (400 naming
       it) and the scoring rules run on the write */
    if ((rc = crmp_host->record_create(crmp_host->req_ctx(req), "crm.lead", lead, &stored)) != CRM_OK)
        goto done;
    rc = crmp_host->reply_json(req, 201, json_pack("{s:O,s:s}", "id", json_object_get(stored, "id"),
                                                   "status", "received"));
done:
    json_decref(body);
    json_decref(lead);
    json_decref(stored);
    return rc;
}

/* ---- POST /leads/{id}/convert ----
 *
 * Body (all optional): {"company": id | {fields}, "contact": {fields}, "deal": {fields} | false}.
 * The route checks the input's shape, then convert() does the writes inside host->tx
 * with the caller's context: the conversion is atomic (if any write fails, none stays)
 * and every write is checked against the caller's permissions. What it made shows in
 * the records' own events (crm.lead.updated with status "converted", *.created).
 */

/* Re-set the current error with its field prefixed ("deal.amount"). */
static int prefixed_error(int rc, const char *part)
{
    const crm_error *e = crmp_host->error_last();
    char field[96], message[512];
    snprintf(field, sizeof field, "%s%s%s", part, e->field ? "." : "", e->field ? e->field : "");
    snprintf(message, sizeof message, "%s: %s", part, e->message);
    return crmp_host->error_set(rc, field, "%s", message);
}

static void copy_field(json_t *to, const char *to_key, json_t *from, const char *from_key)
{
    json_t *v = json_object_get(from, from_key);
    if (v && !json_is_null(v)) json_object_set(to, to_key, v);
}

/* In host->tx: `arg` is the route's body with "lead": id added. */
static int convert(crm_ctx *ctx, void *arg)
{
    int rc;
    json_t *payload = arg;
    int64_t lead_id = json_integer_value(json_object_get(payload, "lead"));
    json_t *lead = NULL, *company = NULL, *contact = NULL, *deal = NULL, *fields = NULL;
    json_t *company_in = json_object_get(payload, "company");
    json_t *deal_in = json_object_get(payload, "deal");
    char now[21];
    crm_util_datetime(crmp_host->now(), now);

    if ((rc = crmp_host->record_get(ctx, "crm.lead", lead_id, &lead)) != CRM_OK) goto done;
    const char *status = json_string_value(json_object_get(lead, "status"));
    if (status && strcmp(status, "converted") == 0) {
        rc = crmp_host->error_set(CRM_ECONFLICT, "id", "lead %lld is already converted",
                                  (long long)lead_id);
        goto done;
    }
    /* 1. the company: an existing one, or a new one from the lead's company name */
    if (json_is_integer(company_in)) {
        if ((rc = crmp_host->record_get(ctx, "crm.company", json_integer_value(company_in),
                                        &company)) != CRM_OK) {
            rc = prefixed_error(rc, "company");
            goto done;
        }
    } else if (json_is_object(company_in) || json_is_string(json_object_get(lead, "company_name"))) {
        fields = json_object();
        copy_field(fields, "name", lead, "company_name");
        copy_field(fields, "website", lead, "website");
        copy_field(fields, "country", lead, "country");
        if (json_is_object(company_in)) json_object_update(fields, company_in);
        rc = crmp_host->record_create(ctx, "crm.company", fields, &company);
        json_decref(fields);
        fields = NULL;
        if (rc != CRM_OK) {
            rc = prefixed_error(rc, "company");
            goto done;
        }
    }
    /* 2. the contact */
    fields = json_object();
    copy_field(fields, "first_name", lead, "first_name");
    if (!json_object_get(fields, "first_name")) copy_field(fields, "first_name", lead, "last_name");
    else copy_field(fields, "last_name", lead, "last_name");
    static const char *const same[] = {"email", "phone", "job_title", "country", "consent_email"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) copy_field(fields, same[i], lead, same[i]);
    if (company) copy_field(fields, "company", company, "id");
    json_object_set_new(fields, "lead", json_integer(lead_id));
    if (json_is_object(json_object_get(payload, "contact")))
        json_object_update(fields, json_object_get(payload, "contact"));
    if (!json_object_get(fields, "first_name") && json_is_string(json_object_get(lead, "email")))
        json_object_set(fields, "first_name", json_object_get(lead, "email"));
    rc = crmp_host->record_create(ctx, "crm.contact", fields, &contact);
    json_decref(fields);
    fields = NULL;
    if (rc != CRM_OK) {
        rc = prefixed_error(rc, "contact");
        goto done;
    }
    /* 3. the deal, unless "deal": false */
    if (!json_is_false(deal_in)) {
        const char *who = json_string_value(json_object_get(company ? company : contact,
                                                            company ? "name" : "first_name"));
        fields = json_object();
        json_object_set_new(fields, "name", json_sprintf("%s", who ? who : "New deal"));
        copy_field(fields, "company", company, "id");
        copy_field(fields, "contact", contact, "id");
        json_object_set_new(fields, "lead", json_integer(lead_id));
        if (json_is_object(deal_in)) json_object_update(fields, deal_in);
        rc = crmp_host->record_create(ctx, "crm.deal", fields, &deal);
        json_decref(fields);
        fields = NULL;
        if (rc != CRM_OK) {
            rc = prefixed_error(rc, "deal");
            goto done;
        }
    }
    /* 4. the lead remembers what it became */
    fields = json_pack("{s:s,s:s,s:O}", "status", "converted", "converted_at", now,
                       "converted_contact", json_object_get(contact, "id"));
    if (company) copy_field(fields, "converted_company", company, "id");
    if (deal) copy_field(fields, "converted_deal", deal, "id");
    rc = crmp_host->record_update(ctx, "crm.lead", lead_id, fields, NULL);
done:
    json_decref(fields);
    json_decref(lead);
    json_decref(company);
    json_decref(contact);
    json_decref(deal);
    return rc;
}

static int convert_route(crm_req *req, void *udata)
{
    (void)udata;
    int rc;
    crm_ctx *ctx = crmp_host->req_ctx(req);
    const char *id_text = crmp_host->req_param(req, "id");
    char *end;
    long long id = id_text ? strtoll(id_text, &end, 10) : 0;
    json_t *body = crmp_host->req_json(req), *payload = NULL, *lead = NULL, *answer = NULL;
    if (!id_text || end == id_text || *end || id <= 0)
        return crmp_host->error_set(CRM_EINVALID, "id", "id must be a positive whole number");
    if (body && !json_is_object(body))
        return crmp_host->error_set(CRM_EINVALID, "body", "the body is a JSON object");
    const char *key;
    json_t *value;
    json_object_foreach(body, key, value) {
        int ok = strcmp(key, "company") == 0 ? json_is_object(value) || json_is_integer(value)
                 : strcmp(key, "contact") == 0 ? json_is_object(value)
                 : strcmp(key, "deal") == 0    ? json_is_object(value) || json_is_false(value)
                                               : -1;
        if (ok < 0)
            return crmp_host->error_set(CRM_EINVALID, key,
                                        "unknown key \"%s\" (company, contact, deal)", key);
        if (!ok)
            return crmp_host->error_set(CRM_EINVALID, key,
                                        strcmp(key, "company") == 0
                                            ? "company is an id or an object of fields"
                                        : strcmp(key, "deal") == 0
                                            ? "deal is an object of fields, or false for none"
                                            : "contact is an object of fields");
    }
    payload = body ? json_deep_copy(body) : json_object();
    json_object_set_new(payload, "lead", json_integer(id));
    if ((rc = crmp_host->tx(ctx, convert, payload)) != CRM_OK) goto done;

    /* committed: answer with what the lead became */
    if ((rc = crmp_host->record_get(ctx, "crm.lead", id, &lead)) != CRM_OK) goto done;
    answer = json_pack("{s:O}", "lead", lead);
    static const struct {
        const char *field, *type, *key;
    } made[] = {{"converted_contact", "crm.contact", "contact"},
                {"converted_company", "crm.company", "company"},
                {"converted_deal", "crm.deal", "deal"}};
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) {
        json_t *record = NULL;
        json_int_t ref = json_integer_value(json_object_get(lead, made[i].field));
        if (ref && crmp_host->record_get(ctx, made[i].type, ref, &record) == CRM_OK)
            json_object_set_new(answer, made[i].key, record);
        else
            json_object_set_new(answer, made[i].key, json_null());
    }
    rc = crmp_host->reply_json(req, 200, answer);
    answer = NULL;
done:
    json_decref(payload);
    json_decref(lead);
    json_decref(answer);
    return rc;
}

/* ---- Every night: recycle leads left nurturing or disqualified for too long ---- */

struct recycle {
    crm_ctx *ctx;
    int count;
};

static int recycle_lead(json_t *lead, void *arg)
{
    struct recycle *r = arg;
    json_t *patch = json_pack("{s:s,s:i}", "status", "recycled", "nurture_step", 0);
    int rc = crmp_host->record_update(r->ctx, "crm.lead",
                                      json_integer_value(json_object_get(lead, "id")), patch, NULL);
    json_decref(patch);
    if (rc == CRM_OK) r->count++;
    return rc;
}

static int recycle(crm_ctx *ctx, const crm_firing *firing, void *udata)
{
    (void)udata;
    const char *days_text = crmp_host->setting(crmp_self, "leads.recycle_days");
    long days = days_text ? atol(days_text) : 90;
    if (days <= 0) return CRM_OK; /* switched off */
    char before[21];
    crm_util_datetime(crmp_host->firing_due(firing) - days * 86400, before);
    struct recycle r = {ctx, 0};
    json_t *query = json_pack("{s:s,s:s}", "status__in", "nurturing,disqualified",
                              "updated_at__lt", before);
    int rc = crmp_each(ctx, "crm.lead", query, recycle_lead, &r);
    json_decref(query);
    if (rc == CRM_OK && r.count)
        crmp_host->log(crmp_self, CRM_INFO, "recycled %d leads untouched since %s", r.count, before);
    return rc;
}

int crmp_acquire_init(void)
{
    int rc;
    const char *limit = crmp_host->setting(crmp_self, "forms.rate_limit");
    if (limit) {
        char *end;
        rate_limit = strtol(limit, &end, 10);
        if (end == limit || *end || rate_limit < 1 || rate_limit > 100000)
            return crmp_host->error_set(CRM_EINVALID, "forms.rate_limit",
                                        "forms.rate_limit is submissions per minute, 1 to 100000");
    }
    if ((rc = parse_trust_proxy(crmp_host->setting(crmp_self, "forms.trust_proxy"))) != CRM_OK ||
        /* raw: an HTML form's body is not JSON; form_body reads either. Cross-site: the
           form lives on the business's own website and posts here. */
        (rc = crmp_host->route(crmp_self, "POST", "/forms/{form}",
                               CRM_PUBLIC | CRM_RAW_BODY | CRM_CROSS_SITE, form_route,
                               NULL)) != CRM_OK ||
        (rc = crmp_host->route(crmp_self, "POST", "/leads/{id}/convert", 0, convert_route,
                               NULL)) != CRM_OK ||
        (rc = crmp_host->schedule_cron(crmp_self, "recycle", "30 2 * * *", recycle, NULL)) != CRM_OK)
        return rc;
    return CRM_OK;
}
