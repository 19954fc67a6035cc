"""
The reservation state machine, through HTTP: booked -> checked_in -> checked_out, booked
-> cancelled | no_show. Every invalid transition, through the endpoints and through a
plain PATCH of the records API, is a 400 naming the allowed transitions, and writes
nothing. Check-in needs a clean room; charges need a checked-in guest; the stay's dates
and room change only while booked.
"""
import hoteltest as H
from hoteltest import R, X
import lib
from lib import eq, error, ok, status

ENDPOINTS = {"check-in": "checked_in", "check-out": "checked_out", "cancel": "cancelled",
             "no-show": "no_show"}
ALLOWED = {"booked": ["checked_in", "cancelled", "no_show"], "checked_in": ["checked_out"],
           "checked_out": [], "cancelled": [], "no_show": []}
PATH_TO = {"booked": [], "checked_in": ["check-in"], "checked_out": ["check-in", "check-out"],
           "cancelled": ["cancel"], "no_show": ["no-show"]}


def shared_server():
    srv = H.server()
    srv.h = H.hotel(srv, rooms=6)
    srv.g = H.guest(srv)["id"]
    return srv


def reservation_in(srv, state, room, month):
    res = H.book(srv, srv.g, room, "2029-%02d-01" % month, "2029-%02d-03" % month)
    for step in PATH_TO[state]:
        status(srv.post(X + "/reservations/%d/%s" % (res["id"], step)), 200, step)
    return status(srv.get("%s/hotel.reservation/%d" % (R, res["id"])), 200).json


def test_every_invalid_transition_is_refused(srv):
    for month, state in enumerate(ALLOWED, start=1):
        res = reservation_in(srv, state, srv.h["rooms"][month - 1], month)
        eq(res["status"], state, "set up " + state)
        path = "%s/hotel.reservation/%d" % (R, res["id"])
        allowed = ", ".join(ALLOWED[state]) or "none"
        for endpoint, target in ENDPOINTS.items():
            if target in ALLOWED[state]:
                continue
            r = srv.post(X + "/reservations/%d/%s" % (res["id"], endpoint))
            error(r, 400, field="status", what="%s: %s" % (state, endpoint))
            eq(r.json["error"]["message"],
               "status cannot go from %s to %s; allowed from %s: %s" % (state, target, state,
                                                                       allowed),
               "%s: %s message" % (state, endpoint))
        for target in list(ENDPOINTS.values()) + ["booked"]:
            if target in ALLOWED[state] or target == state:
                continue
            r = srv.patch(path, {"status": target})
            error(r, 400, field="status", what="PATCH %s -> %s" % (state, target))
            ok("allowed from %s: %s" % (state, allowed) in r.json["error"]["message"],
               r.json["error"]["message"])
        after = status(srv.get(path), 200).json
        eq((after["status"], after["version"]), (state, res["version"]),
           state + ": nothing written")


def test_patch_follows_the_machine_with_its_effects(srv):
    room = srv.h["rooms"][5]
    res = H.book(srv, srv.g, room, "2029-08-01", "2029-08-03")
    path = "%s/hotel.reservation/%d" % (R, res["id"])
    r = status(srv.patch(path, {"status": "checked_in"}), 200).json
    ok(r["checked_in_at"], "checked_in_at stamped by a PATCH too")
    status(srv.post(X + "/reservations/%d/charges" % res["id"],
                    {"service": srv.h["spa"], "quantity": 2}), 201)
    r = status(srv.patch(path, {"status": "checked_out", "folio_total": "1.00"}), 200).json
    eq((r["charges_total"], r["folio_total"], r["folio_closed"]), ("160.00", "360.00", True),
       "folio closed by the PATCH, not by the caller's numbers")
    eq(status(srv.get("%s/hotel.room/%d" % (R, room)), 200).json["housekeeping"], "dirty",
       "room dirty")
    status(srv.post(X + "/rooms/%d/housekeeping" % room, {"status": "clean"}), 200)


def test_check_in_needs_a_clean_room(srv):
    room = srv.h["rooms"][4]
    res = H.book(srv, srv.g, room, "2029-09-01", "2029-09-02")
    status(srv.post(X + "/rooms/%d/housekeeping" % room, {"status": "dirty"}), 200)
    r = srv.post(X + "/reservations/%d/check-in" % res["id"])
    error(r, 409, field="room", what="dirty room")
    ok("room 105 is dirty" in r.json["error"]["message"], r.json["error"]["message"])
    error(srv.patch("%s/hotel.reservation/%d" % (R, res["id"]), {"status": "checked_in"}), 409,
          field="room", what="PATCH too")
    eq(status(srv.get("%s/hotel.reservation/%d" % (R, res["id"])), 200).json["status"], "booked",
       "still booked")
    status(srv.post(X + "/rooms/%d/housekeeping" % room, {"status": "clean"}), 200)
    status(srv.post(X + "/reservations/%d/check-in" % res["id"]), 200)
    # an out-of-service room takes no new booking
    status(srv.post(X + "/rooms/%d/housekeeping" % srv.h["rooms"][3],
                    {"status": "out_of_service"}), 200)
    r = H.book(srv, srv.g, srv.h["rooms"][3], "2029-10-01", "2029-10-02", expect=400)
    error(r, 400, field="room", what="out of service")
    status(srv.post(X + "/rooms/%d/housekeeping" % srv.h["rooms"][3], {"status": "clean"}), 200)


def test_charges_only_during_the_stay(srv):
    res = H.book(srv, srv.g, srv.h["rooms"][0], "2029-11-01", "2029-11-02")
    r = srv.post(X + "/reservations/%d/charges" % res["id"], {"service": srv.h["minibar"]})
    error(r, 409, what="booked: not yet in the house")
    error(srv.post(R + "/hotel.charge", {"reservation": res["id"], "service": srv.h["minibar"]}),
          409, field="reservation", what="records API too")
    eq(H.count(srv, "hotel.charge", "&reservation=%d" % res["id"]), 0, "nothing charged")


def test_stay_fields_change_only_while_booked(srv):
    res = H.book(srv, srv.g, srv.h["rooms"][1], "2029-12-01", "2029-12-03")
    status(srv.post(X + "/reservations/%d/check-in" % res["id"]), 200)
    path = "%s/hotel.reservation/%d" % (R, res["id"])
    error(srv.patch(path, {"departure": "2029-12-05"}), 400, field="departure")
    error(srv.patch(path, {"room": srv.h["rooms"][2]}), 400, field="room")
    eq(len(H.nights(srv, res["id"])), 2, "nights unchanged")


if __name__ == "__main__":
    lib.run(globals(), "test_a_states")
