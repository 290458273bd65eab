#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# Stream ids are cumulative in QUIC: each finished stream must give the
# peer a new one.  With max_streams 4, forty connections one after the
# other (both directions) must all work.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need ncat

cd "$T" || fail "cd $T"
start_echo_pair "  max_streams: 4
  handshake_timeout: 3s"

for ((i = 0; i < 20; i++)); do
  got=$(printf 'hello %d\n' "$i" | timeout 20 ncat --proxy "127.0.0.1:$P1_SOCKS" \
    --proxy-type socks5 10.0.0.0 "$E0" 2>"err.$i") ||
    fail "connection $i from party 1 failed: $(cat "err.$i")"
  [ "$got" = "hello $i" ] || fail "connection $i from party 1 echoed '$got'"
  got=$(printf 'back %d\n' "$i" | timeout 20 ncat --proxy "127.0.0.1:$P0_SOCKS" \
    --proxy-type socks5 10.0.0.1 "$E1" 2>"err.$i") ||
    fail "connection $i from party 0 failed: $(cat "err.$i")"
  [ "$got" = "back $i" ] || fail "connection $i from party 0 echoed '$got'"
done
log "40 sequential connections with max_streams 4: all echoed"
stop_all
pass
