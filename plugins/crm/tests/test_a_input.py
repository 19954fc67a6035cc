"""
Bad input on every endpoint of acquire.c, sales.c and reports.c: a 400 (or
404) naming the field, and nothing written.
"""
import crmtest
from crmtest import R, X, lib
from lib import eq, ok, status

SETTINGS = "forms.contact.secret = s3cret\nforms.rate_limit = 1000\n"


def shared_server():
    return crmtest.server(SETTINGS)


def counts(srv):
    return [crmtest.count(srv, t) for t in ("crm.lead", "crm.company", "crm.contact", "crm.deal")]


def form(srv, body, **kw):
    return srv.post(X + "/forms/contact", body, token="", headers={"X-Form-Secret": "s3cret"}, **kw)


def test_web_form_bad_input(srv):
    before = counts(srv)
    cases = [
        ({"first_name": "A"}, "email"),                     # neither email nor phone
        ({"email": "not-an-email"}, "email"),               # the record layer's check
        ({"email": "a@example.org", "phone": "12"}, "phone"),
        ({"email": "a@example.org", "is_admin": True}, "is_admin"),   # not a form field
        ({"email": "a@example.org", "owner": 1}, "owner"),  # no mass assignment
        ({"email": "a@example.org", "first_name": 5}, "first_name"),
        ({"email": "a@example.org", "first_name": "x" * 101}, "first_name"),
        ({"email": "a@example.org", "website": "javascript:alert(1)"}, "website"),
        ([1, 2], "body"),
    ]
    for body, field in cases:
        lib.error(form(srv, body), 400, field=field, what="form %r" % (body,))
    lib.error(srv.post(X + "/forms/contact", raw="{nope", token="",
                       headers={"X-Form-Secret": "s3cret", "Content-Type": "application/json"}),
              400, field="body")
    # an HTML form's body (application/x-www-form-urlencoded)
    html = X + "/forms/contact"
    for body, field in (("email=a%40example.org&is_admin=1", "is_admin"),
                        ("email=a%40example.org&email=b%40example.org", "email"),  # twice
                        ("email=a%40example.org&first_name=%zz", "first_name"),   # bad escape
                        ("email=a%40example.org&first_name=%ff%fe", "first_name"), # not UTF-8
                        ("email=a%40example.org&first_name=a%00b", "first_name"),  # NUL
                        ("email=not-an-email", "email"),
                        ("first_name=Only+a+name", "email"),
                        ("", "email")):
        lib.error(crmtest.post_form(srv, html, body, headers={"X-Form-Secret": "s3cret"}), 400,
                  field=field, what="form %r" % body)
    lib.error(crmtest.post_form(srv, html, "email=a%40example.org&secret=wrong"), 403,
              field="secret", what="the secret as a form field")
    r = lib.error(crmtest.post_form(srv, html, "email: a@example.org",
                                    headers={"X-Form-Secret": "s3cret"},
                                    content_type="text/plain"), 415, what="text/plain")
    ok("x-www-form-urlencoded" in r.json["error"]["message"], r.json["error"]["message"])
    eq(counts(srv), before, "nothing written")


def test_form_posted_from_the_business_website(srv):
    """The form lives on the business's own site: the browser marks its post cross-site
    (Origin, Sec-Fetch-Site) and the kernel takes it, because the route is public and
    declared CRM_CROSS_SITE; a cross-site login is still refused."""
    before = crmtest.count(srv, "crm.lead")
    site = {"Origin": "https://www.example-hotel.gr", "Sec-Fetch-Site": "cross-site"}
    r = crmtest.post_form(srv, X + "/forms/contact",
                          "email=visitor%40example.org&first_name=Eleni&secret=s3cret",
                          headers=site)
    status(r, 201, "a cross-site form post")
    eq(crmtest.count(srv, "crm.lead"), before + 1, "the lead")
    lib.error(crmtest.post_form(srv, X + "/forms/contact", "email=v2%40example.org&secret=no",
                                headers=site), 403, field="secret", what="secret still checked")
    lib.error(srv.post("/api/v1/auth/login", {"username": "admin", "password": "x"}, token="",
                       headers=site), 403, code="csrf", what="a cross-site login")


