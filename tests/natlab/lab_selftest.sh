#!/bin/bash
# shellcheck disable=SC2317,SC2119,SC2015,SC2013 # functions via wait_until; optional args; A && B || fail
# The NAT lab checked with real tools (coturn's turnutils_stunclient and
# turnutils_uclient, curl, a STUN probe from one socket): a cone NAT maps
# endpoint-independently and filters, a symmetric NAT maps per destination,
# hole punching works cone<->cone and fails cone<->symmetric, TURN relays,
# the website double answers through a NAT, loss / block / rebind do what
# they say; then that everything is gone afterwards, also after a SIGTERM.
#
#   bash tests/natlab/lab_selftest.sh            (as root)
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lab.sh"

# check_gone PREFIX_FILE PIDS_FILE WHAT: no namespace, process or temp dir of
# the lab described by the files remains.
check_gone() {
  local prefix dir p
  prefix=$(head -n 1 "$1")
  dir=$(sed -n 2p "$1")
  [ -n "$prefix" ] || fail "$3: no prefix recorded"
  if ip netns list | grep -q "^$prefix-"; then
    fail "$3: namespaces left: $(ip netns list | grep "^$prefix-" | tr '\n' ' ')"
  fi
  for p in $(cat "$2" 2>/dev/null); do
    lab_alive "$p" && fail "$3: process $p ($(tr '\0' ' ' <"/proc/$p/cmdline")) still runs"
  done
  [ ! -e "$dir" ] || fail "$3: temp dir $dir left"
  log "$3: namespaces $prefix-*, $(wc -w <"$2") processes and $dir are gone"
}

record() { # record PREFIX_FILE PIDS_FILE: for the outer run's checks
  printf '%s\n%s\n' "$LAB_PREFIX" "$LAB_DIR" >"$1"
  printf '%s\n' "${LAB_PIDS[@]}" >"$2"
}

case ${1:-} in
  --inner) ;;
  --interrupt)
    lab_init
    lab_start_stun
    lab_add_party x cone
    lab_start_website
    sleep 120 &
    lab_track $!
    record "$2" "$3"
    wait $!
    exit 0
    ;;
  *)
    # --- the outer run: the lab checks in a child, then the cleanup checks ---
    [ "$(id -u)" = 0 ] || skip "the NAT lab needs root"
    need ip iptables conntrack turnserver turnutils_stunclient turnutils_uclient
    ip netns list >/dev/null 2>&1 || skip "'ip netns' does not work here"
    bash "$0" --inner "$T/inner.prefix" "$T/inner.pids"
    rc=$?
    [ "$rc" = 77 ] && exit 77
    [ -s "$T/inner.prefix" ] || fail "the lab run recorded nothing (status $rc)"
    check_gone "$T/inner.prefix" "$T/inner.pids" "after a normal run"
    [ "$rc" = 0 ] || fail "the lab checks failed (status $rc)"

    bash "$0" --interrupt "$T/int.prefix" "$T/int.pids" &
    child=$!
    wait_until 30 _nonempty "$T/int.pids" || fail "the interrupted lab did not come up"
    kill -TERM "$child"
    wait_until 20 eval "! lab_alive $child" || fail "the interrupted lab still runs 20 s after SIGTERM"
    wait "$child"
    log "interrupted lab: status $?"
    check_gone "$T/int.prefix" "$T/int.pids" "after SIGTERM"
    pass "lab checks passed, nothing left behind"
    ;;
esac

# --- the lab checks (child) ------------------------------------------------------------
PREFIX_FILE=$2
PIDS_FILE=$3
t0=$(now)
lab_init
lab_start_stun
lab_add_party a cone
lab_add_party b symmetric
lab_add_party c public
lab_add_party d cone
lab_start_website
record "$PREFIX_FILE" "$PIDS_FILE"
WAN_A=$(lab_wan_ip a)
WAN_B=$(lab_wan_ip b)
WAN_C=$(lab_wan_ip c)
WAN_D=$(lab_wan_ip d)
S1=$LAB_STUN_IP1:$LAB_STUN_PORT
S2=$LAB_STUN_IP2:$LAB_STUN_PORT
S1ALT=$LAB_STUN_IP1:$((LAB_STUN_PORT + 1))

# loopback is up in every host (the proxy's SOCKS port lives there)
for p in a b c d; do
  lab_exec "$p" ip -o addr show dev lo | grep -q '127.0.0.1/8' || fail "no loopback in $p"
done

