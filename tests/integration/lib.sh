# shellcheck shell=bash
# Helpers for the integration tests; sourced by each tests/integration/*.sh.
#
# Each test gets a private temp dir ($T) and, when run as root with unshare
# and ip available, a private network namespace with only loopback: the
# virtual 10.0.0.0/24 addresses then cannot leak onto any real network, and
# ports never collide with other tests running in parallel.
#
# Exit statuses follow automake: 0 pass, 1 fail, 77 skip.
#
# Environment (exported by `make check`, see Makefile.am):
#   SFKIT_PROXY             the daemon binary
#   SFKIT_PROXY_PLUGIN_DIR  colon-separated plugin dirs
#   SFK_SRCDIR              top source dir
#   SFK_SANITIZERS          yes|no (ASan+UBSan build)
# Optional: SFK_KEEP_TMP=1 keeps $T; SFK_NO_NETNS=1 skips the namespace.

if [ -z "${BASH_VERSION:-}" ]; then
  echo "lib.sh needs bash" >&2
  exit 1
fi

set -u -o pipefail

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEST_NAME=$(basename "$0" .sh)

# --- a private network namespace (re-executes the test inside it) ----------
if [ -z "${SFK_IN_NETNS:-}" ] && [ -z "${SFK_NO_NETNS:-}" ] && [ "$(id -u)" = 0 ] &&
  command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 &&
  unshare --net true 2>/dev/null; then
  export SFK_IN_NETNS=1
  # shellcheck disable=SC2016
  exec unshare --net -- bash -c 'ip link set lo up && exec bash "$@"' bash "$0" "$@"
fi

# --- locate the build when run by hand ---------------------------------------
SFK_SRCDIR=${SFK_SRCDIR:-$(cd "$LIB_DIR/../.." && pwd)}
if [ -z "${SFKIT_PROXY:-}" ]; then
  SFKIT_PROXY=$SFK_SRCDIR/build/src/sfkit-proxy
fi
if [ -z "${SFKIT_PROXY_PLUGIN_DIR:-}" ]; then
  _b=$(dirname "$(dirname "$SFKIT_PROXY")")
  SFKIT_PROXY_PLUGIN_DIR=$_b/plugins/quic/.libs:$_b/plugins/static/.libs:$_b/plugins/none/.libs:$_b/plugins/stun/.libs:$_b/plugins/sfkit/.libs
fi
export SFKIT_PROXY SFKIT_PROXY_PLUGIN_DIR SFK_SRCDIR

PY=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
SINK=$LIB_DIR/sink.py
SOCKS_CLIENT=$LIB_DIR/socks_client.py

# --- sanitizers ---------------------------------------------------------------
# SFK_SANITIZERS comes from make; when empty (run by hand), look at the binary.
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
sanitized() { [ "$SFK_SANITIZERS" = yes ]; }
# Seconds allowed for one 100 MiB transfer over loopback: generous (about
# 1.7 MiB/s), yet a connection stuck at a trickle fails instead of passing
# slowly. Sanitizer builds get more.
if sanitized; then BIG_TIMEOUT=300; else BIG_TIMEOUT=60; fi
export BIG_TIMEOUT

# --- temp dir, process tracking, cleanup ------------------------------------
T=$(mktemp -d "${TMPDIR:-/tmp}/sfk-$TEST_NAME.XXXXXX") || {
  echo "cannot create a temp dir" >&2
  exit 1
}
TRACKED_PIDS=()
declare -A PROXY_PID=()  # name -> pid of a running proxy
declare -A PROXY_CONF=() # name -> config file

track() { TRACKED_PIDS+=("$@"); }

# alive PID: the process exists and is not a zombie.
alive() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$st" != Z ]
}

_cleanup() {
  local rc=$? p i
  trap - EXIT INT TERM HUP
  for p in "${TRACKED_PIDS[@]}"; do
    alive "$p" && kill -TERM "$p" 2>/dev/null
  done
  for p in "${TRACKED_PIDS[@]}"; do
    for ((i = 0; i < 50; i++)); do
      alive "$p" || break
      sleep 0.1
    done
    alive "$p" && kill -KILL "$p" 2>/dev/null
  done
  wait 2>/dev/null
  if [ -n "${SFK_KEEP_TMP:-}" ]; then
    echo "kept $T"
  else
    rm -rf "$T"
  fi
  exit "$rc"
}
trap _cleanup EXIT
trap 'exit 1' INT TERM HUP

