"""What a reading wakes: the rules of its metric worked out once per device, thresholds sorted by limit.

A reading's rules are the same for a device until its kind, profile or the rules change, so the engine
keeps a ``ReadingPlan`` per device and metric: the rules always evaluated (``eager``), the staleness and
offline rules that a reading can leave to their scheduled deadline (``lazy``), and the single-threshold
rules, sorted by limit (``thresholds``).

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

from rules.conditions import Threshold
from rules.spec import Rule


def simple_threshold(rule: Rule) -> Threshold | None:
    """The rule's condition when it is one threshold and nothing else."""
    return rule.when if isinstance(rule.when, Threshold) else None


@dataclass(frozen=True, slots=True)
class ThresholdIndex:
    """Rule ids of one metric's single-threshold rules, by limit, above and below apart."""

    above_limits: tuple[float, ...]
    above_ids: tuple[str, ...]
    below_limits: tuple[float, ...]
    below_ids: tuple[str, ...]

    @classmethod
    def of(cls, rules: Iterable[Rule]) -> ThresholdIndex:
        """The index of ``rules`` (each a single threshold on the same metric)."""
        above: list[tuple[float, str]] = []
        below: list[tuple[float, str]] = []
        for rule in rules:
            threshold = simple_threshold(rule)
            assert threshold is not None
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


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingPlan:
    """The rules a reading of one metric concerns, for one device, by how the engine treats them."""

    eager: tuple[str, ...]
    lazy: tuple[str, ...]
    thresholds: ThresholdIndex
