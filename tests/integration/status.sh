#!/bin/bash
# shellcheck disable=SC2119,SC2317,SC2015 # optional arguments; functions run via wait_until; A && B || fail
# `sfkit-proxy status` and the control socket: after a transfer both
# parties show each other up on a direct path, in text and in JSON; the
# socket is 0600 in a 0700 folder created for it; a second daemon on the
# same socket, or a file that is no socket, stops start-up (exit 1); a
# stale socket is replaced; bad, long, idle and too many clients are
# bounded; status without a daemon or without control.socket is exit 1
# with a clear message; no secret appears in the output.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

cd "$T" || fail "cd $T"
make_pair
# Party 1's SOCKS port wants a password: it must never show in status.
SECRET="socks-secret-$RANDOM$RANDOM"
echo "$SECRET" >p1.pass
chmod 600 p1.pass
SOCKS_AUTH="$(printf '  username: alice\n  password_file: p1.pass')"
write_config p1.yaml 1 "$P1_SOCKS" "$P1_UDP" p1.key "0,$P0_UDP,$P0_PIN" "" "$SOCKS_AUTH"
# The sockets' folders do not exist yet: the daemon creates them (0700).
printf 'control:\n  socket: run0/control.sock\n' >>p0.yaml
printf 'control:\n  socket: run1/control.sock\n' >>p1.yaml
S0=$T/run0/control.sock
S1=$T/run1/control.sock

# status_of NAME [ARGS...]: run status against NAME's config; output in
# NAME.status, stderr in NAME.status.err, exit status in ST.
status_of() {
  local name=$1
  shift
  timeout 20 "$SFKIT_PROXY" status -c "$T/$name.yaml" "$@" >"$T/$name.status" 2>"$T/$name.status.err"
  ST=$?
  check_sanitizer_log "$T/$name.status.err" "status $name"
}

# --- before the daemons run ----------------------------------------------------
status_of p0
[ "$ST" = 1 ] || fail "status without a daemon: exit $ST, expected 1"
grep -qF "no daemon is answering on $S0 (not running, or started with another config?)" p0.status.err ||
  fail "status without a daemon said: $(cat p0.status.err)"
log "no daemon: exit 1, '$(cat p0.status.err)'"

write_config nc.yaml 5 1 2 nc.key ""
status_of nc
[ "$ST" = 1 ] || fail "status without control.socket: exit $ST, expected 1"
grep -qF "set control.socket in $T/nc.yaml to use status" nc.status.err ||
  fail "status without control.socket said: $(cat nc.status.err)"
status_of nc --bogus
[ "$ST" = 2 ] || fail "status --bogus: exit $ST, expected 2"
timeout 10 "$SFKIT_PROXY" status -c "$T/missing.yaml" >/dev/null 2>&1
[ $? = 2 ] || fail "status with a missing config file: expected exit 2"
"$SFKIT_PROXY" status --help | grep -q -- '--json' || fail "status --help does not mention --json"
"$SFKIT_PROXY" --help | grep -q 'status' || fail "--help does not list the status subcommand"

# --- two parties, a transfer each way ---------------------------------------------
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
grep -q 'status on .*control.sock' p0.log || fail "p0 did not log its control socket"
start_server echo0 echo
E0=$SERVER_PORT
start_server echo1 echo
E1=$SERVER_PORT
got=$(socks "127.0.0.1:$P0_SOCKS" 10.0.0.1 "$E1" --timeout 10 --send hello-from-0)
[ "$got" = "$(printf '0x00\nhello-from-0')" ] || fail "0 -> 1 echo: $got"
got=$(socks "127.0.0.1:$P1_SOCKS" 10.0.0.0 "$E0" --timeout 10 --user alice --password "$SECRET" --send hello-from-1)
[ "$got" = "$(printf '0x00\nhello-from-1')" ] || fail "1 -> 0 echo: $got"

# --- the socket and its folder -----------------------------------------------------
[ -S "$S0" ] || fail "$S0 is not a socket"
[ "$(stat -c %a "$S0")" = 600 ] || fail "control socket mode $(stat -c %a "$S0"), expected 600"
[ "$(stat -c %a "$T/run0")" = 700 ] || fail "control socket folder mode $(stat -c %a "$T/run0"), expected 700"
log "control socket $S0: mode 600, folder 700"

# --- text -----------------------------------------------------------------------------
# Wait until the transport has told the daemon both connections are up.
TRANSPORT_REPORTS=1
peer_up_text() {
  status_of "$1" && grep -q '^    state: up$' "$T/$1.status"
}
if ! wait_until 10 peer_up_text p0 || ! wait_until 10 peer_up_text p1; then
  # A transport that predates ABI 2's peer_state leaves peers "idle".
  if grep -q '^    state: idle$' p0.status && ! grep -q '^transport\.' p0.status; then
    TRANSPORT_REPORTS=0
    log "the transport reports no peer state yet (ABI 2 peer_state/report): peer checks skipped"
  else
    fail "status never showed the peer up; p0 said:
