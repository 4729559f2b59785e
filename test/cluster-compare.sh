#!/usr/bin/env bash
# Issue 26's figures for a cluster of trakx nodes through NATS, measured
# side by side in one run on one machine: three trakx nodes (a, b, c), one
# nats-server, the load generators and a propagation probe all share it.
#
#   1. CPU per announce: three nodes alone (cluster.nats_url = ""), then the
#      same three in one cluster, each taking RATE UDP announces a second
#      from its own `trakx bench -rate` (open loop, no scrapes), PAIRS times
#      alternately. Each node's CPU seconds (/proc/PID/stat utime+stime)
#      over the measured window, divided by the UDP announces it answered
#      (trakx_requests_total); the cluster's over the alone's, node a's
#      being the figure. The nats-server's CPU is reported beside it.
#   2. Propagation, during each cluster window: test/cluster_probe.py
#      announces a new peer in a torrent of its own to node a, then polls
#      node c every 5 ms until c's announce reply names it: p50/p99/max
#      from the announce's send to that reply, beside node c's
#      trakx_cluster_apply_lag_seconds over the window.
#   3. Wire bytes per replicated announce: trakx_cluster_bytes_total
#      {direction="sent"} over trakx_cluster_deltas_total
#      {direction="published"}, summed over the nodes, in each cluster window
#      (batch payloads, IPv4, the generator's Zipf 1.1 over 10,000
#      torrents); and the same with NATS's framing, from the nats-server's
#      bytes read (/proc/PID/io rchar) over the records published.
#   4. Joining: node a alone in a cluster is filled with JOIN_PEERS peers
#      (`trakx bench -fill`, ten a torrent), then node b starts empty; the
#      time from b's process start until b's trakx_peers reaches a's.
#
# Peers must travel: the wire refuses loopback peers. So each node listens
# on an address of its own added to lo (NET.1, NET.2, NET.3; NET.9 for the
# probe's peers), 198.51.100.0/24 by default (TEST-NET-2: neither private
# nor loopback), and each generator sends to its node's address, so that
# the kernel gives its datagrams that address as their source. The
# addresses the script added are removed when it ends. The probe polls c
# from 127.0.0.1: its own announces are loopback peers, never published.
#
# Usage: test/cluster-compare.sh [seconds per window] [join peers]
#   defaults: 30 and 10000000; join peers 0 leaves out the join.
# Environment: RATE (announces/s per node, 10000), PAIRS (alone/cluster
# pairs, 2), WARM (seconds of load before each window, 5), NET (the /24's
# first three octets, 198.51.100), TRAKX (a trakx binary; default: `make
# build`'s bin/trakx), NATS_SERVER (/usr/sbin/nats-server), PROFILE=1 (a
# 10 s CPU profile of node a in each window, and of nodes a and b from b's
# start in the join, into OUT: it costs node a a little CPU, alike in both
# phases), OUT (raw output, /tmp/trakx-cluster).
# Needs root (ip addr add), nats-server (apt-get install nats-server),
# python3 and curl. Ports 17201-17203 (UDP, on the nodes' addresses),
# 17211-17213 (stats, 127.0.0.1), 17220-17221 (NATS, its monitor).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
join_peers=${2:-10000000}
rate=${RATE:-10000}
pairs=${PAIRS:-2}
warm=${WARM:-5}
net=${NET:-198.51.100}
out=${OUT:-/tmp/trakx-cluster}
nats_server=${NATS_SERVER:-/usr/sbin/nats-server}
nats_port=17220
nats_mon=17221
nodes=(a b c)
declare -A idx=([a]=1 [b]=2 [c]=3)
hz=$(getconf CLK_TCK)

for tool in "$nats_server" python3 curl ip; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (nats-server: apt-get install nats-server)"; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "needs root, to add addresses to lo"; exit 1; }
if [ -n "${TRAKX:-}" ]; then
  trakx=$TRAKX
else
  make -s build
  trakx=$PWD/bin/trakx
