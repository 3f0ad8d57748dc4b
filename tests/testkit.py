"""Small helpers every test package shares: unique names, a cityhub command in its own process, fake PUBACKs."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any


def unique(prefix: str) -> str:
    """``prefix`` and 8 random hex digits: a name no other test (or earlier run) uses."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


class CityhubProcess:
    """``python -m cityhub <command> --config <file>`` in a process (and session) of its own, for kill tests."""

    def __init__(self, command: str, config_path: Path, http_port: int, log_path: Path | None = None) -> None:
        self.command = command
        self.config_path = config_path
        self.http_port = http_port
        self.log_path = log_path or config_path.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (its output goes to the log file, after a line marking the start)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITYHUB_")}
        with self.log_path.open("ab") as log:
            log.write(f"---- {time.strftime('%H:%M:%S')} starting cityhub {self.command}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cityhub", self.command, "--config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        """Whether the process is running."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM and wait for a clean exit; returns the exit status (SIGKILL after ``timeout_s``)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def get(self, path: str) -> tuple[int, bytes] | None:
        """GET ``path`` from the process's HTTP endpoint; None while it does not answer."""
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=2.0)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            return None
        finally:
            connection.close()

    def health(self) -> dict[str, Any] | None:
        """The ``/health`` report, or None while it does not answer."""
        answer = self.get("/health")
        return json.loads(answer[1]) if answer is not None else None

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Block until ``/health`` says ok (for the hub: connected and subscribed), or fail with the log.

        A fixed sleep is not enough: on a loaded CI machine the interpreter alone can take seconds to start,
        and whatever is published before the hub's persistent session exists is, rightly, not kept for it.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive:
                raise AssertionError(f"cityhub {self.command} exited while starting:\n{self.log_tail()}")
            report = self.health()
            if report is not None and report.get("status") == "ok":
                return
            time.sleep(0.1)
        raise AssertionError(f"cityhub {self.command} not ready after {timeout_s} s:\n{self.log_tail()}")

    def metric(self, name: str, labels: str = "") -> float | None:
        """A sample of ``/metrics`` (``labels`` as written there: ``reason="overflow"``), None if absent."""
        answer = self.get("/metrics")
        if answer is None:
            return None
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in answer[1].decode().splitlines():
            key, _, value = line.rpartition(" ")
            if key == wanted:
                return float(value)
        return None

    def log_tail(self) -> str:
        """The end of the log, for assertion messages."""
        return self.log_path.read_text(errors="replace")[-3000:]


def acknowledged() -> asyncio.Future[None]:
    """What MqttSession.publish_soon returns once the broker has acknowledged: for fakes of a publish."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done
