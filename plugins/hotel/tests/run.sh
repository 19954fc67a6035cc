#!/usr/bin/env bash
# The hotel plugin's tests: every plugins/hotel/tests/test_*.py module against
# a real server with crm and hotel loaded (hoteltest.py). Each module prints
# "<module>: N passed, N failed"; this prints the sum as its last line,
# "plugin_hotel: N passed, N failed" (tests/run.sh reads it).
set -u
cd "$(dirname "$0")"
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
echo "plugin_hotel: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
