#!/usr/bin/env bash
# End-to-end test of the package in a real systemd, booted in systemd-nspawn
# with a private network (only loopback inside):
#   install -> the first request starts the service through its socket ->
#   UDP and HTTP peers see each other -> journal priorities -> reload ->
#   restart keeps peers -> upgrade keeps an edited conffile and the peers ->
#   HTTPS on trakx-https.socket with both certificate routes (LoadCredential;
#   a group-readable copy, renewed by a reload) -> netdata lists the trakx
#   charts -> remove -> purge leaves nothing.
#
# Usage: test/e2e.sh OLD.deb NEW.deb   (NEW must be a newer version)
# Needs root, systemd-container and debootstrap. The base tree (Debian 12
# with systemd, python3, netdata and netdata-plugins-python) is cached in
# $TRAKX_E2E_CACHE (default /var/cache/trakx-e2e) between local runs; with
# CI set it is always built fresh.
set -euo pipefail
old_deb=$(realpath "${1:?usage: $0 OLD.deb NEW.deb}")
new_deb=$(realpath "${2:?usage: $0 OLD.deb NEW.deb}")
here=$(cd "$(dirname "$0")" && pwd)

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# --- the base tree -----------------------------------------------------------
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || fail "no Debian mirror in /etc/apt/sources.list*"

work=$(mktemp -d /var/tmp/trakx-e2e.XXXXXX)
leader=
nspawn=
cleanup() {
  if [ -n "$nspawn" ]; then
    kill "$nspawn" 2>/dev/null || true
    wait "$nspawn" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${CI:-}" ]; then
  base="$work/base"
else
  base="${TRAKX_E2E_CACHE:-/var/cache/trakx-e2e}/bookworm-netdata"
fi
if [ ! -f "$base/.complete" ]; then
  step "building the base tree in $base"
  rm -rf "$base"
  mkdir -p "$(dirname "$base")"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,iproute2,procps,python3 \
    bookworm "$base" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
  # netdata goes into the base: inside, the container has no network.
  chroot "$base" sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q netdata netdata-plugins-python' \
    >"$work/netdata.log" 2>&1 || { tail -20 "$work/netdata.log"; fail "installing netdata in the base tree"; }
  chroot "$base" apt-get clean
  touch "$base/.complete"
fi

# --- boot --------------------------------------------------------------------
step "booting systemd in a container"
root="$work/root"
cp -a "$base" "$root"
mkdir -p "$root/root/e2e"
cp "$old_deb" "$root/root/e2e/old.deb"
cp "$new_deb" "$root/root/e2e/new.deb"
cp "$here/e2e_client.py" "$root/root/e2e/client.py"
# Two certificates for 127.0.0.1, as certbot's first and renewed ones.
for name in first second; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=$name" \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$root/root/e2e/$name.key" -out "$root/root/e2e/$name.crt" 2>/dev/null \
    || fail "openssl: making the $name certificate"
done
cat "$root/root/e2e/first.crt" "$root/root/e2e/second.crt" > "$root/root/e2e/ca.pem"
systemd-nspawn -D "$root" -b --keep-unit --register=no --console=passive --private-network \
  --machine=trakx-e2e >"$work/console.log" 2>&1 &
nspawn=$!
# The container's init: nspawn's first child may be its own helper, which
# forks init and exits (init is then reparented to nspawn), so wait for
# the child that is systemd, not just any child.
leader=
for _ in $(seq 600); do
  for p in $(pgrep -P "$nspawn" || true); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] && leader=$p
  done
  [ -n "$leader" ] && break
  sleep 0.1
done
[ -n "$leader" ] || { cat "$work/console.log"; fail "the container's systemd did not start"; }
ct() { nsenter -t "$leader" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
state=
# Up to three minutes: a loaded machine (CI beside other work) boots slowly.
for _ in $(seq 1800); do
  state=$(ct systemctl is-system-running 2>/dev/null || true)
  case "$state" in running | degraded) break ;; esac
  sleep 0.1
done
case "$state" in running | degraded) echo "system is $state" ;; *) cat "$work/console.log"; fail "boot: $state" ;; esac
client() { ct python3 /root/e2e/client.py "$@"; }
version_of() { ct dpkg-query -W -f '${Version}' trakx; }

