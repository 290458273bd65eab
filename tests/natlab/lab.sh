# shellcheck shell=bash
# shellcheck disable=SC2034,SC2317 # variables for the tests; functions run via wait_until
# The NAT lab: network namespaces that emulate an "internet", NAT routers and
# the parties behind them on one machine (see /work/shared/NATLAB.md and
# tests/natlab/README.md).  Sourced by the NAT-lab tests:
#
#   . "$(dirname "$0")/lab.sh"
#   lab_init                      # root + ip netns, or exit 77 (SKIP)
#   lab_start_stun                # coturn on 203.0.113.1 and .2, port 3478
#   lab_add_party a cone          # router a-r (203.0.113.101) + host a (192.168.1.2)
#   lab_add_party b symmetric
#   lab_start_website             # the sfkit website double on 203.0.113.10:80
#   lab_exec a turnutils_stunclient 203.0.113.1
#
# Addresses (documentation ranges only, all inside this run's namespaces):
#   internet bridge             203.0.113.0/24 in namespace $LAB_PREFIX-inet
#   STUN/TURN (coturn)          203.0.113.1 and 203.0.113.2, port 3478 (+3479)
#   the website double          203.0.113.10 (port 80, or 443 with TLS)
#   party number N (1, 2, ...)  WAN / public address 203.0.113.(100+N);
#                               behind a NAT: LAN 192.168.N.0/24, router .1,
#                               host .2; public: routed by the internet
#                               namespace (proxy ARP), see lab_add_party
#
# Exit statuses follow automake: 0 pass, 1 fail, 77 skip.
# Environment: SFKIT_PROXY (the daemon), SFKIT_PROXY_PLUGIN_DIR, SFK_SRCDIR
# (from `make check`, else guessed from the source tree); SFK_KEEP_TMP=1 keeps
# the temp dir; LAB_KEEP=1 keeps the namespaces too (and prints how to delete
# them) for debugging by hand.

if [ -z "${BASH_VERSION:-}" ]; then
  echo "lab.sh needs bash" >&2
  exit 1
fi

set -u -o pipefail

LAB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
SFK_SRCDIR=${SFK_SRCDIR:-$(cd "$LAB_LIB_DIR/../.." && pwd)}
if [ -z "${SFKIT_PROXY:-}" ]; then
  SFKIT_PROXY=$SFK_SRCDIR/build/src/sfkit-proxy
fi
if [ -z "${SFKIT_PROXY_PLUGIN_DIR:-}" ]; then
  _b=$(dirname "$(dirname "$SFKIT_PROXY")")
  SFKIT_PROXY_PLUGIN_DIR=$_b/plugins/quic/.libs:$_b/plugins/static/.libs:$_b/plugins/none/.libs
  for _p in stun sfkit turn; do
    [ -d "$_b/plugins/$_p/.libs" ] && SFKIT_PROXY_PLUGIN_DIR=$SFKIT_PROXY_PLUGIN_DIR:$_b/plugins/$_p/.libs
  done
fi
export SFKIT_PROXY SFKIT_PROXY_PLUGIN_DIR SFK_SRCDIR

# Sanitizer builds (as in tests/integration/lib.sh): SFK_SANITIZERS from make,
# or a look at the binary when run by hand.
if [ -z "${SFK_SANITIZERS:-}" ]; then
  if [ -f "$SFKIT_PROXY" ] && grep -aq '__asan_init' "$SFKIT_PROXY" 2>/dev/null; then
    SFK_SANITIZERS=yes
  else
    SFK_SANITIZERS=no
  fi
fi
export SFK_SANITIZERS
if [ "$SFK_SANITIZERS" = yes ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

PY=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
LAB_WEBSITE=$LAB_LIB_DIR/sfkit_website.py
LAB_STUN_PROBE=$LAB_LIB_DIR/stun_probe.py
LAB_SINK=$SFK_SRCDIR/tests/integration/sink.py

# Fixed addresses of the lab.
LAB_STUN_IP1=203.0.113.1
LAB_STUN_IP2=203.0.113.2
LAB_STUN_PORT=3478
LAB_WEB_IP=203.0.113.10
LAB_TURN_USER=${LAB_TURN_USER:-labuser}
LAB_TURN_PASS=${LAB_TURN_PASS:-labpass-$RANDOM$RANDOM}
LAB_TURN_REALM=${LAB_TURN_REALM:-natlab.example.org}
LAB_STUDY_ID=${LAB_STUDY_ID:-lab-study}
LAB_SOCKS_PORT=${LAB_SOCKS_PORT:-1080}
LAB_UDP_PORT=${LAB_UDP_PORT:-40000}
LAB_API_URL=
LAB_STUN_PID=
LAB_STUN_ARGS=()
LAB_CA_CERT=
LAB_RELAY_COUNTERS=

# --- temp dir, tracking, cleanup -----------------------------------------------
LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sfk-lab-$TEST_NAME.XXXXXX") || {
  echo "cannot create a temp dir" >&2
  exit 1
}
T=$LAB_DIR # the name lib.sh's helpers use
LAB_PREFIX=
LAB_NSES=()      # namespaces this run created, in creation order
LAB_PIDS=()      # background processes this run started
LAB_PARTIES=()   # party names in the order added (= PID order by default)
LAB_NEXT_IDX=1
declare -A LAB_KIND=() LAB_IDX=() LAB_HOST_NS=() LAB_ROUTER_NS=() LAB_WAN=() LAB_LAN=()
declare -A LAB_INET_IF=() LAB_REBINDS=() LAB_PROXY_PID=() LAB_PROXY_PARTY_PID=() LAB_PROXY_CONF=()

lab_track() { LAB_PIDS+=("$@"); }

# lab_alive PID: the process exists and is not a zombie.
lab_alive() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$st" != Z ]
}

# _lab_stop_pids PID...: TERM, up to 5 s, then KILL.
_lab_stop_pids() {
  local p i
  for p in "$@"; do
    lab_alive "$p" && kill -TERM "$p" 2>/dev/null
  done
  for p in "$@"; do
    for ((i = 0; i < 50; i++)); do
      lab_alive "$p" || break
      sleep 0.1
    done
    lab_alive "$p" && kill -KILL "$p" 2>/dev/null
  done
  return 0
}

