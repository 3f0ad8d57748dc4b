"""Availability from hand-made status transitions, read back from the hub's real stores (SQLite, InfluxDB).

The arithmetic (conftest.py lists the transitions; P = 10 h):

    palace/ups-1         offline from before P; online 1-4 h and 5-10 h = 8 h of 10 h -> 0.8, went offline once
    palace/cam-1         online since a month before P: 10 h of 10 h                    -> 1.0
    park-central/lamp-1  first seen at 6 h: observed 4 h (coverage 0.4), online 6-8 h   -> 0.5
    park-central/aq-1    no transition before P's end                                   -> no availability
    site palace          (8 + 10) h online of (10 + 10) h observed                       -> 0.9
    site park-central    2 h of 4 h (aq-1 has no data and does not count)               -> 0.5
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hubtools import hub_settings
from services import InfluxDBServer
from testkit import unique

from hub.kpi import KpiSource, SourceError, source_for
from hub.kpi.model import KnownDevice, KpiData
from hub.kpi.report import build_report

from .conftest import P0, PERIOD, H, hours, write_influx_statuses, write_registry, write_sqlite_statuses

LATER = P0 + 48 * H  # the report is made well after the period
BY_DEVICE = [
    # site, device, kind, state_at_end, online_s, observed_s, coverage, availability, went_offline
    ("palace", "cam-1", "camera", "online", hours(10), hours(10), 1.0, 1.0, 0),
    ("palace", "ups-1", "ups", "online", hours(8), hours(10), 1.0, 0.8, 1),
    ("park-central", "aq-1", "air_quality", "unknown", 0.0, 0.0, 0.0, None, 0),
    ("park-central", "lamp-1", "street_light", "offline", hours(2), hours(4), 0.4, 0.5, 1),
]
BY_SITE = [
    {"site": "palace", "devices": 2, "devices_with_data": 2, "online_s": hours(18), "observed_s": hours(20),
     "availability": 0.9},
    {"site": "park-central", "devices": 2, "devices_with_data": 1, "online_s": hours(2), "observed_s": hours(4),
     "availability": 0.5},
]  # fmt: skip
COUNTS = [
    {"site": "palace", "kind": "camera", "managed": 1, "online": 1, "offline": 0, "unknown": 0},
    {"site": "palace", "kind": "ups", "managed": 1, "online": 1, "offline": 0, "unknown": 0},
    {"site": "park-central", "kind": "air_quality", "managed": 1, "online": 0, "offline": 0, "unknown": 1},
    {"site": "park-central", "kind": "street_light", "managed": 1, "online": 0, "offline": 1, "unknown": 0},
]


def rows(report: Any, table: str) -> list[dict[str, Any]]:
    return list(report.as_json()[table])


def device_rows(report: Any) -> list[tuple[Any, ...]]:
    return [tuple(row.values()) for row in rows(report, "availability_by_device")]


@pytest.fixture(params=["sqlite", "influxdb"])
async def source(request: pytest.FixtureRequest, tmp_path: Path) -> KpiSource:
    """The transitions in the embedded store or in InfluxDB, the registry in its file, read as a hub would."""
    influx: InfluxDBServer | None = None
    db = unique("kpi_")
    if request.param == "influxdb":
        influx = request.getfixturevalue("influxdb")
        write_influx_statuses(influx, db)
    settings = hub_settings(tmp_path, "mqtt://127.0.0.1:1", influx=influx, db=db)
    settings.data_dir.mkdir(parents=True)
    if influx is None:
        await write_sqlite_statuses(settings.data_dir)
    await write_registry(settings.data_dir)
    return source_for(settings)


async def test_availability_per_device_and_site_from_the_transitions(source: KpiSource) -> None:
    report = build_report(await source.load(PERIOD), PERIOD, now_ms=LATER)
    assert device_rows(report) == BY_DEVICE
    assert rows(report, "availability_by_site") == BY_SITE
    assert rows(report, "devices") == COUNTS
    summary = report.summary()
    assert (summary["devices_managed"], summary["devices_online"], summary["devices_without_data"]) == (4, 2, 1)
    assert summary["availability"] == pytest.approx(20 / 24)  # (8 + 10 + 2) h online of (10 + 10 + 4) h


async def test_a_period_running_into_the_future_stops_at_now(source: KpiSource) -> None:
    # Made at 5 h: ups-1 was online 1-4 h of 5 h, and offline at the end (its 5 h transition is not past yet);
    # lamp-1 has no data yet. Nothing is said of the 5 h still to come.
    now = P0 + 5 * H
    report = build_report(await source.load(PERIOD), PERIOD, now_ms=now)
    by_device = {row["device"]: row for row in rows(report, "availability_by_device")}
    assert (by_device["ups-1"]["observed_s"], by_device["ups-1"]["availability"]) == (hours(5), 0.6)
    assert by_device["ups-1"]["state_at_end"] == "offline"
    assert (by_device["lamp-1"]["availability"], by_device["lamp-1"]["coverage"]) == (None, 0.0)
    assert report.as_json()["observed_to_ms"] == now


def test_the_registry_alone_gives_the_state_before_the_period() -> None:
    # No point left (e.g. expired by the retention policy), but the registry says online since a month ago.
    device = KnownDevice(site="palace", device="cam-9", kind="camera", state="online", since_ms=P0 - 720 * H)
    report = build_report(KpiData(devices=(device,)), PERIOD, now_ms=LATER)
    [row] = rows(report, "availability_by_device")
    assert (row["availability"], row["coverage"], row["state_at_end"]) == (1.0, 1.0, "online")


def test_no_data_at_all_says_so() -> None:
    report = build_report(KpiData(), PERIOD, now_ms=LATER)
    summary = report.summary()
    assert summary["availability"] is None
    assert (summary["mtta_s"], summary["mttr_s"], summary["devices_managed"]) == (None, None, 0)
    assert all(report.as_json()[name] == [] for name in ("devices", "availability_by_device", "response_times"))


async def test_influxdb_unreachable_is_a_clear_error(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path, "mqtt://127.0.0.1:1", influx=None)
    settings = settings.model_copy(update={"influx": settings.influx.model_copy(update={"url": "http://127.0.0.1:9"})})
    settings.data_dir.mkdir(parents=True)
    with pytest.raises(SourceError, match="cannot read device_status from InfluxDB"):
        await source_for(settings).load(PERIOD)


async def test_a_missing_data_directory_is_a_clear_error(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path, "mqtt://127.0.0.1:1")
    with pytest.raises(SourceError, match="no hub data directory"):
        await source_for(settings).load(PERIOD)
