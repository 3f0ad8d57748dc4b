"""Modbus polling throughput of the driver and the edge agent, side by side with a bare pymodbus loop; agent RSS.

Run ``.venv/bin/python bench/modbus_poll.py`` (``--help`` for the knobs; ``--profile`` adds profiled rounds).

The simulator
=============
One ``ModbusSimulator`` (``simulators/modbus/server.py``) per TCP line, all in one separate process
(``multiprocessing``, spawn), so that the pymodbus server does not share the GIL with the client being
measured. The throughput line hosts ``--devices`` units (default 12), the memory lines ``--mem-devices``
units (default 50) split over ``--mem-lines`` lines (default 2); units take the four shipped profiles in
turn (climate-controller, energy-meter, environment-sensor, gas-suppression). Every numeric point holds a
non-zero value, strings a short text, states their normal value (so no events are raised).

Polling throughput
==================
The request list is ``plan_reads(profile)`` for every unit of the throughput line: 3 requests for a climate
controller, 2 for an energy meter, 2 for an environment sensor, 1 for a gas-suppression panel (24 requests
and 363 registers per sweep of the default 12 units). Each round measures three paths for ``--seconds``
(default 3) each:

``bare``
    A bare ``AsyncModbusTcpClient`` (same timeout, ``retries=0``, ``reconnect_delay=0``, as ``ModbusLine``
    builds it) sends the same requests to the same unit ids, one after another, and only checks
    ``isError()``. This is the ceiling: pymodbus's own client and framing over the same socket.
``driver``
    One ``ModbusLine`` and a ``ModbusDevice`` per unit; sweeps of ``await device.poll()`` over the units,
    sequentially: the line's FIFO lock and time limit, the error mapping, and the decoding into contract
    ``Reading`` objects (pydantic models) are all in the measured path.

    Bare and driver, each with its own connection, take turns of ``--slice`` seconds (default 0.25) of
    whole sweeps until each has had ``--seconds``, the first turn going to bare in odd rounds and to the
    driver in even ones; only one request is ever on the wire. Why turns this short: this 2-core VM's speed
    drifts by up to 1.5x over seconds (the simulator's own CPU per request, the same work every time,
    moves with it), and with back-to-back 3-second blocks the per-round driver/bare ratio wandered between
    0.65 and 0.98; in quarter-second turns both paths see the same machine, and it stays within a few %.
``agent``
    A whole ``EdgeAgent`` in this process's event loop, with the same units on one line, its outbound queue
    (SQLite, a durable commit per poll) and its forwarder publishing to a private Mosquitto
    (``tests/services.py``), HTTP off. Its devices poll back to back: the inventory refuses intervals under
    0.1 s, which for 12 devices would cap the line at a fraction of what it can do, so the bench sets the
    interval of the agent's device records to ``--agent-interval`` (default 0) after validation. Every
    device has its own polling task, so requests of different devices queue at the line's FIFO lock, and
    one device's decoding and queueing overlap another's request on the wire. The forwarder's rate bound
    (``buffer.drain_rate``, 500 msg/s in production) is lifted so that it keeps up. Requests are counted
    with ``line.requests``, polls with the agent's ``cityhub_agent_polls_total``. The agent runs before the
    bare/driver pair in even rounds and after it in odd ones.

Rates: requests/s, and registers/s (bits of coils and discrete inputs count one each). Ratios: driver/bare
and agent/bare of the medians of requests/s over ``--rounds`` rounds (default 5), target >= 0.8. In the bare
and driver sweeps the request mix is fixed; in the agent every device gets one turn at the lock per cycle,
so devices with fewer requests are polled more often and its registers/s ratio differs from its
requests/s ratio. The diagnostics give, per request, the wall time and the CPU time of this process (all
threads) and of the simulator process: with one request in flight at a time the round trip is client time
plus server time, so every microsecond of client CPU the driver adds is on the critical path. For the
agent they add its throughput in polls/s, the messages the broker acknowledged, and the CPU of its
threads (event loop, SQLite worker, paho network thread, found by ``threading`` native id in
``/proc/self/task``) and of Mosquitto, in % of one core.

Memory
======
``python -m cityhub agent --config <yaml>`` runs as a subprocess with ``--mem-devices`` devices on the
memory lines, polled every ``--mem-interval`` s (default 1), publishing to the same Mosquitto, with its
HTTP endpoint on (as by default). Its ``/proc/<pid>/status`` is sampled every 0.2 s for ``--mem-seconds``
(default 10) after ``/health`` first answers: VmRSS when ready, VmHWM (the peak since start, imports
included) and VmRSS at the end, plus the private (unshared) part from ``smaps_rollup``, and the RSS at
0, 1/4, 1/2, 3/4 and the end of the window. Target: under 60 MB. The agent's status is read at the end
from ``/health`` and ``/metrics`` (polls ok and failed, devices down), so a run that polled nothing shows.
``--mem-env KEY=VALUE`` passes environment variables to it (e.g. ``MALLOC_ARENA_MAX=2``).

Where the RSS goes: Python processes that only import, cumulatively (each row imports its modules and
those of every row above it), from a bare Python importing nothing (but ``site``, as the agent does) to
everything ``cityhub agent`` imports; a module shared by several rows counts in the first.

Caveats
=======
* The profiled rounds (``--profile``) are not in the medians: cProfile slows code made of many small Python
  calls far more than the bare loop, so read their proportions, not their times. cProfile sees the
  event-loop thread only (not the agent's paho and SQLite threads); time in ``select.epoll.poll`` is waiting
  for the simulator (or, in the agent, for the SQLite thread and the broker).
* The agent's outbound queue lives in the work directory (``$TMPDIR`` unless ``--workdir``): put it on the
  disk the agent would use, since every poll costs one flushed commit.
* The memory window is short: on the development VM the RSS still rises by about 1.5 MB over the first
  minute (58.5 MB ready, 60.2 MB at 60 s), then by about 0.1 MB a minute (60.4 MB at 4 min). Use
  ``--rounds 0 --mem-seconds 240`` for the steady state.
* Type-check with ``MYPYPATH=tests .venv/bin/mypy --strict bench/modbus_poll.py`` (it imports tests' helpers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import logging
import os
import pstats
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import benchlib
import httpx
import yaml
from benchlib import REPO, SimulatorProcess, mark, median, num, process_cpu_seconds, table_row, thread_cpu_seconds
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ModbusPDU
from services import MosquittoServer, free_port

from drivers.modbus.codec import Value
from drivers.modbus.device import ModbusDevice
from drivers.modbus.line import LineSettings, ModbusLine
from drivers.modbus.plan import ReadRequest, plan_reads
from drivers.modbus.profile import DataType, DeviceProfile, RegisterTable, load_profile
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig
from simulators.modbus import ModbusSimulator

HOST = "127.0.0.1"
PROFILES = ("climate-controller", "energy-meter", "environment-sensor", "gas-suppression")
TARGET_RATIO = 0.8
TARGET_RSS_MB = 60.0
MEASURES = ("bare", "driver", "agent")

#: One line of the simulator: unit id -> shipped profile name.
LineLayout = dict[int, str]


def layout(units: int) -> LineLayout:
    """Unit ids 1 to ``units``, taking the shipped profiles in turn."""
    return {unit: PROFILES[(unit - 1) % len(PROFILES)] for unit in range(1, units + 1)}


# -- the simulator process -----------------------------------------------------------------------------


def seed_values(sim: ModbusSimulator, unit: int, profile: DeviceProfile) -> None:
    """Non-zero numbers and a short string; bits and enumerated states stay at their normal 0."""
    for point in profile.points:
        value: Value
        if point.type in (DataType.BOOL, DataType.BIT) or point.states:
            continue
        if point.type is DataType.STRING:
            value = f"SIM-{unit:03d}"
        elif point.type in (DataType.FLOAT32, DataType.FLOAT64):
            value = 230.5 + unit
        else:
            value = (1_000 + unit) * point.scale + point.offset
        sim.set(unit, point.metric, value)


async def _serve(conn: Connection, lines: list[LineLayout]) -> None:
    sims = [ModbusSimulator({unit: load_profile(name) for unit, name in line.items()}) for line in lines]
    for sim in sims:
        for unit, memory in sim.memories.items():
            seed_values(sim, unit, memory.profile)
        await sim.start()
    conn.send([sim.port for sim in sims])
    with contextlib.suppress(EOFError):  # any message, or the parent gone, stops the simulators
        await asyncio.to_thread(conn.recv)
    for sim in sims:
        await sim.stop()


def simulator_main(conn: Connection, lines: list[LineLayout]) -> None:
    """Simulator process: serve every line until the parent says stop."""
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(conn, lines))


def thread_kind(native_id: int, names: dict[int, str]) -> str:
    """The agent's threads: the event loop (main thread), SQLite's worker, paho's network thread, others."""
    if native_id == threading.main_thread().native_id:
        return "loop"
    name = names.get(native_id, "")
    if name.startswith("sqlite"):
        return "sqlite"
    return "paho" if name.startswith("paho") else "other"


