#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# `sfkit-proxy netcheck` behind the lab's real NATs, against coturn on two
# internet addresses (RFC 5780): a cone NAT maps endpoint-independently
# (exit 0), a symmetric NAT maps per destination (exit 1: a relay is
# needed), a public host sees its own address (exit 0); and the stun
# discovery plugin of a running proxy behind the cone NAT reports the
# router's WAN address as its mapping.  Needs only discovery `stun` and
# registry `static`.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lab.sh"

[ -x "$SFKIT_PROXY" ] || fail "daemon not built: $SFKIT_PROXY"
lab_need_plugins discovery_stun
lab_init
lab_start_stun
lab_add_party c cone
lab_add_party s symmetric
lab_add_party p public
export LAB_REGISTRY=static LAB_DISCOVERY_EXTRA="  rto: 100ms"

# netcheck NAME: run it in the party's namespace (JSON to $LAB_DIR/NAME/nc.json);
# prints the exit status.
netcheck() {
  local rc=0
  lab_party_config "$1" 0
  lab_exec "$1" timeout 60 "$SFKIT_PROXY" netcheck -c "$LAB_CONF" --json \
    >"$LAB_DIR/$1/nc.json" 2>"$LAB_DIR/$1/nc.err" || rc=$?
  if grep -q -e 'ERROR: AddressSanitizer' -e 'ERROR: LeakSanitizer' -e 'runtime error:' "$LAB_DIR/$1/nc.err"; then
    fail "netcheck in $1: sanitizer error: $(cat "$LAB_DIR/$1/nc.err")"
  fi
  echo "$rc"
}

# field NAME KEY: a top-level value of the party's netcheck JSON.
field() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$LAB_DIR/$1/nc.json" "$2"; }

rc=$(netcheck c)
[ "$rc" = 0 ] || fail "cone: exit $rc (want 0): $(cat "$LAB_DIR/c/nc.json" "$LAB_DIR/c/nc.err")"
[ "$(field c mapping)" = endpoint-independent ] || fail "cone: mapping $(field c mapping)"
"$PY" - "$LAB_DIR/c/nc.json" "$(lab_wan_ip c)" <<'PYEOF' || fail "cone: $(cat "$LAB_DIR/c/nc.json")"
import json, sys
o = json.load(open(sys.argv[1]))
seen = [x["mapped"] for x in o["observations"] if x["mapped"]]
assert len(seen) >= 2, o
assert all(m.startswith(sys.argv[2] + ":") for m in seen), (seen, sys.argv[2])
PYEOF
log "cone: endpoint-independent, filtering $(field c filtering)"
# The lab's cone NAT (iptables MASQUERADE) filters by address and port,
# and coturn's CHANGE-REQUEST answers come from elsewhere: none passes.
[ "$(field c filtering)" = address-and-port-dependent ] ||
  fail "cone: filtering $(field c filtering) (want address-and-port-dependent)"

rc=$(netcheck s)
[ "$rc" = 1 ] || fail "symmetric: exit $rc (want 1): $(cat "$LAB_DIR/s/nc.json" "$LAB_DIR/s/nc.err")"
case $(field s mapping) in
address-dependent | address-and-port-dependent) ;;
*) fail "symmetric: mapping $(field s mapping)" ;;
esac
[ "$(field s direct_expected)" = False ] || fail "symmetric: direct_expected"
log "symmetric: $(field s mapping), filtering $(field s filtering)"

rc=$(netcheck p)
[ "$rc" = 0 ] || fail "public: exit $rc (want 0): $(cat "$LAB_DIR/p/nc.json" "$LAB_DIR/p/nc.err")"
log "public: $(field p mapping)"

# A proxy behind the cone NAT learns and logs its public mapping.
lab_party_config c 0
lab_proxy_start c 0 "$LAB_CONF"
has() { grep -q "$1" "$LAB_DIR/c/proxy.log"; }
wait_until 20 has "public address $(lab_wan_ip c | sed 's/\./\\./g'):[0-9]* (from stun:" ||
  fail "the proxy did not report the cone's WAN address: $(grep -i 'public\|stun' "$LAB_DIR/c/proxy.log" | tail -5)"
wait_until 20 has "NAT: mapping endpoint-independent" || fail "the proxy's start-up probe did not report the NAT"
log "proxy: $(grep -m1 'public address' "$LAB_DIR/c/proxy.log" | sed 's/.*public/public/')"
lab_proxy_stop_all
pass