# --- turnutils_stunclient: the mapping, and the filtering --------------------------------------
# stunclient: the RFC 5780 test sends a CHANGE-REQUEST whose answer comes from
# the other IP and port: a filtering NAT drops it and stunclient waits for
# ever, hence the timeout.
stunclient() { lab_exec "$1" timeout 4 turnutils_stunclient -p "$LAB_STUN_PORT" "$LAB_STUN_IP1" >"$T/stunclient.$1" 2>&1; }
stunclient a
refl=$(grep -m1 'UDP reflexive addr' "$T/stunclient.a" | awk '{print $NF}')
[ "${refl%:*}" = "$WAN_A" ] || fail "cone: turnutils_stunclient saw '$refl', expected $WAN_A:PORT: $(cat "$T/stunclient.a")"
! grep -q 'RFC 5780 response 2' "$T/stunclient.a" || fail "cone: the answer from the other address passed the NAT's filter"
log "cone a: turnutils_stunclient maps to $refl (= the router's WAN); the other-address answer is filtered"
stunclient c
refl=$(grep -m1 'UDP reflexive addr' "$T/stunclient.c" | awk '{print $NF}')
[ "${refl%:*}" = "$WAN_C" ] || fail "public: turnutils_stunclient saw '$refl', expected $WAN_C:PORT"
grep -q 'RFC 5780 response 3' "$T/stunclient.c" || fail "public: no RFC 5780 answers from the other address: $(cat "$T/stunclient.c")"
log "public c: turnutils_stunclient maps to $refl (its own address), all RFC 5780 answers arrive"

# --- one socket, several servers: endpoint-(in)dependent mapping --------------------------------
probe() { lab_stun_probe "$@" >"$T/probe.out" 2>&1 || fail "STUN probe from $1 failed: $(cat "$T/probe.out")"; }
mapped() { awk -v s="$1" '$1 == s {print $2}' "$T/probe.out"; }
probe a --bind 0.0.0.0:41000 "$S1" "$S2" "$S1ALT"
m1=$(mapped "$S1")
m2=$(mapped "$S2")
m3=$(mapped "$S1ALT")
[ "$m1" = "$WAN_A:41000" ] || fail "cone: mapping $m1, expected $WAN_A:41000 (Linux keeps a free source port)"
[ "$m1" = "$m2" ] && [ "$m1" = "$m3" ] || fail "cone: mappings differ per server: $m1 $m2 $m3"
log "cone a: one socket, three servers, one mapping $m1"
probe b --bind 0.0.0.0:41000 "$S1" "$S2" "$S1ALT"
m1=$(mapped "$S1")
m2=$(mapped "$S2")
m3=$(mapped "$S1ALT")
[ "${m1%:*}" = "$WAN_B" ] && [ "${m2%:*}" = "$WAN_B" ] || fail "symmetric: mapped IPs $m1 $m2, expected $WAN_B"
[ "$m1" != "$m2" ] && [ "$m1" != "$m3" ] && [ "$m2" != "$m3" ] || fail "symmetric: a mapping repeats: $m1 $m2 $m3"
log "symmetric b: one socket, three servers, three mappings $m1 $m2 $m3"
B_SEEN=$m1

# --- hole punching --------------------------------------------------------------------------
lab_bg a punch-a "$PY" "$LAB_STUN_PROBE" --bind 0.0.0.0:41001 --timeout 5 --punch "$WAN_D:41001"
pa=$LAB_BG_PID
lab_exec d "$PY" "$LAB_STUN_PROBE" --bind 0.0.0.0:41001 --timeout 5 --punch "$WAN_A:41001" >"$T/punch-d.out" ||
  fail "cone<->cone punch: d heard nothing from a"
wait "$pa" || fail "cone<->cone punch: a heard nothing from d"
log "cone a <-> cone d: simultaneous punch works both ways"
lab_bg c punch-c "$PY" "$LAB_STUN_PROBE" --bind 0.0.0.0:41001 --timeout 5 --punch "$WAN_A:41003"
pc=$LAB_BG_PID
lab_exec a "$PY" "$LAB_STUN_PROBE" --bind 0.0.0.0:41003 --timeout 5 --punch "$WAN_C:41001" >"$T/punch-a3.out" ||
  fail "cone<->public punch: a heard nothing from c"
wait "$pc" || fail "cone<->public punch: c heard nothing from a"
log "cone a <-> public c: punch works both ways"
# a punches to the mapping b's socket got towards the STUN server: a
# symmetric NAT gives b another port towards a, so neither side gets through
lab_bg a punch-a2 "$PY" "$LAB_STUN_PROBE" --bind 0.0.0.0:41002 --timeout 2 --punch "$B_SEEN"
pa=$LAB_BG_PID
if lab_exec b "$PY" "$LAB_STUN_PROBE" --bind 0.0.0.0:41000 --timeout 2 --punch "$WAN_A:41002" >"$T/punch-b.out"; then
  fail "cone<->symmetric punch went through"
fi
wait "$pa" && fail "cone<->symmetric punch: a heard b"
log "cone a <-> symmetric b: the punch fails, as it must (only a relay works)"

# --- TURN relay (coturn, long-term credentials) ---------------------------------------------
lab_exec b timeout 30 turnutils_uclient -y -c -n 20 -m 1 -u "$LAB_TURN_USER" -w "$LAB_TURN_PASS" \
  -p "$LAB_STUN_PORT" "$LAB_STUN_IP1" >"$T/uclient.out" 2>&1 || fail "turnutils_uclient failed: $(tail -n 5 "$T/uclient.out")"
grep -q 'Total lost packets 0 ' "$T/uclient.out" && grep -q 'tot_recv_msgs=40' "$T/uclient.out" ||
  fail "TURN: messages lost: $(tail -n 5 "$T/uclient.out")"
