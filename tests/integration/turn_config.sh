#!/bin/bash
# The turn relay's settings as --check-config reports them: each mistake
# named at its FILE:LINE:COLUMN, exit 2, and never the password itself.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

cd "$T" || fail "cd $T"
make_pair
PASS_TEXT=secret-$RANDOM$RANDOM
printf '%s\n' "$PASS_TEXT" >turn.pass
chmod 600 turn.pass
printf '%s\n' "$PASS_TEXT" >open.pass
chmod 644 open.pass
: >empty.pass
chmod 600 empty.pass

# check NAME WANT_RC WANT_TEXT RELAY_LINES...: p1.yaml with a transport.relay
# section of RELAY_LINES (each indented by 4 spaces); --check-config must
# exit WANT_RC and its output hold WANT_TEXT (a fixed string).
check() {
  local name=$1 want_rc=$2 want=$3 l
  shift 3
  {
    while IFS= read -r l; do
      printf '%s\n' "$l"
      if [ "$l" = "  plugin: quic" ]; then
        echo "  relay:"
        for r in "$@"; do echo "    $r"; done
      fi
    done <p1.yaml
  } >"$name.yaml"
  timeout 30 "$SFKIT_PROXY" --check-config -c "$name.yaml" >"$name.out" 2>&1 </dev/null
  local rc=$?
  check_sanitizer_log "$name.out" "$name"
  [ "$rc" = "$want_rc" ] || fail "$name: exit $rc (expected $want_rc): $(cat "$name.out")"
  grep -qF -- "$want" "$name.out" || fail "$name: no '$want' in: $(cat "$name.out")"
  ! grep -qF "$PASS_TEXT" "$name.out" || fail "$name: the password is in the output"
  log "$name: $(grep -F -- "$want" "$name.out" | head -n 1)"
}

GOOD=("plugin: turn" "server: turn:127.0.0.1:3478" "username: site1" "password_file: turn.pass")
check good 0 "good.yaml: OK" "${GOOD[@]}"
check good_uri 0 "OK" "plugin: turn" "server: turn:relay.example.org?transport=udp" "username: u" "password_file: turn.pass" "lifetime: 20m" "mode: always"
check no_server 2 "relay 'turn' needs 'server' (turn:host[:port])" "plugin: turn" "username: u" "password_file: turn.pass"
check turns 2 "turns: (TURN over TLS) is not supported; use turn: (UDP)" "plugin: turn" "server: turns:relay.example.org" "username: u" "password_file: turn.pass"
check tcp 2 "only ?transport=udp is supported" "plugin: turn" "server: turn:relay.example.org?transport=tcp" "username: u" "password_file: turn.pass"
check stun_uri 2 "a STUN URI cannot relay" "plugin: turn" "server: stun:relay.example.org" "username: u" "password_file: turn.pass"
check port 2 "port must be 1-65535" "plugin: turn" "server: turn:relay.example.org:70000" "username: u" "password_file: turn.pass"
check v6 2 "an IPv6 address must be written in brackets" "plugin: turn" "server: turn:::1:3478" "username: u" "password_file: turn.pass"
check no_user 2 "relay 'turn' needs 'username'" "plugin: turn" "server: turn:127.0.0.1" "password_file: turn.pass"
check colon_user 2 "without ':'" "plugin: turn" "server: turn:127.0.0.1" "username: a:b" "password_file: turn.pass"
check no_pass 2 "relay 'turn' needs 'password_file'" "plugin: turn" "server: turn:127.0.0.1" "username: u"
check open_pass 2 "open.pass" "plugin: turn" "server: turn:127.0.0.1" "username: u" "password_file: open.pass"
check empty_pass 2 "empty.pass" "plugin: turn" "server: turn:127.0.0.1" "username: u" "password_file: empty.pass"
check missing_pass 2 "nonexistent.pass" "plugin: turn" "server: turn:127.0.0.1" "username: u" "password_file: nonexistent.pass"
check lifetime 2 "lifetime must be between 10s and 1h" "plugin: turn" "server: turn:127.0.0.1" "username: u" "password_file: turn.pass" "lifetime: 2h"
check mode 2 "relay mode 'sometimes': use auto, always or never" "${GOOD[@]}" "mode: sometimes"
check key 2 "pasword_file" "${GOOD[@]}" "pasword_file: x"
# positions: the bad server value is reported at its line
line=$(grep -n 'server: turn:relay.example.org:70000' port.yaml | cut -d: -f1)
grep -q "port.yaml:$line:" port.out || fail "port: not reported at line $line: $(cat port.out)"
pass
