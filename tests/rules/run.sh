#!/usr/bin/env bash
# tests/rules/run.sh — the shipped example rules through the admin tools:
# `crm rules test` on scripts/examples/tests/*_test.lua (each t.test counts), and
# `crm rules check` on good and broken files. Last line: "rules: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
case $BUILD in /*) CRM=$BUILD/crm ;; *) CRM=$PWD/$BUILD/crm ;; esac
WORK=$(mktemp -d /tmp/crm-rules-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
passed=0; failed=0

out=$("$CRM" rules test scripts/examples/tests/*_test.lua 2>&1); rc=$?
echo "$out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' <<<"$out" | tail -1)
if [ -z "$line" ]; then failed=$((failed + 1)); echo "not ok crm rules test: no summary (exit $rc)"
else
  passed=$((passed + ${line%% passed*})); f=${line#*passed, }; failed=$((failed + ${f%% failed}))
  if [ "$rc" -ne 0 ] && [ "${f%% failed}" -eq 0 ]; then failed=$((failed + 1)); fi
fi

check() { if ( set +e; "$1" ); then passed=$((passed + 1)); echo "ok $1"; else failed=$((failed + 1)); echo "not ok $1"; fi; }

shipped_rules_pass_check() {
  "$CRM" --data "$WORK/none" rules check scripts/examples/*.lua >"$WORK/out" 2>&1 || { cat "$WORK/out"; return 1; }
  grep -q "no errors" "$WORK/out"
}

check_reports_file_and_line() {
  printf 'rule { name = "a", on = "x.y.updated", run = function() end }\nrule { name = "b", on = "x.y.updated", phase = "later", run = function() end }\nlocal x = = 1\n' >"$WORK/bad.lua"
  "$CRM" --data "$WORK/none" rules check "$WORK/bad.lua" >"$WORK/out" 2>&1; rc=$?
  [ "$rc" -eq 1 ] || { echo "exit $rc"; cat "$WORK/out"; return 1; }
  grep -qE "bad.lua:3: error: .*unexpected symbol" "$WORK/out" || { cat "$WORK/out"; return 1; }
  printf 'rule { name = "b", on = "x.y.updated", phase = "later", run = function() end }\n' >"$WORK/bad2.lua"
  "$CRM" --data "$WORK/none" rules check "$WORK/bad2.lua" >"$WORK/out" 2>&1
  grep -qE 'bad2.lua:1: error: rule "b": phase = "later"' "$WORK/out" || { cat "$WORK/out"; return 1; }
}

check_against_schema() {
  local d="$WORK/data"
  CRM_ADMIN_PASSWORD=admin-password "$CRM" --data "$d" init >/dev/null 2>&1 || return 1
  printf 'rule { name = "t", on = "core.team.updated", changed = "nmae", run = function() crm.create("crm.nothing", {}) end }\nrule { name = "c", cron = "0 25 * * *", run = function() end }\n' >"$WORK/schema.lua"
  "$CRM" --data "$d" rules check "$WORK/schema.lua" >"$WORK/out" 2>&1; rc=$?
  [ "$rc" -eq 1 ] || { echo "exit $rc"; cat "$WORK/out"; return 1; }
  grep -q 'schema.lua:1: error: rule "t": changed = "nmae": core.team has no such field' "$WORK/out" &&
  grep -q 'schema.lua:1: error: crm.create("crm.nothing", ...): unknown type' "$WORK/out" &&
  grep -q 'schema.lua:2: error: .*hour 25 out of range' "$WORK/out" || { cat "$WORK/out"; return 1; }
}

binary_chunk_is_a_syntax_error() {
  printf '\033Lua\124\000' >"$WORK/bin.lua"
  "$CRM" --data "$WORK/none" rules check "$WORK/bin.lua" >"$WORK/out" 2>&1; rc=$?
  [ "$rc" -eq 1 ] && grep -q "binary (precompiled) chunks are not accepted" "$WORK/out" || { cat "$WORK/out"; return 1; }
}

failing_rule_test_fails() {
  mkdir -p "$WORK/site/tests"
  printf 'rule { name = "n", on = "x.thing.created", run = function(ev) end }\n' >"$WORK/site/n.lua"
  printf 't.define_type("x.thing", {{name = "name", kind = "text"}})\nt.test("wrong", function() t.assert_eq(t.create("x.thing", {name = "a"}).name, "b") end)\nt.test("right", function() t.assert_eq(t.create("x.thing", {name = "a"}).name, "a") end)\n' >"$WORK/site/tests/n_test.lua"
  "$CRM" rules test "$WORK/site/tests/n_test.lua" >"$WORK/out" 2>&1; rc=$?
  [ "$rc" -eq 1 ] && grep -q '^1 passed, 1 failed$' "$WORK/out" && grep -q 'got "a", expected "b"' "$WORK/out" || { cat "$WORK/out"; return 1; }
}

only_text_chunks_lint() { # L7: every load names mode "t"; no other loader is used
  ! grep -nE 'lua_load\(|luaL_loadstring|luaL_dostring|luaL_loadfile|luaL_dofile|luaL_loadbuffer\(' kernel/*.c || return 1
  local n; n=$(grep -c 'luaL_loadbufferx(' kernel/*.c | awk -F: '{s+=$2} END {print s}')
  local t; t=$(grep -cE 'luaL_loadbufferx\([^;]*, "t"\)' kernel/*.c | awk -F: '{s+=$2} END {print s}')
  [ "$n" -ge 1 ] && [ "$n" -eq "$t" ] || { echo "luaL_loadbufferx calls: $n, with mode \"t\": $t"; return 1; }
  # lua.h stays behind the rule engine's files
  ! grep -lE '#include <(lua|lauxlib|lualib)\.h>' kernel/*.c kernel/*.h | grep -vE 'kernel/rules(_int\.h|\.c|_[a-z]+\.c)$' || return 1
}

for t in only_text_chunks_lint shipped_rules_pass_check check_reports_file_and_line check_against_schema \
         binary_chunk_is_a_syntax_error failing_rule_test_fails; do
  check "$t"
done
echo "rules: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
