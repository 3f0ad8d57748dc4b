"""A typed, time-bounded session with one camera's ONVIF services, on onvif-zeep-async.

onvif-zeep-async is untyped and its requests default to 90 s timeouts, so every call goes through
``OnvifSession._call``: bounded by ``asyncio.timeout``, its exceptions mapped once (``errors.map_error``),
its zeep objects turned into frozen dataclasses here, so no ``Any`` leaks out of this module.

The session is opened with ``adjust_time=True``: the library reads the camera's clock
(GetSystemDateAndTime, which needs no credentials, ONVIF Core spec 5.9.4.3) and stamps its WS-Security
UsernameTokens with the camera's time, so a camera whose clock is off still accepts them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from drivers.onvif._onvif import ONVIFCamera, normalize_url
from drivers.onvif.errors import MAPPED_ERRORS, NotOnvif, map_error

PULLPOINT_NS = "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription"
#: Bound of creating a service object: local WSDL parsing, no camera involved (see OnvifSession._service).
WSDL_LOAD_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceInfo:
    """GetDeviceInformation."""

    maker: str
    model: str
    firmware: str
    serial: str
    hardware_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaProfile:
    """One media profile (GetProfiles), with its stream and snapshot URIs once asked."""

    token: str
    name: str
    encoding: str | None = None
    width: int | None = None
    height: int | None = None
    stream_uri: str | None = None
    snapshot_uri: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CameraClock:
    """GetSystemDateAndTime, read against the local clock."""

    camera_utc: dt.datetime
    skew_s: float  # camera minus local, seconds
    response_time_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionTerm:
    """What CreatePullPointSubscription or Renew granted."""

    granted_s: float  # TerminationTime - CurrentTime, both on the camera's clock


@dataclass(frozen=True, slots=True, kw_only=True)
class RawNotification:
    """One NotificationMessage of PullMessages, as plain values."""

    topic: str
    operation: str | None
    utc_time: dt.datetime | None
    source: dict[str, str]
    data: dict[str, str]


class OnvifSession:
    """One camera's ONVIF services; every call bounded by ``timeout_s``."""

    def __init__(self, *, host: str, port: int, username: str, password: str, timeout_s: float) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._username = username
        self._password = password
        self._camera: Any = None  # onvif.ONVIFCamera once opened
        self._subscription: Any = None
        self._pullpoint: Any = None

    @property
    def ready(self) -> bool:
        """Whether ``open`` succeeded since the last close."""
        return self._camera is not None and bool(self._camera.xaddrs)

    @property
    def time_offset_s(self) -> float | None:
        """The camera-minus-local offset the WS-Security timestamps use, once opened."""
        diff = self._camera.dt_diff if self._camera is not None else None
        return diff.total_seconds() if isinstance(diff, dt.timedelta) else None

    async def _call(self, what: str, call: Callable[[], Awaitable[Any]], timeout_s: float | None = None) -> Any:
        try:
            async with asyncio.timeout(timeout_s or self.timeout_s):
                return await call()
        except MAPPED_ERRORS as exc:
            raise map_error(exc, what) from exc
        except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
            # zeep trips over some non-XML answers itself (plain text parses to no element at all and
            # zeep calls a method on None): the answer is not ONVIF.
            raise NotOnvif(f"{what}: the answer does not parse as SOAP ({type(exc).__name__}: {exc})") from exc

    async def open(self) -> None:
        """(Re)connect: read the camera's clock and the addresses of its services (GetServices)."""
        await self.close()
        self._camera = ONVIFCamera(
            self.host, self.port, self._username, self._password, no_cache=True, adjust_time=True
        )
        await self._call("GetServices", self._camera.update_xaddrs, self.timeout_s * 3)

    async def close(self) -> None:
        """Close the library's HTTP sessions."""
        camera, self._camera = self._camera, None
        self._subscription = self._pullpoint = None
        if camera is not None:
            await camera.close()

    async def _service(self, name: str) -> Any:
        if self._camera is None:
            await self.open()
        create = getattr(self._camera, f"create_{name}_service")
        # Creating a service parses the library's WSDL files (seconds on a Raspberry Pi the first time, in
        # a thread) and talks to no camera: the camera's timeout would mark it unreachable for our CPU.
        return await self._call(f"create {name} service", create, max(WSDL_LOAD_S, self.timeout_s))

    async def clock(self) -> CameraClock:
        """Read the camera's clock without credentials; also tells whether it answers ONVIF at all."""
        if self._camera is None:
            # Only the device service's fixed address is needed, so no GetServices round trip yet.
            self._camera = ONVIFCamera(
                self.host, self.port, self._username, self._password, no_cache=True, adjust_time=True
            )
        device = await self._service("devicemgmt")
        started = time.monotonic()
        before = time.time()
        answer = await self._call("GetSystemDateAndTime", device.authless_GetSystemDateAndTime)
        elapsed = time.monotonic() - started
        try:
            utc = answer.UTCDateTime
            camera = dt.datetime(
                utc.Date.Year, utc.Date.Month, utc.Date.Day, utc.Time.Hour, utc.Time.Minute, utc.Time.Second,
                tzinfo=dt.UTC,
            )  # fmt: skip
        except (AttributeError, TypeError, ValueError) as exc:
            raise NotOnvif(f"GetSystemDateAndTime: no UTCDateTime in the answer ({exc})") from exc
        # The camera read its clock about halfway through the round trip, and truncated it to whole
        # seconds (so on average it was half a second later than it says).
        skew = camera.timestamp() + 0.5 - (before + elapsed / 2)
        return CameraClock(camera_utc=camera, skew_s=skew, response_time_s=elapsed)

    async def device_information(self) -> DeviceInfo:
        """GetDeviceInformation (needs credentials)."""
        device = await self._service("devicemgmt")
        info = await self._call("GetDeviceInformation", device.GetDeviceInformation)
        return DeviceInfo(
            maker=_text(info, "Manufacturer"),
            model=_text(info, "Model"),
            firmware=_text(info, "FirmwareVersion"),
            serial=_text(info, "SerialNumber"),
            hardware_id=_text(info, "HardwareId"),
        )

    async def profiles(self) -> list[MediaProfile]:
        """GetProfiles, then GetStreamUri (RTSP unicast) and GetSnapshotUri for each profile."""
        media = await self._service("media")
        answer = await self._call("GetProfiles", media.GetProfiles)
        profiles = []
        for item in answer or []:
            token = str(item.token)
            encoder = getattr(item, "VideoEncoderConfiguration", None)
            resolution = getattr(encoder, "Resolution", None)
            profiles.append(
                MediaProfile(
                    token=token,
                    name=_text(item, "Name"),
                    encoding=_opt_text(encoder, "Encoding"),
                    width=_opt_int(resolution, "Width"),
                    height=_opt_int(resolution, "Height"),
                    stream_uri=await self._uri(media, "GetStreamUri", token),
                    snapshot_uri=await self._uri(media, "GetSnapshotUri", token),
                )
            )
        return profiles

    async def _uri(self, media: Any, operation: str, token: str) -> str | None:
        request: dict[str, Any] = {"ProfileToken": token}
        if operation == "GetStreamUri":
            request["StreamSetup"] = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
        answer = await self._call(operation, lambda: getattr(media, operation)(request))
        uri = normalize_url(getattr(answer, "Uri", None))
        return str(uri) if uri else None

    async def create_pullpoint(self, termination_s: int) -> SubscriptionTerm:
        """CreatePullPointSubscription, and the services to pull from and renew it."""
        events = await self._service("events")
        answer = await self._call(
            "CreatePullPointSubscription",
            lambda: events.CreatePullPointSubscription({"InitialTerminationTime": f"PT{termination_s}S"}),
        )
        try:
            address = normalize_url(answer.SubscriptionReference.Address._value_1)
        except AttributeError as exc:
            raise NotOnvif(f"CreatePullPointSubscription: no subscription address ({exc})") from exc
        # The same steps as onvif-zeep-async's PullPointManager: the subscription's address becomes the
        # xaddr of the PullPoint and SubscriptionManager bindings.
        self._camera.xaddrs[PULLPOINT_NS] = address
        wsdl_s = max(WSDL_LOAD_S, self.timeout_s)  # local WSDL parsing, as in _service
        self._subscription = await self._call(
            "create subscription service",
            lambda: self._camera.create_subscription_service("PullPointSubscription"),
            wsdl_s,
        )
        self._pullpoint = await self._call("create pullpoint service", self._camera.create_pullpoint_service, wsdl_s)
        return _term(answer, termination_s)

    async def renew(self, termination_s: int) -> SubscriptionTerm:
        """Renew the subscription (WS-BaseNotification)."""
        answer = await self._call("Renew", lambda: self._subscription.Renew({"TerminationTime": f"PT{termination_s}S"}))
        return _term(answer, termination_s)

    async def pull(self, wait_s: float, limit: int = 100) -> list[RawNotification]:
        """PullMessages: waits up to ``wait_s`` on the camera for messages."""
        request = {"Timeout": dt.timedelta(seconds=wait_s), "MessageLimit": limit}
        answer = await self._call(
            "PullMessages", lambda: self._pullpoint.PullMessages(request), wait_s + self.timeout_s
        )
        return [_notification(message) for message in getattr(answer, "NotificationMessage", None) or []]

    async def unsubscribe(self) -> None:
        """Unsubscribe (best effort is the caller's choice)."""
        subscription, self._subscription, self._pullpoint = self._subscription, None, None
        if subscription is not None:
            await self._call("Unsubscribe", subscription.Unsubscribe)


