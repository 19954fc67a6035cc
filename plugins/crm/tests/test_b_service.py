"""
Serve, through HTTP: a new ticket is routed by the shipped rule (scripts/ticket_routing.lua)
and gets its SLA due from its priority; closing needs a satisfaction score of 1 to 5; an
overdue ticket is escalated to the manager by the schedule — the test freezes the server's
clock (CRM_CLOCK), restarts it five hours later, and the restart's first scheduler tick
fires the cron — and by POST /sla/run (admin) on demand.
"""
import calendar
import os
import time

import crmtest
from crmtest import R, X, lib
from lib import eq, error, ok, status

SETTINGS = """sla.hours.urgent = 2
ticket.route.priority.urgent = agent_urgent
ticket.route.billing = agent_billing
ticket.route.default = agent_default
sla.manager = the_manager
"""


def shared_server():
    srv = crmtest.server(SETTINGS)
    for name in ("agent_urgent", "agent_billing", "agent_default", "the_manager"):
        srv.user(name)
    return srv


def ts(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def ticket(srv, **fields):
    body = {"subject": "Printer on fire"}
    body.update(fields)
    return crmtest.create(srv, "crm.ticket", body)


def test_new_ticket_routed_and_given_an_sla(srv):
    t = ticket(srv, priority="urgent", category="billing")
    eq(t["assignee"], srv.user_id("agent_urgent"), "urgent: routed by priority first")
    eq(ts(t["sla_due"]) - ts(t["created_at"]), 2 * 3600, "sla.hours.urgent = 2")
    t = ticket(srv, category="billing")
    eq(t["assignee"], srv.user_id("agent_billing"), "then by category")
    eq(ts(t["sla_due"]) - ts(t["created_at"]), 24 * 3600, "normal: the default 24 h")
    t = ticket(srv, priority="low", category="hardware")
    eq(t["assignee"], srv.user_id("agent_default"), "then ticket.route.default")
    eq(ts(t["sla_due"]) - ts(t["created_at"]), 72 * 3600, "low: 72 h")
    # an explicit assignee and an explicit due date are kept
    me = srv.user_id("admin")
    t2 = ticket(srv, priority="urgent", assignee=me, sla_due="2031-01-01T00:00:00Z")
    eq(t2["assignee"], me, "explicit assignee")
    eq(t2["sla_due"], "2031-01-01T00:00:00Z", "explicit due")
    # raising the priority moves the due date (from the creation time)
    r = status(srv.patch("%s/crm.ticket/%d" % (R, t["id"]), {"priority": "high"}), 200)
    eq(ts(r.json["sla_due"]) - ts(t["created_at"]), 8 * 3600, "high: 8 h")


def test_satisfaction_required_on_close(srv):
    t = ticket(srv)
    path = "%s/crm.ticket/%d" % (R, t["id"])
    error(srv.patch(path, {"status": "closed"}), 400, field="satisfaction", what="no score")
    for bad in (0, 6, "5", 2.5):
        error(srv.patch(path, {"status": "closed", "satisfaction": bad}), 400,
              field="satisfaction", what="score %r" % (bad,))
    error(srv.patch(path, {"satisfaction": 4}), 400, field="satisfaction",
          what="a score on an open ticket")
    eq(status(srv.get(path), 200).json["version"], t["version"], "nothing written")
    r = status(srv.patch(path, {"status": "closed", "satisfaction": 4}), 200, "close")
    eq(r.json["satisfaction"], 4, "score")
    ok(r.json["closed_at"] and r.json["resolved_at"], "closed_at stamped: %r" % r.json)
    # a closed ticket cannot lose its score; reopening keeps it
    error(srv.patch(path, {"satisfaction": None}), 400, field="satisfaction", what="clear")
    r = status(srv.patch(path, {"status": "open"}), 200, "reopen")
    eq(r.json["satisfaction"], 4, "kept")
    # created closed: needs the score too
    error(srv.post(R + "/crm.ticket", {"subject": "x", "status": "closed"}), 400,
          field="satisfaction", what="created closed")


def test_sla_run_route_admin_only_and_bad_input(srv):
    _, token = crmtest.user_with_role(srv, "agent_x", "support agent")
    error(srv.post(X + "/sla/run", {}, token=token), 403, what="not an admin")
    error(srv.post(X + "/sla/run", {"now": "yesterday"}), 400, field="now")
    error(srv.post(X + "/sla/run", {"now": 5}), 400, field="now")
    error(srv.post(X + "/sla/run", raw="[1]", headers={"Content-Type": "application/json"}), 400)
    t = ticket(srv, priority="urgent", subject="run now")
    late = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts(t["sla_due"]) + 60))
    r = status(srv.post(X + "/sla/run", {"now": late}), 200)
    ok(r.json["escalated"] >= 1, "escalated: %r" % r.json)
    t = status(srv.get("%s/crm.ticket/%d" % (R, t["id"])), 200).json
    eq(t["escalated"], True, "escalated")
    eq(t["assignee"], srv.user_id("the_manager"), "to the manager")
    # a second run does not escalate it again
    r = status(srv.post(X + "/sla/run", {"now": late}), 200)
    notes = status(srv.get("%s/crm.activity?related_type=crm.ticket&related_id=%d"
                           % (R, t["id"])), 200).json["data"]
    eq(len(notes), 1, "one escalation note")


