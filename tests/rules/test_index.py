"""The engine's shortcuts change no outcome: sorted thresholds and rates, staleness left to its deadline.

The engine skips single-threshold (and single-rate) rules a reading does not cross (or reach), threshold
and state combinations on one metric that no part of which a reading makes hold, and quiet
staleness/offline rules whose deadline is already scheduled (rules/index.py). Wrapping each rule's
condition in an ``all`` with a part that always holds (and that no index knows) turns the shortcuts
off, so the same random stream through both engines must give the same transitions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.conditions import Combination, Condition, Evaluation, Offline, Rate, Stale, State, Threshold, typed
from rules.engine import RuleEngine
from rules.index import ThresholdIndex, ValueProbe
from rules.memory import DeviceMemory
from rules.model import BirthIn, Observation, ReadingIn, Severity, StatusIn, Transition
from rules.spec import Rule

S = 1000
DEVICES = ("d1", "d2")
METRICS = ("t", "u")


def _rule(i: int, when: Condition, for_ms: int) -> Rule:
    return Rule(
        id=f"r{i:02d}", summary="{device} {value}", severity=Severity.MAJOR, team="it", when=when, for_ms=for_ms
    )


thresholds = st.builds(
    lambda metric, limit, gap, above: Threshold(
        cid=0, metric=metric, limit=limit, clear=limit - gap if above else limit + gap, above=above
    ),
    st.sampled_from(METRICS),
    st.integers(-5, 5).map(float),
    st.integers(0, 3).map(float),
    st.booleans(),
)
rates = st.builds(
    Rate,
    metric=st.sampled_from(METRICS),
    change=st.integers(0, 6).map(float),
    rise=st.booleans(),
    window_ms=st.sampled_from((3 * S, 10 * S)),
)
states = st.builds(
    lambda metric, chosen: State(metric=metric, values=frozenset(typed(v) for v in chosen)),
    st.sampled_from(METRICS),
    st.lists(st.sampled_from((-2, 0, 3, True, "on")), min_size=1, max_size=2),
)


@st.composite
def value_combinations(draw: st.DrawFn) -> Combination:
    """``all`` or ``any`` of thresholds and states on one metric (what a ValueProbe indexes)."""
    metric = draw(st.sampled_from(METRICS))
    parts = draw(st.lists(st.one_of(thresholds, states), min_size=1, max_size=3))
    parts = [dataclasses.replace(part, metric=metric) for part in parts]
    parts = [dataclasses.replace(p, cid=i) if isinstance(p, Threshold) else p for i, p in enumerate(parts)]
    return Combination(parts=tuple(parts), every=draw(st.booleans()))


conditions = st.one_of(
    thresholds,
    rates,
    value_combinations(),
    st.builds(Stale, metric=st.sampled_from((*METRICS, None)), max_age_ms=st.integers(1, 20).map(lambda n: n * S)),
    st.builds(Offline, heartbeats=st.sampled_from((None, 2.0))),
)
rule_sets = st.lists(st.tuples(conditions, st.sampled_from((0, 5 * S))), min_size=1, max_size=8).map(
    lambda specs: [_rule(i, when, for_ms) for i, (when, for_ms) in enumerate(specs)]
)
values = st.one_of(st.integers(-8, 8), st.sampled_from((None, True, "on", 2.5, -2.5)))
readings = st.builds(
    lambda device, metric, value, bad: ReadingIn(
        site="s", device=device, kind="k", metric=metric, value=value, ts_ms=0, quality="bad" if bad else "good"
    ),
    st.sampled_from(DEVICES),
    st.sampled_from(METRICS),
    values,
    st.booleans().filter(lambda b: not b) | st.just(True),
)
statuses = st.builds(
    lambda device, state: StatusIn(site="s", device=device, kind="k", state=state, ts_ms=0, reason=None),
    st.sampled_from(DEVICES),
    st.sampled_from(("online", "offline")),
)
births = st.builds(
    lambda device: BirthIn(site="s", device=device, kind="k", ts_ms=0, profile=None, heartbeat_s=3),
    st.sampled_from(DEVICES),
)
steps = st.lists(
    st.tuples(st.integers(0, 8 * S), st.one_of(readings, readings, readings, statuses, births)), max_size=60
)


@dataclasses.dataclass(frozen=True)
class _Always:
    """A condition that always holds, of a kind no index knows: the engine evaluates its rule on every reading."""

    def holds(self, memory: DeviceMemory, ev: Evaluation, now_ms: int) -> bool:
        return True

    def deadline(self, memory: DeviceMemory, now_ms: int) -> int | None:
        return None

    def leaves(self) -> Iterator[Condition]:
        yield self


def _generic(rules: list[Rule]) -> list[Rule]:
    return [dataclasses.replace(rule, when=Combination(parts=(rule.when, _Always()), every=True)) for rule in rules]


def _run(engine: RuleEngine, stream: list[tuple[int, Observation]]) -> list[Transition]:
    out: list[Transition] = []
    now = 0
    for gap, obs in stream:
        now += gap
        while (due := engine.next_deadline()) is not None and due <= now:
            out += engine.tick(due)
        out += engine.observe(dataclasses.replace(obs, ts_ms=now), now)
    out += engine.tick(now + 60 * S)
    return out


@settings(max_examples=1000, deadline=None)
@given(rule_sets, steps)
def test_the_shortcuts_give_the_transitions_of_full_evaluation(
    rules: list[Rule], stream: list[tuple[int, Observation]]
) -> None:
    assert _run(RuleEngine(rules), stream) == _run(RuleEngine(_generic(rules)), stream)


def test_a_reading_crosses_only_the_limits_it_is_strictly_past() -> None:
    index = ThresholdIndex.of(
        [
            _rule(1, Threshold(cid=0, metric="t", limit=10.0, clear=8.0, above=True), 0),
            _rule(2, Threshold(cid=0, metric="t", limit=20.0, clear=18.0, above=True), 0),
            _rule(3, Threshold(cid=0, metric="t", limit=0.0, clear=2.0, above=False), 0),
        ]
    )
    assert index.crossed(10.0) == ()
    assert index.crossed(15.0) == ("r01",)
    assert index.crossed(25.0) == ("r01", "r02")
    assert index.crossed(0.0) == ()
    assert index.crossed(-1.0) == ("r03",)


def test_a_value_wakes_a_combination_only_when_it_makes_a_part_hold() -> None:
    both = Combination(
        parts=(
            Threshold(cid=0, metric="t", limit=30.0, clear=28.0, above=True),
            Threshold(cid=1, metric="t", limit=-5.0, clear=-3.0, above=False),
            State(metric="t", values=frozenset({typed(3), typed("defrost")})),
        ),
        every=False,
    )
    probe = ValueProbe.of(_rule(1, both, 0))
    assert [probe.wakes(v) for v in (30.0, 30.5, -5.0, -5.5, 3, 3.0, "defrost")] == [
        False, True, False, True, True, True, True,
    ]  # fmt: skip
    assert [probe.wakes(v) for v in (True, "3", None, 29.0)] == [False, False, False, False]  # True is not 1 here
