#!/bin/bash
# shellcheck disable=SC2119 # optional arguments
# Party a behind a cone NAT, party b behind a symmetric one (a new port per
# destination), relay mode auto, coturn as TURN server (long-term
# credentials). No punch can work, so:
# - b publishes its relayed address, and says why (its NAT maps each
#   destination to its own port); a publishes its public mapping;
# - b (the QUIC client, PID 1) tries the direct path first, logs that it
#   got no handshake in 5 s and dials a through the relay; b sees a "up via
#   relay", a sees b "up via direct" from b's relayed address (a talks to
#   it on its own socket), and `status --json` of each shows that path
#   and why (path_why);
# - RELAY_MB (50) MiB each way from each side with curl through the SOCKS
#   port, SHA-256 equal, and a fetch with an
#   unmodified curl under proxychains4; the bytes went through coturn's
#   relayed addresses (iptables counters in the internet namespace).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"
lab_need_plugins relay_turn

lab_init
lab_start_stun
lab_add_party a cone
lab_add_party b symmetric
lab_start_website
export LAB_RELAY=auto
start_parties a b

# what each publishes, and why
ma="$(lab_wan_ip a):$LAB_UDP_PORT" # a cone NAT keeps the port
check_published a "^$(re "$ma")\$"
rb=$(relayed_of b) || exit 1
check_published b "^$(re "$rb")\$"
line=$(wait_log b "daemon: publishing $(re "$rb") \\(this NAT maps each destination to its own port" 5) || exit 1
log "b (symmetric): $(msg "$line")"
line=$(wait_log a "daemon: publishing $(re "$ma") \\(public mapping\\)" 5) || exit 1
log "a (cone): $(msg "$line")"
! grep -q "daemon: publishing $(re "$LAB_STUN_IP1"):" "$LAB_DIR/a/proxy.log" ||
  fail "a (cone, auto) published a relayed address: $(grep 'daemon: publishing' "$LAB_DIR/a/proxy.log")"

# the path each side chose, and why
line=$(wait_log b 'transport\.quic: peer 0: no direct handshake in 5 ?s; trying the relay' 30) || exit 1
log "b: $(msg "$line")"
line=$(up_line b a relay "$ma" 20) || exit 1
log "b: $line"
line=$(up_line a b direct "$rb" 20) || exit 1
log "a: $line"
! grep -q 'peers: peer 0 (10\.0\.0\.0) up via direct' "$LAB_DIR/b/proxy.log" ||
  fail "b was up via direct to a through its symmetric NAT: $(grep 'up via' "$LAB_DIR/b/proxy.log")"
check_peer_path b a relay "$ma" "no direct handshake within relay_fallback"
check_peer_path a b direct "$rb" "reached our address directly"
v=$(check_status b relay.state '^allocated$') && v=$(check_status b relay.address "^$(re "$rb")\$") || exit 1
log "b: status --json: relay allocated, address $v"

lab_transfer b a "$RELAY_MB"
lab_transfer a b "$RELAY_MB"
pc_fetch b a 5
check_relay_bytes $((2 * RELAY_MB))
n=$(lab_turn_allocations)
[ "$n" -ge 1 ] || fail "no TURN allocation: the transfer cannot have gone direct through a symmetric NAT"
log "coturn granted $n allocation(s)"
# still the same paths after the transfers
check_peer_path b a relay "$ma" "no direct handshake within relay_fallback"
check_peer_path a b direct "$rb" "reached our address directly"
check_no_secrets
lab_proxy_stop_all
pass "b <-> a via b's relayed address $rb, $RELAY_MB MiB each way from each side"
