/*
 * demo.c — demo data for `crm demo`: a few thousand realistic records.
 *
 * Deterministic: a fixed-seed PRNG (splitmix64) picks every name, amount and
 * stage, so two runs make the same records. Dates are relative to the day the
 * demo runs (setting demo.today = YYYY-MM-DD fixes it), so dashboards and
 * "this month" reports have something to show. People and companies come
 * from six languages: English, Greek, Hebrew, Persian, Chinese and Russian.
 *
 * `crm demo` runs this as the system inside one transaction: it all lands, or
 * nothing does. The records go through host->record_create like any other
 * write, so validation and the plugin's C handlers apply; the Lua rules do not
 * run, so leads are scored here as scripts/lead_scoring.lua would score them.
 *
 * What the demo cannot make: created_at is the kernel's (the time `crm demo`
 * runs), so durations from creation — the sales-cycle and ticket-resolution
 * reports — have nothing to measure on demo data (closed_at / resolved_at lie
 * in the past, before the records' creation, and are left out).
 */
#include "crm_int.h"

#include <stdio.h>
#include <string.h>

#define N_COMPANIES 240
#define N_CONTACTS 900
#define N_LEADS 600
#define N_DEALS 450
#define N_ACTIVITIES 1000
#define N_TASKS 300
#define N_TICKETS 200

static uint64_t seed;

static uint64_t next(void)
{
    return crm_util_random(&seed);
}

static int below(int n) { return (int)(next() % (uint64_t)n); }
#define PICK(array) ((array)[below((int)(sizeof(array) / sizeof((array)[0])))])

/* One culture: names, companies, a mail domain, places and a phone prefix. */
static const struct culture {
    const char *language, *country, *phone;
    const char *first[10], *last[10], *company[8], *city[4], *domain;
} cultures[] = {
    {"en", "GB", "+44 20 7946 ",
     {"Oliver", "Amelia", "Harry", "Isla", "Jack", "Emily", "George", "Ava", "Noah", "Grace"},
     {"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Evans", "Walker"},
     {"Northwind Traders", "Blue Harbour Logistics", "Kestrel Analytics", "Oakridge Foods",
      "Silverline Media", "Greenfield Energy", "Atlas Engineering", "Brightwater Health"},
     {"London", "Manchester", "Leeds", "Bristol"}, "example.co.uk"},
    {"el", "GR", "+30 210 555 ",
     {"Γιώργος", "Μαρία", "Νίκος", "Ελένη", "Δημήτρης", "Κατερίνα", "Γιάννης", "Σοφία", "Κώστας", "Άννα"},
     {"Παπαδόπουλος", "Οικονόμου", "Γεωργίου", "Νικολάου", "Παπαδάκης", "Βασιλείου", "Αθανασίου",
      "Ιωάννου", "Χριστοδούλου", "Καραγιάννης"},
     {"Αιγαίο Ναυτιλιακή", "Ολυμπία Τρόφιμα", "Ερμής Λογισμικό", "Ακρόπολις Κατασκευές",
      "Ποσειδών Μεταφορές", "Αθηνά Σύμβουλοι", "Δελφοί Ενέργεια", "Κρήτη Ελαιόλαδο"},
     {"Αθήνα", "Θεσσαλονίκη", "Πάτρα", "Ηράκλειο"}, "example.gr"},
    {"he", "IL", "+972 3 555 ",
     {"נועה", "דוד", "תמר", "יוסף", "מאיה", "אברהם", "שירה", "משה", "רחל", "איתי"},
     {"כהן", "לוי", "מזרחי", "פרץ", "ביטון", "אברהם", "פרידמן", "אזולאי", "דהן", "שפירא"},
     {"גלבוע טכנולוגיות", "ים המלח קוסמטיקה", "כרמל תוכנה", "נגב אנרגיה", "ירושלים השקעות",
      "חרמון מזון", "גליל רפואה", "שרון לוגיסטיקה"},
     {"תל אביב", "ירושלים", "חיפה", "באר שבע"}, "example.co.il"},
    {"fa", "IR", "+98 21 5555 ",
     {"علی", "زهرا", "محمد", "فاطمه", "رضا", "مریم", "حسین", "سارا", "امیر", "نرگس"},
     {"احمدی", "حسینی", "محمدی", "رضایی", "کریمی", "موسوی", "جعفری", "رحیمی", "صادقی", "کاظمی"},
     {"پارس صنعت", "البرز تجارت", "خلیج فارس کشتیرانی", "زاگرس فناوری", "کویر انرژی",
      "آریا نرم‌افزار", "سپید دارو", "ایران خودرو قطعات"},
     {"تهران", "اصفهان", "شیراز", "تبریز"}, "example.ir"},
    {"zh", "CN", "+86 10 5555 ",
     {"伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军"},
     {"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴"},
     {"华信科技", "长城贸易", "东方物流", "龙腾软件", "金山能源", "天和医药", "海川食品", "锦绣纺织"},
     {"北京", "上海", "深圳", "杭州"}, "example.cn"},
    {"ru", "RU", "+7 495 555 ",
     {"Александр", "Анна", "Дмитрий", "Мария", "Сергей", "Елена", "Иван", "Ольга", "Михаил", "Наталья"},
     {"Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
      "Новиков", "Фёдоров"},
     {"Северный ветер", "Волга Логистик", "Сибирь Энерго", "Уральские системы", "Балтика Трейд",
      "Байкал Софт", "Кремль Консалтинг", "Тайга Лес"},
     {"Москва", "Санкт-Петербург", "Новосибирск", "Казань"}, "example.ru"},
};
#define N_CULTURES ((int)(sizeof cultures / sizeof cultures[0]))
#define LATIN "abcdefghijklmnopqrstuvwxyz"

