#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# The turn relay plugin against a real coturn on loopback (long-term
# credentials). coturn grants a 6-second first allocation and makes nonces
# stale after 2 s, so the first Refresh (at 3 s) meets a 438.
# A: party 1 in relay mode 'always': Allocate (401 round), CreatePermission,
#    ChannelBind, transfers both ways through coturn (sha256), a Refresh
#    with a stale nonce, `status` shows the allocation and the channel, and
#    a clean stop deallocates (coturn frees the allocation at once).
# A2: the same from a dual-stack socket ([::]) towards IPv4 coturn.
# B: SIGKILL (no Deallocate) and a restart on the same port: coturn still
#    holds an allocation for that address (437); the plugin releases it and
#    allocates again.
# D: a clean stop deallocates (Refresh with lifetime 0; coturn frees it).
# C: a wrong password: one error naming the server and the reason, no
#    retry storm (2 Allocate requests), the direct path keeps working, and
#    `status` says why the relay is unavailable; the site fixes the
#    password file and a SIGHUP brings the relay up without a restart.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need curl
need turnserver

cd "$T" || fail "cd $T"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy

TURN_USER=site1
TURN_PASS=pw-$RANDOM$RANDOM$RANDOM
printf '%s\n' "$TURN_PASS" >turn.pass
printf 'not-%s\n' "$TURN_PASS" >bad.pass
chmod 600 turn.pass bad.pass

# turn_up NAME [ARGS...]: coturn with TURN on 127.0.0.1 at a free port
# (TURN_PORT), relaying from a range of 500 ports picked at random (so
# that two test runs on one machine rarely share one), plus ARGS.
turn_up() {
  local dir=$T/$1 lo
  shift
  mkdir -p "$dir"
  free_port TURN_PORT udp
  lo=$((30000 + (RANDOM % 40) * 500))
  turnserver -n --no-cli --no-tls --no-dtls --no-tcp --fingerprint \
    --listening-ip 127.0.0.1 --relay-ip 127.0.0.1 --listening-port "$TURN_PORT" \
    --min-port "$lo" --max-port $((lo + 499)) --allow-loopback-peers \
    --lt-cred-mech --user "$TURN_USER:$TURN_PASS" --realm test.example.org \
    "$@" --verbose \
    --pidfile "$dir/pid" --userdb "$dir/turndb" \
    --log-file "$dir.log" --simple-log --no-stdout-log >"$dir/out" 2>&1 </dev/null &
  TURN_PID=$!
  track "$TURN_PID"
  wait_until 20 stun_ping 127.0.0.1 "$TURN_PORT" || fail "coturn $(basename "$dir") does not answer"
}

# relay_conf IN OUT MODE PASSFILE
relay_conf() {
  awk -v port="$TURN_PORT" -v mode="$3" -v user="$TURN_USER" -v pf="$4" '
    { print }
    /^  plugin: quic$/ {
      print "  relay:"
      print "    plugin: turn"
      print "    server: turn:127.0.0.1:" port
      print "    username: " user
      print "    password_file: " pf
      print "    lifetime: 10s"
      print "    mode: " mode
    }
    END { print "control:"; print "  socket: " FILENAME ".sock" }' "$1" >"$2"
}

# status_json NAME: `sfkit-proxy status --json` of a proxy.
status_json() {
  "$SFKIT_PROXY" status -c "${PROXY_CONF[$1]}" --json 2>"$T/status.err" ||
    fail "status of $1 failed: $(cat "$T/status.err")"
}
# jq-less field access: status_get NAME PYTHON_EXPR (on the parsed JSON `s`)
status_get() {
  status_json "$1" | "$PY" -c 'import json,sys; s=json.load(sys.stdin); print(eval(sys.argv[1]))' "$2"
}

transfer() {
  local got
  got=$(curl -sS --fail --max-time 60 --socks5 "127.0.0.1:$1" "http://$2:$3/f" 2>curl.err | sha_stdin) ||
    fail "$4: download failed: $(cat curl.err)"
  [ "$got" = "$(sha_file www/f)" ] || fail "$4: sha256 differs"
  got=$(curl -sS --fail --max-time 60 --socks5 "127.0.0.1:$1" -T www/f "http://$2:$3/upload" 2>curl.err) ||
    fail "$4: upload failed: $(cat curl.err)"
  [ "$got" = "$(sha_file www/f) $(file_size www/f)" ] || fail "$4: the server got '$got'"
  log "$4: 8 MiB down and up, sha256 equal"
}

# coturn relays datagrams up to its buffer size, not loopback's 64 KiB:
# packets as on a network path.
make_pair "  loopback_payload: 1452"
cp p0.yaml p0.good.yaml
cp p1.yaml p1.good.yaml
mkdir www
make_file www/f 8
start_server http0 http www
H0=$SERVER_PORT
start_server http1 http www
H1=$SERVER_PORT

