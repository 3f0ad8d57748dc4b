"""What a reading wakes: the rules of its metric worked out once per device, thresholds sorted by limit.

A reading's rules are the same for a device until its kind, profile or the rules change, so the engine
keeps a ``ReadingPlan`` per device and metric: the rules always evaluated (``eager``), the staleness and
offline rules that a reading can leave to their scheduled deadline (``lazy``), and the single-threshold
rules, sorted by limit (``thresholds``), and the single-rate rules, sorted by the change they ask for
(``rates``: the window's rise is worked out once per window, not once per rule).

Combinations of thresholds and states on one metric (``any: [below -5, state in [3]]``) are woken the
same way, through a ``ValueProbe``: a quiet pair of such a rule can only start to hold when a reading
makes one of its parts hold (past a threshold's limit, or in a state's set), so other readings skip it.

Thresholds: most rules are a single threshold, and most readings are nowhere near one. Evaluating every threshold
on every reading costs the engine per rule; with this index a reading costs a binary search, and only
the rules it crosses (or that are already latched, pending or firing: the engine's *awake* pairs) are
evaluated. A quiet pair that the reading does not cross would have evaluated to "false, nothing to
remember", so skipping it changes no outcome.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from rules.conditions import Combination, Rate, State, Threshold, number, typed
from rules.memory import DeviceMemory
from rules.model import Value
from rules.spec import Rule


def simple_condition(rule: Rule) -> Threshold | Rate | None:
    """The rule's condition when it is one threshold, or one rate of change, and nothing else."""
    return rule.when if isinstance(rule.when, Threshold | Rate) else None


def value_combination_metric(rule: Rule) -> str | None:
    """The metric of a rule whose condition combines only thresholds and states of that one metric."""
    if not isinstance(rule.when, Combination):
        return None
    parts = [leaf for leaf in rule.when.leaves() if not isinstance(leaf, Combination)]
    if not all(isinstance(leaf, Threshold | State) for leaf in parts):
        return None
    metrics = {leaf.metric for leaf in parts if isinstance(leaf, Threshold | State)}
    return metrics.pop() if len(metrics) == 1 else None


@dataclass(frozen=True, slots=True)
class ValueProbe:
    """Whether a value makes some part of a threshold-and-state combination hold, for a quiet pair."""

    rule_id: str
    above: float | None  # the lowest limit a value must be strictly above (None: no such part)
    below: float | None  # the highest limit a value must be strictly below
    states: frozenset[tuple[str, Value]]  # every state part's set, as built with ``typed``

    @classmethod
    def of(cls, rule: Rule) -> ValueProbe:
        """The probe of a rule that ``value_combination_metric`` accepts."""
        parts = list(rule.when.leaves())
        above = [leaf.limit for leaf in parts if isinstance(leaf, Threshold) and leaf.above]
        below = [leaf.limit for leaf in parts if isinstance(leaf, Threshold) and not leaf.above]
        states = frozenset(v for leaf in parts if isinstance(leaf, State) for v in leaf.values)
        return cls(rule.id, min(above, default=None), max(below, default=None), states)

    def wakes(self, value: Value) -> bool:
        """Whether ``value`` (the metric's last good value) could make the rule's condition change."""
        n = number(value)
        if n is not None and self.above is not None and n > self.above:
            return True
        if n is not None and self.below is not None and n < self.below:
            return True
        return value is not None and typed(value) in self.states


@dataclass(frozen=True, slots=True)
class ThresholdIndex:
    """Rule ids of one metric's single-threshold rules, by limit, above and below apart."""

    above_limits: tuple[float, ...]
    above_ids: tuple[str, ...]
    below_limits: tuple[float, ...]
    below_ids: tuple[str, ...]

    @classmethod
    def of(cls, rules: Iterable[Rule]) -> ThresholdIndex:
        """The index of the single-threshold rules among ``rules`` (all on the same metric)."""
        above: list[tuple[float, str]] = []
        below: list[tuple[float, str]] = []
        for rule in rules:
            if isinstance(threshold := rule.when, Threshold):
                (above if threshold.above else below).append((threshold.limit, rule.id))
        above.sort()
        below.sort()
        return cls(
            tuple(limit for limit, _ in above),
            tuple(rule_id for _, rule_id in above),
            tuple(limit for limit, _ in below),
            tuple(rule_id for _, rule_id in below),
        )

    def crossed(self, value: float) -> tuple[str, ...]:
        """The rules whose limit ``value`` is strictly past (as in Threshold): above a high one, below a low one."""
        above = self.above_ids[: bisect_left(self.above_limits, value)]
        return above + self.below_ids[bisect_right(self.below_limits, value) :]

    def __bool__(self) -> bool:
        return bool(self.above_ids or self.below_ids)


@dataclass(frozen=True, slots=True)
class RateGroup:
    """One metric's single-rate rules of one window and direction, by the change they ask for."""

    window_ms: int
    rise: bool
    changes: tuple[float, ...]
    ids: tuple[str, ...]

    def reached(self, memory: DeviceMemory, metric: str) -> tuple[str, ...]:
        """The rules whose change the metric's present rise (or fall) in the window reaches."""
        delta = Rate.delta(memory, metric, self.window_ms, self.rise)
        if delta is None or delta < self.changes[0]:
            return ()  # the common case: not even the smallest change asked for
        return self.ids[: bisect_right(self.changes, delta)]


def rate_groups(rules: Iterable[Rule]) -> tuple[RateGroup, ...]:
    """The single-rate rules among ``rules`` (all on the same metric), grouped by window and direction."""
    groups: dict[tuple[int, bool], list[tuple[float, str]]] = {}
    for rule in rules:
        if isinstance(rate := rule.when, Rate):
            groups.setdefault((rate.window_ms, rate.rise), []).append((rate.change, rule.id))
    return tuple(
        RateGroup(window_ms, rise, tuple(c for c, _ in sorted(rules_)), tuple(r for _, r in sorted(rules_)))
        for (window_ms, rise), rules_ in sorted(groups.items())
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingPlan:
    """The rules a reading of one metric concerns, for one device, by how the engine treats them."""

    eager: tuple[str, ...]
    lazy: tuple[str, ...]
    thresholds: ThresholdIndex
    rates: tuple[RateGroup, ...]
    probes: tuple[ValueProbe, ...] = ()
