"""End to end on real parts: the camera-offline scenario played by simulated ONVIF cameras → edge agent →
Mosquitto → hub → InfluxDB, as readings, events and the Palace camera's offline/online transitions.

The scenario runs eight times faster than real time (15 s); the agent polls the cameras every 0.5 s and
keeps a PullPoint subscription on each. The assertions read InfluxDB back, so they check the driver, the
agent's messages, the contract and the hub's storage together.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agenttools import agent_config, influx_series, running_agent, write_agent_config
from hubtools import hub_settings, running_hub, wait_for
from services import InfluxDBServer, MosquittoServer, free_port
from testkit import unique

from simulators.onvif import CameraFleet, CameraSpec
from simulators.runner import ScenarioRunner
from simulators.scenario import load_scenario

SPEED = 8.0
#: Fast enough for a 15 s scenario: every timeout, renewal and retry within a fraction of a second.
FAST_CAMERA = {
    "poll_interval_s": 0.5,
    "timeout_s": 0.5,
    "subscription_s": 2,
    "pull_wait_s": 0.3,
    "retry_initial_s": 0.1,
    "retry_max_s": 0.4,
}


def rows(influxdb: InfluxDBServer, db: str, query: str) -> list[dict[str, Any]]:
    return [{**s["tags"], **row} for s in influx_series(influxdb, db, query) for row in s["rows"]]


async def test_camera_offline_scenario_lands_as_readings_events_and_status(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer
) -> None:
    scenario = load_scenario("camera-offline")
    root, db = unique("root"), unique("camera_e2e_")
    specs = [CameraSpec(name=name, profile=device.profile.name) for name, device in scenario.devices.items()]
    settings = hub_settings(
        tmp_path, mosquitto.url, influx=influxdb, db=db, client_id=unique("hub-"), mqtt={"topic_root": root}
    )
    async with CameraFleet(specs, discovery_port=None) as fleet, running_hub(settings):
        sites = {"bastion-gate": "bastion", "palace-court": "palace"}
        cameras = [{**entry, **FAST_CAMERA, "site": sites[entry["id"]]} for entry in fleet.inventory()]
        config = agent_config(
            tmp_path / "agent", agent_id=unique("edge-"), mqtt_url=mosquitto.url, topic_root=root, lines={}, devices=[]
        )
        path = write_agent_config(tmp_path / "agent.yaml", {**config, "devices": cameras})
        async with running_agent(path):

            async def subscribed() -> bool:
                query = (
                    'SELECT last("value") FROM "camera" WHERE "point" = \'camera.events_subscribed\' GROUP BY "device"'
                )
                return len([r for r in rows(influxdb, db, query) if r["last"] == 1]) == 2

            await wait_for(subscribed, 20, "both cameras' event subscriptions")
            since = f"time >= {time.time_ns()}"  # what happened at start-up is not the scenario's
            await ScenarioRunner(scenario, fleet.targets(), speed=SPEED, tick_s=0.05).run()

            def events(device: str) -> list[tuple[str, bool]]:
                query = f'SELECT * FROM "events" WHERE "device" = \'{device}\' AND {since}'
                return [(row["event"], row["active"]) for row in rows(influxdb, db, query)]

            async def everything_stored() -> bool:
                last_bastion, last_palace = ("camera.digital_input", False), ("camera.offline", False)
                return last_bastion in events("bastion-gate") and last_palace in events("palace-court")

            await wait_for(everything_stored, 20, "the scenario's last events")
            # Read before the agent stops: then the hub marks its devices offline with it, rightly.
            query = f'SELECT * FROM "device_status" WHERE "device" = \'palace-court\' AND {since}'
            transitions = rows(influxdb, db, query)

    bastion, palace = events("bastion-gate"), events("palace-court")
    assert [e for e in bastion if e[0] == "camera.motion"] == [("camera.motion", True), ("camera.motion", False)]
    assert [e for e in bastion if e[0] == "camera.digital_input"] == [
        ("camera.digital_input", True),
        ("camera.digital_input", False),
    ]
    assert [e for e in palace if e[0] == "camera.tamper"] == [("camera.tamper", True), ("camera.tamper", False)]
    assert [e for e in palace if e[0] == "camera.offline"] == [("camera.offline", True), ("camera.offline", False)]
    assert not [e for e in bastion if e[0] == "camera.offline"]  # the Bastion camera never went away

    assert [row["state"] for row in transitions] == ["offline", "online"]
    assert transitions[0]["kind"] == "camera"
    assert transitions[0]["reason"].startswith("unreachable")
    health = rows(influxdb, db, 'SELECT "text" FROM "camera" WHERE "point" = \'camera.health\' GROUP BY "device"')
    assert {r["text"] for r in health if r["device"] == "palace-court"} == {"ok", "unreachable"}
    assert {r["text"] for r in health if r["device"] == "bastion-gate"} == {"ok"}


async def test_what_a_camera_says_of_itself_is_made_to_fit_the_contract(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer
) -> None:
    """A 300-character serial with a line break (a camera's words) and a long connection error as the
    status reason of a camera that is not there: both reach the hub cut to the contract's 128 characters,
    and the agent keeps running."""
    root, db = unique("root"), unique("camera_text_")
    settings = hub_settings(
        tmp_path, mosquitto.url, influx=influxdb, db=db, client_id=unique("hub-"), mqtt={"topic_root": root}
    )
    serial = "SN-" + "7" * 300 + "\nsecond line"
    async with CameraFleet([CameraSpec(name="chatty", serial=serial)], discovery_port=None) as fleet:
        gone = {**fleet.inventory()[0], "id": "gone", "port": free_port()}  # nobody listens there
        cameras = [{**entry, **FAST_CAMERA} for entry in [*fleet.inventory(), gone]]
        config = agent_config(
            tmp_path / "agent", agent_id=unique("edge-"), mqtt_url=mosquitto.url, topic_root=root, lines={}, devices=[]
        )
        path = write_agent_config(tmp_path / "agent.yaml", {**config, "devices": cameras})
        async with running_hub(settings), running_agent(path) as run:

            def births() -> dict[str, dict[str, Any]]:
                return {r["device"]: r for r in rows(influxdb, db, 'SELECT * FROM "device_birth" GROUP BY "device"')}

            def statuses() -> dict[str, dict[str, Any]]:
                return {r["device"]: r for r in rows(influxdb, db, 'SELECT * FROM "device_status" GROUP BY "device"')}

            async def told() -> bool:
                return births().get("chatty", {}).get("serial") is not None and "gone" in statuses()

            await wait_for(told, 20, "the chatty camera's serial and the missing camera's status")
            assert run.agent.metrics.invalid.labels(device="chatty")._value.get() == 0

    stored = births()["chatty"]["serial"]
    assert len(stored) == 128
    assert stored.startswith("SN-777")
    assert stored.endswith("…")
    status = statuses()["gone"]
    assert status["state"] == "offline"
    assert 0 < len(status["reason"]) <= 128
