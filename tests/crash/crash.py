#!/usr/bin/env python3
"""
crash.py — crash safety of the server (SECURITY.md D2, D7), from outside.

Kills: several writer threads create and update records over HTTP as fast as
the server answers, each remembering every write that got a 2xx (record id,
version, values). The server is killed with SIGKILL at a random moment,
restarted, and then:
  - `sqlite3 crm.db 'PRAGMA integrity_check'` (the CLI) says "ok";
  - every acknowledged write is there: the record has the acknowledged
    version and values (or the one write that was in flight when the server
    died, which may or may not have committed: both are correct);
  - each acknowledged write has its core_history row (its values in
    "changes") and its core_outbox row (the record as written, same version).

Disk full: the data directory on a 20 MiB tmpfs; a filler file takes the
rest of the space. Writes must fail with 507 (or 503) "storage_full" and a
message, never 500; reads keep working; the database stays intact; after the
filler is deleted, writes succeed again without a restart. Skipped (with a
"skipped" line) when tmpfs cannot be mounted (not root, or no permission).

  python3 tests/crash/crash.py [--kills N] [--seed S] [--no-disk-full]
Last line: "crash: N passed, N failed".
"""
import argparse
import http.client
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
import lib  # noqa: E402

T = "/api/v1/records/core.team"
FIELDS = [{"name": "note", "kind": "text", "max_length": 200},
          {"name": "n", "kind": "int"}]


class Check(AssertionError):
    pass


def integrity(db_path):
    """PRAGMA integrity_check through the sqlite3 command-line shell."""
    p = subprocess.run(["sqlite3", db_path, "PRAGMA integrity_check;"], capture_output=True,
                       text=True, timeout=120)
    out = (p.stdout + p.stderr).strip()
    if p.returncode != 0 or out != "ok":
        raise Check("integrity_check of %s: %s" % (db_path, out[:500]))


