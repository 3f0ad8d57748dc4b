"""The SNMP UPS simulator as the scenario engine sees it (``simulators/points.py``).

A scenario's ``driver: snmp`` device names a MIB profile (``drivers/snmp_ups/profiles``). Its points are
the profile's metrics (numbers, or ``unknown`` to make the card report its sentinel), ``ups.status``
(NUT tokens, e.g. ``OB DISCHRG``: the simulator sends the matching traps when it changes) and, for
cards with an alarm table, ``ups.alarm`` (extra alarm names). Its faults are the wire faults of
``agent.py``: ``silent``, ``garbage`` and ``slow`` (a fault ``code`` > 0 is the delay in milliseconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from drivers.snmp_ups.errors import MibProfileError
from drivers.snmp_ups.profile import MibProfile, PointSpec, SmiType, load_mib_profile
from drivers.snmp_ups.status import format_status, parse_status
from simulators.errors import PointValueError, ScenarioProfileError
from simulators.points import Value
from simulators.snmp_ups.agent import FaultMode, UpsAgent
from simulators.snmp_ups.mib import ALARM_METRIC, STATUS_METRIC, UNKNOWN, encode_point

FAULT_MODES = frozenset(mode.value for mode in FaultMode)


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """A numeric metric of the profile."""

    spec: PointSpec

    @property
    def metric(self) -> str:
        """The metric name."""
        return self.spec.metric

    @property
    def rampable(self) -> bool:
        """Numbers ramp; strings do not."""
        return self.spec.type not in (SmiType.STRING, SmiType.OID)

    @property
    def bounds(self) -> tuple[float, float]:
        """What the OID's type can carry, scaled."""
        if not self.rampable:
            return (-math.inf, math.inf)
        low, high = (bound * self.spec.scale for bound in self.spec.type.bounds)
        return (min(low, high), max(low, high))

    def check(self, value: Value) -> Value:
        """The value itself, once the card's encoding is known to hold it (``unknown`` included)."""
        encode_point(self.spec, value)
        return value


@dataclass(frozen=True, slots=True)
class StatusPoint:
    """``ups.status``: NUT tokens."""

    metric: str = STATUS_METRIC
    rampable: bool = False
    bounds: tuple[float, float] = (-math.inf, math.inf)

    def check(self, value: Value) -> Value:
        """The tokens in NUT's order."""
        try:
            return format_status(parse_status(str(value)))
        except ValueError as exc:
            raise PointValueError(f"{STATUS_METRIC}: {exc}") from None


@dataclass(frozen=True, slots=True)
class AlarmPoint:
    """``ups.alarm``: names of alarms to show in the card's alarm table, besides those the status implies."""

    known: frozenset[str]
    metric: str = ALARM_METRIC
    rampable: bool = False
    bounds: tuple[float, float] = (-math.inf, math.inf)

    def check(self, value: Value) -> Value:
        """Space-separated known alarm names."""
        names = str(value).split()
        if unknown := sorted(set(names) - self.known):
            raise PointValueError(f"{ALARM_METRIC}: unknown alarms {unknown}; known: {' '.join(sorted(self.known))}")
        return " ".join(names)


@dataclass(frozen=True, slots=True)
class SnmpScenarioProfile:
    """A MIB profile, as a scenario device's model."""

    profile: MibProfile

    @property
    def name(self) -> str:
        """The profile's name."""
        return self.profile.name

    @property
    def fault_modes(self) -> frozenset[str]:
        """The wire faults the simulated card plays."""
        return FAULT_MODES

    def metrics(self) -> list[str]:
        """Every point's metric."""
        names = [p.metric for p in self.profile.points] + [STATUS_METRIC]
        return [*names, ALARM_METRIC] if self.profile.alarms is not None else names

    def point(self, metric: str) -> MetricPoint | StatusPoint | AlarmPoint:
        """The point named ``metric`` (KeyError when none)."""
        if metric == STATUS_METRIC:
            return StatusPoint()
        if metric == ALARM_METRIC and self.profile.alarms is not None:
            return AlarmPoint(frozenset(a.name for a in self.profile.alarms.known))
        return MetricPoint(self.profile.point(metric))


def load_scenario_profile(name_or_path: str | Path) -> SnmpScenarioProfile:
    """A shipped MIB profile by name, or a profile file, for a scenario."""
    try:
        return SnmpScenarioProfile(load_mib_profile(name_or_path))
    except MibProfileError as exc:
        raise ScenarioProfileError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class SnmpUpsTarget:
    """A running simulated UPS, as the scenario runner drives it."""

    agent: UpsAgent

    @property
    def profile_name(self) -> str:
        """The profile the card serves."""
        return self.agent.profile.name

    def set(self, metric: str, value: Value) -> None:
        """Report ``value`` from now on (``unknown``: the point's sentinel)."""
        self.agent.set(metric, value)

    def set_fault(self, mode: str, code: int) -> None:
        """Misbehave on the wire; for ``slow``, ``code`` > 0 is the delay in milliseconds."""
        self.agent.set_fault(FaultMode(mode), code / 1000 if mode == FaultMode.SLOW and code > 0 else None)

    def clear_fault(self) -> None:
        """Answer normally again."""
        self.agent.clear_fault()


__all__ = ["FAULT_MODES", "UNKNOWN", "SnmpScenarioProfile", "SnmpUpsTarget", "load_scenario_profile"]
