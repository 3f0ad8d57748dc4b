"""Run simulated Modbus devices, optionally driven by a scenario: what ``cityhub`` calls.

A ``SimulationSpec`` lists the devices (id, profile, unit id, transport and port) and an optional
scenario with its speed. Devices that share a transport and port share one server: several units on one
TCP endpoint (a gateway) or one RTU line. It comes from a YAML file (``load_sim_config``) or from
command-line arguments (``add_sim_arguments`` and ``build_spec_from_args``)::

    # sim.yaml
    scenario: gas-discharge        # a shipped scenario name, or a path relative to this file
    speed: 10                      # scenario seconds per wall-clock second
    repeat: false                  # start the scenario over when it ends
    devices:
      - {id: panel-1, profile: gas-suppression, unit: 1, port: 5020}
      - {id: crac-1, profile: climate-controller, unit: 1, transport: rtu, port: pty}

For ``transport: rtu`` the port is a serial device path, or ``pty`` for a virtual cable whose client end
is logged (and handed to ``on_ready``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drivers.modbus.profile import DeviceProfile, ProfileError, load_profile
from simulators.modbus.errors import SimConfigError
from simulators.modbus.points import Target
from simulators.modbus.pty import PtyLink
from simulators.modbus.server import Endpoint, ModbusSimulator, RtuEndpoint, TcpEndpoint
from simulators.runner import ScenarioRunner
from simulators.scenario import Scenario, load_scenario

log = logging.getLogger(__name__)

DEFAULT_TCP_PORT = 5020  # 502 needs root


class DeviceSpec(BaseModel):
    """One simulated device: which profile it runs, its unit id, and where it listens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    profile: Annotated[str, Field(min_length=1)]
    unit: Annotated[int, Field(ge=1, le=247)] = 1
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str = "127.0.0.1"
    port: int | str = DEFAULT_TCP_PORT
    baudrate: Annotated[int, Field(ge=1200, le=921_600)] = 19200
    parity: Literal["N", "E", "O"] | None = None  # E on serial ports, N on a pty (which refuses parity)

    @model_validator(mode="after")
    def _port_fits_transport(self) -> Self:
        if self.transport == "tcp" and not (isinstance(self.port, int) and 0 <= self.port <= 65_535):
            raise ValueError(f"a tcp port is a number 0-65535 (0: any free port), not {self.port!r}")
        if self.transport == "rtu" and not (isinstance(self.port, str) and self.port):
            raise ValueError(f"an rtu port is a serial device path or 'pty', not {self.port!r}")
        return self

    @property
    def line(self) -> tuple[str, str]:
        """Devices with the same line share one server."""
        if self.transport == "tcp":
            return ("tcp", f"{self.host}:{self.port}")
        return ("rtu", str(self.port))


class SimulationSpec(BaseModel):
    """What to simulate: devices, and optionally a scenario and how fast to play it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    devices: list[DeviceSpec] = Field(min_length=1)
    scenario: str | None = None
    speed: Annotated[float, Field(gt=0, le=10_000, allow_inf_nan=False)] = 1.0
    repeat: bool = False
    tick: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] = 0.1

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [d.id for d in self.devices]
        if dupes := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"device ids used twice: {', '.join(dupes)}")
        seen: dict[tuple[tuple[str, str], int], str] = {}
        for device in self.devices:
            other = seen.setdefault((device.line, device.unit), device.id)
            if other != device.id:
                raise ValueError(f"devices {other!r} and {device.id!r} both use unit {device.unit} on {device.line[1]}")
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class RunningDevice:
    """A device being simulated: its simulator, unit, and the address a client connects to."""

    id: str
    profile: str
    unit: int
    simulator: ModbusSimulator
    address: str  # tcp://127.0.0.1:5020 or rtu:/dev/pts/4 (for a pty: the client's end)


OnReady = Callable[[Mapping[str, RunningDevice]], None]


def _describe(source: str, exc: ValidationError) -> str:
    return "\n".join(
        f"{source}: {'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors(include_url=False)
    )


def _resolve(name: str, base: Path | None) -> str:
    """A profile or scenario given as a relative file path is relative to the file that names it."""
    if base is not None and name.endswith((".yaml", ".yml")) and not Path(name).is_absolute():
        return str(base / name)
    return name


def load_sim_config(path: Path) -> SimulationSpec:
    """Read and validate a simulation spec from a YAML file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SimConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise SimConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        spec = SimulationSpec.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        raise SimConfigError("\n".join(lines)) from None
    devices = [d.model_copy(update={"profile": _resolve(d.profile, path.parent)}) for d in spec.devices]
    scenario = _resolve(spec.scenario, path.parent) if spec.scenario else None
    return spec.model_copy(update={"devices": devices, "scenario": scenario})


