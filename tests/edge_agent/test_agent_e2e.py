"""End to end on real parts: simulated Modbus devices → edge agent → Mosquitto → hub → InfluxDB.

One simulator hosts every shipped profile (one unit each) behind one Modbus TCP endpoint; the agent runs
in the test's event loop and polls it every 0.5 s; the hub stores into its own InfluxDB database. The
assertions read InfluxDB back, so they check the whole chain: driver decoding, the agent's messages,
the contract, the hub's mapping (docs/storage.md) and the device state tracking.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agenttools import (
    SITE,
    AgentProcess,
    AgentRun,
    agent_config,
    influx_series,
    queue_file_totals,
    running_agent,
    stored_value,
    write_agent_config,
)
from hubtools import hub_settings, running_hub, wait_for
from services import InfluxDBServer, MosquittoServer, free_port
from testkit import unique

from drivers.modbus.codec import Value
from drivers.modbus.profile import PROFILE_DIR, DeviceProfile, load_profile
from hub.service import Hub
from simulators.modbus import FaultMode, ModbusSimulator

POLL_S = 0.5
HUB_MEASUREMENTS = frozenset({"events", "device_birth", "device_status"})

#: What each simulated device holds at the start: every point of every shipped profile, with values a
#: float32 cannot hold exactly (230.1 V) and negative scaled integers where the type allows. Some state
#: points start active (an alarm present at start-up); the tests change others.
BASELINE: dict[str, dict[str, Value]] = {
    "climate-controller": {
        "climate.supply_air_temperature": 18.5,
        "climate.return_air_temperature": 27.3,
        "climate.return_air_humidity": 45.6,
        "climate.run_hours": 43_210,
        "climate.alarm.high_temperature": False,
        "climate.alarm.high_humidity": False,
        "climate.alarm.water_leak": False,
        "climate.alarm.dirty_filter": True,
        "climate.alarm.unit_fault": False,
        "climate.temperature_setpoint": -5.5,  # a cold room: exercises the signed int16
        "climate.humidity_setpoint": 50.0,
        "climate.fan_running": True,
        "climate.compressor_running": False,
    },
    "energy-meter": {
        "meter.voltage_l1": 230.1,
        "meter.voltage_l2": 231.7,
        "meter.voltage_l3": 229.4,
        "meter.current_l1": 12.34,
        "meter.current_l2": 11.9,
        "meter.current_l3": 13.05,
        "meter.active_power": 8_543.25,
        "meter.frequency": 49.98,
        "meter.power_factor": -0.912,
        "meter.energy_import": 123_456_789_012,
    },
    "environment-sensor": {
        "environment.temperature": 23.4,
        "environment.humidity": 41.2,
        "device_info.model": "CH-ENV01",
        "device_info.serial": 4_000_000_123,
    },
    "gas-suppression": {
        "gas.system_state": 0,
        "gas.discharge_countdown": 0,
        "gas.cylinder_pressure": 142.7,
        "gas.zone1_alarm": False,
        "gas.zone2_alarm": True,
        "gas.zone3_alarm": False,
        "gas.zone4_alarm": False,
        "gas.manual_mode": True,
        "gas.hold_pressed": False,
        "gas.fault": False,
    },
}

#: Every shipped profile, on units 1, 2, ... in name order.
PROFILES = [load_profile(path.stem) for path in sorted(PROFILE_DIR.glob("*.yaml"))]


def device_id(profile: DeviceProfile) -> str:
    return f"{profile.name}-01"


def same(stored: float | str, expected: float | str) -> bool:
    """Equal, floats within float32 precision (the registers of most points hold a float32 or less)."""
    if isinstance(stored, float) and isinstance(expected, float):
        return math.isclose(stored, expected, rel_tol=1e-6, abs_tol=1e-9)
    return stored == expected


@dataclass
class Chain:
    """Simulator and hub running, the agent's configuration written: the chain but for the agent."""

    sim: ModbusSimulator
    hub: Hub
    influxdb: InfluxDBServer
    db: str
    agent_id: str
    config_path: Path
    http_port: int
    units: dict[str, int]  # device id -> unit
    profiles: dict[str, DeviceProfile]  # device id -> profile

    def latest(self, device: str) -> dict[str, dict[str, Any]]:
        """The newest stored reading of each of the device's points, with its measurement and tags."""
        where = f'"device" = \'{device}\' AND "point" =~ /./'
        series = influx_series(
            self.influxdb, self.db, f"SELECT * FROM /.*/ WHERE {where} GROUP BY * ORDER BY time DESC LIMIT 1"
        )
        return {s["tags"]["point"]: {"measurement": s["name"], "tags": s["tags"], "row": s["rows"][0]} for s in series}

    def count(self, device: str, point: str) -> int:
        """How many readings of a numeric point are stored with a value."""
        measurement = point.partition(".")[0]
        query = f'SELECT count("value") FROM "{measurement}" WHERE "device" = \'{device}\' AND "point" = \'{point}\''
        series = influx_series(self.influxdb, self.db, query)
        return int(series[0]["rows"][0]["count"]) if series else 0

    def rows(self, query: str) -> list[dict[str, Any]]:
        """Rows of every series of a query, each with its tags merged in."""
        return [{**s["tags"], **row} for s in influx_series(self.influxdb, self.db, query) for row in s["rows"]]

    def last_status(self) -> dict[str, dict[str, Any]]:
        """Each device's newest ``device_status`` point."""
        rows = self.rows('SELECT * FROM "device_status" GROUP BY "device" ORDER BY time DESC LIMIT 1')
        return {row["device"]: row for row in rows}


