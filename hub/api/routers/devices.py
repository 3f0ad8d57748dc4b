"""The hub's known devices (``devices.read``), each caller seeing their team's only: the scoping example.

Single-device routes answer 404 for a device outside the caller's team, as for one that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from hub.api.context import DeviceInfo, DeviceSource, HubApi
from hub.api.errors import ApiError
from hub.api.security import ApiDep, Permission, Principal, ensure_in_scope, require

router = APIRouter(prefix="/devices", tags=["devices"])

DevicesReader = Annotated[Principal, Depends(require(Permission.DEVICES_READ))]


def _source(api: HubApi) -> DeviceSource:
    if api.devices is None:
        raise ApiError(503, "unavailable", "the device list is not available on this hub")
    return api.devices


def _view(device: DeviceInfo) -> dict[str, Any]:
    return {
        "site": device.site,
        "device": device.device,
        "kind": device.kind,
        "state": device.state,
        "since_ms": device.since_ms,
    }


@router.get("", summary="Devices of the caller's team")
async def list_devices(
    principal: DevicesReader,
    api: ApiDep,
    site: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
) -> list[dict[str, Any]]:
    """Every device in the caller's scope, optionally of one site or kind, by site and id."""
    devices = principal.scope.filter(_source(api).all())
    chosen = [d for d in devices if (site is None or d.site == site) and (kind is None or d.kind == kind)]
    return [_view(d) for d in sorted(chosen, key=lambda d: (d.site, d.device))]


@router.get("/{site}/{device}", summary="One device")
async def get_device(site: str, device: str, principal: DevicesReader, api: ApiDep) -> dict[str, Any]:
    """The device; 404 if unknown or outside the caller's team."""
    found = next((d for d in _source(api).all() if d.site == site and d.device == device), None)
    if found is None:
        raise ApiError(404, "not_found", "no such device")
    ensure_in_scope(principal, found.site, found.kind)
    return _view(found)
