#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# Two parties behind cone NATs: each learns its mapping from coturn (STUN),
# publishes it and its pin on the website double, punches through both NATs,
# and carries transfers both ways on the direct path (no TURN configured).
# Then a NAT rebinding of party 0 (the QUIC server): it republishes and new
# connections work within 30 s; and of party 1 (the client) during a
# download, which survives.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"

lab_init
lab_start_stun
lab_add_party a cone
lab_add_party b cone
lab_start_website
start_parties a b
check_published a "^$(lab_wan_ip a):$LAB_UDP_PORT\$" # a cone NAT keeps the port
check_published b "^$(lab_wan_ip b):$LAB_UDP_PORT\$"
lab_transfer b a "$MB"
lab_transfer a b "$MB"
[ "$(lab_turn_allocations)" = 0 ] || fail "a TURN allocation on a direct path"

# server-side rebinding (a, PID 0): a republishes, b re-reads and new
# connections work again within 30 s
old=$(lab_published a EXTERNAL_ADDR)
lab_serve a http "$LAB_DIR/a/www"
port=$LAB_SERVER_PORT
lab_rebind a
t0=$(now)
# the new mapping is only made by a's next datagram (keepalive 5s in the config)
new=$(lab_wait_published a EXTERNAL_ADDR "^$(lab_wan_ip a):2[0-9]{4}\$" 30) || exit 1
[ "$new" != "$old" ] || fail "a did not republish after the rebinding"
log "a republished after the rebinding: $old -> $new ($(elapsed "$t0") s)"
wait_until 30 _socks_ok b a "$port" || fail "no new connection b -> a within 30 s of a's rebinding"
log "b -> a: new connections work $(elapsed "$t0") s after a's rebinding"
lab_transfer b a 5
wait_log b "$(lab_wan_ip a | sed 's/\./\\./g'):2[0-9]{4}" 5 >/dev/null

# client-side rebinding (b, PID 1) during a download: the QUIC connection
# follows b's new address and the open stream survives
www=$LAB_DIR/a/www
make_file "$www/slow" 8
lab_serve a http "$www"
lab_bg b slow curl -sS --fail --max-time 60 --limit-rate 2M --socks5 "127.0.0.1:$LAB_SOCKS_PORT" \
  -o "$LAB_DIR/b/slow.got" "http://10.0.0.0:$LAB_SERVER_PORT/slow"
slow=$LAB_BG_PID
_got_some() { [ "$(stat -c %s "$LAB_DIR/b/slow.got" 2>/dev/null || echo 0)" -gt 1048576 ]; }
wait_until 20 _got_some || fail "the slow download did not start"
lab_rebind b
wait "$slow" || fail "the download open across b's rebinding failed (curl exit $?): $(cat "$LAB_DIR/slow.err")"
[ "$(sha_file "$LAB_DIR/b/slow.got")" = "$(sha_file "$www/slow")" ] || fail "the download across b's rebinding: sha256 differs"
log "b <- a: 8 MiB download open across b's rebinding arrived intact"
lab_wait_published b EXTERNAL_ADDR "^$(lab_wan_ip b):2[0-9]{4}\$" 30 >/dev/null
lab_transfer a b 5
lab_website_updates
check_no_secrets
lab_proxy_stop_all
pass