static const char *const industries[] = {"software", "logistics", "manufacturing", "retail",
                                         "healthcare", "energy", "finance", "food", "media"};
static const char *const currencies[] = {"EUR", "EUR", "EUR", "USD", "USD", "GBP"};
static const char *const products[][3] = {
    {"CRM Starter (per seat / year)", "SW-START", "240.00"},
    {"CRM Professional (per seat / year)", "SW-PRO", "600.00"},
    {"CRM Enterprise (per seat / year)", "SW-ENT", "1200.00"},
    {"Onboarding workshop (1 day)", "SV-ONB", "1500.00"},
    {"Data migration", "SV-MIG", "3000.00"},
    {"Custom integration (per day)", "SV-INT", "900.00"},
    {"Premium support (year)", "SP-PREM", "5000.00"},
    {"Training (per person)", "SV-TRN", "350.00"},
    {"SMS bundle (10 000)", "AD-SMS", "400.00"},
    {"Extra storage (100 GB / year)", "AD-STO", "120.00"},
};
static const char *const activity_subjects[][2] = {
    {"call", "Discovery call"},   {"call", "Follow-up call"},    {"email", "Sent the proposal"},
    {"email", "Pricing question"}, {"meeting", "Demo meeting"}, {"meeting", "On-site visit"},
    {"note", "Budget approved for Q3"}, {"note", "Decision maker is the CFO"},
};
static const char *const ticket_subjects[] = {
    "Cannot log in", "Export to CSV is slow", "Invoice shows the wrong VAT",
    "How do I add a custom field?", "Emails are not delivered", "Import fails on line 12",
    "Request: dark mode", "Password reset link expired",
};

struct demo {
    crm_ctx *ctx;
    int64_t today; /* noon UTC of the demo's day */
    int64_t companies[N_COMPANIES];
    int company_culture[N_COMPANIES];
    int64_t contacts[N_CONTACTS];
    int64_t deals[N_DEALS];
    int64_t product_ids[sizeof products / sizeof products[0]];
};

static void date_at(int64_t t, char out[11])
{
    char dt[21];
    crm_util_datetime(t, dt);
    snprintf(out, 11, "%.10s", dt);
}

/* Create one record (fields consumed); its id into *id when id is not NULL. */
static int make(struct demo *d, const char *type, json_t *fields, int64_t *id)
{
    json_t *stored = NULL;
    int rc = crmp_host->record_create(d->ctx, type, fields, id ? &stored : NULL);
    json_decref(fields);
    if (rc == CRM_OK && id) *id = json_integer_value(json_object_get(stored, "id"));
    json_decref(stored);
    return rc;
}

