"""Scenarios: the pure engine, validation errors, the shipped files, the runner and run_simulation."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.framer import FramerType

from drivers.modbus.codec import decode, encode
from drivers.modbus.profile import DeviceProfile, load_profile
from simulators.modbus import (
    FaultMode,
    ModbusSimulator,
    RunningDevice,
    Scenario,
    ScenarioError,
    ScenarioRunner,
    SimConfigError,
    SimulationSpec,
    Target,
    build_spec_from_args,
    load_scenario,
    load_sim_config,
    parse_scenario,
    run_simulation,
)
from simulators.modbus.points import ModbusScenarioProfile
from simulators.scenario import SCENARIO_DIR

PROFILE = """
profile: boiler
kind: boiler
points:
  - {metric: boiler.temperature, table: input, address: 0, type: int16, scale: 0.1}
  - {metric: boiler.level, table: input, address: 1, type: uint16}
  - {metric: boiler.pressure, table: input, address: 2, type: float32}
  - {metric: boiler.burner, table: discrete_input, address: 0, type: bool}
  - {metric: boiler.alarm.low_water, table: input, address: 3, type: bit, bit: 0}
  - {metric: boiler.mode, table: holding, address: 0, type: uint16, role: state, event: boiler.mode,
     states: {0: stopped, 1: heating, 2: standby}}
  - {metric: boiler.name, table: holding, address: 1, type: string, length: 2}
