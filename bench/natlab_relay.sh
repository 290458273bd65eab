#!/bin/bash
# shellcheck disable=SC2317 # functions run in subshells
# Throughput and latency through the TURN relay, against the direct path,
# in the NAT lab (tests/natlab/lab.sh: network namespaces, real NAT
# routers, coturn as STUN and TURN server, the sfkit website double).
# Not part of `make check` or `make bench` (it needs root and takes a few
# minutes); a measurement, not a test.
#
#   bench/natlab_relay.sh [BUILD_DIR] [RUNS]        (defaults: build, 3)
#
# Scenarios (BENCH_RELAY_SCENARIOS, in this order), each in a fresh lab,
# party a (PID 0) serving, party b (PID 1) the client:
#   direct     a cone, b cone, relay mode auto on both: punching works,
#              the pair goes direct (the path is checked in `status`)
#   always     a cone, b cone, relay mode always on both: every packet
#              through coturn
#   symmetric  a cone, b behind a symmetric NAT, auto on both: no punch
#              can work; the pair moves to the relay after relay_fallback
# Per scenario, RUNS times: bench/loadgen.py through b's SOCKS port against
# bench/echo_server.py in a's host (10.0.0.0):
#   down / up  BENCH_RELAY_MB MiB (default 100) a -> b and b -> a on one
#              connection, MiB/s, timed from the first byte
#   ping       BENCH_RELAY_PINGS (1000) round trips of 1 byte on one
#              connection (TCP_NODELAY): p50 and p99
#   setup      BENCH_RELAY_SETUPS (20) times: SOCKS connect + 1-byte round
#              trip + close (the stream is opened end to end before the
#              SOCKS reply): p50
# and coturn's CPU time per GiB relayed (utime+stime of turnserver during
# the throughput runs). Each figure is the median over the runs.
#
# Prints a Markdown section (machine, versions, date, command, table);
# BENCH_RELAY_OUT=FILE also puts it into FILE, replacing its section
# "## Through the TURN relay (NAT lab)" (docs/benchmarks.md; bench/bench.sh
# keeps that section when it rewrites the file).
# Exit status: 0, 1 when a run failed, 77 when the turn plugin is not built
# or the lab cannot run here (not root). BENCH_RELAY_KEEP=1 keeps the
# folder with each scenario's log (both proxies' status after the runs).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd) || exit 2
RUNS=${2:-3}
BENCH_MIB=${BENCH_RELAY_MB:-100}
PINGS=${BENCH_RELAY_PINGS:-1000}
SETUPS=${BENCH_RELAY_SETUPS:-20}
SCENARIOS=${BENCH_RELAY_SCENARIOS:-direct always symmetric}
export SFKIT_PROXY=$BUILD/src/sfkit-proxy SFK_SRCDIR=$SRC
P=$BUILD/plugins
export SFKIT_PROXY_PLUGIN_DIR=$P/quic/.libs:$P/static/.libs:$P/none/.libs:$P/stun/.libs:$P/sfkit/.libs:$P/turn/.libs
export TEST_NAME=relay_bench
PY=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
LOADGEN=$SRC/bench/loadgen.py
ECHO_SERVER=$SRC/bench/echo_server.py
OUTDIR=$(mktemp -d "${TMPDIR:-/tmp}/sfk-relay-bench.XXXXXX") || exit 1
[ -n "${BENCH_RELAY_KEEP:-}" ] || trap 'rm -rf "$OUTDIR"' EXIT

# kv KEY LINE: the value of KEY=... in a loadgen output line.
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# turn_cpu: coturn's utime+stime so far, in seconds.
turn_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$LAB_STUN_PID/stat"
}

# peer_path NAME PID: the path and address NAME's proxy uses to PID ("relay
# 203.0.113.1:49160"), from `status --json`.
peer_path() {
  status_of "$1" --json | "$PY" -c '
import json, sys
for p in json.load(sys.stdin).get("peers", []):
    if p.get("pid") == int(sys.argv[1]):
        print(p.get("state", "?"), p.get("path", "-"), p.get("address", "-"))' "$2"
}

