#!/usr/bin/env bash
# The per-IP budget under a flood (docs/benchmarks.md, "Abuse defences").
# trakx runs pinned to CPU 0 with limits.per_ip_rate = 100 and
# per_ip_burst = 20; the generator, pinned to CPU 1, floods UDP connects
# from 127.0.0.2 as fast as it can while a polite client at 127.0.0.3
# announces 10 times a second. Prints what each got answered, the
# flooder's share, and the tracker's CPU. Then one connect from each of
# 1,000,000 distinct addresses (127.1.0.0 onwards, set per packet with
# IP_PKTINFO), and the tracker's RSS before and after.
#
# Usage: test/flood.sh [seconds]          (needs taskset)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
out=${OUT:-/tmp/trakx-flood}
mkdir -p "$out"
port=17080
make -s build
trakx=$PWD/bin/trakx

cat > "$out/trakx.toml" <<TOML
[udp]
listen = ["127.0.0.1:$port"]
[http]
listen = []
[stats]
listen = "127.0.0.1:17081"
[database]
path = "$out/peers.db"
save_interval = "0"
[limits]
per_ip_rate = 100
per_ip_burst = 20
tracked_ips = 1000000
TOML
rm -f "$out/peers.db"
taskset -c 0 "$trakx" -config "$out/trakx.toml" 2>"$out/trakx.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf http://127.0.0.1:17081/debug/vars >/dev/null && break
  sleep 0.1
done

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

echo "== flood: 127.0.0.2 at full speed against 100 requests/s, polite 127.0.0.3 at 10/s, ${secs}s"
t0=$(cpu_ticks $pid)
taskset -c 1 "$trakx" bench -target 127.0.0.1:$port -duration "${secs}s" -flood 127.0.0.2 -client 127.0.0.3 -client-rate 10 | tee "$out/flood.txt"
t1=$(cpu_ticks $pid)
awk -v t=$((t1 - t0)) -v hz="$hz" -v s="$secs" 'BEGIN { printf "tracker CPU: %.0f%% of a core\n", 100 * t / hz / s }'
sent=$(awk '/^flooder / { print $4 }' "$out/flood.txt")
refused=$(curl -s http://127.0.0.1:17081/debug/vars | python3 -c 'import json,sys; print(json.load(sys.stdin)["trakx"]["refused"]["rate"])')
echo "trakx.refused.rate: $refused (flooder sent $sent)"

echo "== 1,000,000 distinct source addresses, one connect each"
before=$(rss_kib $pid)
t0=$(cpu_ticks $pid)
taskset -c 1 "$trakx" bench -target 127.0.0.1:$port -sources 1000000 | tee "$out/sources.txt"
t1=$(cpu_ticks $pid)
after=$(rss_kib $pid)
echo "tracker RSS: $before KiB before, $after KiB after: $(( (after - before) * 1024 / 1000000 )) bytes per source address"
awk -v t=$((t1 - t0)) -v hz="$hz" 'BEGIN { printf "tracker CPU for them: %.2f s\n", t / hz }'
