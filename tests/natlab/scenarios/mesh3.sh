#!/bin/bash
# shellcheck disable=SC2119 # optional arguments
# Three parties, full mesh, behind different NATs: a and b behind cone NATs,
# c with a public address (no NAT). Each learns its mapping by STUN,
# publishes it and its pin, reads the other two from the website double,
# and every pair carries transfers both ways on direct paths (no TURN):
# each party downloads from and uploads to both others through its own
# SOCKS port (curl), and one fetch goes through proxychains4 with an
# unmodified curl. Then `sfkit-proxy status` of each party lists both
# peers up on a direct path.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"
MB=${SFK_LAB_MB:-4}

lab_init
lab_start_stun
lab_add_party a cone   # PID 0
lab_add_party b cone   # PID 1
lab_add_party c public # PID 2
lab_start_website
start_parties a b c
check_published a "^$(lab_wan_ip a):$LAB_UDP_PORT\$"
check_published b "^$(lab_wan_ip b):$LAB_UDP_PORT\$"
check_published c "^$(lab_wan_ip c):$LAB_UDP_PORT\$" # no NAT: its own address
for n in a b c; do
  wait_log "$n" 'peers known 2/2|peers known 3/3' 30 >/dev/null
done

for from in a b c; do
  for to in a b c; do
    [ "$from" = "$to" ] || lab_transfer "$from" "$to" "$MB"
  done
done
pc_fetch c a "$MB"
[ "$(lab_turn_allocations)" = 0 ] || fail "a TURN allocation on direct paths"

# what an operator checks: status lists both peers of each party, up
for n in a b c; do
  st=$(status_of "$n") || exit 1
  printf '%s\n' "----- status of $n -----" "$st"
  status_of "$n" --json >"$LAB_DIR/$n/status.json" || exit 1
  for p in a b c; do
    [ "$p" = "$n" ] && continue
    "$PY" - "$LAB_DIR/$n/status.json" "${LAB_PROXY_PARTY_PID[$p]}" "$(lab_wan_ip "$p")" <<'PYEOF' ||
import json, sys
st = json.load(open(sys.argv[1]))
peer = [x for x in st["peers"] if str(x["pid"]) == sys.argv[2]]
assert len(peer) == 1, st["peers"]
peer = peer[0]
assert peer["state"] == "up", peer
assert peer["path"] == "direct", peer
assert peer["address"].startswith(sys.argv[3] + ":"), peer
PYEOF
      fail "status of $n: peer $p (PID ${LAB_PROXY_PARTY_PID[$p]}) is not up on a direct path: $(cat "$LAB_DIR/$n/status.json")"
  done
done
log "status: every party shows both peers up on a direct path at their public address"
check_no_secrets
lab_proxy_stop_all
pass "$MB MiB each way on every pair of a 3-party mesh (cone, cone, public)"
