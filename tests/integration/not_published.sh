#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# The dialling side (party 1, the higher PID) has a registry entry for
# party 0 without an address (not published yet): a SOCKS client gets 0x04
# and both the peer's DOWN line and the SOCKS reply line say why.  Once the
# address is there (SIGHUP re-reads the static registry), it works.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

cd "$T" || fail "cd $T"
make_pair "  handshake_timeout: 2s"
cp p1.yaml p1.good.yaml
grep -vF "addr: \"127.0.0.1:$P0_UDP\"" p1.good.yaml >p1.yaml
grep -q "addr: \"127.0.0.1:$P0_UDP\"" p1.yaml && fail "could not drop party 0's address"
start_server echo0 echo
E0=$SERVER_PORT
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml

WHY="no address published for this peer yet"
t0=$(now)
got=$(socks "127.0.0.1:$P1_SOCKS" 10.0.0.0 "$E0" --timeout 30 | head -n 1)
dt=$(elapsed "$t0")
[ "$got" = 0x04 ] || fail "SOCKS reply '$got' after $dt s (0x04 expected)"
lt "$dt" 10 || fail "the 0x04 took $dt s"
log "SOCKS reply 0x04 after $dt s"
grep 'peers: peer 0 (10.0.0.0) down' p1.log | grep -qF "$WHY" ||
  fail "p1.log: no 'peer 0 (10.0.0.0) down: $WHY' line"
grep 'SOCKS reply 0x04' p1.log | grep -qF "$WHY" ||
  fail "p1.log: the SOCKS reply line does not say '$WHY'"
log "$(grep -m1 'peers: peer 0 (10.0.0.0) down' p1.log)"
log "$(grep -m1 'SOCKS reply 0x04' p1.log)"

# the address arrives: the peer comes up and streams work
cp p1.good.yaml p1.yaml
kill -HUP "$(proxy_pid p1)"
_up() { grep -q 'peers: peer 0 (10.0.0.0) up via direct' p1.log; }
wait_until 20 _up || fail "party 0 not up 20 s after SIGHUP"
got=$(socks "127.0.0.1:$P1_SOCKS" 10.0.0.0 "$E0" --send hello)
[ "$got" = "$(printf '0x00\nhello')" ] || fail "after SIGHUP: got '$got'"
log "after SIGHUP: $(grep -m1 'peers: peer 0 (10.0.0.0) up' p1.log)"

stop_all
pass