"""

SCENARIO: dict[str, Any] = {
    "scenario": "boiler-day",
    "duration": 100,
    "devices": {
        "b1": {
            "profile": "boiler.yaml",
            "initial": {"boiler.temperature": 20.0, "boiler.mode": "standby", "boiler.burner": False},
            "noise": {"boiler.pressure": {"amplitude": 0.5, "seed": 3}},
        }
    },
    "steps": [
        {"at": 10, "set": {"device": "b1", "point": "boiler.burner", "value": True}},
        {"at": 10, "set": {"device": "b1", "point": "boiler.mode", "value": "heating"}},
        {"at": 10, "ramp": {"device": "b1", "point": "boiler.temperature", "to": 70.0, "over": 50}},
        {"at": 30, "ramp": {"device": "b1", "point": "boiler.temperature", "to": 0.0, "over": 10}},
        {"at": 40, "set": {"device": "b1", "point": "boiler.pressure", "value": 1.5}},
        {"at": 80, "fault": {"device": "b1", "mode": "silent"}},
        {"at": 90, "fault": {"device": "b1", "mode": "none"}},
    ],
}


def write(tmp_path: Path, data: object, name: str = "scenario.yaml") -> Path:
    (tmp_path / "boiler.yaml").write_text(PROFILE)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def boiler(tmp_path: Path) -> Scenario:
    path = write(tmp_path, SCENARIO)
    return parse_scenario(path, path.read_text())


# -- the pure engine ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "temperature", "mode", "burner"),
    [
        (0, 20.0, 2, False),
        (9.99, 20.0, 2, False),
        (10, 20.0, 1, True),  # a step applies from its own time on
        (20, 30.0, 1, True),  # a ramp: 20 -> 70 over 50 s, a fifth of the way
        (30, 40.0, 1, True),  # a second ramp takes over from the value the first had reached
        (35, 20.0, 1, True),
        (40, 0.0, 1, True),
        (100, 0.0, 1, True),
        (500, 0.0, 1, True),  # after the end: the end state
    ],
)
def test_values_at_t(boiler: Scenario, t: float, temperature: float, mode: int, burner: bool) -> None:
    values = boiler.values_at(t)["b1"]
    assert values["boiler.temperature"] == pytest.approx(temperature)
    assert (values["boiler.mode"], values["boiler.burner"]) == (mode, burner)


def test_points_nothing_sets_are_left_alone(boiler: Scenario) -> None:
    assert "boiler.level" not in boiler.values_at(50)["b1"]
    # Noise on a point without a value yet adds nothing: pressure is set at 40 s.
    assert "boiler.pressure" not in boiler.values_at(39)["b1"]


def test_noise_is_seeded_bounded_and_held_per_period(boiler: Scenario, tmp_path: Path) -> None:
    samples = [boiler.values_at(40 + i * 0.5)["b1"]["boiler.pressure"] for i in range(100)]
    assert all(isinstance(v, float) and 1.0 <= v <= 2.0 for v in samples)
    assert len(set(samples)) > 10
    assert samples[0] == samples[1]  # one sample per period (1 s by default)
    again = parse_scenario(tmp_path / "scenario.yaml", (tmp_path / "scenario.yaml").read_text())
    assert [again.values_at(40 + i * 0.5)["b1"]["boiler.pressure"] for i in range(100)] == samples
    other_seed = dict(
        SCENARIO,
        devices={
            "b1": {
                **SCENARIO["devices"]["b1"],
                "noise": {"boiler.pressure": {"amplitude": 0.5, "seed": 4}},
            }
        },
    )
    path = write(tmp_path, other_seed, "other.yaml")
    reseeded = parse_scenario(path, path.read_text())
    assert [reseeded.values_at(40 + i * 0.5)["b1"]["boiler.pressure"] for i in range(100)] != samples


def test_noise_is_clamped_to_what_the_point_holds(tmp_path: Path) -> None:
    data = {
        "scenario": "clamp",
        "duration": 60,
        "devices": {
            "b1": {
                "profile": "boiler.yaml",
                "initial": {"boiler.level": 0},
                "noise": {"boiler.level": {"amplitude": 5, "seed": 1}},
            }
        },
    }
    path = write(tmp_path, data)
    scenario = parse_scenario(path, path.read_text())
    levels = [float(scenario.values_at(t)["b1"]["boiler.level"]) for t in range(60)]
    assert min(levels) == 0  # uint16: never below zero, so it always encodes
    assert max(levels) > 0


def test_faults_at_t(boiler: Scenario) -> None:
    assert boiler.faults_at(79)["b1"].mode == FaultMode.NONE
    assert boiler.faults_at(80)["b1"].mode == FaultMode.SILENT
    assert boiler.faults_at(95)["b1"].mode == FaultMode.NONE


# -- validation --------------------------------------------------------------------------------------


def with_step(step: dict[str, object]) -> dict[str, object]:
    return dict(SCENARIO, steps=[step])


def with_device(**changes: object) -> dict[str, object]:
    return dict(SCENARIO, devices={"b1": {**SCENARIO["devices"]["b1"], **changes}})


@pytest.mark.parametrize(
    ("data", "where", "message"),
    [
        (
            with_step({"at": 5, "set": {"device": "b1", "point": "boiler.nope", "value": 1}}),
            "steps[0] (at 5 s).set.point",
            "profile 'boiler' has no point 'boiler.nope'",
        ),
        (
            with_step({"at": 5, "set": {"device": "b2", "point": "boiler.level", "value": 1}}),
            "steps[0] (at 5 s).set.device",
            "no device 'b2'",
        ),
        (
            with_step({"at": 5, "set": {"device": "b1", "point": "boiler.level", "value": 70000}}),
            "steps[0] (at 5 s).set.value",
            "70000 is out of range for boiler.level (uint16: 0 to 65535)",
        ),
        (
            with_step({"at": 5, "set": {"device": "b1", "point": "boiler.temperature", "value": 4000}}),
            "steps[0] (at 5 s).set.value",
            "out of range",
        ),
        (
            with_step({"at": 5, "set": {"device": "b1", "point": "boiler.mode", "value": "melting"}}),
            "steps[0] (at 5 s).set.value",
            "'melting' is not one of its states: 0 (stopped), 1 (heating), 2 (standby)",
        ),
        (
            with_step({"at": 5, "set": {"device": "b1", "point": "boiler.mode", "value": 7}}),
            "steps[0] (at 5 s).set.value",
            "7 is not one of the states of boiler.mode",
        ),
        (
            with_step({"at": 5, "set": {"device": "b1", "point": "boiler.burner", "value": 1}}),
            "steps[0] (at 5 s).set.value",
            "1 is not true or false",
        ),
        (
            with_step({"at": 5, "set": {"device": "b1", "point": "boiler.level", "value": True}}),
            "steps[0] (at 5 s).set.value",
            "True is not a number",
        ),
        (
            with_step({"at": 5, "set": {"device": "b1", "point": "boiler.name", "value": "too long"}}),
            "steps[0] (at 5 s).set.value",
            "does not fit in 2 registers",
        ),
        (
            with_step({"at": 5, "ramp": {"device": "b1", "point": "boiler.burner", "to": 1, "over": 5}}),
            "steps[0] (at 5 s).ramp.point",
            "a ramp needs a numeric point without states; boiler.burner is not one",
        ),
        (
            with_step({"at": 5, "ramp": {"device": "b1", "point": "boiler.mode", "to": 1, "over": 5}}),
            "steps[0] (at 5 s).ramp.point",
            "a ramp needs a numeric point without states; boiler.mode is not one",
        ),
        (
            with_step({"at": 5, "ramp": {"device": "b1", "point": "boiler.level", "to": 10, "over": 5}}),
            "devices.b1.initial",
            "boiler.level ramps at 5 s but has no value before",
        ),
        (
            with_step({"at": 5, "ramp": {"device": "b1", "point": "boiler.level", "to": 10, "over": 0}}),
            "steps[0] (at 5 s).ramp.over",
            "greater than 0",
        ),
        (
            with_step({"at": 500, "set": {"device": "b1", "point": "boiler.level", "value": 1}}),
            "(top level)",
            "steps after the duration (100 s): steps[0] at 500 s",
        ),
        (with_step({"at": 5}), "steps[0] (at 5 s)", "exactly one of set, ramp, fault (got none)"),
        (with_step({"at": 5, "sett": {}}), "steps[0] (at 5 s).sett", "Extra inputs are not permitted"),
        (
            with_step({"at": -1, "set": {"device": "b1", "point": "boiler.level", "value": 1}}),
            "steps[0] (at -1 s).at",
            "greater than or equal to 0",
        ),
        (
            with_step({"at": 5, "fault": {"device": "b1", "mode": "asleep"}}),
            "steps[0] (at 5 s).fault.mode",
            "'asleep' is not a fault boiler knows: empty, exception, garbage, none, silent",
        ),
        (
            with_device(driver="bacnet"),
            "devices.b1.driver",
            "unknown driver 'bacnet'; drivers: modbus, onvif, snmp",
        ),
        (
            with_device(noise={"boiler.burner": {"amplitude": 1, "seed": 1}}),
            "devices.b1.noise[boiler.burner]",
            "noise needs a numeric point",
        ),
        (
            with_device(noise={"boiler.level": {"amplitude": -1, "seed": 1}}),
            "devices.b1.noise[boiler.level].amplitude",
            "greater than or equal to 0",
        ),
        (
            with_device(initial={"boiler.temperature": "hot"}),
            "devices.b1.initial[boiler.temperature]",
            "'hot' is not a number",
        ),
        (with_device(profile="no-such-profile"), "devices.b1.profile", "cannot read the profile"),
        (dict(SCENARIO, duration=0), "duration", "greater than 0"),
        (dict(SCENARIO, devices={}), "devices", "at least 1 item"),
    ],
)
def test_errors_name_file_step_and_field(tmp_path: Path, data: object, where: str, message: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(path, path.read_text())
    assert f"{path}: {where}: " in str(caught.value)
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = dict(
        SCENARIO,
        steps=[
            {"at": 1, "set": {"device": "b1", "point": "boiler.nope", "value": 1}},
            {"at": 2, "set": {"device": "b1", "point": "boiler.level", "value": -5}},
        ],
    )
    path = write(tmp_path, data)
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(path, path.read_text())
    assert len(str(caught.value).splitlines()) == 2


def test_bad_yaml_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not valid YAML"):
        parse_scenario(tmp_path / "x.yaml", "steps: [")
    with pytest.raises(ScenarioError, match=r"shipped scenarios: .*gas-discharge"):
        load_scenario("no-such-scenario")


# -- the shipped scenarios ---------------------------------------------------------------------------

SHIPPED = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def test_the_three_scenarios_are_shipped() -> None:
    assert {"server-room-overheating", "gas-discharge", "normal-day"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_encode_at_every_second(name: str) -> None:
    scenario = load_scenario(name)
    step = max(1, int(scenario.duration // 2000))
    for t in range(0, int(scenario.duration) + 1, step):
        for device_id, values in scenario.values_at(t).items():
            device = scenario.devices[device_id]
            for metric, value in values.items():
                device.profile.point(metric).check(value)
                if isinstance(device.profile, ModbusScenarioProfile):
                    encode(device.profile.profile.point(metric), value)


def test_gas_discharge_goes_through_its_states() -> None:
    scenario = load_scenario("gas-discharge")
    state = load_profile("gas-suppression").point("gas.system_state")
    labels = dict(state.states)
    panel = [scenario.values_at(t)["panel-1"] for t in range(91)]
    seen = [labels[int(v["gas.system_state"])] for v in panel]
    assert list(dict.fromkeys(seen)) == ["armed", "pre_alarm", "pre_discharge", "discharged"]
    countdown = load_profile("gas-suppression").point("gas.discharge_countdown")
    shown = [float(decode(countdown, encode(countdown, v["gas.discharge_countdown"]))) for v in panel[20:51]]
    assert shown[0] == 30
    assert shown[-1] == 0
    assert all(a > b for a, b in itertools.pairwise(shown))  # falls by one each second
    assert panel[0]["gas.cylinder_pressure"] == pytest.approx(42.0, abs=0.06)
    assert panel[90]["gas.cylinder_pressure"] == pytest.approx(2.0, abs=0.06)


def test_server_room_overheating_ends_hot_with_alarms() -> None:
    scenario = load_scenario("server-room-overheating")
    start, end = scenario.values_at(0)["crac-1"], scenario.values_at(scenario.duration)["crac-1"]
    assert (start["climate.compressor_running"], end["climate.compressor_running"]) == (True, False)
    assert (start["climate.alarm.high_temperature"], end["climate.alarm.high_temperature"]) == (False, True)
    assert end["climate.alarm.unit_fault"] is True
    assert float(end["climate.supply_air_temperature"]) > float(start["climate.supply_air_temperature"]) + 10
    assert float(end["climate.return_air_temperature"]) > 35


def test_normal_day_covers_the_four_profiles_with_noise() -> None:
    scenario = load_scenario("normal-day")
    assert {d.profile.name for d in scenario.devices.values()} == {
        "climate-controller",
        "gas-suppression",
        "environment-sensor",
        "energy-meter",
    }
    for device_id in scenario.devices:
        a, b = scenario.values_at(3600)[device_id], scenario.values_at(3700)[device_id]
        assert a != b, f"{device_id} shows no noise"


# -- the runner --------------------------------------------------------------------------------------


def fake_clock(step: float) -> Iterator[float]:
    now = 0.0
    while True:
        yield now
        now += step


def modbus_profile(scenario: Scenario, device_id: str) -> DeviceProfile:
    profile = scenario.devices[device_id].profile
    assert isinstance(profile, ModbusScenarioProfile)
    return profile.profile


async def test_runner_drives_a_simulator_to_the_end_state(boiler: Scenario, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="simulators.runner")
    simulator = ModbusSimulator({5: modbus_profile(boiler, "b1")})
    clock = fake_clock(7.0)
    runner = ScenarioRunner(boiler, {"b1": Target(simulator=simulator, unit=5)}, tick_s=0.001, clock=clock.__next__)
    assert await runner.run() == 100
    assert simulator.get(5, "boiler.temperature") == pytest.approx(0.0)
    assert simulator.get(5, "boiler.mode") == 1
    assert simulator.fault(5).mode is FaultMode.NONE
    assert "at 10 s: set b1 boiler.mode = heating" in caplog.text
    assert "at 80 s: fault b1 silent" in caplog.text


async def test_runner_repeats_and_stops(boiler: Scenario) -> None:
    simulator = ModbusSimulator({5: modbus_profile(boiler, "b1")})
    stop = asyncio.Event()
    ticks = fake_clock(30.0)

    def clock() -> float:
        now = next(ticks)
        if now >= 330:  # 3.3 rounds of 100 s
            stop.set()
        return now

    runner = ScenarioRunner(boiler, {"b1": Target(simulator=simulator, unit=5)}, tick_s=0.001, repeat=True, clock=clock)
    assert await runner.run(stop) == pytest.approx(30)
    assert simulator.get(5, "boiler.temperature") == pytest.approx(40.0)  # back at 30 s of the 4th round


def test_runner_refuses_targets_that_do_not_match(boiler: Scenario) -> None:
    simulator = ModbusSimulator({1: load_profile("gas-suppression")})
    with pytest.raises(SimConfigError, match="no simulated device 'b1'"):
        ScenarioRunner(boiler, {})
    with pytest.raises(SimConfigError, match="needs profile 'boiler', its simulator runs 'gas-suppression'"):
        ScenarioRunner(boiler, {"b1": Target(simulator=simulator, unit=1)})


# -- run_simulation, as the cityhub command runs it --------------------------------------------------


async def start_simulation(
    spec: SimulationSpec,
) -> tuple[asyncio.Task[None], asyncio.Event, Mapping[str, RunningDevice]]:
    stop = asyncio.Event()
    ready: asyncio.Future[Mapping[str, RunningDevice]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_simulation(spec, stop, on_ready=ready.set_result))
    waiting: set[asyncio.Future[Any]] = {task, ready}
    done, _ = await asyncio.wait(waiting, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises what run_simulation raised
    return task, stop, ready.result()


async def test_gas_discharge_at_x60_reaches_its_end_state_over_tcp() -> None:
    spec = build_spec_from_args(scenario="gas-discharge", port=0, speed=60)
    started = time.monotonic()
    task, stop, running = await start_simulation(spec)
    panel = running["panel-1"]
    profile = load_profile("gas-suppression")
    client = AsyncModbusTcpClient("127.0.0.1", port=panel.simulator.port, timeout=2, retries=0, reconnect_delay=0)
    assert await asyncio.wait_for(client.connect(), 5)
    try:
        state = profile.point("gas.system_state")
        first = await asyncio.wait_for(client.read_input_registers(0, count=6, device_id=panel.unit), 5)
        assert decode(state, first.registers[0:1]) == 1  # armed from the first request on
        while time.monotonic() - started < 10:
            registers = (await asyncio.wait_for(client.read_input_registers(0, count=6, device_id=1), 5)).registers
            values = {p.metric: decode(p, registers[p.address : p.end]) for p in profile.points}
            if values["gas.system_state"] == 4 and float(values["gas.cylinder_pressure"]) < 2.1:
                break
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        client.close()
        stop.set()
        await asyncio.wait_for(task, 10)
    assert values["gas.discharge_countdown"] == 0
    assert values["gas.zone1_alarm"] is True
    assert values["gas.zone2_alarm"] is True
    assert 1.0 <= elapsed < 5  # 70 s of scenario (until the pressure is down) at x60


async def test_a_pty_line_with_three_devices(tmp_path: Path) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "devices": [
                    {"id": "crac-1", "profile": "climate-controller", "unit": 1, "transport": "rtu", "port": "pty"},
                    {"id": "panel-1", "profile": "gas-suppression", "unit": 2, "transport": "rtu", "port": "pty"},
                    {"id": "meter-1", "profile": "energy-meter", "unit": 3, "transport": "rtu", "port": "pty"},
                ],
            }
        )
    )
    task, stop, running = await start_simulation(load_sim_config(config))
    try:
        addresses = {device.address for device in running.values()}
        assert len(addresses) == 1  # one line, one pty
        path = addresses.pop().removeprefix("rtu:")
        running["meter-1"].simulator.set(3, "meter.frequency", 50.02)
        client = AsyncModbusSerialClient(
            path, framer=FramerType.RTU, parity="N", timeout=1, retries=0, reconnect_delay=0
        )
        assert await asyncio.wait_for(client.connect(), 5)
        try:
            response = await asyncio.wait_for(client.read_input_registers(70, count=1, device_id=3), 5)
        finally:
            client.close()
        assert response.registers == [5002]
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


# -- specs -------------------------------------------------------------------------------------------


def test_spec_from_device_arguments() -> None:
    spec = build_spec_from_args(devices=["crac-1=climate-controller@3", "meter-1=energy-meter"], port=0)
    assert [(d.id, d.profile, d.unit, d.port) for d in spec.devices] == [
        ("crac-1", "climate-controller", 3, 0),
        ("meter-1", "energy-meter", 2, 0),
    ]
    assert spec.scenario is None


def test_spec_from_a_scenario_alone() -> None:
    spec = build_spec_from_args(scenario="normal-day", rtu="/dev/ttyUSB0", speed=120, repeat=True)
    assert [(d.id, d.unit, d.transport, d.port) for d in spec.devices] == [
        ("crac-1", 1, "rtu", "/dev/ttyUSB0"),
        ("room-1", 2, "rtu", "/dev/ttyUSB0"),
        ("meter-1", 3, "rtu", "/dev/ttyUSB0"),
        ("panel-1", 4, "rtu", "/dev/ttyUSB0"),
    ]
    assert (spec.scenario, spec.speed, spec.repeat) == ("normal-day", 120, True)


def test_spec_from_a_config_file_resolves_relative_paths(tmp_path: Path) -> None:
    write(tmp_path, SCENARIO, "boiler-day.yaml")
    config = tmp_path / "sim.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "scenario": "boiler-day.yaml",
                "speed": 5,
                "devices": [{"id": "b1", "profile": "boiler.yaml", "unit": 2, "port": 0}],
            }
        )
    )
    spec = build_spec_from_args(config=config, speed=10)
    assert spec.scenario == str(tmp_path / "boiler-day.yaml")
    assert spec.devices[0].profile == str(tmp_path / "boiler.yaml")
    assert spec.speed == 10  # the command line wins


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "nothing to simulate"),
        ({"devices": ["crac-1"]}, "expected ID=PROFILE"),
        ({"devices": ["Crac=climate-controller"]}, "should match pattern"),
        ({"devices": ["a=climate-controller@1", "b=energy-meter@1"]}, "both use unit 1"),
        ({"devices": ["a=climate-controller", "a=energy-meter"]}, "device ids used twice: a"),
        ({"devices": ["a=climate-controller@300"]}, "less than or equal to 247"),
        ({"devices": ["a=climate-controller"], "speed": 0}, "greater than 0"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SimConfigError, match=message):
        build_spec_from_args(**kwargs)  # type: ignore[arg-type]


def test_bad_config_files_name_the_field(tmp_path: Path) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text(
        yaml.safe_dump({"devices": [{"id": "x", "profile": "energy-meter", "transport": "rtu", "port": 5}]})
    )
    with pytest.raises(SimConfigError, match=r"sim\.yaml: devices\.0: .*serial device path"):
        load_sim_config(config)


async def test_run_simulation_refuses_a_scenario_that_does_not_fit() -> None:
    spec = build_spec_from_args(devices=["panel-1=energy-meter"], scenario="gas-discharge", port=0)
    with pytest.raises(SimConfigError, match="'gas-suppression' in the scenario but 'energy-meter'"):
        await run_simulation(spec, asyncio.Event())
    spec = build_spec_from_args(devices=["other=energy-meter"], scenario="gas-discharge", port=0)
    with pytest.raises(SimConfigError, match="'panel-1' is not in the simulation"):
        await run_simulation(spec, asyncio.Event())
    spec = build_spec_from_args(devices=["x=no-such-profile"], port=0)
    with pytest.raises(SimConfigError, match=r"device x: .*cannot read the profile"):
        await run_simulation(spec, asyncio.Event())