$(cat p0.status)"
  fi
fi
for n in 0 1; do
  other=$((1 - n))
  status_of "p$n"
  [ "$ST" = 0 ] || fail "status p$n: exit $ST: $(cat "p$n.status.err")"
  grep -q "^daemon:$" "p$n.status" || fail "p$n text has no daemon section"
  grep -q "^  pid: $n$" "p$n.status" || fail "p$n text has no 'pid: $n'"
  grep -q "^  - pid: $other$" "p$n.status" || fail "p$n text does not list peer $other"
  grep -q "^    vaddr: 10.0.0.$other$" "p$n.status" || fail "p$n text: no vaddr of peer $other"
  if [ "$TRANSPORT_REPORTS" = 1 ]; then
    grep -q '^    state: up$' "p$n.status" || fail "p$n text: peer not up"
    grep -q '^    path: direct$' "p$n.status" || fail "p$n text: path not direct"
  fi
done
log "text status of p0:"
sed 's/^/    | /' p0.status

# --- JSON -----------------------------------------------------------------------------
for n in 0 1; do
  other=$((1 - n))
  eval "other_udp=\$P${other}_UDP other_pin=\$P${other}_PIN"
  status_of "p$n" --json
  [ "$ST" = 0 ] || fail "status --json p$n: exit $ST: $(cat "p$n.status.err")"
  "$PY" -c 'import json,sys; json.load(sys.stdin)' <"p$n.status" || fail "p$n: status --json is not JSON: $(head -c 400 "p$n.status")"
  # shellcheck disable=SC2154 # set by eval
  "$PY" - "p$n.status" "$n" "$other" "$other_udp" "$other_pin" "$TRANSPORT_REPORTS" <<'EOF' || fail "p$n: JSON status lacks fields (see above)"
import json, sys
path, me, other, udp, pin, transport = sys.argv[1:]
s = json.load(open(path))
errors = []
def want(cond, what):
    if not cond:
        errors.append(what)
d = s.get("daemon", {})
want(d.get("pid") == int(me), "daemon.pid == %s" % me)
want(isinstance(d.get("uptime_s"), int), "daemon.uptime_s is an integer")
want(isinstance(d.get("version"), str) and d["version"], "daemon.version")
for k in ("socks", "udp", "relay_mode", "study_id"):
    want(k in d, "daemon.%s" % k)
want(isinstance(s.get("mapping"), dict) and s["mapping"].get("address"), "mapping.address")
want("nat" in s and "relay" in s, "nat and relay")
want(s.get("registry", {}).get("plugin") == "static", "registry.plugin == static")
peers = s.get("peers")
want(isinstance(peers, list) and len(peers) == 1, "one peer")
p = peers[0] if peers else {}
want(p.get("pid") == int(other), "peers[0].pid == %s" % other)
want(p.get("vaddr") == "10.0.0." + other, "peers[0].vaddr")
want(p.get("published") == "127.0.0.1:" + udp, "peers[0].published == 127.0.0.1:" + udp)
want(p.get("pin") == pin, "peers[0].pin")
if transport == "1":
    want(p.get("state") == "up", "peers[0].state == up")
    want(p.get("path") == "direct", "peers[0].path == direct")
    want(p.get("address") == "127.0.0.1:" + udp, "peers[0].address == 127.0.0.1:" + udp)
    want(isinstance(p.get("since_s"), int), "peers[0].since_s")
    # The transport's traffic counters for the peer, after a transfer.
    for k in ("bytes_sent", "bytes_received"):
        want(isinstance(p.get(k), int) and p[k] > 0, "peers[0].%s > 0 (got %r)" % (k, p.get(k)))
    want(isinstance(p.get("rtt_us"), int) and p["rtt_us"] > 0, "peers[0].rtt_us > 0")
    # congestion: auto (the default) picks CUBIC for a loopback peer.
    want(p.get("congestion") == "cubic", "peers[0].congestion == cubic (got %r)" % p.get("congestion"))
