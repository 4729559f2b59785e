#!/usr/bin/env bash
# The README's Quick start, tried as a newcomer would (issue 21, point 10):
# on a fresh Debian 12 with only the README's prerequisites, as a user who
# is not root, the two commands exactly as the README gives them:
#
#   go run ./cmd/trakx    must start on the built-in defaults, answer a UDP
#                         connect and an HTTP announce on port 6969, and stop
#                         on SIGTERM (to go run), saving its database;
#   make test             must pass, the tests whose tools are missing
#                         (python3 modules, promtool, Node.js and npm,
#                         systemd's tools, curl) skipping themselves.
#
# Then, to say what ran, every test once more without the race detector
# (go test -json): the counts of passed and skipped tests, and why each
# skipped.
#
# How: debootstrap builds a minimal bookworm tree (--variant=minbase) and
# `apt-get install make git gcc ca-certificates` (the README's
# prerequisites; ca-certificates for the Go module proxy over HTTPS) goes
# into it; that base tree is cached in $TRAKX_E2E_CACHE (default
# /var/cache/trakx-e2e, beside test/e2e.sh's) and built fresh when CI is
# set. Each run copies it, copies this machine's /usr/local/go in (bookworm
# packages no Go 1.26), adds a user, clones REPOSITORY (its HEAD: commit
# first what is to be tried) and runs each command in systemd-nspawn
# --pipe, which shares this machine's network: the container fetches
# modules from the Go module proxy, and the tracker takes ports 6969 and
# 6880 here, which must be free. When nspawn returns, nothing of the
# container runs any more; the copy is deleted on exit, the logs kept in
# $TRAKX_NEWCOMER_LOGS (default /var/tmp/trakx-newcomer-logs).
#
# Usage: test/newcomer.sh [REPOSITORY]   (default: the one holding this script)
# Needs root, debootstrap, systemd-container, Go in /usr/local/go, and the
# network: a Debian mirror and the Go module proxy. About 15 minutes on two
# cores (20 with the base tree to build), most of it make test. Not run by .ci/run: it needs the network.
#
# TRAKX_NEWCOMER_PACKAGES="python3 ..." installs more Debian packages in the
# container first: a standard Debian 12 install has python3 but none of the
# modules the tests use (the machine issue 21 was found on), which
# TRAKX_NEWCOMER_PACKAGES=python3 reproduces.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "${1:-$here/..}" && git rev-parse --show-toplevel)
goroot=${TRAKX_NEWCOMER_GOROOT:-/usr/local/go}
logs=${TRAKX_NEWCOMER_LOGS:-/var/tmp/trakx-newcomer-logs}
extra=${TRAKX_NEWCOMER_PACKAGES:-}
prerequisites="make git gcc ca-certificates"

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, systemd-nspawn)"
command -v debootstrap >/dev/null || fail "needs debootstrap (apt-get install debootstrap)"
command -v systemd-nspawn >/dev/null || fail "needs systemd-nspawn (apt-get install systemd-container)"
[ -x "$goroot/bin/go" ] || fail "no Go in $goroot (TRAKX_NEWCOMER_GOROOT)"
# The container shares this machine's network: the README's tracker takes
# its default ports here.
busy=$(ss -Hlntu '( sport = :6969 or sport = :6880 )' 2>/dev/null || true)
[ -z "$busy" ] || fail "ports 6969 or 6880 are taken here, and the tracker in the container needs them:
$busy"

mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

work=$(mktemp -d /var/tmp/trakx-newcomer.XXXXXX)
rm -rf "$logs"
mkdir -p "$logs"
cleanup() {
  rm -rf "$work"
  echo "logs: $logs"
}
trap cleanup EXIT

# ct [nspawn options] -- COMMAND...: runs COMMAND in the tree $root and
# returns when it and everything it started are gone.
# (Without systemd as PID 1 here, nspawn ends with a harmless complaint
# about its propagation directory: filtered out.)
ct() {
  systemd-nspawn -q --keep-unit --register=no --pipe -D "$root" --setenv=LANG=C.UTF-8 "$@" \
    2> >(grep -v '^Attempted to remove disk file system under' >&2)
}

# --- the base tree -----------------------------------------------------------
if [ -n "${CI:-}" ]; then
  base="$work/base"
else
  base="${TRAKX_E2E_CACHE:-/var/cache/trakx-e2e}/bookworm-newcomer"