_lab_cleanup() {
  local rc=$? ns i pids
  trap - EXIT INT TERM HUP
  if [ -n "${LAB_KEEP:-}" ] && [ "${#LAB_NSES[@]}" -gt 0 ]; then
    echo "LAB_KEEP: namespaces kept: ${LAB_NSES[*]}" >&2
    echo "  delete them with: for n in ${LAB_NSES[*]}; do ip netns pids \$n | xargs -r kill; ip netns del \$n; done" >&2
    echo "kept $LAB_DIR" >&2
    exit "$rc"
  fi
  [ "${#LAB_PIDS[@]}" -gt 0 ] && _lab_stop_pids "${LAB_PIDS[@]}"
  # Whatever still runs inside our namespaces was started by this run.
  for ns in "${LAB_NSES[@]}"; do
    pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
    # shellcheck disable=SC2086 # a list of pids
    [ -n "$pids" ] && _lab_stop_pids $pids
  done
  wait 2>/dev/null
  for ((i = ${#LAB_NSES[@]} - 1; i >= 0; i--)); do
    ip netns del "${LAB_NSES[i]}" 2>/dev/null
  done
  if [ -n "${SFK_KEEP_TMP:-}" ]; then
    echo "kept $LAB_DIR" >&2
  else
    rm -rf "$LAB_DIR"
  fi
  exit "$rc"
}
trap _lab_cleanup EXIT
trap 'exit 1' INT TERM HUP

# --- reporting -------------------------------------------------------------------
log() { printf '%s %s: %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$TEST_NAME" "$*"; }

show_logs() {
  local f
  while IFS= read -r f; do
    [ -s "$f" ] || continue
    echo "----- tail of ${f#"$LAB_DIR"/} -----"
    tail -n "${1:-40}" "$f"
  done < <(find "$LAB_DIR" -type f \( -name '*.log' -o -name '*.err' -o -name '*.jsonl' \) 2>/dev/null | sort)
}

fail() {
  echo "FAIL: $TEST_NAME: $*" >&2
  show_logs 30 >&2
  exit 1
}

pass() {
  echo "PASS: $TEST_NAME${1:+: $1}"
  exit 0
}

# skip REASON: exit 77; under CI (every tool installed) a skip is a failure.
skip() {
  echo "" >&2
  echo "*** SKIP: $TEST_NAME: $* ***" >&2
  echo "" >&2
  if [ "${CI:-}" = true ]; then
    echo "*** CI installs every tool: treating the skip as a failure ***" >&2
    exit 1
  fi
  exit 77
}

need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || skip "'$t' is not installed (scripts/install-deps.sh installs it)"
  done
}

# --- small utilities (as in tests/integration/lib.sh) ------------------------------
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b - a}'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a < b)}'; }
sha_file() { sha256sum "$1" | awk '{print $1}'; }
sha_stdin() { sha256sum | awk '{print $1}'; }
make_file() { head -c "$(($2 * 1048576))" /dev/urandom >"$1" || fail "cannot write $1"; }
file_size() { stat -c %s "$1"; }

# wait_until SECONDS CMD...: poll CMD every 50 ms until it succeeds; 1 on timeout.
wait_until() {
  local deadline
  deadline=$(awk -v t="$1" -v n="$(now)" 'BEGIN{printf "%.3f", n + t}')
  shift
  while ! "$@"; do
    lt "$(now)" "$deadline" || return 1
    sleep 0.05
  done
}
_nonempty() { [ -s "$1" ]; }

need python3 sha256sum timeout awk curl

# --- the lab --------------------------------------------------------------------------
# _lab_ns NAME: create namespace NAME (recorded for cleanup), loopback up, no IPv6.
_lab_ns() {
  ip netns add "$1" || fail "ip netns add $1 failed"
  LAB_NSES+=("$1")
  ip -n "$1" link set lo up || fail "lo up in $1"
  ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1
  return 0
}

# _lab_offloads_off NS DEV: no GSO/GRO/TSO on a lab veth, so a packet counted
# (or dropped) by iptables in a router is one datagram, not a GSO batch
# (NATLAB.md). Without ethtool the offloads stay on: see README.md.
_lab_offloads_off() {
  [ -z "${LAB_KEEP_OFFLOADS:-}" ] || return 0 # to compare: GSO batches dropped whole
  command -v ethtool >/dev/null 2>&1 || return 0
  ip netns exec "$1" ethtool -K "$2" gso off gro off tso off tx-udp-segmentation off >/dev/null 2>&1 ||
    ip netns exec "$1" ethtool -K "$2" gso off gro off >/dev/null 2>&1
  return 0
}

# lab_init: check root and ip netns (else SKIP), make the internet namespace
# with its bridge. Sets LAB_PREFIX and LAB_INET (the internet namespace).
lab_init() {
  [ "$(id -u)" = 0 ] || skip "the NAT lab needs root (network namespaces, iptables)"
  need ip iptables conntrack
  ip netns list >/dev/null 2>&1 || skip "'ip netns' does not work here"
  LAB_PREFIX=sfkl-$$-$(printf '%04x' $((RANDOM % 65536)))
  LAB_INET=$LAB_PREFIX-inet
  if ! ip netns add "$LAB_INET" 2>"$LAB_DIR/netns.err"; then
    skip "cannot create a network namespace: $(cat "$LAB_DIR/netns.err")"
  fi
  LAB_NSES+=("$LAB_INET")
  ip -n "$LAB_INET" link set lo up
  ip netns exec "$LAB_INET" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1
  ip -n "$LAB_INET" link add br0 type bridge || fail "cannot create the internet bridge"
  ip -n "$LAB_INET" link set br0 up
  local a
  for a in "$LAB_STUN_IP1" "$LAB_STUN_IP2" "$LAB_WEB_IP"; do
    ip -n "$LAB_INET" addr add "$a/24" dev br0 || fail "cannot add $a"
  done
  # public parties are routed (not bridged) through this namespace, so that
  # their loss/block rules live here (FORWARD/INPUT), never in their own
  # OUTPUT chain (a drop there fails the sender's sendmsg with EPERM)
  ip netns exec "$LAB_INET" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.br0.proxy_arp=1 \
    net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.br0.send_redirects=0 >/dev/null || fail "sysctl in $LAB_INET"
  ip netns exec "$LAB_INET" iptables -w -P FORWARD ACCEPT 2>/dev/null
  log "lab $LAB_PREFIX: internet $LAB_INET (203.0.113.0/24), dir $LAB_DIR"
}

# lab_inet_exec CMD...: run CMD in the internet namespace (servers live there).
lab_inet_exec() { ip netns exec "$LAB_INET" "$@"; }

# lab_add_party NAME KIND: KIND cone | symmetric | public. Creates the host
# namespace $LAB_PREFIX-NAME (and the router $LAB_PREFIX-NAME-r), a party dir
# $LAB_DIR/NAME with an sfkit auth key (auth_key.txt), and records the party.
lab_add_party() {
  local name=$1 kind=$2 n host router inet_if pub
  [ -n "$LAB_PREFIX" ] || fail "lab_add_party before lab_init"
  [ -z "${LAB_KIND[$name]:-}" ] || fail "party $name exists"
  case $kind in cone | symmetric | public) ;; *) fail "lab_add_party $name: kind '$kind' is not cone|symmetric|public" ;; esac
  n=$LAB_NEXT_IDX
  LAB_NEXT_IDX=$((n + 1))
  ((n < 100)) || fail "too many parties"
  host=$LAB_PREFIX-$name
  router=$LAB_PREFIX-$name-r
  inet_if=p$n
  pub=203.0.113.$((100 + n))
  mkdir -p "$LAB_DIR/$name"
  "$PY" -c 'import secrets; print(secrets.token_hex(16))' >"$LAB_DIR/$name/auth_key.txt"
  _lab_ns "$host"
  if [ "$kind" = public ]; then
    # routed by the internet namespace with proxy ARP: on the wire the host
    # looks as if it sat on the 203.0.113.0/24 bridge
    ip -n "$host" link add eth0 type veth peer name "$inet_if" netns "$LAB_INET" || fail "veth for $name"
    ip -n "$host" addr add "$pub/24" dev eth0
    ip -n "$host" link set eth0 up
    ip -n "$host" route add default via "$LAB_STUN_IP1"
    _lab_offloads_off "$host" eth0
    ip -n "$LAB_INET" link set "$inet_if" up
    ip netns exec "$LAB_INET" sysctl -qw "net.ipv4.conf.$inet_if.proxy_arp=1" \
      "net.ipv4.conf.$inet_if.send_redirects=0" >/dev/null
    ip -n "$LAB_INET" route add "$pub/32" dev "$inet_if" || fail "route to $pub"
  else
    _lab_ns "$router"
    ip -n "$router" link add wan type veth peer name "$inet_if" netns "$LAB_INET" || fail "wan veth for $name"
    ip -n "$router" link add lan type veth peer name eth0 netns "$host" || fail "lan veth for $name"
    ip -n "$router" addr add "$pub/24" dev wan
    ip -n "$router" addr add "192.168.$n.1/24" dev lan
    ip -n "$router" link set wan up
    ip -n "$router" link set lan up
    ip -n "$router" route add default via "$LAB_STUN_IP1"
    ip netns exec "$router" sysctl -qw net.ipv4.ip_forward=1 >/dev/null || fail "ip_forward in $router"
    ip -n "$host" addr add "192.168.$n.2/24" dev eth0
    ip -n "$host" link set eth0 up
    ip -n "$host" route add default via "192.168.$n.1"
    _lab_offloads_off "$router" wan
    _lab_offloads_off "$router" lan
    _lab_offloads_off "$host" eth0
    local ipt=(ip netns exec "$router" iptables -w)
    # filtering as a home router: only replies come in (NATLAB.md)
    "${ipt[@]}" -A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    "${ipt[@]}" -A INPUT -i wan -j DROP
    "${ipt[@]}" -A FORWARD -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    "${ipt[@]}" -A FORWARD -i wan -j DROP
    if [ "$kind" = symmetric ]; then
      "${ipt[@]}" -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully || fail "MASQUERADE --random-fully"
    else
      "${ipt[@]}" -t nat -A POSTROUTING -o wan -j MASQUERADE || fail "MASQUERADE"
    fi
    LAB_ROUTER_NS[$name]=$router
    LAB_LAN[$name]=192.168.$n.2
  fi
  [ "$kind" = public ] || ip -n "$LAB_INET" link set "$inet_if" master br0
  ip -n "$LAB_INET" link set "$inet_if" up
  LAB_INET_IF[$name]=$inet_if
  _lab_offloads_off "$LAB_INET" "$inet_if"
  LAB_KIND[$name]=$kind
  LAB_IDX[$name]=$n
  LAB_HOST_NS[$name]=$host
  LAB_WAN[$name]=$pub
  LAB_REBINDS[$name]=0
  [ "$kind" = public ] && LAB_LAN[$name]=$pub
  LAB_PARTIES+=("$name")
  log "party $name ($kind): host $host ${LAB_LAN[$name]}, public $pub"
}