def _parse_device(text: str, index: int, common: dict[str, object]) -> DeviceSpec:
    ident, sep, rest = text.partition("=")
    profile, _, unit = rest.partition("@")
    if not sep or not ident or not profile:
        raise SimConfigError(f"--device {text!r}: expected ID=PROFILE or ID=PROFILE@UNIT")
    try:
        return DeviceSpec.model_validate({"id": ident, "profile": profile, "unit": unit or index + 1, **common})
    except ValidationError as exc:
        raise SimConfigError(f"--device {text!r}: {exc.errors(include_url=False)[0]['msg']}") from None


def build_spec_from_args(
    *,
    config: Path | None = None,
    scenario: str | None = None,
    devices: Sequence[str] = (),
    host: str = "127.0.0.1",
    port: int = DEFAULT_TCP_PORT,
    rtu: str | None = None,
    baudrate: int = 19200,
    speed: float | None = None,
    repeat: bool | None = None,
) -> SimulationSpec:
    """A spec from command-line values: a config file, ``ID=PROFILE[@UNIT]`` devices, or a scenario's devices.

    Without ``config`` and ``devices``, the scenario's devices are simulated as units 1, 2, ... in the
    order of the file. All devices share one endpoint: TCP ``host:port``, or the RTU line ``rtu``
    (a serial device path, or ``pty``).
    """
    overrides = {k: v for k, v in {"scenario": scenario, "speed": speed, "repeat": repeat}.items() if v is not None}
    if config is not None:
        if devices:
            raise SimConfigError("give devices in the config file or on the command line, not both")
        fields = load_sim_config(config).model_dump()
    else:
        common: dict[str, object] = (
            {"transport": "rtu", "port": rtu, "baudrate": baudrate} if rtu else {"host": host, "port": port}
        )
        if devices:
            specs = [_parse_device(text, i, common) for i, text in enumerate(devices)]
        elif scenario:
            found = load_scenario(scenario).devices.values()
            specs = [DeviceSpec(id=d.id, profile=d.profile.name, unit=i + 1, **common) for i, d in enumerate(found)]
        else:
            raise SimConfigError("nothing to simulate: give --device ID=PROFILE[@UNIT], --scenario or --config")
        fields = {"devices": specs}
    try:
        return SimulationSpec.model_validate({**fields, **overrides})
    except ValidationError as exc:
        raise SimConfigError(_describe("command line", exc)) from None


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options ``build_spec_from_args`` takes to a (sub)command's parser."""
    parser.add_argument("--config", type=Path, help="a simulation YAML file (devices, scenario, speed)")
    parser.add_argument("--scenario", help="a shipped scenario name (gas-discharge) or a scenario file")
    parser.add_argument(
        "--device", action="append", default=[], metavar="ID=PROFILE[@UNIT]", help="a device to simulate (repeatable)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="TCP address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_TCP_PORT, help="TCP port (0: any free port)")
    parser.add_argument("--rtu", metavar="PATH|pty", help="serve Modbus RTU on a serial port, or on a new pty")
    parser.add_argument("--baudrate", type=int, default=19200)
    parser.add_argument("--speed", type=float, help="scenario seconds per second (default 1)")
    parser.add_argument("--repeat", action="store_true", default=None, help="start the scenario over when it ends")