# --- install -----------------------------------------------------------------
step "apt install ./trakx_*.deb"
ct apt-get install -y -q /root/e2e/old.deb >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "install"; }
[ -z "$(ct dpkg --audit)" ] || fail "dpkg left packages half-configured"
ct systemctl is-active --quiet trakx.socket || fail "trakx.socket is not active after install"
ct systemctl is-enabled --quiet trakx.socket || fail "trakx.socket is not enabled after install"
if ct systemctl is-active --quiet trakx.service; then fail "trakx.service runs before any request"; fi
ct test -d /etc/trakx || fail "the package did not create /etc/trakx"
ct test -d /var/lib/trakx || fail "the package did not create /var/lib/trakx, the database directory of /etc/trakx.toml"
ct trakx check-config -config /etc/trakx.toml >/dev/null || fail "trakx check-config refuses the shipped /etc/trakx.toml"
for arg in version --version; do
  ct trakx "$arg" | grep -q "^trakx $(version_of) " || fail "trakx $arg does not print the package version $(version_of)"
done
echo "installed $(version_of); socket active, service waiting for its first request"

# --- the first request starts it; peers see each other ------------------------
step "announces over UDP and HTTP"
udp_reply=$(client udp 6969 e2e-torrent 7001 0)
echo "udp seeder: $udp_reply"
ct systemctl is-active --quiet trakx.service || fail "the first UDP request did not start trakx.service"
http_reply=$(client http 6969 e2e-torrent 7002 100)
echo "http leecher: $http_reply"
case "$http_reply" in *"peers=127.0.0.1:7001"*) ;; *) fail "the HTTP peer was not sent the UDP peer" ;; esac
udp_reply=$(client udp 6969 e2e-torrent 7003 100)
echo "udp leecher: $udp_reply"
case "$udp_reply" in *127.0.0.1:7001* ) ;; *) fail "a UDP peer was not sent the others" ;; esac
case "$udp_reply" in *127.0.0.1:7002*) ;; *) fail "a UDP peer was not sent the HTTP peer" ;; esac

# --- journal -----------------------------------------------------------------
step "journalctl -u trakx"
journal_info=$(ct journalctl -u trakx -p info -o cat --no-pager)
echo "$journal_info" | grep -E 'serving|database' || true
echo "$journal_info" | grep -q 'serving udp \[::\]:6969 (inherited), http \[::\]:6969 (inherited)' \
  || fail "no start-up line naming the inherited sockets"
echo "$journal_info" | grep -q 'no database at /var/lib/trakx/peers.db yet' || fail "no database line at start-up"
if ct journalctl -u trakx -p warning -o cat --no-pager | grep -q serving; then
  fail "the info start-up line shows at priority warning: priorities are not passed to the journal"
fi
prio=$(ct journalctl -u trakx -o export --no-pager | awk -F= '/^MESSAGE=trakx .* serving/ { s = 1 } s && /^PRIORITY=/ { print $2; exit }')
[ "$prio" = 6 ] || fail "the start-up line has priority '$prio', want 6"

# --- reload --------------------------------------------------------------------
step "systemctl reload trakx"
pid=$(ct systemctl show -P MainPID trakx.service)
ct systemctl reload trakx.service || fail "reload"
ct journalctl -u trakx -o cat --no-pager | grep -q 'configuration reloaded' || fail "reload not logged"
[ "$(ct systemctl show -P MainPID trakx.service)" = "$pid" ] || fail "reload replaced the process"
ct systemctl is-active --quiet trakx.service || fail "not active after reload"

# --- restart keeps the peers -------------------------------------------------
step "systemctl restart trakx keeps the peers"
before=$(client scrape 6969 e2e-torrent)
ct systemctl restart trakx.service
after=$(client scrape 6969 e2e-torrent)
echo "before: $before"; echo "after:  $after"
[ "$before" = "$after" ] || fail "restart lost peers"
ct journalctl -u trakx -o cat --no-pager | grep -q 'loaded 3 peers in 1 torrents from /var/lib/trakx/peers.db' \
  || fail "no load line after restart"

# --- upgrade keeps an edited conffile and the peers ----------------------------
step "upgrade to a newer build"
ct sed -i 's/^# numwant_default = 50/numwant_default = 40/' /etc/trakx.toml
old_pid=$(ct systemctl show -P MainPID trakx.service)
ct apt-get install -y -q -o Dpkg::Options::=--force-confold /root/e2e/new.deb >"$work/upgrade.log" 2>&1 \
  || { cat "$work/upgrade.log"; fail "upgrade"; }
