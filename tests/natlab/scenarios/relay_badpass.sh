#!/bin/bash
# shellcheck disable=SC2119 # optional arguments
# A wrong TURN password on one side. a (cone) has a turn.pass that coturn
# refuses, b (cone) the right one; relay mode auto for both.
# - a logs one clear error naming the server and the reason (401), the
#   daemon says the relay is unavailable, and `status` (text and --json)
#   of a shows the relay unavailable with that reason;
# - no retry storm: over the first 20 s coturn sees at most 4 Allocate
#   requests with a's wrong credentials (the plugin waits 60 s, then
#   doubles);
# - a and b still reach each other on the direct path (both NATs are
#   cone): "up via direct" both sides, transfers both ways, and no bytes
#   through coturn's relayed addresses;
# - neither password appears in any log.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"
lab_need_plugins relay_turn
WINDOW=20 # seconds of a's life in which its Allocate attempts are counted
MAX_TRIES=4

lab_init
lab_start_stun
lab_add_party a cone
lab_add_party b cone
lab_start_website
export LAB_RELAY=auto
lab_party_config a 0
conf_a=$LAB_CONF
badpass=wrong-$RANDOM$RANDOM
printf '%s\n' "$badpass" >"$LAB_DIR/a/turn.pass"
chmod 600 "$LAB_DIR/a/turn.pass"
t0=$(now)
lab_proxy_start a 0 "$conf_a"
lab_party_config b 1
lab_proxy_start b 1 "$LAB_CONF"
server="turn:$LAB_STUN_IP1:$LAB_STUN_PORT"

# a says what went wrong, once, naming the server and the reason
line=$(wait_log a 'error +relay\.turn: .*refused' 20) || exit 1
[[ $line == *"$server"* && $line == *401* ]] || fail "a's error does not name $server and 401: $line"
log "a: $(msg "$line")"
line=$(wait_log a 'daemon: relay unavailable: .+' 5) || exit 1
log "a: $(msg "$line")"
rb=$(relayed_of b) || exit 1
log "b (right password): relayed address $rb"

# the direct path still works, both ways
ma="$(lab_wan_ip a):$LAB_UDP_PORT"
mb="$(lab_wan_ip b):$LAB_UDP_PORT"
check_published a "^$(re "$ma")\$"
check_published b "^$(re "$mb")\$"
line=$(up_line b a direct "$ma" 20) || exit 1
log "b: $line"
line=$(up_line a b direct "$mb" 20) || exit 1
log "a: $line"
check_peer_path a b direct "$mb" "reached our address directly"
check_peer_path b a direct "$ma" "relay mode 'auto'"
lab_transfer b a 5
lab_transfer a b 5
read -r rin rout <<<"$(lab_relay_bytes)"
((rin < 1048576 && rout < 1048576)) ||
  fail "$rin bytes in / $rout out through coturn's relayed addresses on a direct pair"
! grep -q 'trying the relay\|up via relay' "$LAB_DIR/a/proxy.log" "$LAB_DIR/b/proxy.log" ||
  fail "the cone pair used the relay: $(grep -h 'trying the relay\|up via relay' "$LAB_DIR"/[ab]/proxy.log)"

# status of a: the relay is unavailable, and why
st=$(status_of a) || exit 1
printf '%s\n' "----- status of a (relay part) -----"
awk '/^relay:/ {p = 1; print; next} p && /^[^ ]/ {p = 0} p' <<<"$st"
grep -iq 'unavailable' <<<"$st" || fail "status of a does not say the relay is unavailable: $st"
grep -q '401' <<<"$st" || fail "status of a does not give the reason (401): $st"
v=$(check_status a relay.state '^unavailable$') || exit 1
f=$(status_json a) || exit 1
why=$(jget "$f" relay.why 2>/dev/null || jget "$f" relay.error) || fail "status --json of a: no relay why/error: $(cat "$f")"
[[ $why == *401* ]] || fail "status --json of a: relay why '$why' does not give the reason (401)"
log "a: status --json: relay $v: $why"
v=$(check_status b relay.state '^allocated$') || exit 1
log "b: status --json: relay $v"

# no retry storm: count over the first WINDOW s of a's life (a measuring
# window, not a synchronisation: the count is what happened in it)
left=$(awk -v t0="$t0" -v n="$(now)" -v w="$WINDOW" 'BEGIN{x = w - (n - t0); printf "%.2f", (x > 0 ? x : 0)}')
sleep "$left"
tries=$(grep -c 'check_stun_auth: user .* credentials are incorrect' "$LAB_DIR/turnserver.log")
errs=$(grep -Ec 'error +relay\.turn: .*refused' "$LAB_DIR/a/proxy.log")
log "in a's first $WINDOW s: coturn refused $tries Allocate(s) with a's credentials (401); a logged $errs refusal(s)"
[ "$tries" -ge 1 ] || fail "coturn saw no Allocate with a's wrong credentials: $(grep -c 401 "$LAB_DIR/turnserver.log") 401s in its log"
[ "$tries" -le "$MAX_TRIES" ] || fail "retry storm: coturn refused $tries Allocates from a in $WINDOW s (at most $MAX_TRIES)"
[ "$errs" -le "$tries" ] || fail "a logged $errs refusals for $tries attempts"

for f in "$LAB_DIR"/*/proxy.log; do
  ! grep -qF "$badpass" "$f" || fail "$f holds a's (wrong) TURN password"
done
check_no_secrets
lab_proxy_stop_all
pass "a's relay refused ($tries attempt(s) in $WINDOW s), a <-> b direct"