fi
if [ "$(cat "$base/.complete" 2>/dev/null)" != "$prerequisites" ]; then
  step "building the base tree in $base: Debian 12 minbase, then apt-get install $prerequisites"
  rm -rf "$base"
  mkdir -p "$(dirname "$base")"
  debootstrap --variant=minbase bookworm "$base" "$mirror" >"$logs/debootstrap.log" 2>&1 \
    || { tail -20 "$logs/debootstrap.log"; fail "debootstrap"; }
  root=$base
  # The README's apt-get install, recommended packages and all.
  ct -- sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $prerequisites && apt-get clean" \
    >"$logs/prerequisites.log" 2>&1 || { tail -20 "$logs/prerequisites.log"; fail "apt-get install $prerequisites"; }
  echo "$prerequisites" >"$base/.complete"
fi

# --- this run's copy -----------------------------------------------------------
step "a fresh copy of the tree; Go from $goroot; a user; git clone $repo"
root="$work/root"
cp -a "$base" "$root"
rm "$root/.complete"
if [ -n "$extra" ]; then
  echo "with $extra"
  ct -- sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $extra && apt-get clean" \
    >"$logs/extra.log" 2>&1 || { tail -20 "$logs/extra.log"; fail "apt-get install $extra"; }
fi
# Certificate authorities this machine trusts beyond Debian's (a proxy that
# intercepts TLS on the way to the module proxy): a newcomer's machine on
# this network would trust them too.
n=$(awk -v dir="$root/usr/local/share/ca-certificates" '
  FNR == 1 { file++ }
  /-----BEGIN CERTIFICATE-----/ { pem = "" }
  { pem = pem $0 "\n" }
  /-----END CERTIFICATE-----/ {
    if (file == 1) known[pem] = 1
    else if (!(pem in known)) { n++; printf "%s", pem > (dir "/this-machine-" n ".crt") }
  }
  END { print n + 0 }' "$root/etc/ssl/certs/ca-certificates.crt" /etc/ssl/certs/ca-certificates.crt 2>/dev/null || echo 0)
if [ "$n" != 0 ]; then
  echo "adding $n certificate authorities this machine trusts and Debian does not"
  ct -- update-ca-certificates >"$logs/ca.log" 2>&1 || { cat "$logs/ca.log"; fail "update-ca-certificates"; }
fi
cp -a "$goroot" "$root/usr/local/go"
ct -- useradd -m -s /bin/bash newcomer
# Cloned by root, as the repository is root's here (git refuses to clone a
# local repository another user owns), then handed to the user.
ct --bind-ro="$repo:/src" -- sh -c 'git clone -q /src /home/newcomer/trakx && chown -R newcomer: /home/newcomer/trakx'
commit=$(git -C "$repo" rev-parse --short HEAD)
echo "cloned $commit; $(ct -- dpkg-query -W -f '${Package}\n' | wc -l) Debian packages installed"
ct -- sh -c 'for tool in python3 promtool node npm curl systemd-socket-activate; do
  printf "%s: %s\n" $tool "$(command -v $tool || echo not installed)"; done'

# As the user, in the clone, with Go in PATH as Go's install guide says,
# and without the NOTIFY_SOCKET nspawn sets: no systemd service manager
# runs a newcomer's commands.
user() {
  ct --user=newcomer --chdir=/home/newcomer/trakx --setenv=HOME=/home/newcomer \
    --setenv=PATH=/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin -- env -u NOTIFY_SOCKET "$@"
}

# --- go run ./cmd/trakx ------------------------------------------------------------
step "go run ./cmd/trakx"
# One container run: the tracker in the background, a UDP connect and an
# HTTP announce to it on loopback (bash's /dev/udp and /dev/tcp: nothing
# else is installed to speak either), then SIGTERM to go run.
user bash -c '
set -u
: >tracker.log
go run ./cmd/trakx 2>tracker.log &
gorun=$!
# The first run downloads the modules and compiles: minutes.
for _ in $(seq 1200); do
  grep -q " serving " tracker.log && break
  kill -0 $gorun 2>/dev/null || break
  sleep 0.5
done
grep " serving " tracker.log | grep -q " serving udp .*:6969, http .*:6969" \
  || { cat tracker.log; echo "FAIL: no start-up line serving UDP and HTTP on port 6969"; exit 1; }

exec 3<>/dev/udp/127.0.0.1/6969
# BEP 15 connect: the protocol id, action 0, transaction id 0x6e657763.
printf "\x00\x00\x04\x17\x27\x10\x19\x80\x00\x00\x00\x00\x6e\x65\x77\x63" >&3
reply=$(timeout 10 head -c 16 <&3 | od -An -tx1 | tr -d " \n")
exec 3<&-
case "$reply" in
  000000006e657763????????????????) echo "udp connect: answered, connection id ${reply:16}" ;;
  *) cat tracker.log; echo "FAIL: udp connect reply \"$reply\""; exit 1 ;;
