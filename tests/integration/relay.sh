#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# The relay path end to end, with a stand-in for TURN (the test relay
# plugin tests/plugins/relay_udp.c and tests/integration/relay_server.py).
# A: relay mode 'always': party 1 reaches party 0 only through the relay,
#    packets stay network-sized although the relay is on loopback, and
#    party 0 accepts party 1 from the relayed address by its pin.
# B: mode 'auto': party 0 sits behind a NAT that only lets the relay in;
#    the direct handshake fails and after relay_fallback (5 s) party 1
#    dials through the relay.
# C: mode 'never', same NAT: 0x04, and the reason says relays are off.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need curl

cd "$T" || fail "cd $T"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy
[ -n "${SFK_TEST_PLUGIN_DIR:-}" ] || SFK_TEST_PLUGIN_DIR=$(dirname "$(dirname "$SFKIT_PROXY")")/tests/plugins/.libs
[ -f "$SFK_TEST_PLUGIN_DIR/relay_udp.so" ] || fail "test plugin relay_udp.so not built (make check builds it)"
export SFKIT_PROXY_PLUGIN_DIR=$SFKIT_PROXY_PLUGIN_DIR:$SFK_TEST_PLUGIN_DIR

make_pair
cp p0.yaml p0.good.yaml
cp p1.yaml p1.good.yaml
mkdir www
make_file www/f 4
start_server http0 http www
H0=$SERVER_PORT
start_server http1 http www
H1=$SERVER_PORT
start_server echo0 echo
E0=$SERVER_PORT

# relay NAME [RELAYED_PORT]: start relay_server.py; sets RELAY_PORT RELAY_PID.
relay() {
  rm -f "$T/$1.ready"
  "$PY" "$LIB_DIR/relay_server.py" --ready-file "$T/$1.ready" --stats "$T/$1.stats" \
    ${2:+--relayed-port "$2"} 2>"$T/$1.err" &
  RELAY_PID=$!
  track "$RELAY_PID"
  wait_file "$T/$1.ready"
  RELAY_PORT=$(cat "$T/$1.ready")
}

# relay_conf IN OUT MODE [EXTRA]: OUT is IN with a transport.relay section.
relay_conf() {
  awk -v port="$RELAY_PORT" -v mode="$3" -v extra="${4:-}" '
    { print }
    /^  plugin: quic$/ {
      if (extra != "") print extra
      print "  relay:"
      print "    plugin: udp"
      print "    server: \"127.0.0.1:" port "\""
      print "    mode: " mode
    }' "$1" >"$2"
}

# transfer VIA_SOCKS ADDR PORT WHAT: 4 MiB over HTTP, sha256 checked.
transfer() {
  local got
  got=$(curl -sS --fail --max-time 60 --socks5 "127.0.0.1:$1" "http://$2:$3/f" 2>curl.err | sha_stdin) ||
    fail "$4: download failed: $(cat curl.err)"
  [ "$got" = "$(sha_file www/f)" ] || fail "$4: sha256 differs"
  log "$4: 4 MiB, sha256 equal"
}

# --- A: always ------------------------------------------------------------------------
relay relayA
relay_conf p1.good.yaml p1.yaml always
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
_relayed() { grep -q 'daemon: relayed address 127.0.0.1:[0-9]*' p1.log; }
wait_until 10 _relayed || fail "A: party 1 got no relayed address"
X=$(grep -m1 -o 'relayed address 127.0.0.1:[0-9]*' p1.log | sed 's/.*://')
_upA() { grep -q "peers: peer 0 (10.0.0.0) up via relay 127.0.0.1:$P0_UDP" p1.log; }
wait_until 15 _upA || fail "A: party 1 not up via the relay"
log "A: $(grep -m1 'peers: peer 0 (10.0.0.0) up' p1.log)"
grep -q "peers: peer 1 (10.0.0.1) up via direct 127.0.0.1:$X" p0.log ||
  fail "A: party 0 did not accept party 1 from its relayed address 127.0.0.1:$X"
