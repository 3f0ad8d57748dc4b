"""The rule engine with a simulated clock: every condition kind, ``for`` windows, restarts, rule reloads."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import pytest

from rules.engine import RuleEngine
from rules.loader import parse_rules
from rules.model import AlertState, BirthIn, EventIn, Observation, ReadingIn, StatusIn, Transition

S = 1000
M = 60 * S


def engine(rules_yaml: str, tags: dict[tuple[str, str], frozenset[str]] | None = None) -> RuleEngine:
    return RuleEngine(parse_rules(rules_yaml), tags)


def rule(when: str, *, extra: str = "", select: str = "{kind: climate}") -> str:
    return f"""
rules:
  - id: r
    summary: "{{site}}/{{device}} {{value}}"
    severity: major
    team: it
    select: {select}
{extra}    when:
{when}
"""


def reading(value: object, ts: int, metric: str = "t", device: str = "d1", quality: str = "good") -> ReadingIn:
    return ReadingIn(site="s", device=device, kind="climate", metric=metric, value=value, ts_ms=ts, quality=quality)  # type: ignore[arg-type]


def event(event_type: str, active: bool, ts: int, **attributes: str) -> EventIn:
    return EventIn(
        site="s", device="d1", kind="climate", type=event_type, active=active, ts_ms=ts, attributes=attributes
    )


def states(transitions: list[Transition]) -> list[tuple[str, int]]:
    return [(t.state.value, t.at_ms) for t in transitions]


def run(eng: RuleEngine, stream: Sequence[tuple[int, Observation | None]], until: int) -> list[tuple[str, int]]:
    """Feed ``stream`` (time, observation; None: only the clock) and tick at every deadline up to ``until``."""
    out: list[Transition] = []
    for at, obs in [*stream, (until, None)]:
        while (due := eng.next_deadline()) is not None and due <= at:
            out += eng.tick(due)
        if obs is not None:
            out += eng.observe(obs, at)
    return states(out)


THRESHOLD = "      threshold: {metric: t, above: 27, clear_below: 25}\n"


def test_threshold_fires_above_and_clears_only_below_the_clear_limit() -> None:
    eng = engine(rule(THRESHOLD))
    values = [20, 28, 26, 25.5, 24.9, 26, 28]
    stream = [(i * S, reading(v, i * S)) for i, v in enumerate(values)]
    assert run(eng, stream, 10 * S) == [("firing", 1 * S), ("resolved", 4 * S), ("firing", 6 * S)]


def test_threshold_below_with_clear_above() -> None:
    eng = engine(rule("      threshold: {metric: t, below: 10, clear_above: 12}\n"))
    stream = [(i * S, reading(v, i * S)) for i, v in enumerate([15, 9, 11, 12.5])]
    assert run(eng, stream, 10 * S) == [("firing", 1 * S), ("resolved", 3 * S)]


def test_for_window_fires_on_the_clock_without_new_messages() -> None:
    eng = engine(rule(THRESHOLD, extra="    for: 2m\n"))
    stream: list[tuple[int, Observation | None]] = [(0, reading(30, 0))]
    assert run(eng, stream, 10 * M) == [("firing", 2 * M)]


def test_for_window_restarts_when_the_condition_breaks() -> None:
    eng = engine(rule(THRESHOLD, extra="    for: 2m\n"))
    stream: list[tuple[int, Observation | None]] = [(0, reading(30, 0)), (M, reading(20, M)), (90 * S, reading(30, 90))]
    assert run(eng, stream, 10 * M) == [("firing", 90 * S + 2 * M)]


def test_bad_quality_and_non_numbers_keep_the_last_decision() -> None:
    eng = engine(rule(THRESHOLD))
    stream: list[tuple[int, Observation | None]] = [
        (0, reading(30, 0)),
        (S, reading(None, S, quality="bad")),
        (2 * S, reading("n/a", 2 * S)),
        (3 * S, reading(20, 3 * S)),
    ]
    assert run(eng, stream, 10 * S) == [("firing", 0), ("resolved", 3 * S)]


def test_stale_metric_fires_on_the_clock_and_clears_with_the_next_good_reading() -> None:
    eng = engine(rule("      stale: {metric: t, max_age: 5m}\n"))
    stream: list[tuple[int, Observation | None]] = [
        (0, reading(20, 0)),
        (M, reading(None, M, quality="bad")),  # a bad reading is no data
        (7 * M, reading(21, 7 * M)),
    ]
    assert run(eng, stream, 20 * M) == [("firing", 5 * M), ("resolved", 7 * M), ("firing", 12 * M)]


def test_stale_device_counts_any_message() -> None:
    eng = engine(rule("      stale: {max_age: 1m}\n"))
    stream: list[tuple[int, Observation | None]] = [(0, reading(1, 0)), (50 * S, event("x", True, 50 * S))]
    assert run(eng, stream, 3 * M) == [("firing", 110 * S)]


def test_offline_from_status_and_back() -> None:
    eng = engine(rule("      offline: {heartbeats: null}\n"))
    down = StatusIn(site="s", device="d1", kind="climate", state="offline", ts_ms=10 * S)
    up = StatusIn(site="s", device="d1", kind="climate", state="online", ts_ms=20 * S)
    late_will = StatusIn(site="s", device="d1", kind="climate", state="offline", ts_ms=5 * S)
    stream: list[tuple[int, Observation | None]] = [(10 * S, down), (20 * S, up), (21 * S, late_will)]
    assert run(eng, stream, M) == [("firing", 10 * S), ("resolved", 20 * S)]


def test_offline_from_missed_heartbeats() -> None:
    eng = engine(rule("      offline: {heartbeats: 3}\n"))
    birth = BirthIn(site="s", device="d1", kind="climate", ts_ms=0, heartbeat_s=10)
    stream: list[tuple[int, Observation | None]] = [(0, birth), (10 * S, reading(1, 10 * S)), (70 * S, reading(1, 70))]
    assert run(eng, stream, 2 * M) == [("firing", 40 * S), ("resolved", 70 * S), ("firing", 100 * S)]


def test_rate_of_rise_within_the_window_uses_device_time() -> None:
    eng = engine(rule("      rate: {metric: t, rise: 2, window: 10m}\n"))
    temps = [22.0, 22.5, 23.0, 23.5, 24.1, 24.2]  # one a minute: +2.1 within 5 minutes
    stream = [(i * M + 300, reading(v, i * M)) for i, v in enumerate(temps)]
    stream += [(16 * M, reading(24.2, 16 * M))]  # the early samples left the window: no rise any more
    assert run(eng, stream, 20 * M) == [("firing", 4 * M + 300), ("resolved", 16 * M)]


def test_rate_of_fall() -> None:
    eng = engine(rule("      rate: {metric: t, fall: 5, window: 1m}\n"))
    stream = [(i * 10 * S, reading(v, i * 10 * S)) for i, v in enumerate([42, 40, 36, 30])]
    assert run(eng, stream, 2 * M) == [("firing", 20 * S)]  # 42 -> 36 within the minute


def test_event_with_state_attribute() -> None:
    eng = engine(rule("      event: {type: gas.system_state, state: [pre_discharge, discharged]}\n"))
    stream: list[tuple[int, Observation | None]] = [
        (0, event("gas.system_state", True, 0, state="armed")),
        (10 * S, event("gas.system_state", True, 10 * S, state="pre_discharge")),
        (20 * S, event("gas.system_state", True, 20 * S, state="discharged")),  # still firing: no duplicate
        (30 * S, event("gas.system_state", False, 30 * S, state="normal")),
    ]
    assert run(eng, stream, M) == [("firing", 10 * S), ("resolved", 30 * S)]


def test_event_glob() -> None:
    eng = engine(rule('      event: {type: "climate.alarm.*"}\n'))
    stream: list[tuple[int, Observation | None]] = [
        (0, event("climate.alarm.water_leak", True, 0)),
        (S, event("climate.fan", True, S)),
        (2 * S, event("climate.alarm.water_leak", False, 2 * S)),
    ]
    assert run(eng, stream, M) == [("firing", 0), ("resolved", 2 * S)]


def test_state_in_set() -> None:
    # YAML reads a bare off as false: the rule must quote it, and then only the text matches.
    eng = engine(rule("      state: {metric: mode, in: [manual, 'off', 2]}\n"))
    values = ["auto", "manual", "off", "auto", True, 2.0, 1]
    stream = [(i * S, reading(v, i * S, metric="mode")) for i, v in enumerate(values)]
    assert run(eng, stream, M) == [("firing", S), ("resolved", 3 * S), ("firing", 5 * S), ("resolved", 6 * S)]


def test_all_and_any() -> None:
    both = "      all:\n        - threshold: {metric: t, above: 27}\n        - event: {type: fan_fail}\n"
    eng = engine(rule(both))
    stream: list[tuple[int, Observation | None]] = [
        (0, reading(30, 0)),
        (S, event("fan_fail", True, S)),
        (2 * S, reading(20, 2 * S)),
    ]
    assert run(eng, stream, M) == [("firing", S), ("resolved", 2 * S)]
    either = "      any:\n        - threshold: {metric: t, above: 27}\n        - stale: {metric: t, max_age: 1m}\n"
    eng = engine(rule(either))
    assert run(eng, [(0, reading(20, 0))], 2 * M) == [("firing", M)]


@pytest.mark.parametrize(
    ("select", "tags", "fires"),
    [
        ("{kind: climate}", None, True),
        ("{kind: ups}", None, False),
        ("{site: [x, s]}", None, True),
        ("{device: 'd*'}", None, True),
        ("{device: 'e*'}", None, False),
        ("{profile: climate-controller}", None, True),
        ("{profile: other}", None, False),
        ("{tags: [server-room]}", {("s", "d1"): frozenset({"server-room", "floor-2"})}, True),
        ("{tags: [server-room]}", None, False),
    ],
)
def test_selectors(select: str, tags: dict[tuple[str, str], frozenset[str]] | None, fires: bool) -> None:
    eng = engine(rule(THRESHOLD, select=select), tags)
    birth = BirthIn(site="s", device="d1", kind="climate", ts_ms=0, profile="climate-controller")
    result = run(eng, [(0, birth), (S, reading(30, S))], M)
    assert result == ([("firing", S)] if fires else [])


def test_one_alert_per_rule_and_device_and_duplicates_are_harmless() -> None:
    eng = engine(rule(THRESHOLD))
    stream = [(i * S, reading(30, i * S, device=d)) for i in range(5) for d in ("d1", "d2")]
    assert run(eng, stream, M) == [("firing", 0), ("firing", 0)]
    assert {(r, s.key) for r, s in eng.firing} == {("r", "s/d1"), ("r", "s/d2")}


def test_summary_is_rendered_from_the_template() -> None:
    eng = engine(rule(THRESHOLD))
    [fired] = eng.observe(reading(30.123456, 0), 0)
    assert fired.summary == "s/d1 30.12"
    assert (fired.state, fired.team, fired.kind) == (AlertState.FIRING, "it", "climate")


def test_restart_in_the_middle_of_a_for_window_keeps_the_time_served() -> None:
    eng = engine(rule(THRESHOLD, extra="    for: 10m\n"))
    assert eng.observe(reading(30, 0), 0) == []
    eng.tick(4 * M)
    saved = json.loads(json.dumps(eng.snapshot(4 * M)))  # as the hub stores it
    # The hub is down for one minute; the new engine resumes 6 minutes before the deadline.
    again = engine(rule(THRESHOLD, extra="    for: 10m\n"))
    again.restore(saved, 5 * M)
    assert again.tick(5 * M) == []
    assert again.next_deadline() == 11 * M
    assert states(again.tick(11 * M)) == [("firing", 11 * M)]


def test_restart_keeps_firing_alerts_without_firing_them_again() -> None:
    eng = engine(rule("      stale: {metric: t, max_age: 5m}\n"))
    eng.observe(reading(20, 0), 0)
    assert states(eng.tick(5 * M)) == [("firing", 5 * M)]
    again = engine(rule("      stale: {metric: t, max_age: 5m}\n"))
    again.restore(json.loads(json.dumps(eng.snapshot(6 * M))), 60 * M)
    assert again.tick(60 * M) == []  # still stale, still the same alert
    assert states(again.observe(reading(20, 61 * M), 61 * M)) == [("resolved", 61 * M)]


RATES = """
rules:
  - {id: rise, summary: s, severity: major, team: it, select: {kind: climate},
     when: {rate: {metric: t, rise: 0.8, window: 10m}}}
  - {id: fall, summary: s, severity: major, team: it, select: {kind: climate},
     when: {rate: {metric: t, fall: 0.6, window: 3m}}}
