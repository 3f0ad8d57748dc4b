"""onvif-zeep-async used as a plain client against the simulator, and the driver's typed session."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from onvif import ONVIFCamera

from drivers.onvif.client import OnvifSession
from drivers.onvif.errors import AuthFailed
from simulators.onvif import FaultMode, SimulatedCamera
from simulators.onvif.server import DEFAULT_PASSWORD


@pytest.fixture
async def onvif_camera(sim: SimulatedCamera) -> AsyncIterator[ONVIFCamera]:
    """onvif-zeep-async's own client, connected to the simulator."""
    client = ONVIFCamera(sim.host, sim.port, "admin", DEFAULT_PASSWORD, no_cache=True)
    try:
        await client.update_xaddrs()
        yield client
    finally:
        await client.close()


async def test_library_reads_device_information(onvif_camera: ONVIFCamera, sim: SimulatedCamera) -> None:
    device = await onvif_camera.create_devicemgmt_service()
    info = await device.GetDeviceInformation()
    assert (info.Manufacturer, info.Model, info.FirmwareVersion, info.HardwareId) == (
        "Cityhub",
        "SimCam 2",
        "2.4.1",
        "SC2-A",
    )
    assert info.SerialNumber.startswith("SIM")
    assert set(onvif_camera.xaddrs) >= {
        "http://www.onvif.org/ver10/device/wsdl",
        "http://www.onvif.org/ver10/media/wsdl",
        "http://www.onvif.org/ver10/events/wsdl",
    }
    scopes = await device.GetScopes()
    assert "onvif://www.onvif.org/name/cam-test" in [s.ScopeItem for s in scopes]
    capabilities = await onvif_camera.get_capabilities()
    assert capabilities is not None
    assert capabilities["Events"]["WSPullPointSupport"] is True


async def test_library_reads_clock_without_credentials(sim: SimulatedCamera) -> None:
    client = ONVIFCamera(sim.host, sim.port, "admin", "wrong", no_cache=True)
    try:
        device = await client.create_devicemgmt_service()
        answer = await device.authless_GetSystemDateAndTime()
    finally:
        await client.close()
    assert answer.UTCDateTime.Date.Year == dt.datetime.now(dt.UTC).year
    assert answer.DateTimeType == "NTP"


async def test_library_reads_profiles_and_uris(onvif_camera: ONVIFCamera, sim: SimulatedCamera) -> None:
    media = await onvif_camera.create_media_service()
    profiles = await media.GetProfiles()
    assert [(p.token, p.Name) for p in profiles] == [("Profile_1", "MainStream"), ("Profile_2", "SubStream")]
    assert profiles[1].VideoEncoderConfiguration.Resolution.Width == 640
    setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
    stream = await media.GetStreamUri({"StreamSetup": setup, "ProfileToken": "Profile_2"})
    assert stream.Uri == f"rtsp://{sim.host}:554/Streaming/Channels/201"
    snapshot_uri = await onvif_camera.get_snapshot_uri("Profile_1")
    assert snapshot_uri == f"http://{sim.host}:{sim.port}/onvif/snapshot.jpg?profile=Profile_1"
    first = await onvif_camera.get_snapshot("Profile_1")  # HTTP digest, by aiohttp's DigestAuthMiddleware
    second = await onvif_camera.get_snapshot("Profile_1")
    assert first is not None
    assert first.startswith(b"\xff\xd8")
    assert first != second


async def test_library_pullpoint_manager_gets_events(onvif_camera: ONVIFCamera, sim: SimulatedCamera) -> None:
    manager = await onvif_camera.create_pullpoint_manager(dt.timedelta(seconds=60), lambda: None)
    try:
        pullpoint = manager.get_service()
        initial = await pullpoint.PullMessages({"Timeout": dt.timedelta(seconds=1), "MessageLimit": 100})
        assert {m.Message._value_1.PropertyOperation for m in initial.NotificationMessage} == {"Initialized"}
        sim.set("camera.motion", True)
        changed = await pullpoint.PullMessages({"Timeout": dt.timedelta(seconds=1), "MessageLimit": 100})
        [message] = changed.NotificationMessage
        assert message.Topic._value_1 == "tns1:RuleEngine/CellMotionDetector/Motion"
        body = message.Message._value_1
        assert (body.PropertyOperation, body.Data.SimpleItem[0].Name, body.Data.SimpleItem[0].Value) == (
            "Changed",
            "IsMotion",
            "true",
        )
        assert len(sim.state.subscriptions) == 1
    finally:
        await manager.shutdown()
    assert sim.state.subscriptions == {}  # shutdown unsubscribed


async def test_library_reads_event_properties(onvif_camera: ONVIFCamera) -> None:
    events = await onvif_camera.create_events_service()
    properties = await events.GetEventProperties()
    roots = {element.tag for element in properties.TopicSet._value_1}
    assert roots == {"{http://www.onvif.org/ver10/topics}" + name for name in ("RuleEngine", "VideoSource", "Device")}


async def test_library_wrong_password_is_a_fault(sim: SimulatedCamera) -> None:
    client = ONVIFCamera(sim.host, sim.port, "admin", "wrong", no_cache=True)
    session = OnvifSession(host=sim.host, port=sim.port, username="admin", password="wrong", timeout_s=2)
    try:
        with pytest.raises(AuthFailed, match="not authorized"):
            await session.open()
    finally:
        await client.close()
        await session.close()


async def test_session_reads_everything(sim: SimulatedCamera) -> None:
    session = OnvifSession(host=sim.host, port=sim.port, username="admin", password=DEFAULT_PASSWORD, timeout_s=2)
    try:
        await session.open()
        info = await session.device_information()
        profiles = await session.profiles()
        clock = await session.clock()
    finally:
        await session.close()
    assert (info.maker, info.model, info.hardware_id) == ("Cityhub", "SimCam 2", "SC2-A")
    assert [(p.token, p.encoding, p.width, p.height) for p in profiles] == [
        ("Profile_1", "H264", 1920, 1080),
        ("Profile_2", "H264", 640, 360),
    ]
    assert profiles[0].stream_uri == f"rtsp://{sim.host}:554/Streaming/Channels/101"
    assert profiles[1].snapshot_uri == f"http://{sim.host}:{sim.port}/onvif/snapshot.jpg?profile=Profile_2"
    assert abs(clock.skew_s) < 1.5
    assert 0 < clock.response_time_s < 1


@pytest.mark.parametrize("skew_s", [120, 250])
async def test_session_measures_clock_skew_and_signs_with_the_camera_clock(sim: SimulatedCamera, skew_s: int) -> None:
    sim.set_fault(FaultMode.CLOCK_SKEW, skew_s)  # beyond the camera's 60 s WS-Security freshness window
    session = OnvifSession(host=sim.host, port=sim.port, username="admin", password=DEFAULT_PASSWORD, timeout_s=2)
    try:
        clock = await session.clock()
        await session.open()  # adjust_time: WS-Security Created on the camera's clock
        info = await session.device_information()
    finally:
        await session.close()
    assert clock.skew_s == pytest.approx(skew_s, abs=1.0)
    assert session.time_offset_s is None  # closed
    assert info.model == "SimCam 2"
