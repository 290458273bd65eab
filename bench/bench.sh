#!/bin/bash
# shellcheck disable=SC2317  # functions called indirectly (path_*, traps)
# sfkit-proxy benchmark (issue #2): the same workloads over several paths,
# side by side, on loopback, in one run.
#
#   bench/bench.sh [BUILDDIR]      (`make bench` passes the build dir;
#                                   default ./build, else <srcdir>/build)
#
# Paths (BENCH_PATHS, in this order):
#   direct  the load generator straight to the server on 127.0.0.1
#   sfkit   client -> party 1 SOCKS5 -> QUIC over loopback UDP -> party 0
#           -> server (the server is party 0's service 10.0.0.0:PORT)
# A path is a set of shell functions, so adding one (e.g. `ssh -D`) means
# writing path_NAME_start / path_NAME_stop and adding NAME to BENCH_PATHS;
# see "Paths" below.
#
# Workloads (bench/loadgen.py against bench/echo_server.py):
#   throughput  BENCH_BULK_MIB MiB (default 1024) client -> server ("up")
#               and server -> client ("down"), each over 1 connection and
#               over 16 in parallel (BENCH_CONNS="1 16")
#   latency     BENCH_PINGS (10000) 1-byte round trips on one connection
#               (TCP_NODELAY), p50 and p99
#   setups      BENCH_SETUPS (2000) sequential connect (+SOCKS5) + 1-byte
#               round trip + close, per second
# and, for each proxy process: CPU seconds per GiB over the throughput runs
# (utime+stime from /proc/PID/stat) and peak RSS (VmHWM).
#
# Every case is bounded: BENCH_CASE_SECONDS (default 120) per case, and the
# load generator is killed 60 s after that.  All traffic goes to 127.0.0.1.
# The table goes to docs/benchmarks.md (BENCH_OUT overrides) and to stdout.
# `make` may run this with /bin/sh (dash on Debian): use bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$SRCDIR/bench
if [ $# -ge 1 ]; then
  BUILD=$1
elif [ -x ./build/src/sfkit-proxy ]; then
  BUILD=./build
else
  BUILD=$SRCDIR/build
fi
[ -d "$BUILD" ] || { echo "bench: no build dir $BUILD" >&2; exit 1; }
BUILD=$(cd "$BUILD" && pwd)

BULK_MIB=${BENCH_BULK_MIB:-1024}
CONNS=${BENCH_CONNS:-1 16}
PINGS=${BENCH_PINGS:-10000}
SETUPS=${BENCH_SETUPS:-2000}
CASE_SECONDS=${BENCH_CASE_SECONDS:-120}
PATHS=${BENCH_PATHS:-direct sfkit}
OUT=${BENCH_OUT:-$SRCDIR/docs/benchmarks.md}
PY=${PYTHON:-python3}

for v in "$BULK_MIB" "$PINGS" "$SETUPS" "$CASE_SECONDS" $CONNS; do
  case $v in '' | *[!0-9]* | 0) echo "bench: '$v' is not a positive whole number" >&2; exit 1 ;; esac
done

BIN=$BUILD/src/sfkit-proxy
export SFKIT_PROXY_PLUGIN_DIR=$BUILD/plugins/quic/.libs:$BUILD/plugins/static/.libs:$BUILD/plugins/none/.libs
log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
for t in "$PY" awk timeout getconf; do
  command -v "$t" >/dev/null 2>&1 || die "'$t' is not installed"
done

# --- temp dir and cleanup --------------------------------------------------------
T=$(mktemp -d "${TMPDIR:-/tmp}/sfkit-bench.XXXXXX")
PIDS=()
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

