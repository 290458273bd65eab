#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# Discovery `stun` against scripted servers that play what loopback
# cannot: the first answers every request with an error (fail over), the
# second claims a public mapping that changes after two requests (the
# daemon must report both), and before each real answer sends a response
# with an unknown transaction id and one with a bad FINGERPRINT (both
# dropped: their addresses must never be taken).  `status` then shows the
# plugin's report.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

cd "$T" || fail "cd $T"
start_stun_server err --error 500
E=$STUN_PORT
start_stun_server nat --mapped 198.51.100.7:40000 --change-after 2 \
  --stray-first --bad-fingerprint-first
S=$STUN_PORT
free_port SOCKS tcp
free_port UDP udp
SFK_LOG_LEVEL=debug write_config p0.yaml 0 "$SOCKS" "$UDP" p0.key ""
use_stun_discovery p0.yaml "[\"stun:127.0.0.1:$E\", \"stun:127.0.0.1:$S\"]" \
  "  rto: 50ms
  keepalive: 300ms"
printf 'control:\n  socket: run/control.sock\n' >>p0.yaml
start_proxy p0 p0.yaml

has() { grep -q -- "$1" p0.log; }
wait_until 20 has "public address 198.51.100.7:40000 (from stun:127.0.0.1:$S)" ||
  fail "the scripted mapping was not reported"
has "answered with error 500 scripted error" || fail "the error response was not logged"
has "STUN server stun:127.0.0.1:$E: error response" || fail "no failover after the error"
wait_until 20 has "public address 198.51.100.7:40001 (from stun:127.0.0.1:$S)" ||
  fail "the changed mapping was not reported"
has "mapping changed to 198.51.100.7:40001 (was 198.51.100.7:40000)" ||
  fail "the plugin did not log the change"
has "dropped a Binding response matching no transaction" || fail "the stray response was not dropped"
has "dropped a response with a bad FINGERPRINT" || fail "the bad fingerprint was not dropped"
! has "192.0.2.99" || fail "a response with a bad FINGERPRINT was taken"
! has "192.0.2.66" || fail "a response to no transaction was taken"
log "error -> failover; mapping change reported; stray and bad-fingerprint answers dropped"

# `status` shows the plugin's report: state, server, mapping, counters.
timeout 20 "$SFKIT_PROXY" status -c p0.yaml --json >status.json 2>status.err ||
  fail "status failed: $(cat status.err)"
"$PY" - status.json "$S" <<'PYEOF' || fail "status JSON: $(cat status.json)"
import json, sys
o = json.load(open(sys.argv[1]))
d = o["discovery.stun"]
assert d["state"] == "bound", d
assert d["server"] == "stun:127.0.0.1:" + sys.argv[2], d
assert d["server_addr"] == "127.0.0.1:" + sys.argv[2], d
assert d["mapping"] == "198.51.100.7:40001", d
c = d["counters"]
assert c["requests"] >= 4 and c["responses"] >= 3, c
assert c["dropped"] >= 2 and c["error_responses"] >= 1 and c["failovers"] >= 1, c
assert c["mapping_changes"] == 1, c
assert isinstance(d["last_answer_ms"], int), d
PYEOF
log "status: discovery.stun bound, counters as expected"
stop_all
pass