_lab_party() { [ -n "${LAB_KIND[$1]:-}" ] || fail "no party '$1'"; }
_lab_router() {
  _lab_party "$1"
  [ -n "${LAB_ROUTER_NS[$1]:-}" ] || fail "party $1 is public: it has no router"
}

# lab_exec NAME CMD...: run CMD in the party's host namespace.
lab_exec() {
  _lab_party "$1"
  local ns=${LAB_HOST_NS[$1]}
  shift
  ip netns exec "$ns" "$@"
}

# lab_router_exec NAME CMD...: run CMD in the party's router namespace.
lab_router_exec() {
  _lab_router "$1"
  local ns=${LAB_ROUTER_NS[$1]}
  shift
  ip netns exec "$ns" "$@"
}

# lab_bg NAME LOGBASE CMD...: run CMD in the background in the party's host
# namespace (NAME "inet": the internet namespace), stdout to
# $LAB_DIR/LOGBASE.out, stderr to $LAB_DIR/LOGBASE.err; sets LAB_BG_PID.
lab_bg() {
  local name=$1 base=$2 ns
  shift 2
  if [ "$name" = inet ]; then ns=$LAB_INET; else
    _lab_party "$name"
    ns=${LAB_HOST_NS[$name]}
  fi
  ip netns exec "$ns" "$@" >"$LAB_DIR/$base.out" 2>"$LAB_DIR/$base.err" </dev/null &
  LAB_BG_PID=$!
  lab_track "$LAB_BG_PID"
}

# lab_wan_ip NAME: the party's public address (its router's WAN, or its own).
lab_wan_ip() {
  _lab_party "$1"
  echo "${LAB_WAN[$1]}"
}

# lab_lan_ip NAME: the party host's own address (= public for a public party).
lab_lan_ip() {
  _lab_party "$1"
  echo "${LAB_LAN[$1]}"
}

