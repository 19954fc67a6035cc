#!/usr/bin/env bash
# bench/run.sh — build the kernel in release mode, build the benchmarks against
# it, run them and write bench/REPORT.md. See bench/README.md.
#   BENCH_ROWS=100000 bash bench/run.sh     a smaller data set (default 1000000)
#   BENCH_REPS=3                            runs of each kernel figure (median reported)
#   BENCH_HTTP_REPS=3                       runs of each wrk figure
#   BENCH_SKIP=kernel,rules,http,startup,hotel   leave sections out (their REPORT.md parts stay)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build-release
PKGS="lua5.4 sqlite3 jansson libsodium libmicrohttpd libgit2 libcurl"
for tool in wrk curl; do
  command -v $tool >/dev/null || apt-get install -y $tool >/dev/null
done
make --no-print-directory BUILD=$BUILD OPT="-O2 -DNDEBUG" $BUILD/libcrm.a $BUILD/crm >/dev/null
mkdir -p $BUILD/bench
CFLAGS_B="-std=c11 -D_GNU_SOURCE -g -O2 -DNDEBUG -Wall -Wextra -Wno-unused-parameter -pthread"
cc $CFLAGS_B $(pkg-config --cflags jansson sqlite3) \
   -o $BUILD/bench/kernel_bench bench/kernel_bench.c $BUILD/libcrm.a \
   $(pkg-config --libs $PKGS) -ldl -lm -pthread
cc $CFLAGS_B $(pkg-config --cflags jansson sqlite3) \
   -o $BUILD/bench/http_tool bench/http_tool.c $BUILD/libcrm.a \
   $(pkg-config --libs $PKGS) -ldl -lm -pthread
cc $CFLAGS_B $(pkg-config --cflags jansson lua5.4) \
   -o $BUILD/bench/rules_bench bench/rules_bench.c $BUILD/libcrm.a \
   $(pkg-config --libs $PKGS) -ldl -lm -pthread
cc $CFLAGS_B $(pkg-config --cflags libmicrohttpd) -o $BUILD/bench/baseline_mhd bench/baseline_mhd.c \
   $(pkg-config --libs libmicrohttpd) -pthread
cc $CFLAGS_B $(pkg-config --cflags libmicrohttpd jansson sqlite3) \
   -o $BUILD/bench/baseline_mhd_sqlite bench/baseline_mhd_sqlite.c \
   $(pkg-config --libs libmicrohttpd jansson sqlite3) -pthread

mkdir -p bench/.data
start=$(date +%s)
run_section() { [[ ",${BENCH_SKIP:-}," != *",$1,"* ]]; }
if run_section kernel; then
  # 3 runs keep the whole of `make bench` under 15 minutes (the sorted-list figures are slow).
  BENCH_REPS=${BENCH_REPS:-3} $BUILD/bench/kernel_bench
fi
echo "bench: kernel section done in $(( $(date +%s) - start )) s"
if run_section rules; then
  BENCH_REPS=${BENCH_REPS:-5} $BUILD/bench/rules_bench
fi
if run_section http; then
  python3 bench/http_bench.py
fi
if run_section startup; then
  make --no-print-directory BUILD=$BUILD OPT="-O2 -DNDEBUG" plugins >/dev/null
  BUILD=$BUILD python3 bench/startup_bench.py
fi
if run_section hotel; then
  make --no-print-directory BUILD=$BUILD OPT="-O2 -DNDEBUG" plugins >/dev/null
  BENCH_BUILD=$BUILD python3 bench/hotel_bench.py
fi
echo "bench: done in $(( $(date +%s) - start )) s"