# --- A: always ------------------------------------------------------------------------
# the first allocation lasts 6 s and nonces go stale after 2 s
turn_up turnA --max-allocate-lifetime=6 --stale-nonce=2
relay_conf p1.good.yaml p1.yaml always turn.pass
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
line=$(wait_until 15 grep -m1 "relay.turn: allocated relayed address 127.0.0.1:[0-9]* on turn:127.0.0.1:$TURN_PORT" p1.log) ||
  fail "A: no allocation: $(grep relay p1.log | tail -n 3)"
log "A: $(grep -m1 'allocated relayed address' p1.log)"
X=$(grep -m1 -o 'allocated relayed address 127.0.0.1:[0-9]*' p1.log | sed 's/.*://')
_upA() { grep -q "peers: peer 0 (10.0.0.0) up via relay 127.0.0.1:$P0_UDP" p1.log; }
wait_until 15 _upA || fail "A: party 1 not up via the relay"
log "A: $(grep -m1 'peers: peer 0 (10.0.0.0) up via' p1.log | sed 's/.*peers: //')"
[ "$(status_get p1 "s['peers'][0]['path'] + ': ' + s['peers'][0]['path_why']")" = "relay: relay mode 'always'" ] ||
  fail "A: status does not say the path and why: $(status_json p1)"
grep -q "peers: peer 1 (10.0.0.1) up via direct 127.0.0.1:$X" p0.log ||
  fail "A: party 0 did not see party 1 at its relayed address 127.0.0.1:$X"
wait_until 10 grep -q "relay.turn: channel 0x4000 bound to 127.0.0.1:$P0_UDP" p1.log ||
  fail "A: no channel bound"
transfer "$P1_SOCKS" 10.0.0.0 "$H0" "A: via party 1"
transfer "$P0_SOCKS" 10.0.0.1 "$H1" "A: via party 0"
grep -q 'CREATE_PERMISSION processed, success' turnA.log || fail "A: coturn saw no CreatePermission"
grep -q 'CHANNEL_BIND processed, success' turnA.log || fail "A: coturn saw no ChannelBind"
sent=$(status_get p1 "s['relay.turn']['counters']['channel_data_sent']")
[ "$sent" -gt 5000 ] || fail "A: only $sent ChannelData messages sent"
log "A: $sent ChannelData messages sent; channel state $(status_get p1 "s['relay.turn']['peers'][0]['channel_state']")"
# the first allocation lasts 6 s: a Refresh at 3 s, with a stale nonce
_refreshed() { [ "$(status_get p1 "s['relay.turn']['counters']['refreshes'] >= 1 and s['relay.turn']['counters']['stale_nonces'] >= 1")" = True ]; }
wait_until 20 _refreshed || fail "A: no Refreshes with stale nonces: $(status_json p1)"
[ "$(status_get p1 "s['relay.turn']['counters']['allocations']")" = 1 ] || fail "A: the allocation was lost"
log "A: $(status_get p1 "s['relay.turn']['counters']['refreshes']") Refresh(es), $(status_get p1 "s['relay.turn']['counters']['stale_nonces']") stale nonce(s) (438), one allocation, lifetime now $(status_get p1 "s['relay.turn']['lifetime_s']") s"
transfer "$P1_SOCKS" 10.0.0.0 "$H0" "A: after the Refreshes"
! grep -qF "$TURN_PASS" p1.log || fail "A: the TURN password is in the log"
status_json p1 | grep -qF "$TURN_PASS" && fail "A: the TURN password is in status"
ps -ww -o args= -p "$(proxy_pid p1)" | grep -qF "$TURN_PASS" && fail "A: the TURN password is in ps"
stop_proxy p1
line=$(grep -m1 'connection down' p1.log) || fail "A: no 'connection down' line"
largest=$(sed 's/.*largest \([0-9]*\).*/\1/' <<<"$line")
[ "$largest" -le 1413 ] || fail "A: packets of $largest bytes through the relay (at most 1452 - 39 of TURN framing)"
log "A: largest packet through the relay: $largest bytes"
grep -q "relay.turn: released the allocation on turn:127.0.0.1:$TURN_PORT" p1.log || fail "A: no Deallocate on stop"
stop_all

# --- A2: party 1 on a dual-stack socket ([::]): coturn and party 0 are IPv4 -------------
if ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/'; then
  sed "s/bind: \"127.0.0.1:$P1_UDP\"/bind: \"[::]:$P1_UDP\"/" p1.yaml >p1v6.yaml
  grep -q 'bind: "\[::\]' p1v6.yaml || fail "A2: no [::] bind in p1v6.yaml"
  start_proxy p0 p0.yaml
  start_proxy p1v6 p1v6.yaml
  _upA2() { grep -q "peers: peer 0 (10.0.0.0) up via relay 127.0.0.1:$P0_UDP" p1v6.log; }
  wait_until 20 _upA2 || fail "A2: party 1 on [::] not up via the relay: $(grep -E 'relay|peer 0' p1v6.log | tail -n 3)"
  transfer "$P1_SOCKS" 10.0.0.0 "$H0" "A2: party 1 on [::]"
  stop_all
