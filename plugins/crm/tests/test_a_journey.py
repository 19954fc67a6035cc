"""
The customer's whole journey through HTTP, in one test against a real server with a
frozen clock (CRM_CLOCK): an HTML form post → a lead → its score (the shipped
lead_scoring rule) → conversion (contact + company + deal) → the deal through the
stages → won → the onboarding task (the shipped onboarding rule) → a ticket → its SLA
escalation (the server restarted five hours later: the schedule's first tick) → a
campaign to a segment, received by an SMTP sink on loopback. Then the finer points of
web forms (secret, rate limit per client address, behind a proxy) and an atomic
conversion.
"""
import email
import email.policy

import crmtest
from crmtest import R, X, lib
from lib import eq, ok, status

SETTINGS = "forms.contact.secret = s3cret\nforms.rate_limit = 5\n"
T0 = 1893488400  # 2030-01-01T09:00:00Z
SINK = crmtest.SmtpSink()


def shared_server():
    return crmtest.server(SETTINGS)


FORM = {"first_name": "Ελένη", "last_name": "Παπαδοπούλου", "email": "eleni@acme-shipping.gr",
        "phone": "+30 210 123 4567", "company": "Acme Shipping", "job_title": "Head of Operations",
        "message": "We need a CRM for 40 people in three offices, starting next month.",
        "consent_email": "on"}


def submit(srv, body, secret="s3cret"):
    headers = {"X-Form-Secret": secret} if secret else {}
    return srv.post(X + "/forms/contact", body, token="", headers=headers)


def get(srv, type_, id_):
    return status(srv.get("%s/%s/%d" % (R, type_, id_)), 200, "get %s %d" % (type_, id_)).json


