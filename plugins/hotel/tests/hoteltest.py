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
