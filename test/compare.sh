#!/usr/bin/env bash
# Side-by-side comparison of trakx, Debian's opentracker and the kernel's
# floor on this machine. Each tracker in turn runs pinned to CPU 0, the load
# generator (`trakx bench`) pinned to CPU 1; the same seeds, torrents and
# mixes go to all. The floor is a stateless responder that answers as
# cheaply as the kernel allows (nulludp for the UDP workloads, nullhttp for
# the HTTP ones, from $FLOOR, by default ../shared/floor beside this tree),
# given the average number of peers trakx returned in the same workload; no
# tracker can answer more per CPU-second than it. Prints responses/s, the
# tracker's CPU use, responses per second of tracker CPU, each tracker's
# fraction of the floor's, and p99 latency, with ratios, for:
#   udp        10,000 torrents (Zipf 1.1), 10% scrapes of 5, 30% seeders,
#              4 sockets x 8 in flight
#   udp100k    100,000 torrents (torrent N*u^2), 10% scrapes of 10, 5%
#              connects, 20% seeders, 4 sockets x 64 in flight: a swarm
#              too big for the caches
#   http, keepalive   10,000 torrents, 16 connections
# All ask for 50 peers. Memory per peer is measured by test/memory.sh.
#
# Usage: test/compare.sh [seconds per run]      (needs opentracker, taskset)
# KINDS="http keepalive" runs only those workloads (all four by default).
# FLOOR=dir takes nulludp.go and nullhttp.go from dir; they are built, with
# this tree's versions of golang.org/x/net and x/sys and without the
# network, in a temporary module. FLOOR=none leaves the floor out.
# TRAKX=path runs that trakx binary as the tracker (an older build, to
# measure a change in the same run); the generator is always this tree's.
# CAP=N caps each tracker at N% of its core (the cgroup v1 cpu controller
# at /sys/fs/cgroup/cpu), so that the generator saturates it: capacity,
# where two cores cannot otherwise show it.
# PACED="udp100k=150000 keepalive=140000" then plays each named workload
# open loop at that many requests a second (`trakx bench -rate`: sent on
# schedule whether or not answers came, latency from the scheduled time)
# on a fresh trakx and on the floor, and prints p50/p99/p99.9 and the
# tracker's CPU: latency under load, read against what the kernel and the
# generator add on their own (the floor's).
# Writes its raw output to ${OUT:-/tmp/trakx-compare}.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
out=${OUT:-/tmp/trakx-compare}
mkdir -p "$out"
port_trakx=17070
port_ot=17071
port_floor=17072
source test/lib.sh
tracker=${TRAKX:-$trakx}

