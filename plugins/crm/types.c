/*
 * types.c — every record type of the base crm plugin, and its default roles.
 *
 * Field specs are JSON, the same shape as GET /api/v1/types/{type}: a reader
 * can compare this file with the API's answer. Types are declared in
 * dependency order (a ref names a type declared above it). Money is a decimal
 * (minor units, exact) next to a currency enum.
 *
 * Declaring again on every start is the normal case: fields new in a later
 * version are added, existing ones are kept (sdk/README.md, "A record type").
 */
#include "crm_int.h"

#include <stddef.h>

#define CURRENCIES "[\"EUR\",\"USD\",\"GBP\",\"CHF\",\"ILS\",\"CNY\",\"RUB\",\"JPY\",\"IRR\"]"
/* A record of any type: activities, tasks and messages hang off one. */
#define RELATED                                                                          \
    "{\"name\":\"related_type\",\"kind\":\"text\",\"max_length\":64,\"indexed\":true},"  \
    "{\"name\":\"related_id\",\"kind\":\"int\",\"indexed\":true}"

static const crm_util_type_spec types[] = {
    {"crm.company", "Company",
     "[{\"name\":\"name\",\"kind\":\"text\",\"required\":true,\"searchable\":true,"
     "  \"indexed\":true,\"max_length\":200},"
     " {\"name\":\"domain\",\"kind\":\"text\",\"max_length\":200,\"indexed\":true},"
     " {\"name\":\"website\",\"kind\":\"url\"},"
     " {\"name\":\"industry\",\"kind\":\"text\",\"max_length\":100,\"indexed\":true},"
     " {\"name\":\"employees\",\"kind\":\"int\"},"
     " {\"name\":\"annual_revenue\",\"kind\":\"decimal\",\"scale\":2},"
     " {\"name\":\"currency\",\"kind\":\"enum\",\"values\":" CURRENCIES "},"
     " {\"name\":\"email\",\"kind\":\"email\",\"searchable\":true},"
     " {\"name\":\"phone\",\"kind\":\"phone\"},"
     " {\"name\":\"address\",\"kind\":\"text\",\"max_length\":500},"
     " {\"name\":\"city\",\"kind\":\"text\",\"max_length\":100,\"searchable\":true},"
     " {\"name\":\"country\",\"kind\":\"text\",\"max_length\":2,\"label\":\"Country (ISO)\"},"
     " {\"name\":\"notes\",\"kind\":\"text\",\"max_length\":10000,\"searchable\":true}]"},

    {"crm.contact", "Contact",
     "[{\"name\":\"first_name\",\"kind\":\"text\",\"required\":true,\"searchable\":true,"
     "  \"max_length\":100},"
     " {\"name\":\"last_name\",\"kind\":\"text\",\"searchable\":true,\"indexed\":true,"
     "  \"max_length\":100},"
     " {\"name\":\"email\",\"kind\":\"email\",\"searchable\":true,\"indexed\":true},"
     " {\"name\":\"phone\",\"kind\":\"phone\",\"indexed\":true},"
     " {\"name\":\"mobile\",\"kind\":\"phone\"},"
     " {\"name\":\"company\",\"kind\":\"ref\",\"ref\":\"crm.company\",\"indexed\":true},"
     " {\"name\":\"job_title\",\"kind\":\"text\",\"max_length\":100},"
     " {\"name\":\"birthday\",\"kind\":\"date\"},"
     " {\"name\":\"language\",\"kind\":\"text\",\"max_length\":16,\"label\":\"Language (BCP 47)\"},"
     " {\"name\":\"preferred_channel\",\"kind\":\"enum\","
     "  \"values\":[\"email\",\"phone\",\"sms\",\"post\",\"none\"],\"default\":\"email\"},"
     " {\"name\":\"consent_email\",\"kind\":\"bool\",\"default\":false},"
     " {\"name\":\"consent_sms\",\"kind\":\"bool\",\"default\":false},"
     " {\"name\":\"consent_phone\",\"kind\":\"bool\",\"default\":false},"
     " {\"name\":\"consent_updated_at\",\"kind\":\"datetime\"},"
     " {\"name\":\"city\",\"kind\":\"text\",\"max_length\":100},"
     " {\"name\":\"country\",\"kind\":\"text\",\"max_length\":2,\"label\":\"Country (ISO)\"},"
     " {\"name\":\"lead\",\"kind\":\"int\",\"label\":\"Converted from lead\"},"
     " {\"name\":\"notes\",\"kind\":\"text\",\"max_length\":10000,\"searchable\":true}]"},

    {"crm.product", "Product",
     "[{\"name\":\"name\",\"kind\":\"text\",\"required\":true,\"searchable\":true,"
     "  \"max_length\":200},"
     " {\"name\":\"sku\",\"kind\":\"text\",\"unique\":true,\"max_length\":64},"
     " {\"name\":\"category\",\"kind\":\"text\",\"max_length\":100,\"indexed\":true},"
     " {\"name\":\"price\",\"kind\":\"decimal\",\"scale\":2},"
     " {\"name\":\"currency\",\"kind\":\"enum\",\"values\":" CURRENCIES ",\"default\":\"EUR\"},"
     " {\"name\":\"active\",\"kind\":\"bool\",\"default\":true},"
     " {\"name\":\"description\",\"kind\":\"text\",\"max_length\":10000}]"},

    {"crm.segment", "Segment",
     "[{\"name\":\"name\",\"kind\":\"text\",\"required\":true,\"unique\":true,"
     "  \"max_length\":200},"
     " {\"name\":\"type\",\"kind\":\"text\",\"max_length\":64,\"default\":\"crm.contact\","
     "  \"label\":\"Record type\"},"
     " {\"name\":\"filter\",\"kind\":\"json\",\"label\":\"Filter (list parameters)\"},"
     " {\"name\":\"description\",\"kind\":\"text\",\"max_length\":1000}]"},

    {"crm.email_template", "E-mail template",
     "[{\"name\":\"name\",\"kind\":\"text\",\"required\":true,\"unique\":true,"
     "  \"max_length\":100},"
     " {\"name\":\"subject\",\"kind\":\"text\",\"required\":true,\"max_length\":500},"
     " {\"name\":\"body\",\"kind\":\"text\",\"max_length\":100000},"
     " {\"name\":\"format\",\"kind\":\"enum\",\"values\":[\"text\",\"html\"],"
     "  \"default\":\"text\"},"
     " {\"name\":\"language\",\"kind\":\"text\",\"max_length\":16}]"},

    {"crm.campaign", "Campaign",
     "[{\"name\":\"name\",\"kind\":\"text\",\"required\":true,\"searchable\":true,"
     "  \"max_length\":200},"
     " {\"name\":\"kind\",\"kind\":\"enum\","
     "  \"values\":[\"email\",\"event\",\"webinar\",\"ads\",\"referral\",\"other\"],"
     "  \"default\":\"email\"},"
     " {\"name\":\"status\",\"kind\":\"enum\","
     "  \"values\":[\"draft\",\"scheduled\",\"running\",\"done\",\"cancelled\"],"
     "  \"default\":\"draft\",\"indexed\":true},"
     " {\"name\":\"segment\",\"kind\":\"ref\",\"ref\":\"crm.segment\"},"
     " {\"name\":\"template\",\"kind\":\"ref\",\"ref\":\"crm.email_template\"},"
     " {\"name\":\"scheduled_at\",\"kind\":\"datetime\"},"
     " {\"name\":\"start_date\",\"kind\":\"date\"},"
     " {\"name\":\"end_date\",\"kind\":\"date\"},"
     " {\"name\":\"budget\",\"kind\":\"decimal\",\"scale\":2},"
     " {\"name\":\"currency\",\"kind\":\"enum\",\"values\":" CURRENCIES ",\"default\":\"EUR\"},"
     " {\"name\":\"sent_count\",\"kind\":\"int\",\"default\":0}]"},

    {"crm.lead", "Lead",
     "[{\"name\":\"first_name\",\"kind\":\"text\",\"searchable\":true,\"max_length\":100},"
     " {\"name\":\"last_name\",\"kind\":\"text\",\"searchable\":true,\"max_length\":100},"
     " {\"name\":\"company_name\",\"kind\":\"text\",\"searchable\":true,\"max_length\":200},"
     " {\"name\":\"job_title\",\"kind\":\"text\",\"max_length\":100},"
     " {\"name\":\"email\",\"kind\":\"email\",\"searchable\":true,\"indexed\":true},"
     " {\"name\":\"phone\",\"kind\":\"phone\",\"indexed\":true},"
     " {\"name\":\"website\",\"kind\":\"url\"},"
     " {\"name\":\"country\",\"kind\":\"text\",\"max_length\":2},"
     " {\"name\":\"source\",\"kind\":\"enum\",\"indexed\":true,"
     "  \"values\":[\"web_form\",\"referral\",\"event\",\"cold_call\",\"advertising\","
     "             \"partner\",\"import\",\"other\"],\"default\":\"other\"},"
     " {\"name\":\"form\",\"kind\":\"text\",\"max_length\":64,\"label\":\"Web form\"},"
     " {\"name\":\"campaign\",\"kind\":\"ref\",\"ref\":\"crm.campaign\",\"indexed\":true},"
     " {\"name\":\"score\",\"kind\":\"int\",\"default\":0,\"indexed\":true},"
     " {\"name\":\"status\",\"kind\":\"enum\",\"indexed\":true,"
     "  \"values\":[\"new\",\"working\",\"nurturing\",\"qualified\",\"converted\","
     "             \"recycled\",\"disqualified\"],\"default\":\"new\"},"
     " {\"name\":\"message\",\"kind\":\"text\",\"max_length\":5000},"
     " {\"name\":\"consent_email\",\"kind\":\"bool\",\"default\":false},"
     " {\"name\":\"nurture_step\",\"kind\":\"int\",\"default\":0},"
     " {\"name\":\"last_touch_at\",\"kind\":\"datetime\"},"
     " {\"name\":\"converted_at\",\"kind\":\"datetime\",\"indexed\":true},"
     " {\"name\":\"converted_contact\",\"kind\":\"ref\",\"ref\":\"crm.contact\"},"
     " {\"name\":\"converted_company\",\"kind\":\"ref\",\"ref\":\"crm.company\"},"
     " {\"name\":\"converted_deal\",\"kind\":\"int\"}]"},

    {"crm.deal", "Deal",
     "[{\"name\":\"name\",\"kind\":\"text\",\"required\":true,\"searchable\":true,"
     "  \"max_length\":200},"
     " {\"name\":\"company\",\"kind\":\"ref\",\"ref\":\"crm.company\",\"indexed\":true},"
     " {\"name\":\"contact\",\"kind\":\"ref\",\"ref\":\"crm.contact\",\"indexed\":true},"
     " {\"name\":\"lead\",\"kind\":\"ref\",\"ref\":\"crm.lead\"},"
     " {\"name\":\"stage\",\"kind\":\"text\",\"max_length\":64,\"indexed\":true,"
     "  \"label\":\"Stage (pipeline.stages)\"},"
     " {\"name\":\"amount\",\"kind\":\"decimal\",\"scale\":2},"
     " {\"name\":\"currency\",\"kind\":\"enum\",\"values\":" CURRENCIES ",\"default\":\"EUR\"},"
     " {\"name\":\"probability\",\"kind\":\"int\",\"label\":\"Probability (%)\"},"
     " {\"name\":\"close_date\",\"kind\":\"date\",\"indexed\":true},"
     " {\"name\":\"lines\",\"kind\":\"json\","
     "  \"label\":\"Lines [{product, quantity, price}]\"},"
     " {\"name\":\"closed_at\",\"kind\":\"datetime\",\"indexed\":true},"
     " {\"name\":\"lost_reason\",\"kind\":\"text\",\"max_length\":500}]"},

    {"crm.activity", "Activity",
     "[{\"name\":\"kind\",\"kind\":\"enum\",\"required\":true,"
     "  \"values\":[\"call\",\"email\",\"meeting\",\"note\"]},"
     " {\"name\":\"subject\",\"kind\":\"text\",\"searchable\":true,\"max_length\":300},"
     " {\"name\":\"body\",\"kind\":\"text\",\"searchable\":true,\"max_length\":20000},"
     " {\"name\":\"at\",\"kind\":\"datetime\",\"indexed\":true,\"label\":\"When\"},"
     " {\"name\":\"duration_minutes\",\"kind\":\"int\"},"
     " {\"name\":\"direction\",\"kind\":\"enum\",\"values\":[\"inbound\",\"outbound\"]},"
     RELATED "]"},

    {"crm.task", "Task",
     "[{\"name\":\"title\",\"kind\":\"text\",\"required\":true,\"searchable\":true,"
     "  \"max_length\":300},"
     " {\"name\":\"description\",\"kind\":\"text\",\"max_length\":10000},"
     " {\"name\":\"assignee\",\"kind\":\"ref\",\"ref\":\"core.user\",\"indexed\":true},"
     " {\"name\":\"due\",\"kind\":\"date\",\"indexed\":true},"
     " {\"name\":\"reminder\",\"kind\":\"datetime\",\"indexed\":true},"
     " {\"name\":\"status\",\"kind\":\"enum\",\"values\":[\"open\",\"done\",\"cancelled\"],"
     "  \"default\":\"open\",\"indexed\":true},"
     " {\"name\":\"priority\",\"kind\":\"enum\",\"values\":[\"low\",\"normal\",\"high\"],"
     "  \"default\":\"normal\"},"
     " {\"name\":\"deal\",\"kind\":\"ref\",\"ref\":\"crm.deal\",\"indexed\":true},"
     " {\"name\":\"done_at\",\"kind\":\"datetime\"}," RELATED "]"},

    {"crm.ticket", "Ticket",
     "[{\"name\":\"subject\",\"kind\":\"text\",\"required\":true,\"searchable\":true,"
     "  \"max_length\":300},"
     " {\"name\":\"description\",\"kind\":\"text\",\"searchable\":true,\"max_length\":20000},"
     " {\"name\":\"status\",\"kind\":\"enum\",\"indexed\":true,"
     "  \"values\":[\"new\",\"open\",\"pending\",\"resolved\",\"closed\"],\"default\":\"new\"},"
     " {\"name\":\"priority\",\"kind\":\"enum\",\"indexed\":true,"
     "  \"values\":[\"low\",\"normal\",\"high\",\"urgent\"],\"default\":\"normal\"},"
     " {\"name\":\"category\",\"kind\":\"text\",\"max_length\":100,\"indexed\":true},"
     " {\"name\":\"channel\",\"kind\":\"enum\","
     "  \"values\":[\"email\",\"phone\",\"web\",\"chat\",\"other\"],\"default\":\"web\"},"
     " {\"name\":\"contact\",\"kind\":\"ref\",\"ref\":\"crm.contact\",\"indexed\":true},"
     " {\"name\":\"company\",\"kind\":\"ref\",\"ref\":\"crm.company\",\"indexed\":true},"
     " {\"name\":\"assignee\",\"kind\":\"ref\",\"ref\":\"core.user\",\"indexed\":true},"
     " {\"name\":\"sla_due\",\"kind\":\"datetime\",\"indexed\":true,\"label\":\"SLA due\"},"
     " {\"name\":\"escalated\",\"kind\":\"bool\",\"default\":false},"
     " {\"name\":\"escalated_at\",\"kind\":\"datetime\"},"
     " {\"name\":\"first_response_at\",\"kind\":\"datetime\"},"
     " {\"name\":\"resolved_at\",\"kind\":\"datetime\",\"indexed\":true},"
     " {\"name\":\"closed_at\",\"kind\":\"datetime\"},"
     " {\"name\":\"satisfaction\",\"kind\":\"int\",\"label\":\"Satisfaction (1-5)\"},"
     " {\"name\":\"satisfaction_comment\",\"kind\":\"text\",\"max_length\":2000}]"},

    {"crm.message", "Message",
     "[{\"name\":\"to\",\"kind\":\"email\",\"required\":true,\"indexed\":true},"
     " {\"name\":\"cc\",\"kind\":\"text\",\"max_length\":1000},"
     " {\"name\":\"subject\",\"kind\":\"text\",\"max_length\":500,\"searchable\":true},"
     " {\"name\":\"body\",\"kind\":\"text\",\"max_length\":200000},"
     " {\"name\":\"status\",\"kind\":\"enum\",\"values\":[\"queued\",\"sent\",\"failed\"],"
     "  \"default\":\"queued\",\"indexed\":true},"
     " {\"name\":\"attempts\",\"kind\":\"int\",\"default\":0},"
     " {\"name\":\"next_attempt_at\",\"kind\":\"datetime\",\"indexed\":true},"
     " {\"name\":\"error\",\"kind\":\"text\",\"max_length\":2000},"
     " {\"name\":\"sent_at\",\"kind\":\"datetime\",\"indexed\":true},"
     " {\"name\":\"template\",\"kind\":\"ref\",\"ref\":\"crm.email_template\"},"
     " {\"name\":\"campaign\",\"kind\":\"ref\",\"ref\":\"crm.campaign\",\"indexed\":true},"
     " {\"name\":\"contact\",\"kind\":\"ref\",\"ref\":\"crm.contact\",\"indexed\":true},"
     RELATED "]"},
};