@dataclass
class Pipeline(Chain):
    """The whole chain, with the agent running in the test's event loop."""

    agent: AgentRun


@pytest.fixture
async def chain(tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer) -> AsyncIterator[Chain]:
    """Simulator (every shipped profile, at BASELINE) and hub (into InfluxDB) running; no agent yet."""
    root, db, agent_id = unique("root"), unique("agent_e2e_"), unique("edge-")
    units = {device_id(profile): unit for unit, profile in enumerate(PROFILES, start=1)}
    profiles = {device_id(profile): profile for profile in PROFILES}
    async with ModbusSimulator({units[d]: p for d, p in profiles.items()}) as sim:
        for device, profile in profiles.items():
            for metric, value in BASELINE[profile.name].items():
                sim.set(units[device], metric, value)
        http_port = free_port()
        config = agent_config(
            tmp_path / "agent",
            agent_id=agent_id,
            mqtt_url=mosquitto.url,
            topic_root=root,
            lines={"sim": sim.port},
            devices=[
                {"id": d, "line": "sim", "unit": units[d], "profile": p.name, "poll_interval_s": POLL_S}
                for d, p in profiles.items()
            ],
            http_port=http_port,
        )
        path = write_agent_config(tmp_path / "agent.yaml", config)
        settings = hub_settings(
            tmp_path, mosquitto.url, influx=influxdb, db=db, client_id=unique("hub-"), mqtt={"topic_root": root}
        )
        async with running_hub(settings) as hub:
            yield Chain(sim, hub, influxdb, db, agent_id, path, http_port, units, profiles)


@pytest.fixture
async def pipeline(chain: Chain) -> AsyncIterator[Pipeline]:
    """Simulator → agent (in this event loop) → Mosquitto → hub → InfluxDB, all running."""
    async with running_agent(chain.config_path) as agent:
        yield Pipeline(**vars(chain), agent=agent)


def test_the_baseline_covers_every_point_of_every_shipped_profile() -> None:
    assert {p.name: sorted(p.metric for p in p.points) for p in PROFILES} == {
        name: sorted(values) for name, values in BASELINE.items()
    }