THREAD_KINDS = ("loop", "sqlite", "paho", "other")


# -- throughput measurements ---------------------------------------------------------------------------


@dataclass(slots=True)
class Measurement:
    """One measurement of one round."""

    name: str
    requests: int
    registers: int
    seconds: float
    client_cpu_s: float = 0.0
    sim_cpu_s: float = 0.0
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def req_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else float("nan")

    @property
    def reg_per_s(self) -> float:
        return self.registers / self.seconds if self.seconds > 0 else float("nan")

    def cpu_share(self, seconds: float) -> float:
        return seconds / self.seconds if self.seconds > 0 else float("nan")

    def per_request(self, seconds: float) -> float:
        """Microseconds per request."""
        return seconds / self.requests * 1e6 if self.requests else float("nan")


@dataclass(slots=True)
class Bench:
    """Everything the rounds share."""

    args: argparse.Namespace
    workdir: Path
    sim: SimulatorProcess
    mosquitto: MosquittoServer | None
    profiles: dict[int, DeviceProfile]  # unit -> profile, on the throughput line
    run_id: str = field(default_factory=lambda: f"{os.getpid():x}")

    @property
    def port(self) -> int:
        return self.sim.ports[0]

    @property
    def plan(self) -> list[tuple[int, ReadRequest]]:
        """Every (unit, request) of one sweep, in order."""
        return [(unit, request) for unit, profile in sorted(self.profiles.items()) for request in plan_reads(profile)]


@contextlib.contextmanager
def cpu_meter(bench: Bench, m: Measurement) -> Iterator[None]:
    """Add the CPU times of the block (this process, all threads; the simulator process) to ``m``'s."""
    client, sim = time.process_time(), bench.sim.cpu_seconds()
    yield
    m.client_cpu_s += time.process_time() - client
    m.sim_cpu_s += bench.sim.cpu_seconds() - sim


