#!/bin/bash
# shellcheck disable=SC2317  # functions called indirectly (path_*, traps)
# sfkit-proxy benchmark (issues #2 and #3): the same workloads over several
# paths, side by side, on loopback, in one run, repeated and interleaved.
#
#   bench/bench.sh [BUILDDIR]      (`make bench` passes the build dir;
#                                   default ./build, else <srcdir>/build)
#
# Paths (BENCH_PATHS, in this order):
#   direct  the load generator straight to the server on 127.0.0.1 (the
#           machine's limit)
#   ssh     `ssh -N -D` (OpenSSH's SOCKS proxy) to a private sshd that the
#           script starts on 127.0.0.1 with throwaway keys and OpenSSH's
#           default algorithms; the server is 127.0.0.1:PORT as sshd sees it
#   sfkit   client -> party 1 SOCKS5 -> QUIC over loopback UDP -> party 0
#           -> server (the server is party 0's service 10.0.0.0:PORT)
# A path is a set of shell functions (path_NAME_start / path_NAME_stop, see
# "Paths" below).  A path whose tools are missing (OpenSSH) is left out with
# a note saying what to install.
#
# Workloads (bench/loadgen.py against bench/echo_server.py):
#   throughput  BENCH_BULK_MIB MiB (default 1024) client -> server ("up")
#               and server -> client ("down"), each over 1 connection and
#               over 16 in parallel (BENCH_CONNS="1 16")
#   echo        BENCH_ECHO_MIB MiB (512) of pseudo-random data sent and
#               echoed back at the same time, every byte compared, over 1
#               and over 16 connections
#   latency     BENCH_PINGS (10000) round trips of 1 byte, then of 4 KiB, on
#               one connection (TCP_NODELAY): p50, p99, max, and how many
#               took over 10 ms
#   setups      BENCH_SETUPS (2000) sequential connect (+SOCKS5) + 1-byte
#               round trip + close, per second
#   idle        BENCH_IDLE (1000) connections opened end to end and held,
#               while the proxies' VmRSS is read
# and, for each path's proxy processes: CPU seconds per GiB over the
# throughput runs (utime+stime from /proc/PID/stat, client and server side
# summed) and peak RSS (VmHWM, reset at the start of each repetition and read
# after the echo runs, so it covers the 16-connection runs but not the idle
# test).
#
# Order: every path is started once; then BENCH_REPS (3) times: for each
# workload, for each path, one case.  So drift on a shared machine hits every
# path alike; each figure is reported as median [min–max] over the
# repetitions, with the ratio sfkit / ssh and a "Targets" section.
#
# Every case is bounded: BENCH_CASE_SECONDS (default 120) per case, and the
# load generator is killed 60 s after that.  All traffic goes to 127.0.0.1.
# The report goes to docs/benchmarks.md (BENCH_OUT overrides) and to stdout;
# the chart to docs/benchmarks.png (BENCH_CHART overrides; needs gnuplot).
# Also: BENCH_SSHD (/usr/sbin/sshd), PYTHON (python3), BENCH_KEEP=1 keeps
# the temp dir (logs, chart data).  Takes some 8-10 minutes with the
# defaults on 2 cores.
# Exit status: 0 unless a case failed (e.g. echoed bytes differed, or a
# proxy did not stop cleanly); a missed target is not a failure.
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
ECHO_MIB=${BENCH_ECHO_MIB:-512}
CONNS=${BENCH_CONNS:-1 16}
PINGS=${BENCH_PINGS:-10000}
SETUPS=${BENCH_SETUPS:-2000}
IDLE=${BENCH_IDLE:-1000}
REPS=${BENCH_REPS:-3}
CASE_SECONDS=${BENCH_CASE_SECONDS:-120}
PATHS=${BENCH_PATHS:-direct ssh sfkit}
OUT=${BENCH_OUT:-$SRCDIR/docs/benchmarks.md}
CHART=${BENCH_CHART:-$SRCDIR/docs/benchmarks.png}
SSHD=${BENCH_SSHD:-/usr/sbin/sshd}
PY=${PYTHON:-python3}
PING_SIZES="1 4096" # the targets name these two

for v in "$BULK_MIB" "$ECHO_MIB" "$PINGS" "$SETUPS" "$IDLE" "$REPS" "$CASE_SECONDS" $CONNS; do
  case $v in '' | *[!0-9]* | 0) echo "bench: '$v' is not a positive whole number" >&2; exit 1 ;; esac
done

BIN=$BUILD/src/sfkit-proxy
export SFKIT_PROXY_PLUGIN_DIR=$BUILD/plugins/quic/.libs:$BUILD/plugins/static/.libs:$BUILD/plugins/none/.libs
log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
for t in "$PY" awk timeout getconf sort mkfifo; do
  command -v "$t" >/dev/null 2>&1 || die "'$t' is not installed"
done
# The interpreter itself, not a version manager's shim (pyenv's costs some
# 0.4 s per start, and the load generator starts some 30 times a repetition).
PY=$("$PY" -c 'import sys; print(sys.executable)') || die "$PY does not run"
NOTES=()

