"""A libtorrent partial seed announces to the tracker at argv[1].

A partial seed has every piece it wants and not all of the torrent: here a
two-file torrent with the second file deselected (priority 0), the first
complete on disk. libtorrent announces such a torrent with BEP 21's
event=paused (4 over UDP). A full seed of the same torrent announces first;
then the script prints "seeded <info hash hex>" and waits for a line on
stdin, while the test announces a downloader. The tracker sends a partial
seed downloaders only (nothing wanting nothing), so the partial seed's
reply must carry the downloader and not the seeder: one peer.

Prints "served <info hash hex>" once the partial seed's paused announce
was answered, then waits for a line on stdin (the test looks at the
tracker meanwhile, while every peer is still in the swarm). Exits
non-zero on a tracker error or after 50 s.
"""
import faulthandler
import os
import select
import shutil
import sys
import tempfile
import time

import libtorrent as lt

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
        "alert_mask": (c.error_notification | c.status_notification | c.tracker_notification),
    })
    # As in libtorrent_swarm.py: select on libtorrent's alert pipe rather
    # than wait_for_alert, whose returned alert can be freed under it.
    readable, writable = os.pipe()
    os.set_blocking(readable, False)
    os.set_blocking(writable, False)
    ses.set_alert_fd(writable)
    sessions.append((ses, readable))
    return ses


recent = []


def fail(why):
    print("recent alerts:", *recent[-40:], sep="\n  ")
    sys.exit(why)


def wait_for(ses, what, test):
    """Returns the first alert that passes test; fails on a tracker error
    or past the deadline."""
    readable = next(r for (x, r) in sessions if x is ses)
    while time.monotonic() < deadline:
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
    fail(f"{what}: timed out")


# Each file a whole number of pieces, so that no piece straddles the wanted
# file and the deselected one: such a piece would be wanted, fail its hash
# check for want of the missing file's bytes, and the torrent would never
# finish.
piece = 16 * 1024
seed_dir = tempfile.mkdtemp()
os.makedirs(os.path.join(seed_dir, "t"))
for name in ("wanted.bin", "deselected.bin"):
    with open(os.path.join(seed_dir, "t", name), "wb") as f:
        f.write(os.urandom(4 * piece))
fs = lt.file_storage()
lt.add_files(fs, os.path.join(seed_dir, "t"))
# v1 only: a hybrid torrent makes each client announce twice.
ct = lt.create_torrent(fs, piece, flags=lt.create_torrent.v1_only)
ct.add_tracker(tracker)
lt.set_piece_hashes(ct, seed_dir)
info = lt.torrent_info(ct.generate())
files = info.files()
priorities = [0 if files.file_path(i).endswith("deselected.bin") else 1 for i in range(files.num_files())]
if sorted(priorities) != [0, 1]:
    fail(f"unexpected files: {[files.file_path(i) for i in range(files.num_files())]}")

seeder = session()
seeder.add_torrent({"ti": info, "save_path": seed_dir})
a = wait_for(seeder, "seeder announce", lambda a: isinstance(a, lt.tracker_reply_alert))
print(f"seeder announced: {a.message()}")
print(f"seeded {info.info_hash()}")
sys.stdin.readline()  # the test announces a downloader meanwhile

partial_dir = tempfile.mkdtemp()
os.makedirs(os.path.join(partial_dir, "t"))
shutil.copy(os.path.join(seed_dir, "t", "wanted.bin"), os.path.join(partial_dir, "t"))
partial = session()
handle = partial.add_torrent({"ti": lt.torrent_info(info), "save_path": partial_dir,
                              "file_priorities": priorities})

# libtorrent 2.0.8 checks the files, finds the wanted one whole and sends
# its first announce as paused. Should a version send another event first,
# the torrent is made to announce again once finished, until it says paused.
paused_sent = False


def paused_answered(a):
    global paused_sent
    if isinstance(a, lt.tracker_announce_alert):
        paused_sent = a.event == lt.event_t.paused
        print(f"partial seed sends announce, event {int(a.event)} ({a.event})")
        return False
    if not isinstance(a, lt.tracker_reply_alert):
        return False
    if paused_sent:
        return True
    if handle.status().is_finished:
        handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
    return False


a = wait_for(partial, "partial seed announce", paused_answered)
st = handle.status()
print(f"partial seed answered: {a.message()}; finished {st.is_finished}, seeding {st.is_seeding}, "
      f"wanted {st.total_wanted_done}/{st.total_wanted} of {info.total_size()} bytes")
if not st.is_finished or st.is_seeding:
    fail("the torrent is not a partial seed")
if a.num_peers != 1:
    fail(f"the partial seed was sent {a.num_peers} peers; want the downloader alone, not the seeder")

print(f"served {info.info_hash()}")
sys.stdin.readline()
