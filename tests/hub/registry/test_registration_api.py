"""The registration endpoints of a running hub, over HTTP, by every role: 401 without a token, 403 without
the permission, 404 outside the caller's team (a UPS is IT's, a camera the police's), and decisions that
reach the broker and the audit log with the operator and their address.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hubtools import registration_hub, wait_for
from services import InfluxDBServer, SecureMosquittoServer
from testkit import unique

from cityhub.contract.registration import RegistrationTopics, provisioning_username
from cityhub.mqtt import BrokerAddress, MqttSession, SessionOptions
from hub.api.roles import Role
from hub.audit import AuditQuery
from hub.service import Hub

SITE, KEY = "cjt-server-room", "install-2026"
SECRET = "provisioning-secret-for-tests-0003"
ADMIN_PASSWORD = "Timisoara-Bastion-Key-2026!"
PEOPLE = {
    Role.IT_OPERATOR: ("ion", "Ion-Server-Room-Pass-1", "it"),
    Role.POLICE_OPERATOR: ("paula", "Paula-Cameras-Pass-22", "police"),
    Role.ADP_OPERATOR: ("andrei", "Andrei-Street-Pass-333", "adp"),
    Role.VIEWER: ("vera", "Vera-Read-Only-Pass-4444", "it"),
}


@pytest.fixture
async def hub(tmp_path: Path, secure_mosquitto: SecureMosquittoServer, influxdb: InfluxDBServer) -> AsyncIterator[Hub]:
    keys = [{"site": SITE, "key": KEY, "secret": SECRET}]
    api = {"bootstrap_admin_password": ADMIN_PASSWORD}
    async with registration_hub(
        tmp_path, secure_mosquitto, influxdb, root=unique("root"), keys=keys, api=api
    ) as running:
        for role, (name, password, team) in PEOPLE.items():
            await running.api.users.create(name, password, role, team)

        async def serving() -> bool:
            return running.http is not None and running.http.bound_port is not None

        await wait_for(serving, 10, "the hub's HTTP API")
        yield running


async def ask(hub: Hub, device: str, kind: str) -> None:
    """A device asks to register (through the broker, as a device does) and the request is recorded."""
    topics = RegistrationTopics(hub.settings.mqtt.topic_root)
    address = BrokerAddress.from_url(hub.settings.mqtt.url)
    prov = BrokerAddress(
        host=address.host, port=address.port, username=provisioning_username(SITE, KEY), password=SECRET
    )
    async with MqttSession(prov, SessionOptions(client_id=unique("prov-"))) as session:
        body = {"device": device, "site": SITE, "kind": kind, "password": secrets.token_urlsafe(32)}
        body |= {"nonce": secrets.token_urlsafe(16), "ts": int(time.time() * 1000)}
        await session.publish(topics.request(SITE, KEY, device), json.dumps(body).encode())

    async def recorded() -> bool:
        return await hub.registry.store.get(SITE, device) is not None  # type: ignore[union-attr]

    await wait_for(recorded, 10, f"{device}'s request")


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    assert hub.http is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.http.bound_port}", timeout=10) as http:
        yield http


async def login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    answer = await client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def tokens(client: httpx.AsyncClient) -> dict[Role, dict[str, str]]:
    result = {Role.ADMIN: await login(client, "admin", ADMIN_PASSWORD)}
    for role, (name, password, _) in PEOPLE.items():
        result[role] = await login(client, name, password)
    return result


async def test_without_a_token_every_registration_endpoint_says_401(hub: Hub, client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v1/registrations"),
        ("GET", f"/api/v1/registrations/{SITE}/x"),
        ("POST", f"/api/v1/registrations/{SITE}/x/approve"),
        ("POST", f"/api/v1/registrations/{SITE}/x/reject"),
        ("POST", f"/api/v1/registrations/{SITE}/x/revoke"),
    ]:
        answer = await client.request(method, path)
        assert answer.status_code == 401, (method, path)
        assert answer.headers["www-authenticate"] == "Bearer"
    assert (await client.get("/health")).status_code == 200  # health alone needs no login


@pytest.mark.parametrize(
    ("role", "sees", "approves_ups", "approves_camera"),
    [
        (Role.ADMIN, {"ups", "camera"}, 200, 200),
        (Role.IT_OPERATOR, {"ups"}, 200, 404),
        (Role.POLICE_OPERATOR, {"camera"}, 404, 200),
        (Role.ADP_OPERATOR, set(), 404, 404),
        (Role.VIEWER, None, 403, 403),  # read-only: not even the list of requests
    ],
)
async def test_each_role_sees_and_decides_on_its_teams_devices_only(
    hub: Hub,
    client: httpx.AsyncClient,
    role: Role,
    sees: set[str] | None,
    approves_ups: int,
    approves_camera: int,
) -> None:
    ups, camera = unique("ups-"), unique("cam-")
    await ask(hub, ups, "ups")
    await ask(hub, camera, "camera")
    headers = (await tokens(client))[role]
    listing = await client.get("/api/v1/registrations", headers=headers)
    if sees is None:
        assert listing.status_code == 403
        assert listing.json()["error"]["code"]
    else:
        assert listing.status_code == 200
        mine = {e["kind"] for e in listing.json()["items"] if e["device"] in (ups, camera)}
        assert mine == sees
        assert all("password" not in json.dumps(e) for e in listing.json()["items"])
    for device, expected in ((ups, approves_ups), (camera, approves_camera)):
        answer = await client.post(f"/api/v1/registrations/{SITE}/{device}/approve", headers=headers)
        assert answer.status_code == expected, (device, answer.text)
        entry = await hub.registry.store.get(SITE, device)  # type: ignore[union-attr]
        assert entry is not None
        assert entry.state.value == ("approved" if expected == 200 else "pending")


async def test_the_list_pages_and_filters_by_site_and_state(hub: Hub, client: httpx.AsyncClient) -> None:
    devices = [unique(f"ups{i}-") for i in range(3)]
    for device in devices:
        await ask(hub, device, "ups")
    admin = (await tokens(client))[Role.ADMIN]
    assert (await client.post(f"/api/v1/registrations/{SITE}/{devices[1]}/approve", headers=admin)).status_code == 200

    async def listing(**params: object) -> dict[str, object]:
        answer = await client.get("/api/v1/registrations", params=params, headers=admin)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    first = await listing(waiting="false", limit=2)
    second = await listing(waiting="false", limit=2, offset=first["next_offset"])
    pages = [e["device"] for e in first["items"] + second["items"]]  # type: ignore[operator]
    assert (first["next_offset"], second["next_offset"], pages) == (2, None, devices)  # oldest request first
    approved = await listing(waiting="false", state="approved")
    assert [e["device"] for e in approved["items"]] == [devices[1]]  # type: ignore[attr-defined]
    waiting = await listing()  # by default, only those waiting for a decision
    assert [e["device"] for e in waiting["items"]] == [devices[0], devices[2]]  # type: ignore[attr-defined]
    assert (await listing(waiting="false", site="elsewhere"))["items"] == []
    refused = await client.get("/api/v1/registrations", params={"state": "maybe", "limit": 0}, headers=admin)
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "invalid_request"
    assert "query.state" in error["message"]
    assert "query.limit" in error["message"]


async def test_decisions_are_audited_with_operator_and_address(hub: Hub, client: httpx.AsyncClient) -> None:
    device = unique("ups-")
    await ask(hub, device, "ups")
    headers = (await tokens(client))[Role.IT_OPERATOR]
    approved = await client.post(f"/api/v1/registrations/{SITE}/{device}/approve", headers=headers)
    assert approved.status_code == 200
    again = await client.post(f"/api/v1/registrations/{SITE}/{device}/approve", headers=headers)
    assert again.status_code == 409  # nothing waits for a decision any more
    revoked = await client.post(
        f"/api/v1/registrations/{SITE}/{device}/revoke", headers=headers, json={"reason": "box stolen"}
    )
    assert revoked.status_code == 200
    assert revoked.json()["state"] == "revoked"
    detail = await client.get(f"/api/v1/registrations/{SITE}/{device}", headers=headers)
    assert [h["action"] for h in detail.json()["history"]] == ["requested", "approved", "revoked"]
    entries = await hub.api.audit.entries(AuditQuery(action="registration."))
    mine = [e for e in entries if e.target == f"{SITE}/{device}"]
    assert [(e.action, e.actor) for e in mine] == [
        ("registration.requested", f"key:{KEY}"),
        ("registration.approved", "ion"),
    ]
    assert mine[1].source == "127.0.0.1"
    revocations = [e for e in await hub.api.audit.entries(AuditQuery(action="device.")) if e.target.endswith(device)]
    assert [(e.action, e.actor, e.source) for e in revocations] == [("device.revoked", "ion", "127.0.0.1")]


async def cityhub(hub: Hub, *argv: str, password: str | None = None) -> tuple[int, str]:
    """``cityhub registrations --user ion ...`` as the IT operator types it, password from the environment."""
    assert hub.http is not None
    user, known, _ = PEOPLE[Role.IT_OPERATOR]
    env = {**os.environ, "CITYHUB_PASSWORD": password or known}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cityhub", "registrations", "--hub", f"http://127.0.0.1:{hub.http.bound_port}",
        "--user", user, *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode()


async def test_the_cli_lists_and_decides_through_the_api(hub: Hub) -> None:
    ups, camera = unique("ups-"), unique("cam-")
    await ask(hub, ups, "ups")
    await ask(hub, camera, "camera")
    code, listing = await cityhub(hub, "list")
    assert code == 0, listing
    assert f"{SITE}/{ups}" in listing
    assert camera not in listing  # the IT operator does not see the police's camera
    code, out = await cityhub(hub, "approve", f"{SITE}/{ups}")
    assert (code, out.strip()) == (0, f"{SITE}/{ups}: approved")
    code, out = await cityhub(hub, "reject", f"{SITE}/{camera}", "--reason", "not ours")
    assert code == 1
    assert "no such" in out  # outside the team: as if it did not exist
    code, out = await cityhub(hub, "list", password="wrong-password-123")
    assert code != 0
    assert "login refused" in out
