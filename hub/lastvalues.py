"""The last value of every point of every device, in memory, fed by ingest as messages arrive.

``GET /api/v1/devices/{site}/{device}/values`` answers from here without touching the store. Bounded:
at most ``max_devices`` devices (the device updated longest ago goes first) and ``max_points`` points
per device (a device announcing ever new metric names pushes its own oldest out, nobody else's). A
reading older than the one kept (a buffered, historical message) does not replace it. The cache is
rebuilt from live traffic after a restart; the store has the history.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cityhub.contract import Reading, TelemetryMessage
from cityhub.replay.observations import ContractMessage

ScalarValue = float | bool | str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LastValue:
    """The latest reading of one point."""

    point: str
    value: ScalarValue
    unit: str | None
    quality: str
    ts_ms: int

    @classmethod
    def of(cls, reading: Reading) -> LastValue:
        """The reading as the API shows it."""
        return cls(
            point=reading.metric, value=reading.value, unit=reading.unit, quality=reading.quality.value,
            ts_ms=reading.ts,
        )  # fmt: skip

    def as_dict(self) -> dict[str, ScalarValue | int]:
        """As JSON."""
        return {
            "point": self.point,
            "value": self.value,
            "unit": self.unit,
            "quality": self.quality,
            "ts_ms": self.ts_ms,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceValues:
    """A device's latest readings, by point name."""

    site: str
    device: str
    kind: str
    values: tuple[LastValue, ...]


class LastValues:
    """Latest reading per device and point; ``observe`` is ingest's observer (synchronous, in the event loop)."""

    def __init__(self, *, max_devices: int = 50_000, max_points: int = 512) -> None:
        self.max_devices = max_devices
        self.max_points = max_points
        # Least recently updated device first, so eviction is O(1). The readings are the contract's own,
        # kept as they came (immutable): observing a message copies nothing; ``get`` builds the views.
        self._devices: OrderedDict[tuple[str, str], tuple[str, dict[str, Reading]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._devices)

    def observe(self, message: ContractMessage) -> None:
        """Keep the readings of a telemetry message that are newer than those kept."""
        if not isinstance(message, TelemetryMessage):
            return
        key = (message.site, message.device)
        entry = self._devices.get(key)
        points = entry[1] if entry else {}
        for reading in message.readings:
            kept = points.get(reading.metric)
            if kept is not None and kept.ts > reading.ts:
                continue
            if kept is None and len(points) >= self.max_points:
                del points[min(points.values(), key=lambda r: r.ts).metric]
            points[reading.metric] = reading
        self._devices[key] = (message.kind, points)
        self._devices.move_to_end(key)
        while len(self._devices) > self.max_devices:
            self._devices.popitem(last=False)

    def get(self, site: str, device: str) -> DeviceValues | None:
        """The device's latest readings by point name, or None if none was seen since the hub started."""
        entry = self._devices.get((site, device))
        if entry is None:
            return None
        kind, points = entry
        values = tuple(LastValue.of(r) for r in sorted(points.values(), key=lambda r: r.metric))
        return DeviceValues(site=site, device=device, kind=kind, values=values)


Observer = Callable[[ContractMessage], None]


def fan_out(*observers: Observer | None) -> Observer:
    """One ingest observer calling each given one in order (None entries are left out)."""
    chosen: Sequence[Observer] = tuple(o for o in observers if o is not None)

    def observe(message: ContractMessage) -> None:
        for observer in chosen:
            observer(message)

    return observe
