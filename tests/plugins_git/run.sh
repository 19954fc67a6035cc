#!/usr/bin/env bash
# Plugins from git, through the crm command line ($BUILD/crm): repositories
# made here with the git CLI (commits, tags, branches), `crm plugin fetch`
# writing plugins.lock, `verify`, the pin working with the origin gone,
# `update` moving the pin (old → new), a tampered .so, hostile repositories
# (symlink, submodule, ../ path, .GIT) and refused transports, `plugin list`.
# Ends with "plugins_git: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
CRM=$BUILD/crm
export CRM_SDK=${CRM_SDK:-$ROOT/sdk}
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.org
export CRM_ADMIN_PASSWORD=plugins-git-test-pw
unset CRM_PLUGINS_CONF MAKEFLAGS MFLAGS MAKELEVEL

pass=0; fail=0
ok()   { pass=$((pass + 1)); echo "ok $1"; }
bad()  { fail=$((fail + 1)); echo "not ok $1"; shift; for l in "$@"; do echo "  $l"; done; }
# check NAME COND-COMMAND...: the command's success is the check
check() { local n=$1; shift; if "$@"; then ok "$n"; else bad "$n" "failed: $*"; fi; }
has()   { grep -qF -- "$2" <<<"$1"; }

T=$(mktemp -d /tmp/crm-plugins-git-XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
cd "$T"
DATA=$T/var
crm() { "$CRM" --data "$DATA" "$@"; }
# run CMD...: sets $out (stdout+stderr) and $rc
run() { out=$("$@" 2>&1); rc=$?; }

if [ ! -x "$CRM" ]; then
  echo "no $CRM (build first)"; echo "plugins_git: 0 passed, 1 failed"; exit 1
fi
crm init >/dev/null || { echo "crm init failed"; echo "plugins_git: 0 passed, 1 failed"; exit 1; }

# make_plugin DIR NAME VALUE: a git repository holding plugin NAME, built
# with sdk/plugin.mk. From sdk/template when the SDK ships one (renamed to
# NAME), else a minimal plugin. VALUE goes into the source so commits differ.
# Prints the new commit.
make_plugin() {
  local dir=$1 name=$2 value=$3
  mkdir -p "$dir"
  if [ ! -d "$dir/.git" ]; then
    if [ -f "$CRM_SDK/template/Makefile" ]; then
      cp -r "$CRM_SDK/template/." "$dir/"
      # The template is a plugin named "template": rename files and identifiers.
      (cd "$dir" && for f in $(find . -depth -name '*template*'); do
          mv "$f" "$(dirname "$f")/$(basename "$f" | sed "s/template/$name/g")"; done
       grep -rlI template . | xargs -r sed -i "s/template/$name/g")
    else
      printf 'PLUGIN := %s\nSOURCES := %s.c\ninclude $(CRM_SDK)/plugin.mk\n' "$name" "$name" > "$dir/Makefile"
      cat > "$dir/$name.c" <<EOF
#include "crm.h"
static int init(crm_plugin *self, const crm_host_api *host) { (void)self; (void)host; return CRM_OK; }
static const crm_plugin_desc descriptor = {CRM_PLUGIN_HEADER, .name = "$name", .version = "1.0.0", .init = init};
CRM_PLUGIN_EXPORT const crm_plugin_desc *crm_plugin_v1(void);
CRM_PLUGIN_EXPORT const crm_plugin_desc *crm_plugin_v1(void) { return &descriptor; }
EOF
    fi
    git init -q -b main "$dir"
  fi
  # Every revision changes the source (a comment), so each commit builds a new .so.
  local src; src=$(grep -lE 'crm_plugin_v1' "$dir"/*.c | head -1)
  echo "/* fixture revision $value */" >> "$src"
  (cd "$dir" && git add -A && git commit -q -m "revision $value" && git rev-parse HEAD)
}

mkdir -p repos
C1=$(make_plugin repos/hello hello 1) && (cd repos/hello && git tag -a v1 -m v1)
cat > plugins.conf <<EOF
# test configuration
[hello]
git = repos/hello
ref = main
EOF

# ---- fetch → lock → verify ----
run crm plugin fetch
if [ $rc -eq 0 ] && has "$out" "hello: pinned main at $C1"; then ok fetch_pins; else bad fetch_pins "rc=$rc" "$out"; fi
LOCK=$DATA/plugins.lock
commit=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plugins"]["hello"]["commit"])' "$LOCK" 2>/dev/null)
sha=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plugins"]["hello"]["so_sha256"])' "$LOCK" 2>/dev/null)
so=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plugins"]["hello"]["so"])' "$LOCK" 2>/dev/null)
check lock_commit_40_hex grep -qE '^[0-9a-f]{40}$' <<<"$commit"
check lock_commit_is_ref [ "$commit" = "$C1" ]
check lock_sha_64_hex grep -qE '^[0-9a-f]{64}$' <<<"$sha"
check lock_sha_matches_file [ "$(sha256sum "$DATA/$so" 2>/dev/null | cut -d' ' -f1)" = "$sha" ]
check so_under_commit [ "$so" = "plugins/hello/$C1/hello.so" ]
check files_from_commit test -f "$DATA/plugins/hello/src-$C1/hello.c" -a ! -e "$DATA/plugins/hello/src-$C1/.git"
run crm plugin verify
if [ $rc -eq 0 ] && has "$out" "hello: ok $sha"; then ok verify_ok; else bad verify_ok "rc=$rc" "$out"; fi

# ---- the pin works with the origin gone ----
mv repos/hello repos/hello.away
run crm plugin fetch
if [ $rc -eq 0 ] && has "$out" "hello: ok at $C1"; then ok offline_ok; else bad offline_ok "rc=$rc" "$out"; fi
rm -rf "$DATA/plugins/hello/$C1"
run crm plugin fetch hello
if [ $rc -eq 0 ] && has "$out" "hello: rebuilt $C1" && [ -f "$DATA/$so" ]; then ok offline_rebuild; else bad offline_rebuild "rc=$rc" "$out"; fi
run crm plugin verify
check offline_verify [ $rc -eq 0 ]
run crm plugin update hello
if [ $rc -eq 1 ] && has "$out" "cannot fetch from $T/repos/hello"; then ok update_needs_remote; else bad update_needs_remote "rc=$rc" "$out"; fi
mv repos/hello.away repos/hello

# ---- a new tag: fetch keeps the pin, update moves it ----
C2=$(make_plugin repos/hello hello 2) && (cd repos/hello && git tag -a v2 -m v2)
run crm plugin fetch
if [ $rc -eq 0 ] && has "$out" "hello: ok at $C1"; then ok fetch_keeps_pin; else bad fetch_keeps_pin "rc=$rc" "$out"; fi
run crm plugin update hello
if [ $rc -eq 0 ] && has "$out" "hello: $C1 → $C2"; then ok update_old_to_new; else bad update_old_to_new "rc=$rc" "$out"; fi
check update_lock_moved grep -q "\"commit\": \"$C2\"" "$LOCK"
check update_removes_old [ ! -e "$DATA/plugins/hello/$C1" -a ! -e "$DATA/plugins/hello/src-$C1" -a -d "$DATA/plugins/hello/src-$C2" ]
run crm plugin update hello
if [ $rc -eq 0 ] && has "$out" "hello: already at $C2"; then ok update_already; else bad update_already "rc=$rc" "$out"; fi
run crm plugin update nosuch
if [ $rc -eq 1 ] && has "$out" '"nosuch" is not in'; then ok update_unknown; else bad update_unknown "rc=$rc" "$out"; fi

# ---- tampered .so ----
so=plugins/hello/$C2/hello.so
printf '\x01' | dd of="$DATA/$so" bs=1 seek=100 conv=notrunc status=none
run crm plugin verify
if [ $rc -eq 1 ] && has "$out" "plugin hello: sha256 mismatch"; then ok verify_tampered; else bad verify_tampered "rc=$rc" "$out"; fi
run crm plugin fetch
run crm plugin verify
check fetch_repairs_tampered [ $rc -eq 0 ]

# ---- hostile repositories: refused, nothing written ----
hostile() { # NAME: repository repos/NAME with a Makefile and a hostile tree from stdin lines
  local name=$1 lines; lines=$(cat)
  git init -q -b main "repos/$name"
  (cd "repos/$name"
   B=$(echo hi | git hash-object -w --stdin)
   M=$(printf 'all:\n\ttouch %s.so\n' "$name" | git hash-object -w --stdin)
   T=$(printf '100644 blob %s\tx\n' "$B" | git mktree)
   T2=$(printf '040000 tree %s\t..\n' "$T" | git mktree)
   R=$( (printf '100644 blob %s\tMakefile\n' "$M"; eval "printf \"$lines\"") | git mktree)
   C=$(git commit-tree -m hostile "$R"); git update-ref refs/heads/main "$C")
  printf '[%s]\ngit = repos/%s\n' "$name" "$name" >> plugins.conf
}
git init -q -b main repos/evilsym
(cd repos/evilsym && printf 'all:\n' > Makefile && mkdir scripts && ln -s /etc/passwd scripts/evil && git add -A && git commit -q -m s)
printf '[evilsym]\ngit = repos/evilsym\n' >> plugins.conf
echo '160000 commit 0123456789abcdef0123456789abcdef01234567\tlib\n' | hostile evilsub
echo '040000 tree $T2\t..\n' | hostile evildotdot
echo '040000 tree $T\t.GIT\n' | hostile evilgit
echo '100644 blob $B\ta\\\\b\n' | hostile evilbs
for n in evilsym:'symlink "scripts/evil"' evilsub:'submodule "lib"' evildotdot:'path ".."' \
         evilgit:'path ".GIT"' evilbs:'path "a\b" has a backslash'; do
  name=${n%%:*}; why=${n#*:}
  run crm plugin fetch "$name"
  if [ $rc -eq 1 ] && has "$out" "plugin \"$name\": refused: $why" && has "$out" " in commit " &&
     [ -z "$(ls "$DATA/plugins/$name" | grep -v '^repo.git$')" ] && ! grep -q "\"$name\"" "$LOCK" &&
     [ ! -e "$DATA/plugins/x" ] && [ ! -e "$DATA/x" ] && [ ! -e "$T/x" ]; then
    ok "hostile_$name"
  else
    bad "hostile_$name" "rc=$rc" "$out" "$(ls -a "$DATA/plugins/$name" 2>&1)"
  fi
done
# `fetch` of everything: hello is fine, the hostile ones fail, exit 1, hello's pin intact
run crm plugin fetch
if [ $rc -eq 1 ] && has "$out" "hello: ok at $C2" && has "$out" 'plugin "evilgit": refused'; then ok fetch_all_mixed; else bad fetch_all_mixed "rc=$rc" "$out"; fi

# ---- refused transports ----
cat > transports.conf <<EOF
[gitproto]
git = git://127.0.0.1/hello.git
[extproto]
git = ext::sh -c touch% $T/pwned
[plainhttp]
git = http://127.0.0.1/hello.git
EOF
run crm plugin fetch --conf transports.conf
if [ $rc -eq 1 ] && has "$out" 'plugin "gitproto": repository URL "git://' && has "$out" 'plugin "extproto"' &&
   has "$out" 'plugin "plainhttp"' && [ ! -e "$T/pwned" ]; then ok transports_refused; else bad transports_refused "rc=$rc" "$out"; fi

# ---- P4: an HTTPS server with a self-signed certificate is not trusted ----
if command -v openssl >/dev/null && command -v python3 >/dev/null &&
   openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 1 \
     -subj /CN=127.0.0.1 >/dev/null 2>&1; then
  python3 - >port.txt 2>/dev/null <<'EOF' &
import http.server, ssl
httpd = http.server.HTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain('cert.pem', 'key.pem')
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
EOF
  tls_pid=$!
  for _ in $(seq 50); do [ -s port.txt ] && break; sleep 0.1; done
  printf '[tls]\ngit = https://127.0.0.1:%s/hello.git\n' "$(cat port.txt)" > tls.conf
  run crm plugin fetch --conf tls.conf
  kill "$tls_pid" 2>/dev/null; wait "$tls_pid" 2>/dev/null
  if [ $rc -eq 1 ] && has "$out" 'plugin "tls": cannot fetch from https://127.0.0.1' &&
     has "$out" "not trusted"; then ok https_self_signed_refused; else bad https_self_signed_refused "rc=$rc" "$out"; fi
else
  echo "skip https_self_signed_refused (no openssl)"
fi

# ---- plugin list: the loader's view ----
sed -i '/^\[evil/,$d' plugins.conf
run crm plugin list
if has "$out" "hello" && has "$out" "${C2:0:12}" && grep -qE 'loaded|refused' <<<"$out"; then ok list_shows_state; else bad list_shows_state "rc=$rc" "$out"; fi
run crm plugin list --json
if has "$out" "\"commit\": \"$C2\"" && has "$out" '"state"'; then ok list_json; else bad list_json "rc=$rc" "$out"; fi

# ---- P1: a lock naming a branch instead of a commit stops everything ----
sed -i "s/\"commit\": \"$C2\"/\"commit\": \"main\"/" "$LOCK"
run crm plugin verify
if [ $rc -eq 1 ] && has "$out" 'plugin "hello": commit "main" is not a 40-hex commit id'; then ok lock_branch_refused; else bad lock_branch_refused "rc=$rc" "$out"; fi
run crm plugin list
if [ $rc -ne 0 ] && has "$out" 'commit "main"'; then ok list_refuses_bad_lock; else bad list_refuses_bad_lock "rc=$rc" "$out"; fi

echo "plugins_git: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
