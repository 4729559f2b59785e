#!/usr/bin/env bash
# Memory per open HTTP connection (the README's http.max_connections
# figure; docs/benchmarks.md). trakx runs with http.read_timeout = "60s"
# pinned to CPU 0; a Python client opens N connections to it and, in mode
# "partial", sends each the start of a request line and no more, so that
# every one waits for the rest with part of a request buffered (the
# costliest state a connection the cap counts can be in, short of a reply
# being written); in mode "idle", sends each one keep-alive announce,
# reads the reply and stays connected (how proxies and keep-alive clients
# hold connections). Prints the tracker's RSS before and 5 s after all are
# open, and the difference per connection.
#
# Usage: test/http-connections.sh [connections] [partial|idle]   (default
#        8000 partial; needs taskset, curl, python3). Raw output in
#        ${OUT:-/tmp/trakx-http-conns}.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-8000}
mode=${2:-partial}
case $mode in partial | idle) ;; *) echo "mode must be partial or idle, not $mode"; exit 1 ;; esac
out=${OUT:-/tmp/trakx-http-conns}
mkdir -p "$out"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((n + 1000)) ]; then
  ulimit -n $((n + 1000)) 2>/dev/null || { echo "open files limit $(ulimit -n) is below $((n + 1000)); give fewer connections"; exit 1; }
fi
port=17085
stats=17086
make -s build
trakx=$PWD/bin/trakx
cat > "$out/trakx.toml" <<TOML
[udp]
listen = []
[http]
listen = ["127.0.0.1:$port"]
read_timeout = "60s"
max_connections = $((n + 1000))
[stats]
listen = "127.0.0.1:$stats"
[database]
path = "$out/peers.db"
save_interval = "0"
TOML
rm -f "$out/peers.db"
pid= client=
stop() {
  for p in $client $pid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  pid= client=
}
trap stop EXIT
taskset -c 0 "$trakx" -config "$out/trakx.toml" 2>"$out/trakx.log" &
pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$stats/debug/vars" >/dev/null && break
  sleep 0.1
done
kib() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
conns() { curl -s "http://127.0.0.1:$stats/debug/vars" | python3 -c 'import json,sys; print(json.load(sys.stdin)["trakx"]["http"]["connections"])'; }
sleep 2
before=$(kib)
taskset -c 1 python3 - "$port" "$n" "$mode" > "$out/client.txt" <<'PY' &
import socket, sys, time
port, n, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    if mode == "partial":
        s.sendall(b"GET /announce?info_hash=")
    else:
        s.sendall(b"GET /announce?info_hash=idle-connections-xy%%%02x&peer_id=-PY0001-%012d&port=%d&left=1&compact=1 HTTP/1.1\r\nHost: t\r\n\r\n"
                  % (i % 256, i, 1024 + i % 60000))
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.endswith(b"e"):
            chunk = s.recv(4096)
            if not chunk:
                sys.exit("connection %d closed before its reply: %r" % (i, reply))
            reply += chunk
        if not reply.startswith(b"HTTP/1.1 200"):
            sys.exit("connection %d: %r" % (i, reply))
    socks.append(s)
print("ready", flush=True)
time.sleep(3600)
PY
client=$!
for _ in $(seq 600); do grep -q ready "$out/client.txt" && break; sleep 0.1; done
sleep 5
open=$(conns)
after=$(kib)
echo "trakx $("$trakx" version | cut -d' ' -f2-): $open HTTP connections open (of $n), $mode"
echo "RSS before: $((before / 1024)) MB, with them open: $((after / 1024)) MB"
awk -v a="$after" -v b="$before" -v n="$open" 'BEGIN { printf "RSS per open connection: %.1f KiB\n", (a - b) / n }'
