#!/usr/bin/env bash
# The swarm store's memory at the default limits (tracker.max_peers
# 10,000,000 and tracker.max_torrents 2,000,000, both reached at once),
# measured rather than multiplied out (docs/benchmarks.md, "Memory at the
# default limits"). trakx runs on its default limits pinned to CPU 0 and
# is filled over UDP by `trakx bench -fill` pinned to CPU 1; each shape is
# read as settled RSS (5 s after the fill) and as that minus the empty
# process's RSS, before any expiry sweep has compacted the store (peer_ttl
# is 12h, so the first sweep is 45 minutes away): the most it holds.
# Shapes:
#   - 10M IPv4 peers in 2M torrents x 5;
#   - 10M IPv6 peers in 2M torrents x 5;
#   - the dearest shape by the store's size classes: 2M torrents, all but
#     1,207 of them with one IPv6 peer, and the other 8,001,207 IPv6 peers
#     in those 1,207 (6,629 or 6,630 each: the swarm size whose block,
#     rounded up to its class and with its hash index, costs the most per
#     peer).
#
# Usage: test/memory-bound.sh   (needs taskset, curl; about 5 minutes)
# Writes its raw output to ${OUT:-/tmp/trakx-memory-bound}.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/trakx-memory-bound}
mkdir -p "$out"
port=17083
stats=17084
make -s build
trakx=$PWD/bin/trakx
printf '[tracker]\npeer_ttl = "12h"\n[udp]\nlisten = ["127.0.0.1:%s", "[::1]:%s"]\n[http]\nlisten = []\n[stats]\nlisten = "127.0.0.1:%s"\n[database]\npath = "%s/peers.db"\nsave_interval = "0"\n' \
  "$port" "$port" "$stats" "$out" > "$out/trakx.toml"

pid=
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
trap stop EXIT
start() {
  rm -f "$out/peers.db"
  taskset -c 0 "$trakx" -config "$out/trakx.toml" 2>"$out/trakx.log" &
  pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$stats/debug/vars" >/dev/null && return
    sleep 0.1
  done
  echo "trakx did not start"; exit 1
}
kib() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
fill() { # TARGET PEERS TORRENTS SEED
  taskset -c 1 "$trakx" bench -target "$1" -fill "$2" -torrents "$3" -seed "$4" -workers 4 -inflight 64 | tee -a "$out/fill.txt"
}
swarm() { curl -s "http://127.0.0.1:$stats/debug/vars" | python3 -c 'import json,sys; s=json.load(sys.stdin)["trakx"]["swarm"]; print(s["peers"], s["torrents"], s["refused_peers"], s["refused_torrents"])'; }
report() { # NAME BASE_KIB
  local rss peers torrents rp rt
  rss=$(kib)
  read -r peers torrents rp rt < <(swarm)
  printf '%-44s %10s %9s %8s %10s %13s\n' "$1" "$peers" "$torrents" "$((rss / 1024))" "$(((rss - $2) / 1024))" "$rp/$rt" | tee -a "$out/report.txt"
}

: > "$out/fill.txt"
: > "$out/report.txt"
echo "trakx $("$trakx" version | cut -d' ' -f2-), default limits" | tee -a "$out/report.txt"
printf '%-44s %10s %9s %8s %10s %13s\n' shape peers torrents "RSS MiB" "- empty" "refused p/t" | tee -a "$out/report.txt"

start; base=$(kib)
fill 127.0.0.1:$port 10000000 2000000 1
sleep 5; report "10M IPv4 peers, 2M torrents x 5" "$base"; stop

start; base=$(kib)
fill "[::1]:$port" 10000000 2000000 1
sleep 5; report "10M IPv6 peers, 2M torrents x 5" "$base"; stop

start; base=$(kib)
fill "[::1]:$port" 1998793 1998793 1
fill "[::1]:$port" 8001207 1207 2
sleep 5; report "1,998,793 x 1 + 1,207 x 6,629 IPv6 peers" "$base"; stop
