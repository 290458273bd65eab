#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# SOCKS5 reply codes as a client sees them, RFC 1929 auth, and clients that
# misbehave (silent, gone mid-handshake, garbage) without hurting others.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need ncat

cd "$T" || fail "cd $T"
HS="  handshake_timeout: 2s"
make_pair "$HS"
# party 1 also knows party 2, which never runs (unreachable)
free_port DEAD_UDP udp
DEAD_PIN=$(printf 'party 2' | sha_stdin)
write_config p1.yaml 1 "$P1_SOCKS" "$P1_UDP" p1.key "0,$P0_UDP,$P0_PIN 2,$DEAD_UDP,$DEAD_PIN" "$HS"
# party 0's SOCKS port asks for a user name and password (RFC 1929)
echo 's3cret' >p0.pass
chmod 600 p0.pass
write_config p0.yaml 0 "$P0_SOCKS" "$P0_UDP" p0.key "1,$P1_UDP,$P1_PIN" "$HS" \
  "$(printf '  username: alice\n  password_file: p0.pass')"

start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
start_server echo0 echo
E0=$SERVER_PORT
start_server sink0 sink
S0=$SERVER_PORT
start_server echo1 echo
E1=$SERVER_PORT
free_port REFUSED tcp # nothing listens there

# expect WANT ARGS...: socks_client.py through party 1's SOCKS port.
expect() {
  local want=$1 got
  shift
  got=$(socks "127.0.0.1:$P1_SOCKS" "$@" | head -n 1)
  [ "$got" = "$want" ] || fail "socks $*: got '$got', expected '$want'"
  log "socks $*: $got"
}

# --- reply codes ------------------------------------------------------------
got=$(socks "127.0.0.1:$P1_SOCKS" 10.0.0.0 "$E0" --send hello)
[ "$got" = "$(printf '0x00\nhello')" ] || fail "CONNECT to an echo service: got '$got'"
log "connect + echo: ok"
expect 0x05 10.0.0.0 "$REFUSED"                 # remote port refused
expect 0x02 10.0.0.0 999                        # port not in party 0's services
expect 0x02 192.0.2.1 "$E0"                     # outside 10.0.0.0/24
expect 0x02 10.0.1.0 "$E0"                      # outside 10.0.0.0/24
expect 0x07 10.0.0.0 "$E0" --cmd bind           # BIND
expect 0x07 10.0.0.0 "$E0" --cmd udp            # UDP ASSOCIATE
expect 0x07 10.0.0.0 "$E0" --cmd 9              # no such command
expect 0x08 localhost "$E0" --atyp domain       # domain names are not resolved
expect 0x08 ::1 "$E0" --atyp ipv6               # IPv6
expect 0x08 10.0.0.0 "$E0" --atyp 5             # no such address type
expect "method 0xff" 10.0.0.0 "$E0" --methods 02 # party 1 wants no auth

# a party that is configured but down: 0x04 within the handshake timeout
t0=$(now)
expect 0x04 10.0.0.2 "$E0"
dt=$(elapsed "$t0")
lt "$dt" 6 || fail "unreachable peer answered after $dt s (handshake_timeout 2s)"
log "unreachable peer: 0x04 after $dt s"
grep -q 'bridge: 10.0.0.2:'"$E0"': SOCKS reply 0x04 (host unreachable)' "$T/p1.log" ||
  fail "p1.log has no 'SOCKS reply 0x04 (host unreachable)' line for 10.0.0.2:$E0"

# a party the registry does not know: refused at once, never 0x00
got=$(socks "127.0.0.1:$P1_SOCKS" 10.0.0.7 "$E0")
case $got in 0x02 | 0x04) log "unknown party 10.0.0.7: $got" ;; *) fail "unknown party 10.0.0.7: got '$got'" ;; esac
got=$(socks "127.0.0.1:$P1_SOCKS" 10.0.0.255 "$E0")
case $got in 0x02 | 0x04) log "broadcast 10.0.0.255: $got" ;; *) fail "10.0.0.255: got '$got'" ;; esac

