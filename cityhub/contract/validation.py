"""Validation of an incoming device message against the contract, with stable reject reasons.

The hub calls ``validate_message`` on every message; the edge agent may call it on what it is about to
publish. A message is accepted or rejected whole: a device maker gets one clear reason per message.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from cityhub.contract.payloads import (
    DEVICE_PAYLOADS,
    DeviceMessage,
    EventMessage,
    TelemetryMessage,
)
from cityhub.contract.topics import DeviceTopic, TopicError, Topics


class RejectReason(StrEnum):
    """Why a message was rejected: a metric label, a dead-letter topic level, a log field."""

    BAD_TOPIC = "bad_topic"
    TOO_LARGE = "too_large"
    MALFORMED_JSON = "malformed_json"
    SCHEMA = "schema"
    NON_FINITE_VALUE = "non_finite_value"
    UNKNOWN_VALUE_TYPE = "unknown_value_type"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    IDENTITY_MISMATCH = "identity_mismatch"
    #: The device is not approved in the hub's registry (when registration is enforced): nothing of it is stored.
    UNREGISTERED = "unregistered"


# pydantic error types that deserve their own reason; every other validation error is SCHEMA.
_ERROR_REASONS: dict[str, RejectReason] = {
    "json_invalid": RejectReason.MALFORMED_JSON,
    "finite_number": RejectReason.NON_FINITE_VALUE,
    "non_finite_value": RejectReason.NON_FINITE_VALUE,
    "unknown_value_type": RejectReason.UNKNOWN_VALUE_TYPE,
}


class RejectedMessage(Exception):
    """A message that breaks the contract."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Bounds the hub enforces beyond the schema (configurable: see docs/configuration.md)."""

    max_payload_bytes: int = 256 * 1024
    #: How old a reading or event may be: an edge agent replays what it buffered during an outage.
    max_past_ms: int = 30 * 24 * 3600 * 1000
    #: How far ahead of the hub's clock a timestamp may be (device clocks drift).
    max_future_ms: int = 5 * 60 * 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidMessage:
    """A message that passed every check."""

    topic: DeviceTopic
    message: DeviceMessage


# What a value of another JSON type (object, array) gets from each member of the scalar union.
_UNION_TYPE_ERRORS = frozenset({"float_type", "bool_type", "string_type"})


def _value_of_unknown_type(errors: list[ErrorDetails]) -> str | None:
    """Where a reading's ``value`` failed every member of its union for its JSON type alone."""
    by_field: dict[tuple[int | str, ...], set[str]] = {}
    for error in errors:
        loc = error["loc"]
        if len(loc) >= 2 and loc[-2] == "value":
            by_field.setdefault(loc[:-1], set()).add(error["type"])
    return next((".".join(map(str, loc)) for loc, types in by_field.items() if types == _UNION_TYPE_ERRORS), None)


def _reason_of(exc: ValidationError) -> tuple[RejectReason, str]:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    reason = next((_ERROR_REASONS[e["type"]] for e in errors if e["type"] in _ERROR_REASONS), RejectReason.SCHEMA)
    if reason is RejectReason.SCHEMA and (where := _value_of_unknown_type(errors)):
        return RejectReason.UNKNOWN_VALUE_TYPE, f"{where}: value must be a number, a boolean, a string or null"
    location = ".".join(str(part) for part in first["loc"]) or "(payload)"
    extra = f" (+{len(errors) - 1} more errors)" if len(errors) > 1 else ""
    return reason, f"{location}: {first['msg']}{extra}"


def _check_timestamps(message: DeviceMessage, now_ms: int, limits: Limits) -> None:
    latest = now_ms + limits.max_future_ms
    # Births and statuses are retained: a device up for months keeps an old birth, so only the
    # future bound applies to them.
    if isinstance(message, TelemetryMessage):
        stamps = [r.ts for r in message.readings]
    elif isinstance(message, EventMessage):
        stamps = [e.ts for e in message.events]
    else:
        if message.ts > latest:
            raise RejectedMessage(
                RejectReason.TIMESTAMP_OUT_OF_RANGE, f"ts {message.ts} is ahead of the hub clock {now_ms}"
            )
        return
    earliest = now_ms - limits.max_past_ms
    for index, ts in enumerate(stamps):
        if not earliest <= ts <= latest:
            where = "readings" if isinstance(message, TelemetryMessage) else "events"
            raise RejectedMessage(
                RejectReason.TIMESTAMP_OUT_OF_RANGE,
                f"{where}.{index}.ts {ts} is outside [{earliest}, {latest}] (hub clock {now_ms})",
            )


def validate_message(topics: Topics, topic: str, payload: bytes, *, now_ms: int, limits: Limits) -> ValidMessage:
    """Validate one device message; raise RejectedMessage with a stable reason if it breaks the contract."""
    try:
        parsed_topic = topics.parse(topic)
    except TopicError as exc:
        raise RejectedMessage(RejectReason.BAD_TOPIC, exc.detail) from None
    if len(payload) > limits.max_payload_bytes:
        raise RejectedMessage(
            RejectReason.TOO_LARGE, f"payload of {len(payload)} bytes exceeds {limits.max_payload_bytes}"
        )
    model = DEVICE_PAYLOADS[parsed_topic.kind.value]
    try:
        # Strict: "1" is not a number nor "yes" a boolean, exactly as the published JSON Schemas say.
        message: DeviceMessage = model.model_validate_json(payload, strict=True)  # type: ignore[assignment]
    except ValidationError as exc:
        raise RejectedMessage(*_reason_of(exc)) from None
    if message.device != parsed_topic.device or message.site != parsed_topic.site:
        raise RejectedMessage(
            RejectReason.IDENTITY_MISMATCH,
            f"payload claims {message.site}/{message.device} on the topic of {parsed_topic.site}/{parsed_topic.device}",
        )
    _check_timestamps(message, now_ms, limits)
    return ValidMessage(topic=parsed_topic, message=message)
