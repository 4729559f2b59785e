"""Two libtorrent sessions share a torrent through the tracker at argv[1].

The seeder announces first; the downloader must learn of it from the
tracker (DHT, LSD and peer exchange are off) and finish the download.
Prints one line per step; exits non-zero on failure or after 40 s.
"""
import hashlib
import os
import sys
import tempfile
import time

import libtorrent as lt

tracker = sys.argv[1]
deadline = time.monotonic() + 40


def session():
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.all_categories,
    })


def wait_for(ses, what, test):
    while time.monotonic() < deadline:
        ses.wait_for_alert(200)
        for a in ses.pop_alerts():
            if isinstance(a, lt.tracker_error_alert):
                sys.exit(f"{what}: tracker error: {a.message()}")
            if test(a):
                return a
    sys.exit(f"{what}: timed out")


seed_dir, leech_dir = tempfile.mkdtemp(), tempfile.mkdtemp()
payload = os.urandom(256 * 1024)
with open(os.path.join(seed_dir, "payload.bin"), "wb") as f:
    f.write(payload)
fs = lt.file_storage()
lt.add_files(fs, os.path.join(seed_dir, "payload.bin"))
ct = lt.create_torrent(fs)
ct.add_tracker(tracker)
lt.set_piece_hashes(ct, seed_dir)
info = lt.torrent_info(ct.generate())

seeder = session()
seeder.add_torrent({"ti": info, "save_path": seed_dir})
a = wait_for(seeder, "seeder announce", lambda a: isinstance(a, lt.tracker_reply_alert))
print(f"seeder announced: {a.message()}")

leecher = session()
handle = leecher.add_torrent({"ti": lt.torrent_info(info), "save_path": leech_dir})
a = wait_for(leecher, "leecher announce", lambda a: isinstance(a, lt.tracker_reply_alert))
print(f"leecher announced: {a.message()}")
if a.num_peers < 1:
    sys.exit(f"leecher was sent {a.num_peers} peers")

wait_for(leecher, "download", lambda a: isinstance(a, lt.torrent_finished_alert))
# "Finished" means every piece passed its hash check; libtorrent may still
# be writing the last of them out, so the file is compared until it matches.
want = hashlib.sha256(payload).digest()
while True:
    with open(os.path.join(leech_dir, "payload.bin"), "rb") as f:
        if hashlib.sha256(f.read()).digest() == want:
            break
    if time.monotonic() > deadline:
        sys.exit("downloaded payload differs")
    time.sleep(0.05)
print("leecher downloaded the payload from the seeder it found through the tracker")
