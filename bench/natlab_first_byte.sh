#!/bin/bash
# Time from the second proxy's start to the first byte through a cone-to-
# cone pair in the NAT lab, with the default timers (STUN keepalive 25 s,
# registry poll 10 s, QUIC keepalive 5 s): what a site waits for when both
# proxies start.  Each run is a fresh lab (new keys, an empty website), so
# nothing is known in advance.  Not part of `make check` (a measurement,
# not a test).  Needs root and a build.
#
#   bench/natlab_first_byte.sh [BUILD_DIR] [RUNS]     (defaults: build, 7)
#
# Per run: party a (PID 0) is started and ready; then the clock starts,
# party b (PID 1) is started, and curl through b's SOCKS port asks a's
# HTTP service for a 1-byte file at once (the SOCKS connect waits inside
# the proxy until the peer is up).  first byte = b's start -> curl's first
# byte.  Prints each run and the median.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd) || exit 2
RUNS=${2:-7}
export SFKIT_PROXY=$BUILD/src/sfkit-proxy SFK_SRCDIR=$SRC
P=$BUILD/plugins
export SFKIT_PROXY_PLUGIN_DIR=$P/quic/.libs:$P/static/.libs:$P/none/.libs:$P/stun/.libs:$P/sfkit/.libs:$P/turn/.libs
TEST_NAME=first_byte

one_run() {
  # shellcheck source-path=SCRIPTDIR
  . "$SRC/tests/natlab/lab.sh"
  lab_init
  lab_start_stun
  lab_add_party a cone
  lab_add_party b cone
  lab_start_website
  mkdir -p "$LAB_DIR/a/www" && printf x >"$LAB_DIR/a/www/one"
  lab_serve a http "$LAB_DIR/a/www"
  local port=$LAB_SERVER_PORT t0 t1 st
  # The defaults: no keepalive or poll override in the configs.
  LAB_KEEPALIVE=25s LAB_POLL=10s LAB_LOG_LEVEL=info lab_party_config a 0
  lab_proxy_start a 0 "$LAB_CONF"
  LAB_KEEPALIVE=25s LAB_POLL=10s LAB_LOG_LEVEL=info lab_party_config b 1
  t0=$(now)
  lab_proxy_start b 1 "$LAB_CONF"
  t1=$(now)
  st=$(lab_exec b curl -s -o /dev/null -w '%{http_code} %{time_starttransfer}' \
    --max-time 60 --socks5 "127.0.0.1:$LAB_SOCKS_PORT" "http://10.0.0.0:$port/one")
  set -- $st
  [ "${1:-}" = 200 ] || fail "curl through b: ${st:-no answer}"
  awk -v a="$t0" -v b="$t1" -v c="$2" 'BEGIN{printf "%.3f\n", (b - a) + c}' >"$RESULT"
}

results=()
for ((i = 1; i <= RUNS; i++)); do
  RESULT=$(mktemp)
  (one_run) >"$RESULT.log" 2>&1 || { echo "run $i failed:"; tail -5 "$RESULT.log"; rm -f "$RESULT" "$RESULT.log"; exit 1; }
  r=$(cat "$RESULT")
  rm -f "$RESULT" "$RESULT.log"
  results+=("$r")
  printf 'run %d: first byte %.3f s after the second proxy started\n' "$i" "$r"
done
printf '%s\n' "${results[@]}" | sort -n | awk '{v[NR]=$1} END{m = NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "median of %d runs: %.3f s (min %.3f, max %.3f)\n", NR, m, v[1], v[NR]}'