# _lab_rules NAME DIR: "NS CHAIN MATCH..." lines: where the party's traffic
# in direction DIR (out | in) can be filtered. A NATed party: its router's
# FORWARD (out: -i lan, in: -i wan). A public party: the internet
# namespace, which routes it (out: FORWARD/INPUT -i pN; in: FORWARD -o pN,
# and OUTPUT -o pN for the answers of the servers that live there).
_lab_rules() {
  local name=$1 dir=$2 ns if
  if [ -n "${LAB_ROUTER_NS[$name]:-}" ]; then
    ns=${LAB_ROUTER_NS[$name]}
    if [ "$dir" = out ]; then echo "$ns FORWARD -i lan"; else echo "$ns FORWARD -i wan"; fi
  else
    ns=$LAB_INET
    if=${LAB_INET_IF[$name]}
    if [ "$dir" = out ]; then
      echo "$ns FORWARD -i $if"
      echo "$ns INPUT -i $if"
    else
      echo "$ns FORWARD -o $if"
      echo "$ns OUTPUT -o $if"
    fi
  fi
}

# _lab_del_tagged NS TAG: delete every rule commented TAG in NS's filter table.
_lab_del_tagged() {
  local ns=$1 tag=$2 rule
  while rule=$(ip netns exec "$ns" iptables -w -S | grep -m1 -- "--comment $tag "); do
    # shellcheck disable=SC2086 # a rule's words
    ip netns exec "$ns" iptables -w ${rule/#-A /-D } || break
  done
}

# lab_loss NAME PCT: drop PCT % of the party's packets, each direction
# (iptables -m statistic, inserted first: see _lab_rules for where). PCT 0
# removes the loss. With the offloads off (ethtool), one drop is one
# datagram; without ethtool, a drop can be a whole GSO batch (NATLAB.md).
lab_loss() {
  local name=$1 pct=$2 prob ns chain match tag
  _lab_party "$name"
  tag=sfk-lab-loss-$name
  _lab_del_tagged "$(_lab_rules "$name" out | head -n 1 | cut -d' ' -f1)" "$tag"
  [ "$pct" = 0 ] && return 0
  prob=$(awk -v p="$pct" 'BEGIN{printf "%.4f", p / 100}')
  while read -r ns chain match; do
    # shellcheck disable=SC2086 # match words
    ip netns exec "$ns" iptables -w -I "$chain" 1 $match -m statistic --mode random --probability "$prob" \
      -m comment --comment "$tag" -j DROP || fail "lab_loss $name $pct"
  done < <(_lab_rules "$name" out; _lab_rules "$name" in)
  log "party $name: $pct % loss each way"
}

# lab_rate NAME RATE QUEUE_BYTES: a bottleneck on the party's downlink: tbf
# at RATE (tc syntax, e.g. 20mbit) with a queue of QUEUE_BYTES on its NAT
# router's lan side; RATE off removes it. With the offloads off, tbf sees
# single datagrams.
lab_rate() {
  local name=$1 rate=$2 limit=${3:-}
  _lab_party "$name"
  [ -n "${LAB_ROUTER_NS[$name]:-}" ] || fail "lab_rate: $name has no NAT router"
  if [ "$rate" = off ]; then
    ip -n "${LAB_ROUTER_NS[$name]}" link show lan >/dev/null 2>&1 &&
      ip netns exec "${LAB_ROUTER_NS[$name]}" tc qdisc del dev lan root 2>/dev/null
    return 0
  fi
  ip netns exec "${LAB_ROUTER_NS[$name]}" tc qdisc replace dev lan root tbf rate "$rate" \
    burst 32kb limit "$limit" || fail "lab_rate $name $rate $limit"
  log "party $name: downlink $rate, queue $limit bytes"
}

# lab_backlog NAME: the bytes waiting in the queue of lab_rate's tbf now.
lab_backlog() {
  _lab_party "$1"
  ip netns exec "${LAB_ROUTER_NS[$1]}" tc -s qdisc show dev lan |
    awk '/backlog/ {
      b = $2; sub(/b$/, "", b); m = 1   # tc prints 59Kb, 1Mb above 1024
      if (b ~ /K$/) m = 1024; else if (b ~ /M$/) m = 1048576
      sub(/[KM]$/, "", b); printf "%d\n", b * m; exit }'
}

# lab_rebind NAME: a NAT rebinding: the router forgets every mapping
# (conntrack -F) and MASQUERADE moves to a new port range (--to-ports), so
# the next datagram out gets a new public port.
lab_rebind() {
  local name=$1 ns k lo hi extra=()
  _lab_router "$name"
  ns=${LAB_ROUTER_NS[$name]}
  k=$((LAB_REBINDS[$name] + 1))
  LAB_REBINDS[$name]=$k
  lo=$((20000 + (k % 40) * 1000))
  hi=$((lo + 999))
  [ "${LAB_KIND[$name]}" = symmetric ] && extra=(--random-fully)
  ip netns exec "$ns" iptables -w -t nat -F POSTROUTING
  ip netns exec "$ns" iptables -w -t nat -A POSTROUTING -o wan -p udp -j MASQUERADE --to-ports "$lo-$hi" "${extra[@]}"
  ip netns exec "$ns" iptables -w -t nat -A POSTROUTING -o wan -p tcp -j MASQUERADE --to-ports "$lo-$hi" "${extra[@]}"
  ip netns exec "$ns" iptables -w -t nat -A POSTROUTING -o wan -j MASQUERADE "${extra[@]}"
  ip netns exec "$ns" conntrack -F >/dev/null 2>&1
  log "party $name: NAT rebinding (mappings flushed, ports now $lo-$hi)"
}

