#!/usr/bin/env bash
# What a full scrape costs a loaded tracker. trakx runs pinned to CPU 0
# with http.full_scrape on (default interval, 1 minute) and N torrents of
# one peer each (default 2,000,000, filled over UDP); the generator and
# the full-scrape client run on CPU 1. Then, alternately, S seconds of UDP
# announces over those torrents alone, and S seconds of the same while a
# client fetches one full scrape a second (gzip, as scrapers ask; each
# reply is read whole). Prints announces per tracker CPU-second of each
# run and their ratio, the full scrape's size, and the tracker's RSS before
# the first full scrape and while the snapshot is held. S should be at
# least 60, so that the with-full-scrape runs include the snapshot's
# rebuilds (once per interval) in their share.
#
# Usage: test/fullscrape-load.sh [seconds per run, default 60] [torrents]
# Writes its raw output to ${OUT:-/tmp/trakx-fullscrape-load}.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
torrents=${2:-2000000}
out=${OUT:-/tmp/trakx-fullscrape-load}
rm -rf "$out"
mkdir -p "$out"
make -s build
trakx=$PWD/bin/trakx
command -v curl >/dev/null || { echo "needs curl"; exit 1; }
port=17085
pid=
scraper=
stop_all() {
  [ -n "$scraper" ] && { kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; }
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  return 0
}
trap stop_all EXIT

cat > "$out/trakx.toml" <<TOML
[tracker]
max_torrents = $((torrents * 2))
[udp]
listen = ["127.0.0.1:$port"]
[http]
listen = ["127.0.0.1:$port"]
full_scrape = true
[stats]
listen = ""
[database]
path = "$out/peers.db"
save_interval = "0"
TOML
taskset -c 0 "$trakx" -config "$out/trakx.toml" 2>"$out/trakx.log" &
pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
taskset -c 1 "$trakx" bench -target "127.0.0.1:$port" -fill "$torrents" -torrents "$torrents" | tee "$out/fill.txt"

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
fetch() { curl -s -H 'Accept-Encoding: gzip' -o "$1" -w '%{http_code} %{size_download}\n' "http://127.0.0.1:$port/scrape"; }

rss_before=$(rss_kib)
read -r code bytes <<<"$(fetch "$out/full.gz")"
[ "$code" = 200 ] || { echo "the full scrape answered $code"; exit 1; }
plain=$(gzip -dc "$out/full.gz" | wc -c)
rss_held=$(rss_kib)

# scrape_every_second: one full scrape a second, each read whole.
scrape_every_second() {
  local i=0
  while [ "$i" -lt $((secs + 5)) ]; do
    taskset -c 1 curl -s -H 'Accept-Encoding: gzip' -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$port/scrape" >> "$out/scrapes.txt" &
    sleep 1
    i=$((i + 1))
  done
  wait
}

# run LABEL: S seconds of UDP announces; prints announces per CPU-second.
run() {
  local t0 t1 rps
  t0=$(cpu_ticks)
  taskset -c 1 "$trakx" bench -protocol udp -target "127.0.0.1:$port" -torrents "$torrents" -scrapes 0 -workers 4 -inflight 8 \
    -duration "${secs}s" -warmup 0s > "$out/$1.txt"
  t1=$(cpu_ticks)
  rps=$(sed -n 's/^RESULT.* rps=\([0-9]*\).*/\1/p' "$out/$1.txt")
  awk -v r="$rps" -v s="$secs" -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f %.0f", r * s / (t / hz), 100 * t / hz / s }'
}

declare -A per_cpu cpu
for round in 1 2; do
  read -r per_cpu[alone$round] cpu[alone$round] <<<"$(run "alone$round")"
  scrape_every_second &
  scraper=$!
  read -r per_cpu[full$round] cpu[full$round] <<<"$(run "full$round")"
  kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; scraper=
done
rss_end=$(rss_kib)
served=$(grep -c '^200$' "$out/scrapes.txt" || true)
other=$(grep -vc '^200$' "$out/scrapes.txt" || true)

echo
echo "trakx $("$trakx" version | cut -d' ' -f2-), $torrents torrents of one peer, ${secs}s per run, tracker on CPU 0, load on CPU 1"
echo "full scrape: $bytes bytes gzip, $plain plain; RSS $rss_before KiB before the first, $rss_held KiB once it was served, $rss_end KiB after the runs (whose announces add peers)"
printf '%-44s %12s %12s\n' "" "round 1" "round 2"
printf '%-44s %12s %12s\n' "UDP announces per tracker CPU-second" "${per_cpu[alone1]}" "${per_cpu[alone2]}"
printf '%-44s %12s %12s\n' "  the same, one full scrape a second" "${per_cpu[full1]}" "${per_cpu[full2]}"
printf '%-44s %11s%% %11s%%\n' "  tracker CPU alone / with full scrapes" "${cpu[alone1]}/${cpu[full1]}" "${cpu[alone2]}/${cpu[full2]}"
awk -v a1="${per_cpu[alone1]}" -v a2="${per_cpu[alone2]}" -v f1="${per_cpu[full1]}" -v f2="${per_cpu[full2]}" \
  'BEGIN { printf "%-44s %12.3f %12.3f   (both rounds: %.3f)\n", "  with / alone", f1 / a1, f2 / a2, (f1 + f2) / (a1 + a2) }'
echo "full scrapes served: $served (200), other answers: $other"
