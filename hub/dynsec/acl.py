"""ACLs, names and the roles cityhub asks the dynamic security plugin for.

The plugin's ACL types and their matching (mosquitto 2.0, plugins/dynamic-security/README.md and acl.c):

* ``publishClientSend`` / ``publishClientReceive``: the topic of a PUBLISH, matched against the ACL's
  topic filter (``+`` and ``#`` work as in a subscription).
* ``subscribePattern``: a SUBSCRIBE filter is allowed if it is *within* the ACL's filter, so
  ``a/+/response`` allows ``a/dev1/response`` and ``a/+/response`` itself. ``subscribeLiteral``
  compares strings only.

Every name and topic level we put into an ACL is validated here first: an id holding ``+``, ``#`` or
``/`` would widen the grant to other devices' topics.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cityhub.contract.registration import KEY_PATTERN, REGISTRATION_LEVEL, is_valid_key
from cityhub.contract.topics import CONTRACT_VERSION, ID_PATTERN, is_valid_id, validate_root

#: Broker usernames and role names we create: ids joined by ``:`` (``dev:{site}:{device}``), never a
#: wildcard, ``/``, space or control character.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"
_NAME_RE = re.compile(NAME_PATTERN)
#: Passwords we set: printable ASCII without spaces, long enough not to be guessed.
PASSWORD_PATTERN = r"^[!-~]{16,256}$"  # noqa: S105 (a pattern, not a password)
_PASSWORD_RE = re.compile(PASSWORD_PATTERN)


class AclType(StrEnum):
    """The ACL types of a role."""

    PUBLISH_SEND = "publishClientSend"
    PUBLISH_RECEIVE = "publishClientReceive"
    SUBSCRIBE_LITERAL = "subscribeLiteral"
    SUBSCRIBE_PATTERN = "subscribePattern"
    UNSUBSCRIBE_LITERAL = "unsubscribeLiteral"
    UNSUBSCRIBE_PATTERN = "unsubscribePattern"


class DefaultAclType(StrEnum):
    """What ``setDefaultACLAccess`` governs: access when no ACL of the client's roles matches."""

    PUBLISH_SEND = "publishClientSend"
    PUBLISH_RECEIVE = "publishClientReceive"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"


@dataclass(frozen=True, slots=True, kw_only=True)
class Acl:
    """One ACL of a role."""

    acltype: AclType
    topic: str
    allow: bool = True
    priority: int = 0

    def to_json(self) -> dict[str, Any]:
        """The ACL as the plugin's commands spell it."""
        return {"acltype": str(self.acltype), "topic": self.topic, "allow": self.allow, "priority": self.priority}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Acl:
        """Parse an ACL of a ``getRole`` answer."""
        return cls(
            acltype=AclType(str(data["acltype"])),
            topic=str(data["topic"]),
            allow=bool(data.get("allow", False)),
            priority=int(data.get("priority", 0)),
        )


def validate_name(value: str, what: str = "username") -> str:
    """Return ``value`` if it is a valid username or role name to create, else raise ValueError."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise ValueError(
            f"invalid {what} {value!r}: must match {NAME_PATTERN} (no wildcards, '/', spaces or control characters)"
        )
    return value


def validate_password(value: str, what: str = "password") -> str:
    """Return ``value`` if it is an acceptable password to set, else raise ValueError (never shows it)."""
    if not isinstance(value, str) or not _PASSWORD_RE.fullmatch(value):
        raise ValueError(f"invalid {what}: must be 16 to 256 printable ASCII characters without spaces")
    return value


def _check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not is_valid_id(value):
        raise ValueError(f"invalid {what} {value!r}: must match {ID_PATTERN}")
    return value


def _check_key(value: str) -> str:
    if not isinstance(value, str) or not is_valid_key(value):
        raise ValueError(f"invalid provisioning key {value!r}: must match {KEY_PATTERN}")
    return value


def role_for(username: str) -> str:
    """The name of the role that holds the ACLs of one client we manage."""
    return f"role:{validate_name(username)}"


def hub_acls(root: str) -> tuple[Acl, ...]:
    """The hub reads every v1 topic and writes its own topics and registration answers.

    Mosquitto 2.0.11 checks a shared subscription's filter with its ``$share/{group}/`` prefix, so the
    hub's shared form (docs/mqtt-contract.md, several hubs) needs an ACL of its own.
    """
    base = f"{validate_root(root)}/{CONTRACT_VERSION}"
    return (
        Acl(acltype=AclType.SUBSCRIBE_PATTERN, topic=f"{base}/#"),
        Acl(acltype=AclType.SUBSCRIBE_PATTERN, topic=f"$share/+/{base}/#"),
        Acl(acltype=AclType.PUBLISH_RECEIVE, topic=f"{base}/#"),
        Acl(acltype=AclType.UNSUBSCRIBE_PATTERN, topic=f"{base}/#"),
        Acl(acltype=AclType.UNSUBSCRIBE_PATTERN, topic=f"$share/+/{base}/#"),
        Acl(acltype=AclType.PUBLISH_SEND, topic=f"{base}/_hub/#"),
        Acl(acltype=AclType.PUBLISH_SEND, topic=f"{base}/{REGISTRATION_LEVEL}/+/+/+/response"),
    )


def provisioning_acls(root: str, site: str, key: str) -> tuple[Acl, ...]:
    """A provisioning key sends requests and reads answers under its own key, nothing else."""
    base = f"{validate_root(root)}/{CONTRACT_VERSION}/{REGISTRATION_LEVEL}/{_check_id(site, 'site')}/{_check_key(key)}"
    return (
        Acl(acltype=AclType.PUBLISH_SEND, topic=f"{base}/+/request"),
        Acl(acltype=AclType.SUBSCRIBE_PATTERN, topic=f"{base}/+/response"),
        Acl(acltype=AclType.PUBLISH_RECEIVE, topic=f"{base}/+/response"),
    )


def device_acls(root: str, devices: Iterable[tuple[str, str]]) -> tuple[Acl, ...]:
    """Publish on ``{root}/v1/{site}/{device}/+`` for each (site, device), and nothing else.

    One level (``+``), not ``#``: the contract's message kinds are exactly one level below the device
    (docs/mqtt-contract.md), so nothing deeper is ever valid.
    """
    base = f"{validate_root(root)}/{CONTRACT_VERSION}"
    acls: dict[str, Acl] = {}
    for site, device in devices:
        topic = f"{base}/{_check_id(site, 'site')}/{_check_id(device, 'device')}/+"
        acls.setdefault(topic, Acl(acltype=AclType.PUBLISH_SEND, topic=topic))
    if not acls:
        raise ValueError("a device grant needs at least one (site, device)")
    return tuple(acls.values())


def same_acls(a: Sequence[Acl], b: Sequence[Acl]) -> bool:
    """Whether two ACL lists grant the same (order does not matter to the plugin's lookups)."""
    return set(a) == set(b)