/* An ASCII mailbox for a person of any script: the culture's domain, a number. */
static json_t *mailbox(const struct culture *c, int n)
{
    return json_sprintf("%c%c.%d@%s", LATIN[n % 26], LATIN[(n / 26) % 26], n, c->domain);
}

static json_t *phone(const struct culture *c)
{
    return json_sprintf("%s%04d", c->phone, below(10000));
}

static int demo_companies(struct demo *d)
{
    int rc = CRM_OK;
    for (int i = 0; i < N_COMPANIES && rc == CRM_OK; i++) {
        int k = i % N_CULTURES;
        const struct culture *c = &cultures[k];
        d->company_culture[i] = k;
        /* one draw per statement: C leaves the order of a call's arguments open */
        const char *name = PICK(c->company), *branch = PICK(c->city), *city = PICK(c->city);
        const char *industry = PICK(industries), *currency = PICK(currencies);
        json_int_t employees = 5 + below(5000);
        json_t *f = json_pack("{s:s++,s:s,s:s,s:I,s:s,s:o,s:s,s:s}", "name", name,
                              i >= N_CULTURES * 8 ? " " : "", i >= N_CULTURES * 8 ? branch : "",
                              "industry", industry, "country", c->country, "employees", employees,
                              "city", city, "phone", phone(c), "currency", currency, "domain",
                              c->domain);
        rc = make(d, "crm.company", f, &d->companies[i]);
    }
    return rc;
}

static int demo_contacts(struct demo *d)
{
    int rc = CRM_OK;
    for (int i = 0; i < N_CONTACTS && rc == CRM_OK; i++) {
        int company = below(N_COMPANIES);
        const struct culture *c = &cultures[d->company_culture[company]];
        char birthday[11];
        date_at(d->today - (int64_t)(20 * 365 + below(40 * 365)) * 86400, birthday);
        int consent = below(10) < 7;
        int sms = consent && below(2);
        const char *first = PICK(c->first), *last = PICK(c->last), *city = PICK(c->city);
        const char *channel = below(4) ? "email" : "phone";
        json_t *tel = phone(c);
        json_t *f = json_pack("{s:s,s:s,s:o,s:o,s:I,s:s,s:s,s:s,s:b,s:b,s:s,s:s}", "first_name",
                              first, "last_name", last, "email", mailbox(c, 1000 + i), "phone",
                              tel, "company", (json_int_t)d->companies[company], "birthday",
                              birthday, "language", c->language, "preferred_channel", channel,
                              "consent_email", consent, "consent_sms", sms, "country",
                              c->country, "city", city);
        rc = make(d, "crm.contact", f, &d->contacts[i]);
    }
    return rc;
}

static int demo_products(struct demo *d)
{
    int rc = CRM_OK;
    for (size_t i = 0; i < sizeof products / sizeof products[0] && rc == CRM_OK; i++)
        rc = make(d, "crm.product",
                  json_pack("{s:s,s:s,s:s,s:s,s:b}", "name", products[i][0], "sku", products[i][1],
                            "price", products[i][2], "category",
                            products[i][1][0] == 'S' && products[i][1][1] == 'W' ? "licence"
                                                                                 : "service",
                            "active", 1),
                  &d->product_ids[i]);
    return rc;
}

/*
 * A lead's score as scripts/lead_scoring.lua gives it. `crm demo` writes without the
 * rules engine, so the demo scores its leads itself; keep the two in step (a site that
 * edits the rule rescores its leads with any change of a scored fact).
 */