/*
 * Default roles: {role, description, grants}. Levels: none, own, team, all
 * (DESIGN.md "Permissions"); "own" create scope means the creator owns the
 * record. Admins change these through /api/v1/roles/{id}/grants; a later
 * start keeps their changes.
 */
#define RW(r, c, u, d) "{\"read\":\"" r "\",\"create\":\"" c "\",\"update\":\"" u "\",\"delete\":\"" d "\"}"
#define READ_ONLY RW("all", "none", "none", "none")

static const crm_util_role_spec roles[] = {
    {"sales rep", "works their own leads, deals, activities and tasks",
     "{\"core.user\":" READ_ONLY ","
     " \"crm.company\":" RW("all", "own", "own", "none") ","
     " \"crm.contact\":" RW("all", "own", "own", "none") ","
     " \"crm.product\":" READ_ONLY ","
     " \"crm.lead\":" RW("own", "own", "own", "own") ","
     " \"crm.deal\":" RW("own", "own", "own", "own") ","
     " \"crm.activity\":" RW("own", "own", "own", "own") ","
     " \"crm.task\":" RW("own", "own", "own", "own") ","
     " \"crm.ticket\":" RW("own", "own", "none", "none") ","
     " \"crm.campaign\":" READ_ONLY ","
     " \"crm.segment\":" READ_ONLY ","
     " \"crm.email_template\":" READ_ONLY ","
     " \"crm.message\":" RW("own", "own", "none", "none") "}"},
    {"sales manager", "sees and manages the team's pipeline",
     "{\"core.user\":" READ_ONLY ","
     " \"crm.company\":" RW("all", "team", "team", "team") ","
     " \"crm.contact\":" RW("all", "team", "team", "team") ","
     " \"crm.product\":" RW("all", "all", "all", "all") ","
     " \"crm.lead\":" RW("team", "team", "team", "team") ","
     " \"crm.deal\":" RW("team", "team", "team", "team") ","
     " \"crm.activity\":" RW("team", "team", "team", "team") ","
     " \"crm.task\":" RW("team", "team", "team", "team") ","
     " \"crm.ticket\":" RW("team", "team", "none", "none") ","
     " \"crm.campaign\":" READ_ONLY ","
     " \"crm.segment\":" READ_ONLY ","
     " \"crm.email_template\":" READ_ONLY ","
     " \"crm.message\":" RW("team", "team", "none", "none") "}"},
    {"support agent", "answers tickets for every customer",
     "{\"core.user\":" READ_ONLY ","
     " \"crm.company\":" RW("all", "own", "own", "none") ","
     " \"crm.contact\":" RW("all", "own", "all", "none") ","
     " \"crm.product\":" READ_ONLY ","
     " \"crm.ticket\":" RW("all", "all", "all", "none") ","
     " \"crm.activity\":" RW("all", "own", "own", "own") ","
     " \"crm.task\":" RW("own", "own", "own", "own") ","
     " \"crm.email_template\":" READ_ONLY ","
     " \"crm.message\":" RW("own", "own", "none", "none") "}"},
    {"marketing", "runs campaigns, segments, templates and the leads they bring",
     "{\"core.user\":" READ_ONLY ","
     " \"crm.company\":" READ_ONLY ","
     " \"crm.contact\":" RW("all", "all", "all", "none") ","
     " \"crm.product\":" READ_ONLY ","
     " \"crm.lead\":" RW("all", "all", "all", "none") ","
     " \"crm.campaign\":" RW("all", "all", "all", "all") ","
     " \"crm.segment\":" RW("all", "all", "all", "all") ","
     " \"crm.email_template\":" RW("all", "all", "all", "all") ","
     " \"crm.message\":" RW("all", "all", "all", "none") ","
     " \"crm.activity\":" RW("all", "own", "own", "own") "}"},
};

/* read-only: every type of the plugin, and the users they name (built from the list). */
static int declare_read_only(void)
{
    json_t *read = json_pack("{s:s,s:s,s:s,s:s}", "read", "all", "create", "none", "update",
                             "none", "delete", "none");
    json_t *grants = json_pack("{s:O}", "core.user", read);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        json_object_set(grants, types[t].type, read);
    int rc = crmp_host->role_declare(crmp_self, "read-only",
                                     "reads every crm record, changes nothing", grants);
    json_decref(grants);
    json_decref(read);
    return rc;
}

int crmp_types_init(void)
{
    int rc = crm_util_declare_types(crmp_host, crmp_self, types, sizeof types / sizeof types[0]);
    if (rc == CRM_OK)
        rc = crm_util_declare_roles(crmp_host, crmp_self, roles, sizeof roles / sizeof roles[0]);
    if (rc == CRM_OK) rc = declare_read_only();
    return rc;
}
