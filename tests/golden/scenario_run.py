"""Playing a shipped scenario on real parts for the golden tests: simulators → edge agent → Mosquitto →
hub (rules, alerts, notifications), with the live traffic recorded and the alerts read from the hub's
team topics. The scenario runs ``speed`` times faster than real time, and so does the hub's rule clock."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agenttools import agent_config, running_agent, write_agent_config
from hubtools import hub_settings
from services import MosquittoServer, free_port
from testkit import unique

from cityhub.contract.alerts import AlertMessage
from cityhub.mqtt import BrokerAddress, MqttSession, SessionOptions
from cityhub.replay.recording import record
from cityhub.replay.replay import format_line
from hub.service import Hub
from rules.loader import PACKS_DIR
from simulators.modbus import build_spec_from_args, run_simulation
from simulators.onvif import CameraFleet, CameraSpec
from simulators.runner import ScenarioRunner
from simulators.scenario import Scenario, load_scenario
from simulators.snmp_ups.points import SnmpUpsTarget
from simulators.snmp_ups.simulation import simulated_ups

GOLDEN = Path(__file__).parent
COMMUNITY = "golden-community"
FAST_CAMERA = {
    "poll_interval_s": 0.5, "timeout_s": 0.5, "subscription_s": 2, "pull_wait_s": 0.3,
    "retry_initial_s": 0.1, "retry_max_s": 0.4,
}  # fmt: skip


#: The camera-offline scenario's cameras by site: the Theresia Bastion and the Administrative Palace.
CAMERA_SITES = {"bastion-gate": "bastion", "palace-court": "palace"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """A shipped scenario, the rule pack it exercises, and how fast it is played."""

    scenario: str
    pack: str
    speed: float
    poll_s: float
    tail_s: float  # scenario seconds played after the scenario's end (values hold), for pending timers
    sites: dict[str, str] = field(default_factory=dict)  # device -> site (default: the agent's)
    tags: dict[str, list[str]] = field(default_factory=dict)  # "site/device" -> tags

    @property
    def rules(self) -> Path:
        return PACKS_DIR / f"{self.pack}.yaml"

    @property
    def golden(self) -> Path:
        return GOLDEN / f"{self.scenario}.timeline"

    @property
    def recording(self) -> Path:
        return GOLDEN / "recordings" / f"{self.scenario}.jsonl"

    @property
    def tolerance_s(self) -> float:
        """How far a live time may be from the golden one: two polls of scenario time, and some."""
        return 2 * self.poll_s * self.speed + 4


class ScaledClock:
    """Wall time until ``start``; then ``speed`` times as fast from that moment (milliseconds)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.anchor_ms: int | None = None

    def start(self) -> int:
        self.anchor_ms = int(time.time() * 1000)
        return self.anchor_ms

    def __call__(self) -> int:
        now = int(time.time() * 1000)
        return now if self.anchor_ms is None else self.anchor_ms + int((now - self.anchor_ms) * self.speed)


@dataclass(slots=True)
class LiveRun:
    """What a live run gave: the hub's alert notifications and the recording of the traffic."""

    start_ms: int = 0
    alerts: list[AlertMessage] = field(default_factory=list)

    def timeline(self) -> list[str]:
        return [
            format_line(
                (m.at - self.start_ms) / 1000, m.event.value, m.rule, f"{m.site}/{m.device}", m.severity, m.team
            )
            for m in self.alerts
            if m.event.value in ("firing", "resolved")
        ]


async def _collect_alerts(mqtt_url: str, root: str, into: list[AlertMessage], stop: asyncio.Event) -> None:
    options = SessionOptions(client_id=unique("alerts-"), subscriptions=[(f"{root}/v1/_hub/alerts/+", 1)])
    async with MqttSession(BrokerAddress.from_url(mqtt_url), options) as session:
        while not stop.is_set():
            for message in await session.receive(100, 0.1):
                into.append(AlertMessage.model_validate_json(message.payload))


