"""The period a report covers: a half-open interval [start, end) of milliseconds, parsed from ISO dates."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.kpi.errors import PeriodError

#: Where the administrations are; a date without an offset is a day there.
DEFAULT_TIMEZONE = "Europe/Bucharest"
#: The longest period one report covers (a year and some): bounds the work a request can ask for.
MAX_DAYS = 400
#: Without ``from``, a report covers the week before ``to``.
DEFAULT_DAYS = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class Period:
    """From ``start_ms`` (included) to ``end_ms`` (excluded)."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise PeriodError("the period must end after it starts ('to' after 'from')")

    @property
    def seconds(self) -> float:
        """The period's length."""
        return (self.end_ms - self.start_ms) / 1000

    def observed_end(self, now_ms: int) -> int:
        """Where what is known ends: the period's end, or now if the period runs into the future."""
        return max(self.start_ms, min(self.end_ms, now_ms))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PeriodError(f"unknown time zone {name!r} (e.g. Europe/Bucharest)") from None


def parse_instant(text: str, what: str, zone: ZoneInfo) -> int:
    """``2026-01-01`` (midnight in ``zone``), ``2026-01-01T08:00`` (in ``zone``) or with an offset, as ms."""
    text = text.strip()
    try:
        moment = dt.datetime.fromisoformat(text)  # a bare date is its midnight
    except ValueError:
        raise PeriodError(
            f"{what} {text!r} is not an ISO date: use 2026-01-31, 2026-01-31T08:00 or 2026-01-31T08:00+02:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return int(moment.timestamp() * 1000)


def parse_period(
    start: str | None, end: str | None, *, now_ms: int, timezone: str = DEFAULT_TIMEZONE, max_days: int = MAX_DAYS
) -> Period:
    """The period between two ISO dates; ``end`` defaults to now, ``start`` to a week before ``end``."""
    zone = _zone(timezone)
    end_ms = parse_instant(end, "'to'", zone) if end else now_ms
    start_ms = parse_instant(start, "'from'", zone) if start else end_ms - DEFAULT_DAYS * 86_400_000
    period = Period(start_ms=start_ms, end_ms=end_ms)
    if period.seconds > max_days * 86_400:
        raise PeriodError(f"a report covers at most {max_days} days (asked for {period.seconds / 86_400:.1f})")
    return period


def iso(ms: int, timezone: str = DEFAULT_TIMEZONE) -> str:
    """An instant as ISO 8601 with its offset in ``timezone`` (how reports name their period)."""
    return dt.datetime.fromtimestamp(ms / 1000, _zone(timezone)).isoformat(timespec="seconds")
