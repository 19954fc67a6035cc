"""
A guest's whole journey, through HTTP, with the server's clock frozen (CRM_CLOCK) and
moved by restarting it: a front-desk user books for a new guest (a crm contact is
created), checks her in (welcome message), charges services, files a complaint (a crm
ticket), the birthday greeting goes out on her birthday during the stay, the check-out
closes the folio and marks the room dirty, the loyalty rule credits her points, she
redeems some, and a day after departure she is asked how the stay was. Meanwhile a
booking nobody arrives for is marked no_show by the hourly schedule and frees its room.
"""
import calendar
import time

import hoteltest as H
from hoteltest import R, X
import lib
from lib import eq, error, ok, status


def ts(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


T0 = ts("2030-03-01T08:00:00Z")


def restart(srv, at):
    srv.stop()
    srv.env["CRM_CLOCK"] = str(ts(at))
    srv.start()
    srv.admin()


def wait_for(fn, what, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise lib.Failure("timed out waiting for " + what)


def messages(srv, to, subject_part):
    data = status(srv.get("%s/crm.message?to=%s&limit=100" % (R, to)), 200).json["data"]
    return [m for m in data if subject_part in (m.get("subject") or "")]


def shared_server():
    return H.server(env={"CRM_CLOCK": str(T0)})


def test_guest_journey(srv):
    h = H.hotel(srv, rooms=2)
    H.create(srv, "hotel.rate", {"room_type": h["double"], "starts": "2030-03-02",
                                 "ends": "2030-03-02", "rate": "150.00"})
    _, desk = H.user_with_role(srv, "desk", "front desk")
    room = h["rooms"][0]

    # booking: a new guest becomes a crm contact and a hotel guest
    res = status(srv.post(X + "/bookings", {
        "guest": {"name": "Ada Lovelace", "email": "ada@example.org",
                  "birthday": "1990-03-03"},
        "room": room, "arrival": "2030-03-01", "departure": "2030-03-05", "adults": 1,
        "channel": "web"}, token=desk), 201).json
    eq((res["nights"], res["room_total"], res["rate"]), (4, "450.00", "112.50"), "priced")
    guest = status(srv.get("%s/hotel.guest/%d" % (R, res["guest"])), 200).json
    contact = status(srv.get("%s/crm.contact/%d" % (R, guest["contact"])), 200).json
    eq(contact["email"], "ada@example.org", "contact")
    # a second booking nobody will arrive for
    ghost = H.book(srv, res["guest"], h["rooms"][1], "2030-03-02", "2030-03-04", token=desk)

    # check-in: by the frozen clock, with a welcome message
    r = status(srv.post(X + "/reservations/%d/check-in" % res["id"], token=desk), 200).json
    eq(r["status"], "checked_in", "checked in")
    eq(r["checked_in_at"], "2030-03-01T08:00:00Z", "the platform clock")
    welcome = messages(srv, "ada@example.org", "Welcome")
    eq(len(welcome), 1, "welcome message")
    ok("101" in welcome[0]["body"], "names the room")

    # services charged to the stay
    for svc, qty in ((h["minibar"], 3), (h["spa"], 1)):
        status(srv.post(X + "/reservations/%d/charges" % res["id"],
                        {"service": svc, "quantity": qty}, token=desk), 201)
    folio = status(srv.get(X + "/reservations/%d/folio" % res["id"], token=desk), 200).json
    eq([n["rate"] for n in folio["nights"]], ["100.00", "150.00", "100.00", "100.00"],
       "nightly rates")
    eq([c["amount"] for c in folio["charges"]], ["13.50", "80.00"], "charges")
    eq((folio["room_total"], folio["charges_total"], folio["total"], folio["closed"]),
       ("450.00", "93.50", "543.50", False), "open folio")

    # a complaint becomes a crm ticket for her contact, under the crm plugin's SLA
    t = status(srv.post(X + "/reservations/%d/complaints" % res["id"],
                        {"subject": "Noisy air conditioning", "description": "All night.",
                         "priority": "high"}, token=desk), 201).json
    eq((t["contact"], t["priority"], t["category"]), (contact["id"], "high", "complaint"),
       "ticket")
    ok(t["sla_due"], "the crm plugin's routing rule gave it an SLA")
    ok("Reservation %d" % res["id"] in t["description"], "names the reservation")

    # her birthday, two days later: the yearly schedule greets her in the house;
    # the ghost booking's arrival day has passed: the hourly sweep marks it no_show
    restart(srv, "2030-03-03T10:00:00Z")
    wait_for(lambda: messages(srv, "ada@example.org", "birthday"), "the birthday greeting")
    eq(len(messages(srv, "ada@example.org", "birthday")), 1, "one greeting")
    g = wait_for(lambda: (lambda x: x if x["status"] == "no_show" else None)(
        status(srv.get("%s/hotel.reservation/%d" % (R, ghost["id"])), 200).json),
        "the no-show sweep")
    eq(g["status"], "no_show", "no show")
    eq(H.nights(srv, ghost["id"]), [], "its nights are free")
    eq(status(srv.get("%s/hotel.reservation/%d" % (R, res["id"])), 200).json["status"],
       "checked_in", "the guest in the house is not a no-show")

    # check-out: folio closed, room dirty, points by the loyalty rule
    desk = srv.login("desk", "user-password-1")
    r = status(srv.post(X + "/reservations/%d/check-out" % res["id"], token=desk), 200).json
    eq((r["status"], r["charges_total"], r["folio_total"], r["folio_closed"]),
       ("checked_out", "93.50", "543.50", True), "folio closed")
    eq(r["checked_out_at"], "2030-03-03T10:00:00Z", "clock")
    eq(status(srv.get("%s/hotel.room/%d" % (R, room)), 200).json["housekeeping"], "dirty",
       "room to clean")
    entries = status(srv.get("%s/hotel.loyalty_entry?guest=%d" % (R, guest["id"])),
                     200).json["data"]
    eq([e["points"] for e in entries], [40 + 54], "10 a night + 1 per 10 of 543.50")
    guest = status(srv.get("%s/hotel.guest/%d" % (R, guest["id"])), 200).json
    eq((guest["loyalty_points"], guest["loyalty_tier"]), (94, "member"), "balance")
    events = status(srv.get("/api/v1/events?after=0&limit=1000"), 200).json["data"]
    ok(any(e.get("topic") == "hotel.checked_out" for e in events), "hotel.checked_out")
    error(srv.post(X + "/reservations/%d/charges" % res["id"],
                   {"service": h["minibar"]}, token=desk), 409, what="folio closed")
    charge = folio["charges"][0]["id"]
    error(srv.delete("%s/hotel.charge/%d" % (R, charge)), 409,
          what="a closed folio's charges are final, even for an admin")

    # redeeming points
    r = status(srv.post(X + "/guests/%d/redeem" % guest["id"],
                        {"points": 50, "reason": "spa voucher"}, token=desk), 200).json
    eq((r["redeemed"], r["balance"]), (50, 44), "redeemed")
    error(srv.post(X + "/guests/%d/redeem" % guest["id"], {"points": 45, "reason": "x"},
                   token=desk), 409, field="points", what="more than the balance")
    eq(status(srv.get("%s/hotel.guest/%d" % (R, guest["id"])), 200).json["loyalty_points"],
       44, "balance unchanged by the refusal")
    eq(H.count(srv, "hotel.loyalty_entry", "&guest=%d" % guest["id"]), 2, "two entries")

    # a day after departure: how was your stay?
    ok(not messages(srv, "ada@example.org", "How was"), "not yet")
    restart(srv, "2030-03-04T11:00:00Z")
    wait_for(lambda: messages(srv, "ada@example.org", "How was"), "the follow-up")


if __name__ == "__main__":
    lib.run(globals(), "test_a_journey")
