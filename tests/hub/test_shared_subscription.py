"""Two hubs share one broker's stream through an MQTT 5 shared subscription: each message stored once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from hubtools import hub_settings, influx_count, metric_value, running_hub, wait_for
from services import InfluxDBServer, MosquittoServer

from cityhub.contract import Reading, Topics
from simulators.publisher import DeviceIdentity, DevicePublisher, now_ms


async def test_two_hubs_split_the_stream_and_store_every_message_once(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer
) -> None:
    suffix = uuid.uuid4().hex[:8]
    db, root, group = f"shared_{suffix}", f"root{suffix}", f"hubs{suffix}"
    hubs_settings = [
        hub_settings(
            tmp_path,
            mosquitto.url,
            influx=influxdb,
            db=db,
            client_id=f"hub-{n}-{suffix}",
            mqtt={"topic_root": root, "shared_group": group},
        )
        for n in ("a", "b")
    ]
    async with running_hub(hubs_settings[0]) as hub_a, running_hub(hubs_settings[1]) as hub_b:
        devices = [
            DevicePublisher(
                mosquitto.url,
                DeviceIdentity(site="sector2", device=f"air-{i}", kind="air_quality"),
                topics=Topics(root),
            )
            for i in range(4)
        ]
        for device in devices:
            await device.start()
        base = now_ms() - 10_000
        messages = 400
        for n in range(messages):
            await devices[n % 4].publish_telemetry(
                [Reading(metric="air.pm10", value=float(n), unit="ug/m3", ts=base + n)]
            )

        async def all_stored() -> bool:
            return influx_count(influxdb, db, "air") >= messages

        await wait_for(all_stored, 30, f"{messages} points")
        await asyncio.sleep(1.0)
        assert influx_count(influxdb, db, "air") == messages

        received = [
            metric_value(h, "cityhub_hub_messages_received_total", {"kind": "telemetry"}) for h in (hub_a, hub_b)
        ]
        assert sum(received) == messages  # each message delivered to exactly one hub
        assert min(received) > 0  # and both took part
        written = sum(metric_value(h, "cityhub_hub_points_written_total") for h in (hub_a, hub_b))
        assert written >= messages
        for device in devices:
            await device.stop()
