#!/bin/bash
# shellcheck disable=SC2119 # optional arguments
# Both parties behind symmetric NATs (a new port per destination) and no
# relay configured: no direct path can exist. What a user sees must say so:
# `sfkit-proxy netcheck` exits 1 and reports the dependent mapping (text and
# --json); each proxy warns at start that peers cannot punch through its NAT
# and no relay is configured; the proxies do not hang silently: the side
# that dials logs why it gets no connection, and a SOCKS client gets reply
# 0x04 (host unreachable) with the reason in the log, within the connect
# timeout. (With a relay this pair works: symmetric_relay.sh, the turn
# plugin.)
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
check_no_secrets
lab_proxy_stop_all
pass
