"""An async admin client for Mosquitto's dynamic security plugin (``$CONTROL/dynamic-security/v1``).

Commands are JSON documents ``{"commands": [{"command": ..., "correlationData": ...}]}`` published on
``$CONTROL/dynamic-security/v1``; the plugin answers every command of a document in one message on
``$CONTROL/dynamic-security/v1/response`` (https://mosquitto.org/documentation/dynamic-security/ and
plugins/dynamic-security/README.md of mosquitto 2.0). Every admin connected at the time receives every
answer, so answers are matched to our commands by ``correlationData`` and the rest is ignored.

One admin session runs one command document at a time (an ``asyncio.Lock``): the control topic is for
rare administrative changes, not for throughput, and serialising keeps the matching trivial.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cityhub.mqtt import BrokerAddress, InboundMessage, MqttError, MqttSession, SessionOptions
from hub.dynsec.acl import Acl, DefaultAclType, validate_name
from hub.dynsec.errors import AlreadyExists, DynSecTimeout, DynSecUnavailable, NotFound, command_failed

log = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientInfo:
    """A broker client (login) as ``getClient`` describes it."""

    username: str
    disabled: bool = False
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    textname: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleInfo:
    """A role as ``getRole`` describes it."""

    rolename: str
    acls: tuple[Acl, ...] = ()


class DynSecClient:
    """An admin session on the dynamic security plugin; use it as an async context manager."""

    def __init__(self, address: BrokerAddress, *, timeout_s: float = 10.0, client_id: str | None = None) -> None:
        if not address.username or not address.password:
            raise ValueError("the dynamic security admin needs a username and a password")
        self.address = address
        self.timeout_s = timeout_s
        options = SessionOptions(
            client_id=client_id or f"cityhub-dynsec-{uuid.uuid4().hex[:12]}",
            connect_timeout_s=timeout_s,
            subscriptions=((RESPONSE_TOPIC, 1),),
        )
        self._session = MqttSession(address, options)
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> DynSecClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Log in as the admin and subscribe to the answers; DynSecUnavailable if that fails."""
        try:
            await self._session.connect()
        except MqttError as exc:
            raise DynSecUnavailable(f"dynamic security admin login failed: {exc}") from exc

    async def close(self) -> None:
        """Disconnect."""
        await self._session.disconnect(timeout_s=self.timeout_s)

    # -- transport ----------------------------------------------------------------------------------

    async def execute(
        self, commands: Sequence[Mapping[str, Any]], *, timeout_s: float | None = None
    ) -> list[dict[str, Any]]:
        """Send commands in one document; return their answers in order (each may hold an ``error``)."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        tagged = [{**c, "correlationData": uuid.uuid4().hex} for c in commands]
        wanted = {c["correlationData"]: i for i, c in enumerate(tagged)}
        answers: list[dict[str, Any] | None] = [None] * len(tagged)
        async with self._lock:
            deadline = time.monotonic() + timeout
            try:
                payload = json.dumps({"commands": tagged}).encode()
                await self._session.publish(CONTROL_TOPIC, payload, qos=1, timeout_s=timeout)
            except MqttError as exc:
                raise DynSecUnavailable(f"could not send dynamic security commands: {exc}") from exc
            while any(a is None for a in answers):
                left = deadline - time.monotonic()
                if left <= 0:
                    names = ", ".join(str(c["command"]) for c, a in zip(tagged, answers, strict=True) if a is None)
                    raise DynSecTimeout(f"no answer from the dynamic security plugin within {timeout:g} s ({names})")
                for message in await self._session.receive(100, left):
                    for answer in _answers(message):
                        index = wanted.get(str(answer.get("correlationData")))
                        if index is not None:
                            answers[index] = answer
        return [a for a in answers if a is not None]

    async def command(self, name: str, *, timeout_s: float | None = None, **fields: Any) -> dict[str, Any]:
        """Run one command; return its ``data`` ({} if none), or raise the typed CommandFailed."""
        (answer,) = await self.execute([{"command": name, **fields}], timeout_s=timeout_s)
        error = answer.get("error")
        if error:
            raise command_failed(name, str(error))
        data = answer.get("data")
        return data if isinstance(data, dict) else {}

    # -- clients ------------------------------------------------------------------------------------

    async def create_client(self, username: str, password: str, roles: Sequence[str] = ()) -> None:
        """Create a client (login) with these roles; AlreadyExists if the username is taken."""
        await self.command("createClient", username=validate_name(username), password=password, roles=_role_list(roles))

    async def modify_client(
        self, username: str, *, password: str | None = None, roles: Sequence[str] | None = None
    ) -> None:
        """Replace the password and/or the roles of a client; the broker drops its connections."""
        fields: dict[str, Any] = {}
        if password is not None:
            fields["password"] = password
        if roles is not None:
            fields["roles"] = _role_list(roles)
        await self.command("modifyClient", username=username, **fields)

    async def delete_client(self, username: str) -> None:
        """Delete a client; the broker drops its connections."""
        await self.command("deleteClient", username=username)

    async def enable_client(self, username: str) -> None:
        """Let a disabled client log in again."""
        await self.command("enableClient", username=username)

    async def disable_client(self, username: str) -> None:
        """Refuse a client's logins from now on and drop its current connections."""
        await self.command("disableClient", username=username)

    async def set_client_password(self, username: str, password: str) -> None:
        """Set a client's password; the broker drops its connections."""
        await self.command("setClientPassword", username=username, password=password)

    async def add_client_role(self, username: str, rolename: str, priority: int = 0) -> None:
        """Give a client a role."""
        await self.command("addClientRole", username=username, rolename=rolename, priority=priority)

    async def remove_client_role(self, username: str, rolename: str) -> None:
        """Take a role from a client."""
        await self.command("removeClientRole", username=username, rolename=rolename)

    async def get_client(self, username: str) -> ClientInfo:
        """Describe a client; NotFound if there is none."""
        data = await self.command("getClient", username=username)
        return _client_info(data.get("client", {}))

    async def list_clients(self) -> list[str]:
        """The usernames of every client."""
        data = await self.command("listClients", verbose=False, count=-1, offset=0)
        return [str(name) for name in data.get("clients", [])]

    # -- roles --------------------------------------------------------------------------------------

    async def create_role(self, rolename: str, acls: Sequence[Acl] = ()) -> None:
        """Create a role with these ACLs; AlreadyExists if the name is taken."""
        await self.command("createRole", rolename=validate_name(rolename, "role name"), acls=_acl_list(acls))

    async def modify_role(self, rolename: str, acls: Sequence[Acl]) -> None:
        """Replace all ACLs of a role (mosquitto 2.0.11 does not drop the role's clients for this)."""
        await self.command("modifyRole", rolename=rolename, acls=_acl_list(acls))

    async def delete_role(self, rolename: str) -> None:
        """Delete a role; the broker drops the connections of its clients."""
        await self.command("deleteRole", rolename=rolename)

    async def get_role(self, rolename: str) -> RoleInfo:
        """Describe a role; NotFound if there is none."""
        data = await self.command("getRole", rolename=rolename)
        role = data.get("role", {})
        acls = tuple(Acl.from_json(a) for a in role.get("acls", []) if isinstance(a, dict))
        return RoleInfo(rolename=str(role.get("rolename", rolename)), acls=acls)

    async def add_role_acl(self, rolename: str, acl: Acl) -> None:
        """Add one ACL to a role; the broker drops the connections of the role's clients."""
        await self.command("addRoleACL", rolename=rolename, **acl.to_json())

    async def remove_role_acl(self, rolename: str, acl: Acl) -> None:
        """Remove one ACL from a role; the broker drops the connections of the role's clients."""
        await self.command("removeRoleACL", rolename=rolename, acltype=str(acl.acltype), topic=acl.topic)

    async def list_roles(self) -> list[str]:
        """The names of every role."""
        data = await self.command("listRoles", verbose=False, count=-1, offset=0)
        return [str(name) for name in data.get("roles", [])]

    # -- defaults -----------------------------------------------------------------------------------

    async def set_default_acl_access(self, access: Mapping[DefaultAclType, bool]) -> None:
        """Set what clients may do where none of their ACLs matches."""
        acls = [{"acltype": str(t), "allow": allow} for t, allow in access.items()]
        await self.command("setDefaultACLAccess", acls=acls)

    async def get_default_acl_access(self) -> dict[DefaultAclType, bool]:
        """What clients may do where none of their ACLs matches."""
        data = await self.command("getDefaultACLAccess")
        return {DefaultAclType(a["acltype"]): bool(a["allow"]) for a in data.get("acls", [])}

    # -- idempotent helpers ---------------------------------------------------------------------------

    async def ensure_role(self, rolename: str, acls: Sequence[Acl]) -> bool:
        """Make a role hold exactly these ACLs; True if anything changed."""
        try:
            await self.create_role(rolename, acls)
            return True
        except AlreadyExists:
            pass
        current = await self.get_role(rolename)
        if set(current.acls) == set(acls):
            return False
        await self.modify_role(rolename, acls)
        return True

    async def ensure_client(self, username: str, password: str, roles: Sequence[str]) -> bool:
        """Create a client, or set the password and roles of an existing one; True if it was created.

        An existing client's connections are dropped (the plugin enforces the change that way).
        """
        try:
            await self.create_client(username, password, roles)
            return True
        except AlreadyExists:
            await self.modify_client(username, password=password, roles=roles)
            return False

    async def delete_client_if_present(self, username: str) -> bool:
        """Delete a client; False if there was none."""
        try:
            await self.delete_client(username)
        except NotFound:
            return False
        return True

    async def delete_role_if_present(self, rolename: str) -> bool:
        """Delete a role; False if there was none."""
        try:
            await self.delete_role(rolename)
        except NotFound:
            return False
        return True


def _answers(message: InboundMessage) -> list[dict[str, Any]]:
    if message.topic != RESPONSE_TOPIC:
        return []
    try:
        decoded = json.loads(message.payload)
    except (UnicodeDecodeError, ValueError):
        log.warning("ignoring an undecodable message on %s", RESPONSE_TOPIC)
        return []
    responses = decoded.get("responses") if isinstance(decoded, dict) else None
    return [r for r in responses if isinstance(r, dict)] if isinstance(responses, list) else []


def _role_list(roles: Sequence[str]) -> list[dict[str, Any]]:
    return [{"rolename": name, "priority": 0} for name in roles]


def _acl_list(acls: Sequence[Acl]) -> list[dict[str, Any]]:
    return [acl.to_json() for acl in acls]


def _client_info(data: Mapping[str, Any]) -> ClientInfo:
    return ClientInfo(
        username=str(data.get("username", "")),
        disabled=bool(data.get("disabled", False)),
        roles=tuple(str(r.get("rolename")) for r in data.get("roles", []) if isinstance(r, dict)),
        groups=tuple(str(g.get("groupname")) for g in data.get("groups", []) if isinstance(g, dict)),
        textname=data.get("textname"),
    )
