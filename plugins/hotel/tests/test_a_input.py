"""
Bad input on every endpoint of the hotel plugin, through HTTP: malformed JSON, wrong
types, bad dates, unknown ids and fields, hostile strings. Each is a 4xx JSON error
naming the problem, and nothing is written.
"""
import hoteltest as H
from hoteltest import R, X
import lib
from lib import eq, error, ok, status

HOSTILE = ["'; DROP TABLE hotel_reservation; --", "<script>alert(1)</script>", "../../etc/passwd",
           "\u202eevil", "x" * 5000]
JSON = {"Content-Type": "application/json"}


def shared_server():
    srv = H.server()
    srv.h = H.hotel(srv, rooms=2)
    srv.g = H.guest(srv)["id"]
    srv.res = H.book(srv, srv.g, srv.h["rooms"][0], "2031-01-10", "2031-01-12")
    srv.stay = H.book(srv, srv.g, srv.h["rooms"][1], "2031-01-10", "2031-01-12")
    status(srv.post(X + "/reservations/%d/check-in" % srv.stay["id"]), 200)
    return srv


def snapshot(srv):
    return {t: H.count(srv, t) for t in ("hotel.reservation", "hotel.night", "hotel.guest",
                                         "crm.contact", "hotel.charge", "hotel.loyalty_entry",
                                         "crm.ticket")}


def posts(srv):
    """Every POST endpoint with a valid-looking target."""
    return [X + "/bookings",
            X + "/reservations/%d/charges" % srv.stay["id"],
            X + "/reservations/%d/complaints" % srv.res["id"],
            X + "/rooms/%d/housekeeping" % srv.h["rooms"][0],
            X + "/guests/%d/redeem" % srv.g,
            X + "/reservations/%d/cancel" % srv.res["id"],
            X + "/reservations/%d/check-in" % srv.res["id"],
            X + "/reservations/%d/check-out" % srv.stay["id"],
            X + "/reservations/%d/no-show" % srv.res["id"]]


def test_malformed_and_non_object_bodies(srv):
    before = snapshot(srv)
    for path in posts(srv):
        for raw in ("{bad json", "[1, 2]", "\"text\"", "{\"a\": 1, \"a\": 2}"):
            error(srv.post(path, raw=raw, headers=JSON), 400, what="%s %r" % (path, raw))
    eq(snapshot(srv), before, "nothing written")


def test_unknown_ids_and_bad_id_syntax(srv):
    before = snapshot(srv)
    for tail in ("reservations/999999/cancel", "reservations/999999/check-in",
                 "reservations/999999/folio", "guests/999999/redeem",
                 "rooms/999999/housekeeping"):
        method = srv.get if tail.endswith("folio") else srv.post
        body = {"points": 1, "reason": "x"} if "redeem" in tail else \
            {"status": "clean"} if "housekeeping" in tail else None
        r = method(X + "/" + tail) if body is None else method(X + "/" + tail, body)
        error(r, 404, what=tail)
    for bad in ("0", "-1", "abc", "1e3", "1%20OR%201=1"):
        error(srv.post(X + "/reservations/%s/cancel" % bad), 400, field="id", what=bad)
        error(srv.get(X + "/reservations/%s/folio" % bad), 400, field="id", what=bad)
    error(srv.post(X + "/reservations/999999/charges", {"service": srv.h["spa"]}), 404)
    error(srv.post(X + "/reservations/999999/complaints", {"subject": "x"}), 404)
    eq(snapshot(srv), before, "nothing written")


