#!/usr/bin/env bash
# HTTPS served by trakx itself beside the nginx recipe (nginx terminating
# TLS and proxying plain HTTP to trakx), in one run on this machine. The
# serving side runs pinned to CPU 0 (trakx alone, or nginx's one worker
# and trakx together); the generator (`trakx bench -protocol https`) is
# pinned to CPU 1. Both sides use the same ECDSA P-256 certificate made
# here, TLS 1.2 and 1.3, and X25519 alone (the generator offers only it;
# nginx pins it with ssl_ecdh_curve). The generator keeps no session cache,
# so every new connection is a full handshake. What is read is responses
# per CPU-second of the whole serving side (trakx + nginx's processes), for:
#   new       a new TLS connection per announce (16 at a time)
#   keepalive announces on 16 kept-alive TLS connections
# and two nginx configurations:
#   recipe    the server block of docs/wss-proxy.md as written (its
#             Connection header makes nginx open a new connection to trakx
#             per request)
#   tuned     the same with an upstream keep-alive pool (keepalive 32) for
#             requests that are not WebSocket upgrades: nginx at its best
#
# Usage: test/tls-compare.sh [seconds per run]   (needs nginx, openssl, taskset)
# Writes its raw output to ${OUT:-/tmp/trakx-tls-compare}.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
out=${OUT:-/tmp/trakx-tls-compare}
rm -rf "$out"
mkdir -p "$out"
make -s build
trakx=$PWD/bin/trakx
command -v nginx >/dev/null || { echo "nginx is not installed (apt-get install nginx-light)"; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "needs two CPUs"; exit 1; }

port_https=17080 port_nginx=17081 port_http=17082
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap stop_all EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=tracker.test" \
  -addext "subjectAltName=DNS:tracker.test,IP:127.0.0.1" -keyout "$out/key.pem" -out "$out/cert.pem" 2>/dev/null

# start_trakx: trakx on CPU 0, serving HTTPS itself and plain HTTP for nginx.
start_trakx() {
  cat > "$out/trakx.toml" <<TOML
[udp]
listen = []
[http]
listen = ["127.0.0.1:$port_http"]
real_ip_header = "X-Forwarded-For"
trusted_proxies = ["127.0.0.1"]
[https]
listen = ["127.0.0.1:$port_https"]
cert = "$out/cert.pem"
key = "$out/key.pem"
[stats]
listen = ""
[database]
path = "$out/peers.db"
save_interval = "0"
TOML
  rm -f "$out/peers.db"
  taskset -c 0 "$trakx" -config "$out/trakx.toml" 2>"$out/trakx.log" &
  pids+=($!)
}

# nginx_conf MODE: the recipe's server block (docs/wss-proxy.md) in a
# minimal nginx.conf that runs unprivileged, one worker, access log off.
nginx_conf() {
  local site=$out/site-$1.conf
  sed -n '/^```nginx$/,/^```$/p' docs/wss-proxy.md | sed '1d;$d' \
    | sed -e "s|listen 443 ssl;|listen 127.0.0.1:$port_nginx ssl;\n    ssl_ecdh_curve X25519;\n    ssl_protocols TLSv1.2 TLSv1.3;|" \
          -e "s|listen \[::\]:443 ssl;||" \
          -e "s|/etc/ssl/tracker/fullchain.pem|$out/cert.pem|" -e "s|/etc/ssl/tracker/privkey.pem|$out/key.pem|" \
          -e "s|127.0.0.1:6969|127.0.0.1:$port_http|" > "$site"
  if [ "$1" = tuned ]; then
    # An upstream pool kept alive, and no Connection: close for plain requests.
    sed -i -e "s|''      close;|''      \"\";|" -e "s|proxy_pass http://127.0.0.1:$port_http;|proxy_pass http://trakx;|" "$site"
    printf 'upstream trakx {\n    server 127.0.0.1:%s;\n    keepalive 32;\n}\n' "$port_http" >> "$site"
  fi
  grep -q "proxy_pass" "$site" || { echo "the recipe's server block was not found in docs/wss-proxy.md"; exit 1; }
  cat > "$out/nginx-$1.conf" <<CONF
daemon off;
worker_processes 1;
pid $out/nginx.pid;
error_log $out/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $out; proxy_temp_path $out; fastcgi_temp_path $out; uwsgi_temp_path $out; scgi_temp_path $out;
  include $site;
}
CONF
}

