#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# 1,100 SOCKS clients that stall in the middle of their greeting (more
# than the 1,024 handshakes the proxy keeps) do not lock out a real
# client: the oldest stalled handshakes are closed to admit new ones, and
# a download through the proxy arrives intact.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need curl

cd "$T" || fail "cd $T"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy
make_pair
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
mkdir www
make_file www/f 4
start_server http0 http www
H0=$SERVER_PORT

"$PY" - "$P1_SOCKS" 1100 >stall.out 2>stall.err <<'PYEOF' &
import resource, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 100), hard))
held = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"\x05")  # the first byte of a greeting, and then nothing
    held.append(s)
print(len(held), flush=True)
time.sleep(3600)
PYEOF
STALL=$!
track "$STALL"
wait_until 60 _nonempty stall.out || fail "the stalling clients did not connect: $(cat stall.err)"
wait_until 20 grep -q 'SOCKS handshakes in progress' p1.log ||
  fail "the proxy never had its 1,024 handshakes full: $(grep socks p1.log | tail -n 2)"
log "$(cat stall.out) stalled clients connected; $(grep -m1 'SOCKS handshakes in progress' p1.log | sed 's/.*socks: //')"
got=$(curl -sS --fail --max-time 20 --socks5 "127.0.0.1:$P1_SOCKS" "http://10.0.0.0:$H0/f" 2>curl.err | sha_stdin) ||
  fail "a real client was locked out by stalled ones: $(cat curl.err)"
[ "$got" = "$(sha_file www/f)" ] || fail "sha256 differs"
log "a real client beside them: 4 MiB, sha256 equal"
kill "$STALL"
stop_all
pass
