#!/usr/bin/env python3
"""A tiny DNS server for tests: answers A queries for the names it is given (NAME=IPv4),
says "no such name" for others, and logs every question (one line: NAME TYPE).

Usage: dns-server.py PORT LOG NAME=IP...
"""

import socket
import struct
import sys

port, log = int(sys.argv[1]), sys.argv[2]
names = dict(arg.lower().split("=", 1) for arg in sys.argv[3:])

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", port))
print("ready", flush=True)

while True:
    data, peer = sock.recvfrom(4096)
    if len(data) < 12:
        continue
    ident, flags = struct.unpack("!HH", data[:4])
    labels, i = [], 12
    while i < len(data) and data[i]:
        labels.append(data[i + 1 : i + 1 + data[i]].decode("ascii", "replace"))
        i += 1 + data[i]
    qend = i + 5
    if qend > len(data):
        continue
    qtype = struct.unpack("!H", data[i + 1 : i + 3])[0]
    name = ".".join(labels).lower()
    with open(log, "a") as f:
        f.write(f"{name} {qtype}\n")
    question = data[12:qend]
    ip = names.get(name)
    if ip is None:
        reply = struct.pack("!HHHHHH", ident, 0x8183, 1, 0, 0, 0) + question
    elif qtype == 1:
        answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(ip)
        reply = struct.pack("!HHHHHH", ident, 0x8180, 1, 1, 0, 0) + question + answer
    else:
        reply = struct.pack("!HHHHHH", ident, 0x8180, 1, 0, 0, 0) + question
    sock.sendto(reply, peer)
