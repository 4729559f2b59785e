#!/usr/bin/env bash
# Soak test: MINUTES (default 10) of mixed UDP and HTTP load against a
# built trakx, with periodic saves, SIGHUP reloads every minute that change
# the access list, and RSS sampled every 10 s. Then:
#   1. witness peers are announced under load, trakx gets SIGTERM under
#      load and is started again: every witness peer must be back, and the
#      peers loaded must be the peers saved at the stop;
#   2. under load again, after a periodic save, trakx gets kill -9: the
#      restart must load the file whole, with the peers of the last save.
# Fails on any error the load saw beyond the access list's refusals, and
# (for runs of 5 minutes or more) on RSS growing after warm-up: the last
# third's peak more than 10% over the middle third's.
# Usage: test/soak.sh [MINUTES]. Bounded: about MINUTES + 2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
out=${OUT:-$(mktemp -d /tmp/trakx-soak.XXXXXX)}
mkdir -p "$out"
make -s build
trakx=$PWD/bin/trakx
udp=17170 stats=17180
torrents=10000
pid= loads=()
cleanup() {
  for l in "${loads[@]}"; do kill "$l" 2>/dev/null || true; done
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "(logs in $out)"; exit 1; }

# Deny lists alternate between ten of the load's torrents and none of them.
"$trakx" bench -hashes -torrents $torrents > "$out/load-hashes.txt"
head -10 "$out/load-hashes.txt" > "$out/deny-some.txt"
"$trakx" bench -hashes -seed 999 -torrents 10 > "$out/deny-none.txt"
cp "$out/deny-none.txt" "$out/access.txt"
cat > "$out/trakx.toml" <<TOML
[tracker]
announce_interval = "1m"
min_interval = "30s"
peer_ttl = "2m"
[udp]
listen = ["127.0.0.1:$udp"]
[http]
listen = ["127.0.0.1:$udp"]
[stats]
listen = "127.0.0.1:$stats"
[database]
path = "$out/peers.db"
save_interval = "20s"
[access]
mode = "deny"
file = "$out/access.txt"
TOML

