"""deploy/docker/healthcheck.py, the image's health checks, against the project's simulators over real sockets."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from services import free_port

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "deploy" / "docker" / "healthcheck.py"
CITYHUB = Path(sys.executable).with_name("cityhub")


def check(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the health check as the container does."""
    return subprocess.run(
        [sys.executable, str(CHECK), "--timeout", "1", *args], capture_output=True, text=True, timeout=30, check=False
    )


def wait_until_healthy(*args: str, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    while check(*args).returncode != 0:
        assert time.monotonic() < deadline, f"never healthy: {args}"
        time.sleep(0.3)


@pytest.fixture
def simulator() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.terminate()
        process.wait(timeout=15)


def test_snmp_check_asks_the_simulated_ups(simulator: list[subprocess.Popen[str]]) -> None:
    port = free_port()
    simulator.append(
        subprocess.Popen(
            [
                str(CITYHUB),
                "sim",
                "snmp-ups",
                "--port",
                str(port),
                "--community",
                "demo-community",
                "--log-level",
                "WARNING",
            ],
            text=True,
        )
    )
    wait_until_healthy("snmp", f"127.0.0.1:{port}", "demo-community")
    wrong = check("snmp", f"127.0.0.1:{port}", "not-the-community")
    assert wrong.returncode == 1
    assert "no answer" in wrong.stderr


def test_tcp_check_follows_the_modbus_simulator(simulator: list[subprocess.Popen[str]]) -> None:
    port = free_port()
    assert check("tcp", f"127.0.0.1:{port}").returncode == 1
    args = [
        "sim",
        "modbus",
        "--scenario",
        "normal-day",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "WARNING",
    ]
    simulator.append(subprocess.Popen([str(CITYHUB), *args], text=True))
    wait_until_healthy("tcp", f"127.0.0.1:{port}")
    simulator[0].terminate()
    simulator[0].wait(timeout=15)
    assert check("tcp", f"127.0.0.1:{port}").returncode == 1


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(503 if self.path == "/down" else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("path", "code"), [("/health", 0), ("/down", 1)])
def test_http_check_is_healthy_on_2xx_only(path: str, code: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = check("http", f"http://127.0.0.1:{server.server_port}{path}")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == code, result.stderr
    if code:
        assert "HTTP 503" in result.stderr


@pytest.mark.parametrize(
    "args",
    [["tcp", "no-port"], ["tcp", "host:99999"], ["http"], ["snmp", "127.0.0.1:161"], ["--timeout", "0", "tcp", "a:1"]],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(CHECK), *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert result.stderr


def test_http_check_refuses_other_schemes() -> None:
    result = check("http", "file:///etc/passwd")
    assert result.returncode == 1
    assert "not an http(s) URL" in result.stderr