async def test_every_shipped_profile_lands_with_its_tags_and_the_simulated_values(pipeline: Pipeline) -> None:
    async def every_point_stored() -> bool:
        return all(len(pipeline.latest(d)) == len(p.points) for d, p in pipeline.profiles.items())

    await wait_for(every_point_stored, 30, "a reading of every point of every device in InfluxDB")

    for device, profile in pipeline.profiles.items():
        latest = pipeline.latest(device)
        assert sorted(latest) == sorted(p.metric for p in profile.points), device
        for point in profile.points:
            stored = latest[point.metric]
            assert stored["measurement"] == point.metric.partition(".")[0], point.metric
            expected_tags = {"device": device, "kind": profile.kind, "point": point.metric, "site": SITE}
            if point.unit:
                expected_tags["unit"] = point.unit
            assert stored["tags"] == expected_tags, point.metric
            field, expected = stored_value(BASELINE[profile.name][point.metric])
            fields = {k: v for k, v in stored["row"].items() if k != "time" and v is not None}
            assert list(fields) == [field], f"{point.metric}: {stored['row']}"  # good quality: no quality field
            assert same(fields[field], expected), f"{point.metric}: stored {fields[field]!r}, set {expected!r}"


#: State changes made on the simulator after start-up, and the event each must produce.
TRANSITIONS: list[tuple[str, str, Value, str, dict[str, str], bool]] = [
    # profile, metric, new value, event type, attributes, active
    (
        "gas-suppression",
        "gas.system_state",
        3,
        "gas.system_state",
        {"state": "pre_discharge", "previous": "normal"},
        True,
    ),
    (
        "climate-controller",
        "climate.alarm.high_temperature",
        True,
        "climate.alarm.high_temperature",
        {"state": "true", "previous": "false"},
        True,
    ),
]

#: States active at start-up: the first reading reports them (no "previous").
STARTUP_EVENTS: list[tuple[str, str, dict[str, str]]] = [
    ("climate-controller", "climate.alarm.dirty_filter", {"state": "true"}),
    ("gas-suppression", "gas.zone2", {"state": "true"}),
    ("gas-suppression", "gas.mode", {"state": "true"}),
]


async def test_state_changes_in_the_simulator_become_events(pipeline: Pipeline) -> None:
    by_name = {p.name: d for d, p in pipeline.profiles.items()}

    def events() -> list[dict[str, Any]]:
        return pipeline.rows('SELECT * FROM "events" GROUP BY *')

    async def startup_events_stored() -> bool:
        return len(events()) >= len(STARTUP_EVENTS)

    await wait_for(startup_events_stored, 30, "the start-up events in InfluxDB")
    assert sorted((e["device"], e["event"], json.loads(e["attributes"])) for e in events()) == sorted(
        (by_name[profile], event, attributes) for profile, event, attributes in STARTUP_EVENTS
    )

    for profile, metric, value, _, _, _ in TRANSITIONS:
        pipeline.sim.set(pipeline.units[by_name[profile]], metric, value)
    pipeline.sim.set(pipeline.units[by_name["gas-suppression"]], "gas.discharge_countdown", 30)

    async def transitions_stored() -> bool:
        return len(events()) == len(STARTUP_EVENTS) + len(TRANSITIONS)

    await wait_for(transitions_stored, 30, "an event per state change in InfluxDB")
    stored = {(e["device"], e["event"]): e for e in events()}
    for profile, metric, _, event_type, attributes, active in TRANSITIONS:
        event = stored[(by_name[profile], event_type)]
        assert event["kind"] == pipeline.profiles[by_name[profile]].kind
        assert event["active"] is active
        assert json.loads(event["attributes"]) == attributes
        assert event["message"] == f"{metric} is {attributes['state']}"

    # The telemetry carries the new values too, next to the events.
    gas = pipeline.latest(by_name["gas-suppression"])
    assert gas["gas.system_state"]["row"]["value"] == 3.0
    assert gas["gas.discharge_countdown"]["row"]["value"] == 30.0
    climate = pipeline.latest(by_name["climate-controller"])
    assert climate["climate.alarm.high_temperature"]["row"]["value"] == 1.0

    # And a clearing alarm is an event of its own, inactive.
    pipeline.sim.set(pipeline.units[by_name["climate-controller"]], "climate.alarm.high_temperature", False)

    async def cleared() -> bool:
        return any(e["event"] == "climate.alarm.high_temperature" and e["active"] is False for e in events())

    await wait_for(cleared, 30, "the alarm's clearing event")
    clearing = [e for e in events() if e["event"] == "climate.alarm.high_temperature" and e["active"] is False]
    assert [json.loads(e["attributes"]) for e in clearing] == [{"state": "false", "previous": "true"}]


