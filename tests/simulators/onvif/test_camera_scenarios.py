"""Camera models and points for the scenario engine, the camera-offline scenario, and `cityhub sim onvif`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt

import httpx
import pytest

from simulators.errors import PointValueError, ScenarioProfileError
from simulators.onvif import (
    CameraFleet,
    CameraTarget,
    FaultMode,
    add_sim_arguments,
    load_scenario_profile,
    run_from_args,
)
from simulators.onvif.fleet import specs_from_args
from simulators.points import NO_FAULT, PROFILE_LOADERS
from simulators.runner import ScenarioRunner
from simulators.scenario import load_scenario


@pytest.mark.parametrize("name", ["camera", "camera-videosource"])
def test_profiles_offer_boolean_points_and_faults(name: str) -> None:
    profile = load_scenario_profile(name)
    assert profile.name == name
    assert profile.metrics() == [
        "camera.motion",
        "camera.tamper",
        "camera.video_loss",
        "camera.input1",
        "camera.input2",
    ]
    assert {
        NO_FAULT,
        "offline",
        "hang",
        "reboot",
        "auth_fail",
        "not_onvif",
        "frozen",
        "clock_skew",
    } == profile.fault_modes
    point = profile.point("camera.motion")
    assert (point.rampable, point.bounds) == (False, (0.0, 1.0))
    with pytest.raises(KeyError):
        profile.point("camera.zoom")


def test_the_engine_names_this_loader() -> None:
    assert PROFILE_LOADERS["onvif"] == "simulators.onvif.points:load_scenario_profile"
    with pytest.raises(ScenarioProfileError, match="known: camera, camera-videosource"):
        load_scenario_profile("doorbell")


@pytest.mark.parametrize(
    ("value", "stored"), [(True, True), (False, False), (1, True), (0, False), ("on", True), ("false", False)]
)
def test_points_take_booleans(value: bool | int | str, stored: bool) -> None:
    assert load_scenario_profile("camera").point("camera.tamper").check(value) is stored


@pytest.mark.parametrize("value", [2, 0.5, "maybe", ""])
def test_points_refuse_other_values(value: int | float | str) -> None:
    with pytest.raises(PointValueError, match=r"camera\.tamper"):
        load_scenario_profile("camera").point("camera.tamper").check(value)


async def test_target_sets_points_and_faults() -> None:
    async with CameraFleet.numbered(1, discovery_port=None) as fleet:
        target = fleet.targets()["cam-1"]
        camera = fleet.cameras[0]
        assert isinstance(target, CameraTarget)
        assert target.profile_name == "camera"
        target.set("camera.input1", "on")
        assert camera.state.values["camera.input1"] is True
        target.set_fault("clock_skew", 90)
        assert (camera.fault, camera.state.clock_offset_s) == (FaultMode.CLOCK_SKEW, 90.0)
        target.clear_fault()
        assert (camera.fault, camera.state.clock_offset_s) == (FaultMode.NONE, 0.0)
        with pytest.raises(PointValueError):
            target.set("camera.zoom", True)
        with pytest.raises(PointValueError):
            target.set_fault("explode", 1)


async def test_camera_offline_scenario_drives_two_cameras() -> None:
    scenario = load_scenario("camera-offline")
    assert {d.profile.name for d in scenario.devices.values()} == {"camera", "camera-videosource"}
    fleet = CameraFleet(specs_from_args(_parser().parse_args(["--port", "0"]), scenario), discovery_port=None)
    async with fleet, httpx.AsyncClient(timeout=1) as http:
        runner = ScenarioRunner(scenario, fleet.targets())
        bastion, palace = fleet.cameras
        bastion_sub = bastion.state.subscribe(bastion.state.now() + dt.timedelta(seconds=60))
        runner.apply(15)
        assert bastion.state.values["camera.motion"] is True
        assert [m.topic for m in bastion_sub.queue[-1:]] == ["RuleEngine/CellMotionDetector/Motion"]
        runner.apply(45)
        assert palace.state.values["camera.tamper"] is True
        runner.apply(65)
        await palace.settled()
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://{palace.host}:{palace.port}/")
        runner.apply(95)
        await palace.settled()
        assert (await http.get(f"http://{palace.host}:{palace.port}/")).status_code == 404
        runner.apply(105)
        assert bastion.state.values["camera.input1"] is True
        assert palace.fault is FaultMode.NONE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    return parser


async def test_run_from_args_runs_cameras_and_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(
        ["--port", "0", "--discovery-port", "0", "--scenario", "camera-offline", "--speed", "200"]
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_from_args(args, stop))
    await asyncio.sleep(1.0)  # 120 s of scenario at x200: done after 0.6 s
    stop.set()
    await asyncio.wait_for(task, 3)
    out = capsys.readouterr().out
    assert "bastion-gate: http://127.0.0.1:" in out
    assert "palace-court: http://127.0.0.1:" in out


async def test_run_from_args_without_scenario_runs_numbered_cameras(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(
        ["--port", "0", "--discovery-port", "0", "--cameras", "2", "--profile", "camera-videosource"]
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_from_args(args, stop))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 3)
    out = capsys.readouterr().out
    assert "cam-1:" in out
    assert "cam-2:" in out
    assert "camera-videosource" in out


async def test_fleet_inventory_fits_the_driver_config() -> None:
    from drivers.onvif import OnvifDeviceConfig

    async with CameraFleet.numbered(2, discovery_port=None) as fleet:
        configs = [OnvifDeviceConfig.model_validate(entry) for entry in fleet.inventory(site="bastion")]
    assert [(c.id, c.site, c.port) for c in configs] == [
        ("cam-1", "bastion", fleet.cameras[0].port),
        ("cam-2", "bastion", fleet.cameras[1].port),
    ]
