"""SNMP UPS polling throughput of the driver, side by side with a bare pysnmp loop doing the same GETs.

Run ``.venv/bin/python bench/snmp_poll.py`` (``--help`` for the knobs).

The simulator
=============
``--devices`` simulated UPS cards (default 4, ``simulators/snmp_ups``, profile ``--profile``, default
ups-rfc1628) on free loopback ports, all in one separate process (``multiprocessing``, spawn), so that the
pysnmp command responder does not share the GIL with the client being measured. The cards are on line
with no alarms, so a poll raises no events and walks no alarm table.

What is measured
================
``bare``
    One pysnmp ``SnmpEngine`` of its own and, per card, the same ``CommunityData`` / ``UsmUserData``
    and ``UdpTransportTarget`` (same timeout, no retries); each poll is ``get_cmd`` with ``lookupMib=False``
    over the same OIDs in the same PDUs as the driver (``poll_oids(profile)`` in chunks of the profile's
    ``max_oids_per_request``), checking only ``errorIndication`` and ``errorStatus``. The ceiling:
    pysnmp's own client over the same socket kind.
``driver``
    One ``SnmpClient`` and one ``SnmpUpsDevice`` per card, identified by a first poll (sysObjectID and
    identity, not measured); sweeps of ``await device.poll()``: the client's error mapping and observed
    socket, value conversion, decoding into contract ``Reading`` objects (pydantic models), status
    tracking are all in the measured path.

Bare and driver take turns of ``--slice`` seconds (default 0.25) of whole sweeps until each has had
``--seconds`` (default 3) per round, the first turn going to bare in odd rounds and to the driver in
even ones; only one request is ever on the wire. Short turns, as in ``bench/modbus_poll.py``, so that
both paths see the same machine on a VM whose speed drifts over seconds. The result: polls/s and
requests/s per path, the medians over ``--rounds`` rounds (default 5), and the ratio driver/bare of
the medians of polls/s, target >= 0.8. Per poll, the CPU time of this process and of the simulator
process are shown too: with one request in flight, the round trip is client time plus server time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import benchlib
from benchlib import SimulatorProcess, mark, median, num, table_row
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    UdpTransportTarget,
    get_cmd,
)

from drivers.snmp_ups import SnmpClient, SnmpDeviceConfig, SnmpUpsDevice, UsmCredentials
from drivers.snmp_ups.decode import poll_oids
from drivers.snmp_ups.engine import new_engine, usm_user_data
from drivers.snmp_ups.profile import MibProfile, load_mib_profile
from simulators.snmp_ups.agent import UpsAgent

HOST = "127.0.0.1"
TARGET_RATIO = 0.8
V3 = {"user": "bench", "auth_protocol": "sha256", "auth_key": "bench-auth-key", "priv_protocol": "aes"}
V3_PRIV_KEY = "bench-priv-key"


# -- the simulator process -----------------------------------------------------------------------------


async def _serve(conn: Connection, profile: str, devices: int) -> None:
    user = UsmCredentials.model_validate({**V3, "priv_key": V3_PRIV_KEY})
    agents = [UpsAgent(profile, host=HOST, users=(user,)) for _ in range(devices)]
    for agent in agents:
        await agent.start()
    conn.send([agent.port for agent in agents])
    with contextlib.suppress(EOFError):  # any message, or the parent gone, stops the simulators
        await asyncio.to_thread(conn.recv)
    for agent in agents:
        await agent.stop()


def simulator_main(conn: Connection, profile: str, devices: int) -> None:
    """Simulator process: serve the cards until the parent says stop."""
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(conn, profile, devices))


# -- the two paths -------------------------------------------------------------------------------------


def device_config(args: argparse.Namespace, port: int) -> SnmpDeviceConfig:
    """The inventory entry of one simulated card."""
    fields: dict[str, Any] = {"driver": "snmp", "id": f"ups-{port}", "host": HOST, "port": port}
    fields |= {"timeout_s": args.timeout, "retries": 0, "profile": args.profile, "version": args.version}
    fields |= {**V3, "priv_key": V3_PRIV_KEY} if args.version == "3" else {"community": "public"}
    return SnmpDeviceConfig.model_validate(fields)


class BarePoller:
    """pysnmp's get_cmd over the driver's PDUs, nothing else."""

    def __init__(self, profile: MibProfile, configs: list[SnmpDeviceConfig]) -> None:
        self.engine = new_engine()
        oids = poll_oids(profile)
        step = profile.max_oids_per_request
        self.chunks: list[list[Any]] = [
            [ObjectType(ObjectIdentity(oid)) for oid in oids[i : i + step]] for i in range(0, len(oids), step)
        ]
        self.configs = configs
        self.targets: list[tuple[Any, Any]] = []
        self.requests = 0

    async def open(self) -> None:
        """Resolve the targets and build the credentials, as the driver's client does."""
        for cfg in self.configs:
            transport = await UdpTransportTarget.create((cfg.host, cfg.port), timeout=cfg.timeout_s, retries=0)
            auth = usm_user_data(cfg.usm()) if cfg.version == "3" else CommunityData("public", mpModel=1)  # noqa: S508
            self.targets.append((auth, transport))

    async def poll(self, index: int) -> None:
        """GET the profile's OIDs from card ``index``."""
        auth, transport = self.targets[index]
        for chunk in self.chunks:
            error, status, _, _ = await get_cmd(self.engine, auth, transport, ContextData(), *chunk, lookupMib=False)
            self.requests += 1
            if error or status:
                raise RuntimeError(f"bare poll failed: {error or status}")

    def close(self) -> None:
        """Close the engine's socket and timer."""
        self.engine.close_dispatcher()