static int lead_score(const char *source, const char *email, const char *company,
                      int has_phone, const char *title, const char *message, int consent)
{
    static const struct {
        const char *source;
        int points;
    } sources[] = {{"referral", 30}, {"partner", 25},     {"event", 20}, {"web_form", 15},
                   {"advertising", 10}, {"cold_call", 5}};
    static const char *const free_mail[] = {"gmail.com", "yahoo.com", "hotmail.com",
                                            "outlook.com", "mail.ru", "yandex.ru", "qq.com"};
    int score = 0;
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++)
        if (strcmp(source, sources[i].source) == 0) score += sources[i].points;
    const char *at = email ? strchr(email, '@') : NULL;
    int company_mailbox = at && at[1];
    for (size_t i = 0; at && i < sizeof free_mail / sizeof free_mail[0]; i++)
        if (strcmp(at + 1, free_mail[i]) == 0) company_mailbox = 0;
    if (company_mailbox) score += 20;
    if (company && *company) score += 15;
    if (has_phone) score += 10;
    char lower[128];
    size_t n = 0;
    for (; title && title[n] && n + 1 < sizeof lower; n++)
        lower[n] = (char)(title[n] >= 'A' && title[n] <= 'Z' ? title[n] - 'A' + 'a' : title[n]);
    lower[n] = '\0';
    if (strstr(lower, "ceo") || strstr(lower, "director") || strstr(lower, "head") ||
        strstr(lower, "vp"))
        score += 20;
    else if (strstr(lower, "manager"))
        score += 10;
    if (message && strlen(message) >= 40) score += 5; /* Lua's # counts bytes too */
    if (consent) score += 5;
    return score > 100 ? 100 : score;
}

static int demo_leads(struct demo *d)
{
    static const char *const sources[] = {"web_form", "web_form", "referral", "event",
                                          "cold_call", "advertising", "partner"};
    static const char *const statuses[] = {"new", "new", "working", "nurturing", "qualified",
                                           "disqualified", "converted", "converted"};
    static const char *const titles[] = {"CEO", "Sales Manager", "Head of IT", "Office Manager",
                                         "Director of Operations", "Engineer", "Buyer"};
    static const char *const messages[] = {
        NULL, "Call me", "We are 30 people and our spreadsheets no longer keep up with us.",
        "Looking for a CRM with Greek, Hebrew and Persian support for three offices."};
    int rc = CRM_OK;
    for (int i = 0; i < N_LEADS && rc == CRM_OK; i++) {
        const struct culture *c = &cultures[below(N_CULTURES)];
        const char *first = PICK(c->first), *last = PICK(c->last), *company = PICK(c->company);
        const char *title = PICK(titles), *source = PICK(sources), *status = PICK(statuses);
        const char *message = PICK(messages);
        int consent = below(2), has_phone = below(2);
        json_t *email = mailbox(c, 5000 + i);
        int score = lead_score(source, json_string_value(email), company, has_phone, title,
                               message, consent);
        json_t *f = json_pack("{s:s,s:s,s:s,s:o,s:s,s:s,s:s,s:b,s:s,s:i}", "first_name", first,
                              "last_name", last, "company_name", company, "email", email,
                              "job_title", title, "source", source, "status", status,
                              "consent_email", consent, "country", c->country, "score", score);
        if (has_phone) json_object_set_new(f, "phone", phone(c));
        if (message) json_object_set_new(f, "message", json_string(message));
        if (strcmp(status, "converted") == 0) {
            /* converted over the last half year, so this quarter and the last have some
             * (the leads-converted report); the contact it became is one of the demo's */
            char at[21];
            crm_util_datetime(d->today - (int64_t)below(180) * 86400, at);
            json_object_set_new(f, "converted_at", json_string(at));
            json_object_set_new(f, "converted_contact",
                                json_integer(d->contacts[below(N_CONTACTS)]));
        }
        rc = make(d, "crm.lead", f, NULL);
    }
    return rc;
}

