#!/usr/bin/env python3
"""Write the seed inputs of tests/fuzz/fuzz_turn.c (see its header for the
record format, the transaction ids and the credentials) into the folder
given as the first argument: one file per thing a TURN server says."""
import hashlib
import hmac
import os
import struct
import sys
import zlib

MAGIC = 0x2112A442
KEY = hashlib.md5(b"user:realm:pass").digest()


def attr(t, v):
    return struct.pack("!HH", t, len(v)) + v + b"\0" * (-len(v) % 4)


def xaddr(ip, port, tid):
    a = bytes(int(x) for x in ip.split("."))
    x = bytes(b ^ m for b, m in zip(a, struct.pack("!I", MAGIC)))
    return struct.pack("!BBH", 0, 1, port ^ (MAGIC >> 16)) + x


def msg(mtype, tid, attrs, integrity=True):
    body = b"".join(attrs)
    if integrity:
        hdr = struct.pack("!HHI", mtype, len(body) + 24, MAGIC) + tid
        mac = hmac.new(KEY, hdr + body, hashlib.sha1).digest()
        body += attr(0x0008, mac)
    hdr = struct.pack("!HHI", mtype, len(body) + 8, MAGIC) + tid
    crc = (zlib.crc32(hdr + body) ^ 0x5354554E) & 0xFFFFFFFF
    body += attr(0x8028, struct.pack("!I", crc))
    return struct.pack("!HHI", mtype, len(body), MAGIC) + tid + body


def rec(op, data):
    return struct.pack("!BH", op, len(data)) + data


def tid(n):
    return bytes([n]) * 12


def error(code, reason):
    return attr(0x0009, struct.pack("!HBB", 0, code // 100, code % 100) + reason)


seeds = {
    # ChannelData on peer 0's channel, after its ChannelBind succeeded
    "channel-data": rec(0, msg(0x0109, tid(2), [])) +
    rec(0, b"\x40\x00\x00\x10" + b"q" * 16),
    # a Data indication from peer 1
    "data-indication": rec(0, msg(0x0017, b"\x99" * 12, [
        attr(0x0012, xaddr("198.51.100.2", 5000, None)),
        attr(0x0013, b"quic packet")], integrity=False)),
    # the Refresh answered, with a lifetime
    "refresh-success": rec(0, msg(0x0104, tid(5), [attr(0x000D, struct.pack("!I", 600))])),
    # 438 to peer 0's CreatePermission, then 401 to the Refresh
    "stale-nonce": rec(0, msg(0x0118, tid(1), [error(438, b"Stale Nonce"),
                                               attr(0x0014, b"realm"), attr(0x0015, b"nonce2")],
                              integrity=False)),
    "unauthorized": rec(0, msg(0x0114, tid(5), [error(401, b"Unauthorized"),
                                                attr(0x0014, b"realm"), attr(0x0015, b"nonce")],
                               integrity=False)),
    # 437 to the Refresh: the allocation is gone, then time passes
    "mismatch": rec(0, msg(0x0114, tid(5), [error(437, b"Allocation Mismatch")])) +
    rec(4, b"\x05"),
    # the transport sends before and after a channel, and a new peer
    "send": rec(3, b"x" * 1200) + rec(0, msg(0x0109, tid(2), [])) + rec(3, b"y" * 100) +
    rec(1, bytes([203, 0, 113, 9, 0x13, 0x88])) + rec(4, b"\xff"),
}
for name, data in seeds.items():
    with open(os.path.join(sys.argv[1], name + ".bin"), "wb") as f:
        f.write(data)
