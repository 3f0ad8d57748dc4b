"""Every endpoint by every role: 401 without a live token, 403 without the permission, success with it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from hub.api import HubApi
from hub.api.roles import PERMISSIONS, Permission, Role
from hub.audit import AuditQuery

#: A device inside each role's scope, for the single-device route.
MINE = {
    Role.ADMIN: "demo-palace/ups-2",
    Role.IT_OPERATOR: "demo-server-room/ups-1",
    Role.POLICE_OPERATOR: "demo-bastion/bastion-gate",
    Role.ADP_OPERATOR: "park-central/lamp-7",
    Role.VIEWER: "park-central/aq-1",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    method: str
    route: str  # as FastAPI declares it
    permission: Permission | None  # None: any authenticated user
    ok: int = 200
    path: Callable[[Role], str] | None = None
    body: Callable[[Any], dict[str, Any]] | None = None  # given the caller's Account

    def url(self, role: Role) -> str:
        return self.path(role) if self.path else self.route

    def __str__(self) -> str:
        return f"{self.method} {self.route}"


CALLS = [
    Call(method="POST", route="/api/v1/auth/logout", permission=None, ok=204),
    Call(method="GET", route="/api/v1/me", permission=None),
    Call(
        method="POST",
        route="/api/v1/me/password",
        permission=None,
        ok=204,
        body=lambda a: {"current_password": a.password, "new_password": "Brand-New-Strong-Pass-77"},
    ),
    Call(method="GET", route="/api/v1/devices", permission=Permission.DEVICES_READ),
    Call(
        method="GET",
        route="/api/v1/devices/{site}/{device}",
        permission=Permission.DEVICES_READ,
        path=lambda role: f"/api/v1/devices/{MINE[role]}",
    ),
    Call(
        method="GET",
        route="/api/v1/devices/{site}/{device}/values",
        permission=Permission.DEVICES_READ,
        path=lambda role: f"/api/v1/devices/{MINE[role]}/values",
    ),
    Call(
        method="GET",
        route="/api/v1/devices/{site}/{device}/history",
        permission=Permission.DEVICES_READ,
        path=lambda role: f"/api/v1/devices/{MINE[role]}/history?point=device.temperature",
    ),
    Call(method="GET", route="/api/v1/sites", permission=Permission.DEVICES_READ),
    Call(method="GET", route="/api/v1/roles", permission=None),
    Call(method="GET", route="/api/v1/users", permission=Permission.USERS_ADMIN),
    Call(
        method="POST",
        route="/api/v1/users",
        permission=Permission.USERS_ADMIN,
        ok=201,
        body=lambda _: {"username": "newbie", "password": "Fresh-Strong-Pass-55", "role": "viewer", "team": "city"},
    ),
    Call(
        method="GET",
        route="/api/v1/users/{username}",
        permission=Permission.USERS_ADMIN,
        path=lambda _: "/api/v1/users/victim",
    ),
    Call(
        method="PATCH",
        route="/api/v1/users/{username}",
        permission=Permission.USERS_ADMIN,
        path=lambda _: "/api/v1/users/victim",
        body=lambda _: {"disabled": True},
    ),
    Call(
        method="DELETE",
        route="/api/v1/users/{username}",
        permission=Permission.USERS_ADMIN,
        ok=204,
        path=lambda _: "/api/v1/users/victim",
    ),
    Call(
        method="POST",
        route="/api/v1/users/{username}/password",
        permission=Permission.USERS_ADMIN,
        ok=204,
        path=lambda _: "/api/v1/users/victim/password",
        body=lambda _: {"new_password": "Reset-Strong-Pass-808"},
    ),
    Call(method="GET", route="/api/v1/audit", permission=Permission.AUDIT_READ),
    Call(method="GET", route="/api/v1/audit/export", permission=Permission.AUDIT_READ),
    Call(method="GET", route="/api/v1/audit/verify", permission=Permission.AUDIT_READ),
]
PUBLIC = {("POST", "/api/v1/auth/token")}


@pytest.fixture
async def victim(api: HubApi) -> None:
    await api.users.create("victim", "Victim-Old-Strong-Pass-7", Role.VIEWER, "city")


async def send(client: httpx.AsyncClient, call: Call, role: Role, account: Any, **kw: Any) -> httpx.Response:
    body = call.body(account) if call.body else None
    return await client.request(call.method, call.url(role), json=body, **kw)


def test_every_api_route_is_in_the_matrix(app: Any) -> None:
    declared = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/v1")
        for method in operations
    }
    assert declared == {(call.method, call.route) for call in CALLS} | PUBLIC


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("call", CALLS, ids=str)
async def test_role_matrix(
    client: httpx.AsyncClient, accounts: dict[Role, Any], victim: None, api: HubApi, call: Call, role: Role
) -> None:
    account = accounts[role]
    response = await send(client, call, role, account, headers=account.headers)
    allowed = call.permission is None or call.permission in PERMISSIONS[role]
    if allowed:
        assert response.status_code == call.ok, response.text
        return
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    denied = await api.audit.entries(AuditQuery(action="access.denied"))
    assert [(e.actor, e.outcome, e.detail["permission"]) for e in denied] == [
        (account.username, "denied", call.permission.value if call.permission else None)
    ]


@pytest.mark.parametrize("call", CALLS, ids=str)
@pytest.mark.parametrize("token", ["none", "garbage", "expired", "revoked", "disabled_user"])
async def test_without_a_live_token_401(
    client: httpx.AsyncClient, accounts: dict[Role, Any], victim: None, api: HubApi, clock: Any, call: Call, token: str
) -> None:
    account = accounts[Role.ADMIN]
    headers = {"Authorization": f"Bearer {account.token}"}
    if token == "none":
        headers = {}
    elif token == "garbage":
        headers = {"Authorization": "Bearer abc.def"}
    elif token == "expired":
        clock.advance(api.settings.token_ttl_s + 1)
    elif token == "revoked":
        assert await api.users.revoke_token(account.token)
    else:
        await api.users.create("second-admin", "Second-Admin-Pass-42", Role.ADMIN, None)
        await api.users.update("admin", disabled=True)
    response = await send(client, call, Role.ADMIN, account, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] in {"not_authenticated", "invalid_token"}