static int demo_deals(struct demo *d)
{
    int n, rc = CRM_OK;
    const crmp_stage *stages = crmp_stages(&n);
    for (int i = 0; i < N_DEALS && rc == CRM_OK; i++) {
        int company = below(N_COMPANIES);
        const crmp_stage *stage = &stages[below(n)];
        int qty = 1 + below(50);
        size_t p = (size_t)below((int)(sizeof products / sizeof products[0]));
        json_t *price_text = json_string(products[p][2]);
        int64_t price = crm_util_cents(price_text);
        json_decref(price_text);
        char close[11], closed_at[21];
        int64_t when = d->today + (int64_t)(below(180) - 60) * 86400;
        date_at(when, close);
        json_t *lines = json_pack("[{s:I,s:s,s:i,s:o}]", "product", (json_int_t)d->product_ids[p],
                                  "name", products[p][0], "quantity", qty, "price",
                                  crm_util_money(price));
        json_int_t contact = (json_int_t)d->contacts[below(N_CONTACTS)];
        const char *currency = PICK(currencies);
        json_t *f = json_pack("{s:s++,s:I,s:I,s:s,s:o,s:s,s:s,s:o}", "name",
                              cultures[d->company_culture[company]].company[0], " — ",
                              products[p][0], "company", (json_int_t)d->companies[company],
                              "contact", contact, "stage", stage->name, "amount",
                              crm_util_money(price * qty), "currency", currency, "close_date", close,
                              "lines", lines);
        if (crmp_stage_closed(stage)) { /* closed in the last 60 days */
            crm_util_datetime(d->today - (int64_t)below(60) * 86400, closed_at);
            json_object_set_new(f, "closed_at", json_string(closed_at));
            if (!crmp_stage_won(stage))
                json_object_set_new(f, "lost_reason", json_string(below(2) ? "price" : "timing"));
        }
        rc = make(d, "crm.deal", f, &d->deals[i]);
    }
    return rc;
}

static int demo_activities_and_tasks(struct demo *d)
{
    int rc = CRM_OK;
    for (int i = 0; i < N_ACTIVITIES && rc == CRM_OK; i++) {
        int on_deal = below(2);
        char at[21];
        crm_util_datetime(d->today - (int64_t)below(90 * 24) * 3600, at);
        int a = below((int)(sizeof activity_subjects / sizeof activity_subjects[0]));
        json_int_t related = on_deal ? d->deals[below(N_DEALS)] : d->contacts[below(N_CONTACTS)];
        int minutes = 5 + below(60);
        rc = make(d, "crm.activity",
                  json_pack("{s:s,s:s,s:s,s:s,s:I,s:i}", "kind", activity_subjects[a][0],
                            "subject", activity_subjects[a][1], "at", at, "related_type",
                            on_deal ? "crm.deal" : "crm.contact", "related_id", related,
                            "duration_minutes", minutes),
                  NULL);
    }
    static const char *const titles[] = {"Send the contract", "Prepare the demo", "Call back",
                                         "Check the invoice", "Book the workshop"};
    for (int i = 0; i < N_TASKS && rc == CRM_OK; i++) {
        char due[11];
        date_at(d->today + (int64_t)(below(30) - 10) * 86400, due);
        int64_t deal = d->deals[below(N_DEALS)];
        const char *title = PICK(titles), *status = below(3) ? "open" : "done";
        rc = make(d, "crm.task",
                  json_pack("{s:s,s:s,s:s,s:I,s:s,s:I}", "title", title, "due", due, "status",
                            status, "deal", (json_int_t)deal,
                            "related_type", "crm.deal", "related_id", (json_int_t)deal),
                  NULL);
    }
    return rc;
}

static int demo_tickets(struct demo *d)
{
    static const char *const priorities[] = {"low", "normal", "normal", "high", "urgent"};
    static const char *const statuses[] = {"new", "open", "pending", "resolved", "closed"};
    int rc = CRM_OK;
    for (int i = 0; i < N_TICKETS && rc == CRM_OK; i++) {
        const char *status = PICK(statuses);
        int contact = below(N_CONTACTS);
        const char *subject = PICK(ticket_subjects), *priority = PICK(priorities);
        json_t *f = json_pack("{s:s,s:s,s:s,s:I}", "subject", subject, "priority", priority,
                              "status", status, "contact", (json_int_t)d->contacts[contact]);
        if (strcmp(status, "resolved") == 0 || strcmp(status, "closed") == 0) {
            char resolved[21];
            crm_util_datetime(d->today - (int64_t)below(30 * 24) * 3600, resolved);
            json_object_set_new(f, "resolved_at", json_string(resolved));
            json_object_set_new(f, "satisfaction", json_integer(1 + below(5)));
        }
        rc = make(d, "crm.ticket", f, NULL);
    }
    return rc;
}

