"""The device registry in SQLite: each registered device's state and an append-only history.

One row per (site, device) holds where the device stands (pending, approved, rejected, revoked), what it
said of itself and who decided. Every change also appends a row to ``registry_history``, which triggers
keep append-only, so the registry remembers who approved what and when even after a replacement.

While a request is pending, the password the device chose waits in ``pending_password``: the hub needs
it to create the login on approval. It is cleared by the decision. The file is created mode 0600.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityhub.contract.registration import RegistrationRequest, RegistrationState
from hub.storage.sqlitedb import SqliteDatabase, transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS registry (
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    state TEXT NOT NULL,
    kind TEXT NOT NULL,
    provisioning_key TEXT NOT NULL,
    description TEXT NOT NULL,
    gateway_for TEXT NOT NULL,
    pending_password TEXT,
    nonce TEXT NOT NULL,
    username TEXT,
    requested_ms INTEGER NOT NULL,
    decided_ms INTEGER,
    decided_by TEXT,
    reason TEXT,
    PRIMARY KEY (site, device)
);
CREATE TABLE IF NOT EXISTS registry_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL
);
-- Every nonce ever recorded, so a replay is found by key, not by scanning the history.
CREATE TABLE IF NOT EXISTS registry_nonces (nonce TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS registry_history_no_update BEFORE UPDATE ON registry_history
BEGIN SELECT RAISE(ABORT, 'registry history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS registry_history_no_delete BEFORE DELETE ON registry_history
BEGIN SELECT RAISE(ABORT, 'registry history is append-only'); END;
"""

