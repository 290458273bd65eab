# shellcheck shell=bash
# The emulated wide-area path of the WAN benchmark (see ../shared/NATLAB.md,
# "Emulating a wide-area path"): namespaces A and B routed through W.
#
#   A 198.51.100.2 --- W (198.51.100.1 | 203.0.113.1) --- B 203.0.113.2
#
# In W: every forwarded packet goes through bench/wan/delayline (NFQUEUE,
# half the RTT each way, per-packet loss) and then tbf at WAN_RATE on W's
# egress in both directions.  Sourced by bench/wan/wan.sh:
#
#   wan_init                  namespaces, links, tbf; trap removes them
#   wan_set RTT_MS LOSS_PCT   (re)start the delay line
#   wan_exec A|B|W CMD...     run in a namespace
#
# WAN_RATE (1gbit), WAN_QUEUE: tbf limit in bytes (default: one
# bandwidth-delay product at the current RTT, at least 1 MiB: a deep
# queue; `shallow` in wan_set's third argument: 64 KiB).
# Addresses are documentation ranges, all inside this run's namespaces.

WAN_RATE=${WAN_RATE:-1gbit}
WAN_PREFIX=wan$$
WAN_NS_A=$WAN_PREFIX-a
WAN_NS_W=$WAN_PREFIX-w
WAN_NS_B=$WAN_PREFIX-b
WAN_A=198.51.100.2
WAN_B=203.0.113.2
WAN_DL_PID=

wan_exec() {
  local ns
  case $1 in
  A) ns=$WAN_NS_A ;;
  B) ns=$WAN_NS_B ;;
  W) ns=$WAN_NS_W ;;
  *) echo "wan_exec: A, B or W, not $1" >&2; return 2 ;;
  esac
  shift
  ip netns exec "$ns" "$@"
}

wan_cleanup() {
  [ -n "${WAN_ALLOWED_CC:-}" ] &&
    echo "$WAN_ALLOWED_CC" >/proc/sys/net/ipv4/tcp_allowed_congestion_control
  [ -n "$WAN_DL_PID" ] && kill "$WAN_DL_PID" 2>/dev/null && wait "$WAN_DL_PID" 2>/dev/null
  local ns
  for ns in "$WAN_NS_A" "$WAN_NS_B" "$WAN_NS_W"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
}

wan_init() {
  [ "$(id -u)" = 0 ] || { echo "wan: needs root (network namespaces)" >&2; return 77; }
  ip netns add "$WAN_NS_A" && ip netns add "$WAN_NS_W" && ip netns add "$WAN_NS_B" || return 1
  ip link add wa netns "$WAN_NS_W" type veth peer name a0 netns "$WAN_NS_A"
  ip link add wb netns "$WAN_NS_W" type veth peer name b0 netns "$WAN_NS_B"
  wan_exec A ip addr add "$WAN_A/24" dev a0
  wan_exec B ip addr add "$WAN_B/24" dev b0
  wan_exec W ip addr add 198.51.100.1/24 dev wa
  wan_exec W ip addr add 203.0.113.1/24 dev wb
  local x
  for x in A B W; do wan_exec "$x" ip link set lo up; done
  wan_exec A ip link set a0 up
  wan_exec B ip link set b0 up
  wan_exec W ip link set wa up
  wan_exec W ip link set wb up
  wan_exec A ip route add default via 198.51.100.1
  wan_exec B ip route add default via 203.0.113.1
  wan_exec W sysctl -qw net.ipv4.ip_forward=1
  # A direct TCP flow must be able to fill the bandwidth-delay product
  # (64 MiB covers 1 Gbit/s at 100 ms with a queue of one more BDP).
  # The reference is TCP as most sites run it: CUBIC (this kernel's own
  # default may be another; WAN_TCP_CC overrides).  A namespace may only
  # pick what the host allows: add it there for the run, restored after.
  local allowed=/proc/sys/net/ipv4/tcp_allowed_congestion_control
  WAN_ALLOWED_CC=$(cat "$allowed")
  case " $WAN_ALLOWED_CC " in
  *" ${WAN_TCP_CC:-cubic} "*) WAN_ALLOWED_CC= ;;
  *) echo "$WAN_ALLOWED_CC ${WAN_TCP_CC:-cubic}" >"$allowed" || return 1 ;;
  esac
  for x in A B; do
    wan_exec "$x" sysctl -qw net.ipv4.tcp_congestion_control="${WAN_TCP_CC:-cubic}"
    wan_exec "$x" sysctl -qw net.ipv4.tcp_rmem="4096 131072 134217728"
    wan_exec "$x" sysctl -qw net.ipv4.tcp_wmem="4096 65536 134217728"
  done
  wan_exec W iptables -A FORWARD -j NFQUEUE --queue-num 0
}

# wan_tbf LIMIT_BYTES: the rate limit on W's egress both ways.
wan_tbf() {
  local d
  for d in wa wb; do
    wan_exec W tc qdisc replace dev "$d" root tbf rate "$WAN_RATE" burst 64kb limit "$1"
  done
}

# wan_set RTT_MS LOSS_PCT [shallow]
wan_set() {
  local rtt=$1 loss=$2 q gso=
  if [ -n "$WAN_DL_PID" ]; then
    kill "$WAN_DL_PID" 2>/dev/null
    wait "$WAN_DL_PID" 2>/dev/null
    WAN_DL_PID=
  fi
  if [ "${3:-}" = shallow ]; then
    q=65536
  else
    # one BDP at 1 Gbit/s (125 bytes per ms per Mbit/s... 125000 B/ms), >= 1 MiB
    q=$(awk -v r="$rtt" 'BEGIN{q = r * 125000; if (q < 1048576) q = 1048576; printf "%d", q}')
  fi
  [ -n "${WAN_QUEUE:-}" ] && q=$WAN_QUEUE
  wan_tbf "$q"
  awk -v l="$loss" 'BEGIN{exit !(l == 0)}' && gso=-g
  # Not through wan_exec: $! must be the delay line itself (ip execs it).
  ip netns exec "$WAN_NS_W" "$WAN_DELAYLINE" -q 0 -d "$(awk -v r="$rtt" 'BEGIN{print r / 2}')" \
    -l "$loss" $gso -s "$RANDOM" >"$WAN_DIR/delayline.out" 2>>"$WAN_DIR/delayline.err" &
  WAN_DL_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    grep -q '^delayline:' "$WAN_DIR/delayline.out" 2>/dev/null && return 0
    kill -0 "$WAN_DL_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "wan: the delay line did not start: $(cat "$WAN_DIR/delayline.err")" >&2
  return 1
}

# wan_ping_avg: average ping RTT A -> B in ms (10 pings).
wan_ping_avg() {
  wan_exec A ping -q -c 10 -i 0.05 "$WAN_B" | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p'
}
