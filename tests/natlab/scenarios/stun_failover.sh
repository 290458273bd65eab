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
# a's mapping came from the second server; b's from the first
line=$(wait_log a "public address $(lab_wan_ip a):$LAB_UDP_PORT \\(from stun:$LAB_STUN_IP2:$LAB_STUN_PORT\\)" 5) || exit 1
log "a: ${line#* * }"
wait_log b "public address $(lab_wan_ip b):$LAB_UDP_PORT \\(from stun:$LAB_STUN_IP1:$LAB_STUN_PORT\\)" 5 >/dev/null || exit 1
lab_transfer b a "$MB"
lab_transfer a b "$MB"
lab_unblock a "$LAB_STUN_IP1:$LAB_STUN_PORT"
check_no_secrets
lab_proxy_stop_all
pass
