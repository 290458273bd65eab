#!/bin/bash
# shellcheck disable=SC2317 # functions run via traps
# Every example in conf/ passes --check-config as a site would use it: the
# file copied into a folder, its secret files created with mode 0600.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

cd "$T" || fail "cd $T"
CONF=$SFK_SRCDIR/conf

# have_plugin FILE: is FILE in one of the plugin directories?
have_plugin() {
  local d
  local IFS=:
  for d in $SFKIT_PROXY_PLUGIN_DIR; do
    [ -e "$d/$1" ] && return 0
  done
  return 1
}
checked=0
# The annotated default's commented-out relay block, uncommented: the
# example a site copies must stay valid too.
mkdir -p relay-block || fail "mkdir relay-block"
sed -e 's/^  # relay:/  relay:/' -e '/^  relay:/,/^$/s/^  #   /    /' \
  "$CONF/sfkit-proxy.yaml" >relay-block/sfkit-proxy-relay.yaml || fail "relay block"
grep -q '^    plugin: turn' relay-block/sfkit-proxy-relay.yaml ||
  fail "no commented relay block found in conf/sfkit-proxy.yaml"
for f in "$CONF"/*.yaml relay-block/sfkit-proxy-relay.yaml; do
  name=$(basename "$f" .yaml)
  mkdir -p "$name" || fail "mkdir $name"
  # Installed locations become folders of this test.
  sed -e 's#/etc/sfkit-proxy/##g' -e 's#/var/lib/sfkit-proxy/#state/#g' \
    -e 's#/run/sfkit-proxy/#state/#g' "$f" >"$name/$(basename "$f")" ||
    fail "copy $f"
  # The secret files a site creates next to its config (relative paths).
  for secret in auth_key.txt turn.pass; do
    if grep -Eq "(auth_key_file|password_file): *$secret" "$name/$(basename "$f")"; then
      (umask 077 && echo "example-secret-$name" >"$name/$secret")
    fi
  done
  (cd "$name" && timeout 30 "$SFKIT_PROXY" --check-config -c "$(basename "$f")") \
    >"$name.out" 2>&1
  rc=$?
  out=$(cat "$name.out")
  check_sanitizer_log "$name.out" "--check-config $name"
  # An example that names the turn relay needs its plugin: a build
  # without it is a broken tree, not a reason to skip the example.
  if grep -q '^ *plugin: turn' "$f" && ! have_plugin relay_turn.so; then
    fail "$name names the turn relay, but relay_turn.so is not in $SFKIT_PROXY_PLUGIN_DIR"
  fi
  [ "$rc" = 0 ] || fail "$name: exit $rc: $out"
  printf '%s\n' "$out" | grep -Eq "$name\.yaml: OK$" || fail "$name: no OK line: $out"
  log "$name: OK"
  checked=$((checked + 1))
done
[ "$checked" -ge 5 ] || fail "only $checked examples found in $CONF"
pass "$checked examples in conf/ pass --check-config"
