"""A point's history in buckets from both stores the hub writes to: the same hand-checked answer.

Points are written as the hub writes them (hub/storage/lineprotocol.py, docs/storage.md) into a real
embedded SQLite store and a real InfluxDB, then read back through hub/storage/history.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from services import InfluxDBServer

from hub.storage.history import Bucket, HistoryError, HistoryReader, SqliteHistory, influx_history, plan
from hub.storage.lineprotocol import Point, encode_points
from hub.storage.sqlite_store import SqliteStore

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
S = 1000


def charge(device: str, value: float | None, at_ms: int, unit: str = "%") -> Point:
    tags = (("device", device), ("kind", "ups"), ("point", "battery.charge"), ("site", "s1"), ("unit", unit))
    fields = (("value", value),) if value is not None else (("quality", "bad"),)
    return Point("battery", tags, fields, at_ms)


POINTS = [
    charge("ups-1", 10.0, T0),
    charge("ups-1", 20.0, T0 + 10 * S),
    charge("ups-1", 30.0, T0 + 59_999),
    charge("ups-1", None, T0 + 70 * S),  # a bad reading: no value, so its minute has no bucket
    charge("ups-1", 5.0, T0 + 120 * S),
    charge("ups-1", 7.0, T0 + 125 * S, unit="pct"),  # another series (unit): merged into the point
    charge("ups-1", 99.0, T0 + 180 * S),  # at the range's end: excluded
    charge("ups-2", 1000.0, T0 + 5 * S),  # another device: never in ups-1's answer
    Point("ups", (("device", "ups-1"), ("point", "ups.status"), ("site", "s1")), (("text", "OB"),), T0 + 1 * S),
]


@pytest.fixture(params=["sqlite", "influxdb"])
async def reader(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HistoryReader]:
    if request.param == "sqlite":
        store = SqliteStore(tmp_path / "timeseries.sqlite")
        await store.open()
        await store.write(POINTS)
        yield SqliteHistory(store)
        await store.aclose()
        return
    influxdb: InfluxDBServer = request.getfixturevalue("influxdb")
    db = f"history_{uuid.uuid4().hex[:8]}"
    influxdb.execute(f'CREATE DATABASE "{db}"')
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(
            f"{influxdb.url}/write", params={"db": db, "precision": "ms"}, content=encode_points(POINTS)
        )
        assert answer.status_code == 204, answer.text
    history = influx_history(influxdb.url, database=db, timeout_s=10)
    yield history
    await history.aclose()


async def test_buckets_by_hand(reader: HistoryReader) -> None:
    buckets = await reader.buckets(plan("s1", "ups-1", "battery.charge", T0, T0 + 180 * S, 60 * S))
    assert buckets == [
        Bucket(start_ms=T0, mean=20.0, min=10.0, max=30.0, count=3),  # (10 + 20 + 30) / 3
        # [T0+60 s, T0+120 s): only the bad reading: left out
        Bucket(start_ms=T0 + 120 * S, mean=6.0, min=5.0, max=7.0, count=2),  # (5 + 7) / 2, both units
    ]


async def test_buckets_start_at_the_query_not_at_the_epoch(reader: HistoryReader) -> None:
    buckets = await reader.buckets(plan("s1", "ups-1", "battery.charge", T0 + 30 * S, T0 + 150 * S, 60 * S))
    assert buckets == [
        Bucket(start_ms=T0 + 30 * S, mean=30.0, min=30.0, max=30.0, count=1),  # [30 s, 90 s): the 59.999 s one
        Bucket(start_ms=T0 + 90 * S, mean=6.0, min=5.0, max=7.0, count=2),  # [90 s, 150 s): 5 and 7
    ]


@pytest.mark.parametrize(
    ("site", "device", "point"),
    [
        ("s1' OR '1'='1", "ups-1", "battery.charge"),
        ("s1", "ups-1' OR device =~ /.*/ --", "battery.charge"),
        ("s1", "ups-1\\", "battery.charge"),
        ("s1", "ups-1\nSELECT * FROM battery", "battery.charge"),
        ("/.*/", "/.*/", "battery.charge"),
        ("s1", "ups-%", "battery.charge"),  # SQL LIKE wildcards are plain characters too
        ("s1", "ups-1", 'battery".charge'),
    ],
)
async def test_hostile_names_find_nothing_and_break_nothing(
    reader: HistoryReader, site: str, device: str, point: str
) -> None:
    assert await reader.buckets(plan(site, device, point, T0, T0 + 180 * S, 60 * S)) == []


@pytest.mark.parametrize(
    ("start", "end", "step", "says"),
    [
        (T0, T0, 60 * S, "to must be after from"),
        (T0, T0 + 86_400 * S, 1 * S, "at most 1440"),
        (T0, T0 + 60 * S, 500, "at least 1 s"),
        (-1, T0, 60 * S, "between 1970-01-01 and 2100-01-01"),
    ],
)
def test_impossible_ranges_are_refused_with_the_reason(start: int, end: int, step: int, says: str) -> None:
    with pytest.raises(HistoryError, match=says):
        plan("s1", "ups-1", "battery.charge", start, end, step)
