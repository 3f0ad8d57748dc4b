"""The ``cityhub`` command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from services import free_port


def run_cityhub(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cityhub", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_hub_refuses_a_bad_configuration_with_the_file_and_field(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text("ingest:\n  flush_interval_s: -1\n", encoding="utf-8")
    result = run_cityhub("hub", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}: ingest.flush_interval_s: Input should be greater than 0" in result.stderr


def test_demo_runs_simulators_agent_broker_and_hub_with_nothing_installed(tmp_path: Path) -> None:
    """The README's first command: simulated Modbus devices, polled by an agent, stored by the hub in SQLite."""
    http_port = free_port()
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cityhub",
            "demo",
            "--mqtt-port",
            str(free_port()),
            "--modbus-port",
            str(free_port()),
            "--http-port",
            str(http_port),
            "--data-dir",
            str(tmp_path / "demo"),
            "--duration",
            "30",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health: dict[str, object] = {}
        deadline = time.time() + 25
        while time.time() < deadline:
            try:
                health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=2).read())
            except OSError:
                health = {}
            if health.get("devices_known") == 5:
                break
            time.sleep(0.5)
        assert health.get("status") == "ok", health
        assert health.get("devices_known") == 5  # the edge agent and its four Modbus devices
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=2).read().decode()
        written = [line for line in metrics.splitlines() if line.startswith("cityhub_hub_points_written_total")]
        assert written
        assert float(written[0].split()[1]) > 0
    finally:
        demo.terminate()
        output, _ = demo.communicate(timeout=20)
    assert demo.returncode == 0, output
    assert "cityhub demo is running" in output
    assert (tmp_path / "demo" / "hub" / "timeseries.sqlite").exists()
    assert (tmp_path / "demo" / "agent" / "outbound.sqlite").exists()
