"""The on-disk spool: line-protocol batches waiting for InfluxDB, kept in order in SQLite.

A batch is acknowledged to the broker once it is either in InfluxDB or committed here, so a hub that
loses InfluxDB, or is killed, loses nothing. The spool is a FIFO: batches are drained oldest first.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from hub.storage.sqlitedb import SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms INTEGER NOT NULL,
    points INTEGER NOT NULL,
    body BLOB NOT NULL
);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpooledBatch:
    """A batch waiting in the spool."""

    id: int
    points: int
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SpoolDepth:
    """How much waits in the spool."""

    batches: int
    points: int
    bytes: int


class Spool:
    """FIFO of line-protocol batches in a SQLite file."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, _SCHEMA)
        self.depth = SpoolDepth(batches=0, points=0, bytes=0)

    async def open(self) -> None:
        """Open the file and load the current depth (batches left by a previous run)."""
        await self._db.open()
        self.depth = await self._db.run(self._depth)

    @staticmethod
    def _depth(conn: sqlite3.Connection) -> SpoolDepth:
        row = conn.execute(
            "SELECT count(*), coalesce(sum(points), 0), coalesce(sum(length(body)), 0) FROM spool"
        ).fetchone()
        return SpoolDepth(batches=row[0], points=row[1], bytes=row[2])

    async def append(self, body: bytes, points: int) -> None:
        """Commit one batch at the tail (durable when this returns)."""

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO spool (created_ms, points, body) VALUES (?, ?, ?)",
                (int(time.time() * 1000), points, body),
            )

        await self._db.run(insert)
        self.depth = SpoolDepth(
            batches=self.depth.batches + 1,
            points=self.depth.points + points,
            bytes=self.depth.bytes + len(body),
        )

    async def head(self) -> SpooledBatch | None:
        """The oldest batch, or None when the spool is empty."""

        def select(conn: sqlite3.Connection) -> SpooledBatch | None:
            row = conn.execute("SELECT id, points, body FROM spool ORDER BY id LIMIT 1").fetchone()
            return SpooledBatch(id=row[0], points=row[1], body=bytes(row[2])) if row else None

        return await self._db.run(select)

    async def remove(self, batch: SpooledBatch) -> None:
        """Remove a batch once it is stored."""
        await self._db.run(lambda conn: conn.execute("DELETE FROM spool WHERE id = ?", (batch.id,)))
        self.depth = SpoolDepth(
            batches=self.depth.batches - 1,
            points=self.depth.points - batch.points,
            bytes=self.depth.bytes - len(batch.body),
        )

    async def aclose(self) -> None:
        """Close the file."""
        await self._db.aclose()
