#!/bin/bash
# Many connections at once: a party carries more TCP connections than the
# usual soft open-file limit (1024) allows, because the daemon raises its
# soft limit to the hard one at start.  The proxies are started with a
# soft limit of 1024; 1100 connections are then opened through party 1 to
# an echo service at party 0 and held open together, each checked with its
# own round trip, and all of them answer again after the last one opened.
# Memory stays bounded while they are open (not checked under sanitizers,
# whose shadow memory is larger).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

N=1100
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((N + 200)) ]; then
  skip "the hard open-file limit is $hard; this test needs $((N + 200))"
fi

cd "$T" || fail "cd $T"
make_pair
# The daemons start with the common soft limit of 1024 (lowered in this
# shell after the echo server started; the client raises its own).
start_server echo0 echo
E0=$SERVER_PORT
ulimit -Sn 1024 || fail "cannot lower the soft open-file limit"
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
for p in p0 p1; do
  grep -q 'open files: ' "$T/$p.log" || fail "$p did not log its open-file limit"
done
log "$(grep -ho 'open files: .*' "$T/p1.log")"

# Open N connections, one round trip each with its own payload, keep them
# all open, then a second round trip on every one; print the count.
"$PY" - "$P1_SOCKS" "$E0" "$N" >client.out 2>client.err <<'EOF' &
import resource, signal, socket, struct, sys

port, svc, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

def recv_exact(s, k):
    b = b""
    while len(b) < k:
        d = s.recv(k - len(b))
        if not d:
            raise OSError("connection closed after %d of %d bytes" % (len(b), k))
        b += d
    return b

def roundtrip(s, msg):
    s.sendall(msg)
    got = recv_exact(s, len(msg))
    if got != msg:
        raise OSError("echo %r instead of %r" % (got, msg))

conns = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"\x05\x01\x00\x05\x01\x00\x01" + socket.inet_aton("10.0.0.0") + struct.pack(">H", svc))
    r = recv_exact(s, 2 + 10)
    if r[:2] != b"\x05\x00" or r[3] != 0:
        sys.exit("connection %d: SOCKS reply %s" % (i, r.hex()))
    roundtrip(s, b"first %d\n" % i)
    conns.append(s)
print("open %d" % len(conns), flush=True)
for i, s in enumerate(conns):
    roundtrip(s, b"again %d\n" % i)
print("answered %d" % len(conns), flush=True)
signal.pause()  # hold them until the test ends us
EOF
client=$!
track "$client"
client_done() { grep -q '^answered' client.out || ! alive "$client"; }
wait_until 120 client_done
grep -q '^answered' client.out ||
  fail "not all $N connections answered: $(cat client.out) $(tail -n 3 client.err)"
log "$(paste -sd ' ' client.out) connections, each with two round trips"
assert_alive p0
assert_alive p1
open0=$(ss -Htn state established "( sport = :$E0 )" | wc -l)
[ "$open0" -ge "$N" ] || fail "only $open0 connections reached the echo service"
r0=$(rss_kib "${PROXY_PID[p0]}")
r1=$(rss_kib "${PROXY_PID[p1]}")
log "RSS with $N connections open: party 0 $r0 KiB, party 1 $r1 KiB"
if ! sanitized; then
  for r in "$r0" "$r1"; do
    [ "$r" -lt 65536 ] || fail "RSS $r KiB with $N idle connections (limit 64 MiB)"
  done
fi
kill "$client" 2>/dev/null
stop_all
pass
