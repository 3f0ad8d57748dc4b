"""Fault tests on real services: exact counts (stored == published, nothing twice) through outages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hubtools import HubProcess, hub_settings, influx_count, metric_value, running_hub, wait_for
from services import InfluxDBServer, MosquittoServer
from testkit import unique

from cityhub.contract import Reading, Topics
from simulators.publisher import DeviceIdentity, DevicePublisher, now_ms

pytestmark = pytest.mark.fault

READINGS_PER_MESSAGE = 2


class Stream:
    """Devices publishing numbered telemetry; every message is acknowledged by the broker before the next."""

    def __init__(self, url: str, topics: Topics, devices: int = 2) -> None:
        self.publishers = [
            DevicePublisher(
                url, DeviceIdentity(site="cjt", device=f"env-{i}", kind="environment_sensor"), topics=topics
            )
            for i in range(devices)
        ]
        self.published = 0
        self._base_ts = now_ms() - 60_000

    async def start(self) -> None:
        for publisher in self.publishers:
            await publisher.start()

    async def publish(self, messages: int, interval_s: float = 0.005) -> None:
        for _ in range(messages):
            publisher = self.publishers[self.published % len(self.publishers)]
            ts = self._base_ts + self.published  # unique per message: distinct points
            await publisher.publish_telemetry(
                [
                    Reading(metric="environment.temperature", value=20.0 + self.published % 7, unit="Cel", ts=ts),
                    Reading(metric="environment.humidity", value=40.0, unit="%", ts=ts),
                ]
            )
            self.published += 1
            await asyncio.sleep(interval_s)

    async def stop(self) -> None:
        for publisher in self.publishers:
            await publisher.session.disconnect()

    @property
    def expected_points(self) -> int:
        return self.published * READINGS_PER_MESSAGE


def stored(influxdb: InfluxDBServer, db: str) -> int:
    return influx_count(influxdb, db, "environment")


async def wait_stored(influxdb: InfluxDBServer, db: str, expected: int, timeout_s: float = 60) -> None:
    async def done() -> bool:
        return stored(influxdb, db) >= expected

    try:
        await wait_for(done, timeout_s, f"{expected} points in InfluxDB")
    except AssertionError as exc:
        raise AssertionError(f"{exc} (have {stored(influxdb, db)})") from None  # the count at the end
    await asyncio.sleep(1.0)  # anything stored twice would show up now
    assert stored(influxdb, db) == expected


async def test_influxdb_down_mid_stream_spools_then_drains_in_full(
    tmp_path: Path, mosquitto: MosquittoServer, fresh_influxdb: InfluxDBServer
) -> None:
    db, root = unique("fault_"), unique("root")
    settings = hub_settings(
        tmp_path, mosquitto.url, influx=fresh_influxdb, db=db, client_id=unique("hub-"), mqtt={"topic_root": root}
    )
    async with running_hub(settings) as hub:
        stream = Stream(mosquitto.url, Topics(root))
        await stream.start()
        await stream.publish(100)
        await wait_stored(fresh_influxdb, db, stream.expected_points)

        await asyncio.to_thread(fresh_influxdb.stop)
        await stream.publish(200)

        async def spooling() -> bool:
            return metric_value(hub, "cityhub_hub_spool_points") > 0

        await wait_for(spooling, 15, "batches in the spool while InfluxDB is down")
        assert metric_value(hub, "cityhub_hub_store_available") == 0

        await asyncio.to_thread(fresh_influxdb.start)
        await stream.publish(100)
        await wait_stored(fresh_influxdb, db, stream.expected_points)
        assert metric_value(hub, "cityhub_hub_spool_points") == 0
        assert metric_value(hub, "cityhub_hub_points_written_total") >= stream.expected_points
        await stream.stop()


async def test_broker_restart_mid_stream_loses_nothing(
    tmp_path: Path, fresh_mosquitto: MosquittoServer, influxdb: InfluxDBServer
) -> None:
    db, root = unique("fault_"), unique("root")
    settings = hub_settings(
        tmp_path, fresh_mosquitto.url, influx=influxdb, db=db, client_id=unique("hub-"), mqtt={"topic_root": root}
    )
    async with running_hub(settings) as hub:
        stream = Stream(fresh_mosquitto.url, Topics(root))
        await stream.start()
        publishing = asyncio.create_task(stream.publish(400, interval_s=0.01))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(fresh_mosquitto.restart)
        await asyncio.wait_for(publishing, 120)
        await wait_stored(influxdb, db, stream.expected_points)
        assert hub.session.connected
        await stream.stop()


async def test_hub_sigkilled_mid_stream_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path, fresh_mosquitto: MosquittoServer, fresh_influxdb: InfluxDBServer
) -> None:
    # Servers of its own: a killed hub leaves a persistent session with messages in flight behind it.
    mosquitto, influxdb = fresh_mosquitto, fresh_influxdb
    db, root = unique("fault_"), unique("root")
    settings = hub_settings(
        tmp_path,
        mosquitto.url,
        influx=influxdb,
        db=db,
        client_id=unique("hub-"),
        mqtt={"topic_root": root},
        ingest={"flush_interval_s": 0.5},
    )
    hub = HubProcess(settings, tmp_path)
    hub.start()
    try:
        stream = Stream(mosquitto.url, Topics(root))
        # The hub's persistent session must exist before the first message, or the broker keeps nothing for it.
        await asyncio.to_thread(hub.wait_ready)
        await stream.start()
        publishing = asyncio.create_task(stream.publish(600, interval_s=0.005))

        async def some_stored() -> bool:
            return stored(influxdb, db) > 100

        await wait_for(some_stored, 30, "the hub storing part of the stream")
        hub.kill()
        killed_at = stream.published
        await asyncio.sleep(1.0)  # the broker queues for the dead hub's session meanwhile
        hub.start()
        await asyncio.wait_for(publishing, 120)
        assert 0 < killed_at < stream.published
        await wait_stored(influxdb, db, stream.expected_points)
        # The restarted hub resumed its persistent session: the broker had kept what it missed.
        assert "session present: True" in hub.log_tail()
        await stream.stop()
    except BaseException:
        print(hub.diagnosis(mosquitto, influxdb))
        raise
    finally:
        hub.stop()
