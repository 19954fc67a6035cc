"""
Plugins through a real server: GET /api/v1/plugins, a plugin's route under
/api/v1/x/<plugin>/, its type and bus handler over the records API, refused
plugins beside loaded ones, and a disabled plugin's type and route absent.
Uses the test plugins that `make check` builds into $BUILD/test-plugins.
"""
import os

import lib

PLUGIN_DIR = os.path.join(lib.ROOT, lib.BUILD, "test-plugins") if not os.path.isabs(lib.BUILD) \
    else os.path.join(lib.BUILD, "test-plugins")


def server_with(conf_text):
    srv = lib.Server()
    conf = os.path.join(srv.dir, "plugins.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    srv.extra_args = ["--conf", conf, "--plugin-dir", PLUGIN_DIR]
    srv.start()
    srv.admin()
    return srv


GOOD_AND_BROKEN = """
[good]
source = tests/plugins/good
greeting = hello

[badmagic]
source = tests/plugins/badmagic

[initfail]
source = tests/plugins/initfail
"""


def test_plugins_listed_with_state(srv):
    s = server_with(GOOD_AND_BROKEN)
    try:
        r = lib.status(s.get("/api/v1/plugins"), 200)
        by_name = {p["name"]: p for p in r.json["data"]}
        lib.eq(by_name["good"]["state"], "loaded", "good")
        lib.eq(by_name["badmagic"]["state"], "refused", "badmagic")
        lib.ok("magic" in by_name["badmagic"]["error"], "badmagic error names the field: %r"
               % by_name["badmagic"]["error"])
        lib.eq(by_name["initfail"]["state"], "refused", "initfail")
        # anonymous callers are refused
        lib.error(s.get("/api/v1/plugins", token=""), 401)
    finally:
        s.close()


def test_plugin_route_type_and_handler(srv):
    s = server_with(GOOD_AND_BROKEN)
    try:
        r = lib.status(s.get("/api/v1/x/good/hello"), 200)
        lib.eq(r.json, {"hello": "world"}, "plugin route")
        lib.error(s.get("/api/v1/x/good/hello", token=""), 401)
        lib.error(s.get("/api/v1/x/good/nope"), 404)
        t = lib.status(s.get("/api/v1/types/good.item"), 200).json
        lib.eq(t["indexes"], [["name", "n"]], "the plugin's composite index")
        # the plugin's before handler doubles n, and refuses a name with its own message
        r = lib.status(s.post("/api/v1/records/good.item", {"name": "a", "n": 21}), 201)
        lib.eq(r.json["n"], 42, "before handler ran")
        r = lib.error(s.post("/api/v1/records/good.item", {"name": "forbidden"}), 400,
                      field="name")
        lib.ok("forbidden" in r.json["error"]["message"], r.json["error"]["message"])
        # the half-registered type of the failing plugin is absent
        lib.error(s.get("/api/v1/types/initfail.thing"), 404)
    finally:
        s.close()


def test_sdk_entries_through_a_route(srv):
    """The host API's clock, transaction, client address, raw body, non-JSON reply and
    record history, used by a plugin's routes."""
    s = server_with(GOOD_AND_BROKEN)
    try:
        r = s.request("POST", "/api/v1/x/good/echo", raw="a=1&b=two",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        lib.status(r, 200)
        lib.eq(r.header("Content-Type"), "text/plain; charset=utf-8", "content type")
        lib.eq(r.body, "a=1&b=two from 127.0.0.1", "raw body and client address")
        # both items or neither: the second name is refused by the plugin's before handler
        lib.status(s.post("/api/v1/x/good/pair", {"names": ["p1", "p2"]}), 201)
        lib.error(s.post("/api/v1/x/good/pair", {"names": ["p3", "forbidden"]}), 400, field="name")
        names = [x["name"] for x in lib.status(s.get("/api/v1/records/good.item?limit=100"),
                                               200).json["data"]]
        lib.eq(sorted(n for n in names if n.startswith("p")), ["p1", "p2"], "p3 rolled back")
        item = lib.status(s.post("/api/v1/records/good.item", {"name": "h", "n": 1}), 201).json
        lib.status(s.patch("/api/v1/records/good.item/%d" % item["id"], {"n": 7}), 200)
        h = lib.status(s.get("/api/v1/x/good/history/%d" % item["id"]), 200).json
        lib.eq([x["action"] for x in h["history"]], ["create", "update"], "history")
        lib.eq(h["history"][1]["changes"]["n"], [2, 7], "old and new")
        lib.ok(abs(h["now"] - __import__("time").time()) < 300, "the platform clock")
        lib.error(s.get("/api/v1/x/good/history/999999"), 404)
        # as_system sees every record whatever the caller may read; types lists the schema
        _, nob = s.user("nobody")
        c = lib.status(s.get("/api/v1/x/good/census"), 200).json
        lib.ok(c["mine"] == c["all"] and c["all"] >= 3, "admin sees all: %r" % c)
        lib.eq(sorted(c["fields"]), ["n", "name"], "types() names the fields")
        c = lib.status(s.get("/api/v1/x/good/census", token=nob), 200).json
        lib.eq(c["mine"], -1, "no grant: the caller's own find is refused")
        lib.ok(c["all"] >= 3, "as_system still sees every item: %r" % c)
        lib.eq(c["fields"], [], "types() leaves out a type the caller cannot read")
    finally:
        s.close()


def test_disabled_plugin_absent(srv):
    s = server_with(GOOD_AND_BROKEN)
    data = s.data
    try:
        lib.status(s.post("/api/v1/records/good.item", {"name": "kept", "n": 1}), 201)
    finally:
        s.stop()
    # the same data directory, with good disabled
    s2 = lib.Server(init=False)
    s2.data = data
    conf = os.path.join(s2.dir, "plugins.conf")
    with open(conf, "w") as f:
        f.write("[good]\nsource = tests/plugins/good\nenabled = no\n")
    s2.extra_args = ["--conf", conf, "--plugin-dir", PLUGIN_DIR]
    try:
        s2.start()
        s2.admin()
        r = lib.status(s2.get("/api/v1/plugins"), 200)
        lib.eq([p["state"] for p in r.json["data"] if p["name"] == "good"], ["disabled"], "state")
        lib.error(s2.get("/api/v1/types/good.item"), 404)
        lib.error(s2.get("/api/v1/records/good.item"), 404)
        lib.error(s2.get("/api/v1/x/good/hello"), 404)
        # the core keeps working
        lib.status(s2.get("/api/v1/types/core.user"), 200)
    finally:
        s2.close()
        s.close()


def test_site_rule_calls_plugin_function(srv):
    s = lib.Server()
    scripts = os.path.join(s.dir, "scripts")
    os.makedirs(scripts)
    with open(os.path.join(scripts, "use_plugin.lua"), "w") as f:
        f.write('''
rule {
  name  = "number from the plugin",
  on    = "good.item.created",
  phase = "before",
  run   = function(ev) ev.record.n = crm.good.helper() + 100 end,
}
''')
    conf = os.path.join(s.dir, "plugins.conf")
    with open(conf, "w") as f:
        f.write("[good]\nsource = tests/plugins/good\n")
    s.extra_args = ["--conf", conf, "--plugin-dir", PLUGIN_DIR, "--scripts", scripts]
    try:
        s.start()
        s.admin()
        r = lib.status(s.post("/api/v1/records/good.item", {"name": "ruled", "n": 5}), 201)
        lib.eq(r.json["n"], 101, "rule set n from crm.good.helper()")
        rules = lib.status(s.get("/api/v1/rules"), 200).json
        names = [x.get("name") for x in (rules.get("data") if isinstance(rules, dict) else rules)]
        lib.ok("number from the plugin" in names, "rule listed: %r" % names)
    finally:
        s.close()


def test_malformed_conf_refuses_start(srv):
    s = lib.Server()
    conf = os.path.join(s.dir, "plugins.conf")
    with open(conf, "w") as f:
        f.write("[good]\nsource = tests/plugins/good\n[good]\nsource = x\n")
    try:
        p = s.cli("serve", "--listen", "127.0.0.1:0", "--conf", conf, "--plugin-dir", PLUGIN_DIR,
                  check=False)
        lib.eq(p.returncode, 1, "exit code")
        lib.ok("plugins.conf:3" in p.stderr, "error names the line: %r" % p.stderr)
    finally:
        s.close()


if __name__ == "__main__":
    lib.run(globals(), "api_plugins")
