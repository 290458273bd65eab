#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# A peer whose certificate does not match the pinned key is refused, on the
# QUIC client side and on the server side.  Both sides say why, with full
# pins: the checker "certificate pin X does not match the registry's Y",
# the refused side "the peer refused our certificate (... ours is X)", and
# the SOCKS side's 0x04 line carries the reason.  With the right pins the
# same pair works.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

cd "$T" || fail "cd $T"
HS="  handshake_timeout: 2s"
make_pair "$HS"
cp p0.yaml p0.good.yaml
cp p1.yaml p1.good.yaml
WRONG=$(printf 'not the right key' | sha_stdin)
start_server echo0 echo
E0=$SERVER_PORT
start_server echo1 echo
E1=$SERVER_PORT

# refused CHECKER REFUSED VIA_SOCKS ADDR PORT REGISTRY_PIN ACTUAL_PIN WHAT SOCKS_SIDE
#   CHECKER found the mismatch, REFUSED is the party whose key it refused,
#   SOCKS_SIDE the one whose SOCKS client asked.
refused() {
  local t0 got dt mism refd
  t0=$(now)
  got=$(socks "127.0.0.1:$3" "$4" "$5" --timeout 30 | head -n 1)
  dt=$(elapsed "$t0")
  case $got in
    0x00) fail "$8: the connection went through despite the wrong pin" ;;
    0x04) log "$8: SOCKS reply 0x04 after $dt s" ;;
    *) fail "$8: SOCKS reply '$got' after $dt s (0x04 expected)" ;;
  esac
  lt "$dt" 15 || fail "$8: the refusal took $dt s"
  # full pins, so a site can fix its config from the log
  mism="certificate pin $7 does not match the registry's $6"
  refd="the peer refused our certificate (its registry pin for us differs: ours is $7)"
  _says() { grep -F "$2" "$T/$1.log" | grep -q "$3"; }
  wait_until 10 _says "$1" "$mism" 'peers: peer [0-9]* (10\.0\.0\.[0-9]*) down' ||
    fail "$8: $1 did not log the peer down with '$mism'"
  wait_until 10 _says "$2" "$refd" 'peers: peer [0-9]* (10\.0\.0\.[0-9]*) down' ||
    fail "$8: $2 did not log the peer down with '$refd'"
  log "$8: $(grep -F "$mism" "$T/$1.log" | grep -m1 'down')"
  log "$8: $(grep -F "$refd" "$T/$2.log" | grep -m1 'down')"
  # the SOCKS side's bridge says why it answered 0x04
  grep 'SOCKS reply 0x04' "$T/$9.log" | grep -qF -e "$mism" -e "$refd" ||
    fail "$8: $9 logged no 'SOCKS reply 0x04' line with the reason"
  log "$8: $(grep -m1 'SOCKS reply 0x04' "$T/$9.log")"
}

# works VIA_SOCKS ADDR PORT WHAT
works() {
  local got
  got=$(socks "127.0.0.1:$1" "$2" "$3" --send "$4")
  [ "$got" = "$(printf '0x00\n%s' "$4")" ] || fail "$4: got '$got'"
  log "$4: ok"
}

# --- A: party 1 (the QUIC client) pins a wrong key for party 0 ------------------
sed "s/$P0_PIN/$WRONG/" p1.good.yaml >p1.yaml
start_proxy p0 p0.yaml
start_proxy p1a p1.yaml
refused p1a p0 "$P1_SOCKS" 10.0.0.0 "$E0" "$WRONG" "$P0_PIN" "client pins a wrong server key" p1a
assert_alive p0
assert_alive p1a
stop_proxy p1a
cp p1.good.yaml p1.yaml
start_proxy p1 p1.yaml
works "$P1_SOCKS" 10.0.0.0 "$E0" "right pins after A, via party 1"
works "$P0_SOCKS" 10.0.0.1 "$E1" "right pins after A, via party 0"
stop_all

# --- B: party 0 (the QUIC server) pins a wrong key for party 1 -------------------
sed "s/$P1_PIN/$WRONG/" p0.good.yaml >p0.yaml
start_proxy p0b p0.yaml
start_proxy p1b p1.yaml
refused p0b p1b "$P1_SOCKS" 10.0.0.0 "$E0" "$WRONG" "$P1_PIN" "server pins a wrong client key" p1b
assert_alive p0b
assert_alive p1b
stop_proxy p0b
cp p0.good.yaml p0.yaml
start_proxy p0 p0.yaml
# party 1 may still be backing off after the refusal: allow it 15 s
ok() { [ "$(socks "127.0.0.1:$P1_SOCKS" 10.0.0.0 "$E0" --timeout 10 | head -n 1)" = 0x00 ]; }
wait_until 15 ok || fail "after B the right pins do not connect within 15 s"
works "$P1_SOCKS" 10.0.0.0 "$E0" "right pins after B, via party 1"
works "$P0_SOCKS" 10.0.0.1 "$E1" "right pins after B, via party 0"

stop_all
pass
