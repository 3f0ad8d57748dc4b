"""The hub's audit trail: who did what, when and from where, append-only and hash-chained.

Every security-relevant action (logins and failed logins, credential changes, registration decisions,
revocations, alert acknowledgements, rule changes, denied requests) is one row. Two guards:

* SQLite triggers refuse every UPDATE and DELETE, so no code path of the hub can rewrite history;
* each row stores ``hash = sha256(prev_hash + canonical JSON of the row)``, so a row changed or removed
  outside the hub (with the triggers dropped, or by editing the file) breaks the chain at that row and
  :meth:`AuditLog.verify` names it. Cutting rows off the *end* leaves a valid, shorter chain: the SIEM's
  copy (``export_jsonl``) is the witness for those.

The export is JSON lines, one entry per line, fields as in :meth:`AuditEntry.as_dict`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from hub.storage.sqlitedb import SqliteDatabase, transaction

#: The ``prev_hash`` of the first entry.
GENESIS = "0" * 64
#: Rows fetched per round trip to the database thread when exporting or verifying.
PAGE = 1_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    source TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts_ms);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""

_COLUMNS = "id, ts_ms, actor, action, target, outcome, source, detail, prev_hash, hash"


class Outcome(StrEnum):
    """How the action ended."""

    OK = "ok"
    FAILED = "failed"  # e.g. a wrong password
    DENIED = "denied"  # authenticated, but not allowed


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One row of the audit log."""

    id: int
    ts_ms: int
    actor: str  # a username, "system", or "device:<site>/<device>" / "key:<key>" for MQTT-side actors
    action: str  # dotted: auth.login, auth.login_failed, user.created, registration.approved, ...
    target: str | None
    outcome: str
    source: str | None  # the client's IP address, when the action came over HTTP
    detail: Mapping[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""

    def content(self) -> dict[str, Any]:
        """The fields the hash covers."""
        return {
            "id": self.id,
            "ts_ms": self.ts_ms,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "source": self.source,
            "detail": dict(self.detail),
        }

    def as_dict(self) -> dict[str, Any]:
        """The entry as the API and the export show it, with an ISO 8601 time for SIEMs."""
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.ts_ms / 1000)) + f".{self.ts_ms % 1000:03d}Z"
        return {**self.content(), "ts": ts, "prev_hash": self.prev_hash, "hash": self.hash}


def canonical_json(value: Mapping[str, Any]) -> str:
    """Sorted keys, no spaces, UTF-8: the same bytes for the same entry on every machine."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    """The hash of an entry whose predecessor's hash is ``prev_hash``."""
    return hashlib.sha256((prev_hash + canonical_json(content)).encode()).hexdigest()


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    id_, ts_ms, actor, action, target, outcome, source, detail, prev_hash, hash_ = row
    return AuditEntry(
        id=id_,
        ts_ms=ts_ms,
        actor=actor,
        action=action,
        target=target,
        outcome=outcome,
        source=source,
        detail=json.loads(detail),
        prev_hash=prev_hash,
        hash=hash_,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditQuery:
    """Filters of :meth:`AuditLog.entries`; ``after_id`` is the pagination cursor."""

    since_ms: int | None = None
    until_ms: int | None = None
    actor: str | None = None
    action: str | None = None  # exact, or a prefix ending in '.' ("auth." matches every auth action)
    after_id: int = 0
    limit: int = 100

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters."""
        clauses: list[str] = ["id > ?"]
        params: list[Any] = [self.after_id]
        if self.since_ms is not None:
            clauses.append("ts_ms >= ?")
            params.append(self.since_ms)
        if self.until_ms is not None:
            clauses.append("ts_ms < ?")
            params.append(self.until_ms)
        if self.actor is not None:
            clauses.append("actor = ?")
            params.append(self.actor)
        if self.action is not None and self.action.endswith("."):
            clauses.append("substr(action, 1, ?) = ?")
            params.extend([len(self.action), self.action])
        elif self.action is not None:
            clauses.append("action = ?")
            params.append(self.action)
        return " AND ".join(clauses), params


class AuditLog:
    """The audit table in its own SQLite file; calls run on the database's thread, off the event loop."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._db = SqliteDatabase(path, _SCHEMA, private=True)
        self._clock = clock

    async def open(self) -> None:
        """Create or open the file, readable by the hub's user only (it names people and addresses)."""
        await self._db.open()

    async def aclose(self) -> None:
        """Close the file."""
        await self._db.aclose()

    async def record(
        self,
        action: str,
        *,
        actor: str,
        target: str | None = None,
        outcome: Outcome | str = Outcome.OK,
        source: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry, chained to the last one; returns it as stored."""
        ts_ms = int(self._clock() * 1000)
        detail_json = canonical_json(detail or {})

        def append(conn: sqlite3.Connection) -> AuditEntry:
            last = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
            prev_hash = last[1] if last else GENESIS
            # AUTOINCREMENT never reuses an id, so the next one is known before the insert: the hash covers it.
            seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
            entry = AuditEntry(
                id=(seq[0] if seq else 0) + 1,
                ts_ms=ts_ms,
                actor=actor,
                action=action,
                target=target,
                outcome=str(outcome),
                source=source,
                detail=json.loads(detail_json),
                prev_hash=prev_hash,
            )
            digest = chain_hash(prev_hash, entry.content())
            conn.execute(
                f"INSERT INTO audit ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.id, ts_ms, actor, action, target, entry.outcome, source, detail_json, prev_hash, digest),
            )
            return replace(entry, hash=digest)

        return await self._db.run(lambda conn: transaction(conn, append))

    def recorder(self, source: str | None = None) -> Callable[[str, str, str, str, dict[str, object]], Awaitable[None]]:
        """An ``(actor, action, target, outcome, detail)`` callback, as the registrar takes (hub.registry)."""

        async def audit(actor: str, action: str, target: str, outcome: str, detail: dict[str, object]) -> None:
            await self.record(action, actor=actor, target=target, outcome=outcome, source=source, detail=detail)

        return audit

    async def entries(self, query: AuditQuery) -> list[AuditEntry]:
        """Entries matching ``query``, oldest first, at most ``query.limit``."""
        where, params = query.where()
        sql = f"SELECT {_COLUMNS} FROM audit WHERE {where} ORDER BY id LIMIT ?"
        rows = await self._db.run(lambda conn: conn.execute(sql, [*params, query.limit]).fetchall())
        return [_entry(row) for row in rows]

    async def _pages(self, query: AuditQuery) -> AsyncIterator[list[AuditEntry]]:
        after = query.after_id
        while True:
            page = await self.entries(AuditQuery(**{**_fields(query), "after_id": after, "limit": PAGE}))
            if not page:
                return
            yield page
            after = page[-1].id

    async def export_jsonl(self, query: AuditQuery | None = None) -> AsyncIterator[str]:
        """Matching entries as JSON lines (each ends with a newline), oldest first, read page by page."""
        async for page in self._pages(query or AuditQuery()):
            for entry in page:
                yield json.dumps(entry.as_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"

    async def verify(self) -> int | None:
        """The id of the first entry whose hash or link does not hold, or None if the whole chain holds."""
        prev_hash = GENESIS
        async for page in self._pages(AuditQuery()):
            for entry in page:
                if entry.prev_hash != prev_hash or chain_hash(prev_hash, entry.content()) != entry.hash:
                    return entry.id
                prev_hash = entry.hash
        return None


def _fields(query: AuditQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in AuditQuery.__dataclass_fields__}
