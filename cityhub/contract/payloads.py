"""Payloads of the cityhub MQTT contract, version 1: one pydantic model per message kind.

These models are the single source of truth: the edge agent builds payloads with them, the hub
validates with them, and docs/schemas/*.schema.json are generated from them (a test keeps the
published schemas and the code identical).

All timestamps are integer milliseconds since the Unix epoch (UTC), as in Sparkplug B.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from cityhub.contract.topics import ID_PATTERN

#: 2**53 - 1: the largest integer every JSON implementation (JavaScript included) reads exactly.
MAX_SAFE_INT = 9_007_199_254_740_991

SiteId = Annotated[str, Field(pattern=ID_PATTERN, description="Site id; equals the site level of the topic")]
DeviceId = Annotated[str, Field(pattern=ID_PATTERN, description="Device id; equals the device level of the topic")]
DeviceKind = Annotated[
    str,
    Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="Kind of device, e.g. ups, camera, climate"),
]
#: Metric families the hub writes itself; a device metric may not use them.
RESERVED_FAMILIES = frozenset({"events", "device_birth", "device_status", "hub_stats"})


def _not_reserved(metric: str) -> str:
    if metric.partition(".")[0] in RESERVED_FAMILIES:
        raise PydanticCustomError(
            "reserved_metric_family",
            "metric family '{family}' is reserved for the hub's own measurements",
            {"family": metric.split(".", 1)[0]},
        )
    return metric


MetricName = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}(\.[a-z0-9_]{1,64}){0,7}$",
        max_length=256,
        description="Dotted metric name; its first level is the metric family (InfluxDB measurement); "
        "the families events, device_birth, device_status and hub_stats are reserved",
    ),
    AfterValidator(_not_reserved),
]
EventType = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}(\.[a-z0-9_]{1,64}){0,7}$",
        max_length=256,
        description="Dotted event type, e.g. ups.on_battery, camera.tamper",
    ),
]
TimestampMs = Annotated[int, Field(ge=0, le=MAX_SAFE_INT, description="Milliseconds since the Unix epoch")]
BootId = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_SAFE_INT,
        description="Grows at every device start (its start time in ms is a good choice); scopes seq",
    ),
]
Sequence = Annotated[int, Field(ge=0, le=MAX_SAFE_INT, description="Per-device message counter in one boot")]
ShortText = Annotated[str, Field(max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def short_text(text: str | None, limit: int = 128) -> str | None:
    """``text`` made fit for a ShortText field: control characters become spaces, the end is cut to ``limit``.

    For text a publisher takes from a device (an error, a camera's model name): the device's words must
    not make its message invalid.
    """
    if text is None:
        return None
    text = _CONTROL.sub(" ", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


Unit = Annotated[str, Field(max_length=32, pattern=r"^[^\x00-\x1f\x7f\\]*$", description="UCUM-style unit")]


def _scalar(value: object) -> object:
    """Refuse value types the contract does not know, and non-finite numbers, with a clear reason."""
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError(
            "non_finite_value", "value must be a finite number, not {value}", {"value": str(value)}
        )
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise PydanticCustomError(
        "unknown_value_type",
        "value must be a number, a boolean, a string or null, not {type}",
        {"type": type(value).__name__},
    )


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise PydanticCustomError("non_finite_value", "value must be a finite number")
    return value


# No Python validator here: this runs for every reading, so the type checks stay in pydantic's core and
# validation.py names the reason (an object or array fails all three members: unknown_value_type).
ScalarValue = float | bool | Annotated[str, Field(max_length=1024)] | None
AttributeValue = Annotated[
    Annotated[float, AfterValidator(_finite)] | bool | Annotated[str, Field(max_length=256)],
    BeforeValidator(_scalar),
]


class Quality(StrEnum):
    """How far a reading can be trusted (OPC UA's three classes)."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


class _Model(BaseModel):
    # Unknown fields are refused: a typo in a device's payload is an error the maker sees at once.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Envelope(_Model):
    device: DeviceId
    site: SiteId
    kind: DeviceKind


class Reading(_Model):
    """One value of one metric at one time."""

    metric: MetricName
    value: ScalarValue = None
    unit: Unit | None = None
    ts: TimestampMs
    quality: Quality = Quality.GOOD

    @model_validator(mode="after")
    def _value_present_when_good(self) -> Reading:
        if self.value is None and self.quality is Quality.GOOD:
            raise PydanticCustomError("missing_value", "a reading of good quality must carry a value")
        return self


class TelemetryMessage(_Envelope):
    """A batch of readings from one device: topic ``.../{site}/{device}/telemetry``."""

    boot: BootId
    seq: Sequence
    historical: bool = Field(
        default=False,
        description="True when the sender buffered it (broker away, or behind a backlog): replayed data, "
        "stored as usual but not live (rules must not alert on it as if it were happening now)",
    )
    readings: list[Reading] = Field(min_length=1, max_length=10_000)


class DeviceEvent(_Model):
    """A discrete state change: a camera's tamper alarm, a UPS going on battery."""

    type: EventType
    ts: TimestampMs
    active: bool = Field(default=True, description="True when the condition starts, false when it clears")
    message: Annotated[str, Field(max_length=512)] | None = None
    attributes: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")], AttributeValue] = Field(
        default_factory=dict, max_length=32
    )


class EventMessage(_Envelope):
    """One or more events from one device: topic ``.../{site}/{device}/event``."""

    boot: BootId
    seq: Sequence
    historical: bool = Field(
        default=False,
        description="True when the sender buffered it (broker away, or behind a backlog): replayed data, "
        "stored as usual but not live (rules must not alert on it as if it were happening now)",
    )
    events: list[DeviceEvent] = Field(min_length=1, max_length=1_000)


class MetricSpec(_Model):
    """A metric a device announces in its birth."""

    metric: MetricName
    type: Literal["float", "int", "bool", "string"]
    unit: Unit | None = None
    description: Annotated[str, Field(max_length=256)] | None = None


class BirthMessage(_Envelope):
    """What a device is and what it will send: topic ``.../{site}/{device}/birth``, retained."""

    boot: BootId
    ts: TimestampMs
    profile: ShortText | None = None
    maker: ShortText | None = None
    model: ShortText | None = None
    firmware: ShortText | None = None
    serial: ShortText | None = None
    software: ShortText | None = Field(default=None, description="Agent or firmware that publishes")
    heartbeat_s: int | None = Field(
        default=None, ge=1, le=86_400, description="The device publishes at least this often"
    )
    gateway: Annotated[str, Field(pattern=ID_PATTERN.rstrip("$") + "/" + ID_PATTERN[1:])] | None = Field(
        default=None,
        description="'site/device' of the edge agent this device publishes through: when the agent goes "
        "offline (its last will), so does this device",
    )
    metrics: list[MetricSpec] = Field(default_factory=list, max_length=10_000)
    events: list[EventType] = Field(default_factory=list, max_length=1_000)


class StatusMessage(_Envelope):
    """Online or offline: topic ``.../{site}/{device}/status``, retained; ``offline`` is the last will."""

    state: Literal["online", "offline"]
    boot: BootId
    ts: TimestampMs = Field(description="When the state began; in a last will, the connect time")
    will: bool = Field(
        default=False,
        description="True in the last will: the hub then records the time the broker published it",
    )
    reason: ShortText | None = None


class DeadLetterMessage(_Model):
    """A rejected message, republished by the hub on ``.../_hub/deadletter/{reason}``."""

    reason: str
    detail: str
    topic: str
    payload: str = Field(description="The original payload, truncated; see payload_encoding")
    payload_encoding: Literal["utf-8", "base64"]
    payload_size: int = Field(ge=0, description="Size in bytes of the original payload")
    received_at: TimestampMs
    hub: str


#: Every device-published model, by the topic's last level.
DEVICE_PAYLOADS: dict[str, type[_Envelope]] = {
    "telemetry": TelemetryMessage,
    "event": EventMessage,
    "birth": BirthMessage,
    "status": StatusMessage,
}

DeviceMessage = TelemetryMessage | EventMessage | BirthMessage | StatusMessage
