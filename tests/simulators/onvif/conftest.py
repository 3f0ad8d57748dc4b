"""Fixtures for the camera simulator tests: a simulated camera on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import services

from simulators.onvif.server import CameraSpec, SimulatedCamera


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedCamera]:
    """A simulated camera (model ``camera``) on a free port."""
    async with SimulatedCamera(CameraSpec(name="sim-test")) as camera:
        yield camera


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on now."""
    return services.free_port()
