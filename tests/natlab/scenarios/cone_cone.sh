#!/bin/bash
# shellcheck disable=SC2119 # optional arguments
# Two parties behind cone NATs: each learns its mapping from coturn (STUN),
# publishes it and its pin on the website double, punches through both NATs,
# and carries transfers both ways on the direct path (no TURN configured).
# Then a NAT rebinding of party 0: it republishes, and traffic goes on.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"

lab_init
lab_start_stun
lab_add_party a cone
lab_add_party b cone
lab_start_website
start_parties a b
check_published a "^$(lab_wan_ip a):$LAB_UDP_PORT\$" # a cone NAT keeps the port
check_published b "^$(lab_wan_ip b):$LAB_UDP_PORT\$"
lab_transfer b a "$MB"
lab_transfer a b "$MB"
[ "$(lab_turn_allocations)" = 0 ] || fail "a TURN allocation on a direct path"

old=$(lab_published a EXTERNAL_ADDR)
lab_rebind a
# the new mapping is only made by a's next datagram (keepalive 5s in the config)
new=$(lab_wait_published a EXTERNAL_ADDR "^$(lab_wan_ip a):2[0-9]{4}\$" 60) || exit 1
[ "$new" != "$old" ] || fail "a did not republish after the rebinding"
log "a republished after the rebinding: $old -> $new"
lab_transfer b a 5
lab_website_updates
check_no_secrets
lab_proxy_stop_all
pass
