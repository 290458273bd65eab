#!/bin/bash
# shellcheck disable=SC2119 # optional arguments
# The first STUN server is unreachable for party 0 (dropped by its router):
# discovery must fall back to the second server and the pair must connect.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"

lab_init
lab_start_stun
lab_add_party a cone
lab_add_party b cone
lab_start_website
lab_block a "$LAB_STUN_IP1:$LAB_STUN_PORT"
start_parties a b
check_published a
check_published b
lab_transfer b a "$MB"
lab_unblock a "$LAB_STUN_IP1:$LAB_STUN_PORT"
check_no_secrets
lab_proxy_stop_all
pass
