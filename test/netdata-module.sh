#!/usr/bin/env bash
# Runs netdata's python.d "trakx" module (test/netdata_module.py) against
# a trakx started here, with Debian's python3, the one netdata runs.
# Usage: test/netdata-module.sh path/to/trakx   (needs netdata-plugins-python)
set -euo pipefail
cd "$(dirname "$0")/.."
trakx=$(realpath "$1")
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$dir/trakx.toml" <<TOML
[udp]
listen = ["127.0.0.1:0"]
[http]
listen = []
[stats]
listen = "127.0.0.1:$port"
[database]
path = "$dir/peers.db"
save_interval = "0"
TOML
"$trakx" -config "$dir/trakx.toml" 2>"$dir/trakx.log" &
pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
/usr/bin/python3 test/netdata_module.py "127.0.0.1:$port" | tail -n 1
