#!/usr/bin/env python3
"""
http_bench.py — the HTTP figures of `make bench` (bench/README.md, "HTTP"):
wrk on loopback against `crm serve` on the 1M-contact data set, side by side
with the raw limits measured in the same run (libmicrohttpd serving a constant,
libmicrohttpd + bare SQLite point select + Jansson, bare SQLite inserts and
bulk load). Writes the section between <!-- http:begin --> and <!-- http:end -->
of bench/REPORT.md.

Environment: BENCH_ROWS (1000000), BENCH_HTTP_REPS (3), BENCH_HTTP_SECONDS (10),
BENCH_IMPORT_ROWS (= BENCH_ROWS), BENCH_IMPORT_REPS (1), BENCH_DATA (bench/.data),
BENCH_REPORT (bench/REPORT.md), BENCH_HTTP_ONLY (comma list of get,list,search,create,
import: run only those, print, keep REPORT.md).
"""
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.join(ROOT, os.environ.get("BENCH_BUILD", "build-release"))
CRM = os.path.join(BUILD, "crm")
TOOL = os.path.join(BUILD, "bench", "http_tool")
ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
REPS = int(os.environ.get("BENCH_HTTP_REPS", "3"))
SECS = int(os.environ.get("BENCH_HTTP_SECONDS", "10"))
IMPORT_ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", str(ROWS)))
IMPORT_REPS = int(os.environ.get("BENCH_IMPORT_REPS", "1"))
DATA = os.path.join(ROOT, os.environ.get("BENCH_DATA", "bench/.data"))
REPORT = os.environ.get("BENCH_REPORT", os.path.join(ROOT, "bench", "REPORT.md"))
ONLY = set(filter(None, os.environ.get("BENCH_HTTP_ONLY", "").split(",")))
CREATE_BARE_N = int(os.environ.get("BENCH_BARE_INSERTS", "2000"))
PASSWORD = "bench-password-1"
WRK_DIR = os.path.join(BUILD, "bench", "wrk")
T0 = time.time()


def log(*a):
    print("http-bench [%4.0fs]:" % (time.time() - T0), *a, file=sys.stderr, flush=True)


def want(group):
    return not ONLY or group in ONLY


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit("http-bench: %s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr))
    return p.stdout


# ---- servers ----

class Server:
    def __init__(self, argv, logpath, env=None):
        self.log = open(logpath, "wb")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log,
                                     env=dict(os.environ, **(env or {})))
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                return
            if not line and self.proc.poll() is not None:
                break
        raise SystemExit("http-bench: %s did not start (see %s)" % (argv[0], logpath))

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def rss_kb(self, key="VmRSS"):
        """VmRSS counts the pages of the database file the process touched through
        SQLite's mmap (RssFile: page cache, shared, reclaimable) besides its own
        memory (RssAnon)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def crm_server(data, logname, extra=()):
    # --per-ip: wrk's 64 connections all come from 127.0.0.1 (the default allows 32).
    # --conf/--scripts: the kernel alone, whatever plugins.conf and scripts/ of the
    # working directory enable (the bench data set declares its own crm.contact).
    empty = os.path.join(BUILD, "bench", "empty")
    os.makedirs(empty, exist_ok=True)
    conf = os.path.join(empty, "plugins.conf")
    open(conf, "a").close()
    return Server([CRM, "--data", data, "serve", "--listen", "127.0.0.1:0", "--per-ip", "256",
                   "--conf", conf, "--scripts", empty] + list(extra),
                  os.path.join(BUILD, "bench", logname))


# ---- wrk ----

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url, script, conns=64, env=None, latency=False, secs=None):
    cmd = ["wrk", "-t%d" % min(2, conns), "-c%d" % conns, "-d%ds" % (secs or SECS), "-s", script]
    if latency:
        cmd.append("--latency")
    cmd.append(url)
    out = run(cmd, env=dict(os.environ, **(env or {})))
    r = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "raw": out}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["bad"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    r["sockerr"] = m.group(1) if m else ""
    if latency:
        for p in ("50", "99"):
            m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, out, re.M)
            r["p" + p] = float(m.group(1)) * UNITS[m.group(2)]
    if r["bad"] or r["sockerr"]:
        log("WARNING %s: %d non-2xx, socket errors %s" % (url, r["bad"], r["sockerr"] or "none"))
    return r


LUA_COMMON = r"""
local counter, tid = 0, 0
local threads = {}
local n = 0
function setup(thread)
  n = n + 1
  thread:set("tid", n)
