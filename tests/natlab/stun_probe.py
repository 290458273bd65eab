#!/usr/bin/env python3
"""STUN Binding requests (RFC 8489) to several servers from ONE UDP socket.

    stun_probe.py [--bind IP:PORT] [--timeout S] SERVER_IP:PORT...
    stun_probe.py --bind IP:PORT [--timeout S] --punch PEER_IP:PORT

Prints one line per server: "SERVER MAPPED_IP:MAPPED_PORT" (or
"SERVER timeout"), and exits 1 if any server did not answer.  One socket
for all servers is what tells NATs apart: an endpoint-independent mapping
(cone) shows the same mapped port for every server, a symmetric NAT a
different one per destination.  turnutils_stunclient cannot do that (a new
socket per run).

--punch: a UDP hole punch, as two proxies do it: send "punch" to PEER every
100 ms; print "punched PEER" when a datagram from PEER arrives (then send
five more, so the peer sees one too) and exit 0; "no punch PEER" and exit 1
after --timeout.  Python 3 standard library only.
"""

import argparse
import os
import select
import socket
import struct
import sys
import time

MAGIC = 0x2112A442


def request():
    tid = os.urandom(12)
    return tid, struct.pack("!HHI", 0x0001, 0, MAGIC) + tid


def parse(data, tid):
    if len(data) < 20:
        return None
    mtype, mlen, magic = struct.unpack("!HHI", data[:8])
    if mtype != 0x0101 or magic != MAGIC or data[8:20] != tid:
        return None
    pos, end, mapped = 20, 20 + mlen, None
    while pos + 4 <= end:
        atype, alen = struct.unpack("!HH", data[pos:pos + 4])
        v = data[pos + 4:pos + 4 + alen]
        if atype in (0x0020, 0x0001) and len(v) >= 8 and v[1] == 1:
            port = struct.unpack("!H", v[2:4])[0]
            ip = v[4:8]
            if atype == 0x0020:
                port ^= MAGIC >> 16
                ip = bytes(a ^ b for a, b in zip(ip, struct.pack("!I", MAGIC)))
            addr = "%s:%d" % (socket.inet_ntoa(ip), port)
            if atype == 0x0020 or mapped is None:
                mapped = addr
        pos += 4 + ((alen + 3) & ~3)
    return mapped


def punch(s, peer, timeout):
    h, _, p = peer.rpartition(":")
    dst = (h, int(p))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.sendto(b"punch", dst)
        r, _, _ = select.select([s], [], [], 0.1)
        if r:
            _, src = s.recvfrom(2048)
            if src == dst:
                for _ in range(5):
                    s.sendto(b"punch", dst)
                    time.sleep(0.05)
                print("punched %s" % peer, flush=True)
                return 0
    print("no punch %s" % peer, flush=True)
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="0.0.0.0:0")
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--punch")
    ap.add_argument("servers", nargs="*")
    a = ap.parse_args()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    h, _, p = a.bind.rpartition(":")
    s.bind((h, int(p)))
    if a.punch:
        return punch(s, a.punch, a.timeout)
    rc = 0
    for srv in a.servers:
        h, _, p = srv.rpartition(":")
        dst = (h, int(p))
        tid, req = request()
        got = None
        deadline = time.monotonic() + a.timeout
        while got is None and time.monotonic() < deadline:
            s.sendto(req, dst)
            wait_until = min(deadline, time.monotonic() + 0.3)
            while got is None:
                left = wait_until - time.monotonic()
                if left <= 0:
                    break
                r, _, _ = select.select([s], [], [], left)
                if not r:
                    break
                data, src = s.recvfrom(2048)
                if src == dst:
                    got = parse(data, tid)
        print("%s %s" % (srv, got or "timeout"), flush=True)
        if got is None:
            rc = 1
    print("local %s:%d" % s.getsockname(), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