static int demo_marketing(struct demo *d)
{
    int64_t segment = 0, template_id = 0;
    int rc = make(d, "crm.segment",
                  json_pack("{s:s,s:s,s:{s:b,s:s},s:s}", "name", "Greek contacts who opted in",
                            "type", "crm.contact", "filter", "consent_email", 1, "country", "GR",
                            "description", "for the Athens launch"),
                  &segment);
    if (rc == CRM_OK)
        rc = make(d, "crm.segment",
                  json_pack("{s:s,s:s,s:{s:b}}", "name", "Everyone who opted in", "type",
                            "crm.contact", "filter", "consent_email", 1),
                  NULL);
    static const char *const templates[][3] = {
        {"welcome", "Welcome, {{contact.first_name}}!",
         "Hello {{contact.first_name}},\n\nthank you for choosing us. Your onboarding starts "
         "next week.\n"},
        {"nurture_1", "Three ways a CRM saves you time",
         "Hello {{lead.first_name}},\n\nhere are three ways teams like yours save time.\n"},
        {"nurture_2", "How {{lead.company_name}} could use a CRM",
         "Hello {{lead.first_name}},\n\na short case study for your industry.\n"},
        {"nurture_3", "Shall we talk?", "Hello {{lead.first_name}},\n\nbook a 20-minute call.\n"},
        {"birthday", "Happy birthday, {{contact.first_name}}!",
         "Hello {{contact.first_name}},\n\nall the best from all of us.\n"},
    };
    for (size_t i = 0; i < sizeof templates / sizeof templates[0] && rc == CRM_OK; i++)
        rc = make(d, "crm.email_template",
                  json_pack("{s:s,s:s,s:s}", "name", templates[i][0], "subject", templates[i][1],
                            "body", templates[i][2]),
                  i == 0 ? &template_id : NULL);
    char start[11];
    date_at(d->today + 14 * 86400, start);
    if (rc == CRM_OK)
        rc = make(d, "crm.campaign",
                  json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "name", "Athens launch", "kind",
                            "email", "status", "draft", "segment", (json_int_t)segment,
                            "template", (json_int_t)template_id, "start_date", start, "budget",
                            "2500.00"),
                  NULL);
    if (rc == CRM_OK)
        rc = make(d, "crm.campaign",
                  json_pack("{s:s,s:s,s:s,s:s}", "name", "Web summit booth", "kind", "event",
                            "status", "done", "budget", "12000.00"),
                  NULL);
    return rc;
}

static int demo(crm_ctx *ctx, void *udata)
{
    (void)udata;
    static struct demo d; /* large; `crm demo` runs once, on one thread */
    int rc;
    memset(&d, 0, sizeof d);
    d.ctx = ctx;
    seed = 20240601; /* fixed: the same demo every time */
    const char *today = crmp_host->setting(crmp_self, "demo.today");
    d.today = today ? crm_util_time(today) : -1;
    if (d.today < 0) d.today = crmp_host->now() / 86400 * 86400;
    d.today += 12 * 3600;
    if ((rc = demo_companies(&d)) != CRM_OK || (rc = demo_contacts(&d)) != CRM_OK ||
        (rc = demo_products(&d)) != CRM_OK || (rc = demo_leads(&d)) != CRM_OK ||
        (rc = demo_deals(&d)) != CRM_OK || (rc = demo_activities_and_tasks(&d)) != CRM_OK ||
        (rc = demo_tickets(&d)) != CRM_OK || (rc = demo_marketing(&d)) != CRM_OK)
        return rc;
    crmp_host->log(crmp_self, CRM_INFO, "demo data: %d companies, %d contacts, %d leads, %d deals",
                   N_COMPANIES, N_CONTACTS, N_LEADS, N_DEALS);
    return CRM_OK;
}

int crmp_demo_init(void)
{
    return crmp_host->demo(crmp_self, demo, NULL);
}