# lab_block NAME ADDR: drop the party's traffic to ADDR (IP or IP:PORT, UDP
# and TCP), e.g. to make the first STUN server unreachable: the datagrams
# vanish on the way, as on a real network. lab_unblock NAME ADDR removes it.
_lab_block_match() {
  local addr=$1 ip port
  ip=${addr%%:*}
  port=
  [ "$ip" != "$addr" ] && port=${addr#*:}
  if [ -n "$port" ]; then
    echo "-d $ip -p udp --dport $port"
    echo "-d $ip -p tcp --dport $port"
  else
    echo "-d $ip"
  fi
}
lab_block() {
  local name=$1 ns chain match m
  _lab_party "$name"
  while read -r ns chain match; do
    while IFS= read -r m; do
      # shellcheck disable=SC2086 # rule words
      ip netns exec "$ns" iptables -w -I "$chain" 1 $match $m -m comment --comment "sfk-lab-block-$name" -j DROP ||
        fail "lab_block $name $2"
    done < <(_lab_block_match "$2")
  done < <(_lab_rules "$name" out)
  log "party $name: traffic to $2 dropped"
}
lab_unblock() {
  local name=$1 ns chain match m
  _lab_party "$name"
  while read -r ns chain match; do
    while IFS= read -r m; do
      # shellcheck disable=SC2086
      ip netns exec "$ns" iptables -w -D "$chain" $match $m -m comment --comment "sfk-lab-block-$name" -j DROP 2>/dev/null
    done < <(_lab_block_match "$2")
  done < <(_lab_rules "$name" out)
  log "party $name: traffic to $2 allowed again"
}

# lab_nat_table NAME: the router's conntrack entries (for debugging / asserts).
lab_nat_table() {
  _lab_router "$1"
  ip netns exec "${LAB_ROUTER_NS[$1]}" conntrack -L 2>/dev/null
}

# --- servers in the internet namespace ----------------------------------------------------
# _lab_udp_listening NS IP:PORT
_lab_udp_listening() { ip netns exec "$1" ss -Hlun "src $2" 2>/dev/null | grep -q .; }

_lab_stun_up() {
  lab_alive "$LAB_STUN_PID" || fail "turnserver exited: $(tail -n 5 "$LAB_DIR/turnserver.log" 2>/dev/null)"
  _lab_udp_listening "$LAB_INET" "$LAB_STUN_IP1:$LAB_STUN_PORT" &&
    _lab_udp_listening "$LAB_INET" "$LAB_STUN_IP2:$LAB_STUN_PORT" &&
    _lab_udp_listening "$LAB_INET" "$LAB_STUN_IP1:$((LAB_STUN_PORT + 1))" &&
    ip netns exec "$LAB_INET" timeout 5 turnutils_stunclient -p "$LAB_STUN_PORT" "$LAB_STUN_IP1" >/dev/null 2>&1
}

# lab_start_stun [EXTRA TURNSERVER ARGS...]: coturn as STUN (RFC 5780: two
# IPs, port 3478 and alt port 3479) and TURN server (long-term credentials
# $LAB_TURN_USER / $LAB_TURN_PASS, realm $LAB_TURN_REALM, relay on
# $LAB_STUN_IP1). Log $LAB_DIR/turnserver.log. Waits until it answers.
lab_start_stun() {
  need turnserver turnutils_stunclient
  [ -n "$LAB_PREFIX" ] || fail "lab_start_stun before lab_init"
  LAB_STUN_ARGS=("$@")
  lab_bg inet turnserver turnserver -n \
    --listening-ip "$LAB_STUN_IP1" --listening-ip "$LAB_STUN_IP2" \
    --listening-port "$LAB_STUN_PORT" --relay-ip "$LAB_STUN_IP1" \
    --min-port 49152 --max-port 49999 \
    --no-tls --no-dtls --no-cli --fingerprint --verbose \
    --lt-cred-mech --user "$LAB_TURN_USER:$LAB_TURN_PASS" --realm "$LAB_TURN_REALM" \
    --userdb "$LAB_DIR/turndb" --log-file "$LAB_DIR/turnserver.log" --simple-log --no-stdout-log \
    --pidfile "$LAB_DIR/turnserver.pid" "$@"
  LAB_STUN_PID=$LAB_BG_PID
  wait_until 20 _lab_stun_up || fail "turnserver not answering after 20 s"
  _lab_relay_counters
  log "coturn on $LAB_STUN_IP1 and $LAB_STUN_IP2 port $LAB_STUN_PORT (TURN user $LAB_TURN_USER, realm $LAB_TURN_REALM)"
}

# lab_restart_stun: stop coturn (SIGTERM, then it must be gone within 10 s:
# every allocation dies with it) and start it again with the arguments of
# lab_start_stun (same users, realm and user db). The previous run's log
# moves to turnserver.N.log, so lab_turn_allocations counts the new run's
# allocations only (lab_turn_allocations_all: every run's).
lab_restart_stun() {
  local n=1 f
  [ -n "${LAB_STUN_PID:-}" ] || fail "lab_restart_stun before lab_start_stun"
  lab_alive "$LAB_STUN_PID" || fail "turnserver had already exited: $(tail -n 5 "$LAB_DIR/turnserver.log" 2>/dev/null)"
  kill -TERM "$LAB_STUN_PID"
  wait_until 10 eval "! lab_alive $LAB_STUN_PID" || fail "turnserver still running 10 s after SIGTERM"
  wait "$LAB_STUN_PID" 2>/dev/null
  while [ -e "$LAB_DIR/turnserver.$n.log" ]; do n=$((n + 1)); done
  mv "$LAB_DIR/turnserver.log" "$LAB_DIR/turnserver.$n.log" 2>/dev/null
  for f in out err; do
    [ -e "$LAB_DIR/turnserver.$f" ] && mv "$LAB_DIR/turnserver.$f" "$LAB_DIR/turnserver.$n.$f"
  done
  rm -f "$LAB_DIR/turnserver.pid"
  log "coturn stopped (run $n's log: turnserver.$n.log); starting it again"
  lab_start_stun "${LAB_STUN_ARGS[@]}"
}

# _lab_relay_counters: two counting rules (no target) in the internet
# namespace, once: UDP to coturn's relayed ports (peers -> a relayed
# address) and from them (relayed address -> peers). lab_relay_bytes reads them.
_lab_relay_counters() {
  [ -z "${LAB_RELAY_COUNTERS:-}" ] || return 0
  lab_inet_exec iptables -A INPUT -d "$LAB_STUN_IP1" -p udp --dport 49152:49999 -m comment --comment lab-relay-in ||
    fail "cannot add the relay counting rules"
  lab_inet_exec iptables -A OUTPUT -s "$LAB_STUN_IP1" -p udp --sport 49152:49999 -m comment --comment lab-relay-out ||
    fail "cannot add the relay counting rules"
  LAB_RELAY_COUNTERS=1
}

# lab_relay_bytes: "IN OUT": bytes of UDP sent to coturn's relayed
# addresses and sent from them, since lab_start_stun (every run of coturn).
lab_relay_bytes() {
  local i o
  i=$(lab_inet_exec iptables -nvxL INPUT | awk '/lab-relay-in/ {print $2}')
  o=$(lab_inet_exec iptables -nvxL OUTPUT | awk '/lab-relay-out/ {print $2}')
  echo "${i:-0} ${o:-0}"
}

# lab_turn_allocations: how many TURN allocations coturn granted so far
# (since the last lab_restart_stun).
lab_turn_allocations() { grep -c 'ALLOCATE processed, success' "$LAB_DIR/turnserver.log" 2>/dev/null; }
# lab_turn_allocations_all: the same over every run of coturn.
lab_turn_allocations_all() { cat "$LAB_DIR"/turnserver*.log 2>/dev/null | grep -c 'ALLOCATE processed, success'; }

# lab_make_tls_cert: a CA and a server certificate for the website double
# (IP $LAB_WEB_IP and 127.0.0.1, DNS sfkit.natlab.example), made with certtool. Sets
# LAB_CA_CERT, LAB_WEB_CERT, LAB_WEB_KEY.
lab_make_tls_cert() {
  need certtool
  local d=$LAB_DIR/tls
  mkdir -p "$d"
  printf 'cn = "sfkit NAT lab CA"\nca\ncert_signing_key\nexpiration_days = 2\n' >"$d/ca.tmpl"
  printf 'cn = "sfkit.natlab.example"\ndns_name = "sfkit.natlab.example"\nip_address = "%s"\nip_address = "127.0.0.1"\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 2\n' \
    "$LAB_WEB_IP" >"$d/server.tmpl"
  {
    certtool --generate-privkey --key-type=ecdsa --outfile "$d/ca.key" &&
      certtool --generate-self-signed --load-privkey "$d/ca.key" --template "$d/ca.tmpl" --outfile "$d/ca.pem" &&
      certtool --generate-privkey --key-type=ecdsa --outfile "$d/server.key" &&
      certtool --generate-certificate --load-privkey "$d/server.key" --load-ca-certificate "$d/ca.pem" \
        --load-ca-privkey "$d/ca.key" --template "$d/server.tmpl" --outfile "$d/server.pem"
  } >"$d/certtool.out" 2>&1 || fail "certtool failed: $(tail -n 5 "$d/certtool.out")"
  LAB_CA_CERT=$d/ca.pem
  LAB_WEB_CERT=$d/server.pem
  LAB_WEB_KEY=$d/server.key
}

_lab_web_up() {
  lab_alive "$LAB_WEB_PID" || fail "the website double exited: $(tail -n 5 "$LAB_DIR/website.err")"
  [ -s "$LAB_DIR/website.ready" ]
}

# lab_start_website [--tls] [EXTRA ARGS...]: the sfkit website double on
# $LAB_WEB_IP (port 80; --tls: HTTPS on 443 with lab_make_tls_cert's
# certificate). Without a --config in the extra args, the study
# $LAB_STUDY_ID has every party added so far as participant, in that order
# (PID 0, 1, ...), with the key in $LAB_DIR/NAME/auth_key.txt.
# Sets LAB_API_URL; request log $LAB_DIR/website.jsonl; control socket
# $LAB_WEB_CTL (see lab_website_ctl).
lab_start_website() {
  local tls=0 port=80 args=() p
  if [ "${1:-}" = --tls ]; then
    tls=1
    shift
  fi
  [ -n "$LAB_PREFIX" ] || fail "lab_start_website before lab_init"
  if [ "$tls" = 1 ]; then
    [ -n "$LAB_CA_CERT" ] || lab_make_tls_cert
    port=443
    args+=(--tls-cert "$LAB_WEB_CERT" --tls-key "$LAB_WEB_KEY")
  fi
  case " $* " in
    *" --config "*) ;;
    *)
      args+=(--study "$LAB_STUDY_ID")
      for p in "${LAB_PARTIES[@]}"; do
        args+=(--participant "$p=@$LAB_DIR/$p/auth_key.txt")
      done
      ;;
  esac
  LAB_WEB_CTL=$LAB_DIR/website.ctl
  rm -f "$LAB_DIR/website.ready"
  lab_bg inet website "$PY" "$LAB_WEBSITE" --host "$LAB_WEB_IP" --port "$port" "${args[@]}" \
    --log "$LAB_DIR/website.jsonl" --ready-file "$LAB_DIR/website.ready" --control-socket "$LAB_WEB_CTL" "$@"
  LAB_WEB_PID=$LAB_BG_PID
  wait_until 20 _lab_web_up || fail "the website double not ready after 20 s"
  LAB_API_URL=$(cat "$LAB_DIR/website.ready")
  log "website double at $LAB_API_URL"
}