Read = Callable[..., Awaitable[ModbusPDU]]


class BarePath:
    """The same requests, sequentially, through a bare pymodbus client: the ceiling."""

    name = "bare"

    def __init__(self, bench: Bench) -> None:
        args = bench.args
        self.client = AsyncModbusTcpClient(HOST, port=bench.port, timeout=args.timeout, retries=0, reconnect_delay=0)
        calls: dict[RegisterTable, Read] = {
            RegisterTable.COIL: self.client.read_coils,
            RegisterTable.DISCRETE_INPUT: self.client.read_discrete_inputs,
            RegisterTable.INPUT: self.client.read_input_registers,
            RegisterTable.HOLDING: self.client.read_holding_registers,
        }
        self.reads = [(calls[r.table], r.address, r.count, unit) for unit, r in bench.plan]
        self.per_sweep = sum(count for _, _, count, _ in self.reads)
        self.requests = 0
        self.registers = 0

    async def open(self) -> None:
        """Connect and sweep once (warm-up)."""
        if not await self.client.connect():
            raise RuntimeError(f"bare client: cannot connect to {HOST}:{self.client.comm_params.port}")
        await self.sweep()

    async def sweep(self) -> None:
        """Every request once; only ``isError()`` is looked at."""
        for read, address, count, unit in self.reads:
            response = await read(address, count=count, device_id=unit)
            if response.isError():
                raise RuntimeError(f"bare client: unit {unit} read {address}+{count}: {response}")
        self.requests += len(self.reads)
        self.registers += self.per_sweep

    async def close(self) -> None:
        """Close the connection."""
        self.client.close()

    def extra(self) -> dict[str, float]:
        """Nothing more to say."""
        return {}


class DriverPath:
    """``ModbusDevice.poll`` of every unit in turn over one ``ModbusLine``: readings decoded, errors mapped."""

    name = "driver"

    def __init__(self, bench: Bench) -> None:
        args = bench.args
        settings = LineSettings(name="bench", transport="tcp", host=HOST, port=bench.port, timeout_s=args.timeout)
        self.line = ModbusLine(settings)
        self.devices = [
            ModbusDevice(device_id=f"dev-{unit:03d}", unit=unit, profile=profile, line=self.line)
            for unit, profile in sorted(bench.profiles.items())
        ]
        self.per_sweep = sum(request.count for device in self.devices for request in device.requests)
        self.requests = 0
        self.registers = 0
        self.readings = 0
        self.failed = 0

    async def open(self) -> None:
        """Connect and poll every device once (warm-up)."""
        for device in self.devices:
            if not (await device.poll()).ok:
                raise RuntimeError(f"driver: {device.device_id} did not answer the warm-up poll")

    async def sweep(self) -> None:
        """Poll every device once."""
        before = self.line.requests
        for device in self.devices:
            result = await device.poll()
            self.readings += len(result.readings)
            self.failed += not result.ok
        self.requests += self.line.requests - before
        self.registers += self.per_sweep

    async def close(self) -> None:
        """Close the line."""
        await self.line.aclose()

    def extra(self) -> dict[str, float]:
        """Readings and failed polls."""
        return {"readings": self.readings, "failed_polls": self.failed}


SweepPath = BarePath | DriverPath


async def measure_paths(
    bench: Bench, paths: Sequence[SweepPath], profiler: cProfile.Profile | None = None
) -> dict[str, Measurement]:
    """Run the paths in turns of ``--slice`` seconds of whole sweeps until each has had ``--seconds``."""
    args = bench.args
    measurements = {path.name: Measurement(path.name, 0, 0, 0.0) for path in paths}
    for path in paths:
        await path.open()
    try:
        turn = 0
        while pending := [p for p in paths if measurements[p.name].seconds < args.seconds]:
            path = pending[turn % len(pending)]
            turn += 1
            m = measurements[path.name]
            requests, registers = path.requests, path.registers
            with cpu_meter(bench, m), _profiling(profiler):
                start = time.perf_counter()
                deadline = start + min(args.slice, args.seconds - m.seconds)
                while True:
                    await path.sweep()
                    if time.perf_counter() >= deadline:
                        break
                m.seconds += time.perf_counter() - start
            m.requests += path.requests - requests
            m.registers += path.registers - registers
    finally:
        for path in paths:
            await path.close()
    for path in paths:
        m = measurements[path.name]
        m.extra = path.extra()
        if m.extra.get("failed_polls"):
            m.note = f"{m.extra['failed_polls']:.0f} polls not ok"
    return measurements


def agent_config(bench: Bench, round_name: str) -> AgentConfig:
    """An agent with the throughput line's units, MQTT to the private broker, HTTP off."""
    assert bench.mosquitto is not None
    return AgentConfig.model_validate(
        {
            "agent": {"id": f"bench-agent-{round_name}", "site": "bench-site"},
            "data_dir": str(bench.workdir / f"agent-{round_name}"),
            "log_level": "WARNING",
            "mqtt": {"url": bench.mosquitto.url, "topic_root": f"bench{bench.run_id}/{round_name}"},
            "buffer": {"drain_rate": 1_000_000},
            "http": {"port": None},
            "lines": [
                {"name": "bench", "transport": "tcp", "host": HOST, "port": bench.port, "timeout_s": bench.args.timeout}
            ],
            "devices": [
                {"id": f"dev-{unit:03d}", "line": "bench", "unit": unit, "profile": profile.name, "poll_interval_s": 1}
                for unit, profile in sorted(bench.profiles.items())
            ],
        }
    )


