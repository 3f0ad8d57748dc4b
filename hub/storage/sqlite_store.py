"""The embedded time-series store: points in SQLite (WAL), for deployments without InfluxDB.

A point is keyed by its series (measurement and tags) and its timestamp, like in InfluxDB, so writing
the same reading twice (a redelivered message) stores it once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.storage.lineprotocol import FieldValue, Point
from hub.storage.sqlitedb import SqliteDatabase, transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    measurement TEXT NOT NULL,
    tags TEXT NOT NULL,
    UNIQUE (measurement, tags)
);
CREATE TABLE IF NOT EXISTS points (
    series_id INTEGER NOT NULL REFERENCES series (id),
    ts_ms INTEGER NOT NULL,
    fields TEXT NOT NULL,
    PRIMARY KEY (series_id, ts_ms)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredPoint:
    """A point read back from the store."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    ts_ms: int


class SqliteStore:
    """Time series in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, _SCHEMA)
        self._series: dict[tuple[str, str], int] = {}

    async def open(self) -> None:
        """Open the file."""
        await self._db.open()

    def _series_id(self, conn: sqlite3.Connection, measurement: str, tags: str) -> int:
        key = (measurement, tags)
        series_id = self._series.get(key)
        if series_id is None:
            conn.execute("INSERT OR IGNORE INTO series (measurement, tags) VALUES (?, ?)", key)
            row = conn.execute("SELECT id FROM series WHERE measurement = ? AND tags = ?", key).fetchone()
            series_id = int(row[0])
            self._series[key] = series_id
        return series_id

    async def write(self, points: Sequence[Point]) -> None:
        """Store the points in one transaction (the same series and time overwrite)."""

        def insert(conn: sqlite3.Connection) -> None:
            rows = [
                (
                    self._series_id(conn, p.measurement, json.dumps(dict(sorted(p.tags)), sort_keys=True)),
                    p.ts_ms,
                    json.dumps(dict(p.fields)),
                )
                for p in points
            ]
            conn.executemany(
                "INSERT INTO points (series_id, ts_ms, fields) VALUES (?, ?, ?) "
                "ON CONFLICT (series_id, ts_ms) DO UPDATE SET fields = json_patch(fields, excluded.fields)",
                rows,
            )

        await self._db.run(lambda conn: transaction(conn, insert))

    async def query(
        self,
        measurement: str,
        *,
        tags: dict[str, str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[StoredPoint]:
        """Points of ``measurement`` whose tags include ``tags``, in time order."""
        sql = (
            "SELECT s.measurement, s.tags, p.ts_ms, p.fields FROM points p JOIN series s ON s.id = p.series_id "
            "WHERE s.measurement = ?"
        )
        args: list[Any] = [measurement]
        for key, value in (tags or {}).items():
            sql += " AND json_extract(s.tags, ?) = ?"
            args += [f'$."{key}"', value]
        if start_ms is not None:
            sql += " AND p.ts_ms >= ?"
            args.append(start_ms)
        if end_ms is not None:
            sql += " AND p.ts_ms < ?"
            args.append(end_ms)
        sql += " ORDER BY p.ts_ms"
        rows = await self._db.run(lambda conn: conn.execute(sql, args).fetchall())
        return [StoredPoint(measurement=m, tags=json.loads(t), ts_ms=ts, fields=json.loads(f)) for m, t, ts, f in rows]

    async def aclose(self) -> None:
        """Close the file."""
        await self._db.aclose()
