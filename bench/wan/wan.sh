#!/bin/bash
# The WAN benchmark: direct TCP, `ssh -N -D` and sfkit-proxy side by side
# over an emulated wide-area path (bench/wan/wanlab.sh: delay line on
# NFQUEUE, tbf, per-packet loss).  Needs root; a measurement, not a test:
# not part of `make check` (run it with `make bench-wan`).
#
#   bench/wan/wan.sh [BUILD_DIR]
#
# Environment:
#   WAN_RTTS    RTTs in ms (default "0 20 50 100")
#   WAN_LOSSES  loss in % (default "0 0.1 1"); bulk only for loss > 0,
#               and not at RTT 0 unless WAN_RTT0_LOSS=1
#   WAN_PATHS   paths (default "direct ssh proxy")
#   WAN_REPS    repetitions, medians reported (default 3)
#   WAN_SECS    seconds per bulk cell (default 8)
#   WAN_PROXY_EXTRA  lines for the proxies' transport section, e.g.
#               "  congestion: cubic" (each indented by two spaces)
#   WAN_OUT     write the Markdown report there (docs/wan.md), and the
#               chart next to it (PNG, gnuplot)
#   WAN_SHARE=1 instead of the grid: one sfkit-proxy connection and one
#               direct TCP flow on the link at the same time (each setting)
#   SHALLOW=1   a shallow router queue (64 KiB) instead of one BDP
# Prints every measurement as it goes ("cell ..." lines) and the table.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd) || exit 2
RTTS=${WAN_RTTS:-0 20 50 100}
LOSSES=${WAN_LOSSES:-0 0.1 1}
PATHS=${WAN_PATHS:-direct ssh proxy}
REPS=${WAN_REPS:-3}
SECS=${WAN_SECS:-8}
WAN_DELAYLINE=$BUILD/bench/wan/delayline
LOAD=$BUILD/bench/wan/wanload
PROXY=${WAN_PROXY:-$BUILD/src/sfkit-proxy}
P=$BUILD/plugins
export SFKIT_PROXY_PLUGIN_DIR=$P/quic/.libs:$P/static/.libs:$P/none/.libs
for x in "$WAN_DELAYLINE" "$LOAD" "$PROXY"; do
  [ -x "$x" ] || { echo "wan: $x is not built (configure found libnetfilter_queue?)" >&2; exit 77; }
done
for x in sshd ssh ssh-keygen tc iptables; do
  command -v "$x" >/dev/null || [ -x "/usr/sbin/$x" ] ||
    { echo "wan: $x is missing (scripts/install-deps.sh)" >&2; exit 77; }
done
WAN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sfk-wan.XXXXXX") || exit 1
# shellcheck source=bench/wan/wanlab.sh
. "$SRC/bench/wan/wanlab.sh"
PIDS=()
stop_all() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  PIDS=()
}
trap 'stop_all; wan_cleanup; rm -rf "$WAN_DIR"' EXIT
trap 'exit 130' INT TERM
wan_init || exit $?

SRV_PORT=5001 SSH_PORT=22 SOCKS_SSH=1080 SOCKS_PROXY=1081 UDP_PORT=4433
RES=$WAN_DIR/results # lines: rtt loss path metric value
: >"$RES"

# --- the servers and the two proxies ---------------------------------------

wan_exec B "$LOAD" server "$SRV_PORT" >"$WAN_DIR/server.out" &
PIDS+=($!)

ssh_setup() {
  ssh-keygen -q -t ed25519 -N '' -f "$WAN_DIR/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$WAN_DIR/user_key"
  cp "$WAN_DIR/user_key.pub" "$WAN_DIR/authorized_keys"
  chmod 600 "$WAN_DIR/authorized_keys"
  mkdir -p /run/sshd
  cat >"$WAN_DIR/sshd_config" <<EOF
ListenAddress $WAN_B:$SSH_PORT
HostKey $WAN_DIR/host_key
AuthorizedKeysFile $WAN_DIR/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
PidFile $WAN_DIR/sshd.pid
EOF
}
ssh_setup

