"""The ``notifications`` section of the hub's settings: channels (webhooks, apprise URLs) and team routes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Annotated, Literal, Self

import apprise
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from cityhub.contract.alerts import AlertEvent
from rules.durations import Duration
from rules.model import Severity

ChannelName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]


@contextlib.contextmanager
def _quiet_apprise() -> Iterator[None]:
    logger = logging.getLogger("apprise")
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Channel(_Section):
    severities: list[Severity] | None = Field(default=None, description="the severities it gets (null: all)")
    events: list[AlertEvent] | None = Field(default=None, description="the transitions it gets (null: all)")

    def wants(self, severity: str, event: str) -> bool:
        """Whether a transition of ``severity`` and ``event`` goes to this channel."""
        return (self.severities is None or severity in self.severities) and (
            self.events is None or event in self.events
        )


class WebhookChannel(_Channel):
    """An HTTP(S) endpoint that receives each transition as JSON, signed with HMAC-SHA256."""

    type: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2048)]
    secret: SecretStr = Field(description="shared with the receiver, which checks X-Cityhub-Signature")
    timeout_s: Duration = 10.0

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("the webhook secret must have at least 16 characters")
        return value


class AppriseChannel(_Channel):
    """E-mail, SMS gateways, chat services: any apprise URL (https://github.com/caronc/apprise/wiki)."""

    type: Literal["apprise"]
    urls: list[SecretStr] = Field(min_length=1, description="apprise URLs; they hold credentials, so secret")
    title_prefix: Annotated[str, Field(max_length=64)] = "cityhub"

    @field_validator("urls")
    @classmethod
    def _apprise_knows_them(cls, urls: list[SecretStr]) -> list[SecretStr]:
        for index, url in enumerate(urls):
            # The URL is never repeated, here or in apprise's own log: it carries passwords and tokens.
            with _quiet_apprise():
                known = apprise.Apprise().add(url.get_secret_value())
            if not known:
                raise ValueError(f"urls[{index}] is not an apprise URL apprise can use (see the apprise wiki)")
        return urls


class RetryConfig(_Section):
    """How hard to try: ``attempts`` in all, waiting ``initial_s`` doubling up to ``max_s`` between them."""

    attempts: int = Field(default=6, ge=1, le=100)
    initial_s: Duration = 1.0
    max_s: Duration = 60.0


class NotifyConfig(_Section):
    """Where alert transitions go besides the team's MQTT topic."""

    channels: dict[ChannelName, Annotated[WebhookChannel | AppriseChannel, Field(discriminator="type")]] = Field(
        default_factory=dict
    )
    routes: dict[str, list[ChannelName]] = Field(default_factory=dict, description="team -> channel names")
    retry: RetryConfig = Field(default_factory=RetryConfig)
    mqtt: bool = Field(default=True, description="publish every transition on {root}/v1/_hub/alerts/{team}")
    queue_max: int = Field(default=10_000, ge=1, description="transitions waiting per channel before refusing")

    @model_validator(mode="after")
    def _routes_name_channels(self) -> Self:
        for team, names in self.routes.items():
            unknown = [name for name in names if name not in self.channels]
            if unknown:
                raise ValueError(f"route of team {team!r} names unknown channel(s) {', '.join(unknown)}")
        return self