# The idle test holds BENCH_IDLE sockets in the load generator, in each proxy
# and in the server at once; every process started below inherits this.
NOFILE_NEED=$((IDLE + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$NOFILE_NEED" ]; then
  ulimit -n "$NOFILE_NEED" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$NOFILE_NEED" ]; then
    NOTES+=("open files are limited to $(ulimit -n) (hard limit), below the $NOFILE_NEED the idle test needs")
  fi
fi

# --- temp dir and cleanup --------------------------------------------------------
T=$(mktemp -d "${TMPDIR:-/tmp}/sfkit-bench.XXXXXX")
PIDS=()      # processes this script started and has not yet stopped
IDLE_PID=""  # the idle-test load generator while it runs
SSH_SERVER_PIDS="" # sshd's per-connection processes (grandchildren)
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
# forget PID: drop a stopped process from PIDS, so that cleanup never
# signals a PID that the system may since have given to someone else.
forget() {
  local p keep=()
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

cleanup() {
  local rc=$? p i f
  trap - EXIT INT TERM HUP
  if [ -n "$IDLE_PID" ] && alive "$IDLE_PID"; then kill -TERM "$IDLE_PID" 2>/dev/null; fi
  # The ssh client first: the sshd session processes end with it.  Reversed,
  # so that clients stop before their servers.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    p=${PIDS[i]}
    if alive "$p"; then kill -TERM "$p" 2>/dev/null; fi
  done
  for p in "${PIDS[@]}"; do
    for ((i = 0; i < 50; i++)); do alive "$p" || break; sleep 0.1; done
    if alive "$p"; then kill -KILL "$p" 2>/dev/null; fi
  done
  # sshd session processes that outlived their client (only if still sshd).
  for p in $SSH_SERVER_PIDS; do
    if alive "$p" && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = sshd ]; then kill -TERM "$p" 2>/dev/null; fi
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
# No PID: 0.
cpu_ticks() {
  local p sum=0 t
  for p in "$@"; do
    t=$(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}') || die "process $p is gone"
    sum=$((sum + t))
  done
  echo "$sum"
}
# status_kib FIELD PID...: the largest FIELD (VmHWM: peak resident set,
# VmRSS: resident set now) of the processes, in KiB.
status_kib() {
  local f=$1 p max=0 v
  shift
  for p in "$@"; do
    v=$(awk -v f="$f:" '$1 == f {print $2}' "/proc/$p/status") || die "process $p is gone"
    if [ "${v:-0}" -gt "$max" ]; then max=$v; fi
  done
  echo "$max"
}
# hwm_reset PID...: restart the peak-RSS count from the current RSS
# (proc(5), clear_refs "5"), so each repetition measures its own peak.
hwm_reset() {
  local p
  for p in "$@"; do echo 5 2>/dev/null >"/proc/$p/clear_refs" || return 1; done
}
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k / 1024}'; }

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
    wait "$pid" 2>/dev/null || true
    STATUS=hung
  else
    STATUS=0
    wait "$pid" || STATUS=$?
  fi
  forget "$pid"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)

# --- the servers (shared by every path) --------------------------------------------
"$PY" "$BENCH_DIR/echo_server.py" --ready-file "$T/server.ready" --max-seconds 7200 \
  >"$T/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for 20 test -s "$T/server.ready" || die "echo_server.py did not start"
read -r SINK_PORT ECHO_PORT SOURCE_PORT <"$T/server.ready"

# --- Paths ---------------------------------------------------------------------------
# path_NAME_start returns 0 and sets:
#   PATH_LABEL     column heading
#   PATH_SOCKS     127.0.0.1:PORT of the SOCKS5 proxy, or "" to dial directly
#   PATH_HOST      the server's address as the client names it
#   PATH_CLIENT_PIDS / PATH_SERVER_PIDS  proxy processes on the client /
#                  server side (space-separated, may be empty)
# or returns 1 and sets PATH_SKIP (why, for the report) and PATH_SKIP_FAILED
# (1 if that is a failure of the run, 0 if a tool is simply not installed).
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

SSH_PID="" SSHD_PID="" SSH_ALGS=""
path_ssh_start() {
  local sp dp t missing=""
  PATH_SKIP_FAILED=0
  [ -x "$SSHD" ] || missing="$missing $SSHD (Debian package openssh-server)"
  for t in ssh ssh-keygen; do
    command -v "$t" >/dev/null 2>&1 || missing="$missing $t (openssh-client)"
  done
  command -v ps >/dev/null 2>&1 || missing="$missing ps (procps)"
  if [ -n "$missing" ]; then
    PATH_SKIP="missing$missing; install OpenSSH (apt-get install openssh-server openssh-client) to compare with ssh -D"
    return 1
  fi
  # sshd refuses to start without its privilege separation directory.
  if [ ! -d /run/sshd ] && ! mkdir -m 0755 /run/sshd 2>/dev/null; then
    PATH_SKIP="sshd needs the directory /run/sshd, which this user cannot create (run as root, or mkdir -p -m 0755 /run/sshd)"
    return 1
  fi
  { read -r sp; read -r dp; } < <(free_ports tcp 2)
  ssh-keygen -t ed25519 -N '' -q -C sfkit-bench-host -f "$T/ssh_host_ed25519_key" </dev/null
  ssh-keygen -t ed25519 -N '' -q -C sfkit-bench -f "$T/id_ed25519" </dev/null
  cp "$T/id_ed25519.pub" "$T/authorized_keys"
  # Only what a private, key-only, loopback sshd needs: nothing here touches
  # ciphers, MACs or key exchange, so OpenSSH's defaults are what is measured.
  cat >"$T/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $sp
HostKey $T/ssh_host_ed25519_key
AuthorizedKeysFile $T/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
PermitRootLogin prohibit-password
AllowTcpForwarding yes
EOF
  "$SSHD" -D -e -f "$T/sshd_config" </dev/null >/dev/null 2>"$T/sshd.log" &
  SSHD_PID=$!
  PIDS+=("$SSHD_PID")
  if ! wait_for 20 grep -q "Server listening on 127.0.0.1 port $sp" "$T/sshd.log"; then
    PATH_SKIP="sshd did not start: $(tail -n 1 "$T/sshd.log")" PATH_SKIP_FAILED=1
    return 1
  fi
  # -F none: no ssh_config file at all (system or user), so no local
  # setting changes the algorithms either; -v logs the negotiated ones.
  ssh -F none -N -D "127.0.0.1:$dp" -p "$sp" -i "$T/id_ed25519" \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile="$T/known_hosts" \
    -o BatchMode=yes -o ExitOnForwardFailure=yes -E "$T/ssh.log" -v \
    "$(id -un)@127.0.0.1" </dev/null &
  SSH_PID=$!
  PIDS+=("$SSH_PID")
  # ssh opens its SOCKS port only once logged in.
  if ! wait_for 20 ssh_socks_up "$dp"; then
    PATH_SKIP="ssh -D did not come up: $(grep -v '^debug' "$T/ssh.log" | tail -n 1)" PATH_SKIP_FAILED=1
    return 1
  fi
  # Server side: every process under the listening sshd, i.e. the one
  # (root login) or two (privilege-separated login) sshd processes serving
  # this connection.  The listener itself only accepts, so it is left out.
  wait_for 10 sshd_serving || true
  SSH_SERVER_PIDS=$(descendants "$SSHD_PID" | paste -sd ' ' -)
  if [ -z "$SSH_SERVER_PIDS" ]; then
    PATH_SKIP="found no sshd process serving the ssh connection" PATH_SKIP_FAILED=1
    return 1
  fi
  SSH_ALGS=$(awk '
    /kex: algorithm:/ {kex = $NF}
    /kex: host key algorithm:/ {hk = $NF}
    /kex: client->server cipher:/ {cs = $5 ", MAC " $7 ", compression " $9}
    /kex: server->client cipher:/ {sc = $5 ", MAC " $7 ", compression " $9}
    END {printf "key exchange %s, host key %s; client→server %s; server→client %s", kex, hk, cs, sc}' "$T/ssh.log")
  PATH_LABEL="ssh -D"
  PATH_SOCKS=127.0.0.1:$dp
  PATH_HOST=127.0.0.1
  PATH_CLIENT_PIDS=$SSH_PID
  PATH_SERVER_PIDS=$SSH_SERVER_PIDS
}
ssh_socks_up() { alive "$SSH_PID" && (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
sshd_serving() { [ -n "$(descendants "$SSHD_PID")" ]; }
ssh_sessions_gone() {
  local p
  for p in $SSH_SERVER_PIDS; do
    if alive "$p"; then return 1; fi
  done
}
# descendants PID: the PIDs of every process below PID, one a line.
descendants() {
  local c
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$c"
    descendants "$c"
  done
}
path_ssh_stop() {
  local rc rd p left=""
  stop_pid "$SSH_PID"
  rc=$STATUS
  # The session processes end when the client disconnects.
  wait_for 10 ssh_sessions_gone || true
  for p in $SSH_SERVER_PIDS; do
    if alive "$p"; then left="$left $p"; fi
  done
  stop_pid "$SSHD_PID"
  rd=$STATUS
  PATH_STOP=""
  # Both exit 0 on SIGTERM (255 is also how ssh reports a signal).
  case $rc in 0 | 255) ;; *) PATH_STOP="after SIGTERM ssh exited with $rc" ;; esac
  case $rd in 0 | 255) ;; *) PATH_STOP="${PATH_STOP:+$PATH_STOP; }after SIGTERM sshd exited with $rd" ;; esac
  [ -z "$left" ] || PATH_STOP="${PATH_STOP:+$PATH_STOP; }sshd session process(es)$left still running 10 s after the client stopped"
}

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
declare -A R=()     # R[path.metric] = the figures of each repetition, space-separated
declare -A LABEL=() SOCKS=() HOST=() CPIDS=() SPIDS=()
declare -A LGMAX=() SRVMAX=() # busiest case of this repetition, % of a core
FAILED=0
CUR=""

