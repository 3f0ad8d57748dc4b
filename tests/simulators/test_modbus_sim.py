"""The Modbus simulator over real sockets and a real pty: values, bits, exceptions, faults, RTU."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

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
from simulators.modbus import (
    DeviceMemory,
    FaultMode,
    ModbusSimulator,
    PointValueError,
    PtyLink,
    RtuEndpoint,
    SimConfigError,
    TcpEndpoint,
    TransportError,
    UnknownPointError,
)
from simulators.modbus.faults import Fault, Framing, apply_fault, crc16

TEST_PROFILE = """
profile: test-everything
kind: test
max_gap: 2
points:
  - {metric: t.u16, table: holding, address: 0, type: uint16}
  - {metric: t.i16, table: holding, address: 1, type: int16, scale: 0.1}
  - {metric: t.u32, table: holding, address: 2, type: uint32, word_order: little}
  - {metric: t.i32, table: holding, address: 4, type: int32, byte_order: little}
  - {metric: t.u64, table: holding, address: 6, type: uint64}
  - {metric: t.i64, table: holding, address: 10, type: int64, byte_order: little, word_order: little}
  - {metric: t.f32, table: holding, address: 14, type: float32, word_order: little}
  - {metric: t.f64, table: holding, address: 16, type: float64}
  - {metric: t.name, table: holding, address: 20, type: string, length: 4}
  - {metric: t.offset, table: holding, address: 26, type: uint16, scale: 0.5, offset: -40}
  - {metric: t.state, table: holding, address: 27, type: uint16, role: state, event: t.state,
     states: {0: idle, 1: running, 2: failed}}
  - {metric: t.far, table: holding, address: 35, type: uint16}
  - {metric: t.in16, table: input, address: 100, type: int16}
  - {metric: t.flag0, table: input, address: 101, type: bit, bit: 0}
  - {metric: t.flag1, table: input, address: 101, type: bit, bit: 1}
  - {metric: t.flag7, table: input, address: 101, type: bit, bit: 7}
  - {metric: t.flag15, table: input, address: 101, type: bit, bit: 15}
  - {metric: t.coil3, table: coil, address: 3, type: bool}
  - {metric: t.coil4, table: coil, address: 4, type: bool}
  - {metric: t.coil20, table: coil, address: 20, type: bool}
  - {metric: t.di0, table: discrete_input, address: 0, type: bool}
  - {metric: t.di17, table: discrete_input, address: 17, type: bool}
"""


def everything_profile() -> DeviceProfile:
    return parse_profile(Path("test-everything.yaml"), TEST_PROFILE)


def shipped_profiles() -> list[Path]:
    return sorted(PROFILE_DIR.glob("*.yaml"))


def sample_value(point: PointSpec, index: int) -> Value:
    """A value the point can hold exactly, different from the all-zero registers."""
    if point.type in (DataType.BOOL, DataType.BIT):
        return index % 2 == 0
    if point.type is DataType.STRING:
        return "CH-7"[: 2 * point.count]
    if point.states:
        return point.states[-1][0]
    if point.type in (DataType.FLOAT32, DataType.FLOAT64):
        return 1234.5 + index
    signed = point.type in (DataType.INT16, DataType.INT32, DataType.INT64)
    raw = -1234 - index if signed else 1234 + index
    return raw * point.scale + point.offset


async def read_raw(client: AsyncModbusTcpClient | AsyncModbusSerialClient, unit: int, point: PointSpec) -> list[int]:
    """The point's registers (or bits as 0/1), read the way a driver does."""
    response = await read(client, unit, point.table, point.address, point.count)
    assert not response.isError(), f"{point.metric}: {response}"
    if point.table.is_bits:
        return [int(bit) for bit in response.bits[: point.count]]
    return list(response.registers)


async def read(
    client: AsyncModbusTcpClient | AsyncModbusSerialClient, unit: int, table: RegisterTable, address: int, count: int
) -> ModbusPDU:
    calls = {
        RegisterTable.COIL: client.read_coils,
        RegisterTable.DISCRETE_INPUT: client.read_discrete_inputs,
        RegisterTable.HOLDING: client.read_holding_registers,
        RegisterTable.INPUT: client.read_input_registers,
    }
    return await asyncio.wait_for(calls[table](address, count=count, device_id=unit), 5)


def same(a: Value, b: Value) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return a == b


@asynccontextmanager
async def tcp_client(sim: ModbusSimulator, answer_s: float = 2.0) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=answer_s, retries=0, reconnect_delay=0)
    assert await asyncio.wait_for(client.connect(), 5)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
