#!/usr/bin/env python3
"""TCP servers for bench/bench.sh, on 127.0.0.1 only.

    echo_server.py --ready-file F [--max-seconds S]

Listens on three free ports and writes "SINK_PORT ECHO_PORT SOURCE_PORT"
to F once all listen:
  sink    reads everything with 1 MiB recv_into; at the client's FIN answers
          the byte count (8 bytes, big endian) and closes
  echo    sends back what arrives (TCP_NODELAY); closes at the client's FIN
          (this also carries the two-way echo test, the pings, the setups
          and the 1,000 idle connections)
  source  reads a byte count N (8 bytes, big endian), sends N bytes in 1 MiB
          sendall calls, and closes
Sink and echo connections share one epoll loop (no thread start per
connection, and no lock convoy when 16 streams arrive in small pieces);
each source connection gets a thread that blocks in sendall.
Raises its RLIMIT_NOFILE soft limit to the hard limit, as it may hold
more than 1,000 connections at once.
Exits 0 on SIGTERM/SIGINT, and by itself after --max-seconds (default 3600)
so that it never outlives a broken run.
"""

import argparse
import os
import resource
import selectors
import signal
import socket
import sys
import threading

BUF = 1 << 20
SINK, ECHO = "sink", "echo"


def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(512)
    return s


def blocking_send(s, data):
    """Small replies (counts, echoes) on a non-blocking socket."""
    s.settimeout(10)
    try:
        s.sendall(data)
    finally:
        s.setblocking(False)


def event_loop(sink, echo):
    sel = selectors.DefaultSelector()
    for srv, kind in ((sink, SINK), (echo, ECHO)):
        srv.setblocking(False)
        sel.register(srv, selectors.EVENT_READ, ("listen", kind))
    buf = bytearray(BUF)
    view = memoryview(buf)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            role, kind = key.data[0], key.data[1]
            if role == "listen":
                try:
                    c, _ = s.accept()
                except OSError:
                    continue
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, ["conn", kind, 0])
                continue
            try:
                if kind == SINK:
                    k = s.recv_into(buf)
                    if k:
                        key.data[2] += k
                        continue
                    blocking_send(s, key.data[2].to_bytes(8, "big"))
                else:
                    # Into the shared buffer: no allocation per read, and
                    # it is free again once blocking_send returns.
                    k = s.recv_into(buf, 256 << 10)
                    if k:
                        blocking_send(s, view[:k])
                        continue
            except BlockingIOError:
                continue
            except OSError:
                pass  # the client went away: its own problem, it reports it
            sel.unregister(s)
            s.close()


def serve_source(c):
    payload = memoryview(bytes(range(256)) * (BUF // 256))
    try:
        with c:
            head = bytearray()
            while len(head) < 8:
                d = c.recv(8 - len(head))
                if not d:
                    return
                head += d
            left = int.from_bytes(head, "big")
            while left > 0:
                k = min(left, BUF)
                c.sendall(payload[:k])
                left -= k
            c.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def source_loop(srv):
    while True:
        try:
            c, _ = srv.accept()
        except OSError:
            return
        c.settimeout(300)
        threading.Thread(target=serve_source, args=(c,), daemon=True).start()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ready-file", required=True)
    p.add_argument("--max-seconds", type=float, default=3600)
    a = p.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 16
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass  # the load generator will report the refused connections

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())

    sink, echo, source = listener(), listener(), listener()
    threading.Thread(target=event_loop, args=(sink, echo), daemon=True).start()
    threading.Thread(target=source_loop, args=(source,), daemon=True).start()
    with open(a.ready_file + ".tmp", "w", encoding="ascii") as f:
        f.write("%d %d %d\n" % (sink.getsockname()[1], echo.getsockname()[1], source.getsockname()[1]))
    os.replace(a.ready_file + ".tmp", a.ready_file)
    done.wait(a.max_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
