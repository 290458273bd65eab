#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# Nobody removed stays in. Party 0's registry (static, re-read on SIGHUP):
# A: drops party 1 while a download runs: the connection and its stream
#    end at once on both sides, and party 1 is refused afterwards.
# B: lists party 1 again under another pin (re-keyed): party 1's
#    connection is refused with the pin mismatch.
# C: lists party 1's pin for PIDs 1 and 2: refused, with a clear message.
# D: the right entry again: party 1 connects and a transfer is intact.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need curl

cd "$T" || fail "cd $T"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy
make_pair "$(printf '  handshake_timeout: 3s')"
cp p0.yaml p0.good.yaml
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
mkdir www
make_file www/big 64
make_file www/f 2
start_server http0 http www
H0=$SERVER_PORT
fetch_f 20 || fail "no first transfer: $(cat curl.err)"

# reconf PEERS_YAML: party 0's registry lists exactly these peers; SIGHUP.
reconf() {
  printf '%s\n' "$1" >peers.txt
  awk '
    skip && /^    / { next }
    { skip = 0 }
    /^  peers:/ {
      n = 0
      while ((getline l < "peers.txt") > 0) if (l != "") { if (!n++) print "  peers:"; print l }
      if (!n) print "  peers: []"
      skip = 1; next
    }
    { print }' p0.good.yaml >p0.yaml
  kill -HUP "$(proxy_pid p0)"
}
entry() { printf '    - pid: %s\n      addr: "127.0.0.1:%s"\n      pubkey_sha256: %s\n' "$1" "$2" "$3"; }

# --- A: removed during a download ---------------------------------------------------
curl -sS --socks5 "127.0.0.1:$P1_SOCKS" --limit-rate 2M --max-time 60 \
  -o inflight "http://10.0.0.0:$H0/big" 2>inflight.err &
CURL=$!
track "$CURL"
_got_some() { [ "$(stat -c %s inflight 2>/dev/null || echo 0)" -ge 2000000 ]; }
wait_until 20 _got_some || fail "A: the download did not start"
reconf ""
t0=$(now)
wait_exit "$CURL" 15 || fail "A: the download from a removed party still runs 15 s later"
[ "$EXIT_STATUS" != 0 ] || fail "A: the download from a removed party completed"
log "A: the download ended $(elapsed "$t0") s after the removal (curl $EXIT_STATUS, $(file_size inflight) of $(file_size www/big) bytes)"
grep -q 'peers: peer 1 left the study' p0.log || fail "A: party 0 does not log the removal"
grep -q 'transport.quic: peer 1 at .*: connection down (the peer left the registry)' p0.log ||
  fail "A: party 0 does not close the connection saying why: $(grep 'peer 1' p0.log | tail -n 2)"
grep -q 'peers: peer 0 (10.0.0.0) down: closed by the peer' p1.log || fail "A: party 1 still thinks it is connected"
log "A: $(grep -m1 'connection down (the peer left the registry)' p0.log | sed 's/.*transport.quic: //; s/;.*//')"
log "A: party 1: $(grep -m1 'peers: peer 0 (10.0.0.0) down' p1.log | sed 's/.*peers: //')"
fetch_f 8 && fail "A: the removed party 1 still reaches party 0"

# --- B: back, with another pin ----------------------------------------------------------
reconf "$(entry 1 "$P1_UDP" "$ZERO_PIN")"
wait_until 10 grep -q "certificate pin $P1_PIN does not match the registry's $ZERO_PIN" p0.log ||
  fail "B: party 0 did not refuse the re-keyed party 1: $(grep 'peer 1' p0.log | tail -n 2)"
fetch_f 5 && fail "B: the re-keyed party 1 reaches party 0"
log "B: $(grep -m1 'does not match the registry' p0.log | sed 's/.*transport.quic: //')"

# --- C: one pin for two PIDs ------------------------------------------------------------
free_port U2 udp
reconf "$(entry 1 "$P1_UDP" "$P1_PIN")"$'\n'"$(entry 2 "$U2" "$P1_PIN")"
wait_until 15 grep -q "certificate pin $P1_PIN is published for PIDs 1 and 2" p0.log ||
  fail "C: no clear refusal of a shared pin: $(grep -E 'peer 1|pin' p0.log | tail -n 3)"
fetch_f 5 && fail "C: a pin shared by two PIDs was accepted"
log "C: $(grep -m1 'is published for PIDs' p0.log | sed 's/.*transport.quic: //')"

# --- D: the right entry -------------------------------------------------------------------
reconf "$(entry 1 "$P1_UDP" "$P1_PIN")"
wait_until 20 fetch_f 5 || fail "D: party 1 does not connect again: $(tail -n 2 curl.err)"
log "D: party 1 is back; 2 MiB sha256 equal"
stop_all
pass
