#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# NAT rebinding, with nat.py standing in for a NAT on loopback.
# A: the QUIC client's (party 1's) mapping changes mid-stream: the server
#    follows the new address (path validation), the stream survives, and
#    party 0 reports the peer up at the new address.  Party 0 also accepts
#    the client from an address it never published (peer-reflexive): the
#    pin identifies it.
# B: the QUIC server's (party 0's) mapping changes: its discovery reports
#    it, party 0 punches again at once (path_changed), and once party 1's
#    registry has the new address (SIGHUP re-reads the static one) it
#    reconnects: new TCP connections work within 30 s.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

cd "$T" || fail "cd $T"
make_pair
cp p0.yaml p0.good.yaml
cp p1.yaml p1.good.yaml
start_server echo0 echo
E0=$SERVER_PORT

# nat NAME INSIDE_PORT OUTSIDE_PORT: start nat.py; sets NAT_Q NAT_P NAT_PID.
nat() {
  rm -f "$T/$1.ready"
  "$PY" "$LIB_DIR/nat.py" --inside "127.0.0.1:$2" --outside "127.0.0.1:$3" \
    --ready-file "$T/$1.ready" 2>"$T/$1.err" &
  NAT_PID=$!
  track "$NAT_PID"
  wait_file "$T/$1.ready"
  read -r NAT_Q NAT_P <"$T/$1.ready"
}

# rebind NAME: SIGUSR1; sets NAT_P to the new public port.
rebind() {
  local old=$NAT_P
  kill -USR1 "$NAT_PID"
  _moved() { read -r _ p <"$T/$1.ready" && [ "$p" != "$old" ]; }
  wait_until 10 _moved "$1" || fail "$1 did not rebind"
  read -r NAT_Q NAT_P <"$T/$1.ready"
}

# --- A: the client's mapping changes ------------------------------------------------
nat nat1 "$P1_UDP" "$P0_UDP"
sed "s/127.0.0.1:$P0_UDP/127.0.0.1:$NAT_Q/" p1.good.yaml >p1.yaml
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
OLD_P=$NAT_P

# One stream: a message before the rebinding and one after, on the same
# TCP connection.
"$PY" - "$P1_SOCKS" "$E0" "$T/go" "$T/stream.out" <<'PYEOF' &
import os, socket, struct, sys, time
port, echo, go, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection(("127.0.0.1", port), timeout=30)
s.sendall(b"\x05\x01\x00")
assert s.recv(2) == b"\x05\x00"
s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("10.0.0.0") + struct.pack(">H", echo))
rep = s.recv(10)
def exchange(msg):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        d = s.recv(len(msg) - len(got))
        if not d:
            break
        got += d
    return got == msg
res = ["reply 0x%02x" % rep[1]]
res.append("before %s" % exchange(b"before the rebinding\n"))
with open(out + ".tmp", "w") as f:
    f.write("\n".join(res) + "\n")
os.replace(out + ".tmp", out)
while not os.path.exists(go):
    time.sleep(0.05)
res.append("after %s" % exchange(b"after the rebinding\n"))
with open(out + ".tmp", "w") as f:
    f.write("\n".join(res) + "\ndone\n")
os.replace(out + ".tmp", out)
PYEOF
track $!
wait_lines "$T/stream.out" 2 20
grep -q 'before True' stream.out || fail "A: the first exchange failed: $(cat stream.out)"
grep -q "peers: peer 1 (10.0.0.1) up via direct 127.0.0.1:$OLD_P" p0.log ||
  fail "A: party 0 did not accept the client from its NAT address 127.0.0.1:$OLD_P (peer-reflexive)"
