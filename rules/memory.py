"""What the engine remembers of each device: enough to evaluate every condition on the clock alone."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.model import Value

#: Samples kept per metric for rate conditions (a bound, whatever the polling rate and window).
MAX_SAMPLES = 4096


@dataclass(frozen=True, slots=True)
class RateWindows:
    """The rate conditions' windows on one metric: (window, rise) pairs, and the longest window."""

    keys: tuple[tuple[int, bool], ...]
    longest_ms: int


@dataclass(slots=True)
class EventRecord:
    """The last event of one type from a device."""

    active: bool
    ts_ms: int
    attributes: Mapping[str, Value]


@dataclass(slots=True)
class DeviceMemory:
    """One device's recent past, as the rules need it. Times ``*_ms`` without ``ts`` are arrival times."""

    kind: str
    profile: str | None = None
    heartbeat_s: int | None = None
    seen_ms: int = 0  # the last observation of any kind
    online: bool = True
    status_ts: int = 0  # the device's own time of its last status, to ignore a late will
    metric_seen: dict[str, int] = field(default_factory=dict)  # metric -> arrival of its last good reading
    values: dict[str, Value] = field(default_factory=dict)  # metric -> last good value
    samples: dict[str, deque[tuple[int, float]]] = field(default_factory=dict)  # (device ts, value), rate metrics
    events: dict[str, EventRecord] = field(default_factory=dict)
    #: (metric, window, rise) -> the window's running minimum (rise) or maximum (fall) as a monotonic
    #: deque of (device ts, value): its head is the extreme, so a rate costs O(1) per reading, not O(window).
    extremes: dict[tuple[str, int, bool], deque[tuple[int, float]]] = field(default_factory=dict)

    def add_sample(self, metric: str, ts_ms: int, value: float, windows: RateWindows) -> None:
        """Keep ``value`` for the rate conditions on ``metric``; forget samples older than the longest window."""
        samples = self.samples.get(metric)
        if samples is None:
            samples = self.samples[metric] = deque(maxlen=MAX_SAMPLES)
        elif samples and ts_ms < samples[-1][0]:
            return  # out of order (a redelivery): the window is built from the newest samples only
        sample = (ts_ms, value)  # one tuple, shared by the samples and the running extremes
        samples.append(sample)
        oldest = ts_ms - windows.longest_ms
        while samples[0][0] < oldest:  # never empties: the sample just added is not older than that
            samples.popleft()
        for window_ms, rise in windows.keys:
            self._push_extreme((metric, window_ms, rise), sample)

    def _push_extreme(self, key: tuple[str, int, bool], sample: tuple[int, float]) -> None:
        extreme = self.extremes.get(key)
        if extreme is None:
            extreme = self.extremes[key] = deque()
        _, window_ms, rise = key
        ts_ms, value = sample
        if rise:
            while extreme and extreme[-1][1] >= value:
                extreme.pop()  # never the extreme again while ``value`` is in the window
        else:
            while extreme and extreme[-1][1] <= value:
                extreme.pop()
        extreme.append(sample)
        oldest = ts_ms - window_ms
        while extreme[0][0] < oldest or len(extreme) > MAX_SAMPLES:
            extreme.popleft()

    def extreme(self, metric: str, window_ms: int, rise: bool) -> float | None:
        """The lowest (``rise``) or highest value within ``window_ms`` of the newest sample."""
        extreme = self.extremes.get((metric, window_ms, rise))
        if extreme:
            return extreme[0][1]
        samples = self.samples.get(metric)
        if not samples:
            return None
        last_ts = samples[-1][0]
        window = [value for ts, value in samples if ts >= last_ts - window_ms]
        return min(window) if rise else max(window)

    def rebuild_extremes(self, windows: Mapping[str, RateWindows]) -> None:
        """Recompute the running extremes from the samples (after a restore or new rules)."""
        self.extremes = {}
        for metric, samples in self.samples.items():
            for window_ms, rise in windows[metric].keys if metric in windows else ():
                for sample in samples:
                    self._push_extreme((metric, window_ms, rise), sample)

    def dump(self) -> dict[str, Any]:
        """A JSON-ready copy that shares nothing mutable with the memory."""
        return {
            "kind": self.kind,
            "profile": self.profile,
            "heartbeat_s": self.heartbeat_s,
            "seen_ms": self.seen_ms,
            "online": self.online,
            "status_ts": self.status_ts,
            "metric_seen": dict(self.metric_seen),
            "values": dict(self.values),
            "samples": {metric: self._samples_to_keep(metric, s) for metric, s in self.samples.items()},
            "events": {t: [e.active, e.ts_ms, dict(e.attributes)] for t, e in self.events.items()},
        }

    def _samples_to_keep(self, metric: str, samples: deque[tuple[int, float]]) -> list[tuple[int, float]]:
        """The samples the rate conditions can still use: those in a running extreme, and the newest.

        Every other sample was dominated by a later one and can never be a window's extreme again, so
        rebuilding the extremes from these gives the same deques, and the rates the same values, after a
        restore. A few per metric instead of up to MAX_SAMPLES: the snapshot of a thousand devices
        polled every second stays small, and so does the pause its serialisation costs.
        (A rate rule *added* while the hub was down starts from these samples, not from every one.)
        """
        kept = {sample for (name, _, _), extreme in self.extremes.items() if name == metric for sample in extreme}
        if not kept:
            return list(samples)
        kept.add(samples[-1])
        return sorted(kept)

    @classmethod
    def load(cls, data: Mapping[str, Any], shift_ms: int) -> DeviceMemory:
        """Read back ``dump``; arrival times move by ``shift_ms`` (the time the hub was not running)."""
        return cls(
            kind=str(data["kind"]),
            profile=data.get("profile"),
            heartbeat_s=data.get("heartbeat_s"),
            seen_ms=int(data["seen_ms"]) + shift_ms,
            online=bool(data["online"]),
            status_ts=int(data["status_ts"]),
            metric_seen={m: int(t) + shift_ms for m, t in data["metric_seen"].items()},
            values=dict(data["values"]),
            samples={
                m: deque(((int(t), float(v)) for t, v in s), maxlen=MAX_SAMPLES) for m, s in data["samples"].items()
            },
            events={t: EventRecord(bool(a), int(ts), dict(attrs)) for t, (a, ts, attrs) in data["events"].items()},
        )
