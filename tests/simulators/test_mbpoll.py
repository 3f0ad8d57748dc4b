"""An independent Modbus master, Debian's ``mbpoll``, reads the simulator: what it prints is what the profile promises.

mbpoll (libmodbus) shares no code with pymodbus, so these tests catch what a pymodbus client could hide
on both sides: addressing (``-0``: references are PDU addresses, as in the profiles), word order and
exception responses. A missing mbpoll fails the tests: run scripts/test.sh, which installs it.
"""

from __future__ import annotations

import asyncio
import math
import re
import shutil
from pathlib import Path

import pytest

from drivers.modbus.codec import Value, decode
from drivers.modbus.profile import (
    PROFILE_DIR,
    DataType,
    DeviceProfile,
    PointSpec,
    RegisterTable,
    load_profile,
    parse_profile,
)
from simulators.modbus import ModbusSimulator

# mbpoll's -t option for each table: 0 coils, 1 discrete inputs, 3 input registers, 4 holding registers.
TABLE_TYPES = {
    RegisterTable.COIL: "0",
    RegisterTable.DISCRETE_INPUT: "1",
    RegisterTable.INPUT: "3",
    RegisterTable.HOLDING: "4",
}

LINE = re.compile(r"^\[(\d+)\]:\s+(\S+)", re.MULTILINE)

WORD_ORDERS = """
profile: word-orders
kind: test
points:
  - {metric: w.f32_abcd, table: holding, address: 0, type: float32}
  - {metric: w.f32_cdab, table: holding, address: 2, type: float32, word_order: little}
  - {metric: w.i32_abcd, table: holding, address: 4, type: int32}
  - {metric: w.u32_cdab, table: holding, address: 6, type: uint32, word_order: little}
  - {metric: w.i16, table: input, address: 0, type: int16, scale: 0.1}
  - {metric: w.bits, table: input, address: 1, type: bit, bit: 3}
  - {metric: w.coil, table: coil, address: 9, type: bool}
"""


@pytest.fixture(scope="module")
def mbpoll() -> str:
    """The mbpoll binary; the test fails, never skips, when it is missing."""
    found = shutil.which("mbpoll") or ("/usr/bin/mbpoll" if Path("/usr/bin/mbpoll").exists() else None)
    if found is None:
        pytest.fail(
            "mbpoll not found (looked at PATH and /usr/bin/mbpoll). Run the test suite through scripts/test.sh, "
            "which installs it, or `apt-get install mbpoll`.",
            pytrace=False,
        )
    return found