# add KEY VALUE: one repetition's figure ("failed" if the case failed).
add() { R[$1]="${R[$1]:-}$2 "; }

# use_path NAME: the path the next cases run on.
use_path() {
  CUR=$1
  PATH_LABEL=${LABEL[$1]} PATH_SOCKS=${SOCKS[$1]} PATH_HOST=${HOST[$1]}
}

# loadgen MODE PORT ARGS...: run one bounded case on the current path; its
# key=value line in LG.  A failed case leaves LG empty, adds a note, marks
# the run failed and returns 1; the benchmark goes on.  (Not in a subshell:
# it adds to NOTES.)
loadgen() {
  local mode=$1 port=$2 c rc=0 s0 s1 w0 w1
  shift 2
  local socks=()
  [ -z "$PATH_SOCKS" ] || socks=(--socks "$PATH_SOCKS")
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
  if [ "$c" -gt "${SRVMAX[$CUR]:-0}" ]; then SRVMAX[$CUR]=$c; fi
  if [ "$rc" != 0 ]; then
    [ "$rc" != 124 ] || echo "killed after $((CASE_SECONDS + 60)) s" >>"$T/loadgen.err"
    log "$PATH_LABEL: loadgen $mode $* FAILED: $(tail -n 1 "$T/loadgen.err")"
    NOTES+=("$PATH_LABEL, repetition $REP, $mode $*: FAILED ($(tail -n 1 "$T/loadgen.err"))")
    FAILED=1
    LG=""
    return 1
  fi
  log "  $PATH_LABEL: $LG"
  [ "$(kv complete "$LG")" = 1 ] ||
    NOTES+=("$PATH_LABEL, repetition $REP, $mode $*: stopped at the ${CASE_SECONDS} s limit; the figure covers what was done")
  c=$(kv cpu_pct "$LG")
  if [ "${c:-0}" -gt "${LGMAX[$CUR]:-0}" ]; then LGMAX[$CUR]=$c; fi
}

# Per repetition and path, over the throughput cases: proxy CPU ticks
# (client and server side) and bytes moved.
declare -A TICKS_C=() TICKS_S=() MOVED=() BULK_OK=()