@dataclass
class Measure:
    """One path's polls, requests and time in one round."""

    polls: int = 0
    requests: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    sim_cpu: float = 0.0

    @property
    def rate(self) -> float:
        """Polls per second."""
        return self.polls / self.seconds if self.seconds else float("nan")


@dataclass
class Lane:
    """One measured path: how it polls card ``index``, and its request counter."""

    name: str
    poll: Callable[[int], Awaitable[Any]]
    requests: Callable[[], int]
    measures: list[Measure] = field(default_factory=list)


async def _turns(args: argparse.Namespace, sim: SimulatorProcess, paths: list[Lane]) -> None:
    """One round: the paths take turns of ``--slice`` seconds of whole sweeps."""
    round_measures = [Measure() for _ in paths]
    devices = len(sim.ports)
    while any(m.seconds < args.seconds for m in round_measures):
        for path, m in zip(paths, round_measures, strict=True):
            if m.seconds >= args.seconds:
                continue
            requests, cpu, sim_cpu = path.requests(), time.process_time(), sim.cpu_seconds()
            start = time.perf_counter()
            deadline = start + min(args.slice, args.seconds - m.seconds)
            while time.perf_counter() < deadline:
                for index in range(devices):
                    await path.poll(index)
                m.polls += devices
            m.seconds += time.perf_counter() - start
            m.requests += path.requests() - requests
            m.cpu += time.process_time() - cpu
            m.sim_cpu += sim.cpu_seconds() - sim_cpu
    for path, m in zip(paths, round_measures, strict=True):
        path.measures.append(m)


async def bench(args: argparse.Namespace, sim: SimulatorProcess) -> list[Lane]:
    """Measure bare and driver, ``--rounds`` times."""
    profile = load_mib_profile(args.profile)
    configs = [device_config(args, port) for port in sim.ports]
    bare = BarePoller(profile, configs)
    await bare.open()
    try:
        async with SnmpClient() as client:
            devices = [SnmpUpsDevice.from_config(cfg, client=client) for cfg in configs]

            async def driver_poll(index: int) -> None:
                result = await devices[index].poll()
                if not result.ok:
                    raise RuntimeError(f"driver poll failed: {devices[index].down_reason}")

            for index in range(len(devices)):  # identify (and discover v3 engines) before measuring
                await driver_poll(index)
                await bare.poll(index)
            paths = [
                Lane("bare", bare.poll, lambda: bare.requests),
                Lane("driver", driver_poll, lambda: client.requests),
            ]
            for round_no in range(args.rounds):
                await _turns(args, sim, paths if round_no % 2 == 0 else paths[::-1])
    finally:
        bare.close()
    return sorted(paths, key=lambda p: p.name)


def report(args: argparse.Namespace, paths: list[Lane]) -> None:
    """Print the rounds, the medians and the ratio."""
    print(
        f"SNMP UPS polling: {args.devices} cards, profile {args.profile}, SNMPv{args.version}, "
        f"{args.rounds} rounds of {args.seconds:g} s per path"
    )
    widths = [("path", 8), ("round", 6), ("polls/s", 10), ("req/s", 10), ("ms/poll", 9), ("cpu ms", 8), ("sim ms", 8)]
    print(table_row(widths))
    for path in paths:
        for index, m in enumerate(path.measures, start=1):
            per = 1000 / m.polls if m.polls else float("nan")
            cells = [path.name, str(index), num(m.rate, 1), num(m.requests / m.seconds, 1), num(m.seconds * per, 3)]
            cells += [num(m.cpu * per, 3), num(m.sim_cpu * per, 3)]
            print(table_row([(c, w) for c, (_, w) in zip(cells, widths, strict=True)]))
    medians = {p.name: median([m.rate for m in p.measures]) for p in paths}
    ratio = medians["driver"] / medians["bare"] if medians["bare"] else float("nan")
    print(f"median polls/s: bare {num(medians['bare'], 1)}, driver {num(medians['driver'], 1)}")
    print(f"driver/bare: {num(ratio, 3)} (target >= {TARGET_RATIO}: {mark(ratio, TARGET_RATIO)})")


def run(args: argparse.Namespace, workdir: Path) -> None:
    """Start the simulator process, measure, report."""
    sim = SimulatorProcess(simulator_main, args.profile, args.devices)
    try:
        paths = asyncio.run(bench(args, sim))
    finally:
        sim.close()
    report(args, paths)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=4, help="simulated UPS cards")
    parser.add_argument("--profile", default="ups-rfc1628", help="MIB profile of the cards")
    parser.add_argument("--version", choices=["2c", "3"], default="2c", help="SNMP version (3: authPriv SHA-256/AES)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per path and round")
    parser.add_argument("--slice", type=float, default=0.25, help="bare and driver take turns of this many seconds")
    parser.add_argument("--timeout", type=float, default=1.0, help="request timeout, seconds")
    parser.add_argument("--workdir", type=Path, default=None, help="unused; kept for benchlib.main")
    args = parser.parse_args(argv)
    if args.devices < 1 or args.rounds < 1 or args.seconds <= 0 or args.slice <= 0:
        parser.error("--devices and --rounds must be >= 1, --seconds and --slice > 0")
    return args


if __name__ == "__main__":
    benchlib.main(parse_args, run)
