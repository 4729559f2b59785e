#!/usr/bin/env bash
# The swarm database's save and load as an operator sees them, by the
# trakx binary (docs/benchmarks.md, "Swarm database"). trakx, pinned to
# CPU 0, is filled over UDP by `trakx bench -fill` (pinned to CPU 1) with
# PEERS distinct peers, ten to a torrent, half seeders; it then saves RUNS
# times on SIGUSR1, and is started RUNS times on the saved file. Each save
# and load time is the one trakx logs ("saved ... in Xs", "loaded ... in
# Xs": the database call alone). Prints every time, their median and
# range, the file's size and its bytes per peer, and the RSS after a load.
#
# Usage: test/database.sh [peers] [ipv4|ipv6]   (default 10000000 ipv4;
#        RUNS=3; needs taskset, curl)
# Writes its raw output to ${OUT:-/tmp/trakx-database}.
set -euo pipefail
cd "$(dirname "$0")/.."
peers=${1:-10000000}
family=${2:-ipv4}
runs=${RUNS:-3}
out=${OUT:-/tmp/trakx-database}
mkdir -p "$out"
port=17077
stats=17078
case "$family" in
ipv4) target=127.0.0.1:$port ;;
ipv6) target="[::1]:$port" ;;
*) echo "family must be ipv4 or ipv6"; exit 2 ;;
esac
make -s build
trakx=$PWD/bin/trakx

printf '[udp]\nlisten = ["127.0.0.1:%s", "[::1]:%s"]\n[http]\nlisten = []\n[stats]\nlisten = "127.0.0.1:%s"\n[database]\npath = "%s/peers.db"\nsave_interval = "0"\n' \
  "$port" "$port" "$stats" "$out" > "$out/trakx.toml"

pid=
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
trap stop EXIT
# start: run trakx and wait until it serves (after its load).
start() {
  : > "$out/trakx.log"
  taskset -c 0 "$trakx" -config "$out/trakx.toml" 2>"$out/trakx.log" &
  pid=$!
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$stats/debug/vars" >/dev/null && return
    kill -0 "$pid" || { cat "$out/trakx.log"; exit 1; }
    sleep 0.2
  done
  echo "trakx did not start"; exit 1
}
# wait_log PATTERN: wait until the log has PATTERN this many times ($2).
wait_log() {
  for _ in $(seq 1200); do
    [ "$(grep -c "$1" "$out/trakx.log" || true)" -ge "$2" ] && return
    sleep 0.1
  done
  echo "no '$1' in the log"; exit 1
}
secs() { sed -n "s/.*$1 [0-9]* peers in [0-9]* torrents .* in \([0-9.]*\)s.*/\1/p" "$out/trakx.log"; }
summary() { sort -g | awk '{ v[NR] = $1 } END { printf "median %s s, range %s-%s s", v[int((NR + 1) / 2)], v[1], v[NR] }'; }

rm -f "$out/peers.db"
start
taskset -c 1 "$trakx" bench -target "$target" -fill "$peers" -torrents "$((peers / 10))" -workers 4 -inflight 64 | tee "$out/fill.txt"
for i in $(seq "$runs"); do
  kill -USR1 "$pid"
  wait_log 'saved ' "$i"
done
secs saved > "$out/save.txt"
sed -n 's/.*saved \([0-9]*\) peers .*(\([0-9]*\) bytes;.*/\1 \2/p' "$out/trakx.log" | tail -1 > "$out/size.txt"
stop # saves once more, not timed

: > "$out/load.txt"
for _ in $(seq "$runs"); do
  start
  wait_log 'loaded ' 1
  secs loaded >> "$out/load.txt"
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
  stop
done

read -r saved bytes < "$out/size.txt"
echo
echo "trakx $("$trakx" version | cut -d' ' -f2-), $saved $family peers in $((peers / 10)) torrents"
echo "save: $(tr '\n' ' ' < "$out/save.txt")s: $(summary < "$out/save.txt")"
echo "load: $(tr '\n' ' ' < "$out/load.txt")s: $(summary < "$out/load.txt")"
awk -v b="$bytes" -v n="$saved" 'BEGIN { printf "file: %d bytes (%.1f MB), %.1f bytes/peer\n", b, b / 1e6, b / n }'
echo "RSS after the last load: $((rss / 1024)) MB"
