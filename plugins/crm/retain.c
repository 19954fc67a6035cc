/*
 * retain.c — retain and expand: campaigns to segments, e-mail templates rendered safely,
 * the mail outbox delivered over SMTP, and upsell / cross-sell suggestions.
 *
 * Build: this file links libcurl, and plugin.mk links with -z defs, so the plugin's
 * Makefile names it in PLUGIN_LIBS (libcurl must be installed where crm runs).
 *
 * Templates. A crm.email_template has a subject, a body and a format (text | html).
 * Placeholders are {{root.field}} with root one of contact, company, campaign, lead,
 * record, data and field a name of [a-z0-9_]; spaces inside the braces are allowed. That
 * is the whole language: no expressions, no filters, no loops, nothing evaluated — a
 * value is looked up and copied, never re-scanned, so a contact named "{{x}}" stays that
 * text. A malformed placeholder or an unknown root is an error (400 naming the field when
 * a template is saved); a field that is absent or null renders as "". In an html template
 * every value is HTML-escaped; the subject is a header, so control characters in values
 * become spaces. The output is bounded (the message's field sizes).
 *
 * Campaigns. POST /api/v1/x/crm/campaigns/{id}/send resolves the campaign's segment (a
 * saved filter: list parameters for crm.contact or crm.lead) with record_find under the
 * caller's permissions and queues one crm.message per recipient who consented to e-mail
 * (consent_email, preferred_channel not "none", an address), then marks the campaign done
 * with its sent_count. All of it runs in host->tx: a failure half-way queues nothing.
 *
 * Delivery. An async handler on crm.message.* (the bus's durable outbox: at least once,
 * outside any transaction) sends each queued message with libcurl and records status
 * (sent | failed), error, attempts and sent_at (the platform's clock) on it. A failed
 * attempt sets next_attempt_at 5 min × 3^(attempts-1) later (at most 6 h); a schedule
 * (mail_retry, every minute) queues it again then, until mail.max_attempts (default 5):
 * after the last one next_attempt_at stays empty and the error says it gave up. Setting
 * a failed message's status back to queued sends it at once. A message already sent is
 * not sent again when the bus redelivers; a crash between the SMTP answer and the status
 * update sends it twice (at least once). Mail queued by rules (crm.mail.queue →
 * core.mail.queued) becomes a crm.message the same way.
 *
 * SMTP settings (plugins.conf, [crm]):
 *   mail.smtp_url       smtp://host:587 (STARTTLS per mail.smtp_tls) or smtps://host:465
 *                       (TLS from the first byte); required
 *   mail.from           "CRM <crm@example.com>"; required
 *   mail.smtp_user, mail.smtp_password   SMTP AUTH credentials (the mechanism is the
 *                       strongest libcurl and the server share); unset: no AUTH
 *   mail.smtp_tls       required (STARTTLS or fail) | try (STARTTLS when offered) | unset
 *                       (plain on smtp://). Certificates are verified against the system's
 *                       CA store (libcurl's default). The tests cover plain SMTP on
 *                       loopback only: TLS and AUTH are libcurl's, untested here.
 *   mail.max_attempts   sends of one message before giving up (1 to 20, default 5)
 *
 * Suggestions. GET /api/v1/x/crm/suggestions/{contact_id}: products bought (won deals'
 * lines) by customers whose purchases overlap this one's, weighted by the Jaccard
 * similarity of the two sets, minus what the contact already bought; with no history,
 * the most bought products. Only deals the caller may read count.
 */
#include "crm_int.h"

#include <curl/curl.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define H crmp_host

#define SUBJECT_MAX 500     /* crm.message.subject's max_length */
#define BODY_MAX 200000     /* crm.message.body's max_length (characters; bytes bound it) */
#define RECIPIENTS_MAX 100000
#define DEALS_MAX 100000
#define SMTP_CONNECT_TIMEOUT 15L
#define SMTP_TIMEOUT 60L

/* ======================================================================= */
/* ---- Templates --------------------------------------------------------- */
/* ======================================================================= */

/* A growing string. */
struct buf {
    char *s;
    size_t len, cap;
    size_t max; /* bytes; appending past it fails */
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n > b->max) return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) return -1;
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

static int buf_str(struct buf *b, const char *s) { return buf_add(b, s, strlen(s)); }

static const char *const template_roots[] = {"contact", "company", "campaign", "lead",
                                             "record", "data"};

static bool root_known(const char *root, size_t n)
{
    for (size_t i = 0; i < sizeof template_roots / sizeof template_roots[0]; i++)
        if (strlen(template_roots[i]) == n && memcmp(template_roots[i], root, n) == 0) return true;
    return false;
}

static size_t name_span(const char *p)
{
    size_t n = 0;
    while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= '0' && p[n] <= '9') || p[n] == '_')
        n++;
    return n;
}

enum render_mode { RENDER_TEXT, RENDER_HTML, RENDER_HEADER };

/* Append one value as text: strings as they are, numbers and booleans written out. */
static int add_value(struct buf *out, json_t *v, enum render_mode mode)
{
    char num[64];
    const char *s = "";
    if (json_is_string(v))
        s = json_string_value(v);
    else if (json_is_integer(v))
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v)), s = num;
    else if (json_is_real(v))
        snprintf(num, sizeof num, "%.15g", json_real_value(v)), s = num;
    else if (json_is_boolean(v))
        s = json_is_true(v) ? "yes" : "no";
    /* null, objects and arrays: nothing */
    for (; *s; s++) {
        const char *rep = NULL;
        char c = *s;
        if (mode == RENDER_HTML) {
            switch (c) {
            case '&': rep = "&amp;"; break;
            case '<': rep = "&lt;"; break;
            case '>': rep = "&gt;"; break;
            case '"': rep = "&quot;"; break;
            case '\'': rep = "&#39;"; break;
            default: break;
            }
        } else if (mode == RENDER_HEADER && ((unsigned char)c < 0x20 || c == 0x7f)) {
            rep = " ";
        }
        if (rep ? buf_str(out, rep) : buf_add(out, &c, 1)) return -1;
    }
    return 0;
}

