#!/bin/bash
# The queue governor on a real path. a's downlink is a 20 Mbit/s bottleneck
# with a deep queue (tbf on a's NAT router, 500 kB: 200 ms), and b sends
# with CUBIC, which fills any queue. While a downloads a file from b, it
# runs 100 request/response rounds to an echo server in b's host on a
# second connection. b's governor turns on (status: peers[a].queue_cap > 0,
# the cap on bulk data in flight), every answer equals its message, and the
# download arrives intact (SHA-256): holding bulk data back loses nothing.
# Under the sanitizers (SFK_SANITIZERS=yes) the file is 10 MiB.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"
need tc curl
if [ "$SFK_SANITIZERS" = yes ]; then MB=${SFK_LAB_MB:-10}; else MB=${SFK_LAB_MB:-20}; fi

lab_init
lab_start_stun
lab_add_party a cone
lab_add_party b cone
lab_start_website
LAB_TRANSPORT_EXTRA='  congestion: cubic' start_parties a b
check_published a
check_published b
lab_rate a 20mbit 500000
pid_a=${LAB_PROXY_PARTY_PID[a]} pid_b=${LAB_PROXY_PARTY_PID[b]}

serve_file b "$MB"
http_port=$LAB_SERVER_PORT
lab_serve b echo
echo_port=$LAB_SERVER_PORT

got=$LAB_DIR/a/file$MB
lab_exec a curl -sS --fail --max-time 120 --socks5 "127.0.0.1:$LAB_SOCKS_PORT" \
  -o "$got" "http://10.0.0.$pid_b:$http_port/file$MB" 2>"$LAB_DIR/a/curl.err" &
curl_pid=$!
# The rounds start once the download is under way (its first bytes are in).
wait_until 30 _nonempty "$got" || fail "the download did not start: $(cat "$LAB_DIR/a/curl.err")"
lab_exec a "$PY" "$SFK_SRCDIR/tests/natlab/pingpong.py" "127.0.0.1:$LAB_SOCKS_PORT" \
  "10.0.0.$pid_b" "$echo_port" --rounds 100 >"$LAB_DIR/a/pingpong.out" 2>&1 &
pp_pid=$!

# The governor holds bulk data while the rounds run (and 5 s after).
_governed() {
  local f v
  f=$(status_json b) || return 1
  v=$(jget "$f" "peers[$pid_a].queue_cap" 2>/dev/null) || return 1
  [ "$v" -gt 0 ] 2>/dev/null || return 1
  # on: the short queue of the rounds, not the ceiling of queue_ceiling.sh
  [ "$(jget "$f" "peers[$pid_a].queue" 2>/dev/null)" = on ]
}
wait_until 30 _governed ||
  fail "b's governor never capped the bulk data: $(cat "$LAB_DIR/b/status.json")"
cap=$(jget "$LAB_DIR/b/status.json" "peers[$pid_a].queue_cap")
log "b caps bulk data in flight to a at $cap bytes"

wait "$pp_pid" || fail "request/response rounds failed: $(cat "$LAB_DIR/a/pingpong.out")"
grep -q '^rounds=100 ' "$LAB_DIR/a/pingpong.out" || fail "rounds: $(cat "$LAB_DIR/a/pingpong.out")"
log "a: $(cat "$LAB_DIR/a/pingpong.out") (next to the download)"
wait "$curl_pid" || fail "the download failed: $(cat "$LAB_DIR/a/curl.err")"
[ "$(sha_file "$got")" = "$(sha_file "$www/file$MB")" ] || fail "the download's sha256 differs"
log "a <- b: $MB MiB intact"
lab_rate a off
lab_proxy_stop_all
pass "governor on (cap $cap bytes) next to a $MB MiB download at 20 Mbit/s: 100 rounds answered, the file intact"
