"""Contract messages as the rule engine's observations (one place, for the hub and the replay alike)."""

from __future__ import annotations

from cityhub.contract import BirthMessage, DeviceEvent, EventMessage, StatusMessage, TelemetryMessage
from rules.model import BirthIn, EventIn, Observation, ReadingIn, StatusIn

ContractMessage = TelemetryMessage | EventMessage | BirthMessage | StatusMessage


def observations_from(message: ContractMessage) -> list[Observation]:
    """What the rules see of a message; nothing of a historical one (old news must not page anyone)."""
    site, device, kind = message.site, message.device, message.kind
    if isinstance(message, TelemetryMessage):
        if message.historical:
            return []
        return [
            ReadingIn(
                site=site, device=device, kind=kind, metric=r.metric, value=r.value, ts_ms=r.ts, quality=r.quality.value
            )
            for r in message.readings
        ]
    if isinstance(message, EventMessage):
        if message.historical:
            return []
        return [_event(site, device, kind, e) for e in message.events]
    if isinstance(message, BirthMessage):
        return [
            BirthIn(site=site, device=device, kind=kind, ts_ms=message.ts, profile=message.profile,
                    heartbeat_s=message.heartbeat_s)
        ]  # fmt: skip
    return [StatusIn(site=site, device=device, kind=kind, state=message.state, ts_ms=message.ts, reason=message.reason)]


def _event(site: str, device: str, kind: str, e: DeviceEvent) -> EventIn:
    return EventIn(
        site=site, device=device, kind=kind, type=e.type, active=e.active, ts_ms=e.ts,
        attributes=e.attributes, message=e.message,
    )  # fmt: skip
