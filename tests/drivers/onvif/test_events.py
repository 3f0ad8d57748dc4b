"""Camera events through a supervised PullPoint subscription: topics, renewal, reboot, failed pulls, stop."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from cityhub.contract import DeviceEvent
from drivers.onvif import OnvifCamera
from drivers.onvif.client import RawNotification
from drivers.onvif.events import EventTracker
from simulators.onvif import CameraSpec, FaultMode, SimulatedCamera

MakeCamera = Callable[..., OnvifCamera]
Watching = Callable[[OnvifCamera], AbstractAsyncContextManager[Any]]
Eventually = Callable[..., Awaitable[None]]


@pytest.mark.parametrize(
    ("profile", "point", "event", "topic"),
    [
        ("camera", "camera.motion", "camera.motion", "tns1:RuleEngine/CellMotionDetector/Motion"),
        ("camera-videosource", "camera.motion", "camera.motion", "tns1:VideoSource/MotionAlarm"),
        ("camera", "camera.tamper", "camera.tamper", "tns1:RuleEngine/TamperDetector/Tamper"),
        ("camera-videosource", "camera.tamper", "camera.tamper", "tns1:VideoSource/GlobalSceneChange/ImagingService"),
        ("camera", "camera.video_loss", "camera.video_loss", "tns1:VideoSource/SignalLoss"),
        ("camera", "camera.input2", "camera.digital_input", "tns1:Device/Trigger/DigitalInput"),
    ],
)
async def test_events_arrive_through_watch(
    make_camera: MakeCamera,
    watching: Watching,
    eventually: Eventually,
    profile: str,
    point: str,
    event: str,
    topic: str,
) -> None:
    async with SimulatedCamera(CameraSpec(profile=profile)) as sim:
        camera = make_camera(sim.host, sim.port)
        async with watching(camera) as seen:
            await eventually(lambda: camera.subscription.health.messages >= 5, what="the initial states")
            assert seen.events() == []  # initial states are all inactive: nothing to report
            sim.set(point, True)
            await eventually(lambda: len(seen.events(event)) == 1, what=f"{event} active")
            sim.set(point, False)
            await eventually(lambda: len(seen.events(event)) == 2, what=f"{event} inactive")
    first, second = seen.events(event)
    assert (first.active, second.active) == (True, False)
    assert first.attributes["topic"] == topic
    assert first.attributes["operation"] == "Changed"
    if event == "camera.digital_input":
        assert first.attributes["input"] == "DigitalInput_2"
    dt.datetime.fromisoformat(str(first.attributes["camera_time"]))
    assert seen.results[0].readings  # the states, e.g. camera.motion, come along as readings


async def test_an_alarm_already_active_is_reported_at_subscription(
    sim: SimulatedCamera, camera: OnvifCamera, watching: Watching, eventually: Eventually
) -> None:
    sim.set("camera.video_loss", True)
    async with watching(camera) as seen:
        await eventually(lambda: seen.events("camera.video_loss") != [], what="the initial alarm")
    [event] = seen.events("camera.video_loss")
    assert event.active
    assert event.attributes["operation"] == "Initialized"


async def test_subscription_is_renewed_before_it_expires(
    sim: SimulatedCamera, make_camera: MakeCamera, watching: Watching, eventually: Eventually
) -> None:
    camera = make_camera(sim.host, sim.port, subscription_s=1, pull_wait_s=0.5)
    async with watching(camera) as seen:
        await eventually(lambda: camera.subscription.health.renewals >= 3, timeout_s=5, what="three renewals")
        sim.set("camera.tamper", True)
        await eventually(lambda: seen.events("camera.tamper") != [], what="tamper after renewals")
        health = camera.subscription.health
        assert (health.created, health.recreations, health.failures) == (1, 0, 0)
        assert len(sim.state.live()) == 1  # the one subscription, never expired
        readings = {r.metric: r.value for r in (await camera.poll()).readings}
    assert readings["camera.events_subscribed"] is True
    assert readings["camera.events_renewals"] >= 3  # type: ignore[operator]
    assert readings["camera.tamper"] is True


async def test_subscription_is_recreated_after_a_reboot(
    sim: SimulatedCamera, camera: OnvifCamera, watching: Watching, eventually: Eventually
) -> None:
    async with watching(camera) as seen:
        await eventually(lambda: camera.subscription.health.subscribed, what="subscribed")
        booted = sim.state.boot_time
        sim.set_fault(FaultMode.REBOOT, 1)
        await eventually(lambda: not camera.subscription.health.subscribed, what="subscription lost")
        assert (await camera.poll()).ok is False  # down while it reboots
        await eventually(lambda: camera.subscription.health.recreations == 1, timeout_s=8, what="recreated")
        assert sim.state.boot_time > booted
        assert len(sim.state.live()) == 1
        sim.set("camera.motion", True)
        await eventually(lambda: seen.events("camera.motion") != [], what="motion after the reboot")
        readings = {r.metric: r.value for r in (await camera.poll()).readings}
    assert readings["camera.events_recreations"] == 1
    assert readings["camera.events_failures"] >= 1  # type: ignore[operator]
    assert readings["camera.health"] == "ok"


@pytest.mark.parametrize("failure", ["subscription forgotten", "camera hangs"])
async def test_subscription_is_recreated_after_a_failed_pull(
    sim: SimulatedCamera,
    camera: OnvifCamera,
    watching: Watching,
    eventually: Eventually,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    async with watching(camera) as seen:
        await eventually(lambda: camera.subscription.health.subscribed, what="subscribed")
        if failure == "subscription forgotten":
            sim.state.reboot()  # the next PullMessages gets a ResourceUnknown fault
        else:
            sim.set_fault(FaultMode.HANG)
            await eventually(lambda: camera.subscription.health.failures >= 2, what="pulls timing out")
            sim.clear_fault()
        await eventually(lambda: camera.subscription.health.recreations >= 1, what="recreated")
        sim.set("camera.input1", True)
        await eventually(lambda: seen.events("camera.digital_input") != [], what="events again")
    lost = [r for r in caplog.records if "subscription lost" in r.getMessage()]
    assert len(lost) == 1
    assert lost[0].levelname == "WARNING"


async def test_stop_ends_watch_promptly_and_unsubscribes(
    sim: SimulatedCamera, make_camera: MakeCamera, eventually: Eventually
) -> None:
    camera = make_camera(sim.host, sim.port, pull_wait_s=30)  # a long poll in progress when stopped
    stop = asyncio.Event()
    task = asyncio.create_task(camera.watch(lambda result: None, stop))
    await eventually(lambda: camera.subscription.health.messages >= 5, what="pulling")
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 1.0)
    assert sim.state.live() == {}


async def test_a_hung_camera_does_not_stall_another_cameras_events(
    make_camera: MakeCamera, watching: Watching, eventually: Eventually
) -> None:
    async with SimulatedCamera(CameraSpec(name="a")) as hung, SimulatedCamera(CameraSpec(name="b")) as fine:
        stuck, live = make_camera(hung.host, hung.port), make_camera(fine.host, fine.port)
        hung.set_fault(FaultMode.HANG)
        async with watching(stuck), watching(live) as seen:
            await eventually(lambda: live.subscription.health.subscribed, what="the fine camera subscribed")
            fine.set("camera.motion", True)
            await eventually(lambda: seen.events("camera.motion") != [], timeout_s=1, what="its motion")
            assert not stuck.subscription.health.subscribed


async def test_events_off_means_no_subscription(sim: SimulatedCamera, make_camera: MakeCamera) -> None:
    camera = make_camera(sim.host, sim.port, events=False)
    stop = asyncio.Event()
    task = asyncio.create_task(camera.watch(lambda result: None, stop))
    await asyncio.sleep(0.2)
    stop.set()
    await task
    assert sim.state.subscriptions == {}
    assert not any(r.metric.startswith("camera.events") for r in (await camera.poll()).readings)


def note(topic: str, data: dict[str, str], source: dict[str, str] | None = None) -> RawNotification:
    return RawNotification(topic=topic, operation="Changed", utc_time=None, source=source or {}, data=data)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (note("tns1:RuleEngine/CellMotionDetector/Motion", {"IsMotion": "true"}), ("camera.motion", True)),
        (note("tns1:VideoSource/MotionAlarm", {"State": "1"}), ("camera.motion", True)),
        (note("ns2:VideoSource/SignalLoss", {"State": "true"}), ("camera.video_loss", True)),  # any prefix
        (note("tns1:RuleEngine/CellMotionDetector/Motion", {"IsMotion": "false"}), None),  # first and inactive
        (note("tns1:Device/HardwareFailure/StorageFailure", {"Failed": "true"}), None),  # a topic we do not map
        (note("tns1:VideoSource/MotionAlarm", {"Other": "true"}), None),  # no data item of the topic's name
    ],
)
def test_tracker_maps_topics(message: RawNotification, expected: tuple[str, bool] | None) -> None:
    event: DeviceEvent | None = EventTracker().track(message, 1)
    assert (None if event is None else (event.type, event.active)) == expected
