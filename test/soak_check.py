"""Scrapes the witness torrents of a soak test over UDP and checks that each
holds exactly the peers `trakx bench -fill` put there.

  soak_check.py PORT SEED TORRENTS PEERS

Fill puts peer j in torrent j % TORRENTS; even j are seeders (left=0). Exits non-zero
naming the first torrent that differs.
"""
import hashlib
import socket
import struct
import sys

port, seed, torrents, peers = (int(a) for a in sys.argv[1:5])


def info_hash(i):
    return hashlib.sha1(struct.pack(">qq", seed, i)).digest()


s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)


def exchange(packet, tx):
    for _ in range(20):
        s.sendto(packet, ("127.0.0.1", port))
        try:
            while True:
                reply = s.recv(4096)
                if struct.unpack(">I", reply[4:8])[0] == tx:
                    return reply
        except socket.timeout:
            continue
    sys.exit("FAIL: no reply from the tracker")


conn = struct.unpack(">Q", exchange(struct.pack(">QII", 0x41727101980, 0, 1), 1)[8:16])[0]
bad = 0
for start in range(0, torrents, 74):
    ids = list(range(start, min(start + 74, torrents)))
    tx = 100 + start
    reply = exchange(struct.pack(">QII", conn, 2, tx) + b"".join(info_hash(i) for i in ids), tx)
    if struct.unpack(">I", reply[:4])[0] != 2:
        sys.exit("FAIL: scrape refused: %r" % reply[8:])
    for k, i in enumerate(ids):
        seeders, _, leechers = struct.unpack(">III", reply[8 + 12 * k:20 + 12 * k])
        total = len(range(i, peers, torrents))
        want_seeders = len([j for j in range(i, peers, torrents) if j % 2 == 0])
        if (seeders, leechers) != (want_seeders, total - want_seeders):
            bad += 1
            if bad <= 5:
                print("torrent %d: %d seeders %d leechers, want %d and %d" % (i, seeders, leechers, want_seeders, total - want_seeders))
if bad:
    sys.exit("FAIL: %d of %d witness torrents lost peers" % (bad, torrents))
print("all %d witness peers in %d torrents present" % (peers, torrents))