def test_bookings_bad_input(srv):
    before = snapshot(srv)
    good = {"guest": srv.g, "room": srv.h["rooms"][1], "arrival": "2031-03-01",
            "departure": "2031-03-03"}
    DROP = object()
    cases = [({"guest": DROP}, "guest"),
             ({"room": DROP}, "room"),
             ({"arrival": DROP}, "arrival"),
             ({"guest": None}, "guest"),
             ({"guest": "abc"}, "guest"),
             ({"guest": [1]}, "guest"),
             ({"guest": 999999}, "guest"),
             ({"guest": {"email": "no-name@example.org"}}, "guest.name"),
             ({"guest": {"name": "X", "email": "not an email"}}, "guest.email"),
             ({"guest": {"name": "X", "password": "x"}}, "guest.password"),
             ({"guest": {"name": "X", "birthday": "1990-02-30"}}, "guest.birthday"),
             ({"room": None}, "room"),
             ({"room": "101"}, "room"),  # no room has id 101
             ({"room": 999999}, "room"),
             ({"room": True}, "room"),
             ({"room_type": "x", "room": None}, "room_type"),
             ({"arrival": "2031-3-1"}, "arrival"),
             ({"arrival": "2031-02-29"}, "arrival"),
             ({"arrival": 20310301}, "arrival"),
             ({"departure": "2031-03-01"}, "departure"),
             ({"departure": "2030-03-01"}, "departure"),
             ({"departure": "2032-03-02"}, "departure"),
             ({"adults": 0}, "adults"),
             ({"adults": "2"}, "adults"),
             ({"adults": 2.5}, "adults"),
             ({"children": -1}, "children"),
             ({"adults": 2, "children": 1}, "adults"),
             ({"channel": "pigeon"}, "channel"),
             ({"companions": "everyone"}, "companions"),
             ({"companions": [999999]}, "companions"),
             ({"status": "checked_in"}, "status"),
             ({"nights": 3}, "nights")]
    for patch, field in cases:
        body = dict(good)
        body.update(patch)
        body = {k: v for k, v in body.items() if v is not DROP}
        r = srv.post(X + "/bookings", body)
        ok(400 <= r.status < 500 and r.status != 409, "%r: %r" % (patch, r))
        error(r, r.status, field=field, what=repr(body))
    for s in HOSTILE:
        body = dict(good, guest={"name": "X", "email": s})
        error(srv.post(X + "/bookings", body), 400, field="guest.email", what="hostile e-mail")
        body = dict(good, arrival=s)
        error(srv.post(X + "/bookings", body), 400, field="arrival", what="hostile date")
    eq(snapshot(srv), before, "nothing written")
    # hostile text where text is allowed is stored as it is, never interpreted
    r = status(srv.post(X + "/bookings", dict(good, notes=HOSTILE[0] + HOSTILE[1])), 201).json
    eq(r["notes"], HOSTILE[0] + HOSTILE[1], "stored verbatim")
    status(srv.post(X + "/reservations/%d/cancel" % r["id"]), 200)


def test_stay_endpoints_bad_input(srv):
    before = snapshot(srv)
    stay = X + "/reservations/%d" % srv.stay["id"]
    for body, field in (({}, "service"), ({"service": "spa"}, "service"),
                        ({"service": 999999}, "service"),
                        ({"service": srv.h["spa"], "quantity": 0}, "quantity"),
                        ({"service": srv.h["spa"], "quantity": "2"}, "quantity"),
                        ({"service": srv.h["spa"], "quantity": 10 ** 6}, "quantity"),
                        ({"service": srv.h["spa"], "price": "0.01"}, "price")):
        error(srv.post(stay + "/charges", body), 400, field=field, what="charge %r" % body)
    error(srv.post(stay + "/charges"), 400, field="service", what="no body")
    for body, field in (({}, "subject"), ({"subject": ""}, "subject"), ({"subject": 5}, "subject"),
                        ({"subject": "x", "priority": "apocalyptic"}, "priority"),
                        ({"subject": "x", "description": ["a"]}, "description"),
                        ({"subject": "x" * 400}, "subject"),
                        ({"subject": "x", "contact": 1}, "contact")):
        error(srv.post(X + "/reservations/%d/complaints" % srv.res["id"], body), 400, field=field,
              what="complaint %r" % body)
    room = X + "/rooms/%d/housekeeping" % srv.h["rooms"][0]
    for body in ({}, {"status": "sparkling"}, {"status": 1}, {"status": "clean", "x": 1}):
        error(srv.post(room, body), 400, what="housekeeping %r" % body)
    redeem = X + "/guests/%d/redeem" % srv.g
    for body, field in (({"reason": "x"}, "points"), ({"points": 0, "reason": "x"}, "points"),
                        ({"points": -5, "reason": "x"}, "points"),
                        ({"points": "5", "reason": "x"}, "points"),
                        ({"points": 5}, "reason"), ({"points": 5, "reason": ""}, "reason")):
        error(srv.post(redeem, body), 400, field=field, what="redeem %r" % body)
    error(srv.post(X + "/reservations/%d/cancel" % srv.res["id"], {"why": "x"}), 400,
          field="why", what="transition with an unknown field")
    eq(snapshot(srv), before, "nothing written")
    eq(status(srv.get("%s/hotel.room/%d" % (R, srv.h["rooms"][0])), 200).json["housekeeping"],
       "clean", "room unchanged")


if __name__ == "__main__":
    lib.run(globals(), "test_a_input")