def _polls(agent: EdgeAgent, result: str) -> dict[str, float]:
    sample = agent.metrics.registry.get_sample_value
    return {d.id: sample("cityhub_agent_polls_total", {"device": d.id, "result": result}) or 0.0 for d in agent.devices}


async def _wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"agent: {what} within {timeout_s} s")
        await asyncio.sleep(0.02)


async def measure_agent(bench: Bench, round_name: str, profiler: cProfile.Profile | None = None) -> Measurement:
    """A whole EdgeAgent (queue, forwarder, MQTT) polling back to back; requests from ``line.requests``."""
    config = agent_config(bench, round_name)
    profiles = {d.id: load_profile(d.profile) for d in config.devices}
    agent = EdgeAgent(config, profiles)
    for device in agent.devices:  # below the inventory's 0.1 s minimum, on purpose: see the module docstring
        device.interval_s = bench.args.agent_interval
    per_poll = {d.id: sum(r.count for r in plan_reads(profiles[d.id])) for d in agent.devices}
    broker_pid = bench.mosquitto.pid if bench.mosquitto is not None else None
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop, drain_s=2.0), name="bench-agent")
    try:
        await asyncio.wait_for(agent.ready.wait(), 20)
        await agent.session.wait_connected(10)
        await _wait_until(lambda: min(_polls(agent, "ok").values()) >= 2, 10, "not every device polled twice")
        poller = agent.devices[0].poller  # every device is on the one bench line, which the agent opened
        assert isinstance(poller, ModbusDevice)
        line = poller.line
        m = Measurement("agent", 0, 0, 0.0)
        before_ok, before_failed = _polls(agent, "ok"), _polls(agent, "failed")
        requests, forwarded = line.requests, agent.forwarder.stats.forwarded
        broker_cpu = process_cpu_seconds(broker_pid) if broker_pid else float("nan")
        threads = thread_cpu_seconds()
        with cpu_meter(bench, m), _profiling(profiler):
            start = time.perf_counter()
            await asyncio.sleep(bench.args.seconds)
            m.seconds = time.perf_counter() - start
            m.requests = line.requests - requests
            after_ok, after_failed = _polls(agent, "ok"), _polls(agent, "failed")
            m.extra["forwarded"] = agent.forwarder.stats.forwarded - forwarded
            names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
            for tid, cpu in thread_cpu_seconds().items():
                key = f"cpu_{thread_kind(tid, names)}"
                m.extra[key] = m.extra.get(key, 0.0) + cpu - threads.get(tid, 0.0)
        m.extra["broker_cpu_s"] = process_cpu_seconds(broker_pid) - broker_cpu if broker_pid else float("nan")
        m.extra["queue_end"] = agent.queue.depth.messages
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    polls = {d: after_ok[d] - before_ok[d] for d in after_ok}
    m.registers = int(sum(polls[d] * per_poll[d] for d in polls))
    m.extra["polls"] = sum(polls.values())
    failed = sum(after_failed.values()) - sum(before_failed.values())
    if failed:
        m.note = f"{failed:.0f} polls failed"
    return m


@contextlib.contextmanager
def _profiling(profiler: cProfile.Profile | None) -> Iterator[None]:
    if profiler is None:
        yield
        return
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()


async def run_rounds(bench: Bench) -> list[dict[str, Measurement]]:
    """``--rounds`` rounds: bare and driver interleaved, then (or, every other round, first) the agent."""
    rounds: list[dict[str, Measurement]] = []
    for round_no in range(1, bench.args.rounds + 1):
        # The order of the two sweep paths, and whether the agent comes first, alternate from round to round.
        pair: list[SweepPath] = [BarePath(bench), DriverPath(bench)]
        if round_no % 2 == 0:
            pair.reverse()
        result: dict[str, Measurement] = {}
        steps: list[str] = ["pair", "agent"] if bench.args.agent else ["pair"]
        if round_no % 2 == 0:
            steps.reverse()
        for step in steps:
            if step == "pair":
                result.update(await measure_paths(bench, pair))
            else:
                result["agent"] = await measure_agent(bench, f"r{round_no}")
        for name in MEASURES:
            if name in result:
                _print_progress(round_no, result[name])
        rounds.append(result)
    return rounds


def _print_progress(round_no: int, m: Measurement) -> None:
    note = f"  ! {m.note}" if m.note else ""
    print(
        f"  round {round_no} {m.name:<6} {m.seconds:5.2f} s  {num(m.req_per_s):>7} req/s  "
        f"{num(m.reg_per_s):>8} reg/s  CPU per request: client {num(m.per_request(m.client_cpu_s)):>5} us, "
        f"simulator {num(m.per_request(m.sim_cpu_s)):>4} us{note}",
        flush=True,
    )


# -- memory --------------------------------------------------------------------------------------------


def proc_kb(pid: int | str, names: Sequence[str]) -> dict[str, int]:
    """The named kB fields of /proc/<pid>/status (VmRSS, VmHWM, ...)."""
    out: dict[str, int] = {}
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = row.partition(":")
        if key in names:
            out[key] = int(rest.split()[0])
    return out