[ -z "$(ct dpkg --audit)" ] || fail "dpkg left packages half-configured after upgrade"
echo "upgraded to $(version_of)"
ct grep -q '^numwant_default = 40' /etc/trakx.toml || fail "the upgrade replaced the edited /etc/trakx.toml"
new_pid=$(ct systemctl show -P MainPID trakx.service)
[ "$new_pid" != "$old_pid" ] && [ "$new_pid" != 0 ] || fail "the upgrade did not restart the service"
ct trakx version | grep -qF "trakx $(version_of) " || fail "the installed binary is not the new one: $(ct trakx version)"
ct journalctl -u trakx -o cat --no-pager | grep -qF "trakx $(version_of) serving" || fail "the running process is not the new one"
after_upgrade=$(client scrape 6969 e2e-torrent)
echo "after upgrade: $after_upgrade"
[ "$after_upgrade" = "$before" ] || fail "the upgrade lost peers"

# --- HTTPS: trakx-https.socket, both certificate routes ------------------------
# https_get prints the certificate's name, the status line, the TLS version
# and the ALPN protocol of one request over TLS to 127.0.0.1:443.
https_get() {
  ct python3 -c 'import socket, ssl
ctx = ssl.create_default_context(cafile="/root/e2e/ca.pem")
ctx.set_alpn_protocols(["http/1.1"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 443), timeout=10), server_hostname="127.0.0.1")
s.sendall(b"GET /scrape HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
print(cn, data.split(b"\r\n")[0].decode(), s.version(), s.selected_alpn_protocol())'
}
dropin=/etc/systemd/system/trakx.service.d/https.conf
step "HTTPS with LoadCredential: trakx-https.socket, a root-only key"
ct mkdir -p /etc/letsencrypt/live/tracker /etc/systemd/system/trakx.service.d
ct install -m 0600 /root/e2e/first.crt /etc/letsencrypt/live/tracker/fullchain.pem
ct install -m 0600 /root/e2e/first.key /etc/letsencrypt/live/tracker/privkey.pem
ct sed -i -e '/^\[https\]$/a cert = "https.crt"' -e '/^\[https\]$/a key = "https.key"' /etc/trakx.toml # in [https], wherever it is
ct sh -c "printf '[Service]\nLoadCredential=https.crt:/etc/letsencrypt/live/tracker/fullchain.pem\nLoadCredential=https.key:/etc/letsencrypt/live/tracker/privkey.pem\n' > $dropin"
note=$(ct trakx check-config -config /etc/trakx.toml 2>&1 >/dev/null) || fail "check-config refuses credentials it cannot see: $note"
case "$note" in *"not visible here"*) ;; *) fail "check-config does not say the credentials are not visible here: $note" ;; esac
ct systemctl daemon-reload
# systemd starts no socket whose service runs: stop, start both (the stop
# saves the swarms, the start loads them).
ct systemctl enable trakx-https.socket || fail "enabling trakx-https.socket"
ct systemctl stop trakx.service
ct systemctl start trakx-https.socket trakx.service || fail "starting trakx-https.socket and trakx.service"
reply=$(https_get) || fail "no HTTPS reply with LoadCredential"
echo "LoadCredential: $reply"
case "$reply" in "first HTTP/1.1 200 OK TLSv1."[23]" http/1.1") ;; *) fail "HTTPS with LoadCredential: $reply" ;; esac
ct journalctl -u trakx -o cat --no-pager | grep -q 'https \[::\]:443 (inherited)' || fail "the start-up line names no inherited https socket"

