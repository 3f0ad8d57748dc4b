"""From a received MQTT message to points in a batch: validate, deduplicate, map to the storage schema.

Nothing here does I/O except through the callables it is given, so the path a message takes is easy to
follow and to test: ``Ingestor.ingest`` either adds points to the batch or rejects the message (counted,
logged at most once per device, reason and interval, and republished as a dead letter).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache

from cityhub.contract import (
    BirthMessage,
    DeadLetterMessage,
    EventMessage,
    Limits,
    MessageKind,
    Quality,
    RejectedMessage,
    RejectReason,
    StatusMessage,
    TelemetryMessage,
    Topics,
    validate_message,
)
from cityhub.mqtt import InboundMessage
from hub.devices import DeviceState, DeviceStates
from hub.metrics import HubMetrics
from hub.sequence import SequenceTracker, Verdict
from hub.storage.lineprotocol import FieldValue, Point

log = logging.getLogger(__name__)

DEAD_LETTER_PAYLOAD_LIMIT = 4_096


@dataclass(slots=True)
class Batch:
    """Messages received since the last flush and the points they produced."""

    points: list[Point] = field(default_factory=list)
    messages: list[InboundMessage] = field(default_factory=list)
    device_states: dict[tuple[str, str], DeviceState] = field(default_factory=dict)
    opened_at: float = field(default_factory=time.monotonic)


# -- the storage schema (docs/storage.md) ------------------------------------------------------------


def _device_tags(site: str, device: str, kind: str) -> list[tuple[str, str]]:
    return [("device", device), ("kind", kind), ("site", site)]


_GOOD = Quality.GOOD  # an enum member looked up on its class costs more than a global, per reading


def _reading_fields(value: float | bool | str | None, quality: Quality) -> tuple[tuple[str, FieldValue], ...]:
    if quality is _GOOD and type(value) is float:
        return (("value", value),)  # the common case, without building a list
    fields: list[tuple[str, FieldValue]] = []
    if isinstance(value, str):
        fields.append(("text", value))
    elif value is not None:
        fields.append(("value", float(value)))  # booleans as 1.0 / 0.0: one numeric field per point
    if quality is not _GOOD:
        fields.append(("quality", quality.value))
    return tuple(fields)


@lru_cache(maxsize=262_144)
def _series(
    site: str, device: str, kind: str, metric: str, unit: str | None
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Measurement and tags of a reading's series, in key order (device, kind, point, site, unit).

    Cached: a city's devices send the same few series over and over, and this runs for every reading.
    """
    tags = (("device", device), ("kind", kind), ("point", metric), ("site", site))
    return metric.partition(".")[0], (*tags, ("unit", unit)) if unit else tags


def telemetry_points(message: TelemetryMessage) -> list[Point]:
    """One point per reading: measurement = metric family, tag ``point`` = metric, field ``value``/``text``."""
    site, device, kind = message.site, message.device, message.kind
    return [
        Point(
            *_series(site, device, kind, reading.metric, reading.unit),
            _reading_fields(reading.value, reading.quality),
            reading.ts,
        )
        for reading in message.readings
    ]


def event_points(message: EventMessage) -> list[Point]:
    """One point per event in measurement ``events``, tag ``event`` = event type."""
    base = _device_tags(message.site, message.device, message.kind)
    points = []
    for event in message.events:
        fields: list[tuple[str, FieldValue]] = [("active", event.active)]
        if event.message:
            fields.append(("message", event.message))
        if event.attributes:
            fields.append(("attributes", json.dumps(event.attributes, sort_keys=True)))
        points.append(
            Point(
                measurement="events",
                tags=tuple(sorted([*base, ("event", event.type)])),
                fields=tuple(fields),
                ts_ms=event.ts,
            )
        )
    return points


def birth_point(message: BirthMessage) -> Point:
    """The device's description at each boot, in measurement ``device_birth``."""
    fields: list[tuple[str, FieldValue]] = [("boot", message.boot), ("metrics", len(message.metrics))]
    for name in ("profile", "maker", "model", "firmware", "serial", "software"):
        value = getattr(message, name)
        if value:
            fields.append((name, value))
    return Point(
        measurement="device_birth",
        tags=tuple(_device_tags(message.site, message.device, message.kind)),
        fields=tuple(fields),
        ts_ms=message.ts,
    )


def status_point(message: StatusMessage, ts_ms: int) -> Point:
    """An online/offline transition in measurement ``device_status``."""
    fields: list[tuple[str, FieldValue]] = [
        ("online", 1.0 if message.state == "online" else 0.0),
        ("state", message.state),
        ("boot", message.boot),
    ]
    if message.reason:
        fields.append(("reason", message.reason))
    return Point(
        measurement="device_status",
        tags=tuple(_device_tags(message.site, message.device, message.kind)),
        fields=tuple(fields),
        ts_ms=ts_ms,
    )


