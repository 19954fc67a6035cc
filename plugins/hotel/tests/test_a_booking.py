"""
Booking, through HTTP: prices from the base rate and the latest-created override, the
availability search, booking by room or by room type, the nights that make a double
booking impossible — 16 concurrent bookings of the same room and nights get exactly one
201 — and that every way of writing a reservation (the records API, moves, cancellation,
deletion) keeps the nights in step.
"""
import json
import threading

import hoteltest as H
from hoteltest import R, X
import lib
from lib import eq, error, ok, status


def shared_server():
    srv = H.server()
    srv.h = H.hotel(srv, rooms=4)
    srv.g = H.guest(srv)["id"]
    # 2027-06-02 and 03 at 150 (summer), then 06-03 at 180 (an event, created later: wins)
    H.create(srv, "hotel.rate", {"room_type": srv.h["double"], "starts": "2027-06-02",
                                 "ends": "2027-06-03", "rate": "150.00", "name": "summer"})
    H.create(srv, "hotel.rate", {"room_type": srv.h["double"], "starts": "2027-06-03",
                                 "ends": "2027-06-03", "rate": "180.00", "name": "festival"})
    return srv


def test_prices_base_rate_and_latest_override(srv):
    res = H.book(srv, srv.g, srv.h["rooms"][0], "2027-06-01", "2027-06-05", adults=2)
    eq(res["status"], "booked", "status")
    eq(res["nights"], 4, "nights")
    eq(res["room_total"], "530.00", "100 + 150 + 180 + 100")
    eq(res["rate"], "132.50", "average per night")
    eq(res["currency"], "EUR", "currency of the room type")
    eq(H.nights(srv, res["id"]),
       [(srv.h["rooms"][0], "2027-06-01", "100.00"), (srv.h["rooms"][0], "2027-06-02", "150.00"),
        (srv.h["rooms"][0], "2027-06-03", "180.00"), (srv.h["rooms"][0], "2027-06-04", "100.00")],
       "one night record per night, with its rate")
    keys = [n["key"] for n in status(srv.get("%s/hotel.night?reservation=%d&sort=date"
                                             % (R, res["id"])), 200).json["data"]]
    eq(keys[0], "%d:2027-06-01" % srv.h["rooms"][0], "key room:date")


def test_availability(srv):
    a = "?arrival=2027-07-01&departure=2027-07-03"
    r = status(srv.get(X + "/availability" + a + "&guests=2"), 200).json
    eq(r["nights"], 2, "nights")
    codes = [t["code"] for t in r["room_types"]]
    eq(codes, ["DBL", "STE"], "both types sleep 2, cheapest first")
    dbl = r["room_types"][0]
    eq(dbl["available"], 4, "four doubles free")
    eq(dbl["total"], "200.00", "two nights at the base rate")
    eq([n["date"] for n in dbl["nightly"]], ["2027-07-01", "2027-07-02"], "nightly dates")
    eq([x["number"] for x in dbl["rooms"]], ["101", "102", "103", "104"], "rooms by number")
    r = status(srv.get(X + "/availability" + a + "&guests=3"), 200).json
    eq([t["code"] for t in r["room_types"]], ["STE"], "only the suite sleeps 3")
    r = status(srv.get(X + "/availability" + a + "&guests=2&room_type=%d" % srv.h["suite"]),
               200).json
    eq([t["code"] for t in r["room_types"]], ["STE"], "filtered by room type")
    # a booking and an out-of-service room leave the list
    H.book(srv, srv.g, srv.h["rooms"][1], "2027-07-02", "2027-07-04")
    status(srv.post(X + "/rooms/%d/housekeeping" % srv.h["rooms"][2],
                    {"status": "out_of_service"}), 200)
    try:
        r = status(srv.get(X + "/availability" + a + "&guests=1"), 200).json
        dbl = [t for t in r["room_types"] if t["code"] == "DBL"][0]
        eq([x["number"] for x in dbl["rooms"]], ["101", "104"], "102 booked, 103 out of service")
        eq(dbl["available"], 2, "count")
        # the night after the departure is free again: [arrival, departure)
        r = status(srv.get(X + "/availability?arrival=2027-07-04&departure=2027-07-05"), 200).json
        dbl = [t for t in r["room_types"] if t["code"] == "DBL"][0]
        ok("102" in [x["number"] for x in dbl["rooms"]], "102 free on its departure day")
    finally:
        status(srv.post(X + "/rooms/%d/housekeeping" % srv.h["rooms"][2], {"status": "clean"}),
               200)


