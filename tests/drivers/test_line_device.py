"""ModbusLine and ModbusDevice against the simulator over real TCP: values, state events, faults, backoff."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from services import free_port

from cityhub.contract import DeviceEvent, Quality, Reading
from drivers.modbus.codec import Value
from drivers.modbus.device import ModbusDevice, PollResult
from drivers.modbus.line import LineSettings, ModbusLine
from drivers.modbus.profile import PROFILE_DIR, DataType, DeviceProfile, PointSpec, Role, load_profile, parse_profile
from simulators.modbus import FaultMode, ModbusSimulator

CLIMATE, METER, SENSOR, GAS, MISMATCHED = 1, 2, 3, 4, 5
SHIPPED = {CLIMATE: "climate-controller", METER: "energy-meter", SENSOR: "environment-sensor", GAS: "gas-suppression"}
ABSENT = 9  # a unit the gateway does not have
TIMEOUT_S = 0.2
DEVICE_LOG = "drivers.modbus.device"


def climate_without_setpoints() -> DeviceProfile:
    """What a controller that lacks the holding registers of the climate profile really has."""
    data = yaml.safe_load((PROFILE_DIR / "climate-controller.yaml").read_text(encoding="utf-8"))
    data["points"] = [p for p in data["points"] if p["table"] != "holding"]
    return parse_profile(Path("climate-without-setpoints.yaml"), yaml.safe_dump(data))


class Clock:
    """A wall clock the test moves by hand, so backoff is exact and instant.

    Tests move it by binary fractions (0.25 s, 0.5 s) so that the sums are exact at this magnitude.
    """

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sim() -> AsyncIterator[ModbusSimulator]:
    """A TCP gateway on a free port with one unit per shipped profile, and a mismatched controller."""
    units = {unit: load_profile(name) for unit, name in SHIPPED.items()}
    units[MISMATCHED] = climate_without_setpoints()
    async with ModbusSimulator(units) as simulator:
        yield simulator


@pytest.fixture
async def line(sim: ModbusSimulator) -> AsyncIterator[ModbusLine]:
    modbus_line = ModbusLine(
        LineSettings(name="gw1", transport="tcp", host="127.0.0.1", port=sim.port, timeout_s=TIMEOUT_S)
    )
    yield modbus_line
    await modbus_line.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def device(line: ModbusLine, unit: int, clock: Clock, profile: str | None = None) -> ModbusDevice:
    return ModbusDevice(
        device_id=f"dev-{unit}",
        unit=unit,
        profile=load_profile(profile or SHIPPED.get(unit, "climate-controller")),
        line=line,
        backoff_initial_s=1.0,
        backoff_max_s=4.0,
        clock=clock,
    )


def qualities(result: PollResult) -> set[Quality]:
    return {reading.quality for reading in result.readings}


def by_metric(result: PollResult) -> dict[str, Reading]:
    readings = {reading.metric: reading for reading in result.readings}
    assert len(readings) == len(result.readings), "one reading per point"
    return readings


def device_records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == DEVICE_LOG and r.levelno == level]


# -- values -------------------------------------------------------------------------------------------


def sample_value(point: PointSpec, index: int) -> Value:
    """A value the point can hold, not all-zero registers, different per point."""
    if point.type in (DataType.BOOL, DataType.BIT):
        return index % 2 == 0
    if point.type is DataType.STRING:
        return "CH-ENV01"[: 2 * point.count]
    if point.states:
        return float(point.states[-1][0])
    if point.type in (DataType.FLOAT32, DataType.FLOAT64):
        return 230.1 + index  # not exact in binary: float32 rounds it
    if point.type in (DataType.UINT64, DataType.INT64):
        return float(2**40 + index)  # beyond 32 bits: all four words matter
    signed = point.type in (DataType.INT16, DataType.INT32)
    raw = -(1234 + index) if signed else 1234 + index
    return raw * point.scale + point.offset


def close_enough(point: PointSpec, read: Value | None, expected: Value) -> bool:
    if not isinstance(expected, float) or not isinstance(read, float):
        return read == expected
    # float32 keeps 24 significant bits; everything else is exact up to the scale's rounding.
    rel_tol = 2**-23 if point.type is DataType.FLOAT32 else 1e-12
    return math.isclose(read, expected, rel_tol=rel_tol)


@pytest.mark.parametrize("unit", SHIPPED, ids=SHIPPED.values())
async def test_every_point_of_a_shipped_profile_reads_what_the_device_holds(
    sim: ModbusSimulator, line: ModbusLine, clock: Clock, unit: int
) -> None:
    meter = device(line, unit, clock)
    expected = {p.metric: sample_value(p, i) for i, p in enumerate(meter.profile.points)}
    for metric, value in expected.items():
        sim.set(unit, metric, value)
    result = await meter.poll()
    assert result.ok
    assert line.requests == len(meter.requests)
    readings = by_metric(result)
    assert readings.keys() == expected.keys()
    for point in meter.profile.points:
        reading = readings[point.metric]
        assert reading.quality is Quality.GOOD, point.metric
        assert close_enough(point, reading.value, expected[point.metric]), (point.metric, reading.value)
        assert (reading.unit, reading.ts) == (point.unit, int(clock.now * 1000))
    # States that start active are announced on the first read, and only they.
    active = [p.event for p in meter.profile.points if p.role is Role.STATE and expected[p.metric]]
    assert [event.type for event in result.events] == active


# -- state events ----------------------------------------------------------------------------------------


async def test_a_state_change_raises_one_event_each_way(sim: ModbusSimulator, line: ModbusLine, clock: Clock) -> None:
    crac = device(line, CLIMATE, clock)
    assert (await crac.poll()).events == []
    sim.set(CLIMATE, "climate.alarm.high_temperature", True)
    sim.set(CLIMATE, "climate.supply_air_temperature", 31.5)  # telemetry changes raise nothing
    clock.now += 10
    raised = await crac.poll()
    assert raised.events == [
        DeviceEvent(
            type="climate.alarm.high_temperature",
            ts=int(clock.now * 1000),
            active=True,
            message="climate.alarm.high_temperature is true",
            attributes={"state": "true", "previous": "false"},
        )
    ]
    assert (await crac.poll()).events == []  # unchanged: nothing
    sim.set(CLIMATE, "climate.alarm.high_temperature", False)
    (cleared,) = (await crac.poll()).events
    assert (cleared.type, cleared.active) == ("climate.alarm.high_temperature", False)
    assert cleared.attributes == {"state": "false", "previous": "true"}
    assert (await crac.poll()).events == []


async def test_two_states_changing_in_one_poll_raise_two_events(
    sim: ModbusSimulator, line: ModbusLine, clock: Clock
) -> None:
    crac = device(line, CLIMATE, clock)
    await crac.poll()
    sim.set(CLIMATE, "climate.alarm.water_leak", True)
    sim.set(CLIMATE, "climate.alarm.unit_fault", True)
    events = (await crac.poll()).events
    assert sorted((e.type, e.active) for e in events) == [
        ("climate.alarm.unit_fault", True),
        ("climate.alarm.water_leak", True),
    ]


async def test_an_enumerated_state_reports_its_labels(sim: ModbusSimulator, line: ModbusLine, clock: Clock) -> None:
    panel = device(line, GAS, clock)
    assert (await panel.poll()).events == []
    changes = []
    for state in ("pre_discharge", "discharged", "normal"):
        sim.set(GAS, "gas.system_state", state)
        sim.set(GAS, "gas.discharge_countdown", 30.0)  # telemetry
        events = (await panel.poll()).events
        assert len(events) == 1, events
        changes.append((events[0].type, events[0].active, events[0].attributes))
    assert changes == [
        ("gas.system_state", True, {"state": "pre_discharge", "previous": "normal"}),
        ("gas.system_state", True, {"state": "discharged", "previous": "pre_discharge"}),
        ("gas.system_state", False, {"state": "normal", "previous": "discharged"}),
    ]


@pytest.mark.parametrize(
    ("unit", "metric", "value", "expected"),
    [
        pytest.param(CLIMATE, "climate.alarm.water_leak", False, [], id="inactive bit"),
        pytest.param(GAS, "gas.system_state", "normal", [], id="inactive enumerated"),
        pytest.param(
            CLIMATE,
            "climate.alarm.water_leak",
            True,
            [("climate.alarm.water_leak", True, {"state": "true"})],
            id="active bit",
        ),
        pytest.param(
            GAS, "gas.system_state", "fault", [("gas.system_state", True, {"state": "fault"})], id="active enumerated"
        ),
    ],
)
async def test_the_first_read_announces_only_active_states(
    sim: ModbusSimulator,
    line: ModbusLine,
    clock: Clock,
    unit: int,
    metric: str,
    value: Value,
    expected: list[tuple[str, bool, dict[str, str]]],
) -> None:
    sim.set(unit, metric, value)
    events = (await device(line, unit, clock).poll()).events
    assert [(e.type, e.active, e.attributes) for e in events] == expected


# -- a device that answers with an exception ------------------------------------------------------------


@pytest.mark.parametrize("code", [2, 4, 6])
async def test_an_exception_makes_readings_bad_but_the_device_stays_up(
    sim: ModbusSimulator, line: ModbusLine, clock: Clock, caplog: pytest.LogCaptureFixture, code: int
) -> None:
    caplog.set_level(logging.INFO, logger=DEVICE_LOG)
    crac, panel = device(line, CLIMATE, clock), device(line, GAS, clock)
    sim.set(GAS, "gas.cylinder_pressure", 42.0)
    sim.set_fault(CLIMATE, FaultMode.EXCEPTION, code=code)
    for _ in range(2):
        result = await crac.poll()
        assert not result.ok
        assert qualities(result) == {Quality.BAD}
        assert len(result.readings) == len(crac.profile.points)
        assert not crac.down
        neighbour = await panel.poll()
        assert neighbour.ok
        assert qualities(neighbour) == {Quality.GOOD}
        assert by_metric(neighbour)["gas.cylinder_pressure"].value == 42.0
    # Each failing request is logged once, not on every poll.
    warnings = device_records(caplog, logging.WARNING)
    assert len(warnings) == len(crac.requests), warnings
    assert all(f"exception {code}" in message for message in warnings)
    sim.clear_fault(CLIMATE)
    assert qualities(await crac.poll()) == {Quality.GOOD}
    assert len(device_records(caplog, logging.INFO)) == len(crac.requests)  # "... answers again", once each


async def test_a_profile_that_does_not_match_the_device_spoils_only_its_request(line: ModbusLine, clock: Clock) -> None:
    crac = device(line, MISMATCHED, clock, profile="climate-controller")
    result = await crac.poll()
    assert not result.ok
    assert not crac.down
    bad = {reading.metric for reading in result.readings if reading.quality is Quality.BAD}
    assert bad == {"climate.temperature_setpoint", "climate.humidity_setpoint"}
    assert len(result.readings) == len(crac.profile.points)


# -- answers that are not answers ---------------------------------------------------------------------


async def test_an_empty_answer_is_bad_and_the_device_stays_up(
    sim: ModbusSimulator, line: ModbusLine, clock: Clock
) -> None:
    crac, meter = device(line, CLIMATE, clock), device(line, METER, clock)
    sim.set_fault(CLIMATE, FaultMode.EMPTY)
    result = await crac.poll()
    assert (result.ok, crac.down, qualities(result)) == (False, False, {Quality.BAD})
    assert len(result.readings) == len(crac.profile.points)
    assert qualities(await meter.poll()) == {Quality.GOOD}


async def test_a_garbage_answer_is_bad_and_the_neighbours_still_answer(
    sim: ModbusSimulator, line: ModbusLine, clock: Clock
) -> None:
    crac, meter, panel = device(line, CLIMATE, clock), device(line, METER, clock), device(line, GAS, clock)
    sim.set_fault(CLIMATE, FaultMode.GARBAGE)
    result = await crac.poll()
    # Garbage is no answer: the client waits for a valid frame until its timeout (faults.py).
    assert (result.ok, crac.down, qualities(result)) == (False, True, {Quality.BAD})
    assert len(result.readings) == len(crac.profile.points)
    for neighbour in (meter, panel, meter):
        assert qualities(await neighbour.poll()) == {Quality.GOOD}


# -- a device that stops answering ----------------------------------------------------------------------


async def test_a_silent_device_goes_down_backs_off_and_comes_back(
    sim: ModbusSimulator, line: ModbusLine, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=DEVICE_LOG)
    crac, panel = device(line, CLIMATE, clock), device(line, GAS, clock)
    sim.set_fault(CLIMATE, FaultMode.SILENT)
    result = await crac.poll()
    assert (result.ok, crac.down, qualities(result)) == (False, True, {Quality.BAD})
    assert len(result.readings) == len(crac.profile.points)
    assert line.requests == 1  # the first timeout ends the poll: the other requests are not tried

    # During the backoff the line is left alone, and the poll returns at once.
    for _ in range(3):
        clock.now += 0.25
        started = time.monotonic()
        result = await crac.poll()
        assert time.monotonic() - started < TIMEOUT_S / 2
        assert (result.ok, qualities(result), len(result.readings)) == (False, {Quality.BAD}, len(crac.profile.points))
        assert result.readings[0].ts == int(clock.now * 1000)
    assert line.requests == 1
    assert (await panel.poll()).ok  # the neighbour is unaffected
    assert line.requests == 2

    clock.now += 0.25  # 1 s after the failure: time to try again; still silent
    assert not (await crac.poll()).ok
    assert line.requests == 3
    sim.clear_fault(CLIMATE)
    clock.now += 1.75  # the second backoff is 2 s
    assert not (await crac.poll()).ok
    assert line.requests == 3
    clock.now += 0.25
    result = await crac.poll()
    assert (result.ok, crac.down, qualities(result)) == (True, False, {Quality.GOOD})
    await crac.poll()

    warnings = device_records(caplog, logging.WARNING)
    infos = device_records(caplog, logging.INFO)
    assert len(warnings) == 1, warnings
    assert "dev-1 (unit 1 on gw1) is down" in warnings[0]
    assert infos == ["device dev-1 is back after 3 s"]


async def test_the_backoff_doubles_up_to_its_maximum(sim: ModbusSimulator, line: ModbusLine, clock: Clock) -> None:
    crac = device(line, CLIMATE, clock)  # backoff 1 s, doubling, at most 4 s
    sim.set_fault(CLIMATE, FaultMode.SILENT)
    start, tried = clock.now, []
    for step in range(25):
        clock.now = start + step * 0.5
        before = line.requests
        await crac.poll()
        if line.requests > before:
            tried.append(clock.now - start)
    assert tried == [0, 1, 3, 7, 11]


async def test_a_unit_the_gateway_does_not_have_is_down(line: ModbusLine, clock: Clock) -> None:
    # The gateway answers exception 11 (target device failed to respond): unreachable, not a bad answer.
    ghost = device(line, ABSENT, clock, profile="gas-suppression")
    result = await ghost.poll()
    assert (result.ok, ghost.down, qualities(result)) == (False, True, {Quality.BAD})


async def test_a_refused_connection_makes_every_point_bad(clock: Clock) -> None:
    port = free_port()  # nothing listens there
    nowhere = ModbusLine(LineSettings(name="gw9", transport="tcp", host="127.0.0.1", port=port, timeout_s=TIMEOUT_S))
    try:
        meter = device(nowhere, METER, clock)
        for _ in range(3):
            result = await meter.poll()
            assert (result.ok, meter.down, qualities(result)) == (False, True, {Quality.BAD})
            assert len(result.readings) == len(meter.profile.points)
            clock.now += 60
        assert nowhere.requests == 3
    finally:
        await nowhere.aclose()


# -- values that are not values -----------------------------------------------------------------------


async def test_a_nan_reading_is_bad_and_the_others_good(sim: ModbusSimulator, line: ModbusLine, clock: Clock) -> None:
    # 0x7FC00000 is the float32 NaN many sensors send for a broken probe.
    sensor = device(line, SENSOR, clock)
    sim.set(SENSOR, "environment.humidity", 45.0)
    sim.memory(SENSOR).write(sensor.profile.point("environment.temperature").table, 0, [0x7FC0, 0x0000])
    result = await sensor.poll()
    readings = by_metric(result)
    assert readings["environment.temperature"].quality is Quality.BAD
    assert readings["environment.temperature"].value is None
    assert readings["environment.humidity"].quality is Quality.GOOD
    assert not sensor.down


async def test_an_undecodable_point_is_logged_once_not_every_poll(
    sim: ModbusSimulator, line: ModbusLine, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=DEVICE_LOG)
    sensor = device(line, SENSOR, clock)
    sim.memory(SENSOR).write(sensor.profile.point("environment.temperature").table, 0, [0x7FC0, 0x0000])
    for _ in range(3):
        await sensor.poll()
    assert len(device_records(caplog, logging.WARNING)) == 1
