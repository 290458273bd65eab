#!/usr/bin/env python3
"""Small TCP servers (and a data generator) for the integration tests.

    sink.py MODE [ARGS] [--host H] [--port P] [--ready-file F] [--out F]

Modes (each serves any number of connections, one thread each):
  sink               read everything; when the peer closes, print and append
                     "SHA256 BYTES" to --out
  source N SEED      send N deterministic bytes (see `gen`), then close; print
                     "SHA256 N" at start (and write it to --out)
  echo               send back what arrives; half-close after the peer's FIN
  digest             read until the peer's FIN, then answer "SHA256 BYTES\\n"
                     and close (checks that half-close works both ways)
  http DIR           HTTP/1.1: GET serves files of DIR; PUT/POST bodies are
                     hashed, "SHA256 BYTES" appended to --out and answered
  slow               a slow reader: --chunk bytes every --interval s for
                     --slow-seconds (0 = for ever), then at full speed;
                     records like `sink`
  gen N SEED         no server: write the N bytes of `source` to stdout

--port 0 picks a free port; --ready-file gets the port number once the
server listens. SIGTERM/SIGINT stop the server with status 0.
"""

import argparse
import hashlib
import http.server
import os
import random
import signal
import socket
import socketserver
import sys
import threading
import time

CHUNK = 1 << 20
LOCK = threading.Lock()
ARGS = None


def gen_chunks(n, seed):
    """N deterministic pseudo-random bytes from SEED, in chunks."""
    rng = random.Random(seed)
    left = n
    while left > 0:
        k = min(CHUNK, left)
        yield rng.randbytes(k)
        left -= k


def record(line):
    """Print a result line and append it to --out."""
    with LOCK:
        print(line, flush=True)
        if ARGS.out:
            with open(ARGS.out, "a", encoding="ascii") as f:
                f.write(line + "\n")


def read_all(sock, chunk=CHUNK, interval=0.0, slow_for=0.0):
    h = hashlib.sha256()
    total = 0
    start = time.monotonic()
    while True:
        slow = interval > 0 and (slow_for <= 0 or time.monotonic() - start < slow_for)
        try:
            data = sock.recv(chunk if slow else CHUNK)
        except ConnectionResetError:
            record("reset %d" % total)
            return None, total
        if not data:
            break
        h.update(data)
        total += len(data)
        if slow:
            time.sleep(interval)
    return h.hexdigest(), total


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        mode = ARGS.mode
        try:
            if mode == "sink":
                digest, total = read_all(s)
                if digest:
                    record("%s %d" % (digest, total))
            elif mode == "slow":
                digest, total = read_all(s, ARGS.chunk, ARGS.interval, ARGS.slow_seconds)
                if digest:
                    record("%s %d" % (digest, total))
            elif mode == "source":
                for c in gen_chunks(ARGS.n, ARGS.seed):
                    s.sendall(c)
                s.shutdown(socket.SHUT_WR)
                # wait for the client's FIN so the last bytes are not lost to a RST
                s.settimeout(30)
                while s.recv(CHUNK):
                    pass
            elif mode == "echo":
                while True:
                    data = s.recv(CHUNK)
                    if not data:
                        break
                    s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            elif mode == "digest":
                digest, total = read_all(s)
                if digest:
                    s.sendall(("%s %d\n" % (digest, total)).encode())
                    s.shutdown(socket.SHUT_WR)
                    record("%s %d" % (digest, total))
        except OSError as e:
            print("connection error: %s" % e, file=sys.stderr, flush=True)


def one_line_error(self, request, client_address):
    """A client that went away is worth one line, not a traceback."""
    print("connection from %s:%d: %s" % (client_address[0], client_address[1], sys.exc_info()[1]),
          file=sys.stderr, flush=True)


class TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 256
    handle_error = one_line_error


class HTTPHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __init__(self, *a, **kw):
        super().__init__(*a, directory=ARGS.dir, **kw)

    def log_message(self, fmt, *a):
        sys.stderr.write("http: " + (fmt % a) + "\n")

    def _body(self):
        h = hashlib.sha256()
        total = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    data = self.rfile.read(min(CHUNK, left))
                    if not data:
                        raise ConnectionError("short chunk")
                    h.update(data)
                    total += len(data)
                    left -= len(data)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                data = self.rfile.read(min(CHUNK, left))
                if not data:
                    raise ConnectionError("short body: %d bytes missing" % left)
                h.update(data)
                total += len(data)
                left -= len(data)
        return h.hexdigest(), total

    def do_PUT(self):
        digest, total = self._body()
        line = "%s %d" % (digest, total)
        record(line)
        body = (line + "\n").encode()
        self.send_response(201)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT


class HTTPServer(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 256
    handle_error = one_line_error


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["sink", "source", "echo", "digest", "http", "slow", "gen"])
    p.add_argument("rest", nargs="*", help="N SEED for source/gen, DIR for http")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ready-file")
    p.add_argument("--out")
    p.add_argument("--chunk", type=int, default=1, help="slow: bytes per read")
    p.add_argument("--interval", type=float, default=0.01, help="slow: seconds between reads")
    p.add_argument("--slow-seconds", type=float, default=0, help="slow: then full speed (0 = never)")
    ARGS = p.parse_args()

    if ARGS.mode in ("source", "gen"):
        if len(ARGS.rest) != 2:
            p.error("%s needs N SEED" % ARGS.mode)
        ARGS.n, ARGS.seed = int(ARGS.rest[0]), int(ARGS.rest[1])
    elif ARGS.mode == "http":
        if len(ARGS.rest) != 1:
            p.error("http needs DIR")
        ARGS.dir = ARGS.rest[0]
    elif ARGS.rest:
        p.error("unexpected arguments: %s" % " ".join(ARGS.rest))

    if ARGS.mode == "gen":
        out = sys.stdout.buffer
        for c in gen_chunks(ARGS.n, ARGS.seed):
            out.write(c)
        out.flush()
        return 0

    if ARGS.mode == "source":
        h = hashlib.sha256()
        for c in gen_chunks(ARGS.n, ARGS.seed):
            h.update(c)
        record("%s %d" % (h.hexdigest(), ARGS.n))

    server_cls, handler = (HTTPServer, HTTPHandler) if ARGS.mode == "http" else (TCPServer, Handler)
    srv = server_cls((ARGS.host, ARGS.port), handler)

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    port = srv.server_address[1]
    if ARGS.ready_file:
        tmp = ARGS.ready_file + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write("%d\n" % port)
        os.rename(tmp, ARGS.ready_file)
    print("listening on %s:%d (%s)" % (ARGS.host, port, ARGS.mode), file=sys.stderr, flush=True)
    srv.serve_forever(poll_interval=0.1)
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
