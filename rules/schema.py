"""The rule file format, as pydantic models: what a person may write, checked field by field.

The loader turns a valid file into ``rules.spec.Rule`` values; these models exist only at that boundary.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from rules.durations import Duration
from rules.model import Severity
from rules.spec import PLACEHOLDERS, template_fields

RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$")]
MetricName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$", max_length=128)]
EventType = Annotated[str, Field(pattern=r"^[a-z*?\[][a-z0-9_.*?\[\]!-]{0,127}$")]
Globs = Annotated[list[Annotated[str, Field(min_length=1, max_length=128)]], Field(min_length=1)]
MAX_FOR_S = 7 * 86400


def _listed(value: object) -> object:
    return [value] if isinstance(value, str) else value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True)


class ThresholdIn(_Model):
    """``above`` (or ``below``) fires; ``clear_below`` (or ``clear_above``) clears, for hysteresis."""

    metric: MetricName
    above: float | None = None
    below: float | None = None
    clear_below: float | None = None
    clear_above: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of 'above' and 'below'")
        if self.above is not None:
            if self.clear_above is not None:
                raise ValueError("'clear_above' goes with 'below'; with 'above' use 'clear_below'")
            if self.clear_below is not None and self.clear_below > self.above:
                raise ValueError(
                    f"clear_below {self.clear_below:g} is above the limit {self.above:g}: the alert would clear "
                    "while the value is still over the limit (clear_below must be at most 'above')"
                )
        if self.below is not None:
            if self.clear_below is not None:
                raise ValueError("'clear_below' goes with 'above'; with 'below' use 'clear_above'")
            if self.clear_above is not None and self.clear_above < self.below:
                raise ValueError(
                    f"clear_above {self.clear_above:g} is below the limit {self.below:g}: the alert would clear "
                    "while the value is still under the limit (clear_above must be at least 'below')"
                )
        return self


class StaleIn(_Model):
    """No good reading of ``metric`` (or no message at all, without ``metric``) for ``max_age``."""

    metric: MetricName | None = None
    max_age: Annotated[Duration, Field(gt=0)]


class OfflineIn(_Model):
    """The device is offline: its status says so, or it missed ``heartbeats`` heartbeats (null: status only)."""

    heartbeats: Annotated[float, Field(ge=1)] | None = 3.0


class RateIn(_Model):
    """``metric`` rose (``rise``) or fell (``fall``) by at least that much within ``window``."""

    metric: MetricName
    rise: Annotated[float, Field(gt=0)] | None = None
    fall: Annotated[float, Field(gt=0)] | None = None
    window: Annotated[Duration, Field(gt=0)]

    @model_validator(mode="after")
    def _one_direction(self) -> Self:
        if (self.rise is None) == (self.fall is None):
            raise ValueError("give exactly one of 'rise' and 'fall'")
        return self


class EventConditionIn(_Model):
    """An event ``type`` (globs allowed) is active; with ``state``, its ``state`` attribute is one of them."""

    type: EventType
    state: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(min_length=1)] | None = None

    @field_validator("state", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        return _listed(value)


class StateIn(_Model):
    """``metric``'s last good value is one of ``in``."""

    metric: MetricName
    in_: Annotated[list[float | bool | str], Field(min_length=1, alias="in")]


class ConditionIn(_Model):
    """Exactly one kind of condition."""

    threshold: ThresholdIn | None = None
    stale: StaleIn | None = None
    offline: OfflineIn | None = None
    rate: RateIn | None = None
    event: EventConditionIn | None = None
    state: StateIn | None = None
    all: Annotated[list[ConditionIn], Field(min_length=1)] | None = None
    any: Annotated[list[ConditionIn], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            known = ", ".join(type(self).model_fields)
            raise ValueError(f"give exactly one condition ({known}), not {len(given)}: {', '.join(given) or 'none'}")
        return self


class SelectIn(_Model):
    """Which devices the rule watches (globs; a list means any of them)."""

    site: Globs | None = None
    kind: Globs | None = None
    profile: Globs | None = None
    device: Globs | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list)

    @field_validator("site", "kind", "profile", "device", "tags", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        return _listed(value)


class RuleIn(_Model):
    """One rule as written."""

    id: RuleId
    summary: Annotated[str, Field(min_length=1, max_length=256)]
    severity: Severity
    team: Annotated[str, Field(min_length=1, max_length=32)]
    runbook: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^\S+$")] | None = None
    select: SelectIn = Field(default_factory=SelectIn)
    for_: Annotated[Duration, Field(le=MAX_FOR_S, alias="for")] = 0.0
    when: ConditionIn

    @field_validator("team")
    @classmethod
    def _known_team(cls, value: str, info: ValidationInfo) -> str:
        teams: Any = (info.context or {}).get("teams")
        if teams is not None and value not in teams:
            raise ValueError(f"unknown team {value!r} (configured teams: {', '.join(teams)})")
        return value

    @field_validator("summary")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        unknown = sorted(set(template_fields(value)) - PLACEHOLDERS)
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)} "
                f"(known: {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))})"
            )
        return value


class RuleFileIn(_Model):
    """A rule file: a list of rules."""

    rules: list[RuleIn]
