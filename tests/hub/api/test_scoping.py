"""Team scoping: each operator sees and reaches only the devices of their team's sites and kinds."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hub.api.roles import EVERYTHING, NOTHING, Grant, Role, Scope, scope_for
from hub.api.settings import TeamConfig, default_teams

ALL = {
    "demo-server-room/ups-1",
    "demo-server-room/crac-1",
    "demo-server-room/agent-1",
    "demo-bastion/bastion-gate",
    "demo-palace/palace-court",
    "demo-palace/ups-2",
    "park-central/lamp-7",
    "park-central/aq-1",
}
VISIBLE = {
    Role.ADMIN: ALL,
    # server-room kinds wherever they are, cameras nowhere
    Role.IT_OPERATOR: {
        "demo-server-room/ups-1",
        "demo-server-room/crac-1",
        "demo-server-room/agent-1",
        "demo-palace/ups-2",
    },
    # cameras at every site, never the UPS
    Role.POLICE_OPERATOR: {"demo-bastion/bastion-gate", "demo-palace/palace-court"},
    Role.ADP_OPERATOR: {"park-central/lamp-7", "park-central/aq-1"},
    Role.VIEWER: ALL,  # the test viewer's team is city-wide
}


@pytest.mark.parametrize("role", list(Role))
async def test_device_list_is_scoped(client: httpx.AsyncClient, accounts: dict[Role, Any], role: Role) -> None:
    response = await client.get("/api/v1/devices", headers=accounts[role].headers)
    assert response.status_code == 200
    assert {f"{d['site']}/{d['device']}" for d in response.json()["items"]} == VISIBLE[role]


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("device", sorted(ALL))
async def test_device_outside_the_team_is_not_found(
    client: httpx.AsyncClient, accounts: dict[Role, Any], role: Role, device: str
) -> None:
    response = await client.get(f"/api/v1/devices/{device}", headers=accounts[role].headers)
    assert response.status_code == (200 if device in VISIBLE[role] else 404)


async def test_filters_within_the_scope(client: httpx.AsyncClient, accounts: dict[Role, Any]) -> None:
    headers = accounts[Role.POLICE_OPERATOR].headers
    response = await client.get("/api/v1/devices", params={"site": "demo-palace"}, headers=headers)
    assert [d["device"] for d in response.json()["items"]] == ["palace-court"]
    response = await client.get("/api/v1/devices", params={"kind": "ups"}, headers=headers)
    assert response.json() == {"items": [], "next_offset": None}


async def test_me_shows_role_permissions_and_scope(client: httpx.AsyncClient, accounts: dict[Role, Any]) -> None:
    response = await client.get("/api/v1/me", headers=accounts[Role.POLICE_OPERATOR].headers)
    assert response.json() == {
        "username": "paula",
        "role": "police_operator",
        "team": "police",
        "permissions": [
            "alerts.ack",
            "alerts.read",
            "devices.read",
            "devices.revoke",
            "registrations.decide",
            "registrations.read",
            "reports.read",
            "rules.read",
        ],
        "scope": [{"sites": ["*"], "kinds": ["camera"]}],
    }


@pytest.mark.parametrize(
    ("site", "kind", "allowed"),
    [
        ("cjt-server-room", "camera", True),  # the extra grant: everything in a server room
        ("cjt-server-room", "ups", True),
        ("sector2-market", "ups", True),  # the team's kinds at every site
        ("sector2-market", "camera", False),
        ("server-room", "camera", False),  # the glob wants a prefix
    ],
)
def test_team_with_extra_grants(site: str, kind: str, allowed: bool) -> None:
    team = TeamConfig(kinds=["ups"], grants=[{"sites": ["*-server-room"], "kinds": ["*"]}])  # type: ignore[list-item]
    assert scope_for(Role.IT_OPERATOR, "it", {"it": team}).allows(site, kind) is allowed


@pytest.mark.parametrize(
    ("role", "team", "expected"),
    [
        (Role.ADMIN, None, EVERYTHING),
        (Role.ADMIN, "police", EVERYTHING),
        (Role.VIEWER, None, NOTHING),  # fail closed: a scoped role without a team sees nothing
        (Role.POLICE_OPERATOR, "gone", NOTHING),  # a team removed from the configuration
        (Role.POLICE_OPERATOR, "police", Scope(grants=(Grant(sites=("*",), kinds=("camera",)),))),
    ],
)
def test_scope_for(role: Role, team: str | None, expected: Scope) -> None:
    assert scope_for(role, team, default_teams()) == expected


def test_filter_by_for_items_that_are_not_located() -> None:
    scope = scope_for(Role.ADP_OPERATOR, "adp", default_teams())
    alerts = [("park-central", "street_light", "lamp out"), ("demo-palace", "camera", "tamper")]
    assert scope.filter_by(alerts, lambda a: (a[0], a[1])) == [alerts[0]]
