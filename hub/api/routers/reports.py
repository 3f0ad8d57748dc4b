"""KPI figures for the console's charts (``reports.read``), each caller seeing their team's devices and alerts.

``GET /api/v1/reports/kpi?from=2026-01-01&to=2026-02-01`` answers the report of docs/reports.md as JSON:
the period, a summary and the five tables as lists of rows. Scoped callers get figures computed on the
devices and alerts in their scope only; administrators get the whole city.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from hub.api.errors import ApiError
from hub.api.security import Permission, Principal, hub_part, require
from hub.kpi import KpiSource, PeriodError, SourceError, parse_period

router = APIRouter(prefix="/reports", tags=["reports"])

ReportsReader = Annotated[Principal, Depends(require(Permission.REPORTS_READ))]
_INSTANT = "an ISO date or date-time, e.g. 2026-01-01 or 2026-01-01T08:00+02:00 (a date is its midnight, Bucharest)"


get_source = hub_part("cityhub_kpi", KpiSource, "unavailable", "reports are not available on this hub")
SourceDep = Annotated[KpiSource, Depends(get_source)]


@router.get("/kpi", summary="KPI figures of a period, in the caller's scope")
async def kpi(
    principal: ReportsReader,
    source: SourceDep,
    start: Annotated[str | None, Query(alias="from", max_length=40, description=f"start, {_INSTANT}")] = None,
    end: Annotated[str | None, Query(alias="to", max_length=40, description=f"end (excluded), {_INSTANT}")] = None,
) -> dict[str, Any]:
    """Devices, availability per device and site, alerts per team and severity, MTTA and MTTR per team."""
    now_ms = int(time.time() * 1000)
    try:
        period = parse_period(start, end, now_ms=now_ms)
    except PeriodError as exc:
        raise ApiError(422, "invalid_period", str(exc)) from None
    try:
        data = await source.load(period)
    except SourceError as exc:
        raise ApiError(503, "source_unavailable", str(exc)) from None
    scope = principal.scope
    allows = None if scope.unrestricted else scope.allows
    from hub.kpi.report import build_report  # pandas: loaded on the first report, not at every hub's start

    # pandas holds the CPU for a while on a big city: off the event loop, so ingest and other requests go on.
    report = await asyncio.to_thread(build_report, data, period, now_ms=now_ms, allows=allows)
    return {**report.as_json(), "scope": scope.describe()}
