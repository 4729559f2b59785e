#!/usr/bin/env bash
# trakx's WebSocket (WebTorrent) tracker beside the reference server (npm
# bittorrent-tracker's Server, Node.js), each in turn pinned to CPU 0 with
# the load generator (`trakx bench`) on CPU 1:
#   - announce round trips per second of tracker CPU: -workers WebSockets,
#     each announcing (without offers) one at a time over 100 torrents;
#   - memory per idle WebSocket peer: the tracker's RSS before and while
#     N peers (one connection and one announce each) are held open; and
#     the same for trakx's wss:// peers (TLS in the process, an ECDSA P-256
#     certificate made here), which the reference does not serve.
# Usage: test/ws-compare.sh [seconds] [idle peers, default 8000]   (needs taskset, node, openssl,
# npm ci in test/webtorrent). Raw output in ${OUT:-/tmp/trakx-ws-compare}.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
idle=${2:-8000}
out=${OUT:-/tmp/trakx-ws-compare}
mkdir -p "$out"
# Each side holds a descriptor per peer.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((idle + 1000)) ]; then
  ulimit -n $((idle + 1000)) 2>/dev/null || { echo "open files limit $(ulimit -n) is below $((idle + 1000)); give fewer idle peers"; exit 1; }
fi
make -s build
trakx=$PWD/bin/trakx
port=17090
hz=$(getconf CLK_TCK)
pid=
stop_tracker() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
trap stop_tracker EXIT

start() { # trakx | reference
  case "$1" in
  trakx)
    cat > "$out/trakx.toml" <<TOML
[udp]
listen = []
[http]
listen = ["127.0.0.1:$port"]
max_connections = $((idle + 1000))
[websocket]
max_connections = $((idle + 1000))
[stats]
listen = ""
[database]
path = "$out/peers.db"
save_interval = "0"
TOML
    rm -f "$out/peers.db"
    taskset -c 0 "$trakx" -config "$out/trakx.toml" 2>"$out/trakx.log" &
    ;;
  trakx-wss)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=tracker.test" \
      -keyout "$out/key.pem" -out "$out/cert.pem" 2>/dev/null
    cat > "$out/trakx.toml" <<TOML
[udp]
listen = []
[http]
listen = []
max_connections = $((idle + 1000))
[https]
listen = ["127.0.0.1:$port"]
cert = "$out/cert.pem"
key = "$out/key.pem"
[websocket]
max_connections = $((idle + 1000))
[stats]
listen = ""
[database]
path = "$out/peers.db"
save_interval = "0"
TOML
    rm -f "$out/peers.db"
    taskset -c 0 "$trakx" -config "$out/trakx.toml" 2>"$out/trakx.log" &
    ;;
  reference)
    taskset -c 0 node test/webtorrent/reference-server.mjs "$port" >"$out/reference.log" 2>&1 &
    ;;
  esac
  pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$1 did not start"; exit 1
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# idle NAME [BENCH-ARGS...]: bytes of RSS per idle peer of the tracker
# just started, with $idle peers held open.
idle() {
  local t=$1 before after bench; shift
  before=$(rss_kib "$pid")
  taskset -c 1 "$trakx" bench -ws-idle "$idle" -target "127.0.0.1:$port" -torrents 1000 -duration 30s "$@" > "$out/$t-idle.txt" &
  bench=$!
  for _ in $(seq 600); do grep -q ready "$out/$t-idle.txt" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$out/$t-idle.txt" || { echo "$t: idle peers not ready" >&2; exit 1; }
  sleep 5 # let each runtime settle (a Go GC, V8's) with the peers held
  after=$(rss_kib "$pid")
  echo "$t: RSS $before KiB idle, $after KiB with $idle WebSocket peers" >> "$out/memory.txt"
  kill "$bench" 2>/dev/null || true; wait "$bench" 2>/dev/null || true
  awk -v a="$after" -v b="$before" -v n="$idle" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }'
}

declare -A rps per_cpu cpu per_peer
for t in trakx reference; do
  start "$t"
  t0=$(cpu_ticks "$pid")
  taskset -c 1 "$trakx" bench -protocol ws -target "127.0.0.1:$port" -workers 32 -torrents 100 -duration "${secs}s" -warmup 0s > "$out/$t-rate.txt"
  t1=$(cpu_ticks "$pid")
  rps[$t]=$(sed -n 's/^RESULT.* rps=\([0-9]*\).*/\1/p' "$out/$t-rate.txt")
  cpu[$t]=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.0f", 100 * t / hz / s }')
  per_cpu[$t]=$(awk -v r="${rps[$t]}" -v c="${cpu[$t]}" 'BEGIN { printf "%.0f", r * 100 / c }')
  stop_tracker

  start "$t"
  per_peer[$t]=$(idle "$t")
  stop_tracker
done
start trakx-wss
per_peer[trakx-wss]=$(idle trakx-wss -protocol https)
stop_tracker

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
printf '%-44s %10s %12s %7s\n' "" trakx reference ratio
printf '%-44s %10s %12s %7s\n' "announces/s (32 WebSockets)" "${rps[trakx]}" "${rps[reference]}" "$(ratio "${rps[trakx]}" "${rps[reference]}")"
printf '%-44s %9s%% %11s%%\n' "  tracker CPU" "${cpu[trakx]}" "${cpu[reference]}"
printf '%-44s %10s %12s %7s\n' "  announces per tracker CPU-second" "${per_cpu[trakx]}" "${per_cpu[reference]}" "$(ratio "${per_cpu[trakx]}" "${per_cpu[reference]}")"
printf '%-44s %10s %12s %7s\n' "bytes per idle WebSocket peer ($idle)" "${per_peer[trakx]}" "${per_peer[reference]}" "$(ratio "${per_peer[trakx]}" "${per_peer[reference]}")"
printf '%-44s %10s %12s %7s\n' "bytes per idle wss:// peer, TLS in trakx" "${per_peer[trakx-wss]}" "" "$(ratio "${per_peer[trakx-wss]}" "${per_peer[reference]}")"
cat "$out/memory.txt"; rm -f "$out/memory.txt"
