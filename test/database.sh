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
# Each load is also timed as a client sees it ("ready"): from the moment
# trakx is started on the file the last save wrote (the one SIGTERM makes)
# to the first UDP connect request it answers, sent every millisecond from
# just before the start. The loads run on every CPU (LOAD_CPUS, a taskset
# list, default all of them), as an operator's tracker would; the fill and
# the saves keep trakx on CPU 0 and the client on CPU 1.
#
# Usage: test/database.sh [peers] [ipv4|ipv6]   (default 10000000 ipv4;
#        RUNS=3; LOAD_CPUS=0-N; LOAD_ONLY=1 skips the fill and the saves
#        and loads the file a previous run left; needs taskset, curl, python3)
# Writes its raw output to ${OUT:-/tmp/trakx-database}.
set -euo pipefail
cd "$(dirname "$0")/.."
peers=${1:-10000000}
family=${2:-ipv4}
runs=${RUNS:-3}
load_cpus=${LOAD_CPUS:-0-$(($(nproc) - 1))}
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

if [ -z "${LOAD_ONLY:-}" ]; then
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
fi

: > "$out/load.txt"
: > "$out/ready.txt"
for _ in $(seq "$runs"); do
  : > "$out/trakx.log"
  # ready.py prints the seconds to the first answer and trakx's pid; trakx
  # outlives it, and is stopped here.
  read -r ready pid < <(python3 - "$port" "$out/trakx.log" taskset -c "$load_cpus" "$trakx" -config "$out/trakx.toml" <<'PY'
import socket, struct, subprocess, sys, time
port, log, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port))
s.settimeout(0.001)
with open(log, "a") as f:
    start = time.monotonic()
    p = subprocess.Popen(cmd, stderr=f)
tid = 0
while True:
    tid += 1
    try:
        s.send(struct.pack(">QII", 0x41727101980, 0, tid))  # connect (BEP 15)
        b = s.recv(64)
    except (TimeoutError, ConnectionRefusedError):  # not bound yet, or busy loading
        if p.poll() is not None:
            sys.exit("trakx exited")
        if time.monotonic() - start > 300:
            sys.exit("trakx did not answer")
        continue
    if len(b) >= 16 and struct.unpack(">II", b[:8])[0] == 0:
        break
print("%.3f %d" % (time.monotonic() - start, p.pid))
PY
)
  echo "$ready" >> "$out/ready.txt"
  wait_log 'loaded ' 1
  secs loaded >> "$out/load.txt"
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
  kill "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  pid=
done

read -r saved bytes < "$out/size.txt"
echo
echo "trakx $("$trakx" version | cut -d' ' -f2-), $saved $family peers in $((peers / 10)) torrents"
echo "save: $(tr '\n' ' ' < "$out/save.txt")s: $(summary < "$out/save.txt")"
echo "load: $(tr '\n' ' ' < "$out/load.txt")s: $(summary < "$out/load.txt")"
echo "ready (start to first UDP answer, CPUs $load_cpus): $(tr '\n' ' ' < "$out/ready.txt")s: $(summary < "$out/ready.txt")"
awk -v b="$bytes" -v n="$saved" 'BEGIN { printf "file: %d bytes (%.1f MB), %.1f bytes/peer\n", b, b / 1e6, b / n }'
echo "RSS after the last load: $((rss / 1024)) MB"
