#!/usr/bin/env python3
"""TCP servers for bench/bench.sh, on 127.0.0.1 only.

    echo_server.py --ready-file F [--max-seconds S]

Listens on two free ports and writes "SINK_PORT ECHO_PORT" to F once both
listen:
  sink  reads everything with 1 MiB recv_into; at the client's FIN answers
        the byte count (8 bytes, big endian) and closes
  echo  sends back what arrives (TCP_NODELAY); closes at the client's FIN
One thread per sink connection; all echo connections share one epoll loop.  Exits 0 on SIGTERM/SIGINT, and by itself after
--max-seconds (default 3600) so that it never outlives a broken run.
"""

import argparse
import os
import selectors
import signal
import socket
import sys
import threading

BUF = 1 << 20


def serve_sink(c):
    buf = bytearray(BUF)
    n = 0
    with c:
        while True:
            k = c.recv_into(buf)
            if not k:
                break
            n += k
        c.sendall(n.to_bytes(8, "big"))


def echo_loop(srv):
    """Every echo connection in one epoll loop: no thread start per
    connection, so connection setups are not slowed by the server."""
    sel = selectors.DefaultSelector()
    srv.setblocking(False)
    sel.register(srv, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is srv:
                try:
                    c, _ = srv.accept()
                except BlockingIOError:
                    continue
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ)
                continue
            try:
                d = s.recv(65536)
                if d:
                    # Echo traffic is tiny (1-byte pings); a blocking send
                    # with a timeout keeps this simple.
                    s.settimeout(10)
                    s.sendall(d)
                    s.setblocking(False)
                    continue
            except OSError:
                pass
            sel.unregister(s)
            s.close()


def accept_loop(srv, handler):
    while True:
        try:
            c, _ = srv.accept()
        except OSError:
            return
        c.settimeout(300)
        threading.Thread(target=guarded, args=(handler, c), daemon=True).start()


def guarded(handler, c):
    try:
        handler(c)
    except OSError:
        pass  # the client went away: its own problem, reported by the client


def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(512)
    return s


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ready-file", required=True)
    p.add_argument("--max-seconds", type=float, default=3600)
    a = p.parse_args()

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())

    sink, echo = listener(), listener()
    threading.Thread(target=accept_loop, args=(sink, serve_sink), daemon=True).start()
    threading.Thread(target=echo_loop, args=(echo,), daemon=True).start()
    with open(a.ready_file + ".tmp", "w", encoding="ascii") as f:
        f.write("%d %d\n" % (sink.getsockname()[1], echo.getsockname()[1]))
    os.replace(a.ready_file + ".tmp", a.ready_file)
    done.wait(a.max_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
