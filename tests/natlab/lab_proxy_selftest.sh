#!/bin/bash
# shellcheck disable=SC2317,SC2119,SC2015 # functions via wait_until; optional args
# The lab's proxy helpers with the plugins the tree has today (discovery
# `none`, registry `static`): party 0 is public, party 1 sits behind a cone
# NAT and is the QUIC client (the higher PID), so its first datagram opens
# the NAT and no punching is needed. Checks lab_party_config,
# lab_proxy_start, lab_transfer (both ways, SHA-256) and lab_proxy_stop.
# The NAT-traversal scenarios (stun + sfkit registry) build on the same
# helpers.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lab.sh"

[ -x "$SFKIT_PROXY" ] || fail "daemon not built: $SFKIT_PROXY"
MB=${SFK_LAB_MB:-8}
lab_init
lab_add_party s public
lab_add_party c cone
S_ADDR=$(lab_wan_ip s):$LAB_UDP_PORT
C_ADDR=$(lab_wan_ip c):$LAB_UDP_PORT # a cone NAT keeps the free source port
ZERO=0000000000000000000000000000000000000000000000000000000000000000
export LAB_DISCOVERY=none LAB_REGISTRY=static
LAB_STATIC_PEERS="1,$C_ADDR,$ZERO" lab_party_config s 0
S_PIN=$(lab_identity "$LAB_CONF") || exit 1
LAB_STATIC_PEERS="0,$S_ADDR,$ZERO" lab_party_config c 1
C_PIN=$(lab_identity "$LAB_CONF") || exit 1
LAB_STATIC_PEERS="1,$C_ADDR,$C_PIN" lab_party_config s 0
LAB_STATIC_PEERS="0,$S_ADDR,$S_PIN" lab_party_config c 1

lab_proxy_start s 0 "$LAB_DIR/s/proxy.yaml"
lab_proxy_start c 1 "$LAB_DIR/c/proxy.yaml"
[ "$(lab_ready_pin c)" = "$C_PIN" ] || fail "lab_ready_pin c: '$(lab_ready_pin c)', expected $C_PIN"
lab_transfer c s "$MB"
lab_transfer s c "$MB"
# the router saw the party's QUIC flow: one UDP mapping to the public party
lab_nat_table c 2>/dev/null | grep -q "udp .*dst=$(lab_wan_ip s) .*dport=$LAB_UDP_PORT" ||
  fail "no UDP mapping towards $S_ADDR in c's NAT: $(lab_nat_table c)"
log "c's NAT: $(lab_nat_table c 2>/dev/null | grep "dport=$LAB_UDP_PORT" | head -n 1 | tr -s ' ')"
lab_proxy_stop_all
pass "$MB MiB each way through a cone NAT"
