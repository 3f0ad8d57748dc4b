"""Sites (``devices.read``): each site of the caller's team with its devices counted by kind and state."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from hub.api.context import HubApi
from hub.api.errors import ApiError
from hub.api.pagination import Limit, Offset, Page, page
from hub.api.security import ApiDep, Permission, Principal, require
from hub.devices import DeviceInfo

router = APIRouter(prefix="/sites", tags=["sites"])

DevicesReader = Annotated[Principal, Depends(require(Permission.DEVICES_READ))]


class SiteView(BaseModel):
    """A site: how many devices the caller sees there, by state, and by kind then state."""

    site: str
    devices: int
    states: dict[str, int]
    kinds: dict[str, dict[str, int]]


def _sites(devices: Sequence[DeviceInfo]) -> list[dict[str, Any]]:
    by_site: defaultdict[str, list[DeviceInfo]] = defaultdict(list)
    for device in devices:
        by_site[device.site].append(device)
    views = []
    for site in sorted(by_site):
        here = by_site[site]
        kinds: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for device in here:
            kinds[device.kind][device.state] += 1
        views.append(
            {
                "site": site,
                "devices": len(here),
                "states": dict(sorted(Counter(d.state for d in here).items())),
                "kinds": {kind: dict(sorted(kinds[kind].items())) for kind in sorted(kinds)},
            }
        )
    return views


def _devices(api: HubApi) -> Sequence[DeviceInfo]:
    if api.devices is None:
        raise ApiError(503, "unavailable", "the device list is not available on this hub")
    return api.devices.all()


@router.get("", summary="Sites of the caller's team, with device counts", response_model=Page[SiteView])
async def list_sites(
    principal: DevicesReader,
    api: ApiDep,
    kind: Annotated[str | None, Query(max_length=32, description="count devices of this kind only")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """A page of the sites where the caller sees at least one device, by site id."""
    devices = [d for d in principal.scope.filter(_devices(api)) if kind is None or d.kind == kind]
    return page(_sites(devices), limit, offset)
