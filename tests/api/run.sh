#!/usr/bin/env bash
# Run every API test module (tests/api/test_*.py) against a real server on a
# loopback port; each module starts its own. Ends with "api: N passed, N failed".
set -u
cd "$(dirname "$0")"
export BUILD=${BUILD:-build}
pass=0; fail=0
for t in test_*.py; do
  [ -f "$t" ] || continue
  out=$(python3 "$t" 2>&1); rc=$?
  echo "$out"
  line=$(grep -E '^[a-z_]+: [0-9]+ passed, [0-9]+ failed$' <<<"$out" | tail -1)
  if [ -z "$line" ]; then fail=$((fail + 1)); echo "$t: crashed (exit $rc)"; continue; fi
  p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line"); f=$(sed -E 's/.*passed, ([0-9]+) failed/\1/' <<<"$line")
  pass=$((pass + p)); fail=$((fail + f))
done
echo "api: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
