"""Two libtorrent sessions share a torrent through the tracker at argv[1].

The seeder announces first; the downloader must learn of it from the
tracker (DHT and local discovery are off, so a first peer can come from
nowhere else) and finish the download. Prints one line per step; exits
non-zero on failure or after 50 s.
"""
import faulthandler
import hashlib
import os
import select
import sys
import tempfile
import time

import libtorrent as lt

# Each step's line must survive a crash, and a crash must say where it was.
sys.stdout.reconfigure(line_buffering=True)
faulthandler.enable()

tracker = sys.argv[1]
deadline = time.monotonic() + 50


sessions = []


def session():
    c = lt.alert.category_t
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        # Only what this script reads or prints on failure.
        "alert_mask": (c.error_notification | c.status_notification | c.tracker_notification
                       | c.peer_notification | c.connect_notification),
    })
    # libtorrent writes to this pipe when alerts wait; select on it stands
    # in for wait_for_alert, whose returned alert can be freed under it by
    # libtorrent's threads: it crashed the interpreter 4 times in 160 runs.
    readable, writable = os.pipe()
    os.set_blocking(readable, False)
    os.set_blocking(writable, False)
    ses.set_alert_fd(writable)
    sessions.append((ses, readable))
    return ses


# The last alerts seen, printed when a step fails.
recent = []


def fail(why):
    print("recent alerts:", *recent[-40:], sep="\n  ")
    for i, (ses, _) in enumerate(sessions):
        pending = [f"{type(a).__name__}: {a.message()}" for a in ses.pop_alerts()]
        print(f"session {i}, alerts not yet read:", *pending[-40:], sep="\n  ")
    sys.exit(why)


def wait_for(ses, what, test, until=None):
    """Returns the first alert that passes test. Past until, it returns None;
    past the script's deadline, it fails."""
    readable = next(r for (x, r) in sessions if x is ses)
    while time.monotonic() < min(deadline, until or deadline):
        for a in ses.pop_alerts():
            recent.append(f"{what}: {type(a).__name__}: {a.message()}")
            if isinstance(a, lt.tracker_error_alert):
                fail(f"{what}: tracker error: {a.message()}")
            if test(a):
                return a
        select.select([readable], [], [], 0.2)
        try:
            os.read(readable, 4096)
        except BlockingIOError:
            pass
    if until is None or time.monotonic() >= deadline:
        fail(f"{what}: timed out")
    return None


seed_dir = tempfile.mkdtemp()
payload = os.urandom(256 * 1024)
with open(os.path.join(seed_dir, "payload.bin"), "wb") as f:
    f.write(payload)
fs = lt.file_storage()
lt.add_files(fs, os.path.join(seed_dir, "payload.bin"))
# A v1 torrent: a hybrid one makes each client announce twice, and the
# download would race the second announce.
ct = lt.create_torrent(fs, flags=lt.create_torrent.v1_only)
ct.add_tracker(tracker)
lt.set_piece_hashes(ct, seed_dir)
info = lt.torrent_info(ct.generate())

seeder = session()
seeder.add_torrent({"ti": info, "save_path": seed_dir})
a = wait_for(seeder, "seeder announce", lambda a: isinstance(a, lt.tracker_reply_alert))
print(f"seeder announced: {a.message()}")

# The tracker's part is the peer it hands the leecher. The download then
# proves that peer was the seeder's real address. On a busy machine
# libtorrent now and then drops that one connection and waits minutes to
# retry, so a stalled download gets a fresh leecher, at most three.
want = hashlib.sha256(payload).digest()
for attempt in range(1, 4):
    leech_dir = tempfile.mkdtemp()
    leecher = session()
    handle = leecher.add_torrent({"ti": lt.torrent_info(info), "save_path": leech_dir})
    a = wait_for(leecher, "leecher announce", lambda a: isinstance(a, lt.tracker_reply_alert))
    print(f"leecher {attempt} announced: {a.message()}")
    if a.num_peers < 1:
        fail(f"leecher was sent {a.num_peers} peers")
    stalled = time.monotonic() + 10
    if wait_for(leecher, "download", lambda a: isinstance(a, lt.torrent_finished_alert), until=stalled):
        break
    print(f"leecher {attempt}: the download from the seeder stalled; the peer connection, not the tracker, failed")
    leecher.remove_torrent(handle)
else:
    fail("no leecher could download from the seeder")

# "Finished" means every piece passed its hash check; libtorrent may still
# be writing the last of them out, so the file is compared until it matches.
while True:
    with open(os.path.join(leech_dir, "payload.bin"), "rb") as f:
        if hashlib.sha256(f.read()).digest() == want:
            break
    if time.monotonic() > deadline:
        fail("downloaded payload differs")
    time.sleep(0.05)
print("leecher downloaded the payload from the seeder it found through the tracker")
