#!/bin/bash
# shellcheck disable=SC2119 # optional arguments
# Party 1 behind a symmetric NAT: no punch can work, so with relay mode auto
# the pair falls back to coturn's TURN relay (long-term credentials). The
# symmetric party publishes its relayed address (SPEC: "or its TURN relayed
# address") or its mapping; either way the transfer must go through.
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
check_published a
check_published b "^($(lab_wan_ip b)|$LAB_STUN_IP1):[0-9]+\$"
lab_transfer b a "$MB"
lab_transfer a b "$MB"
n=$(lab_turn_allocations)
[ "$n" -ge 1 ] || fail "no TURN allocation: the transfer cannot have gone direct through a symmetric NAT"
log "coturn granted $n allocation(s)"
check_no_secrets
lab_proxy_stop_all
pass
