#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# A pair that needs the relay (a cone, b symmetric, relay mode auto) loses
# its TURN server: coturn is restarted (lab_restart_stun: same arguments,
# same user db), every allocation is gone. b must notice, allocate again,
# publish its new relayed address, and new connections must work again
# within 60 s of the restart: a SOCKS CONNECT answered 0x00, then a
# transfer each way. Logs the seconds it took and the new relayed address.
# a's own allocation (unused: a's cone NAT needs none) must be renewed
# within the 60 s too, not reported as allocated while it is gone.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"
lab_need_plugins relay_turn
LIMIT=60

lab_init
lab_start_stun
lab_add_party a cone
lab_add_party b symmetric
lab_start_website
export LAB_RELAY=auto
start_parties a b
ma="$(lab_wan_ip a):$LAB_UDP_PORT"
r1=$(relayed_of b) || exit 1
check_published b "^$(re "$r1")\$"
line=$(up_line b a relay "$ma" 30) || exit 1
log "b: $line"
lab_transfer b a 5

# the restart
nrel=$(grep -c 'daemon: relayed address' "$LAB_DIR/b/proxy.log")
nrel_a=$(grep -c 'daemon: relayed address' "$LAB_DIR/a/proxy.log")
[ "$nrel_a" -ge 1 ] || fail "a (relay mode auto) has no relayed address"
lab_serve a http "$LAB_DIR/a/www"
port=$LAB_SERVER_PORT
declare -A MARK=([a]=$(wc -l <"$LAB_DIR/a/proxy.log") [b]=$(wc -l <"$LAB_DIR/b/proxy.log"))
lab_restart_stun
t0=$(now)
# _left: whole seconds left of the LIMIT (at least 1)
_left() { awk -v t0="$t0" -v n="$(now)" -v l="$LIMIT" 'BEGIN{x = l - (n - t0); printf "%d", (x < 1 ? 1 : x)}'; }
# since_restart NAME: the party's log lines since the restart
since_restart() { tail -n +"$((MARK[$1] + 1))" "$LAB_DIR/$1/proxy.log"; }

# b allocates again and republishes
_reallocated() { [ "$(grep -c 'daemon: relayed address' "$LAB_DIR/b/proxy.log")" -gt "$nrel" ]; }
wait_until "$LIMIT" _reallocated || fail "b logged no new relayed address within $LIMIT s of the restart"
r2=$(relayed_of b) || exit 1
log "b allocated again $(elapsed "$t0") s after the restart: relayed address $r1 -> $r2"
since_restart b | grep -E 'relay\.turn|daemon: (relay|publishing)' | head -n 8 |
  while IFS= read -r l; do log "b: $(msg "$l")"; done
new=$(lab_wait_published b EXTERNAL_ADDR "^$(re "$r2")\$" "$(_left)") || exit 1
log "b republished $new $(elapsed "$t0") s after the restart"

# new connections work again
wait_until "$(_left)" _socks_ok b a "$port" || fail "no new connection b -> a within $LIMIT s of the restart ($(socks_reply b a "$port" 10))"
log "b -> a: SOCKS reply 0x00 $(elapsed "$t0") s after the restart"
LAB_TRANSFER_TIMEOUT=$(_left) lab_transfer b a 5
LAB_TRANSFER_TIMEOUT=$(_left) lab_transfer a b 5
dt=$(elapsed "$t0")
lt "$dt" "$LIMIT" || fail "the transfers after the restart ended $dt s after it (limit $LIMIT s)"
log "new connections and 5 MiB each way from each side work again $dt s after coturn's restart"
l=$(since_restart b | grep -E "peers: peer 0 \(10\.0\.0\.0\) up via relay $(re "$ma")" | tail -n 1)
[ -n "$l" ] || fail "b logged no 'up via relay' to a since the restart: $(since_restart b | grep 'peers:')"
log "b: $(msg "$l")"
l=$(since_restart a | grep -E "peers: peer 1 \(10\.0\.0\.1\) up via direct $(re "$r2")" | tail -n 1)
[ -n "$l" ] || fail "a logged no 'up via direct' from b's new relayed address $r2: $(since_restart a | grep 'peers:')"
log "a: $(msg "$l")"
check_peer_path b a relay "$ma" "no direct handshake within relay_fallback"
check_peer_path a b direct "$r2" "reached our address directly"
n=$(lab_turn_allocations)
[ "$n" -ge 1 ] || fail "the restarted coturn granted no allocation"
log "the restarted coturn granted $n allocation(s) ($(lab_turn_allocations_all) over both runs)"
# a's own allocation (auto, unused: a's cone NAT needs none) died with
# coturn too: a must not go on reporting it (and would publish it if its
# policy wanted the relay); it must notice and allocate again as well.
_a_reallocated() { [ "$(grep -c 'daemon: relayed address' "$LAB_DIR/a/proxy.log")" -gt "$nrel_a" ]; }
if ! wait_until "$(_left)" _a_reallocated; then
  since_restart a | grep -E 'relay\.turn' | head -n 6 | while IFS= read -r l; do log "a: $(msg "$l")"; done
  f=$(status_json a) || exit 1
  fail "a's TURN allocation died with coturn $(elapsed "$t0") s ago and a has not noticed:" \
    "status --json: relay $(jget "$f" relay.state) $(jget "$f" relay.address 2>/dev/null);" \
    "coturn answered $(grep -c 'error 400' "$LAB_DIR/turnserver.log") requests with 400 since its restart"
fi
line=$(since_restart a | grep -E 'daemon: relayed address' | tail -n 1)
log "a: allocated again $(elapsed "$t0") s after the restart: $(msg "$line")"
check_no_secrets
lab_proxy_stop_all
pass "back $dt s after coturn's restart; b's relayed address $r1 -> $r2"
