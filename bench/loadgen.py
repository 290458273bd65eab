#!/usr/bin/env python3
"""Load generator for bench/bench.sh (talks to bench/echo_server.py).

    loadgen.py bulk  --target H:P [--socks H:P] --conns N --bytes B [--down] [--max-seconds S]
    loadgen.py echo  --target H:P [--socks H:P] --conns N --bytes B [--max-seconds S]
    loadgen.py ping  --target H:P [--socks H:P] --count N [--size Z] [--warmup W] [--max-seconds S]
    loadgen.py setup --target H:P [--socks H:P] --count N [--max-seconds S]
    loadgen.py idle  --target H:P [--socks H:P] --conns N [--max-seconds S]

--target is the server as the client names it: with --socks it is the SOCKS5
destination (e.g. 10.0.0.0:PORT), without it the address dialled directly.
Whatever is dialled must be 127.0.0.1: this tool never sends traffic
anywhere else.

  bulk   opens N connections to the sink port, then sends B/N bytes on each
         (1 MiB sendall, one thread per connection), shuts the write side and
         reads the sink's 8-byte count.  With --down the target is the source
         port instead: each connection asks for B/N bytes and reads them
         (1 MiB recv_into) until the server closes.  Timed from the first
         byte to the last count (or the last byte), so connection setup is
         not included.
  echo   opens N connections to the echo port and, on each, sends B/N bytes
         of pseudo-random data (a different seed per connection, so that
         crossed streams show) while reading the echo back at the same time,
         all in one epoll loop.  Every byte that comes back is compared with
         the byte sent at that offset; a difference, a missing or an extra
         byte fails the run.  mibps counts the payload once (each byte
         crosses the path twice, once each way).  Timed from the first byte
         sent to the last byte echoed.
  ping   one connection to the echo port, TCP_NODELAY; W warm-up round trips,
         then N timed round trips of Z bytes (default 1), each echo checked.
  setup  N times, one after the other: connect (+ SOCKS5 no-auth handshake,
         3+10 bytes out), 1-byte round trip on the echo port, close.
  idle   opens N connections to the echo port one after the other, with a
         1-byte round trip on each (so each is open end to end, not just
         accepted by a proxy), prints its "ready=1" line, then holds them
         until stdin reaches EOF or SIGTERM/SIGINT arrives, closes them and
         exits 0.  Raises RLIMIT_NOFILE as far as the hard limit allows.
         Still holding at --max-seconds is an error.

Prints one line of key=value pairs, e.g.
  bulk:  bytes=1073741824 seconds=3.21 mibps=318.9 complete=1 cpu_pct=23
  echo:  bytes=536870912 seconds=2.80 mibps=182.9 verified=1 complete=1 cpu_pct=45
  ping:  count=10000 size=1 seconds=1.2 p50_us=95.1 p99_us=180.3 max_us=900.2
         over_10ms=0 complete=1 cpu_pct=40
  setup: count=2000 seconds=2.5 per_s=800.0 p50_us=1200 complete=1 cpu_pct=30
  idle:  ready=1 conns=1000 seconds=1.3 cpu_pct=35    (then, when released,
         closed=1000)
complete=0 means --max-seconds cut the run short (the figures are then over
what was done).  cpu_pct is this process's CPU time over the wall time (100 =
one core), to show whether the load generator itself was the bottleneck.
Exit status 1 on any error (connection refused, SOCKS error, short count,
echoed bytes that differ from those sent).
"""

import argparse
import math
import os
import random
import resource
import selectors
import signal
import socket
import sys
import threading
import time

BUF = 1 << 20
IO_TIMEOUT = 60.0


class BenchError(Exception):
    pass


def hostport(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    return host, int(port)


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise BenchError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += d
    return bytes(buf)


def socks5_connect(s, host, port):
    """RFC 1928 CONNECT without authentication; host is an IPv4 literal."""
    s.sendall(b"\x05\x01\x00")
    r = recv_exact(s, 2)
    if r != b"\x05\x00":
        raise BenchError("SOCKS5 method reply %s" % r.hex())
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(host) + port.to_bytes(2, "big"))
    r = recv_exact(s, 4)
    if r[1] != 0:
        raise BenchError("SOCKS5 reply 0x%02x for %s:%d" % (r[1], host, port))
    atyp = r[3]
    if atyp == 1:
        recv_exact(s, 4 + 2)
    elif atyp == 4:
        recv_exact(s, 16 + 2)
    elif atyp == 3:
        recv_exact(s, recv_exact(s, 1)[0] + 2)
    else:
        raise BenchError("SOCKS5 reply with address type 0x%02x" % atyp)


