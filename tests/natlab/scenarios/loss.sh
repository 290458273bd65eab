#!/bin/bash
# shellcheck disable=SC2119 # optional arguments
# 2 % random packet loss each way on party a's NAT router (iptables
# statistic; with the lab's offloads off, one drop is one datagram): a
# 50 MiB transfer each way between two cone parties arrives intact
# (SHA-256), and the router's counters show that datagrams were dropped.
# Under the sanitizers (SFK_SANITIZERS=yes) the transfer is 20 MiB.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"
if [ "$SFK_SANITIZERS" = yes ]; then MB=${SFK_LAB_MB:-20}; else MB=${SFK_LAB_MB:-50}; fi

lab_init
lab_start_stun
lab_add_party a cone
lab_add_party b cone
lab_start_website
start_parties a b
check_published a
check_published b
lab_loss a 2
LAB_TRANSFER_TIMEOUT=120 lab_transfer b a "$MB"
drops=$(lab_router_exec a iptables -w -L FORWARD -v -n -x | awk '/sfk-lab-loss-a/ {s += $1} END {print s + 0}')
[ "$drops" -gt 0 ] || fail "the loss rules dropped nothing"
log "a's router dropped $drops packets during the transfer"
lab_loss a 0
check_no_secrets
lab_proxy_stop_all
pass "$MB MiB each way intact at 2 % loss ($drops packets dropped)"
