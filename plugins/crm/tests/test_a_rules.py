"""
The shipped rules: their Lua tests (scripts/tests/*_test.lua of the nurture
schedule, through `crm rules test`), and a site switching a plugin rule off.
"""
import os

import crmtest
from crmtest import R, lib
from lib import eq, ok, status

RULE_TESTS = os.path.join(crmtest.ROOT, "plugins", "crm", "scripts", "tests")
MINE = ["nurture_test.lua"]  # the rule tests of the rules acquire.c and sales.c ship


def test_nurture_rule_tests(srv):
    s = lib.Server()
    try:
        for name in MINE:
            p = s.cli("rules", "test", os.path.join(RULE_TESTS, name), check=False)
            ok(p.returncode == 0 and " 0 failed" in p.stdout,
               "%s: %s %s" % (name, p.stdout[-800:], p.stderr[-800:]))
    finally:
        s.close()


def test_site_disables_a_plugin_rule(srv):
    s = lib.Server()
    s.close()  # only for a scratch directory name
    site = os.path.join(os.path.dirname(s.dir), os.path.basename(s.dir) + "-scripts")
    os.makedirs(site, exist_ok=True)
    with open(os.path.join(site, "site.lua"), "w") as f:
        f.write('disable "crm: lead scoring on create"\n')
    srv2 = crmtest.server(scripts=site)
    try:
        lead = crmtest.create(srv2, "crm.lead", {"first_name": "A", "email": "a@company.com",
                                                 "source": "referral"}, token=None)
        eq(lead["score"], 0, "scoring on create is off")
        r = status(srv2.patch("%s/crm.lead/%d" % (R, lead["id"]), {"phone": "+1 555 0100"}), 200)
        eq(r.json["score"], 60, "scoring on update still runs")
        rules = status(srv2.get("/api/v1/rules"), 200).json
        listed = rules.get("data", rules) if isinstance(rules, dict) else rules
        states = {x.get("name"): x.get("state") for x in listed}
        eq(states.get("crm: lead scoring on create"), "disabled", "listed as disabled")
    finally:
        srv2.close()
        for f in os.listdir(site):
            os.unlink(os.path.join(site, f))
        os.rmdir(site)


if __name__ == "__main__":
    lib.run(globals(), "plugin_crm_a_rules")
