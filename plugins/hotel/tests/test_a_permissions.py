"""
Permissions, through HTTP: the routes act with the caller's grants. Housekeeping sees
rooms and sets their housekeeping state but cannot book, check in, charge or redeem;
the front desk books and runs the stay; a user without a hotel role gets nothing.
"""
import hoteltest as H
from hoteltest import R, X
import lib
from lib import eq, error, ok, status


def shared_server():
    srv = H.server()
    srv.h = H.hotel(srv, rooms=2)
    srv.g = H.guest(srv)["id"]
    _, srv.hk = H.user_with_role(srv, "maid", "housekeeping")
    _, srv.desk = H.user_with_role(srv, "desk", "front desk")
    _, srv.nobody = srv.user("nobody")
    return srv


def test_housekeeping_cannot_book_or_run_stays(srv):
    before = H.count(srv, "hotel.reservation")
    body = {"guest": srv.g, "room": srv.h["rooms"][0], "arrival": "2032-01-01",
            "departure": "2032-01-02"}
    error(srv.post(X + "/bookings", body, token=srv.hk), 403, what="book")
    error(srv.post(X + "/bookings", dict(body, guest={"name": "X", "email": "x@example.org"}),
                   token=srv.hk), 403, what="book a new guest")
    error(srv.post(R + "/hotel.reservation", body, token=srv.hk), 403, what="records API")
    eq(H.count(srv, "hotel.reservation"), before, "nothing booked")
    eq(H.count(srv, "crm.contact", "&email=x@example.org"), 0, "no contact left behind")
    res = H.book(srv, srv.g, srv.h["rooms"][0], "2032-01-01", "2032-01-02", token=srv.desk)
    for step in ("check-in", "cancel", "no-show"):
        error(srv.post(X + "/reservations/%d/%s" % (res["id"], step), token=srv.hk), 403,
              what=step)
    error(srv.post(X + "/guests/%d/redeem" % srv.g, {"points": 1, "reason": "x"}, token=srv.hk),
          404, what="guests are not visible to housekeeping")
    eq(status(srv.get("%s/hotel.reservation/%d" % (R, res["id"])), 200).json["status"], "booked",
       "unchanged")
    # what housekeeping does: rooms
    r = status(srv.post(X + "/rooms/%d/housekeeping" % srv.h["rooms"][1], {"status": "dirty"},
                        token=srv.hk), 200).json
    eq(r["housekeeping"], "dirty", "marked dirty")
    status(srv.post(X + "/rooms/%d/housekeeping" % srv.h["rooms"][1], {"status": "clean"},
                    token=srv.hk), 200)


def test_front_desk_runs_the_stay(srv):
    res = H.book(srv, srv.g, srv.h["rooms"][1], "2032-02-01", "2032-02-03", token=srv.desk)
    status(srv.get(X + "/availability?arrival=2032-02-01&departure=2032-02-02", token=srv.desk),
           200)
    status(srv.post(X + "/reservations/%d/check-in" % res["id"], token=srv.desk), 200)
    status(srv.post(X + "/reservations/%d/charges" % res["id"], {"service": srv.h["minibar"]},
                    token=srv.desk), 201)
    status(srv.get(X + "/reservations/%d/folio" % res["id"], token=srv.desk), 200)
    status(srv.post(X + "/reservations/%d/complaints" % res["id"], {"subject": "Cold shower"},
                    token=srv.desk), 201)
    r = status(srv.post(X + "/reservations/%d/check-out" % res["id"], token=srv.desk), 200).json
    eq(r["folio_total"], "204.50", "closed")
    # the front desk may not change prices
    error(srv.post(R + "/hotel.rate", {"room_type": srv.h["double"], "starts": "2032-01-01",
                                       "ends": "2032-01-02", "rate": "1.00"}, token=srv.desk),
          403, what="rates are the manager's")


def test_no_hotel_role_no_access(srv):
    for path in ("/availability?arrival=2032-03-01&departure=2032-03-02",
                 "/reservations/1/folio"):
        r = srv.get(X + path, token=srv.nobody)
        ok(r.status in (403, 404), "%s: %r" % (path, r))
        error(r, r.status)
    error(srv.post(X + "/bookings", {"guest": srv.g, "room": srv.h["rooms"][0],
                                     "arrival": "2032-03-01", "departure": "2032-03-02"},
                   token=srv.nobody), 403)
    error(srv.get(X + "/availability?arrival=2032-03-01&departure=2032-03-02", token=""), 401,
          what="anonymous")


if __name__ == "__main__":
    lib.run(globals(), "test_a_permissions")
