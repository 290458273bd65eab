#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# A peer whose certificate does not match the pinned key is refused, on the
# QUIC client side and on the server side, with a log line naming both pins;
# with the right pins the same pair works.
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

# refused NAME_A NAME_B VIA_SOCKS ADDR PORT EXPECTED_PIN ACTUAL_PIN WHAT
refused() {
  local t0 got dt
  t0=$(now)
  got=$(socks "127.0.0.1:$3" "$4" "$5" --timeout 30 | head -n 1)
  dt=$(elapsed "$t0")
  case $got in
    0x00) fail "$8: the connection went through despite the wrong pin" ;;
    0x04) log "$8: SOCKS reply 0x04 after $dt s" ;;
    *) log "$8: SOCKS reply '$got' after $dt s (0x04 expected, accepted as a failure)" ;;
  esac
  lt "$dt" 15 || fail "$8: the refusal took $dt s"
  # one log line names the pin mismatch with both 12-char prefixes
  local want=${6:0:12} have=${7:0:12}
  grep -ih 'pin' "$T/$1.log" "$T/$2.log" | grep -F "$want" | grep -qF "$have" ||
    fail "$8: no log line mentions 'pin' with both $want (expected) and $have (presented)"
  log "$8: $(grep -ih 'pin' "$T/$1.log" "$T/$2.log" | grep -F "$want" | grep -F "$have" | head -n 1)"
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
refused p0 p1a "$P1_SOCKS" 10.0.0.0 "$E0" "$WRONG" "$P0_PIN" "client pins a wrong server key"
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
refused p0b p1b "$P1_SOCKS" 10.0.0.0 "$E0" "$WRONG" "$P1_PIN" "server pins a wrong client key"
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
