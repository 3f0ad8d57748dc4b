"""The history readers themselves, below the API's validation: names built to break InfluxQL or SQL.

The API refuses such names (tests/hub/api/test_history.py, which also checks the buckets by hand on both
stores); the readers must stay safe without it. Points are written as the hub writes them into a real
embedded SQLite store and a real InfluxDB.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from services import InfluxDBServer
from testkit import unique

from hub.storage.history import HistoryReader, SqliteHistory, influx_history, plan
from hub.storage.influx import InfluxV1Writer
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
    db = unique("history_")
    writer = InfluxV1Writer(influxdb.url, database=db, timeout_s=10)  # the hub's writer: CREATE DATABASE, /write
    try:
        await writer.prepare()
        await writer.write_lines(encode_points(POINTS))
    finally:
        await writer.aclose()
    history = influx_history(influxdb.url, database=db, timeout_s=10)
    yield history
    await history.aclose()


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
