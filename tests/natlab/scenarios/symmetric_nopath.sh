#!/bin/bash
# shellcheck disable=SC2119 # optional arguments
# Both parties behind symmetric NATs (a new port per destination) and no
# relay configured: no direct path can exist. What a user sees must say so:
# `sfkit-proxy netcheck` exits 1 and reports the dependent mapping (text and
# --json); each proxy warns at start that peers cannot punch through its NAT
# and no relay is configured; the proxies do not hang silently: the side
# that dials logs why it gets no connection, and a SOCKS client gets reply
# 0x04 (host unreachable) with the reason in the log, within the connect
# timeout. Then b again with the turn relay configured in mode 'never'
# (site policy): the reason it gives says so, in its log, its SOCKS reply
# line and `status` of its peer; it contacts no relay (status 'off', no
# allocation at coturn). (With a relay in mode auto this pair
# works: relay_symmetric_pair.sh.)
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"

lab_init
lab_start_stun
lab_add_party a symmetric
lab_add_party b symmetric
lab_start_website

# netcheck, as a site admin runs it before a study (a short STUN RTO: the
# RFC 5780 change requests get no answer through the filtering NAT)
LAB_DISCOVERY_EXTRA="  rto: 100ms" lab_party_config a 0
rc=0
lab_exec a timeout 60 "$SFKIT_PROXY" netcheck -c "$LAB_CONF" >"$LAB_DIR/a/netcheck.txt" 2>"$LAB_DIR/a/netcheck.err" || rc=$?
[ "$rc" = 1 ] || fail "netcheck behind a symmetric NAT: exit $rc (want 1): $(cat "$LAB_DIR/a/netcheck.txt" "$LAB_DIR/a/netcheck.err")"
grep -Eq 'address(-and-port)?-dependent' "$LAB_DIR/a/netcheck.txt" ||
  fail "netcheck's text does not name the dependent mapping: $(cat "$LAB_DIR/a/netcheck.txt")"
rc=0
lab_exec a timeout 60 "$SFKIT_PROXY" netcheck -c "$LAB_CONF" --json >"$LAB_DIR/a/netcheck.json" 2>>"$LAB_DIR/a/netcheck.err" || rc=$?
[ "$rc" = 1 ] || fail "netcheck --json behind a symmetric NAT: exit $rc (want 1)"
"$PY" - "$LAB_DIR/a/netcheck.json" <<'PYEOF' || fail "netcheck --json: $(cat "$LAB_DIR/a/netcheck.json")"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["mapping"] in ("address-dependent", "address-and-port-dependent"), o["mapping"]
assert o["direct_expected"] is False, o
PYEOF
! grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error:' "$LAB_DIR/a/netcheck.err" || fail "netcheck: sanitizer error"
printf '%s\n' "----- netcheck (symmetric NAT) -----"
cat "$LAB_DIR/a/netcheck.txt"
log "netcheck: exit 1, $(grep -Eo 'address(-and-port)?-dependent' "$LAB_DIR/a/netcheck.txt" | head -n 1)"

start_parties a b
for n in a b; do
  line=$(wait_log "$n" 'warn .*cannot punch through it and no relay is configured' 20) || exit 1
  log "$n: ${line#* * }"
done
check_published a "^$(lab_wan_ip a):[0-9]+\$"
check_published b "^$(lab_wan_ip b):[0-9]+\$"