class Conn:
    """One keep-alive HTTP connection; reconnects after an error."""

    def __init__(self, port, token):
        self.port, self.token, self.c = port, token, None

    def request(self, method, path, body=None, timeout=10):
        if self.c is None:
            self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {"Authorization": "Bearer " + self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            self.c.request(method, path, body=data, headers=h)
            r = self.c.getresponse()
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
        except Exception:
            self.close()
            raise

    def close(self):
        if self.c is not None:
            self.c.close()
        self.c = None


# ---- kills ----

class Writer(threading.Thread):
    """Creates and updates its own records until told to stop or the server dies."""

    def __init__(self, wid, state, port, token, cycle, rng):
        super().__init__(daemon=True)
        self.wid, self.state, self.cycle = wid, state, cycle
        self.conn = Conn(port, token)
        self.rng = rng
        self.stop = threading.Event()
        self.acked = []      # (id, version, note, n) got a 2xx this cycle
        self.pending = None  # (id or None, note, n): sent, no answer (the server died)
        self.other = 0       # non-2xx answers (must stay 0)
        self.errors = []

    def run(self):
        seq = 0
        mine = self.state["records"].setdefault(self.wid, [])
        while not self.stop.is_set():
            seq += 1
            note = "c%d-w%d-%d-%s" % (self.cycle, self.wid, seq, "x" * self.rng.randint(0, 60))
            n = self.rng.randint(-10**9, 10**9)
            update = mine and self.rng.random() < 0.5
            if update:
                rid = self.rng.choice(mine)
                self.pending = (rid, note, n)
                try:
                    st, body = self.conn.request("PATCH", "%s/%d" % (T, rid), {"note": note, "n": n})
                except Exception:
                    return  # the server died with this write in flight
            else:
                self.pending = (None, note, n)
                try:
                    st, body = self.conn.request("POST", T, {"name": note[:60] + "-" + str(seq),
                                                             "note": note, "n": n})
                except Exception:
                    return
            self.pending = None
            if st in (200, 201):
                if body.get("note") != note or body.get("n") != n:
                    self.errors.append("answer of a write does not echo it: %r" % body)
                self.acked.append((body["id"], body["version"], note, n))
                if not update:
                    mine.append(body["id"])
            else:
                self.other += 1
                self.errors.append("write answered %d: %r" % (st, body))


def verify(state, db_path):
    """Every acknowledged write is in the database with its history and outbox rows."""
    integrity(db_path)
    db = sqlite3.connect(db_path, timeout=30)
    try:
        rows = {r[0]: (r[1], r[2], r[3])
                for r in db.execute('SELECT id, version, note, n FROM "core.team"')}
        hist = set()
        for rid, changes in db.execute(
                "SELECT record_id, changes FROM core_history WHERE type = 'core.team'"):
            c = json.loads(changes)
            if "note" in c:
                hist.add((rid, c["note"][1], c.get("n", [None, None])[1]))
        outbox = set()
        for rid, payload in db.execute(
                "SELECT record_id, payload FROM core_outbox WHERE type = 'core.team'"):
            rec = json.loads(payload)["record"]
            outbox.add((rid, rec["version"], rec.get("note"), rec.get("n")))
    finally:
        db.close()
    missing = []
    for w in state["acked"]:
        rid, version, note, n = w
        if (rid, note, n) not in hist:
            missing.append("no history row for acknowledged write %r" % (w,))
        if (rid, version, note, n) not in outbox:
            missing.append("no outbox row for acknowledged write %r" % (w,))
    # the latest acknowledged state of each record
    for rid, (version, note, n) in state["latest"].items():
        row = rows.get(rid)
        if row is None:
            missing.append("record %d (acknowledged) is missing" % rid)
        elif row[0] == version:
            if (row[1], row[2]) != (note, n):
                missing.append("record %d v%d holds %r, acknowledged %r" % (rid, version, row[1:],
                                                                            (note, n)))
        elif row[0] < version:
            missing.append("record %d is at version %d, acknowledged %d" % (rid, row[0], version))
        # row[0] > version: the in-flight write committed; checked by the caller
    return rows, missing


def run_kills(kills, writers, seed, log):
    rng = random.Random(seed)
    srv = lib.Server()
    db_path = os.path.join(srv.data, "crm.db")
    state = {"records": {}, "acked": [], "latest": {}}
    total_acked = 0
    total_inflight_committed = 0
    failures = []
    try:
        srv.start()
        srv.admin()
        for spec in FIELDS:
            lib.status(srv.post("/api/v1/types/core.team/fields", spec), 201, "add field")
        t0 = time.time()
        for cycle in range(1, kills + 1):
            ws = [Writer(i, state, srv.port, srv.token, cycle, random.Random(rng.random()))
                  for i in range(writers)]
            for w in ws:
                w.start()
            time.sleep(rng.uniform(0.02, 0.5))
            srv.proc.send_signal(signal.SIGKILL)
            srv.proc.wait()
            srv.proc = None
            for w in ws:
                w.stop.set()
            for w in ws:
                w.join(15)
                w.conn.close()
            srv.start()
            # acknowledged writes of this cycle
            pend = []
            for w in ws:
                failures.extend(w.errors)
                for a in w.acked:
                    state["acked"].append(a)
                    rid, version, note, n = a
                    if version > state["latest"].get(rid, (0,))[0]:
                        state["latest"][rid] = (version, note, n)
                total_acked += len(w.acked)
                if w.pending:
                    pend.append(w.pending)
            rows, missing = verify(state, db_path)
            # a record ahead of its acknowledged version must hold the in-flight write
            for rid, (version, note, n) in list(state["latest"].items()):
                row = rows.get(rid)
                if row and row[0] > version:
                    inflight = [p for p in pend if p[0] == rid]
                    if row[0] != version + 1 or not inflight or \
                            (row[1], row[2]) != (inflight[0][1], inflight[0][2]):
                        missing.append("record %d at version %d holds %r: not the acknowledged "
                                       "v%d nor the in-flight write" % (rid, row[0], row[1:],
                                                                         version))
                    else:
                        # it committed: from now on it is part of the known state
                        state["latest"][rid] = (row[0], row[1], row[2])
                        state["acked"].append((rid, row[0], row[1], row[2]))
                        total_inflight_committed += 1
            # an in-flight create that committed: adopt the record
            for p in pend:
                if p[0] is None:
                    for rid, row in rows.items():
                        if row[1] == p[1] and rid not in state["latest"]:
                            state["latest"][rid] = row
                            state["acked"].append((rid,) + row)
                            total_inflight_committed += 1
            if missing:
                failures.extend("kill %d: %s" % (cycle, m) for m in missing[:20])
                break
            if failures:
                break
            if cycle % 25 == 0 or cycle == kills:
                log("  kill %d/%d: %d writes acknowledged so far, all present (%.0fs)"
                    % (cycle, kills, total_acked, time.time() - t0))
        # the server still serves after the last restart
        lib.status(srv.get(T + "?limit=1"), 200, "list after the last restart")
        log("kills survived: %d; acknowledged writes verified: %d (records: %d); in-flight "
            "writes found committed: %d; history and outbox rows checked for each"
            % (cycle if not failures else cycle - 1, total_acked, len(state["latest"]),
               total_inflight_committed))
    finally:
        srv.close()
    if failures:
        raise Check("; ".join(failures[:20]))


# ---- disk full ----

def fill(path):
    """Take every byte left on the file system of `path`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def run_disk_full(log):
    mnt = tempfile.mkdtemp(prefix="crm-full-")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", mnt],
                       capture_output=True, text=True)
    if p.returncode != 0:
        os.rmdir(mnt)
        log("disk full: skipped (cannot mount a tmpfs: %s)" % p.stderr.strip())
        return "skipped"
    srv = lib.Server(init=False)
    srv.data = os.path.join(mnt, "var")
    db_path = os.path.join(srv.data, "crm.db")
    filler = os.path.join(mnt, "filler")
    try:
        srv.cli("init")
        srv.start()
        srv.admin()
        for spec in FIELDS:
            lib.status(srv.post("/api/v1/types/core.team/fields", spec), 201, "add field")
        ids = []
        for i in range(20):
            r = lib.status(srv.post(T, {"name": "before-%d" % i, "note": "n" * 150, "n": i}), 201)
            ids.append(r.json["id"])
        # take all the space that is left
        fill(filler)
        statuses = {}
        full = None
        i = 0
        # the WAL may still have room in pages it already holds: write until it is full
        while i < 3000:
            i += 1
            r = srv.post(T, {"name": "full-%d" % i, "note": "f" * 190, "n": i})
            statuses[r.status] = statuses.get(r.status, 0) + 1
            if r.status in (500,):
                raise Check("write on a full disk answered 500: %s" % r.body[:300])
            if r.status in (507, 503):
                full = r
                break
            lib.status(r, 201, "write before the disk is full")
        if full is None:
            raise Check("3000 writes of 200 bytes on a full 20 MiB tmpfs never failed: %r"
                        % statuses)
        lib.error(full, full.status, "storage_full")
        msg = full.json["error"]["message"]
        lib.ok("full" in msg.lower(), "the message says the storage is full: %r" % msg)
        # more writes of each kind: all fail cleanly
        for j in range(5):
            r = srv.post(T, {"name": "full2-%d" % j, "note": "g" * 190, "n": j})
            lib.ok(r.status in (507, 503) and r.error_code() == "storage_full",
                   "create on a full disk: %r" % r)
            r = srv.patch("%s/%d" % (T, ids[j]), {"note": "h" * 190, "n": 1000 + j})
            lib.ok(r.status in (507, 503) and r.error_code() == "storage_full",
                   "update on a full disk: %r" % r)
        # every other kind of write: a clean storage_full too, never a 500
        others = [
            ("delete", lambda: srv.delete("%s/%d" % (T, ids[1]))),
            ("add field", lambda: srv.post("/api/v1/types/core.team/fields",
                                           {"name": "late", "kind": "int"})),
            ("import", lambda: srv.request("POST", "/api/v1/import/core.team",
                                           raw="name,note\r\nimp-1,x\r\nimp-2,y\r\n",
                                           headers={"Content-Type": "text/csv"})),
            ("login", lambda: srv.post("/api/v1/auth/login",
                                       {"username": "admin", "password": lib.ADMIN_PASSWORD},
                                       token="")),
        ]
        seen = []
        for what, fn in others:
            r = fn()
            seen.append("%s %d" % (what, r.status))
            lib.ok(r.status != 500 and r.status < 600, "%s on a full disk: %r" % (what, r))
            if r.status >= 400:
                lib.ok(r.status in (507, 503) and r.error_code() == "storage_full",
                       "%s on a full disk: %r" % (what, r))
        # reads keep working
        for rid in ids:
            r = lib.status(srv.get("%s/%d" % (T, rid)), 200, "read on a full disk")
            lib.eq(r.json["note"], "n" * 150, "value read on a full disk")
        lib.status(srv.get(T + "?limit=100"), 200, "list on a full disk")
        lib.status(srv.get("%s/%d/history" % (T, ids[0])), 200, "history on a full disk")
        integrity(db_path)
        log("disk full: writes answered %d %s (%s) after %d writes; %s; reads kept working; "
            "integrity ok" % (full.status, full.error_code(), msg, i - 1, ", ".join(seen)))
        # space comes back: writes resume without a restart
        os.unlink(filler)
        r = lib.status(srv.post(T, {"name": "after-1", "note": "back", "n": 1}), 201,
                       "write after space was freed")
        lib.status(srv.patch("%s/%d" % (T, ids[0]), {"note": "back2", "n": 2}), 200,
                   "update after space was freed")
        lib.eq(lib.status(srv.get("%s/%d" % (T, r.json["id"])), 200).json["note"], "back",
               "written after space returned")
        lib.ok(srv.proc.poll() is None, "the server is still the same process")
        log("disk full: writes resumed after the filler was deleted, without a restart")
        # full again, then a graceful stop (its WAL checkpoint cannot grow the file)
        fill(filler)
        r = srv.post(T, {"name": "full-again", "note": "z" * 190, "n": 0})
        lib.ok(r.status in (201, 507, 503), "write on a full disk again: %r" % r)
        rc = srv.stop()
        lib.eq(rc, 0, "exit code of SIGTERM on a full disk")
        integrity(db_path)
        os.unlink(filler)
        srv.start()
        lib.status(srv.get("%s/%d" % (T, ids[0])), 200, "read after a restart")
        lib.status(srv.post(T, {"name": "after-restart", "note": "ok", "n": 3}), 201,
                   "write after a restart")
        srv.stop()
        integrity(db_path)
        log("disk full: SIGTERM while full exits 0, the database opens and takes writes again")
    finally:
        srv.close()
        subprocess.run(["umount", "-l", mnt], capture_output=True)
        try:
            os.rmdir(mnt)
        except OSError:
            pass
    return "ok"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--no-disk-full", action="store_true")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)

    def log(s):
        print(s, flush=True)

    passed = failed = 0
    log("seed %d (rerun with --seed %d)" % (seed, seed))
    tests = [("kills", lambda: run_kills(args.kills, args.writers, seed, log))]
    if not args.no_disk_full:
        tests.append(("disk_full", lambda: run_disk_full(log)))
    for name, fn in tests:
        t0 = time.time()
        try:
            fn()
            passed += 1
            log("ok %s (%.1fs)" % (name, time.time() - t0))
        except Exception as e:  # noqa: BLE001 — any failure is reported
            failed += 1
            log("not ok %s\n  FAIL %s: %s" % (name, name, e))
    log("crash: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
