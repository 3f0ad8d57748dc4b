"""The edge agent issue's outage test: a broker outage long enough to queue 10,000 messages, with the agent
SIGKILLed and restarted in the middle of it; then every reading reaches InfluxDB exactly once, in order.

The parts are real: a Modbus simulator (50 environment sensors), ``cityhub agent`` in a process of its own,
a Mosquitto of the test's own (persistent sessions, stopped and started again), the hub and InfluxDB.

What cannot be known is how many messages the agent produced: a SIGKILL loses the appends that had not
returned. The test does not need to know. Three independent witnesses are compared instead:

* the queue file: its AUTOINCREMENT counter is the number of messages ever committed, by both runs;
* a plain paho subscriber with a persistent session, present through the whole test: every (boot, seq)
  the broker delivered, first copies in arrival order;
* InfluxDB: the points, keyed by series and timestamp (so a duplicate would be invisible there, which is
  why the count is compared with the subscriber's deduplicated messages, not with itself).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from agenttools import (
    SITE,
    AgentProcess,
    Received,
    Recorder,
    agent_config,
    first_copies,
    influx_series,
    queue_file_totals,
    write_agent_config,
)
from hubtools import hub_settings, metric_value, running_hub, wait_for
from services import InfluxDBServer, MosquittoServer, free_port
from testkit import unique

from drivers.modbus.profile import load_profile
from simulators.modbus import ModbusSimulator

pytestmark = pytest.mark.fault

DEVICES = 50
LINES = 5  # connections to the simulator, 10 devices each: one line could not poll 50 devices 10 times a second
POLL_S = 0.1  # 50 devices: about 500 telemetry messages per second
BACKLOG = 10_000  # messages the queue must hold before the broker comes back
KILL_AT = 4_000  # queued messages at which the first agent is SIGKILLed
POINTS = ("environment.temperature", "environment.humidity", "device_info.model", "device_info.serial")


def temperature(unit: int) -> float:
    return 20.0 + unit / 10


async def health(agent: AgentProcess) -> dict[str, Any]:
    """The agent's /health ({} while it does not answer), fetched off the loop the simulator runs in."""
    return await asyncio.to_thread(agent.health) or {}