log "symmetric b: TURN client-to-client through coturn's relay, 40/40 messages"

# --- the website double through the NAT -------------------------------------------------------
api() { # api PARTY PATH: curl from the party's host, prints "BODY\nCODE"
  lab_exec "$1" curl -sS --max-time 10 -w '\n%{http_code}' -H "Authorization: $(cat "$LAB_DIR/$1/auth_key.txt")" "$LAB_API_URL/$2"
}
out=$(api a get_doc_ref_dict) || fail "curl from a to the website failed"
[ "$(tail -n 1 <<<"$out")" = 200 ] || fail "get_doc_ref_dict from a: $out"
parts=$(head -n -1 <<<"$out" | "$PY" -c 'import json,sys; print(",".join(json.load(sys.stdin)["participants"]))')
[ "$parts" = a,b,c,d ] || fail "participants '$parts', expected a,b,c,d"
out=$(api a "update_firestore?msg=update_firestore::EXTERNAL_ADDR=$WAN_A:41000")
[ "$(tail -n 1 <<<"$out")" = 200 ] || fail "update_firestore from a: $out"
out=$(api b get_doc_ref_dict)
got=$(head -n -1 <<<"$out" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["personal_parameters"]["a"]["EXTERNAL_ADDR"]["value"])')
[ "$got" = "$WAN_A:41000" ] || fail "b reads a's EXTERNAL_ADDR '$got'"
[ "$(lab_wait_published a EXTERNAL_ADDR "^$WAN_A:[0-9]+\$" 5)" = "$WAN_A:41000" ] || fail "lab_wait_published"
[ "$(lab_published b EXTERNAL_ADDR)" = "" ] || fail "lab_published b: not empty"
grep '"party": "a"' "$LAB_DIR/website.jsonl" | grep -q "\"client\": \"$WAN_A:" ||
  fail "the website's log shows no request of a from its NAT address $WAN_A"
! grep -qF "$(cat "$LAB_DIR/a/auth_key.txt")" "$LAB_DIR/website.jsonl" || fail "the website's log holds a's auth key"
lab_website_summary >"$T/summary.out" || fail "summary failed"
grep -q "published EXTERNAL_ADDR=$WAN_A:41000" "$T/summary.out" || fail "summary: $(cat "$T/summary.out")"
log "website: a (via its NAT, seen from $WAN_A) published EXTERNAL_ADDR, b read it; published: $(lab_website_updates | tr '\n' ';')"

# --- loss, block, rebind --------------------------------------------------------------------
lab_loss a 100
lab_stun_probe a --timeout 1 "$S1" >"$T/probe.out" 2>&1 && fail "100 % loss: the STUN probe got an answer"
lab_loss a 0
probe a "$S1"
lab_loss c 100
lab_stun_probe c --timeout 1 "$S1" >"$T/probe.out" 2>&1 && fail "100 % loss on a public host: the STUN probe got an answer"
grep -q "$S1 timeout" "$T/probe.out" || fail "100 % loss on a public host: not a silent drop: $(cat "$T/probe.out")"
lab_loss c 0
lab_block c "$S2"
lab_stun_probe c --timeout 1 "$S2" >"$T/probe.out" 2>&1 && fail "blocked on a public host: $S2 answered"
grep -q "$S2 timeout" "$T/probe.out" || fail "block on a public host: not a silent drop: $(cat "$T/probe.out")"
lab_unblock c "$S2"
probe c "$S1" "$S2"
log "loss: 100 % drops everything, 0 % restores (router and public host); block on a public host too"
lab_block a "$S1"
lab_stun_probe a --timeout 1 "$S1" "$S2" >"$T/probe.out" 2>&1 && fail "blocked: $S1 answered"
[ -n "$(mapped "$S2")" ] && [ "$(mapped "$S2")" != timeout ] || fail "block of $S1 also blocked $S2"
lab_unblock a "$S1"
probe a "$S1"
log "block: $S1 unreachable for a while $S2 answers; unblock restores"
probe a --bind 0.0.0.0:42000 "$S1"
before=$(mapped "$S1")
lab_rebind a
probe a --bind 0.0.0.0:42000 "$S1"
after=$(mapped "$S1")
port=${after##*:}
[ "$before" = "$WAN_A:42000" ] && [ "$after" != "$before" ] && ((port >= 21000 && port <= 21999)) ||
  fail "rebind: mapping $before -> $after (expected a port in 21000-21999)"
log "rebind: same socket, mapping $before -> $after"

# --- the proxy config template ----------------------------------------------------------------
lab_party_config a 0
grep -q 'plugin: stun' "$LAB_CONF" && grep -q "api_url: $LAB_API_URL" "$LAB_CONF" || fail "party config: $(cat "$LAB_CONF")"
LAB_RELAY=auto lab_party_config b 1
grep -q 'mode: auto' "$LAB_CONF" || fail "party config with relay: $(cat "$LAB_CONF")"
log "party configs written ($LAB_CONF)"

lt "$(elapsed "$t0")" 50 || fail "the lab checks took $(elapsed "$t0") s"
log "lab checks done in $(elapsed "$t0") s"
exit 0