/*
 * Render `tmpl` with `scope` ({"contact": {...}, ...}) into *out (malloc'd), at most `max`
 * bytes. scope NULL only checks the template. Errors name `field`: CRM_EINVALID for a
 * malformed placeholder or an unknown root, CRM_ELIMIT for an output past `max`.
 */
static int render(const char *tmpl, json_t *scope, enum render_mode mode, size_t max,
                  const char *field, char **out)
{
    struct buf b = {.max = max};
    const char *p = tmpl ? tmpl : "";
    int rc = CRM_OK;
    if (out) *out = NULL;
    if (buf_add(&b, "", 0)) goto too_long;
    while (*p) {
        const char *open = strstr(p, "{{");
        if (!open) {
            if (buf_str(&b, p)) goto too_long;
            break;
        }
        if (buf_add(&b, p, (size_t)(open - p))) goto too_long;
        const char *q = open + 2;
        while (*q == ' ')
            q++;
        size_t root_len = name_span(q);
        const char *root = q;
        q += root_len;
        size_t field_len = 0;
        const char *name = NULL;
        if (*q == '.') {
            name = ++q;
            field_len = name_span(q);
            q += field_len;
        }
        while (*q == ' ')
            q++;
        if (!root_len || !name || !field_len || field_len > 64 || q[0] != '}' || q[1] != '}') {
            rc = H->error_set(CRM_EINVALID, field,
                              "%s: malformed placeholder at character %ld: write {{contact.first_name}}"
                              " (a root and a field of a-z, 0-9, _; nothing else)",
                              field, (long)(open - tmpl) + 1);
            goto done;
        }
        if (!root_known(root, root_len)) {
            rc = H->error_set(CRM_EINVALID, field,
                              "%s: unknown placeholder root \"%.*s\" at character %ld: use contact, "
                              "company, campaign, lead, record or data",
                              field, (int)root_len, root, (long)(open - tmpl) + 1);
            goto done;
        }
        if (scope) {
            char key[65], fname[65];
            snprintf(key, sizeof key, "%.*s", (int)root_len, root);
            snprintf(fname, sizeof fname, "%.*s", (int)field_len, name);
            if (add_value(&b, json_object_get(json_object_get(scope, key), fname), mode))
                goto too_long;
        }
        p = q + 2;
    }
    if (out) {
        *out = b.s;
        b.s = NULL;
    }
    goto done;
too_long:
    rc = H->error_set(CRM_ELIMIT, field, "%s: the rendered text is longer than %zu bytes", field,
                      max);
done:
    free(b.s);
    return rc;
}

static bool is_html(json_t *tmpl)
{
    const char *f = json_string_value(json_object_get(tmpl, "format"));
    return f && strcmp(f, "html") == 0;
}

/* Render a template's subject and body for one scope; *subject and *body are malloc'd. */
static int render_template(json_t *tmpl, json_t *scope, char **subject, char **body)
{
    int rc;
    *subject = *body = NULL;
    if ((rc = render(json_string_value(json_object_get(tmpl, "subject")), scope, RENDER_HEADER,
                     SUBJECT_MAX * 4, "subject", subject)) != CRM_OK)
        return rc;
    rc = render(json_string_value(json_object_get(tmpl, "body")), scope,
                is_html(tmpl) ? RENDER_HTML : RENDER_TEXT, BODY_MAX, "body", body);
    if (rc != CRM_OK) {
        free(*subject);
        *subject = NULL;
    }
    return rc;
}

/* Whether a template's placeholders are well-formed: CRM_EINVALID naming the field. */
static int template_check(json_t *tmpl)
{
    int rc = render(json_string_value(json_object_get(tmpl, "subject")), NULL, RENDER_HEADER,
                    SUBJECT_MAX * 4, "subject", NULL);
    if (rc == CRM_OK)
        rc = render(json_string_value(json_object_get(tmpl, "body")), NULL, RENDER_TEXT, BODY_MAX,
                    "body", NULL);
    return rc;
}

/* Before a template is written: its placeholders must be well-formed (400 naming the field). */
static int template_before(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)ctx;
    (void)udata;
    return template_check(H->event_record(ev));
}

/* The scope of a recipient: the record as "contact" (or "lead"), its company, the campaign. */
static json_t *recipient_scope(crm_ctx *ctx, const char *type, json_t *recipient,
                               json_t *campaign)
{
    json_t *scope = json_object();
    json_object_set(scope, "contact", recipient);
    json_object_set(scope, "record", recipient);
    if (type && strcmp(type, "crm.lead") == 0) json_object_set(scope, "lead", recipient);
    int64_t company_id;
    json_t *company = NULL;
    if (crmp_json_id(json_object_get(recipient, "company"), &company_id) &&
        H->record_get(ctx, "crm.company", company_id, &company) == CRM_OK)
        json_object_set_new(scope, "company", company);
    if (campaign) json_object_set(scope, "campaign", campaign);
    return scope;
}

