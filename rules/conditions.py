"""Conditions: each says whether it holds for a device now, and when the clock alone could change that.

A condition is a frozen value built by the loader. ``holds`` reads the device's memory; the only state
a condition keeps of its own is a threshold's latch (hysteresis), which lives in the rule's per-device
``latches`` so that it is saved and restored with the engine. ``deadline`` is the next time at which
``holds`` could change with no new message (staleness, a missed heartbeat): the engine schedules it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Protocol

from rules.memory import DeviceMemory
from rules.model import Value


@dataclass(slots=True)
class Evaluation:
    """Per rule and device: threshold latches by condition id, and the value to show in the summary."""

    latches: MutableMapping[int, bool]
    value: Value = None


class Condition(Protocol):
    """What every condition offers the engine."""

    def holds(self, memory: DeviceMemory, ev: Evaluation, now_ms: int) -> bool:
        """Whether the condition is true for this device now."""
        ...

    def deadline(self, memory: DeviceMemory, now_ms: int) -> int | None:
        """The next time the clock alone could make ``holds`` change, if any."""
        ...

    def leaves(self) -> Iterator[Condition]:
        """This condition and those inside it."""
        ...


def number(value: Value) -> float | None:
    """A value as a float when it is a number (booleans are not numbers here), else None."""
    if type(value) is float:  # nearly every reading: one test, not three
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Threshold:
    """A metric above (or below) a limit; it clears only past a separate limit (hysteresis)."""

    cid: int  # unique within the rule: the key of its latch
    metric: str
    limit: float
    clear: float
    above: bool

    def holds(self, memory: DeviceMemory, ev: Evaluation, now_ms: int) -> bool:
        value = number(memory.values.get(self.metric))
        latched = ev.latches.get(self.cid, False)
        if value is not None:
            ev.value = memory.values[self.metric]
            if self.above:
                latched = value > self.clear if latched else value > self.limit
            else:
                latched = value < self.clear if latched else value < self.limit
            ev.latches[self.cid] = latched
        return latched  # no number yet, or a bad reading: the last decision stands

    def deadline(self, memory: DeviceMemory, now_ms: int) -> int | None:
        return None

    def leaves(self) -> Iterator[Condition]:
        yield self


@dataclass(frozen=True, slots=True, kw_only=True)
class Stale:
    """No good reading of a metric (or no message at all from the device) for ``max_age_ms``."""

    metric: str | None
    max_age_ms: int

    def _since(self, memory: DeviceMemory) -> int | None:
        return memory.seen_ms if self.metric is None else memory.metric_seen.get(self.metric)

    def holds(self, memory: DeviceMemory, ev: Evaluation, now_ms: int) -> bool:
        since = self._since(memory)
        # A metric the device never sent is not stale: it may not have it (selectors narrow the devices).
        return since is not None and now_ms >= since + self.max_age_ms

    def deadline(self, memory: DeviceMemory, now_ms: int) -> int | None:
        since = self._since(memory)
        return None if since is None or now_ms >= since + self.max_age_ms else since + self.max_age_ms

    def leaves(self) -> Iterator[Condition]:
        yield self


@dataclass(frozen=True, slots=True, kw_only=True)
class Offline:
    """The device said it is offline (or its will did), or missed ``heartbeats`` of its promised heartbeat."""

    heartbeats: float | None

    def _missed_at(self, memory: DeviceMemory) -> int | None:
        if self.heartbeats is None or not memory.heartbeat_s:
            return None
        return memory.seen_ms + int(self.heartbeats * memory.heartbeat_s * 1000)

    def holds(self, memory: DeviceMemory, ev: Evaluation, now_ms: int) -> bool:
        missed_at = self._missed_at(memory)
        return not memory.online or (missed_at is not None and now_ms >= missed_at)

    def deadline(self, memory: DeviceMemory, now_ms: int) -> int | None:
        missed_at = self._missed_at(memory)
        return missed_at if memory.online and missed_at is not None and now_ms < missed_at else None

    def leaves(self) -> Iterator[Condition]:
        yield self


@dataclass(frozen=True, slots=True, kw_only=True)
class Rate:
    """A metric rose (or fell) by at least ``change`` within ``window_ms`` of the device's own time."""

    metric: str
    change: float
    rise: bool
    window_ms: int

    def holds(self, memory: DeviceMemory, ev: Evaluation, now_ms: int) -> bool:
        delta = Rate.delta(memory, self.metric, self.window_ms, self.rise)
        if delta is None:
            return False
        ev.value = round(delta, 3)
        return delta >= self.change

    @staticmethod
    def delta(memory: DeviceMemory, metric: str, window_ms: int, rise: bool) -> float | None:
        """How much ``metric`` rose (or fell) to its newest sample within the window; None without samples."""
        samples = memory.samples.get(metric)
        extreme = memory.extreme(metric, window_ms, rise)
        if not samples or extreme is None:
            return None
        last = samples[-1][1]
        return last - extreme if rise else extreme - last

    def deadline(self, memory: DeviceMemory, now_ms: int) -> int | None:
        return None

    def leaves(self) -> Iterator[Condition]:
        yield self


