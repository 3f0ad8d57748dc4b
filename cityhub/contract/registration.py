"""Self-registration over MQTT: the topics and payloads a new device and the hub exchange.

A device holding a site's **provisioning key** (a broker login that may only publish registration
requests and read their answers, see docs/broker.md) publishes a ``RegistrationRequest`` on

    {root}/v1/_reg/{site}/{key}/{device}/request

and reads the hub's ``RegistrationResponse`` (retained) on the ``.../response`` topic beside it. The key
sits in the topic so that the broker, not the payload, says which key sent a request: a provisioning
login may publish under its own key only. The request carries the **password the device chose** for
its own broker login; only the hub can read requests, and no answer ever carries a secret, so a device
sharing the provisioning key with others cannot learn another device's password. On approval the hub
creates the device's login (username ``device_username(site, device)``) with exactly the topics of the
device and, for an edge agent, of the devices it is the gateway for. See docs/mqtt-contract.md#registration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cityhub.contract.payloads import DeviceId, DeviceKind, EventType, MetricSpec, ShortText, SiteId, TimestampMs
from cityhub.contract.topics import CONTRACT_VERSION, ID_PATTERN, TopicError, is_valid_id, validate_root

REGISTRATION_LEVEL = "_reg"
#: Provisioning key ids: short, safe in topics and broker usernames.
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
_KEY_RE = re.compile(KEY_PATTERN)

#: The device's chosen password: long and random, printable ASCII without spaces (any MQTT client can send it).
DevicePassword = Annotated[str, Field(min_length=24, max_length=128, pattern=r"^[!-~]+$")]
Nonce = Annotated[str, Field(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class RegistrationState(StrEnum):
    """Where a device stands in the registry."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class GatewayDevice(_Model):
    """A device an edge agent publishes for."""

    site: SiteId
    device: DeviceId


class RegistrationRequest(_Model):
    """What a new device says of itself, with the password it chose for its own broker login."""

    device: DeviceId
    site: SiteId
    kind: DeviceKind
    profile: ShortText | None = None
    maker: ShortText | None = None
    model: ShortText | None = None
    firmware: ShortText | None = None
    serial: ShortText | None = None
    metrics: list[MetricSpec] = Field(default_factory=list, max_length=10_000)
    events: list[EventType] = Field(default_factory=list, max_length=1_000)
    gateway_for: list[GatewayDevice] = Field(
        default_factory=list, max_length=1_000, description="For an edge agent: the devices it publishes for"
    )
    password: DevicePassword
    nonce: Nonce = Field(description="Random and new for every request: a replayed request is refused")
    ts: TimestampMs = Field(description="When the request was made; requests far from the hub's clock are refused")

    @model_validator(mode="after")
    def _gateway_is_not_itself(self) -> RegistrationRequest:
        listed = [(d.site, d.device) for d in self.gateway_for]
        if (self.site, self.device) in listed:
            raise ValueError("gateway_for lists the device itself")
        if len(set(listed)) != len(listed):
            raise ValueError("gateway_for lists a device twice")
        return self


class RegistrationResponse(_Model):
    """The hub's answer, retained on the device's response topic; it never carries a secret."""

    device: DeviceId
    site: SiteId
    state: RegistrationState
    nonce: Nonce = Field(description="The nonce of the request this answers")
    username: str | None = Field(default=None, description="The device's broker username, once approved")
    reason: ShortText | None = None
    ts: TimestampMs


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationTopic:
    """A parsed registration request topic."""

    site: str
    key: str
    device: str


def is_valid_key(value: str) -> bool:
    """Whether ``value`` is a valid provisioning key id."""
    return _KEY_RE.fullmatch(value) is not None


def device_username(site: str, device: str) -> str:
    """The broker username of an approved device (one per site and device)."""
    return f"dev:{site}:{device}"


def provisioning_username(site: str, key: str) -> str:
    """The broker username of a site's provisioning key (its password is the key's secret)."""
    return f"prov:{site}:{key}"


@dataclass(frozen=True, slots=True)
class RegistrationTopics:
    """Registration topics of one deployment (one topic root)."""

    root: str = "cityhub"

    def __post_init__(self) -> None:
        validate_root(self.root)

    @property
    def prefix(self) -> str:
        """Every registration topic starts with this."""
        return f"{self.root}/{CONTRACT_VERSION}/{REGISTRATION_LEVEL}"

    def _base(self, site: str, key: str, device: str) -> str:
        for label, value, valid in (
            ("site", site, is_valid_id(site)),
            ("key", key, is_valid_key(key)),
            ("device", device, is_valid_id(device)),
        ):
            if not valid:
                pattern = KEY_PATTERN if label == "key" else ID_PATTERN
                raise ValueError(f"invalid {label} {value!r}: must match {pattern}")
        return f"{self.prefix}/{site}/{key}/{device}"

    def request(self, site: str, key: str, device: str) -> str:
        """Where a device publishes its registration request."""
        return self._base(site, key, device) + "/request"

    def response(self, site: str, key: str, device: str) -> str:
        """Where the hub answers (retained)."""
        return self._base(site, key, device) + "/response"

    def subscription(self, shared_group: str | None = None) -> str:
        """The filter the hub subscribes to for requests."""
        topic_filter = f"{self.prefix}/+/+/+/request"
        return f"$share/{shared_group}/{topic_filter}" if shared_group else topic_filter

    def parse_request(self, topic: str) -> RegistrationTopic:
        """Parse a request topic, raising TopicError (reason ``bad_topic``) when it is not one."""
        prefix = self.prefix + "/"
        levels = topic[len(prefix) :].split("/") if topic.startswith(prefix) else []
        if len(levels) != 4 or levels[3] != "request":
            raise TopicError("bad_topic", f"topic {topic!r} must be {prefix}<site>/<key>/<device>/request")
        site, key, device, _ = levels
        if not (is_valid_id(site) and is_valid_key(key) and is_valid_id(device)):
            raise TopicError("bad_topic", f"topic {topic!r} has an invalid site, key or device id")
        return RegistrationTopic(site=site, key=key, device=device)
