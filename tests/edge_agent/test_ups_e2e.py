"""End to end on real parts: the ups-mains-failure scenario played by a simulated UPS card (SNMP over UDP,
with traps) → edge agent (poller and trap listener) → Mosquitto → hub → InfluxDB.

The scenario runs four times faster than real time (20 s). The agent polls every second and listens for
the card's traps; the assertions read InfluxDB back: the battery draining and recharging as readings,
on battery, low battery and back on mains as events, each once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agenttools import agent_config, influx_series, running_agent, write_agent_config
from hubtools import hub_settings, running_hub, wait_for
from services import InfluxDBServer, MosquittoServer, free_port
from testkit import unique

from simulators.runner import ScenarioRunner
from simulators.scenario import load_scenario
from simulators.snmp_ups.points import SnmpUpsTarget
from simulators.snmp_ups.simulation import simulated_ups

SPEED = 4.0
COMMUNITY = "e2e-community"


def rows(influxdb: InfluxDBServer, db: str, query: str) -> list[dict[str, Any]]:
    return [{**s["tags"], **row} for s in influx_series(influxdb, db, query) for row in s["rows"]]


async def test_mains_failure_lands_as_readings_and_events(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer
) -> None:
    scenario = load_scenario("ups-mains-failure")
    (ups_id, ups), *_ = scenario.devices.items()
    root, db, trap_port = unique("root"), unique("ups_e2e_"), free_port()
    settings = hub_settings(
        tmp_path, mosquitto.url, influx=influxdb, db=db, client_id=unique("hub-"), mqtt={"topic_root": root}
    )
    async with (
        simulated_ups(ups.profile.name, community=COMMUNITY, trap_target=("127.0.0.1", trap_port)) as card,
        running_hub(settings),
    ):
        runner = ScenarioRunner(scenario, {ups_id: SnmpUpsTarget(card)}, speed=SPEED, tick_s=0.05)
        runner.apply(0.0)
        device = {
            "driver": "snmp",
            "id": ups_id,
            "host": "127.0.0.1",
            "port": card.port,
            "community": COMMUNITY,
            "poll_interval_s": 1.0,
            "timeout_s": 0.5,
        }
        config = agent_config(
            tmp_path / "agent", agent_id=unique("edge-"), mqtt_url=mosquitto.url, topic_root=root, lines={}, devices=[]
        )
        traps = {"host": "127.0.0.1", "port": trap_port, "communities": [COMMUNITY]}
        path = write_agent_config(tmp_path / "agent.yaml", {**config, "devices": [device], "snmp_traps": traps})
        async with running_agent(path):

            async def polled() -> bool:
                return bool(rows(influxdb, db, 'SELECT "text" FROM "ups" WHERE "point" = \'ups.status\''))

            await wait_for(polled, 20, "the UPS's first poll stored")
            since = f"time >= {time.time_ns()}"
            await runner.run()

            def events() -> list[tuple[str, bool, str]]:
                query = f'SELECT * FROM "events" WHERE {since}'
                return [(r["event"], r["active"], r["attributes"]) for r in rows(influxdb, db, query)]

            async def back_on_mains() -> bool:
                return any(event == "ups.on_battery" and not active for event, active, _ in events())

            await wait_for(back_on_mains, 20, "the UPS back on mains")

    stored = events()
    assert [(e, a) for e, a, _ in stored if e == "ups.on_battery"] == [
        ("ups.on_battery", True),
        ("ups.on_battery", False),
    ]
    assert [(e, a) for e, a, _ in stored if e == "ups.low_battery"][:1] == [("ups.low_battery", True)]
    assert '"source": "trap"' in next(attrs for e, a, attrs in stored if e == "ups.on_battery" and a)

    charge = [
        r["value"]
        for r in rows(influxdb, db, f'SELECT "value" FROM "battery" WHERE "point" = \'battery.charge\' AND {since}')
    ]
    lowest = min(charge)
    assert charge[0] > 90
    assert lowest < 30  # drained towards 20 % by the scenario's 40 s
    assert charge[-1] > lowest + 20  # recharging after mains came back
    statuses = {
        r["text"] for r in rows(influxdb, db, f'SELECT "text" FROM "ups" WHERE "point" = \'ups.status\' AND {since}')
    }
    assert {"OL", "OB", "OB LB"} <= {" ".join(t for t in s.split() if t in ("OL", "OB", "LB")) for s in statuses}
    runtime = rows(
        influxdb, db, f'SELECT "value", "unit" FROM "battery" WHERE "point" = \'battery.runtime\' AND {since}'
    )
    assert {r["unit"] for r in runtime} == {"s"}
    assert max(r["value"] for r in runtime) > 1000  # seconds, though UPS-MIB counts minutes
