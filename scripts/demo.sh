#!/usr/bin/env bash
# Sets up cityhub and runs the whole platform on embedded defaults: an MQTT broker, the hub storing
# into SQLite, and simulated devices, in one process. Nothing to install beyond Python 3.11.
# Arguments go to `cityhub demo` (e.g. --http-port 8081 --duration 60).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
exec .venv/bin/cityhub demo "$@"
