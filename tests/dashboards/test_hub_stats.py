"""The hub's statistics about itself (hub/selfstats.py), which the hub board reads from InfluxDB."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from hubtools import hub_settings, running_hub, wait_for
from services import InfluxDBServer, MosquittoServer
from testkit import unique

from cityhub.contract import MetricSpec, Reading, Topics
from hub.devices import DeviceStates
from hub.metrics import HubMetrics
from hub.selfstats import MEASUREMENT, SelfStats
from hub.storage.store import EmbeddedStore
from simulators.publisher import DeviceIdentity, DevicePublisher, now_ms


def _last(influxdb: InfluxDBServer, db: str, group_by: str) -> dict[str, dict[str, Any]]:
    """The newest hub_stats point of each series, by the value of the ``group_by`` tag (hub, kind or team)."""
    where = "\"kind\" = '' AND \"team\" = ''" if group_by == "hub" else f"\"{group_by}\" != ''"
    query = f'SELECT * FROM "{MEASUREMENT}" WHERE {where} GROUP BY "{group_by}" ORDER BY time DESC LIMIT 1'
    try:
        answer = influxdb.query(query, db=db)
    except RuntimeError:  # no database yet
        return {}
    return {
        s["tags"][group_by]: {k: v for k, v in zip(s["columns"], s["values"][0], strict=True) if v is not None}
        for s in answer["results"][0].get("series", [])
    }


async def test_the_hub_writes_its_counters_devices_and_alerts_per_team(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer
) -> None:
    db, root, hub_id = unique("stats_"), unique("root"), unique("hub-")
    settings = hub_settings(
        tmp_path, mosquitto.url, influx=influxdb, db=db, client_id=hub_id, mqtt={"topic_root": root},
        selfstats={"enabled": True, "interval_s": 0.2},
    )  # fmt: skip
    async with running_hub(settings):
        device = DevicePublisher(
            mosquitto.url,
            DeviceIdentity(site="cjt-server-room", device="ups-01", kind="ups"),
            topics=Topics(root),
            metrics=[MetricSpec(metric="battery.charge", type="float", unit="%")],
        )
        await device.start()  # birth and status: online
        await device.publish_telemetry([Reading(metric="battery.charge", value=97.5, unit="%", ts=now_ms())])

        async def counted() -> bool:
            return _last(influxdb, db, "kind").get("ups", {}).get("devices_online") == 1.0 and (
                _last(influxdb, db, "hub").get(hub_id, {}).get("messages_received") == 3.0
            )

        try:
            await wait_for(counted, 15, "hub_stats counting 3 messages and 1 UPS online")
        except AssertionError:
            print(_last(influxdb, db, "kind"), _last(influxdb, db, "team"))
            raise
        await device.stop()
    hub_row = _last(influxdb, db, "hub")[hub_id]
    assert hub_row["mqtt_connected"] == 1.0
    assert hub_row["store_available"] == 1.0
    assert hub_row["devices_known"] == 1.0
    assert hub_row["points_written"] >= 3.0  # birth, status, reading (and earlier hub_stats points)
    assert hub_row["messages_rejected"] == 0.0
    assert hub_row["spool_batches"] == 0.0
    assert hub_row["uptime_s"] > 0
    teams = _last(influxdb, db, "team")
    assert sorted(teams) == ["adp", "it", "police"]  # every configured team, quiet ones with zeros
    assert {row["alerts_open"] for row in teams.values()} == {0.0}
    types = influxdb.query(f'SHOW FIELD KEYS FROM "{MEASUREMENT}"', db=db)["results"][0]["series"][0]["values"]
    assert {field_type for _, field_type in types} == {"float"}  # a field never changes type


async def test_hub_without_selfstats_writes_none(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer
) -> None:
    db = unique("nostats_")
    settings = hub_settings(
        tmp_path, mosquitto.url, influx=influxdb, db=db, client_id=unique("hub-"), selfstats={"enabled": False}
    )
    async with running_hub(settings) as hub:
        assert hub.selfstats is None
        await asyncio.sleep(0.5)  # a hub with statistics on would have written its first sample by now
    assert _last(influxdb, db, "hub") == {}


async def test_a_failing_store_is_logged_once_and_the_next_sample_is_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A file where the store's folder should be: the real store fails for real, until it is removed.
    folder = tmp_path / "in-the-way"
    folder.write_text("not a folder", encoding="utf-8")
    store = EmbeddedStore(folder / "timeseries.sqlite", HubMetrics())
    devices = DeviceStates(tmp_path / "devices.sqlite")
    stats = SelfStats("hub-1", 0.1, metrics=HubMetrics(), devices=devices, alerts=None, store=store)
    with caplog.at_level(logging.INFO, logger="hub.selfstats"):
        await stats.write_once()
        await stats.write_once()
        assert stats.written == 0
        folder.unlink()
        await stats.write_once()
    assert stats.written == 1
    messages = [r.getMessage() for r in caplog.records]
    assert sum("could not write the hub's statistics" in m for m in messages) == 1
    assert sum("writing the hub's statistics again" in m for m in messages) == 1
    (point,) = await store.sqlite.query(MEASUREMENT)
    assert point.tags == {"hub": "hub-1"}
    assert point.fields["devices_known"] == 0.0
    await store.aclose()
    await devices.aclose()