async def wait_for_health(
    agent: AgentProcess, condition: Callable[[dict[str, Any]], bool], timeout_s: float, what: str
) -> dict[str, Any]:
    """Poll /health until ``condition(report)``; returns that report."""
    report: dict[str, Any] = {}

    async def met() -> bool:
        nonlocal report
        report = await health(agent)
        return bool(report) and bool(condition(report))

    try:
        await wait_for(met, timeout_s, what, interval_s=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last /health: {report}\n{agent.log_tail()}") from None
    return report


async def dropped(agent: AgentProcess) -> float:
    """Messages the agent's queue dropped since it started, for any reason."""
    samples = [
        await asyncio.to_thread(agent.metric, "cityhub_agent_queue_dropped_total", f'reason="{reason}"')
        for reason in ("overflow", "expired")
    ]
    return sum(sample or 0.0 for sample in samples)  # absent until the first drop


def influx_points(influxdb: InfluxDBServer, db: str, device: str, point: str) -> dict[int, dict[str, Any]]:
    """The stored points of one reading series, by timestamp."""
    measurement = point.partition(".")[0]
    query = f'SELECT * FROM "{measurement}" WHERE "device" = \'{device}\' AND "point" = \'{point}\''
    return {row["time"]: row for s in influx_series(influxdb, db, query) for row in s["rows"]}


def influx_total(influxdb: InfluxDBServer, db: str, point: str) -> int:
    """Points of one metric over every device, good (field value/text) or bad (field quality only)."""
    measurement = point.partition(".")[0]
    series = influx_series(influxdb, db, f'SELECT count(*) FROM "{measurement}" WHERE "point" = \'{point}\'')
    return sum(v or 0 for k, v in series[0]["rows"][0].items() if k != "time") if series else 0


def reading_ts(message: Received, point: str) -> int:
    (ts,) = [reading["ts"] for reading in message.body["readings"] if reading["metric"] == point]
    return int(ts)


async def test_outage_of_10000_messages_with_an_agent_sigkill_stores_every_reading_once_in_order(
    tmp_path: Path, fresh_mosquitto: MosquittoServer, influxdb: InfluxDBServer
) -> None:
    started = time.monotonic()
    root, db, agent_id = unique("root"), unique("outage_"), unique("edge-")
    units = range(1, DEVICES + 1)
    devices = {f"env-{unit:02d}": unit for unit in units}
    data_dir = tmp_path / "agent"
    async with ModbusSimulator(dict.fromkeys(units, load_profile("environment-sensor"))) as sim:
        for unit in units:
            sim.set(unit, "environment.temperature", temperature(unit))
            sim.set(unit, "environment.humidity", 40.0 + unit / 10)
            sim.set(unit, "device_info.model", "CH-ENV01")
            sim.set(unit, "device_info.serial", 1_000 + unit)
        http_port = free_port()
        config = agent_config(
            data_dir,
            agent_id=agent_id,
            mqtt_url=fresh_mosquitto.url,
            topic_root=root,
            lines={f"line-{n}": sim.port for n in range(LINES)},
            devices=[
                {
                    "id": d,
                    "line": f"line-{unit % LINES}",
                    "unit": unit,
                    "profile": "environment-sensor",
                    "poll_interval_s": POLL_S,
                }
                for d, unit in devices.items()
            ],
            http_port=http_port,
            line_timeout_s=2.0,
            # Drain well above the live rate (the default, 500/s, is about the live rate of this test).
            buffer={"drain_rate": 5_000},
        )
        agent = AgentProcess(write_agent_config(tmp_path / "agent.yaml", config), http_port)
        settings = hub_settings(
            tmp_path, fresh_mosquitto.url, influx=influxdb, db=db, client_id=unique("hub-"), mqtt={"topic_root": root}
        )
        recorder = Recorder(
            fresh_mosquitto.url, [f"{root}/v1/+/+/telemetry", f"{root}/v1/+/+/event"], unique("recorder-")
        )
        async with running_hub(settings) as hub, recorder:
            agent.start()
            try:
                # 1. Flowing: every device's telemetry reaches the broker.
                async def every_device_heard() -> bool:
                    return len(first_copies(recorder.snapshot())) == DEVICES

                await wait_for(every_device_heard, 30, "telemetry of every device")

                # 2. The broker goes away; the queue grows; the agent is SIGKILLed and started again.
                await asyncio.to_thread(fresh_mosquitto.stop)
                before_kill = await wait_for_health(
                    agent, lambda h: h["queue_messages"] >= KILL_AT, 60, f"{KILL_AT} queued messages"
                )
                forwarded_before_kill = await asyncio.to_thread(agent.metric, "cityhub_agent_forwarded")
                assert forwarded_before_kill is not None
                assert await dropped(agent) == 0
                await asyncio.to_thread(agent.kill)
                agent.start()
                outage = await wait_for_health(
                    agent, lambda h: h["queue_messages"] >= BACKLOG, 90, f"{BACKLOG} queued messages"
                )
                assert not outage["mqtt_connected"]

                # 3. The broker comes back (with the hub's and the recorder's sessions): the queue drains.
                await asyncio.to_thread(fresh_mosquitto.start)
                await wait_for_health(
                    agent,
                    lambda h: h["mqtt_connected"] and h["queue_messages"] == 0,
                    120,
                    "the queue drained",
                )
                assert await dropped(agent) == 0
                assert await asyncio.to_thread(agent.stop) == 0, agent.log_tail()
            finally:
                if agent.alive:
                    await asyncio.to_thread(agent.kill)

            still_queued, committed = queue_file_totals(data_dir / "outbound.sqlite")
            assert still_queued == 0

            # 4. Everything committed reaches the subscriber and InfluxDB.
            def distinct() -> int:
                return sum(len(ms) for ms in first_copies(recorder.snapshot()).values())

            async def all_delivered() -> bool:
                return distinct() >= committed

            await wait_for(all_delivered, 60, f"{committed} distinct messages at the recorder")

            async def all_stored() -> bool:
                return all(influx_total(influxdb, db, point) >= committed for point in POINTS)

            await wait_for(all_stored, 90, f"{committed} points of each metric in InfluxDB")
            await asyncio.sleep(1.0)  # anything delivered or stored twice would show up now
            # The hub saw no hole either (a new boot starting at 1 is not one).
            assert metric_value(hub, "cityhub_hub_sequence_gaps_total") == 0
            # What was produced while the broker was away came marked as historical (replayed, not live).
            assert metric_value(hub, "cityhub_hub_historical_messages_total") >= 10_000

            # And it knows the agent stopped, and its devices with it.
            async def all_offline() -> bool:
                known = [hub.devices.get(SITE, d) for d in [*devices, agent_id]]
                return all(state is not None and state.state == "offline" for state in known)

            await wait_for(all_offline, 30, "the agent and its devices offline at the hub")

    # -- the subscriber's view: order, no gap, nothing lost across the SIGKILL ---------------------------
    by_device = first_copies(recorder.snapshot())
    assert sorted(by_device) == sorted(devices)
    assert sum(len(messages) for messages in by_device.values()) == committed
    assert {m.kind for messages in by_device.values() for m in messages} == {"telemetry"}
    boots = sorted({m.boot for messages in by_device.values() for m in messages})
    assert len(boots) == 2, f"one boot per agent run, got {boots}"
    first_boot = boots[0]
    for device, messages in by_device.items():
        order = [(m.boot, m.seq) for m in messages]
        assert order == sorted(order), f"{device}: first copies out of order"
        assert {m.boot for m in messages} == set(boots), f"{device}: not polled by both runs"
        for boot in boots:
            seqs = [m.seq for m in messages if m.boot == boot]
            # No hole, in either run: the first run's messages all survived its SIGKILL up to the last one
            # committed, and nothing was dropped.
            assert seqs == list(range(1, len(seqs) + 1)), f"{device}: boot {boot} has holes"
    first_run = sum(1 for messages in by_device.values() for m in messages if m.boot == first_boot)
    # Everything the first run had forwarded or queued when last asked, shortly before its SIGKILL.
    assert first_run >= forwarded_before_kill + before_kill["queue_messages"]

    # -- InfluxDB: one point per reading, exactly the readings the broker delivered --------------------
    for device, messages in by_device.items():
        for point in POINTS:
            expected = {reading_ts(m, point) for m in messages}
            assert len(expected) == len(messages), f"{device} {point}: two readings with one timestamp"
            stored = influx_points(influxdb, db, device, point)
            assert set(stored) == expected, f"{device} {point}: {len(stored)} points for {len(expected)} readings"
        good = [
            row["value"] for row in influx_points(influxdb, db, device, POINTS[0]).values() if row["value"] is not None
        ]
        assert all(math.isclose(v, temperature(devices[device]), rel_tol=1e-6) for v in good), device

    duration = time.monotonic() - started
    print(
        f"\noutage test: {committed} messages ({first_run} by the first run, {committed - first_run} by the second), "
        f"backlog {outage['queue_messages']} at the broker's return, {duration:.0f} s"
    )