# The floor's responders, built in a temporary module from this tree's
# go.sum and module cache (which `make build` has just filled), offline.
floor_src=${FLOOR:-$(cd .. && pwd)/shared/floor}
floor_bin=
if [ "$floor_src" != none ]; then
  [ -f "$floor_src/nulludp.go" ] && [ -f "$floor_src/nullhttp.go" ] ||
    { echo "no nulludp.go and nullhttp.go in $floor_src: set FLOOR=dir, or FLOOR=none"; exit 1; }
  floor_bin=$(mktemp -d)
  trap 'stop_tracker; rm -rf "$floor_bin"' EXIT
  cp "$floor_src/nulludp.go" "$floor_src/nullhttp.go" go.sum "$floor_bin/"
  chmod u+w "$floor_bin"/*
  # (set -e does not hold inside a subshell tested by ||: hence the &&s.)
  (
    net=$(go list -m -f '{{.Version}}' golang.org/x/net) &&
      sys=$(go list -m -f '{{.Version}}' golang.org/x/sys) &&
      cd "$floor_bin" &&
      export GOFLAGS=-mod=mod GOPROXY=off GOWORK=off &&
      go mod init floor >/dev/null 2>&1 &&
      go mod edit -require "golang.org/x/net@$net" -require "golang.org/x/sys@$sys" &&
      go build -o nulludp nulludp.go &&
      go build -o nullhttp nullhttp.go
  ) || { echo "building the floor's responders from $floor_src failed"; exit 1; }
fi
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

# udp_listening PORT: something listens on 127.0.0.1:PORT over UDP.
udp_listening() { awk -v a="$(printf '0100007F:%04X' "$1")" '$2 == a { found = 1 } END { exit !found }' /proc/net/udp; }

start_tracker() { # name port [floor peers]
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
  nulludp | nullhttp)
    taskset -c 0 "$floor_bin/$1" -addr "127.0.0.1:$2" -peers "$3" >"$out/$1.log" 2>&1 &
    ;;
  esac
  pid=$!
  cap_tracker "$pid"
  for _ in $(seq 100); do
    if [ "$1" = nulludp ]; then
      udp_listening "$2" && return 0
    else
      (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    fi
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

# The workloads, by name: the generator's arguments.
declare -A workload=(
  [udp]="-protocol udp -torrents $torrents -workers 4 -inflight 8"
  [udp100k]="-protocol udp -torrents 100000 -popularity square -scrapes 0.1 -scrape-size 10 -connects 0.05 -seeders 0.2 -workers 4 -inflight 64"
  [http]="-protocol http -torrents $torrents -workers 16"
  [keepalive]="-protocol http -keepalive -torrents $torrents -workers 16"
)
kinds=${KINDS:-udp udp100k http keepalive}

declare -A result floor_peers
for name in trakx opentracker; do
  port=$port_trakx; [ "$name" = opentracker ] && port=$port_ot
  start_tracker "$name" "$port"
  for kind in $kinds; do
    # the workload's arguments, split into words
    result[$name,$kind]=$(run "$name" "$port" "$kind" ${workload[$kind]})
  done
  stop_tracker
done
# The floor, each responder given the peers per reply trakx gave in the
# same workload.
if [ -n "$floor_bin" ]; then
  for kind in $kinds; do
    responder=nullhttp; [ "${kind#udp}" != "$kind" ] && responder=nulludp
    floor_peers[$kind]=$(sed -n 's/^RESULT.* peers_per_reply=\([0-9.]*\).*/\1/p' "$out/trakx-$kind.txt" | awk '{ printf "%.0f", $1 }')
    start_tracker "$responder" "$port_floor" "${floor_peers[$kind]:-0}"
    result[floor,$kind]=$(run floor "$port_floor" "$kind" ${workload[$kind]})
    stop_tracker
  done
fi

per_cpu() { awk -v r="$1" -v c="$2" 'BEGIN { if (c > 0) printf "%.0f", r * 100 / c; else print "-" }'; }
echo
[ -n "${CAP:-}" ] && echo "each tracker capped at ${CAP}% of a core"
echo "trakx $("$tracker" version | cut -d' ' -f2-) vs opentracker (Debian $(dpkg-query -W -f '${Version}' opentracker 2>/dev/null || echo '?')), ${secs}s per run, $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
[ -n "$floor_bin" ] && echo "floor: nulludp and nullhttp from $floor_src, given trakx's peers per reply; ratio: trakx / opentracker"
printf '%-38s %12s %12s %12s %7s\n' "" trakx opentracker floor ratio
for kind in $kinds; do
  read -r tr tc tp <<<"${result[trakx,$kind]}"
  read -r orr oc op <<<"${result[opentracker,$kind]}"
  read -r fr fc fp <<<"${result[floor,$kind]:-- - -}"
  label=$kind; [ "$kind" = udp100k ] && label="udp, 100k torrents"; [ "$kind" = http ] && label="http, new connections"; [ "$kind" = keepalive ] && label="http, keep-alive"
  tpc=$(per_cpu "$tr" "$tc"); opc=$(per_cpu "$orr" "$oc"); fpc=-; [ "$fr" != - ] && fpc=$(per_cpu "$fr" "$fc")
  printf '%-38s %12s %12s %12s %7s\n' "$label: responses/s" "$tr" "$orr" "$fr" "$(ratio "$tr" "$orr")"
  printf '%-38s %11s%% %11s%% %11s%%\n' "  tracker CPU" "$tc" "$oc" "$fc"
  printf '%-38s %12s %12s %12s %7s\n' "  per tracker CPU-second" "$tpc" "$opc" "$fpc" "$(ratio "$tpc" "$opc")"
  if [ "$fpc" != - ]; then
    printf '%-38s %12s %12s %12s\n' "  fraction of the floor (${floor_peers[$kind]} peers)" "$(ratio "$tpc" "$fpc")" "$(ratio "$opc" "$fpc")" 1.00
    printf '%-38s %12s %12s %12s %7s\n' "  the ratio's bound: floor/opentracker" "" "" "" "$(ratio "$fpc" "$opc")"
  fi
  printf '%-38s %10sµs %10sµs %10sµs\n' "  p99 latency" "$tp" "$op" "$fp"
