"""Self-registration end to end on real parts: a broker with the dynamic security plugin, the hub
(registry, registrar, ingest into InfluxDB), and devices that are plain MQTT clients.

registration → pending → approval → the device publishes and its data is stored; a rejected or
unapproved device's data is never stored; device A cannot publish as device B; revocation takes effect
within seconds; a replacement's approval locks the old box out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agenttools import influx_series
from hubtools import registration_hub, wait_for
from services import InfluxDBServer, SecureMosquittoServer
from testkit import unique

from cityhub.contract import MessageKind, Reading, StatusMessage, TelemetryMessage, Topics
from cityhub.contract.registration import RegistrationTopics, provisioning_username
from cityhub.mqtt import BrokerAddress, MqttError, MqttSession, SessionOptions
from hub.service import Hub

SITE, KEY = "cjt-server-room", "install-2026"
SECRET = "provisioning-secret-for-tests-0001"
#: A key whose devices are approved without an operator (e.g. the city's own installers).
AUTO_KEY, AUTO_SECRET = "city-installers", "provisioning-secret-for-tests-auto"


@dataclass
class Deployment:
    hub: Hub
    broker: SecureMosquittoServer
    influxdb: InfluxDBServer
    db: str
    root: str

    @property
    def reg_topics(self) -> RegistrationTopics:
        return RegistrationTopics(self.root)

    def address(self, username: str, password: str) -> BrokerAddress:
        return BrokerAddress(host=self.broker.host, port=self.broker.port, username=username, password=password)


def _count(deployment: Deployment, device: str) -> int:
    series = influx_series(
        deployment.influxdb,
        deployment.db,
        f'SELECT count("value") FROM "battery" WHERE "device" = \'{device}\'',
    )
    return int(series[0]["rows"][0]["count"]) if series else 0


@pytest.fixture
async def deployment(
    tmp_path: Path, secure_mosquitto: SecureMosquittoServer, influxdb: InfluxDBServer
) -> AsyncIterator[Deployment]:
    root = unique("root")
    keys = [
        {"site": SITE, "key": KEY, "secret": SECRET},
        {"site": SITE, "key": AUTO_KEY, "secret": AUTO_SECRET, "auto_approve": True},
    ]
    limits = {"requests_per_minute": 600, "burst": 50}
    async with registration_hub(tmp_path, secure_mosquitto, influxdb, root=root, keys=keys, registration=limits) as hub:
        db = hub.settings.influx.db
        yield Deployment(hub, secure_mosquitto, influxdb, db, root)


def request(device: str, password: str, **changes: Any) -> bytes:
    body: dict[str, Any] = {
        "device": device,
        "site": SITE,
        "kind": "ups",
        "maker": "Eaton",
        "password": password,
        "nonce": secrets.token_urlsafe(16),
        "ts": int(time.time() * 1000),
    }
    body.update(changes)
    return json.dumps(body).encode()


async def provisioning_session(d: Deployment, device: str, key: str = KEY, secret: str = SECRET) -> MqttSession:
    session = MqttSession(
        d.address(provisioning_username(SITE, key), secret),
        SessionOptions(client_id=unique("prov-"), subscriptions=[(d.reg_topics.response(SITE, key, device), 1)]),
    )
    await session.connect()
    return session


async def answer(session: MqttSession, state: str, timeout_s: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for message in await session.receive(10, 0.5):
            body: dict[str, Any] = json.loads(message.payload)
            if body["state"] == state:
                return body
    raise AssertionError(f"no {state} answer within {timeout_s} s")


async def register(d: Deployment, device: str, password: str) -> MqttSession:
    session = await provisioning_session(d, device)
    await session.publish(d.reg_topics.request(SITE, KEY, device), request(device, password))
    await answer(session, "pending")
    return session


def telemetry(device: str, seq: int) -> bytes:
    # One ms apart at least: a point is its series and timestamp, so two readings of the same ms are one.
    now = int(time.time() * 1000) + seq
    message = TelemetryMessage(
        device=device,
        site=SITE,
        kind="ups",
        boot=1,
        seq=seq,
        readings=[Reading(metric="battery.charge", value=90.0 + seq, unit="%", ts=now)],
    )
    return message.model_dump_json(exclude_defaults=True).encode()


async def device_session(d: Deployment, device: str, password: str) -> MqttSession:
    session = MqttSession(
        d.address(f"dev:{SITE}:{device}", password), SessionOptions(client_id=unique(f"{device}-"), reconnect_max_s=1)
    )
    await session.connect()
    return session


async def test_registration_pending_approval_then_data_is_stored(deployment: Deployment) -> None:
    d, device, password = deployment, unique("ups-"), secrets.token_urlsafe(32)
    provisioning = await register(d, device, password)
    try:
        with pytest.raises(MqttError):  # pending: the broker knows no login for it yet
            await device_session(d, device, password)
        await d.hub.registry.registrar.approve(SITE, device, actor="operator-ana")  # type: ignore[union-attr]
        approved = await answer(provisioning, "approved")
        assert approved["username"] == f"dev:{SITE}:{device}"
        assert "password" not in approved
    finally:
        await provisioning.disconnect()
    ups = await device_session(d, device, password)
    try:
        topic = Topics(d.root).device(SITE, device, MessageKind.TELEMETRY)
        for seq in range(1, 4):
            await ups.publish(topic, telemetry(device, seq))

        async def stored() -> bool:
            return _count(d, device) == 3

        await wait_for(stored, 15, "the approved device's telemetry")
    finally:
        await ups.disconnect()
    history = await d.hub.registry.store.history(SITE, device)  # type: ignore[union-attr]
    assert [(h.action, h.actor) for h in history] == [("requested", f"key:{KEY}"), ("approved", "operator-ana")]


async def test_a_device_cannot_publish_as_another(deployment: Deployment) -> None:
    d = deployment
    a, b = unique("ups-a-"), unique("ups-b-")
    passwords = {a: secrets.token_urlsafe(32), b: secrets.token_urlsafe(32)}
    for device in (a, b):
        session = await register(d, device, passwords[device])
        await d.hub.registry.registrar.approve(SITE, device, actor="operator")  # type: ignore[union-attr]
        await session.disconnect()
    ups_a = await device_session(d, a, passwords[a])
    try:
        topics = Topics(d.root)
        # A publishes as B: the broker drops it (MQTT 5 answers "not authorized"; either way nothing arrives).
        with contextlib.suppress(MqttError):
            await ups_a.publish(topics.device(SITE, b, MessageKind.TELEMETRY), telemetry(b, 1), timeout_s=5)
        await ups_a.publish(topics.device(SITE, a, MessageKind.TELEMETRY), telemetry(a, 1))

        async def a_stored() -> bool:
            return _count(d, a) == 1

        await wait_for(a_stored, 15, "A's own telemetry")
        await asyncio.sleep(1.0)  # B's would have been in the same batch or the next
        assert _count(d, b) == 0
    finally:
        await ups_a.disconnect()


async def test_a_rejected_device_gets_no_login_and_nothing_is_stored(deployment: Deployment) -> None:
    d, device, password = deployment, unique("ups-"), secrets.token_urlsafe(32)
    provisioning = await register(d, device, password)
    try:
        await d.hub.registry.registrar.reject(SITE, device, actor="operator", reason="unknown box")  # type: ignore[union-attr]
        rejected = await answer(provisioning, "rejected")
        assert rejected["reason"] == "unknown box"
    finally:
        await provisioning.disconnect()
    with pytest.raises(MqttError):
        await device_session(d, device, password)
    assert not d.hub.registry.registrar.allows(SITE, device)  # type: ignore[union-attr]


async def test_revocation_drops_the_device_within_seconds(deployment: Deployment) -> None:
    d, device, password = deployment, unique("ups-"), secrets.token_urlsafe(32)
    session = await register(d, device, password)
    await d.hub.registry.registrar.approve(SITE, device, actor="operator")  # type: ignore[union-attr]
    await session.disconnect()
    ups = await device_session(d, device, password)
    try:
        status = StatusMessage(device=device, site=SITE, kind="ups", state="online", boot=1, ts=int(time.time() * 1000))
        topic = Topics(d.root).device(SITE, device, MessageKind.STATUS)
        await ups.publish(topic, status.model_dump_json(exclude_defaults=True).encode(), retain=True)

        async def online() -> bool:
            known = d.hub.devices.get(SITE, device)
            return known is not None and known.state == "online"

        await wait_for(online, 10, "the device online")
        started = time.monotonic()
        await d.hub.registry.registrar.revoke(SITE, device, actor="operator", reason="stolen")  # type: ignore[union-attr]

        async def dropped() -> bool:
            return not ups.connected

        await wait_for(dropped, 5, "the revoked device's connection to drop", interval_s=0.05)
        assert time.monotonic() - started < 5
    finally:
        await ups.disconnect()
    with pytest.raises(MqttError):
        await device_session(d, device, password)

    # The broker drops a revoked device without its will: the hub records it offline itself.
    async def offline() -> bool:
        known = d.hub.devices.get(SITE, device)
        return known is not None and known.state == "offline"

    await wait_for(offline, 5, "the revoked device marked offline")
    query = f'SELECT "state", "reason" FROM "device_status" WHERE "device" = \'{device}\''
    rows = [row for series in influx_series(d.influxdb, d.db, query) for row in series["rows"]]
    assert [(r["state"], r["reason"]) for r in rows] == [("online", None), ("offline", "revoked")]


async def test_a_replacement_locks_the_old_box_out(deployment: Deployment) -> None:
    d, device = deployment, unique("ups-")
    old, new = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session = await register(d, device, old)
    await d.hub.registry.registrar.approve(SITE, device, actor="operator")  # type: ignore[union-attr]
    await session.disconnect()
    session = await register(d, device, new)  # the new box asks with its own password
    try:
        entry = await d.hub.registry.store.get(SITE, device)  # type: ignore[union-attr]
        assert entry is not None
        assert (entry.state.value, entry.awaiting_decision) == ("approved", True)  # the old box still works
        await (await device_session(d, device, old)).disconnect()  # connecting is the check
        await d.hub.registry.registrar.approve(SITE, device, actor="operator")  # type: ignore[union-attr]
    finally:
        await session.disconnect()
    with pytest.raises(MqttError):
        await device_session(d, device, old)
    replacement = await device_session(d, device, new)
    await replacement.disconnect()


async def test_a_key_set_to_auto_approve_gets_its_devices_in_at_once(deployment: Deployment) -> None:
    d, device, password = deployment, unique("ups-"), secrets.token_urlsafe(32)
    session = await provisioning_session(d, device, AUTO_KEY, AUTO_SECRET)
    try:
        await session.publish(d.reg_topics.request(SITE, AUTO_KEY, device), request(device, password))
        approved = await answer(session, "approved")
    finally:
        await session.disconnect()
    assert approved["username"] == f"dev:{SITE}:{device}"
    await (await device_session(d, device, password)).disconnect()  # the login works
    history = await d.hub.registry.store.history(SITE, device)  # type: ignore[union-attr]
    assert [(h.action, h.actor) for h in history] == [
        ("requested", f"key:{AUTO_KEY}"),
        ("approved", f"auto:{AUTO_KEY}"),
    ]
