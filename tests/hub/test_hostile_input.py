"""Hostile input through the real broker while valid traffic flows: the hub never crashes, stores no
invalid point, stores every valid one, and counts every reject with its reason."""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from hubtools import HubProcess, hub_settings, influx_count
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from services import InfluxDBServer, MosquittoServer

from cityhub.contract import Limits, MessageKind, RejectedMessage, RejectReason, Topics, validate_message

SITE, GOOD, EVIL = "cjt", "good-01", "evil-01"


def telemetry(device_id: str, number: int, ts: int, **overrides: Any) -> dict[str, Any]:
    """A valid telemetry message, or a near miss with ``overrides`` replacing fields."""
    message = {
        "device": device_id,
        "site": SITE,
        "kind": "environment_sensor",
        "boot": 1,
        "seq": number,
        "readings": [{"metric": "environment.temperature", "value": 21.5, "unit": "Cel", "ts": ts}],
    }
    message.update(overrides)
    return message


def handwritten_bad_cases(topics: Topics, now: int) -> list[tuple[str, bytes]]:
    """One message or more for every reject reason the broker lets through."""
    evil = topics.device(SITE, EVIL, MessageKind.TELEMETRY)
    reading = {"metric": "evil.x", "value": 1, "ts": now}

    def with_reading(**fields: Any) -> bytes:
        return json.dumps(telemetry(EVIL, 1, now, readings=[{**reading, **fields}])).encode()

    return [
        (evil, b"{not json"),
        (evil, b"\xff\xfe garbage"),
        (evil, b""),
        (evil, b"[1, 2, 3]"),
        (evil, b'{"device": "evil-01"}'),
        (
            evil,
            b'{"device":"evil-01","site":"cjt","kind":"x","boot":1,"seq":1,"readings":[{"metric":"evil.x",'
            b'"value":NaN,"ts":' + str(now).encode() + b"}]}",
        ),
        (
            evil,
            b'{"device":"evil-01","site":"cjt","kind":"x","boot":1,"seq":1,"readings":[{"metric":"evil.x",'
            b'"value":Infinity,"ts":' + str(now).encode() + b"}]}",
        ),
        (evil, with_reading(value={"nested": True})),
        (evil, with_reading(value=[1, 2])),
        (evil, with_reading(ts=now + 10 * 86_400_000)),
        (evil, with_reading(ts=now - 400 * 86_400_000)),
        (evil, with_reading(metric="evil.x y=1 2\nevil.z")),
        (evil, with_reading(unit="C\nevil,device=good-01 value=666")),
        (evil, json.dumps(telemetry(GOOD, 1, now)).encode()),  # claims another device
        (evil, b"x" * (Limits().max_payload_bytes + 1)),
        (f"{topics.prefix}/{SITE}/evil 01/telemetry", json.dumps(telemetry("evil-01", 1, now)).encode()),
        (f"{topics.prefix}/{SITE}/evil$01/telemetry", json.dumps(telemetry("evil-01", 1, now)).encode()),
        (f"{topics.prefix}/_x/{EVIL}/telemetry", json.dumps(telemetry(EVIL, 1, now)).encode()),
    ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def generated_payloads(now: int) -> st.SearchStrategy[bytes]:
    """Near-misses of a valid message, random JSON and random bytes."""
    near_miss = st.builds(
        lambda field, value: json.dumps(telemetry(EVIL, 1, now, **{field: value}), allow_nan=True).encode(),
        st.sampled_from(["device", "site", "kind", "boot", "seq", "readings", "extra"]),
        json_values,
    )
    bad_reading = st.builds(
        lambda field, value: json.dumps(
            telemetry(EVIL, 1, now, readings=[{"metric": "evil.x", "value": 1, "ts": now, field: value}]),
            allow_nan=True,
        ).encode(),
        st.sampled_from(["metric", "value", "unit", "ts", "quality", "junk"]),
        json_values,
    )
    return (
        near_miss
        | bad_reading
        | json_values.map(lambda v: json.dumps(v, allow_nan=True).encode())
        | st.binary(max_size=200)
    )


class Publisher:
    """A plain paho client that waits for each PUBACK."""

    def __init__(self, url_port: int) -> None:
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"hostile-{uuid.uuid4()}", protocol=paho.MQTTv5
        )
        self.client.connect("127.0.0.1", url_port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def reject_counts(port: int) -> Counter[str]:
    """The hub's reject counters by reason, read from its /metrics endpoint."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    pattern = r'^cityhub_hub_messages_rejected_total\{reason="([a-z_]+)"\} (\S+)$'
    return Counter({reason: int(float(value)) for reason, value in re.findall(pattern, text, re.M)})


def test_hostile_input_is_rejected_and_counted_while_valid_traffic_is_stored(
    tmp_path: Path, fresh_mosquitto: MosquittoServer, fresh_influxdb: InfluxDBServer
) -> None:
    # Servers of its own: 4,000 messages and a database that nothing else shares.
    mosquitto, influxdb = fresh_mosquitto, fresh_influxdb
    suffix = uuid.uuid4().hex[:8]
    db, root = f"hostile_{suffix}", f"root{suffix}"
    topics = Topics(root)
    hub = HubProcess(
        hub_settings(
            tmp_path, mosquitto.url, influx=influxdb, db=db, client_id=f"hub-{suffix}", mqtt={"topic_root": root}
        ),
        tmp_path,
    )
    hub.start()
    publisher = Publisher(mosquitto.port)
    try:
        hub.wait_ready()  # subscribed: nothing published below is sent before the hub can receive it
        now = int(time.time() * 1000)
        expected: Counter[str] = Counter()
        good = {"seq": 0}

        def send_bad(topic: str, payload: bytes) -> None:
            try:
                validate_message(topics, topic, payload, now_ms=now, limits=Limits())
            except RejectedMessage as exc:
                expected[exc.reason.value] += 1
                publisher.send(topic, payload)
                good["seq"] += 1  # a valid message after every bad one
                publisher.send(
                    topics.device(SITE, GOOD, MessageKind.TELEMETRY),
                    json.dumps(telemetry(GOOD, good["seq"], now - good["seq"])).encode(),
                )
                return
            raise AssertionError(f"a hostile case is valid: {payload[:200]!r}")

        for topic, payload in handwritten_bad_cases(topics, now):
            send_bad(topic, payload)
        # Every reason of the contract's validation is exercised; `unregistered` comes from the registry,
        # not from the message (tests/hub/registry).
        assert set(expected) == {reason.value for reason in RejectReason} - {RejectReason.UNREGISTERED.value}

        @settings(max_examples=2_000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(generated_payloads(now))
        def fuzz(payload: bytes) -> None:
            try:
                validate_message(
                    topics, topics.device(SITE, EVIL, MessageKind.TELEMETRY), payload, now_ms=now, limits=Limits()
                )
            except RejectedMessage:
                send_bad(topics.device(SITE, EVIL, MessageKind.TELEMETRY), payload)

        fuzz()
        total_bad = sum(expected.values())
        assert total_bad > 1_500

        deadline = time.time() + 60
        while time.time() < deadline and (
            influx_count(influxdb, db, "environment") < good["seq"]
            or sum(reject_counts(hub.http_port).values()) < total_bad
        ):
            time.sleep(0.5)
        assert hub.alive, "the hub died"
        assert influx_count(influxdb, db, "environment") == good["seq"]  # every valid point, once
        measurements = influxdb.query("SHOW MEASUREMENTS", db=db)["results"][0]["series"][0]["values"]
        assert measurements == [["environment"]]  # no invalid point anywhere
        evil_series = influxdb.query(f"SHOW SERIES WHERE \"device\" = '{EVIL}'", db=db)["results"][0]
        assert "series" not in evil_series
        assert reject_counts(hub.http_port) == expected
    except BaseException:
        print(hub.diagnosis(mosquitto, influxdb))
        raise
    finally:
        publisher.close()
        hub.stop()