@dataclass(frozen=True, slots=True, kw_only=True)
class EventCondition:
    """An event type (a glob: ``climate.alarm.*``) is active, optionally with its ``state`` attribute in a set."""

    type: str
    states: frozenset[str] | None

    @property
    def is_glob(self) -> bool:
        """Whether ``type`` names several event types."""
        return any(ch in self.type for ch in "*?[")

    def matches(self, event_type: str) -> bool:
        """Whether an event of ``event_type`` concerns this condition."""
        return fnmatch.fnmatchcase(event_type, self.type) if self.is_glob else event_type == self.type

    def holds(self, memory: DeviceMemory, ev: Evaluation, now_ms: int) -> bool:
        for event_type, record in memory.events.items():
            if record.active and self.matches(event_type):
                state = record.attributes.get("state")
                if self.states is None or (isinstance(state, str) and state in self.states):
                    ev.value = state if state is not None else event_type
                    return True
        return False

    def deadline(self, memory: DeviceMemory, now_ms: int) -> int | None:
        return None

    def leaves(self) -> Iterator[Condition]:
        yield self


def typed(value: Value) -> tuple[str, Value]:
    """A value with its type, so that ``True``, ``1`` and ``"1"`` stay different (Python has ``True == 1``)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    return ("text", value)


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    """A metric's last good value is one of a set (a mode, a status word)."""

    metric: str
    values: frozenset[tuple[str, Value]]  # built with ``typed``

    def holds(self, memory: DeviceMemory, ev: Evaluation, now_ms: int) -> bool:
        value = memory.values.get(self.metric)
        if value is None:
            return False
        ev.value = value
        return typed(value) in self.values

    def deadline(self, memory: DeviceMemory, now_ms: int) -> int | None:
        return None

    def leaves(self) -> Iterator[Condition]:
        yield self


@dataclass(frozen=True, slots=True, kw_only=True)
class Combination:
    """All (or any) of several conditions."""

    parts: tuple[Condition, ...]
    every: bool  # all when true, any when false

    def holds(self, memory: DeviceMemory, ev: Evaluation, now_ms: int) -> bool:
        # Every part is evaluated (no short cut), so the thresholds' latches follow every reading.
        results = [part.holds(memory, ev, now_ms) for part in self.parts]
        return all(results) if self.every else any(results)

    def deadline(self, memory: DeviceMemory, now_ms: int) -> int | None:
        deadlines = [d for part in self.parts if (d := part.deadline(memory, now_ms)) is not None]
        return min(deadlines, default=None)

    def leaves(self) -> Iterator[Condition]:
        yield self
        for part in self.parts:
            yield from part.leaves()
