"""`crm import` from the command line loads the plugins and rules of plugins.conf, so a
reservation imported from CSV gets its nights and price like one made over HTTP, and a
double booking in the file is refused with the same message."""
import json
import os

import hoteltest as H
import lib


def import_csv(srv, type_, text, *extra):
    path = os.path.join(srv.dir, "import.csv")
    with open(path, "w") as f:
        f.write(text)
    conf = os.path.join(srv.dir, "plugins.conf")
    return srv.cli("import", type_, path, "--conf", conf, "--plugin-dir", H.PLUGIN_DIR,
                   "--scripts", os.path.join(srv.dir, "scripts"), *extra, check=False)


def test_cli_import_runs_the_plugins(srv):
    h = H.hotel(srv, rooms=1)
    g = H.guest(srv, name="Grace Hopper", email="grace@example.org")
    room = h["rooms"][0]
    p = import_csv(srv, "hotel.reservation",
                   "guest,room,arrival,departure,adults\n"
                   "%d,%d,2031-03-01,2031-03-04,2\n"
                   "%d,%d,2031-03-03,2031-03-05,1\n" % (g["id"], room, g["id"], room),
                   "--mode", "line")
    lib.eq(p.returncode, 1, "one line failed: %s" % p.stderr)
    result = json.loads(p.stdout)
    lib.eq((result["created"], result["failed"]), (1, 1), "created and failed")
    err = result["errors"][0]
    lib.eq(err["line"], 3, "the failing line")
    lib.ok("already booked on 2031-03-03" in err["message"], "names the night: " + err["message"])
    res = lib.status(srv.get(H.R + "/hotel.reservation?arrival=2031-03-01"), 200).json["data"]
    lib.eq(len(res), 1, "one reservation imported")
    lib.eq((res[0]["nights"], res[0]["room_total"]), (3, "300.00"), "computed by the plugin")
    lib.eq([n[1] for n in H.nights(srv, res[0]["id"])], ["2031-03-01", "2031-03-02", "2031-03-03"],
           "its nights")
    # all-or-nothing: a file with a conflict imports nothing
    p = import_csv(srv, "hotel.reservation",
                   "guest,room,arrival,departure\n%d,%d,2031-04-01,2031-04-02\n"
                   "%d,%d,2031-03-02,2031-03-03\n" % (g["id"], room, g["id"], room))
    lib.eq(p.returncode, 1, "refused")
    lib.eq(H.count(srv, "hotel.reservation", "&arrival=2031-04-01"), 0, "nothing imported")


def shared_server():
    return H.server()


if __name__ == "__main__":
    lib.run(globals(), "test_a_cli")
