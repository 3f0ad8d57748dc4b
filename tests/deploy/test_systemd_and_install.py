"""deploy/install-edge-agent.sh run into a temporary root, and the systemd units it installs.

The install reuses .venv's packages: the test makes the venv first (a ``.pth`` file pointing at .venv's
site-packages), and the script, finding a venv, installs cityhub into it with ``--no-deps``. A full
install would download and build pandas, lxml and cryptography: minutes, and a network the tests must
not need. The script's own venv creation runs too, in test_refuses_bad_input's sibling below.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "install-edge-agent.sh"
UNITS = ROOT / "deploy" / "systemd"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def run_script(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """The install script, with every step that needs the live system turned off."""
    env = {**os.environ, "PIP_NO_INPUT": "1"}
    return subprocess.run(
        [str(SCRIPT), "--no-systemd", "--no-apt", "--no-user", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def prepared_root(tmp_path: Path) -> Path:
    """A root whose venv sees .venv's packages (made from .venv's base interpreter)."""
    root = tmp_path / "root"
    venv = root / "opt" / "cityhub" / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (site / "cityhub-dev-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    root = prepared_root(tmp_path_factory.mktemp("install"))
    result = run_script("--root", str(root), "--no-deps")
    return root, result


def test_script_is_valid_bash_with_strict_mode() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=10)
    assert "set -euo pipefail" in SCRIPT.read_text(encoding="utf-8")
    assert os.access(SCRIPT, os.X_OK)


def test_install_into_a_root_gives_a_working_agent(installed: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    root, result = installed
    assert result.returncode == 0, result.stderr
    cityhub = root / "opt" / "cityhub" / "venv" / "bin" / "cityhub"
    help_text = subprocess.run(
        [str(cityhub), "agent", "--help"], capture_output=True, text=True, timeout=60, check=True, cwd=root
    )
    assert "--config" in help_text.stdout
    # The package really is installed in the new venv, not only visible through .venv.
    check = [str(root / "opt/cityhub/venv/bin/python"), "-c", "import cityhub, sys; print(cityhub.__file__)"]
    location = subprocess.run(check, capture_output=True, text=True, timeout=60, check=True, cwd=root).stdout
    assert location.startswith(str(root)), location
    config = root / "etc" / "cityhub" / "agent.yaml"
    assert config.read_text(encoding="utf-8") == (ROOT / "docs/examples/agent.yaml").read_text(encoding="utf-8")
    assert config.stat().st_mode & 0o777 == 0o640
    unit = root / "etc" / "systemd" / "system" / "cityhub-agent.service"
    assert unit.read_text(encoding="utf-8") == (UNITS / "cityhub-agent.service").read_text(encoding="utf-8")


def test_running_again_keeps_the_configuration(installed: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    root, _ = installed
    config = root / "etc" / "cityhub" / "agent.yaml"
    config.write_text("agent: {site: edited-by-the-operator}\n", encoding="utf-8")
    again = run_script("--root", str(root), "--no-deps")
    assert again.returncode == 0, again.stderr
    assert "keeping" in again.stdout
    assert "upgrading the venv" in again.stdout
    assert config.read_text(encoding="utf-8") == "agent: {site: edited-by-the-operator}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--root", "/nonexistent/cityhub-root"], "is not a directory"),
        (["--root"], "--root needs a value"),
        (["--bogus"], "unknown option --bogus"),
        (["/nonexistent/cityhub.whl"], "no such wheel or checkout"),
        (["--example", "/nonexistent/agent.yaml"], "no example configuration"),
    ],
)
def test_refuses_bad_input_with_a_clear_message(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_script(*(a.replace("TMP", str(tmp_path)) for a in args), timeout=30)
    assert result.returncode == 1
    assert message in result.stderr


def test_not_a_checkout_is_refused(tmp_path: Path) -> None:
    result = run_script("--root", str(tmp_path), str(tmp_path), timeout=30)
    assert result.returncode == 1
    assert "no pyproject.toml" in result.stderr


def test_systemd_steps_refuse_a_foreign_root(tmp_path: Path) -> None:
    root = prepared_root(tmp_path)
    result = subprocess.run(
        [str(SCRIPT), "--no-apt", "--no-user", "--no-deps", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 1
    assert "use --no-systemd with --root" in result.stderr


def _verifiable(unit: Path, installed_root: Path, tmp_path: Path) -> Path:
    """The unit with ExecStart pointing into the test's root, so systemd-analyze finds the binary."""
    copy = tmp_path / unit.name
    text = unit.read_text(encoding="utf-8").replace("/opt/cityhub/", f"{installed_root}/opt/cityhub/")
    copy.write_text(text, encoding="utf-8")
    return copy


@pytest.mark.parametrize("unit", ["cityhub-agent.service", "cityhub-hub.service"])
def test_units_verify_cleanly_and_are_hardened(
    unit: str, installed: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    # A missing tool fails the test (scripts/test.sh installs Debian's systemd for it), never skips it.
    assert SYSTEMD_ANALYZE is not None, "systemd-analyze is not installed (Debian package systemd)"
    copy = _verifiable(UNITS / unit, installed[0], tmp_path)
    verify = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    # verify exits 0 on unknown keys and bad values: it only warns, so any output is a failure.
    assert verify.returncode == 0, verify.stderr
    assert verify.stderr.strip() == "", verify.stderr
    assert verify.stdout.strip() == "", verify.stdout
    security = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=yes", "--threshold=20", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert security.returncode == 0, security.stdout[-600:]  # exposure 2.0 at most ("OK")


@pytest.mark.parametrize("unit", ["cityhub-agent.service", "cityhub-hub.service"])
def test_units_have_the_required_settings(unit: str) -> None:
    text = (UNITS / unit).read_text(encoding="utf-8")
    settings = {line.split("=", 1)[0] for line in text.splitlines() if "=" in line and not line.startswith("#")}
    required = {
        "User",
        "StateDirectory",
        "ConfigurationDirectory",
        "ProtectSystem",
        "NoNewPrivileges",
        "PrivateTmp",
        "Restart",
        "RestartSec",
        "StartLimitIntervalSec",
        "StartLimitBurst",
        "RestartPreventExitStatus",
    }
    assert required <= settings, sorted(required - settings)
    assert "ProtectSystem=strict" in text
    assert "Restart=on-failure" in text
    if unit == "cityhub-agent.service":
        assert "SupplementaryGroups=dialout" in text
        assert "StateDirectory=cityhub-agent" in text
