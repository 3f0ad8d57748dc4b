"""Alerts in SQLite: each alert's current state, its append-only history, silences, and the engine's timers.

One row per alert holds where it stands (firing, acknowledged, resolved) and who acted. A partial unique
index allows one open alert per rule and subject: the deduplication the whole lifecycle leans on holds
in the database, not only in memory. Every change also appends a row to ``alert_history``, which
triggers keep append-only. The rule engine's state (pending ``for`` timers, last-seen times) is saved
as one JSON document, so a restart in the middle of a ``for`` window fires at the original deadline.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.storage.sqlitedb import SqliteDatabase, transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    team TEXT NOT NULL,
    severity TEXT NOT NULL,
    summary TEXT NOT NULL,
    runbook TEXT,
    state TEXT NOT NULL,
    fired_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    acked_ms INTEGER,
    acked_by TEXT,
    resolved_ms INTEGER,
    resolved_by TEXT,
    escalation_level INTEGER NOT NULL DEFAULT 0,
    flaps INTEGER NOT NULL DEFAULT 0,
    muted_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_open ON alerts (rule, site, device) WHERE state != 'resolved';
CREATE INDEX IF NOT EXISTS alerts_by_state ON alerts (state, fired_ms);
-- The manager reads the recently resolved alerts at start (flapping): years of history must not be scanned.
CREATE INDEX IF NOT EXISTS alerts_by_resolution ON alerts (state, resolved_ms);
CREATE TABLE IF NOT EXISTS alert_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    event TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_history_by_alert ON alert_history (alert_id, id);
CREATE TRIGGER IF NOT EXISTS alert_history_no_update BEFORE UPDATE ON alert_history
BEGIN SELECT RAISE(ABORT, 'alert history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS alert_history_no_delete BEFORE DELETE ON alert_history
BEGIN SELECT RAISE(ABORT, 'alert history is append-only'); END;
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_ms INTEGER NOT NULL,
    ends_ms INTEGER NOT NULL,
    author TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expired_by TEXT
);
CREATE INDEX IF NOT EXISTS silences_by_end ON silences (ends_ms);
CREATE TABLE IF NOT EXISTS engine_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), saved_ms INTEGER NOT NULL, state TEXT NOT NULL
);
"""

_ALERT_COLUMNS = (
    "id, rule, site, device, kind, team, severity, summary, runbook, state, fired_ms, updated_ms, "
    "acked_ms, acked_by, resolved_ms, resolved_by, escalation_level, flaps, muted_by"
)

#: Alert states; an open alert is firing or acknowledged.
FIRING, ACKNOWLEDGED, RESOLVED = "firing", "acknowledged", "resolved"


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One alert: a rule firing for a subject, from the first FIRING to its resolution."""

    id: str
    rule: str
    site: str
    device: str
    kind: str
    team: str
    severity: str
    summary: str
    runbook: str | None
    state: str
    fired_ms: int
    updated_ms: int
    acked_ms: int | None = None
    acked_by: str | None = None
    resolved_ms: int | None = None
    resolved_by: str | None = None
    escalation_level: int = 0
    flaps: int = 0  # times it fired again shortly after resolving (reopened instead of a new alert)
    muted_by: str | None = None  # the silence or maintenance window that held back its notifications

    @property
    def open(self) -> bool:
        """Firing or acknowledged."""
        return self.state != RESOLVED

    def as_dict(self) -> dict[str, Any]:
        """The alert as the API shows it."""
        return {name: getattr(self, name) for name in _ALERT_COLUMNS.split(", ")}


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One change of an alert: what happened, who did it, when."""

    ts_ms: int
    event: str
    actor: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence:
    """Notifications held back for alerts matching every matcher, between two instants."""

    id: str
    matchers: dict[str, str]  # field (rule, site, device, kind, team, severity) -> glob
    starts_ms: int
    ends_ms: int
    author: str
    comment: str
    created_ms: int
    expired_by: str | None = None

    def active(self, now_ms: int) -> bool:
        """Whether it holds notifications back at ``now_ms``."""
        return self.expired_by is None and self.starts_ms <= now_ms < self.ends_ms

    def as_dict(self) -> dict[str, Any]:
        """The silence as the API shows it."""
        return {
            "id": self.id,
            "matchers": self.matchers,
            "starts_ms": self.starts_ms,
            "ends_ms": self.ends_ms,
            "author": self.author,
            "comment": self.comment,
            "created_ms": self.created_ms,
            "expired_by": self.expired_by,
        }


