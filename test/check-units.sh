#!/usr/bin/env bash
# Checks the systemd units: `systemd-analyze verify` must print nothing, and
# `systemd-analyze security` must rate trakx.service 2.0 or lower.
# verify needs the ExecStart binary at /usr/bin/trakx: given a built binary
# as $1 and no /usr/bin/trakx, the script puts it there for the check and
# removes it afterwards (root only; CI does this).
set -euo pipefail
cd "$(dirname "$0")/.."
placed=
if [ ! -e /usr/bin/trakx ]; then
  install -m 0755 "${1:?no /usr/bin/trakx: give a built binary}" /usr/bin/trakx
  placed=1
fi
trap '[ -n "$placed" ] && rm -f /usr/bin/trakx' EXIT

# The man page ships in the package; here it is not installed.
out=$(systemd-analyze verify --man=no systemd/trakx.socket systemd/trakx-https.socket systemd/trakx.service 2>&1) || true
if [ -n "$out" ]; then
  echo "FAIL: systemd-analyze verify:"; echo "$out"; exit 1
fi
echo "verify: clean"

score=$(systemd-analyze security --offline=true systemd/trakx.service 2>/dev/null \
  | sed -n 's/.*Overall exposure level for trakx.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "FAIL: no security rating"; exit 1; }
if awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
  echo "security: exposure $score (at most 2.0)"
else
  echo "FAIL: security exposure $score is above 2.0"; exit 1
fi