def private_kb(pid: int) -> int:
    """Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup: what no other process shares."""
    total = 0
    for row in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = row.partition(":")
        if key in ("Private_Clean", "Private_Dirty"):
            total += int(rest.split()[0])
    return total


#: Reference processes, cumulative: each imports its modules and those of every row above it.
IMPORT_STEPS: tuple[tuple[str, str], ...] = (
    ("python, importing nothing", ""),
    ("+ pydantic and the contract models", "cityhub.contract"),
    ("+ the Modbus driver (pymodbus client, PyYAML)", "drivers.modbus.device, drivers.modbus.line"),
    ("+ paho-mqtt (cityhub.mqtt)", "cityhub.mqtt"),
    ("+ prometheus_client", "prometheus_client"),
    ("+ the outbound queue (sqlite3)", "edge_agent.buffer, edge_agent.forwarder"),
    ("+ fastapi and uvicorn (cityhub.http)", "cityhub.http"),
    ("+ the rest of `cityhub agent`", "cityhub.cli, edge_agent.agent, edge_agent.config"),
)


def reference_rss(modules: Sequence[str]) -> int:
    """VmRSS in kB of a Python process that imports ``modules`` (nothing if empty), then reads its status."""
    imports = ", ".join(m for m in modules if m)
    code = (f"import {imports}; " if imports else "") + "print(open('/proc/self/status').read())"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, timeout=60)
    for row in out.stdout.splitlines():
        key, _, rest = row.partition(":")
        if key == "VmRSS":
            return int(rest.split()[0])
    raise RuntimeError(f"no VmRSS in the reference process's status: {out.stdout[:200]}")


def import_references() -> list[tuple[str, int]]:
    """(label, VmRSS kB) of each cumulative import step."""
    return [
        (label, reference_rss([modules for _, modules in IMPORT_STEPS[: index + 1]]))
        for index, (label, _) in enumerate(IMPORT_STEPS)
    ]


@dataclass(slots=True)
class AgentMemory:
    """What the memory run saw."""

    ready_kb: int
    peak_kb: int  # VmHWM at the end: the high-water mark since start
    end_kb: int
    max_sampled_kb: int
    private_end_kb: int
    seconds: float
    polls_ok: float
    polls_failed: float
    devices_down: list[str]
    queue_messages: int
    trend: list[tuple[float, int]]  # (seconds since ready, VmRSS kB) at 0, 1/4, 1/2, 3/4 and the end