def test_availability_bad_input(srv):
    cases = [("", "arrival"), ("?arrival=2027-07-01", "departure"),
             ("?arrival=2027-02-30&departure=2027-03-02", "arrival"),
             ("?arrival=tomorrow&departure=2027-03-02", "arrival"),
             ("?arrival=2027-03-02&departure=2027-03-02", "departure"),
             ("?arrival=2027-03-05&departure=2027-03-02", "departure"),
             ("?arrival=2027-01-01&departure=2028-01-02", "departure"),
             ("?arrival=2027-03-01&departure=2027-03-02&guests=0", "guests"),
             ("?arrival=2027-03-01&departure=2027-03-02&guests=-1", "guests"),
             ("?arrival=2027-03-01&departure=2027-03-02&guests=two", "guests"),
             ("?arrival=2027-03-01&departure=2027-03-02&room_type=x'%20OR%201=1", "room_type")]
    for query, field in cases:
        error(srv.get(X + "/availability" + query), 400, field=field, what=query)
    error(srv.get(X + "/availability?arrival=2027-03-01&departure=2027-03-02&room_type=99999"),
          404, what="unknown room type")
    # 365 nights is the longest stay
    status(srv.get(X + "/availability?arrival=2027-01-01&departure=2028-01-01"), 200)


def test_sixteen_concurrent_bookings_one_wins(srv):
    room = srv.h["rooms"][3]
    results = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def one(i):
        start.wait()
        r = srv.post(X + "/bookings", {"guest": srv.g, "room": room, "arrival": "2027-09-10",
                                       "departure": "2027-09-14", "channel": "web"})
        with lock:
            results.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status for r in results)
    eq(codes.count(201), 1, "exactly one booking: %r" % codes)
    eq(codes.count(409), 15, "fifteen conflicts: %r" % codes)
    winner = [r for r in results if r.status == 201][0].json
    for r in results:
        if r.status == 409:
            eq(r.json["error"]["field"], "room", "conflict names the room")
            ok(("by reservation %d" % winner["id"]) in r.json["error"]["message"],
               "names the winner: " + r.json["error"]["message"])
    booked = status(srv.get("%s/hotel.night?room=%d&date__gte=2027-09-10&date__lt=2027-09-14"
                            "&limit=100" % (R, room)), 200).json["data"]
    eq(sorted(n["date"] for n in booked),
       ["2027-09-10", "2027-09-11", "2027-09-12", "2027-09-13"], "one set of nights")
    ok(all(n["reservation"] == winner["id"] for n in booked), "all the winner's")
    eq(H.count(srv, "hotel.reservation", "&room=%d&arrival=2027-09-10" % room), 1,
       "one reservation stored")


def test_conflict_message_and_nothing_written(srv):
    room = srv.h["rooms"][0]
    first = H.book(srv, srv.g, room, "2027-10-01", "2027-10-05")
    before = H.count(srv, "hotel.reservation")
    r = H.book(srv, srv.g, room, "2027-10-04", "2027-10-06", expect=409)
    error(r, 409, field="room")
    eq(r.json["error"]["message"],
       "room 101 is already booked on 2027-10-04 by reservation %d (arrival 2027-10-01, "
       "departure 2027-10-05)" % first["id"], "message")
    # the records API is held to the same nights
    r = srv.post(R + "/hotel.reservation", {"guest": srv.g, "room": room, "arrival": "2027-09-28",
                                            "departure": "2027-10-02"})
    error(r, 409, field="room", what="records API")
    eq(H.count(srv, "hotel.reservation"), before, "no reservation written")
    eq(len(H.nights(srv, first["id"])), 4, "the first keeps its nights")
    # back to back is fine: departure day = next arrival day
    H.book(srv, srv.g, room, "2027-10-05", "2027-10-06")


def test_records_api_computes_and_refuses(srv):
    room = srv.h["rooms"][1]
    r = status(srv.post(R + "/hotel.reservation",
                        {"guest": srv.g, "room": room, "arrival": "2027-11-01",
                         "departure": "2027-11-03", "nights": 99, "room_total": "1.00",
                         "folio_total": "5.00"}), 201).json
    eq((r["nights"], r["room_total"], r["rate"]), (2, "200.00", "100.00"), "computed, not given")
    eq(r["folio_total"], None, "a user does not write the folio")
    eq(len(H.nights(srv, r["id"])), 2, "nights written")
    error(srv.post(R + "/hotel.reservation", {"guest": srv.g, "room": room, "status": "checked_in",
                                              "arrival": "2027-12-01", "departure": "2027-12-02"}),
          400, field="status", what="a user creates booked reservations only")
    error(srv.post(R + "/hotel.reservation", {"guest": srv.g, "room": srv.h["rooms"][2],
                                              "arrival": "2027-12-01", "departure": "2027-12-02",
                                              "adults": 2, "children": 1}),
          400, field="adults", what="over capacity")
    # nights follow their reservation: not even an admin writes them directly
    night = status(srv.get("%s/hotel.night?reservation=%d" % (R, r["id"])), 200).json["data"][0]
    error(srv.delete("%s/hotel.night/%d" % (R, night["id"])), 403, what="delete a night")
    error(srv.post(R + "/hotel.night", {"key": "%d:2027-11-05" % room, "room": room,
                                        "date": "2027-11-05", "reservation": r["id"]}),
          403, what="create a night")
    eq(len(H.nights(srv, r["id"])), 2, "nights intact")
    # a PATCH of derived fields changes nothing
    r2 = status(srv.patch("%s/hotel.reservation/%d" % (R, r["id"]), {"nights": 7}), 200).json
    eq(r2["nights"], 2, "nights stay derived")


