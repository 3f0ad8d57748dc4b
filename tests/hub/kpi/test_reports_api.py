"""``GET /api/v1/reports/kpi`` per role and team: each caller's figures cover their scope only.

The API runs over the real user, audit, registry and alert files of conftest's small city; the hub's
device registry is the live one (hub.devices.DeviceStates), as in a running hub.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubtools import hub_settings
from prometheus_client import CollectorRegistry

from cityhub.http import create_app
from hub.api import HubApi, build_api
from hub.api.roles import Role
from hub.api.routers import reports
from hub.api.settings import IT_KINDS
from hub.api.users import UserStore
from hub.audit import AuditLog
from hub.devices import DeviceStates
from hub.kpi import source_for
from tests.hub.api.conftest import FAST_HASHER, PEOPLE, api_settings

from .conftest import FROM, TO


@pytest.fixture
async def client(city: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[Role, dict[str, str]]]]:
    """An API client and each role's headers (conftest's users: admin, ion, paula, andrei, vera)."""
    devices = DeviceStates(city / "devices.sqlite")
    await devices.open()
    api = HubApi(
        api_settings(),
        users=UserStore(city / "users.sqlite", hasher=FAST_HASHER),
        audit=AuditLog(city / "audit.sqlite"),
        devices=devices,
    )
    await api.open()
    app = build_api(create_app(CollectorRegistry(), lambda: {"status": "ok"}, title="t"), api, [reports.router])
    settings = hub_settings(city.parent, "mqtt://127.0.0.1:1", client_id=city.name)
    app.state.cityhub_kpi = source_for(settings, devices)
    headers = {}
    for role, (username, password, team) in PEOPLE.items():
        if role is not Role.ADMIN:
            await api.users.create(username, password, role, team)
        token = await api.users.issue_token(username, 600)
        headers[role] = {"Authorization": f"Bearer {token.value}"}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as http:
            yield http, headers
    finally:
        await api.aclose()
        await devices.aclose()


async def kpi(client: Any, role: Role, **params: str) -> httpx.Response:
    http, headers = client
    response: httpx.Response = await http.get("/api/v1/reports/kpi", params=params, headers=headers[role])
    return response


def names(rows: list[dict[str, Any]], key: str) -> list[str]:
    return [row[key] for row in rows]


# Who sees what (tests/hub/api/conftest.py's teams): it the UPS, police the camera, adp the street kinds;
# the viewer's team and the administrator see everything.
EVERYONE = ["aq-1", "cam-1", "lamp-1", "ups-1"]
SCOPES = {
    Role.ADMIN: (EVERYONE, ["it", "police"]),
    Role.VIEWER: (EVERYONE, ["it", "police"]),
    Role.IT_OPERATOR: (["ups-1"], ["it"]),
    Role.POLICE_OPERATOR: (["cam-1"], ["police"]),
    Role.ADP_OPERATOR: (["aq-1", "lamp-1"], []),
}


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_sees_the_figures_of_its_scope(client: Any, role: Role) -> None:
    response = await kpi(client, role, **{"from": FROM, "to": TO})
    assert response.status_code == 200, response.text
    body = response.json()
    devices, teams = SCOPES[role]
    assert sorted(names(body["availability_by_device"], "device")) == devices
    assert names(body["response_times"], "team") == teams
    assert (body["from"], body["to"]) == ("2026-03-02T00:00:00+02:00", "2026-03-02T10:00:00+02:00")
    assert body["summary"]["devices_managed"] == len(devices)


async def test_an_operator_gets_only_the_figures_of_their_team(client: Any) -> None:
    body = (await kpi(client, Role.IT_OPERATOR, **{"from": FROM, "to": TO})).json()
    assert body["availability_by_site"] == [
        {"site": "palace", "devices": 1, "devices_with_data": 1, "online_s": 8 * 3600.0, "observed_s": 10 * 3600.0,
         "availability": 0.8},
    ]  # fmt: skip
    assert body["response_times"] == [
        {"team": "it", "episodes": 1, "acknowledged": 1, "mtta_s": 60.0, "resolved": 1, "mttr_s": 300.0,
         "open_at_end": 0},
    ]  # fmt: skip
    assert body["scope"] == [{"sites": ["*"], "kinds": IT_KINDS}]
    # The city-wide figure is the viewer's: (8 + 10 + 2) h online of 24 h observed.
    city = (await kpi(client, Role.VIEWER, **{"from": FROM, "to": TO})).json()
    assert city["summary"]["availability"] == pytest.approx(20 / 24, abs=1e-6)
    assert city["summary"]["mtta_s"] == 90.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2026-02-30"}, "'from' '2026-02-30' is not an ISO date"),
        ({"from": TO, "to": FROM}, "the period must end after it starts"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "a report covers at most 400 days"),
        ({"to": "x" * 41}, "to: String should have at most 40 characters"),
    ],
)
async def test_bad_periods_are_refused_with_the_error_body(client: Any, params: dict[str, str], message: str) -> None:
    response = await kpi(client, Role.ADMIN, **params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert message in error["message"], error
    assert error["code"] in {"invalid_period", "invalid_request"}


async def test_without_a_login_401(client: Any) -> None:
    http, _ = client
    response = await http.get("/api/v1/reports/kpi")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


async def test_the_default_period_is_the_last_week(client: Any) -> None:
    body = (await kpi(client, Role.ADMIN)).json()
    assert body["to_ms"] - body["from_ms"] == 7 * 86_400_000
    # The small city's transitions are months old by now: the registry still says each device's state
    # (lamp-1 offline, the three others online) for the whole week.
    assert (body["summary"]["devices_managed"], body["summary"]["devices_online"]) == (4, 3)
    assert body["summary"]["availability"] == 0.75
