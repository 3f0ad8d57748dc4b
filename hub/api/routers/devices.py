"""The hub's known devices (``devices.read``): the list, one device, its last values and its history.

Each caller sees their team's devices only; single-device routes answer 404 for a device outside the
caller's team, as for one that does not exist.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from cityhub.contract.topics import ID_PATTERN
from hub.api.context import HubApi
from hub.api.errors import ApiError, not_found
from hub.api.pagination import Limit, Offset, Page, page
from hub.api.security import ApiDep, Permission, Principal, ensure_in_scope, require
from hub.devices import DeviceInfo, DeviceSource
from hub.errors import StoreUnavailable
from hub.storage.history import MAX_BUCKETS, HistoryError, plan
from rules.durations import seconds

router = APIRouter(prefix="/devices", tags=["devices"])

DevicesReader = Annotated[Principal, Depends(require(Permission.DEVICES_READ))]
SiteId = Annotated[str, Path(pattern=ID_PATTERN, description="site id")]
DeviceId = Annotated[str, Path(pattern=ID_PATTERN, description="device id")]
#: The contract's metric names (cityhub.contract.payloads.MetricName).
POINT_PATTERN = r"^[a-z][a-z0-9_]{0,63}(\.[a-z0-9_]{1,64}){0,7}$"
_INSTANT = "ISO 8601 date-time, UTC if no offset"


class DeviceView(BaseModel):
    """A device as the registry knows it."""

    site: str
    device: str
    kind: str
    state: str
    since_ms: int


class ValueView(BaseModel):
    """The latest reading of one point."""

    point: str
    value: float | bool | str | None
    unit: str | None
    quality: str
    ts_ms: int


class DeviceValuesView(BaseModel):
    """A device's latest reading of each point, by point name."""

    site: str
    device: str
    kind: str
    values: list[ValueView]


class BucketView(BaseModel):
    """One step: ``ts_ms`` is its start."""

    ts_ms: int
    mean: float
    min: float
    max: float
    count: int


class HistoryView(BaseModel):
    """A point's buckets with values, oldest first (steps without a value are left out)."""

    site: str
    device: str
    point: str
    from_ms: int
    to_ms: int
    step_ms: int
    points: list[BucketView]


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


def _kind_of(api: HubApi, principal: Principal, site: str, device: str) -> str:
    """The device's kind, from the registry or else its last values; 404 if unknown or outside the team."""
    found = next((d for d in _source(api).all() if d.site == site and d.device == device), None)
    kind = found.kind if found else None
    if kind is None and api.values is not None:
        seen = api.values.get(site, device)
        kind = seen.kind if seen else None
    if kind is None:
        raise not_found("no such device")
    ensure_in_scope(principal, site, kind)
    return kind


@router.get("", summary="Devices of the caller's team", response_model=Page[DeviceView])
async def list_devices(
    principal: DevicesReader,
    api: ApiDep,
    site: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    state: Annotated[str | None, Query(max_length=16, description="online, offline, unknown")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """A page of the devices in the caller's scope, optionally of one site, kind or state, by site and id."""
    devices = principal.scope.filter(_source(api).all())
    chosen = [
        d
        for d in devices
        if (site is None or d.site == site) and (kind is None or d.kind == kind) and (state is None or d.state == state)
    ]
    ordered = sorted(chosen, key=lambda d: (d.site, d.device))
    return page([_view(d) for d in ordered], limit, offset)


@router.get("/{site}/{device}", summary="One device", response_model=DeviceView)
async def get_device(site: SiteId, device: DeviceId, principal: DevicesReader, api: ApiDep) -> dict[str, Any]:
    """The device; 404 if unknown or outside the caller's team."""
    found = next((d for d in _source(api).all() if d.site == site and d.device == device), None)
    if found is None:
        raise not_found("no such device")
    ensure_in_scope(principal, found.site, found.kind)
    return _view(found)


@router.get("/{site}/{device}/values", summary="The device's last value of each point", response_model=DeviceValuesView)
async def get_values(site: SiteId, device: DeviceId, principal: DevicesReader, api: ApiDep) -> dict[str, Any]:
    """Latest readings received since the hub started, by point; empty for a device that sent none yet."""
    if api.values is None:
        raise ApiError(503, "unavailable", "last values are not available on this hub")
    kind = _kind_of(api, principal, site, device)
    seen = api.values.get(site, device)
    values = [v.as_dict() for v in seen.values] if seen else []
    return {"site": site, "device": device, "kind": seen.kind if seen else kind, "values": values}


def _ms(moment: datetime, name: str) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return math.floor(moment.timestamp() * 1000)
    except (OverflowError, ValueError, OSError):
        raise ApiError(422, "invalid_request", f"{name}: out of range") from None


def _step_ms(step: str | None) -> int | None:
    if step is None:
        return None
    try:
        value = float(seconds(step))  # type: ignore[arg-type]
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"step: {exc}") from None
    return round(value * 1000)


@router.get(
    "/{site}/{device}/history",
    summary="A point's history: mean, min, max and count per step",
    response_model=HistoryView,
)
async def get_history(
    site: SiteId,
    device: DeviceId,
    principal: DevicesReader,
    api: ApiDep,
    point: Annotated[str, Query(max_length=256, pattern=POINT_PATTERN, description="e.g. battery.charge")],
    start: Annotated[datetime | None, Query(alias="from", description=f"{_INSTANT}; default: to - 24 h")] = None,
    end: Annotated[datetime | None, Query(alias="to", description=f"{_INSTANT} (excluded); default: now")] = None,
    step: Annotated[
        str | None,
        Query(max_length=16, description=f"e.g. 60s, 5m, 1h; at least 1 s, at most {MAX_BUCKETS} buckets"),
    ] = None,
) -> dict[str, Any]:
    """Buckets from ``from``, each ``step`` long; 422 past the bucket cap, 503 when the store does not answer."""
    if api.history is None:
        raise ApiError(503, "unavailable", "history is not available on this hub")
    end_ms = _ms(end, "to") if end else math.floor(datetime.now(UTC).timestamp() * 1000)
    start_ms = _ms(start, "from") if start else end_ms - 86_400_000
    try:
        query = plan(site, device, point, start_ms, end_ms, _step_ms(step))
    except HistoryError as exc:
        raise ApiError(422, "invalid_range", str(exc)) from None
    _kind_of(api, principal, site, device)
    try:
        buckets = await api.history.buckets(query)
    except StoreUnavailable as exc:
        raise ApiError(503, "history_unavailable", f"the time-series store did not answer: {exc}") from None
    return {
        "site": site, "device": device, "point": point, "from_ms": query.start_ms, "to_ms": query.end_ms,
        "step_ms": query.step_ms, "points": [b.as_dict() for b in buckets],
    }  # fmt: skip
