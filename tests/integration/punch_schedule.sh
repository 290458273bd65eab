#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# The lower PID punches towards the higher PID on a bounded, logged
# schedule: every 500 ms for 10 s (one info line when it starts, one when
# the fast phase gives up), then every 5 s; the peer that starts late
# still connects.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

cd "$T" || fail "cd $T"
SFK_LOG_LEVEL=debug make_pair
start_proxy p0 p0.yaml
grep -q "transport.quic: peer 1: punching towards 127.0.0.1:$P1_UDP every 500 ms until its handshake arrives" p0.log ||
  wait_until 5 grep -q 'punching towards' p0.log ||
  fail "party 0 did not say it started punching"
_summary() { grep -q 'transport.quic: peer 1: no handshake after [0-9]* punches in 10 s; punching every 5 s' p0.log; }
wait_until 15 _summary || fail "no summary of the fast punch phase within 15 s"
line=$(grep -m1 'no handshake after' p0.log)
n=$(sed 's/.*after \([0-9]*\) punches.*/\1/' <<<"$line")
[ "$n" -ge 19 ] && [ "$n" -le 22 ] || fail "fast phase sent $n punches, not about 20: $line"
log "$line"
# the slow phase: the next punch comes 5 s after the last fast one
_count() { [ "$(grep -c 'transport.quic: peer 1: punch [0-9]* to' p0.log)" -ge $((n + 1)) ]; }
wait_until 8 _count || fail "no punch of the slow phase within 8 s"
# punch_at K: time of day (seconds) of punch K's debug line
punch_at() {
  grep -m1 "transport.quic: peer 1: punch $1 to" p0.log |
    awk '{split(substr($1, 12, 12), t, ":"); printf "%.3f", t[1] * 3600 + t[2] * 60 + t[3]}'
}
gap=$(awk -v a="$(punch_at "$n")" -v b="$(punch_at $((n + 1)))" 'BEGIN{printf "%.1f", b - a}')
lt 4.5 "$gap" && lt "$gap" 5.5 || fail "slow phase: $gap s between punches $n and $((n + 1)), not 5 s"
log "slow phase: punch $((n + 1)) came $gap s after punch $n"
grep 'peers: peer 1 (10.0.0.1) connecting via direct' p0.log >/dev/null ||
  fail "party 0 did not report peer 1 connecting"

start_proxy p1 p1.yaml
_up() { grep -q 'peers: peer 1 (10.0.0.1) up via direct' p0.log; }
wait_until 10 _up || fail "the late peer did not connect within 10 s"
log "$(grep -m1 'peers: peer 1 (10.0.0.1) up' p0.log)"
stop_all
pass
