"""Broker access control through Mosquitto's dynamic security plugin (see docs/broker.md)."""

from hub.dynsec.access import DEFAULT_ACCESS, HUB_ROLE, DynSecAccess
from hub.dynsec.acl import Acl, AclType, DefaultAclType, role_for, validate_name, validate_password
from hub.dynsec.client import CONTROL_TOPIC, RESPONSE_TOPIC, ClientInfo, DynSecClient, RoleInfo
from hub.dynsec.errors import (
    AlreadyExists,
    CommandFailed,
    DynSecError,
    DynSecTimeout,
    DynSecUnavailable,
    NotFound,
)

__all__ = [
    "CONTROL_TOPIC",
    "DEFAULT_ACCESS",
    "HUB_ROLE",
    "RESPONSE_TOPIC",
    "Acl",
    "AclType",
    "AlreadyExists",
    "ClientInfo",
    "CommandFailed",
    "DefaultAclType",
    "DynSecAccess",
    "DynSecClient",
    "DynSecError",
    "DynSecTimeout",
    "DynSecUnavailable",
    "NotFound",
    "RoleInfo",
    "role_for",
    "validate_name",
    "validate_password",
]
