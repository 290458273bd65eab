#!/bin/bash
# shellcheck disable=SC2119 # optional arguments
# `sfkit-proxy netcheck` against a real coturn with two listening IPs
# (127.0.0.1 and 127.0.0.2, so it supports RFC 5780): on loopback there is
# no NAT, the mapping is the socket's own address, filtering is
# endpoint-independent (CHANGE-REQUEST answers arrive), exit 0; --json
# prints one object with the same verdict; a config whose servers do
# not answer exits 3; a config error exits 2; discovery `none` exits 2.
# Scripted servers play NATs: two that see the same public mapping from
# different addresses (endpoint-independent, exit 0), two that see
# different ones (the mapping depends on the destination, exit 1), and a
# single one (behaviour unknown, exit 4).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need turnserver

cd "$T" || fail "cd $T"
start_coturn stun
P=$COTURN_PORT
free_port SOCKS tcp
free_port UDP udp
free_port DEAD udp

netcheck() {
  local rc=0
  timeout 60 "$SFKIT_PROXY" netcheck "$@" >nc.out 2>nc.err || rc=$?
  check_sanitizer_log nc.err "netcheck"
  echo "$rc"
}

write_config nc.yaml 0 "$SOCKS" "$UDP" nc.key ""
use_stun_discovery nc.yaml "[\"stun:127.0.0.1:$P\"]" "  rto: 50ms"
rc=$(netcheck -c nc.yaml)
[ "$rc" = 0 ] || fail "netcheck exited $rc (want 0): $(cat nc.out nc.err)"
grep -q "^mapping: *none" nc.out || fail "mapping not 'none': $(cat nc.out)"
grep -q "^filtering: *endpoint-independent" nc.out || fail "filtering not endpoint-independent: $(cat nc.out)"
grep -q "^stun:127.0.0.1:$P (127.0.0.1:$P): mapped 127.0.0.1:[0-9]" nc.out || fail "no answer line: $(cat nc.out)"
grep -q "(127.0.0.2:$P): mapped" nc.out || fail "the alternate address was not probed: $(cat nc.out)"
! grep -q "127.0.0.1:$UDP" nc.out || fail "netcheck used the daemon's port instead of port 0"
log "text: $(grep '^verdict' nc.out)"

# A dual-stack socket ([::]) reaches the IPv4 server, the RFC 5780 tests
# included; IPv4 addresses are named as IPv4 (the core unmaps ::ffff:).
if ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/'; then
  UDP_HOST="[::]" write_config nc6.yaml 0 "$SOCKS" 0 nc.key ""
  use_stun_discovery nc6.yaml "[\"stun:127.0.0.1:$P\"]" "  rto: 50ms"
  rc=$(netcheck -c nc6.yaml)
  [ "$rc" = 0 ] || fail "netcheck on [::] exited $rc (want 0): $(cat nc.out nc.err)"
  grep -q "(127.0.0.2:$P): mapped 127.0.0.1:" nc.out ||
    fail "on [::] the alternate address was not probed: $(cat nc.out)"
  log "dual-stack [::]: $(grep '^mapping' nc.out)"
else
  log "no ::1 on lo: the dual-stack case is not run"
fi

rc=$(netcheck -c nc.yaml --json)
[ "$rc" = 0 ] || fail "netcheck --json exited $rc: $(cat nc.out nc.err)"
"$PY" - nc.out "$P" <<'PYEOF' || fail "bad JSON: $(cat nc.out)"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["mapping"] == "none", o
assert o["filtering"] == "endpoint-independent", o
assert o["direct_expected"] is True, o
assert o["exit_status"] == 0, o
first = o["observations"][0]
assert first["server"] == "stun:127.0.0.1:" + sys.argv[2], first
assert first["mapped"] == o["local"], (first, o["local"])
assert any(x["server_addr"].startswith("127.0.0.2:") for x in o["observations"]), o
PYEOF
log "json: one object, direct_expected true"

use_stun_discovery nc.yaml "[\"stun:127.0.0.1:$DEAD\"]" "  rto: 50ms"
rc=$(netcheck -c nc.yaml)
[ "$rc" = 3 ] || fail "netcheck with a silent server exited $rc (want 3): $(cat nc.out nc.err)"
grep -q "no answer" nc.out || fail "no 'no answer' line: $(cat nc.out)"

use_stun_discovery nc.yaml "[\"stuns:127.0.0.1:$P\"]"
rc=$(netcheck -c nc.yaml)
[ "$rc" = 2 ] || fail "netcheck with a bad server URI exited $rc (want 2)"
grep -q "nc.yaml:[0-9]*:[0-9]*: stuns:" nc.err || fail "error not positioned: $(cat nc.err)"

write_config none.yaml 0 "$SOCKS" "$UDP" nc.key ""
rc=$(netcheck -c none.yaml)
[ "$rc" = 2 ] || fail "netcheck with discovery none exited $rc (want 2)"
grep -q "cannot probe" nc.err || fail "no explanation for discovery none: $(cat nc.err)"
log "exit 3 without answers, 2 for config errors"

start_stun_server eim1 --mapped 198.51.100.7:40000
X1=$STUN_PORT
start_stun_server eim2 --host 127.0.0.2 --mapped 198.51.100.7:40000
X2=$STUN_PORT
start_stun_server sym --host 127.0.0.2 --mapped 198.51.100.7:40001
X3=$STUN_PORT
write_config nc.yaml 0 "$SOCKS" "$UDP" nc.key ""
use_stun_discovery nc.yaml "[\"stun:127.0.0.1:$X1\", \"stun:127.0.0.2:$X2\"]" "  rto: 50ms"
rc=$(netcheck -c nc.yaml)
[ "$rc" = 0 ] || fail "endpoint-independent NAT: exit $rc (want 0): $(cat nc.out nc.err)"
grep -q "^mapping: *endpoint-independent" nc.out || fail "mapping: $(cat nc.out)"
use_stun_discovery nc.yaml "[\"stun:127.0.0.1:$X1\", \"stun:127.0.0.2:$X3\"]" "  rto: 50ms"
rc=$(netcheck -c nc.yaml --json)
[ "$rc" = 1 ] || fail "destination-dependent NAT: exit $rc (want 1): $(cat nc.out nc.err)"
"$PY" -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["mapping"] == "address-dependent" and o["direct_expected"] is False, o' nc.out ||
  fail "JSON for a destination-dependent NAT: $(cat nc.out)"
use_stun_discovery nc.yaml "[\"stun:127.0.0.1:$X1\"]" "  rto: 50ms"
rc=$(netcheck -c nc.yaml)
[ "$rc" = 4 ] || fail "one vantage point: exit $rc (want 4): $(cat nc.out nc.err)"
log "scripted NATs: endpoint-independent 0, destination-dependent 1, one server 4"
pass
