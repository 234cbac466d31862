#!/usr/bin/env python3
"""A tiny authoritative DNS server over UDP for scripts/spamcheck.sh.

    zone_dns.py PORT ZONEFILE

Answers A, MX, TXT and PTR queries from ZONEFILE, lines of
`name type value` (`news.example.cn A 203.0.113.25`, `news.example.cn MX
mail.news.example.cn`, `_dmarc.news.example.cn TXT v=DMARC1; p=reject`);
every other name gets NXDOMAIN at once (so DNS blocklists say "not listed"
instead of timing out). The file is read again when it changes, so one
server can answer for an empty zone, then for a full one. It lets a local rspamd check SPF, DKIM, DMARC and
the sender's host names as a receiver on the Internet would, when the
site has published them. Listens on 127.0.0.1 only; not for anything else.
"""

import os
import socket
import struct
import sys

TYPES = {"A": 1, "PTR": 12, "MX": 15, "TXT": 16}


def read_zone(path):
    zone = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, rtype, value = line.split(None, 2)
            zone.setdefault((name.lower().rstrip("."), TYPES[rtype]), []).append(value)
    return zone


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def rdata(rtype, value):
    if rtype == 1:
        return socket.inet_aton(value)
    if rtype in (12,):
        return encode_name(value)
    if rtype == 15:
        return struct.pack("!H", 10) + encode_name(value)
    data = value.encode("utf-8")
    chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    return b"".join(bytes([len(c)]) + c for c in chunks)


def question(packet):
    """The question's name, type and the offset just after it."""
    labels, at = [], 12
    while packet[at]:
        n = packet[at]
        labels.append(packet[at + 1 : at + 1 + n].decode("ascii", "replace"))
        at += 1 + n
    qtype, _ = struct.unpack("!HH", packet[at + 1 : at + 5])
    return ".".join(labels).lower(), qtype, at + 5


def answer(packet, zone):
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1:
        return None
    name, qtype, end = question(packet)
    values = zone.get((name, qtype), [])
    known = any(n == name for n, _ in zone)
    rcode = 0 if known else 3
    header = struct.pack(
        "!HHHHHH", ident, 0x8400 | (flags & 0x0100) | rcode, 1, len(values), 0, 0
    )
    body = packet[12:end]
    for value in values:
        data = rdata(qtype, value)
        body += struct.pack("!HHHIH", 0xC00C, qtype, 1, 300, len(data)) + data
    return header + body


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    stamp, zone = None, {}
    while True:
        packet, peer = sock.recvfrom(4096)
        now = os.stat(path).st_mtime_ns
        if now != stamp:
            stamp, zone = now, read_zone(path)
        try:
            reply = answer(packet, zone)
        except (IndexError, struct.error, UnicodeError):
            reply = None
        if reply:
            sock.sendto(reply, peer)


if __name__ == "__main__":
    main()
