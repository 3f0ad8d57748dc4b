"""The ``cityhub`` command as a user runs it."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import threading
import time
import urllib.parse
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


#: The demo's edge agent, its four Modbus devices, a UPS and two cameras.
DEMO_DEVICES = 8


def test_demo_runs_simulators_agent_broker_and_hub_with_nothing_installed(tmp_path: Path) -> None:
    """The README's first command: simulated devices, polled by an agent, stored by the hub in SQLite."""
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
            "--snmp-port",
            str(free_port()),  # a free TCP port number: its UDP twin is almost always free too
            "--trap-port",
            str(free_port()),
            "--http-port",
            str(http_port),
            "--data-dir",
            str(tmp_path / "demo"),
            "--duration",
            "45",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = read_lines(demo)
    try:
        health: dict[str, object] = {}
        deadline = time.time() + 25
        while time.time() < deadline:
            try:
                health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=2).read())
            except OSError:
                health = {}
            if health.get("devices_known") == DEMO_DEVICES:
                break
            time.sleep(0.5)
        assert health.get("status") == "ok", health
        assert health.get("devices_known") == DEMO_DEVICES
        login = urllib.parse.urlencode({"username": "admin", "password": "Demo-Timisoara-2026"}).encode()
        token = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/v1/auth/token", login).read())
        assert token["token_type"] == "bearer"  # the login the demo prints works
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=2).read().decode()
        written = [line for line in metrics.splitlines() if line.startswith("cityhub_hub_points_written_total")]
        assert written
        assert float(written[0].split()[1]) > 0
        # A newcomer sees an alert within a minute: the UPS goes on battery 10 s into its scenario.
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        alerts_url = f"http://127.0.0.1:{http_port}/api/v1/alerts?state=firing"
        rules: list[str] = []
        deadline = time.time() + 30
        while "ups.on-battery" not in rules and time.time() < deadline:
            time.sleep(0.5)
            page = json.loads(urllib.request.urlopen(urllib.request.Request(alerts_url, headers=auth)).read())
            rules = [item["rule"] for item in page["items"]]
        assert "ups.on-battery" in rules
        check_console(lines)
    finally:
        demo.terminate()
        demo.wait(timeout=20)
    time.sleep(0.5)  # the reader thread takes the last lines and closes the pipe
    output = "".join(lines)
    assert demo.returncode == 0, output
    assert "cityhub demo is running" in output
    assert "ALERT FIRING       major    team it     demo-server-room/ups-1" in output
    assert (tmp_path / "demo" / "hub" / "timeseries.sqlite").exists()
    assert (tmp_path / "demo" / "agent" / "outbound.sqlite").exists()


def read_lines(process: subprocess.Popen[str]) -> list[str]:
    """The process's output lines as they come (a thread reads them, so the pipe never fills)."""
    lines: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                lines.append(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def check_console(lines: list[str]) -> None:
    """The console URL the demo prints serves the page, and the operator login printed with it works."""
    printed = re.search(r"console: +http://127\.0\.0\.1:(\d+)/console/ \(login (\S+) / (\S+)\)", "".join(lines))
    assert printed, "".join(lines)
    port, username, password = printed.groups()

    def get(path: str, data: bytes | None = None, token: str | None = None) -> http.client.HTTPResponse:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data, headers=headers)
        response: http.client.HTTPResponse = urllib.request.urlopen(request, timeout=10)  # noqa: S310 (http://)
        return response

    page = get("/console/")
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    html = page.read().decode()
    assert '<form id="login-form"' in html
    script = re.search(r'src="(app\.js\?v=[0-9a-f]+)"', html)
    assert script
    assert b"/alerts/stream" in get(f"/console/{script.group(1)}").read()
    login = urllib.parse.urlencode({"username": username, "password": password}).encode()
    token = json.loads(get("/api/v1/auth/token", login).read())["access_token"]
    me = json.loads(get("/api/v1/me", token=token).read())
    assert (me["username"], me["team"]) == (username, "control-room")
    assert "alerts.ack" in me["permissions"]
    assert "users.admin" not in me["permissions"]


def test_agent_discover_lists_the_cameras_that_answer_a_probe() -> None:
    """``cityhub agent discover`` against ``cityhub sim onvif``: two processes, real UDP and HTTP."""
    discovery = free_port()
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cityhub",
            "sim",
            "onvif",
            "--port",
            "0",
            "--cameras",
            "2",
            *("--discovery-port", str(discovery)),
            "--duration",
            "30",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        found = run_cityhub("agent", "discover", "--address", f"127.0.0.1:{discovery}", "--timeout", "1")
        deadline = time.monotonic() + 20
        while found.returncode != 0 and time.monotonic() < deadline:  # the simulator is still starting
            found = run_cityhub("agent", "discover", "--address", f"127.0.0.1:{discovery}", "--timeout", "1")
    finally:
        sim.terminate()
        sim.communicate(timeout=20)
    assert found.returncode == 0, found.stdout + found.stderr
    rows = found.stdout.splitlines()
    assert rows[0].split()[:2] == ["NAME", "ADDRESS"]
    assert sorted(row.split()[0] for row in rows[1:]) == ["cam-1", "cam-2"]


def test_agent_discover_says_when_no_camera_answers() -> None:
    result = run_cityhub("agent", "discover", "--address", f"127.0.0.1:{free_port()}", "--timeout", "0.5")
    assert result.returncode == 1
    assert "no ONVIF camera answered within 0.5 s" in result.stdout


def test_agent_without_a_configuration_says_what_it_needs() -> None:
    result = run_cityhub("agent")
    assert result.returncode == 2
    assert "--config is required (or: cityhub agent discover)" in result.stderr


def test_sim_snmp_ups_answers_net_snmp_s_snmpget() -> None:
    """``cityhub sim snmp-ups`` as a user starts it, read by Debian's snmpget (not our code)."""
    port = free_port()
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cityhub",
            "sim",
            "snmp-ups",
            *("--port", str(port), "--community", "cli-test"),
            "--duration",
            "30",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    charge = "1.3.6.1.2.1.33.1.2.4.0"  # UPS-MIB upsEstimatedChargeRemaining (RFC 1628)
    try:
        deadline = time.monotonic() + 20
        while True:
            got = subprocess.run(
                ["snmpget", "-v2c", "-c", "cli-test", "-t", "0.5", "-r", "0", "-On", f"127.0.0.1:{port}", charge],
                capture_output=True,
                text=True,
                check=False,
                timeout=10,
            )
            if got.returncode == 0 or time.monotonic() > deadline:
                break
    finally:
        sim.terminate()
        output, _ = sim.communicate(timeout=20)
    assert got.returncode == 0, got.stderr + output
    assert got.stdout.startswith(f".{charge} = INTEGER: ")


def test_sim_snmp_ups_refuses_a_scenario_for_another_profile() -> None:
    result = run_cityhub("sim", "snmp-ups", "--port", "0", "--profile", "ups-apc", "--scenario", "ups-mains-failure")
    assert result.returncode == 2
    assert "device 'ups-1' runs profile 'ups-rfc1628'" in result.stderr


def test_hub_refuses_default_secrets_in_production(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text("api:\n  bootstrap_admin_password: change-me\n", encoding="utf-8")
    result = run_cityhub("hub", "--config", str(config), "--duration", "5")
    assert result.returncode == 2
    assert "refusing to start with default or weak secrets in production" in result.stderr
    assert "api.bootstrap_admin_password is a well-known default" in result.stderr