def write_agent_yaml(bench: Bench, path: Path, http_port: int) -> None:
    """The memory run's inventory: ``--mem-devices`` devices over the memory lines."""
    assert bench.mosquitto is not None
    args = bench.args
    lines = [
        {"name": f"line-{i}", "transport": "tcp", "host": HOST, "port": port, "timeout_s": args.timeout}
        for i, port in enumerate(bench.sim.ports[1:], 1)
    ]
    devices = [
        {
            "id": f"mem-{i}-{unit:03d}",
            "line": f"line-{i}",
            "unit": unit,
            "profile": name,
            "poll_interval_s": args.mem_interval,
        }
        for i, units in enumerate(memory_layout(args), 1)
        for unit, name in units.items()
    ]
    config = {
        "agent": {"id": "bench-mem-agent", "site": "bench-site"},
        "data_dir": str(bench.workdir / "mem-agent"),
        "log_level": "WARNING",
        "mqtt": {"url": bench.mosquitto.url, "topic_root": f"bench{bench.run_id}/mem"},
        "http": {"host": HOST, "port": http_port},
        "lines": lines,
        "devices": devices,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def memory_layout(args: argparse.Namespace) -> list[LineLayout]:
    """The memory lines: ``--mem-devices`` units split as evenly as possible over ``--mem-lines`` lines."""
    per_line, extra = divmod(args.mem_devices, args.mem_lines)
    lines, first = [], 0
    for i in range(args.mem_lines):
        count = per_line + (i < extra)
        # Profiles keep turning across lines, so every line does not start with the same profile.
        lines.append({unit: PROFILES[(first + unit - 1) % len(PROFILES)] for unit in range(1, count + 1)})
        first += count
    return lines


def _metric_sum(text: str, name: str, label: str) -> float:
    return sum(float(row.rsplit(" ", 1)[1]) for row in text.splitlines() if row.startswith(name) and label in row)


def measure_agent_memory(bench: Bench) -> AgentMemory:
    """Run ``python -m cityhub agent`` for ``--mem-seconds`` of polling and sample its RSS."""
    config, log_path, http_port = bench.workdir / "mem-agent.yaml", bench.workdir / "mem-agent.log", free_port()
    write_agent_yaml(bench, config, http_port)
    env = {**os.environ, **dict(item.split("=", 1) for item in bench.args.mem_env)}
    command = [sys.executable, "-m", "cityhub", "agent", "--config", str(config)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=log, env=env)
    url = f"http://{HOST}:{http_port}"
    try:
        with httpx.Client(base_url=url, timeout=2.0) as http:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the agent exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if http.get("/health").status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the agent was not healthy within 30 s: {log_path.read_text()[-2000:]}")
                time.sleep(0.1)
            ready = proc_kb(proc.pid, ("VmRSS",))["VmRSS"]
            start = time.monotonic()
            samples = [(0.0, ready)]
            while time.monotonic() - start < bench.args.mem_seconds:
                time.sleep(0.2)
                samples.append((time.monotonic() - start, proc_kb(proc.pid, ("VmRSS",))["VmRSS"]))
            status = proc_kb(proc.pid, ("VmRSS", "VmHWM"))
            private = private_kb(proc.pid)
            seconds = time.monotonic() - start
            health = http.get("/health").json()
            metrics = http.get("/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return AgentMemory(
        ready_kb=ready,
        peak_kb=status["VmHWM"],
        end_kb=status["VmRSS"],
        max_sampled_kb=max(max(kb for _, kb in samples), status["VmRSS"]),
        trend=[min(samples, key=lambda s: abs(s[0] - seconds * q / 4)) for q in range(5)],
        private_end_kb=private,
        seconds=seconds,
        polls_ok=_metric_sum(metrics, "cityhub_agent_polls_total", 'result="ok"'),
        polls_failed=_metric_sum(metrics, "cityhub_agent_polls_total", 'result="failed"'),
        devices_down=list(health.get("devices_down", [])),
        queue_messages=int(health.get("queue_messages", 0)),
    )


def print_memory(bench: Bench, memory: AgentMemory, references: list[tuple[str, int]]) -> None:
    """The agent's RSS against the target, then the reference processes."""
    args = bench.args
    mb = 1024.0
    print(
        f"agent: {args.mem_devices} devices ({', '.join(PROFILES)} in turn) on {args.mem_lines} TCP lines, "
        f"polled every {args.mem_interval:g} s, HTTP on; {memory.seconds:.1f} s sampled after /health answered"
        + (f"; environment {' '.join(args.mem_env)}" if args.mem_env else "")
    )
    print(
        f"  polls ok {memory.polls_ok:,.0f}, failed {memory.polls_failed:,.0f}; devices down "
        f"{len(memory.devices_down)}; queue at end {memory.queue_messages} messages"
    )
    rows = (
        ("RSS when ready", memory.ready_kb),
        ("RSS peak (VmHWM, since start)", memory.peak_kb),
        ("RSS highest sample", memory.max_sampled_kb),
        ("RSS at the end", memory.end_kb),
        ("private (unshared) at the end", memory.private_end_kb),
    )
    for label, kb in rows:
        print(f"  {label:<34} {kb / mb:6.1f} MB")
    trend = ", ".join(f"{kb / mb:.1f} MB at {t:.0f} s" for t, kb in memory.trend)
    print(f"  RSS over time: {trend}")
    for label, kb in (("peak", memory.peak_kb), ("end", memory.end_kb)):
        mark = "PASS" if kb / mb < TARGET_RSS_MB else "ABOVE"
        print(f"  agent RSS {label:<4} {kb / mb:6.1f} MB  (target < {TARGET_RSS_MB:g} MB)  {mark}")
    if references:
        print("\nwhere it goes: Python processes that only import, each what its row and the rows above it name:")
        print(f"  {'':<50} {'VmRSS':>8} {'step':>9}")
        previous = references[0][1]
        for label, rss in references:
            print(f"  {label:<50} {rss / mb:5.1f} MB {(rss - previous) / mb:+6.1f} MB")
            previous = rss
        print(
            f"  the running agent, over its imports: {(memory.end_kb - references[-1][1]) / mb:+.1f} MB at the end "
            "(a module is counted in the first step that imports it)"
        )


# -- profiles ------------------------------------------------------------------------------------------


def _prefixes() -> list[str]:
    stdlib = sysconfig.get_paths()["stdlib"] + "/"
    return sorted({str(REPO) + "/", stdlib, *(p + "/" for p in sys.path if p.endswith("site-packages"))}, key=len)


def _group(filename: str, function: str) -> str:
    """Which layer a profiled function belongs to."""
    if filename == "~":
        return "waiting in epoll" if "epoll" in function else "C built-ins"
    site = "site-packages/"
    if site in filename:
        return filename.split(site, 1)[1].split("/", 1)[0].removesuffix(".py")
    if filename.startswith(str(REPO) + "/"):
        return filename[len(str(REPO)) + 1 :].split("/", 1)[0] + "/"
    stdlib = sysconfig.get_paths()["stdlib"] + "/"
    if filename.startswith(stdlib + "asyncio/"):
        return "asyncio"
    return "stdlib (other)"


def group_times(profile: cProfile.Profile) -> dict[str, float]:
    """Own time (tottime) summed per layer."""
    stats = pstats.Stats(profile)
    out: dict[str, float] = {}
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, function), (_cc, _nc, tottime, *_rest) in raw.items():
        key = _group(filename, function)
        out[key] = out.get(key, 0.0) + tottime
    return out


def print_profile_listing(
    profile: cProfile.Profile, sort: str, title: str, limit: int, only: str | None = None
) -> None:
    """pstats' listing (only functions whose location matches the regex ``only``, if given), prefixes cut."""
    stream = io.StringIO()
    restrictions: tuple[str | int, ...] = (only, limit) if only else (limit,)
    pstats.Stats(profile, stream=stream).sort_stats(sort).print_stats(*restrictions)
    text = stream.getvalue()
    for prefix in reversed(_prefixes()):
        text = text.replace(prefix, "")
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "function calls" in line), 0)
    print(f"\n==== {title} ====")
    print("\n".join(line for line in lines[start:] if line.strip()))