async def sim() -> AsyncIterator[ModbusSimulator]:
    """Units 1 and 2, both with the test profile, on a free TCP port."""
    async with ModbusSimulator({1: everything_profile(), 2: everything_profile()}) as simulator:
        yield simulator


# -- values ----------------------------------------------------------------------------------------


async def check_every_point(profile: DeviceProfile) -> None:
    async with ModbusSimulator({7: profile}) as simulator, tcp_client(simulator) as client:
        expected = {p.metric: sample_value(p, i) for i, p in enumerate(profile.points)}
        for metric, value in expected.items():
            simulator.set(7, metric, value)
        for point in profile.points:
            decoded = decode(point, await read_raw(client, 7, point))
            assert same(decoded, expected[point.metric]), (
                f"{point.metric}: read {decoded!r}, set {expected[point.metric]!r}"
            )
            assert same(simulator.get(7, point.metric), expected[point.metric])


async def test_every_point_of_the_test_profile_reads_back() -> None:
    await check_every_point(everything_profile())


@pytest.mark.parametrize("path", shipped_profiles(), ids=lambda p: p.stem)
async def test_every_point_of_a_shipped_profile_reads_back(path: Path) -> None:
    await check_every_point(load_profile(path))


def test_the_four_profiles_are_shipped() -> None:
    names = {p.stem for p in shipped_profiles()}
    assert {"climate-controller", "gas-suppression", "environment-sensor", "energy-meter"} <= names


async def test_bits_of_a_shared_register_are_merged(sim: ModbusSimulator) -> None:
    sim.set(1, "t.flag0", True)
    sim.set(1, "t.flag7", True)
    sim.set(1, "t.flag15", True)
    sim.set(1, "t.flag0", False)
    sim.set(1, "t.flag1", True)
    async with tcp_client(sim) as client:
        (register,) = (await read(client, 1, RegisterTable.INPUT, 101, 1)).registers
    assert register == (1 << 1) | (1 << 7) | (1 << 15)
    assert [sim.get(1, f"t.flag{n}") for n in (0, 1, 7, 15)] == [False, True, True, True]


async def test_units_are_independent(sim: ModbusSimulator) -> None:
    sim.set(1, "t.u16", 11)
    sim.set(2, "t.u16", 22)
    async with tcp_client(sim) as client:
        assert (await read(client, 1, RegisterTable.HOLDING, 0, 1)).registers == [11]
        assert (await read(client, 2, RegisterTable.HOLDING, 0, 1)).registers == [22]


async def test_state_labels_and_values() -> None:
    memory = DeviceMemory(everything_profile())
    memory.set("t.state", "failed")
    assert memory.get("t.state") == 2
    with pytest.raises(PointValueError, match="not one of its states"):
        memory.set("t.state", "exploded")


@pytest.mark.parametrize(
    ("metric", "value", "message"),
    [
        ("t.u16", 70_000, "out of range"),
        ("t.u16", -1, "out of range"),
        ("t.u16", True, "not a number"),
        ("t.f32", 1e39, "t.f32"),
        ("t.u32", math.nan, "not a finite number"),
        ("t.i16", math.inf, "not a finite number"),
        ("t.flag0", 1, "not a boolean"),
        ("t.name", "far too long", "does not fit"),
    ],
)
def test_values_a_point_cannot_hold_are_refused(metric: str, value: Value, message: str) -> None:
    with pytest.raises(PointValueError, match=message):
        DeviceMemory(everything_profile()).set(metric, value)


def test_unknown_units_and_points_are_named() -> None:
    simulator = ModbusSimulator({1: everything_profile()})
    with pytest.raises(UnknownPointError, match="no unit 3"):
        simulator.set(3, "t.u16", 1)
    with pytest.raises(UnknownPointError, match=r"no point 't\.nope'"):
        simulator.set(1, "t.nope", 1)
    with pytest.raises(SimConfigError, match="1-247"):
        ModbusSimulator({0: everything_profile()})


async def test_client_writes_reach_the_memory(sim: ModbusSimulator) -> None:
    async with tcp_client(sim) as client:
        assert not (await client.write_register(1, 0xFFF6, device_id=1)).isError()  # -10 raw: -1.0
        assert not (await client.write_registers(2, [0x0001, 0x0002], device_id=1)).isError()
        assert not (await client.write_coil(4, True, device_id=1)).isError()
        assert not (await client.write_coils(3, [True, False], device_id=1)).isError()
    assert sim.get(1, "t.i16") == pytest.approx(-1.0)
    assert sim.get(1, "t.u32") == 0x0002_0001  # word order little: the low word first
    assert (sim.get(1, "t.coil3"), sim.get(1, "t.coil4")) == (True, False)


