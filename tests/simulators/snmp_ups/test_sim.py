"""The SNMP UPS simulator as scenarios and the command line drive it: its scenario profile, its target
adapter, the shipped ups-mains-failure scenario played against the driver, and run_from_args."""

from __future__ import annotations

import argparse
import asyncio
import math

import pytest
from snmpkit import AgentFactory, make_device, values

from drivers.snmp_ups import SnmpClient
from simulators.errors import PointValueError, ScenarioProfileError, SimConfigError
from simulators.points import NO_FAULT, ScenarioProfile, ScenarioTarget
from simulators.runner import ScenarioRunner
from simulators.scenario import load_scenario
from simulators.snmp_ups.agent import FaultMode, UpsAgent
from simulators.snmp_ups.points import SnmpUpsTarget, load_scenario_profile
from simulators.snmp_ups.simulation import add_sim_arguments, run_from_args, simulated_ups


def test_scenario_profile_points_and_faults() -> None:
    profile: ScenarioProfile = load_scenario_profile("ups-rfc1628")
    assert profile.fault_modes == {NO_FAULT, "silent", "garbage", "slow"}
    assert {"battery.charge", "ups.status", "ups.alarm"} <= set(profile.metrics())
    runtime = profile.point("battery.runtime")
    assert runtime.rampable
    assert runtime.bounds[0] < 0 < runtime.bounds[1]
    assert runtime.check(1260) == 1260
    assert runtime.check("unknown") == "unknown"
    status = profile.point("ups.status")
    assert not status.rampable
    assert status.bounds == (-math.inf, math.inf)
    assert status.check("DISCHRG OB") == "OB DISCHRG"
    assert profile.point("ups.alarm").check("fan_failure") == "fan_failure"
    with pytest.raises(KeyError):
        profile.point("ups.power")


@pytest.mark.parametrize(
    ("metric", "value", "message"),
    [
        ("ups.status", "ONBATT", "unknown ups.status tokens"),
        ("ups.alarm", "tea_time", "unknown alarms"),
        ("battery.runtime", "soon", "expected a number"),
        ("battery.runtime", 65535 * 60, "sentinel"),  # 65535 minutes means "unknown" on the wire
        ("battery.charge", 2**40, "out of range"),
    ],
)
def test_scenario_values_are_checked(metric: str, value: object, message: str) -> None:
    with pytest.raises(PointValueError, match=message):
        load_scenario_profile("ups-rfc1628").point(metric).check(value)  # type: ignore[arg-type]


def test_unknown_profile_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioProfileError, match="ups-apc, ups-eaton-xups, ups-mge, ups-rfc1628"):
        load_scenario_profile("ups-none")


async def test_target_adapter_sets_values_and_faults(start_agent: AgentFactory) -> None:
    agent = await start_agent("ups-apc")
    target: ScenarioTarget = SnmpUpsTarget(agent)
    assert target.profile_name == "ups-apc"
    target.set("battery.charge", 55.5)
    assert agent.mib.metrics["battery.charge"] == 55.5
    target.set_fault("slow", 250)
    assert agent.fault is FaultMode.SLOW
    target.set_fault("silent", 0)
    assert agent.fault is FaultMode.SILENT
    target.clear_fault()
    assert agent.fault is FaultMode.NONE


async def test_the_mains_failure_scenario_drives_the_simulator(start_agent: AgentFactory, client: SnmpClient) -> None:
    scenario = load_scenario("ups-mains-failure")
    agent = await start_agent(scenario.devices["ups-1"].profile.name)
    runner = ScenarioRunner(scenario, {"ups-1": SnmpUpsTarget(agent)})
    ups = make_device(agent, client)
    seen = []
    for t in (0.0, 25.0, 45.0, 70.0):
        runner.apply(t)
        result = await ups.poll()
        seen.append((values(result)["ups.status"], [(e.type, e.active) for e in result.events]))
        if t == 25.0:
            assert 20 < values(result)["battery.charge"] < 100
            assert values(result)["input.voltage"] == 0
    assert seen == [
        ("OL", []),
        ("OB", [("ups.on_battery", True)]),
        ("OB LB", [("ups.low_battery", True)]),
        ("OL", [("ups.on_battery", False), ("ups.low_battery", False)]),
    ]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    return parser.parse_args(list(argv))


async def test_run_from_args_serves_until_stopped(client: SnmpClient) -> None:
    stop = asyncio.Event()
    ready: list[UpsAgent] = []
    started = asyncio.Event()

    def on_ready(agent: UpsAgent) -> None:
        ready.append(agent)
        started.set()

    args = _args("--port", "0", "--profile", "ups-rfc1628", "--scenario", "ups-mains-failure", "--speed", "1000")
    task = asyncio.create_task(run_from_args(args, stop, on_ready=on_ready))
    await asyncio.wait_for(started.wait(), 5)
    ups = make_device(ready[0], client)
    assert (await ups.poll()).ok
    await asyncio.sleep(0.2)  # 80 scenario seconds at x1000: over, the UPS keeps its end state
    assert values(await ups.poll())["ups.status"] == "OL"
    stop.set()
    await task


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--profile", "ups-none"], "no MIB profile named"),
        (["--user", "ops:sha"], "expected NAME"),
        (["--user", "ops:sha:short"], "at least 8"),
        (["--trap-target", "nowhere"], "expected HOST:PORT"),
        (["--trap-user", "ghost"], "not one of the --user"),
        (["--scenario", "ups-mains-failure", "--profile", "ups-apc"], "pass --profile ups-rfc1628"),
    ],
)
async def test_bad_options_are_sim_config_errors(argv: list[str], message: str) -> None:
    with pytest.raises(SimConfigError, match=message):
        await run_from_args(_args("--port", "0", *argv), asyncio.Event())


async def test_simulated_ups_for_the_demo(client: SnmpClient) -> None:
    async with simulated_ups("ups-mge") as agent:
        assert (await make_device(agent, client).poll()).ok
