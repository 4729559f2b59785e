#!/usr/bin/env bash
# Memory per peer, trakx beside Debian's opentracker, the same fill over UDP
# for both: settled RSS minus the empty process's RSS, divided by peers.
#   - 10M IPv4 peers in 1M torrents x 10, with peak RSS (VmHWM) during the fill;
#   - 2M torrents x 1 peer: bytes per torrent;
#   - trakx alone: 10M IPv4 peers that expire, then 10M others (churn);
#   - trakx alone: 10M IPv6 peers (Debian's opentracker is built IPv4-only).
# Each tracker runs pinned to CPU 0, the generator (`trakx bench -fill`) to
# CPU 1. "Settled" is read 5 s after the fill ends.
#
# Usage: test/memory.sh [peers]   (default 10000000; needs opentracker, taskset)
# Writes its raw output to ${OUT:-/tmp/trakx-memory}.
set -euo pipefail
cd "$(dirname "$0")/.."
peers=${1:-10000000}
out=${OUT:-/tmp/trakx-memory}
mkdir -p "$out"
port=17075
stats=17076
source test/lib.sh

# start_tracker NAME [TRAKX TOML LINES...]
start_tracker() {
  local name=$1; shift
  case "$name" in
  trakx)
    { printf '[udp]\nlisten = ["127.0.0.1:%s", "[::1]:%s"]\n[http]\nlisten = []\n' "$port" "$port"
      printf '[stats]\nlisten = "127.0.0.1:%s"\n[database]\npath = "%s/peers.db"\nsave_interval = "0"\n' "$stats" "$out"
      printf '%s\n' "$@"; } > "$out/trakx.toml"
    rm -f "$out/peers.db"
    taskset -c 0 "$trakx" -config "$out/trakx.toml" 2>"$out/trakx.log" &
    ;;
  opentracker)
    taskset -c 0 opentracker -i 127.0.0.1 -P "$port" -w "$out/whitelist.txt" >"$out/opentracker.log" 2>&1 &
    ;;
  esac
  pid=$!
  sleep 1
  kill -0 "$pid" || { echo "$name did not start"; exit 1; }
  # The empty process's RSS is read once it holds still: opentracker
  # reads its whitelist after it starts, passing 100 MB on the way to
  # 40 MB, so a reading at one second could be anything in between.
  local prev= cur
  for _ in $(seq 30); do
    cur=$(kb "$pid" VmRSS)
    [ "$cur" = "$prev" ] && break
    prev=$cur; sleep 1
  done
}

kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
fill() { # TARGET PEERS TORRENTS [SEED]
  taskset -c 1 "$trakx" bench -target "$1" -fill "$2" -torrents "$3" -seed "${4:-1}" -workers 4 -inflight 64 >> "$out/fill.txt"
}
swarm_peers() { curl -s "http://127.0.0.1:$stats/debug/vars" | python3 -c 'import json,sys; print(json.load(sys.stdin)["trakx"]["swarm"]["peers"])'; }
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f", (a - b) * 1024 / n }'; }

declare -A r
torrents=$((peers / 10))
"$trakx" bench -hashes -torrents "$((peers / 5))" > "$out/whitelist.txt"
: > "$out/fill.txt"
for name in trakx opentracker; do
  start_tracker "$name"
  base=$(kb "$pid" VmRSS)
  fill 127.0.0.1:$port "$peers" "$torrents"
  sleep 5
  rss=$(kb "$pid" VmRSS); hwm=$(kb "$pid" VmHWM)
  r[$name,tenx]=$(per "$rss" "$base" "$peers")
  r[$name,hwm]=$(awk -v h="$hwm" -v s="$rss" 'BEGIN { printf "%.2f", h / s }')
  r[$name,rss]=$((rss / 1024))
  stop_tracker

  start_tracker "$name"
  base=$(kb "$pid" VmRSS)
  fill 127.0.0.1:$port "$((peers / 5))" "$((peers / 5))"
  sleep 5
  r[$name,single]=$(per "$(kb "$pid" VmRSS)" "$base" "$((peers / 5))")
  stop_tracker
done

# Churn: the first fill expires (peer_ttl 3m, swept every 11 s), then
# different peers (another seed: other torrents) fill it again.
start_tracker trakx '[tracker]' 'announce_interval = "2m"' 'min_interval = "1m"' 'peer_ttl = "3m"'
base=$(kb "$pid" VmRSS)
fill 127.0.0.1:$port "$peers" "$torrents" 1
sleep 5
first=$(per "$(kb "$pid" VmRSS)" "$base" "$(swarm_peers)")
for _ in $(seq 60); do [ "$(swarm_peers)" = 0 ] && break; sleep 5; done
empty_after=$(( $(kb "$pid" VmRSS) / 1024 ))
fill 127.0.0.1:$port "$peers" "$torrents" 2
sleep 15 # a sweep, which compacts
live=$(swarm_peers)
second=$(per "$(kb "$pid" VmRSS)" "$base" "$live")
stop_tracker

start_tracker trakx
base=$(kb "$pid" VmRSS)
fill "[::1]:$port" "$peers" "$torrents"
sleep 5
v6=$(per "$(kb "$pid" VmRSS)" "$base" "$peers")
stop_tracker

echo
echo "trakx $("$trakx" version | cut -d' ' -f2-) vs opentracker (Debian $(dpkg-query -W -f '${Version}' opentracker 2>/dev/null || echo '?')), $peers peers"
printf '%-50s %10s %12s %7s\n' "" trakx opentracker ratio
printf '%-50s %10s %12s %7s\n' "RSS bytes/peer, $((peers / 1000000))M IPv4 peers in $((torrents / 1000))k torrents x 10" "${r[trakx,tenx]}" "${r[opentracker,tenx]}" "$(ratio "${r[trakx,tenx]}" "${r[opentracker,tenx]}")"
printf '%-50s %10s %12s\n' "  RSS, MB" "${r[trakx,rss]}" "${r[opentracker,rss]}"
printf '%-50s %10s %12s\n' "  peak RSS (VmHWM) / settled RSS" "${r[trakx,hwm]}" "${r[opentracker,hwm]}"
printf '%-50s %10s %12s %7s\n' "RSS bytes/torrent, $((peers / 5000000))M torrents x 1 peer" "${r[trakx,single]}" "${r[opentracker,single]}" "$(ratio "${r[trakx,single]}" "${r[opentracker,single]}")"
printf '%-50s %10s\n' "churn: bytes/live peer, first fill" "$first"
printf '%-50s %10s\n' "churn: RSS once all had expired, MB" "$empty_after"
printf '%-50s %10s %12s\n' "churn: bytes/live peer, second fill after a sweep" "$second" "($(ratio "$second" "$first")x)"
printf '%-50s %10s\n' "RSS bytes/peer, $((peers / 1000000))M IPv6 peers" "$v6"
