#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# Discovery `stun` against a real coturn on loopback: the first server
# never answers, so the plugin fails over to the second and reports the
# mapping (on loopback, the bound address itself); the daemon logs it.
# Then the second server goes away: the keep-alive goes unanswered and
# the plugin fails over to the third, with the same mapping (no second
# "public address" line).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need turnserver

cd "$T" || fail "cd $T"
start_coturn stunA
A=$COTURN_PORT
A_PID=$COTURN_PID
start_coturn stunB
B=$COTURN_PORT
free_port DEAD udp # nothing listens there: requests go unanswered
free_port SOCKS tcp
free_port UDP udp
write_config p0.yaml 0 "$SOCKS" "$UDP" p0.key ""
# Short timers so failover takes about a second: 4 requests at 50, 100,
# 200 ms and a last wait of 400 ms.
use_stun_discovery p0.yaml "[\"stun:127.0.0.1:$DEAD\", \"stun:127.0.0.1:$A\", \"127.0.0.1:$B\"]" \
  "  rto: 50ms
  attempts: 4
  keepalive: 500ms"
"$SFKIT_PROXY" --check-config -c p0.yaml >check.out 2>&1 || fail "config refused: $(cat check.out)"
SFK_LOG_LEVEL=debug
sed -i 's/^  level: .*/  level: debug/' p0.yaml
start_proxy p0 p0.yaml

has() { grep -q -- "$1" p0.log; }
wait_until 20 has "public address 127.0.0.1:$UDP (from stun:127.0.0.1:$A)" ||
  fail "no mapping 127.0.0.1:$UDP from the second server"
has "STUN server stun:127.0.0.1:$DEAD: no answer" ||
  fail "the first server's failure was not logged"
# Two more vantage points: the light probe at start reports the NAT.
wait_until 20 has "NAT: mapping none" || fail "no NAT report from the start-up probe"
log "failed over from :$DEAD to :$A; mapping 127.0.0.1:$UDP"

# Keep-alives reach the current server...
wait_until 10 has "Binding answer from stun:127.0.0.1:$A" || fail "no keep-alive answer from :$A"
# ...until it stops: the next unanswered one moves us to the third.
stop_coturn "$A_PID"
wait_until 20 has "STUN server stun:127.0.0.1:$A: no answer" ||
  fail "the lost server was not noticed"
wait_until 20 has "Binding answer from 127.0.0.1:$B" || fail "no answer from the third server"
n=$(grep -c "public address" p0.log)
[ "$n" = 1 ] || fail "the unchanged mapping was reported $n times"
log "keep-alive failover from :$A to :$B, mapping reported once"

stop_all

# Config errors are positioned and exit 2.
bad() {
  write_config bad.yaml 0 "$SOCKS" "$UDP" p0.key ""
  use_stun_discovery bad.yaml "$1" "${3:-}"
  local rc=0
  "$SFKIT_PROXY" --check-config -c bad.yaml >bad.out 2>&1 || rc=$?
  [ "$rc" = 2 ] || fail "config '$1' ${3:-}: exit $rc (want 2): $(cat bad.out)"
  grep -q "bad.yaml:[0-9]*:[0-9]*: .*$2" bad.out || fail "config '$1': no positioned '$2': $(cat bad.out)"
}
bad '[]' "non-empty list"
bad '["turn:127.0.0.1:3478"]' "not a STUN server"
bad '["stun:127.0.0.1:0"]' "port must be 1-65535"
bad '["::1:3478"]' "in brackets"
bad '["stun:127.0.0.1"]' "keepalive must be between" "  keepalive: 10ms"
bad '["stun:127.0.0.1"]' "unknown key 'timeout'" "  timeout: 5s"
log "bad configs refused at their positions"
pass
