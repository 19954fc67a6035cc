"""
The default roles through HTTP: a sales rep sees and changes only their own
deals (also on the board, the forecast and the reports); a sales manager sees
the team's; the read-only role reads and writes nothing; a form lead and a
conversion run with the caller's permissions.
"""
import crmtest
from crmtest import R, X, lib
from lib import eq, ok, status


class World:
    pass


W = World()


def shared_server():
    srv = crmtest.server()
    W.red = crmtest.create(srv, "core.team", {"name": "red"})["id"]
    W.alice, W.tok_alice = crmtest.user_with_role(srv, "alice", "sales rep", W.red)
    W.bob, W.tok_bob = crmtest.user_with_role(srv, "bob", "sales rep", W.red)
    W.carol, W.tok_carol = crmtest.user_with_role(srv, "carol", "sales manager", W.red)
    W.dave, W.tok_dave = crmtest.user_with_role(srv, "dave", "sales rep")  # no team
    W.rita, W.tok_rita = crmtest.user_with_role(srv, "rita", "read-only")
    W.deal = {}
    for who in ("alice", "bob", "dave"):
        W.deal[who] = crmtest.create(srv, "crm.deal", {"name": "Deal of " + who,
                                                       "amount": "1000", "stage": "proposal",
                                                       "close_date": "2031-01-15"},
                                     token=getattr(W, "tok_" + who))["id"]
    return srv


def ids(srv, token, path=R + "/crm.deal"):
    return sorted(d["id"] for d in status(srv.get(path, token=token), 200).json["data"])


def test_rep_sees_only_own_deals(srv):
    eq(ids(srv, W.tok_alice), [W.deal["alice"]], "alice's list")
    lib.error(srv.get("%s/crm.deal/%d" % (R, W.deal["bob"]), token=W.tok_alice), 404)
    lib.error(srv.patch("%s/crm.deal/%d" % (R, W.deal["bob"]), {"stage": "won"},
                        token=W.tok_alice), 404)
    eq(status(srv.get("%s/crm.deal/%d" % (R, W.deal["bob"])), 200).json["stage"], "proposal",
       "bob's deal unchanged")
    # the plugin's endpoints read with the caller's permissions too
    board = status(srv.get(X + "/board", token=W.tok_alice), 200).json
    seen = [d["id"] for c in board["stages"] for d in c["deals"]]
    eq(seen, [W.deal["alice"]], "alice's board")
    fc = status(srv.get(X + "/forecast?by=owner", token=W.tok_alice), 200).json
    eq([row["owner"] for row in fc["data"]], [W.alice], "alice's forecast")
    lib.error(srv.get("%s/timeline/crm.deal/%d" % (X, W.deal["bob"]), token=W.tok_alice), 404)


def test_manager_sees_the_team(srv):
    eq(ids(srv, W.tok_carol), sorted([W.deal["alice"], W.deal["bob"]]), "carol's list")
    r = status(srv.patch("%s/crm.deal/%d" % (R, W.deal["bob"]), {"stage": "negotiation"},
                         token=W.tok_carol), 200, "manager moves a team deal")
    eq(r.json["probability"], 60, "probability")
    lib.error(srv.get("%s/crm.deal/%d" % (R, W.deal["dave"]), token=W.tok_carol), 404)
    fc = status(srv.get(X + "/forecast?by=owner", token=W.tok_carol), 200).json
    eq(sorted(row["owner"] for row in fc["data"]), sorted([W.alice, W.bob]), "team forecast")


def test_read_only_role(srv):
    eq(len(ids(srv, W.tok_rita)), 3, "reads all deals")
    lib.error(srv.post(R + "/crm.deal", {"name": "x"}, token=W.tok_rita), 403)
    lib.error(srv.patch("%s/crm.deal/%d" % (R, W.deal["alice"]), {"name": "y"},
                        token=W.tok_rita), 403)


def test_conversion_with_the_callers_permissions(srv):
    # bob's lead: alice cannot convert it (not visible), bob can; the records are his
    lead = crmtest.create(srv, "crm.lead", {"first_name": "Wei", "last_name": "Zhang",
                                            "company_name": "华信科技", "email": "wei@huaxin.cn"},
                          token=W.tok_bob)
    lib.error(srv.post("%s/leads/%d/convert" % (X, lead["id"]), {}, token=W.tok_alice), 404)
    r = status(srv.post("%s/leads/%d/convert" % (X, lead["id"]), {}, token=W.tok_bob), 200)
    eq(r.json["deal"]["owner"], W.bob, "deal owner")
    eq(r.json["contact"]["owner"], W.bob, "contact owner")
    ok(r.json["deal"]["id"] not in ids(srv, W.tok_alice), "alice does not see it")
    # the read-only role cannot convert: nothing is written
    lead2 = crmtest.create(srv, "crm.lead", {"first_name": "Anna", "email": "anna@x.org"})
    n = crmtest.count(srv, "crm.contact")
    lib.error(srv.post("%s/leads/%d/convert" % (X, lead2["id"]), {}, token=W.tok_rita), 403)
    eq(crmtest.count(srv, "crm.contact"), n, "nothing written")


def test_dashboard_is_per_user(srv):
    crmtest.create(srv, "crm.task", {"title": "Call", "assignee": W.alice, "due": "2000-01-01"},
                   token=W.tok_alice)
    d = status(srv.get(X + "/reports/dashboard", token=W.tok_alice), 200).json
    rows = {r["metric"]: r for r in d["rows"]}
    eq(d["user"], W.alice, "user")
    eq(rows["tasks_overdue"]["value"], 1, "overdue")
    eq(rows["open_deals"]["value"], 1, "alice's open deals")
    d = status(srv.get(X + "/reports/dashboard", token=W.tok_dave), 200).json
    eq({r["metric"]: r["value"] for r in d["rows"]}["tasks_overdue"], 0, "dave has none")


if __name__ == "__main__":
    lib.run(globals(), "plugin_crm_a_permissions")
