"""What the figures are computed from: plain values read from the hub's stores (hub.kpi.sources)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChange:
    """A device went online or offline at ``ts_ms`` (a ``device_status`` point)."""

    site: str
    device: str
    kind: str
    ts_ms: int
    online: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class KnownDevice:
    """A device in the hub's registry, with its last state and since when."""

    site: str
    device: str
    kind: str
    state: str  # online | offline
    since_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertFacts:
    """What the figures need of an alert (a row of the alert store)."""

    id: str
    rule: str
    site: str
    device: str
    kind: str
    team: str
    severity: str
    fired_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertChange:
    """One entry of an alert's history: firing, reopened, acknowledged, resolved, ..."""

    alert_id: str
    ts_ms: int
    event: str
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiData:
    """Everything a report is computed from."""

    devices: tuple[KnownDevice, ...] = ()
    changes: tuple[StatusChange, ...] = ()
    alerts: tuple[AlertFacts, ...] = ()
    history: tuple[AlertChange, ...] = ()