case_bulk() { # PATH up|down CONNS
  local p=$1 dir=$2 n=$3 port=$SINK_PORT c0 s0 c1 s1
  local extra=()
  use_path "$p"
  if [ "$dir" = down ]; then port=$SOURCE_PORT extra=(--down); fi
  log "$PATH_LABEL: throughput $dir, $n connection(s), $BULK_MIB MiB"
  # (PID lists are split into words on purpose.)
  # shellcheck disable=SC2086
  c0=$(cpu_ticks ${CPIDS[$p]}) s0=$(cpu_ticks ${SPIDS[$p]})
  if loadgen bulk "$port" "${extra[@]}" --conns "$n" --bytes $((BULK_MIB * 1048576)); then
    # shellcheck disable=SC2086
    c1=$(cpu_ticks ${CPIDS[$p]}) s1=$(cpu_ticks ${SPIDS[$p]})
    TICKS_C[$p]=$((TICKS_C[$p] + c1 - c0))
    TICKS_S[$p]=$((TICKS_S[$p] + s1 - s0))
    MOVED[$p]=$((MOVED[$p] + $(kv bytes "$LG")))
    add "$p.$dir$n" "$(kv mibps "$LG")"
  else
    BULK_OK[$p]=0
    add "$p.$dir$n" failed
  fi
}

# record_cpu PATH: CPU seconds per GiB of this repetition's throughput
# cases (only when all of them finished).
record_cpu() {
  local p=$1 k t
  [ -n "${CPIDS[$p]}${SPIDS[$p]}" ] || return 0
  for k in total client server; do
    case $k in
      total) t=$((TICKS_C[$p] + TICKS_S[$p])) ;;
      client) t=${TICKS_C[$p]} ;;
      server) t=${TICKS_S[$p]} ;;
    esac
    if [ "${BULK_OK[$p]}" = 1 ] && [ "${MOVED[$p]}" -gt 0 ]; then
      add "$p.cpu_$k" "$(awk -v t="$t" -v hz="$CLK_TCK" -v b="${MOVED[$p]}" 'BEGIN{printf "%.3f", t / hz / (b / 2^30)}')"
    else
      add "$p.cpu_$k" failed
    fi
  done
}

case_echo() { # PATH CONNS
  local p=$1 n=$2
  use_path "$p"
  log "$PATH_LABEL: two-way echo, $n connection(s), $ECHO_MIB MiB, every byte checked"
  if loadgen echo "$ECHO_PORT" --conns "$n" --bytes $((ECHO_MIB * 1048576)); then
    add "$p.echo$n" "$(kv mibps "$LG")"
  else
    add "$p.echo$n" failed
  fi
}

# record_peak PATH: peak RSS of each side since the repetition began.
HWM_RESET_OK=1
record_peak() {
  local p=$1 side v
  # Without a reset, VmHWM after the first repetition would include the
  # previous idle test: then only the first repetition counts.
  if [ "$HWM_RESET_OK" != 1 ] && [ "$REP" -gt 1 ]; then return 0; fi
  for side in client server; do
    if [ $side = client ]; then v=${CPIDS[$p]}; else v=${SPIDS[$p]}; fi
    # shellcheck disable=SC2086
    [ -z "$v" ] || add "$p.hwm_$side" "$(mib "$(status_kib VmHWM $v)")"
  done
}

case_ping() { # PATH SIZE
  local p=$1 z=$2
  use_path "$p"
  log "$PATH_LABEL: latency, $PINGS round trips of $z byte(s)"
  if loadgen ping "$ECHO_PORT" --count "$PINGS" --size "$z"; then
    add "$p.ping$z.p50" "$(kv p50_us "$LG")"
    add "$p.ping$z.p99" "$(kv p99_us "$LG")"
    add "$p.ping$z.max" "$(kv max_us "$LG")"
    add "$p.ping$z.over" "$(kv over_10ms "$LG")"
    add "$p.ping$z.count" "$(kv count "$LG")"
  else
    add "$p.ping$z.p50" failed
    add "$p.ping$z.over" failed
  fi
}

case_setup() { # PATH
  local p=$1
  use_path "$p"
  log "$PATH_LABEL: connection setups, $SETUPS"
  if loadgen setup "$ECHO_PORT" --count "$SETUPS"; then
    add "$p.setups" "$(kv per_s "$LG")"
  else
    add "$p.setups" failed
  fi
}

idle_ready_or_gone() { grep -q '^ready=1' "$T/idle.out" || ! alive "$IDLE_PID"; }
# case_idle PATH: open IDLE connections and hold them while the proxies'
# VmRSS is read.  The load generator holds them until its stdin (a FIFO
# that this shell keeps open) reaches EOF; should this script die, the FIFO
# closes too and the load generator lets go by itself.
case_idle() {
  local p=$1 fd rc=0 ready="" socks=()
  use_path "$p"
  [ -z "$PATH_SOCKS" ] || socks=(--socks "$PATH_SOCKS")
  log "$PATH_LABEL: $IDLE idle connections"
  rm -f "$T/idle.in"
  mkfifo "$T/idle.in"
  : >"$T/idle.out"
  timeout $((CASE_SECONDS + 60)) "$PY" "$BENCH_DIR/loadgen.py" idle --target "$PATH_HOST:$ECHO_PORT" \
    "${socks[@]}" --conns "$IDLE" --max-seconds "$CASE_SECONDS" \
    <"$T/idle.in" >"$T/idle.out" 2>"$T/loadgen.err" &
  IDLE_PID=$!
  exec {fd}>"$T/idle.in"
  if wait_for $((CASE_SECONDS + 10)) idle_ready_or_gone; then
    ready=$(grep '^ready=1' "$T/idle.out" || true)
  fi
  if [ -n "$ready" ]; then
    log "  $PATH_LABEL: $ready"
    # shellcheck disable=SC2086
    [ -z "${CPIDS[$p]}" ] || add "$p.idle_client" "$(mib "$(status_kib VmRSS ${CPIDS[$p]})")"
    # shellcheck disable=SC2086
    [ -z "${SPIDS[$p]}" ] || add "$p.idle_server" "$(mib "$(status_kib VmRSS ${SPIDS[$p]})")"
  fi
  exec {fd}>&- # EOF: the load generator closes its connections and exits
  wait "$IDLE_PID" || rc=$?
  IDLE_PID=""
  if [ -z "$ready" ] || [ "$rc" != 0 ]; then
    log "$PATH_LABEL: idle test FAILED: $(tail -n 1 "$T/loadgen.err")"
    NOTES+=("$PATH_LABEL, repetition $REP, $IDLE idle connections: FAILED ($(tail -n 1 "$T/loadgen.err"))")
    FAILED=1
    [ -z "$ready" ] || return 0
    [ -z "${CPIDS[$p]}" ] || add "$p.idle_client" failed
    [ -z "${SPIDS[$p]}" ] || add "$p.idle_server" failed
  fi
}

