"""An InfluxDB database filled the way a city's would be: shipped scenarios played on real parts.

Each scenario runs its simulators and an edge agent of its own (tests/golden/scenario_run.py builds
both); all agents publish through one real Mosquitto to one hub (shipped rule packs, self statistics
every half second) writing into a database of the real InfluxDB. The scenarios play side by side, each
fast enough to end in about twenty seconds: the boards need every kind of data, not the alerts' timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from agenttools import agent_config, running_agent, write_agent_config
from golden.scenario_run import CAMERA_SITES, Case, scenario_devices
from hubtools import hub_flow, hub_settings, metric_value, running_hub, wait_for
from services import InfluxDBServer, MosquittoServer
from testkit import unique

from simulators.scenario import load_scenario

#: The scenarios that feed the boards: server room (climate, room sensor, gas panel), UPS, cameras.
CASES = (
    Case(scenario="server-room-overheating", pack="server-room", speed=45.0, poll_s=0.5, tail_s=0),
    Case(scenario="gas-discharge", pack="gas-suppression", speed=4.5, poll_s=0.5, tail_s=0),
    Case(scenario="ups-mains-failure", pack="ups", speed=4.0, poll_s=0.5, tail_s=0),
    Case(
        scenario="camera-offline",
        pack="cameras",
        speed=6.0,
        poll_s=0.5,
        tail_s=0,
        sites=CAMERA_SITES,
    ),
)
ROOM_TAGS = {"cjt-server-room/room-1": ["server-room"]}


@dataclass(frozen=True, slots=True, kw_only=True)
class FilledDatabase:
    """A database the scenarios filled, and the wall-clock span they ran in (milliseconds)."""

    influxdb: InfluxDBServer
    db: str
    hub_id: str
    start_ms: int
    end_ms: int


async def _play(case: Case, tmp_path: Path, mqtt_url: str, root: str) -> None:
    """One scenario: its simulators and its own edge agent, from start to end."""
    scenario = load_scenario(case.scenario)
    done = asyncio.Event()
    async with scenario_devices(scenario, case, done) as (entries, play), asyncio.TaskGroup() as tasks:
        extra, *devices = entries
        lines = {"sim": extra.pop("line_port")} if "line_port" in extra else {}
        workdir = tmp_path / case.scenario
        config = agent_config(
            workdir / "agent", agent_id=unique("edge-"), mqtt_url=mqtt_url, topic_root=root, lines=lines,
            devices=devices,
        )  # fmt: skip
        path = write_agent_config(tmp_path / f"{case.scenario}.yaml", {**config, **extra})
        player = tasks.create_task(play())
        async with running_agent(path):
            await asyncio.sleep(scenario.duration / case.speed + 2 * case.poll_s)
        done.set()
        await player


def _goodbyes(influxdb: InfluxDBServer, db: str) -> int:
    """How many edge agents have said offline."""
    query = """SELECT count("online") FROM "device_status" WHERE "kind" = 'edge_agent' AND "state" = 'offline'"""
    try:
        series = influxdb.query(query, db=db)["results"][0].get("series")
    except RuntimeError:  # the database does not exist yet
        return 0
    return int(series[0]["values"][0][1]) if series else 0


@contextlib.asynccontextmanager
async def filled_database(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer
) -> AsyncIterator[FilledDatabase]:
    """Play every case of ``CASES`` into a new database; yield it once the hub has stored everything."""
    db, root, hub_id = unique("boards_"), unique("root"), unique("hub-")
    settings = hub_settings(
        tmp_path, mosquitto.url, influx=influxdb, db=db, client_id=hub_id, mqtt={"topic_root": root},
        alerts={"tags": ROOM_TAGS, "tick_s": 0.1}, selfstats={"enabled": True, "interval_s": 0.5},
    )  # fmt: skip
    start_ms = int(time.time() * 1000)
    async with running_hub(settings) as hub:
        async with asyncio.TaskGroup() as tasks:
            for case in CASES:
                tasks.create_task(_play(case, tmp_path, mosquitto.url, root))

        async def settled() -> bool:
            # Every agent said goodbye, after what it had queued: once that is stored, everything is.
            return metric_value(hub, "cityhub_hub_messages_unacked") == 0 and _goodbyes(influxdb, db) == len(CASES)

        try:
            await wait_for(settled, 30, "the agents' goodbyes stored")
        except AssertionError:
            print(hub_flow(hub, mosquitto, influxdb))
            raise
        await asyncio.sleep(1.5)  # a few more hub_stats samples after the last device message
    yield FilledDatabase(influxdb=influxdb, db=db, hub_id=hub_id, start_ms=start_ms, end_ms=int(time.time() * 1000))
