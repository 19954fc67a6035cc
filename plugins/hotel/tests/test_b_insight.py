"""
Insight and reports on a small hand-made hotel with known answers: occupancy,
ADR, RevPAR, revenue by service, repeat guests, segments, a guest's history and
best time, the offers for a month; CSV; bad parameters; permissions. Then
`crm demo` with crm and hotel: the counts, and that the nights are consistent.

The stays are history (checked out), which only the system may write: they
come in through `crm import` (as the system), like an import of a previous
system's data. Their nights are imported too when the import did not write
them (it runs no plugin handlers).
"""
import csv
import io
import os
import sqlite3
import subprocess
import tempfile

import hoteltest as H
import lib
from lib import eq, error, ok, status

R, X = H.R, H.X
TODAY = "2026-12-01"


class World:
    pass


W = World()


def post(srv, type_, fields):
    return H.create(srv, type_, fields)["id"]


def import_csv(srv, type_, header, rows):
    fd, path = tempfile.mkstemp(suffix=".csv", dir=srv.dir)
    with os.fdopen(fd, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow(["" if v is None else v for v in r])
    # as the system, with the plugins and their handlers (nights are written by booking.c)
    p = srv.cli("import", type_, path, "--conf", os.path.join(srv.dir, "plugins.conf"),
                "--plugin-dir", H.PLUGIN_DIR, "--scripts", os.path.join(srv.dir, "scripts"))
    ok('"failed": 0' in p.stdout or '"failed":0' in p.stdout, "import %s: %s" % (type_, p.stdout))


def shared_server():
    srv = H.server()
    W.srv = srv
    dbl = post(srv, "hotel.room_type", {"code": "DBL", "name": "Double", "capacity": 2,
                                        "base_rate": "100.00"})
    # 2026-07-01..03 nights cost 120 (a rate override: booking.c would price them so too)
    post(srv, "hotel.rate", {"room_type": dbl, "starts": "2026-07-01", "ends": "2026-07-03",
                             "rate": "120.00", "name": "Festival"})
    W.rooms = {n: post(srv, "hotel.room", {"number": n, "floor": 1, "room_type": dbl})
               for n in ("101", "102", "103", "104")}
    status(srv.patch("%s/hotel.room/%d" % (R, W.rooms["104"]), {"housekeeping": "out_of_service"}),
           200, "room 104 out of service")
    W.spa = post(srv, "hotel.service", {"code": "SPA", "name": "Massage", "category": "spa",
                                        "price": "50.00"})
    W.park = post(srv, "hotel.service", {"code": "PARK", "name": "Parking", "category": "parking",
                                         "price": "20.00"})
    W.odd = post(srv, "hotel.service", {"code": "ODD", "name": "=SUM(A1)", "category": "other",
                                        "price": "5.00"})
    W.g = {n: post(srv, "hotel.guest", {"name": n, "email": n.lower() + "@example.org"})
           for n in ("Alice", "Bob", "Carol", "Dan", "Eve")}
    g, r = W.g, W.rooms
    # (key, guest, room, arrival, departure, nightly rates, status, charges total)
    stays = [
        ("r1", "Alice", "101", "2025-07-10", "2025-07-13", [100] * 3, "checked_out", 100),
        ("r3", "Alice", "101", "2026-03-01", "2026-03-02", [100], "checked_out", 0),
        ("r2", "Alice", "102", "2026-07-05", "2026-07-07", [100] * 2, "checked_out", 40),
        ("r8", "Alice", "103", "2027-07-10", "2027-07-12", [100] * 2, "booked", 0),
        ("r9", "Bob", "103", "2025-07-20", "2025-07-22", [100] * 2, "checked_out", 0),
        ("r4", "Bob", "101", "2026-07-01", "2026-07-04", [120] * 3, "checked_out", 50),
        ("r7", "Bob", "103", "2026-07-05", "2026-07-06", [100], "no_show", 0),
        ("r5", "Carol", "102", "2026-07-01", "2026-07-03", [120] * 2, "checked_out", 5),
        ("r6", "Carol", "103", "2026-07-02", "2026-07-03", [120], "cancelled", 0),
        ("e1", "Eve", "103", "2026-01-10", "2026-01-11", [100], "checked_out", 0),
        ("e2", "Eve", "103", "2026-02-10", "2026-02-11", [100], "checked_out", 0),
        ("e3", "Eve", "103", "2026-04-10", "2026-04-11", [100], "checked_out", 0),
        ("e4", "Eve", "103", "2026-05-10", "2026-05-11", [100], "checked_out", 0),
        ("e5", "Eve", "103", "2026-06-10", "2026-06-11", [100], "checked_out", 0),
        ("e6", "Eve", "104", "2026-07-02", "2026-07-03", [120], "checked_out", 0),
    ]
    rows = []
    for key, guest, room, a, d, rates, st, charges in stays:
        total = sum(rates)
        past = st == "checked_out"
        rows.append([g[guest], r[room], a, d, len(rates), "%d.00" % (total // len(rates)),
                     "%d.00" % total, st, "%d.00" % charges if past else None,
                     "%d.00" % (total + charges) if past else None, "true" if past else "false",
                     a + "T15:00:00Z" if past else None, d + "T10:00:00Z" if past else None,
                     key])
    import_csv(srv, "hotel.reservation",
               ["guest", "room", "arrival", "departure", "nights", "rate", "room_total", "status",
                "charges_total", "folio_total", "folio_closed", "checked_in_at", "checked_out_at",
                "notes"], rows)
    res = status(srv.get(R + "/hotel.reservation?limit=100"), 200).json["data"]
    W.res = {x["notes"]: x["id"] for x in res}
    eq(len(W.res), len(stays), "reservations imported")
    eq(H.crmtest.count(srv, "hotel.night"), 21, "nights")
    import_csv(srv, "hotel.charge", ["reservation", "service", "quantity", "unit_price", "amount",
                                     "at"],
               [[W.res["r1"], W.spa, 2, "50.00", "100.00", "2025-07-11T10:00:00Z"],
                [W.res["r2"], W.park, 2, "20.00", "40.00", "2026-07-05T20:00:00Z"],
                [W.res["r4"], W.spa, 1, "50.00", "50.00", "2026-07-02T10:00:00Z"],
                [W.res["r5"], W.odd, 1, "5.00", "5.00", "2026-07-02T09:00:00Z"]])
    return srv


def get(srv, path, what=None, token=None):
    return status(srv.get(X + path, token=token), 200, what or path).json


JULY = "?from=2026-07-01&to=2026-07-07"


def test_occupancy(srv):
    o = get(srv, "/reports/occupancy" + JULY)
    eq((o["rooms"], o["rooms_out_of_service"], o["nights_in_rooms_out_of_service"]), (4, 1, 1),
       "rooms, out of service, nights in them")
    eq([(r["period"], r["available"], r["occupied"]) for r in o["rows"]],
       [("2026-07-01", 3, 2), ("2026-07-02", 3, 2), ("2026-07-03", 3, 1), ("2026-07-04", 3, 0),
        ("2026-07-05", 3, 1), ("2026-07-06", 3, 1), ("2026-07-07", 3, 0)], "by day")
    eq(o["total"], {"available": 21, "occupied": 7, "occupancy_pct": 33.33}, "total")
    raw = status(srv.get(X + "/reports/occupancy" + JULY), 200).body
    ok('"occupancy_pct":33.33}' in raw, "percentages print as people write them: " + raw[-120:])
    m = get(srv, "/reports/occupancy" + JULY + "&by=month")
    eq([(r["period"], r["occupied"], r["occupancy_pct"]) for r in m["rows"]],
       [("2026-07", 7, 33.33)], "by month")


def test_adr_and_revpar(srv):
    a = get(srv, "/reports/adr" + JULY)
    eq(a["total"], {"available": 21, "occupied": 7, "revenue": "800.00", "adr": "114.29"}, "ADR")
    eq([r["adr"] for r in a["rows"]],
       ["120.00", "120.00", "120.00", None, "100.00", "100.00", None], "ADR by day")
    p = get(srv, "/reports/revpar" + JULY + "&by=month")
    eq(p["total"]["revpar"], "38.10", "RevPAR")
    eq([(r["period"], r["revenue"], r["revpar"]) for r in p["rows"]],
       [("2026-07", "800.00", "38.10")], "RevPAR by month")


def test_revenue_by_service_and_csv(srv):
    r = get(srv, "/reports/revenue-by-service" + JULY)
    eq((r["charges"], r["total"]), (3, "95.00"), "charges and total")
    eq([(x["code"], x["category"], x["charges"], x["quantity"], x["amount"]) for x in r["rows"]],
       [("SPA", "spa", 1, 1, "50.00"), ("PARK", "parking", 1, 2, "40.00"),
        ("ODD", "other", 1, 1, "5.00")], "by service")
    eq([(c["category"], c["amount"]) for c in r["categories"]],
       [("spa", "50.00"), ("parking", "40.00"), ("other", "5.00")], "by category")
    c = srv.get(X + "/reports/revenue-by-service" + JULY + "&format=csv")
    status(c, 200, "csv")
    ok(c.header("content-type").startswith("text/csv"), "text/csv: %s" % c.header("content-type"))
    lines = list(csv.reader(io.StringIO(c.body if isinstance(c.body, str) else c.body.decode())))
    eq(lines[0], ["service", "code", "name", "category", "charges", "quantity", "amount"], "header")
    eq(lines[1][1:], ["SPA", "Massage", "spa", "1", "1", "50.00"], "first line")
    eq(lines[3][2], "'=SUM(A1)", "a formula is escaped")
    # the whole year: the 2025 spa charge too
    y = get(srv, "/reports/revenue-by-service?from=2025-01-01&to=2026-12-31")
    eq((y["charges"], y["total"]), (4, "195.00"), "two years")


def test_repeat_guests(srv):
    r = get(srv, "/reports/repeat-guests?from=2026-07-01&to=2026-07-31")
    # arriving in July: Alice, Bob, Carol, Eve (cancellations and no-shows are not stays);
    # all but Carol stayed before July
    eq((r["guests"], r["returning"], r["new"], r["repeat_pct"]), (4, 3, 1, 75.0), "July")
    r = get(srv, "/reports/repeat-guests?from=2025-07-01&to=2025-07-31")
    eq((r["guests"], r["returning"], r["repeat_pct"]), (2, 0, 0.0), "July 2025: first stays")
    c = srv.get(X + "/reports/repeat-guests?from=2026-07-01&to=2026-07-31&format=csv")
    eq(c.body.splitlines()[1] if isinstance(c.body, str) else c.body.decode().splitlines()[1],
       "2026-07-01,2026-07-31,4,3,1,75.0,0", "csv row")


def test_segments(srv):
    g = W.g
    s = get(srv, "/segments?by=visits")
    eq(s["guests"], 5, "guests")
    eq({r["segment"]: r["ids"] for r in s["rows"]},
       {"no_stay": [g["Dan"]], "first_time": [g["Carol"]], "returning": [g["Alice"], g["Bob"]],
        "loyal": [g["Eve"]]}, "by visits (the highest spend first)")
    s = get(srv, "/segments?by=spend")
    # spend: Alice 740, Eve 620, Bob 610, Carol 245, Dan 0
    eq({r["segment"]: r["ids"] for r in s["rows"]},
       {"none": [g["Dan"]], "under_500": [g["Carol"]],
        "500_to_2000": [g["Alice"], g["Eve"], g["Bob"]], "2000_to_5000": [],
        "5000_and_more": []}, "by spend")
    s = get(srv, "/segments?by=services")
    got = {r["segment"]: r["ids"] for r in s["rows"] if r["guests"]}
    eq(got, {"spa": [g["Alice"], g["Bob"]], "parking": [g["Alice"]], "other": [g["Carol"]],
             "no_services": [g["Eve"]]}, "by services")
    s = get(srv, "/segments?by=spend&limit=1")
    row = [r for r in s["rows"] if r["segment"] == "500_to_2000"][0]
    eq((row["guests"], row["ids"], row["more"]), (3, [g["Alice"]], True), "top-N")
    c = srv.get(X + "/segments?by=visits&format=csv")
    ok(c.body.splitlines()[0].startswith("segment,label,guests,share_pct"), "csv header")


def test_history(srv):
    h = get(srv, "/guests/%d/history" % W.g["Alice"])
    t = h["totals"]
    eq((t["visits"], t["nights"], t["spend"], t["upcoming"], t["first_stay"], t["last_stay"]),
       (3, 6, "740.00", 1, "2025-07-10", "2026-07-05"), "totals")
    eq([(f["code"], f["stays"], f["amount"]) for f in t["favourite_services"]],
       [("SPA", 1, "100.00"), ("PARK", 1, "40.00")], "favourite services")
    eq([(r["arrival"], r["room_number"], r["nights"], r["status"], r["spend"]) for r in h["rows"]],
       [("2025-07-10", "101", 3, "checked_out", "400.00"),
        ("2026-03-01", "101", 1, "checked_out", "100.00"),
        ("2026-07-05", "102", 2, "checked_out", "240.00"),
        ("2027-07-10", "103", 2, "booked", "200.00")], "stays")
    eq([(s["code"], s["quantity"]) for s in h["rows"][0]["services"]], [("SPA", 2)], "services")
    c = srv.get(X + "/guests/%d/history?format=csv" % W.g["Alice"])
    ok("Massage x2" in c.body, "services in the csv: " + c.body[:300])
    error(srv.get(X + "/guests/999999/history"), 404)


def test_best_time_and_offers(srv):
    b = get(srv, "/guests/%d/best-time?today=%s" % (W.g["Alice"], TODAY))
    # July 2025 (0.5: more than a year ago) + July 2026 (1) = 1.5; March 2026 = 1
    eq([(m["month"], m["stays"], m["weight"]) for m in b["rows"]], [(3, 1, 1.0), (7, 2, 1.5)],
       "months")
    eq((b["repeat"], b["usual_months"], b["suggested_month"], b["contact_on"],
        b["next_booking"]), (True, [3, 7], "2027-07", "2027-05-02", "2027-07-10"), "suggestion")
    c = get(srv, "/guests/%d/best-time?today=%s" % (W.g["Carol"], TODAY))
    eq((c["repeat"], c["suggested_month"]), (False, None), "one stay: no suggestion")
    o = get(srv, "/offers/best-time?month=2027-07&today=" + TODAY)
    # Alice and Bob come in July, Eve any month; Alice has already booked July 2027
    eq([r["guest"] for r in o["rows"]], [W.g["Bob"], W.g["Eve"]], "July offers")
    eq((o["candidates"], o["already_booked"], o["rows"][0]["weight"], o["rows"][0]["email"]),
       (2, 1, 1.5, "bob@example.org"), "July details")
    o = get(srv, "/offers/best-time?month=2027-03&today=" + TODAY)
    eq([r["guest"] for r in o["rows"]], [W.g["Alice"]], "March offers")
    o = get(srv, "/offers/best-time?month=2027-09&today=" + TODAY)
    eq(o["rows"], [], "nobody in September")


def test_bad_parameters(srv):
    cases = [
        ("/reports/occupancy?from=2026-13-01", "from"),
        ("/reports/occupancy?from=2026-07-01&to=2026-06-30", "to"),
        ("/reports/adr?from=2024-01-01&to=2026-01-01", "to"),  # more than 731 days
        ("/reports/revpar" + JULY + "&by=week", "by"),
        ("/reports/revenue-by-service" + JULY + "&format=xml", "format"),
        ("/reports/repeat-guests?to=yesterday", "to"),
        ("/reports/occupancy?from=2999-01-01", "from"),  # after today (to's default)
        ("/reports/occupancy?from=2001-01-01", "from"),  # to today: too long
        ("/segments?by=age", "by"),
        ("/segments?limit=0", "limit"),
        ("/segments?limit=1001", "limit"),
        ("/offers/best-time", "month"),
        ("/offers/best-time?month=2027-7", "month"),
        ("/offers/best-time?month=2027-13", "month"),
        ("/offers/best-time?month=2027-07&today=soon", "today"),
        ("/guests/abc/history", "id"),
        ("/guests/0/best-time", "id"),
    ]
    for path, field in cases:
        error(srv.get(X + path), 400, "invalid", field, path)
    # the bound itself is fine: 731 days
    get(srv, "/reports/occupancy?from=2025-01-01&to=2026-12-31&by=month")


def test_permissions(srv):
    _, token = srv.user("nobody")  # no role: no hotel grants
    for path in ("/reports/occupancy" + JULY, "/reports/revenue-by-service" + JULY,
                 "/reports/repeat-guests" + JULY, "/segments", "/offers/best-time?month=2027-07",
                 "/guests/%d/history" % W.g["Alice"], "/guests/%d/best-time" % W.g["Alice"]):
        r = srv.get(X + path, token=token)
        ok(r.status in (403, 404), "%s: %d %s" % (path, r.status, r.body[:200]))
        ok("Alice" not in r.body and "Massage" not in r.body, path + ": no data")
    # housekeeping reads rooms and nights, not guests: occupancy yes, segments no
    _, hk = H.user_with_role(srv, "maid", "housekeeping")
    eq(get(srv, "/reports/occupancy" + JULY, token=hk)["total"]["occupied"], 7, "housekeeping")
    r = srv.get(X + "/segments", token=hk)
    ok(r.status in (403, 404), "housekeeping segments: %d" % r.status)


def demo_dir():
    """A fresh data directory with crm's and hotel's demo data (hotel's day fixed)."""
    s = lib.Server()
    conf = os.path.join(s.dir, "plugins.conf")
    H.write_conf(conf, settings="demo.today = 2026-03-15")
    # s.cli allows 60 s; the demo takes 10-20 s, several times that under a sanitizer
    p = subprocess.run([lib.CRM, "--data", s.data, "demo", "--conf", conf, "--plugin-dir",
                        H.PLUGIN_DIR], capture_output=True, text=True, env=s.env, timeout=600)
    ok(p.returncode == 0, "crm demo failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    return s


DEMO_SAME = ['SELECT name, email, birthday, loyalty_points, loyalty_tier FROM "hotel.guest"'
             ' ORDER BY id',
             'SELECT guest, room, arrival, departure, status, room_total, folio_total'
             ' FROM "hotel.reservation" ORDER BY id',
             'SELECT reservation, service, quantity, amount, at FROM "hotel.charge" ORDER BY id']


def test_demo(srv):
    """`crm demo` for crm and hotel on a fresh data directory: counts and consistent nights;
    twice: the same hotel."""
    s = demo_dir()
    try:
        con = sqlite3.connect(os.path.join(s.data, "crm.db"))
        q = lambda sql: con.execute(sql).fetchall()  # noqa: E731
        live = ' WHERE deleted_at IS NULL'
        n = {t: q('SELECT count(*) FROM "hotel.%s"%s' % (t, live))[0][0]
             for t in ("room_type", "room", "rate", "service", "guest", "reservation", "night",
                       "charge", "loyalty_entry")}
        eq((n["room_type"], n["room"]), (5, 120), "room types and rooms")
        ok(2000 <= n["guest"] <= 4000, "guests: %r" % n)
        ok(n["reservation"] > 8000 and n["night"] > 30000 and n["charge"] > 5000 and
           n["loyalty_entry"] > 3000 and n["rate"] >= 3, "volumes: %r" % n)
        eq(q('SELECT count(*) FROM "hotel.guest" g JOIN "crm.contact" c ON c.id = g.contact'
             ' WHERE c.deleted_at IS NULL')[0][0], n["guest"], "every guest has a contact")
        # no double booking, and every holding reservation has exactly its nights
        eq(q('SELECT count(*) FROM (SELECT key FROM "hotel.night"%s GROUP BY key HAVING count(*) > 1)'
             % live)[0][0], 0, "one night per room and date")
        held = q('SELECT coalesce(sum(nights), 0), count(*) FROM "hotel.reservation"%s AND status IN'
                 " ('booked','checked_in','checked_out')" % live)[0]
        eq(n["night"], held[0], "nights == the nights of the reservations that hold rooms")
        eq(q('SELECT count(*) FROM "hotel.reservation" r%s AND status IN'
             " ('booked','checked_in','checked_out') AND nights != (SELECT count(*) FROM"
             ' "hotel.night" x WHERE x.reservation = r.id AND x.deleted_at IS NULL)'
             % live.replace("deleted_at", "r.deleted_at"))[0][0], 0, "each reservation's nights")
        eq(q('SELECT count(*) FROM "hotel.night" x JOIN "hotel.reservation" r ON r.id ='
             " x.reservation WHERE x.deleted_at IS NULL AND r.status IN ('cancelled','no_show')")[0][0],
           0, "cancelled and no-shows hold no night")
        statuses = {r[0] for r in q('SELECT DISTINCT status FROM "hotel.reservation"')}
        eq(statuses, {"booked", "checked_in", "checked_out", "cancelled", "no_show"}, "statuses")
        # history: two years to the demo's day, bookings ahead; occupancy in a realistic band
        first, last = q('SELECT min(arrival), max(departure) FROM "hotel.reservation"')[0]
        ok(first <= "2024-03-20" and last > "2026-03-15", "dates %s..%s" % (first, last))
        nights_2025 = q('SELECT count(*) FROM "hotel.night" WHERE date LIKE \'2025-%\'')[0][0]
        ok(0.55 <= nights_2025 / (120 * 365.0) <= 0.80, "2025 occupancy %.2f" % (nights_2025 / 43800.0))
        # folios add up; points match the entries; tiers follow the points
        eq(q('SELECT count(*) FROM "hotel.reservation" WHERE status = \'checked_out\' AND'
             ' (folio_total != room_total + charges_total OR folio_closed != 1)')[0][0], 0, "folios")
        eq(q('SELECT count(*) FROM "hotel.reservation" r WHERE status = \'checked_out\' AND'
             ' charges_total != (SELECT coalesce(sum(amount), 0) FROM "hotel.charge" c'
             ' WHERE c.reservation = r.id)')[0][0], 0, "charges add up")
        eq(q('SELECT count(*) FROM "hotel.guest" g WHERE loyalty_points != (SELECT'
             ' coalesce(sum(points), 0) FROM "hotel.loyalty_entry" e WHERE e.guest = g.id)')[0][0],
           0, "points == the entries")
        # the tier the balance reached (scripts/loyalty.lua): redeeming never lowers it
        rank = ("CASE %s WHEN 'platinum' THEN 4 WHEN 'gold' THEN 3 WHEN 'silver' THEN 2"
                " ELSE 1 END")
        of_points = ("CASE WHEN loyalty_points >= 5000 THEN 4 WHEN loyalty_points >= 2000 THEN 3"
                     " WHEN loyalty_points >= 500 THEN 2 ELSE 1 END")
        eq(q('SELECT count(*) FROM "hotel.guest" g WHERE %s < %s'
             % (rank % "loyalty_tier", of_points))[0][0], 0, "tiers at least the balance's")
        eq(q('SELECT count(*) FROM "hotel.guest" g WHERE %s != %s AND NOT EXISTS (SELECT 1 FROM'
             ' "hotel.loyalty_entry" e WHERE e.guest = g.id AND e.kind = \'redeem\')'
             % (rank % "loyalty_tier", of_points))[0][0], 0, "tiers without redemptions")
        tiers = {r[0] for r in q('SELECT DISTINCT loyalty_tier FROM "hotel.guest"')}
        eq(tiers, {"member", "silver", "gold", "platinum"}, "every tier")
        again = demo_dir()
        try:
            con2 = sqlite3.connect(os.path.join(again.data, "crm.db"))
            for sql in DEMO_SAME:
                ok(q(sql) == con2.execute(sql).fetchall(), "the same demo: " + sql)
            con2.close()
        finally:
            again.close()
        names = " ".join(r[0] for r in q('SELECT name FROM "hotel.guest"'))
        for script, lo, hi in (("Greek", 0x370, 0x3ff), ("Hebrew", 0x590, 0x5ff),
                               ("Persian", 0x600, 0x6ff), ("Chinese", 0x4e00, 0x9fff),
                               ("Cyrillic", 0x400, 0x4ff)):
            ok(any(lo <= ord(ch) <= hi for ch in names), script + " guests")
        con.close()
        # the insight has something to say on it
        H.server(srv=s, settings="demo.today = 2026-03-15")
        seg = {r["segment"]: r["guests"] for r in
               get(s, "/segments?by=visits&today=2026-03-15")["rows"]}
        ok(seg["first_time"] > 500 and seg["returning"] > 200 and seg["loyal"] > 100,
           "segments %r" % seg)
        occ = get(s, "/reports/occupancy?from=2025-01-01&to=2025-12-31&by=month")
        ok(55 <= occ["total"]["occupancy_pct"] <= 80, "occupancy %r" % occ["total"])
        months = [r["occupancy_pct"] for r in occ["rows"]]
        ok(max(months) - min(months) > 15, "seasonal: %r" % months)
        offers = get(s, "/offers/best-time?month=2026-07&today=2026-03-15")
        ok(offers["candidates"] > 20 and offers["rows"], "July offers: %d" % offers["candidates"])
    finally:
        s.close()


if __name__ == "__main__":
    lib.run(globals(), "plugin_hotel_b_insight")