def _text(node: Any, name: str) -> str:
    value = getattr(node, name, None)
    return "" if value is None else str(value)


def _opt_text(node: Any, name: str) -> str | None:
    value = getattr(node, name, None) if node is not None else None
    return None if value is None else str(value)


def _opt_int(node: Any, name: str) -> int | None:
    value = getattr(node, name, None) if node is not None else None
    return None if value is None else int(value)


def _term(answer: Any, asked_s: int) -> SubscriptionTerm:
    current = getattr(answer, "CurrentTime", None)
    termination = getattr(answer, "TerminationTime", None)
    if isinstance(current, dt.datetime) and isinstance(termination, dt.datetime):
        return SubscriptionTerm(granted_s=(termination - current).total_seconds())
    return SubscriptionTerm(granted_s=float(asked_s))


def _items(node: Any) -> dict[str, str]:
    items = getattr(node, "SimpleItem", None) or []
    return {str(item.Name): str(item.Value) for item in items if getattr(item, "Name", None) is not None}


def _notification(message: Any) -> RawNotification:
    topic = getattr(message.Topic, "_value_1", None) or ""
    body = getattr(message.Message, "_value_1", None)
    if isinstance(body, etree._Element):
        # An element zeep could not type (a maker's own schema): read it as plain XML.
        return _xml_notification(str(topic), body)
    utc = getattr(body, "UtcTime", None)
    return RawNotification(
        topic=str(topic),
        operation=_opt_text(body, "PropertyOperation"),
        utc_time=utc if isinstance(utc, dt.datetime) else None,
        source=_items(getattr(body, "Source", None)),
        data=_items(getattr(body, "Data", None)),
    )


def _xml_items(body: etree._Element, part: str) -> dict[str, str]:
    items = body.xpath(f"./*[local-name()='{part}']/*[local-name()='SimpleItem']")
    return {str(i.get("Name")): str(i.get("Value")) for i in items if isinstance(i, etree._Element) and i.get("Name")}


def _xml_notification(topic: str, body: etree._Element) -> RawNotification:
    utc = body.get("UtcTime")
    try:
        utc_time = dt.datetime.fromisoformat(utc) if utc else None
    except ValueError:
        utc_time = None
    return RawNotification(
        topic=topic,
        operation=body.get("PropertyOperation"),
        utc_time=utc_time,
        source=_xml_items(body, "Source"),
        data=_xml_items(body, "Data"),
    )
