"""Several simulated cameras on consecutive ports, WS-Discovery for all of them, and the command line.

``cityhub sim onvif --port 18080 --cameras 2`` runs ``cam-1`` on 18080 and ``cam-2`` on 18081; with
``--scenario camera-offline`` the cameras are the scenario's devices (named, and with the models, it
gives) and the scenario runner drives them. ``cityhub demo`` can start the same with ``CameraFleet``
and read the agent inventory entries from ``inventory()``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, Self

from simulators.errors import SimConfigError
from simulators.onvif.discovery import DiscoveryResponder
from simulators.onvif.points import PROFILES, CameraTarget
from simulators.onvif.server import DEFAULT_PASSWORD, DEFAULT_USERNAME, CameraSpec, SimulatedCamera

log = logging.getLogger(__name__)


class CameraFleet:
    """Simulated cameras plus one WS-Discovery responder; an async context manager."""

    def __init__(self, specs: Sequence[CameraSpec], *, discovery_port: int | None = 0, multicast: bool = False) -> None:
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise SimConfigError(f"camera names must be unique: {', '.join(names)}")
        self.cameras = [SimulatedCamera(spec) for spec in specs]
        self._discovery_port = discovery_port
        self._multicast = multicast
        self.discovery: DiscoveryResponder | None = None
        self._stack = contextlib.AsyncExitStack()

    @classmethod
    def numbered(cls, count: int, *, base_port: int = 0, host: str = "127.0.0.1", **kwargs: Any) -> CameraFleet:
        """``count`` cameras ``cam-1``.. on ``base_port``, ``base_port + 1``.. (free ports when 0)."""
        specs = [
            CameraSpec(name=f"cam-{i}", host=host, port=base_port + i - 1 if base_port else 0)
            for i in range(1, count + 1)
        ]
        return cls(specs, **kwargs)

    async def __aenter__(self) -> Self:
        try:
            for camera in self.cameras:
                await self._stack.enter_async_context(camera)
            if self._discovery_port is not None:
                host = self.cameras[0].host if self.cameras else "127.0.0.1"
                responder = DiscoveryResponder(
                    self.cameras, host=host, port=self._discovery_port, multicast=self._multicast
                )
                self.discovery = await self._stack.enter_async_context(responder)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    def targets(self) -> dict[str, CameraTarget]:
        """Each camera as a scenario target, by name."""
        return {camera.spec.name: CameraTarget(camera) for camera in self.cameras}

    def inventory(self, site: str | None = None) -> list[dict[str, Any]]:
        """Agent inventory entries (``OnvifDeviceConfig`` fields) for these cameras."""
        return [
            {
                "driver": "onvif",
                "id": camera.spec.name,
                "site": site,
                "host": camera.host,
                "port": camera.port,
                "username": camera.spec.username,
                "password": camera.spec.password,
            }
            for camera in self.cameras
        ]


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cityhub sim onvif``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=18080, help="port of the first camera; the next ones follow")
    parser.add_argument("--cameras", type=int, default=1, help="how many cameras without a scenario (1)")
    parser.add_argument("--profile", default="camera", choices=sorted(PROFILES), help="camera model (camera)")
    parser.add_argument("--username", default=DEFAULT_USERNAME, help=f"user the cameras accept ({DEFAULT_USERNAME})")
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="password the cameras accept")
    parser.add_argument("--location", default="city", help="location scope the cameras announce")
    parser.add_argument(
        "--discovery-port", type=int, default=3702, help="UDP port answering WS-Discovery probes; 0: none (3702)"
    )
    parser.add_argument("--multicast", action="store_true", help="also answer probes on 239.255.255.250:3702")
    parser.add_argument("--scenario", default=None, help="scenario name or file driving the cameras")
    parser.add_argument("--speed", type=float, default=1.0, help="scenario time per wall-clock second (1)")
    parser.add_argument("--repeat", action="store_true", help="start the scenario over at its end")


def specs_from_args(args: argparse.Namespace, scenario: Any = None) -> list[CameraSpec]:
    """The cameras the options (and the scenario's devices, when given) ask for."""
    base = CameraSpec(host=args.host, username=args.username, password=args.password, location=args.location)
    if scenario is not None:
        devices = [(device_id, device.profile.name) for device_id, device in scenario.devices.items()]
    else:
        if args.cameras < 1:
            raise SimConfigError(f"--cameras must be at least 1, not {args.cameras}")
        devices = [(f"cam-{i}", args.profile) for i in range(1, args.cameras + 1)]
    return [
        replace(base, name=name, profile=profile, port=args.port + i if args.port else 0)
        for i, (name, profile) in enumerate(devices)
    ]


async def run_from_args(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Run the cameras (and the scenario) until ``stop`` is set."""
    scenario = None
    if args.scenario:
        from simulators.scenario import load_scenario  # the engine is only needed with a scenario

        scenario = load_scenario(args.scenario)
        if any(device.driver != "onvif" for device in scenario.devices.values()):
            raise SimConfigError(f"scenario {scenario.name}: cityhub sim onvif only runs cameras (driver: onvif)")
    discovery = args.discovery_port if args.discovery_port else None
    async with CameraFleet(
        specs_from_args(args, scenario), discovery_port=discovery, multicast=args.multicast
    ) as fleet:
        for camera in fleet.cameras:
            print(f"{camera.spec.name}: {camera.device_url} ({camera.profile.name}, user {camera.spec.username})")
        if scenario is None:
            await stop.wait()
            return
        from simulators.runner import ScenarioRunner

        runner = ScenarioRunner(scenario, fleet.targets(), speed=args.speed, repeat=args.repeat)
        await runner.run(stop)
        await stop.wait()
