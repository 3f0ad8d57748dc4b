"""What the API's request handlers share: settings, users and tokens, the audit log, the login limiter."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from argon2 import PasswordHasher
from pydantic import SecretStr
from starlette.requests import Request

from hub.api.ratelimit import LoginLimiter, LoginLimits
from hub.api.roles import Principal, Role, scope_for
from hub.api.settings import ApiSettings, weakness
from hub.api.users import User, UserStore
from hub.audit import AuditLog
from hub.devices import DeviceSource  # re-exported for the routers
from hub.lastvalues import DeviceValues
from hub.storage.history import HistoryReader

log = logging.getLogger(__name__)


class ValueSource(Protocol):
    """The devices' latest readings (hub.lastvalues.LastValues satisfies it)."""

    def get(self, site: str, device: str) -> DeviceValues | None: ...


class HubApi:
    """The API's state, one per hub; ``open()`` before serving, ``aclose()`` after."""

    def __init__(
        self,
        settings: ApiSettings,
        *,
        users: UserStore,
        audit: AuditLog,
        devices: DeviceSource | None = None,
        values: ValueSource | None = None,
        history: HistoryReader | None = None,
        limiter: LoginLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.users = users
        self.audit = audit
        self.devices = devices
        self.values = values
        self.history = history
        self.limiter = limiter or LoginLimiter(
            LoginLimits(
                window_s=settings.login_window_s,
                per_user=settings.login_max_failures_per_user,
                per_ip=settings.login_max_failures_per_ip,
            )
        )

    @classmethod
    def in_dir(
        cls,
        settings: ApiSettings,
        data_dir: Path,
        *,
        devices: DeviceSource | None = None,
        values: ValueSource | None = None,
        history: HistoryReader | None = None,
        hasher: PasswordHasher | None = None,
    ) -> HubApi:
        """The API with ``users.sqlite`` and ``audit.sqlite`` in ``data_dir``."""
        users = UserStore(data_dir / "users.sqlite", hasher=hasher)
        audit = AuditLog(data_dir / "audit.sqlite")
        return cls(settings, users=users, audit=audit, devices=devices, values=values, history=history)

    async def open(self, other_secrets: Mapping[str, SecretStr | str | None] | None = None) -> None:
        """Refuse weak secrets (production), the API's and ``other_secrets`` (the hub's, by setting name);
        open the files; create the first administrator if there is none."""
        self.settings.check_secrets(other_secrets)
        await self.audit.open()
        await self.users.open()
        await self._bootstrap()

    async def aclose(self) -> None:
        """Close the files and the history reader's connections."""
        await self.users.aclose()
        await self.audit.aclose()
        if self.history is not None:
            await self.history.aclose()

    async def _bootstrap(self) -> None:
        if await self.users.count():
            return
        password = self.settings.bootstrap_admin_password
        if password is None:
            log.warning("the API has no user: set CITYHUB_API_BOOTSTRAP_ADMIN_PASSWORD to create the first admin")
            return
        name = self.settings.bootstrap_admin_username
        await self.users.create(name, password.get_secret_value(), Role.ADMIN, None)
        detail = {"role": Role.ADMIN.value, "bootstrap": True}
        await self.audit.record("user.created", actor="system", target=name, detail=detail)
        log.info("created the first administrator %r; remove the bootstrap password from the configuration", name)

    def principal(self, user: User) -> Principal:
        """The caller a stored user is, with the scope of their team as configured now."""
        return Principal(
            username=user.username,
            role=user.role,
            team=user.team,
            scope=scope_for(user.role, user.team, self.settings.teams),
        )

    def password_problem(self, password: str, username: str) -> str | None:
        """Why the password policy refuses ``password``, or None."""
        return weakness(password, min_length=self.settings.password_min_length, username=username)

    def client_ip(self, request: Request) -> str:
        """The client's address; X-Forwarded-For counts only when the peer is a trusted proxy."""
        peer = request.client.host if request.client else "unknown"
        if not self.settings.trusted_proxies or not self._trusted(peer):
            return peer
        # Walk from the right: each trusted hop vouches for the one before it; the first untrusted is the client.
        hops = [hop.strip() for hop in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return hops[0] if hops else peer

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.settings.trusted_proxies)