log "A: $(grep -m1 'peers: peer 1 (10.0.0.1) up' p0.log)"
transfer "$P1_SOCKS" 10.0.0.0 "$H0" "A: via party 1"
transfer "$P0_SOCKS" 10.0.0.1 "$H1" "A: via party 0"
# (party 0 sends 16 KiB packets: to it the relayed address is a loopback
# peer, which it is here; party 1 relays network-sized ones)
_stats() { read -r _ _ _ s _ r _ <"$T/relayA.stats" && [ "$s" -gt 1000 ] && [ "$r" -gt 200 ]; }
wait_until 5 _stats || fail "A: the traffic did not go through the relay: $(cat relayA.stats)"
log "A: relay server: $(cat relayA.stats)"
stop_all
line=$(grep -m1 'connection down' p1.log) || fail "A: no 'connection down' line"
largest=$(sed 's/.*largest \([0-9]*\).*/\1/' <<<"$line")
[ "$largest" -le 1445 ] || fail "A: packets of $largest bytes on the relayed path (at most 1452 - 7)"
log "A: largest packet on the relayed path: $largest bytes"
kill "$RELAY_PID"

# --- B: auto, the direct path is filtered --------------------------------------------
# Party 0 behind nat.py that lets in only the relayed address N.
free_port N udp
relay relayB "$N"
"$PY" "$LIB_DIR/nat.py" --inside "127.0.0.1:$P0_UDP" --outside "127.0.0.1:$N" \
  --ready-file "$T/natB.ready" 2>"$T/natB.err" &
NAT_PID=$!
track "$NAT_PID"
wait_file "$T/natB.ready"
read -r NAT_Q NAT_P <"$T/natB.ready"
sed "s/127.0.0.1:$P1_UDP/127.0.0.1:$NAT_Q/" p0.good.yaml >p0.yaml
sed "s/127.0.0.1:$P0_UDP/127.0.0.1:$NAT_P/" p1.good.yaml >p1.tmp.yaml
relay_conf p1.tmp.yaml p1.yaml auto
start_proxy p0b p0.yaml
start_proxy p1b p1.yaml
t0=$(now)
_upB() { grep -q "peers: peer 0 (10.0.0.0) up via relay 127.0.0.1:$NAT_P" p1b.log; }
wait_until 15 _upB || fail "B: party 1 not up via the relay within 15 s"
dt=$(elapsed "$t0")
grep -q 'transport.quic: peer 0: no direct handshake in 5 s; trying the relay' p1b.log ||
  fail "B: party 1 did not say it falls back to the relay"
lt 4 "$dt" || fail "B: up via the relay after $dt s, before relay_fallback"
log "B: up via the relay $dt s after start: $(grep -m1 'trying the relay' p1b.log)"
transfer "$P1_SOCKS" 10.0.0.0 "$H0" "B: via party 1"
transfer "$P0_SOCKS" 10.0.0.1 "$H1" "B: via party 0"
stop_all

# --- C: never, same NAT -----------------------------------------------------------------
relay_conf p1.tmp.yaml p1.yaml never "  handshake_timeout: 2s"
start_proxy p0c p0.yaml
start_proxy p1c p1.yaml
got=$(socks "127.0.0.1:$P1_SOCKS" 10.0.0.0 "$E0" --timeout 30 | head -n 1)
[ "$got" = 0x04 ] || fail "C: SOCKS reply '$got' (0x04 expected)"
WHY="no answer to the handshake in 2 s (peer offline, or its NAT filters us); relay mode is 'never' (site policy), so no relay is tried"
grep 'peers: peer 0 (10.0.0.0) down' p1c.log | grep -qF "$WHY" ||
  fail "C: p1 does not say '$WHY'"
grep 'SOCKS reply 0x04' p1c.log | grep -qF "$WHY" || fail "C: the SOCKS reply line does not say why"
grep -q 'trying the relay\|up via relay' p1c.log && fail "C: party 1 used the relay in mode 'never'"
log "C: $(grep -m1 'peers: peer 0 (10.0.0.0) down' p1c.log)"
stop_all

pass