# -- addresses the profile does not map ---------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "address", "count"),
    [
        (RegisterTable.HOLDING, 40, 1),  # far from any point
        (RegisterTable.HOLDING, 30, 1),  # in the gap of 7 registers before t.far: more than max_gap
        (RegisterTable.HOLDING, 26, 3),  # runs from t.offset past t.state into that gap
        (RegisterTable.HOLDING, 35, 2),  # runs past the last holding register
        (RegisterTable.INPUT, 0, 1),
        (RegisterTable.INPUT, 101, 2),
        (RegisterTable.COIL, 0, 1),
        (RegisterTable.COIL, 3, 3),  # coil 5 is in the same 16-bit word as 3 and 4, but not mapped
        (RegisterTable.COIL, 20, 2),
        (RegisterTable.DISCRETE_INPUT, 1, 1),
        (RegisterTable.DISCRETE_INPUT, 0, 18),  # a gap of 16 bits between 0 and 17
    ],
)
async def test_unknown_addresses_answer_illegal_data_address(
    sim: ModbusSimulator, table: RegisterTable, address: int, count: int
) -> None:
    async with tcp_client(sim) as client:
        response = await read(client, 1, table, address, count)
    assert response.isError()
    assert response.exception_code == 2


@pytest.mark.parametrize(
    ("table", "address", "count"),
    [
        (RegisterTable.HOLDING, 0, 28),  # every holding point from 0 to t.state, across a 2-register gap
        (RegisterTable.HOLDING, 24, 1),  # inside that gap (24-25): max_gap 2 lets it be read
        (RegisterTable.COIL, 3, 2),
        (RegisterTable.COIL, 4, 1),
        (RegisterTable.DISCRETE_INPUT, 17, 1),
    ],
)
async def test_mapped_addresses_and_small_gaps_answer(
    sim: ModbusSimulator, table: RegisterTable, address: int, count: int
) -> None:
    async with tcp_client(sim) as client:
        response = await read(client, 1, table, address, count)
    assert not response.isError(), response


async def test_writes_outside_the_map_are_refused(sim: ModbusSimulator) -> None:
    async with tcp_client(sim) as client:
        assert (await client.write_register(40, 1, device_id=1)).exception_code == 2
        assert (await client.write_coils(4, [True, True], device_id=1)).exception_code == 2
        assert (await client.write_coil(5, True, device_id=1)).exception_code == 2


async def test_an_absent_unit_behind_tcp_answers_gateway_exception(sim: ModbusSimulator) -> None:
    async with tcp_client(sim) as client:
        response = await read(client, 9, RegisterTable.HOLDING, 0, 1)
    assert response.exception_code == 11  # GATEWAY TARGET DEVICE FAILED TO RESPOND


# -- faults -----------------------------------------------------------------------------------------


async def test_a_silent_unit_times_out_while_its_neighbour_answers(sim: ModbusSimulator) -> None:
    sim.set_fault(1, FaultMode.SILENT)
    async with tcp_client(sim, answer_s=0.3) as client:
        started = time.monotonic()
        with pytest.raises(ModbusIOException):
            await read(client, 1, RegisterTable.HOLDING, 0, 1)
        assert time.monotonic() - started >= 0.25
        assert not (await read(client, 2, RegisterTable.HOLDING, 0, 1)).isError()
        sim.clear_fault(1)
        assert not (await read(client, 1, RegisterTable.HOLDING, 0, 1)).isError()


@pytest.mark.parametrize("code", [4, 6])
async def test_an_exception_fault_answers_its_code(sim: ModbusSimulator, code: int) -> None:
    sim.set_fault(1, FaultMode.EXCEPTION, code=code)
    async with tcp_client(sim) as client:
        assert (await read(client, 1, RegisterTable.HOLDING, 0, 1)).exception_code == code
        assert (await read(client, 1, RegisterTable.COIL, 3, 1)).exception_code == code


async def test_an_empty_answer_carries_no_values(sim: ModbusSimulator) -> None:
    sim.set_fault(1, FaultMode.EMPTY)
    async with tcp_client(sim) as client:
        response = await read(client, 1, RegisterTable.HOLDING, 0, 4)
    assert not response.isError()
    assert response.registers == []


async def test_a_garbage_answer_is_not_taken_as_an_answer(sim: ModbusSimulator) -> None:
    sim.set_fault(1, FaultMode.GARBAGE)
    async with tcp_client(sim, answer_s=0.3) as client:
        with pytest.raises(ModbusIOException):
            await read(client, 1, RegisterTable.HOLDING, 0, 1)