async def run_profiles(bench: Bench) -> None:
    """Profiled bare, driver and agent measurements (not in the medians): layers, then the top functions."""
    profiled: dict[str, tuple[Measurement, cProfile.Profile]] = {}
    for name in (n for n in MEASURES if n != "agent" or bench.args.agent):
        profiler = cProfile.Profile()
        if name == "agent":
            m = await measure_agent(bench, "profiled", profiler)
        else:
            path: SweepPath = BarePath(bench) if name == "bare" else DriverPath(bench)
            m = (await measure_paths(bench, [path], profiler))[name]
        profiled[name] = (m, profiler)
    print("\nprofiled rounds (not in the medians; cProfile inflates Python-heavy paths most):")
    for name, (m, _) in profiled.items():
        print(f"  {name:<6} {num(m.req_per_s)} req/s")
    groups = {name: group_times(p) for name, (_, p) in profiled.items()}
    keys = sorted({k for g in groups.values() for k in g}, key=lambda k: -max(g.get(k, 0.0) for g in groups.values()))
    names = list(profiled)
    print("\nown time per request, by layer (microseconds; event-loop thread only):")
    print(f"  {'layer':<22}" + "".join(f"{n:>10}" for n in names))
    for key in keys:
        cells = "".join(f"{groups[n].get(key, 0.0) / profiled[n][0].requests * 1e6:10.1f}" for n in names)
        print(f"  {key:<22}{cells}")
    totals = "".join(f"{sum(groups[n].values()) / profiled[n][0].requests * 1e6:10.1f}" for n in names)
    print(f"  {'total':<22}{totals}")
    top = bench.args.profile_top
    driver = profiled["driver"][1]
    print_profile_listing(driver, "cumulative", f"driver path: top {top} by cumulative time", top)
    print_profile_listing(driver, "tottime", f"driver path: top {top} by own time (tottime)", top)
    if "agent" in profiled:
        agent = profiled["agent"][1]
        title = "agent, event-loop thread: the project's functions, top 25 by cumulative time"
        print_profile_listing(agent, "cumulative", title, 25, only=f"{REPO}/(edge_agent|drivers|cityhub|hub)/")
        print_profile_listing(agent, "tottime", "agent, event-loop thread: top 20 by own time", 20)


# -- reporting -----------------------------------------------------------------------------------------


def _table(titles: Sequence[str], widths: Sequence[int], rows: Sequence[Sequence[str]]) -> None:
    header = table_row(list(zip(titles, widths, strict=True)))
    print(header)
    print("-" * len(header))
    for index, row in enumerate(rows):
        if index == len(rows) - 1 and row[0] == "median":
            print("-" * len(header))
        print(table_row(list(zip(row, widths, strict=True))))


def print_results(rounds: list[dict[str, Measurement]]) -> None:
    """Per-round rates and ratios, the medians, the ratios against the target, then the diagnostics."""
    nan = Measurement("-", 0, 0, 0.0)
    columns: dict[str, list[float]] = {}
    rows: list[list[str]] = []
    for index, result in enumerate(rounds, 1):
        bare, driver, agent = result["bare"], result["driver"], result.get("agent", nan)
        values = {
            "bare": bare.req_per_s,
            "driver": driver.req_per_s,
            "agent": agent.req_per_s,
            "d/b": driver.req_per_s / bare.req_per_s,
            "a/b": agent.req_per_s / bare.req_per_s,
            "bare_reg": bare.reg_per_s,
            "driver_reg": driver.reg_per_s,
            "agent_reg": agent.reg_per_s,
        }
        for key, value in values.items():
            columns.setdefault(key, []).append(value)
        rows.append([str(index), *(num(v, 2 if "/" in k else 0) for k, v in values.items())])
    med = {key: median(values) for key, values in columns.items()}
    rows.append(["median", *(num(v, 2 if "/" in k else 0) for k, v in med.items())])
    titles = ("round", "bare req/s", "driver req/s", "agent req/s", "drv/bare", "agt/bare", "bare reg/s")
    _table((*titles, "driver reg/s", "agent reg/s"), (6, 10, 12, 11, 8, 8, 10, 12, 11), rows)
    print()
    for label, key, reg in (("driver", "driver", "driver_reg"), ("agent ", "agent", "agent_reg")):
        ratio, reg_ratio = med[key] / med["bare"], med[reg] / med["bare_reg"]
        print(
            f"{label} requests/s / bare requests/s = {num(ratio, 3)}  (target >= {TARGET_RATIO})  "
            f"{mark(ratio, TARGET_RATIO)}   (registers/s: {num(reg_ratio, 3)})"
        )
    print("(ratios of the medians; drv/bare and agt/bare are the per-round ratios)")

    print_diagnostics(rounds)


