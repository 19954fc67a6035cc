#!/usr/bin/env bash
# tests/fuzz/fuzz.sh SECONDS TARGET... — what `make fuzz` runs after building
# the libFuzzer binaries in $FUZZ_BUILD/libfuzzer/: each target for SECONDS
# seconds from its seed corpus (new inputs go to $FUZZ_BUILD/corpus/<target>,
# not into the tree), then a summary line per target with its executions.
# A crash leaves its input in $FUZZ_BUILD/findings/<target>/: turn it into a
# regression test by copying it to tests/fuzz/regress/<target>/ with a
# descriptive name, and fix the bug.
set -u
cd "$(dirname "$0")/../.."
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
secs=${1:-60}; shift
summary=(); status=0
for t in "$@"; do
  bin=$FUZZ_BUILD/libfuzzer/$t
  work=$FUZZ_BUILD/corpus/$t; found=$FUZZ_BUILD/findings/$t
  mkdir -p "$work" "$found" "tests/fuzz/regress/$t"
  log=$FUZZ_BUILD/$t.log
  echo "== $t: ${secs}s"
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="$found/" \
    "$work" "tests/fuzz/corpus/$t" "tests/fuzz/regress/$t" >"$log" 2>&1
  rc=$?
  execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  speed=$(( ${execs:-0} / (secs > 0 ? secs : 1) ))
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
  corpus=$(ls "$work" | wc -l)
  if [ $rc -ne 0 ]; then
    status=1
    grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -10
    summary+=("$(printf '%-18s FOUND A CRASH (exit %d) after %s executions: see %s and %s' "$t" $rc "${execs:-?}" "$log" "$found")")
  else
    summary+=("$(printf '%-18s %10s executions in %ss (%s/s), coverage %s edges, corpus %s inputs, 0 crashes' "$t" "${execs:-?}" "$secs" "${speed:-?}" "${cov:-?}" "$corpus")")
  fi
done
echo
printf '%s\n' "${summary[@]}"
exit $status