async def run_mbpoll(mbpoll: str, port: int, unit: int, *args: str) -> tuple[int, str, str]:
    """Run one mbpoll poll (-1) over TCP with PDU addressing (-0); returns exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        mbpoll, "-m", "tcp", "-p", str(port), "-a", str(unit), "-0", "-1", "-o", "2", *args, "127.0.0.1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), 15)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, out.decode(), err.decode()


async def poll(mbpoll: str, port: int, unit: int, kind: str, address: int, count: int, *extra: str) -> dict[int, str]:
    """What mbpoll prints for ``count`` values of type ``kind`` from ``address``: {reference: text}."""
    code, out, err = await run_mbpoll(mbpoll, port, unit, "-t", kind, "-r", str(address), "-c", str(count), *extra)
    assert code == 0, f"mbpoll -t {kind} -r {address} -c {count} failed: {err.strip()}"
    printed = {int(ref): text for ref, text in LINE.findall(out)}
    assert len(printed) == count, out
    return printed


def sample_value(point: PointSpec, index: int) -> Value:
    """A value with few significant digits (mbpoll prints floats with %g)."""
    if point.type in (DataType.BOOL, DataType.BIT):
        return index % 2 == 0
    if point.type is DataType.STRING:
        return "MB-1"
    if point.states:
        return point.states[-1][0]
    if point.type in (DataType.FLOAT32, DataType.FLOAT64):
        return 123.5 + index
    signed = point.type in (DataType.INT16, DataType.INT32, DataType.INT64)
    raw = -321 - index if signed else 321 + index
    return raw * point.scale + point.offset


def same(a: Value, b: Value) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return a == b


async def read_every_span(mbpoll: str, simulator: ModbusSimulator, unit: int) -> dict[tuple[RegisterTable, int], int]:
    """Every address the device answers, read with mbpoll as plain 16-bit registers or bits."""
    memory = simulator.memory(unit)
    raw: dict[tuple[RegisterTable, int], int] = {}
    for table in RegisterTable:
        for start, end in memory.spans[table]:
            for first in range(start, end, 100):  # mbpoll reads at most 125 values
                count = min(100, end - first)
                for ref, text in (await poll(mbpoll, simulator.port, unit, TABLE_TYPES[table], first, count)).items():
                    raw[table, ref] = int(text)  # 16-bit registers print unsigned first
    return raw


async def check_profile(mbpoll: str, profile: DeviceProfile) -> None:
    async with ModbusSimulator({3: profile}) as simulator:
        expected = {p.metric: sample_value(p, i) for i, p in enumerate(profile.points)}
        for metric, value in expected.items():
            simulator.set(3, metric, value)
        raw = await read_every_span(mbpoll, simulator, 3)
        for point in profile.points:
            registers = [raw[point.table, point.address + i] for i in range(point.count)]
            decoded = decode(point, registers)
            assert same(decoded, expected[point.metric]), f"{point.metric}: mbpoll read {registers} = {decoded!r}"


@pytest.mark.parametrize("path", sorted(PROFILE_DIR.glob("*.yaml")), ids=lambda p: p.stem)
async def test_mbpoll_reads_what_a_shipped_profile_promises(mbpoll: str, path: Path) -> None:
    await check_profile(mbpoll, load_profile(path))


async def test_mbpoll_reads_what_the_word_order_profile_promises(mbpoll: str) -> None:
    await check_profile(mbpoll, parse_profile(Path("word-orders.yaml"), WORD_ORDERS))


@pytest.mark.parametrize(
    ("metric", "kind", "value", "extra"),
    [
        ("w.f32_abcd", "4:float", 230.25, ("-B",)),  # -B: big-endian word order (ABCD)
        ("w.f32_cdab", "4:float", -17.125, ()),  # mbpoll's default is the word swap (CDAB)
        ("w.i32_abcd", "4:int", -70000, ("-B",)),
        ("w.u32_cdab", "4:int", 123456789, ()),
    ],
)
async def test_mbpoll_32_bit_types_agree_with_the_word_order(
    mbpoll: str, metric: str, kind: str, value: float, extra: tuple[str, ...]
) -> None:
    profile = parse_profile(Path("word-orders.yaml"), WORD_ORDERS)
    async with ModbusSimulator({1: profile}) as simulator:
        simulator.set(1, metric, value)
        point = profile.point(metric)
        printed = await poll(mbpoll, simulator.port, 1, kind, point.address, 1, *extra)
    assert float(printed[point.address]) == pytest.approx(value)


async def test_mbpoll_sees_the_climate_alarm_bits_and_float_meter(mbpoll: str) -> None:
    climate, meter = load_profile("climate-controller"), load_profile("energy-meter")
    async with ModbusSimulator({1: climate, 2: meter}) as simulator:
        simulator.set(1, "climate.alarm.high_temperature", True)
        simulator.set(1, "climate.alarm.dirty_filter", True)
        simulator.set(2, "meter.voltage_l1", 231.5)
        simulator.set(2, "meter.active_power", 15250.0)
        alarms = await poll(mbpoll, simulator.port, 1, "3:hex", 20, 1)
        voltage = await poll(mbpoll, simulator.port, 2, "3:float", 0, 1)  # CDAB, mbpoll's default
        power = await poll(mbpoll, simulator.port, 2, "3:float", 12, 1, "-B")  # ABCD
    assert alarms[20] == "0x0009"  # bits 0 and 3
    assert float(voltage[0]) == 231.5
    assert float(power[12]) == 15250.0


@pytest.mark.parametrize(
    ("unit", "kind", "address", "count", "message"),
    [
        (1, "3", 21, 1, "Illegal data address"),  # after the alarm word: unmapped
        (1, "3", 0, 22, "Illegal data address"),  # runs past it
        (1, "4", 2, 1, "Illegal data address"),
        (1, "0", 0, 1, "Illegal data address"),  # the climate controller has no coils
        (9, "3", 0, 1, "Target device failed to respond"),  # no unit 9 behind this "gateway": exception 0x0B
    ],
)
async def test_mbpoll_gets_exceptions_outside_the_profile(
    mbpoll: str, unit: int, kind: str, address: int, count: int, message: str
) -> None:
    async with ModbusSimulator({1: load_profile("climate-controller")}) as simulator:
        code, _, err = await run_mbpoll(mbpoll, simulator.port, unit, "-t", kind, "-r", str(address), "-c", str(count))
    assert code != 0
    assert message.lower() in err.lower()
