#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# Off-path junk cannot use up the stateless resets a restarted party owes
# its peer. While 64 sockets flood party 0's UDP port with short-header
# packets for unknown connections (~5000 a second), party 0 is killed and
# restarted: its answer to party 1's next packet is a stateless reset, so
# party 1 drops the dead connection within seconds (not at peer_timeout,
# 20 s), and a new connection works.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need curl

cd "$T" || fail "cd $T"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy
make_pair "$(printf '  keepalive: 1s\n  peer_timeout: 20s\n  idle_timeout: 60s')"
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
mkdir www
make_file www/f 1
start_server http0 http www
H0=$SERVER_PORT
fetch_f 20 || fail "no first transfer: $(cat curl.err)"

# the flood: 64 sources, bursts of 50 packets every 10 ms, until killed
"$PY" - "$P0_UDP" >flood.out 2>flood.err <<'PYEOF' &
import os, socket, sys, time
port = int(sys.argv[1])
socks = []
for _ in range(64):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    socks.append(s)
sent = 0
while True:
    for i in range(50):
        # short header (0x40 | key phase bits), an 18-byte DCID nobody issued
        pkt = bytes([0x40 | (i & 0x3f)]) + os.urandom(40)
        try:
            socks[(sent + i) % 64].sendto(pkt, ("127.0.0.1", port))
        except OSError:
            pass
    sent += 50
    if sent % 5000 == 0:
        print(sent, flush=True)
    time.sleep(0.01)
PYEOF
FLOOD=$!
track "$FLOOD"
wait_until 10 _nonempty flood.out || fail "the flood did not start: $(cat flood.err)"

kill_proxy p0
start_proxy p0r p0.yaml
t0=$(now)
_reset() { grep -q 'peer 0 (10.0.0.0) down: stateless reset from the peer (it restarted)' p1.log; }
wait_until 15 _reset ||
  fail "party 1 saw no stateless reset within 15 s of party 0's restart under the flood: $(grep 'peer 0' p1.log | tail -n 2)"
dt=$(elapsed "$t0")
lt "$dt" 8 || fail "the stateless reset came only after $dt s"
log "under a flood of $(tail -n 1 flood.out)+ junk packets: party 1 got party 0's stateless reset $dt s after the restart"
wait_until 15 fetch_f 3 || fail "no new connection under the flood: $(tail -n 2 curl.err)"
log "a new connection works under the flood"
kill "$FLOOD"
stop_all
pass
