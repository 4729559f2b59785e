"""A small tracker client for the end-to-end test, standard library only.

  e2e_client.py udp PORT HASH PEER_PORT LEFT   announce over UDP (BEP 15)
  e2e_client.py http PORT HASH PEER_PORT LEFT  announce over HTTP (compact)
  e2e_client.py scrape PORT HASH               scrape over UDP

Announces print one line: "seeders=S leechers=L peers=ip:port,...";
a scrape prints "seeders=S completed=D leechers=L". The hash is any text,
padded to 20 bytes. Exits non-zero if the tracker does not answer.
"""
import socket
import struct
import sys
import time
import urllib.parse
import urllib.request

HOST = "127.0.0.1"


def info_hash(text):
    return text.encode().ljust(20, b"-")[:20]


def udp_exchange(sock, port, packet, tx):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            sock.sendto(packet, (HOST, port))
            reply = sock.recv(4096)
        except (socket.timeout, ConnectionRefusedError):
            continue
        action, rtx = struct.unpack(">II", reply[:8])
        if rtx != tx:
            continue
        if action == 3:
            sys.exit("tracker error: " + reply[8:].decode(errors="replace"))
        return action, reply
    sys.exit("no UDP reply from port %d" % port)


def udp_connect(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1)
    _, reply = udp_exchange(sock, port, struct.pack(">QII", 0x41727101980, 0, 1), 1)
    return sock, struct.unpack(">Q", reply[8:16])[0]


def peers_of(blob):
    return ",".join("%s:%d" % (socket.inet_ntoa(blob[i:i + 4]), struct.unpack(">H", blob[i + 4:i + 6])[0])
                    for i in range(0, len(blob), 6))


def udp_announce(port, name, peer_port, left):
    sock, conn = udp_connect(port)
    peer_id = ("-E2E001-%012d" % peer_port).encode()
    packet = struct.pack(">QII20s20sQQQIIIiH", conn, 1, 2, info_hash(name), peer_id, 0, left, 0, 2, 0, 0, -1, peer_port)
    _, reply = udp_exchange(sock, port, packet, 2)
    _, _, _, leechers, seeders = struct.unpack(">IIIII", reply[:20])
    print("seeders=%d leechers=%d peers=%s" % (seeders, leechers, peers_of(reply[20:])))


def udp_scrape(port, name):
    sock, conn = udp_connect(port)
    _, reply = udp_exchange(sock, port, struct.pack(">QII", conn, 2, 3) + info_hash(name), 3)
    seeders, completed, leechers = struct.unpack(">III", reply[8:20])
    print("seeders=%d completed=%d leechers=%d" % (seeders, completed, leechers))


def bdecode_int(body, key):
    marker = b"%d:%si" % (len(key), key.encode())
    start = body.index(marker) + len(marker)
    return int(body[start:body.index(b"e", start)])


def http_announce(port, name, peer_port, left):
    query = urllib.parse.urlencode({
        "info_hash": info_hash(name), "peer_id": "-E2E001-%012d" % peer_port, "port": peer_port,
        "uploaded": 0, "downloaded": 0, "left": left, "compact": 1, "event": "started",
    })
    with urllib.request.urlopen("http://%s:%d/announce?%s" % (HOST, port, query), timeout=15) as resp:
        body = resp.read()
    if body.startswith(b"d14:failure reason"):
        sys.exit("tracker failure: %r" % body)
    start = body.index(b"5:peers") + len(b"5:peers")
    colon = body.index(b":", start)
    n = int(body[start:colon])
    print("seeders=%d leechers=%d peers=%s" % (bdecode_int(body, "complete"), bdecode_int(body, "incomplete"),
                                                peers_of(body[colon + 1:colon + 1 + n])))


if __name__ == "__main__":
    cmd, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if cmd == "udp":
        udp_announce(port, name, int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "http":
        http_announce(port, name, int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "scrape":
        udp_scrape(port, name)
    else:
        sys.exit(__doc__)
