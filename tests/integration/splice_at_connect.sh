#!/bin/bash
# shellcheck disable=SC2317 # functions run via wait_until
# A local splice (a SOCKS client of party 0 reaching party 0's own
# service) whose two directions both end while its connect completes is
# freed: its two descriptors are closed. To get there, strace holds the
# daemon inside its connect() to the service (fault injection,
# delay_exit) until the service has sent its bytes and its FIN and the
# client has sent its request, its bytes and its FIN; then strace lets
# go, and the daemon finds both directions finished in the first pass.
# The client gets the service's bytes (SHA-256) and an end of data, the
# service gets the client's, and the daemon's open descriptors return to
# what they were before.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need strace

cd "$T" || fail "cd $T"
free_port S0 tcp
free_port U0 udp
write_config p0.yaml 0 "$S0" "$U0" p0.key ""
start_proxy p0 p0.yaml
P0=$(proxy_pid p0)
nfds() { find "/proc/$P0/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
base=$(nfds)

# the service: sends 16 KiB and its FIN at once, marks svc.sent, then
# reads the client's bytes to their end and writes their SHA-256
free_port SP tcp
"$PY" - "$SP" >svc.out 2>svc.err <<'PYEOF' &
import hashlib, os, socket, sys
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(8)
open("svc.ready", "w").write("ready\n")
c, _ = ls.accept()
data = bytes(range(256)) * 64
open("svc.sha", "w").write(hashlib.sha256(data).hexdigest() + "\n")
c.sendall(data)
c.shutdown(socket.SHUT_WR)
open("svc.sent", "w").write("sent\n")
h, n = hashlib.sha256(), 0
while True:
    d = c.recv(65536)
    if not d:
        break
    h.update(d)
    n += len(d)
print(h.hexdigest(), n, flush=True)
PYEOF
track "$!"
wait_file svc.ready

# hold every connect() of the daemon for up to 60 s
strace -f -qq -p "$P0" -e trace=connect -e inject=connect:delay_exit=60000000 \
  -o strace.out 2>strace.err &
STRACE=$!
track "$STRACE"
_attached() { [ -d "/proc/$P0" ] && grep -q "^TracerPid:[[:space:]]*$STRACE\$" "/proc/$P0/status"; }
wait_until 10 _attached || fail "strace did not attach: $(cat strace.err)"

# the client: greeting, CONNECT to its own party's service, 5 bytes and
# its FIN in one go; then reads to the end
"$PY" - "$S0" "$SP" >client.out 2>client.err <<'PYEOF' &
import hashlib, socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=90)
s.sendall(b"\x05\x01\x00" + b"\x05\x01\x00\x01" + socket.inet_aton("10.0.0.0") +
          struct.pack("!H", int(sys.argv[2])) + b"ping\n")
s.shutdown(socket.SHUT_WR)
buf = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    buf += d
# method reply (2 bytes), then the SOCKS reply (10): REP is byte 3
if buf[:3] != b"\x05\x00\x05" or len(buf) < 12 or buf[3] != 0:
    print("bad reply %r" % buf[:12], flush=True)
else:
    print("%02x %s" % (buf[3], hashlib.sha256(buf[12:]).hexdigest()), flush=True)
PYEOF
CLIENT=$!
track "$CLIENT"
wait_file svc.sent 20
_in_connect() { grep -q 'connect(' strace.out; }
wait_until 10 _in_connect || fail "the daemon made no connect() to the service"
# the service's FIN is on its way before the daemon sees its connect done
kill -TERM "$STRACE"
wait_exit "$STRACE" 10 || fail "strace did not let go"

wait_exit "$CLIENT" 30 || fail "the client got no end of data"
[ "$(cat client.out)" = "00 $(cat svc.sha)" ] ||
  fail "the client got '$(cat client.out)', expected the service's $(cat svc.sha)"
wait_lines svc.out 1 20
[ "$(cat svc.out)" = "$(printf 'ping\n' | sha_stdin) 5" ] ||
  fail "the service got '$(cat svc.out)', not the client's 5 bytes"

_fds_back() { [ "$(nfds)" -le "$base" ]; }
wait_until 10 _fds_back ||
  fail "the finished splice was not freed: party 0 holds $(nfds) descriptors, $base before it: $(ls -l "/proc/$P0/fd" | grep -c socket) sockets"
stop_all
pass "splice freed ($base descriptors)"
