#!/usr/bin/env bash
# tests/cli/run.sh — the `crm` command line, run as a user would: exit codes,
# what goes to stdout and stderr, and what ends up in the database.
# Last line: "cli: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
case $BUILD in /*) CRM=$BUILD/crm ;; *) CRM=$PWD/$BUILD/crm ;; esac
WORK=$(mktemp -d /tmp/crm-cli-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
unset CRM_PASSWORD CRM_ADMIN_PASSWORD

passed=0; failed=0
OUT=$WORK/out; ERR=$WORK/err

# Run crm; its exit code in $rc, its output in $OUT and $ERR.
run() { "$CRM" "$@" >"$OUT" 2>"$ERR"; rc=$?; }
fail() { echo "  $*"; echo "  stdout: $(head -c 400 "$OUT")"; echo "  stderr: $(head -c 400 "$ERR")"; return 1; }
expect_rc() { [ "$rc" -eq "$1" ] || fail "exit code $rc, expected $1"; }
expect_out() { grep -qE -- "$1" "$OUT" || fail "stdout lacks /$1/"; }
expect_err() { grep -qE -- "$1" "$ERR" || fail "stderr lacks /$1/"; }

# A fresh data directory, initialised with a known admin password.
new_data() {
  local d; d=$(mktemp -d "$WORK/data-XXXXXX")
  CRM_ADMIN_PASSWORD=admin-password "$CRM" --data "$d" init >/dev/null 2>&1 || echo "  init failed in $d" >&2
  echo "$d"
}

check() { # name: runs the function of that name
  if ( set +e; "$1" ); then passed=$((passed + 1)); echo "ok $1"
  else failed=$((failed + 1)); echo "not ok $1"; fi
}

# ---- help and usage ----

help_lists_commands() {
  run --help; expect_rc 0 || return 1
  for c in init "user add" "user list" "user disable" "user enable" "user passwd" \
           "token create" "token list" "token revoke" backup maintain version serve import export \
           "plugin fetch" "plugin update" "plugin verify" "plugin list" demo --data --sync; do
    expect_out "$c" || return 1
  done
}

help_of_every_command() {
  while IFS='|' read -r cmd opts; do
    # shellcheck disable=SC2086
    run $cmd --help; expect_rc 0 || fail "crm $cmd --help" || return 1
    for o in $opts --data; do expect_out "$o" || fail "crm $cmd --help" || return 1; done
  done <<'EOF'
init|CRM_ADMIN_PASSWORD
user add|--admin --name --email CRM_PASSWORD USERNAME
user list|--json
user disable|USERNAME
user enable|USERNAME
user passwd|CRM_PASSWORD USERNAME
token create|--name --expires-days --admin-actions USERNAME
token list|--json USERNAME
token revoke|ID
backup|FILE
maintain|
version|
rules check|--no-schema FILE
rules test|--rules --verbose
rules list|--scripts --json
rules reload|crm.pid
EOF
  run user --help; expect_rc 0 && expect_out "user add" && expect_out "user passwd"
}

no_command_is_usage_error() {
  run; expect_rc 2 && expect_err "missing command"
}

unknown_command_exits_2() {
  run frobnicate; expect_rc 2 && expect_err 'unknown command "frobnicate"' || return 1
  run user frobnicate; expect_rc 2 && expect_err 'unknown command "frobnicate"' || return 1
  run user; expect_rc 2 && expect_err "user add"
}

unknown_option_exits_2() {
  local d; d=$(new_data)
  run --data "$d" user list --frob; expect_rc 2 && expect_err 'unknown option "--frob"' || return 1
  run --data "$d" user add; expect_rc 2 && expect_err "missing argument" || return 1
  run --data "$d" user add a b; expect_rc 2 && expect_err 'unexpected argument "b"' || return 1
  run --data "$d" --sync sometimes user list; expect_rc 2 && expect_err "full, normal or off" || return 1
  run --data "$d" token create admin --expires-days soon; expect_rc 2 && expect_err "expires-days" || return 1
  run --data "$d" token revoke abc; expect_rc 2
}

version_prints_version() {
  run version; expect_rc 0 && expect_out '^crm [0-9]+\.[0-9]+'
}

# ---- init ----

init_prints_generated_password_once() {
  local d=$WORK/gen
  run --data "$d" init; expect_rc 0 || return 1
  [ "$(grep -c 'admin password:' "$OUT")" -eq 1 ] || fail "password not printed exactly once" || return 1
  local pw; pw=$(sed -n 's/^admin password: //p' "$OUT")
  [ "${#pw}" -ge 16 ] || fail "short generated password '$pw'" || return 1
  ! grep -q -- "$pw" "$ERR" || fail "password on stderr" || return 1
  [ -f "$d/crm.db" ] || fail "no $d/crm.db" || return 1
  run --data "$d" init; expect_rc 0 && expect_out "already initialised" || return 1
  ! grep -q "admin password" "$OUT" || fail "second init printed a password"
}

init_honours_admin_password_env() {
  local d=$WORK/env
  CRM_ADMIN_PASSWORD=my-admin-secret run --data "$d" init; expect_rc 0 || return 1
  ! grep -q "admin password" "$OUT" || fail "printed a password though one was given" || return 1
  ! grep -q "my-admin-secret" "$OUT" "$ERR" || fail "echoed the password" || return 1
  run --data "$d" user list; expect_rc 0 && expect_out "admin +Administrator +yes +no"
}

init_refuses_short_admin_password() {
  CRM_ADMIN_PASSWORD=short run --data "$WORK/short" init
  expect_rc 1 && expect_err "at least 8 characters"
}

global_options_after_the_command() {
  local d; d=$(new_data)
  run user list --data "$d"; expect_rc 0 && expect_out admin || return 1
  run user list --data="$d" --sync=normal; expect_rc 0 && expect_out admin
}

missing_data_dir_is_an_error() {
  run --data "$WORK/nowhere" user list; expect_rc 1 && expect_err 'crm init' || return 1
  [ ! -e "$WORK/nowhere" ] || fail "created the directory"
}

data_that_is_a_file() {
  echo "not a database" >"$WORK/plain"
  run --data "$WORK/plain" user list; expect_rc 1 && expect_err "not a directory" || return 1
  run --data "$WORK/plain" init; expect_rc 1 && expect_err "not a directory"
}

data_with_a_corrupt_database() {
  mkdir -p "$WORK/corrupt"
  head -c 8192 /dev/urandom >"$WORK/corrupt/crm.db"
  run --data "$WORK/corrupt" user list; expect_rc 1 && expect_err "crm: .+" || return 1
  [ "$rc" -lt 128 ] || fail "crashed"
}

# ---- users ----

user_add_and_list() {
  local d; d=$(new_data)
  CRM_PASSWORD=alice-password run --data "$d" user add alice --name "Alice Liddell" --email alice@example.com
  expect_rc 0 && expect_out 'created user "alice"' || return 1
  run --data "$d" user add bob --admin <<<"bob-password"; expect_rc 0 || return 1
  run --data "$d" user list; expect_rc 0 || return 1
  expect_out '^id +username +name +admin +disabled' || return 1
  expect_out 'alice +Alice Liddell +no +no' || return 1
  expect_out 'bob +yes +no' || return 1
  run --data "$d" user list --json; expect_rc 0 || return 1
  expect_out '"email": "alice@example.com"' && expect_out '"username": "bob"'
}

user_add_bad_email_creates_nothing() {
  local d; d=$(new_data)
  CRM_PASSWORD=alice-password run --data "$d" user add alice --email not-an-email
  expect_rc 1 && expect_err email || return 1
  run --data "$d" user list; ! grep -q alice "$OUT" || fail "alice was created"
}

user_add_duplicate() {
  local d; d=$(new_data)
  CRM_PASSWORD=alice-password run --data "$d" user add alice; expect_rc 0 || return 1
  CRM_PASSWORD=alice-password run --data "$d" user add alice
  expect_rc 1 && expect_err 'username "alice" is taken'
}

user_add_short_password() {
  local d; d=$(new_data)
  CRM_PASSWORD=short run --data "$d" user add carol; expect_rc 1 && expect_err "at least 8 characters" || return 1
  run --data "$d" user add carol <<<""; expect_rc 1 || return 1
  run --data "$d" user add carol </dev/null; expect_rc 1 && expect_err "CRM_PASSWORD" || return 1
  run --data "$d" user list; ! grep -q carol "$OUT" || fail "carol was created"
}

user_add_bad_username() {
  local d; d=$(new_data)
  CRM_PASSWORD=alice-password run --data "$d" user add "Not Valid"; expect_rc 1 && expect_err "username"
}

user_disable_enable() {
  local d; d=$(new_data)
  CRM_PASSWORD=alice-password "$CRM" --data "$d" user add alice >/dev/null || return 1
  run --data "$d" user disable alice; expect_rc 0 && expect_out 'user "alice" disabled' || return 1
  run --data "$d" user list; expect_out 'alice +no +yes' || return 1
  [ "$(sqlite3 "$d/crm.db" "SELECT disabled FROM \"core.user\" WHERE username='alice'")" = 1 ] || fail "not disabled in db" || return 1
  run --data "$d" user enable alice; expect_rc 0 || return 1
  run --data "$d" user list; expect_out 'alice +no +no' || return 1
  run --data "$d" user disable nobody; expect_rc 1 && expect_err '"nobody"'
}

user_passwd() {
  local d; d=$(new_data)
  CRM_PASSWORD=alice-password "$CRM" --data "$d" user add alice >/dev/null || return 1
  local before; before=$(sqlite3 "$d/crm.db" "SELECT p.hash FROM core_password p JOIN \"core.user\" u ON u.id=p.user_id WHERE u.username='alice'")
  run --data "$d" user passwd alice <<<"a-new-password"; expect_rc 0 || return 1
  local after; after=$(sqlite3 "$d/crm.db" "SELECT p.hash FROM core_password p JOIN \"core.user\" u ON u.id=p.user_id WHERE u.username='alice'")
  [ -n "$after" ] && [ "$before" != "$after" ] || fail "hash unchanged" || return 1
  [[ $after == '$argon2id$v=19$m=65536,t=2,p=1$'* ]] || fail "hash $after" || return 1
  CRM_PASSWORD=short run --data "$d" user passwd alice; expect_rc 1 && expect_err "at least 8" || return 1
  CRM_PASSWORD=whatever-password run --data "$d" user passwd nobody; expect_rc 1 && expect_err '"nobody"'
}

db_holds_no_password() {
  local d; d=$(new_data)
  CRM_PASSWORD=very-secret-password "$CRM" --data "$d" user add alice >/dev/null || return 1
  ! grep -qa "very-secret-password" "$d"/crm.db* || fail "password in the database files"
}

# ---- tokens ----

token_create_prints_one_token() {
  local d; d=$(new_data)
  run --data "$d" token create admin --name laptop --expires-days 30; expect_rc 0 || return 1
  [ "$(wc -l <"$OUT")" -eq 1 ] || fail "more than one line" || return 1
  grep -qE '^crm_[A-Za-z0-9_-]{43,}$' "$OUT" || fail "not a token" || return 1
  local tok; tok=$(cat "$OUT")
  ! grep -qa "${tok#crm_}" "$d"/crm.db* || fail "token in the database" || return 1
  run --data "$d" token create admin; [ "$(cat "$OUT")" != "$tok" ] || fail "same token twice" || return 1
  run --data "$d" token create nobody; expect_rc 1 && expect_err '"nobody"'
}

token_list_and_revoke() {
  local d; d=$(new_data)
  CRM_PASSWORD=alice-password "$CRM" --data "$d" user add alice >/dev/null || return 1
  local t1 t2
  t1=$("$CRM" --data "$d" token create admin --name laptop) || return 1
  t2=$("$CRM" --data "$d" token create alice --name ci --expires-days 1) || return 1
  run --data "$d" token list; expect_rc 0 || return 1
  expect_out '^1 +admin +laptop .* never +never +active' && expect_out '^2 +alice +ci ' || return 1
  ! grep -q "${t1#crm_}" "$OUT" || fail "list shows a token" || return 1
  run --data "$d" token list alice; expect_rc 0 || return 1
  ! grep -q laptop "$OUT" || fail "alice's list shows admin's token" || return 1
  run --data "$d" token list --json; expect_out '"name": "ci"' || return 1
  run --data "$d" token revoke 1; expect_rc 0 && expect_out "token 1 revoked" || return 1
  run --data "$d" token list; expect_out '^1 +admin +laptop .*revoked' || return 1
  [ -n "$(sqlite3 "$d/crm.db" 'SELECT revoked_at FROM core_token WHERE id = 1')" ] || fail "not revoked in db" || return 1
  run --data "$d" token revoke 99; expect_rc 1 && expect_err "99"
}

# ---- backup ----

backup_is_a_good_copy() {
  local d; d=$(new_data)
  CRM_PASSWORD=alice-password "$CRM" --data "$d" user add alice >/dev/null || return 1
  run --data "$d" backup "$WORK/backup.db"; expect_rc 0 || return 1
  [ -s "$WORK/backup.db" ] || fail "no backup file" || return 1
  [ "$(sqlite3 "$WORK/backup.db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check" || return 1
  [ "$(sqlite3 "$WORK/backup.db" 'SELECT group_concat(username) FROM (SELECT username FROM "core.user" ORDER BY id)')" = "admin,alice" ] \
    || fail "users missing from the backup"
}

maintain_merges_search_indexes() {
  local d i; d=$(new_data)
  # users written one transaction each: the users' search index gets a segment per commit
  for i in 1 2 3 4 5 6; do
    CRM_PASSWORD=user-password-$i "$CRM" --data "$d" user add "user$i" >/dev/null || return 1
  done
  run --data "$d" maintain; expect_rc 0 && expect_out "search indexes: merged 1 of " || return 1
  [ -n "$(sqlite3 "$d/crm.db" "SELECT value FROM core_setting WHERE key = 'maintain.fts_merged_at'")" ] \
    || fail "the run is not recorded" || return 1
  run --data "$d" maintain; expect_rc 0 && expect_out "each already one segment" || return 1
  run --data "$d" maintain extra; expect_rc 2
}

backup_refuses_existing_file() {
  local d; d=$(new_data)
  echo "precious" >"$WORK/exists.db"
  run --data "$d" backup "$WORK/exists.db"; expect_rc 1 && expect_err "exists; choose" || return 1
  [ "$(cat "$WORK/exists.db")" = precious ] || fail "file was changed"
}

if [ ! -x "$CRM" ]; then echo "no $CRM: build it first"; echo "cli: 0 passed, 1 failed"; exit 1; fi

for t in help_lists_commands help_of_every_command no_command_is_usage_error \
         unknown_command_exits_2 unknown_option_exits_2 version_prints_version \
         init_prints_generated_password_once init_honours_admin_password_env \
         init_refuses_short_admin_password global_options_after_the_command \
         missing_data_dir_is_an_error data_that_is_a_file data_with_a_corrupt_database \
         user_add_and_list user_add_bad_email_creates_nothing user_add_duplicate \
         user_add_short_password user_add_bad_username user_disable_enable user_passwd \
         db_holds_no_password token_create_prints_one_token token_list_and_revoke \
         backup_is_a_good_copy backup_refuses_existing_file maintain_merges_search_indexes; do
  check "$t"
done

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
