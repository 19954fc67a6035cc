#!/usr/bin/env bash
# Run every test suite and print one closing line "N passed, N failed".
# Each suite prints "<name>: N passed, N failed" as its last line; a suite
# that crashes or prints no such line counts as one failure.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
total_pass=0; total_fail=0
log_dir=$BUILD/test-logs; mkdir -p "$log_dir"

run_suite() { # name, command...
  local name=$1; shift
  local log=$log_dir/$name.log
  local t0=$(date +%s%3N)
  "$@" >"$log" 2>&1; local rc=$?
  local line; line=$(grep -E '^[A-Za-z0-9_.-]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
  local p=0 f=0
  if [ -n "$line" ]; then
    p=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/' <<<"$line")
    f=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/' <<<"$line")
  fi
  if [ -z "$line" ] || { [ $rc -ne 0 ] && [ "$f" -eq 0 ]; }; then
    f=$((f + 1)); echo "$name: crashed or exited $rc without a summary" >>"$log"
  fi
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  local ms=$(( $(date +%s%3N) - t0 ))
  printf '%-28s %4d passed, %d failed  (%d.%03ds)\n' "$name" "$p" "$f" $((ms / 1000)) $((ms % 1000))
  if [ "$f" -gt 0 ]; then grep -E 'FAIL|not ok|crashed|ERROR|Sanitizer|runtime error' "$log" | head -30 | sed 's/^/    /'; fi
}

for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  run_suite "$(basename "$t")" "$t"
done
for t in tests/*/run.sh; do
  [ -f "$t" ] || continue
  run_suite "$(basename "$(dirname "$t")")" env BUILD="$BUILD" bash "$t"
done
# Each plugin's own suite (plugins/<name>/tests/run.sh).
for t in plugins/*/tests/run.sh; do
  [ -f "$t" ] || continue
  run_suite "plugin_$(basename "$(dirname "$(dirname "$t")")")" env BUILD="$BUILD" bash "$t"
done

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