def spec_from_namespace(args: argparse.Namespace) -> SimulationSpec:
    """``build_spec_from_args`` on the options ``add_sim_arguments`` added."""
    return build_spec_from_args(
        config=args.config,
        scenario=args.scenario,
        devices=args.device,
        host=args.host,
        port=args.port,
        rtu=args.rtu,
        baudrate=args.baudrate,
        speed=args.speed,
        repeat=args.repeat,
    )


def _load_profiles(spec: SimulationSpec) -> dict[str, DeviceProfile]:
    profiles: dict[str, DeviceProfile] = {}
    problems: list[str] = []
    for device in spec.devices:
        try:
            profiles[device.id] = load_profile(device.profile)
        except ProfileError as exc:
            problems.append(f"device {device.id}: {exc}")
    if problems:
        raise SimConfigError("\n".join(problems))
    return profiles


def _check_scenario(scenario: Scenario, profiles: Mapping[str, DeviceProfile]) -> None:
    problems = []
    for device_id, device in scenario.devices.items():
        if device_id not in profiles:
            problems.append(f"scenario {scenario.name}: device {device_id!r} is not in the simulation")
        elif profiles[device_id].name != device.profile.name:
            problems.append(
                f"scenario {scenario.name}: device {device_id!r} runs profile {device.profile.name!r} in the "
                f"scenario but {profiles[device_id].name!r} in the simulation"
            )
    if problems:
        raise SimConfigError("\n".join(problems))


async def _open_lines(
    spec: SimulationSpec, profiles: Mapping[str, DeviceProfile], stack: contextlib.AsyncExitStack
) -> dict[str, RunningDevice]:
    """Start one simulator per line; returns the running devices by id."""
    lines: dict[tuple[str, str], list[DeviceSpec]] = {}
    for device in spec.devices:
        lines.setdefault(device.line, []).append(device)
    running: dict[str, RunningDevice] = {}
    for (transport, _), members in lines.items():
        first = members[0]
        client_path: str | None = None
        endpoint: Endpoint
        if transport == "tcp":
            endpoint = TcpEndpoint(host=first.host, port=int(first.port))
        elif first.port == "pty":
            link = await stack.enter_async_context(PtyLink())
            endpoint, client_path = (
                RtuEndpoint(path=link.server_path, baudrate=first.baudrate, parity="N"),
                link.client_path,
            )
        else:
            endpoint = RtuEndpoint(path=str(first.port), baudrate=first.baudrate, parity=first.parity or "E")
        simulator = await stack.enter_async_context(
            ModbusSimulator({d.unit: profiles[d.id] for d in members}, endpoint)
        )
        address = f"rtu:{client_path}" if client_path else simulator.describe()
        for d in members:
            running[d.id] = RunningDevice(
                id=d.id, profile=profiles[d.id].name, unit=d.unit, simulator=simulator, address=address
            )
    return running


async def run_simulation(spec: SimulationSpec, stop: asyncio.Event, *, on_ready: OnReady | None = None) -> None:
    """Serve the spec's devices and play its scenario until ``stop`` is set.

    Raises SimConfigError or ScenarioError for an unusable spec, profile or scenario, and TransportError
    when a port cannot be opened, all before anything is served. When the scenario ends, the devices
    keep its end state until ``stop``.
    """
    profiles = _load_profiles(spec)
    scenario = load_scenario(spec.scenario) if spec.scenario else None
    if scenario is not None:
        _check_scenario(scenario, profiles)
    async with contextlib.AsyncExitStack() as stack:
        running = await _open_lines(spec, profiles, stack)
        for device in running.values():
            log.info("device %s (%s) unit %d: connect to %s", device.id, device.profile, device.unit, device.address)
        runner = None
        if scenario is not None:
            targets = {d.id: Target(simulator=d.simulator, unit=d.unit) for d in running.values()}
            runner = ScenarioRunner(scenario, targets, speed=spec.speed, tick_s=spec.tick, repeat=spec.repeat)
            runner.apply(0.0)  # the devices answer with the scenario's initial state from the first request
        if on_ready is not None:
            on_ready(running)
        if runner is not None:
            await runner.run(stop)
        await stop.wait()