async def test_births_and_online_statuses_land_and_a_clean_stop_takes_agent_and_devices_offline(
    pipeline: Pipeline,
) -> None:
    everyone = {*pipeline.profiles, pipeline.agent_id}

    def births() -> dict[str, dict[str, Any]]:
        return {row["device"]: row for row in pipeline.rows('SELECT * FROM "device_birth" GROUP BY *')}

    async def all_online() -> bool:
        statuses = pipeline.last_status()
        return set(births()) == everyone and all(statuses.get(d, {}).get("state") == "online" for d in everyone)

    await wait_for(all_online, 30, "a birth and an online status of the agent and of every device")
    gateway = f"{SITE}/{pipeline.agent_id}"
    stored = births()
    assert stored[pipeline.agent_id]["kind"] == "edge_agent"
    assert stored[pipeline.agent_id]["software"] == "cityhub-agent"
    for device, profile in pipeline.profiles.items():
        birth = stored[device]
        assert (birth["kind"], birth["profile"], birth["metrics"]) == (profile.kind, profile.name, len(profile.points))
        assert birth["boot"] == pipeline.agent.agent.boot
        # The gateway is not a field of device_birth (docs/storage.md): the hub keeps it with the device.
        known = pipeline.hub.devices.get(SITE, device)
        assert known is not None
        assert known.gateway == gateway
        assert json.loads(known.birth or "{}")["profile"] == profile.name

    await pipeline.agent.stop()

    async def all_offline() -> bool:
        statuses = pipeline.last_status()
        return all(statuses.get(d, {}).get("state") == "offline" for d in everyone)

    await wait_for(all_offline, 30, "the agent and every device offline in device_status")
    statuses = pipeline.last_status()
    assert statuses[pipeline.agent_id]["reason"] == "shutdown"
    assert statuses[pipeline.agent_id]["online"] == 0.0
    for device in pipeline.profiles:
        assert statuses[device]["reason"] == f"gateway {gateway} offline"
        known = pipeline.hub.devices.get(SITE, device)
        assert known is not None
        assert known.state == "offline"
    # One transition each way per device: nothing stored twice.
    history = pipeline.rows('SELECT "state" FROM "device_status" GROUP BY "device"')
    for device in everyone:
        assert [row["state"] for row in history if row["device"] == device] == ["online", "offline"], device


