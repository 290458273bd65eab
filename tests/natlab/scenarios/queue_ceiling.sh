#!/bin/bash
# The queue governor's ceiling, with no round trips at all. a's downlink is
# a 20 Mbit/s bottleneck with a deep queue (tbf on a's NAT router, 500 kB:
# 200 ms); b sends with the default congestion control (BBR on a network
# path). While a downloads a file from b, b's status shows the governor
# off (no round trips ran) and a cap on bulk data in flight all the same
# (peers[a].queue_cap > 0: the ceiling, which keeps at most about 4/5
# of a round trip of data queued, and queue_delay's worth at least); the
# router's queue, read every 100 ms, has a median under a quarter of its
# size; and the file arrives intact (SHA-256): the cap loses nothing.
# With `queue: off` there is no cap and the test fails. (The ceiling's
# effect shows on long fast paths, where BBR's rate estimate runs high:
# bench/wan, docs/performance.md.) Under the sanitizers the file is 10 MiB.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"
need tc curl
if [ "$SFK_SANITIZERS" = yes ]; then MB=${SFK_LAB_MB:-10}; else MB=${SFK_LAB_MB:-20}; fi
LIMIT=500000

lab_init
lab_start_stun
lab_add_party a cone
lab_add_party b cone
lab_start_website
LAB_TRANSPORT_EXTRA=${SFK_QUEUE_EXTRA:-} start_parties a b
check_published a
check_published b
lab_rate a 20mbit "$LIMIT"
pid_a=${LAB_PROXY_PARTY_PID[a]} pid_b=${LAB_PROXY_PARTY_PID[b]}

serve_file b "$MB"
http_port=$LAB_SERVER_PORT

got=$LAB_DIR/a/file$MB
lab_exec a curl -sS --fail --max-time 120 --socks5 "127.0.0.1:$LAB_SOCKS_PORT" \
  -o "$got" "http://10.0.0.$pid_b:$http_port/file$MB" 2>"$LAB_DIR/a/curl.err" &
curl_pid=$!
# The queue while the download runs, from its third MiB on (past slow start).
_grown() { [ -s "$got" ] && [ "$(file_size "$got")" -gt 2097152 ]; }
wait_until 60 _grown || fail "the download did not get going: $(cat "$LAB_DIR/a/curl.err")"
_capped() {
  local f v
  f=$(status_json b) || return 1
  v=$(jget "$f" "peers[$pid_a].queue_cap" 2>/dev/null) || return 1
  [ "$v" -gt 0 ] 2>/dev/null
}
wait_until 30 _capped ||
  fail "b's ceiling never capped the bulk data: $(cat "$LAB_DIR/b/status.json")"
cap=$(jget "$LAB_DIR/b/status.json" "peers[$pid_a].queue_cap")
mode=$(jget "$LAB_DIR/b/status.json" "peers[$pid_a].queue")
[ "$mode" = off ] || fail "b's governor was '$mode' with no round trips running"
log "b caps bulk data in flight to a at $cap bytes (governor $mode)"
samples=()
while lab_alive "$curl_pid" && [ "${#samples[@]}" -lt 40 ]; do
  samples+=("$(lab_backlog a)")
  sleep 0.1
done
wait "$curl_pid" || fail "the download failed: $(cat "$LAB_DIR/a/curl.err")"
[ "$(sha_file "$got")" = "$(sha_file "$www/file$MB")" ] || fail "the download's sha256 differs"
[ "${#samples[@]}" -ge 10 ] || fail "only ${#samples[@]} samples of the queue: the download ended too soon"
median=$(printf '%s\n' "${samples[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
log "a's router queue during the download: median $median bytes of $LIMIT (${#samples[@]} samples: ${samples[*]})"
[ "$median" -lt $((LIMIT / 4)) ] ||
  fail "the bulk transfer kept the router's queue full: median $median bytes of $LIMIT"
lab_rate a off
lab_proxy_stop_all
pass "a $MB MiB download at 20 Mbit/s, no round trips: bulk capped at $cap bytes in flight, the 500 kB router queue at $median bytes (median), the file intact"
