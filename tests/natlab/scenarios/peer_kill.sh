#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# A peer killed with SIGKILL (no goodbye): a (PID 0, the QUIC server) dies
# while b uploads to it and holds an idle connection to it. b must notice
# within 30 s: the open transfer ends with an error and the idle connection
# is reset (not a clean EOF, not a hang), a new SOCKS CONNECT to a gets an error reply, and
# b logs the peer down. After a's restart (same key, same address) both
# directions work again.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"
MB=${SFK_LAB_MB:-5}

lab_init
lab_start_stun
lab_add_party a cone
lab_add_party b cone
lab_start_website
start_parties a b
check_published a
check_published b
lab_transfer b a "$MB"

# open when a is killed: a rate-limited upload (curl) to a's HTTP server,
# and an idle connection to a's echo server (socks_client.py --hold)
www=$LAB_DIR/a/www
make_file "$LAB_DIR/b/slow" 32
lab_serve a echo
echo_port=$LAB_SERVER_PORT
lab_serve a http "$www"
port=$LAB_SERVER_PORT
lab_bg b slow curl -sS --fail --max-time 90 --limit-rate 256K --socks5 "127.0.0.1:$LAB_SOCKS_PORT" \
  -T "$LAB_DIR/b/slow" "http://10.0.0.0:$port/upload"
slow=$LAB_BG_PID
lab_bg b hold "$PY" "$SFK_SRCDIR/tests/integration/socks_client.py" "127.0.0.1:$LAB_SOCKS_PORT" 10.0.0.0 "$echo_port" --hold
hold=$LAB_BG_PID
_held() { grep -q 0x00 "$LAB_DIR/hold.out"; }
wait_until 20 _held || fail "the idle connection b -> a was not accepted: $(cat "$LAB_DIR/hold.out" "$LAB_DIR/hold.err")"
_sent_some() { grep -q 'bridge: peer 1: stream to service port '"$port" "$LAB_DIR/a/proxy.log"; }
wait_until 20 _sent_some || fail "the slow upload did not start"
lab_proxy_kill a
t0=$(now)
log "a's proxy killed (SIGKILL) during b's upload"

_ended() { ! lab_alive "$slow" && ! lab_alive "$hold"; }
wait_until 30 _ended || fail "b's open connections still hang 30 s after a was killed"
rc=0
wait "$slow" || rc=$?
[ "$rc" != 0 ] || fail "b's upload of 32 MiB 'succeeded' although a was killed"
log "b's open upload ended with curl exit $rc after $(elapsed "$t0") s: $(head -c 200 "$LAB_DIR/slow.err")"
wait "$hold"
[ "$(tail -n 1 "$LAB_DIR/hold.out")" = closed ] ||
  fail "b's idle connection to a ended with '$(tail -n 1 "$LAB_DIR/hold.out")', not a reset"
log "b's idle connection to a: reset (not a clean EOF, not a hang)"
line=$(wait_log b 'peer 0 \([^)]*\) down' 5) || exit 1
log "b: ${line#* * }"

# a new connection to the dead peer: an error reply, not a hang
t1=$(now)
rep=$(socks_reply b a "$port" 40)
case $rep in
0x0[1-8]) ;;
*) fail "b -> a while a is dead: SOCKS reply '$rep' (want an error code)" ;;
esac
lt "$(elapsed "$t1")" 15 || fail "b -> a while a is dead: the reply took $(elapsed "$t1") s"
line=$(grep -E "10\.0\.0\.0:$port: SOCKS reply $rep" "$LAB_DIR/b/proxy.log" | tail -n 1)
[ -n "$line" ] || fail "b logged no reason for its SOCKS reply $rep"
log "b -> a while a is dead: SOCKS reply $rep in $(elapsed "$t1") s; b logged: ${line#* * }"

# a comes back (same identity key, same UDP port): both directions again
lab_party_config a 0
lab_proxy_start a 0 "$LAB_CONF"
t2=$(now)
wait_until 30 _socks_ok b a "$port" || fail "b -> a does not work within 30 s of a's restart"
log "b -> a works again $(elapsed "$t2") s after a's restart"
lab_transfer b a "$MB"
lab_transfer a b "$MB"
check_no_secrets
lab_proxy_stop_all
pass