@contextlib.asynccontextmanager
async def scenario_devices(scenario: Scenario, case: Case, stop: asyncio.Event) -> AsyncIterator[tuple[list[Any], Any]]:
    """The scenario's simulators; yields the agent's device entries and a coroutine factory that plays it."""
    kinds = {device.driver for device in scenario.devices.values()}
    if kinds == {"modbus"}:
        port = free_port()
        devices = [
            {"id": d, "line": "sim", "unit": unit, "profile": dev.profile.name, "poll_interval_s": case.poll_s}
            for unit, (d, dev) in enumerate(scenario.devices.items(), start=1)
        ]
        spec = build_spec_from_args(scenario=case.scenario, port=port, speed=case.speed)

        async def play_modbus() -> None:
            await run_simulation(spec, stop)

        yield [{"line_port": port}, *devices], play_modbus
    elif kinds == {"snmp"}:
        (ups_id, ups), *_ = scenario.devices.items()
        trap_port = free_port()
        async with simulated_ups(ups.profile.name, community=COMMUNITY, trap_target=("127.0.0.1", trap_port)) as card:
            runner = ScenarioRunner(scenario, {ups_id: SnmpUpsTarget(card)}, speed=case.speed, tick_s=0.05)
            runner.apply(0.0)
            device = {
                "driver": "snmp", "id": ups_id, "host": "127.0.0.1", "port": card.port, "community": COMMUNITY,
                "poll_interval_s": case.poll_s, "timeout_s": 0.5,
            }  # fmt: skip
            traps = {"host": "127.0.0.1", "port": trap_port, "communities": [COMMUNITY]}

            async def play_ups() -> None:
                await runner.run(stop)

            yield [{"snmp_traps": traps}, device], play_ups
    else:
        specs = [CameraSpec(name=name, profile=dev.profile.name) for name, dev in scenario.devices.items()]
        async with CameraFleet(specs, discovery_port=None) as fleet:
            runner = ScenarioRunner(scenario, fleet.targets(), speed=case.speed, tick_s=0.05)
            runner.apply(0.0)
            cameras = [
                {**entry, **FAST_CAMERA, "poll_interval_s": case.poll_s, "site": case.sites[entry["id"]]}
                for entry in fleet.inventory()
            ]

            async def play_cameras() -> None:
                await runner.run(stop)

            yield [{}, *cameras], play_cameras


async def run_live(case: Case, tmp_path: Path, mosquitto: MosquittoServer, recording: Path) -> LiveRun:
    """Play ``case`` on real parts; write the traffic into ``recording``; return the hub's alerts."""
    scenario = load_scenario(case.scenario)
    root, clock, result, stop = unique("root"), ScaledClock(case.speed), LiveRun(), asyncio.Event()
    settings = hub_settings(
        tmp_path, mosquitto.url, client_id=unique("hub-"), mqtt={"topic_root": root},
        alerts={"rules": [str(case.rules)], "tags": case.tags, "tick_s": 0.05},
    )  # fmt: skip
    hub = Hub(settings, alert_clock_ms=clock)
    done = asyncio.Event()
    async with asyncio.TaskGroup() as tasks, scenario_devices(scenario, case, done) as (entries, play):
        hub_task = tasks.create_task(hub.run(stop))
        await asyncio.wait_for(hub.ready.wait(), 20)
        tasks.create_task(_collect_alerts(mosquitto.url, root, result.alerts, stop))
        extra, *devices = entries
        lines = {"sim": extra.pop("line_port")} if "line_port" in extra else {}
        config = agent_config(
            tmp_path / "agent", agent_id=unique("edge-"), mqtt_url=mosquitto.url, topic_root=root, lines=lines,
            devices=devices,
        )  # fmt: skip
        path = write_agent_config(tmp_path / "agent.yaml", {**config, **extra})
        with recording.open("w", encoding="utf-8") as out:
            result.start_ms = clock.start()
            recorder = tasks.create_task(
                record(mosquitto.url, out, topic_root=root, stop=stop, client_id=unique("rec-"))
            )
            player = tasks.create_task(play())
            async with running_agent(path):
                await asyncio.sleep((scenario.duration + case.tail_s) / case.speed)
            done.set()
            await asyncio.sleep(1.0)  # the last notifications reach the collector
            stop.set()
            await asyncio.gather(recorder, player, hub_task)
    return result


def on_time(live: list[str], golden: list[str], tolerance_s: float) -> list[str]:
    """Problems between a live timeline and the golden one: for each rule and device, the same transitions
    in the same order (none missing, none twice), each within ``tolerance_s`` of its golden time. Transitions
    of different rules in the same second may come in either order live (two messages racing)."""

    def by_subject(lines: list[str]) -> dict[tuple[str, str], list[tuple[int, str]]]:
        found: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for line in lines:
            parsed = re.match(r"\+\s*(\d+)s\s+(\S+)\s+(\S+)\s+(\S+)", line)
            assert parsed is not None, f"not a timeline line: {line!r}"
            seconds, state, rule, subject = parsed.groups()
            found.setdefault((rule, subject), []).append((int(seconds), state))
        return found

    live_by, golden_by = by_subject(live), by_subject(golden)
    if {k: [s for _, s in v] for k, v in live_by.items()} != {k: [s for _, s in v] for k, v in golden_by.items()}:
        return ["the transitions differ:", "live:", *live, "golden:", *golden]
    return [
        f"{rule} {subject} {state}: live at {lt} s, golden at {gt} s (tolerance {tolerance_s:g} s)"
        for (rule, subject), entries in golden_by.items()
        for (gt, state), (lt, _) in zip(entries, live_by[(rule, subject)], strict=True)
        if abs(lt - gt) > tolerance_s
    ]
