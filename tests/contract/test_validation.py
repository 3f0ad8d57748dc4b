"""Validation of device messages: every bad case gets its own stable reason, good ones pass."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cityhub.contract import Limits, RejectedMessage, RejectReason, TelemetryMessage, Topics, validate_message

NOW = 1_790_000_000_000
TOPIC = "cityhub/v1/cjt/ups-01/telemetry"


def telemetry(**overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "device": "ups-01",
        "site": "cjt",
        "kind": "ups",
        "boot": NOW - 10_000,
        "seq": 7,
        "readings": [{"metric": "battery.charge", "value": 97.5, "unit": "%", "ts": NOW - 1_000}],
    }
    message.update(overrides)
    return message


def validate(payload: bytes | dict[str, Any], topic: str = TOPIC, limits: Limits | None = None) -> Any:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return validate_message(Topics(), topic, raw, now_ms=NOW, limits=limits or Limits())


def reason_of(payload: bytes | dict[str, Any], topic: str = TOPIC, limits: Limits | None = None) -> RejectReason:
    with pytest.raises(RejectedMessage) as caught:
        validate(payload, topic, limits)
    assert caught.value.detail  # every reject says what is wrong
    return caught.value.reason


def test_valid_telemetry_passes() -> None:
    valid = validate(telemetry())
    assert isinstance(valid.message, TelemetryMessage)
    assert valid.message.readings[0].value == 97.5
    assert valid.topic.device == "ups-01"


@pytest.mark.parametrize("value", [True, 3, -1.5e-9, "OL CHRG"])
def test_scalar_value_types_pass(value: object) -> None:
    reading = {"metric": "ups.status", "value": value, "ts": NOW}
    assert validate(telemetry(readings=[reading])).message.readings[0].value == value


def test_bad_quality_reading_may_omit_the_value() -> None:
    reading = {"metric": "battery.charge", "quality": "bad", "ts": NOW}
    assert validate(telemetry(readings=[reading])).message.readings[0].value is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", RejectReason.MALFORMED_JSON),
        (b"\xff\xfe\x00", RejectReason.MALFORMED_JSON),
        (b"", RejectReason.MALFORMED_JSON),
        (b"[]", RejectReason.SCHEMA),
        (b'{"device": "ups-01"}', RejectReason.SCHEMA),
        (
            b'{"device":"ups-01","site":"cjt","kind":"ups","boot":1,"seq":1,"readings":[{"metric":"a.b","value":NaN,'
            b'"ts":1790000000000}]}',
            RejectReason.NON_FINITE_VALUE,
        ),
        (
            b'{"device":"ups-01","site":"cjt","kind":"ups","boot":1,"seq":1,"readings":[{"metric":"a.b",'
            b'"value":-Infinity,"ts":1790000000000}]}',
            RejectReason.NON_FINITE_VALUE,
        ),
        (
            b'{"device":"ups-01","site":"cjt","kind":"ups","boot":1,"seq":1,"readings":[{"metric":"a.b","value":1e999,'
            b'"ts":1790000000000}]}',
            RejectReason.NON_FINITE_VALUE,
        ),
    ],
)
def test_raw_payloads_are_rejected_with_their_reason(payload: bytes, reason: RejectReason) -> None:
    assert reason_of(payload) is reason


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"readings": [{"metric": "a.b", "value": {"x": 1}, "ts": NOW}]}, RejectReason.UNKNOWN_VALUE_TYPE),
        ({"readings": [{"metric": "a.b", "value": [1, 2], "ts": NOW}]}, RejectReason.UNKNOWN_VALUE_TYPE),
        ({"readings": [{"metric": "a.b", "value": 1, "ts": NOW + 3_600_000}]}, RejectReason.TIMESTAMP_OUT_OF_RANGE),
        ({"readings": [{"metric": "a.b", "value": 1, "ts": 0}]}, RejectReason.TIMESTAMP_OUT_OF_RANGE),
        ({"readings": [{"metric": "a.b", "value": 1, "ts": -5}]}, RejectReason.SCHEMA),
        ({"readings": [{"metric": "Bad Metric", "value": 1, "ts": NOW}]}, RejectReason.SCHEMA),
        ({"readings": [{"metric": "a.b", "ts": NOW}]}, RejectReason.SCHEMA),  # good quality needs a value
        ({"readings": [{"metric": "a.b", "value": 1, "ts": NOW, "unit": "m\nx"}]}, RejectReason.SCHEMA),
        ({"readings": [{"metric": "a.b", "value": 1, "ts": NOW, "vaule": 2}]}, RejectReason.SCHEMA),
        ({"readings": []}, RejectReason.SCHEMA),
        ({"seq": -1}, RejectReason.SCHEMA),
        ({"device": "ups-02"}, RejectReason.IDENTITY_MISMATCH),
        ({"site": "palace"}, RejectReason.IDENTITY_MISMATCH),
        ({"kind": "UPS"}, RejectReason.SCHEMA),
        ({"seq": "7"}, RejectReason.SCHEMA),  # strict JSON: a string is not a number
        ({"seq": 7.0}, RejectReason.SCHEMA),
        ({"readings": [{"metric": "a.b", "value": 1, "ts": str(NOW)}]}, RejectReason.SCHEMA),
        ({"readings": [{"metric": "events.x", "value": 1, "ts": NOW}]}, RejectReason.SCHEMA),  # reserved family
        ({"readings": [{"metric": "device_status", "value": 1, "ts": NOW}]}, RejectReason.SCHEMA),
    ],
)
def test_bad_telemetry_is_rejected_with_its_reason(overrides: dict[str, Any], reason: RejectReason) -> None:
    assert reason_of(telemetry(**overrides)) is reason


def test_oversized_payload_is_rejected_before_parsing() -> None:
    payload = json.dumps(telemetry()).encode()
    assert reason_of(payload, limits=Limits(max_payload_bytes=len(payload) - 1)) is RejectReason.TOO_LARGE


@pytest.mark.parametrize("topic", ["cityhub/v1/cjt/ups+01/telemetry", "cityhub/v1/cjt/ups\x0001/telemetry"])
def test_bad_topics_are_rejected(topic: str) -> None:
    assert reason_of(telemetry(), topic=topic) is RejectReason.BAD_TOPIC


def test_old_retained_birth_is_accepted_but_a_future_one_is_not() -> None:
    birth = {"device": "ups-01", "site": "cjt", "kind": "ups", "boot": 1, "ts": NOW - 400 * 86_400_000}
    assert validate(birth, topic="cityhub/v1/cjt/ups-01/birth").message.ts == birth["ts"]
    birth["ts"] = NOW + 86_400_000
    assert reason_of(birth, topic="cityhub/v1/cjt/ups-01/birth") is RejectReason.TIMESTAMP_OUT_OF_RANGE


def test_event_attribute_must_be_finite() -> None:
    event = (
        b'{"device":"ups-01","site":"cjt","kind":"ups","boot":1,"seq":1,"events":[{"type":"ups.on_battery",'
        b'"ts":1790000000000,"attributes":{"load":NaN}}]}'
    )
    assert reason_of(event, topic="cityhub/v1/cjt/ups-01/event") is RejectReason.NON_FINITE_VALUE
