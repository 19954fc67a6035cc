#!/usr/bin/env bash
# tests/hostile/run.sh — the short hostile-load suite inside `make test`
# (~50 s): slowloris, floods, oversized requests and 20 s of mixed load while a
# normal client keeps being served; fds and RSS flat afterwards. `make
# test-hostile` runs the long version. Last line: "hostile: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
export BUILD=${BUILD:-build}
exec python3 tests/hostile/hostile.py "$@"