# start_nginx MODE: nginx on CPU 0 beside trakx.
start_nginx() {
  nginx_conf "$1"
  taskset -c 0 nginx -p "$out" -c "$out/nginx-$1.conf" &
  pids+=($!)
}

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1"; exit 1
}

# serving_ticks: CPU ticks used so far by every process of the serving side
# (trakx, nginx's master and worker).
serving_ticks() {
  local sum=0 p
  for p in "${pids[@]}" $(pgrep -P "${pids[-1]}" 2>/dev/null || true); do
    [ -r "/proc/$p/stat" ] && sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
  done
  echo "$sum"
}

# run LABEL PORT BENCH-ARGS...: one measurement; prints "rps cpu% errors".
run() {
  local label=$1 port=$2 t0 t1 start end; shift 2
  t0=$(serving_ticks); start=$(date +%s.%N)
  taskset -c 1 "$trakx" bench -protocol https -target "127.0.0.1:$port" -duration "${secs}s" -warmup 0s "$@" > "$out/$label.txt"
  t1=$(serving_ticks); end=$(date +%s.%N)
  local rps errors
  rps=$(sed -n 's/^RESULT.* rps=\([0-9]*\).*/\1/p' "$out/$label.txt")
  errors=$(sed -n 's/^RESULT.* errors=\([0-9]*\).*/\1/p' "$out/$label.txt")
  echo "$rps $(awk -v a="$t0" -v b="$t1" -v s="$start" -v e="$end" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / (e - s) }') ${errors:-?}"
}

declare -A workload=(
  [new]="-torrents 10000 -workers 16"
  [keepalive]="-keepalive -torrents 10000 -workers 16"
)
declare -A result
for side in trakx recipe tuned; do
  start_trakx
  wait_port "$port_http"
  port=$port_https
  if [ "$side" != trakx ]; then
    start_nginx "$side"
    wait_port "$port_nginx"
    port=$port_nginx
  fi
  for kind in new keepalive; do
    # shellcheck disable=SC2086 # the workload's arguments, split into words
    result[$side,$kind]=$(run "$side-$kind" "$port" ${workload[$kind]})
  done
  stop_all
done

per_cpu() { awk -v r="$1" -v c="$2" 'BEGIN { if (c > 0) printf "%.0f", r * 100 / c; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "trakx $("$trakx" version | cut -d' ' -f2-) vs $(nginx -v 2>&1 | cut -d' ' -f3) + trakx, ${secs}s per run, ECDSA P-256, X25519, $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "serving side on CPU 0, generator on CPU 1; ratio: trakx alone / nginx + trakx"
printf '%-34s %12s %14s %14s %9s %9s\n' "" "trakx https" "nginx recipe" "nginx tuned" "/recipe" "/tuned"
for kind in new keepalive; do
  read -r tr tc te <<<"${result[trakx,$kind]}"
  read -r rr rc re <<<"${result[recipe,$kind]}"
  read -r ur uc ue <<<"${result[tuned,$kind]}"
  label="new TLS connection per announce"; [ "$kind" = keepalive ] && label="keep-alive TLS connections"
  tpc=$(per_cpu "$tr" "$tc") rpc=$(per_cpu "$rr" "$rc") upc=$(per_cpu "$ur" "$uc")
  echo "$label"
  printf '%-34s %12s %14s %14s %9s %9s\n' "  responses/s" "$tr" "$rr" "$ur" "$(ratio "$tr" "$rr")" "$(ratio "$tr" "$ur")"
  printf '%-34s %11s%% %13s%% %13s%%\n' "  serving CPU" "$tc" "$rc" "$uc"
  printf '%-34s %12s %14s %14s %9s %9s\n' "  per serving CPU-second" "$tpc" "$rpc" "$upc" "$(ratio "$tpc" "$rpc")" "$(ratio "$tpc" "$upc")"
  printf '%-34s %12s %14s %14s\n' "  errors" "$te" "$re" "$ue"
done
