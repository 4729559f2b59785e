#!/usr/bin/env bash
# Runs a trakx binary under nested systemd-socket-activate, which hands it a
# TCP and a UDP socket on one loopback port as trakx.socket does, and
# announces over both. Usage: test/socket-activation.sh PATH-TO-TRAKX
set -euo pipefail
trakx=$(realpath "${1:?usage: $0 PATH-TO-TRAKX}")
dir=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

# A port free for both TCP and UDP on loopback.
port=$(python3 - <<'PY'
import socket
for _ in range(50):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        continue
    print(p)
    break
PY
)

# The configured listeners point at port 1, which trakx could not bind:
# serving at all proves it used the inherited sockets.
cat > "$dir/trakx.toml" <<TOML
[udp]
listen = ["127.0.0.1:1"]
[http]
listen = ["127.0.0.1:1"]
[stats]
listen = ""
[database]
path = "$dir/peers.db"
TOML

# systemd-socket-activate, like systemd, starts the program on the first
# connection or datagram: the outer call waits for a TCP connection, the
# inner one for a datagram. The first HTTP request starts the chain.
systemd-socket-activate -l "127.0.0.1:$port" \
  systemd-socket-activate -d -l "127.0.0.1:$port" \
  "$trakx" -config "$dir/trakx.toml" 2>"$dir/log" &
pid=$!
for _ in $(seq 100); do
  grep -q 'Listening on' "$dir/log" 2>/dev/null && break
  sleep 0.1
done

announce_http() {
  curl -sS --max-time 10 "http://127.0.0.1:$port/announce?info_hash=socket-activation-ih&peer_id=-CU0001-00000000000$1&port=700$1&uploaded=0&downloaded=0&left=1&compact=1"
}
announce_http 1 >"$dir/first" &
first=$!

# A UDP peer (a seeder) announces (BEP 15); its datagrams start the inner
# call. Which of the two first requests trakx answers first is open.
python3 - "$port" <<'PY'
import socket, struct, sys, time
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
deadline = time.monotonic() + 10
while True:
    try:
        s.sendto(struct.pack(">QII", 0x41727101980, 0, 1), ("127.0.0.1", port))
        action, tx, conn = struct.unpack(">IIQ", s.recv(16))
        break
    except (ConnectionRefusedError, socket.timeout):
        if time.monotonic() > deadline:
            sys.exit("FAIL: no reply to a UDP connect")
assert (action, tx) == (0, 1), (action, tx)
s.settimeout(5)
req = struct.pack(">QII20s20sQQQIIIiH", conn, 1, 2, b"socket-activation-ih", b"-PY0001-000000000001",
                  0, 0, 0, 2, 0, 0, -1, 6881)
s.sendto(req, ("127.0.0.1", port))
reply = s.recv(2048)
action, tx, interval, leechers, seeders = struct.unpack(">IIIII", reply[:20])
assert (action, tx, seeders) == (1, 2, 1), (action, tx, seeders)
print(f"udp announce: interval {interval}, {seeders} seeder, {leechers} leecher")
PY

wait "$first"
if grep -aq '10:incompletei1e' "$dir/first"; then
  echo "http announce: answered once trakx started"
else
  echo "FAIL: first http reply: $(tr -d '\0' <"$dir/first")"; exit 1
fi
grep ' serving ' "$dir/log" | grep -q "udp 127.0.0.1:$port (inherited)" \
  || { echo "FAIL: no inherited UDP socket:"; cat "$dir/log"; exit 1; }
grep ' serving ' "$dir/log" | grep -q "http 127.0.0.1:$port (inherited)" \
  || { echo "FAIL: no inherited TCP socket:"; cat "$dir/log"; exit 1; }

announce_http 2 >"$dir/second"
if grep -aq '8:completei1e10:incompletei2e.*5:peers12:' "$dir/second"; then
  echo "http announce: sent both other peers"
else
  echo "FAIL: second http reply: $(tr -d '\0' <"$dir/second")"; exit 1
fi
echo "PASS: trakx served both inherited sockets"
