"""Fixtures for the camera simulator tests: a simulated camera on a free loopback port."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from simulators.onvif.server import CameraSpec, SimulatedCamera


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedCamera]:
    """A simulated camera (model ``camera``) on a free port."""
    async with SimulatedCamera(CameraSpec(name="sim-test")) as camera:
        yield camera


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
