"""The private test servers of tests/services.py really work (and keep their data over restarts)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from services import InfluxDBServer, MosquittoServer, free_port

TIMEOUT = 5.0


class Collector:
    """A paho 2.x client (v2 callback API) that records what it receives."""

    def __init__(self, server: MosquittoServer, client_id: str = "", clean_session: bool = True) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
        )
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.messages: list[mqtt.MQTTMessage] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.server = server

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not reason_code.is_failure:
            self.connected.set()

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    @contextmanager
    def running(self) -> Iterator[Collector]:
        self.client.connect(self.server.host, self.server.port, keepalive=10)
        self.client.loop_start()
        try:
            assert self.connected.wait(TIMEOUT), "no CONNACK"
            yield self
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=qos)
        assert self.subscribed.wait(TIMEOUT), f"no SUBACK for {topic}"

    def wait_for(self, count: int, timeout: float = TIMEOUT) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return list(self.messages)


def publish(server: MosquittoServer, messages: list[tuple[str, bytes, bool]], qos: int = 1) -> None:
    """Publish (topic, payload, retain) tuples and wait until the broker acknowledged all of them."""
    collector = Collector(server)
    with collector.running():
        infos = [collector.client.publish(t, p, qos=qos, retain=r) for t, p, r in messages]
        for info in infos:
            info.wait_for_publish(TIMEOUT)
            assert info.is_published()


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


# -- helpers ------------------------------------------------------------------------------------------


def test_free_port_is_bindable_and_not_repeated() -> None:
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    assert all(1024 <= p <= 65535 for p in ports)


# -- Mosquitto ------------------------------------------------------------------------------------------


def test_mosquitto_publish_subscribe_round_trip(mosquitto: MosquittoServer) -> None:
    assert mosquitto.running
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    topic = unique("roundtrip") + "/temperature"
    with Collector(mosquitto).running() as sub:
        sub.subscribe(topic)
        publish(mosquitto, [(topic, b"21.5", False)])
        received = sub.wait_for(1)
    assert [(m.topic, m.payload) for m in received] == [(topic, b"21.5")]


def test_mosquitto_restart_keeps_retained_message_and_offline_queue(
    fresh_mosquitto: MosquittoServer,
) -> None:
    server = fresh_mosquitto
    port = server.port
    client_id = unique("persistent")
    # A persistent session subscribes, then goes offline.
    with Collector(server, client_id, clean_session=False).running() as sub:
        sub.subscribe("queue/#")
    # More QoS 1 messages than mosquitto's default max_queued_messages (1000) pile up for it,
    # plus one retained message.
    count = 1500
    publish(server, [(f"queue/{i}", str(i).encode(), False) for i in range(count)])
    publish(server, [("state/retained", b"kept", True)])

    server.restart()  # SIGTERM: mosquitto saves its database on the way out
    assert server.running
    assert server.port == port

    with Collector(server).running() as fresh:
        fresh.subscribe("state/#")
        retained = fresh.wait_for(1)
    assert [(m.topic, m.payload, m.retain) for m in retained] == [("state/retained", b"kept", True)]

    with Collector(server, client_id, clean_session=False).running() as sub:
        queued = sub.wait_for(count, timeout=15)
    assert sorted(int(m.payload) for m in queued) == list(range(count))


@pytest.mark.services
def test_mosquitto_start_failure_raises_with_log_tail(tmp_path: Path) -> None:
    server = MosquittoServer(tmp_path, extra_config=["no_such_option 42"])
    with pytest.raises(RuntimeError, match="no_such_option"):
        server.start()
    assert not server.running


@pytest.mark.services
def test_mosquitto_context_manager_leaves_no_process(tmp_path: Path) -> None:
    with MosquittoServer(tmp_path) as server:
        pid = server.pid
        assert pid is not None
        assert server.running
    assert not server.running
    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# -- InfluxDB -------------------------------------------------------------------------------------------


def test_influxdb_write_and_query(influxdb: InfluxDBServer) -> None:
    assert influxdb.running
    db = unique("services_test")
    influxdb.create_database(db)
    now_ms = int(time.time() * 1000)
    with httpx.Client(base_url=influxdb.url, trust_env=False, timeout=TIMEOUT) as http:
        assert http.get("/ping").status_code == 204
        response = http.post(
            "/write",
            params={"db": db, "precision": "ms"},
            content=f"air,sensor=s1 pm10=12.5,no2=40i {now_ms}\n",
        )
    assert response.status_code == 204, response.text

    result = influxdb.query('SELECT "pm10", "no2", "sensor" FROM "air"', db=db)
    series = result["results"][0]["series"][0]
    assert series["columns"] == ["time", "pm10", "no2", "sensor"]
    assert series["values"] == [[now_ms, 12.5, 40, "s1"]]
    influxdb.drop_database(db)


def test_influxdb_restart_keeps_data(fresh_influxdb: InfluxDBServer) -> None:
    server = fresh_influxdb
    port = server.port
    server.create_database("city")
    now_ms = int(time.time() * 1000)
    server.write("city", [f"noise,site=a db=55.5 {now_ms - 1000}", f"noise,site=b db=60 {now_ms}"])

    server.restart()
    assert server.running
    assert server.port == port

    result = server.query('SELECT "db", "site" FROM "noise"', db="city")
    assert result["results"][0]["series"][0]["values"] == [
        [now_ms - 1000, 55.5, "a"],
        [now_ms, 60.0, "b"],
    ]
    with pytest.raises(RuntimeError, match="database not found"):
        server.query('SELECT * FROM "noise"', db="no_such_db")
