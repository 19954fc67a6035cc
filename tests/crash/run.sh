#!/usr/bin/env bash
# tests/crash/run.sh — the short crash-safety suite inside `make test`: ~10
# SIGKILLs under a concurrent HTTP write load (every acknowledged write
# checked), and the disk-full test. `make test-crash` runs the full version
# (>= 200 kills). Last line: "crash: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
export BUILD=${BUILD:-build}
exec python3 tests/crash/crash.py --kills "${CRASH_KILLS:-10}" "$@"
