"""An API over real SQLite files in tmp_path, a fake device list, one account per role, a test clock;
last values fed with one reading per device, history from a real embedded store holding them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from prometheus_client import CollectorRegistry

from cityhub.contract import Reading, TelemetryMessage
from cityhub.http import create_app
from hub.api import ApiSettings, HubApi, build_api
from hub.api.ratelimit import LoginLimiter, LoginLimits
from hub.api.roles import Role
from hub.api.settings import TeamConfig, default_teams
from hub.api.users import UserStore
from hub.audit import AuditLog
from hub.ingest import telemetry_points
from hub.lastvalues import LastValues
from hub.storage.history import HistoryReader, SqliteHistory
from hub.storage.sqlite_store import SqliteStore

CLIENT_IP = "203.0.113.7"
BOOTSTRAP_PASSWORD = "Bootstrap-Root-Pass-9471"
#: Cheap argon2id parameters: the tests check behaviour, not cost.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class Clock:
    """A settable clock for token expiry, audit times and the login window."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    site: str
    device: str
    kind: str
    state: str = "online"
    since_ms: int = 0


class Devices:
    def __init__(self, devices: list[Device]) -> None:
        self.devices = devices

    def all(self) -> list[Device]:
        return list(self.devices)


DEVICES = [
    Device(site="demo-server-room", device="ups-1", kind="ups"),
    Device(site="demo-server-room", device="crac-1", kind="climate"),
    Device(site="demo-server-room", device="agent-1", kind="edge_agent"),
    Device(site="demo-bastion", device="bastion-gate", kind="camera"),
    Device(site="demo-palace", device="palace-court", kind="camera"),
    Device(site="demo-palace", device="ups-2", kind="ups"),
    Device(site="park-central", device="lamp-7", kind="street_light"),
    Device(site="park-central", device="aq-1", kind="air_quality"),
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    username: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


#: One user per role (the admin is the bootstrap one); the viewer is in a city-wide read-only team.
PEOPLE = {
    Role.ADMIN: ("admin", BOOTSTRAP_PASSWORD, None),
    Role.IT_OPERATOR: ("ion", "Ion-Server-Room-Pass-1", "it"),
    Role.POLICE_OPERATOR: ("paula", "Paula-Cameras-Pass-22", "police"),
    Role.ADP_OPERATOR: ("andrei", "Andrei-Street-Pass-333", "adp"),
    Role.VIEWER: ("vera", "Vera-Read-Only-Pass-4444", "city"),
}


def api_settings(**overrides: Any) -> ApiSettings:
    """Production settings with a strong bootstrap password and a city-wide team for viewers."""
    teams = {**default_teams(), "city": TeamConfig(description="read-only, everything")}
    values: dict[str, Any] = {
        "environment": "production",
        "bootstrap_admin_password": BOOTSTRAP_PASSWORD,
        "teams": teams,
        "login_max_failures_per_user": 3,
        "login_max_failures_per_ip": 6,
        "login_window_s": 60,
    }
    return ApiSettings(**{**values, **overrides})


#: The reading every test device has sent (at READING_MS), in the last values and in the store.
READING_MS = 1_700_000_000_000
POINT = "device.temperature"


def telemetry(device: Device, value: float, ts_ms: int = READING_MS) -> TelemetryMessage:
    """One reading of POINT by ``device``."""
    reading = Reading(metric=POINT, value=value, unit="Cel", ts=ts_ms)
    return TelemetryMessage(site=device.site, device=device.device, kind=device.kind, boot=1, seq=1, readings=[reading])


@pytest.fixture
async def timeseries(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A real embedded store holding each test device's reading."""
    store = SqliteStore(tmp_path / "timeseries.sqlite")
    await store.open()
    await store.write([point for device in DEVICES for point in telemetry_points(telemetry(device, 21.5))])
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
def last_values() -> LastValues:
    values = LastValues()
    for device in DEVICES:
        values.observe(telemetry(device, 21.5))
    return values


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings() -> ApiSettings:
    return api_settings()


@contextlib.asynccontextmanager
async def open_api(
    tmp_path: Path,
    clock: Clock,
    settings: ApiSettings,
    *,
    devices: Devices,
    values: LastValues,
    history: HistoryReader,
) -> AsyncIterator[HubApi]:
    """An API over real SQLite users and audit files in ``tmp_path``, on the test clock, open for the block."""
    limits = LoginLimits(
        window_s=settings.login_window_s,
        per_user=settings.login_max_failures_per_user,
        per_ip=settings.login_max_failures_per_ip,
    )
    hub_api = HubApi(
        settings,
        users=UserStore(tmp_path / "users.sqlite", hasher=FAST_HASHER, clock=clock),
        audit=AuditLog(tmp_path / "audit.sqlite", clock=clock),
        devices=devices, values=values, history=history, limiter=LoginLimiter(limits, clock=clock),
    )  # fmt: skip
    await hub_api.open()
    try:
        yield hub_api
    finally:
        await hub_api.aclose()


@pytest.fixture
async def api(
    tmp_path: Path, clock: Clock, settings: ApiSettings, timeseries: SqliteStore, last_values: LastValues
) -> AsyncIterator[HubApi]:
    history = SqliteHistory(timeseries)
    async with open_api(
        tmp_path, clock, settings, devices=Devices(DEVICES), values=last_values, history=history
    ) as api:
        yield api


@pytest.fixture
def app(api: HubApi) -> Any:
    application = create_app(CollectorRegistry(), lambda: {"status": "ok"}, title="cityhub hub (test)")
    return build_api(application, api)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
        yield http


@pytest.fixture
async def accounts(api: HubApi) -> dict[Role, Account]:
    """One logged-in account per role."""
    result = {}
    for role, (username, password, team) in PEOPLE.items():
        if role is not Role.ADMIN:
            await api.users.create(username, password, role, team)
        token = await api.users.issue_token(username, api.settings.token_ttl_s)
        result[role] = Account(username=username, password=password, token=token.value)
    return result
