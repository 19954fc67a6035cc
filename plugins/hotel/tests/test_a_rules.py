"""
The shipped rules: their Lua tests (scripts/tests/*_test.lua, through `crm rules
test`), and the functions the plugin gives rules (crm.hotel.credit_points,
crm.hotel.room_rate), called from a site rule on hotel.checked_in.
"""
import glob
import os

import hoteltest as H
from hoteltest import R, X
import lib
from lib import eq, error, ok, status

RULE_TESTS = os.path.join(H.ROOT, "plugins", "hotel", "scripts", "tests")

SITE_RULE = """
rule {
  name = "site: check-in bonus",
  on   = "hotel.checked_in",
  run  = function(ev)
    local balance = crm.hotel.credit_points(ev.payload.guest, ev.payload.reservation, 25,
                                            "check-in bonus")
    local rate = crm.hotel.room_rate(ev.payload.room, ev.payload.arrival)
    crm.update("hotel.reservation", ev.payload.reservation,
               { notes = "balance " .. balance .. ", first night " .. rate })
  end,
}
"""


def shared_server():
    srv = lib.Server()
    scripts = os.path.join(srv.dir, "scripts")
    os.makedirs(scripts, exist_ok=True)
    with open(os.path.join(scripts, "site.lua"), "w") as f:
        f.write(SITE_RULE)
    return H.server(srv=srv)


def test_rule_tests(srv):
    """The shipped rules' Lua tests, against the real crm and hotel plugins (`crm rules test
    --conf`): their types, the nights and prices of booking.c, the state machine."""
    files = sorted(glob.glob(os.path.join(RULE_TESTS, "*_test.lua")))
    per_rule = [f for f in files if not os.path.basename(f).startswith("stay_")]
    eq(len(per_rule), 4, "a test file per shipped rule")
    ok(len(files) > len(per_rule), "and a test of a whole stay")
    conf = os.path.join(srv.dir, "plugins.conf")
    for path in files:
        p = srv.cli("rules", "test", path, "--conf", conf, "--plugin-dir", H.PLUGIN_DIR,
                    check=False)
        ok(p.returncode == 0 and " 0 failed" in p.stdout and "\nok " in "\n" + p.stdout,
           "%s: %s %s" % (os.path.basename(path), p.stdout[-800:], p.stderr[-800:]))
    # without the plugins, the files' types do not exist: the tests say so, they do not pass
    p = srv.cli("rules", "test", files[0], check=False)
    ok(p.returncode != 0 and "not ok" in p.stdout, "needs --conf: " + p.stdout[-300:])


def test_rules_check_clean(srv):
    files = sorted(glob.glob(os.path.join(H.ROOT, "plugins", "hotel", "scripts", "*.lua")))
    p = srv.cli("rules", "check", *files, check=False)
    ok(p.returncode == 0 and "no errors" in p.stdout and "warning" not in p.stdout,
       p.stdout + p.stderr)


def test_lua_functions(srv):
    h = H.hotel(srv, rooms=1)
    H.create(srv, "hotel.rate", {"room_type": h["double"], "starts": "2034-01-01",
                                 "ends": "2034-01-01", "rate": "123.45"})
    g = H.guest(srv)["id"]
    res = H.book(srv, g, h["rooms"][0], "2034-01-01", "2034-01-03")
    r = status(srv.post(X + "/reservations/%d/check-in" % res["id"]), 200)
    res = status(srv.get("%s/hotel.reservation/%d" % (R, res["id"])), 200).json
    eq(res["notes"], "balance 25, first night 123.45", "the site rule's result")
    eq(status(srv.get("%s/hotel.guest/%d" % (R, g)), 200).json["loyalty_points"], 25, "credited")
    entries = status(srv.get("%s/hotel.loyalty_entry?guest=%d" % (R, g)), 200).json["data"]
    eq([(e["points"], e["kind"], e["reason"]) for e in entries], [(25, "earn", "check-in bonus")],
       "entry")


if __name__ == "__main__":
    lib.run(globals(), "test_a_rules")
