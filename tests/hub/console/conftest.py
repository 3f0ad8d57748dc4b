"""A real hub (real Mosquitto, SQLite store, the shipped rule packs) serving the console on a free port,
with one account per kind of console user: an IT operator, a police operator and a city-wide viewer."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hubtools import hub_settings, running_hub
from services import MosquittoServer
from testkit import unique

from hub.api.roles import Role
from hub.api.settings import TeamConfig, default_teams
from hub.config import HubSettings
from hub.console import AlertBroadcaster
from hub.service import Hub

ADMIN_PASSWORD = "Console-Root-Pass-5521"
#: username -> (password, role, team)
PEOPLE: dict[str, tuple[str, Role, str]] = {
    "ion": ("Ion-Server-Room-Pass-1", Role.IT_OPERATOR, "it"),
    "paula": ("Paula-Cameras-Pass-22", Role.POLICE_OPERATOR, "police"),
    "vera": ("Vera-Read-Only-Pass-4444", Role.VIEWER, "city"),
}
ARTIFACTS = Path(os.environ.get("CITYHUB_ARTIFACTS") or Path(__file__).parents[2] / "artifacts")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleHub:
    """A running hub and where its console is."""

    hub: Hub
    base_url: str

    @property
    def broadcaster(self) -> AlertBroadcaster:
        assert self.hub.http is not None
        app = self.hub.http.config.app
        assert isinstance(app, FastAPI)
        broadcaster: AlertBroadcaster = app.state.cityhub_console_stream
        return broadcaster

    async def token(self, username: str) -> str:
        """Log ``username`` in over HTTP, as the console does."""
        password = PEOPLE[username][0]
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            answer = await client.post("/api/v1/auth/token", data={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])


def console_settings(tmp_path: Path, mosquitto: MosquittoServer, **sections: Any) -> HubSettings:
    """A hub on the shared Mosquitto (a topic root of its own) with the console's test accounts' teams."""
    api = {
        "bootstrap_admin_password": ADMIN_PASSWORD,
        "teams": {**default_teams(), "city": TeamConfig(description="read-only, everything")},
    }
    alerts = {"tick_s": 0.05, **sections.pop("alerts", {})}
    return hub_settings(
        tmp_path, mosquitto.url, client_id=unique("console-hub-"), mqtt={"topic_root": unique("console")},
        api=api, alerts=alerts, **sections,
    )  # fmt: skip


async def add_people(hub: Hub) -> None:
    """The console's test accounts."""
    for username, (password, role, team) in PEOPLE.items():
        await hub.api.users.create(username, password, role, team)


async def served(hub: Hub) -> ConsoleHub:
    """The hub once its HTTP server listens."""
    async with asyncio.timeout(10):
        while hub.http is None or hub.http.bound_port is None:  # noqa: ASYNC110 (the hub's own task binds it)
            await asyncio.sleep(0.02)
    return ConsoleHub(hub=hub, base_url=f"http://127.0.0.1:{hub.http.bound_port}")


@pytest.fixture
async def console_hub(tmp_path: Path, mosquitto: MosquittoServer) -> AsyncIterator[ConsoleHub]:
    """A hub serving the console, its accounts created."""
    async with running_hub(console_settings(tmp_path, mosquitto)) as hub:
        await add_people(hub)
        yield await served(hub)


@contextlib.asynccontextmanager
async def hub_with_clock(settings: HubSettings, clock: Callable[[], int]) -> AsyncIterator[ConsoleHub]:
    """Like hubtools.running_hub, with the rules on ``clock`` (scenarios played faster than real time)."""
    hub = Hub(settings, alert_clock_ms=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(hub.run(stop))
    try:
        await asyncio.wait_for(_ready(hub, task), 20)
        await add_people(hub)
        yield await served(hub)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def _ready(hub: Hub, task: asyncio.Task[None]) -> None:
    waiting = asyncio.create_task(hub.ready.wait())
    try:
        await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
    if task.done():
        task.result()  # the hub's start-up error


def artifact(name: str) -> Path:
    """Where a test keeps ``name`` for people to look at ($CITYHUB_ARTIFACTS, else tests/artifacts/)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
