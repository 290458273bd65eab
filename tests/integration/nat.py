#!/usr/bin/env python3
"""A one-host UDP "NAT" on loopback, for rebinding tests.

    nat.py --inside HOST:PORT --outside HOST:PORT --ready-file FILE

The inside party reaches the outside peer by sending to the NAT's inside
socket Q; the NAT forwards from its public socket P, so the peer sees the
inside party at P.  What the peer sends to P goes back to the inside party
from Q.  Only the outside peer may send to P (address and port dependent
filtering).  SIGUSR1 "rebinds": a new public socket replaces P, as when a
NAT drops a mapping and makes a new one.  The ready file gets "Q P" at
start and "Q P'" after each rebinding (rewritten whole).
"""

import argparse
import os
import selectors
import signal
import socket


def addr(text):
    host, port = text.rsplit(":", 1)
    return (host, int(port))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inside", type=addr, required=True)
    ap.add_argument("--outside", type=addr, required=True)
    ap.add_argument("--ready-file", required=True)
    a = ap.parse_args()

    def sock():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        return s

    q = sock()
    state = {"p": sock(), "rebind": False}

    def ready():
        tmp = a.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d %d\n" % (q.getsockname()[1], state["p"].getsockname()[1]))
        os.replace(tmp, a.ready_file)

    def on_usr1(signum, frame):
        state["rebind"] = True

    signal.signal(signal.SIGUSR1, on_usr1)
    sel = selectors.DefaultSelector()
    sel.register(q, selectors.EVENT_READ, "q")
    sel.register(state["p"], selectors.EVENT_READ, "p")
    ready()
    while True:
        if state["rebind"]:
            state["rebind"] = False
            old = state["p"]
            sel.unregister(old)
            old.close()
            state["p"] = sock()
            sel.register(state["p"], selectors.EVENT_READ, "p")
            ready()
        try:
            events = sel.select(timeout=0.2)
        except InterruptedError:
            continue
        for key, _ in events:
            s = key.fileobj
            while True:
                try:
                    data, src = s.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                try:
                    if key.data == "q":
                        state["p"].sendto(data, a.outside)
                    elif src == a.outside:
                        q.sendto(data, a.inside)
                except OSError:
                    pass


if __name__ == "__main__":
    main()