cleanup() {
  local rc=$? p i f
  trap - EXIT INT TERM HUP
  for p in "${PIDS[@]}"; do alive "$p" && kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for ((i = 0; i < 50; i++)); do alive "$p" || break; sleep 0.1; done
    alive "$p" && kill -KILL "$p" 2>/dev/null
  done
  wait 2>/dev/null
  if [ "$rc" != 0 ]; then
    for f in "$T"/*.log "$T"/*.err; do
      [ -s "$f" ] || continue
      echo "----- last lines of $(basename "$f") -----" >&2
      tail -n 20 "$f" >&2
    done
  fi
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# --- /proc helpers ---------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
# cpu_ticks PID...: utime+stime summed (fields 14 and 15 of /proc/PID/stat;
# the command name in field 2 may hold spaces, so count from its ')').
cpu_ticks() {
  local p sum=0 t
  for p in "$@"; do
    t=$(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}') || die "process $p is gone"
    sum=$((sum + t))
  done
  echo "$sum"
}
# hwm_kib PID...: largest VmHWM (peak resident set) of the processes.
hwm_kib() {
  local p max=0 v
  for p in "$@"; do
    v=$(awk '/^VmHWM:/{print $2}' "/proc/$p/status") || die "process $p is gone"
    [ "${v:-0}" -gt "$max" ] && max=$v
  done
  echo "$max"
}

# kv KEY LINE: the value of KEY in a loadgen key=value line.
kv() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k {print $2}'; }

# free_ports KIND N: N distinct free 127.0.0.1 ports, one a line.
free_ports() {
  "$PY" - "$1" "$2" <<'EOF'
import socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
socks = [socket.socket(socket.AF_INET, kind) for _ in range(int(sys.argv[2]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# wait_for SECONDS CMD...: poll every 50 ms.
wait_for() {
  local i n=$(($1 * 20))
  shift
  for ((i = 0; i < n; i++)); do
    "$@" && return 0
    sleep 0.05
  done
  return 1
}

# stop_pid PID: SIGTERM, wait 20 s; sets STATUS to the exit status (or
# "hung").  Not in a subshell: only this shell can wait for its children.
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_for 20 eval "! alive $pid"; then
    kill -KILL "$pid" 2>/dev/null
    STATUS=hung
    return
  fi
  STATUS=0
  wait "$pid" || STATUS=$?
}

LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)

# --- the servers (shared by every path) --------------------------------------------
"$PY" "$BENCH_DIR/echo_server.py" --ready-file "$T/server.ready" --max-seconds 7200 \
  >"$T/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for 20 test -s "$T/server.ready" || die "echo_server.py did not start"
read -r SINK_PORT ECHO_PORT SOURCE_PORT <"$T/server.ready"

# --- Paths ---------------------------------------------------------------------------
# path_NAME_start sets:
#   PATH_LABEL     column heading
#   PATH_SOCKS     127.0.0.1:PORT of the SOCKS5 proxy, or "" to dial directly
#   PATH_HOST      the server's address as the client names it
#   PATH_CLIENT_PIDS / PATH_SERVER_PIDS  proxy processes on the client /
#                  server side (space-separated, may be empty)
# path_NAME_stop stops them and sets PATH_STOP ("" when all went well, else a
# note for the report).

path_direct_start() {
  PATH_LABEL="direct"
  PATH_SOCKS=""
  PATH_HOST=127.0.0.1
  PATH_CLIENT_PIDS=""
  PATH_SERVER_PIDS=""
}
path_direct_stop() { PATH_STOP=""; }

SFK_P0="" SFK_P1=""
path_sfkit_start() {
  local s0 s1 u0 u1 pin0 pin1 zero
  [ -x "$BIN" ] || die "no daemon at $BIN (build first)"
  [ -f "$BUILD/plugins/quic/.libs/transport_quic.so" ] || die "no QUIC plugin in $BUILD/plugins/quic/.libs"
  { read -r s0; read -r s1; } < <(free_ports tcp 2)
  { read -r u0; read -r u1; } < <(free_ports udp 2)
  zero=0000000000000000000000000000000000000000000000000000000000000000
  sfk_config 0 "$s0" "$u0" 1 "$u1" "$zero"
  sfk_config 1 "$s1" "$u1" 0 "$u0" "$zero"
  pin0=$("$BIN" identity -c "$T/p0.yaml" 2>"$T/identity.err") || die "identity: $(cat "$T/identity.err")"
  pin1=$("$BIN" identity -c "$T/p1.yaml" 2>"$T/identity.err") || die "identity: $(cat "$T/identity.err")"
  sfk_config 0 "$s0" "$u0" 1 "$u1" "$pin1"
  sfk_config 1 "$s1" "$u1" 0 "$u0" "$pin0"
  "$BIN" -c "$T/p0.yaml" </dev/null >/dev/null 2>"$T/p0.log" &
  SFK_P0=$!
  PIDS+=("$SFK_P0")
  "$BIN" -c "$T/p1.yaml" </dev/null >/dev/null 2>"$T/p1.log" &
  SFK_P1=$!
  PIDS+=("$SFK_P1")
  wait_for 20 grep -q 'ready:' "$T/p0.log" || die "party 0 proxy not ready"
  wait_for 20 grep -q 'ready:' "$T/p1.log" || die "party 1 proxy not ready"
  PATH_LABEL="sfkit-proxy"
  PATH_SOCKS=127.0.0.1:$s1
  PATH_HOST=10.0.0.0
  PATH_CLIENT_PIDS=$SFK_P1
  PATH_SERVER_PIDS=$SFK_P0
}
path_sfkit_stop() {
  local r0 r1
  stop_pid "$SFK_P1"
  r1=$STATUS
  stop_pid "$SFK_P0"
  r0=$STATUS
  PATH_STOP=""
  if [ "$r0" != 0 ] || [ "$r1" != 0 ]; then
    PATH_STOP="after SIGTERM the proxies exited with $r1 (party 1) and $r0 (party 0), not 0"
  fi
}
# sfk_config PID SOCKS UDP PEER_PID PEER_UDP PEER_PIN: party PID's config;
# its services are the three benchmark ports.
sfk_config() {
  cat >"$T/p$1.yaml" <<EOF
party: {pid: $1}
socks: {listen: "127.0.0.1:$2"}
udp: {bind: "127.0.0.1:$3"}
identity: {key_file: p$1.key}
discovery: {plugin: none}
registry:
  plugin: static
  peers:
    - {pid: $4, addr: "127.0.0.1:$5", pubkey_sha256: "$6"}
services:
  - {ports: "$SINK_PORT", host: 127.0.0.1, peers: all}
  - {ports: "$ECHO_PORT", host: 127.0.0.1, peers: all}
  - {ports: "$SOURCE_PORT", host: 127.0.0.1, peers: all}
log: {level: info}
EOF
}

# --- running the cases ------------------------------------------------------------
declare -A R=() # R[path.metric] = figure
NOTES=()
MAX_LOADGEN_CPU=0 MAX_SERVER_CPU=0

# loadgen MODE PORT ARGS...: run one bounded case on the current path; its
# key=value line in LG.  A failed case leaves LG empty, adds a note and
# marks the run failed, and the benchmark goes on.  (Not in a subshell: it
# adds to NOTES.)
loadgen() {
  local mode=$1 port=$2 c rc=0 s0 s1 w0 w1
  shift 2
  local socks=()
  [ -n "$PATH_SOCKS" ] && socks=(--socks "$PATH_SOCKS")
  : >"$T/loadgen.err"
  s0=$(cpu_ticks "$SERVER_PID")
  w0=$(date +%s.%N)
  LG=$(timeout $((CASE_SECONDS + 60)) "$PY" "$BENCH_DIR/loadgen.py" "$mode" \
    --target "$PATH_HOST:$port" "${socks[@]}" --max-seconds "$CASE_SECONDS" "$@" \
    2>"$T/loadgen.err") || rc=$?
  w1=$(date +%s.%N)
  s1=$(cpu_ticks "$SERVER_PID")
  # The server's CPU over the whole case (setup included: an upper bound).
  c=$(awk -v t=$((s1 - s0)) -v hz="$CLK_TCK" -v a="$w0" -v b="$w1" 'BEGIN{printf "%.0f", 100 * t / hz / (b - a)}')
  if [ "$c" -gt "$MAX_SERVER_CPU" ]; then MAX_SERVER_CPU=$c; fi
  if [ "$rc" != 0 ]; then
    [ "$rc" != 124 ] || echo "killed after $((CASE_SECONDS + 60)) s" >>"$T/loadgen.err"
    log "$PATH_LABEL: loadgen $mode $* FAILED: $(tail -n 1 "$T/loadgen.err")"
    NOTES+=("$PATH_LABEL, $mode $*: FAILED ($(tail -n 1 "$T/loadgen.err"))")
    FAILED=1
    LG=""
    return 1
  fi
  log "  $LG"
  [ "$(kv complete "$LG")" = 1 ] ||
    NOTES+=("$PATH_LABEL, $mode $*: stopped at the ${CASE_SECONDS} s limit; the figure covers what was done")
  c=$(kv cpu_pct "$LG")
  if [ "${c:-0}" -gt "$MAX_LOADGEN_CPU" ]; then MAX_LOADGEN_CPU=$c; fi
}

# fig KEY: KEY from the last case, or "failed".
fig() {
  local v
  v=$(kv "$1" "$LG")
  echo "${v:-failed}"
}
# per_gib TICKS BYTES OK: CPU seconds per GiB, or n/a.
per_gib() {
  if [ "$3" != 1 ] || [ "$2" -le 0 ]; then
    echo "n/a"
  else
    awk -v t="$1" -v hz="$CLK_TCK" -v b="$2" 'BEGIN{printf "%.2f", t / hz / (b / 2^30)}'
  fi
}

run_path() {
  local name=$1 n moved=0 c0 c1 s0 s1 side v bulk_ok
  "path_${name}_start"
  LABEL[$name]=$PATH_LABEL
  MAX_LOADGEN_CPU=0 MAX_SERVER_CPU=0
  log "$PATH_LABEL: warm-up"
  loadgen ping "$ECHO_PORT" --count 20 --warmup 20 || true
  c0=0 s0=0 bulk_ok=1
  # (PID lists are split into words on purpose.)
  # shellcheck disable=SC2086
  [ -z "$PATH_CLIENT_PIDS" ] || c0=$(cpu_ticks $PATH_CLIENT_PIDS)
  # shellcheck disable=SC2086
  [ -z "$PATH_SERVER_PIDS" ] || s0=$(cpu_ticks $PATH_SERVER_PIDS)
  for n in $CONNS; do
    log "$PATH_LABEL: throughput up (client -> server), $n connection(s), $BULK_MIB MiB"
    loadgen bulk "$SINK_PORT" --conns "$n" --bytes $((BULK_MIB * 1048576)) || bulk_ok=0
    R[$name.up$n]=$(fig mibps)
    moved=$((moved + $(kv bytes "$LG") + 0))
    log "$PATH_LABEL: throughput down (server -> client), $n connection(s), $BULK_MIB MiB"
    loadgen bulk "$SOURCE_PORT" --down --conns "$n" --bytes $((BULK_MIB * 1048576)) || bulk_ok=0
    R[$name.down$n]=$(fig mibps)
    moved=$((moved + $(kv bytes "$LG") + 0))
  done
  # CPU per GiB only when every throughput case finished.
  # shellcheck disable=SC2086
  if [ -n "$PATH_CLIENT_PIDS" ]; then
    c1=$(cpu_ticks $PATH_CLIENT_PIDS)
    R[$name.cpu_client]=$(per_gib $((c1 - c0)) "$moved" "$bulk_ok")
  fi
  # shellcheck disable=SC2086
  if [ -n "$PATH_SERVER_PIDS" ]; then
    s1=$(cpu_ticks $PATH_SERVER_PIDS)
    R[$name.cpu_server]=$(per_gib $((s1 - s0)) "$moved" "$bulk_ok")
  fi
  log "$PATH_LABEL: latency, $PINGS round trips"
  loadgen ping "$ECHO_PORT" --count "$PINGS" || true
  R[$name.p50]=$(fig p50_us)
  R[$name.p99]=$(fig p99_us)
  log "$PATH_LABEL: connection setups, $SETUPS"
  loadgen setup "$ECHO_PORT" --count "$SETUPS" || true
  R[$name.setups]=$(fig per_s)
  for side in client server; do
    v="PATH_${side^^}_PIDS"
    # shellcheck disable=SC2086
    [ -z "${!v}" ] || R[$name.rss_$side]=$(awk -v k="$(hwm_kib ${!v})" 'BEGIN{printf "%.1f", k / 1024}')
  done
  R[$name.lgcpu]=$MAX_LOADGEN_CPU
  R[$name.srvcpu]=$MAX_SERVER_CPU
  "path_${name}_stop"
  if [ -n "$PATH_STOP" ]; then
    NOTES+=("$PATH_LABEL: $PATH_STOP")
    FAILED=1
  fi
}

declare -A LABEL=()
FAILED=0
for p in $PATHS; do
  declare -F "path_${p}_start" >/dev/null || die "unknown path '$p' (known: direct sfkit)"
done
for p in $PATHS; do run_path "$p"; done
# The UDP socket buffers the kernel granted (they bound QUIC throughput).
UDP_NOTE=$(grep -ho 'UDP [a-z]* buffer: .*' "$T/p0.log" 2>/dev/null | sort -u | paste -sd ';' - | sed 's/;/; /g' || true)

# --- the report ---------------------------------------------------------------------
cpu_model=$(awk -F': *' '/^model name/{print $2; exit}' /proc/cpuinfo)
[ -n "$cpu_model" ] || cpu_model=$(lscpu 2>/dev/null | awk -F': *' '/^Model name/{print $2; exit}')
pc_version() { pkg-config --modversion "$1" 2>/dev/null || echo "?"; }
cflags=$(sed -n "s/^CFLAGS = //p" "$BUILD/Makefile" 2>/dev/null | head -n 1 || true)
sanitized=""
grep -aq '__asan_init' "$BIN" 2>/dev/null && sanitized=" (ASan/UBSan build: figures are not representative)"

row() { # row TITLE METRIC
  local line="| $1 |" p
  for p in $PATHS; do line="$line ${R[$p.$2]:-–} |"; done
  echo "$line"
}

{
  echo "# Benchmarks"
  echo
  echo "Generated by \`bench/bench.sh\` (\`make bench\`); every figure below comes"
  echo "from the same run.  All traffic stays on 127.0.0.1, so this measures the"
  echo "proxies' own cost (CPU, copies, QUIC, crypto), not a network."
  echo
  echo "- Machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, Linux $(uname -r)"
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); 1-minute load average before the run"
  echo "  $LOAD_BEFORE, after $(cut -d' ' -f1 /proc/loadavg) (other work on the machine skews every figure)"
  echo "- sfkit-proxy $("$BIN" --version 2>/dev/null | awk '{print $2}') (CFLAGS \`${cflags:-?}\`)$sanitized,"
  echo "  ngtcp2 $(pc_version libngtcp2), GnuTLS $(pc_version gnutls), $("$PY" --version 2>&1)"
  echo "- Paths: **direct** = load generator to server; **sfkit-proxy** = load"
  echo "  generator -> party 1 SOCKS5 -> QUIC over loopback UDP -> party 0 ->"
  echo "  server (two daemons, static registry, no discovery)."
  echo
  printf '| |'
  for p in $PATHS; do printf ' %s |' "${LABEL[$p]}"; done
  printf '\n|---|'
  for p in $PATHS; do printf -- '---:|'; done
  echo
  for n in $CONNS; do
    row "throughput up (client → server), $n connection$([ "$n" = 1 ] || echo s), MiB/s" "up$n"
  done
  for n in $CONNS; do
    row "throughput down (server → client), $n connection$([ "$n" = 1 ] || echo s), MiB/s" "down$n"
  done
  row "latency p50, 1-byte round trip, µs" p50
  row "latency p99, µs" p99
  row "connection setups/s" setups
  row "CPU s/GiB, client-side proxy" cpu_client
  row "CPU s/GiB, server-side proxy" cpu_server
  row "peak RSS, client-side proxy, MiB" rss_client
  row "peak RSS, server-side proxy, MiB" rss_server
  row "load generator CPU, busiest case, % of a core" lgcpu
  row "test server CPU, busiest case, % of a core" srvcpu
  echo
  echo "How each figure is taken (\`bench/loadgen.py\` against \`bench/echo_server.py\`):"
  echo
  echo "- throughput: $BULK_MIB MiB over ${CONNS// / and over } parallel connection(s), 1 MiB"
  echo "  writes and reads; up: client to a sink, timed from the first byte until"
  echo "  the sink has confirmed every byte; down: a source sends to the client,"
  echo "  timed until the client has every byte.  Connection setup is excluded."
  echo "- latency: $PINGS round trips of 1 byte on one connection, TCP_NODELAY."
  echo "- connection setups: $SETUPS times in a row: connect (and SOCKS5 no-auth"
  echo "  CONNECT, answered only once the far side has connected), 1-byte round"
  echo "  trip, close."
  echo "- CPU s/GiB: utime+stime of each proxy process (/proc/PID/stat) over all"
  echo "  throughput runs, divided by the GiB moved.  Peak RSS: VmHWM at the end."
  echo "- Load generator and test server CPU: CPU time over wall time in the"
  echo "  busiest case (100 = one core; near 100 would mean a figure is theirs,"
  echo "  not the path's)."
  [ -n "$UDP_NOTE" ] && echo "- From party 0's log: $UDP_NOTE."
  for n in "${NOTES[@]}"; do echo "- Note: $n"; done
} >"$T/report.md"

cat "$T/report.md"
if cp "$T/report.md" "$OUT" 2>/dev/null; then
  log "wrote $OUT"
else
  log "could not write $OUT (the table is above)"
fi
exit "$FAILED"
