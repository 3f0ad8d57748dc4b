"""MTTA, MTTR and alerts per team on a scenario's recorded alerts, against figures computed by hand.

Two committed recordings (tests/golden/recordings) are replayed through their rule packs with the
simulated clock of cityhub/replay; the transitions go through the real alert manager into a real alert
store, with operators acknowledging and resolving at known instants on the same clock. The report then
reads the store back as a hub's report would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cityhub.replay.recording import read_recording
from cityhub.replay.replay import ReplayResult, replay
from hub.alerts.config import AlertsConfig
from hub.alerts.manager import AlertManager, Notice
from hub.alerts.store import AlertStore
from hub.kpi.model import KpiData
from hub.kpi.period import Period
from hub.kpi.report import build_report
from hub.kpi.sources import read_alerts
from rules.loader import PACKS_DIR, load_rules
from rules.model import AlertState, Transition

from .conftest import SimClock, transition

RECORDINGS = Path(__file__).parents[2] / "golden" / "recordings"


def replayed(scenario: str, pack: str) -> ReplayResult:
    """The scenario's transitions (speed 4, as recorded: tests/golden/test_scenarios.py)."""
    return replay(read_recording(RECORDINGS / f"{scenario}.jsonl"), load_rules([PACKS_DIR / f"{pack}.yaml"]), speed=4)


def offsets(result: ReplayResult) -> list[tuple[int, str, str]]:
    return [(t.at_ms - result.start_ms, t.state.value, t.rule) for t in result.transitions]


# What the replays give (the golden timelines, to the millisecond), relative to each recording's start.
UPS = [
    (9436, "firing", "ups.on-battery"),
    (37676, "firing", "ups.runtime-low"),
    (39412, "firing", "ups.low-battery"),  # critical; the others are major
    (49396, "resolved", "ups.low-battery"),
    (49396, "resolved", "ups.on-battery"),
    (57668, "resolved", "ups.runtime-low"),
]
CAMERA = [
    (39612, "firing", "camera.tamper"),
    (49560, "resolved", "camera.tamper"),
    (60108, "firing", "camera.offline"),
    (90168, "resolved", "camera.offline"),
]


async def run_alerts(store: AlertStore, steps: list[tuple[int, Transition | tuple[str, str, str]]]) -> None:
    """Feed transitions and operators' actions (action, rule, who) to the manager in time order, on one clock."""
    clock = SimClock(0)
    told: list[Notice] = []
    manager = AlertManager(store, AlertsConfig(), told.append, clock_ms=clock)
    for at_ms, step in sorted(steps, key=lambda s: s[0]):
        clock.ms = at_ms
        if isinstance(step, Transition):
            await manager.apply([step])
            continue
        action, rule, who = step
        [alert] = [a for a in manager.open_alerts if a.rule == rule]
        await getattr(manager, action)(alert.id, who, None)


