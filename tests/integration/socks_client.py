#!/usr/bin/env python3
"""A raw SOCKS5 client (RFC 1928, RFC 1929) for reply-code tests.

    socks_client.py PROXY_HOST:PORT ADDR PORT [--cmd connect|bind|udp|N]
                    [--atyp auto|ipv4|domain|ipv6|N] [--user U --password P]
                    [--methods 00,02] [--timeout S] [--close-after-request]
                    [--raw HEX | --garbage N] [--send TEXT | --hold]

Prints one line and exits 0 when the proxy answered anything:
  0xNN         the REP field of the reply to the request
  method 0xNN  the proxy chose no method we offered (0xff) or another one
  auth 0xNN    RFC 1929 status (only printed when it is not 0x00)
  closed       the proxy closed the connection before answering
  timeout      no answer within --timeout seconds
  sent         --close-after-request: the request (or --raw bytes) was
               sent, then we closed
With --raw/--garbage the bytes are sent instead of a handshake and the answer
is printed as hex, or `closed`/`timeout`. With --send, after a 0x00 reply the
text is sent, the write side shut and the answer printed on a second line.
With --hold, after a 0x00 reply the connection stays open (no timeout) until
the proxy closes it; then `eof` (or `closed` after a reset) is printed.
Exit 1 when the proxy cannot be reached, 2 on usage errors.
"""

import argparse
import ipaddress
import os
import socket
import sys


class Closed(Exception):
    pass


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise Closed()
        buf += d
    return buf


def parse_int(text, names):
    t = text.lower()
    if t in names:
        return names[t]
    return int(t, 0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("proxy")
    p.add_argument("addr", nargs="?", default="0.0.0.0")
    p.add_argument("port", nargs="?", type=int, default=0)
    p.add_argument("--cmd", default="connect")
    p.add_argument("--atyp", default="auto")
    p.add_argument("--user")
    p.add_argument("--password", default="")
    p.add_argument("--methods", help="comma-separated hex method codes to offer")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--close-after-request", action="store_true")
    p.add_argument("--raw", help="send these hex bytes instead of a handshake")
    p.add_argument("--garbage", type=int, help="send N random bytes instead of a handshake")
    p.add_argument("--send", help="after a 0x00 reply, send this, shut down writing, print the answer")
    p.add_argument("--hold", action="store_true",
                   help="after a 0x00 reply, keep the connection open until the proxy closes it, then print eof")
    a = p.parse_args()

    host, _, port = a.proxy.rpartition(":")
    try:
        s = socket.create_connection((host, int(port)), timeout=a.timeout)
    except OSError as e:
        print("cannot reach proxy %s: %s" % (a.proxy, e), file=sys.stderr)
        return 1

    try:
        return run(s, a)
    except Closed:
        print("closed")
    except (ConnectionResetError, BrokenPipeError):
        print("closed")
    except socket.timeout:
        print("timeout")
    return 0


def run(s, a):
    if a.raw is not None or a.garbage is not None:
        data = bytes.fromhex(a.raw) if a.raw is not None else os.urandom(a.garbage)
        s.sendall(data)
        if a.close_after_request:
            s.close()
            print("sent")
            return 0
        ans = s.recv(4096)
        print(ans.hex() if ans else "closed")
        return 0

    if a.methods:
        methods = bytes(int(m, 16) for m in a.methods.split(","))
    else:
        methods = b"\x02" if a.user is not None else b"\x00"
    s.sendall(b"\x05" + bytes([len(methods)]) + methods)
    ver, method = recv_exact(s, 2)
    if ver != 5 or method not in methods:
        print("method 0x%02x" % method)
        return 0
    if method == 2:
        u = (a.user or "").encode()
        pw = a.password.encode()
        s.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(pw)]) + pw)
        _, status = recv_exact(s, 2)
        if status != 0:
            print("auth 0x%02x" % status)
            return 0

    cmd = parse_int(a.cmd, {"connect": 1, "bind": 2, "udp": 3})
    atyp = a.atyp.lower()
    if atyp == "auto":
        try:
            ip = ipaddress.ip_address(a.addr)
            atyp = "ipv4" if ip.version == 4 else "ipv6"
        except ValueError:
            atyp = "domain"
    if atyp == "ipv4":
        dst = b"\x01" + ipaddress.IPv4Address(a.addr).packed
    elif atyp == "ipv6":
        dst = b"\x04" + ipaddress.IPv6Address(a.addr).packed
    elif atyp == "domain":
        name = a.addr.encode()
        dst = b"\x03" + bytes([len(name)]) + name
    else:
        dst = bytes([int(atyp, 0)]) + socket.inet_aton(a.addr)
    s.sendall(b"\x05" + bytes([cmd, 0]) + dst + a.port.to_bytes(2, "big"))
    if a.close_after_request:
        s.close()
        print("sent")
        return 0

    ver, rep, _, ratyp = recv_exact(s, 4)
    print("0x%02x" % rep, flush=True)
    if rep != 0:
        return 0
    # consume the bound address, so --send starts at the data
    if ratyp == 1:
        recv_exact(s, 4 + 2)
    elif ratyp == 4:
        recv_exact(s, 16 + 2)
    elif ratyp == 3:
        recv_exact(s, recv_exact(s, 1)[0] + 2)
    if a.send is not None:
        s.sendall(a.send.encode())
        s.shutdown(socket.SHUT_WR)
        buf = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        print(buf.decode(errors="replace").strip())
    elif a.hold:
        s.settimeout(None)
        while s.recv(65536):
            pass
        print("eof")
    return 0


if __name__ == "__main__":
    sys.exit(main())