def connect(a, nodelay=True):
    """A connected socket to the target, through SOCKS if asked."""
    first = a.socks or a.target
    if first[0] != "127.0.0.1":
        raise BenchError("refusing to dial %s: the benchmark stays on 127.0.0.1" % first[0])
    s = socket.create_connection(first, timeout=IO_TIMEOUT)
    if nodelay:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        if a.socks:
            socks5_connect(s, a.target[0], a.target[1])
    except BaseException:
        s.close()
        raise
    return s


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def percentile(sorted_values, q):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return 0.0
    rank = math.ceil(q / 100.0 * len(sorted_values))
    return sorted_values[min(len(sorted_values), max(1, rank)) - 1]


def emit(**kv):
    print(" ".join("%s=%s" % (k, v) for k, v in kv.items()), flush=True)


# --- bulk ------------------------------------------------------------------------
def bulk(a):
    if a.conns < 1 or a.bytes < a.conns:
        raise BenchError("need --conns >= 1 and --bytes >= --conns")
    share = [a.bytes // a.conns] * a.conns
    share[0] += a.bytes - sum(share)
    conns = [connect(a, nodelay=False) for _ in range(a.conns)]
    payload = memoryview(bytes(range(256)) * (BUF // 256))
    go = threading.Barrier(a.conns + 1)
    got = [0] * a.conns
    errors = []
    cut = [False]

    def worker(i):
        s = conns[i]
        try:
            go.wait()
            left = share[i]
            while left > 0:
                if time.monotonic() > deadline:
                    cut[0] = True
                    break
                k = min(left, BUF)
                s.sendall(payload[:k])
                left -= k
            s.shutdown(socket.SHUT_WR)
            got[i] = int.from_bytes(recv_exact(s, 8), "big")
            if got[i] != share[i] - left:
                errors.append("connection %d: sent %d, the sink counted %d" % (i, share[i] - left, got[i]))
        except (OSError, BenchError, threading.BrokenBarrierError) as e:
            errors.append("connection %d: %s" % (i, e))
        finally:
            s.close()

    deadline = time.monotonic() + a.max_seconds
    if a.down:
        # One epoll loop reads every connection: 16 reader threads would
        # spend more CPU on the GIL than on reading.
        c0, t0 = cpu_seconds(), time.perf_counter()
        receive_all(conns, share, got, errors, cut, deadline)
        t1, c1 = time.perf_counter(), cpu_seconds()
    else:
        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(a.conns)]
        for t in threads:
            t.start()
        c0, t0 = cpu_seconds(), time.perf_counter()
        go.wait()
        for t in threads:
            t.join(a.max_seconds + IO_TIMEOUT)
        t1, c1 = time.perf_counter(), cpu_seconds()
        if any(t.is_alive() for t in threads):
            raise BenchError("connections still busy %.0f s after the time limit" % IO_TIMEOUT)
    if errors:
        raise BenchError("; ".join(errors[:3]))
    total, secs = sum(got), t1 - t0
    emit(bytes=total, seconds="%.3f" % secs, mibps="%.1f" % (total / secs / 2**20),
         complete=0 if cut[0] else 1, cpu_pct="%.0f" % (100 * (c1 - c0) / secs))


def receive_all(conns, share, got, errors, cut, deadline):
    """Ask each source connection for its share, then read them all until
    each one closes, the deadline passes, or nothing arrives for IO_TIMEOUT."""
    sel = selectors.DefaultSelector()
    buf = bytearray(BUF)
    for i, s in enumerate(conns):
        s.sendall(share[i].to_bytes(8, "big"))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    try:
        open_ = len(conns)
        while open_:
            now = time.monotonic()
            if now > deadline:
                cut[0] = True
                break
            ready = sel.select(min(IO_TIMEOUT, deadline - now + 0.01))
            if not ready and time.monotonic() < deadline:
                errors.append("no data for %.0f s" % IO_TIMEOUT)
                break
            for key, _ in ready:
                i = key.data
                try:
                    k = key.fileobj.recv_into(buf)
                except BlockingIOError:
                    continue
                except OSError as e:
                    errors.append("connection %d: %s" % (i, e))
                    k = 0
                if k:
                    got[i] += k
                    continue
                sel.unregister(key.fileobj)
                open_ -= 1
                if got[i] != share[i] and not errors:
                    errors.append("connection %d: asked for %d bytes, got %d" % (i, share[i], got[i]))
    finally:
        sel.close()
        for s in conns:
            s.close()


# --- ping --------------------------------------------------------------------------
def ping(a):
    if a.size < 1:
        raise BenchError("need --size >= 1")
    # 1 byte stays the plain "x" of old; larger pings carry random bytes so
    # that a proxy handing back stale or shifted data is caught.
    payload = b"x" if a.size == 1 else random.Random(a.size).randbytes(a.size)
    s = connect(a)
    with s:
        for _ in range(a.warmup):
            s.sendall(payload)
            if recv_exact(s, a.size) != payload:
                raise BenchError("echo differs from the ping sent (warm-up)")
        times = []
        deadline = time.monotonic() + a.max_seconds
        c0, t0 = cpu_seconds(), time.perf_counter()
        clock = time.perf_counter_ns
        for _ in range(a.count):
            b = clock()
            s.sendall(payload)
            # recv(1) is one syscall: keep the 1-byte case as lean as before.
            back = s.recv(1) if a.size == 1 else recv_exact(s, a.size)
            times.append(clock() - b)
            if back != payload:
                raise BenchError("echo lost" if not back else "echo differs from the ping sent")
            if len(times) % 256 == 0 and time.monotonic() > deadline:
                break
        t1, c1 = time.perf_counter(), cpu_seconds()
    times.sort()
    emit(count=len(times), size=a.size, seconds="%.3f" % (t1 - t0),
         p50_us="%.1f" % (percentile(times, 50) / 1e3), p99_us="%.1f" % (percentile(times, 99) / 1e3),
         max_us="%.1f" % (times[-1] / 1e3 if times else 0),
         over_10ms=sum(1 for t in times if t > 10_000_000),
         complete=int(len(times) == a.count), cpu_pct="%.0f" % (100 * (c1 - c0) / (t1 - t0)))


# --- setup -------------------------------------------------------------------------
def setup(a):
    times = []
    deadline = time.monotonic() + a.max_seconds
    c0, t0 = cpu_seconds(), time.perf_counter()
    clock = time.perf_counter_ns
    for _ in range(a.count):
        if time.monotonic() > deadline:
            break
        b = clock()
        s = connect(a)
        with s:
            s.sendall(b"x")
            if recv_exact(s, 1) != b"x":
                raise BenchError("echo lost")
        times.append(clock() - b)
    t1, c1 = time.perf_counter(), cpu_seconds()
    secs = t1 - t0
    times.sort()
    emit(count=len(times), seconds="%.3f" % secs, per_s="%.1f" % (len(times) / secs),
         p50_us="%.0f" % (percentile(times, 50) / 1e3), complete=int(len(times) == a.count),
         cpu_pct="%.0f" % (100 * (c1 - c0) / secs))


# --- echo ------------------------------------------------------------------------
# Each connection's data is a pseudo-random block repeated; its length is a
# prime, so the pattern never lines up with the power-of-two buffer sizes of
# the proxies, and a chunk lost or repeated somewhere shows as a mismatch.
PERIOD = 1048573
CHUNK = 256 << 10


def pattern(i):
    """Connection i's block plus CHUNK bytes of wrap-around, so that any
    CHUNK-long window of the endless stream is one slice."""
    block = random.Random(0x5F1C + i).randbytes(PERIOD)
    return block + block[:CHUNK]


def first_difference(got, want):
    return next(j for j in range(len(got)) if got[j] != want[j])


def echo(a):
    if a.conns < 1 or a.bytes < a.conns:
        raise BenchError("need --conns >= 1 and --bytes >= --conns")
    n = a.conns
    share = [a.bytes // n] * n
    share[0] += a.bytes - sum(share)
    pats = [pattern(i) for i in range(n)]
    conns = [connect(a, nodelay=False) for _ in range(n)]
    sent, got = [0] * n, [0] * n
    buf = bytearray(CHUNK)
    rview = memoryview(buf)
    # One thread does all the sending and reading: the writes never block
    # (non-blocking sockets), so reading the echo is never held up by a
    # full send buffer, and there is no GIL hand-off between threads.
    sel = selectors.DefaultSelector()
    for i, s in enumerate(conns):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, i)
    cut = False
    open_, waiting = n, n  # connections not at EOF / not fully echoed
    c0, t0 = cpu_seconds(), time.perf_counter()
    t1 = None
    deadline = time.monotonic() + a.max_seconds
    try:
        while open_:
            if not cut and time.monotonic() > deadline:
                # Stop sending, but still read (and check) what is in flight.
                cut = True
                for i, s in enumerate(conns):
                    if sent[i] < share[i]:
                        share[i] = sent[i]
                        s.shutdown(socket.SHUT_WR)
                        sel.modify(s, selectors.EVENT_READ, i)
                        if got[i] == share[i]:
                            waiting -= 1
                if not waiting:
                    t1, c1 = time.perf_counter(), cpu_seconds()
            ready = sel.select(IO_TIMEOUT)
            if not ready:
                raise BenchError("no progress for %.0f s (sent %d, echoed %d bytes)" % (IO_TIMEOUT, sum(sent), sum(got)))
            for key, mask in ready:
                s, i = key.fileobj, key.data
                if mask & selectors.EVENT_WRITE and sent[i] < share[i]:
                    pos = sent[i] % PERIOD
                    k = min(CHUNK, share[i] - sent[i])
                    try:
                        sent[i] += s.send(memoryview(pats[i])[pos:pos + k])
                    except BlockingIOError:
                        pass
                    if sent[i] == share[i]:
                        s.shutdown(socket.SHUT_WR)
                        sel.modify(s, selectors.EVENT_READ, i)
                if not mask & selectors.EVENT_READ:
                    continue
                try:
                    k = s.recv_into(rview, CHUNK)
                except BlockingIOError:
                    continue
                if k == 0:
                    if got[i] != share[i]:
                        raise BenchError("connection %d: closed after echoing %d of %d bytes" % (i, got[i], share[i]))
                    sel.unregister(s)
                    open_ -= 1
                    continue
                if got[i] + k > sent[i]:
                    raise BenchError("connection %d: %d bytes echoed but only %d sent" % (i, got[i] + k, sent[i]))
                pos = got[i] % PERIOD
                want = pats[i][pos:pos + k]
                if buf[:k] != want:
                    j = first_difference(buf[:k], want)
                    raise BenchError("connection %d: MISMATCH: the echoed byte at offset %d is 0x%02x, "
                                     "0x%02x was sent" % (i, got[i] + j, buf[j], want[j]))
                got[i] += k
                if got[i] == share[i]:
                    waiting -= 1
                    if not waiting:
                        t1, c1 = time.perf_counter(), cpu_seconds()
    finally:
        sel.close()
        for s in conns:
            s.close()
    if t1 is None:  # nothing at all to echo after a cut
        t1, c1 = time.perf_counter(), cpu_seconds()
    total, secs = sum(got), t1 - t0
    emit(bytes=total, seconds="%.3f" % secs, mibps="%.1f" % (total / secs / 2**20), verified=1,
         complete=0 if cut else 1, cpu_pct="%.0f" % (100 * (c1 - c0) / secs))


# --- idle --------------------------------------------------------------------------
def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise BenchError("RLIMIT_NOFILE hard limit %d is below the %d descriptors needed "
                             "(raise it, e.g. ulimit -Hn)" % (hard, need))
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def idle(a):
    if a.conns < 1:
        raise BenchError("need --conns >= 1")
    raise_nofile(a.conns + 64)
    released = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: released.append(1))
    deadline = time.monotonic() + a.max_seconds
    conns = []
    c0, t0 = cpu_seconds(), time.perf_counter()
    try:
        for _ in range(a.conns):
            if time.monotonic() > deadline or released:
                raise BenchError("only %d of %d connections open at the time limit" % (len(conns), a.conns))
            s = connect(a)
            conns.append(s)
            s.sendall(b"x")
            if recv_exact(s, 1) != b"x":
                raise BenchError("echo lost on connection %d" % len(conns))
        t1, c1 = time.perf_counter(), cpu_seconds()
        emit(ready=1, conns=len(conns), seconds="%.3f" % (t1 - t0), cpu_pct="%.0f" % (100 * (c1 - c0) / (t1 - t0)))
        # Hold until released: stdin EOF (the caller closed its end, or
        # died), a signal, or the time limit.  Poll so a signal is seen soon.
        # (poll, not epoll: epoll refuses a stdin of /dev/null or a file.)
        sel = selectors.PollSelector()
        sel.register(sys.stdin.fileno(), selectors.EVENT_READ)
        while not released:
            if time.monotonic() > deadline:
                raise BenchError("still holding %d connections at the time limit" % len(conns))
            if sel.select(0.2) and not os.read(sys.stdin.fileno(), 4096):
                break
        sel.close()
    finally:
        for s in conns:
            s.close()
    emit(closed=len(conns))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["bulk", "echo", "ping", "setup", "idle"])
    p.add_argument("--target", type=hostport, required=True)
    p.add_argument("--socks", type=hostport)
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--bytes", type=int, default=1 << 30)
    p.add_argument("--down", action="store_true", help="bulk: server to client")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--size", type=int, default=1, help="ping: bytes per round trip")
    p.add_argument("--max-seconds", type=float, default=120)
    a = p.parse_args()
    if a.socks:
        try:
            socket.inet_aton(a.target[0])
        except OSError:
            p.error("--target must be an IPv4 address")
    try:
        {"bulk": bulk, "echo": echo, "ping": ping, "setup": setup, "idle": idle}[a.mode](a)
    except (OSError, BenchError) as e:
        print("loadgen %s: %s" % (a.mode, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
