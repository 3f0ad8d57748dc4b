"""Topic namespace of the cityhub MQTT contract, version 1.

Every device topic is ``{root}/v1/{site}/{device}/{message}``: the site and the device id sit in the
topic so that the broker's access control can grant a device exactly its own topics, and so that the
hub can refuse a payload that claims another device. The hub's own topics live under
``{root}/v1/_hub/...``, which no device topic can match (site ids never start with ``_``).

See docs/mqtt-contract.md for the full contract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

CONTRACT_VERSION = "v1"

#: Site and device ids: what a city's inventory uses, safe in topics, InfluxDB tags and file names.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_ID_RE = re.compile(ID_PATTERN)
_ROOT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}){0,3}$")


class MessageKind(StrEnum):
    """The last topic level: what a device message carries."""

    TELEMETRY = "telemetry"
    EVENT = "event"
    BIRTH = "birth"
    STATUS = "status"


#: QoS of each message kind; every kind is QoS 1 (at least once). Why: docs/mqtt-contract.md#qos.
QOS: dict[MessageKind, int] = {kind: 1 for kind in MessageKind}

#: Birth and status are retained, so a subscriber learns every device's description and online state
#: the moment it subscribes; telemetry and events are a stream, never retained.
RETAIN: dict[MessageKind, bool] = {
    MessageKind.TELEMETRY: False,
    MessageKind.EVENT: False,
    MessageKind.BIRTH: True,
    MessageKind.STATUS: True,
}


class TopicError(ValueError):
    """A topic that is not a valid v1 device topic; ``reason`` is a stable reject reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceTopic:
    """A parsed device topic."""

    site: str
    device: str
    kind: MessageKind


def is_valid_id(value: str) -> bool:
    """Whether ``value`` is a valid site or device id."""
    return _ID_RE.fullmatch(value) is not None


def validate_root(root: str) -> str:
    """Return ``root`` if it is a valid topic root (1 to 4 levels, no wildcards), else raise ValueError."""
    if not _ROOT_RE.fullmatch(root):
        raise ValueError(f"invalid topic root {root!r}: 1 to 4 levels of letters, digits, '_', '.', '-', no wildcards")
    return root


@dataclass(frozen=True, slots=True)
class Topics:
    """Builds and parses the topics of one deployment (one topic root)."""

    root: str = "cityhub"
    _device_topic: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_root(self.root)
        ident = ID_PATTERN.strip("^$")
        kinds = "|".join(kind.value for kind in MessageKind)
        # The whole topic in one match: the hub parses every message's topic, so this is a hot path;
        # the slower checks in _explain only run to say why a topic is refused.
        object.__setattr__(
            self, "_device_topic", re.compile(rf"{re.escape(self.prefix)}/({ident})/({ident})/({kinds})")
        )

    @property
    def prefix(self) -> str:
        """The versioned namespace every contract topic starts with."""
        return f"{self.root}/{CONTRACT_VERSION}"

    def device(self, site: str, device: str, kind: MessageKind) -> str:
        """The topic a device publishes ``kind`` messages on."""
        for label, value in (("site", site), ("device", device)):
            if not is_valid_id(value):
                raise ValueError(f"invalid {label} id {value!r}: must match {ID_PATTERN}")
        return f"{self.prefix}/{site}/{device}/{kind.value}"

    def subscription(self, kind: MessageKind, shared_group: str | None = None) -> str:
        """The filter the hub subscribes to for ``kind``, optionally as an MQTT 5 shared subscription."""
        topic_filter = f"{self.prefix}/+/+/{kind.value}"
        return f"$share/{shared_group}/{topic_filter}" if shared_group else topic_filter

    def dead_letter(self, reason: str) -> str:
        """Where the hub republishes a rejected message, with the reason."""
        return f"{self.prefix}/_hub/deadletter/{reason}"

    def parse(self, topic: str) -> DeviceTopic:
        """Parse a device topic, raising TopicError with a stable reason when it is not one."""
        match = self._device_topic.fullmatch(topic)
        if match is not None:
            site, device, kind = match.groups()
            return DeviceTopic(site=site, device=device, kind=MessageKind(kind))
        return self._explain(topic)

    def _explain(self, topic: str) -> DeviceTopic:
        """Say why a topic is not a device topic (or parse it, should the fast path ever miss one)."""
        if any(ch in topic for ch in "+#"):
            raise TopicError("bad_topic", f"topic {topic!r} contains a wildcard character")
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in topic):
            raise TopicError("bad_topic", f"topic {topic!r} contains a control character")
        prefix = self.prefix + "/"
        if not topic.startswith(prefix):
            raise TopicError("bad_topic", f"topic {topic!r} is outside {prefix}")
        levels = topic[len(prefix) :].split("/")
        if len(levels) != 3:
            raise TopicError("bad_topic", f"topic {topic!r} must be {prefix}<site>/<device>/<message>")
        site, device, kind = levels
        if not is_valid_id(site):
            raise TopicError("bad_topic", f"site id {site!r} in topic is invalid")
        if not is_valid_id(device):
            raise TopicError("bad_topic", f"device id {device!r} in topic is invalid")
        try:
            message_kind = MessageKind(kind)
        except ValueError:
            raise TopicError("bad_topic", f"unknown message kind {kind!r} in topic") from None
        return DeviceTopic(site=site, device=device, kind=message_kind)
