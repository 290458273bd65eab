#!/bin/bash
# sfkit-proxy quick start: build it, then run two parties on loopback.
#
#   scripts/demo.sh             fresh Debian 12, as root: install the build
#                               packages (scripts/install-deps.sh), autoreconf,
#                               configure and build in ./build, then the demo
#   scripts/demo.sh BUILDDIR    only the demo, with an existing build
#                               (`make demo` does this)
#
# The demo: parties 0 and 1 each get an identity key and a config that pins
# the other's key, both proxies start on 127.0.0.1, then through party 1's
# SOCKS port
#   - a download: curl fetches a random file from an HTTP server at party 0
#     (curl --socks5 ... http://10.0.0.0:PORT/file.bin), and
#   - an upload: ncat sends a random file to a TCP sink at party 0
#     (ncat --proxy ... --proxy-type socks5 10.0.0.0 PORT),
# both checked by SHA-256.  Exit status 0 only if every check passed and both
# proxies stopped cleanly (exit 0 after SIGTERM).
#
# Environment: DEMO_MB (size of each file, default 200; each transfer may
# take 60 + DEMO_MB seconds), DEMO_KEEP=1 keeps
# the temp dir with configs and logs, DEMO_LOG_LEVEL (default info) sets the
# proxies' log level.
# `make` may run this with /bin/sh (dash on Debian): use bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MB=${DEMO_MB:-200}
PY=python3

say() { printf '==> %s\n' "$*"; }
die() {
  printf 'demo: %s\n' "$*" >&2
  exit 1
}

case $MB in '' | *[!0-9]*) die "DEMO_MB must be a number of MB, not '$MB'" ;; esac
if [ "$MB" -lt 1 ] || [ "$MB" -gt 4096 ]; then die "DEMO_MB must be 1..4096"; fi
# Each transfer may take this long (at least 1 MB/s plus a minute).
MAX_TIME=$((60 + MB))