/* POST /templates/{id}/preview {"contact": id}: the template rendered for one contact. */
static int preview_route(crm_req *req, void *udata)
{
    (void)udata;
    crm_ctx *ctx = H->req_ctx(req);
    json_t *body = H->req_json(req), *tmpl = NULL, *contact = NULL, *scope = NULL;
    int64_t id, contact_id;
    char *subject = NULL, *text = NULL;
    int rc;
    if ((rc = crmp_id_param(req, "id", &id)) != CRM_OK) return rc;
    if (!json_is_object(body))
        return H->error_set(CRM_EINVALID, NULL, "the body must be a JSON object {\"contact\": id}");
    if (!crmp_json_id(json_object_get(body, "contact"), &contact_id))
        return H->error_set(CRM_EINVALID, "contact", "contact must be a contact's id");
    if ((rc = H->record_get(ctx, "crm.email_template", id, &tmpl)) != CRM_OK) goto done;
    if ((rc = H->record_get(ctx, "crm.contact", contact_id, &contact)) != CRM_OK) goto done;
    scope = recipient_scope(ctx, "crm.contact", contact, NULL);
    if ((rc = render_template(tmpl, scope, &subject, &text)) != CRM_OK) goto done;
    rc = H->reply_json(req, 200,
                       json_pack("{s:s,s:s,s:s}", "subject", subject, "body", text, "format",
                                 is_html(tmpl) ? "html" : "text"));
done:
    free(subject);
    free(text);
    json_decref(tmpl);
    json_decref(contact);
    json_decref(scope);
    return rc;
}

/* ======================================================================= */
/* ---- Campaigns --------------------------------------------------------- */
/* ======================================================================= */

struct send_summary {
    int queued, skipped_no_consent, skipped_no_email;
};

struct send_job {
    crm_ctx *ctx;
    const char *type; /* crm.contact or crm.lead */
    int64_t campaign_id, template_id;
    json_t *campaign, *tmpl;
    struct send_summary sum;
    int seen;
};

static bool has_consent(json_t *recipient)
{
    const char *channel = json_string_value(json_object_get(recipient, "preferred_channel"));
    return json_is_true(json_object_get(recipient, "consent_email")) &&
           !(channel && strcmp(channel, "none") == 0);
}

static int queue_one(json_t *recipient, void *arg)
{
    struct send_job *job = arg;
    const char *to = json_string_value(json_object_get(recipient, "email"));
    char *subject = NULL, *body = NULL;
    int rc;
    if (++job->seen > RECIPIENTS_MAX)
        return H->error_set(CRM_ELIMIT, "segment",
                            "the segment has more than %d recipients: split it", RECIPIENTS_MAX);
    if (!has_consent(recipient)) {
        job->sum.skipped_no_consent++;
        return CRM_OK;
    }
    if (!to || !*to) {
        job->sum.skipped_no_email++;
        return CRM_OK;
    }
    json_t *scope = recipient_scope(job->ctx, job->type, recipient, job->campaign);
    rc = render_template(job->tmpl, scope, &subject, &body);
    json_decref(scope);
    if (rc != CRM_OK) return rc;
    int64_t rid = (int64_t)json_integer_value(json_object_get(recipient, "id"));
    json_t *message = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:I}", "to", to, "subject", subject,
                                "body", body, "status", "queued", "campaign",
                                (json_int_t)job->campaign_id, "template",
                                (json_int_t)job->template_id, "related_type", job->type,
                                "related_id", (json_int_t)rid);
    if (strcmp(job->type, "crm.contact") == 0)
        json_object_set_new(message, "contact", json_integer(rid));
    rc = H->record_create(job->ctx, "crm.message", message, NULL);
    json_decref(message);
    free(subject);
    free(body);
    if (rc == CRM_OK) job->sum.queued++;
    return rc;
}

/* The segment's filter as list parameters: an object of strings, numbers and booleans;
 * the walk's own parameters are refused. */
static int segment_filter(json_t *segment, json_t **out)
{
    json_t *filter = json_object_get(segment, "filter");
    const char *key;
    json_t *v;
    *out = NULL;
    if (!filter || json_is_null(filter)) {
        *out = json_object();
        return CRM_OK;
    }
    if (!json_is_object(filter))
        return H->error_set(CRM_EINVALID, "filter",
                            "the segment's filter must be an object of list parameters");
    json_object_foreach(filter, key, v)
    {
        if (!strcmp(key, "limit") || !strcmp(key, "cursor") || !strcmp(key, "fields") ||
            !strcmp(key, "count") || !strcmp(key, "deleted"))
            return H->error_set(CRM_EINVALID, "filter",
                                "the segment's filter may not set \"%s\"", key);
        if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v))
            return H->error_set(CRM_EINVALID, "filter",
                                "the segment's filter: \"%s\" must be a string, number or boolean",
                                key);
    }
    *out = json_deep_copy(filter);
    return CRM_OK;
}

/*
 * The campaign, its template and its segment's filter, checked: everything a send needs.
 * Errors name the campaign's field at fault.
 */