# --- reporting -----------------------------------------------------------------
log() { printf '%s %s: %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$TEST_NAME" "$*"; }

show_logs() {
  local f
  for f in "$T"/*.log "$T"/*.err; do
    [ -s "$f" ] || continue
    echo "----- tail of $(basename "$f") -----"
    tail -n "${1:-40}" "$f"
  done
}

fail() {
  echo "FAIL: $TEST_NAME: $*" >&2
  show_logs 40 >&2
  exit 1
}

pass() {
  echo "PASS: $TEST_NAME${1:+: $1}"
  exit 0
}

# skip REASON: exit 77. Under CI every tool is installed, so a skip there is
# a failure, never silent.
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

need python3 sha256sum timeout awk
[ -x "$SFKIT_PROXY" ] || fail "daemon not built: $SFKIT_PROXY"

# --- small utilities -------------------------------------------------------------
now() { date +%s.%N; }
# elapsed START: seconds since START (a now() value), 1 decimal.
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b - a}'; }
# lt A B: A < B as numbers.
lt() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a < b)}'; }

sha_file() { sha256sum "$1" | awk '{print $1}'; }
sha_stdin() { sha256sum | awk '{print $1}'; }
# make_file FILE MIB: random content.
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
_lines_at_least() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }
wait_file() { wait_until "${2:-20}" _nonempty "$1" || fail "timed out waiting for $1"; }
wait_lines() { wait_until "${3:-20}" _lines_at_least "$1" "$2" || fail "timed out waiting for $2 lines in $1"; }

# free_port VAR [tcp|udp]: set VAR to a port nothing listens on now, never
# one handed out before in this test.
USED_PORTS=" "
free_port() {
  local p i
  for ((i = 0; i < 20; i++)); do
    p=$("$PY" -c '
import socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, kind)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' "${2:-tcp}") || fail "python3 cannot bind a port"
    case $USED_PORTS in *" $p "*) continue ;; esac
    USED_PORTS="$USED_PORTS$p "
    printf -v "$1" '%s' "$p"
    return 0
  done
  fail "no free port"
}

# --- helper servers ---------------------------------------------------------------
# start_server NAME MODE [ARGS...]: run sink.py MODE on 127.0.0.1:0 in the
# background; sets SERVER_PORT and SERVER_PID; output in $T/NAME.out,
# per-connection results in $T/NAME.res, stderr in $T/NAME.err.
start_server() {
  local name=$1
  shift
  rm -f "$T/$name.ready" "$T/$name.res"
  "$PY" "$SINK" "$@" --port 0 --ready-file "$T/$name.ready" --out "$T/$name.res" \
    >"$T/$name.out" 2>"$T/$name.err" &
  SERVER_PID=$!
  track "$SERVER_PID"
  wait_until 20 _nonempty "$T/$name.ready" || fail "server $name did not start"
  # shellcheck disable=SC2034 # used by the tests
  SERVER_PORT=$(cat "$T/$name.ready")
}

# socks ARGS...: run socks_client.py (bounded), print its answer.
socks() { timeout 60 "$PY" "$SOCKS_CLIENT" "$@"; }

# fetch_f [SECONDS]: party 1 downloads www/f from party 0's HTTP server
# (port $H0) through its SOCKS port, within SECONDS (10); 0 when the bytes
# arrive and their SHA-256 equals the file's. Errors go to curl.err.
fetch_f() {
  rm -f "$T/f.out"
  curl -sS --fail --socks5 "127.0.0.1:$P1_SOCKS" --max-time "${1:-10}" -o "$T/f.out" \
    "http://10.0.0.0:$H0/f" 2>>"$T/curl.err" && [ "$(sha_file "$T/f.out")" = "$(sha_file "$T/www/f")" ]
}

# --- configs --------------------------------------------------------------------
# write_config FILE PID SOCKS_PORT UDP_PORT KEYFILE PEERS [TRANSPORT_EXTRA] [SOCKS_EXTRA]
#   PEERS: "pid,udp_port,pin pid,udp_port,pin ..." ("" = no peers)
#   TRANSPORT_EXTRA / SOCKS_EXTRA: lines added to those sections (each
#   line indented by the caller with 2 spaces).
# UDP_HOST (default 127.0.0.1; "[::1]" for IPv6): the UDP address of every
# party.
# Services: every port 1024-65535 on 127.0.0.1 for all peers, so ports
# below 1024 are "not allowed" in tests.
write_config() {
  local file=$1 pid=$2 sport=$3 uport=$4 key=$5 peers=$6
  local textra=${7:-} sextra=${8:-} p ppid pport ppin
  {
    echo "# $TEST_NAME party $pid"
    echo "party:"
    echo "  pid: $pid"
    echo "network: 10.0.0.0/24"
    echo "socks:"
    echo "  listen: 127.0.0.1:$sport"
    [ -n "$sextra" ] && printf '%s\n' "$sextra"
    echo "udp:"
    echo "  bind: \"${UDP_HOST:-127.0.0.1}:$uport\""
    echo "identity:"
    echo "  key_file: $key"
    echo "discovery:"
    echo "  plugin: none"
    echo "registry:"
    echo "  plugin: static"
    if [ -z "$peers" ]; then
      echo "  peers: []"
    else
      echo "  peers:"
      for p in $peers; do
        IFS=, read -r ppid pport ppin <<<"$p"
        echo "    - pid: $ppid"
        echo "      addr: \"${UDP_HOST:-127.0.0.1}:$pport\""
        echo "      pubkey_sha256: $ppin"
      done
    fi
    echo "transport:"
    echo "  plugin: quic"
    [ -n "$textra" ] && printf '%s\n' "$textra"
    echo "services:"
    echo "  - ports: 1024-65535"
    echo "    host: 127.0.0.1"
    echo "    peers: all"
    echo "log:"
    echo "  level: ${SFK_LOG_LEVEL:-info}"
  } >"$file"
}

# identity CONFIG: print the pin (and check its form).
identity() {
  local out pin
  out=$("$SFKIT_PROXY" identity -c "$1" 2>"$T/identity.err") ||
    fail "sfkit-proxy identity -c $1 failed: $(cat "$T/identity.err")"
  check_sanitizer_log "$T/identity.err" "identity"
  pin=$out
  [[ $pin =~ ^[0-9a-f]{64}$ ]] || fail "identity printed '$out', not a 64-hex pin"
  echo "$pin"
}

ZERO_PIN=0000000000000000000000000000000000000000000000000000000000000000

# make_pair [TRANSPORT_EXTRA]: configs $T/p0.yaml and $T/p1.yaml for parties
# 0 and 1 that know each other; keys created. Sets P0_SOCKS P1_SOCKS P0_UDP
# P1_UDP P0_PIN P1_PIN P0_CONF P1_CONF.
make_pair() {
  local textra=${1:-}
  free_port P0_SOCKS tcp
  free_port P1_SOCKS tcp
  free_port P0_UDP udp
  free_port P1_UDP udp
  P0_CONF=$T/p0.yaml
  P1_CONF=$T/p1.yaml
  write_config "$P0_CONF" 0 "$P0_SOCKS" "$P0_UDP" p0.key "1,$P1_UDP,$ZERO_PIN" "$textra"
  write_config "$P1_CONF" 1 "$P1_SOCKS" "$P1_UDP" p1.key "0,$P0_UDP,$ZERO_PIN" "$textra"
  P0_PIN=$(identity "$P0_CONF") || exit 1
  P1_PIN=$(identity "$P1_CONF") || exit 1
  [ "$P0_PIN" != "$P1_PIN" ] || fail "two parties got the same pin"
  write_config "$P0_CONF" 0 "$P0_SOCKS" "$P0_UDP" p0.key "1,$P1_UDP,$P1_PIN" "$textra"
  write_config "$P1_CONF" 1 "$P1_SOCKS" "$P1_UDP" p1.key "0,$P0_UDP,$P0_PIN" "$textra"
}

# start_echo_pair [TRANSPORT_EXTRA]: make_pair, start both proxies and an
# echo server for each party; sets E0 (party 0's echo port) and E1.
# shellcheck disable=SC2034 # E0, E1 are used by the tests
start_echo_pair() {
  make_pair "$@"
  start_proxy p0 p0.yaml
  start_proxy p1 p1.yaml
  start_server echo0 echo
  E0=$SERVER_PORT
  start_server echo1 echo
  E1=$SERVER_PORT
}

# --- the daemon ---------------------------------------------------------------
# check_sanitizer_log FILE WHAT: fail if a sanitizer reported in FILE.
check_sanitizer_log() {
  sanitized || return 0
  if grep -q -e 'ERROR: AddressSanitizer' -e 'ERROR: LeakSanitizer' -e 'runtime error:' "$1" 2>/dev/null; then
    echo "----- sanitizer report in $(basename "$1") -----" >&2
    grep -n -A 30 -e 'ERROR: AddressSanitizer' -e 'ERROR: LeakSanitizer' -e 'runtime error:' "$1" | head -n 80 >&2
    fail "$2: sanitizer error"
  fi
}

# start_proxy NAME CONFIG [ARGS...]: start the daemon in the background, stderr
# to $T/NAME.log, and wait (at most 20 s) for its `ready:` line.
start_proxy() {
  local name=$1 conf=$2 pid deadline
  shift 2
  : >"$T/$name.log"
  "$SFKIT_PROXY" -c "$conf" "$@" >"$T/$name.out" 2>>"$T/$name.log" </dev/null &
  pid=$!
  track "$pid"
  PROXY_PID[$name]=$pid
  # shellcheck disable=SC2034 # for the tests
  PROXY_CONF[$name]=$conf
  deadline=$(awk -v n="$(now)" 'BEGIN{printf "%.3f", n + 20}')
  while ! grep -q 'ready:' "$T/$name.log"; do
    if ! alive "$pid"; then
      wait "$pid"
      fail "proxy $name exited (status $?) before it was ready"
    fi
    lt "$(now)" "$deadline" || fail "proxy $name not ready after 20 s"
    sleep 0.05
  done
}

proxy_pid() { echo "${PROXY_PID[$1]}"; }

# ready_pin NAME: the pin the proxy announced in its ready line.
ready_pin() { grep -m1 'ready:' "$T/$1.log" | grep -o 'pin [0-9a-f]\{64\}' | awk '{print $2}'; }

# wait_exit PID SECONDS: wait for a child to end; sets EXIT_STATUS; 1 on timeout.
wait_exit() {
  local pid=$1
  wait_until "$2" eval "! alive $pid" || return 1
  wait "$pid"
  EXIT_STATUS=$?
  return 0
}

# stop_proxy NAME [SIGNAL]: stop it (SIGTERM by default), check exit 0 and
# the `stopped` line, and the log for sanitizer reports.
stop_proxy() {
  local name=$1 sig=${2:-TERM} pid=${PROXY_PID[$1]}
  alive "$pid" || {
    wait "$pid"
    fail "proxy $name had already exited (status $?)"
  }
  kill -"$sig" "$pid"
  wait_exit "$pid" 20 || fail "proxy $name still running 20 s after SIG$sig"
  unset "PROXY_PID[$name]"
  check_sanitizer_log "$T/$name.log" "proxy $name"
  [ "$EXIT_STATUS" = 0 ] || fail "proxy $name exited with status $EXIT_STATUS after SIG$sig (expected 0)"
  grep -q 'stopped' "$T/$name.log" || fail "proxy $name logged no 'stopped' line after SIG$sig"
}

# kill_proxy NAME: SIGKILL, no checks.
kill_proxy() {
  local pid=${PROXY_PID[$1]}
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  unset "PROXY_PID[$1]"
}

# stop_all: stop every running proxy with checks (call before pass).
stop_all() {
  local n
  for n in "${!PROXY_PID[@]}"; do
    stop_proxy "$n"
  done
}

# assert_alive NAME
assert_alive() { alive "${PROXY_PID[$1]}" || fail "proxy $1 died"; }

# rss_kib PID: VmRSS in KiB (0 if gone).
rss_kib() { awk '/^VmRSS:/{print $2; f=1} END{if(!f) print 0}' "/proc/$1/status" 2>/dev/null || echo 0; }

# --- STUN servers (coturn) ------------------------------------------------------
# stun_ping HOST PORT: one STUN Binding request; 0 when a success response
# with our transaction id comes back within 0.3 s.
stun_ping() {
  "$PY" - "$1" "$2" <<'PYEOF'
import os, socket, struct, sys
tid = os.urandom(12)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.3)
try:
    s.sendto(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid, (sys.argv[1], int(sys.argv[2])))
    d = s.recv(2048)
except OSError:
    sys.exit(1)
sys.exit(0 if len(d) >= 20 and d[:2] == b"\x01\x01" and d[8:20] == tid else 1)
PYEOF
}

# _udp_port_free PORT: nothing is bound to 127.0.0.1:PORT or 127.0.0.2:PORT.
_udp_port_free() {
  "$PY" - "$1" <<'PYEOF'
import socket, sys
for host in ("127.0.0.1", "127.0.0.2"):
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((host, int(sys.argv[1])))
        except OSError:
            sys.exit(1)
        finally:
            s.close()
PYEOF
}

# start_coturn NAME: a STUN-only coturn on 127.0.0.1 and 127.0.0.2 (two
# listening IPs, so it answers RFC 5780 CHANGE-REQUEST and sends
# OTHER-ADDRESS), at a free port P with its alternate port P+1.  Sets
# COTURN_PORT and COTURN_PID; log in $T/NAME.log, pid file and database
# in $T/NAME/.  Stopped by the cleanup trap like every tracked process.
start_coturn() {
  need turnserver
  local name=$1 dir=$T/$1 cport="" i
  mkdir -p "$dir"
  for ((i = 0; i < 20; i++)); do
    free_port cport udp
    _udp_port_free "$cport" && _udp_port_free $((cport + 1)) && break
    cport=""
  done
  [ -n "$cport" ] || fail "no free port pair for coturn"
  turnserver -n --no-cli --no-tls --no-dtls --no-tcp --stun-only \
    --listening-ip 127.0.0.1 --listening-ip 127.0.0.2 \
    --listening-port "$cport" --alt-listening-port $((cport + 1)) \
    --pidfile "$dir/pid" --userdb "$dir/turndb" \
    --log-file "$T/$name.log" --simple-log --no-stdout-log \
    >"$dir/out" 2>&1 </dev/null &
  COTURN_PID=$!
  track "$COTURN_PID"
  # shellcheck disable=SC2034 # used by the tests
  COTURN_PORT=$cport
  wait_until 20 stun_ping 127.0.0.1 "$cport" || fail "coturn $name does not answer on 127.0.0.1:$cport"
  wait_until 20 stun_ping 127.0.0.2 $((cport + 1)) || fail "coturn $name does not answer on 127.0.0.2:$((cport + 1))"
}

# start_stun_server NAME [ARGS...]: run stun_server.py (a scripted STUN
# server: see its header) in the background; sets STUN_PORT.
start_stun_server() {
  local name=$1
  shift
  rm -f "$T/$name.ready"
  "$PY" "$LIB_DIR/stun_server.py" --ready-file "$T/$name.ready" "$@" \
    >"$T/$name.out" 2>"$T/$name.err" &
  track "$!"
  wait_until 20 _nonempty "$T/$name.ready" || fail "stun server $name did not start"
  # shellcheck disable=SC2034 # used by the tests
  STUN_PORT=$(cat "$T/$name.ready")
}

# stop_coturn PID: stop one coturn (SIGTERM, then SIGKILL after 5 s).
stop_coturn() {
  local i
  kill -TERM "$1" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    alive "$1" || break
    sleep 0.1
  done
  alive "$1" && kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  return 0
}

# use_stun_discovery CONFIG SERVERS [EXTRA]: replace the config's
# discovery section (write_config's "plugin: none", or an earlier call's)
# with plugin stun and SERVERS (a YAML list), plus EXTRA lines (indented
# by the caller).
use_stun_discovery() {
  local f=$1 servers=$2 extra=${3:-}
  awk -v servers="$servers" -v extra="$extra" '
    skip && /^ / { next }
    { skip = 0 }
    $0 == "discovery:" {
      print; print "  plugin: stun"; print "  servers: " servers
      if (extra != "") print extra
      skip = 1; next
    }
    { print }' "$f" >"$f.new" || fail "cannot edit $f"
  mv "$f.new" "$f" || fail "cannot replace $f"
}