fi
mkdir -p "$out"
rm -f "$out"/*.txt "$out"/*.log "$out"/*.toml "$out"/*.db "$out"/*.prof "$out"/*.samples

# Everything started, stopped on exit; the addresses added, removed.
declare -A node_pid=()
pids=()
added=()
nats_pid=
# shellcheck disable=SC2317 # run by the trap
cleanup() {
  local p a deadline
  for p in "${pids[@]}" "${node_pid[@]}" $nats_pid; do kill "$p" 2>/dev/null || true; done
  deadline=$((SECONDS + 60))
  for p in "${pids[@]}" "${node_pid[@]}" $nats_pid; do
    while kill -0 "$p" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  for a in "${added[@]}"; do ip addr del "$a/32" dev lo 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for i in 1 2 3 9; do
  a=$net.$i
  if ! ip -4 addr show dev lo | grep -q "inet $a/"; then
    ip addr add "$a/32" dev lo
    added+=("$a")
  fi
done

udp_port() { echo $((17200 + idx[$1])); }
stats_port() { echo $((17210 + idx[$1])); }
metrics() { curl -sf --max-time 2 "http://127.0.0.1:$(stats_port "$1")/metrics"; }

# metric FILE NAME [SUBSTRING...]: the sum of the samples of NAME whose
# line holds every SUBSTRING (labels, such as 'direction="sent"').
metric() {
  local file=$1 name=$2; shift 2
  awk -v name="$name" -v subs="$*" '
    BEGIN { n = split(subs, want, " ") }
    index($0, name "{") == 1 || index($0, name " ") == 1 {
      for (i = 1; i <= n; i++) if (index($0, want[i]) == 0) next
      sum += $NF; found = 1 }
    END { printf "%.0f\n", found ? sum : 0 }' "$file"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# write_config NODE CLUSTER(0|1) [MAX_PEERS]
write_config() {
  local n=$1
  cat > "$out/$n.toml" <<TOML
[tracker]
max_peers = ${3:-10000000}
[udp]
listen = ["$net.${idx[$n]}:$(udp_port "$n")"]
[http]
listen = []
[stats]
listen = "127.0.0.1:$(stats_port "$n")"
pprof = true
[database]
path = "$out/$n.db"
save_interval = "0"
TOML
  if [ "$2" = 1 ]; then
    cat >> "$out/$n.toml" <<TOML
[cluster]
nats_url = "nats://127.0.0.1:$nats_port"
name = "bench"
node = "$n"
TOML
  fi
}

# start_node NODE: starts it empty, logging to OUT/PHASE-NODE.log, and
# waits for its metrics.
start_node() {
  local n=$1 deadline
  rm -f "$out/$n.db"
  "$trakx" -config "$out/$n.toml" 2>"$out/$phase-$n.log" &
  node_pid[$n]=$!
  deadline=$((SECONDS + 20))
  until metrics "$n" >/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "node $n did not start: $(tail -3 "$out/$phase-$n.log")"; exit 1; }
    kill -0 "${node_pid[$n]}" 2>/dev/null || { echo "node $n exited: $(tail -3 "$out/$phase-$n.log")"; exit 1; }
    sleep 0.05
  done
}

# stop_pid PID: TERM, then KILL after 60 s (a node saves its database).
stop_pid() {
  local p=$1 deadline=$((SECONDS + 60))
  kill "$p" 2>/dev/null || true
  while kill -0 "$p" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
stop_nodes() {
  local n
  for n in "${!node_pid[@]}"; do stop_pid "${node_pid[$n]}"; unset "node_pid[$n]"; done
}

start_nats() {
  local deadline=$((SECONDS + 10))
  "$nats_server" -a 127.0.0.1 -p "$nats_port" -m "$nats_mon" >"$out/$phase-nats-server.log" 2>&1 &
  nats_pid=$!
  until curl -sf --max-time 1 "http://127.0.0.1:$nats_mon/varz" >/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "nats-server did not start: $(tail -3 "$out/$phase-nats-server.log")"; exit 1; }
    sleep 0.05
  done
}
stop_nats() { [ -z "$nats_pid" ] || stop_pid "$nats_pid"; nats_pid=; }
nats_rchar() { awk '/^rchar/ { print $2 }' "/proc/$nats_pid/io"; }

# wait_cluster: until every node hears the three.
wait_cluster() {
  local n deadline=$((SECONDS + 20))
  for n in "${nodes[@]}"; do
    until metrics "$n" > "$out/ready.txt" && [ "$(metric "$out/ready.txt" trakx_cluster_nodes)" = 3 ]; do
      [ "$SECONDS" -lt "$deadline" ] || { echo "node $n does not see three nodes"; exit 1; }
      sleep 0.1
    done
  done
}

# sample PHASE TAG: each node's metrics and CPU (and the nats-server's).
sample() {
  local n
  for n in "${nodes[@]}"; do
    metrics "$n" > "$out/$1-$2-$n.txt"
    cpu_ticks "${node_pid[$n]}" > "$out/$1-$2-$n.cpu"
  done
  date +%s.%N > "$out/$1-$2.time"
  if [ -n "$nats_pid" ]; then
    cpu_ticks "$nats_pid" > "$out/$1-$2-nats.cpu"
    nats_rchar > "$out/$1-$2-nats.rchar"
  fi
}
# delta PHASE NODE NAME [SUBSTRING...]: a metric's growth over the window.
delta() {
  local p=$1 n=$2; shift 2
  echo $(($(metric "$out/$p-t1-$n.txt" "$@") - $(metric "$out/$p-t0-$n.txt" "$@")))
}
ticks() { echo $(($(cat "$out/$1-t1-$2.cpu") - $(cat "$out/$1-t0-$2.cpu"))); }
window() { awk -v a="$(cat "$out/$1-t0.time")" -v b="$(cat "$out/$1-t1.time")" 'BEGIN { printf "%.3f", b - a }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

declare -A fig=()
phase=setup

# run_phase alone|cluster ROUND: three nodes under RATE announces/s each.
run_phase() {
  local kind=$1 round=$2 p=$1$2 n gen_pids=() probe_pid='' deadline
  phase=$p
  for n in "${nodes[@]}"; do write_config "$n" "$([ "$kind" = cluster ] && echo 1 || echo 0)"; done
  if [ "$kind" = cluster ]; then start_nats; fi
  for n in "${nodes[@]}"; do start_node "$n"; done
  if [ "$kind" = cluster ]; then wait_cluster; fi
  for n in "${nodes[@]}"; do
    "$trakx" bench -target "$net.${idx[$n]}:$(udp_port "$n")" -rate "$rate" -scrapes 0 -connects 0 \
      -warmup "${warm}s" -duration "$((secs + 2))s" -timeout 1s > "$out/$p-gen-$n.txt" 2>&1 &
    gen_pids+=($!); pids+=($!)
  done
  sleep "$((warm + 1))"
  if [ "$kind" = cluster ]; then
    python3 test/cluster_probe.py --announce-to "$net.1:$(udp_port a)" --probe-from "$net.9" \
      --poll "$net.3:$(udp_port c)" --poll-from 127.0.0.1 --duration "$secs" \
      --samples "$out/$p-probe.samples" > "$out/$p-probe.txt" 2>&1 &
    probe_pid=$!; pids+=($!)
  fi
  sample "$p" t0
  # Without nats_url no cluster code runs: no trakx_cluster_ family, no
  # goroutine in package cluster.
  for n in "${nodes[@]}"; do
    fig[$p,cluster_goroutines,$n]=$(curl -sf --max-time 5 "http://127.0.0.1:$(stats_port "$n")/debug/pprof/goroutine?debug=1" |
      grep -c 'trakx/internal/cluster\.' || true)
    fig[$p,cluster_families,$n]=$(grep -c '^trakx_cluster_' "$out/$p-t0-$n.txt" || true)
  done
  if [ -n "${PROFILE:-}" ]; then
    curl -sf --max-time 20 -o "$out/$p-a.prof" "http://127.0.0.1:$(stats_port a)/debug/pprof/profile?seconds=10" &
    pids+=($!)
  fi
  sleep "$secs"
  sample "$p" t1
  deadline=$((SECONDS + 30))
  for pid in "${gen_pids[@]}" $probe_pid; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    wait "$pid" || echo "  ($p: process $pid exited with an error; see $out)"
  done
  for n in "${nodes[@]}"; do fig[$p,rss,$n]=$(rss_kib "${node_pid[$n]}"); done
  stop_nodes
  stop_nats

  local w ann cpu line
  w=$(window "$p")
  echo "$p: window ${w}s; stack frames in package cluster (a b c): ${fig[$p,cluster_goroutines,a]} ${fig[$p,cluster_goroutines,b]} ${fig[$p,cluster_goroutines,c]}; trakx_cluster_ samples: ${fig[$p,cluster_families,a]} ${fig[$p,cluster_families,b]} ${fig[$p,cluster_families,c]}"
  for n in "${nodes[@]}"; do
    ann=$(delta "$p" "$n" trakx_requests_total 'protocol="udp"' 'action="announce"')
    cpu=$(ticks "$p" "$n")
    fig[$p,us,$n]=$(calc %.2f "1e6 * $cpu / $hz / $ann")
    line=$(printf '  node %s: %s announces/s answered, CPU %s%%, %s µs CPU per announce, %s peers at the end, RSS %s KiB' "$n" \
      "$(calc %.0f "$ann / $w")" "$(calc %.1f "100 * $cpu / $hz / $w")" "${fig[$p,us,$n]}" \
      "$(metric "$out/$p-t1-$n.txt" trakx_peers)" "${fig[$p,rss,$n]}")
    echo "$line"
    printf '          generator: %s\n' "$(grep '^RESULT' "$out/$p-gen-$n.txt" | cut -d' ' -f4-)"
    if [ "$kind" = cluster ]; then
      local pub app
      pub=$(delta "$p" "$n" trakx_cluster_deltas_total 'direction="published"')
      app=$(delta "$p" "$n" trakx_cluster_deltas_total 'direction="applied"')
      printf '          deltas/s: published %s, applied %s, refused %s, dropped %s; bytes sent %s (%s a record published)\n' \
        "$(calc %.0f "$pub / $w")" "$(calc %.0f "$app / $w")" \
        "$(delta "$p" "$n" trakx_cluster_deltas_total 'direction="refused"')" \
        "$(delta "$p" "$n" trakx_cluster_deltas_total 'direction="dropped"')" \
        "$(delta "$p" "$n" trakx_cluster_bytes_total 'direction="sent"')" \
        "$(calc %.2f "$(delta "$p" "$n" trakx_cluster_bytes_total 'direction="sent"') / ($pub > 0 ? $pub : 1)")"
      local lc l05 l01 l025
      lc=$(delta "$p" "$n" trakx_cluster_apply_lag_seconds_count)
      l01=$(delta "$p" "$n" trakx_cluster_apply_lag_seconds_bucket 'le="0.1"')
      l025=$(delta "$p" "$n" trakx_cluster_apply_lag_seconds_bucket 'le="0.25"')
      l05=$(delta "$p" "$n" trakx_cluster_apply_lag_seconds_bucket 'le="0.5"')
      printf '          apply lag: %s batches applied; %s%% within 0.1 s, %s%% within 0.25 s, %s%% within 0.5 s\n' "$lc" \
        "$(calc %.2f "100 * $l01 / ($lc > 0 ? $lc : 1)")" "$(calc %.2f "100 * $l025 / ($lc > 0 ? $lc : 1)")" \
        "$(calc %.2f "100 * $l05 / ($lc > 0 ? $lc : 1)")"
    fi
  done
  if [ "$kind" = cluster ]; then
    local pub_all=0 bytes_all=0 ncpu nrchar
    for n in "${nodes[@]}"; do
      pub_all=$((pub_all + $(delta "$p" "$n" trakx_cluster_deltas_total 'direction="published"')))
      bytes_all=$((bytes_all + $(delta "$p" "$n" trakx_cluster_bytes_total 'direction="sent"')))
    done
    ncpu=$(ticks "$p" nats)
    nrchar=$(($(cat "$out/$p-t1-nats.rchar") - $(cat "$out/$p-t0-nats.rchar")))
    fig[$p,bytes]=$(calc %.2f "$bytes_all / $pub_all")
    fig[$p,framed]=$(calc %.2f "$nrchar / $pub_all")
    fig[$p,natscpu]=$(calc %.1f "100 * $ncpu / $hz / $w")
    echo "  wire: ${fig[$p,bytes]} payload bytes a record published ($pub_all records), ${fig[$p,framed]} bytes read by nats-server a record (NATS framing and pings included)"
    echo "  nats-server: CPU ${fig[$p,natscpu]}%, $(calc %.2f "1e6 * $ncpu / $hz / $pub_all") µs a record published"
    fig[$p,probe]=$(grep '^PROBE' "$out/$p-probe.txt" || echo "PROBE failed: $(tail -2 "$out/$p-probe.txt")")
    echo "  propagation a -> c: ${fig[$p,probe]}"
  fi
}

# run_join: node a alone in a cluster, filled; node b starts empty.
run_join() {
  local want t_start t_end deadline got fill_start
  phase="join"
  write_config a 1 $((join_peers + 1000000))
  write_config b 1 $((join_peers + 1000000))
  start_nats
  start_node a
  fill_start=$SECONDS
  "$trakx" bench -target "$net.1:$(udp_port a)" -fill "$join_peers" -torrents $(((join_peers + 9) / 10)) \
    -workers 4 -inflight 64 > "$out/join-fill.txt"
  echo "join: $(cat "$out/join-fill.txt") ($((SECONDS - fill_start)) s)"
  metrics a > "$out/join-a.txt"
  want=$(metric "$out/join-a.txt" trakx_peers)
  echo "  node a holds $want peers, RSS $(rss_kib "${node_pid[a]}") KiB; published $(metric "$out/join-a.txt" trakx_cluster_deltas_total 'direction="published"'), dropped $(metric "$out/join-a.txt" trakx_cluster_deltas_total 'direction="dropped"') (nobody else listens)"
  sleep 2 # the outbox drains
  local a0 n0 profiled=''
  a0=$(cpu_ticks "${node_pid[a]}"); n0=$(cpu_ticks "$nats_pid")
  if [ -n "${PROFILE:-}" ]; then
    curl -sf --max-time 20 -o "$out/join-a.prof" "http://127.0.0.1:$(stats_port a)/debug/pprof/profile?seconds=10" &
    pids+=($!)
  fi
  t_start=$(date +%s.%N)
  rm -f "$out/b.db"
  "$trakx" -config "$out/b.toml" 2>"$out/join-b.log" &
  node_pid[b]=$!
  deadline=$((SECONDS + 120))
  got=0
  : > "$out/join-poll.txt"
  while [ "$got" -lt "$want" ]; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "  node b holds $got of $want peers after 120 s: missed"; break; }
    sleep 0.05
    metrics b > "$out/join-b.txt" 2>/dev/null || continue
    if [ -n "${PROFILE:-}" ] && [ -z "$profiled" ]; then
      curl -sf --max-time 20 -o "$out/join-b.prof" "http://127.0.0.1:$(stats_port b)/debug/pprof/profile?seconds=10" &
      pids+=($!); profiled=1
    fi
    got=$(metric "$out/join-b.txt" trakx_peers)
    echo "$(calc %.3f "$(date +%s.%N) - $t_start") $got" >> "$out/join-poll.txt"
  done
  t_end=$(date +%s.%N)
  local took ca cb cn
  took=$(calc %.2f "$t_end - $t_start")
  ca=$(calc %.1f "($(cpu_ticks "${node_pid[a]}") - $a0) / $hz")
  cb=$(calc %.1f "$(cpu_ticks "${node_pid[b]}") / $hz")
  cn=$(calc %.1f "($(cpu_ticks "$nats_pid") - $n0) / $hz")
  fig[join]=$took
  fig[join,rss]=$(rss_kib "${node_pid[b]}")
  echo "  node b holds $got peers $took s after its start; RSS ${fig[join,rss]} KiB; $(metric "$out/join-b.txt" trakx_cluster_bytes_total 'direction="received"') snapshot bytes received"
  echo "  CPU meanwhile: node a (serving) $ca s, node b (applying) $cb s, nats-server $cn s: $(calc %.2f "($ca + $cb + $cn) / $took") of $(nproc) CPUs"
  sleep 1
  echo "  logs: $(grep -h 'caught up\|catching up\|snapshot' "$out/join-b.log" "$out/join-a.log" | tr '\n' ' ')"
  stop_nodes
  stop_nats
}

echo "cluster-compare: $("$trakx" version), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+changes'), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); nats-server $("$nats_server" --version 2>&1 | head -1)"
echo "3 nodes at $rate UDP announces/s each (trakx bench -rate, Zipf 1.1 over 10,000 torrents, no scrapes), ${warm}s warm-up, ${secs}s windows, $pairs pairs"
for round in $(seq "$pairs"); do
  run_phase alone "$round"
  run_phase cluster "$round"
done
if [ "$join_peers" -gt 0 ]; then run_join; fi

echo
echo "SUMMARY (targets from issue 26)"
for round in $(seq "$pairs"); do
  printf 'round %s: CPU per announce, cluster / alone: a %s (%s / %s µs), b %s, c %s   (target: at most 1.25)\n' "$round" \
    "$(calc %.2f "${fig[cluster$round,us,a]} / ${fig[alone$round,us,a]}")" "${fig[cluster$round,us,a]}" "${fig[alone$round,us,a]}" \
    "$(calc %.2f "${fig[cluster$round,us,b]} / ${fig[alone$round,us,b]}")" \
    "$(calc %.2f "${fig[cluster$round,us,c]} / ${fig[alone$round,us,c]}")"
  printf 'round %s: wire bytes a replicated announce: %s payload, %s with NATS framing   (target: at most 32)\n' "$round" \
    "${fig[cluster$round,bytes]}" "${fig[cluster$round,framed]}"
  printf 'round %s: propagation a -> c, %s   (target: p99 within 500 ms)\n' "$round" "${fig[cluster$round,probe]#PROBE }"
  printf 'round %s: nats-server CPU %s%%\n' "$round" "${fig[cluster$round,natscpu]}"
done
[ "$join_peers" -eq 0 ] || printf 'join: node b serves all %s peers %s s after its start, RSS %s KiB   (target: within 10 s)\n' \
  "$join_peers" "${fig[join]}" "${fig[join,rss]}"
exit 0
