#!/usr/bin/env python3
"""Request/response rounds through a SOCKS5 proxy, like an MPC protocol's.

    pingpong.py PROXY_HOST:PORT ADDR PORT --rounds N [--timeout S]

Connects (SOCKS5, no authentication, CONNECT to the IPv4 ADDR:PORT, an
echo server), then N times sends a message of 1-64 random bytes and waits
for exactly those bytes back.  Prints `rounds=N p50_ms=X max_ms=Y` and
exits 0 when every answer equalled its message; otherwise prints what
went wrong and exits 1.  The times are for the log, not for a verdict.
"""

import argparse
import os
import socket
import struct
import sys
import time


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += d
    return buf


def main():
    p = argparse.ArgumentParser()
    p.add_argument("proxy")
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--rounds", type=int, required=True)
    p.add_argument("--timeout", type=float, default=30.0)
    a = p.parse_args()
    host, port = a.proxy.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=a.timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"\x05\x01\x00")
    if recv_exact(s, 2) != b"\x05\x00":
        print("SOCKS5 method refused")
        return 1
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(a.addr) + struct.pack("!H", a.port))
    rep = recv_exact(s, 10)
    if rep[1] != 0:
        print("SOCKS5 reply 0x%02x" % rep[1])
        return 1
    times = []
    for i in range(a.rounds):
        msg = os.urandom(1 + i % 64)
        t0 = time.monotonic()
        s.sendall(msg)
        try:
            got = recv_exact(s, len(msg))
        except (EOFError, OSError) as e:
            print("round %d: %s" % (i + 1, e))
            return 1
        times.append(time.monotonic() - t0)
        if got != msg:
            print("round %d: the answer differs from the message" % (i + 1))
            return 1
    s.close()
    times.sort()
    print("rounds=%d p50_ms=%.2f max_ms=%.2f" % (a.rounds, times[len(times) // 2] * 1e3, times[-1] * 1e3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
