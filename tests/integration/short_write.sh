#!/bin/bash
# shellcheck disable=SC2317 # functions run via wait_until
# When the transport refuses bytes it said it had room for (a chunk could
# not be allocated), the bridge resets the connection instead of dropping
# the bytes and going on. Party 0 runs the quic transport through the
# test plugin tests/plugins/transport_shortwrite.c, whose stream_write()
# returns 0 once, after 1 MiB, on a stream to port A. A SOCKS client
# uploading 8 MiB to port A must see its connection reset (not an upload
# that ends normally with bytes missing), party 0 must say why, party 1's
# service must see a reset, not an end of data; a concurrent upload to
# port B, half before and half after the fault, arrives intact (SHA-256).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

cd "$T" || fail "cd $T"
[ -n "${SFK_TEST_PLUGIN_DIR:-}" ] || SFK_TEST_PLUGIN_DIR=$(dirname "$(dirname "$SFKIT_PROXY")")/tests/plugins/.libs
[ -f "$SFK_TEST_PLUGIN_DIR/transport_shortwrite.so" ] ||
  fail "test plugin transport_shortwrite.so not built (make check builds it)"
real=""
IFS=: read -ra dirs <<<"$SFKIT_PROXY_PLUGIN_DIR"
for d in "${dirs[@]}"; do
  [ -f "$d/transport_quic.so" ] && real=$d/transport_quic.so && break
done
[ -n "$real" ] || fail "transport_quic.so not found in $SFKIT_PROXY_PLUGIN_DIR"
export SFKIT_PROXY_PLUGIN_DIR=$SFKIT_PROXY_PLUGIN_DIR:$SFK_TEST_PLUGIN_DIR

make_pair
start_server sinkA sink
PA=$SERVER_PORT
start_server sinkB sink
PB=$SERVER_PORT
sed -i 's/^  plugin: quic$/  plugin: shortwrite/' p0.yaml
grep -q 'plugin: shortwrite' p0.yaml || fail "could not configure transport 'shortwrite'"
SFK_SHORTWRITE_REAL=$real SFK_SHORTWRITE_PORT=$PA SFK_SHORTWRITE_AFTER=1048576 \
  start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
make_file f 8
SHA=$(sha_file f)

# upload.py PORT [HALF_MARK GO]: SOCKS5 CONNECT to 10.0.0.1:PORT through
# party 0, send f (with HALF_MARK/GO: write HALF_MARK after the first
# half and wait for GO to exist before the rest), shut down writing and
# read until the proxy closes. Prints "eof" (a normal end) or "reset ERR".
cat >upload.py <<'PYEOF'
import os, socket, struct, sys, time
sport, port = int(sys.argv[1]), int(sys.argv[2])
mark, go = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else (None, None)
data = open("f", "rb").read()
s = socket.create_connection(("127.0.0.1", sport), timeout=60)
s.sendall(b"\x05\x01\x00")
assert s.recv(2) == b"\x05\x00", "no method"
s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("10.0.0.1") + struct.pack("!H", port))
rep = s.recv(10)
if len(rep) < 2 or rep[1] != 0:
    print("socks reply %r" % rep, flush=True)
    sys.exit(0)
try:
    if mark:
        half = len(data) // 2
        s.sendall(data[:half])
        open(mark, "w").write("half\n")
        deadline = time.monotonic() + 60
        while not os.path.exists(go) and time.monotonic() < deadline:
            time.sleep(0.05)
        s.sendall(data[half:])
    else:
        s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    print("eof", flush=True)
except OSError as e:
    print("reset %s" % e, flush=True)
PYEOF

# the concurrent upload: half now, the rest after the fault
"$PY" upload.py "$P0_SOCKS" "$PB" half.mark go >upB.out 2>upB.err &
UPB=$!
track "$UPB"
wait_file half.mark 30

# the upload whose stream gets the short write
outA=$(timeout 60 "$PY" upload.py "$P0_SOCKS" "$PA" 2>upA.err) || fail "upload to port A failed: $(cat upA.err)"
log "upload to A: $outA"
case $outA in
  reset*) ;;
  eof) fail "the client's upload ended normally although the transport refused bytes (they were lost silently)" ;;
  *) fail "upload to A: '$outA' (expected a reset)" ;;
esac
grep -q 'shortwrite: refusing' p0.log || fail "the test plugin never refused a write"
grep -q "peer 1 port $PA: the transport refused .* resetting the connection so no byte is lost silently" p0.log ||
  fail "party 0 logged no reason for the reset"
# party 1's service sees the stream end in a reset, not an end of data
wait_lines sinkA.res 1 20
grep -q '^reset ' sinkA.res || fail "party 1's service saw '$(cat sinkA.res)', not a reset"

touch go
wait_exit "$UPB" 60 || fail "the concurrent upload did not finish"
[ "$(cat upB.out)" = eof ] || fail "concurrent upload: '$(cat upB.out)' $(cat upB.err)"
wait_lines sinkB.res 1 20
[ "$(cat sinkB.res)" = "$SHA 8388608" ] ||
  fail "the concurrent upload arrived as '$(cat sinkB.res)', expected '$SHA 8388608'"

stop_all
pass "short write reset the connection (${outA%% *}), concurrent stream intact"