def test_fault_frames() -> None:
    tcp = bytes.fromhex("0007 0000 0005 01 03 02 0102")
    assert apply_fault(tcp, Framing.TCP, Fault(mode=FaultMode.EXCEPTION, code=6)) == bytes.fromhex(
        "0007 0000 0003 01 83 06"
    )
    assert apply_fault(tcp, Framing.TCP, Fault(mode=FaultMode.SILENT)) == b""
    assert apply_fault(tcp, Framing.TCP, Fault()) == tcp
    # Modbus over serial line 1.02, 6.2.2: the CRC of 02 07 is 0x1241, sent low byte first.
    assert crc16(bytes.fromhex("0207")) == bytes.fromhex("4112")
    rtu = bytes.fromhex("01 03 02 0102") + crc16(bytes.fromhex("01 03 02 0102"))
    exception = apply_fault(rtu, Framing.RTU, Fault(mode=FaultMode.EXCEPTION, code=2))
    assert exception == bytes.fromhex("01 83 02") + crc16(bytes.fromhex("01 83 02"))
    garbage = apply_fault(rtu, Framing.RTU, Fault(mode=FaultMode.GARBAGE))
    assert len(garbage) == len(rtu)
    assert crc16(garbage[:-2]) != garbage[-2:]


# -- transports -------------------------------------------------------------------------------------


async def test_a_taken_port_is_a_transport_error(sim: ModbusSimulator) -> None:
    other = ModbusSimulator({1: everything_profile()}, TcpEndpoint(port=sim.port))
    with pytest.raises(TransportError, match="cannot listen"):
        await other.start()


async def test_stop_closes_the_port() -> None:
    simulator = ModbusSimulator({1: everything_profile()})
    await simulator.start()
    port = simulator.port
    await simulator.stop()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)


async def three_units_on_a_pty(profiles: Sequence[DeviceProfile]) -> None:
    async with (
        PtyLink() as link,
        ModbusSimulator(dict(enumerate(profiles, start=1)), RtuEndpoint(path=link.server_path, parity="N")) as rtu,
    ):
        expected = {}
        for unit, profile in enumerate(profiles, start=1):
            for index, point in enumerate(profile.points):
                expected[unit, point.metric] = sample_value(point, index + unit)
                rtu.set(unit, point.metric, expected[unit, point.metric])
        client = AsyncModbusSerialClient(
            link.client_path,
            framer=FramerType.RTU,
            baudrate=19200,
            parity="N",
            timeout=0.5,
            retries=0,
            reconnect_delay=0,
        )
        assert await asyncio.wait_for(client.connect(), 5)
        try:
            for unit, profile in enumerate(profiles, start=1):
                for point in profile.points:
                    decoded = decode(point, await read_raw(client, unit, point))
                    assert same(decoded, expected[unit, point.metric]), f"unit {unit} {point.metric}: {decoded!r}"
            # Nobody answers for unit 4 on a serial line: the client times out.
            with pytest.raises(ModbusIOException):
                await read(client, 4, RegisterTable.HOLDING, 0, 1)
            rtu.set_fault(2, FaultMode.EXCEPTION, code=6)
            point = profiles[1].points[0]
            assert (await read(client, 2, point.table, point.address, point.count)).exception_code == 6
        finally:
            client.close()
        assert link.bytes_copied > 0


async def test_rtu_over_a_pty_with_three_units() -> None:
    shipped = {p.stem: p for p in shipped_profiles()}
    names = ("climate-controller", "gas-suppression", "energy-meter")
    await three_units_on_a_pty([load_profile(shipped[name]) for name in names])


async def test_rtu_over_a_pty_with_the_everything_profile() -> None:
    await three_units_on_a_pty([everything_profile()] * 3)


async def test_a_pty_refusing_parity_is_a_transport_error() -> None:
    async with PtyLink() as link:
        simulator = ModbusSimulator({1: everything_profile()}, RtuEndpoint(path=link.server_path, parity="E"))
        try:
            await simulator.start()
        except TransportError:
            return  # Linux ptys refuse parity; the error says where
        await simulator.stop()  # kernels that accept it are fine too


async def test_a_missing_serial_port_is_a_transport_error(tmp_path: Path) -> None:
    simulator = ModbusSimulator({1: everything_profile()}, RtuEndpoint(path=str(tmp_path / "ttyUSB9")))
    with pytest.raises(TransportError, match="ttyUSB9"):
        await simulator.start()
