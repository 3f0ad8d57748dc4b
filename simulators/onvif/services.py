"""The ONVIF operations the simulated camera answers: device, media and events services.

Answers follow the ONVIF WSDLs (devicemgmt.wsdl, media.wsdl, events.wsdl) closely enough that a strict
client (onvif-zeep-async over zeep) reads them unmodified. Every operation except
GetSystemDateAndTime needs credentials: the ONVIF Core spec (section 5.9.4.3, access class PRE_AUTH)
lets a client read the clock first, so it can compute a UsernameToken the camera will accept.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from drivers.onvif.topics import BY_TOPIC, NS
from simulators.onvif.soap import SoapFault, SoapRequest, action_not_supported, element
from simulators.onvif.state import CameraState, Notification, Subscription, parse_duration, termination_after

PRE_AUTH = frozenset({"GetSystemDateAndTime", "GetWsdlUrl"})
#: Longest PullMessages wait the camera grants (ONVIF Core spec 9.1.2: the device may shorten it).
MAX_PULL_WAIT_S = 60.0
_CONCRETE_SET = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
_URI_TAIL = (
    "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>"
    "<tt:Timeout>PT0S</tt:Timeout>"
)


def iso(moment: dt.datetime) -> str:
    """``2025-01-31T12:00:00Z``: the UTC form cameras use."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """What the camera says about itself."""

    serial: str
    name: str
    location: str
    base_url: str  # http://host:port
    rtsp_url: str  # rtsp://host:554


Handler = Callable[[SoapRequest, str | None], Awaitable[str]]


class Services:
    """Answers one camera's SOAP operations from its state."""

    def __init__(self, state: CameraState, identity: Identity) -> None:
        self.state = state
        self.identity = identity
        self.handlers: dict[str, Handler] = {
            "GetSystemDateAndTime": self.get_system_date_and_time,
            "GetDeviceInformation": self.get_device_information,
            "GetServices": self.get_services,
            "GetCapabilities": self.get_capabilities,
            "GetScopes": self.get_scopes,
            "GetProfiles": self.get_profiles,
            "GetStreamUri": self.get_stream_uri,
            "GetSnapshotUri": self.get_snapshot_uri,
            "GetEventProperties": self.get_event_properties,
            "CreatePullPointSubscription": self.create_pull_point_subscription,
            "PullMessages": self.pull_messages,
            "Renew": self.renew,
            "Unsubscribe": self.unsubscribe,
            "SetSynchronizationPoint": self.set_synchronization_point,
        }

    async def answer(self, request: SoapRequest, subscription: str | None) -> str:
        """The response body for ``request`` (``subscription`` is the id in the address it was sent to)."""
        handler = self.handlers.get(request.operation)
        if handler is None:
            raise action_not_supported(request.operation)
        return await handler(request, subscription)

    # Device service (devicemgmt.wsdl)

    async def get_system_date_and_time(self, request: SoapRequest, _: str | None) -> str:
        now = self.state.now()
        return (
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
            "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
            "<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone><tt:UTCDateTime>"
            f"<tt:Time><tt:Hour>{now.hour}</tt:Hour><tt:Minute>{now.minute}</tt:Minute>"
            f"<tt:Second>{now.second}</tt:Second></tt:Time>"
            f"<tt:Date><tt:Year>{now.year}</tt:Year><tt:Month>{now.month}</tt:Month><tt:Day>{now.day}</tt:Day></tt:Date>"
            "</tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        )

    async def get_device_information(self, request: SoapRequest, _: str | None) -> str:
        model = self.state.profile
        return (
            "<tds:GetDeviceInformationResponse>"
            + element("tds:Manufacturer", model.maker)
            + element("tds:Model", model.model)
            + element("tds:FirmwareVersion", model.firmware)
            + element("tds:SerialNumber", self.identity.serial)
            + element("tds:HardwareId", model.hardware_id)
            + "</tds:GetDeviceInformationResponse>"
        )

    def _xaddr(self, service: str) -> str:
        return f"{self.identity.base_url}/onvif/{service}_service"

    async def get_services(self, request: SoapRequest, _: str | None) -> str:
        services = [("tds", "device", 2, 60), ("trt", "media", 2, 60), ("tev", "events", 2, 60)]
        body = "".join(
            "<tds:Service>"
            + element("tds:Namespace", NS[prefix])
            + element("tds:XAddr", self._xaddr(name))
            + f"<tds:Version><tt:Major>{major}</tt:Major><tt:Minor>{minor}</tt:Minor></tds:Version></tds:Service>"
            for prefix, name, major, minor in services
        )
        return f"<tds:GetServicesResponse>{body}</tds:GetServicesResponse>"

    async def get_capabilities(self, request: SoapRequest, _: str | None) -> str:
        return (
            "<tds:GetCapabilitiesResponse><tds:Capabilities>"
            f"<tt:Device>{element('tt:XAddr', self._xaddr('device'))}</tt:Device>"
            f"<tt:Events>{element('tt:XAddr', self._xaddr('events'))}"
            "<tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>"
            "<tt:WSPullPointSupport>true</tt:WSPullPointSupport>"
            "<tt:WSPausableSubscriptionManagerInterfaceSupport>false</tt:WSPausableSubscriptionManagerInterfaceSupport>"
            "</tt:Events>"
            f"<tt:Media>{element('tt:XAddr', self._xaddr('media'))}<tt:StreamingCapabilities>"
            "<tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP>"
            "</tt:StreamingCapabilities></tt:Media>"
            "</tds:Capabilities></tds:GetCapabilitiesResponse>"
        )

    async def get_scopes(self, request: SoapRequest, _: str | None) -> str:
        body = "".join(
            f"<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef>{element('tt:ScopeItem', scope)}</tds:Scopes>"
            for scope in scopes(self.state, self.identity)
        )
        return f"<tds:GetScopesResponse>{body}</tds:GetScopesResponse>"

    # Media service (media.wsdl)

    async def get_profiles(self, request: SoapRequest, _: str | None) -> str:
        body = "".join(_profile(token, name, w, h) for token, name, w, h in MEDIA_PROFILES)
        return f"<trt:GetProfilesResponse>{body}</trt:GetProfilesResponse>"

    def _profile_token(self, request: SoapRequest) -> str:
        token = request.text("ProfileToken")
        if token not in {p[0] for p in MEDIA_PROFILES}:
            raise SoapFault("env:Sender", "ter:InvalidArgVal", f"no profile {token!r}")
        return token or ""

    async def get_stream_uri(self, request: SoapRequest, _: str | None) -> str:
        channel = {p[0]: i for i, p in enumerate(MEDIA_PROFILES, start=1)}[self._profile_token(request)]
        return (
            "<trt:GetStreamUriResponse><trt:MediaUri>"
            + element("tt:Uri", f"{self.identity.rtsp_url}/Streaming/Channels/{channel}01")
            + f"{_URI_TAIL}</trt:MediaUri></trt:GetStreamUriResponse>"
        )

    async def get_snapshot_uri(self, request: SoapRequest, _: str | None) -> str:
        token = self._profile_token(request)
        return (
            "<trt:GetSnapshotUriResponse><trt:MediaUri>"
            + element("tt:Uri", f"{self.identity.base_url}/onvif/snapshot.jpg?profile={token}")
            + f"{_URI_TAIL}</trt:MediaUri></trt:GetSnapshotUriResponse>"
        )

    # Events service (events.wsdl, WS-BaseNotification)

    async def get_event_properties(self, request: SoapRequest, _: str | None) -> str:
        return (
            "<tev:GetEventPropertiesResponse>"
            "<tev:TopicNamespaceLocation>http://www.onvif.org/onvif/ver10/topics/topicns.xml</tev:TopicNamespaceLocation>"
            f"<wsnt:FixedTopicSet>true</wsnt:FixedTopicSet><wstop:TopicSet>{topic_set(self.state)}</wstop:TopicSet>"
            f"<wsnt:TopicExpressionDialect>{_CONCRETE_SET}</wsnt:TopicExpressionDialect>"
            "<tev:MessageContentFilterDialect>http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter"
            "</tev:MessageContentFilterDialect>"
            "<tev:MessageContentSchemaLocation>http://www.onvif.org/onvif/ver10/schema/onvif.xsd"
            "</tev:MessageContentSchemaLocation></tev:GetEventPropertiesResponse>"
        )

    def _termination(self, text: str | None) -> dt.datetime:
        try:
            return termination_after(text, self.state.now())
        except ValueError:
            raise SoapFault(
                "env:Sender", "wsnt:InvalidTerminationTimeFault", f"bad termination time {text!r}"
            ) from None

    async def create_pull_point_subscription(self, request: SoapRequest, _: str | None) -> str:
        sub = self.state.subscribe(self._termination(request.text("InitialTerminationTime")))
        address = f"{self.identity.base_url}/onvif/subscription/{sub.id}"
        return (
            "<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>"
            f"{element('wsa:Address', address)}</tev:SubscriptionReference>"
            + element("wsnt:CurrentTime", iso(self.state.now()))
            + element("wsnt:TerminationTime", iso(sub.termination))
            + "</tev:CreatePullPointSubscriptionResponse>"
        )

    def _subscription(self, sub_id: str | None) -> Subscription:
        sub = self.state.live().get(sub_id or "")
        if sub is None:
            raise SoapFault("env:Sender", "wsrf-rw:ResourceUnknownFault", f"no subscription {sub_id!r}")
        return sub

    async def pull_messages(self, request: SoapRequest, sub_id: str | None) -> str:
        sub = self._subscription(sub_id)
        wait_s = min(parse_duration(request.text("Timeout") or "PT0S") or 0.0, MAX_PULL_WAIT_S)
        limit = int(request.text("MessageLimit") or "100")
        if not sub.queue and wait_s > 0:
            remaining = (sub.termination - self.state.now()).total_seconds()
            try:
                async with asyncio.timeout(max(0.0, min(wait_s, remaining))):
                    await sub.wake.wait()
            except TimeoutError:
                pass
        sub = self._subscription(sub_id)  # a reboot or expiry while waiting ends it
        messages = "".join(_notification(m) for m in sub.take(limit))
        return (
            f"<tev:PullMessagesResponse>{element('tev:CurrentTime', iso(self.state.now()))}"
            f"{element('tev:TerminationTime', iso(sub.termination))}{messages}</tev:PullMessagesResponse>"
        )

    async def renew(self, request: SoapRequest, sub_id: str | None) -> str:
        sub = self._subscription(sub_id)
        sub.termination = self._termination(request.text("TerminationTime"))
        return (
            f"<wsnt:RenewResponse>{element('wsnt:TerminationTime', iso(sub.termination))}"
            f"{element('wsnt:CurrentTime', iso(self.state.now()))}</wsnt:RenewResponse>"
        )

    async def unsubscribe(self, request: SoapRequest, sub_id: str | None) -> str:
        self._subscription(sub_id)
        self.state.subscriptions.pop(sub_id or "").wake.set()
        return "<wsnt:UnsubscribeResponse/>"

    async def set_synchronization_point(self, request: SoapRequest, sub_id: str | None) -> str:
        self.state.resync(self._subscription(sub_id))
        return "<tev:SetSynchronizationPointResponse/>"


#: token, name, width, height: a main stream and a sub stream, as most cameras have.
MEDIA_PROFILES: tuple[tuple[str, str, int, int], ...] = (
    ("Profile_1", "MainStream", 1920, 1080),
    ("Profile_2", "SubStream", 640, 360),
)


def _profile(token: str, name: str, width: int, height: int) -> str:
    return (
        f'<trt:Profiles token="{token}" fixed="true">{element("tt:Name", name)}'
        '<tt:VideoSourceConfiguration token="VideoSourceConfig_1"><tt:Name>VideoSourceConfig_1</tt:Name>'
        "<tt:UseCount>2</tt:UseCount><tt:SourceToken>VideoSource_1</tt:SourceToken>"
        '<tt:Bounds x="0" y="0" width="1920" height="1080"/></tt:VideoSourceConfiguration>'
        f'<tt:VideoEncoderConfiguration token="VideoEncoder_{token[-1]}"><tt:Name>VideoEncoder_{token[-1]}</tt:Name>'
        "<tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>"
        f"<tt:Resolution><tt:Width>{width}</tt:Width><tt:Height>{height}</tt:Height></tt:Resolution>"
        "<tt:Quality>4</tt:Quality><tt:RateControl><tt:FrameRateLimit>25</tt:FrameRateLimit>"
        "<tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>4096</tt:BitrateLimit></tt:RateControl>"
        "<tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration></trt:Profiles>"
    )


def scopes(state: CameraState, identity: Identity) -> list[str]:
    """The camera's ONVIF scopes (ONVIF Core spec, section 7.3.2.2), as GetScopes and discovery give them."""
    base = "onvif://www.onvif.org"
    hardware = state.profile.model.replace(" ", "_")
    return [
        f"{base}/type/video_encoder",
        f"{base}/Profile/Streaming",
        f"{base}/name/{identity.name}",
        f"{base}/hardware/{hardware}",
        f"{base}/location/{identity.location}",
    ]


def topic_set(state: CameraState) -> str:
    """The wstop:TopicSet of the topics this camera publishes, each with its message description."""
    tree: dict[str, dict[str, object]] = {}
    for where in state.topics.values():
        node = tree
        for part in where.topic.split("/"):
            node = node.setdefault(part, {})  # type: ignore[assignment]
    return _topic_nodes(tree, "")


def _topic_nodes(tree: dict[str, dict[str, object]], path: str) -> str:
    out = []
    for name, children in tree.items():
        full = f"{path}/{name}" if path else name
        tag = f"tns1:{name}" if not path else name
        if children:
            out.append(f"<{tag}>{_topic_nodes(children, full)}</{tag}>")  # type: ignore[arg-type]
            continue
        spec = BY_TOPIC[full]
        out.append(
            f'<{tag} wstop:topic="true"><tt:MessageDescription IsProperty="true">'
            f'<tt:Source><tt:SimpleItemDescription Name="{spec.source}" Type="tt:ReferenceToken"/></tt:Source>'
            f'<tt:Data><tt:SimpleItemDescription Name="{spec.data}" Type="xs:boolean"/></tt:Data>'
            f"</tt:MessageDescription></{tag}>"
        )
    return "".join(out)


def _notification(message: Notification) -> str:
    return (
        f'<wsnt:NotificationMessage><wsnt:Topic Dialect="{_CONCRETE_SET}">tns1:{message.topic}</wsnt:Topic>'
        f'<wsnt:Message><tt:Message UtcTime="{iso(message.utc_time)}" PropertyOperation="{message.operation}">'
        f'<tt:Source><tt:SimpleItem Name="{message.source_name}" Value="{message.source_value}"/></tt:Source>'
        f'<tt:Data><tt:SimpleItem Name="{message.data_name}" Value="{str(message.state).lower()}"/></tt:Data>'
        "</tt:Message></wsnt:Message></wsnt:NotificationMessage>"
    )
