#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# UDP payload per path.  A peer on a loopback address gets packets of up
# to loopback_payload bytes (default 16384); 1452 makes loopback carry
# what a network path would.  For each setting (and the default over ::1
# when the machine has IPv6): 16 MiB each way through an echo service,
# sha256 equal, and the largest packet each side sent (from its
# "connection down" line) within the setting.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need ncat

cd "$T" || fail "cd $T"
make_file in 16
SUM=$(sha_file in)

# echo_through SOCKS_PORT ADDR PORT WHAT
echo_through() {
  local got
  got=$(timeout "$BIG_TIMEOUT" ncat --proxy "127.0.0.1:$1" --proxy-type socks5 "$2" "$3" <in 2>ncat.err | sha_stdin)
  [ "$got" = "$SUM" ] || fail "$4: sha256 of the echo differs ($got, expected $SUM): $(cat ncat.err)"
  log "$4: 16 MiB echoed, sha256 equal"
}

# check_largest NAME MIN MAX: the proxy's "connection down" line reports
# a largest packet in [MIN, MAX].
check_largest() {
  local line n
  line=$(grep -m1 'connection down' "$1.log") || fail "$1 logged no 'connection down' line"
  n=$(sed -n 's/.*largest \([0-9]*\);.*/\1/p' <<<"$line")
  [ -n "$n" ] || fail "$1: no 'largest N' in: $line"
  if [ "$n" -lt "$2" ] || [ "$n" -gt "$3" ]; then
    fail "$1: largest packet $n bytes, expected $2..$3: $line"
  fi
  log "$1: largest packet $n bytes"
}

settings="1452 default 65507"
if ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/'; then
  settings="$settings ipv6"
else
  log "no ::1 on lo: the IPv6 case is not run"
fi
for setting in $settings; do
  UDP_HOST=127.0.0.1
  case $setting in
  1452) extra="  loopback_payload: 1452" lo=1200 hi=1452 ;;
  default) extra="" lo=1453 hi=16384 ;;
  65507) extra="  loopback_payload: 65507" lo=16385 hi=65507 ;;
  ipv6) extra="" lo=1453 hi=16384 UDP_HOST="[::1]" ;;
  esac
  start_echo_pair "$extra"
  echo_through "$P1_SOCKS" 10.0.0.0 "$E0" "$setting: party 1 -> party 0"
  echo_through "$P0_SOCKS" 10.0.0.1 "$E1" "$setting: party 0 -> party 1"
  stop_all
  check_largest p0 "$lo" "$hi"
  check_largest p1 "$lo" "$hi"
  if [ "$setting" = ipv6 ]; then
    grep -q 'peer 1 at \[::1\]:[0-9]*: connection down' p0.log ||
      fail "ipv6: party 0's connection was not over [::1]: $(grep 'connection down' p0.log)"
  fi
done
pass
