#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# A peer that goes silent (SIGKILL: no CONNECTION_CLOSE, no stateless
# reset until it is back) is declared down within 30 s with the default
# settings (keepalive 5 s, peer_timeout 20 s), not at the 24 h idle
# timeout: an idle stream to it ends with a reset, the log says the peer
# went down and why, and once it is restarted transfers work both ways
# (SHA-256 checked).  First the QUIC server (party 0) dies, then the
# client (party 1).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need curl

cd "$T" || fail "cd $T"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy
make_pair
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
mkdir www
make_file www/f 8
start_server http0 http www
H0=$SERVER_PORT
start_server http1 http www
H1=$SERVER_PORT
start_server echo0 echo
E0=$SERVER_PORT
start_server echo1 echo
E1=$SERVER_PORT

# hold NAME SOCKS_PORT ADDR PORT: an idle stream in the background; its
# output ($T/NAME.out): "0x00", then "eof" or "closed" when it ends.
hold() {
  timeout 120 "$PY" "$SOCKS_CLIENT" "127.0.0.1:$2" "$3" "$4" --hold >"$T/$1.out" 2>"$T/$1.err" &
  track $!
  wait_lines "$T/$1.out" 1 20
  [ "$(head -n 1 "$T/$1.out")" = 0x00 ] || fail "$1: SOCKS reply $(cat "$T/$1.out")"
}

# transfer VIA_SOCKS ADDR PORT WHAT: 8 MiB over HTTP, sha256 checked.
transfer() {
  local got
  got=$(curl -sS --fail --max-time 60 --socks5 "127.0.0.1:$1" "http://$2:$3/f" 2>curl.err | sha_stdin) ||
    fail "$4: download failed: $(cat curl.err)"
  [ "$got" = "$(sha_file www/f)" ] || fail "$4: sha256 differs"
  log "$4: 8 MiB, sha256 equal"
}

_down() { grep -qF "$DOWN_LINE" "$DOWN_LOG"; }

# silent_peer VICTIM SURVIVOR SURVIVOR_SOCKS VICTIM_VADDR VICTIM_ECHO VICTIM_PID
silent_peer() {
  local t0 dt end
  hold "hold_$2" "$3" "$4" "$5"
  # let keep-alives run for a while first: the timeout must not count
  # from the stream's start
  sleep 1
  kill_proxy "$1"
  t0=$(now)
  log "SIGKILL to $1's proxy; $2 holds an idle stream to it"
  wait_until 30 _lines_at_least "$T/hold_$2.out" 2 ||
    fail "$2's stream to the dead peer still open 30 s after the kill"
  dt=$(elapsed "$t0")
  end=$(sed -n 2p "$T/hold_$2.out")
  [ "$end" = closed ] || fail "$2's stream ended with '$end', not a reset, after $dt s"
  lt "$dt" 30 || fail "$2 took $dt s"
  log "$2's stream to the dead peer reset after $dt s"
  DOWN_LINE="peers: peer $6 ($4) down: no packets from the peer for 20 s"
  DOWN_LOG=$T/$2.log
  wait_until 5 _down || fail "$2.log does not say '$DOWN_LINE'"
  log "$(grep -m1 -F "$DOWN_LINE" "$DOWN_LOG")"
}

# --- the QUIC server (party 0) dies --------------------------------------------------
silent_peer p0 p1 "$P1_SOCKS" 10.0.0.0 "$E0" 0
start_proxy p0r p0.yaml
_up1() { [ "$(grep -c 'peers: peer 0 (10.0.0.0) up' p1.log)" -ge 2 ]; }
wait_until 20 _up1 || fail "party 1 did not reconnect to the restarted party 0 within 20 s"
transfer "$P1_SOCKS" 10.0.0.0 "$H0" "after party 0's restart, via party 1"
transfer "$P0_SOCKS" 10.0.0.1 "$H1" "after party 0's restart, via party 0"

# --- the QUIC client (party 1) dies ----------------------------------------------------
silent_peer p1 p0r "$P0_SOCKS" 10.0.0.1 "$E1" 1
start_proxy p1r p1.yaml
_up0() { [ "$(grep -c 'peers: peer 1 (10.0.0.1) up' p0r.log)" -ge 2 ]; }
wait_until 20 _up0 || fail "the restarted party 1 did not connect within 20 s"
transfer "$P1_SOCKS" 10.0.0.0 "$H0" "after party 1's restart, via party 1"
transfer "$P0_SOCKS" 10.0.0.1 "$H1" "after party 1's restart, via party 0"

stop_all
pass
