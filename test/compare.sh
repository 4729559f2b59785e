#!/usr/bin/env bash
# Side-by-side comparison of trakx and Debian's opentracker on this machine.
# Each tracker in turn runs pinned to CPU 0, the load generator
# (`trakx bench`) pinned to CPU 1; the same seeds, torrents and mixes go to
# both. Prints responses/s, the tracker's CPU use, responses per second of
# tracker CPU and p99 latency, with ratios, for:
#   udp        10,000 torrents (Zipf 1.1), 10% scrapes of 5, 30% seeders,
#              4 sockets x 8 in flight
#   udp100k    100,000 torrents (torrent N*u^2), 10% scrapes of 10, 5%
#              connects, 20% seeders, 4 sockets x 64 in flight: a swarm
#              too big for the caches
#   http, keepalive   10,000 torrents, 16 connections
# All ask for 50 peers. Memory per peer is measured by test/memory.sh.
#
# Usage: test/compare.sh [seconds per run]      (needs opentracker, taskset)
# TRAKX=path runs that trakx binary as the tracker (an older build, to
# measure a change in the same run); the generator is always this tree's.
# CAP=N caps each tracker at N% of its core (the cgroup v1 cpu controller
# at /sys/fs/cgroup/cpu), so that the generator saturates it: capacity,
# where two cores cannot otherwise show it.
# Writes its raw output to ${OUT:-/tmp/trakx-compare}.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
out=${OUT:-/tmp/trakx-compare}
mkdir -p "$out"
port_trakx=17070
port_ot=17071
source test/lib.sh
tracker=${TRAKX:-$trakx}
nproc_=$(nproc)
[ "$nproc_" -ge 2 ] || { echo "needs two CPUs"; exit 1; }

torrents=10000
"$trakx" bench -hashes -torrents 1000000 > "$out/whitelist.txt" # a superset of every run's torrents


# cap_tracker PID: with CAP set, moves the tracker into a cgroup allowed
# CAP% of one CPU.
cap_tracker() {
  [ -n "${CAP:-}" ] || return 0
  local cg=/sys/fs/cgroup/cpu/trakx-compare
  mkdir -p "$cg"
  echo 100000 > "$cg/cpu.cfs_period_us"
  echo $((CAP * 1000)) > "$cg/cpu.cfs_quota_us"
  echo "$1" > "$cg/cgroup.procs"
}

start_tracker() { # name port
  case "$1" in
  trakx)
    cat > "$out/trakx.toml" <<TOML
[udp]
listen = ["127.0.0.1:$2"]
[http]
listen = ["127.0.0.1:$2"]
[stats]
listen = ""
[database]
path = "$out/peers.db"
save_interval = "0"
TOML
    rm -f "$out/peers.db"
    taskset -c 0 "$tracker" -config "$out/trakx.toml" 2>"$out/trakx.log" &
    ;;
  opentracker)
    taskset -c 0 opentracker -i 127.0.0.1 -p "$2" -P "$2" -w "$out/whitelist.txt" >"$out/opentracker.log" 2>&1 &
    ;;
  esac
  pid=$!
  cap_tracker "$pid"
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$1 did not start"; exit 1
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# run NAME PORT LABEL BENCH-ARGS...: one measurement; prints "rps cpu%".
run() {
  local name=$1 port=$2 label=$3; shift 3
  local t0 t1 start end
  t0=$(cpu_ticks "$pid"); start=$(date +%s.%N)
  taskset -c 1 "$trakx" bench -target "127.0.0.1:$port" -duration "${secs}s" -warmup 0s "$@" > "$out/$name-$label.txt"
  t1=$(cpu_ticks "$pid"); end=$(date +%s.%N)
  local rps p99
  rps=$(sed -n 's/^RESULT.* rps=\([0-9]*\).*/\1/p' "$out/$name-$label.txt")
  p99=$(sed -n 's/^RESULT.* p99_us=\([0-9]*\).*/\1/p' "$out/$name-$label.txt")
  local cpu
  cpu=$(awk -v a="$t0" -v b="$t1" -v s="$start" -v e="$end" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / (e - s) }')
  echo "$rps $cpu $p99"
}

declare -A result
for name in trakx opentracker; do
  port=$port_trakx; [ "$name" = opentracker ] && port=$port_ot
  start_tracker "$name" "$port"
  result[$name,udp]=$(run "$name" "$port" udp -protocol udp -torrents $torrents -workers 4 -inflight 8)
  result[$name,udp100k]=$(run "$name" "$port" udp100k -protocol udp -torrents 100000 -popularity square -scrapes 0.1 -scrape-size 10 -connects 0.05 -seeders 0.2 -workers 4 -inflight 64)
  result[$name,http]=$(run "$name" "$port" http -protocol http -torrents $torrents -workers 16)
  result[$name,keepalive]=$(run "$name" "$port" keepalive -protocol http -keepalive -torrents $torrents -workers 16)
  stop_tracker
done

per_cpu() { awk -v r="$1" -v c="$2" 'BEGIN { if (c > 0) printf "%.0f", r * 100 / c; else print "-" }'; }
echo
[ -n "${CAP:-}" ] && echo "each tracker capped at ${CAP}% of a core"
echo "trakx $("$tracker" version | cut -d' ' -f2-) vs opentracker (Debian $(dpkg-query -W -f '${Version}' opentracker 2>/dev/null || echo '?')), ${secs}s per run, $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
printf '%-34s %14s %14s %7s\n' "" trakx opentracker ratio
for kind in udp udp100k http keepalive; do
  read -r tr tc tp <<<"${result[trakx,$kind]}"
  read -r orr oc op <<<"${result[opentracker,$kind]}"
  label=$kind; [ "$kind" = udp100k ] && label="udp, 100k torrents"; [ "$kind" = http ] && label="http, new connections"; [ "$kind" = keepalive ] && label="http, keep-alive"
  printf '%-34s %14s %14s %7s\n' "$label: responses/s" "$tr" "$orr" "$(ratio "$tr" "$orr")"
  printf '%-34s %13s%% %13s%%\n' "  tracker CPU" "$tc" "$oc"
  printf '%-34s %14s %14s %7s\n' "  per tracker CPU-second" "$(per_cpu "$tr" "$tc")" "$(per_cpu "$orr" "$oc")" "$(ratio "$(per_cpu "$tr" "$tc")" "$(per_cpu "$orr" "$oc")")"
  printf '%-34s %12sµs %12sµs\n' "  p99 latency" "$tp" "$op"
done
