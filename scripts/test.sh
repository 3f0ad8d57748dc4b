#!/usr/bin/env bash
# Sets up and runs cityhub's whole test suite on a fresh Debian machine: installs Debian's mosquitto and
# influxdb (the tests start private instances of both), mbpoll and snmp (Modbus and SNMP clients that
# are not ours) and chromium (the console's browser tests) when missing, the Python packages, then runs
# ruff, mypy and every pytest test (fault, fuzz, browser and end-to-end included).
# Arguments go to pytest (e.g. -k hostile).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ] || missing+=(influxdb)
command -v mbpoll >/dev/null 2>&1 || missing+=(mbpoll)  # a Modbus client that is not ours, for the simulators
command -v snmpget >/dev/null 2>&1 || missing+=(snmp)  # net-snmp's snmpget/snmpwalk/snmptrap, likewise for SNMP
command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)  # the registration flow by hand
command -v openssl >/dev/null 2>&1 || missing+=(openssl)  # the broker bootstrap's test CA
[ -x /usr/bin/chromium ] || missing+=(chromium)  # the operator console's browser tests (headless, through Playwright)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)  # verifies the deploy/systemd units
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

scripts/venv.sh dev

echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy (strict)"
.venv/bin/mypy
echo "==> pytest"
exec .venv/bin/pytest "$@"
