"""
crmtest.py — a real crm server with the base crm plugin loaded, for the
plugin's API tests (plugins/crm/tests/test_*.py). Built on tests/api/lib.py.

    srv = crmtest.server(settings="forms.contact.secret = s3cret")
    srv.post(crmtest.X + "/forms/contact", {...}, token="")

The plugin is loaded from $BUILD/plugins/crm.so with plugins/crm as its
source (so its scripts/ rules load); the site's own rules directory is an
empty one, so only the plugin's rules run.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "api"))
import lib  # noqa: E402

X = "/api/v1/x/crm"
R = "/api/v1/records"
PLUGIN_DIR = os.path.join(lib.ROOT, lib.BUILD, "plugins") if not os.path.isabs(lib.BUILD) \
    else os.path.join(lib.BUILD, "plugins")

STAGES = "pipeline.stages = explore:10,proposal:30,negotiation:60,won:100,lost:0"


def server(settings="", scripts=None):
    """Start a server with [crm] loaded and `settings` (plugins.conf lines) in its section."""
    srv = lib.Server()
    conf = os.path.join(srv.dir, "plugins.conf")
    site_scripts = scripts or os.path.join(srv.dir, "scripts")
    os.makedirs(site_scripts, exist_ok=True)
    with open(conf, "w") as f:
        f.write("[crm]\nsource = %s\n%s\n%s\n" % (os.path.join(ROOT, "plugins", "crm"), STAGES,
                                                 settings))
    srv.extra_args = ["--conf", conf, "--plugin-dir", PLUGIN_DIR, "--scripts", site_scripts]
    srv.start()
    srv.admin()
    return srv


def role_id(srv, name):
    r = lib.status(srv.get(R + "/core.role?name=" + name.replace(" ", "%20")), 200)
    lib.ok(r.json["data"], "role %r exists" % name)
    return r.json["data"][0]["id"]


def user_with_role(srv, username, role, team=None):
    """Create a user with a default role (and team id); return (id, token)."""
    uid, _ = srv.user(username)
    lib.status(srv.post("/api/v1/users/%d/roles/%d" % (uid, role_id(srv, role))), 204, "role")
    if team:
        lib.status(srv.post("/api/v1/teams/%d/members/%d" % (team, uid)), 204, "team")
    return uid, srv.login(username, "user-password-1")


def create(srv, type_, fields, token=None):
    return lib.status(srv.post(R + "/" + type_, fields, token=token), 201, "create " + type_).json


def count(srv, type_, query=""):
    r = lib.status(srv.get("%s/%s?count=1&limit=1%s" % (R, type_, query)), 200, "count " + type_)
    return r.json["count"]
