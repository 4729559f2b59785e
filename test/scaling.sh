#!/usr/bin/env bash
# How trakx's UDP throughput and memory change with the number of torrents
# (10k, 100k, 1M) and with one or two cores. The generator (`trakx bench`)
# runs on CPU 1; with two cores trakx shares that CPU with it, so the
# two-core figure is a lower bound on a machine with a third core free.
# Usage: test/scaling.sh [seconds per run]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
out=${OUT:-/tmp/trakx-scaling}
mkdir -p "$out"
make -s build
trakx=$PWD/bin/trakx
port=17072
cat > "$out/trakx.toml" <<TOML
[udp]
listen = ["127.0.0.1:$port"]
[http]
listen = []
[stats]
listen = ""
[database]
path = "$out/peers.db"
save_interval = "0"
TOML
pid=
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
trap stop EXIT
rss_mb() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

printf '%-10s %-6s %12s %10s %10s %8s\n' torrents cores responses/s p99_us peers RSS_MB
for torrents in 10000 100000 1000000; do
  for cpus in 0 0,1; do
    rm -f "$out/peers.db"
    taskset -c "$cpus" "$trakx" -config "$out/trakx.toml" 2>"$out/trakx.log" &
    pid=$!
    sleep 0.5
    # A swarm of ten peers a torrent first, then the measured mix.
    taskset -c 1 "$trakx" bench -target "127.0.0.1:$port" -fill $((torrents * 10)) -torrents "$torrents" -workers 4 >/dev/null
    taskset -c 1 "$trakx" bench -target "127.0.0.1:$port" -duration "${secs}s" -torrents "$torrents" -workers 4 -inflight 8 > "$out/run.txt"
    rps=$(sed -n 's/^RESULT.* rps=\([0-9]*\).*/\1/p' "$out/run.txt")
    p99=$(sed -n 's/^RESULT.* p99_us=\([0-9]*\).*/\1/p' "$out/run.txt")
    ncores=$(tr ',' '\n' <<<"$cpus" | wc -l)
    printf '%-10s %-6s %12s %10s %10s %8s\n' "$torrents" "$ncores" "$rps" "$p99" "$((torrents * 10))+" "$(rss_mb "$pid")"
    stop
  done
done
