#!/usr/bin/env bash
# Creates .venv (once) and installs cityhub into it, with the extras named as arguments (e.g. dev).
# Used by scripts/demo.sh and scripts/test.sh; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian splits venv support out of python3 (package python3-venv).
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "==> installing python3-venv (Debian package)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  python3 -m venv .venv
fi
spec="."
if [ $# -gt 0 ]; then spec=".[$(IFS=,; echo "$*")]"; fi
echo "==> installing cityhub${1:+ with extras: $*} into .venv"
# pip's build step prints setuptools' notices even with --quiet: keep them in a log, show it on failure.
log=.venv/pip-install.log
if ! { .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip &&
       .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "pip install failed (log: $log)" >&2
  exit 1
fi