def test_whole_journey(_):
    s = crmtest.server("forms.contact.secret = s3cret\nsla.hours.urgent = 2\n"
                       "sla.manager = the_manager\nmail.smtp_url = %s\n"
                       "mail.from = CRM <crm@example.com>\n" % SINK.url(),
                       env={"CRM_CLOCK": str(T0)})
    try:
        manager, _ = s.user("the_manager")
        admin = s.user_id("admin")

        # 1. a visitor posts the web form: a plain HTML form, no login, the form's secret
        #    as a hidden field, the consent checkbox "on"
        r = status(crmtest.post_form(s, X + "/forms/contact", dict(FORM, secret="s3cret")), 201,
                   "form")
        eq(r.json["status"], "received", "answer")
        lead = get(s, "crm.lead", r.json["id"])
        eq((lead["source"], lead["form"], lead["status"]), ("web_form", "contact", "new"), "lead")
        eq((lead["first_name"], lead["company_name"], lead["consent_email"]),
           ("Ελένη", "Acme Shipping", True), "the form's fields")
        eq(lead["created_at"], "2030-01-01T09:00:00Z", "the platform's clock")

        # 2. scored by scripts/lead_scoring.lua: web 15 + company mailbox 20 + company 15
        #    + phone 10 + head 20 + message 5 + consent 5; a scored fact changing rescores it
        eq(lead["score"], 90, "score")
        eq(status(s.patch("%s/crm.lead/%d" % (R, lead["id"]), {"job_title": "Operations Manager"}),
                  200).json["score"], 80, "rescored: manager 10 instead of head 20")

        # 3. conversion: contact + company + deal in one call
        r = status(s.post("%s/leads/%d/convert" % (X, lead["id"]),
                          {"deal": {"amount": "12000.00", "currency": "EUR",
                                    "close_date": "2030-06-30"}}), 200, "convert")
        contact, company, deal = r.json["contact"], r.json["company"], r.json["deal"]
        eq(company["name"], "Acme Shipping", "company")
        eq((contact["first_name"], contact["email"], contact["company"], contact["consent_email"]),
           ("Ελένη", "eleni@acme-shipping.gr", company["id"], True), "contact")
        eq((deal["company"], deal["contact"], deal["stage"], deal["probability"], deal["amount"]),
           (company["id"], contact["id"], "explore", 10, "12000.00"), "deal")
        eq((r.json["lead"]["status"], r.json["lead"]["converted_at"],
            r.json["lead"]["converted_deal"]),
           ("converted", "2030-01-01T09:00:00Z", deal["id"]), "the lead remembers")
        n = crmtest.count(s, "crm.contact")
        lib.error(s.post("%s/leads/%d/convert" % (X, lead["id"]), {}), 409, what="twice")
        eq(crmtest.count(s, "crm.contact"), n, "nothing written twice")

        # 4. the deal through the stages: a PATCH of its stage each
        path = "%s/crm.deal/%d" % (R, deal["id"])
        for stage, probability in (("proposal", 30), ("negotiation", 60)):
            eq(status(s.patch(path, {"stage": stage}), 200, stage).json["probability"],
               probability, "probability at " + stage)
        col = {c["stage"]: c for c in status(s.get(X + "/board"), 200).json["stages"]}
        eq((col["negotiation"]["count"], col["negotiation"]["totals"]), (1, {"EUR": "12000.00"}),
           "the board")
        eq(status(s.get("%s/crm.task?deal=%d" % (R, deal["id"])), 200).json["data"], [],
           "no task before it is won")

        # 5. won: closed now, and the onboarding rule gives the owner a task due in a week
        r = status(s.patch(path, {"stage": "won"}), 200, "won")
        eq((r.json["probability"], r.json["closed_at"]), (100, "2030-01-01T09:00:00Z"), "closed")
        tasks = status(s.get("%s/crm.task?deal=%d" % (R, deal["id"])), 200).json["data"]
        eq([(t["title"], t["due"], t["assignee"]) for t in tasks],
           [("Onboard Acme Shipping", "2030-01-08", admin)], "one onboarding task")
        status(s.patch(path, {"amount": "12500.00"}), 200)
        eq(crmtest.count(s, "crm.task", "&deal=%d" % deal["id"]), 1, "no second task")
        # the deal's timeline: its field changes (history) and the task
        tl = status(s.get("%s/timeline/crm.deal/%d" % (X, deal["id"])), 200).json["data"]
        moves = [i["summary"] for i in tl if i["kind"] == "change" and "stage" in i["changes"]]
        eq(sorted(moves), sorted(["stage: explore -> proposal, probability: 10 -> 30",
                                  "stage: proposal -> negotiation, probability: 30 -> 60",
                                  "stage: negotiation -> won, probability: 60 -> 100, "
                                  "closed_at: - -> 2030-01-01T09:00:00Z"]), "stage moves")
        eq([i["changes"]["amount"] for i in tl if "amount" in i.get("changes", {})],
           [["12000.00", "12500.00"]], "the amount's change, old and new")
        ok("task" in [i["kind"] for i in tl], "the task on the timeline")

        # 6. the customer opens an urgent ticket: routed SLA due in 2 hours
        ticket = crmtest.create(s, "crm.ticket", {"subject": "Cannot import our contacts",
                                                  "priority": "urgent", "status": "open",
                                                  "contact": contact["id"],
                                                  "company": company["id"]})
        eq((ticket["sla_due"], ticket["escalated"]), ("2030-01-01T11:00:00Z", False), "SLA")

        # 7. five hours later nobody answered: the restart's first tick runs the SLA sweep
        crmtest.restart(s, clock=T0 + 5 * 3600)
        t = crmtest.wait_for(lambda: (lambda x: x["escalated"] and x)(
            get(s, "crm.ticket", ticket["id"])))
        ok(t, "escalated by the schedule")
        eq((t["escalated_at"], t["assignee"]), ("2030-01-01T14:00:00Z", manager),
           "escalated to the manager at the firing's time")
        tl = status(s.get("%s/timeline/crm.contact/%d" % (X, contact["id"])), 200).json["data"]
        eq(sorted({i["kind"] for i in tl} & {"deal", "ticket"}), ["deal", "ticket"],
           "the contact's timeline: the deal and the ticket")

        # 8. a campaign to the new customer's people: queued and received by the SMTP sink
        seg = crmtest.create(s, "crm.segment", {"name": "Acme Shipping people",
                                                "filter": {"company": company["id"]}})
        tpl = crmtest.create(s, "crm.email_template", {
            "name": "welcome", "subject": "Welcome, {{contact.first_name}}",
            "body": "Dear {{contact.first_name}},\nwelcome aboard, {{company.name}}."})
        camp = crmtest.create(s, "crm.campaign", {"name": "Welcome", "segment": seg["id"],
                                                  "template": tpl["id"]})
        before = len(SINK.mails)
        r = status(s.post("%s/campaigns/%d/send" % (X, camp["id"])), 200, "send")
        eq(r.json["queued"], 1, "one recipient")
        mails = SINK.wait(before + 1)
        eq(len(mails), before + 1, "the sink received it")
        eq(mails[-1][1], ["<eleni@acme-shipping.gr>"], "to the contact")
        msg = email.message_from_bytes(mails[-1][2], policy=email.policy.default)
        eq(str(msg["Subject"]), "Welcome, Ελένη", "subject")
        eq(msg.get_content().replace("\r\n", "\n"),
           "Dear Ελένη,\nwelcome aboard, Acme Shipping.", "body")
        m = crmtest.wait_for(lambda: (lambda x: x["status"] == "sent" and x)(
            status(s.get("%s/crm.message?campaign=%d" % (R, camp["id"])), 200).json["data"][0]))
        ok(m, "the outbox says sent")
        eq((m["contact"], m["attempts"], m["sent_at"]), (contact["id"], 1, "2030-01-01T14:00:00Z"),
           "sent at the platform's time")
        eq(get(s, "crm.campaign", camp["id"])["status"], "done", "campaign done")

        # conversion and sending are transactions, not command events in the stream
        eq(crmtest.events(s, "crm.lead_convert") + crmtest.events(s, "crm.campaign_send"), [],
           "no command events")
        ok(crmtest.events(s, "crm.ticket_escalated"), "the escalation is an event")
    finally:
        s.close()