T0 = 1893488400  # 2030-01-01T09:00:00Z


def test_escalation_by_schedule(srv):
    s = lib.Server(env={"CRM_CLOCK": str(T0)})
    try:
        conf = os.path.join(s.dir, "plugins.conf")
        scripts = os.path.join(s.dir, "scripts")
        os.makedirs(scripts)
        with open(conf, "w") as f:
            f.write("[crm]\nsource = %s\n%s\n%s" % (os.path.join(crmtest.ROOT, "plugins", "crm"),
                                                   crmtest.STAGES, SETTINGS))
        s.extra_args = ["--conf", conf, "--plugin-dir", crmtest.PLUGIN_DIR, "--scripts", scripts]
        s.start()
        s.admin()
        manager, _ = s.user("the_manager")
        urgent = crmtest.create(s, "crm.ticket", {"subject": "Down", "priority": "urgent",
                                                  "status": "open"})
        eq(urgent["sla_due"], "2030-01-01T11:00:00Z", "due by the frozen clock")
        low = crmtest.create(s, "crm.ticket", {"subject": "Later", "priority": "low"})
        done = crmtest.create(s, "crm.ticket", {"subject": "Solved", "priority": "urgent",
                                                "status": "resolved"})
        # five hours later: the restart's first tick fires the */5 cron once
        s.stop()
        s.env["CRM_CLOCK"] = str(T0 + 5 * 3600)
        s.start()
        s.admin()
        path = "%s/crm.ticket/%d" % (R, urgent["id"])
        deadline = time.time() + 15
        while time.time() < deadline and not s.get(path).json["escalated"]:
            time.sleep(0.2)
        t = status(s.get(path), 200).json
        eq(t["escalated"], True, "escalated by the schedule")
        eq(t["escalated_at"], "2030-01-01T14:00:00Z", "at the firing's time")
        eq(t["assignee"], manager, "assigned to sla.manager")
        notes = status(s.get("%s/crm.activity?related_type=crm.ticket&related_id=%d"
                             % (R, t["id"])), 200).json["data"]
        eq(len(notes), 1, "one note")
        ok("SLA" in notes[0]["subject"], notes[0]["subject"])
        eq(status(s.get("%s/crm.ticket/%d" % (R, low["id"])), 200).json["escalated"], False,
           "not yet due")
        eq(status(s.get("%s/crm.ticket/%d" % (R, done["id"])), 200).json["escalated"], False,
           "resolved tickets are not escalated")
        events = status(s.get("/api/v1/events?after=0&limit=1000"), 200).json["data"]
        ok(any(e.get("topic") == "crm.ticket_escalated" for e in events),
           "crm.ticket_escalated emitted")
    finally:
        s.close()


if __name__ == "__main__":
    lib.run(globals(), "plugin_crm_b_service")