# -- rejects -----------------------------------------------------------------------------------------


class RejectLog:
    """Logs a reject at most once per device, reason and interval, with how many were suppressed."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def log(self, source: str, exc: RejectedMessage) -> None:
        """Log or count one reject."""
        now = time.monotonic()
        key = (source, exc.reason.value)
        last, suppressed = self._last.get(key, (float("-inf"), 0))
        if now - last < self._interval_s:
            self._last[key] = (last, suppressed + 1)
            return
        if len(self._last) > 100_000:  # a flood of random topics must not grow this forever
            self._last.clear()
        self._last[key] = (now, 0)
        more = f" ({suppressed} more since the last report)" if suppressed else ""
        log.warning("rejected a message from %s: %s: %s%s", source, exc.reason.value, exc.detail, more)


def dead_letter_payload(message: InboundMessage, exc: RejectedMessage, *, hub_id: str, received_ms: int) -> bytes:
    """The JSON dead letter for a rejected message (payload truncated, base64 when not UTF-8)."""
    try:
        # Decode before truncating, so a cut inside a multi-byte character keeps the text readable.
        text, encoding = message.payload.decode("utf-8")[:DEAD_LETTER_PAYLOAD_LIMIT], "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(message.payload[:DEAD_LETTER_PAYLOAD_LIMIT]).decode("ascii"), "base64"
    letter = DeadLetterMessage(
        reason=exc.reason.value,
        detail=exc.detail[:1_000],
        topic=message.topic[:1_000],
        payload=text,
        payload_encoding=encoding,
        payload_size=len(message.payload),
        received_at=received_ms,
        hub=hub_id,
    )
    return letter.model_dump_json().encode("utf-8")


# -- the ingestor ------------------------------------------------------------------------------------


class Ingestor:
    """Turns received messages into points of the current batch."""

    def __init__(
        self,
        *,
        topics: Topics,
        limits: Limits,
        tracker: SequenceTracker,
        count_gaps: bool,
        devices: DeviceStates,
        metrics: HubMetrics,
        reject_log: RejectLog,
        dead_letter: Callable[[str, bytes], None] | None,
        hub_id: str,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        allows: Callable[[str, str], bool] | None = None,
        observer: Callable[[TelemetryMessage | EventMessage | BirthMessage | StatusMessage], None] | None = None,
    ) -> None:
        self._topics = topics
        self._limits = limits
        self._tracker = tracker
        self._count_gaps = count_gaps
        self._devices = devices
        self._metrics = metrics
        self._reject_log = reject_log
        self._dead_letter = dead_letter
        self._hub_id = hub_id
        # With registration enforced: whether a (site, device) is approved, itself or through its agent.
        self._allows = allows
        # The alert rules: every accepted message, as it arrives (before it is stored; see hub/alerts).
        self._observer = observer
        # Statuses the hub itself declares (a revoked device: the broker drops it without its will).
        self._declared: list[StatusMessage] = []
        self._clock_ms = clock_ms
        # Labelled children looked up once, not per message.
        self._received = {kind: metrics.messages_received.labels(kind=kind.value) for kind in MessageKind}
        #: Device states of the batch being stored while the next one fills (see Hub._consume).
        self.in_flight_states: dict[tuple[str, str], DeviceState] = {}

    def ingest(self, message: InboundMessage, batch: Batch) -> None:
        """Add the message's points to ``batch``, or reject it; either way it is acknowledged with the batch."""
        batch.messages.append(message)
        now_ms = self._clock_ms()
        try:
            valid = validate_message(self._topics, message.topic, message.payload, now_ms=now_ms, limits=self._limits)
        except RejectedMessage as exc:
            self._reject(message, exc, now_ms)
            return
        body = valid.message
        if self._allows is not None and not self._allows(body.site, body.device):
            # Defence in depth: the broker refuses unapproved devices already; a login the registry does
            # not know (a static one, a leaked one) still gets nothing stored.
            unknown = RejectedMessage(RejectReason.UNREGISTERED, f"{body.site}/{body.device} is not approved")
            self._reject(message, unknown, now_ms)
            return
        self._received[valid.topic.kind].inc()
        if isinstance(body, TelemetryMessage | EventMessage):
            observed = self._tracker.observe(body.site, body.device, body.boot, body.seq)
            if observed.gap and self._count_gaps:
                self._metrics.sequence_gaps.inc(observed.gap)
                log.debug("%s/%s skipped %d sequence numbers", body.site, body.device, observed.gap)
            if observed.verdict is Verdict.DUPLICATE:
                self._metrics.duplicates_dropped.inc()
                return
            if body.historical:
                self._metrics.historical_messages.inc()
            if self._observer is not None:
                self._observer(body)
            if isinstance(body, TelemetryMessage):
                batch.points.extend(telemetry_points(body))
            else:
                batch.points.extend(event_points(body))
        elif isinstance(body, BirthMessage):
            batch.points.append(birth_point(body))
            self._record_birth(body, batch)
            if self._observer is not None:
                self._observer(body)
        else:
            self._record_status(body, batch, now_ms)
            if self._observer is not None:
                self._observer(body)

    def declare_offline(self, site: str, device: str, kind: str, reason: str, now_ms: int) -> None:
        """Record, with the next batch, that a device went offline without telling (e.g. it was revoked)."""
        known = self._devices.get(site, device)
        boot = known.boot if known else 0
        self._declared.append(
            StatusMessage(
                device=device, site=site, kind=known.kind if known else kind, state="offline", boot=boot, ts=now_ms,
                reason=reason,
            )
        )  # fmt: skip

    def take_declared(self, batch: Batch) -> None:
        """Move the declared statuses into ``batch``, as transitions like any other."""
        declared, self._declared = self._declared, []
        for status in declared:
            self._record_status(status, batch, self._clock_ms())
            if self._observer is not None:
                self._observer(status)

    def _known(self, batch: Batch, site: str, device: str) -> DeviceState | None:
        key = (site, device)
        return batch.device_states.get(key) or self.in_flight_states.get(key) or self._devices.get(site, device)

    def _record_birth(self, birth: BirthMessage, batch: Batch) -> None:
        known = self._known(batch, birth.site, birth.device)
        same_boot = known is not None and known.boot == birth.boot
        # A birth describes the device; only a status message changes its online state.
        batch.device_states[(birth.site, birth.device)] = DeviceState(
            site=birth.site,
            device=birth.device,
            kind=birth.kind,
            boot=birth.boot,
            state=known.state if known and same_boot else "unknown",
            since_ms=known.since_ms if known and same_boot else birth.ts,
            birth=birth.model_dump_json(),
            gateway=birth.gateway,
        )

    def _record_status(self, status: StatusMessage, batch: Batch, now_ms: int) -> None:
        known = self._known(batch, status.site, status.device)
        if known and (known.boot, known.state) == (status.boot, status.state):
            return  # a retained copy of a transition already stored
        if known and status.boot < known.boot:
            return  # a late status of an earlier boot: the device has restarted since
        # A last will carries the connect time; the transition happened when the broker sent it.
        ts_ms = now_ms if status.will else status.ts
        batch.points.append(status_point(status, ts_ms))
        # From what is known, so a status keeps the device's birth (and gateway) beside it.
        batch.device_states[(status.site, status.device)] = (
            replace(known, kind=status.kind, boot=status.boot, state=status.state, since_ms=ts_ms)
            if known
            else DeviceState(
                site=status.site,
                device=status.device,
                kind=status.kind,
                boot=status.boot,
                state=status.state,
                since_ms=ts_ms,
            )
        )
        if status.state == "offline":
            self._gateway_offline(status, ts_ms, batch)

    def _gateway_offline(self, status: StatusMessage, ts_ms: int, batch: Batch) -> None:
        """Devices that publish through an edge agent go offline with it (they cannot be heard any more)."""
        gateway = f"{status.site}/{status.device}"
        # Stored devices by the gateway index; the (small) batches not yet stored by a scan.
        candidates = {(s.site, s.device) for s in self._devices.behind(gateway)}
        candidates |= {
            key for key, s in (*self.in_flight_states.items(), *batch.device_states.items()) if s.gateway == gateway
        }
        for key in candidates:
            state = self._known(batch, *key)
            if state is None or state.gateway != gateway or state.state != "online":
                continue
            offline = StatusMessage(
                device=state.device,
                site=state.site,
                kind=state.kind,
                state="offline",
                boot=state.boot,
                ts=ts_ms,
                reason=f"gateway {gateway} offline",
            )
            batch.points.append(status_point(offline, ts_ms))
            batch.device_states[(state.site, state.device)] = replace(state, state="offline", since_ms=ts_ms)

    def _reject(self, message: InboundMessage, exc: RejectedMessage, now_ms: int) -> None:
        self._metrics.messages_rejected.labels(reason=exc.reason.value).inc()
        try:
            parsed = self._topics.parse(message.topic)
            source = f"{parsed.site}/{parsed.device}"
        except ValueError:
            source = repr(message.topic[:200])
        self._reject_log.log(source, exc)
        if self._dead_letter is not None:
            payload = dead_letter_payload(message, exc, hub_id=self._hub_id, received_ms=now_ms)
            self._dead_letter(self._topics.dead_letter(exc.reason.value), payload)
