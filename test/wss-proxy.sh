#!/usr/bin/env bash
# Browsers need wss:// (an https page cannot open ws://). This runs the
# reverse-proxy recipe of docs/wss-proxy.md as written: Debian's nginx
# terminates TLS (a self-signed certificate made here), forwards WebSocket
# upgrades and the client's address to trakx, which trusts it for
# X-Forwarded-For. Then it announces through it over wss:// (a WebSocket
# client from test/webtorrent) and https:// (curl) from 127.0.0.2, and
# checks that trakx saw 127.0.0.2, not the proxy.
#
# Usage: test/wss-proxy.sh path/to/trakx   (needs nginx, openssl, curl, node
# and npm ci in test/webtorrent)
set -euo pipefail
cd "$(dirname "$0")/.."
trakx=$(realpath "$1")
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
tracker_port=$(free_port); stats_port=$(free_port); proxy_port=$(free_port)

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tracker.test" \
  -addext "subjectAltName=DNS:tracker.test,IP:127.0.0.1" -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null

cat > "$dir/trakx.toml" <<TOML
[udp]
listen = []
[http]
listen = ["127.0.0.1:$tracker_port"]
real_ip_header = "X-Forwarded-For"
trusted_proxies = ["127.0.0.1"]
[stats]
listen = "127.0.0.1:$stats_port"
[database]
path = "$dir/peers.db"
TOML
"$trakx" -config "$dir/trakx.toml" 2>"$dir/trakx.log" &
pids+=($!)

# The recipe's server block (docs/wss-proxy.md), inside a minimal nginx.conf
# so that it runs unprivileged, in the foreground, from this directory.
sed -n '/^```nginx$/,/^```$/p' docs/wss-proxy.md | sed '1d;$d' \
  | sed -e "s|listen 443 ssl;|listen 127.0.0.1:$proxy_port ssl;|" -e "s|listen \[::\]:443 ssl;||" \
        -e "s|/etc/ssl/tracker/fullchain.pem|$dir/cert.pem|" -e "s|/etc/ssl/tracker/privkey.pem|$dir/key.pem|" \
        -e "s|127.0.0.1:6969|127.0.0.1:$tracker_port|" > "$dir/site.conf"
cat > "$dir/nginx.conf" <<CONF
daemon off;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events {}
http {
  access_log $dir/nginx-access.log;
  client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir; uwsgi_temp_path $dir; scgi_temp_path $dir;
  include $dir/site.conf;
}
CONF
nginx -p "$dir" -c "$dir/nginx.conf" &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$proxy_port") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$tracker_port") 2>/dev/null && break
  sleep 0.1
done

hash='%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10%11%12%13%14'
echo "== https:// through nginx, from 127.0.0.2"
curl -sS --fail --cacert "$dir/cert.pem" --interface 127.0.0.2 --resolve "tracker.test:$proxy_port:127.0.0.1" \
  "https://tracker.test:$proxy_port/announce?info_hash=$hash&peer_id=-CU0001-000000000001&port=6881&left=10&compact=0" -o "$dir/first.txt"
reply=$(curl -sS --fail --cacert "$dir/cert.pem" --resolve "tracker.test:$proxy_port:127.0.0.1" \
  "https://tracker.test:$proxy_port/announce?info_hash=$hash&peer_id=-CU0001-000000000002&port=6882&left=10&compact=0")
echo "$reply"
case "$reply" in
  *"2:ip9:127.0.0.24:porti6881e"*) echo "trakx saw the client's address, 127.0.0.2, through the proxy" ;;
  *) echo "FAIL: the peer announced from 127.0.0.2 is not listed as 127.0.0.2"; exit 1 ;;
esac

echo "== wss:// through nginx"
NODE_EXTRA_CA_CERTS="$dir/cert.pem" node test/webtorrent/wss-announce.mjs "wss://127.0.0.1:$proxy_port/announce"
curl -s "http://127.0.0.1:$stats_port/debug/vars" | /usr/bin/python3 -c '
import json, sys
ws = json.load(sys.stdin)["trakx"]["websocket"]
assert ws["announce"] >= 1, ws
print("trakx counted", ws["announce"], "WebSocket announces through the proxy")'
echo "PASS: wss:// and https:// through nginx"