async def test_a_clean_stop_during_a_queue_commit_leaves_nothing_queued(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    # The queue writer commits the pollers' messages on the database thread. A stop that cancelled it
    # half-way let that commit land after the goodbye had found the queue empty: the message stayed
    # queued until the next start (seen once in CI: 1 message left after a clean stop).
    profile = PROFILES[0]
    async with ModbusSimulator({1: profile}) as sim:
        config = agent_config(
            tmp_path / "agent", agent_id=unique("edge-"), mqtt_url=mosquitto.url, topic_root=unique("root"),
            lines={"sim": sim.port}, devices=[{"id": "d1", "line": "sim", "unit": 1, "profile": profile.name,
                                              "poll_interval_s": 60}],
        )  # fmt: skip
        run = AgentRun(write_agent_config(tmp_path / "agent.yaml", config))
        queue = run.agent.queue
        committing, release, insert = threading.Event(), threading.Event(), queue._insert

        def held_insert(*args: Any) -> Any:
            committing.set()
            release.wait(10)  # a slow SD card, held until the stop has begun
            return insert(*args)

        queue._insert = held_insert  # type: ignore[method-assign]
        await run.start()
        assert await asyncio.to_thread(committing.wait, 10), "the first poll was never committed"

        async def connected() -> bool:
            return run.agent.session.connected

        await wait_for(connected, 10, "the agent connected")
        stopping = asyncio.create_task(run.stop())
        await asyncio.sleep(0.3)  # the stop reaches the queue writer (the poller sleeps for 60 s)
        release.set()
        await stopping
    still_queued, committed = queue_file_totals(tmp_path / "agent" / "outbound.sqlite")
    assert committed > 0
    assert still_queued == 0


async def test_a_silent_device_is_reported_offline_while_the_others_continue(pipeline: Pipeline) -> None:
    silent = device_id(load_profile("environment-sensor"))
    others = {d: p for d, p in pipeline.profiles.items() if d != silent}
    first_point = {d: p.points[0] for d, p in others.items()}

    async def all_online() -> bool:
        statuses = pipeline.last_status()
        return all(statuses.get(d, {}).get("state") == "online" for d in pipeline.profiles)

    await wait_for(all_online, 30, "every device online")
    pipeline.sim.set_fault(pipeline.units[silent], FaultMode.SILENT)

    async def silent_offline() -> bool:
        return pipeline.last_status().get(silent, {}).get("state") == "offline"

    await wait_for(silent_offline, 30, f"{silent} offline in device_status")
    status = pipeline.last_status()[silent]
    assert status["reason"] == "no answer from the device"
    assert pipeline.agent.agent.health()["devices_down"] == [silent]

    # The others keep being polled and stored, and stay online.
    before = {d: pipeline.count(d, point.metric) for d, point in first_point.items()}

    async def others_continue() -> bool:
        now = {d: pipeline.count(d, point.metric) for d, point in first_point.items()}
        return all(now[d] >= before[d] + 3 for d in others)

    await wait_for(others_continue, 30, "three more readings of every other device")
    statuses = pipeline.last_status()
    assert {d: statuses[d]["state"] for d in others} == dict.fromkeys(others, "online")

    # What the silent device "reports" meanwhile: its points with quality bad and no value.
    latest = pipeline.latest(silent)
    assert {m: (s["row"]["quality"], s["row"]["value"]) for m, s in latest.items()} == {
        p.metric: ("bad", None) for p in pipeline.profiles[silent].points
    }

    pipeline.sim.clear_fault(pipeline.units[silent])

    async def back_online() -> bool:
        return pipeline.last_status().get(silent, {}).get("state") == "online"

    # The agent retries a dead device after a growing backoff (1 s, 2 s, 4 s, ...).
    await wait_for(back_online, 60, f"{silent} online again")
    history = pipeline.rows(f'SELECT "state" FROM "device_status" WHERE "device" = \'{silent}\'')
    assert [row["state"] for row in history] == ["online", "offline", "online"]


async def test_an_agent_killed_while_connected_takes_its_devices_offline_by_its_will_and_brings_them_back(
    chain: Chain,
) -> None:
    """``cityhub agent`` in its own process: SIGKILL (the broker publishes the will), restart, SIGTERM."""
    everyone = {*chain.profiles, chain.agent_id}
    gateway = f"{SITE}/{chain.agent_id}"
    agent = AgentProcess(chain.config_path, chain.http_port)

    async def states(expected: str) -> bool:
        statuses = chain.last_status()
        return all(statuses.get(d, {}).get("state") == expected for d in everyone)

    agent.start()
    try:
        await wait_for(lambda: states("online"), 30, "the agent and every device online")
        await asyncio.to_thread(agent.kill)
        await wait_for(lambda: states("offline"), 30, "the agent offline by its will, and every device with it")
        statuses = chain.last_status()
        assert statuses[chain.agent_id]["reason"] == "connection lost"  # the will's reason
        assert {statuses[d]["reason"] for d in chain.profiles} == {f"gateway {gateway} offline"}

        agent.start()
        await wait_for(lambda: states("online"), 30, "the restarted agent and every device online again")
        assert await asyncio.to_thread(agent.stop) == 0, agent.log_tail()
        await wait_for(lambda: states("offline"), 30, "the agent and every device offline after SIGTERM")
    finally:
        if agent.alive:
            await asyncio.to_thread(agent.kill)
    assert chain.last_status()[chain.agent_id]["reason"] == "shutdown"
    history = chain.rows('SELECT "state", "boot" FROM "device_status" GROUP BY "device"')
    for device in everyone:
        rows = [row for row in history if row["device"] == device]
        assert [row["state"] for row in rows] == ["online", "offline", "online", "offline"], device
        first_boot, second_boot = rows[0]["boot"], rows[2]["boot"]
        assert second_boot > first_boot, device
