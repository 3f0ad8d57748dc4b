"""Recordings of live MQTT traffic: one JSON line per message, with the time it arrived.

Format (JSON Lines, UTF-8)::

    {"t": 1732400000123, "topic": "cityhub/v1/palace/ups-1/event", "payload": "{...}"}

``payload_b64`` replaces ``payload`` when the bytes are not UTF-8, so a recording keeps hostile input too.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cityhub.contract import MessageKind, Topics
from cityhub.mqtt import BrokerAddress, MqttSession, SessionOptions


class RecordingError(ValueError):
    """A recording file that cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One message as it arrived."""

    t_ms: int
    topic: str
    payload: bytes


def dump_record(record: Record) -> str:
    """The JSON line of a record (without the newline)."""
    line: dict[str, object] = {"t": record.t_ms, "topic": record.topic}
    try:
        line["payload"] = record.payload.decode("utf-8")
    except UnicodeDecodeError:
        line["payload_b64"] = base64.b64encode(record.payload).decode("ascii")
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def read_recording(path: Path) -> Iterator[Record]:
    """The records of a file, in order; RecordingError names the first bad line."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield _parse(line, f"{path}:{number}")


def _parse(line: str, where: str) -> Record:
    try:
        data = json.loads(line)
        t_ms, topic = data["t"], data["topic"]
        if "payload" in data:
            payload = str(data["payload"]).encode("utf-8")
        else:
            payload = base64.b64decode(data["payload_b64"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise RecordingError(f"{where}: not a recording line ({type(exc).__name__}: {exc})") from None
    if not isinstance(t_ms, int) or isinstance(t_ms, bool) or not isinstance(topic, str):
        raise RecordingError(f"{where}: 't' must be integer milliseconds and 'topic' a string")
    return Record(t_ms=t_ms, topic=topic, payload=payload)


async def record(
    mqtt_url: str,
    out: IO[str],
    *,
    topic_root: str = "cityhub",
    stop: asyncio.Event,
    client_id: str = "cityhub-recorder",
    protocol: int = 5,
) -> int:
    """Write every device message under ``topic_root`` to ``out`` until ``stop``; return how many."""
    topics = Topics(root=topic_root)
    filters = [(topics.subscription(kind), 1) for kind in MessageKind]
    options = SessionOptions(client_id=client_id, protocol=protocol, subscriptions=filters)
    count = 0
    async with MqttSession(BrokerAddress.from_url(mqtt_url), options) as session:
        while not stop.is_set():
            for message in await session.receive(1000, 0.2):
                arrived = Record(t_ms=int(time.time() * 1000), topic=message.topic, payload=message.payload)
                out.write(dump_record(arrived) + "\n")
                count += 1
            out.flush()
    return count