def print_diagnostics(rounds: list[dict[str, Measurement]]) -> None:
    """Time and CPU per request of each path; where the agent's CPU goes."""
    nan = float("nan")
    empty = Measurement("-", 0, 0, 0.0)
    rows: list[list[str]] = []
    per_request: dict[str, list[float]] = {}
    for index, result in enumerate(rounds, 1):
        cells = [str(index)]
        for name in MEASURES:
            m = result.get(name, empty)
            values = (m.per_request(m.seconds), m.per_request(m.client_cpu_s), m.per_request(m.sim_cpu_s))
            for kind, value in zip(("wall", "cpu", "sim"), values, strict=True):
                per_request.setdefault(f"{name}_{kind}", []).append(value)
            cells += [num(v) for v in values]
        rows.append(cells)
    med = {key: median(values) for key, values in per_request.items()}
    rows.append(["median", *(num(med[f"{n}_{k}"]) for n in MEASURES for k in ("wall", "cpu", "sim"))])
    print()
    print("microseconds per request: wall time; CPU of this process (all threads); CPU of the simulator process")
    titles = ("round", "bare wall", "cpu", "sim", "driver wall", "cpu", "sim", "agent wall", "cpu", "sim")
    _table(titles, (6, 9, 6, 6, 11, 6, 6, 10, 6, 6), rows)
    print(
        f"driver - bare, per request: {num(med['driver_wall'] - med['bare_wall'])} us wall, "
        f"{num(med['driver_cpu'] - med['bare_cpu'])} us client CPU (medians)"
    )
    agents = [(index, r["agent"]) for index, r in enumerate(rounds, 1) if "agent" in r]
    if not agents:
        return
    print()
    print("agent: polls/s, messages/s the broker acknowledged, CPU of its threads and of the broker (% of one core)")
    rows = []
    for index, m in agents:
        x = m.extra
        threads = [f"{m.cpu_share(x.get(f'cpu_{kind}', 0.0)):.0%}" for kind in THREAD_KINDS]
        rows.append(
            [
                str(index),
                num(x.get("polls", nan) / m.seconds),
                num(x.get("forwarded", nan) / m.seconds),
                *threads,
                f"{m.cpu_share(x.get('broker_cpu_s', nan)):.0%}",
                num(x.get("queue_end", nan)),
            ]
        )
    agent_titles = ("round", "polls/s", "fwd msg/s", "loop", "sqlite", "paho", "other", "broker", "queue at end")
    _table(agent_titles, (6, 8, 10, 6, 7, 6, 6, 7, 13), rows)


# -- main ----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=12, help="units on the throughput line")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (0: skip the throughput rounds)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one throughput measurement")
    parser.add_argument("--slice", type=float, default=0.25, help="bare and driver take turns of this many seconds")
    parser.add_argument("--timeout", type=float, default=1.0, help="request timeout, seconds (LineSettings.timeout_s)")
    parser.add_argument("--agent-interval", type=float, default=0.0, help="poll interval of the agent's devices")
    parser.add_argument("--no-agent", dest="agent", action="store_false", help="skip the in-process agent rounds")
    parser.add_argument("--mem-devices", type=int, default=50, help="devices of the memory run")
    parser.add_argument("--mem-lines", type=int, default=2, help="TCP lines the memory run's devices are spread over")
    parser.add_argument("--mem-interval", type=float, default=1.0, help="poll interval in the memory run")
    parser.add_argument("--mem-seconds", type=float, default=10.0, help="polling time sampled in the memory run")
    parser.add_argument(
        "--mem-env", action="append", default=[], metavar="KEY=VALUE", help="environment of the memory run's agent"
    )
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the memory run")
    parser.add_argument("--profile", action="store_true", help="add profiled bare/driver/agent rounds and print them")
    parser.add_argument("--profile-top", type=int, default=25, help="functions per profile listing")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the agents' files here (default: temp)")
    args = parser.parse_args(argv)
    if args.devices < 1 or args.mem_devices < 1 or not 1 <= args.mem_lines <= args.mem_devices:
        parser.error("--devices and --mem-devices must be >= 1, --mem-lines between 1 and --mem-devices")
    if args.devices > 247 or -(-args.mem_devices // args.mem_lines) > 247:
        parser.error("a line holds at most 247 units")
    if any("=" not in item for item in args.mem_env):
        parser.error("--mem-env takes KEY=VALUE")
    if args.rounds < 0 or args.seconds <= 0 or args.slice <= 0 or args.agent_interval < 0:
        parser.error("--rounds must be >= 0, --seconds and --slice > 0, --agent-interval >= 0")
    return args


def run(args: argparse.Namespace, workdir: Path) -> None:
    """Start the simulator process (and Mosquitto), run the rounds, then the memory run; print."""
    started = time.monotonic()
    print(
        f"cityhub modbus polling benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, workdir {workdir}"
    )
    lines = [layout(args.devices), *(memory_layout(args) if args.memory else [])]
    profiles = {unit: load_profile(name) for unit, name in lines[0].items()}
    plan = [(unit, r) for unit, p in sorted(profiles.items()) for r in plan_reads(p)]
    print(
        f"throughput line: {args.devices} units, {len(plan)} requests and {sum(r.count for _, r in plan)} registers "
        f"per sweep; timeout {args.timeout:g} s; {args.seconds:g} s per measurement, {args.rounds} rounds"
    )
    mosquitto = MosquittoServer(workdir / "mosquitto") if args.agent or args.memory else None
    sim: SimulatorProcess | None = None
    try:
        if mosquitto is not None:
            mosquitto.start()
        sim = SimulatorProcess(simulator_main, lines)
        bench = Bench(args, workdir, sim, mosquitto, profiles)

        async def throughput() -> None:
            if args.rounds:
                rounds = await run_rounds(bench)
                print()
                print_results(rounds)
            if args.profile:
                await run_profiles(bench)

        asyncio.run(throughput())
        if args.memory:
            print("\n== memory ==")
            memory = measure_agent_memory(bench)
            references = import_references()
            print_memory(bench, memory, references)
    finally:
        if sim is not None:
            sim.close()
        if mosquitto is not None:
            mosquitto.close()
    print(f"\ntotal wall time {time.monotonic() - started:.0f} s")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point."""
    benchlib.main(parse_args, run, argv)


if __name__ == "__main__":
    main()