"""


def test_a_restart_keeps_the_rate_windows_while_saving_only_the_samples_they_can_use() -> None:
    rng = random.Random(7)
    walk, value = [], 20.0
    for i in range(3_600):  # an hour, one reading a second, drifting up and down
        value += rng.uniform(-0.05, 0.05)
        walk.append((i * S, reading(round(value, 3), i * S)))
    before, after = walk[:1_800], walk[1_800:]
    eng, again = engine(RATES), engine(RATES)
    run(eng, before, before[-1][0])
    saved = json.loads(json.dumps(eng.snapshot(before[-1][0])))  # as the hub stores it
    again.restore(saved, before[-1][0])  # back at once: the same clock for both
    expected = run(eng, after, 3_601 * S)
    assert len(expected) >= 2  # the walk does cross the rates now and then
    assert run(again, after, 3_601 * S) == expected  # the same alerts, to the millisecond
    [(_, _, memory)] = saved["devices"]
    assert len(memory["samples"]["t"]) < 200  # of the 600 in the 10-minute window


def test_replacing_rules_resolves_the_alerts_of_removed_rules() -> None:
    eng = engine(rule(THRESHOLD))
    eng.observe(reading(30, 0), 0)
    other = rule(THRESHOLD).replace("id: r", "id: other")
    resolved = eng.replace_rules(parse_rules(other), S)
    assert [(t.rule, t.state.value) for t in resolved] == [("r", "resolved")]
    assert [(t.rule, t.state.value) for t in eng.tick(S)] == [("other", "firing")]


def test_many_devices_cost_only_what_is_due() -> None:
    eng = engine(rule("      stale: {max_age: 1m}\n"))
    for i in range(2000):
        eng.observe(reading(1, 0, device=f"d{i}"), i)
    assert eng.next_deadline() == M
    assert len(eng.tick(M + 999)) == 1000
    assert len(eng.tick(M + 2000)) == 1000
    assert eng.next_deadline() is None
