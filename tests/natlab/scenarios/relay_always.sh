#!/bin/bash
# shellcheck disable=SC2119 # optional arguments
# Two parties behind cone NATs (a direct path would work) with relay mode
# always (site policy): each allocates, publishes its relayed address
# ("relay mode is 'always'"), and the pair talks only through coturn: each
# is "up via relay" at the other's relayed address, never via direct, and
# `status --json` says so (path and path_why). RELAY_MB (50) MiB each way
# from each side, SHA-256 equal, all of it through coturn's relayed
# addresses; coturn granted at least two allocations.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"
lab_need_plugins relay_turn

lab_init
lab_start_stun
lab_add_party a cone
lab_add_party b cone
lab_start_website
export LAB_RELAY=always
start_parties a b

declare -A R
for n in a b; do
  R[$n]=$(relayed_of "$n") || exit 1
  check_published "$n" "^$(re "${R[$n]}")\$"
  line=$(wait_log "$n" "daemon: publishing $(re "${R[$n]}") \\(relay mode is 'always'\\)" 5) || exit 1
  log "$n (cone, always): $(msg "$line")"
  ! grep -q "daemon: publishing $(re "$(lab_wan_ip "$n")"):" "$LAB_DIR/$n/proxy.log" ||
    fail "$n published its mapping in relay mode always: $(grep 'daemon: publishing' "$LAB_DIR/$n/proxy.log")"
  v=$(check_status "$n" relay.mode '^always$') || exit 1
done

relay_pair_transfer "relay mode 'always'" "in relay mode always"
check_no_secrets
lab_proxy_stop_all
pass "a ${R[a]} <-> b ${R[b]} through the relay only, $RELAY_MB MiB each way from each side"
