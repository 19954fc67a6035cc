#!/usr/bin/env bash
# Run every test_*.py module of a directory (each against its own real server, see
# tests/api/lib.py) and print the sum as the last line "NAME: N passed, N failed",
# which tests/run.sh reads. A module that crashes, or exits non-zero without
# reporting a failure, counts as one failure.
#   bash tests/py_suite.sh NAME DIR
set -u
name=$1; cd "$2" || exit 1
export BUILD=${BUILD:-build}
pass=0; fail=0
for t in test_*.py; do
  [ -f "$t" ] || continue
  out=$(python3 "$t" 2>&1); rc=$?
  echo "$out"
  line=$(grep -E '^[A-Za-z0-9_.-]+: [0-9]+ passed, [0-9]+ failed$' <<<"$out" | tail -1)
  if [ -z "$line" ]; then fail=$((fail + 1)); echo "$t: crashed (exit $rc)"; continue; fi
  p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line"); f=$(sed -E 's/.*passed, ([0-9]+) failed/\1/' <<<"$line")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "$t: exited $rc"; fi
  pass=$((pass + p)); fail=$((fail + f))
done
echo "$name: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
