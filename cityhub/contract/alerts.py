"""Alert notifications: what the hub publishes on ``{root}/v1/_hub/alerts/{team}`` and POSTs to webhooks.

One message per alert transition (fired, acknowledged, escalated, resolved, commented), QoS 1, not retained:
consoles keep their own list from the stream and fetch the open alerts over the REST API at start.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from cityhub.contract.payloads import DeviceId, DeviceKind, SiteId, TimestampMs


class AlertEvent(StrEnum):
    """What happened to the alert."""

    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    COMMENTED = "commented"


class AlertMessage(BaseModel):
    """One alert transition, as people and other systems receive it."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    alert_id: Annotated[str, Field(min_length=1, max_length=64)]
    event: AlertEvent
    rule: Annotated[str, Field(min_length=1, max_length=128)]
    site: SiteId
    device: DeviceId
    kind: DeviceKind
    team: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
    severity: Annotated[str, Field(pattern=r"^(critical|major|minor|warning|info)$")]
    summary: Annotated[str, Field(max_length=512)]
    runbook: Annotated[str, Field(max_length=512)] | None = None
    at: TimestampMs = Field(description="When this transition happened")
    fired_at: TimestampMs = Field(description="When the alert first fired")
    actor: Annotated[str, Field(max_length=128)] = Field(description="Who did it: an operator, or 'rules'")
    comment: Annotated[str, Field(max_length=2000)] | None = None
    escalation_level: int = Field(default=0, ge=0)
    hub: Annotated[str, Field(max_length=128)]


def alert_topic(root: str, team: str) -> str:
    """The MQTT topic of a team's alert stream."""
    return f"{root}/v1/_hub/alerts/{team}"
