"""User administration: validation, the last administrator, token revocation, audit entries."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hub.api import HubApi
from hub.api.roles import Role
from hub.audit import AuditQuery

STRONG = "Fresh-Strong-Pass-55"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"username": "olga", "password": STRONG, "role": "it_operator", "team": "it"}, 201, None),
        ({"username": "olga", "password": STRONG, "role": "admin"}, 201, None),
        ({"username": "olga", "password": STRONG, "role": "police_operator"}, 422, "team_required"),
        ({"username": "olga", "password": STRONG, "role": "viewer", "team": "nope"}, 422, "unknown_team"),
        ({"username": "olga", "password": "olga-is-my-name", "role": "admin"}, 422, "weak_password"),
        ({"username": "olga", "password": "change-me", "role": "admin"}, 422, "weak_password"),
        ({"username": "system", "password": STRONG, "role": "admin"}, 422, "reserved_username"),
        ({"username": "Olga", "password": STRONG, "role": "admin"}, 422, "invalid_request"),
        ({"username": "paula", "password": STRONG, "role": "viewer", "team": "it"}, 409, "conflict"),
        ({"username": "olga", "password": STRONG, "role": "superuser"}, 422, "invalid_request"),
    ],
)
async def test_create_user(
    client: httpx.AsyncClient, accounts: dict[Role, Any], body: dict[str, Any], status: int, code: str | None
) -> None:
    response = await client.post("/api/v1/users", json=body, headers=accounts[Role.ADMIN].headers)
    assert response.status_code == status, response.text
    if code:
        assert response.json()["error"]["code"] == code
    else:
        assert STRONG not in response.text
        assert "password_hash" not in response.json()


async def test_created_user_is_audited(client: httpx.AsyncClient, accounts: dict[Role, Any], api: HubApi) -> None:
    body = {"username": "olga", "password": STRONG, "role": "adp_operator", "team": "adp"}
    await client.post("/api/v1/users", json=body, headers=accounts[Role.ADMIN].headers)
    [entry] = await api.audit.entries(AuditQuery(action="user.created", actor="admin"))
    assert (entry.target, entry.detail, entry.source) == (
        "olga",
        {"role": "adp_operator", "team": "adp"},
        "203.0.113.7",
    )
    assert STRONG not in str(entry.as_dict())


async def test_list_users(client: httpx.AsyncClient, accounts: dict[Role, Any]) -> None:
    response = await client.get("/api/v1/users", headers=accounts[Role.ADMIN].headers)
    users = response.json()["items"]
    assert [u["username"] for u in users] == ["admin", "andrei", "ion", "paula", "vera"]
    assert all("password_hash" not in u for u in users)
    assert response.json()["next_offset"] is None


async def test_list_users_pages_and_filters(client: httpx.AsyncClient, accounts: dict[Role, Any]) -> None:
    headers = accounts[Role.ADMIN].headers
    first = (await client.get("/api/v1/users", params={"limit": 2}, headers=headers)).json()
    assert ([u["username"] for u in first["items"]], first["next_offset"]) == (["admin", "andrei"], 2)
    last = (await client.get("/api/v1/users", params={"limit": 2, "offset": 4}, headers=headers)).json()
    assert ([u["username"] for u in last["items"]], last["next_offset"]) == (["vera"], None)
    police = (await client.get("/api/v1/users", params={"team": "police"}, headers=headers)).json()
    assert [u["username"] for u in police["items"]] == ["paula"]
    viewers = (await client.get("/api/v1/users", params={"role": "viewer"}, headers=headers)).json()
    assert [u["username"] for u in viewers["items"]] == ["vera"]


async def test_disabling_revokes_tokens(client: httpx.AsyncClient, accounts: dict[Role, Any]) -> None:
    admin, paula = accounts[Role.ADMIN].headers, accounts[Role.POLICE_OPERATOR].headers
    response = await client.patch("/api/v1/users/paula", json={"disabled": True}, headers=admin)
    assert response.json()["disabled"] is True
    await client.patch("/api/v1/users/paula", json={"disabled": False}, headers=admin)
    assert (await client.get("/api/v1/me", headers=paula)).status_code == 401


async def test_role_change_applies_to_the_next_request(client: httpx.AsyncClient, accounts: dict[Role, Any]) -> None:
    admin, vera = accounts[Role.ADMIN].headers, accounts[Role.VIEWER].headers
    assert (await client.get("/api/v1/users", headers=vera)).status_code == 403
    await client.patch("/api/v1/users/vera", json={"role": "admin", "team": None}, headers=admin)
    assert (await client.get("/api/v1/users", headers=vera)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("DELETE", "/api/v1/users/admin", None),
        ("PATCH", "/api/v1/users/admin", {"disabled": True}),
        ("PATCH", "/api/v1/users/admin", {"role": "viewer", "team": "city"}),
    ],
)
async def test_administrators_cannot_remove_themselves(
    client: httpx.AsyncClient, accounts: dict[Role, Any], method: str, path: str, body: Any
) -> None:
    response = await client.request(method, path, json=body, headers=accounts[Role.ADMIN].headers)
    assert (response.status_code, response.json()["error"]["code"]) == (409, "conflict")


async def test_last_enabled_admin_is_kept(client: httpx.AsyncClient, accounts: dict[Role, Any], api: HubApi) -> None:
    await api.users.create("root2", "Second-Root-Pass-42", Role.ADMIN, None)
    token = await api.users.issue_token("root2", 600)
    headers = {"Authorization": f"Bearer {token.value}"}
    await client.patch("/api/v1/users/admin", json={"disabled": True}, headers=headers)
    # root2 is now the only enabled administrator; admin (disabled) may go.
    assert (await client.delete("/api/v1/users/admin", headers=headers)).status_code == 204
    assert await api.users.count_admins() == 1


async def test_operator_needs_team_on_update(client: httpx.AsyncClient, accounts: dict[Role, Any]) -> None:
    response = await client.patch("/api/v1/users/paula", json={"team": None}, headers=accounts[Role.ADMIN].headers)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "team_required")


async def test_reset_password(client: httpx.AsyncClient, accounts: dict[Role, Any], api: HubApi) -> None:
    admin, paula = accounts[Role.ADMIN].headers, accounts[Role.POLICE_OPERATOR].headers
    body = {"new_password": "Reset-Strong-Pass-808"}
    assert (await client.post("/api/v1/users/paula/password", json=body, headers=admin)).status_code == 204
    assert (await client.get("/api/v1/me", headers=paula)).status_code == 401
    assert await api.users.authenticate("paula", "Reset-Strong-Pass-808") is not None
    [entry] = await api.audit.entries(AuditQuery(action="user.password_reset"))
    assert (entry.actor, entry.target) == ("admin", "paula")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/users/ghost", None),
        ("PATCH", "/api/v1/users/ghost", {"disabled": True}),
        ("DELETE", "/api/v1/users/ghost", None),
        ("POST", "/api/v1/users/ghost/password", {"new_password": "Reset-Strong-Pass-808"}),
    ],
)
async def test_unknown_user_404(
    client: httpx.AsyncClient, accounts: dict[Role, Any], method: str, path: str, body: Any
) -> None:
    response = await client.request(method, path, json=body, headers=accounts[Role.ADMIN].headers)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
