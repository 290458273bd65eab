#!/usr/bin/env python3
"""A scripted STUN Binding server for tests: it claims whatever mapped
address it is told to, so tests can play NATs that loopback cannot.

  stun_server.py --ready-file F [--host IP] [--mapped IP:PORT] [--change-after N]
                 [--error CODE] [--bad-fingerprint-first] [--stray-first]

--host: the address to listen on (default 127.0.0.1).
--mapped: the XOR-MAPPED-ADDRESS to report (default: the request's
source).  --change-after N: from the (N+1)th request on, report the
mapped port + 1.  --error CODE: answer every request with ERROR-CODE.
--bad-fingerprint-first: before each real answer, send one with the same
transaction id, mapped address 192.0.2.99 and a corrupted FINGERPRINT.  --stray-first: before each real answer, send a
response with a transaction id nobody asked for.  The port is written to
the ready file; requests answered are counted on stdout.
"""
import argparse
import os
import socket
import struct
import sys
import zlib

MAGIC = 0x2112A442


def attr(t, v):
    return struct.pack("!HH", t, len(v)) + v + b"\0" * (-len(v) % 4)


def xor_addr(ip, port, tid):
    raw = socket.inet_aton(ip)
    x = bytes(a ^ b for a, b in zip(raw, struct.pack("!I", MAGIC)))
    return struct.pack("!BBH", 0, 1, port ^ (MAGIC >> 16)) + x


def message(mtype, tid, attrs):
    body = b"".join(attrs)
    hdr = struct.pack("!HHI", mtype, len(body) + 8, MAGIC) + tid
    crc = zlib.crc32(hdr + body) ^ 0x5354554E
    return hdr + body + attr(0x8028, struct.pack("!I", crc & 0xFFFFFFFF))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--mapped")
    ap.add_argument("--change-after", type=int, default=0)
    ap.add_argument("--error", type=int, default=0)
    ap.add_argument("--bad-fingerprint-first", action="store_true")
    ap.add_argument("--stray-first", action="store_true")
    a = ap.parse_args()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.host, 0))
    with open(a.ready_file + ".tmp", "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    os.rename(a.ready_file + ".tmp", a.ready_file)
    n = 0
    while True:
        d, src = s.recvfrom(2048)
        if len(d) < 20 or struct.unpack("!H", d[:2])[0] != 0x0001:
            continue
        tid = d[8:20]
        n += 1
        if a.error:
            reason = b"scripted error"
            ec = struct.pack("!HBB", 0, a.error // 100, a.error % 100) + reason
            s.sendto(message(0x0111, tid, [attr(0x0009, ec)]), src)
            continue
        ip, port = src
        if a.mapped:
            ip, p = a.mapped.rsplit(":", 1)
            port = int(p)
        if a.change_after and n > a.change_after:
            port += 1
        ok = message(0x0101, tid, [attr(0x0020, xor_addr(ip, port, tid))])
        if a.stray_first:
            s.sendto(message(0x0101, os.urandom(12),
                             [attr(0x0020, xor_addr("192.0.2.66", 6, tid))]), src)
        if a.bad_fingerprint_first:
            bad = bytearray(message(0x0101, tid,
                                    [attr(0x0020, xor_addr("192.0.2.99", port, tid))]))
            bad[-1] ^= 0xFF
            s.sendto(bytes(bad), src)
        s.sendto(ok, src)
        print(n, flush=True)


if __name__ == "__main__":
    sys.exit(main())