static int campaign_load(crm_ctx *ctx, int64_t id, struct send_job *job, json_t **filter)
{
    json_t *segment = NULL;
    int64_t segment_id;
    int rc;
    job->ctx = ctx;
    job->campaign_id = id;
    if ((rc = H->record_get(ctx, "crm.campaign", id, &job->campaign)) != CRM_OK) return rc;
    const char *status = json_string_value(json_object_get(job->campaign, "status"));
    if (status && (!strcmp(status, "done") || !strcmp(status, "cancelled")))
        return H->error_set(CRM_ECONFLICT, "status", "campaign %lld is %s: it is not sent again",
                            (long long)id, status);
    if (!crmp_json_id(json_object_get(job->campaign, "segment"), &segment_id))
        return H->error_set(CRM_EINVALID, "segment", "the campaign has no segment to send to");
    if (!crmp_json_id(json_object_get(job->campaign, "template"), &job->template_id))
        return H->error_set(CRM_EINVALID, "template", "the campaign has no e-mail template");
    if ((rc = H->record_get(ctx, "crm.email_template", job->template_id, &job->tmpl)) != CRM_OK)
        return rc;
    if ((rc = H->record_get(ctx, "crm.segment", segment_id, &segment)) != CRM_OK) return rc;
    job->type = json_string_value(json_object_get(segment, "type"));
    if (!job->type) job->type = "crm.contact";
    job->type = strcmp(job->type, "crm.lead") == 0 ? "crm.lead"
              : strcmp(job->type, "crm.contact") == 0 ? "crm.contact" : NULL;
    if (!job->type)
        rc = H->error_set(CRM_EINVALID, "segment",
                          "segment %lld: campaigns go to crm.contact or crm.lead segments",
                          (long long)segment_id);
    else
        rc = segment_filter(segment, filter);
    json_decref(segment);
    if (rc == CRM_OK) { /* a filter the list API refuses is the segment's fault: say so */
        json_t *probe = json_deep_copy(*filter), *page = NULL;
        json_object_set_new(probe, "limit", json_integer(1));
        rc = H->record_find(ctx, job->type, probe, &page);
        if (rc == CRM_EINVALID)
            rc = H->error_set(CRM_EINVALID, "filter", "the segment's filter: %s",
                              H->error_last()->message);
        json_decref(probe);
        json_decref(page);
    }
    if (rc == CRM_OK) rc = template_check(job->tmpl);
    return rc;
}

static void job_free(struct send_job *job)
{
    json_decref(job->campaign);
    json_decref(job->tmpl);
}

/* A send: the campaign's id in, what happened out. */
struct send_request {
    int64_t id;
    struct send_summary sum;
};

/* In host->tx: queue the messages, mark the campaign done; all of it or nothing. */
static int campaign_send(crm_ctx *ctx, void *arg)
{
    struct send_request *req = arg;
    struct send_job job = {0};
    json_t *filter = NULL;
    int rc;
    if ((rc = campaign_load(ctx, req->id, &job, &filter)) != CRM_OK) goto done;
    json_object_set_new(filter, "limit", json_integer(500));
    if ((rc = crmp_each(ctx, job.type, filter, queue_one, &job)) != CRM_OK) goto done;
    json_t *patch = json_pack("{s:s,s:i}", "status", "done", "sent_count", job.sum.queued);
    rc = H->record_update(ctx, "crm.campaign", req->id, patch, NULL);
    json_decref(patch);
    if (rc == CRM_OK) req->sum = job.sum;
done:
    json_decref(filter);
    job_free(&job);
    return rc;
}

/* POST /campaigns/{id}/send → {"campaign", "queued", "skipped_no_consent", "skipped_no_email"} */
static int campaign_send_route(crm_req *req, void *udata)
{
    (void)udata;
    struct send_request send = {0};
    int rc;
    if ((rc = crmp_id_param(req, "id", &send.id)) != CRM_OK) return rc;
    /* a bad campaign answers 400/404/409 naming its field, and nothing is queued */
    if ((rc = H->tx(H->req_ctx(req), campaign_send, &send)) != CRM_OK) return rc;
    return H->reply_json(req, 200,
                         json_pack("{s:I,s:i,s:i,s:i}", "campaign", (json_int_t)send.id, "queued",
                                   send.sum.queued, "skipped_no_consent",
                                   send.sum.skipped_no_consent, "skipped_no_email",
                                   send.sum.skipped_no_email));
}

/* ======================================================================= */
/* ---- SMTP delivery ----------------------------------------------------- */
/* ======================================================================= */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of s[0..n) into out; `wrap` > 0 breaks lines with CRLF every `wrap` characters. */
static int add_base64(struct buf *out, const unsigned char *s, size_t n, int wrap)
{
    int col = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < n) v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n) v |= s[i + 2];
        char q[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63],
                     i + 1 < n ? b64[(v >> 6) & 63] : '=', i + 2 < n ? b64[v & 63] : '='};
        if (buf_add(out, q, 4)) return -1;
        col += 4;
        if (wrap && col >= wrap && i + 3 < n) {
            if (buf_str(out, "\r\n")) return -1;
            col = 0;
        }
    }
    return 0;
}

/* A header value: as it is when printable ASCII, else RFC 2047 encoded words of UTF-8. */
static int add_header_text(struct buf *out, const char *text)
{
    bool plain = true;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p >= 0x7f) plain = false;
    if (plain) return buf_str(out, text);
    size_t n = strlen(text), i = 0;
    while (i < n) {
        size_t chunk = n - i > 42 ? 42 : n - i; /* 42 bytes → 56 base64 chars: words ≤ 75 */
        while (i + chunk < n && ((unsigned char)text[i + chunk] & 0xC0) == 0x80)
            chunk--; /* never split a UTF-8 sequence */
        if (i && buf_str(out, "\r\n ")) return -1;
        if (buf_str(out, "=?UTF-8?B?") ||
            add_base64(out, (const unsigned char *)text + i, chunk, 0) || buf_str(out, "?="))
            return -1;
        i += chunk;
    }
    return 0;
}

/* Whether s is safe inside a header line (no CR, LF or other control characters). */
static bool header_safe(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return false;
    return s != NULL;
}

/* The addr-spec of "Name <a@b>" or "a@b" into out; 0 when there is none. */
static int addr_spec(const char *from, char *out, size_t size)
{
    const char *lt = strrchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    const char *start = lt && gt ? lt + 1 : from;
    size_t n = lt && gt ? (size_t)(gt - lt - 1) : strlen(from);
    while (n && isspace((unsigned char)*start))
        start++, n--;
    while (n && isspace((unsigned char)start[n - 1]))
        n--;
    if (!n || n >= size || !memchr(start, '@', n)) return 0;
    memcpy(out, start, n);
    out[n] = '\0';
    return !strpbrk(out, " <>,;\"");
}

