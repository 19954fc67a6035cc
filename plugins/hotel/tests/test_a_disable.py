"""
Switching the plugin off and on, through HTTP: with `enabled = no` in hotel's
plugins.conf section and a restart on the same data directory, its types, routes and
rules are gone while the crm plugin keeps working; enabled again, the data is back.
"""
import hoteltest as H
from hoteltest import R, X
import lib
from lib import eq, error, ok, status


def shared_server():
    return H.server()


def hotel_state(srv):
    types = [t["name"] for t in status(srv.get("/api/v1/types"), 200).json["data"]]
    rules = status(srv.get("/api/v1/rules"), 200).json
    rules = rules.get("data", rules) if isinstance(rules, dict) else rules
    return ([t for t in types if t.startswith("hotel.")],
            [r["name"] for r in rules if r.get("name", "").startswith("hotel:")])


def test_disable_and_enable_again(srv):
    h = H.hotel(srv, rooms=1)
    g = H.guest(srv)["id"]
    res = H.book(srv, g, h["rooms"][0], "2033-05-01", "2033-05-04")
    types, rules = hotel_state(srv)
    ok("hotel.reservation" in types, "types while on")
    eq(len(rules), 4, "the four shipped rules while on: %r" % rules)

    srv.stop()
    H.server(hotel=False, srv=srv)
    types, rules = hotel_state(srv)
    eq(types, [], "no hotel types")
    eq(rules, [], "no hotel rules")
    error(srv.get(X + "/availability?arrival=2033-05-01&departure=2033-05-02"), 404, what="route")
    error(srv.post(X + "/bookings", {"guest": g}), 404, what="route")
    r = srv.get("%s/hotel.reservation/%d" % (R, res["id"]))
    ok(400 <= r.status < 500, "the records API no longer knows the type: %r" % r)
    # crm keeps working: a contact, a ticket through its routing rule
    c = H.create(srv, "crm.contact", {"first_name": "Still", "email": "still@example.org"})
    t = H.create(srv, "crm.ticket", {"subject": "Works", "contact": c["id"]})
    ok(t["sla_due"], "the crm plugin's rules still run")
    plugins = status(srv.get("/api/v1/plugins"), 200).json
    listed = plugins.get("data", plugins) if isinstance(plugins, dict) else plugins
    crm = [p for p in listed if p.get("name") == "crm"]
    ok(crm and crm[0].get("state") in ("loaded", None), "crm loaded: %r" % crm)

    srv.stop()
    H.server(hotel=True, srv=srv)
    types, rules = hotel_state(srv)
    ok("hotel.reservation" in types and len(rules) == 4, "back: %r %r" % (types, rules))
    back = status(srv.get("%s/hotel.reservation/%d" % (R, res["id"])), 200).json
    eq((back["room_total"], back["status"]), (res["room_total"], "booked"), "the data is back")
    eq(len(H.nights(srv, res["id"])), 3, "its nights too")
    r = H.book(srv, g, h["rooms"][0], "2033-05-02", "2033-05-03", expect=409)
    error(r, 409, field="room", what="still no double booking")


if __name__ == "__main__":
    lib.run(globals(), "test_a_disable")
