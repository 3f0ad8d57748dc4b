"""ONVIF event topics the driver understands, and the contract event each becomes.

Topics are those of the ONVIF Core spec (section 9, "Event handling") and the ONVIF Analytics and Video
Source topic sets; cameras name the same condition under different topics, so several map to one
event type. The simulator emits the same topics, from this table.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Namespaces of the ONVIF messages (ONVIF Core spec, section 5.3).
NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "ter": "http://www.onvif.org/ver10/error",
    "tns1": "http://www.onvif.org/ver10/topics",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wstop": "http://docs.oasis-open.org/wsn/t-1",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "wsrf-rw": "http://docs.oasis-open.org/wsrf/rw-2",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicSpec:
    """One ONVIF topic: where its state is and which contract event it becomes."""

    topic: str  # without the tns1: prefix
    event: str  # contract event type
    data: str  # name of the boolean SimpleItem in the message's Data
    source: str  # name of the SimpleItem in the message's Source that says which input or source


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        topic="RuleEngine/CellMotionDetector/Motion",
        event="camera.motion",
        data="IsMotion",
        source="VideoSourceConfigurationToken",
    ),
    TopicSpec(topic="VideoSource/MotionAlarm", event="camera.motion", data="State", source="Source"),
    TopicSpec(
        topic="RuleEngine/TamperDetector/Tamper",
        event="camera.tamper",
        data="IsTamper",
        source="VideoSourceConfigurationToken",
    ),
    TopicSpec(
        topic="VideoSource/GlobalSceneChange/ImagingService", event="camera.tamper", data="State", source="Source"
    ),
    TopicSpec(topic="VideoSource/SignalLoss", event="camera.video_loss", data="State", source="Source"),
    TopicSpec(
        topic="Device/Trigger/DigitalInput", event="camera.digital_input", data="LogicalState", source="InputToken"
    ),
)

BY_TOPIC: dict[str, TopicSpec] = {spec.topic: spec for spec in TOPICS}

#: Every event type a camera may report (pushed ones from topics, then the driver's own).
EVENT_TYPES: tuple[str, ...] = (
    "camera.motion",
    "camera.tamper",
    "camera.video_loss",
    "camera.digital_input",
    "camera.offline",
    "camera.auth_failed",
    "camera.not_onvif",
    "camera.snapshot_frozen",
)


def strip_prefix(topic: str) -> str:
    """``tns1:VideoSource/SignalLoss`` -> ``VideoSource/SignalLoss`` (the prefix is the sender's choice)."""
    return "/".join(part.rpartition(":")[2] for part in topic.strip().split("/"))