# --- RFC 1929 on party 0's port --------------------------------------------------
P0=127.0.0.1:$P0_SOCKS
got=$(socks "$P0" 10.0.0.1 "$E1")
[ "$got" = "method 0xff" ] || fail "auth required, no-auth offered: got '$got' (expected method 0xff)"
got=$(socks "$P0" 10.0.0.1 "$E1" --user alice --password s3cret --send ping)
[ "$got" = "$(printf '0x00\nping')" ] || fail "right user and password: got '$got'"
got=$(socks "$P0" 10.0.0.1 "$E1" --methods 00,02 --user alice --password s3cret)
[ "$got" = 0x00 ] || fail "offering no-auth and user/password: got '$got'"
got=$(socks "$P0" 10.0.0.1 "$E1" --user alice --password wrong)
case $got in "auth 0x00" | 0x*) fail "wrong password accepted: '$got'" ;; "auth 0x"* | closed) ;; *) fail "wrong password: got '$got'" ;; esac
got=$(socks "$P0" 10.0.0.1 "$E1" --user bob --password s3cret)
case $got in "auth 0x00" | 0x*) fail "wrong user accepted: '$got'" ;; "auth 0x"* | closed) ;; *) fail "wrong user: got '$got'" ;; esac
got=$(socks "$P0" 10.0.0.1 "$E1" --user alice --password '')
case $got in "auth 0x00" | 0x*) fail "empty password accepted: '$got'" ;; *) ;; esac
log "RFC 1929: right credentials pass, wrong ones are refused"
grep -q 's3cret' ./*.log && fail "the SOCKS password shows in a log"

# --- misbehaving clients ---------------------------------------------------------
# Two silent clients: one sent half a greeting, one half a request.
exec 7<>"/dev/tcp/127.0.0.1/$P1_SOCKS" || fail "cannot open a raw connection"
printf '\005' >&7
exec 8<>"/dev/tcp/127.0.0.1/$P1_SOCKS" || fail "cannot open a raw connection"
printf '\005\001\000\005\001\000\001\012' >&8
# ... while another client moves 16 MiB
make_file data 16
t0=$(now)
timeout 60 ncat --proxy "127.0.0.1:$P1_SOCKS" --proxy-type socks5 --send-only 10.0.0.0 "$S0" <data ||
  fail "transfer beside silent clients: ncat failed (status $?)"
wait_lines "$T/sink0.res" 1 30
read -r sum bytes <"$T/sink0.res"
[ "$sum" = "$(sha_file data)" ] || fail "transfer beside silent clients: sha256 differs ($bytes bytes arrived)"
log "16 MiB beside two silent clients: ok in $(elapsed "$t0") s"

# Clients that leave mid-handshake, or right after their request (some to
# the unreachable party, whose answer is still pending).
for i in 1 2 3 4 5; do
  pids=()
  socks "127.0.0.1:$P1_SOCKS" --raw 05 --close-after-request >/dev/null &
  pids+=($!)
  socks "127.0.0.1:$P1_SOCKS" --raw 0501 --close-after-request >/dev/null &
  pids+=($!)
  socks "127.0.0.1:$P1_SOCKS" 10.0.0.0 "$E0" --close-after-request >/dev/null &
  pids+=($!)
  socks "127.0.0.1:$P1_SOCKS" 10.0.0.2 "$E0" --close-after-request >/dev/null &
  pids+=($!)
  socks "127.0.0.1:$P1_SOCKS" 10.0.0.0 "$REFUSED" --close-after-request >/dev/null &
  pids+=($!)
  socks "127.0.0.1:$P0_SOCKS" --raw 050102 --close-after-request >/dev/null &
  pids+=($!)
  socks "127.0.0.1:$P0_SOCKS" 10.0.0.1 "$E1" --user alice --password s3cret --close-after-request >/dev/null &
  pids+=($!)
  track "${pids[@]}"
  wait "${pids[@]}"
done
# a client killed while its data is in flight
{ timeout -s KILL 0.5 ncat --proxy "127.0.0.1:$P1_SOCKS" --proxy-type socks5 10.0.0.0 "$E0" <data >/dev/null 2>&1; } 2>/dev/null
assert_alive p0
assert_alive p1
log "clients gone mid-handshake: both proxies alive"

# Garbage: not SOCKS5 at all.
for raw in 04010050c000020100 474554202f20485454502f312e300d0a0d0a 00 ff; do
  got=$(socks "127.0.0.1:$P1_SOCKS" --raw "$raw" --timeout 5)
  case $got in closed | 05ff*) ;; *) fail "garbage $raw: the proxy answered '$got'" ;; esac
done
for i in $(seq 20); do
  socks "127.0.0.1:$P1_SOCKS" --garbage 700 --timeout 5 >/dev/null || fail "garbage #$i: cannot reach the proxy"
done
assert_alive p1
log "garbage: closed, proxy alive"

# Still fully working afterwards, both ways.
got=$(socks "127.0.0.1:$P1_SOCKS" 10.0.0.0 "$E0" --send after)
[ "$got" = "$(printf '0x00\nafter')" ] || fail "after the misbehaving clients: got '$got'"
got=$(socks "$P0" 10.0.0.1 "$E1" --user alice --password s3cret --send after)
[ "$got" = "$(printf '0x00\nafter')" ] || fail "after the misbehaving clients (party 0): got '$got'"

exec 7>&- 8>&-
stop_all
pass