else
  log "A2: no ::1 on lo: the dual-stack case is not run"
fi

# --- B: killed, restarted on the same address: 437 ------------------------------------
start_proxy p1b p1.yaml
wait_until 15 grep -q 'relay.turn: allocated relayed address' p1b.log || fail "B: no allocation"
kill_proxy p1b
start_proxy p1c p1.yaml
wait_until 20 grep -q 'relay.turn: allocated relayed address' p1c.log ||
  fail "B: no allocation after the restart: $(grep relay p1c.log | tail -n 3)"
grep -q 'still holds an allocation for our address (437' p1c.log ||
  fail "B: no 437 handling: $(grep relay p1c.log | tail -n 3)"
log "B: $(grep -m1 'still holds an allocation' p1c.log)"
stop_all

# --- C: wrong password, auto ---------------------------------------------------------
relay_conf p1.good.yaml p1.yaml auto bad.pass
n0=$(grep -c 'error 401' turnA.log)
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
line=$(wait_until 15 grep -m1 "relay.turn: TURN server turn:127.0.0.1:$TURN_PORT refused the credentials of user '$TURN_USER' (401" p1.log) ||
  fail "C: no clear error: $(grep relay p1.log | tail -n 3)"
log "C: $(grep -m1 'refused the credentials' p1.log)"
grep 'refused the credentials' p1.log | grep -q 'ERROR\|error' || fail "C: the refusal is not an error line"
grep -q 'next try in 60 s' p1.log || fail "C: no 60 s backoff"
start_server echo0 echo
E0=$SERVER_PORT
got=$(socks "127.0.0.1:$P1_SOCKS" 10.0.0.0 "$E0" --timeout 20 | head -n 1)
[ "$got" = 0x00 ] || fail "C: the direct path does not work (SOCKS reply '$got')"
grep -q 'peers: peer 0 (10.0.0.0) up via direct' p1.log || fail "C: not up via direct"
transfer "$P1_SOCKS" 10.0.0.0 "$H0" "C: direct, beside a refused relay"
# coturn answered 401 to the first request (no credentials yet) and to the
# one with the wrong password; maybe to a Deallocate of a previous run's
# allocation too; and then nothing more while the transfer ran
n=$(($(grep -c 'error 401' turnA.log) - n0))
[ "$n" -ge 2 ] && [ "$n" -le 4 ] || fail "C: coturn answered 401 $n times (2 to 4 expected)"
[ "$(status_get p1 "s['relay.turn']['state']")" = waiting ] || fail "C: the relay is not waiting"
log "C: coturn answered 401 $n times, then nothing: the relay waits $(status_get p1 "s['relay.turn']['next_try_in_s']") s more"
why=$(status_get p1 "s['relay']['why']")
case $why in *"refused the credentials"*) ;; *) fail "C: status relay error is '$why'" ;; esac
log "C: status: relay error: $why"
# the site fixes its password file and sends SIGHUP: no restart needed
printf '%s\n' "$TURN_PASS" >bad.pass
kill -HUP "$(proxy_pid p1)"
wait_until 10 grep -q "relay.turn: settings changed: allocating on turn:127.0.0.1:$TURN_PORT as '$TURN_USER'" p1.log ||
  fail "C: SIGHUP did not re-read the relay settings"
wait_until 10 grep -q 'relay.turn: allocated relayed address' p1.log || fail "C: no allocation after the fix"
log "C: after SIGHUP with the right password: $(grep -m1 'allocated relayed address' p1.log | sed 's/.*relay.turn: //')"
! grep -qF "$TURN_PASS" p1.log || fail "C: the TURN password is in the log"
stop_all

# --- D: a clean stop deallocates ------------------------------------------------------
# (a coturn with its default nonce lifetime: the Deallocate on stop gets
# no second round, so with turnA's 2-second nonces it could meet a 438)
turn_up turnD
relay_conf p1.good.yaml p1d.yaml always turn.pass
start_proxy p1d p1d.yaml
wait_until 15 grep -q 'relay.turn: allocated relayed address' p1d.log || fail "D: no allocation"
stop_proxy p1d
grep -q "relay.turn: released the allocation on turn:127.0.0.1:$TURN_PORT" p1d.log || fail "D: no Deallocate on stop"
_freed() { grep -Eq "refreshed, realm=<test.example.org>, username=<$TURN_USER>, lifetime=0" turnD.log; }
wait_until 10 _freed || fail "D: coturn did not free the allocation: $(grep -E 'REFRESH|refreshed' turnD.log | tail -n 2)"
log "D: $(grep -m1 'lifetime=0' turnD.log | sed 's/^[0-9]*: : //')"
pass
