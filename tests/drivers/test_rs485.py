"""An RS-485 line over a real pty: three devices polled concurrently, one of them silent.

Modbus RTU is half duplex with a single master (Modbus over serial line 1.02, section 2.5.1.1), so the
devices share the line's time: a silent one must not eat its neighbours' polls, and requests must go
out one at a time with the inter-frame silence between them.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import pytest

from cityhub.contract import Quality
from drivers.modbus.device import ModbusDevice, PollResult
from drivers.modbus.line import LineSettings, ModbusLine
from drivers.modbus.profile import DeviceProfile, load_profile
from simulators.modbus import FaultMode, ModbusSimulator, PtyLink, RtuEndpoint
from simulators.modbus.faults import crc16

CLIMATE, GAS, SENSOR = 1, 2, 3
PROFILES = {CLIMATE: "climate-controller", GAS: "gas-suppression", SENSOR: "environment-sensor"}
SILENT = SENSOR
INTERVAL_S = 0.5
RUN_S = 5.0
TIMEOUT_S = 0.1
BAUDRATE = 19200
READ_REQUEST_BYTES = 8  # unit, function, address (2), count (2), CRC (2): serial line 1.02, 2.5.1


class RecordingSimulator(ModbusSimulator):
    """The simulator, noting each frame it receives and sends, with the time (pymodbus's packet trace)."""

    def __init__(self, devices: Mapping[int, DeviceProfile], endpoint: RtuEndpoint) -> None:
        super().__init__(devices, endpoint)
        self.wire: list[tuple[float, bool, bytes]] = []

    def _trace(self, sending: bool, frame: bytes) -> bytes:
        self.wire.append((time.monotonic(), sending, bytes(frame)))
        return super()._trace(sending, frame)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request as the simulator saw it: the frame, when it started to arrive, when it was answered."""

    request: bytes
    received_at: float
    answered_at: float

    @property
    def unit(self) -> int:
        return self.request[0]


def exchanges(wire: list[tuple[float, bool, bytes]]) -> list[Exchange]:
    """The wire cut at each answer; raises if two requests ever arrived before one answer."""
    result, pending, started = [], b"", 0.0
    for at, sending, data in wire:
        if not sending:
            started = started if pending else at
            pending += data
            continue
        assert len(pending) == READ_REQUEST_BYTES, f"more than one request on the wire at once: {pending.hex(' ')}"
        assert crc16(pending[:-2]) == pending[-2:], pending.hex(" ")
        result.append(Exchange(pending, started, at))
        pending = b""
    return result


@dataclass(slots=True)
class Polls:
    results: list[tuple[float, PollResult]]

    @property
    def good(self) -> int:
        return sum(r.ok and {x.quality for x in r.readings} == {Quality.GOOD} for _, r in self.results)

    @property
    def durations(self) -> list[float]:
        return [duration for duration, _ in self.results]


async def poll_every(device: ModbusDevice, interval_s: float, run_s: float) -> Polls:
    """Poll on a fixed schedule, as the agent does; a poll that overruns skips the ticks it missed."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    polls = Polls([])
    tick = 0
    while tick * interval_s < run_s:
        await asyncio.sleep(max(0.0, start + tick * interval_s - loop.time()))
        began = loop.time()
        result = await device.poll()
        polls.results.append((loop.time() - began, result))
        tick = max(tick + 1, math.ceil((loop.time() - start) / interval_s))
    return polls


@pytest.fixture
async def rtu() -> AsyncIterator[tuple[RecordingSimulator, ModbusLine]]:
    async with PtyLink() as link:
        # Parity N: Linux pseudo-terminals refuse E and O.
        endpoint = RtuEndpoint(path=link.server_path, baudrate=BAUDRATE, parity="N")
        simulator = RecordingSimulator({unit: load_profile(name) for unit, name in PROFILES.items()}, endpoint)
        async with simulator:
            line = ModbusLine(
                LineSettings(
                    name="rs485-1",
                    transport="rtu",
                    device=link.client_path,
                    baudrate=BAUDRATE,
                    parity="N",
                    timeout_s=TIMEOUT_S,
                )
            )
            try:
                yield simulator, line
            finally:
                await line.aclose()


async def test_a_silent_device_does_not_starve_its_neighbours(rtu: tuple[RecordingSimulator, ModbusLine]) -> None:
    simulator, line = rtu
    simulator.set(CLIMATE, "climate.supply_air_temperature", 21.5)
    simulator.set(GAS, "gas.cylinder_pressure", 150.0)
    simulator.set_fault(SILENT, FaultMode.SILENT)
    devices = {
        unit: ModbusDevice(device_id=name, unit=unit, profile=load_profile(name), line=line)
        for unit, name in PROFILES.items()
    }
    async with asyncio.TaskGroup() as group:
        tasks = {unit: group.create_task(poll_every(d, INTERVAL_S, RUN_S)) for unit, d in devices.items()}
    polls = {unit: task.result() for unit, task in tasks.items()}
    expected = RUN_S / INTERVAL_S
    sent = Counter(exchange.unit for exchange in exchanges(simulator.wire))

    for unit in (CLIMATE, GAS):
        healthy = polls[unit]
        assert healthy.good >= 0.8 * expected, f"unit {unit}: {healthy.good} good polls of {expected:.0f}"
        # A poll waits at most for one timeout of the silent device, never for a queue of them.
        assert max(healthy.durations) < INTERVAL_S / 2, healthy.durations
        assert statistics.median(healthy.durations) < INTERVAL_S / 5, healthy.durations
        assert sent[unit] == len(healthy.results) * len(devices[unit].requests)
    last = {r.metric: r.value for r in polls[CLIMATE].results[-1][1].readings}
    assert last["climate.supply_air_temperature"] == pytest.approx(21.5)

    silent = polls[SILENT]
    assert devices[SILENT].down
    assert len(silent.results) >= 0.8 * expected
    assert silent.good == 0
    # Backoff of 1 s, then 2 s, then 4 s: three timeouts in 5 s instead of one per poll.
    assert 2 <= sent[SILENT] <= 4, sent
    assert sent[SILENT] <= len(silent.results) / 2
    assert line.requests == sum(sent.values())


async def test_requests_never_overlap_and_keep_the_inter_frame_gap(
    rtu: tuple[RecordingSimulator, ModbusLine],
) -> None:
    simulator, line = rtu
    simulator.set_fault(SILENT, FaultMode.SILENT)
    devices = [
        ModbusDevice(
            device_id=name,
            unit=unit,
            profile=load_profile(name),
            line=line,
            backoff_initial_s=0.05,
            backoff_max_s=0.05,
        )
        for unit, name in PROFILES.items()
    ]

    async def burst(device: ModbusDevice) -> None:
        for _ in range(5):
            await device.poll()
            await asyncio.sleep(0.06)  # past the silent device's backoff: it times out again

    # Every device asks at the same moment, again and again: the line must queue them.
    async with asyncio.TaskGroup() as group:
        for device in devices:
            group.create_task(burst(device))
    seen = exchanges(simulator.wire)  # asserts one request at a time
    assert {exchange.unit for exchange in seen} == set(PROFILES)
    assert len(seen) == line.requests
    # 3.5 characters of 11 bits at 19200 baud: 2.0 ms of silence after each answer (or timeout).
    gap = line.settings.request_gap_s
    assert gap == pytest.approx(3.5 * 11 / BAUDRATE)
    silences = [after.received_at - before.answered_at for before, after in itertools.pairwise(seen)]
    assert min(silences) >= gap * 0.95, sorted(silences)[:5]