start() {
  "$trakx" -config "$out/trakx.toml" 2>>"$out/trakx.log" &
  pid=$!
  for _ in $(seq 100); do
    grep -q " serving " "$out/trakx.log" 2>/dev/null && [ "$(grep -c ' serving ' "$out/trakx.log")" -ge "$1" ] && return 0
    sleep 0.1
  done
  fail "trakx did not start"
}
var() { curl -s "http://127.0.0.1:$stats/debug/vars" | python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + ''.join('[%r]' % k for k in sys.argv[1].split('.'))))" "$1"; }
rss_mb() { awk '/^VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$pid/status"; }
load() { # seconds label args...
  local secs=$1 label=$2; shift 2
  "$trakx" bench -target "127.0.0.1:$udp" -duration "${secs}s" -warmup 0s -torrents $torrents "$@" > "$out/load-$label.txt" &
  loads+=($!)
}
errors_of() { sed -n 's/^RESULT.* errors=\([0-9]*\).*/\1/p' "$out"/load-*.txt | awk '{ s += $1 } END { print s + 0 }'; }

echo "== $minutes minutes of load (logs in $out)"
start 1
secs=$((minutes * 60))
load "$secs" udp -protocol udp -workers 2 -inflight 8
load "$secs" http -protocol http -workers 4
load "$secs" keepalive -protocol http -keepalive -workers 2
: > "$out/rss.txt"
for ((t = 10; t <= secs; t += 10)); do
  sleep 10
  echo "$t $(rss_mb) $(var trakx.swarm.peers)" >> "$out/rss.txt"
  if ((t % 60 == 0)); then
    if ((t / 60 % 2 == 1)); then cp "$out/deny-some.txt" "$out/access.txt"; else cp "$out/deny-none.txt" "$out/access.txt"; fi
    kill -HUP "$pid"
    echo "  ${t}s: RSS $(rss_mb) MB, $(var trakx.swarm.peers) peers, reloaded"
  fi
done
for l in "${loads[@]}"; do wait "$l"; done
loads=()
refused=$(( $(var trakx.udp.refused) + $(var trakx.http.refused) ))
errors=$(errors_of)
echo "load errors $errors, access-list refusals $refused"
# Every error must be a refusal. A refusal may go uncounted by the load:
# one answered just as it stopped counting, at most one per request in
# flight (2 x 8 UDP, 4 + 2 HTTP).
[ "$errors" -le "$refused" ] && [ $((refused - errors)) -le 22 ] \
  || fail "the load saw $errors errors, and $refused refusals were expected"
grep -q "reload failed\|level=error" "$out/trakx.log" && fail "errors in the log: $(grep 'level=error' "$out/trakx.log" | head -3)"
saves=$(var trakx.database.saves)
[ "$saves" -ge $((secs / 20 - 1)) ] || fail "only $saves periodic saves in ${secs}s"
if [ "$minutes" -ge 5 ]; then
  # After warm-up (the first third: the store fills to its peer TTL and the
  # heap grows to the garbage collector's goal of twice the live data),
  # RSS must stay flat: the last third's peak within 10% of the middle's.
  awk -v a=$((secs / 3)) -v b=$((2 * secs / 3)) '
    $1 > a && $1 <= b && $2 > mid { mid = $2 }
    $1 > b && $2 > last { last = $2 }
    END { printf "RSS peak: %d MB in the middle third, %d MB in the last\n", mid, last; exit !(last <= mid * 1.1) }' "$out/rss.txt" \
    || fail "RSS grew after warm-up (see $out/rss.txt)"
fi

echo "== SIGTERM under load, then a restart"
cp "$out/deny-none.txt" "$out/access.txt"; kill -HUP "$pid"
load 30 udp2 -protocol udp -workers 2 -inflight 8
"$trakx" bench -target "127.0.0.1:$udp" -fill 20000 -seed 77 -torrents 1000 -workers 2 > "$out/witness.txt" \
  || fail "witness peers: $(cat "$out/witness.txt")"
kill -TERM "$pid"; wait "$pid" || fail "trakx exited non-zero after SIGTERM"
stopped=$(grep -o 'stopped with [0-9]* peers' "$out/trakx.log" | tail -1 | grep -o '[0-9]*')
start 2
loaded=$(grep -o 'loaded [0-9]* peers' "$out/trakx.log" | tail -1 | grep -o '[0-9]*')
expired=$(grep -o '[0-9]* peers had expired' "$out/trakx.log" | tail -1 | grep -o '^[0-9]*')
echo "stopped with $stopped peers; loaded $loaded, $expired expired since"
[ $((loaded + expired)) -eq "$stopped" ] || fail "peers lost across the restart"
python3 test/soak_check.py "$udp" 77 1000 20000 || fail "witness peers lost"
for l in "${loads[@]}"; do wait "$l"; done
loads=()

echo "== kill -9 under load"
load 60 udp3 -protocol udp -workers 2 -inflight 8
before=$(grep -c '^.*saved [0-9]* peers' "$out/trakx.log")
for _ in $(seq 300); do [ "$(grep -c 'saved [0-9]* peers' "$out/trakx.log")" -gt "$before" ] && break; sleep 0.1; done
last_saved=$(grep -o 'saved [0-9]* peers' "$out/trakx.log" | tail -1 | grep -o '[0-9]*')
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
start 3
grep -q "cannot load database" "$out/trakx.log" && fail "the database was damaged by kill -9"
loaded=$(grep -o 'loaded [0-9]* peers' "$out/trakx.log" | tail -1 | grep -o '[0-9]*')
expired=$(grep -o '[0-9]* peers had expired' "$out/trakx.log" | tail -1 | grep -o '^[0-9]*')
echo "last save before kill -9: $last_saved peers; loaded $loaded, $expired expired since"
[ $((loaded + expired)) -eq "$last_saved" ] || fail "the restart after kill -9 did not load the last save"
for l in "${loads[@]}"; do wait "$l"; done
loads=()
echo "PASS: soak of $minutes minutes"