def test_form_secret_and_rate_limit(srv):
    lib.error(submit(srv, FORM, secret=None), 403, field="secret")
    lib.error(submit(srv, FORM, secret="wrong"), 403, field="secret")
    # the secret may come as a field, for plain HTML forms (JSON works too)
    body = dict(FORM, secret="s3cret", email="second@example.org")
    status(submit(srv, body, secret=None), 201, "secret as a field")
    lib.error(srv.post(X + "/forms/nosuchform", FORM, token="", headers={"X-Form-Secret": "x"}),
              404)
    # 5 a minute per client address (forms.rate_limit); the earlier calls count too
    codes = [submit(srv, dict(FORM, email="r%d@example.org" % i)).status for i in range(8)]
    ok(429 in codes, "throttled: %r" % codes)
    # a forged X-Forwarded-For buys nothing: no proxy is trusted here
    lib.error(crmtest.post_form(srv, X + "/forms/contact", {"email": "f@example.org"},
                                headers={"X-Form-Secret": "s3cret",
                                         "X-Forwarded-For": "10.1.2.3"}), 429, what="forged")
    # another client address has its own budget
    status(crmtest.post_form(srv, X + "/forms/contact", {"email": "other@example.org"},
                             headers={"X-Form-Secret": "s3cret"}, source="127.0.0.2"), 201,
           "another client")


def test_rate_limit_behind_a_proxy(_):
    """forms.trust_proxy names the proxy: its requests count against the client it names
    last in X-Forwarded-For; addresses a client put in front do not matter; a peer that is
    not the proxy counts as itself whatever it sends."""
    s = crmtest.server("forms.contact.secret = s3cret\nforms.rate_limit = 2\n"
                       "forms.trust_proxy = 127.0.0.1, ::1\n")
    try:
        def via(xff, source=None):
            return crmtest.post_form(s, X + "/forms/contact", {"email": "p@example.org"},
                                     headers={"X-Form-Secret": "s3cret", "X-Forwarded-For": xff},
                                     source=source).status
        eq([via("10.0.0.1"), via("10.0.0.1"), via("10.0.0.1")], [201, 201, 429], "10.0.0.1")
        eq(via("10.0.0.2"), 201, "another client behind the proxy")
        eq(via("6.6.6.6, 10.0.0.1"), 429, "a forged left part does not change the client")
        eq(via("10.0.0.3, 127.0.0.1"), 201, "a chain of our proxies: the first before them")
        eq([via("10.0.0.9", "127.0.0.3"), via("10.0.0.8", "127.0.0.3"),
            via("10.0.0.7", "127.0.0.3")], [201, 201, 429],
           "not a proxy: counted as its own address")
    finally:
        s.close()


def test_conversion_is_atomic(srv):
    lead = crmtest.create(srv, "crm.lead", {"first_name": "Иван", "last_name": "Петров",
                                            "company_name": "Северный ветер",
                                            "email": "ivan@sever.ru"})
    before = [crmtest.count(srv, t) for t in ("crm.company", "crm.contact", "crm.deal")]
    # the deal (last step) fails: the company and contact made before it must not stay
    r = lib.error(srv.post("%s/leads/%d/convert" % (X, lead["id"]),
                           {"deal": {"stage": "nonsense"}}), 400, field="deal.stage")
    ok("stage" in r.json["error"]["message"], r.json["error"]["message"])
    after = [crmtest.count(srv, t) for t in ("crm.company", "crm.contact", "crm.deal")]
    eq(after, before, "nothing written")
    eq(status(srv.get("%s/crm.lead/%d" % (R, lead["id"])), 200).json["status"], "new", "lead")
    # an existing company, and no deal
    company = crmtest.create(srv, "crm.company", {"name": "Северный ветер"})
    r = status(srv.post("%s/leads/%d/convert" % (X, lead["id"]),
                        {"company": company["id"], "deal": False}), 200)
    eq(r.json["company"]["id"], company["id"], "existing company")
    eq(r.json["deal"], None, "no deal")
    eq(crmtest.count(srv, "crm.company"), before[0] + 1, "no second company")


if __name__ == "__main__":
    lib.run(globals(), "plugin_crm_a_journey")
