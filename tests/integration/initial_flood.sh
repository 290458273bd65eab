#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# A flood of QUIC client Initials cannot keep a registered peer out.  While
# tests/tools/quic_initial_flood hammers party 0's UDP port with real
# ClientHellos that never go on (200 a second: 64 sources on 127.0.0.1 and
# 200 on 127.0.0.2-.201, each Initial a new connection that would hold a
# handshake until handshake_timeout), party 1
#   1. starts and moves a 4 MiB file, sha256 checked, within 20 s;
#   2. is killed and restarted, and does that again;
#   3. dials from an address party 0 does not know it by (party 0 restarted
#      with a wrong published port for it: a peer-reflexive client), and
#      still gets in within 20 s (through a Retry under load);
#   4. restarts there, and is admitted as a known address (one its
#      verified connection used), without a Retry;
# and 5. one source sending 200 Initials in 2 s gets at most 3 Retries a
#      second (QUIC_RETRY_PER_SOURCE): party 0 counts the rest as
#      retry_rate_limited.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need curl

FLOOD_TOOL=${SFK_TOOLS_DIR:-$(dirname "$(dirname "$SFKIT_PROXY")")/tests/tools}/quic_initial_flood
[ -x "$FLOOD_TOOL" ] || skip "$FLOOD_TOOL is not built (make check builds it)"

cd "$T" || fail "cd $T"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy
# handshake_timeout stays at its default (10 s): the attack's premise.
TEXTRA="$(printf '  keepalive: 1s\n  peer_timeout: 20s')"
make_pair "$TEXTRA"
printf 'control:\n  socket: run0/control.sock\n' >>p0.yaml
mkdir www
make_file www/f 4
start_server http0 http www
H0=$SERVER_PORT

# fetch_f (lib.sh): 4 MiB from party 0's web server through party 1, sha256 checked.
status0() {
  timeout 20 "$SFKIT_PROXY" status -c "$T/p0.yaml" >"$T/p0.status" 2>"$T/p0.status.err"
}
# stat_num NAME: a counter of party 0's transport in p0.status.
stat_num() { sed -n '/^transport.quic:/,$p' p0.status | awk -v k="$1:" '$1 == k {print $2; exit}'; }

start_proxy p0 p0.yaml

"$FLOOD_TOOL" --rate 100 --sources 64 --progress 100 "127.0.0.1:$P0_UDP" >flood1.out 2>flood1.err &
FLOOD1=$!
track "$FLOOD1"
"$FLOOD_TOOL" --rate 100 --sources 200 --spread --progress 100 "127.0.0.1:$P0_UDP" >flood2.out 2>flood2.err &
FLOOD2=$!
track "$FLOOD2"
wait_until 10 _nonempty flood1.out || fail "flood 1 did not start: $(cat flood1.err)"
wait_until 10 _nonempty flood2.out || fail "flood 2 did not start: $(cat flood2.err)"
sleep 1 # every handshake slot a flood can take is taken
flooded() { echo "$(($(tail -n 1 flood1.out) + $(tail -n 1 flood2.out)))"; }

# --- 1. party 1 starts under the flood ----------------------------------------
start_proxy p1 p1.yaml
t0=$(now)
wait_until 20 fetch_f || fail "party 1 moved no file within 20 s of its start under a flood of $(flooded) Initials: $(tail -n 2 curl.err)"
log "1. under a flood of $(flooded)+ Initials: party 1 started and moved 4 MiB (sha256 equal) in $(elapsed "$t0") s"

# --- 2. party 1 restarts under the flood ----------------------------------------
kill_proxy p1
start_proxy p1r p1.yaml
t0=$(now)
wait_until 20 fetch_f || fail "party 1 moved no file within 20 s of its restart under the flood: $(tail -n 2 curl.err)"
log "2. after a restart of party 1 (flood at $(flooded)): 4 MiB again in $(elapsed "$t0") s"

# --- 3. party 1 from an address party 0 does not know -----------------------------
# Party 0 restarts believing party 1 publishes another port; party 1 starts
# once the flood has loaded party 0 again, so its Initials meet a Retry.
free_port BOGUS udp
kill_proxy p1r
stop_proxy p0
write_config p0.yaml 0 "$P0_SOCKS" "$P0_UDP" p0.key "1,$BOGUS,$P1_PIN" "$TEXTRA"
printf 'control:\n  socket: run0/control.sock\n' >>p0.yaml
start_proxy p0r p0.yaml
sleep 1
start_proxy p1b p1.yaml
t0=$(now)
wait_until 20 fetch_f || fail "party 1 (peer-reflexive) moved no file within 20 s of its start under the flood: $(tail -n 2 curl.err)"
log "3. party 1 from an unpublished address (flood at $(flooded)): 4 MiB in $(elapsed "$t0") s"
status0 || fail "status of party 0 failed: $(cat p0.status.err)"
VALIDATED=$(stat_num address_validated)
KNOWN=$(stat_num from_known_address)
[ "$VALIDATED" -ge 1 ] || fail "party 1 got in without a Retry (address_validated $VALIDATED): the test did not load party 0"
log "   party 0: retries_sent $(stat_num retries_sent), address_validated $VALIDATED"

# --- 4. and restarts: now from an address party 0 saw it verified at -------------
kill_proxy p1b
start_proxy p1c p1.yaml
t0=$(now)
wait_until 20 fetch_f || fail "party 1 (peer-reflexive) moved no file within 20 s of its restart under the flood: $(tail -n 2 curl.err)"
log "4. party 1 restarted at that address (flood at $(flooded)): 4 MiB in $(elapsed "$t0") s"
status0 || fail "status of party 0 failed: $(cat p0.status.err)"
[ "$(stat_num from_known_address)" -gt "$KNOWN" ] ||
  fail "party 1's restart was not admitted as a known address (from_known_address $(stat_num from_known_address))"
[ "$(stat_num address_validated)" = "$VALIDATED" ] ||
  fail "party 1's restart from a recently verified address needed a Retry"
# --- 5. one source cannot draw a Retry for every Initial -------------------------
L0=$(stat_num retry_rate_limited)
timeout 20 "$FLOOD_TOOL" --rate 100 --sources 1 --duration 2 "127.0.0.1:$P0_UDP" >flood3.out 2>flood3.err ||
  fail "the one-source flood failed: $(cat flood3.err)"
status0 || fail "status of party 0 failed: $(cat p0.status.err)"
L1=$(stat_num retry_rate_limited)
# 200 Initials: at most 3 Retries in each of 2-3 seconds, a few more when
# a flood source sharing its slot restarts the count
[ "$((L1 - L0))" -ge 150 ] ||
  fail "one source sent 200 Initials in 2 s and only $((L1 - L0)) were refused a Retry (retry_rate_limited $L0 -> $L1)"
log "5. one source, 200 Initials in 2 s: $((L1 - L0)) got no Retry (its budget is 3 a second)"
log "party 0's transport: $(sed -n '/^transport.quic:/,$p' p0.status | grep -E 'accepted|handshakes_failed|known|validated|retries|evicted|too_many|bad_retry|retry_rate' | tr -s ' ' | tr '\n' ';')"
kill "$FLOOD1" "$FLOOD2"
wait "$FLOOD1" "$FLOOD2" 2>/dev/null
log "floods: $(tail -n 1 flood1.out), $(tail -n 1 flood2.out)"
assert_alive p0r
stop_all
pass
