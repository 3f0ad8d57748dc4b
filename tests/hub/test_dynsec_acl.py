"""The broker itself enforces the grants hub.dynsec makes (real Mosquitto with the dynamic security plugin).

Every refusal is checked where it matters: the message never reaches a subscriber that is allowed to
read it. Reason codes (0x87 "not authorised" in SUBACK/PUBACK, MQTT 5 §3.9.3 and §3.4.2.1) are checked
as well, since mosquitto 2.0 sends them to MQTT 5 clients.

Mosquitto 2.0.11 also *drops the connection* of a client whose PUBLISH the plugin denies (any QoS,
MQTT 5 and 3.1.1 alike; "Bad socket read/write" in its log). So every forbidden publish here is made
on a throwaway connection of the same login (:func:`refused`); refused subscriptions keep the connection.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Iterator

import pytest
from services import MqttPeer, SecureMosquittoServer

from hub.dynsec import DynSecAccess

NOT_AUTHORIZED = 0x87
BAD_LOGIN = {0x86, 0x87}  # bad user name or password / not authorised (MQTT 5 §3.2.2.2)
QUIET_S = 1.0  # how long "nothing arrives" is watched, after a control message did arrive


def new_password() -> str:
    return secrets.token_urlsafe(24)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def peers(secure_mosquitto: SecureMosquittoServer) -> Iterator[list[MqttPeer]]:
    made: list[MqttPeer] = []
    yield made
    for peer in made:
        peer.close()


def login(server: SecureMosquittoServer, peers: list[MqttPeer], username: str | None, password: str | None) -> MqttPeer:
    peer = MqttPeer(server.host, server.port, username=username, password=password, client_id=uid("peer"))
    peers.append(peer)
    return peer


def accepted(code: int | None) -> bool:
    """A PUBACK reason code of success: 0, or 0x10 "no matching subscribers" (MQTT 5 §3.4.2.1)."""
    return code is not None and code < 0x80


def refused(server: SecureMosquittoServer, peers: list[MqttPeer], username: str, password: str, topic: str) -> bool:
    """Whether a fresh connection of this login is refused a QoS 1 publish on ``topic``."""
    rogue = login(server, peers, username, password)
    assert rogue.connect() == 0
    return rogue.publish(topic, b"forged") == NOT_AUTHORIZED


async def hub_peer(access: DynSecAccess, server: SecureMosquittoServer, peers: list[MqttPeer]) -> MqttPeer:
    username, password = uid("hub"), new_password()
    await access.ensure_hub_login(username, password)
    hub = login(server, peers, username, password)
    assert hub.connect() == 0
    assert hub.subscribe("cityhub/v1/#") == 1
    return hub


def test_anonymous_client_cannot_connect(secure_mosquitto: SecureMosquittoServer, peers: list[MqttPeer]) -> None:
    assert login(secure_mosquitto, peers, None, None).connect() in BAD_LOGIN
    assert login(secure_mosquitto, peers, "nobody", "nothing-at-all-here").connect() in BAD_LOGIN


async def test_admin_creates_a_provisioning_key(dynsec_access: DynSecAccess) -> None:
    site, key = uid("site"), uid("k")
    username = await dynsec_access.ensure_provisioning_key(site, key, new_password())
    assert username == f"prov:{site}:{key}"
    assert username in await dynsec_access.list_clients()
    info = await dynsec_access.get(username)
    assert info.roles == (f"role:{username}",)
    assert not info.disabled


async def test_provisioning_login_only_sends_requests_and_reads_answers(
    dynsec_access: DynSecAccess, secure_mosquitto: SecureMosquittoServer, peers: list[MqttPeer]
) -> None:
    site, key, other_key, secret = uid("site"), uid("k"), uid("k"), new_password()
    device_password = new_password()
    await dynsec_access.ensure_provisioning_key(site, key, secret)
    await dynsec_access.grant(f"dev:{site}:meter", device_password, [(site, "meter")])
    hub = await hub_peer(dynsec_access, secure_mosquitto, peers)
    meter = login(secure_mosquitto, peers, f"dev:{site}:meter", device_password)
    assert meter.connect() == 0

    prov_user = f"prov:{site}:{key}"
    prov = login(secure_mosquitto, peers, prov_user, secret)
    assert prov.connect() == 0
    reg = f"cityhub/v1/_reg/{site}/{key}/new-1"
    assert prov.subscribe(f"cityhub/v1/_reg/{site}/{key}/+/response") == 1
    for forbidden in ("#", "cityhub/v1/#", f"cityhub/v1/{site}/meter/telemetry", f"cityhub/v1/_reg/{site}/+/+/request"):
        assert prov.subscribe(forbidden) == NOT_AUTHORIZED, forbidden

    assert accepted(prov.publish(f"{reg}/request", b'{"hello": 1}'))
    for forged in (
        f"cityhub/v1/{site}/meter/telemetry",
        f"cityhub/v1/_reg/{site}/{other_key}/new-1/request",
        f"{reg}/response",
    ):
        assert refused(secure_mosquitto, peers, prov_user, secret, forged), forged
    assert accepted(meter.publish(f"cityhub/v1/{site}/meter/telemetry", b"real"))
    assert accepted(hub.publish(f"{reg}/response", b'{"state": "pending"}'))

    assert prov.wait(lambda: len(prov.received()) >= 1)
    assert hub.wait(lambda: (f"cityhub/v1/{site}/meter/telemetry", b"real") in hub.received())
    await asyncio.sleep(QUIET_S)
    assert prov.received() == [(f"{reg}/response", b'{"state": "pending"}')]
    assert hub.received(f"cityhub/v1/_reg/{site}/+/+/request") == [(f"{reg}/request", b'{"hello": 1}')]
    assert hub.received(f"cityhub/v1/{site}/#") == [(f"cityhub/v1/{site}/meter/telemetry", b"real")]


async def test_device_publishes_its_own_topics_only(
    dynsec_access: DynSecAccess, secure_mosquitto: SecureMosquittoServer, peers: list[MqttPeer]
) -> None:
    site, password = uid("site"), new_password()
    await dynsec_access.grant(f"dev:{site}:a", password, [(site, "a")])
    await dynsec_access.grant(f"dev:{site}:b", new_password(), [(site, "b")])
    hub = await hub_peer(dynsec_access, secure_mosquitto, peers)
    device_a = login(secure_mosquitto, peers, f"dev:{site}:a", password)
    assert device_a.connect() == 0

    assert device_a.subscribe("cityhub/v1/#") == NOT_AUTHORIZED
    assert device_a.subscribe(f"cityhub/v1/{site}/a/telemetry") == NOT_AUTHORIZED
    for kind in ("birth", "telemetry", "event", "status"):
        assert accepted(device_a.publish(f"cityhub/v1/{site}/a/{kind}", kind.encode()))
    for forged in (f"cityhub/v1/{site}/b/telemetry", f"cityhub/v1/{site}/a/x/y", "cityhub/v1/_hub/deadletter/x"):
        assert refused(secure_mosquitto, peers, f"dev:{site}:a", password, forged), forged

    assert hub.wait(lambda: len(hub.received(f"cityhub/v1/{site}/#")) == 4)
    await asyncio.sleep(QUIET_S)
    assert [t for t, _ in hub.received("#")] == [
        f"cityhub/v1/{site}/a/{k}" for k in ("birth", "telemetry", "event", "status")
    ]


async def test_agent_publishes_for_each_device_it_is_gateway_for(
    dynsec_access: DynSecAccess, secure_mosquitto: SecureMosquittoServer, peers: list[MqttPeer]
) -> None:
    site, other_site, password = uid("site"), uid("site"), new_password()
    devices = [(site, "agent"), (site, "ups-1"), (other_site, "cam-1")]
    await dynsec_access.grant(f"dev:{site}:agent", password, devices)
    hub = await hub_peer(dynsec_access, secure_mosquitto, peers)
    agent = login(secure_mosquitto, peers, f"dev:{site}:agent", password)
    assert agent.connect() == 0
    for s, d in devices:
        assert accepted(agent.publish(f"cityhub/v1/{s}/{d}/telemetry", d.encode()))
    for forged in (f"cityhub/v1/{site}/ups-2/telemetry", f"cityhub/v1/{other_site}/agent/telemetry"):
        assert refused(secure_mosquitto, peers, f"dev:{site}:agent", password, forged), forged
    assert hub.wait(lambda: len(hub.received()) == 3)
    await asyncio.sleep(QUIET_S)
    assert sorted(p for _, p in hub.received()) == [b"agent", b"cam-1", b"ups-1"]


async def test_hub_login_reads_everything_and_writes_only_its_topics(
    dynsec_access: DynSecAccess, secure_mosquitto: SecureMosquittoServer, peers: list[MqttPeer]
) -> None:
    site, username, password = uid("site"), uid("hub"), new_password()
    await dynsec_access.ensure_hub_login(username, password)
    hub = login(secure_mosquitto, peers, username, password)
    assert hub.connect() == 0
    assert hub.subscribe("cityhub/v1/#") == 1
    assert hub.subscribe(f"$share/{uid('g')}/cityhub/v1/+/+/telemetry") == 1
    assert hub.subscribe("$CONTROL/dynamic-security/v1/response") == NOT_AUTHORIZED
    assert hub.subscribe("#") == NOT_AUTHORIZED
    assert accepted(hub.publish("cityhub/v1/_hub/deadletter/bad_topic", b"{}"))
    assert accepted(hub.publish(f"cityhub/v1/_reg/{site}/k1/dev-1/response", b"{}"))
    assert refused(secure_mosquitto, peers, username, password, f"cityhub/v1/{site}/dev-1/telemetry")
    command = {"commands": [{"command": "createClient", "username": "evil", "password": "evil-evil-evil-evil"}]}
    rogue = login(secure_mosquitto, peers, username, password)
    assert rogue.connect() == 0
    assert rogue.publish("$CONTROL/dynamic-security/v1", json.dumps(command).encode()) == NOT_AUTHORIZED
    assert "evil" not in await dynsec_access.list_clients()


async def test_device_cannot_use_the_control_topic(
    dynsec_access: DynSecAccess, secure_mosquitto: SecureMosquittoServer, peers: list[MqttPeer]
) -> None:
    site, password = uid("site"), new_password()
    await dynsec_access.grant(f"dev:{site}:d", password, [(site, "d")])
    device = login(secure_mosquitto, peers, f"dev:{site}:d", password)
    assert device.connect() == 0
    command = {"commands": [{"command": "modifyClient", "username": f"dev:{site}:d", "roles": [{"rolename": "admin"}]}]}
    assert device.publish("$CONTROL/dynamic-security/v1", json.dumps(command).encode()) == NOT_AUTHORIZED
    assert (await dynsec_access.get(f"dev:{site}:d")).roles == (f"role:dev:{site}:d",)


async def test_a_login_without_a_role_can_do_nothing(
    dynsec_access: DynSecAccess, secure_mosquitto: SecureMosquittoServer, peers: list[MqttPeer]
) -> None:
    username, password = uid("bare"), new_password()
    await dynsec_access.client.create_client(username, password)
    bare = login(secure_mosquitto, peers, username, password)
    assert bare.connect() == 0
    assert bare.subscribe("#") == NOT_AUTHORIZED
    assert refused(secure_mosquitto, peers, username, password, "cityhub/v1/s/d/telemetry")
    await dynsec_access.delete(username)
