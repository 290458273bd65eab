#!/usr/bin/env python3
"""A stand-in for a TURN server, for tests/plugins/relay_udp.c.

    relay_server.py --ready-file FILE --stats FILE [--relayed-port N]

Frames: one byte type, an IPv4 address and port (6 bytes), payload.
Client -> server: 'A' allocate, 'P' permit, 'U' unpermit, 'S' send.
Server -> client: 'a' allocated (the relayed address), 'D' data from a peer.
Each client (by source address) gets one relayed socket; a peer's
datagram to it is passed on only if the client permitted that peer's
address (as TURN permissions do).  The ready file gets the server's port;
the stats file "allocations A sent S received R dropped D", rewritten
every 100 datagrams and when idle for 0.1 s.
"""

import argparse
import os
import selectors
import socket
import struct


def pack(addr):
    return socket.inet_aton(addr[0]) + struct.pack(">H", addr[1])


def unpack(b):
    return (socket.inet_ntoa(b[:4]), struct.unpack(">H", b[4:6])[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--stats", required=True)
    ap.add_argument("--relayed-port", type=int, default=0)
    a = ap.parse_args()
    ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ctl.bind(("127.0.0.1", 0))
    sel = selectors.DefaultSelector()
    sel.register(ctl, selectors.EVENT_READ, None)
    clients = {}  # client addr -> {"sock", "perm"}
    st = {"allocations": 0, "sent": 0, "received": 0, "dropped": 0}

    def stats():
        with open(a.stats + ".tmp", "w") as f:
            f.write(" ".join("%s %d" % kv for kv in st.items()) + "\n")
        os.replace(a.stats + ".tmp", a.stats)

    stats()
    with open(a.ready_file + ".tmp", "w") as f:
        f.write("%d\n" % ctl.getsockname()[1])
    os.replace(a.ready_file + ".tmp", a.ready_file)
    n = 0
    while True:
        events = sel.select(timeout=0.1)
        if not events:
            stats()
        for key, _ in events:
            s = key.fileobj
            try:
                data, src = s.recvfrom(65535)
            except OSError:
                continue
            if key.data is None:
                if len(data) < 7:
                    continue
                t, addr, payload = data[:1], unpack(data[1:7]), data[7:]
                c = clients.get(src)
                if t == b"A":
                    if c is None:
                        rs = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        rs.bind(("127.0.0.1", a.relayed_port if not clients else 0))
                        c = clients[src] = {"sock": rs, "perm": set()}
                        sel.register(rs, selectors.EVENT_READ, src)
                        st["allocations"] += 1
                    ctl.sendto(b"a" + pack(c["sock"].getsockname()), src)
                elif c is None:
                    continue
                elif t == b"P":
                    c["perm"].add(addr)
                elif t == b"U":
                    c["perm"].discard(addr)
                elif t == b"S":
                    c["sock"].sendto(payload, addr)
                    st["sent"] += 1
            else:
                c = clients[key.data]
                if src in c["perm"]:
                    ctl.sendto(b"D" + pack(src) + data, key.data)
                    st["received"] += 1
                else:
                    st["dropped"] += 1
            n += 1
            if n % 100 == 0:
                stats()


if __name__ == "__main__":
    main()
