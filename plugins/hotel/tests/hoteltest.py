"""
hoteltest.py — a real crm server with the base crm plugin and the hotel plugin
loaded, for the hotel plugin's API tests (plugins/hotel/tests/test_*.py).
Built on tests/api/lib.py and plugins/crm/tests/crmtest.py.

    srv = hoteltest.server()                      # admin token set
    srv = hoteltest.server(env={"CRM_CLOCK": str(t)})   # a controlled clock
    srv.post(hoteltest.X + "/bookings", {...})

Both plugins load from $BUILD/plugins with their source directories (so their
scripts/ rules load); the site's rules directory is an empty one.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "api"))
sys.path.insert(0, os.path.join(ROOT, "plugins", "crm", "tests"))
import lib  # noqa: E402
import crmtest  # noqa: E402

X = "/api/v1/x/hotel"
R = "/api/v1/records"
PLUGIN_DIR = crmtest.PLUGIN_DIR
role_id = crmtest.role_id
user_with_role = crmtest.user_with_role
create = crmtest.create


def write_conf(path, hotel=True, settings=""):
    """plugins.conf with crm, and hotel enabled or not (its section kept either way)."""
    with open(path, "w") as f:
        f.write("[crm]\nsource = %s\n%s\n" % (os.path.join(ROOT, "plugins", "crm"),
                                            crmtest.STAGES))
        f.write("[hotel]\nsource = %s\nenabled = %s\n%s\n"
                % (os.path.join(ROOT, "plugins", "hotel"), "yes" if hotel else "no", settings))


def server(settings="", env=None, hotel=True, srv=None):
    """Start a server with [crm] and [hotel] (`settings` in hotel's section); `srv` restarts
    an existing (stopped) server's data directory, e.g. with another clock or hotel off."""
    srv = srv or lib.Server(env=env)
    conf = os.path.join(srv.dir, "plugins.conf")
    scripts = os.path.join(srv.dir, "scripts")
    os.makedirs(scripts, exist_ok=True)
    write_conf(conf, hotel=hotel, settings=settings)
    srv.extra_args = ["--conf", conf, "--plugin-dir", PLUGIN_DIR, "--scripts", scripts]
    srv.start()
    srv.admin()
    return srv


# ---- A small hotel (the booking and stay tests, test_a_*.py) ----

def hotel(srv, rooms=4):
    """Room type "Double" (capacity 2, 100.00 a night) with `rooms` rooms 101.., "Suite"
    (capacity 4, 300.00) with room 501, services minibar (4.50) and spa (80.00).
    Returns {"double", "suite": room type ids, "rooms": [ids], "suite_room", "minibar", "spa"}."""
    double = create(srv, "hotel.room_type", {"code": "DBL", "name": "Double", "capacity": 2,
                                             "base_rate": "100.00"})
    suite = create(srv, "hotel.room_type", {"code": "STE", "name": "Suite", "capacity": 4,
                                            "base_rate": "300.00"})
    ids = [create(srv, "hotel.room", {"number": str(101 + i), "floor": 1,
                                      "room_type": double["id"]})["id"] for i in range(rooms)]
    suite_room = create(srv, "hotel.room", {"number": "501", "floor": 5,
                                            "room_type": suite["id"]})["id"]
    minibar = create(srv, "hotel.service", {"code": "MB", "name": "Minibar", "price": "4.50",
                                            "category": "minibar"})["id"]
    spa = create(srv, "hotel.service", {"code": "SPA", "name": "Spa", "price": "80.00",
                                        "category": "spa"})["id"]
    return {"double": double["id"], "suite": suite["id"], "rooms": ids, "suite_room": suite_room,
            "minibar": minibar, "spa": spa}


def guest(srv, name="Ada Lovelace", email="ada@example.org", **fields):
    body = {"name": name, "email": email}
    body.update(fields)
    return create(srv, "hotel.guest", body)


def book(srv, guest_id, room, arrival, departure, token=None, expect=201, **fields):
    """POST /bookings; returns the reservation (or the response when expect is not 201)."""
    body = {"guest": guest_id, "room": room, "arrival": arrival, "departure": departure}
    body.update(fields)
    r = srv.post(X + "/bookings", body, token=token)
    if expect != 201:
        return r
    return lib.status(r, 201, "booking").json


def nights(srv, reservation_id):
    """The live nights of a reservation, as [(room, date, rate)] sorted by date."""
    r = lib.status(srv.get("%s/hotel.night?reservation=%d&sort=date&limit=1000"
                           % (R, reservation_id)), 200)
    return [(n["room"], n["date"], n["rate"]) for n in r.json["data"]]


def count(srv, type_, query=""):
    return crmtest.count(srv, type_, query)
