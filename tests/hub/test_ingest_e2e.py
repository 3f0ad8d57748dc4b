"""End to end on real parts: a device publishes through Mosquitto, the hub stores into InfluxDB or SQLite."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from hubtools import hub_flow, hub_settings, influx_count, metric_value, running_hub, wait_for
from services import InfluxDBServer, MosquittoServer
from testkit import unique

from cityhub.contract import DeviceEvent, MessageKind, MetricSpec, Reading, Topics
from cityhub.mqtt import BrokerAddress, MqttSession, SessionOptions
from hub.storage.sqlite_store import SqliteStore
from hub.storage.store import EmbeddedStore
from simulators.publisher import DeviceIdentity, DevicePublisher, now_ms


def ups_publisher(url: str, topics: Topics, device: str = "ups-01") -> DevicePublisher:
    return DevicePublisher(
        url,
        DeviceIdentity(site="cjt-server-room", device=device, kind="ups", profile="rfc1628", model="9PX"),
        topics=topics,
        metrics=[MetricSpec(metric="battery.charge", type="float", unit="%")],
    )


def ups_readings(ts: int) -> list[Reading]:
    return [
        Reading(metric="battery.charge", value=97.5, unit="%", ts=ts),
        Reading(metric="battery.runtime", value=1800, unit="s", ts=ts),
        Reading(metric="ups.on_line", value=True, ts=ts),
        Reading(metric="ups.status", value="OL CHRG", ts=ts),
        Reading(metric="input.voltage", quality="bad", ts=ts),
    ]


async def test_telemetry_events_birth_and_status_land_in_influxdb(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer
) -> None:
    db, root = unique("e2e_"), unique("root")
    topics = Topics(root)
    settings = hub_settings(
        tmp_path, mosquitto.url, influx=influxdb, db=db, client_id=unique("hub-"), mqtt={"topic_root": root}
    )
    ts = now_ms() - 5_000
    async with running_hub(settings) as hub:
        device = ups_publisher(mosquitto.url, topics)
        await device.start()
        await device.publish_telemetry(ups_readings(ts))
        await device.publish_events([DeviceEvent(type="ups.on_battery", ts=ts + 1, attributes={"load": 41.0})])
        await device.stop()

        async def stored() -> bool:
            return (
                influx_count(influxdb, db, "device_status", "online") == 2
                and influx_count(influxdb, db, "events", "active") == 1
            )

        try:
            await wait_for(stored, 30, "status and event points")  # generous: CI machines are shared and noisy
        except AssertionError:
            print(hub_flow(hub, mosquitto, influxdb))  # seen once in a full run: keep the evidence
            raise

        # InfluxDB may answer a query before the hub has read the answer to its own write.
        async def counted() -> bool:
            return metric_value(hub, "cityhub_hub_points_written_total") == 5 + 1 + 1 + 2

        await wait_for(counted, 5, "the hub counting 9 points written")
        assert metric_value(hub, "cityhub_hub_mqtt_connected") == 1

        # The device record is saved right after the batch's points: it may lag the counter a moment.
        async def recorded() -> bool:
            return hub.devices.get("cjt-server-room", "ups-01") is not None

        await wait_for(recorded, 5, "the device record")
        known = hub.devices.get("cjt-server-room", "ups-01")
        assert known is not None
        assert known.state == "offline"
        assert known.birth is not None  # the status beside it in the batch kept the birth
        assert json.loads(known.birth)["model"] == "9PX"

    answer = influxdb.query('SELECT * FROM "battery" GROUP BY *', db=db)
    series = {s["tags"]["point"]: s for s in answer["results"][0]["series"]}
    charge = series["battery.charge"]
    assert charge["tags"] == {
        "device": "ups-01",
        "kind": "ups",
        "point": "battery.charge",
        "site": "cjt-server-room",
        "unit": "%",
    }
    assert charge["values"] == [[ts, 97.5]]  # time, value: the only field battery points have
    assert series["battery.runtime"]["values"][0][-1] == 1800.0

    ups = influxdb.query('SELECT "value", "text" FROM "ups" GROUP BY "point"', db=db)["results"][0]["series"]
    assert {s["tags"]["point"]: s["values"][0][1:] for s in ups} == {
        "ups.on_line": [1.0, None],
        "ups.status": [None, "OL CHRG"],
    }
    bad = influxdb.query('SELECT "quality", "value" FROM "input"', db=db)["results"][0]["series"][0]
    assert bad["values"] == [[ts, "bad", None]]

    event = influxdb.query('SELECT * FROM "events"', db=db)["results"][0]["series"][0]
    row = dict(zip(event["columns"], event["values"][0], strict=True))
    assert row["time"] == ts + 1
    assert row["active"] is True
    assert row["event"] == "ups.on_battery"
    assert json.loads(row["attributes"]) == {"load": 41.0}

    status = influxdb.query('SELECT "state" FROM "device_status"', db=db)["results"][0]["series"][0]["values"]
    assert [state for _, state in status] == ["online", "offline"]
    birth = influxdb.query('SELECT "model", "profile" FROM "device_birth"', db=db)["results"][0]["series"][0]
    assert birth["values"][0][1:] == ["9PX", "rfc1628"]


async def test_embedded_mode_stores_in_sqlite(tmp_path: Path, mosquitto: MosquittoServer) -> None:
    root = unique("root")
    settings = hub_settings(tmp_path, mosquitto.url, client_id=unique("hub-"), mqtt={"topic_root": root})
    ts = now_ms() - 1_000
    async with running_hub(settings) as hub:
        device = ups_publisher(mosquitto.url, Topics(root))
        await device.start()
        await device.publish_telemetry(ups_readings(ts))
        await device.publish_telemetry(ups_readings(ts + 1_000))
        assert isinstance(hub.store, EmbeddedStore)
        sqlite = hub.store.sqlite

        async def stored() -> bool:
            return len(await sqlite.query("battery", tags={"point": "battery.charge"})) == 2

        await wait_for(stored, 10, "two battery.charge points in SQLite")
        await device.stop()
    # Read back from the file after the hub has stopped: what a restarted hub or a backup would see.
    reopened = SqliteStore(settings.data_dir / "timeseries.sqlite")
    await reopened.open()
    points = await reopened.query("battery")
    await reopened.aclose()
    charge = [p for p in points if p.tags["point"] == "battery.charge"]
    assert [(p.ts_ms, p.fields) for p in charge] == [(ts, {"value": 97.5}), (ts + 1_000, {"value": 97.5})]
    assert charge[0].tags == {
        "device": "ups-01",
        "kind": "ups",
        "point": "battery.charge",
        "site": "cjt-server-room",
        "unit": "%",
    }


async def test_rejected_message_is_dead_lettered_with_its_reason(tmp_path: Path, mosquitto: MosquittoServer) -> None:
    root = unique("root")
    topics = Topics(root)
    settings = hub_settings(tmp_path, mosquitto.url, client_id=unique("hub-"), mqtt={"topic_root": root})
    listener = MqttSession(
        BrokerAddress.from_url(mosquitto.url),
        SessionOptions(client_id=unique("dl-"), subscriptions=[(f"{topics.prefix}/_hub/deadletter/#", 1)]),
    )
    async with running_hub(settings) as hub, listener:
        await asyncio.sleep(0.2)
        spoofed = json.dumps(
            {
                "device": "ups-99",
                "site": "cjt",
                "kind": "ups",
                "boot": 1,
                "seq": 1,
                "readings": [{"metric": "a.b", "value": 1, "ts": now_ms()}],
            }
        ).encode()
        await listener.publish(topics.device("cjt", "ups-01", MessageKind.TELEMETRY), spoofed)
        letters = await listener.receive(10, 5)
        assert len(letters) == 1
        assert letters[0].topic == f"{topics.prefix}/_hub/deadletter/identity_mismatch"
        letter = json.loads(letters[0].payload)
        assert letter["reason"] == "identity_mismatch"
        assert "cjt/ups-99" in letter["detail"]
        assert json.loads(letter["payload"]) == json.loads(spoofed)
        assert metric_value(hub, "cityhub_hub_messages_rejected_total", {"reason": "identity_mismatch"}) == 1