def test_convert_bad_input(srv):
    lead = crmtest.create(srv, "crm.lead", {"first_name": "Sara", "company_name": "Zagros",
                                            "email": "sara@zagros.ir"})
    before = counts(srv)
    url = "%s/leads/%d/convert" % (X, lead["id"])
    lib.error(srv.post(X + "/leads/abc/convert", {}), 400, field="id")
    lib.error(srv.post(X + "/leads/0/convert", {}), 400, field="id")
    lib.error(srv.post(X + "/leads/999999/convert", {}), 404)
    lib.error(srv.post(url, [1]), 400, field="body")
    lib.error(srv.post(url, {"dael": {}}), 400, field="dael")
    lib.error(srv.post(url, {"company": "Zagros"}), 400, field="company")
    lib.error(srv.post(url, {"deal": True}), 400, field="deal")
    lib.error(srv.post(url, {"contact": []}), 400, field="contact")
    lib.error(srv.post(url, {"company": 999999}), 404, field="company.id" if False else None)
    lib.error(srv.post(url, {"contact": {"email": "bad"}}), 400, field="contact.email")
    lib.error(srv.post(url, {"company": {"website": "ftp://x"}}), 400, field="company.website")
    lib.error(srv.post(url, {"deal": {"amount": "-5"}}), 400, field="deal.amount")
    lib.error(srv.post(url, {"deal": {"probability": 101}}), 400, field="deal.probability")
    lib.error(srv.post(url, {"deal": {"currency": "XXX"}}), 400, field="deal.currency")
    lib.error(srv.post(url, {"deal": {"nonsense": 1}}), 400, field="deal.nonsense")
    eq(counts(srv), before, "nothing written")
    eq(status(srv.get("%s/crm.lead/%d" % (R, lead["id"])), 200).json["status"], "new", "lead")


def test_deal_stage_checks(srv):
    before = counts(srv)
    lib.error(srv.post(R + "/crm.deal", {"name": "x", "stage": "bogus"}), 400, field="stage")
    lib.error(srv.post(R + "/crm.deal", {"name": "x", "amount": "-1"}), 400, field="amount")
    lib.error(srv.post(R + "/crm.deal", {"name": "x", "probability": -1}), 400,
              field="probability")
    eq(counts(srv), before, "nothing written")
    deal = crmtest.create(srv, "crm.deal", {"name": "ok"})
    eq((deal["stage"], deal["probability"]), ("explore", 10), "defaults")
    lib.error(srv.patch("%s/crm.deal/%d" % (R, deal["id"]), {"stage": "Won"}), 400, field="stage")
    # an explicit probability with the move wins over the stage's
    r = status(srv.patch("%s/crm.deal/%d" % (R, deal["id"]),
                         {"stage": "proposal", "probability": 45}), 200)
    eq(r.json["probability"], 45, "own probability")
    # reopening a closed deal clears closed_at
    status(srv.patch("%s/crm.deal/%d" % (R, deal["id"]), {"stage": "lost"}), 200)
    r = status(srv.patch("%s/crm.deal/%d" % (R, deal["id"]), {"stage": "explore"}), 200)
    eq(r.json.get("closed_at"), None, "reopened")


def test_read_endpoints_bad_input(srv):
    cases = [
        (X + "/board?limit=abc", 400, "limit"),
        (X + "/board?limit=201", 400, "limit"),
        (X + "/board?owner=-1", 400, "owner"),
        (X + "/forecast?by=week", 400, "by"),
        (X + "/forecast?from=2024-13-01", 400, "from"),
        (X + "/forecast?to=tomorrow", 400, "to"),
        (X + "/timeline/crm.deal/abc", 400, "id"),
        (X + "/timeline/crm.deal/-3", 400, "id"),
        (X + "/timeline/crm.deal/1?limit=0", 400, "limit"),
        (X + "/timeline/no.such_type/1", 400, None),
        (X + "/timeline/crm.deal/999999", 404, None),
        (X + "/reports/nope", 404, "name"),
        (X + "/reports/dashboard?format=xml", 400, "format"),
        (X + "/reports/dashboard?today=yesterday", 400, "today"),
        (X + "/reports/sales-cycle?today=2024-02-30", 400, "today"),
    ]
    for path, code, field in cases:
        lib.error(srv.get(path), code, field=field, what=path)
    # no token, no reports
    lib.error(srv.get(X + "/reports/dashboard", token=""), 401)
    lib.error(srv.get(X + "/board", token=""), 401)
    lib.error(srv.post(X + "/leads/1/convert", {}, token=""), 401)


if __name__ == "__main__":
    lib.run(globals(), "plugin_crm_a_input")