esac

exec 3<>/dev/tcp/127.0.0.1/6969
printf "GET /announce?info_hash=newcomer-infohash-01&peer_id=-NC0001-000000000001&port=6881&uploaded=0&downloaded=0&left=0&compact=1 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
reply=$(timeout 10 cat <&3 | tr -d "\0")
exec 3<&-
echo "http announce: $(printf "%s" "$reply" | tail -n 1)"
case "$reply" in
  "HTTP/1.1 200 OK"*"8:completei1e10:incompletei0e"*) ;;
  *) cat tracker.log; echo "FAIL: http announce reply: $reply"; exit 1 ;;
esac

# go run dies of SIGTERM; the tracker it started gets SIGTERM as it does
# (gorun_linux.go), and says when it has stopped.
kill -TERM $gorun
wait $gorun
for _ in $(seq 120); do
  grep -q "msg=\"stopped with " tracker.log && break
  sleep 0.5
done
cat tracker.log
grep -q "msg=\"saved 1 peers in 1 torrents to peers.db" tracker.log && grep -q "msg=\"stopped with 1 peers in 1 torrents" tracker.log \
  || { echo "FAIL: the tracker did not save its database and stop on SIGTERM to go run"; exit 1; }
rm tracker.log peers.db
' 2>&1 | tee "$logs/go-run.log" && status=0 || status=${PIPESTATUS[0]}
[ "$status" = 0 ] || fail "go run ./cmd/trakx"
echo "PASS: go run ./cmd/trakx served UDP and HTTP on the defaults and stopped cleanly"

# --- make test ----------------------------------------------------------------
step "make test"
start=$SECONDS
user make test 2>&1 | tee "$logs/make-test.log" && status=0 || status=${PIPESTATUS[0]}
echo "make test exited $status after $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s"
[ "$status" = 0 ] || fail "make test (log: $logs/make-test.log)"

# --- what ran -----------------------------------------------------------------
step "what ran: go test -json, without the race detector"
user bash -c 'go test -count=1 -json ./... && TRAKX_WEBTORRENT=1 go test -count=1 -json -run TestWebTorrentClients ./internal/daemon' \
  >"$logs/go-test.json" 2>&1 || { grep -E '"Action":"fail"' "$logs/go-test.json"; fail "go test -json (log: $logs/go-test.json)"; }
# Counts of tests and subtests; each skip with the message its test gave.
awk '
  function field(name,   v) {
    if (!match($0, "\"" name "\":\"([^\"\\\\]|\\\\.)*\"")) return ""
    v = substr($0, RSTART + length(name) + 4, RLENGTH - length(name) - 5)
    gsub(/\\n/, " ", v); gsub(/\\t/, " ", v); gsub(/\\"/, "\"", v); gsub(/\\\\/, "\\", v)
    return v
  }
  !/"Test":/ { next }
  { key = field("Package") " " field("Test"); sub(/^github\.com\/trakx\/trakx\//, "", key) }
  /"Action":"run"/ { said[key] = "" }
  /"Action":"output"/ {
    out = field("Output")
    if (out !~ /^ *(=== |--- )/) { sub(/^ +/, "", out); sub(/ +$/, "", out); said[key] = said[key] out }
  }
  /"Action":"pass"/ { passed++ }
  /"Action":"fail"/ { failed++ }
  /"Action":"skip"/ { skipped++; why = why "\n  " key ": " said[key] }
  END {
    printf "tests and subtests: %d passed, %d failed, %d skipped", passed, failed, skipped
    print " (TestWebTorrentClients runs twice: the first run leaves it to the second)" why
  }' "$logs/go-test.json"
echo "PASS: both README commands work on a fresh Debian 12 with $prerequisites${extra:+ $extra} (commit $commit)"
