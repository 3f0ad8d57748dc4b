"""Polling one Modbus device: planned reads, decoded readings with a quality flag, events on state change.

A device that stops answering is logged once at WARNING, polled again only after a growing backoff
(so it costs its line one timeout per backoff period), and logged once at INFO when it answers again.
While it is down its points are reported with quality ``bad`` and no value, so the hub and the rules
see the gap instead of guessing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cityhub.contract import DeviceEvent, MetricSpec, Quality, Reading
from drivers.base import Backoff, DeviceDescription, PollResult
from drivers.modbus.codec import DecodeError, Value, decode
from drivers.modbus.errors import DeviceUnreachable, ModbusDriverError
from drivers.modbus.line import ModbusLine
from drivers.modbus.plan import ReadRequest, plan_reads
from drivers.modbus.profile import DataType, DeviceProfile, PointSpec, Role

log = logging.getLogger(__name__)

__all__ = ["ModbusDevice", "PollResult", "describe_profile"]


def _metric_type(point: PointSpec) -> str:
    if point.type in (DataType.BOOL, DataType.BIT):
        return "bool"
    if point.type is DataType.STRING:
        return "string"
    scaled = (point.scale, point.offset) != (1.0, 0.0)
    return "float" if scaled or point.type in (DataType.FLOAT32, DataType.FLOAT64) else "int"


def describe_profile(profile: DeviceProfile) -> DeviceDescription:
    """What a device of this profile announces in its birth message."""
    return DeviceDescription(
        kind=profile.kind,
        profile=profile.name,
        maker=profile.maker,
        model=profile.model,
        metrics=tuple(MetricSpec(metric=p.metric, type=_metric_type(p), unit=p.unit) for p in profile.points),
        events=tuple(sorted({p.event for p in profile.points if p.event})),
    )


def _state_label(point: PointSpec, value: Value) -> str:
    labels = dict(point.states)
    if isinstance(value, float) and value.is_integer() and int(value) in labels:
        return labels[int(value)]
    return str(value).lower() if isinstance(value, bool) else str(value)


def _is_active(value: Value) -> bool:
    """A state is active when it is not the zero / false / empty 'normal' value."""
    return bool(value)


@dataclass(slots=True)
class ModbusDevice:
    """One device on a line: its unit id, its profile, its poll state."""

    device_id: str
    unit: int
    profile: DeviceProfile
    line: ModbusLine
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    clock: Callable[[], float] = time.time
    requests: list[ReadRequest] = field(init=False)
    _backoff: Backoff = field(init=False)
    _states: dict[str, Value] = field(init=False, default_factory=dict)
    _down_since: float | None = field(init=False, default=None)
    # request or point metric -> its current error, so each is logged once, not at every poll
    _failing: dict[ReadRequest | str, str] = field(init=False, default_factory=dict)

    _description: DeviceDescription = field(init=False)

    def __post_init__(self) -> None:
        self.requests = plan_reads(self.profile)
        self._backoff = Backoff(self.backoff_initial_s, self.backoff_max_s)
        self._description = describe_profile(self.profile)

    @property
    def down(self) -> bool:
        """Whether the device is considered unreachable now."""
        return self._down_since is not None

    @property
    def down_reason(self) -> str | None:
        """Why the device counts as down (None when up)."""
        return "no answer from the device" if self.down else None

    def describe(self) -> DeviceDescription:
        """The profile's kind, maker, model, metrics and events: a Modbus device tells nothing more."""
        return self._description

    async def aclose(self) -> None:
        """Nothing to release: the line is shared and closed by whoever opened it."""

    async def poll(self) -> PollResult:
        """Read every point once (or, while backing off, report them bad without touching the line)."""
        now = self.clock()
        if self.down and now < self._backoff.retry_at:
            return PollResult(readings=self._bad(self.profile.points, now), events=[], ok=False)
        readings: list[Reading] = []
        events: list[DeviceEvent] = []
        ok = True
        for index, request in enumerate(self.requests):
            try:
                values = await self.line.read(self.unit, request)
            except DeviceUnreachable as exc:
                self._went_down(exc)
                # Do not spend the line's time on the rest: one timeout per poll of a dead device.
                for rest in self.requests[index:]:
                    readings += self._bad(rest.points, self.clock())
                return PollResult(readings=readings, events=events, ok=False)
            except ModbusDriverError as exc:
                # The device answers, but not this request (exception code, bad answer): its points are
                # bad, the others are read as usual.
                ok = False
                self._request_failed(request, exc)
                readings += self._bad(request.points, self.clock())
                continue
            self._request_answered(request)
            readings += self._decode(request, values, self.clock(), events)
        self._came_back()
        return PollResult(readings=readings, events=events, ok=ok)

    def _request_failed(self, request: ReadRequest, exc: ModbusDriverError) -> None:
        if self._failing.get(request) != str(exc):
            self._failing[request] = str(exc)
            log.warning("device %s: %s", self.device_id, exc)

    def _request_answered(self, request: ReadRequest) -> None:
        if self._failing and self._failing.pop(request, None) is not None:
            log.info("device %s: %s answers again", self.device_id, request)

    def _decode(self, request: ReadRequest, values: list[int], ts: float, events: list[DeviceEvent]) -> list[Reading]:
        ts_ms = int(ts * 1000)
        readings = []
        for point in request.points:
            offset = point.address - request.address
            try:
                value = decode(point, values[offset : offset + point.count])
            except DecodeError as exc:
                if self._failing.get(point.metric) != str(exc):  # once per point and error, not every poll
                    self._failing[point.metric] = str(exc)
                    log.warning("%s: %s", self.device_id, exc)
                readings.append(Reading(metric=point.metric, unit=point.unit, ts=ts_ms, quality=Quality.BAD))
                continue
            if self._failing:
                self._failing.pop(point.metric, None)
            readings.append(Reading(metric=point.metric, value=value, unit=point.unit, ts=ts_ms))
            if point.role is Role.STATE:
                self._track_state(point, value, ts_ms, events)
        return readings

    def _track_state(self, point: PointSpec, value: Value, ts_ms: int, events: list[DeviceEvent]) -> None:
        previous = self._states.get(point.metric)
        self._states[point.metric] = value
        # The first reading reports a state only when it is active (an alarm present at start-up).
        if previous == value or (previous is None and not _is_active(value)):
            return
        assert point.event is not None  # profiles require it for role state
        attributes: dict[str, float | bool | str] = {"state": _state_label(point, value)}
        if previous is not None:
            attributes["previous"] = _state_label(point, previous)
        events.append(
            DeviceEvent(
                type=point.event,
                ts=ts_ms,
                active=_is_active(value),
                message=f"{point.metric} is {_state_label(point, value)}",
                attributes=attributes,
            )
        )

    def _bad(self, points: tuple[PointSpec, ...], now: float) -> list[Reading]:
        ts_ms = int(now * 1000)
        return [Reading(metric=p.metric, unit=p.unit, ts=ts_ms, quality=Quality.BAD) for p in points]

    def _went_down(self, exc: DeviceUnreachable) -> None:
        now = self.clock()
        self._backoff.failed(now)
        if self._down_since is None:
            self._down_since = now
            log.warning(
                "device %s (unit %s on %s) is down: %s", self.device_id, self.unit, self.line.settings.name, exc
            )

    def _came_back(self) -> None:
        if self._down_since is not None:
            log.info("device %s is back after %.0f s", self.device_id, self.clock() - self._down_since)
        self._down_since = None
        self._backoff.succeeded()