/* The RFC 5322 message: headers, a blank line, the body in base64 (CRLF line ends). */
static int build_mail(json_t *msg, const char *from, const char *from_addr, int64_t id,
                      bool html, struct buf *out)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const char *to = json_string_value(json_object_get(msg, "to"));
    const char *cc = json_string_value(json_object_get(msg, "cc"));
    const char *subject = json_string_value(json_object_get(msg, "subject"));
    const char *body = json_string_value(json_object_get(msg, "body"));
    char line[512];
    time_t now = (time_t)H->now();
    struct tm tm;
    gmtime_r(&now, &tm);
    const char *domain = strchr(from_addr, '@') + 1;
    struct buf text = {.max = 2 * BODY_MAX + 16};
    int rc = -1;

    snprintf(line, sizeof line, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (buf_str(out, line) || buf_str(out, "From: ") || buf_str(out, from) ||
        buf_str(out, "\r\nTo: ") || buf_str(out, to) || buf_str(out, "\r\n"))
        goto done;
    if (cc && *cc && (buf_str(out, "Cc: ") || buf_str(out, cc) || buf_str(out, "\r\n"))) goto done;
    snprintf(line, sizeof line, "Message-ID: <crm.message.%lld.%lld@%s>\r\n", (long long)id,
             (long long)now, domain);
    if (buf_str(out, line) || buf_str(out, "Subject: ") || add_header_text(out, subject ? subject : "") ||
        buf_str(out, "\r\nMIME-Version: 1.0\r\nContent-Type: ") ||
        buf_str(out, html ? "text/html" : "text/plain") ||
        buf_str(out, "; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n"
                     "Auto-Submitted: auto-generated\r\n\r\n"))
        goto done;
    /* Canonical text: CRLF line ends (lone CR or LF become CRLF). */
    for (const char *p = body ? body : ""; *p; p++) {
        if (*p == '\r' && p[1] == '\n') continue;
        if ((*p == '\r' || *p == '\n') ? buf_str(&text, "\r\n") : buf_add(&text, p, 1)) goto done;
    }
    if (add_base64(out, (const unsigned char *)(text.s ? text.s : ""), text.len, 76) ||
        buf_str(out, "\r\n"))
        goto done;
    rc = 0;
done:
    free(text.s);
    return rc;
}

struct upload {
    const char *data;
    size_t len, pos;
};

static size_t upload_read(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct upload *u = arg;
    size_t n = size * nmemb;
    if (n > u->len - u->pos) n = u->len - u->pos;
    memcpy(ptr, u->data + u->pos, n);
    u->pos += n;
    return n;
}