# lab_website_ctl 'COMMAND?QUERY': one control command (fault, reset, set,
# incomplete, state, log, quit: see sfkit_website.py); prints the answer.
lab_website_ctl() {
  curl -sS --max-time 10 --unix-socket "$LAB_WEB_CTL" "http://ctl/$1"
}

# lab_website_updates: one line "PARTY STATUS NAME=VALUE" per update_firestore
# request so far (what was published).
lab_website_updates() {
  "$PY" - "$LAB_DIR/website.jsonl" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("path", "").endswith("/update_firestore"):
        print(e.get("party"), e.get("status"), e.get("update"))
EOF
}

# lab_published NAME PARAM: the value of the party's personal parameter PARAM
# on the website double now (e.g. EXTERNAL_ADDR, QUIC_PUBKEY_SHA256).
lab_published() {
  lab_website_ctl state | "$PY" -c '
import json, sys
d = json.load(sys.stdin)["studies"][sys.argv[1]]
print(d["personal_parameters"].get(sys.argv[2], {}).get(sys.argv[3], {}).get("value", ""))' "$LAB_STUDY_ID" "$1" "$2"
}

# lab_wait_published NAME PARAM REGEX [SECONDS]: wait (default 30 s) until
# the party's PARAM on the website matches the extended REGEX; prints it.
_lab_pub_matches() { [[ $(lab_published "$1" "$2") =~ $3 ]]; }
lab_wait_published() {
  wait_until "${4:-30}" _lab_pub_matches "$1" "$2" "$3" ||
    fail "$1 did not publish $2 matching '$3' within ${4:-30} s (now '$(lab_published "$1" "$2")')"
  lab_published "$1" "$2"
}

# lab_website_summary: per party, reads, status codes, last published values.
lab_website_summary() { "$PY" "$LAB_WEBSITE" summary "$LAB_DIR/website.jsonl"; }

# lab_stun_probe NAME SERVER... : from ONE UDP socket in the party's host, a
# STUN Binding request to each SERVER (IP:PORT); prints "SERVER MAPPED" lines.
lab_stun_probe() {
  local name=$1
  shift
  lab_exec "$name" "$PY" "$LAB_STUN_PROBE" "$@"
}