# scenario NAME KIND_A KIND_B MODE: one lab; results to $OUTDIR/NAME.res
# as "METRIC VALUE" lines, one per run.
scenario() {
  local name=$1 ka=$2 kb=$3 mode=$4 res=$OUTDIR/$1.res sink echo src r line c0 c1 i st
  # shellcheck source-path=SCRIPTDIR
  . "$SRC/tests/natlab/scenarios/common.sh"
  lab_need_plugins relay_turn
  lab_init
  lab_start_stun
  lab_add_party a "$ka"
  lab_add_party b "$kb"
  lab_start_website
  lab_bg a echo "$PY" "$ECHO_SERVER" --ready-file "$LAB_DIR/a/echo.ready" --max-seconds 1800
  wait_until 20 _nonempty "$LAB_DIR/a/echo.ready" || fail "echo_server.py did not start"
  read -r sink echo src <"$LAB_DIR/a/echo.ready"
  LAB_RELAY=$mode LAB_LOG_LEVEL=info lab_party_config a 0
  lab_proxy_start a 0 "$LAB_CONF"
  LAB_RELAY=$mode LAB_LOG_LEVEL=info lab_party_config b 1
  lab_proxy_start b 1 "$LAB_CONF"
  local lg=(lab_exec b "$PY" "$LOADGEN" --socks "127.0.0.1:$LAB_SOCKS_PORT")
  # Up: the first connects wait inside the proxy for the peer (the
  # symmetric pair needs relay_fallback first).
  for ((i = 0; i < 10; i++)); do
    "${lg[@]}" setup --target "10.0.0.0:$echo" --count 1 --max-seconds 30 >/dev/null 2>&1 && break
    sleep 1
  done
  ((i < 10)) || fail "no connection from b to a"
  st=$(peer_path b 0)
  log "b -> a: $st; a -> b: $(peer_path a 1)"
  echo "path $st" >"$res"
  echo "apath $(peer_path a 1)" >>"$res"
  for ((r = 1; r <= RUNS; r++)); do
    c0=$(turn_cpu)
    line=$("${lg[@]}" bulk --down --target "10.0.0.0:$src" --bytes $((BENCH_MIB << 20)) --max-seconds 300) ||
      fail "run $r: download failed"
    log "down: $line"
    echo "down $(kv mibps "$line")" >>"$res"
    line=$("${lg[@]}" bulk --target "10.0.0.0:$sink" --bytes $((BENCH_MIB << 20)) --max-seconds 300) ||
      fail "run $r: upload failed"
    log "up: $line"
    echo "up $(kv mibps "$line")" >>"$res"
    c1=$(turn_cpu)
    awk -v a="$c0" -v b="$c1" -v g="$(awk -v m="$BENCH_MIB" 'BEGIN{print 2 * m / 1024}')" \
      'BEGIN{printf "turn_cpu %.2f\n", (b - a) / g}' >>"$res"
    line=$("${lg[@]}" ping --target "10.0.0.0:$echo" --count "$PINGS" --warmup 50 --max-seconds 120) ||
      fail "run $r: ping failed"
    echo "p50 $(kv p50_us "$line")" >>"$res"
    echo "p99 $(kv p99_us "$line")" >>"$res"
    line=$("${lg[@]}" setup --target "10.0.0.0:$echo" --count "$SETUPS" --max-seconds 120) ||
      fail "run $r: setup failed"
    echo "setup $(kv p50_us "$line")" >>"$res"
    log "run $r: $(grep -v '^path' "$res" | tail -n 6 | tr '\n' ' ')"
  done
  echo "allocations $(lab_turn_allocations)" >>"$res"
  for i in a b; do
    echo "=== status of $i after the runs"
    status_of "$i"
  done
  [ "$(peer_path b 0)" = "$st" ] || log "note: the path changed during the runs: now $(peer_path b 0)"
  lab_proxy_stop_all
}

declare -A DESC=(
  [direct]="cone ↔ cone, direct (mode auto)"
  [always]="cone ↔ cone, relay (mode always)"
  [symmetric]="symmetric ↔ cone, relay (mode auto)"
)
declare -A ARGS=([direct]="cone cone auto" [always]="cone cone always" [symmetric]="cone symmetric auto")
t0=$(date +%s)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for s in $SCENARIOS; do
  [ -n "${ARGS[$s]:-}" ] || { echo "unknown scenario '$s' (direct, always, symmetric)" >&2; exit 2; }
  echo "scenario $s: ${DESC[$s]}, $RUNS runs" >&2
  # shellcheck disable=SC2086 # the scenario's arguments
  (scenario "$s" ${ARGS[$s]}) >"$OUTDIR/$s.log" 2>&1
  rc=$?
  if [ "$rc" = 77 ]; then
    grep -m1 SKIP "$OUTDIR/$s.log" >&2
    exit 77
  fi
  if [ "$rc" != 0 ]; then
    echo "scenario $s failed:" >&2
    tail -n 30 "$OUTDIR/$s.log" >&2
    exit 1
  fi
  grep -E 'b -> a|run [0-9]|down: |up: ' "$OUTDIR/$s.log" | sed 's/^/  /' >&2
done
elapsed=$(($(date +%s) - t0))

# median METRIC SCENARIO: median [min–max] of the runs.
median() {
  awk -v m="$1" '$1 == m {print $2}' "$OUTDIR/$2.res" | sort -g |
    awk -v f="$3" '{v[NR] = $1} END {
      if (!NR) { print "–"; exit }
      x = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf f " [" f "–" f "]\n", x, v[1], v[NR] }'
}
row() {
  local metric=$2 fmt=$3 s line="| $1 |"
  for s in $SCENARIOS; do line="$line $(median "$metric" "$s" "$fmt") |"; done
  echo "$line"
}

