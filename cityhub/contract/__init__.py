"""The cityhub MQTT contract, shared by the edge agent and the hub: topics, payloads, validation."""

from cityhub.contract.payloads import (
    BirthMessage,
    DeadLetterMessage,
    DeviceEvent,
    DeviceMessage,
    EventMessage,
    MetricSpec,
    Quality,
    Reading,
    StatusMessage,
    TelemetryMessage,
    short_text,
)
from cityhub.contract.topics import QOS, RETAIN, DeviceTopic, MessageKind, TopicError, Topics
from cityhub.contract.validation import Limits, RejectedMessage, RejectReason, ValidMessage, validate_message

__all__ = [
    "QOS",
    "RETAIN",
    "BirthMessage",
    "DeadLetterMessage",
    "DeviceEvent",
    "DeviceMessage",
    "DeviceTopic",
    "EventMessage",
    "Limits",
    "MessageKind",
    "MetricSpec",
    "Quality",
    "Reading",
    "RejectReason",
    "RejectedMessage",
    "StatusMessage",
    "TelemetryMessage",
    "TopicError",
    "Topics",
    "ValidMessage",
    "short_text",
    "validate_message",
]
