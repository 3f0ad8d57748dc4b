"""A running hub serves the report: statuses over MQTT (a real Mosquitto) into InfluxDB, read back by InfluxQL."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from hubtools import hub_flow, hub_settings, running_hub, wait_for
from services import InfluxDBServer, MosquittoServer
from testkit import unique

from cityhub.contract import MessageKind, StatusMessage, Topics
from cityhub.mqtt import BrokerAddress, MqttSession, SessionOptions

ADMIN_PASSWORD = "Kpi-Charts-Pass-2026"


async def test_the_hub_answers_the_report_of_what_it_ingested(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer
) -> None:
    root = unique("kpi")
    settings = hub_settings(
        tmp_path, mosquitto.url, influx=influxdb, db=unique("kpi_"), client_id=unique("hub-"),
        mqtt={"topic_root": root}, api={"bootstrap_admin_password": ADMIN_PASSWORD},
    )  # fmt: skip
    went_online = int(time.time() * 1000) - 60_000  # a minute ago: the last week's report covers it
    async with running_hub(settings) as hub:
        status = StatusMessage(site="palace", device="ups-7", kind="ups", state="online", boot=1, ts=went_online)
        topic = Topics(root).device("palace", "ups-7", MessageKind.STATUS)
        async with MqttSession(BrokerAddress.from_url(mosquitto.url), SessionOptions(client_id=unique("dev-"))) as s:
            await s.publish(topic, status.model_dump_json(exclude_none=True).encode(), retain=True)

        async def ready() -> bool:
            serving = hub.http is not None and hub.http.bound_port is not None
            return serving and hub.devices.get("palace", "ups-7") is not None

        await wait_for(ready, 15, f"the status stored and the API up\n{hub_flow(hub, influxdb)}")
        assert hub.http is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.http.bound_port}", timeout=10) as http:
            login = await http.post("/api/v1/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            response = await http.get("/api/v1/reports/kpi", headers=headers)
    assert response.status_code == 200, response.text
    [row] = response.json()["availability_by_device"]
    assert (row["device"], row["state_at_end"], row["availability"]) == ("ups-7", "online", 1.0)
    # Online for the last minute of the week: observed about 60 s (the report is made a moment later).
    assert 60 <= row["observed_s"] < 90