# Start what carries PATH for the current setting; it is restarted for
# every setting so that no congestion state crosses from one to the next.
start_path() {
  case $1 in
  direct) ;;
  ssh)
    wan_exec B /usr/sbin/sshd -D -e -f "$WAN_DIR/sshd_config" 2>>"$WAN_DIR/sshd.log" &
    PIDS+=($!)
    local i
    for ((i = 0; i < 100; i++)); do
      wan_exec B ss -Hltn "sport = :$SSH_PORT" | grep -q . && break
      sleep 0.05
    done
    wan_exec A ssh -N -D "127.0.0.1:$SOCKS_SSH" -i "$WAN_DIR/user_key" \
      -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
      -o LogLevel=ERROR -p "$SSH_PORT" "root@$WAN_B" 2>>"$WAN_DIR/ssh.log" &
    PIDS+=($!)
    wait_socks A "$SOCKS_SSH" ssh
    ;;
  proxy)
    # ip execs the daemon: $! is its PID (for the peak RSS).
    ip netns exec "$WAN_NS_B" "$PROXY" -c "$WAN_DIR/p0.yaml" 2>>"$WAN_DIR/p0.log" &
    PIDS+=($!)
    PROXY_PID0=$!
    ip netns exec "$WAN_NS_A" "$PROXY" -c "$WAN_DIR/p1.yaml" 2>>"$WAN_DIR/p1.log" &
    PIDS+=($!)
    PROXY_PID1=$!
    wait_socks A "$SOCKS_PROXY" proxy
    ;;
  esac
}

# wait_socks NS PORT WHAT: a first connection through the SOCKS port works.
wait_socks() {
  local i
  for ((i = 0; i < 200; i++)); do
    wan_exec "$1" "$LOAD" setup "$(target_of "$3")" -x "127.0.0.1:$2" -c 1 >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "wan: $3 did not come up" >&2
  exit 1
}

target_of() {
  case $1 in
  proxy) echo "10.0.0.0:$SRV_PORT" ;;
  *) echo "$WAN_B:$SRV_PORT" ;;
  esac
}

# load PATH ARGS...: wanload from A over PATH.
load() {
  local path=$1 mode=$2
  shift 2
  case $path in
  direct) wan_exec A "$LOAD" "$mode" "$(target_of direct)" "$@" ;;
  ssh) wan_exec A "$LOAD" "$mode" "$(target_of ssh)" -x "127.0.0.1:$SOCKS_SSH" "$@" ;;
  proxy) wan_exec A "$LOAD" "$mode" "$(target_of proxy)" -x "127.0.0.1:$SOCKS_PROXY" "$@" ;;
  esac
}

proxy_configs() {
  local pid ns addr peer paddr
  for pid in 0 1; do
    if [ "$pid" = 0 ]; then addr=$WAN_B paddr=$WAN_A peer=1; else addr=$WAN_A paddr=$WAN_B peer=0; fi
    cat >"$WAN_DIR/p$pid.yaml" <<EOF
party:
  pid: $pid
network: 10.0.0.0/24
socks:
  listen: 127.0.0.1:$([ "$pid" = 1 ] && echo "$SOCKS_PROXY" || echo 1082)
udp:
  bind: "$addr:$UDP_PORT"
identity:
  key_file: p$pid.key
discovery:
  plugin: none
registry:
  plugin: static
  peers:
    - pid: $peer
      addr: "$paddr:$UDP_PORT"
      pubkey_sha256: ${PIN[$peer]:-0000000000000000000000000000000000000000000000000000000000000000}
transport:
  plugin: quic
${WAN_PROXY_EXTRA:-}
services:
  - ports: $SRV_PORT
    host: 127.0.0.1
    peers: all
control:
  socket: $WAN_DIR/p$pid.sock
log:
  level: info
EOF
  done
}
declare -a PIN
proxy_configs
for pid in 0 1; do
  PIN[$pid]=$("$PROXY" identity -c "$WAN_DIR/p$pid.yaml") || exit 1
done
proxy_configs

# vmhwm PID: peak RSS in KiB.
vmhwm() { awk '/^VmHWM:/{print $2}' "/proc/$1/status" 2>/dev/null; }
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
rec() { echo "$RTT $LOSS $1 $2 $3" >>"$RES"; echo "cell rtt=$RTT loss=$LOSS path=$1 $2=$3"; }

