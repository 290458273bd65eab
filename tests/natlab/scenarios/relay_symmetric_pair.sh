#!/bin/bash
# shellcheck disable=SC2119 # optional arguments
# Both parties behind symmetric NATs, relay mode auto: neither mapping is
# reachable, so both publish their TURN relayed addresses (and say why),
# the QUIC client (b, PID 1) gives up the direct path after 5 s and dials
# a's relayed address from its own allocation: each is "up via relay" at
# the other's relayed address, and `status --json` says so (path and
# path_why). RELAY_MB (50) MiB each way from each side, SHA-256 equal, all
# of it through coturn's relayed addresses.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"
lab_need_plugins relay_turn

lab_init
lab_start_stun
lab_add_party a symmetric
lab_add_party b symmetric
lab_start_website
export LAB_RELAY=auto
start_parties a b

declare -A R
for n in a b; do
  R[$n]=$(relayed_of "$n") || exit 1
  check_published "$n" "^$(re "${R[$n]}")\$"
  line=$(wait_log "$n" "daemon: publishing $(re "${R[$n]}") \\(this NAT maps each destination to its own port" 5) || exit 1
  log "$n (symmetric): $(msg "$line")"
done
[ "${R[a]}" != "${R[b]}" ] || fail "a and b got the same relayed address ${R[a]}"

line=$(wait_log b 'transport\.quic: peer 0: no direct handshake in 5 ?s; trying the relay' 30) || exit 1
log "b: $(msg "$line")"
relay_pair_transfer "no direct handshake within relay_fallback" "between two symmetric NATs"
check_no_secrets
lab_proxy_stop_all
pass "a ${R[a]} <-> b ${R[b]}, both through the relay, $RELAY_MB MiB each way from each side"