step "HTTPS from a group-readable copy, renewed by a reload"
ct groupadd --system trakx-tls
ct install -d -m 0750 -g trakx-tls /etc/trakx/tls
ct install -m 0640 -g trakx-tls /root/e2e/first.crt /etc/trakx/tls/fullchain.pem
ct install -m 0640 -g trakx-tls /root/e2e/first.key /etc/trakx/tls/privkey.pem
ct sed -i 's|^cert = "https.crt"|cert = "/etc/trakx/tls/fullchain.pem"|; s|^key = "https.key"|key = "/etc/trakx/tls/privkey.pem"|' /etc/trakx.toml
ct sh -c "printf '[Service]\nSupplementaryGroups=trakx-tls\n' > $dropin"
ct systemctl daemon-reload
ct systemctl restart trakx.service
reply=$(https_get) || fail "no HTTPS reply from the group-readable copy"
echo "group-readable copy: $reply"
case "$reply" in "first HTTP/1.1 200 OK"*) ;; *) fail "HTTPS from the group-readable copy: $reply" ;; esac
# What certbot's deploy hook does: copy the renewed pair, reload.
ct install -m 0640 -g trakx-tls /root/e2e/second.crt /etc/trakx/tls/fullchain.pem
ct install -m 0640 -g trakx-tls /root/e2e/second.key /etc/trakx/tls/privkey.pem
pid=$(ct systemctl show -P MainPID trakx.service)
ct systemctl reload trakx.service || fail "reload"
reply=$(https_get) || fail "no HTTPS reply after the renewal"
echo "after the reload: $reply"
case "$reply" in "second HTTP/1.1 200 OK"*) ;; *) fail "a new handshake after the reload did not get the renewed certificate: $reply" ;; esac
[ "$(ct systemctl show -P MainPID trakx.service)" = "$pid" ] || fail "the certificate's reload replaced the process"
ct journalctl -u trakx -o cat --no-pager | grep -q 'https: certificate reloaded: CN=second' || fail "the certificate's reload is not logged"
# Back to the package's own setup, so that purge can be checked below.
ct systemctl disable --now trakx-https.socket 2>/dev/null
ct rm -rf /etc/systemd/system/trakx.service.d /etc/trakx/tls /etc/letsencrypt
ct systemctl daemon-reload
ct systemctl restart trakx.service

# --- netdata -----------------------------------------------------------------
step "netdata graphs trakx"
ct systemctl is-active --quiet netdata || ct systemctl start netdata
charts=
for _ in $(seq 120); do
  charts=$(ct python3 -c 'import json, urllib.request
try:
    d = json.load(urllib.request.urlopen("http://127.0.0.1:19999/api/v1/charts", timeout=2))
    print(" ".join(sorted(c for c in d["charts"] if c.startswith("trakx"))))
except Exception:
    pass' || true)
  case "$charts" in *trakx_local.requests*) break ;; esac
  sleep 1
done
echo "netdata charts: $charts"
for chart in requests swarm_peers swarm_torrents errors refused database_saves; do
  case " $charts " in *" trakx_local.$chart "*) ;; *) fail "netdata has no chart trakx_local.$chart" ;; esac
done
alarms=
for _ in $(seq 60); do
  alarms=$(ct python3 -c 'import json, urllib.request
d = json.load(urllib.request.urlopen("http://127.0.0.1:19999/api/v1/alarms?all", timeout=5))
print(" ".join(sorted(a["name"] for a in d["alarms"].values() if a["name"].startswith("trakx"))))' || true)
  case "$alarms" in *trakx_database_save_errors*) break ;; esac
  sleep 1
done
echo "netdata alarms: $alarms"
case "$alarms" in *trakx_database_save_errors*) ;; *) fail "the trakx health alarms are not loaded" ;; esac

# --- remove, then purge ------------------------------------------------------
step "apt remove, then apt purge"
ct apt-get remove -y -q trakx >"$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "remove"; }
if ct systemctl is-active --quiet trakx.service trakx.socket; then fail "trakx still runs after remove"; fi
ct test ! -e /usr/bin/trakx || fail "remove left /usr/bin/trakx"
ct test -e /etc/trakx.toml || fail "remove deleted the conffile (only purge should)"
ct apt-get purge -y -q trakx >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "purge"; }
[ -z "$(ct dpkg --audit)" ] || fail "dpkg left packages half-configured after purge"
left=$(ct sh -c 'ls -d /etc/trakx.toml /etc/trakx /var/lib/trakx /var/lib/private/trakx 2>/dev/null; find /etc/systemd /usr/lib/systemd /usr/lib/netdata -name "trakx*" 2>/dev/null; dpkg -l trakx 2>/dev/null | grep "^[a-z][a-z] " | grep -v "^un"' || true)
[ -z "$left" ] || fail "purge left behind: $left"

echo
echo "PASS: end-to-end in systemd"
