"""Helpers for edge agent tests: configurations, the agent in-process or in its own process, a raw MQTT
recorder that checks the agent against nothing of its own, and read-backs from InfluxDB and the queue file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from services import InfluxDBServer
from testkit import CityhubProcess

from cityhub.mqtt import BrokerAddress
from drivers.modbus.codec import Value
from edge_agent.agent import EdgeAgent
from edge_agent.config import load_agent_config

SITE = "cjt-server-room"


def agent_config(
    data_dir: Path,
    *,
    agent_id: str,
    mqtt_url: str,
    topic_root: str,
    lines: dict[str, int],
    devices: list[dict[str, Any]],
    http_port: int | None = None,
    line_timeout_s: float = 0.5,
    **sections: dict[str, Any],
) -> dict[str, Any]:
    """An agent's configuration as the YAML file holds it; ``lines`` maps line names to simulator TCP ports."""
    data: dict[str, Any] = {
        "agent": {"id": agent_id, "site": SITE},
        "data_dir": str(data_dir),
        "mqtt": {"url": mqtt_url, "topic_root": topic_root, "client_id": f"agent-{agent_id}"},
        "http": {"port": http_port},
        "lines": [
            {"name": name, "transport": "tcp", "host": "127.0.0.1", "port": port, "timeout_s": line_timeout_s}
            for name, port in lines.items()
        ],
        "devices": devices,
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return data


def write_agent_config(path: Path, data: dict[str, Any]) -> Path:
    """Write the configuration as YAML, the way an operator would."""
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


class AgentRun:
    """An ``EdgeAgent`` loaded from its YAML file, running in this event loop until ``stop()``."""

    def __init__(self, config_path: Path) -> None:
        config, profiles = load_agent_config(config_path)
        self.agent = EdgeAgent(config, profiles)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float = 20.0) -> None:
        """Start it and wait until it runs."""
        self._task = asyncio.create_task(self.agent.run(self._stop), name="edge-agent")
        ready = asyncio.create_task(self.agent.ready.wait())
        await asyncio.wait([self._task, ready], timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if self._task.done():
            self._task.result()  # raises the agent's start-up error
        assert self.agent.ready.is_set(), "the agent did not become ready"

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Stop it cleanly (the agent drains its queue and says goodbye) and wait for the end."""
        if self._task is None:
            return
        self._stop.set()
        task, self._task = self._task, None
        await asyncio.wait_for(task, timeout_s)


@contextlib.asynccontextmanager
async def running_agent(config_path: Path) -> AsyncIterator[AgentRun]:
    """An agent running in this event loop for the block (stopped cleanly at the end if still running)."""
    run = AgentRun(config_path)
    await run.start()
    try:
        yield run
    finally:
        await run.stop()


class AgentProcess(CityhubProcess):
    """``cityhub agent --config`` in a process of its own, for SIGKILL tests."""

    def __init__(self, config_path: Path, http_port: int) -> None:
        super().__init__("agent", config_path, http_port)


@dataclass(frozen=True, slots=True)
class Received:
    """A contract message as a subscriber of the broker got it."""

    device: str
    kind: str  # telemetry or event
    boot: int
    seq: int
    body: dict[str, Any]


class Recorder:
    """A plain paho client with a persistent session (MQTT 3.1.1, clean session off) recording messages.

    It shares no code with the agent or the hub, so what it records is what the broker delivered. Its
    session outlives a broker restart (Mosquitto persists it), so nothing published while it reconnects
    is missed.
    """

    def __init__(self, url: str, topic_filters: list[str], client_id: str) -> None:
        self.address = BrokerAddress.from_url(url)
        self.topic_filters = topic_filters
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv311,
            clean_session=False,
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect, subscribe, and keep reconnecting in paho's thread until ``stop``."""
        self._client.connect(self.address.host, self.address.port, keepalive=10)
        self._client.loop_start()
        if not self._subscribed.wait(timeout_s):
            raise AssertionError("the recorder's subscriptions were not acknowledged")

    def stop(self) -> None:
        """Disconnect and stop paho's thread."""
        self._client.disconnect()
        self._client.loop_stop()

    async def __aenter__(self) -> Recorder:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)

    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if not reason.is_failure:
            client.subscribe([(topic_filter, 1) for topic_filter in self.topic_filters])

    def _on_subscribe(self, _client: paho.Client, _userdata: Any, _mid: int, _reasons: Any, _props: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        body = json.loads(message.payload)
        kind = message.topic.rpartition("/")[2]
        with self._lock:
            self.messages.append(Received(body["device"], kind, body["boot"], body["seq"], body))

    def snapshot(self) -> list[Received]:
        """Everything received so far, in arrival order (duplicates included)."""
        with self._lock:
            return list(self.messages)


def first_copies(messages: list[Received]) -> dict[str, list[Received]]:
    """Per device, the first copy of each (boot, seq), in arrival order."""
    seen: set[tuple[str, int, int]] = set()
    by_device: dict[str, list[Received]] = {}
    for message in messages:
        key = (message.device, message.boot, message.seq)
        if key not in seen:
            seen.add(key)
            by_device.setdefault(message.device, []).append(message)
    return by_device


def queue_file_totals(path: Path) -> tuple[int, int]:
    """(messages still queued, id of the newest message ever appended) of a closed agent queue file."""
    connection = sqlite3.connect(path)
    try:
        (rows,) = connection.execute("SELECT count(*) FROM outbound").fetchone()
        row = connection.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbound'").fetchone()
        return int(rows), int(row[0]) if row else 0
    finally:
        connection.close()


def influx_series(influxdb: InfluxDBServer, db: str, query: str) -> list[dict[str, Any]]:
    """The series of a query's answer ([] when there is none): measurement, tags, and rows as dicts by column.

    ``GROUP BY *`` over several measurements gives every series every tag key; the empty ones are left out.
    """
    try:
        answer = influxdb.query(query, db=db)
    except RuntimeError:
        return []
    series = answer["results"][0].get("series", [])
    return [
        {
            "name": s["name"],
            "tags": {key: value for key, value in s.get("tags", {}).items() if value},
            "rows": [dict(zip(s["columns"], row, strict=True)) for row in s["values"]],
        }
        for s in series
    ]


def stored_value(value: Value) -> tuple[str, float | str]:
    """The field a reading's value lands in, and what it holds (docs/storage.md: booleans as 1.0/0.0)."""
    if isinstance(value, str):
        return "text", value
    return "value", float(value)
