"""Device registrations: the requests waiting for an operator, the decisions, revocation.

Each operator sees and decides only on the devices of their team's sites and kinds; a registration
outside the caller's team answers 404, as one that does not exist. Decisions are recorded in the audit
log with the operator and the address they came from (see hub/registry/registrar.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from cityhub.contract.registration import RegistrationState
from hub.api.errors import ApiError
from hub.api.pagination import Limit, Offset, page
from hub.api.security import ApiDep, Permission, Principal, ensure_in_scope, hub_part, require
from hub.registry.registrar import Registrar, RegistryError
from hub.registry.store import Registration

router = APIRouter(tags=["registrations"])

Reader = Annotated[Principal, Depends(require(Permission.REGISTRATIONS_READ))]
Decider = Annotated[Principal, Depends(require(Permission.REGISTRATIONS_DECIDE))]
Revoker = Annotated[Principal, Depends(require(Permission.DEVICES_REVOKE))]
Reason = Annotated[str | None, Body(embed=True, max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]


get_registrar = hub_part(
    "cityhub_registrar", Registrar, "registration_disabled", "registration is not enabled on this hub"
)
RegistrarDep = Annotated[Registrar, Depends(get_registrar)]


async def _entry(registrar: Registrar, principal: Principal, site: str, device: str) -> Registration:
    entry = await registrar.store.get(site, device)
    if entry is None:
        raise ApiError(404, "not_found", "no such registration")
    ensure_in_scope(principal, entry.site, entry.kind)
    return entry


@router.get("/registrations", summary="Registrations of the caller's team")
async def list_registrations(
    principal: Reader,
    registrar: RegistrarDep,
    waiting: Annotated[bool, Query(description="only requests waiting for a decision")] = True,
    site: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[RegistrationState | None, Query()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """A page of registrations in the caller's scope (``{items, next_offset}``), oldest request first."""
    entries = await registrar.store.entries(awaiting_decision=waiting)
    # Scope is a per-team rule on site and kind, checked here; a registry holds thousands, not millions.
    chosen = [
        e.as_dict()
        for e in entries
        if principal.scope.allows(e.site, e.kind)
        and (site is None or e.site == site)
        and (state is None or e.state == state)
    ]
    return page(chosen, limit, offset)


@router.get("/registrations/{site}/{device}", summary="One registration and its history")
async def get_registration(site: str, device: str, principal: Reader, registrar: RegistrarDep) -> dict[str, Any]:
    """The registration with every change (who, what, when)."""
    entry = await _entry(registrar, principal, site, device)
    history = await registrar.store.history(site, device)
    changes = [{"ts_ms": h.ts_ms, "action": h.action, "actor": h.actor, "detail": h.detail} for h in history]
    return {**entry.as_dict(), "history": changes}


async def _decide(
    decision: Callable[..., Awaitable[Registration]],
    site: str,
    device: str,
    principal: Principal,
    registrar: Registrar,
    source: str,
    **reason: str | None,
) -> dict[str, Any]:
    """A decision on a registration in the caller's scope, by the caller, from their address; 409 if moot."""
    await _entry(registrar, principal, site, device)
    try:
        entry = await decision(site, device, actor=principal.username, source=source, **reason)
    except RegistryError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return entry.as_dict()


@router.post("/registrations/{site}/{device}/approve", summary="Approve a waiting request")
async def approve(
    site: str, device: str, principal: Decider, registrar: RegistrarDep, api: ApiDep, request: Request
) -> dict[str, Any]:
    """Create the device's broker login with exactly its topics; the device is told."""
    return await _decide(registrar.approve, site, device, principal, registrar, api.client_ip(request))


@router.post("/registrations/{site}/{device}/reject", summary="Reject a waiting request")
async def reject(
    site: str,
    device: str,
    principal: Decider,
    registrar: RegistrarDep,
    api: ApiDep,
    request: Request,
    reason: Reason = None,
) -> dict[str, Any]:
    """Refuse the request; the device is told, with the reason if given."""
    source = api.client_ip(request)
    return await _decide(registrar.reject, site, device, principal, registrar, source, reason=reason)


@router.post("/registrations/{site}/{device}/revoke", summary="Revoke an approved device")
async def revoke(
    site: str,
    device: str,
    principal: Revoker,
    registrar: RegistrarDep,
    api: ApiDep,
    request: Request,
    reason: Reason = None,
) -> dict[str, Any]:
    """Disable the device's login (its connection drops within seconds); nothing more of it is stored."""
    source = api.client_ip(request)
    return await _decide(registrar.revoke, site, device, principal, registrar, source, reason=reason)
