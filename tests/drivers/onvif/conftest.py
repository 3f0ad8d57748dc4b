"""Fixtures for the ONVIF driver tests: simulated cameras on free loopback ports, cameras built for them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from pydantic import SecretStr
from services import free_port

from drivers.base import PollResult
from drivers.onvif import OnvifCamera, OnvifDeviceConfig
from simulators.onvif.server import DEFAULT_PASSWORD, CameraSpec, SimulatedCamera

# Short enough that every timeout, renewal and retry in the suite takes a fraction of a second or two.
FAST = {"timeout_s": 0.5, "subscription_s": 2, "pull_wait_s": 0.3, "retry_initial_s": 0.1, "retry_max_s": 0.4}


def config_for(host: str, port: int, **overrides: Any) -> OnvifDeviceConfig:
    """An inventory entry for a camera at host:port with the simulator's credentials."""
    fields: dict[str, Any] = {
        "driver": "onvif",
        "id": "cam-test",
        "host": host,
        "port": port,
        "username": "admin",
        "password": SecretStr(DEFAULT_PASSWORD),
        **FAST,
    }
    fields.update(overrides)
    return OnvifDeviceConfig.model_validate(fields)


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedCamera]:
    """A simulated camera (model ``camera``) on a free port."""
    async with SimulatedCamera(CameraSpec(name="cam-test")) as camera:
        yield camera


@pytest.fixture
async def make_camera() -> AsyncIterator[Callable[..., OnvifCamera]]:
    """Builds OnvifCamera objects for (host, port, **config) and closes them after the test."""
    made: list[OnvifCamera] = []

    def make(host: str, port: int, **overrides: Any) -> OnvifCamera:
        camera = OnvifCamera.from_config(config_for(host, port, **overrides))
        made.append(camera)
        return camera

    yield make
    for camera in made:
        await camera.aclose()


@pytest.fixture
def camera(sim: SimulatedCamera, make_camera: Callable[..., OnvifCamera]) -> OnvifCamera:
    """The driver's camera for ``sim``."""
    return make_camera(sim.host, sim.port)


class Watch:
    """What a running ``watch()`` handed to its sink."""

    def __init__(self) -> None:
        self.results: list[PollResult] = []

    def events(self, kind: str | None = None) -> list[Any]:
        """Every event so far (of type ``kind``)."""
        return [e for r in self.results for e in r.events if kind is None or e.type == kind]


@pytest.fixture
def watching() -> Callable[[OnvifCamera], AbstractAsyncContextManager[Watch]]:
    """``async with watching(camera) as seen``: runs camera.watch until the block ends."""

    @asynccontextmanager
    async def run(camera: OnvifCamera) -> AsyncIterator[Watch]:
        seen = Watch()
        stop = asyncio.Event()
        task = asyncio.create_task(camera.watch(seen.results.append, stop))
        try:
            yield seen
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)

    return run


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    """``await eventually(lambda: cond, timeout_s)``: fails the test when ``cond`` stays false."""

    async def wait(condition: Callable[[], bool], timeout_s: float = 5.0, what: str = "condition") -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not condition():
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"{what} not met within {timeout_s} s")
            await asyncio.sleep(0.02)

    return wait


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    return free_port()
