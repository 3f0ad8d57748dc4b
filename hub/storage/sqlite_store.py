"""The embedded time-series store: points in SQLite (WAL), for deployments without InfluxDB.

A point is keyed by its series (measurement and tags) and its timestamp, like in InfluxDB, so writing
the same reading twice (a redelivered message) stores it once.
"""

from __future__ import annotations

import json
import sqlite3
import time
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


def _buckets_sql(
    measurement: str, tags: dict[str, str], *, start_ms: int, end_ms: int, step_ms: int
) -> tuple[str, list[Any]]:
    """The bucketed query: series first (a small table), then the points by their primary key's range."""
    where = "".join(" AND json_extract(tags, ?) = ?" for _ in tags)
    args: list[Any] = [start_ms, step_ms, measurement]
    for key, value in tags.items():
        args += [f'$."{key}"', value]
    args += [start_ms, end_ms]
    sql = (
        "SELECT (ts_ms - ?) / ? AS bucket, avg(v), min(v), max(v), count(v) FROM ("
        " SELECT p.ts_ms, json_extract(p.fields, '$.value') AS v FROM points p"
        f" WHERE p.series_id IN (SELECT id FROM series WHERE measurement = ?{where})"
        " AND p.ts_ms >= ? AND p.ts_ms < ?"
        ") WHERE v IS NOT NULL GROUP BY bucket ORDER BY bucket"
    )
    return sql, args


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

    async def buckets(
        self, measurement: str, tags: dict[str, str], *, start_ms: int, end_ms: int, step_ms: int, timeout_s: float
    ) -> list[tuple[int, float, float, float, int]]:
        """Mean, min, max and count of field ``value`` per ``step_ms`` bucket from ``start_ms`` (buckets with
        no value left out), over every series of ``measurement`` whose tags include ``tags``; ``TimeoutError``
        when the query runs longer than ``timeout_s``."""
        sql, args = _buckets_sql(measurement, tags, start_ms=start_ms, end_ms=end_ms, step_ms=step_ms)
        deadline = time.monotonic() + timeout_s

        def query(conn: sqlite3.Connection) -> list[Any]:
            # SQLite has no statement timeout: a progress handler that answers non-zero interrupts the query.
            conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            try:
                return conn.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the history query ran longer than {timeout_s} s") from exc
                raise
            finally:
                conn.set_progress_handler(None, 0)

        rows = await self._db.run(query)
        return [
            (start_ms + int(b) * step_ms, float(mean), float(low), float(high), int(n))
            for b, mean, low, high, n in rows
        ]

    async def aclose(self) -> None:
        """Close the file."""
        await self._db.aclose()
