#!/usr/bin/env bash
# bench/run.sh — build the kernel in release mode, build the benchmarks against
# it, run them and write bench/REPORT.md. See bench/README.md.
#   BENCH_ROWS=100000 bash bench/run.sh     a smaller data set (default 1000000)
#   BENCH_REPS=5                            runs of each figure (median reported)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build-release
PKGS="lua5.4 sqlite3 jansson libsodium libmicrohttpd libgit2 libcurl"
make --no-print-directory BUILD=$BUILD OPT="-O2 -DNDEBUG" $BUILD/libcrm.a >/dev/null
mkdir -p $BUILD/bench
cc -std=c11 -D_GNU_SOURCE -g -O2 -DNDEBUG -Wall -Wextra -Wno-unused-parameter -pthread \
   $(pkg-config --cflags jansson sqlite3) \
   -o $BUILD/bench/kernel_bench bench/kernel_bench.c $BUILD/libcrm.a \
   $(pkg-config --libs $PKGS) -ldl -lm -pthread

mkdir -p bench/.data
start=$(date +%s)
$BUILD/bench/kernel_bench
echo "bench: done in $(( $(date +%s) - start )) s"
