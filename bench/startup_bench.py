#!/usr/bin/env python3
"""
startup_bench.py — start-up time of `crm serve` with every plugin of the
shipped plugins.conf, on a data directory holding their demo data: the time
from exec to the "listening on" line, and the RSS right after. Median of
BENCH_REPS runs (default 5), min-max shown. Writes the "startup" section of
bench/REPORT.md.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.environ.get("BUILD", "build-release")
CRM = os.path.join(ROOT, BUILD, "crm")
CONF = os.path.join(ROOT, "plugins.conf")
PLUGIN_DIR = os.path.join(ROOT, BUILD, "plugins")
REPS = int(os.environ.get("BENCH_REPS", "5"))


def main():
    work = tempfile.mkdtemp(prefix="crm-startup-")
    data = os.path.join(work, "var")
    env = dict(os.environ, CRM_ADMIN_PASSWORD="bench-password-1")
    common = ["--data", data]
    subprocess.run([CRM] + common + ["init"], env=env, check=True, capture_output=True)
    subprocess.run([CRM] + common + ["demo", "--conf", CONF, "--plugin-dir", PLUGIN_DIR],
                   env=env, check=True, capture_output=True)
    plugins = subprocess.run([CRM] + common + ["plugin", "list", "--conf", CONF, "--json"],
                             env=env, capture_output=True, text=True).stdout
    loaded = len(re.findall(r'"state":\s*"loaded"', plugins))
    times, rss = [], []
    for _ in range(REPS):
        t0 = time.monotonic()
        p = subprocess.Popen([CRM] + common + ["serve", "--listen", "127.0.0.1:0", "--conf", CONF,
                                               "--plugin-dir", PLUGIN_DIR, "--no-access-log"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        line = p.stdout.readline()
        t1 = time.monotonic()
        if b"listening on" not in line:
            sys.exit("startup_bench: server did not start: %r" % line)
        with open("/proc/%d/status" % p.pid) as f:
            st = dict(l.split(":", 1) for l in f if ":" in l)
        rss.append(int(st["VmRSS"].split()[0]) / 1024)
        times.append((t1 - t0) * 1000)
        p.terminate()
        p.wait(15)
    shutil.rmtree(work, ignore_errors=True)
    section = ("<!-- startup:begin -->\n"
               "## Start-up (%d runs, median (min-max))\n\n"
               "| figure | value |\n|---|---|\n"
               "| `crm serve` exec to listening, %d plugin(s) loaded from plugins.conf, over their "
               "demo data [ms] | %.0f (%.0f-%.0f) |\n"
               "| RSS right after start [MB] | %.1f (%.1f-%.1f) |\n"
               "<!-- startup:end -->\n" % (REPS, loaded, statistics.median(times), min(times),
                                            max(times), statistics.median(rss), min(rss),
                                            max(rss)))
    print(section)
    path = os.path.join(ROOT, "bench", "REPORT.md")
    text = open(path).read() if os.path.exists(path) else ""
    m = re.search(r"<!-- startup:begin -->.*?<!-- startup:end -->\n", text, re.S)
    text = text[:m.start()] + section + text[m.end():] if m else text + "\n" + section
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
