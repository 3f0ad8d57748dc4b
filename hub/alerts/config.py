"""The ``alerts`` section of the hub's settings: rules, teams, escalation, flapping and maintenance windows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rules.durations import Duration
from rules.loader import PACKS_DIR

_TEAM = r"^[a-z][a-z0-9_-]{0,31}$"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MATCH_FIELDS = frozenset({"rule", "site", "device", "kind", "team", "severity"})


SeverityName = Literal["critical", "major", "minor", "warning", "info"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_matchers(matchers: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(matchers) - MATCH_FIELDS)
    if unknown:
        raise ValueError(f"unknown matcher field(s) {', '.join(unknown)} (known: {', '.join(sorted(MATCH_FIELDS))})")
    return matchers


class EscalationStep(_Section):
    """Notify further people when an alert is still not acknowledged ``after`` its firing."""

    after: Duration
    teams: list[Annotated[str, Field(pattern=_TEAM)]] = Field(
        default_factory=list, description="whose channels get it (besides the alert's team); empty: the same team"
    )
    channels: list[str] = Field(default_factory=list, description="further channels, by name")
    severities: list[SeverityName] = Field(
        default_factory=lambda: list[SeverityName](["critical", "major"]), description="the alerts this step is for"
    )


class FlapConfig(_Section):
    """An alert firing again within ``window`` of resolving is reopened, not new; past ``max_reopen`` it is muted."""

    window: Duration = 600.0
    max_reopen: int = Field(default=3, ge=0)


class MaintenanceWindow(_Section):
    """A recurring weekly window in which matching alerts are recorded but nobody is notified."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    start: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
    duration: Duration
    timezone: str = "Europe/Bucharest"
    match: dict[str, str] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Europe/Bucharest)") from None
        return value

    @field_validator("match")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_matchers(value)

    def active(self, now_ms: int) -> bool:
        """Whether ``now_ms`` falls in one of the window's occurrences (this week's or one running over from before)."""
        zone = ZoneInfo(self.timezone)
        now = dt.datetime.fromtimestamp(now_ms / 1000, zone)
        hour, minute = (int(part) for part in self.start.split(":"))
        span = dt.timedelta(seconds=self.duration)
        # A window may run past midnight, or for days: look back as far as it can reach.
        for back in range(int(self.duration // 86400) + 2):
            day = (now - dt.timedelta(days=back)).date()
            if _DAYS[day.weekday()] not in self.days:
                continue
            begins = dt.datetime.combine(day, dt.time(hour, minute), zone)
            if begins <= now < begins + span:
                return True
        return False


class AlertsConfig(_Section):
    """Alert rules and what happens to the alerts they raise."""

    enabled: bool = True
    teams: list[Annotated[str, Field(pattern=_TEAM)]] = Field(default_factory=lambda: ["it", "police", "adp"])
    rules: list[Path] = Field(
        default_factory=lambda: [PACKS_DIR],
        description="rule files or folders of them (default: the shipped packs)",
    )
    tags: dict[str, list[str]] = Field(default_factory=dict, description='"site/device" -> tags for selectors')
    escalation: list[EscalationStep] = Field(default_factory=lambda: [EscalationStep(after=900.0)])
    flap: FlapConfig = Field(default_factory=FlapConfig)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    tick_s: Duration = Field(default=1.0, gt=0, description="how often the clock-driven conditions are checked")
    save_state_s: Duration = Field(default=5.0, gt=0, description="how often the engine's timers are saved")

    @field_validator("tags")
    @classmethod
    def _device_keys(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        bad = [key for key in value if key.count("/") != 1 or "" in key.split("/")]
        if bad:
            raise ValueError(f"tags are keyed by 'site/device', not {', '.join(map(repr, bad))}")
        return value

    @property
    def device_tags(self) -> dict[tuple[str, str], frozenset[str]]:
        """``tags`` keyed by (site, device), as the rule engine takes them."""
        result: dict[tuple[str, str], frozenset[str]] = {}
        for key, values in self.tags.items():
            site, device = key.split("/")
            result[(site, device)] = frozenset(values)
        return result

    @model_validator(mode="after")
    def _escalation_in_order(self) -> Self:
        delays = [step.after for step in self.escalation]
        if delays != sorted(delays):
            raise ValueError("escalation steps must be in order of their delay")
        unknown = sorted({t for step in self.escalation for t in step.teams} - set(self.teams))
        if unknown:
            raise ValueError(f"escalation names unknown team(s) {', '.join(unknown)}")
        return self
