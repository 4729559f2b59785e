#!/usr/bin/env bash
# Writes docs/stats-page.png, the stats page as the README shows it: a
# tracker on loopback ports, filled and kept busy by `trakx bench` for a
# few minutes so that the charts have points, then photographed by headless
# Chromium. Not a test: `make screenshot` runs it by hand.
#
# Usage: test/screenshot.sh [seconds of load]   (default 60; needs chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
command -v chromium >/dev/null || { echo "chromium is needed (apt-get install chromium)"; exit 1; }
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
go build -o "$dir/trakx" ./cmd/trakx
cat > "$dir/trakx.toml" <<TOML
[udp]
listen = ["127.0.0.1:16969"]
[http]
listen = ["127.0.0.1:16969"]
[stats]
listen = "127.0.0.1:16880"
[database]
path = "$dir/peers.db"
save_interval = "20s"
TOML
"$dir/trakx" run -config "$dir/trakx.toml" 2>"$dir/log" &
pid=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:16880/stats.json >/dev/null && break; sleep 0.1; done
"$dir/trakx" bench -target 127.0.0.1:16969 -fill 200000 -torrents 20000 >/dev/null
"$dir/trakx" bench -target 127.0.0.1:16969 -protocol udp -torrents 20000 -rate 20000 -duration "${seconds}s" >/dev/null
"$dir/trakx" bench -target 127.0.0.1:16969 -protocol http -keepalive -torrents 20000 -rate 2000 -duration 15s >/dev/null
chromium --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars --user-data-dir="$dir/chromium" \
  --window-size=1280,2060 --virtual-time-budget=5000 --screenshot="$PWD/docs/stats-page.png" http://127.0.0.1:16880/ 2>/dev/null
echo "wrote docs/stats-page.png"