# --- the proxy -----------------------------------------------------------------------------
# lab_party_config NAME PID [FILE]: write a party config (default
# $LAB_DIR/NAME/proxy.yaml) for the stun discovery and sfkit registry
# plugins against this lab's coturn and website double. Knobs (variables):
#   LAB_STUN_SERVERS   default "stun:203.0.113.1:3478", "stun:203.0.113.2:3478"
#   LAB_POLL           registry poll interval (default 1s)
#   LAB_KEEPALIVE      discovery keepalive (default 5s)
#   LAB_RELAY          none (default) | auto | always | never: adds the turn
#                      relay section (coturn, $LAB_TURN_USER, password file)
#   LAB_REGISTRY_EXTRA / LAB_DISCOVERY_EXTRA / LAB_TRANSPORT_EXTRA: lines
#                      added to those sections (indent them by 2 spaces),
#                      e.g. the CA bundle option of the sfkit plugin.
#   LAB_LOG_LEVEL      default debug
#   LAB_DISCOVERY=none the `none` discovery plugin instead of `stun`
#   LAB_REGISTRY=static with LAB_STATIC_PEERS="PID,IP:PORT,PIN ...": the
#                      `static` registry instead of `sfkit` (runs with the
#                      plugins the tree has today; see lab_proxy_selftest.sh)
# Sets LAB_CONF (the file).
lab_party_config() {
  local name=$1 pid=$2 file=${3:-$LAB_DIR/$1/proxy.yaml} pe ppid paddr ppin
  _lab_party "$name"
  [ "${LAB_REGISTRY:-sfkit}" = static ] || [ -n "$LAB_API_URL" ] ||
    fail "lab_party_config before lab_start_website"
  local dir=$LAB_DIR/$name
  printf '%s\n' "$LAB_TURN_PASS" >"$dir/turn.pass"
  chmod 600 "$dir/turn.pass" "$dir/auth_key.txt"
  {
    echo "# NAT lab: party $name (${LAB_KIND[$name]}), PID $pid"
    echo "party:"
    echo "  pid: $pid"
    echo "  study_id: \"$LAB_STUDY_ID\""
    echo "network: 10.0.0.0/24"
    echo "socks:"
    echo "  listen: 127.0.0.1:$LAB_SOCKS_PORT"
    echo "udp:"
    echo "  bind: 0.0.0.0:$LAB_UDP_PORT"
    echo "identity:"
    echo "  key_file: identity.key"
    echo "discovery:"
    if [ "${LAB_DISCOVERY:-stun}" = none ]; then
      echo "  plugin: none"
    else
      echo "  plugin: stun"
      echo "  servers: [${LAB_STUN_SERVERS:-\"stun:$LAB_STUN_IP1:$LAB_STUN_PORT\", \"stun:$LAB_STUN_IP2:$LAB_STUN_PORT\"}]"
      echo "  keepalive: ${LAB_KEEPALIVE:-5s}"
    fi
    [ -n "${LAB_DISCOVERY_EXTRA:-}" ] && printf '%s\n' "$LAB_DISCOVERY_EXTRA"
    echo "registry:"
    if [ "${LAB_REGISTRY:-sfkit}" = static ]; then
      echo "  plugin: static"
      if [ -z "${LAB_STATIC_PEERS:-}" ]; then
        echo "  peers: []"
      else
        echo "  peers:"
        for pe in $LAB_STATIC_PEERS; do
          IFS=, read -r ppid paddr ppin <<<"$pe"
          echo "    - pid: $ppid"
          echo "      addr: \"$paddr\""
          echo "      pubkey_sha256: $ppin"
        done
      fi
    else
      echo "  plugin: sfkit"
      echo "  api_url: $LAB_API_URL"
      echo "  auth_key_file: auth_key.txt"
      echo "  poll: ${LAB_POLL:-1s}"
    fi
    [ -n "${LAB_REGISTRY_EXTRA:-}" ] && printf '%s\n' "$LAB_REGISTRY_EXTRA"
    echo "transport:"
    echo "  plugin: quic"
    echo "  idle_timeout: 60s"
    echo "  keepalive: 5s"
    if [ "${LAB_RELAY:-none}" != none ]; then
      echo "  relay:"
      echo "    plugin: turn"
      echo "    server: turn:$LAB_STUN_IP1:$LAB_STUN_PORT"
      echo "    username: $LAB_TURN_USER"
      echo "    password_file: turn.pass"
      echo "    mode: $LAB_RELAY"
    fi
    [ -n "${LAB_TRANSPORT_EXTRA:-}" ] && printf '%s\n' "$LAB_TRANSPORT_EXTRA"
    echo "services:"
    echo "  - ports: 1024-65535"
    echo "    host: 127.0.0.1"
    echo "    peers: all"
    echo "control:"
    echo "  socket: control.sock"
    echo "log:"
    echo "  level: ${LAB_LOG_LEVEL:-debug}"
  } >"$file"
  LAB_CONF=$file
}

# lab_have_plugins FILE_BASE...: each plugin (e.g. discovery_stun,
# registry_sfkit, relay_turn) is in $SFKIT_PROXY_PLUGIN_DIR (status 0), or
# not (1; the first missing one in LAB_MISSING_PLUGIN).
lab_have_plugins() {
  local p d found
  for p in "$@"; do
    found=
    IFS=: read -r -a _dirs <<<"$SFKIT_PROXY_PLUGIN_DIR"
    for d in "${_dirs[@]}"; do
      [ -f "$d/$p.so" ] && found=1
    done
    if [ -z "$found" ]; then
      LAB_MISSING_PLUGIN=$p
      return 1
    fi
  done
}

# lab_need_plugins FILE_BASE...: SKIP unless each plugin is built.
lab_need_plugins() {
  lab_have_plugins "$@" ||
    skip "plugin $LAB_MISSING_PLUGIN is not built (not in SFKIT_PROXY_PLUGIN_DIR=$SFKIT_PROXY_PLUGIN_DIR)"
}

# lab_identity CONFIG: create the key of CONFIG if missing; print its pin.
lab_identity() {
  local out
  [ -x "$SFKIT_PROXY" ] || fail "daemon not built: $SFKIT_PROXY"
  out=$(SFKIT_PROXY_PLUGIN_DIR=$SFKIT_PROXY_PLUGIN_DIR "$SFKIT_PROXY" identity -c "$1" 2>"$LAB_DIR/identity.err") ||
    fail "sfkit-proxy identity -c $1 failed: $(cat "$LAB_DIR/identity.err")"
  [[ $out =~ ^[0-9a-f]{64}$ ]] || fail "identity printed '$out', not a 64-hex pin"
  echo "$out"
}