async def test_mtta_mttr_and_alerts_per_team_of_replayed_scenarios(tmp_path: Path) -> None:
    ups, camera = replayed("ups-mains-failure", "ups"), replayed("camera-offline", "cameras")
    assert (offsets(ups), offsets(camera)) == (UPS, CAMERA)
    u, c = ups.start_ms, camera.start_ms
    steps: list[tuple[int, Transition | tuple[str, str, str]]] = [(t.at_ms, t) for t in ups.transitions]
    steps += [(t.at_ms, t) for t in camera.transitions]
    steps += [
        (u + 19436, ("acknowledge", "ups.on-battery", "ion")),  # 10 s after it fired
        (u + 40676, ("acknowledge", "ups.runtime-low", "ion")),  # 3 s after it fired
        (u + 47676, ("resolve", "ups.runtime-low", "ion")),  # by hand, 10 s after it fired (the rules' later: moot)
        (c + 41612, ("acknowledge", "camera.tamper", "paula")),  # 2 s after it fired
    ]  # fmt: skip
    store = AlertStore(tmp_path / "alerts.sqlite")
    await store.open()
    try:
        await run_alerts(store, steps)
    finally:
        await store.aclose()

    # The period ends 80 s into the camera recording: camera.offline (fired at +60.108 s) is still open then,
    # and its resolution at +90.168 s is after the period, so it does not count.
    period = Period(start_ms=u, end_ms=c + 80_000)
    alerts, history = await read_alerts(tmp_path / "alerts.sqlite", period)
    json = build_report(KpiData(alerts=tuple(alerts), history=tuple(history)), period, now_ms=c + 600_000).as_json()

    assert json["alerts_by_team"] == [
        {"team": "it", "severity": "critical", "alerts": 1, "reopened": 0},
        {"team": "it", "severity": "major", "alerts": 2, "reopened": 0},
        {"team": "police", "severity": "major", "alerts": 2, "reopened": 0},
    ]
    # it: acknowledged on-battery after 10 s and runtime-low after 3 s: MTTA (10 + 3) / 2 = 6.5 s.
    #     resolved on-battery at +49.396 (the rules) - 9.436 = 39.960 s; runtime-low by hand 47.676 - 37.676 = 10 s;
    #     low-battery at +49.396 (the rules, never acknowledged) - 39.412 = 9.984 s:
    #     MTTR (39.960 + 10 + 9.984) / 3 = 59.944 / 3 = 19.981333 s.
    # police: tamper acknowledged after 2 s (MTTA 2 s), resolved by the rules 49.560 - 39.612 = 9.948 s (MTTR);
    #     offline never acknowledged and still open at the period's end.
    assert json["response_times"] == [
        {"team": "it", "episodes": 3, "acknowledged": 2, "mtta_s": 6.5, "resolved": 3, "mttr_s": 19.981333,
         "open_at_end": 0},
        {"team": "police", "episodes": 2, "acknowledged": 1, "mtta_s": 2.0, "resolved": 1, "mttr_s": 9.948,
         "open_at_end": 1},
    ]  # fmt: skip
    # Overall: MTTA (10 + 3 + 2) / 3 = 5 s; MTTR (59.944 + 9.948) / 4 = 17.473 s.
    summary = json["summary"]
    assert (summary["alerts"], summary["episodes"]) == (5, 5)
    assert summary["mtta_s"] == pytest.approx(5.0)
    assert summary["mttr_s"] == pytest.approx(17.473)


async def test_a_reopened_alert_is_a_second_episode(tmp_path: Path) -> None:
    """A flapping alert is one alert (the manager reopens it) but two episodes, each timed from its own start."""
    store = AlertStore(tmp_path / "alerts.sqlite")
    await store.open()
    t0 = 1_800_000_000_000
    ups = ("ups.on-battery", "palace", "ups-1", "ups", "it")
    steps: list[tuple[int, Transition | tuple[str, str, str]]] = [
        (t0, transition(*ups, AlertState.FIRING, t0)),
        (t0 + 30_000, ("acknowledge", "ups.on-battery", "ion")),
        (t0 + 60_000, transition(*ups, AlertState.RESOLVED, t0 + 60_000)),
        (t0 + 120_000, transition(*ups, AlertState.FIRING, t0 + 120_000)),  # within the flap window: reopened
        (t0 + 125_000, ("acknowledge", "ups.on-battery", "ion")),
        (t0 + 200_000, transition(*ups, AlertState.RESOLVED, t0 + 200_000)),
    ]
    try:
        await run_alerts(store, steps)
    finally:
        await store.aclose()
    period = Period(start_ms=t0, end_ms=t0 + 3_600_000)
    alerts, history = await read_alerts(tmp_path / "alerts.sqlite", period)
    json = build_report(KpiData(alerts=tuple(alerts), history=tuple(history)), period, now_ms=t0 + 7_200_000).as_json()
    assert json["alerts_by_team"] == [{"team": "it", "severity": "major", "alerts": 1, "reopened": 1}]
    # Episode 1: acked after 30 s, resolved after 60 s. Episode 2: acked after 5 s, resolved after 80 s.
    # MTTA (30 + 5) / 2 = 17.5 s; MTTR (60 + 80) / 2 = 70 s.
    [times] = json["response_times"]
    assert (times["episodes"], times["mtta_s"], times["mttr_s"]) == (2, 17.5, 70.0)
