"""FastAPI dependencies for authentication and authorisation, and the authorisation model they apply.

In a route::

    DevicesReader = Annotated[Principal, Depends(require(Permission.DEVICES_READ))]

    @router.get("/devices")
    async def list_devices(principal: DevicesReader) -> ...:
        return principal.scope.filter(source.all())

or ``dependencies=[Depends(require(Permission.X))]`` when the caller is not needed. A request without a
live token gets 401 (``WWW-Authenticate: Bearer``), a role without the permission 403 (recorded in the
audit log as ``access.denied``), and a device outside the caller's team 404 (:func:`ensure_in_scope`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from hub.api.context import HubApi
from hub.api.errors import ApiError, forbidden, not_authenticated, not_found
from hub.api.roles import PERMISSIONS, Permission, Principal, Role, Scope
from hub.audit import AuditEntry, Outcome

__all__ = [
    "PERMISSIONS",
    "ApiDep",
    "AuditDep",
    "BearerToken",
    "CurrentUser",
    "Permission",
    "Principal",
    "RequestAudit",
    "Role",
    "Scope",
    "current_user",
    "ensure_in_scope",
    "get_api",
    "hub_part",
    "require",
]

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 (a path)
#: Declares the OAuth2 password flow in the OpenAPI document; missing tokens are refused by current_user.
bearer_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def get_api(request: Request) -> HubApi:
    """The hub's API state (hub.api.app.build_api puts it on the application)."""
    api: HubApi = request.app.state.cityhub_api
    return api


ApiDep = Annotated[HubApi, Depends(get_api)]

T = TypeVar("T")


def hub_part(attribute: str, kind: type[T], code: str, message: str) -> Callable[[Request], T]:
    """A dependency giving the part of the hub the app carries as ``app.state.<attribute>`` (its alerting,
    registrar, reports...); 503 ``code`` on a hub that does not run that part."""

    def get(request: Request) -> T:
        part = getattr(request.app.state, attribute, None)
        if not isinstance(part, kind):
            raise ApiError(503, code, message)
        return part

    return get


BearerToken = Annotated[str | None, Depends(bearer_scheme)]


async def current_user(api: ApiDep, token: BearerToken) -> Principal:
    """The caller, from a live bearer token; 401 without one."""
    if not token:
        raise not_authenticated()
    user = await api.users.resolve_token(token)
    if user is None:
        raise not_authenticated("the token is invalid, expired or revoked", code="invalid_token")
    return api.principal(user)


CurrentUser = Annotated[Principal, Depends(current_user)]


def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency giving the caller if their role has ``permission``; 403 (audited) otherwise."""

    async def allowed(principal: CurrentUser, api: ApiDep, request: Request) -> Principal:
        if principal.can(permission):
            return principal
        await api.audit.record(
            "access.denied",
            actor=principal.username,
            target=f"{request.method} {request.url.path}",
            outcome=Outcome.DENIED,
            source=api.client_ip(request),
            detail={"permission": permission.value, "role": principal.role.value},
        )
        raise forbidden(f"the {principal.role.value} role lacks the {permission.value} permission")

    allowed.__name__ = f"require_{permission.name.lower()}"
    return allowed


def ensure_in_scope(principal: Principal, site: str, kind: str, what: str = "device") -> None:
    """404 when the device is outside the caller's team: for them it does not exist."""
    if not principal.scope.allows(site, kind):
        raise not_found(f"no such {what}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestAudit:
    """Records audit entries on behalf of the current caller, from the current client address."""

    api: HubApi
    principal: Principal
    source: str

    async def __call__(
        self,
        action: str,
        *,
        target: str | None = None,
        outcome: Outcome = Outcome.OK,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append ``action`` by the caller."""
        return await self.api.audit.record(
            action, actor=self.principal.username, target=target, outcome=outcome, source=self.source, detail=detail
        )


async def request_audit(api: ApiDep, principal: CurrentUser, request: Request) -> RequestAudit:
    """The audit recorder for this request."""
    return RequestAudit(api=api, principal=principal, source=api.client_ip(request))


AuditDep = Annotated[RequestAudit, Depends(request_audit)]
