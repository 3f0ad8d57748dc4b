"""What the engine remembers of each device: enough to evaluate every condition on the clock alone."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.model import Value

#: Samples kept per metric for rate conditions (a bound, whatever the polling rate and window).
MAX_SAMPLES = 4096


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

    def add_sample(self, metric: str, ts_ms: int, value: float, window_ms: int) -> None:
        """Keep ``value`` for rate conditions; forget samples older than the longest window."""
        samples = self.samples.get(metric)
        if samples is None:
            samples = self.samples[metric] = deque(maxlen=MAX_SAMPLES)
        if samples and ts_ms < samples[-1][0]:
            return  # out of order (a redelivery): the window is built from the newest samples only
        samples.append((ts_ms, value))
        while samples and samples[0][0] < ts_ms - window_ms:
            samples.popleft()

    def dump(self) -> dict[str, Any]:
        """A JSON-ready copy, for the engine's snapshot."""
        return {
            "kind": self.kind,
            "profile": self.profile,
            "heartbeat_s": self.heartbeat_s,
            "seen_ms": self.seen_ms,
            "online": self.online,
            "status_ts": self.status_ts,
            "metric_seen": self.metric_seen,
            "values": self.values,
            "samples": {metric: list(s) for metric, s in self.samples.items()},
            "events": {t: [e.active, e.ts_ms, dict(e.attributes)] for t, e in self.events.items()},
        }

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
