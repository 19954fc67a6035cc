#!/usr/bin/env bash
# tests/fuzz/run.sh — replay every fuzz target over its seed corpus
# (tests/fuzz/corpus/<target>/) and its regression inputs
# (tests/fuzz/regress/<target>/: inputs that once crashed or misbehaved), with
# the replay binaries `make check` builds with the build's own compiler and
# sanitizers ($BUILD/fuzz/<target>, no libFuzzer needed).
# Last line: "fuzz: N passed, N failed" (N = targets).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
passed=0; failed=0
for bin in "$BUILD"/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  t=$(basename "$bin")
  out=$("$bin" "tests/fuzz/corpus/$t" "tests/fuzz/regress/$t" 2>&1); rc=$?
  if [ $rc -eq 0 ] && grep -qE "^$t: [0-9]+ passed, 0 failed$" <<<"$out"; then
    passed=$((passed + 1)); echo "ok $t ($(grep -oE '[0-9]+ passed' <<<"$out" | head -1 | cut -d' ' -f1) inputs)"
  else
    failed=$((failed + 1)); echo "not ok $t (exit $rc)"; echo "  FAIL $t:"; tail -40 <<<"$out" | sed 's/^/    /'
  fi
done
[ $((passed + failed)) -gt 0 ] || { echo "no replay binaries in $BUILD/fuzz (make check builds them)"; failed=1; }
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