for e in errors:
    print("missing or wrong: " + e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
done
log "JSON status of p1: $(head -c 1500 p1.status)"

# --- no secret ---------------------------------------------------------------------------
status_of p1
cat p1.status p1.status.err >all.status
status_of p1 --json
cat p1.status >>all.status
grep -qF "$SECRET" all.status && fail "the SOCKS password appears in status"
grep -qF "$SECRET" p1.log && fail "the SOCKS password appears in the log"
# No line of the private key file either (PEM body or raw bytes).
while IFS= read -r line; do
  [ ${#line} -ge 16 ] || continue
  case $line in -----*) continue ;; esac
  grep -qF -- "$line" all.status && fail "a line of the identity key appears in status"
done <p1.key
grep -q '"socks_auth":"username/password"' p1.status || fail "p1 JSON does not say SOCKS auth is on"
log "no secret in status output"

# --- bad requests and bounded clients -----------------------------------------------------
# ask SOCKET REQUEST: send raw bytes and end our side, print what comes
# back (bounded).
ask() {
  timeout 20 "$PY" - "$1" "$2" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode())
s.shutdown(socket.SHUT_WR)
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
sys.stdout.write(out.decode())
EOF
}
got=$(ask "$S0" $'bogus\n')
[[ $got == error:* ]] || fail "a bad request got: $got"
got=$(ask "$S0" "$(printf 'x%.0s' {1..100})")
[ "$got" = "error: request too long" ] || fail "a 100-byte request got: $got"
got=$(ask "$S0" 'status json')
"$PY" -c 'import json,sys; json.load(sys.stdin)' <<<"$got" || fail "a request without newline at EOF got no JSON"
log "bad request, long request: error lines"

# Idle clients: 16 hold every slot; the 17th is told it is busy; after
# the 5 s timeout they are gone and status answers again.
"$PY" - "$S0" >idle.out 2>&1 <<'EOF' &
import socket, sys, time
socks = []
for i in range(16):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    socks.append(s)
print("held", flush=True)
for s in socks:
    s.settimeout(15)
    try:
        d = s.recv(100)
    except OSError as e:
        d = str(e).encode()
    print("closed" if not d else "got " + repr(d), flush=True)
EOF
IDLE=$!
track "$IDLE"
wait_until 10 grep -q held idle.out || fail "could not open 16 idle control connections: $(cat idle.out)"
sleep 0.3
t0=$(now)
status_of p0
[ "$ST" = 1 ] && grep -q 'busy' p0.status.err || fail "a 17th client was not told busy (exit $ST): $(cat p0.status.err)"
assert_alive p0
wait_exit "$IDLE" 20 || fail "idle control clients were not dropped"
[ "$(grep -c '^closed$' idle.out)" = 16 ] || fail "idle clients: $(cat idle.out)"
log "16 idle clients dropped after $(elapsed "$t0") s"
status_of p0
[ "$ST" = 0 ] || fail "status after the idle clients left: exit $ST"

# A socket client that never reads a large answer does not block others:
# ask and do not read, while a normal status goes through.
"$PY" - "$S0" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"status json\n")
time.sleep(7)
EOF
track $!
status_of p0 --json
[ "$ST" = 0 ] || fail "status beside a client that does not read: exit $ST"

# --- a second daemon on the same socket; a file that is no socket ------------------------
free_port X_SOCKS tcp
free_port X_UDP udp
write_config x.yaml 0 "$X_SOCKS" "$X_UDP" p0.key ""
printf 'control:\n  socket: %s\n' "$S0" >>x.yaml
timeout 20 "$SFKIT_PROXY" -c x.yaml >x.out 2>x.log </dev/null
rc=$?
[ "$rc" = 1 ] || fail "a second daemon on a live control socket: exit $rc, expected 1"
grep -q "another sfkit-proxy is already running with control socket $S0" x.log ||
  fail "second daemon said: $(tail -n 3 x.log)"
status_of p0
[ "$ST" = 0 ] || fail "the first daemon's socket broke after a second daemon tried it"
log "second daemon on the same socket: exit 1, '$(grep -o 'another sfkit-proxy.*' x.log)'"

: >notasocket
write_config y.yaml 0 "$X_SOCKS" "$X_UDP" p0.key ""
printf 'control:\n  socket: %s\n' "$T/notasocket" >>y.yaml
timeout 20 "$SFKIT_PROXY" -c y.yaml >y.out 2>y.log </dev/null
rc=$?
[ "$rc" = 1 ] && grep -q 'exists and is not a socket' y.log ||
  fail "a control.socket that is a regular file: exit $rc: $(tail -n 2 y.log)"
[ -f notasocket ] || fail "the regular file was removed"

# --- a stale socket after a crash; a clean stop removes the socket --------------------------
kill_proxy p1
[ -S "$S1" ] || fail "SIGKILL should leave the socket file behind"
status_of p1
[ "$ST" = 1 ] && grep -qF "no daemon is answering on $S1" p1.status.err ||
  fail "status on a stale socket: exit $ST: $(cat p1.status.err)"
start_proxy p1 p1.yaml
grep -q 'removed a stale control socket' p1.log || fail "the stale socket was not reported as replaced"
status_of p1
[ "$ST" = 0 ] || fail "status after replacing a stale socket: exit $ST"
log "stale socket replaced after SIGKILL"

stop_proxy p0
[ -e "$S0" ] && fail "the control socket survived a clean stop"
status_of p0
[ "$ST" = 1 ] && grep -qF "no daemon is answering on $S0" p0.status.err ||
  fail "status against a stopped daemon: exit $ST: $(cat p0.status.err)"
stop_all
if [ "$TRANSPORT_REPORTS" = 0 ]; then
  skip "everything else passed; peer state, path and byte counters need a transport that reports them (ABI 2 peer_state, peer_report)"
fi
pass "text and JSON status, socket mode, stale and live sockets, bounded clients, no secrets"