# governor_off: wait (up to 15 s) until the sending proxy's queue governor
# is off (status: peers[].queue), which is 5 s after the last round trip
# of the previous repetition: the bulk cells measure bulk transfers alone,
# the loaded cell measures them next to round trips.
governor_off() {
  local i
  for ((i = 0; i < 150; i++)); do
    ip netns exec "$WAN_NS_B" "$PROXY" status -c "$WAN_DIR/p0.yaml" --json 2>/dev/null |
      grep -q '"queue": *"on"' || return 0
    sleep 0.1
  done
  echo "wan: the queue governor stayed on" >&2
}

# One setting: every path, REPS times, interleaved.
setting() {
  local rep path line pings
  wan_set "$RTT" "$LOSS" ${SHALLOW:+shallow} || exit 1
  [ "$LOSS" = 0 ] && [ -z "${SHALLOW:-}" ] && rec link ping_ms "$(wan_ping_avg)"
  # 1-byte round trips: as many as fit in ~4 s (at least 30).
  pings=$(awk -v r="$RTT" 'BEGIN{n = (r > 0) ? int(4000 / r) : 2000; if (n < 30) n = 30; if (n > 2000) n = 2000; print n}')
  for path in $PATHS; do
    start_path "$path"
    for ((rep = 1; rep <= REPS; rep++)); do
      [ "$path" = proxy ] && governor_off
      line=$(load "$path" bulk -n 1 -t "$SECS") || exit 1
      rec "$path" bulk1 "$(kv mbps "$line")"
      line=$(load "$path" bulk -n 8 -t "$SECS") || exit 1
      rec "$path" bulk8 "$(kv mbps "$line")"
      if [ "$LOSS" = 0 ] && [ -z "${SHALLOW:-}" ] && [ -z "${WAN_BULK_ONLY:-}" ]; then
        line=$(load "$path" ping -c "$pings") || exit 1
        rec "$path" ping_p50 "$(kv p50_us "$line")"
        rec "$path" ping_p99 "$(kv p99_us "$line")"
        line=$(load "$path" loaded -n 8 -t "$SECS") || exit 1
        # No round trip finished beside the bulk transfers: "-".
        [ "$(kv ping_count "$line")" != 0 ] &&
          rec "$path" loaded_p50 "$(kv ping_p50_us "$line")"
        rec "$path" loaded_mbps "$(kv mbps "$line")"
        line=$(load "$path" setup -c 20) || exit 1
        rec "$path" setup_p50 "$(kv first_p50_us "$line")"
        rec "$path" connect_p50 "$(kv connect_p50_us "$line")"
      fi
    done
    if [ "$path" = proxy ]; then
      rec proxy rss0_kib "$(vmhwm "$PROXY_PID0")"
      rec proxy rss1_kib "$(vmhwm "$PROXY_PID1")"
    fi
    stop_all_but_server
  done
}

# Sharing the link: one proxy connection next to one direct TCP flow.
share_setting() {
  local rep a b
  wan_set "$RTT" "$LOSS" ${SHALLOW:+shallow} || exit 1
  start_path proxy
  for ((rep = 1; rep <= REPS; rep++)); do
    load direct bulk -n 1 -t "$SECS" >"$WAN_DIR/share.direct" &
    b=$!
    a=$(load proxy bulk -n 1 -t "$SECS") || exit 1
    wait "$b" || exit 1
    rec share_proxy bulk1 "$(kv mbps "$a")"
    rec share_direct bulk1 "$(kv mbps "$(cat "$WAN_DIR/share.direct")")"
  done
  stop_all_but_server
}

stop_all_but_server() {
  local keep=${PIDS[0]} p
  for p in "${PIDS[@]:1}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]:1}"; do wait "$p" 2>/dev/null; done
  PIDS=("$keep")
}

for RTT in $RTTS; do
  for LOSS in $LOSSES; do
    # A 0-ms path with random loss is no wide-area path: skipped unless asked.
    [ "$RTT" = 0 ] && [ "$LOSS" != 0 ] && [ -z "${WAN_RTT0_LOSS:-}" ] && continue
    if [ -n "${WAN_SHARE:-}" ]; then share_setting; else setting; fi
  done
done

. "$SRC/bench/wan/report.sh"
