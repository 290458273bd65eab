#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# The one UDP socket is demultiplexed by the first byte (RFC 9443): 0-3 is
# STUN, QUIC packets must never start so.  ngtcp2 0.12 greases the QUIC bit
# on a coin toss per connection; six fresh connections (twelve tosses) with
# traffic both ways must produce no datagram that the daemon takes for STUN.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need ncat

cd "$T" || fail "cd $T"
SFK_LOG_LEVEL=debug make_pair
start_proxy p0 p0.yaml
start_server echo0 echo
E0=$SERVER_PORT
make_file data 2
want=$(sha_file data)
for ((round = 0; round < 6; round++)); do
  start_proxy p1 p1.yaml
  got=$(timeout 60 ncat --proxy "127.0.0.1:$P1_SOCKS" --proxy-type socks5 \
    10.0.0.0 "$E0" <data 2>"err.$round" | sha_stdin)
  [ "$got" = "$want" ] || fail "round $round: echoed data differs ($(cat "err.$round"))"
  stop_proxy p1
  mv p1.log "p1.$round.log"
done
stop_all
n=$(cat p0.log p1.*.log | grep -c 'STUN datagram')
[ "$n" = 0 ] || fail "$n QUIC datagrams were taken for STUN"
log "6 connections, 2 MiB echoed each: no datagram misrouted"
pass