@dataclass(slots=True, kw_only=True)
class AlertQuery:
    """Filters of an alert listing; ``None`` means any."""

    states: Sequence[str] | None = None
    teams: Sequence[str] | None = None
    site: str | None = None
    severity: str | None = None
    since_ms: int | None = None
    limit: int = 100
    offset: int = 0


def _alert(row: Sequence[Any]) -> Alert:
    return Alert(**dict(zip(_ALERT_COLUMNS.split(", "), row, strict=True)))


class AlertStore:
    """The alerts file (mode 0600: alerts name places and people)."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, _SCHEMA, private=True)

    async def open(self) -> None:
        """Open or create the file."""
        await self._db.open()

    async def aclose(self) -> None:
        """Close the file."""
        await self._db.aclose()

    # -- alerts -----------------------------------------------------------------------------------

    async def open_alert(self, rule: str, site: str, device: str) -> Alert | None:
        """The open alert of ``rule`` for a subject, if any."""
        sql = f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE rule=? AND site=? AND device=? AND state!='resolved'"
        row = await self._db.run(lambda c: c.execute(sql, (rule, site, device)).fetchone())
        return _alert(row) if row else None

    async def resolved_since(self, since_ms: int) -> list[Alert]:
        """Alerts resolved at or after ``since_ms``, the earliest resolved first."""
        sql = f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE state='resolved' AND resolved_ms >= ? ORDER BY resolved_ms"
        rows = await self._db.run(lambda c: c.execute(sql, (since_ms,)).fetchall())
        return [_alert(r) for r in rows]

    async def get(self, alert_id: str) -> Alert | None:
        """One alert by id."""
        sql = f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id=?"
        row = await self._db.run(lambda c: c.execute(sql, (alert_id,)).fetchone())
        return _alert(row) if row else None

    async def query(self, q: AlertQuery) -> list[Alert]:
        """Alerts matching ``q``, newest first."""
        where: list[str] = ["1=1"]
        args: list[str | int] = []
        for column, values in (("state", q.states), ("team", q.teams)):
            if values is not None:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                args.extend(values)
        for column, value in (("site", q.site), ("severity", q.severity)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if q.since_ms is not None:
            where.append("fired_ms>=?")
            args.append(q.since_ms)
        sql = (
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE {' AND '.join(where)} "
            "ORDER BY fired_ms DESC, id LIMIT ? OFFSET ?"
        )
        rows = await self._db.run(lambda c: c.execute(sql, (*args, q.limit, q.offset)).fetchall())
        return [_alert(r) for r in rows]

    async def open_alerts(self) -> list[Alert]:
        """Every open alert, oldest first (escalation walks them)."""
        sql = f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE state!='resolved' ORDER BY fired_ms"
        rows = await self._db.run(lambda c: c.execute(sql).fetchall())
        return [_alert(r) for r in rows]

    async def insert(self, alert: Alert, actor: str, detail: Mapping[str, Any]) -> Alert:
        """Record a new alert and its first history entry, in one transaction."""
        values = tuple(getattr(alert, n) for n in _ALERT_COLUMNS.split(", "))

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(f"INSERT INTO alerts ({_ALERT_COLUMNS}) VALUES ({','.join('?' * len(values))})", values)
            _history(conn, alert.id, alert.fired_ms, alert.state, actor, detail)

        await self._db.run(lambda c: transaction(c, write))
        return alert

    async def update(self, alert: Alert, event: str, actor: str, detail: Mapping[str, Any]) -> Alert:
        """Save ``alert``'s new state with a history entry saying what changed, in one transaction."""
        names = [n for n in _ALERT_COLUMNS.split(", ") if n != "id"]
        values = tuple(getattr(alert, n) for n in names)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(f"UPDATE alerts SET {', '.join(f'{n}=?' for n in names)} WHERE id=?", (*values, alert.id))
            _history(conn, alert.id, alert.updated_ms, event, actor, detail)

        await self._db.run(lambda c: transaction(c, write))
        return alert

    async def note(self, alert_id: str, ts_ms: int, event: str, actor: str, detail: Mapping[str, Any]) -> None:
        """A history entry that changes nothing else (a comment, a failed notification)."""
        await self._db.run(lambda c: transaction(c, lambda conn: _history(conn, alert_id, ts_ms, event, actor, detail)))

    async def history(self, alert_id: str) -> list[HistoryEntry]:
        """Every change of an alert, oldest first."""
        sql = "SELECT ts_ms, event, actor, detail FROM alert_history WHERE alert_id=? ORDER BY id"
        rows = await self._db.run(lambda c: c.execute(sql, (alert_id,)).fetchall())
        return [HistoryEntry(ts_ms=r[0], event=r[1], actor=r[2], detail=json.loads(r[3])) for r in rows]

    # -- silences ---------------------------------------------------------------------------------

    async def add_silence(
        self, matchers: Mapping[str, str], starts_ms: int, ends_ms: int, author: str, comment: str, now_ms: int
    ) -> Silence:
        """Record a new silence."""
        silence = Silence(
            id=uuid.uuid4().hex[:12], matchers=dict(matchers), starts_ms=starts_ms, ends_ms=ends_ms,
            author=author, comment=comment, created_ms=now_ms,
        )  # fmt: skip
        sql = (
            "INSERT INTO silences (id, matchers, starts_ms, ends_ms, author, comment, created_ms) "
            "VALUES (?,?,?,?,?,?,?)"
        )
        args = (silence.id, json.dumps(silence.matchers), starts_ms, ends_ms, author, comment, now_ms)
        await self._db.run(lambda c: c.execute(sql, args))
        return silence

    async def expire_silence(self, silence_id: str, by: str, now_ms: int) -> Silence | None:
        """End a silence now; None if there is no such silence."""
        sql = "UPDATE silences SET expired_by=?, ends_ms=MIN(ends_ms, ?) WHERE id=? AND expired_by IS NULL"
        await self._db.run(lambda c: c.execute(sql, (by, now_ms, silence_id)))
        found = await self._silences("WHERE id = ?", (silence_id,))
        return found[0] if found else None

    async def silences(
        self, *, at_ms: int | None = None, ended: bool | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Silence]:
        """Silences, newest first: all of them, or (given ``at_ms``) those still to end (``ended=False``) or over.

        Silences are kept for ever (they explain why an alert was not notified), so callers that only
        need the ones in force ask for those and the index on ``ends_ms`` keeps that cheap after years.
        """
        clauses: list[str] = []
        args: list[Any] = []
        if at_ms is not None and ended is not None:
            clauses.append("ends_ms <= ?" if ended else "ends_ms > ?")
            args.append(at_ms)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = " LIMIT ? OFFSET ?" if limit is not None else ""
        if limit is not None:
            args += [limit, offset]
        return await self._silences(f"{where} ORDER BY created_ms DESC, id{tail}", tuple(args))

    async def _silences(self, clause: str, args: tuple[Any, ...]) -> list[Silence]:
        sql = f"SELECT id, matchers, starts_ms, ends_ms, author, comment, created_ms, expired_by FROM silences {clause}"
        rows = await self._db.run(lambda c: c.execute(sql, args).fetchall())
        return [
            Silence(
                id=r[0], matchers=json.loads(r[1]), starts_ms=r[2], ends_ms=r[3], author=r[4], comment=r[5],
                created_ms=r[6], expired_by=r[7],
            )
            for r in rows
        ]  # fmt: skip

    # -- the engine's state -----------------------------------------------------------------------

    async def save_engine_state(self, state: Mapping[str, Any], now_ms: int) -> None:
        """Replace the saved engine state."""
        sql = "INSERT OR REPLACE INTO engine_state (id, saved_ms, state) VALUES (1, ?, ?)"
        text = json.dumps(state, separators=(",", ":"))
        await self._db.run(lambda c: c.execute(sql, (now_ms, text)))

    async def engine_state(self) -> dict[str, Any] | None:
        """The saved engine state, if any."""
        row = await self._db.run(lambda c: c.execute("SELECT state FROM engine_state WHERE id=1").fetchone())
        return json.loads(row[0]) if row else None


def _history(
    conn: sqlite3.Connection, alert_id: str, ts_ms: int, event: str, actor: str, detail: Mapping[str, Any]
) -> None:
    conn.execute(
        "INSERT INTO alert_history (alert_id, ts_ms, event, actor, detail) VALUES (?, ?, ?, ?, ?)",
        (alert_id, ts_ms, event, actor, json.dumps(dict(detail), sort_keys=True)),
    )


def new_alert_id() -> str:
    """A short random id, unguessable enough that ids leak nothing about volumes."""
    return uuid.uuid4().hex[:16]
