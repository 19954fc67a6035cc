"""
The sales journey through HTTP: web form → lead → score (rule) → conversion →
deal through the stages (history shows every move) → won → onboarding task
(rule), and the timeline of the deal.
"""
import crmtest
from crmtest import R, X, lib
from lib import eq, ok, status

SETTINGS = "forms.contact.secret = s3cret\nforms.rate_limit = 5\n"


def shared_server():
    return crmtest.server(SETTINGS)


FORM = {"first_name": "Ελένη", "last_name": "Παπαδοπούλου", "email": "eleni@acme-shipping.gr",
        "phone": "+30 210 123 4567", "company": "Acme Shipping", "job_title": "Head of Operations",
        "message": "We need a CRM for 40 people in three offices, starting next month.",
        "consent_email": "on"}


def submit(srv, body, secret="s3cret"):
    headers = {"X-Form-Secret": secret} if secret else {}
    return srv.post(X + "/forms/contact", body, token="", headers=headers)


def test_form_to_won_deal_with_onboarding(srv):
    # 1. a visitor submits the web form: no login, a per-form secret
    r = status(submit(srv, FORM), 201, "form")
    lead_id = r.json["id"]
    lead = status(srv.get("%s/crm.lead/%d" % (R, lead_id)), 200).json
    eq(lead["source"], "web_form", "source")
    eq(lead["form"], "contact", "form")
    eq(lead["status"], "new", "status")
    eq(lead["company_name"], "Acme Shipping", "company")
    eq(lead["consent_email"], True, "checkbox")
    # 2. scored by scripts/lead_scoring.lua: web 15 + company mail 20 + company 15 + phone 10
    #    + head 20 + message 5 + consent 5
    eq(lead["score"], 90, "score")
    # a change of a scored fact rescores it
    r = status(srv.patch("%s/crm.lead/%d" % (R, lead_id), {"job_title": "Clerk"}), 200)
    eq(r.json["score"], 70, "rescored")

    # 3. conversion: contact + company + deal in one call
    r = status(srv.post("%s/leads/%d/convert" % (X, lead_id),
                        {"deal": {"amount": "12000.00", "currency": "EUR",
                                  "close_date": "2030-06-30"}}), 200, "convert")
    contact, company, deal = r.json["contact"], r.json["company"], r.json["deal"]
    eq(company["name"], "Acme Shipping", "company name")
    eq(contact["first_name"], "Ελένη", "contact")
    eq(contact["company"], company["id"], "contact's company")
    eq(contact["email"], "eleni@acme-shipping.gr", "contact email")
    eq(deal["company"], company["id"], "deal company")
    eq(deal["contact"], contact["id"], "deal contact")
    eq(deal["stage"], "explore", "first stage")
    eq(deal["probability"], 10, "stage probability")
    eq(deal["amount"], "12000.00", "amount")
    eq(r.json["lead"]["status"], "converted", "lead status")
    eq(r.json["lead"]["converted_deal"], deal["id"], "lead refs")
    eq(r.json["lead"]["converted_contact"], contact["id"], "lead refs")
    # converting twice is a conflict, and writes nothing
    n = crmtest.count(srv, "crm.contact")
    lib.error(srv.post("%s/leads/%d/convert" % (X, lead_id), {}), 409)
    eq(crmtest.count(srv, "crm.contact"), n, "nothing written")

    # 4. the deal moves through the stages: a PATCH of its stage, with history
    for stage, probability in (("proposal", 30), ("negotiation", 60)):
        r = status(srv.patch("%s/crm.deal/%d" % (R, deal["id"]), {"stage": stage}), 200, stage)
        eq(r.json["probability"], probability, "probability at " + stage)
    board = status(srv.get(X + "/board"), 200).json
    col = {c["stage"]: c for c in board["stages"]}
    eq(col["negotiation"]["count"], 1, "board")
    eq(col["negotiation"]["deals"][0]["id"], deal["id"], "board deal")
    eq(col["negotiation"]["totals"], {"EUR": "12000.00"}, "board totals")
    eq(status(srv.get("%s/crm.task?deal=%d" % (R, deal["id"])), 200).json["data"], [], "no task yet")

    # 5. won: the onboarding rule creates a task for the owner
    r = status(srv.patch("%s/crm.deal/%d" % (R, deal["id"]), {"stage": "won"}), 200, "won")
    eq(r.json["probability"], 100, "won probability")
    ok(r.json["closed_at"], "closed_at set")
    tasks = status(srv.get("%s/crm.task?deal=%d" % (R, deal["id"])), 200).json["data"]
    eq(len(tasks), 1, "one onboarding task")
    eq(tasks[0]["title"], "Onboard Acme Shipping", "task title")
    ok(tasks[0]["due"], "due date")
    # history shows every move of the stage
    hist = status(srv.get("%s/crm.deal/%d/history" % (R, deal["id"])), 200).json
    entries = hist["data"] if isinstance(hist, dict) else hist
    text = str(entries)
    for stage in ("proposal", "negotiation", "won"):
        ok(stage in text, "history names %s: %s" % (stage, text[:300]))
    # a second change of the won deal makes no second task
    status(srv.patch("%s/crm.deal/%d" % (R, deal["id"]), {"amount": "12500"}), 200)
    eq(len(status(srv.get("%s/crm.task?deal=%d" % (R, deal["id"])), 200).json["data"]), 1, "one")

    # 6. the deal's timeline: the task and an activity, newest first
    crmtest.create(srv, "crm.activity", {"kind": "call", "subject": "Kick-off call",
                                         "at": "2020-01-01T10:00:00Z",
                                         "related_type": "crm.deal", "related_id": deal["id"]})
    tl = status(srv.get("%s/timeline/crm.deal/%d" % (X, deal["id"])), 200).json
    kinds = [i["kind"] for i in tl["data"]]
    ok("task" in kinds and "activity" in kinds and "created" in kinds, "timeline kinds %r" % kinds)
    eq(tl["data"][-1]["kind"], "activity", "oldest last")
    # the contact's timeline shows the deal
    tl = status(srv.get("%s/timeline/crm.contact/%d" % (X, contact["id"])), 200).json
    ok("deal" in [i["kind"] for i in tl["data"]], "contact timeline has the deal")


def test_form_secret_and_rate_limit(srv):
    lib.error(submit(srv, FORM, secret=None), 403, field="secret")
    lib.error(submit(srv, FORM, secret="wrong"), 403, field="secret")
    # the secret may come as a field, for plain HTML forms
    body = dict(FORM, secret="s3cret", email="second@example.org")
    status(submit(srv, body, secret=None), 201, "secret as a field")
    lib.error(srv.post(X + "/forms/nosuchform", FORM, token="", headers={"X-Form-Secret": "x"}),
              404)
    # 5 a minute (forms.rate_limit): the earlier calls of this minute count too
    codes = [submit(srv, dict(FORM, email="r%d@example.org" % i)).status for i in range(8)]
    ok(429 in codes, "throttled: %r" % codes)


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