done

# paced NAME PORT KIND RATE: one open-loop run of a workload (its
# in-flight window replaced by a schedule); prints "p50 p99 p99.9 cpu%".
paced() {
  local name=$1 port=$2 kind=$3 rate=$4 t0 t1 start end args
  args=$(sed 's/-inflight [0-9]*//' <<<"${workload[$kind]}")
  t0=$(cpu_ticks "$pid"); start=$(date +%s.%N)
  # shellcheck disable=SC2086 # the workload's arguments, split into words
  taskset -c 1 "$trakx" bench -target "127.0.0.1:$port" -duration "${secs}s" -warmup 2s -rate "$rate" -timeout 1s $args > "$out/$name-$kind-paced.txt"
  t1=$(cpu_ticks "$pid"); end=$(date +%s.%N)
  local f=$out/$name-$kind-paced.txt
  local p50 p99 p999 timeouts
  p50=$(sed -n 's/^RESULT.* p50_us=\([0-9]*\).*/\1/p' "$f")
  p99=$(sed -n 's/^RESULT.* p99_us=\([0-9]*\).*/\1/p' "$f")
  p999=$(sed -n 's/^RESULT.* p999_us=\([0-9]*\).*/\1/p' "$f")
  timeouts=$(sed -n 's/^RESULT.* timeouts=\([0-9]*\).*/\1/p' "$f")
  echo "$p50 $p99 $p999 $(awk -v a="$t0" -v b="$t1" -v s="$start" -v e="$end" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / (e - s) }') $timeouts"
}

if [ -n "${PACED:-}" ]; then
  echo
  echo "open loop (trakx bench -rate), ${secs}s after 2s of warm-up, a fresh tracker each; latency from each request's scheduled time"
  printf '%-26s %-7s %9s %9s %9s %6s %9s\n' "" "" p50/µs p99/µs p99.9/µs CPU timeouts
  for spec in $PACED; do
    kind=${spec%%=*} rate=${spec#*=}
    for name in trakx floor; do
      [ "$name" = floor ] && [ -z "$floor_bin" ] && continue
      if [ "$name" = trakx ]; then
        start_tracker trakx "$port_trakx"; port=$port_trakx
      else
        responder=nullhttp; [ "${kind#udp}" != "$kind" ] && responder=nulludp
        start_tracker "$responder" "$port_floor" "${floor_peers[$kind]:-25}"; port=$port_floor
      fi
      read -r p50 p99 p999 cpu timeouts <<<"$(paced "$name" "$port" "$kind" "$rate")"
      stop_tracker
      printf '%-26s %-7s %9s %9s %9s %5s%% %9s\n' "$kind at $rate/s" "$name" "$p50" "$p99" "$p999" "$cpu" "$timeouts"
    done
  done
fi