_COLUMNS = (
    "site, device, state, kind, provisioning_key, description, gateway_for, nonce, username, "
    "requested_ms, decided_ms, decided_by, reason, pending_password IS NOT NULL"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """A device's entry in the registry."""

    site: str
    device: str
    state: RegistrationState
    kind: str
    provisioning_key: str
    description: dict[str, Any]  # maker, model, firmware, serial, profile, metrics, events
    gateway_for: tuple[tuple[str, str], ...]
    nonce: str
    username: str | None
    requested_ms: int
    decided_ms: int | None
    decided_by: str | None
    reason: str | None
    # A request waits for a decision: a new device, or an approved one asking again (a replacement).
    # An approved device stays approved meanwhile, so a request cannot cut a working device off.
    awaiting_decision: bool

    def as_dict(self) -> dict[str, Any]:
        """The entry as the API shows it (never a password)."""
        return {
            "site": self.site,
            "device": self.device,
            "state": self.state.value,
            "kind": self.kind,
            "provisioning_key": self.provisioning_key,
            "description": self.description,
            "gateway_for": [{"site": s, "device": d} for s, d in self.gateway_for],
            "username": self.username,
            "requested_ms": self.requested_ms,
            "decided_ms": self.decided_ms,
            "decided_by": self.decided_by,
            "reason": self.reason,
            "awaiting_decision": self.awaiting_decision,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One change of the registry."""

    ts_ms: int
    site: str
    device: str
    action: str
    actor: str
    detail: dict[str, Any]


def _row(row: tuple[Any, ...]) -> Registration:
    site, device, state, kind, key, description, gateway, nonce, username, requested, decided, by, reason, waits = row
    return Registration(
        site=site,
        device=device,
        state=RegistrationState(state),
        kind=kind,
        provisioning_key=key,
        description=json.loads(description),
        gateway_for=tuple((g["site"], g["device"]) for g in json.loads(gateway)),
        nonce=nonce,
        username=username,
        requested_ms=requested,
        decided_ms=decided,
        decided_by=by,
        reason=reason,
        awaiting_decision=bool(waits),
    )


def _history(
    conn: sqlite3.Connection, ts_ms: int, site: str, device: str, action: str, actor: str, **detail: Any
) -> None:
    conn.execute(
        "INSERT INTO registry_history (ts_ms, site, device, action, actor, detail) VALUES (?, ?, ?, ?, ?, ?)",
        (ts_ms, site, device, action, actor, json.dumps(detail, sort_keys=True)),
    )


class RegistryStore:
    """Registry rows and history; every method is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SqliteDatabase(path, _SCHEMA, private=True)

    async def open(self) -> None:
        """Create or open the file, readable by the hub's user only (it holds pending passwords)."""
        await self._db.open()

    async def aclose(self) -> None:
        """Close the file."""
        await self._db.aclose()

    async def get(self, site: str, device: str) -> Registration | None:
        """The device's entry, if any."""
        row = await self._db.run(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM registry WHERE site = ? AND device = ?", (site, device)
            ).fetchone()
        )
        return _row(row) if row else None

    async def entries(self, *, awaiting_decision: bool = False) -> list[Registration]:
        """Every entry (or those waiting for a decision), oldest request first."""
        where = "WHERE pending_password IS NOT NULL" if awaiting_decision else ""
        rows = await self._db.run(
            lambda c: c.execute(f"SELECT {_COLUMNS} FROM registry {where} ORDER BY requested_ms").fetchall()
        )
        return [_row(r) for r in rows]

    async def nonce_seen(self, nonce: str) -> bool:
        """Whether a request with this nonce was ever recorded (a replay)."""
        row = await self._db.run(
            lambda c: c.execute("SELECT 1 FROM registry_nonces WHERE nonce = ?", (nonce,)).fetchone()
        )
        return row is not None

    async def record_request(self, key: str, request: RegistrationRequest, now_ms: int) -> None:
        """Record a request as pending, replacing a previous pending one of the same device."""
        description = request.model_dump(
            include={"profile", "maker", "model", "firmware", "serial", "metrics", "events"}, exclude_none=True
        )
        gateway = json.dumps([g.model_dump() for g in request.gateway_for])

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                """INSERT INTO registry (site, device, state, kind, provisioning_key, description, gateway_for,
                       pending_password, nonce, requested_ms)
                   VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (site, device) DO UPDATE SET
                       state = CASE WHEN state = 'approved' THEN 'approved' ELSE 'pending' END,
                       kind = excluded.kind, provisioning_key = excluded.provisioning_key,
                       description = excluded.description, gateway_for = excluded.gateway_for,
                       pending_password = excluded.pending_password, nonce = excluded.nonce,
                       requested_ms = excluded.requested_ms""",
                (
                    request.site,
                    request.device,
                    request.kind,
                    key,
                    json.dumps(description, sort_keys=True),
                    gateway,
                    request.password,
                    request.nonce,
                    now_ms,
                ),
            )
            conn.execute("INSERT INTO registry_nonces (nonce) VALUES (?)", (request.nonce,))
            _history(conn, now_ms, request.site, request.device, "requested", f"key:{key}", nonce=request.nonce)

        await self._db.run(lambda c: transaction(c, write))

    async def pending_password(self, site: str, device: str) -> str | None:
        """The password a pending request chose."""
        row = await self._db.run(
            lambda c: c.execute(
                "SELECT pending_password FROM registry WHERE site = ? AND device = ?", (site, device)
            ).fetchone()
        )
        return row[0] if row else None

    async def decide(
        self,
        site: str,
        device: str,
        state: RegistrationState,
        *,
        actor: str,
        now_ms: int,
        username: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Record a decision (approve, reject, revoke); the pending password is forgotten."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                """UPDATE registry SET state = ?, username = COALESCE(?, username), decided_ms = ?, decided_by = ?,
                       reason = ?, pending_password = NULL WHERE site = ? AND device = ?""",
                (state.value, username, now_ms, actor, reason, site, device),
            )
            _history(conn, now_ms, site, device, state.value, actor, reason=reason)

        await self._db.run(lambda c: transaction(c, write))

    async def history(self, site: str, device: str) -> list[HistoryEntry]:
        """Every change of one device, oldest first."""
        rows = await self._db.run(
            lambda c: c.execute(
                "SELECT ts_ms, site, device, action, actor, detail FROM registry_history "
                "WHERE site = ? AND device = ? ORDER BY id",
                (site, device),
            ).fetchall()
        )
        return [
            HistoryEntry(ts_ms=t, site=s, device=d, action=a, actor=who, detail=json.loads(detail))
            for t, s, d, a, who, detail in rows
        ]

    async def approved_pairs(self) -> set[tuple[str, str]]:
        """Every (site, device) the hub may store data of: approved devices and those they publish for."""
        rows = await self._db.run(
            lambda c: c.execute("SELECT site, device, gateway_for FROM registry WHERE state = 'approved'").fetchall()
        )
        pairs: set[tuple[str, str]] = set()
        for site, device, gateway in rows:
            pairs.add((site, device))
            pairs.update((g["site"], g["device"]) for g in json.loads(gateway))
        return pairs
