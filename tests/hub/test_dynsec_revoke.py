"""Revocation, replacement and deletion take effect at the broker within seconds (real Mosquitto + plugin)."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Iterator

import pytest
from services import MqttPeer, SecureMosquittoServer

from cityhub.mqtt import BrokerAddress
from hub.dynsec import DynSecAccess, DynSecClient, NotFound

BAD_LOGIN = {0x86, 0x87}  # bad user name or password / not authorised (MQTT 5 §3.2.2.2)
KICK_WITHIN_S = 3.0


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_password() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture
def peers() -> Iterator[list[MqttPeer]]:
    made: list[MqttPeer] = []
    yield made
    for peer in made:
        peer.close()


def connect(
    server: SecureMosquittoServer,
    peers: list[MqttPeer],
    username: str,
    password: str,
    will: tuple[str, bytes] | None = None,
) -> MqttPeer:
    peer = MqttPeer(server.host, server.port, username=username, password=password, client_id=uid("p"), will=will)
    peers.append(peer)
    peer.connect()
    return peer


async def test_revocation_drops_the_connection_and_refuses_new_logins(
    dynsec_access: DynSecAccess, secure_mosquitto: SecureMosquittoServer, peers: list[MqttPeer]
) -> None:
    site, password = uid("site"), new_password()
    username = f"dev:{site}:d1"
    await dynsec_access.grant(username, password, [(site, "d1")])
    hub_user, hub_password = uid("hub"), new_password()
    await dynsec_access.ensure_hub_login(hub_user, hub_password)
    hub = connect(secure_mosquitto, peers, hub_user, hub_password)
    assert hub.subscribe("cityhub/v1/#") == 1
    status = f"cityhub/v1/{site}/d1/status"
    device = connect(secure_mosquitto, peers, username, password, will=(status, b'{"will": true}'))
    assert device.connack == 0

    started = time.monotonic()
    await dynsec_access.revoke(username)
    assert device.wait(lambda: device.disconnect_reason is not None, KICK_WITHIN_S)
    assert time.monotonic() - started < KICK_WITHIN_S
    assert connect(secure_mosquitto, peers, username, password).connack in BAD_LOGIN
    assert (await dynsec_access.get(username)).disabled
    # The plugin kicks without the will (mosquitto_kick_client_by_username(username, false)): the hub
    # learns of a revoked device from its own decision, not from a will.
    await asyncio.sleep(1.0)
    assert hub.received(status) == []


async def test_enable_after_revoke_lets_the_device_in_again(
    dynsec_access: DynSecAccess, secure_mosquitto: SecureMosquittoServer, peers: list[MqttPeer]
) -> None:
    site, password = uid("site"), new_password()
    username = f"dev:{site}:d1"
    await dynsec_access.grant(username, password, [(site, "d1")])
    await dynsec_access.revoke(username)
    await dynsec_access.revoke(username)  # idempotent
    assert connect(secure_mosquitto, peers, username, password).connack in BAD_LOGIN
    await dynsec_access.enable(username)
    assert connect(secure_mosquitto, peers, username, password).connack == 0


async def test_regrant_after_replacement_takes_the_new_password_only(
    dynsec_access: DynSecAccess, secure_mosquitto: SecureMosquittoServer, peers: list[MqttPeer]
) -> None:
    site, old_password, new = uid("site"), new_password(), new_password()
    username = f"dev:{site}:d1"
    await dynsec_access.grant(username, old_password, [(site, "d1")])
    old_device = connect(secure_mosquitto, peers, username, old_password)
    assert old_device.connack == 0
    await dynsec_access.revoke(username)  # the old unit was stolen; its replacement registers

    await dynsec_access.grant(username, new, [(site, "d1"), (site, "d1-sensor")])
    assert connect(secure_mosquitto, peers, username, old_password).connack in BAD_LOGIN
    replacement = connect(secure_mosquitto, peers, username, new)
    assert replacement.connack == 0
    assert replacement.publish(f"cityhub/v1/{site}/d1-sensor/telemetry", b"{}") == 0x10  # allowed, nobody listens
    assert not (await dynsec_access.get(username)).disabled


async def test_regrant_drops_the_connection_of_the_old_password(
    dynsec_access: DynSecAccess, secure_mosquitto: SecureMosquittoServer, peers: list[MqttPeer]
) -> None:
    site = uid("site")
    username = f"dev:{site}:d1"
    old_password = new_password()
    await dynsec_access.grant(username, old_password, [(site, "d1")])
    old_device = connect(secure_mosquitto, peers, username, old_password)
    assert old_device.connack == 0
    await dynsec_access.grant(username, new_password(), [(site, "d1")])
    assert old_device.wait(lambda: old_device.disconnect_reason is not None, KICK_WITHIN_S)


async def test_new_provisioning_secret_replaces_the_old_one(
    dynsec_access: DynSecAccess, secure_mosquitto: SecureMosquittoServer, peers: list[MqttPeer]
) -> None:
    site, key, old_secret, new_secret = uid("site"), uid("k"), new_password(), new_password()
    username = await dynsec_access.ensure_provisioning_key(site, key, old_secret)
    assert await dynsec_access.ensure_provisioning_key(site, key, new_secret) == username
    assert connect(secure_mosquitto, peers, username, old_secret).connack in BAD_LOGIN
    assert connect(secure_mosquitto, peers, username, new_secret).connack == 0
    await dynsec_access.remove_provisioning_key(site, key)
    assert connect(secure_mosquitto, peers, username, new_secret).connack in BAD_LOGIN
    assert username not in await dynsec_access.list_clients()


async def test_delete_removes_the_login_and_its_role(
    dynsec_access: DynSecAccess, secure_mosquitto: SecureMosquittoServer, peers: list[MqttPeer]
) -> None:
    site, password = uid("site"), new_password()
    username = f"dev:{site}:d1"
    await dynsec_access.grant(username, password, [(site, "d1")])
    device = connect(secure_mosquitto, peers, username, password)
    await dynsec_access.delete(username)
    await dynsec_access.delete(username)  # idempotent
    assert device.wait(lambda: device.disconnect_reason is not None, KICK_WITHIN_S)
    assert connect(secure_mosquitto, peers, username, password).connack in BAD_LOGIN
    with pytest.raises(NotFound):
        await dynsec_access.get(username)
    assert f"role:{username}" not in await dynsec_access.client.list_roles()


async def test_grants_survive_a_broker_restart(
    fresh_secure_mosquitto: SecureMosquittoServer, peers: list[MqttPeer]
) -> None:
    server = fresh_secure_mosquitto
    password = new_password()
    async with DynSecClient(BrokerAddress.from_url(server.admin_url), timeout_s=10.0) as client:
        access = DynSecAccess(client)
        await access.setup_defaults()
        await access.grant("dev:s1:kept", password, [("s1", "kept")])
        await access.grant("dev:s1:gone", password, [("s1", "gone")])
        await access.revoke("dev:s1:gone")
    server.restart()
    assert connect(server, peers, "dev:s1:kept", password).connack == 0
    assert connect(server, peers, "dev:s1:gone", password).connack in BAD_LOGIN
    kept = peers[0]
    assert kept.subscribe("#") == 0x87  # the defaults survived too
