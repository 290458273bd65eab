#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# A peer that opens hundreds of streams and never reads them cannot push
# the other proxy past its documented bound. Party 1's clients open 600
# connections to a service of party 0 that writes without end, and read
# nothing: party 1 returns no credit, so everything party 0 reads from
# the service waits in its send buffers. With peer_send_memory 16 MiB,
# party 0 holds at most that for party 1, plus one 16 KiB chunk a stream
# (600 streams x 128 KiB would be 75 MiB), and it goes on serving: a
# download through it works.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need curl

cd "$T" || fail "cd $T"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy
LIMIT_MIB=16
make_pair "  peer_send_memory: $((LIMIT_MIB * 1048576))"
printf 'control:\n  socket: p0.sock\n' >>p0.yaml
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
mkdir www
make_file www/f 4
start_server http0 http www
H0=$SERVER_PORT
fetch_f || fail "no first transfer: $(cat curl.err)"
base=$(rss_kib "$(proxy_pid p0)")

# party 0's service: once all 600 connections are in (party 1's
# connection window would otherwise fill before the last streams got
# their SOCKS answer), writes 64 KiB to every connection whenever it can
free_port ZP tcp
"$PY" - "$ZP" 600 >zero.out 2>zero.err <<'PYEOF' &
import resource, selectors, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(1024)
ls.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(ls, selectors.EVENT_READ)
chunk = b"\0" * 65536
sent = conns = 0
last = time.monotonic()
while True:
    for key, _ in sel.select(0.2):
        if key.fileobj is ls:
            c, _ = ls.accept()
            c.setblocking(False)
            sel.register(c, selectors.EVENT_WRITE)
            conns += 1
        elif conns >= int(sys.argv[2]):
            try:
                sent += key.fileobj.send(chunk)
            except BlockingIOError:
                pass
            except OSError:
                sel.unregister(key.fileobj)
    if time.monotonic() - last >= 0.5:
        last = time.monotonic()
        print(conns, sent, flush=True)
PYEOF
track "$!"
wait_until 20 _nonempty zero.out || fail "the endless service did not start: $(cat zero.err)"

# party 1's clients: 600 SOCKS connections to it, none of them read
"$PY" - "$P1_SOCKS" "$ZP" 600 >socks.out 2>socks.err <<'PYEOF' &
import resource, socket, struct, sys, time
sport, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
for i in range(n):
    s = socket.socket()
    # a small receive window from the start: the proxy's socket towards
    # us then takes little, and the rest waits in the proxies
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", sport))
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("10.0.0.0") + struct.pack("!H", port))
    r = s.recv(10)
    assert r[1] == 0, r
    held.append(s)
print(len(held), flush=True)
time.sleep(3600)
PYEOF
track "$!"
wait_until 120 _nonempty socks.out || fail "the 600 connections did not open: $(tail -n 3 socks.err)"
log "600 streams open, none read"

# the bytes the service writes pile up in the kernel's socket buffers and
# in party 0's send buffers; wait until these reach peer_send_memory
_mem() { "$SFKIT_PROXY" status -c p0.yaml --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["transport.quic"]["send_memory"])'; }
_at_bound() { [ "$(_mem)" -ge $(((LIMIT_MIB - 2) * 1048576)) ]; }
wait_until 60 _at_bound || fail "party 0's send buffers never filled: $(_mem) bytes"
# then read both figures 20 times while the service keeps writing
max_mem=0
max_rss=0
for _ in $(seq 20); do
  m=$(_mem)
  r=$(rss_kib "$(proxy_pid p0)")
  [ "$m" -gt "$max_mem" ] && max_mem=$m
  [ "$r" -gt "$max_rss" ] && max_rss=$r
done
grown=$(((max_rss - base) / 1024))
log "party 0: send buffers at most $((max_mem / 1048576)) MiB for 600 unread streams; RSS grew $grown MiB ($((base / 1024)) -> $((max_rss / 1024)) MiB); the service wrote $(($(tail -n 1 zero.out | awk '{print $2}') / 1048576)) MiB (most of it waits in kernel socket buffers)"
# the bound: peer_send_memory, plus one 16 KiB chunk a stream may keep
bound=$((LIMIT_MIB * 1048576 + 600 * 16448 + 1048576))
[ "$max_mem" -le "$bound" ] || fail "send buffers held $max_mem bytes, over $bound (peer_send_memory $LIMIT_MIB MiB + 16 KiB a stream)"
# (under ASan every allocation carries redzones and freed memory waits in
# a quarantine: RSS says nothing there, the accounting above still does)
if ! sanitized; then
  [ "$grown" -le $((bound / 1048576 + 16)) ] || fail "party 0's RSS grew by $grown MiB (bound $((bound / 1048576)) MiB + 16 MiB for the 600 streams' state)"
fi
assert_alive p0
# party 0 goes on serving: a download through it from party 1 (the other
# direction of the same connection; new streams from party 1 wait, as
# QUIC's connection window says, until its own clients read)
start_server http1 http www
got=$(curl -sS --fail --max-time 30 --socks5 "127.0.0.1:$P0_SOCKS" "http://10.0.0.1:$SERVER_PORT/f" 2>curl.err | sha_stdin) ||
  fail "party 0 serves nobody beside the 600 stalled streams: $(cat curl.err)"
[ "$got" = "$(sha_file www/f)" ] || fail "sha256 differs"
log "party 0 still serves: 4 MiB from party 1 through it, sha256 equal"
stop_all
pass