end
function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 0
  math.randomseed(os.time() * 1000 + tid)
end
local auth = { ["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "") }
"""

SCRIPTS = {
    "get.lua": LUA_COMMON + r"""
local maxid = tonumber(os.getenv("BENCH_MAXID"))
local base = os.getenv("BENCH_BASE") or "/api/v1/records/crm.contact/"
request = function()
  return wrk.format("GET", base .. math.random(1, maxid), auth)
end
""",
    "list.lua": LUA_COMMON + r"""
local cities = dofile(os.getenv("BENCH_WRKDIR") .. "/cities.lua")
request = function()
  return wrk.format("GET", "/api/v1/records/crm.contact?city=" .. cities[math.random(#cities)] ..
                    "&limit=50", auth)
end
""",
    "search.lua": LUA_COMMON + r"""
local prefixes = dofile(os.getenv("BENCH_WRKDIR") .. "/prefixes.lua")
request = function()
  return wrk.format("GET", "/api/v1/search?q=" .. prefixes[math.random(#prefixes)], auth)
end
""",
    "create.lua": LUA_COMMON + r"""
local tag = os.getenv("BENCH_TAG") or "x"
local firsts = {"James", "Μαρία", "נועה", "محمد", "伟", "Дмитрий", "Linda", "Σοφία"}
local lasts = {"Smith", "Παπαδόπουλος", "כהן", "رضایی", "王", "Иванов", "Clark", "Οικονόμου"}
local cities = {"London", "Αθήνα", "חיפה", "تهران", "北京", "Москва", "Denver", "Πάτρα"}
auth["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local i = math.random(#firsts)
  local body = string.format('{"first_name":"%s","last_name":"%s","email":"w%s.%d.%d@example.org",' ..
    '"phone":"+44 20 %04d","city":"%s","country":"UK","score":%d}', firsts[i],
    lasts[math.random(#lasts)], tag, tid, counter, counter % 10000, cities[math.random(#cities)],
    counter % 1000)
  return wrk.format("POST", "/api/v1/records/crm.contact", auth, body)
end
""",
}


# ---- figures ----

class Fig:
    def __init__(self, name, unit, limit_name=None, target=None, kind="rate", tval=None,
                 note=""):
        self.name, self.unit, self.limit_name = name, unit, limit_name
        self.target, self.kind, self.tval, self.note = target, kind, tval, note
        self.v, self.lim = [], []

    def cells(self):
        def fmt(vs):
            if not vs:
                return "—"
            m = statistics.median(vs)
            f = "%.3f" if self.unit == "ms" else ("%.1f" if self.unit in ("MB", "mean") else "%.0f")
            return (f + " (" + f + "–" + f + ")") % (m, min(vs), max(vs))
        crm = fmt(self.v)
        lim = ("%s: %s" % (self.limit_name, fmt(self.lim))) if self.lim else (self.limit_name or "—")
        ratio, met = "—", "—"
        if self.v and self.lim:
            a, b = statistics.median(self.v), statistics.median(self.lim)
            # latencies: limit / crm, so that below 1.00 is slower than the limit, as for rates
            ratio = "%.2f" % ((b / a) if self.unit == "ms" else (a / b))
        if self.v and self.target:
            m = statistics.median(self.v)
            if self.kind == "ratio":
                ok = self.lim and statistics.median(self.v) / statistics.median(self.lim) >= self.tval
            else:
                ok = m <= self.tval
            met = "yes" if ok else "**no**"
        return ["%s [%s]" % (self.name, self.unit), crm, lim, ratio, self.target or "—", met]


FIGS = []


def fig(*a, **kw):
    f = Fig(*a, **kw)
    FIGS.append(f)
    return f


def main():
    for tool in ("wrk",):
        if not shutil.which(tool):
            raise SystemExit("http-bench: %s is missing (apt-get install wrk)" % tool)
    cache = os.path.join(DATA, "contacts-%d" % ROWS, "crm.db")
    if not os.path.exists(cache):
        raise SystemExit("http-bench: no data set %s (run bench/kernel_bench first)" % cache)
    os.makedirs(WRK_DIR, exist_ok=True)
    for name, text in SCRIPTS.items():
        with open(os.path.join(WRK_DIR, name), "w") as f:
            f.write(text)

    # A working copy of the data set, with the users and tokens of this benchmark.
    work = os.path.join(DATA, "http")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    t = time.time()
    shutil.copyfile(cache, os.path.join(work, "crm.db"))
    log("copied the data set in %.1f s" % (time.time() - t))
    db = os.path.join(work, "crm.db")
    # The upkeep crm serve does within minutes of its start on a new database (and daily):
    # the search indexes merged into one segment each. Run here at once, so that the
    # servers below do not do it during the measurements.
    t = time.time()
    log(run([CRM, "--data", work, "maintain"]).strip() + " (%.1f s)" % (time.time() - t))
    env_pw = dict(os.environ, CRM_PASSWORD=PASSWORD)
    run([CRM, "--data", work, "user", "add", "bench_writer", "--admin"], env=env_pw)
    reader_tok = run([CRM, "--data", work, "token", "create", "bench_reader"]).strip()
    writer_tok = run([CRM, "--data", work, "token", "create", "bench_writer"]).strip()
    maxid = int(run([TOOL, "maxid", db]).strip())
    run([TOOL, "lua", db, WRK_DIR])
    base_env = {"BENCH_WRKDIR": WRK_DIR, "BENCH_MAXID": str(maxid)}
    get_env = dict(base_env, BENCH_TOKEN=reader_tok)

    f_const = fig("libmicrohttpd serving a constant JSON (raw HTTP limit)", "req/s")
    f_base = fig("libmicrohttpd + SQLite point select + Jansson (raw GET limit)", "req/s")
    f_get = fig("GET /records/crm.contact/{id}, Bearer token, non-admin reader (role: read all)",
                "req/s", "MHD + SQLite + Jansson", "≥ 0.75 × limit", "ratio", 0.75)
    f_get_c = fig("  same, compared with MHD serving a constant", "req/s", "MHD constant")
    lim_list = "MHD + same SQL + Jansson"
    f_list50 = fig("list ?city=<v>&limit=50 (indexed field, default order): p50", "ms", lim_list)
    f_list = fig("list ?city=<v>&limit=50 (indexed field, default order): p99", "ms", lim_list,
                 "p99 ≤ 5 ms", "max", 5)
    f_list_r = fig("list ?city=<v>&limit=50: throughput", "req/s", lim_list)
    f_list1 = fig("  list, 1 connection (no queueing): p99", "ms", lim_list)
    lim_s = "MHD + FTS5 newest 20, unranked + Jansson"
    f_s50 = fig("search ?q=<3-character prefix>: p50", "ms", lim_s)
    f_s = fig("search ?q=<3-character prefix>: p99", "ms", lim_s, "p99 ≤ 5 ms", "max", 5)
    f_s_r = fig("search ?q=<3-character prefix>: throughput", "req/s", lim_s)
    f_s1 = fig("  search, 1 connection (no queueing): p99", "ms", lim_s)
    f_cr = fig("POST /records/crm.contact, 16 connections, synchronous=FULL (row + FTS + history "
               "+ outbox)", "req/s", "bare INSERT row + FTS row, 1 tx each at FULL",
               "≥ 1.0 × bare", "ratio", 1.0)
    f_batch = fig("  group commit: mean jobs per commit during the create runs", "mean")
    f_cr1 = fig("POST /records/crm.contact, 1 connection, synchronous=FULL", "req/s",
                "bare INSERT row + FTS row, 1 tx each at FULL")
    f_crn = fig("POST /records/crm.contact, 16 connections, synchronous=NORMAL", "req/s",
                "bare INSERT row + FTS row, 1 tx each at NORMAL")
    f_crn1 = fig("POST /records/crm.contact, 1 connection, synchronous=NORMAL", "req/s",
                 "bare INSERT row + FTS row, 1 tx each at NORMAL")
    f_rss0 = fig("RSS of crm serve on the 1M database, idle after start", "MB", None,
                 "≤ 15 MB", "max", 15)
    f_rss1 = fig("RSS of crm serve, idle after the load above", "MB", None, "≤ 15 MB", "max", 15)
    f_anon = fig("  of which the process's own memory (RssAnon), idle after the load", "MB")
    f_hwm = fig("RSS of crm serve, peak during the load (VmHWM)", "MB")
    f_imp = fig("import %d contacts: POST /import/crm.contact?mode=line (CSV)" % IMPORT_ROWS,
                "rows/s", "bare bulk INSERT row + FTS row, 1 tx at FULL", "≥ 0.7 × bare",
                "ratio", 0.7)

    if want("get") or want("list") or want("search") or want("create"):
        for r in range(REPS):
            log("rep %d/%d" % (r + 1, REPS))
            if want("get"):
                s = Server([os.path.join(BUILD, "bench", "baseline_mhd")],
                           os.path.join(BUILD, "bench", "baseline_mhd.log"))
                f_const.v.append(wrk(s.url(), os.path.join(WRK_DIR, "get.lua"), env=get_env)["rps"])
                s.stop()
            if want("get") or want("list") or want("search"):
                # the raw limits of the read endpoints: bare SQLite with crm's mmap_size
                s = Server([os.path.join(BUILD, "bench", "baseline_mhd_sqlite"), db],
                           os.path.join(BUILD, "bench", "baseline_mhd_sqlite.log"),
                           env={"BASELINE_MMAP": "268435456"})
                wrk(s.url(), os.path.join(WRK_DIR, "get.lua"), env=get_env, secs=2)  # warm the cache
                if want("get"):
                    f_base.v.append(wrk(s.url(), os.path.join(WRK_DIR, "get.lua"),
                                        env=get_env)["rps"])
                for on, figs, one in (("list", (f_list50, f_list, f_list_r), f_list1),
                                      ("search", (f_s50, f_s, f_s_r), f_s1)):
                    if want(on):
                        w = wrk(s.url(), os.path.join(WRK_DIR, on + ".lua"), env=get_env,
                                latency=True)
                        for f, key in zip(figs, ("p50", "p99", "rps")):
                            f.lim.append(w[key])
                        w = wrk(s.url(), os.path.join(WRK_DIR, on + ".lua"), conns=1,
                                env=get_env, latency=True, secs=5)
                        one.lim.append(w["p99"])
                s.stop()
            s = crm_server(work, "crm_serve_%d.log" % r)
            time.sleep(0.5)
            if r == 0:
                f_rss0.v.append(s.rss_kb() / 1024)
            if want("get"):
                wrk(s.url(), os.path.join(WRK_DIR, "get.lua"), env=get_env, secs=2)
                v = wrk(s.url(), os.path.join(WRK_DIR, "get.lua"), env=get_env)["rps"]
                f_get.v.append(v)
                f_get_c.v.append(v)
                f_get.lim.append(f_base.v[-1])
                f_get_c.lim.append(f_const.v[-1])
            if want("list"):
                w = wrk(s.url(), os.path.join(WRK_DIR, "list.lua"), env=get_env, latency=True)
                f_list50.v.append(w["p50"])
                f_list.v.append(w["p99"])
                f_list_r.v.append(w["rps"])
                w = wrk(s.url(), os.path.join(WRK_DIR, "list.lua"), conns=1, env=get_env,
                        latency=True, secs=5)
                f_list1.v.append(w["p99"])
            if want("search"):
                w = wrk(s.url(), os.path.join(WRK_DIR, "search.lua"), env=get_env, latency=True)
                f_s50.v.append(w["p50"])
                f_s.v.append(w["p99"])
                f_s_r.v.append(w["rps"])
                w = wrk(s.url(), os.path.join(WRK_DIR, "search.lua"), conns=1, env=get_env,
                        latency=True, secs=5)
                f_s1.v.append(w["p99"])
            if want("create"):
                w = wrk(s.url(), os.path.join(WRK_DIR, "create.lua"), conns=16,
                        env=dict(base_env, BENCH_TOKEN=writer_tok, BENCH_TAG="r%d" % r))
                f_cr.v.append(w["rps"])
                w = wrk(s.url(), os.path.join(WRK_DIR, "create.lua"), conns=1,
                        env=dict(base_env, BENCH_TOKEN=writer_tok, BENCH_TAG="s%d" % r))
                f_cr1.v.append(w["rps"])
            f_hwm.v.append(s.rss_kb("VmHWM") / 1024)
            time.sleep(1)
            f_rss1.v.append(s.rss_kb() / 1024)
            f_anon.v.append(s.rss_kb("RssAnon") / 1024)
            s.stop()
            with open(os.path.join(BUILD, "bench", "crm_serve_%d.log" % r), errors="replace") as lf:
                m = re.findall(r"group commit: (\d+) jobs in (\d+) batches", lf.read())
                if m and want("create"):
                    f_batch.v.append(int(m[-1][0]) / max(1, int(m[-1][1])))
            if want("create"):
                # the same creates on a server at synchronous=NORMAL (fsync at checkpoints only)
                n = crm_server(work, "crm_serve_normal_%d.log" % r, ("--sync", "normal"))
                try:
                    w = wrk(n.url(), os.path.join(WRK_DIR, "create.lua"), conns=16,
                            env=dict(base_env, BENCH_TOKEN=writer_tok, BENCH_TAG="n%d" % r))
                    f_crn.v.append(w["rps"])
                    w = wrk(n.url(), os.path.join(WRK_DIR, "create.lua"), conns=1,
                            env=dict(base_env, BENCH_TOKEN=writer_tok, BENCH_TAG="m%d" % r))
                    f_crn1.v.append(w["rps"])
                finally:
                    n.stop()
                bare = float(run([TOOL, "bareinsert", db, str(CREATE_BARE_N)]).strip())
                bare_normal = float(run([TOOL, "bareinsert", db, str(CREATE_BARE_N * 5),
                                         "NORMAL"]).strip())
                f_cr.lim.append(bare)
                f_cr1.lim.append(bare)
                f_crn.lim.append(bare_normal)
                f_crn1.lim.append(bare_normal)
            log("rep %d: const %s base %s get %s list p99 %s search p99 %s create %s bare %s" % (
                r + 1, f_const.v[-1:], f_base.v[-1:], f_get.v[-1:], f_list.v[-1:], f_s.v[-1:],
                f_cr.v[-1:], f_cr.lim[-1:]))

    if want("import"):
        csv = os.path.join(DATA, "import-%d.csv" % IMPORT_ROWS)
        if not os.path.exists(csv):
            run([TOOL, "csv", cache, str(IMPORT_ROWS), csv + ".tmp"])
            os.rename(csv + ".tmp", csv)
        for r in range(IMPORT_REPS):
            bare_db = os.path.join(DATA, "bare-import.db")
            n, secs = run([TOOL, "bareload", db, csv, bare_db]).split()
            f_imp.lim.append(int(n) / float(secs))
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(bare_db + suffix)
                except OSError:
                    pass
            imp = os.path.join(DATA, "http-import")
            shutil.rmtree(imp, ignore_errors=True)
            os.makedirs(imp)
            run([TOOL, "mktype", imp])
            run([CRM, "--data", imp, "user", "add", "bench_importer", "--admin"], env=env_pw)
            tok = run([CRM, "--data", imp, "token", "create", "bench_importer"]).strip()
            s = crm_server(imp, "crm_import.log")
            t = time.time()
            out = run(["curl", "-sS", "--max-time", "3000", "-X", "POST", "-H",
                       "Authorization: Bearer " + tok, "-H", "Content-Type: text/csv",
                       "--data-binary", "@" + csv, s.url("/api/v1/import/crm.contact?mode=line")])
            dt = time.time() - t
            s.stop()
            m = re.search(r'"created":\s*(\d+)', out)
            created = int(m.group(1)) if m else 0
            if created != IMPORT_ROWS:
                log("WARNING import created %d of %d: %s" % (created, IMPORT_ROWS, out[:300]))
            f_imp.v.append(created / dt)
            shutil.rmtree(imp, ignore_errors=True)
            log("import rep %d: crm %.0f rows/s, bare %.0f rows/s" % (r + 1, f_imp.v[-1], f_imp.lim[-1]))

    shutil.rmtree(work, ignore_errors=True)
    write_report()


def write_report():
    rows = [f for f in FIGS if f.v or f.lim]
    header = ["figure", "crm", "limit (same run)", "ratio", "target", "met"]
    for f in rows:
        print(" | ".join(f.cells()))
    if ONLY:
        return
    try:
        mhd = run(["pkg-config", "--modversion", "libmicrohttpd"]).strip()
    except SystemExit:
        mhd = "?"
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    md = ["<!-- http:begin -->", "## HTTP (wrk on loopback)", "",
          "- Date: %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
          "- %s; libmicrohttpd %s; crm serve with its defaults (pool = 2 per core = %d threads, "
          "writes on suspended connections through group commit, synchronous=FULL, access log "
          "on, to a file); the limits' pool = nproc = %d" % (wrk_v.strip(), mhd,
                                                           2 * (os.cpu_count() or 1),
                                                           os.cpu_count() or 1),
          "- Data: a copy of the kernel benchmark's %d-contact data set; wrk `-t2 -c64 -d%ds` "
          "(creates: `-c16` and `-t1 -c1`, at FULL and on a second server at NORMAL), %d runs of each wrk figure, **median (min–max)**; limits measured "
          "in the same runs, alternating with crm" % (ROWS, SECS, REPS),
          "- Import: %d run(s) of %d rows through `POST /api/v1/import/crm.contact?mode=line` "
          "(curl, the CSV as the body) into an empty data set; the bare limit loads the same "
          "CSV (parsed with the kernel's reader) into the same table DDL + FTS5 in one "
          "transaction" % (IMPORT_REPS, IMPORT_ROWS), "",
          "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for f in rows:
        md.append("| " + " | ".join(f.cells()) + " |")
    md += ["", "Ratios are median / median. Lists and search: the latency distribution of wrk "
           "`--latency` at 64 connections (so p99 includes queueing behind 63 other "
           "requests on 2 cores). RSS: VmRSS of /proc/PID/status; it includes the database "
           "pages the process touched through SQLite's mmap (mmap_size 256 MiB per "
           "connection: page cache, shared and reclaimable), so the process's own memory "
           "(RssAnon) is shown too. See bench/README.md.", "<!-- http:end -->", ""]
    section = "\n".join(md)
    old = open(REPORT).read() if os.path.exists(REPORT) else "# Benchmark report\n\n"
    b, e = old.find("<!-- http:begin -->"), old.find("<!-- http:end -->")
    if b >= 0 and e > b:
        e += len("<!-- http:end -->")
        if old[e:e + 1] == "\n":
            e += 1
        new = old[:b] + section + old[e:]
    else:
        new = old.rstrip("\n") + "\n\n" + section
    with open(REPORT, "w") as f:
        f.write(new)
    log("report: %s" % REPORT)


if __name__ == "__main__":
    main()
