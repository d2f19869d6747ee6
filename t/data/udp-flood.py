#!/usr/bin/env python3
"""Hostile datagrams for a WHIP UDP port: what the open internet sends to it.

Usage: udp-flood.py HOST PORT SECONDS RATE [UFRAG...]

For SECONDS seconds, about RATE datagrams a second (0: as fast as it can), from a few
source ports, a mix of:
  - random bytes of random sizes (1 to 1500, and empty);
  - STUN Binding Requests with a USERNAME made from the given server ufrags (the
    sessions' own, from their answers) and a wrong MESSAGE-INTEGRITY, or none, or
    attributes whose lengths lie;
  - "DTLS" records (first byte 20-63): random, or a ClientHello header with lying lengths;
  - "RTP/RTCP" (first byte 128-191): random, with any payload type and SSRC.
Prints "sent N" at the end.
"""

import os
import random
import socket
import struct
import sys
import time

host, port, seconds, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
ufrags = sys.argv[5:] or ["nobody"]
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
rng = random.Random(7)


def stun():
    user = f"{rng.choice(ufrags)}:{os.urandom(4).hex()}".encode()
    attrs = b""
    pad = (4 - len(user) % 4) % 4
    attrs += struct.pack("!HH", 0x0006, len(user)) + user + b"\0" * pad
    kind = rng.randrange(4)
    if kind == 0:
        attrs += struct.pack("!HH", 0x0008, 20) + os.urandom(20)  # wrong MESSAGE-INTEGRITY
    elif kind == 1:
        attrs += struct.pack("!HH", 0x0024, 4) + os.urandom(4)  # PRIORITY, no integrity
    elif kind == 2:
        attrs += struct.pack("!HH", 0x0008, 0xFFFF) + os.urandom(8)  # a length that lies
    else:
        attrs += struct.pack("!HH", 0x8029, 8) + os.urandom(8)  # ICE-CONTROLLING only
    length = len(attrs) if rng.random() < 0.8 else rng.randrange(0, 2000)
    return struct.pack("!HHI12s", 0x0001, length & 0xFFFF, 0x2112A442, os.urandom(12)) + attrs


def dtls():
    if rng.random() < 0.5:
        return bytes([rng.randrange(20, 64)]) + os.urandom(rng.randrange(0, 300))
    # A handshake record claiming a ClientHello of some length.
    body = bytes([1]) + struct.pack("!I", rng.randrange(0, 1 << 24))[1:] + os.urandom(rng.randrange(0, 200))
    return struct.pack("!BHHHIH", 22, 0xFEFD, 0, 0, rng.randrange(0, 1 << 32), rng.randrange(0, 1 << 16)) + body


def rtp():
    return bytes([rng.randrange(128, 192), rng.randrange(0, 256)]) + os.urandom(rng.randrange(0, 1400))


def garbage():
    return os.urandom(rng.choice([0, 1, 2, 3, 20, rng.randrange(0, 1500)]))


makers = [garbage, stun, stun, dtls, rtp]
sent = 0
start = time.time()
end = start + seconds
while time.time() < end:
    pkt = rng.choice(makers)()
    try:
        rng.choice(socks).sendto(pkt, (host, port))
        sent += 1
    except OSError:
        pass
    if rate > 0:
        ahead = sent / rate - (time.time() - start)
        if ahead > 0:
            time.sleep(ahead)
print(f"sent {sent}", flush=True)
