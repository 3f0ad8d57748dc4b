#!/usr/bin/env bash
# Install (or upgrade) the cityhub edge agent on Raspberry Pi OS / Debian (bookworm or later).
#
# Usage: sudo deploy/install-edge-agent.sh [options] [SOURCE]
#   SOURCE                a cityhub wheel (cityhub-*.whl) or a checkout (a directory with pyproject.toml);
#                         default: the checkout this script belongs to
#   --root DIR            install under DIR instead of / (DESTDIR-style: DIR/opt/cityhub, DIR/etc/cityhub,
#                         DIR/etc/systemd/system); without root privileges the Debian packages and the
#                         system user are skipped                                     ($CITYHUB_ROOT)
#   --no-systemd          install the unit file but do not enable or start it       ($CITYHUB_NO_SYSTEMD=1)
#   --no-apt              do not install Debian packages                            ($CITYHUB_NO_APT=1)
#   --no-user             do not create the system user (it exists, or DIR is no system) ($CITYHUB_NO_USER=1)
#   --no-deps             install cityhub only, not its dependencies (pip --no-deps)
#   --system-site-packages  let the venv see the interpreter's site packages (Debian's python3-* packages)
#   --python PATH         the interpreter the venv is made from (default: python3, 3.11 or later)
#   --example FILE        the agent.yaml copied to /etc/cityhub when none is there
#                         (default: docs/examples/agent.yaml of this checkout)
#
# It is idempotent: run it again to upgrade. It never overwrites /etc/cityhub/agent.yaml, reuses the
# venv (/opt/cityhub/venv) and the user (cityhub, in the dialout group for RS-485 adapters), and
# restarts the unit so that the new version runs. docs/operations.md#edge-agent-on-a-raspberry-pi.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=${CITYHUB_ROOT:-/}
systemd=$([[ ${CITYHUB_NO_SYSTEMD:-0} == 1 ]] && echo 0 || echo 1)
apt=$([[ ${CITYHUB_NO_APT:-0} == 1 ]] && echo 0 || echo 1)
make_user=$([[ ${CITYHUB_NO_USER:-0} == 1 ]] && echo 0 || echo 1)
pip_flags=()
venv_flags=()
python=python3
example=$(cd "$here/.." && pwd)/docs/examples/agent.yaml
source=$(cd "$here/.." && pwd)
user=cityhub
unit=cityhub-agent.service
staging=""
trap '[[ -z $staging ]] || rm -rf "$staging"' EXIT

say() { echo "install-edge-agent: $*"; }
die() { echo "install-edge-agent: error: $*" >&2; exit 1; }
needs_value() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --root) needs_value "$@"; root=$2; shift 2 ;;
        --no-systemd) systemd=0; shift ;;
        --no-apt) apt=0; shift ;;
        --no-user) make_user=0; shift ;;
        --no-deps) pip_flags+=(--no-deps); shift ;;
        --system-site-packages) venv_flags+=(--system-site-packages); shift ;;
        --python) needs_value "$@"; python=$2; shift 2 ;;
        --example) needs_value "$@"; example=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) source=$1; shift ;;
    esac
done

root=${root%/}
[[ -z $root || -d $root ]] || die "--root $root is not a directory"
as_root=$([[ $(id -u) == 0 ]] && echo 1 || echo 0)
if [[ $as_root == 0 && -z $root ]]; then
    die "run it as root (sudo), or give --root DIR to install elsewhere"
fi
if [[ -f $source ]]; then
    [[ $source == *.whl ]] || die "$source is not a wheel (*.whl)"
elif [[ -d $source ]]; then
    [[ -f $source/pyproject.toml ]] || die "$source has no pyproject.toml: not a cityhub checkout"
else
    die "no such wheel or checkout: $source"
fi
[[ -f $example ]] || die "no example configuration at $example (give --example FILE)"

prefix=$root/opt/cityhub
venv=$prefix/venv
etc=$root/etc/cityhub
units=$root/etc/systemd/system

install_packages() {
    if [[ $apt == 0 ]]; then return; fi
    if [[ $as_root == 0 ]]; then say "not root: skipping Debian packages"; return; fi
    say "installing Debian packages"
    # python3-venv brings ensurepip; ca-certificates verifies the broker's and PyPI's TLS.
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates
}

create_user() {
    if [[ $make_user == 0 ]]; then return; fi
    if [[ $as_root == 0 ]]; then say "not root: skipping the system user"; return; fi
    local opts=()
    [[ -z $root ]] || opts=(--root "$root")
    if ! getent passwd "$user" >/dev/null && ! { [[ -n $root ]] && grep -q "^$user:" "$root/etc/passwd" 2>/dev/null; }; then
        say "creating the system user $user"
        useradd "${opts[@]}" --system --user-group --home-dir /var/lib/cityhub-agent --no-create-home \
            --shell /usr/sbin/nologin "$user"
    fi
    # RS-485 adapters and the Pi's UART belong to dialout.
    usermod "${opts[@]}" -a -G dialout "$user"
}

check_python() {
    command -v "$python" >/dev/null || die "$python not found (apt-get install python3 python3-venv)"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$python is $("$python" -V 2>&1); cityhub needs Python 3.11 or later (Debian bookworm)"
}

install_venv() {
    if [[ -x $venv/bin/python ]]; then
        say "upgrading the venv $venv"
    else
        say "creating the venv $venv"
        mkdir -p "$prefix"
        "$python" -m venv "${venv_flags[@]}" "$venv"
    fi
    local what=$source
    if [[ -d $source ]]; then
        # Build from a copy: pip builds in the source tree (build/, *.egg-info), and a checkout may be
        # read-only or shared; local state (.venv, var/) is left behind.
        staging=$(mktemp -d)
        tar -C "$source" --exclude=.git --exclude=.venv --exclude=var --exclude=build --exclude='*.egg-info' \
            --exclude=__pycache__ -cf - pyproject.toml README.md cityhub hub edge_agent drivers rules simulators \
            | tar -C "$staging" -xf -
        what=$staging
    fi
    say "installing cityhub from $source"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "${pip_flags[@]}" "$what"
    "$venv/bin/cityhub" agent --help >/dev/null || die "the installed cityhub does not run"
}

install_config() {
    install -d -m 0750 "$etc"
    if [[ -e $etc/agent.yaml ]]; then
        say "keeping $etc/agent.yaml"
    else
        say "writing $etc/agent.yaml from $example: edit it (site, broker, devices), then restart the unit"
        install -m 0640 "$example" "$etc/agent.yaml"
    fi
    # The file holds device and broker secrets: root writes it, the agent's group reads it.
    if [[ $as_root == 1 ]] && getent group "$user" >/dev/null; then
        chgrp "$user" "$etc" "$etc/agent.yaml"
    fi
}

install_unit() {
    install -d -m 0755 "$units"
    install -m 0644 "$here/systemd/$unit" "$units/$unit"
    if [[ $systemd == 0 ]]; then say "unit installed, not enabled (--no-systemd)"; return; fi
    [[ -z $root ]] || die "systemd steps need the live system: use --no-systemd with --root"
    systemctl daemon-reload
    systemctl enable "$unit"
    # restart, not start: after an upgrade the new version must run.
    systemctl restart "$unit"
    say "$unit enabled and started: journalctl -u $unit -f"
}

install_packages
check_python
create_user
install_venv
install_config
install_unit
say "done: $venv/bin/cityhub, configuration $etc/agent.yaml"
