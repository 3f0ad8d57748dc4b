"""A rule as the engine runs it: who it watches (selector), what it watches for (condition), whom it tells."""

from __future__ import annotations

import fnmatch
import string
from collections.abc import Mapping
from dataclasses import dataclass

from rules.conditions import Condition, EventCondition, Offline, Rate, Stale, State, Threshold
from rules.model import Severity, Value

#: The names a summary template may use: nothing else is formatted, so a template cannot reach into objects.
PLACEHOLDERS = frozenset({"site", "device", "kind", "profile", "rule", "value", "metric", "severity", "team"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Selector:
    """Which devices a rule watches: every given field must match (globs); tags must all be present."""

    sites: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    tags: frozenset[str] = frozenset()

    def matches(self, *, site: str, device: str, kind: str, profile: str | None, tags: frozenset[str]) -> bool:
        """Whether a device is watched by the rule."""
        return (
            _any_glob(self.sites, site)
            and _any_glob(self.kinds, kind)
            and _any_glob(self.devices, device)
            and (not self.profiles or (profile is not None and _any_glob(self.profiles, profile)))
            and self.tags <= tags
        )


def _any_glob(globs: tuple[str, ...], value: str) -> bool:
    return not globs or any(fnmatch.fnmatchcase(value, glob) for glob in globs)


def template_fields(template: str) -> list[str]:
    """The placeholders of a summary template (raises ValueError on a malformed one)."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} may not have a format or conversion")
        names.append(name)
    return names


def _show(value: Value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.0f}"
    return "?" if value is None else str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One alert rule."""

    id: str
    summary: str
    severity: Severity
    team: str
    when: Condition
    select: Selector = Selector()
    for_ms: int = 0
    runbook: str | None = None
    source: str = ""  # where it was defined (file:line), for messages

    @property
    def metric(self) -> str | None:
        """The first metric the condition reads (the summary's ``{metric}``)."""
        for leaf in self.when.leaves():
            if isinstance(leaf, Threshold | Rate | State) or (isinstance(leaf, Stale) and leaf.metric):
                return leaf.metric
        return None

    @property
    def metrics(self) -> frozenset[str]:
        """Every metric whose readings can change the condition."""
        found = set()
        for leaf in self.when.leaves():
            if isinstance(leaf, Threshold | Rate | State) or (isinstance(leaf, Stale) and leaf.metric):
                found.add(leaf.metric)
        return frozenset(m for m in found if m)

    @property
    def events(self) -> tuple[EventCondition, ...]:
        """The event conditions inside the rule."""
        return tuple(leaf for leaf in self.when.leaves() if isinstance(leaf, EventCondition))

    @property
    def on_every_message(self) -> bool:
        """Whether any message of a device can change the condition (device-wide staleness, offline)."""
        leaves = self.when.leaves()
        return any(isinstance(leaf, Offline) or (isinstance(leaf, Stale) and leaf.metric is None) for leaf in leaves)

    @property
    def clocked(self) -> bool:
        """Whether the clock alone can change the condition (staleness, a missed heartbeat)."""
        return any(isinstance(leaf, Offline | Stale) for leaf in self.when.leaves())

    def render(self, context: Mapping[str, Value]) -> str:
        """The summary with its placeholders filled in."""
        return self.summary.format_map({name: _show(context.get(name)) for name in PLACEHOLDERS})