log "A: party 0 accepted party 1 from the unpublished 127.0.0.1:$OLD_P"
rebind nat1
log "A: party 1's mapping moved from $OLD_P to $NAT_P"
touch go
wait_lines "$T/stream.out" 4 20
grep -q 'after True' stream.out || fail "A: the stream did not survive the rebinding: $(cat stream.out)"
_up_new() { grep -q "peers: peer 1 (10.0.0.1) up via direct 127.0.0.1:$NAT_P" p0.log; }
wait_until 10 _up_new || fail "A: party 0 did not report peer 1 up at 127.0.0.1:$NAT_P"
log "A: the stream survived; $(grep -m1 "up via direct 127.0.0.1:$NAT_P" p0.log)"
stop_all
kill "$NAT_PID"

# --- B: the server's mapping changes ------------------------------------------------
# Party 0 learns its mapping from a file (tests/plugins/discovery_file.c,
# standing in for STUN); when the NAT rebinds, the file says so, the
# daemon calls path_changed(DIRECT) and party 0 punches again at once,
# though its connection is up.
[ -n "${SFK_TEST_PLUGIN_DIR:-}" ] || SFK_TEST_PLUGIN_DIR=$(dirname "$(dirname "$SFKIT_PROXY")")/tests/plugins/.libs
[ -f "$SFK_TEST_PLUGIN_DIR/discovery_file.so" ] || fail "test plugin discovery_file.so not built (make check builds it)"
export SFKIT_PROXY_PLUGIN_DIR=$SFKIT_PROXY_PLUGIN_DIR:$SFK_TEST_PLUGIN_DIR
nat nat0 "$P0_UDP" "$P1_UDP"
echo "127.0.0.1:$NAT_P" >mapping0.txt
sed -e "s/127.0.0.1:$P1_UDP/127.0.0.1:$NAT_Q/" \
  -e 's/^  plugin: none$/  plugin: file\n  file: mapping0.txt/' p0.good.yaml >p0.yaml
grep -q 'plugin: file' p0.yaml || fail "B: could not configure discovery 'file'"
sed "s/127.0.0.1:$P0_UDP/127.0.0.1:$NAT_P/" p1.good.yaml >p1.yaml
start_proxy p0b p0.yaml
grep -q "public address 127.0.0.1:$NAT_P" p0b.log || fail "B: party 0 did not take its mapping from the file"
start_proxy p1b p1.yaml
got=$(socks "127.0.0.1:$P1_SOCKS" 10.0.0.0 "$E0" --send one)
[ "$got" = "$(printf '0x00\none')" ] || fail "B: before the rebinding: got '$got'"
OLD_P=$NAT_P
npunch=$(grep -c 'peer 1: .*punching towards' p0b.log)
rebind nat0
t0=$(now)
echo "127.0.0.1:$NAT_P" >mapping0.txt
log "B: party 0's mapping moved from $OLD_P to $NAT_P"
_punches() { [ "$(grep -c 'peer 1: .*punching towards' p0b.log)" -gt "$npunch" ]; }
wait_until 5 _punches || fail "B: party 0 did not punch again after its mapping moved"
log "B: party 0 punches again $(elapsed "$t0") s after the move: $(grep 'peer 1: .*punching towards' p0b.log | tail -n 1)"
# the registry learns the new address (the static one on SIGHUP)
sed "s/127.0.0.1:$P0_UDP/127.0.0.1:$NAT_P/" p1.good.yaml >p1.yaml
kill -HUP "$(proxy_pid p1b)"
_works() { [ "$(socks "127.0.0.1:$P1_SOCKS" 10.0.0.0 "$E0" --send two --timeout 5 | tail -n 1)" = two ]; }
wait_until 30 _works || fail "B: no new connection within 30 s of the move"
log "B: new TCP connections work $(elapsed "$t0") s after the move"
grep -q "peers: peer 0 (10.0.0.0) up via direct 127.0.0.1:$NAT_P" p1b.log ||
  fail "B: party 1 does not report peer 0 up at 127.0.0.1:$NAT_P"
log "B: $(grep -m1 "peers: peer 0 (10.0.0.0) down" p1b.log)"

stop_all
pass