section() {
  local s hdr="| |" sep="|---|"
  for s in $SCENARIOS; do
    hdr="$hdr ${DESC[$s]} |"
    sep="$sep---:|"
  done
  echo "## Through the TURN relay (NAT lab)"
  echo
  echo "Generated by \`bench/natlab_relay.sh\` (root; not part of \`make bench\`):"
  echo
  echo "    bench/natlab_relay.sh build $RUNS"
  echo
  echo "- Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), Linux $(uname -r);"
  echo "  shared with other work (load average before $load0, after $(cut -d' ' -f1-3 /proc/loadavg))."
  echo "  Every namespace, both proxies, coturn and the load generator share its"
  echo "  $(nproc) cores, so these are the cost of each path on one host, not a network."
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); the run took $((elapsed / 60)) min $((elapsed % 60)) s"
  echo "- sfkit-proxy $("$SFKIT_PROXY" --version 2>/dev/null | head -n 1 | awk '{print $2}'), ngtcp2 $(pkg-config --modversion libngtcp2 2>/dev/null || echo '?'),"
  echo "  GnuTLS $(pkg-config --modversion gnutls 2>/dev/null || echo '?'), coturn $(turnserver --version 2>/dev/null | head -n 1), Python $("$PY" -c 'import platform; print(platform.python_version())' 2>/dev/null || python3 -c 'import platform; print(platform.python_version())')"
  echo "- The lab: parties behind Linux NAT routers (MASQUERADE; \`--random-fully\`"
  echo "  for the symmetric one) on a bridge that stands for the Internet, coturn"
  echo "  on it (UDP, long-term credentials); no added delay or loss (there is"
  echo "  no netem here), offloads off on the lab's links (one datagram per"
  echo "  packet). So the round trips below are the processing of each hop."
  echo "- Each scenario is a fresh lab; each figure is the median [min–max] of"
  echo "  $RUNS runs. Through \`bench/loadgen.py\` on party b's SOCKS port to"
  echo "  \`bench/echo_server.py\` at party a: $BENCH_MIB MiB down (a -> b) and up on one"
  echo "  connection; $PINGS 1-byte round trips on one connection; $SETUPS SOCKS"
  echo "  connect + 1-byte round trip + close."
  echo
  echo "$hdr"
  echo "$sep"
  row "throughput down (a → b), 1 connection, MiB/s" down %.1f
  row "throughput up (b → a), 1 connection, MiB/s" up %.1f
  row "latency p50, 1-byte round trip, µs" p50 %.0f
  row "latency p99, 1-byte round trip, µs" p99 %.0f
  row "SOCKS connect + 1-byte round trip, p50, µs" setup %.0f
  row "coturn CPU s per GiB of payload" turn_cpu %.2f
  local line="| path at b, at a (status) |"
  for s in $SCENARIOS; do
    line="$line $(sed -n 's/^path up //p' "$OUTDIR/$s.res" | awk '{print $1}'), $(sed -n 's/^apath up //p' "$OUTDIR/$s.res" | awk '{print $1}') |"
  done
  echo "$line"
  line="| TURN allocations granted (coturn log) |"
  for s in $SCENARIOS; do line="$line $(awk '$1 == "allocations" {print $2}' "$OUTDIR/$s.res") |"; done
  echo "$line"
  echo
  echo "Paths: with \`always\` on both sides each party publishes its relayed address"
  echo "and sends through its own allocation, so every packet crosses coturn"
  echo "twice (b → coturn → a's relayed address → coturn → a). In the symmetric"
  echo "pair only b's allocation carries the connection: b sends through it, and a"
  echo "sends straight to b's relayed address (a direct path for a). \"coturn CPU\""
  echo "is turnserver's utime+stime over the up and down runs per GiB of payload"
  echo "moved; \"TURN allocations\" counts both parties (with \`auto\` each allocates"
  echo "at start, used or not)."
}

section >"$OUTDIR/section.md"
cat "$OUTDIR/section.md"
if [ -n "${BENCH_RELAY_OUT:-}" ]; then
  f=$BENCH_RELAY_OUT
  [ -f "$f" ] || : >"$f"
  # Replace the old section (up to the next "## " heading or the end).
  awk -v new="$OUTDIR/section.md" '
    /^## Through the TURN relay \(NAT lab\)/ { skip = 1; while ((getline l < new) > 0) print l; done = 1; next }
    skip && /^## / { skip = 0; print ""; }
    !skip { print }
    END { if (!done) { print ""; while ((getline l < new) > 0) print l } }' "$f" >"$OUTDIR/out.md" &&
    cp "$OUTDIR/out.md" "$f" && echo "wrote $f" >&2
fi