for p in $PATHS; do
  declare -F "path_${p}_start" >/dev/null || die "unknown path '$p' (known: direct ssh sfkit)"
done
ACTIVE=()
for p in $PATHS; do
  log "starting path $p"
  if "path_${p}_start"; then
    ACTIVE+=("$p")
    LABEL[$p]=$PATH_LABEL SOCKS[$p]=$PATH_SOCKS HOST[$p]=$PATH_HOST
    CPIDS[$p]=$PATH_CLIENT_PIDS SPIDS[$p]=$PATH_SERVER_PIDS
  else
    log "path $p left out: $PATH_SKIP"
    NOTES+=("path $p left out: $PATH_SKIP")
    [ "$PATH_SKIP_FAILED" = 0 ] || FAILED=1
  fi
done
[ ${#ACTIVE[@]} -gt 0 ] || die "no path could be started"

REP=0
for p in "${ACTIVE[@]}"; do
  use_path "$p"
  log "$PATH_LABEL: warm-up"
  loadgen ping "$ECHO_PORT" --count 20 --warmup 20 || true
done
for ((REP = 1; REP <= REPS; REP++)); do
  log "=== repetition $REP of $REPS ==="
  for p in "${ACTIVE[@]}"; do
    TICKS_C[$p]=0 TICKS_S[$p]=0 MOVED[$p]=0 BULK_OK[$p]=1 LGMAX[$p]=0 SRVMAX[$p]=0
    # shellcheck disable=SC2086
    hwm_reset ${CPIDS[$p]} ${SPIDS[$p]} || HWM_RESET_OK=0
  done
  for n in $CONNS; do
    for p in "${ACTIVE[@]}"; do case_bulk "$p" up "$n"; done
    for p in "${ACTIVE[@]}"; do case_bulk "$p" down "$n"; done
  done
  for p in "${ACTIVE[@]}"; do record_cpu "$p"; done
  for n in $CONNS; do
    for p in "${ACTIVE[@]}"; do case_echo "$p" "$n"; done
  done
  for p in "${ACTIVE[@]}"; do record_peak "$p"; done
  for z in $PING_SIZES; do
    for p in "${ACTIVE[@]}"; do case_ping "$p" "$z"; done
  done
  for p in "${ACTIVE[@]}"; do case_setup "$p"; done
  # Last in the repetition: it must not count in the peak RSS above.
  for p in "${ACTIVE[@]}"; do case_idle "$p"; done
  for p in "${ACTIVE[@]}"; do
    add "$p.lgcpu" "${LGMAX[$p]}"
    add "$p.srvcpu" "${SRVMAX[$p]}"
  done
done
[ "$HWM_RESET_OK" = 1 ] ||
  NOTES+=("VmHWM could not be reset (/proc/PID/clear_refs), so peak RSS is from the first repetition only")

for ((i = ${#ACTIVE[@]} - 1; i >= 0; i--)); do
  p=${ACTIVE[i]}
  "path_${p}_stop"
  if [ -n "$PATH_STOP" ]; then
    NOTES+=("${LABEL[$p]}: $PATH_STOP")
    FAILED=1
  fi
done
# The UDP socket buffers the kernel granted (they bound QUIC throughput).
UDP_NOTE=$(grep -ho 'UDP [a-z]* buffer: .*' "$T/p0.log" 2>/dev/null | sort -u | paste -sd ';' - | sed 's/;/; /g' || true)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(($(date +%s) - T_START))

# --- statistics --------------------------------------------------------------------
has() { [[ " ${ACTIVE[*]} " == *" $1 "* ]]; }
# stats KEY: "median min max n total" over the repetitions' figures (n: how
# many were numbers, i.e. not failed), or nothing when there are none.
stats() {
  [ -n "${R[$1]:-}" ] || return 0
  tr ' ' '\n' <<<"${R[$1]}" | awk 'NF' | sort -g | awk '
    $1 ~ /^-?[0-9.]+$/ {a[++n] = $1}
    {total++}
    END {
      if (!n) exit
      m = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      print m, a[1], a[n], n, total
    }'
}
med() { stats "$1" | awk '{print $1}'; }
# cell KEY FMT: "median [min–max]" for the table.
cell() {
  local m lo hi n total
  if [ -z "${R[$1]:-}" ]; then
    echo "–"
    return
  fi
  read -r m lo hi n total <<<"$(stats "$1")"
  if [ -z "${m:-}" ]; then
    echo "failed"
    return
  fi
  # shellcheck disable=SC2059  # FMT is ours
  printf "$2 [$2–$2]" "$m" "$lo" "$hi"
  [ "$n" = "$total" ] || printf ' (%s of %s)' "$n" "$total"
}
# ratio METRIC: median of sfkit over median of ssh, or nothing.
ratio() {
  local a b
  a=$(med "sfkit.$1") b=$(med "ssh.$1")
  [ -n "$a" ] && [ -n "$b" ] || return 0
  awk -v a="$a" -v b="$b" 'BEGIN{if (b > 0) printf "%.2f", a / b}'
}

conns_word() { if [ "$1" = 1 ]; then echo "1 connection"; else echo "$1 connections"; fi; }

# --- the chart ----------------------------------------------------------------------
# chart_data FILE LABEL:METRIC...: one row per case, "median min max" per path
# (NaN when missing), with the path labels as column headers.
chart_data() {
  local f=$1 c p m lo hi n total
  shift
  {
    printf '"case"'
    for p in "${ACTIVE[@]}"; do printf ' "%s" min max' "${LABEL[$p]}"; done
    echo
    for c in "$@"; do
      printf '"%s"' "${c%%:*}"
      for p in "${ACTIVE[@]}"; do
        m="" lo="" hi=""
        read -r m lo hi n total <<<"$(stats "$p.${c#*:}")"
        printf ' %s %s %s' "${m:-NaN}" "${lo:-NaN}" "${hi:-NaN}"
      done
      echo
    done
  } >"$f"
}
CHART_OK=""
if ! command -v gnuplot >/dev/null 2>&1; then
  NOTES+=("no chart: gnuplot is not installed (Debian package gnuplot-nox)")
else
  cases=()
  # Short case names: six of them share the x axis.
  for n in $CONNS; do cases+=("up, $n conn$([ "$n" = 1 ] || echo s):up$n"); done
  for n in $CONNS; do cases+=("down, $n conn$([ "$n" = 1 ] || echo s):down$n"); done
  for n in $CONNS; do cases+=("echo, $n conn$([ "$n" = 1 ] || echo s):echo$n"); done
  chart_data "$T/throughput.dat" "${cases[@]}"
  chart_data "$T/latency.dat" "1 B p50:ping1.p50" "1 B p99:ping1.p99" "4 KiB p50:ping4096.p50" "4 KiB p99:ping4096.p99"
  # pngcairo draws better; plain png (libgd) is the fallback.
  term=png
  if gnuplot -e 'set terminal' 2>&1 | grep -qw pngcairo; then term=pngcairo; fi
  if gnuplot -e "term='$term'; out='$T/chart.png'; tp='$T/throughput.dat'; lat='$T/latency.dat'; npaths=${#ACTIVE[@]}; subtitle='median, bars min–max, over $REPS repetitions; $(date -u +%Y-%m-%d)'" \
    "$BENCH_DIR/chart.gp" 2>"$T/gnuplot.err"; then
    if cp "$T/chart.png" "$CHART" 2>/dev/null; then
      CHART_OK=1
      log "wrote $CHART"
    else
      NOTES+=("no chart: could not write $CHART")
    fi
  else
    NOTES+=("no chart: gnuplot failed ($(tail -n 1 "$T/gnuplot.err"))")
  fi
fi

# --- the report ---------------------------------------------------------------------
cpu_model=$(awk -F': *' '/^model name/{print $2; exit}' /proc/cpuinfo)
[ -n "$cpu_model" ] || cpu_model=$(lscpu 2>/dev/null | awk -F': *' '/^Model name/{print $2; exit}')
pc_version() { pkg-config --modversion "$1" 2>/dev/null || echo "?"; }
cflags=$(sed -n "s/^CFLAGS = //p" "$BUILD/Makefile" 2>/dev/null | head -n 1 || true)
sanitized=""
grep -aq '__asan_init' "$BIN" 2>/dev/null && sanitized=" (ASan/UBSan build: figures are not representative)"
ssh_version=$(ssh -V 2>&1 || true)
[ -n "$ssh_version" ] || ssh_version="OpenSSH not installed"

row() { # row TITLE METRIC FMT [noratio]
  local line="| $1 |" p r=""
  for p in "${ACTIVE[@]}"; do line="$line $(cell "$p.$2" "$3") |"; done
  # No ratio for counts that are mostly 0, nor for the load generator.
  [ -n "${4:-}" ] || r=$(ratio "$2")
  echo "$line ${r:-–} |"
}

# target TITLE OK DETAIL: one line of the Targets section.  OK is 1 (met),
# 0 (missed) or "" (no figure to judge).
target() {
  local verdict
  case $2 in 1) verdict="**met**" ;; 0) verdict="**missed**" ;; *) verdict="not judged" ;; esac
  echo "- $1: $verdict — $3"
}
# target_ratio TITLE METRIC UNIT FMT >=|<= [STRETCH]: sfkit against ssh.
target_ratio() {
  local title=$1 metric=$2 unit=$3 fmt=$4 op=$5 goal=${6:-} a b r ok stretch=""
  a=$(med "sfkit.$metric") b=$(med "ssh.$metric") r=$(ratio "$metric")
  if [ -z "$a" ] || [ -z "$b" ] || [ -z "$r" ]; then
    if [ -z "$a$b" ]; then
      target "$title" "" "no figure for sfkit-proxy nor ssh -D"
    else
      target "$title" "" "no figure for $([ -n "$a" ] || echo sfkit-proxy)$([ -n "$b" ] || echo ssh -D)"
    fi
    return
  fi
  # (Parenthesised: in awk, "print a > b" writes to a file named b.)
  ok=$(awk -v r="$r" -v op="$op" 'BEGIN{print ((op == ">=" ? r >= 1.0 : r <= 1.0) ? 1 : 0)}')
  if [ -n "$goal" ]; then
    stretch="; stretch ${goal}×: $(awk -v r="$r" -v s="$goal" 'BEGIN{print ((r >= s) ? "met" : "missed")}')"
  fi
  # shellcheck disable=SC2059  # fmt is ours
  target "$title" "$ok" "$(printf "sfkit-proxy $fmt vs ssh -D $fmt %s: %s× ssh" "$a" "$b" "$unit" "$r")$stretch"
}

targets() {
  local n z a b bc o c ok side what
  if ! has sfkit; then
    echo "No sfkit-proxy figures: nothing to judge."
    return
  fi
  echo "Computed by the script from the medians above (\"× ssh\" = sfkit-proxy / ssh -D)."
  echo
  for n in $CONNS; do
    target_ratio "throughput up, $(conns_word "$n") ≥ 1.0× ssh -D" "up$n" MiB/s %.1f ">=" 1.5
    target_ratio "throughput down, $(conns_word "$n") ≥ 1.0× ssh -D" "down$n" MiB/s %.1f ">=" 1.5
  done
  for n in $CONNS; do
    target_ratio "two-way echo, $(conns_word "$n") ≥ 1.0× ssh -D" "echo$n" MiB/s %.1f ">=" 1.5
  done
  target_ratio "1-byte round trip p50 ≤ ssh -D's" ping1.p50 µs %.1f "<="
  a=$(med sfkit.ping1.p99)
  if [ -n "$a" ]; then
    target "sfkit-proxy 1-byte round trip p99 < 1 ms" "$(awk -v a="$a" 'BEGIN{print ((a < 1000) ? 1 : 0)}')" "median p99 $a µs"
  else
    target "sfkit-proxy 1-byte round trip p99 < 1 ms" "" "no figure"
  fi
  for z in $PING_SIZES; do
    what="1-byte"
    [ "$z" = 1 ] || what="$((z / 1024)) KiB"
    # Every round trip of every repetition counts here, not the median.
    o=$(tr ' ' '\n' <<<"${R[sfkit.ping$z.over]:-}" | awk '/^[0-9]+$/{s += $1; n++} END{if (n) print s}')
    c=$(tr ' ' '\n' <<<"${R[sfkit.ping$z.count]:-}" | awk '/^[0-9]+$/{s += $1} END{print s + 0}')
    b=$(tr ' ' '\n' <<<"${R[ssh.ping$z.over]:-}" | awk '/^[0-9]+$/{s += $1; n++} END{if (n) print s}')
    bc=$(tr ' ' '\n' <<<"${R[ssh.ping$z.count]:-}" | awk '/^[0-9]+$/{s += $1} END{print s + 0}')
    if [ -n "$o" ]; then
      target "no $what round trip over 10 ms" "$([ "$o" = 0 ] && echo 1 || echo 0)" \
        "sfkit-proxy: $o of $c over 10 ms (max $(stats "sfkit.ping$z.max" | awk '{printf "%.0f", $3}') µs)${b:+; ssh -D: $b of $bc}"
    else
      target "no $what round trip over 10 ms" "" "no figure"
    fi
  done
  target_ratio "connection setups/s ≥ ssh -D's" setups /s %.1f ">="
  target_ratio "CPU s/GiB (both proxy sides) ≤ ssh -D's" cpu_total s/GiB %.2f "<="
  for side in client server; do
    what="party 1 (client side)"
    [ $side = client ] || what="party 0 (server side)"
    # The worst repetition, not the median: a limit is a limit.
    a=$(stats "sfkit.hwm_$side" | awk '{print $3}')
    if [ -n "$a" ]; then
      ok=$(awk -v a="$a" 'BEGIN{print ((a <= 16) ? 1 : 0)}')
      target "peak RSS of $what ≤ 16 MiB during the 16-connection runs" "$ok" "$a MiB (largest of the repetitions)"
    else
      target "peak RSS of $what ≤ 16 MiB during the 16-connection runs" "" "no figure"
    fi
  done
  a=$(med sfkit.idle_client) b=$(med sfkit.idle_server)
  o=""
  if has ssh; then o="; ssh -D client $(med ssh.idle_client) MiB, sshd $(med ssh.idle_server) MiB"; fi
  echo "- RSS with $IDLE idle connections (stated, no limit): sfkit-proxy party 1 (client side) ${a:-?} MiB, party 0 (server side) ${b:-?} MiB$o."
}

{
  echo "# Benchmarks"
  echo
  echo "Generated by \`bench/bench.sh\` (\`make bench\`); every figure below comes"
  echo "from the same run.  All traffic stays on 127.0.0.1, so this measures the"
  echo "proxies' own cost (CPU, copies, QUIC or SSH, crypto), not a network."
  echo "(The last section, \"Through the TURN relay\", comes from"
  echo "\`bench/natlab_relay.sh\` in the NAT lab, run on its own.)"
  echo
  echo "- Machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, Linux $(uname -r)"
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average (1, 5, 15 min) before the"
  echo "  run $LOAD_BEFORE, after $LOAD_AFTER (other work on the machine skews every figure);"
  echo "  the run took $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
  echo "- sfkit-proxy $("$BIN" --version 2>/dev/null | awk '{print $2}') (CFLAGS \`${cflags:-?}\`)$sanitized,"
  echo "  ngtcp2 $(pc_version libngtcp2), GnuTLS $(pc_version gnutls), $ssh_version, $("$PY" --version 2>&1)"
  if has ssh; then echo "- ssh -D negotiated: $SSH_ALGS"; fi
  echo "- Paths: **direct** = load generator to server (the machine's limit);"
  echo "  **ssh -D** = load generator -> \`ssh -N -D\` SOCKS5 -> SSH over loopback"
  echo "  TCP -> a private \`sshd\` (throwaway keys, OpenSSH's default algorithms)"
  echo "  -> server; **sfkit-proxy** = load generator -> party 1 SOCKS5 -> QUIC"
  echo "  over loopback UDP -> party 0 -> server (two daemons, static registry,"
  echo "  no discovery)."
  echo "- Each figure: median [min–max] over $REPS repetitions.  Every path was"
  echo "  started once and left running; each repetition ran each workload on"
  echo "  every path in turn, so drift on the machine hits all paths alike."
  echo "  \"sfkit / ssh\" is the ratio of the medians."
  echo
  printf '| |'
  for p in "${ACTIVE[@]}"; do printf ' %s |' "${LABEL[$p]}"; done
  printf ' sfkit / ssh |\n|---|'
  for p in "${ACTIVE[@]}"; do printf -- '---:|'; done
  echo '---:|'
  for n in $CONNS; do
    row "throughput up (client → server), $(conns_word "$n"), MiB/s" "up$n" %.1f
  done
  for n in $CONNS; do
    row "throughput down (server → client), $(conns_word "$n"), MiB/s" "down$n" %.1f
  done
  for n in $CONNS; do
    row "two-way echo, every byte checked, $(conns_word "$n"), MiB/s" "echo$n" %.1f
  done
  for z in $PING_SIZES; do
    what="1-byte"
    [ "$z" = 1 ] || what="$((z / 1024)) KiB"
    row "latency p50, $what round trip, µs" "ping$z.p50" %.1f
    row "latency p99, $what round trip, µs" "ping$z.p99" %.1f
    row "latency max, $what round trip, µs" "ping$z.max" %.0f
    row "$what round trips over 10 ms (of $PINGS)" "ping$z.over" %.0f noratio
  done
  row "connection setups/s" setups %.1f
  row "CPU s/GiB, both proxy sides" cpu_total %.2f
  row "CPU s/GiB, client-side proxy" cpu_client %.2f
  row "CPU s/GiB, server-side proxy" cpu_server %.2f
  row "peak RSS, client-side proxy, MiB" hwm_client %.1f
  row "peak RSS, server-side proxy, MiB" hwm_server %.1f
  row "RSS with $IDLE idle connections, client-side proxy, MiB" idle_client %.1f
  row "RSS with $IDLE idle connections, server-side proxy, MiB" idle_server %.1f
  row "load generator CPU, busiest case, % of a core" lgcpu %.0f noratio
  row "test server CPU, busiest case, % of a core" srvcpu %.0f noratio
  echo
  if [ -n "$CHART_OK" ]; then
    # Relative when the chart sits next to the report (docs/), as on GitHub.
    link=$CHART
    [ "$(cd "$(dirname "$OUT")" && pwd)" != "$(cd "$(dirname "$CHART")" && pwd)" ] || link=$(basename "$CHART")
    echo "![Throughput and latency per path]($link)"
    echo
  fi
  echo "## Targets"
  echo
  targets
  echo
  echo "## How each figure is taken"
  echo
  echo "\`bench/loadgen.py\` against \`bench/echo_server.py\`:"
  echo
  echo "- throughput: $BULK_MIB MiB over ${CONNS// / and over } parallel connection(s), 1 MiB"
  echo "  writes and reads; up: client to a sink, timed from the first byte until"
  echo "  the sink has confirmed every byte; down: a source sends to the client,"
  echo "  timed until the client has every byte.  Connection setup is excluded."
  echo "- two-way echo: $ECHO_MIB MiB in all, split over the connections; each"
  echo "  connection sends its own pseudo-random stream while the echo comes back"
  echo "  at the same time, and every echoed byte is compared with the byte sent"
  echo "  (a difference fails the run).  MiB/s counts the payload once, though"
  echo "  each byte crosses the path both ways."
  echo "- latency: $PINGS round trips of 1 byte, then of 4 KiB, on one"
  echo "  connection, TCP_NODELAY; each echo checked."
  echo "- connection setups: $SETUPS times in a row: connect (and SOCKS5 no-auth"
  echo "  CONNECT), 1-byte round trip, close.  sfkit-proxy answers the CONNECT"
  echo "  only once the far side has connected; ssh answers at once, and the"
  echo "  round trip then waits for its channel to open."
  echo "- CPU s/GiB: utime+stime (/proc/PID/stat) of the path's proxy"
  echo "  processes during its throughput cases, divided by the GiB moved.  For"
  echo "  ssh -D the client side is the \`ssh\` process and the server side the"
  echo "  sshd processes serving its connection (found below the private sshd"
  echo "  listener; the listener itself is left out); RSS is the largest of them."
  echo "- peak RSS: VmHWM, reset at the start of each repetition (clear_refs) and"
  echo "  read after the echo cases, so it covers the 16-connection runs but not"
  echo "  the idle test.  Idle RSS: VmRSS while $IDLE connections are open through"
  echo "  the proxy, each with one 1-byte round trip done (open end to end)."
  echo "- Load generator and test server CPU: CPU time over wall time in the"
  echo "  busiest case (100 = one core; near 100 would mean a figure is theirs,"
  echo "  not the path's)."
  [ -z "$UDP_NOTE" ] || echo "- From party 0's log: $UDP_NOTE."
  for n in "${NOTES[@]}"; do echo "- Note: $n"; done
} >"$T/report.md"

cat "$T/report.md"
# The section bench/natlab_relay.sh writes into the same file is kept.
if [ -f "$OUT" ]; then
  awk '/^## / { keep = /^## Through the TURN relay \(NAT lab\)/ } keep' "$OUT" >"$T/kept.md" || :
  [ ! -s "$T/kept.md" ] || { echo; cat "$T/kept.md"; } >>"$T/report.md"
fi
if cp "$T/report.md" "$OUT" 2>/dev/null; then
  log "wrote $OUT"
else
  log "could not write $OUT (the report is above)"
fi
log "done in $((ELAPSED / 60)) min $((ELAPSED % 60)) s$([ "$FAILED" = 0 ] || echo '; some case FAILED (see the notes)')"
exit "$FAILED"