/* Send one message over SMTP. On failure *error (malloc'd) says why. */
static int smtp_send(json_t *msg, int64_t id, char **error)
{
    const char *url = H->setting(crmp_self, "mail.smtp_url");
    const char *from = H->setting(crmp_self, "mail.from");
    const char *user = H->setting(crmp_self, "mail.smtp_user");
    const char *password = H->setting(crmp_self, "mail.smtp_password");
    const char *tls = H->setting(crmp_self, "mail.smtp_tls");
    const char *to = json_string_value(json_object_get(msg, "to"));
    const char *cc = json_string_value(json_object_get(msg, "cc"));
    bool html = false;
    char from_addr[320], rcpt[330], errbuf[CURL_ERROR_SIZE] = "";
    struct buf mail = {.max = 4 * BODY_MAX};
    struct curl_slist *rcpts = NULL;
    CURL *curl = NULL;
    int rc = CRM_EINTERNAL;
    *error = NULL;

    if (!url || (strncmp(url, "smtp://", 7) && strncmp(url, "smtps://", 8))) {
        *error = strdup("mail.smtp_url is not set to an smtp:// or smtps:// URL in plugins.conf");
        goto done;
    }
    if (!from || !header_safe(from) || !addr_spec(from, from_addr, sizeof from_addr)) {
        *error = strdup("mail.from is not set to an address (\"CRM <crm@example.com>\")");
        goto done;
    }
    if (!header_safe(to) || !addr_spec(to, rcpt, sizeof rcpt) || (cc && !header_safe(cc))) {
        *error = strdup("the message's to or cc is not a usable address");
        goto done;
    }
    html = json_is_true(json_object_get(msg, "_html")); /* set from the template's format */
    if (build_mail(msg, from, from_addr, id, html, &mail)) {
        *error = strdup("the message is too large to send");
        goto done;
    }
    char bracketed[340];
    snprintf(bracketed, sizeof bracketed, "<%s>", from_addr);
    snprintf(rcpt, sizeof rcpt, "<%s>", to);
    rcpts = curl_slist_append(NULL, rcpt);
    /* cc is a comma-separated list of addresses, each a recipient too */
    if (cc && *cc) {
        char *copy = strdup(cc), *save = NULL;
        for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save)) {
            char one[330], br[340];
            if (addr_spec(tok, one, sizeof one)) {
                snprintf(br, sizeof br, "<%s>", one);
                rcpts = curl_slist_append(rcpts, br);
            }
        }
        free(copy);
    }
    struct upload up = {mail.s, mail.len, 0};
    if (!(curl = curl_easy_init()) || !rcpts) {
        *error = strdup("libcurl: out of memory");
        goto done;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, bracketed);
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpts);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, upload_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &up);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* worker threads: no SIGALRM */
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, SMTP_CONNECT_TIMEOUT);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, SMTP_TIMEOUT);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    if (user && *user) curl_easy_setopt(curl, CURLOPT_USERNAME, user);
    if (password && *password) curl_easy_setopt(curl, CURLOPT_PASSWORD, password);
    if (tls && !strcmp(tls, "required")) curl_easy_setopt(curl, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    else if (tls && !strcmp(tls, "try")) curl_easy_setopt(curl, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    CURLcode res = curl_easy_perform(curl);
    if (res != CURLE_OK) {
        char msgbuf[CURL_ERROR_SIZE + 64];
        snprintf(msgbuf, sizeof msgbuf, "smtp: %s", errbuf[0] ? errbuf : curl_easy_strerror(res));
        *error = strdup(msgbuf);
        goto done;
    }
    rc = CRM_OK;
done:
    if (curl) curl_easy_cleanup(curl);
    curl_slist_free_all(rcpts);
    free(mail.s);
    return rc;
}

/* mail.max_attempts (default 5): read-only after init. */
static int max_attempts = 5;

/* Seconds to wait after the n-th failed attempt: 5 min × 3^(n-1), at most 6 h. */
static int64_t retry_delay(int attempts)
{
    int64_t d = 300;
    for (int i = 1; i < attempts && d < 6 * 3600; i++) d *= 3;
    return d < 6 * 3600 ? d : 6 * 3600;
}

/*
 * Async handler of crm.message.* : deliver what is queued, and record the outcome on the
 * message. Sent: status sent, sent_at. Failed: status failed, the error, and either
 * next_attempt_at (the retry sweep below queues it again then) or, after
 * mail.max_attempts, none: given up. The handler's own updates come back here as
 * crm.message.updated and find nothing queued.
 */
static int message_deliver(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    int64_t id = H->event_id(ev), tid;
    json_t *msg = NULL, *tmpl = NULL, *patch = NULL;
    char *error = NULL, at[21];
    int rc;
    if (!H->event_type(ev) || strcmp(H->event_topic(ev), "crm.message.deleted") == 0)
        return CRM_OK;
    /* Read it again: the event's copy may be stale when the bus redelivers. */
    if ((rc = H->record_get(ctx, "crm.message", id, &msg)) != CRM_OK)
        return rc == CRM_ENOTFOUND ? CRM_OK : rc; /* deleted since: nothing to send */
    /* Only what is queued: a message stored as sent or failed from elsewhere (an import)
     * is a record, not mail; and a redelivered event finds its message sent. */
    const char *status = json_string_value(json_object_get(msg, "status"));
    if (!status || strcmp(status, "queued") != 0) goto done;
    if (crmp_json_id(json_object_get(msg, "template"), &tid) &&
        H->record_get(ctx, "crm.email_template", tid, &tmpl) == CRM_OK && is_html(tmpl))
        json_object_set_new(msg, "_html", json_true());
    int attempts = (int)json_integer_value(json_object_get(msg, "attempts")) + 1;
    int sent = smtp_send(msg, id, &error);
    int64_t now = H->now();
    if (sent == CRM_OK) {
        crm_util_datetime(now, at);
        patch = json_pack("{s:s,s:s,s:i,s:n,s:n}", "status", "sent", "sent_at", at, "attempts",
                          attempts, "error", "next_attempt_at");
    } else {
        const char *why = error ? error : "unknown error";
        patch = json_pack("{s:s,s:i}", "status", "failed", "attempts", attempts);
        if (attempts < max_attempts) {
            crm_util_datetime(now + retry_delay(attempts), at);
            json_object_set_new(patch, "next_attempt_at", json_string(at));
            json_object_set_new(patch, "error", json_string(why));
        } else {
            json_object_set_new(patch, "next_attempt_at", json_null());
            json_object_set_new(patch, "error", json_sprintf("%s (gave up after %d attempts)",
                                                             why, attempts));
        }
        H->log(crmp_self, CRM_WARN, "crm.message %lld: attempt %d of %d: %s", (long long)id,
               attempts, max_attempts, why);
    }
    /* A failed send is recorded, not returned: the retry is the message's (next_attempt_at,
     * minutes apart), not the bus's (seconds apart). Only failing to record it is an error,
     * and the bus redelivers then. */
    rc = H->record_update(ctx, "crm.message", id, patch, NULL);
done:
    free(error);
    json_decref(msg);
    json_decref(tmpl);
    json_decref(patch);
    return rc;
}

struct retry_sweep {
    crm_ctx *ctx;
    int count;
};

static int requeue_one(json_t *msg, void *arg)
{
    struct retry_sweep *sw = arg;
    json_t *patch = json_pack("{s:s,s:n}", "status", "queued", "next_attempt_at");
    int rc = H->record_update(sw->ctx, "crm.message",
                              (int64_t)json_integer_value(json_object_get(msg, "id")), patch, NULL);
    json_decref(patch);
    if (rc == CRM_OK) sw->count++;
    return rc;
}

/* Every minute: failed messages whose next_attempt_at has come are queued again (the
 * update's event reaches message_deliver, outside this transaction). */
static int mail_retry(crm_ctx *ctx, const crm_firing *firing, void *udata)
{
    (void)udata;
    char due[21];
    struct retry_sweep sw = {ctx, 0};
    crm_util_datetime(H->firing_due(firing), due);
    json_t *filter = json_pack("{s:s,s:s,s:s,s:i}", "status", "failed", "next_attempt_at__lte", due,
                               "sort", "next_attempt_at", "limit", 200);
    int rc = crmp_each(ctx, "crm.message", filter, requeue_one, &sw);
    json_decref(filter);
    if (sw.count) H->log(crmp_self, CRM_INFO, "mail: %d failed message(s) queued again", sw.count);
    return rc;
}

/* Async handler of core.mail.queued (crm.mail.queue in rules): a crm.message to deliver. */
static int mail_queued(crm_ctx *ctx, crm_event *ev, void *udata)
{
    (void)udata;
    json_t *p = H->event_payload(ev), *message = NULL, *page = NULL, *query = NULL;
    const char *to = json_string_value(json_object_get(p, "to"));
    const char *template_name = json_string_value(json_object_get(p, "template"));
    char *subject = NULL, *body = NULL;
    int rc = CRM_OK;
    if (!to) {
        const char *rule = json_string_value(json_object_get(p, "rule"));
        H->log(crmp_self, CRM_ERROR, "core.mail.queued without a \"to\" (rule %s): dropped",
               rule ? rule : "?");
        return CRM_OK; /* retrying cannot fix the rule */
    }
    message = json_pack("{s:s,s:s}", "to", to, "status", "queued");
    if (template_name) {
        query = json_pack("{s:s,s:i}", "name", template_name, "limit", 1);
        if ((rc = H->record_find(ctx, "crm.email_template", query, &page)) != CRM_OK) goto done;
        json_t *tmpl = json_array_get(json_object_get(page, "data"), 0);
        if (!tmpl) {
            H->log(crmp_self, CRM_ERROR, "crm.mail.queue: no e-mail template named \"%s\": dropped",
                   template_name);
            goto done;
        }
        json_t *scope = json_object();
        json_t *record = json_object_get(p, "record");
        if (json_is_object(record)) {
            json_object_set(scope, "record", record);
            json_object_set(scope, "contact", record);
        }
        if (json_is_object(json_object_get(p, "data")))
            json_object_set(scope, "data", json_object_get(p, "data"));
        rc = render_template(tmpl, scope, &subject, &body);
        json_decref(scope);
        if (rc != CRM_OK) {
            H->log(crmp_self, CRM_ERROR, "crm.mail.queue: template \"%s\": %s: dropped",
                   template_name, H->error_last()->message);
            rc = CRM_OK;
            goto done;
        }
        json_object_set(message, "template", json_object_get(tmpl, "id"));
    } else {
        const char *s = json_string_value(json_object_get(p, "subject"));
        const char *b = json_string_value(json_object_get(p, "body"));
        subject = strdup(s ? s : "");
        body = strdup(b ? b : "");
        for (char *c = subject; c && *c; c++)
            if ((unsigned char)*c < 0x20) *c = ' ';
    }
    json_object_set_new(message, "subject", json_string(subject ? subject : ""));
    json_object_set_new(message, "body", json_string(body ? body : ""));
    if (json_is_string(json_object_get(p, "cc"))) json_object_set(message, "cc", json_object_get(p, "cc"));
    rc = H->record_create(ctx, "crm.message", message, NULL);
    if (rc == CRM_EINVALID) {
        H->log(crmp_self, CRM_ERROR, "crm.mail.queue to %s: %s: dropped", to,
               H->error_last()->message);
        rc = CRM_OK;
    }
done:
    free(subject);
    free(body);
    json_decref(message);
    json_decref(query);
    json_decref(page);
    return rc;
}

/* ======================================================================= */
/* ---- Suggestions ------------------------------------------------------- */
/* ======================================================================= */

struct purchases {
    json_t *by_customer; /* "contact id" → {"product id": true} */
    int deals;
};

static int collect_purchase(json_t *deal, void *arg)
{
    struct purchases *pu = arg;
    int64_t contact, product;
    char ckey[24], pkey[24];
    size_t i;
    json_t *line;
    if (++pu->deals > DEALS_MAX)
        return H->error_set(CRM_ELIMIT, NULL, "more than %d won deals: suggestions need a "
                            "smaller history", DEALS_MAX);
    if (!crmp_json_id(json_object_get(deal, "contact"), &contact)) return CRM_OK;
    snprintf(ckey, sizeof ckey, "%lld", (long long)contact);
    json_t *set = json_object_get(pu->by_customer, ckey);
    json_array_foreach(json_object_get(deal, "lines"), i, line)
    {
        if (!crmp_json_id(json_object_get(line, "product"), &product)) continue;
        if (!set) {
            set = json_object();
            json_object_set_new(pu->by_customer, ckey, set);
        }
        snprintf(pkey, sizeof pkey, "%lld", (long long)product);
        json_object_set_new(set, pkey, json_true());
    }
    return CRM_OK;
}

static int cmp_score(const void *a, const void *b)
{
    double x = json_real_value(json_object_get(*(json_t *const *)a, "score"));
    double y = json_real_value(json_object_get(*(json_t *const *)b, "score"));
    if (x != y) return x < y ? 1 : -1;
    int64_t p = json_integer_value(json_object_get(*(json_t *const *)a, "product"));
    int64_t q = json_integer_value(json_object_get(*(json_t *const *)b, "product"));
    return p < q ? -1 : p > q;
}

/* GET /suggestions/{contact_id}?limit=10 */
static int suggestions_route(crm_req *req, void *udata)
{
    (void)udata;
    crm_ctx *ctx = H->req_ctx(req);
    struct purchases pu = {.by_customer = json_object()};
    json_t *contact = NULL, *filter = NULL, *scores = json_object(), *list = NULL, *out = NULL;
    const char *limit_text = H->req_query(req, "limit");
    int64_t id, limit = 10;
    char key[24], won[1024] = "";
    int rc, n;
    if ((rc = crmp_id_param(req, "contact_id", &id)) != CRM_OK) goto done;
    if (limit_text && (!crmp_parse_id(limit_text, &limit) || limit > 100)) {
        rc = H->error_set(CRM_EINVALID, "limit", "limit must be 1 to 100");
        goto done;
    }
    if ((rc = H->record_get(ctx, "crm.contact", id, &contact)) != CRM_OK) goto done;
    const crmp_stage *stages = crmp_stages(&n);
    for (int i = 0; i < n; i++)
        if (crmp_stage_won(&stages[i]) && strlen(won) + strlen(stages[i].name) + 2 < sizeof won) {
            if (*won) strcat(won, ",");
            strcat(won, stages[i].name);
        }
    filter = json_pack("{s:s,s:s,s:i}", "stage__in", *won ? won : "won", "fields", "contact,lines",
                       "limit", 1000);
    if ((rc = crmp_each(ctx, "crm.deal", filter, collect_purchase, &pu)) != CRM_OK) goto done;

    snprintf(key, sizeof key, "%lld", (long long)id);
    json_t *mine = json_object_get(pu.by_customer, key);
    const char *other;
    json_t *set;
    json_object_foreach(pu.by_customer, other, set)
    {
        if (strcmp(other, key) == 0) continue;
        /* Jaccard similarity of the two sets; with no history of our own, everyone counts 1 */
        size_t common = 0, mine_n = json_object_size(mine);
        const char *pk;
        json_t *v;
        json_object_foreach(set, pk, v)
            common += json_object_get(mine, pk) != NULL;
        double sim = mine_n ? (double)common / (double)(mine_n + json_object_size(set) - common) : 1.0;
        if (sim <= 0) continue;
        json_object_foreach(set, pk, v)
        {
            if (json_object_get(mine, pk)) continue;
            json_t *s = json_object_get(scores, pk);
            if (!s) {
                s = json_pack("{s:f,s:i}", "score", 0.0, "bought_by", 0);
                json_object_set_new(scores, pk, s);
            }
            json_object_set_new(s, "score", json_real(json_real_value(json_object_get(s, "score")) + sim));
            json_object_set_new(s, "bought_by",
                                json_integer(json_integer_value(json_object_get(s, "bought_by")) + 1));
        }
    }
    list = json_array();
    const char *pk;
    json_t *s;
    json_object_foreach(scores, pk, s)
    {
        int64_t product;
        crmp_parse_id(pk, &product);
        json_object_set_new(s, "product", json_integer(product));
        json_array_append(list, s);
    }
    size_t count = json_array_size(list);
    json_t **items = count ? malloc(count * sizeof *items) : NULL;
    if (count && !items) {
        rc = H->error_set(CRM_EINTERNAL, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < count; i++)
        items[i] = json_array_get(list, i);
    if (count) qsort(items, count, sizeof *items, cmp_score);
    out = json_array();
    for (size_t i = 0; i < count && (int64_t)json_array_size(out) < limit; i++) {
        json_t *product = NULL;
        int64_t pid = json_integer_value(json_object_get(items[i], "product"));
        /* only products the caller may see, and still on sale */
        if (H->record_get(ctx, "crm.product", pid, &product) != CRM_OK) continue;
        if (!json_is_false(json_object_get(product, "active"))) {
            json_t *item = json_pack("{s:I,s:O,s:f,s:O}", "product", (json_int_t)pid, "name",
                                     json_object_get(product, "name"), "score",
                                     json_real_value(json_object_get(items[i], "score")),
                                     "bought_by", json_object_get(items[i], "bought_by"));
            json_array_append_new(out, item);
        }
        json_decref(product);
    }
    free(items);
    rc = H->reply_json(req, 200,
                       json_pack("{s:I,s:s,s:o}", "contact", (json_int_t)id, "basis",
                                 json_object_size(mine) ? "similar customers" : "most bought",
                                 "data", out));
    out = NULL;
done:
    json_decref(pu.by_customer);
    json_decref(contact);
    json_decref(filter);
    json_decref(scores);
    json_decref(list);
    json_decref(out);
    return rc;
}

/* ======================================================================= */

int crmp_retain_init(void)
{
    int rc;
    const char *attempts = H->setting(crmp_self, "mail.max_attempts");
    if (attempts) {
        int64_t n;
        if (!crmp_parse_id(attempts, &n) || n > 20)
            return H->error_set(CRM_EINVALID, "mail.max_attempts",
                                "mail.max_attempts is 1 to 20 (sends of one message)");
        max_attempts = (int)n;
    }
    /* Once, before any worker thread sends: libcurl's global state. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return H->error_set(CRM_EINTERNAL, NULL, "libcurl: global initialisation failed");
    if ((rc = H->subscribe(crmp_self, "crm.email_template.created", CRM_BEFORE, 50,
                           "template_check_new", template_before, NULL)) ||
        (rc = H->subscribe(crmp_self, "crm.email_template.updated", CRM_BEFORE, 50,
                           "template_check", template_before, NULL)) ||
        (rc = H->subscribe(crmp_self, "crm.message.*", CRM_ASYNC, 50, "smtp_outbox",
                           message_deliver, NULL)) ||
        (rc = H->schedule_cron(crmp_self, "mail_retry", "* * * * *", mail_retry, NULL)) ||
        (rc = H->subscribe(crmp_self, "core.mail.queued", CRM_ASYNC, 50, "mail_queue",
                           mail_queued, NULL)) ||
        (rc = H->route(crmp_self, "POST", "/campaigns/{id}/send", 0, campaign_send_route, NULL)) ||
        (rc = H->route(crmp_self, "POST", "/templates/{id}/preview", 0, preview_route, NULL)) ||
        (rc = H->route(crmp_self, "GET", "/suggestions/{contact_id}", 0, suggestions_route, NULL)))
        return rc;
    return CRM_OK;
}
