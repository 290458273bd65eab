#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# Signals and start-up failures as an operator sees them: SIGTERM and SIGINT
# stop cleanly (exit 0, `stopped`) even with connections open; SIGHUP
# re-reads the peer list and log level and survives a broken file; a SOCKS
# or UDP port in use is exit 1 with a clear message.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

cd "$T" || fail "cd $T"
HS="  handshake_timeout: 2s"
make_pair "$HS"
cp p1.yaml p1.good.yaml
start_server echo0 echo
E0=$SERVER_PORT
start_server echo1 echo
E1=$SERVER_PORT

# connects VIA_SOCKS ADDR PORT: one echo round trip works
connects() {
  [ "$(socks "127.0.0.1:$1" "$2" "$3" --timeout 10 --send ping)" = "$(printf '0x00\nping')" ]
}

# hold NAME VIA_SOCKS ADDR PORT: an open, idle connection; its output in NAME.hold
hold() {
  socks "127.0.0.1:$2" "$3" "$4" --hold >"$T/$1.hold" 2>&1 &
  track $!
  HOLD_PID=$!
  wait_until 20 grep -q 0x00 "$T/$1.hold" || fail "cannot open the connection $1: $(cat "$T/$1.hold")"
}

# --- SIGTERM and SIGINT with connections open -------------------------------------------
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
connects "$P1_SOCKS" 10.0.0.0 "$E0" || fail "the pair does not work"
hold h1 "$P1_SOCKS" 10.0.0.0 "$E0"
H1=$HOLD_PID
hold h0 "$P0_SOCKS" 10.0.0.1 "$E1"
H0=$HOLD_PID
stop_proxy p1 TERM
log "SIGTERM: exit 0, 'stopped'"
wait_exit "$H1" 10 || fail "a client of the stopped proxy still hangs 10 s after SIGTERM"
log "the stopped proxy's client saw: $(tail -n 1 "$T/h1.hold")"
stop_proxy p0 INT
log "SIGINT: exit 0, 'stopped'"
wait_exit "$H0" 10 || fail "a client of the stopped proxy still hangs 10 s after SIGINT"

# --- SIGHUP: a peer that was missing, then fixed ------------------------------------------
# party 1 first knows party 0 at a port where nobody listens
free_port NOBODY udp
write_config p1.yaml 1 "$P1_SOCKS" "$P1_UDP" p1.key "0,$NOBODY,$P0_PIN" "$HS"
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
got=$(socks "127.0.0.1:$P1_SOCKS" 10.0.0.0 "$E0")
[ "$got" != 0x00 ] || fail "connected to party 0 at a wrong address"
log "peer at a wrong address: $got"
# fix the file and tell the daemon
sed 's/^  level: info$/  level: debug/' p1.good.yaml >p1.yaml
kill -HUP "$(proxy_pid p1)"
_works() { connects "$P1_SOCKS" 10.0.0.0 "$E0"; }
t0=$(now)
wait_until 20 _works || fail "after SIGHUP with the fixed peer list, party 0 is still unreachable (20 s)"
assert_alive p1
log "SIGHUP re-read the peer list: connected after $(elapsed "$t0") s"
# ... and the log level
_debug_logged() { grep -Eq '^[^ ]+ +debug ' "$T/p1.log"; }
connects "$P1_SOCKS" 10.0.0.0 "$E0" || fail "connection after SIGHUP"
wait_until 5 _debug_logged || fail "log level debug after SIGHUP, but no debug line was logged"
log "SIGHUP re-read the log level"

# a broken file on SIGHUP: the daemon keeps running with what it has
printf 'party: {pid: 1\n' >p1.yaml
kill -HUP "$(proxy_pid p1)"
connects "$P1_SOCKS" 10.0.0.0 "$E0" || fail "after SIGHUP with a broken config the connection fails"
connects "$P0_SOCKS" 10.0.0.1 "$E1" || fail "after SIGHUP with a broken config party 0 cannot reach party 1"
assert_alive p1
log "SIGHUP with a broken file: still running and working"
cp p1.good.yaml p1.yaml
stop_all

# --- ports in use --------------------------------------------------------------------------
# (exit 1, a message naming the address)
start_server busy sink
BUSY=$SERVER_PORT
write_config busy.yaml 1 "$BUSY" "$P1_UDP" p1.key "0,$P0_UDP,$P0_PIN"
timeout 30 "$SFKIT_PROXY" -c busy.yaml >busy.stdout 2>busy.log </dev/null
rc=$?
check_sanitizer_log busy.log "SOCKS port in use"
[ "$rc" = 1 ] || fail "SOCKS port in use: exit $rc (expected 1)"
grep -q "$BUSY" busy.log || fail "SOCKS port in use: the message does not name port $BUSY"
grep -Eiq 'in use' busy.log || fail "SOCKS port in use: the message does not say so"
log "SOCKS port in use: exit 1: $(grep -i 'in use' busy.log | head -n 1)"

"$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
open(sys.argv[1] + ".tmp", "w").write("%d\n" % s.getsockname()[1])
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(600)' "$T/udpbusy.ready" &
track $!
wait_file "$T/udpbusy.ready"
UBUSY=$(cat "$T/udpbusy.ready")
write_config ubusy.yaml 1 "$P1_SOCKS" "$UBUSY" p1.key "0,$P0_UDP,$P0_PIN"
timeout 30 "$SFKIT_PROXY" -c ubusy.yaml >ubusy.stdout 2>ubusy.log </dev/null
rc=$?
check_sanitizer_log ubusy.log "UDP port in use"
[ "$rc" = 1 ] || fail "UDP port in use: exit $rc (expected 1)"
grep -q "$UBUSY" ubusy.log || fail "UDP port in use: the message does not name port $UBUSY"
grep -Eiq 'in use' ubusy.log || fail "UDP port in use: the message does not say so"
log "UDP port in use: exit 1: $(grep -i 'in use' ubusy.log | head -n 1)"

pass
