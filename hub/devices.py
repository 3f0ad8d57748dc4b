"""What the hub knows of each device: its last birth and its online state, kept in SQLite.

It decides which status messages are state changes worth a point: a retained status is delivered
again at every new subscription, and a last will carries no time of its own, so without this record a
restarted hub would store the same offline transition twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hub.storage.sqlitedb import SqliteDatabase, transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS device_state (
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    boot INTEGER NOT NULL,
    state TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    birth TEXT,
    PRIMARY KEY (site, device)
);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceState:
    """A device's last known state."""

    site: str
    device: str
    kind: str
    boot: int
    state: str
    since_ms: int
    birth: str | None = None
    gateway: str | None = None  # 'site/device' of the edge agent it publishes through (from its birth)


class DeviceInfo(Protocol):
    """What readers of the registry (the API, the KPI reports) use of a device; DeviceState has it."""

    @property
    def site(self) -> str: ...

    @property
    def device(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def since_ms(self) -> int: ...


class DeviceSource(Protocol):
    """The hub's known devices (DeviceStates satisfies it)."""

    def all(self) -> Sequence[DeviceInfo]: ...


class DeviceStates:
    """Device states, cached in memory and written through to SQLite after each stored batch."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, _SCHEMA)
        self._states: dict[tuple[str, str], DeviceState] = {}
        self._by_gateway: dict[str, set[tuple[str, str]]] = {}

    async def open(self) -> None:
        """Load every known device."""
        await self._db.open()
        rows = await self._db.run(
            lambda conn: conn.execute(
                "SELECT site, device, kind, boot, state, since_ms, birth FROM device_state"
            ).fetchall()
        )
        for site, device, kind, boot, state, since_ms, birth in rows:
            gateway = json.loads(birth).get("gateway") if birth else None
            self._remember(
                DeviceState(
                    site=site,
                    device=device,
                    kind=kind,
                    boot=boot,
                    state=state,
                    since_ms=since_ms,
                    birth=birth,
                    gateway=gateway,
                )
            )

    def _remember(self, state: DeviceState) -> None:
        key = (state.site, state.device)
        previous = self._states.get(key)
        if previous is not None and previous.gateway is not None:
            self._by_gateway[previous.gateway].discard(key)
        if state.gateway is not None:
            self._by_gateway.setdefault(state.gateway, set()).add(key)
        self._states[key] = state

    def get(self, site: str, device: str) -> DeviceState | None:
        """The last stored state of a device."""
        return self._states.get((site, device))

    def all(self) -> list[DeviceState]:
        """Every known device."""
        return list(self._states.values())

    def __len__(self) -> int:
        return len(self._states)

    def behind(self, gateway: str) -> list[DeviceState]:
        """The devices whose birth names ``gateway`` ('site/device' of an edge agent)."""
        return [self._states[key] for key in self._by_gateway.get(gateway, ())]

    async def save(self, states: list[DeviceState]) -> None:
        """Record new states (after the batch that carries them is stored)."""
        if not states:
            return

        def upsert(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO device_state (site, device, kind, boot, state, since_ms, birth) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site, device) DO UPDATE SET kind = excluded.kind, "
                "boot = excluded.boot, state = excluded.state, since_ms = excluded.since_ms, birth = excluded.birth",
                [(s.site, s.device, s.kind, s.boot, s.state, s.since_ms, s.birth) for s in states],
            )

        await self._db.run(lambda conn: transaction(conn, upsert))
        for state in states:
            self._remember(state)

    async def aclose(self) -> None:
        """Close the file."""
        await self._db.aclose()
