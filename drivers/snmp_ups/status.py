"""``ups.status`` as NUT tokens, and the contract events its changes raise.

Every vendor spells the UPS state differently (UPS-MIB's upsOutputSource enumeration, APC's
upsBasicOutputStatus, MGE's yes/no flags, alarm table entries); profiles map each to NUT's tokens
(``OL``, ``OB``, ``LB``...), so the rest of the platform sees one vocabulary. A token appearing raises
its event with ``active: true``, disappearing with ``active: false``: ``ups.on_battery`` going inactive
is the UPS back on mains. Polls and traps feed the same tracker, so a trap's event is not raised a
second time by the poll that follows it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from cityhub.contract import DeviceEvent
from drivers.snmp_ups.profile import STATUS_TOKENS, MibProfile

#: The event each ups.status token raises (CHRG, DISCHRG and OL follow OB and raise none of their own).
TOKEN_EVENTS: dict[str, tuple[str, str]] = {
    "OB": ("ups.on_battery", "on battery"),
    "LB": ("ups.low_battery", "battery low"),
    "RB": ("ups.replace_battery", "battery needs replacing"),
    "OVER": ("ups.overload", "output overloaded"),
    "BYPASS": ("ups.on_bypass", "on bypass"),
    "OFF": ("ups.output_off", "output off"),
    "TRIM": ("ups.trim", "trimming high input voltage"),
    "BOOST": ("ups.boost", "boosting low input voltage"),
    "CAL": ("ups.calibration", "runtime calibration"),
    "FSD": ("ups.forced_shutdown", "forced shutdown"),
}
ALARM_EVENT_PREFIX = "ups.alarm."


def format_status(tokens: Iterable[str]) -> str:
    """Tokens in NUT's order, space-separated (``OB DISCHRG LB`` prints as ``OB LB DISCHRG``)."""
    present = set(tokens)
    return " ".join(t for t in STATUS_TOKENS if t in present)


def parse_status(text: str) -> frozenset[str]:
    """The tokens of a ``ups.status`` string; raises ValueError for unknown ones."""
    tokens = frozenset(text.split())
    if unknown := sorted(tokens - set(STATUS_TOKENS)):
        raise ValueError(f"unknown ups.status tokens {unknown}; known: {' '.join(STATUS_TOKENS)}")
    return tokens


def with_mains_complement(tokens: frozenset[str], set_: Iterable[str], clear: Iterable[str]) -> frozenset[str]:
    """Apply a trap's changes; OL and OB exclude each other, and leaving battery means back on line."""
    set_, clear = frozenset(set_), frozenset(clear)
    new = (tokens - clear) | set_
    if "OB" in set_:
        new -= {"OL", "CHRG"}
    if "OB" in clear and "OFF" not in new:
        new = (new - {"DISCHRG"}) | {"OL"}
    if "OL" in set_:
        new -= {"OB", "DISCHRG"}
    return new


@cache  # the agent compares a device's description after every poll: build it once per profile
def profile_events(profile: MibProfile) -> tuple[str, ...]:
    """Every event type a UPS of this profile can raise, for its birth message."""
    tokens: set[str] = set()
    for status in profile.status:
        for _, state in status.states:
            tokens.update(state)
    for trap in profile.traps:
        tokens.update(trap.set + trap.clear)
    types = {TOKEN_EVENTS[t][0] for t in tokens if t in TOKEN_EVENTS}
    types.update(trap.event for trap in profile.traps if trap.event)
    if profile.alarms is not None:
        types.update(TOKEN_EVENTS[a.status][0] for a in profile.alarms.known if a.status in TOKEN_EVENTS)
        types.update(ALARM_EVENT_PREFIX + a.name for a in profile.alarms.known if a.status is None)
    return tuple(sorted(types))


@dataclass(slots=True)
class StatusTracker:
    """The last known tokens and alarms of one UPS; turns changes into events."""

    tokens: frozenset[str] | None = None
    alarms: frozenset[str] | None = None

    def update(self, tokens: frozenset[str], ts_ms: int, **attributes: str) -> list[DeviceEvent]:
        """A new full status (from a poll); events for what changed (at start-up: what is active)."""
        previous = self.tokens
        self.tokens = tokens
        events = []
        for token, (event_type, text) in TOKEN_EVENTS.items():
            was = previous is not None and token in previous
            now = token in tokens
            if was != now:
                events.append(self._event(event_type, text, now, ts_ms, tokens, attributes))
        return events

    def apply_trap(
        self, set_: tuple[str, ...], clear: tuple[str, ...], ts_ms: int, **attributes: str
    ) -> list[DeviceEvent]:
        """A trap's changes; before the first poll its tokens are taken at their word."""
        base = self.tokens if self.tokens is not None else frozenset()
        new = with_mains_complement(base, set_, clear)
        events = []
        for token, (event_type, text) in TOKEN_EVENTS.items():
            said = token in set_ or token in clear
            was = token in base if self.tokens is not None or not said else token in clear
            if was != (token in new):
                events.append(self._event(event_type, text, token in new, ts_ms, new, attributes))
        self.tokens = new
        return events

    def update_alarms(self, names: frozenset[str], ts_ms: int, **attributes: str) -> list[DeviceEvent]:
        """Alarms without a status token of their own (fan failure...): an event each as they come and go."""
        previous = self.alarms if self.alarms is not None else frozenset()
        self.alarms = names
        return [
            DeviceEvent(
                type=ALARM_EVENT_PREFIX + name,
                ts=ts_ms,
                active=name in names,
                message=f"alarm {name} {'present' if name in names else 'cleared'}",
                attributes={"alarm": name, **attributes},
            )
            for name in sorted(previous ^ names)
        ]

    def _event(
        self, event_type: str, text: str, active: bool, ts_ms: int, tokens: frozenset[str], attributes: dict[str, str]
    ) -> DeviceEvent:
        return DeviceEvent(
            type=event_type,
            ts=ts_ms,
            active=active,
            message=text if active else f"no longer {text}",
            attributes={"status": format_status(tokens), **attributes},
        )
