"""The rule engine's values: what goes in (observations and the clock) and what comes out (transitions).

Everything here is a frozen value: the engine does no I/O, so the hub, ``cityhub rules test`` and the
tests feed it the same observations and get the same transitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

#: A reading's value, as the MQTT contract carries it.
Value = float | int | bool | str | None


class Severity(StrEnum):
    """How bad an alert is; the order is the declaration order (critical first)."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"
    INFO = "info"


class AlertState(StrEnum):
    """What a transition says about a rule and subject."""

    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True, kw_only=True)
class Subject:
    """What an alert is about: one device of one site (a rule fires at most once per subject)."""

    site: str
    device: str

    @property
    def key(self) -> str:
        """``site/device``: how logs, the API and golden files name a subject."""
        return f"{self.site}/{self.device}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingIn:
    """A reading as the hub stored it."""

    site: str
    device: str
    kind: str
    metric: str
    value: Value
    ts_ms: int
    quality: str = "good"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventIn:
    """A device event: a condition that starts (``active``) or clears."""

    site: str
    device: str
    kind: str
    type: str
    active: bool
    ts_ms: int
    attributes: Mapping[str, Value] = field(default_factory=dict)
    message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusIn:
    """A device went online or offline (its birth, its will, or the hub declaring it)."""

    site: str
    device: str
    kind: str
    state: str  # "online" | "offline"
    ts_ms: int
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BirthIn:
    """What a device says of itself when it starts: its profile and how often it promises to speak."""

    site: str
    device: str
    kind: str
    ts_ms: int
    profile: str | None = None
    heartbeat_s: int | None = None


Observation = ReadingIn | EventIn | StatusIn | BirthIn


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceTags:
    """Operator-assigned labels of a device (from the hub's site configuration), for rule selectors."""

    site: str
    device: str
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """A rule started or stopped firing for a subject, at ``at_ms`` (the engine's clock)."""

    rule: str
    subject: Subject
    state: AlertState
    at_ms: int
    severity: Severity
    team: str
    summary: str  # rendered from the rule's template
    kind: str  # the subject's device kind
    runbook: str | None = None
    value: Value = None  # the value that made it fire or clear, when there is one
