"""OnvifCamera against the simulator over real sockets: health, description, snapshots, clock, faults."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest
from aiohttp import web

from drivers.base import PolledDevice, PollResult, WatchedDevice
from drivers.onvif import Health, OnvifCamera, OnvifDeviceConfig
from drivers.onvif.client import OnvifSession
from drivers.onvif.errors import AuthFailed, CameraTimeout, CameraUnreachable, NotOnvif, SoapFault
from simulators.onvif import CameraSpec, FaultMode, SimulatedCamera
from simulators.onvif.soap import envelope

MakeCamera = Callable[..., OnvifCamera]


def values(result: PollResult) -> dict[str, object]:
    """metric -> value of a poll (bad readings as None)."""
    return {r.metric: r.value for r in result.readings}


def event_types(result: PollResult) -> list[tuple[str, bool]]:
    return [(e.type, e.active) for e in result.events]


async def test_camera_is_a_watched_device(camera: OnvifCamera) -> None:
    assert isinstance(camera, PolledDevice)
    assert isinstance(camera, WatchedDevice)
    assert camera.device_id == "cam-test"


async def test_first_poll_reads_health_description_and_snapshot(camera: OnvifCamera, sim: SimulatedCamera) -> None:
    before = camera.describe()
    assert (before.kind, before.maker, before.model) == ("camera", None, None)
    result = await camera.poll()
    seen = values(result)
    assert result.ok
    assert result.events == []
    assert seen["camera.health"] == "ok"
    assert 0 < float(seen["camera.response_time"]) < 0.5  # type: ignore[arg-type]
    assert abs(float(seen["camera.clock_skew"])) < 1.5  # type: ignore[arg-type]
    assert seen["camera.profiles"] == 2
    assert seen["camera.snapshot_ok"] is True
    assert seen["camera.snapshot_frozen"] is False
    assert seen["camera.snapshot_bytes"] == len(sim_snapshot(sim))
    after = camera.describe()
    assert (after.maker, after.model, after.firmware) == ("Cityhub", "SimCam 2", "2.4.1")
    assert after.serial is not None
    assert after.serial.startswith("SIM")
    assert {"camera.motion", "camera.offline", "camera.snapshot_frozen"} <= set(after.events)
    assert {m.metric for m in after.metrics} >= set(seen)
    assert not camera.down
    assert camera.down_reason is None
    assert [p.token for p in camera.profiles] == ["Profile_1", "Profile_2"]


def sim_snapshot(sim: SimulatedCamera) -> bytes:
    from simulators.onvif.jpeg import snapshot_jpeg

    return snapshot_jpeg(sim._frame, sim.spec.name)


@pytest.mark.parametrize(
    ("how", "password"),
    [("wrong password (WS-Security)", "not-the-password"), ("camera refuses everyone", None)],
)
async def test_auth_failure_is_reported_not_down(
    sim: SimulatedCamera, make_camera: MakeCamera, how: str, password: str | None
) -> None:
    if password is None:
        sim.set_fault(FaultMode.AUTH_FAIL)
    camera = make_camera(sim.host, sim.port, **({"password": password} if password else {}))
    result = await camera.poll()
    assert values(result)["camera.health"] == "auth_failed"
    assert event_types(result) == [("camera.auth_failed", True)]
    assert not result.ok
    assert not camera.down
    assert "camera.snapshot_ok" not in values(result)


async def test_auth_recovers_with_an_inactive_event(sim: SimulatedCamera, camera: OnvifCamera) -> None:
    sim.set_fault(FaultMode.AUTH_FAIL)
    await camera.poll()
    sim.clear_fault()
    result = await camera.poll()
    assert values(result)["camera.health"] == "ok"
    assert event_types(result) == [("camera.auth_failed", False)]


async def test_snapshot_digest_path_refuses_a_wrong_password(sim: SimulatedCamera) -> None:
    import httpx

    from drivers.onvif.snapshot import fetch_snapshot

    uri = f"http://{sim.host}:{sim.port}/onvif/snapshot.jpg?profile=Profile_1"
    async with httpx.AsyncClient() as client:
        with pytest.raises(AuthFailed, match="401"):
            await fetch_snapshot(client, uri, httpx.DigestAuth("admin", "wrong"), 1.0)
        shot = await fetch_snapshot(client, uri, httpx.DigestAuth("admin", sim.spec.password), 1.0)
    assert shot.size > 100
    assert shot.content_type == "image/jpeg"


async def test_not_onvif_answer_is_down(sim: SimulatedCamera, camera: OnvifCamera) -> None:
    await camera.poll()
    sim.set_fault(FaultMode.NOT_ONVIF)
    result = await camera.poll()
    assert values(result)["camera.health"] == "not_onvif"
    assert event_types(result) == [("camera.not_onvif", True)]
    assert camera.down
    assert camera.down_reason is not None
    assert "not a SOAP answer" in camera.down_reason


async def test_unreachable_then_back_logs_once_each(
    closed_port: int, make_camera: MakeCamera, caplog: pytest.LogCaptureFixture
) -> None:
    camera = make_camera("127.0.0.1", closed_port)
    caplog.set_level(logging.INFO, logger="drivers.onvif.camera")
    first = await camera.poll()
    second = await camera.poll()
    assert values(first)["camera.health"] == "unreachable"
    assert not first.ok
    assert event_types(first) == [("camera.offline", True)]
    assert second.events == []
    assert camera.down
    assert "unreachable" in (camera.down_reason or "")
    bad = [r for r in first.readings if r.metric == "camera.response_time"]
    assert bad[0].value is None
    assert bad[0].quality == "bad"
    async with SimulatedCamera(CameraSpec(name="late", port=closed_port)):
        back = await camera.poll()
        await camera.poll()
    assert values(back)["camera.health"] == "ok"
    assert event_types(back) == [("camera.offline", False)]
    records = [r for r in caplog.records if r.name == "drivers.onvif.camera"]
    messages = [(r.levelname, r.getMessage().split(" is ")[1][:4]) for r in records]
    assert messages == [("WARNING", "unre"), ("INFO", "back")]


async def test_offline_fault_refuses_connections(sim: SimulatedCamera, camera: OnvifCamera) -> None:
    await camera.poll()
    sim.set_fault(FaultMode.OFFLINE)
    await sim.settled()
    result = await camera.poll()
    assert values(result)["camera.health"] == "unreachable"
    sim.clear_fault()
    await sim.settled()
    assert values(await camera.poll())["camera.health"] == "ok"


async def test_a_hung_camera_does_not_block_another(make_camera: MakeCamera) -> None:
    async with SimulatedCamera(CameraSpec(name="hung")) as hung, SimulatedCamera(CameraSpec(name="fine")) as fine:
        slow = make_camera(hung.host, hung.port, timeout_s=0.5)
        fast = make_camera(fine.host, fine.port, timeout_s=0.5)
        await asyncio.gather(slow.poll(), fast.poll())
        hung.set_fault(FaultMode.HANG)
        done: dict[str, float] = {}
        started = time.monotonic()

        async def timed(name: str, camera: OnvifCamera) -> PollResult:
            result = await camera.poll()
            done[name] = time.monotonic() - started
            return result

        slow_result, fast_result = await asyncio.gather(timed("slow", slow), timed("fast", fast))
    assert values(slow_result)["camera.health"] == "unreachable"
    assert "no answer in time" in (slow.down_reason or "")
    assert values(fast_result)["camera.health"] == "ok"
    assert done["fast"] < 0.4 <= done["slow"] < 1.5


async def test_frozen_snapshot_is_detected_and_clears(sim: SimulatedCamera, make_camera: MakeCamera) -> None:
    camera = make_camera(sim.host, sim.port, frozen_after=3)
    await camera.poll()
    sim.set_fault(FaultMode.FROZEN)
    results = [await camera.poll() for _ in range(2)]
    frozen = [values(r)["camera.snapshot_frozen"] for r in results]
    assert frozen == [False, True]  # the last live picture, then two more identical ones
    assert event_types(results[1]) == [("camera.snapshot_frozen", True)]
    assert float(values(results[1])["camera.snapshot_age"]) > 0  # type: ignore[arg-type]
    sim.clear_fault()
    moving = await camera.poll()
    assert values(moving)["camera.snapshot_frozen"] is False
    assert event_types(moving) == [("camera.snapshot_frozen", False)]


async def test_clock_skew_is_measured_and_auth_follows_the_camera_clock(
    sim: SimulatedCamera, camera: OnvifCamera
) -> None:
    assert abs(float(values(await camera.poll())["camera.clock_skew"])) < 1.5  # type: ignore[arg-type]
    sim.set_fault(FaultMode.CLOCK_SKEW, 200)  # the camera's clock jumps: old WS-Security timestamps are stale
    result = await camera.poll()
    assert float(values(result)["camera.clock_skew"]) == pytest.approx(200, abs=1.0)  # type: ignore[arg-type]
    assert values(result)["camera.health"] == "ok"


def test_config_refuses_unknown_fields_and_hides_the_password() -> None:
    fields = {"driver": "onvif", "id": "gate-1", "host": "10.0.0.5", "username": "u", "password": "p"}
    config = OnvifDeviceConfig.model_validate(fields)
    assert (config.port, config.poll_interval_s, config.events, config.frozen_after) == (80, 30.0, True, 3)
    assert "p" not in repr(config.password)
    with pytest.raises(ValueError, match="extra"):
        OnvifDeviceConfig.model_validate({**fields, "pasword": "typo"})
    with pytest.raises(ValueError, match="pattern"):
        OnvifDeviceConfig.model_validate({**fields, "id": "bad id"})


# -- answers that are not ONVIF, from a plain HTTP server --------------------------------------------

_FAULT = (
    "<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>ter:InvalidArgVal</env:Value>"
    "</env:Subcode></env:Code><env:Reason><env:Text>bad argument</env:Text></env:Reason></env:Fault>"
)
ANSWERS: dict[str, tuple[int, str, bytes]] = {
    "html": (404, "text/html", b"<html><body>Not Found</body></html>"),
    "invalid xml": (200, "application/soap+xml", b"<env:Envelope><unclosed>"),
    "plain text": (200, "text/plain", b"hello"),
    "soap fault": (400, "application/soap+xml", envelope(_FAULT)),
    "empty 500": (500, "text/plain", b""),
}


async def serve(answer: tuple[int, str, bytes]) -> web.AppRunner:
    status, content_type, body = answer

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def port_of(runner: web.AppRunner) -> int:
    return int(runner.addresses[0][1])


@pytest.mark.parametrize("kind", list(ANSWERS))
async def test_non_onvif_answers_are_typed_errors(kind: str, make_camera: MakeCamera) -> None:
    runner = await serve(ANSWERS[kind])
    session = OnvifSession(host="127.0.0.1", port=port_of(runner), username="u", password="p", timeout_s=1)
    try:
        with pytest.raises(SoapFault if kind == "soap fault" else NotOnvif) as caught:
            await session.clock()
        camera = make_camera("127.0.0.1", port_of(runner))
        result = await camera.poll()
    finally:
        await session.close()
        await runner.cleanup()
    if kind == "soap fault":
        assert caught.value.subcodes == ("ter:InvalidArgVal",)
        assert caught.value.code == "env:Sender"
    assert values(result)["camera.health"] == "not_onvif"
    assert camera.down


async def test_timeout_and_refusal_are_typed(closed_port: int, sim: SimulatedCamera) -> None:
    refused = OnvifSession(host="127.0.0.1", port=closed_port, username="u", password="p", timeout_s=1)
    sim.set_fault(FaultMode.HANG)
    hung = OnvifSession(host=sim.host, port=sim.port, username="u", password="p", timeout_s=0.3)
    try:
        with pytest.raises(CameraUnreachable) as unreachable:
            await refused.clock()
        with pytest.raises(CameraTimeout):
            await hung.clock()
    finally:
        await refused.close()
        await hung.close()
    assert not isinstance(unreachable.value, CameraTimeout)


def test_health_values_are_the_documented_ones() -> None:
    assert [h.value for h in Health] == ["ok", "auth_failed", "not_onvif", "unreachable"]