# --- 1. dependencies and build (skipped when a build dir is given) ----------
if [ $# -ge 1 ]; then
  [ -d "$1" ] || die "no build dir $1"
  BUILD=$(cd "$1" && pwd)
else
  BUILD=$SRCDIR/build
  say "installing the Debian packages (scripts/install-deps.sh)"
  bash "$SRCDIR/scripts/install-deps.sh" || die "scripts/install-deps.sh failed"
  say "autoreconf -fi"
  (cd "$SRCDIR" && autoreconf -fi)
  mkdir -p "$BUILD"
  if [ ! -f "$BUILD/config.status" ]; then
    say "configure (in $BUILD)"
    (cd "$BUILD" && "$SRCDIR/configure")
  fi
  say "make (in $BUILD)"
  make -C "$BUILD" -j"$(nproc)"
fi

BIN=$BUILD/src/sfkit-proxy
[ -x "$BIN" ] || die "no daemon at $BIN (build first, or run without arguments)"
for p in quic/.libs/transport_quic.so static/.libs/registry_static.so none/.libs/discovery_none.so; do
  [ -f "$BUILD/plugins/$p" ] || die "plugin missing: $BUILD/plugins/$p"
done
export SFKIT_PROXY_PLUGIN_DIR=$BUILD/plugins/quic/.libs:$BUILD/plugins/static/.libs:$BUILD/plugins/none/.libs
for t in "$PY" curl ncat sha256sum timeout awk; do
  command -v "$t" >/dev/null 2>&1 || die "'$t' is not installed (scripts/install-deps.sh installs it)"
done

# --- 2. a temp dir and a trap that stops whatever we started -----------------
T=$(mktemp -d "${TMPDIR:-/tmp}/sfkit-demo.XXXXXX")
PIDS=()
OK=0

alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# shellcheck disable=SC2317  # called by the trap
cleanup() {
  local p i f
  trap - EXIT INT TERM HUP
  for p in "${PIDS[@]}"; do alive "$p" && kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for ((i = 0; i < 50; i++)); do alive "$p" || break; sleep 0.1; done
    alive "$p" && kill -KILL "$p" 2>/dev/null
  done
  wait 2>/dev/null
  if [ "$OK" != 1 ]; then
    for f in "$T"/*.log; do
      [ -s "$f" ] || continue
      echo "----- last lines of $(basename "$f") -----" >&2
      tail -n 20 "$f" >&2
    done
  fi
  if [ -n "${DEMO_KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# free_ports KIND N: N distinct free 127.0.0.1 ports (tcp or udp), one a line.
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

# wait_ready NAME PID: wait (20 s at most) for the proxy's `ready:` line.
wait_ready() {
  local i
  for ((i = 0; i < 400; i++)); do
    grep -q 'ready:' "$T/$1.log" && return 0
    alive "$2" || die "proxy $1 exited before it was ready (see $1.log below)"
    sleep 0.05
  done
  die "proxy $1 not ready after 20 s"
}

# wait_file FILE: wait (20 s at most) until FILE is non-empty.
wait_file() {
  local i
  for ((i = 0; i < 400; i++)); do
    [ -s "$1" ] && return 0
    sleep 0.05
  done
  die "timed out waiting for $1"
}

# mbps BYTES SECONDS: MB/s (10^6 bytes), 1 decimal.
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 1e-9; printf "%.1f", b / s / 1e6 }'; }

# --- 3. identities and configs -------------------------------------------------
say "two-party demo on loopback in $T"
{ read -r S0; read -r S1; read -r HTTP_PORT; read -r SINK_PORT; } < <(free_ports tcp 4)
{ read -r U0; read -r U1; } < <(free_ports udp 2)

# write_config PID SOCKS UDP PEER_PID PEER_UDP PEER_PIN [SERVICE_PORT]...
write_config() {
  local p services="services: []"
  if [ $# -gt 6 ]; then
    services="services:"
    for p in "${@:7}"; do
      services="$services"$'\n'"  - {ports: \"$p\", host: 127.0.0.1, peers: all}"
    done
  fi
  cat >"$T/p$1.yaml" <<EOF
# sfkit-proxy demo: party $1
party: {pid: $1}
socks: {listen: "127.0.0.1:$2"}
udp: {bind: "127.0.0.1:$3"}
identity: {key_file: p$1.key}
discovery: {plugin: none}
log: {level: ${DEMO_LOG_LEVEL:-info}}
registry:
  plugin: static
  peers:
    - {pid: $4, addr: "127.0.0.1:$5", pubkey_sha256: "$6"}
$services
EOF
}

ZERO=0000000000000000000000000000000000000000000000000000000000000000
# First with a placeholder pin, so that `identity` can create each key ...
write_config 0 "$S0" "$U0" 1 "$U1" "$ZERO" "$HTTP_PORT" "$SINK_PORT"
write_config 1 "$S1" "$U1" 0 "$U0" "$ZERO"
PIN0=$("$BIN" identity -c "$T/p0.yaml" 2>"$T/identity.log") || die "identity for party 0: $(cat "$T/identity.log")"
PIN1=$("$BIN" identity -c "$T/p1.yaml" 2>"$T/identity.log") || die "identity for party 1: $(cat "$T/identity.log")"
for pin in "$PIN0" "$PIN1"; do
  [[ $pin =~ ^[0-9a-f]{64}$ ]] || die "identity printed '$pin', not a 64-hex pin"
done
[ "$PIN0" != "$PIN1" ] || die "both parties got the same pin"
# ... then exchange the pins, as two sites would.
write_config 0 "$S0" "$U0" 1 "$U1" "$PIN1" "$HTTP_PORT" "$SINK_PORT"
write_config 1 "$S1" "$U1" 0 "$U0" "$PIN0"

# --- 4. start both proxies ---------------------------------------------------------
"$BIN" -c "$T/p0.yaml" </dev/null >"$T/p0.out" 2>"$T/p0.log" &
PROXY0=$!
PIDS+=("$PROXY0")
"$BIN" -c "$T/p1.yaml" </dev/null >"$T/p1.out" 2>"$T/p1.log" &
PROXY1=$!
PIDS+=("$PROXY1")
wait_ready p0 "$PROXY0"
wait_ready p1 "$PROXY1"
say "party 0: SOCKS 127.0.0.1:$S0, UDP 127.0.0.1:$U0, pin ${PIN0:0:16}..."
say "party 1: SOCKS 127.0.0.1:$S1, UDP 127.0.0.1:$U1, pin ${PIN1:0:16}..."

# --- 5. the servers at party 0: HTTP and a digest sink -------------------------------
say "writing two random files of $MB MB"
mkdir "$T/www"
head -c "$((MB * 1000000))" /dev/urandom >"$T/www/file.bin"
head -c "$((MB * 1000000))" /dev/urandom >"$T/upload.bin"
SUM_DOWN=$(sha256sum <"$T/www/file.bin" | awk '{print $1}')
SUM_UP=$(sha256sum <"$T/upload.bin" | awk '{print $1}')

"$PY" -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$T/www" \
  >"$T/http.log" 2>&1 &
PIDS+=("$!")

# The sink reads one connection to its end, answers "SHA256 BYTES" and exits.
cat >"$T/sink.py" <<'EOF'
import hashlib, socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(1)
open(sys.argv[2], "w").write("listening\n")
srv.settimeout(600)
c, _ = srv.accept()
c.settimeout(600)
h, n, buf = hashlib.sha256(), 0, bytearray(1 << 20)
while True:
    k = c.recv_into(buf)
    if not k:
        break
    h.update(memoryview(buf)[:k])
    n += k
c.sendall(("%s %d\n" % (h.hexdigest(), n)).encode())
c.close()
EOF
"$PY" "$T/sink.py" "$SINK_PORT" "$T/sink.ready" >"$T/sink.log" 2>&1 &
PIDS+=("$!")
wait_file "$T/sink.ready"
for ((i = 0; i < 400; i++)); do
  curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$HTTP_PORT/" && break
  sleep 0.05
done

# --- 6. download: party 1 fetches party 0's file ------------------------------
say "download: curl --socks5 127.0.0.1:$S1 http://10.0.0.0:$HTTP_PORT/file.bin"
DOWN_RC=0
curl -sS --fail --max-time "$MAX_TIME" --socks5 "127.0.0.1:$S1" -o "$T/got.bin" \
  -w '%{size_download} %{time_total}\n' "http://10.0.0.0:$HTTP_PORT/file.bin" \
  >"$T/curl.out" 2>"$T/curl.log" || DOWN_RC=$?
read -r DOWN_BYTES DOWN_SECS <"$T/curl.out" || true
DOWN_BYTES=${DOWN_BYTES:-0} DOWN_SECS=${DOWN_SECS:-0}
GOT_DOWN=none
if [ "$DOWN_RC" = 0 ]; then
  GOT_DOWN=$(sha256sum <"$T/got.bin" | awk '{print $1}')
else
  say "the download FAILED: $(cat "$T/curl.log")"
fi
rm -f "$T/got.bin"

# --- 7. upload: party 1 sends a file to party 0's sink ---------------------------
say "upload: ncat --proxy 127.0.0.1:$S1 --proxy-type socks5 10.0.0.0 $SINK_PORT < upload.bin"
t0=$(date +%s.%N)
UP_RC=0
REPLY_UP=$(timeout "$MAX_TIME" ncat --proxy "127.0.0.1:$S1" --proxy-type socks5 10.0.0.0 "$SINK_PORT" \
  <"$T/upload.bin" 2>"$T/ncat.log") || UP_RC=$?
[ "$UP_RC" = 0 ] || say "the upload FAILED (status $UP_RC): $(cat "$T/ncat.log")"
t1=$(date +%s.%N)
UP_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
GOT_UP=none UP_BYTES=0
[ "$UP_RC" != 0 ] || read -r GOT_UP UP_BYTES <<<"$REPLY_UP" || true

# --- 8. stop the proxies: SIGTERM, each must exit 0 --------------------------------
# stop_proxy PID: sets STATUS to its exit status, or "hung" after 10 s.
# (Not in a subshell: only this shell can wait for its children.)
stop_proxy() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do alive "$pid" || break; sleep 0.05; done
  if alive "$pid"; then
    STATUS=hung
    return
  fi
  STATUS=0
  wait "$pid" || STATUS=$?
}
stop_proxy "$PROXY0"
EXIT0=$STATUS
stop_proxy "$PROXY1"
EXIT1=$STATUS

# --- 9. summary -----------------------------------------------------------------
verdict() { if [ "$1" = "$2" ]; then echo OK; else echo FAILED; fi; }
V_DOWN=$(verdict "$GOT_DOWN" "$SUM_DOWN")
V_UP=$(verdict "$GOT_UP" "$SUM_UP")
[ "$DOWN_BYTES" = "$((MB * 1000000))" ] || V_DOWN=FAILED
[ "$UP_BYTES" = "$((MB * 1000000))" ] || V_UP=FAILED

echo
echo "sfkit-proxy demo: two parties on 127.0.0.1, QUIC between the proxies"
printf '  party 0  pin %s...  SOCKS 127.0.0.1:%s  UDP 127.0.0.1:%s  (HTTP on :%s, sink on :%s)\n' \
  "${PIN0:0:16}" "$S0" "$U0" "$HTTP_PORT" "$SINK_PORT"
printf '  party 1  pin %s...  SOCKS 127.0.0.1:%s  UDP 127.0.0.1:%s\n' \
  "${PIN1:0:16}" "$S1" "$U1"
printf '  download  party 0 -> party 1 (curl)  %11s bytes  %7.2f s  %7s MB/s  SHA-256 %s\n' \
  "$DOWN_BYTES" "$DOWN_SECS" "$(mbps "$DOWN_BYTES" "$DOWN_SECS")" "$V_DOWN"
printf '  upload    party 1 -> party 0 (ncat)  %11s bytes  %7.2f s  %7s MB/s  SHA-256 %s\n' \
  "$UP_BYTES" "$UP_SECS" "$(mbps "$UP_BYTES" "$UP_SECS")" "$V_UP"
echo "  proxies stopped by SIGTERM: party 0 exit $EXIT0, party 1 exit $EXIT1"

if [ "$V_DOWN" = OK ] && [ "$V_UP" = OK ] && [ "$EXIT0" = 0 ] && [ "$EXIT1" = 0 ]; then
  OK=1
  echo "demo: OK"
  exit 0
fi
echo "demo: FAILED" >&2
exit 1