def test_move_rewrites_nights_atomically(srv):
    a, b = srv.h["rooms"][2], srv.h["rooms"][3]
    res = H.book(srv, srv.g, a, "2028-01-10", "2028-01-12")
    blocker = H.book(srv, srv.g, b, "2028-01-13", "2028-01-14")
    path = "%s/hotel.reservation/%d" % (R, res["id"])
    # extend by a night: overlaps its own nights, which are rewritten
    r = status(srv.patch(path, {"departure": "2028-01-13"}), 200).json
    eq((r["nights"], r["room_total"]), (3, "300.00"), "repriced")
    version = r["version"]
    eq([n[1] for n in H.nights(srv, res["id"])], ["2028-01-10", "2028-01-11", "2028-01-12"],
       "nights follow")
    # move to room b and extend into the blocker's night: 409, nothing changed
    r = srv.patch(path, {"room": b, "departure": "2028-01-14"})
    error(r, 409, field="room", what="move onto a taken night")
    ok("reservation %d" % blocker["id"] in r.json["error"]["message"], r.json["error"]["message"])
    cur = status(srv.get(path), 200).json
    eq((cur["room"], cur["departure"], cur["version"]), (a, "2028-01-13", version), "unchanged")
    eq([(n[0], n[1]) for n in H.nights(srv, res["id"])],
       [(a, "2028-01-10"), (a, "2028-01-11"), (a, "2028-01-12")], "nights unchanged")
    # a move that fits
    status(srv.patch(path, {"room": b}), 200)
    eq({n[0] for n in H.nights(srv, res["id"])}, {b}, "nights moved to room b")
    # bad dates through PATCH
    error(srv.patch(path, {"departure": "2028-01-09"}), 400, field="departure")
    error(srv.patch(path, {"arrival": "2028-13-01"}), 400, field="arrival")


def test_cancel_and_delete_free_the_nights(srv):
    room = srv.h["rooms"][0]
    res = H.book(srv, srv.g, room, "2028-02-01", "2028-02-03")
    status(srv.post(X + "/reservations/%d/cancel" % res["id"]), 200)
    eq(H.nights(srv, res["id"]), [], "cancelled: no nights")
    again = H.book(srv, srv.g, room, "2028-02-01", "2028-02-03")
    status(srv.delete("%s/hotel.reservation/%d" % (R, again["id"])), 204)
    eq(H.nights(srv, again["id"]), [], "deleted: no nights")
    third = H.book(srv, srv.g, room, "2028-02-02", "2028-02-04")
    # restoring the deleted one would double-book: refused
    r = srv.post("%s/hotel.reservation/%d/restore" % (R, again["id"]))
    error(r, 409, field="room", what="restore onto taken nights")
    eq(len(H.nights(srv, third["id"])), 2, "the third keeps its nights")


def test_book_by_room_type_and_new_guest(srv):
    r = status(srv.post(X + "/bookings", {
        "guest": {"name": "Grace Hopper", "email": "grace@example.org", "phone": "+1 555 0100",
                  "birthday": "1906-12-09"},
        "room_type": srv.h["suite"], "arrival": "2028-03-01", "departure": "2028-03-03",
        "adults": 2, "children": 2, "channel": "phone"}), 201).json
    eq(r["room"], srv.h["suite_room"], "the free suite")
    eq(r["room_total"], "600.00", "suite price")
    g = status(srv.get("%s/hotel.guest/%d" % (R, r["guest"])), 200).json
    eq(g["email"], "grace@example.org", "guest created")
    c = status(srv.get("%s/crm.contact/%d" % (R, g["contact"])), 200).json
    eq((c["first_name"], c["last_name"], c["email"]), ("Grace", "Hopper", "grace@example.org"),
       "linked to a new crm contact")
    # the same e-mail again finds the guest: no duplicate
    r2 = status(srv.post(X + "/bookings", {"guest": {"name": "G. Hopper",
                                                     "email": "grace@example.org"},
                                           "room_type": srv.h["double"], "arrival": "2028-03-01",
                                           "departure": "2028-03-02"}), 201).json
    eq(r2["guest"], r["guest"], "same guest")
    # no suite left for those dates
    r = srv.post(X + "/bookings", {"guest": srv.g, "room_type": srv.h["suite"],
                                   "arrival": "2028-03-02", "departure": "2028-03-04"})
    error(r, 409, field="room_type", what="no free room of the type")


if __name__ == "__main__":
    lib.run(globals(), "test_a_booking")