# a SOCKS client of b (the QUIC client, PID 1) towards a: reply 0x04, and
# b says why in its log
lab_serve a http "$LAB_DIR/a"
t0=$(now)
rep=$(socks_reply b a "$LAB_SERVER_PORT" 40)
[ "$rep" = 0x04 ] || fail "b -> a across two symmetric NATs: SOCKS reply '$rep' (want 0x04)"
lt "$(elapsed "$t0")" 20 || fail "the 0x04 took $(elapsed "$t0") s"
line=$(wait_log b "10\\.0\\.0\\.0:$LAB_SERVER_PORT: SOCKS reply 0x04 \\(host unreachable\\): .+" 5) || exit 1
log "b -> a: SOCKS reply 0x04 after $(elapsed "$t0") s; b logged: ${line#* * }"
# and curl, as a user would see it
rc=0
lab_exec b curl -sS --max-time 40 --socks5 "127.0.0.1:$LAB_SOCKS_PORT" "http://10.0.0.0:$LAB_SERVER_PORT/" \
  -o /dev/null 2>"$LAB_DIR/b/curl.err" || rc=$?
[ "$rc" = 97 ] || fail "curl across two symmetric NATs: exit $rc (want 97): $(cat "$LAB_DIR/b/curl.err")"
log "curl: $(cat "$LAB_DIR/b/curl.err")"
# the lower PID (a) punches on a bounded, logged schedule and logs that it
# gets no handshake
line=$(wait_log a 'peer 1: punching towards' 5) || exit 1
log "a: ${line#* * }"

# The same pair with a relay configured on b but mode 'never' (site
# policy): still no path, and b's log, SOCKS reply and `status` of its
# peer say that the policy is why no relay is tried.
if lab_have_plugins relay_turn; then
  lab_proxy_stop b
  allocs=$(lab_turn_allocations)
  LAB_RELAY=never LAB_TRANSPORT_EXTRA="  handshake_timeout: 4s" lab_party_config b 1
  lab_proxy_start b 1 "$LAB_CONF"
  WHY="relay mode is 'never' (site policy), so no relay is tried"
  t0=$(now)
  rep=$(socks_reply b a "$LAB_SERVER_PORT" 30)
  [ "$rep" = 0x04 ] || fail "never: b -> a: SOCKS reply '$rep' (want 0x04)"
  line=$(grep -F 'SOCKS reply 0x04' "$LAB_DIR/b/proxy.log" | tail -n 1)
  [[ $line == *"$WHY"* ]] || fail "never: b's SOCKS reply line does not say '$WHY': $line"
  log "never: b -> a: 0x04 after $(elapsed "$t0") s; b logged: $(msg "$line")"
  line=$(wait_log b "peers: peer 0 \\(10\\.0\\.0\\.0\\) down: .*relay mode is 'never'" 5) || exit 1
  log "never: b: $(msg "$line")"
  f=$(status_json b) || exit 1
  st=$(jget "$f" 'peers[0].state') || fail "never: status --json of b: $(cat "$f")"
  why=$(jget "$f" 'peers[0].why') || fail "never: status --json of b: peer 0 $st, no why: $(cat "$f")"
  [[ $st == down && $why == *"$WHY"* ]] || fail "never: status --json of b: peer 0 $st: '$why' (want down: ...$WHY)"
  log "never: b: status --json: peer 0 $st: $why"
  st=$(status_of b) || exit 1
  grep -qF "$WHY" <<<"$st" || fail "never: status of b does not say '$WHY': $st"
  ! grep -q 'trying the relay\|up via relay' "$LAB_DIR/b/proxy.log" || fail "never: b used the relay"
  v=$(check_status b relay.state '^off$') || exit 1
  log "never: b: status --json: relay $v: $(jget "$LAB_DIR/b/status.json" relay.why)"
  n=$(($(lab_turn_allocations) - allocs))
  [ "$n" = 0 ] || fail "never: coturn granted $n allocation(s) while b ran in relay mode never"
  ! grep -q 'relay\.turn: allocated' "$LAB_DIR/b/proxy.log" || fail "never: b allocated a relayed address"
  log "never: no TURN allocation while b ran in mode never"
else
  [ "${CI:-}" != true ] || fail "the relay_turn plugin is not built (the 'never' part needs it)"
  log "the relay_turn plugin is not built: the relay mode 'never' part is not run"
fi
check_no_secrets
lab_proxy_stop_all
pass
