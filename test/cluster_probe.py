#!/usr/bin/env python3
"""End-to-end propagation probe for test/cluster-compare.sh (issue 26).

Over and over for --duration seconds: announce a new peer (a seeder at
--probe-from, a port of its own) in a torrent of its own to node A, then
ask node C for that torrent's peers, every --interval seconds, from
--poll-from (a loopback address: the poller's own announces are loopback
peers, which no node publishes), until the probe's peer is in C's reply.
The sample is the time from sending the announce to A to receiving the
first reply of C's that names the peer: "an announce to node A is in node
C's replies". A peer not seen within --give-up seconds is a miss. Then a
random pause of up to --gap seconds, so that the probes do not keep step
with the publisher's 100 ms flushes.

Each probe is one UDP announce to A and a few light ones to C (a torrent
with two peers), one at a time: about 1/--interval requests a second to C.

Prints one line per sample (milliseconds) to --samples, and a summary:
PROBE samples=N missed=M errors=E p50_ms=... p99_ms=... max_ms=...

Usage: cluster_probe.py --announce-to 198.51.100.1:17201 --probe-from 198.51.100.9
           --poll 198.51.100.3:17203 --poll-from 127.0.0.1 --duration 30 --samples FILE
"""
import argparse
import hashlib
import math
import os
import random
import socket
import struct
import sys
import time

MAGIC = 0x41727101980
ACTION_CONNECT, ACTION_ANNOUNCE, ACTION_ERROR = 0, 1, 3
EVENT_NONE, EVENT_STARTED = 0, 2
RECONNECT = 60.0  # seconds; trakx accepts a connection id for 5 minutes


def hostport(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


class Tracker:
    """A BEP 15 client of one node, from one local address."""

    def __init__(self, target, source, timeout):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.sock.connect(target)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.conn_id = None
        self.conn_at = 0.0

    def _roundtrip(self, payload, tx):
        """Sends payload and returns the reply with transaction id tx, or None."""
        self.sock.send(payload)
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except (socket.timeout, ConnectionRefusedError):
                return None
            if len(data) >= 8 and struct.unpack_from(">I", data, 4)[0] == tx:
                return data

    def _connect(self):
        tx = random.getrandbits(32)
        data = self._roundtrip(struct.pack(">QII", MAGIC, ACTION_CONNECT, tx), tx)
        if data is None or len(data) < 16 or struct.unpack_from(">I", data)[0] != ACTION_CONNECT:
            return False
        self.conn_id = struct.unpack_from(">Q", data, 8)[0]
        self.conn_at = time.monotonic()
        return True

    def announce(self, info_hash, port, left, numwant, event):
        """Announces; returns the reply's peers as a set of (ip, port), or None."""
        if self.conn_id is None or time.monotonic() - self.conn_at > RECONNECT:
            if not self._connect():
                return None
        tx = random.getrandbits(32)
        peer_id = b"-PR0001-" + os.urandom(12)
        req = struct.pack(">QII20s20sQQQIIIiH", self.conn_id, ACTION_ANNOUNCE, tx, info_hash, peer_id,
                          0, left, 0, event, 0, random.getrandbits(32), numwant, port)
        data = self._roundtrip(req, tx)
        if data is None or len(data) < 20 or struct.unpack_from(">I", data)[0] != ACTION_ANNOUNCE:
            if data is not None and struct.unpack_from(">I", data)[0] == ACTION_ERROR:
                self.conn_id = None  # perhaps an expired connection id: connect again
            return None
        peers = set()
        for off in range(20, len(data) - 5, 6):
            peers.add((socket.inet_ntoa(data[off:off + 4]), struct.unpack_from(">H", data, off + 4)[0]))
        return peers


def quantile(sorted_ms, q):
    """Nearest-rank quantile."""
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, max(0, math.ceil(q * len(sorted_ms)) - 1))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--announce-to", required=True, type=hostport, help="node A, host:port (UDP)")
    ap.add_argument("--probe-from", required=True, help="the probe peers' address, local and not loopback")
    ap.add_argument("--poll", required=True, type=hostport, help="node C, host:port (UDP)")
    ap.add_argument("--poll-from", default="127.0.0.1", help="the poller's local address")
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--interval", type=float, default=0.005, help="seconds between polls of C")
    ap.add_argument("--give-up", type=float, default=5.0, help="seconds after which a probe is missed")
    ap.add_argument("--gap", type=float, default=0.05, help="most seconds of random pause between probes")
    ap.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for one reply")
    ap.add_argument("--samples", help="file for the samples, one per line, in ms")
    args = ap.parse_args()

    a = Tracker(args.announce_to, args.probe_from, args.timeout)
    c = Tracker(args.poll, args.poll_from, args.timeout)
    run = os.urandom(8).hex()
    samples, missed, errors, polls = [], 0, 0, 0
    out = open(args.samples, "w") if args.samples else None
    end = time.monotonic() + args.duration
    i = 0
    while time.monotonic() < end:
        i += 1
        info_hash = hashlib.sha1(f"trakx cluster probe {run} {i}".encode()).digest()
        port = 1024 + i % 64000
        t0 = time.monotonic()
        if a.announce(info_hash, port, 0, 0, EVENT_STARTED) is None:
            errors += 1
            continue
        seen = None
        next_poll = time.monotonic()
        while True:
            peers = c.announce(info_hash, 6881, 1, 50, EVENT_NONE)
            polls += 1
            now = time.monotonic()
            if peers is not None and (args.probe_from, port) in peers:
                seen = now - t0
                break
            if now - t0 > args.give_up:
                break
            next_poll += args.interval
            time.sleep(max(0.0, next_poll - time.monotonic()))
        if seen is None:
            missed += 1
            if out:
                print("missed", file=out)
        else:
            samples.append(seen * 1000)
            if out:
                print(f"{seen * 1000:.2f}", file=out)
        time.sleep(random.uniform(0, args.gap))
    if out:
        out.close()
    s = sorted(samples)
    print(f"PROBE samples={len(s)} missed={missed} errors={errors} polls={polls} "
          f"p50_ms={quantile(s, 0.5):.1f} p90_ms={quantile(s, 0.9):.1f} p99_ms={quantile(s, 0.99):.1f} "
          f"max_ms={(s[-1] if s else float('nan')):.1f}")
    return 0 if s else 1


if __name__ == "__main__":
    sys.exit(main())
