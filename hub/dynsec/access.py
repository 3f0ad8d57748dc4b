"""What the hub asks of the broker's access control: provisioning keys, device logins, revocation.

Each login we manage has one role of its own (``role:{username}``) holding all its ACLs, so a grant is
replaced as a whole and a deletion leaves nothing behind. The plugin's default access, for a topic no
ACL of the client matches, is deny for everything but unsubscribing (``setup_defaults``): a login
without a role can do nothing at all. See docs/broker.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from cityhub.contract.registration import provisioning_username
from cityhub.contract.topics import validate_root
from hub.dynsec.acl import (
    Acl,
    DefaultAclType,
    device_acls,
    hub_acls,
    provisioning_acls,
    role_for,
    validate_name,
    validate_password,
)
from hub.dynsec.client import ClientInfo, DynSecClient
from hub.dynsec.errors import NotFound

log = logging.getLogger(__name__)

#: Default access when none of a client's ACLs matches. publishClientReceive defaults to *allow* in the
#: plugin (README, "Set default ACL access"); we deny it too, so a login reads only what a role grants.
DEFAULT_ACCESS: dict[DefaultAclType, bool] = {
    DefaultAclType.PUBLISH_SEND: False,
    DefaultAclType.PUBLISH_RECEIVE: False,
    DefaultAclType.SUBSCRIBE: False,
    DefaultAclType.UNSUBSCRIBE: True,
}
#: The hub's role is per topic root: deployments sharing a broker (or tests sharing one) keep their own ACLs.
HUB_ROLE = "cityhub-hub"


class DynSecAccess:
    """The hub's broker access control on top of a connected :class:`DynSecClient`."""

    def __init__(self, client: DynSecClient, root: str = "cityhub") -> None:
        self.client = client
        self.root = validate_root(root)

    @property
    def hub_role(self) -> str:
        """The role the hub's own login has: ``cityhub-hub`` for the root ``cityhub``, else suffixed with the root."""
        return HUB_ROLE if self.root == "cityhub" else f"{HUB_ROLE}:{self.root.replace('/', '.')}"

    async def setup_defaults(self) -> None:
        """Deny by default and create (or correct) the hub's role; safe to repeat at every start."""
        await self.client.set_default_acl_access(DEFAULT_ACCESS)
        if await self.client.ensure_role(self.hub_role, hub_acls(self.root)):
            log.info("dynamic security: role %s set for topic root %s", self.hub_role, self.root)

    async def ensure_hub_login(self, username: str, password: str) -> None:
        """Create the hub's login with the hub role; an existing one keeps its password and session."""
        validate_password(password)
        try:
            info = await self.client.get_client(validate_name(username))
        except NotFound:
            await self.client.create_client(username, password, [self.hub_role])
            return
        if self.hub_role not in info.roles:
            await self.client.add_client_role(username, self.hub_role)
        if info.disabled:
            await self.client.enable_client(username)

    async def ensure_provisioning_key(self, site: str, key: str, secret: str) -> str:
        """Create or update a site's provisioning login; return its username (``prov:{site}:{key}``)."""
        acls = provisioning_acls(self.root, site, key)
        username = validate_name(provisioning_username(site, key))
        validate_password(secret, "provisioning secret")
        await self._grant(username, secret, acls)
        return username

    async def remove_provisioning_key(self, site: str, key: str) -> None:
        """Delete a provisioning login and its role (its connections are dropped)."""
        provisioning_acls(self.root, site, key)  # validates site and key
        await self.delete(provisioning_username(site, key))

    async def grant(self, username: str, password: str, devices: Sequence[tuple[str, str]]) -> None:
        """Let ``username`` publish exactly the topics of these (site, device) pairs, and nothing else.

        Granting again replaces the password and the topics (a replaced device) and drops the old
        connection; a revoked login is enabled again.
        """
        acls = device_acls(self.root, devices)
        validate_name(username)
        validate_password(password)
        await self._grant(username, password, acls)

    async def _grant(self, username: str, password: str, acls: Sequence[Acl]) -> None:
        role = role_for(username)
        await self.client.ensure_role(role, acls)
        created = await self.client.ensure_client(username, password, [role])
        if not created:
            await self.client.enable_client(username)
        log.info("dynamic security: %s %s", "created" if created else "updated", username)

    async def revoke(self, username: str) -> None:
        """Refuse the login from now on and drop its connection (without its will); idempotent."""
        try:
            await self.client.disable_client(validate_name(username))
        except NotFound:
            log.info("dynamic security: %s to revoke does not exist", username)
            return
        log.info("dynamic security: revoked %s", username)

    async def enable(self, username: str) -> None:
        """Let a revoked login in again; NotFound if there is none."""
        await self.client.enable_client(validate_name(username))

    async def delete(self, username: str) -> None:
        """Delete a login and its role; idempotent."""
        await self.client.delete_client_if_present(validate_name(username))
        await self.client.delete_role_if_present(role_for(username))

    async def get(self, username: str) -> ClientInfo:
        """Describe a login; NotFound if there is none."""
        return await self.client.get_client(validate_name(username))

    async def list_clients(self) -> list[str]:
        """Every login the broker knows (the admin's too)."""
        return await self.client.list_clients()