# lab_proxy_start NAME PID CONFIG [ARGS...]: run $SFKIT_PROXY -c CONFIG --pid
# PID in the party's host namespace, stderr to $LAB_DIR/NAME/proxy.log;
# waits (LAB_READY_TIMEOUT, default 30 s) for its `ready:` line.
lab_proxy_start() {
  local name=$1 pid=$2 conf=$3 p deadline logf
  shift 3
  _lab_party "$name"
  [ -x "$SFKIT_PROXY" ] || fail "daemon not built: $SFKIT_PROXY"
  logf=$LAB_DIR/$name/proxy.log
  : >"$logf"
  ip netns exec "${LAB_HOST_NS[$name]}" env SFKIT_PROXY_PLUGIN_DIR="$SFKIT_PROXY_PLUGIN_DIR" \
    "$SFKIT_PROXY" -c "$conf" --pid "$pid" "$@" >"$LAB_DIR/$name/proxy.out" 2>>"$logf" </dev/null &
  p=$!
  lab_track "$p"
  LAB_PROXY_PID[$name]=$p
  LAB_PROXY_PARTY_PID[$name]=$pid
  LAB_PROXY_CONF[$name]=$conf
  deadline=$(awk -v n="$(now)" -v t="${LAB_READY_TIMEOUT:-30}" 'BEGIN{printf "%.3f", n + t}')
  while ! grep -q 'ready:' "$logf"; do
    if ! lab_alive "$p"; then
      wait "$p"
      fail "proxy $name exited (status $?) before it was ready"
    fi
    lt "$(now)" "$deadline" || fail "proxy $name not ready after ${LAB_READY_TIMEOUT:-30} s"
    sleep 0.05
  done
  log "proxy $name (PID $pid) ready: $(grep -m1 'ready:' "$logf" | cut -c1-160)"
}

# lab_ready_pin NAME: the pin the party's proxy announced in its ready line.
lab_ready_pin() { grep -m1 'ready:' "$LAB_DIR/$1/proxy.log" | grep -o 'pin [0-9a-f]\{64\}' | awk '{print $2}'; }

# lab_proxy_stop NAME [SIGNAL]: stop it (SIGTERM), check exit 0, the
# `stopped` line, and the log for sanitizer reports.
lab_proxy_stop() {
  local name=$1 sig=${2:-TERM} p st logf=$LAB_DIR/$1/proxy.log
  p=${LAB_PROXY_PID[$name]:-}
  [ -n "$p" ] || fail "proxy $name is not running"
  lab_alive "$p" || {
    wait "$p"
    fail "proxy $name had already exited (status $?)"
  }
  kill -"$sig" "$p"
  wait_until 20 eval "! lab_alive $p" || fail "proxy $name still running 20 s after SIG$sig"
  wait "$p"
  st=$?
  unset "LAB_PROXY_PID[$name]"
  if grep -q -e 'ERROR: AddressSanitizer' -e 'ERROR: LeakSanitizer' -e 'runtime error:' "$logf"; then
    fail "proxy $name: sanitizer error"
  fi
  [ "$st" = 0 ] || fail "proxy $name exited with status $st after SIG$sig (expected 0)"
  grep -q 'stopped' "$logf" || fail "proxy $name logged no 'stopped' line"
}

# lab_proxy_stop_all: lab_proxy_stop every running proxy.
lab_proxy_stop_all() {
  local n
  for n in "${!LAB_PROXY_PID[@]}"; do
    lab_proxy_stop "$n"
  done
}

# lab_serve NAME MODE [ARGS...]: tests/integration/sink.py MODE on
# 127.0.0.1 (port chosen by it) in the party's host namespace; sets
# LAB_SERVER_PORT; results in $LAB_DIR/NAME/MODE.res.
lab_serve() {
  local name=$1 mode=$2 ready
  shift 2
  _lab_party "$name"
  ready=$LAB_DIR/$name/$mode.ready
  rm -f "$ready"
  lab_bg "$name" "$name/$mode" "$PY" "$LAB_SINK" "$mode" "$@" --host 127.0.0.1 --port 0 \
    --ready-file "$ready" --out "$LAB_DIR/$name/$mode.res"
  wait_until 20 _nonempty "$ready" || fail "sink.py $mode in $name did not start"
  LAB_SERVER_PORT=$(cat "$ready")
}

# lab_transfer FROM TO MB: through FROM's SOCKS port, download MB MiB from an
# HTTP server in TO's host (reached as 10.0.0.<TO's PID>) and upload them
# back, comparing SHA-256 both ways. TO's proxy must have been started with
# lab_proxy_start (for its PID). LAB_TRANSFER_TIMEOUT (default 120 s).
lab_transfer() {
  local from=$1 to=$2 mb=$3 www pid url got t0 tmo=${LAB_TRANSFER_TIMEOUT:-120}
  pid=${LAB_PROXY_PARTY_PID[$to]:-}
  [ -n "$pid" ] || fail "lab_transfer: no proxy started for $to"
  www=$LAB_DIR/$to/www
  mkdir -p "$www"
  [ -f "$www/file$mb" ] || make_file "$www/file$mb" "$mb"
  lab_serve "$to" http "$www"
  url=http://10.0.0.$pid:$LAB_SERVER_PORT
  t0=$(now)
  got=$(lab_exec "$from" curl -sS --fail --max-time "$tmo" --speed-limit 1 --speed-time 30 \
    --socks5 "127.0.0.1:$LAB_SOCKS_PORT" "$url/file$mb" 2>"$LAB_DIR/$from/curl.err" | sha_stdin) ||
    fail "$from -> $to: download failed: $(cat "$LAB_DIR/$from/curl.err")"
  [ "$got" = "$(sha_file "$www/file$mb")" ] || fail "$from <- $to: sha256 differs"
  log "$from <- $to: $mb MiB downloaded, sha256 equal, $(elapsed "$t0") s"
  t0=$(now)
  got=$(lab_exec "$from" curl -sS --fail --max-time "$tmo" --speed-limit 1 --speed-time 30 \
    --socks5 "127.0.0.1:$LAB_SOCKS_PORT" -T "$www/file$mb" "$url/upload" 2>"$LAB_DIR/$from/curl.err") ||
    fail "$from -> $to: upload failed: $(cat "$LAB_DIR/$from/curl.err")"
  [ "$got" = "$(sha_file "$www/file$mb") $(file_size "$www/file$mb")" ] || fail "$from -> $to: server got '$got'"
  log "$from -> $to: $mb MiB uploaded, sha256 equal, $(elapsed "$t0") s"
}
