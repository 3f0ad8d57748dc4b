"""The audit log (``audit.read``): query with filters and a cursor, export as JSON lines, verify the chain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from hub.api.pagination import Limit
from hub.api.security import ApiDep, AuditDep, Permission, Principal, require
from hub.audit import AuditQuery

router = APIRouter(prefix="/audit", tags=["audit"])

AuditReader = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]
Since = Annotated[datetime | None, Query(description="ISO 8601; entries at or after (UTC if no offset)")]
Until = Annotated[datetime | None, Query(description="ISO 8601; entries before (UTC if no offset)")]
Actor = Annotated[str | None, Query(max_length=128)]
Action = Annotated[str | None, Query(max_length=128, description="exact, or a prefix ending in '.': auth.")]


def _ms(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@router.get("", summary="Audit entries, oldest first; the next page with ?after=<next_after>")
async def list_entries(
    _: AuditReader,
    api: ApiDep,
    since: Since = None,
    until: Until = None,
    actor: Actor = None,
    action: Action = None,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    """A page of entries (``{items, next_after}``: the log only grows, so it pages by id); null on the last."""
    query = AuditQuery(
        since_ms=_ms(since), until_ms=_ms(until), actor=actor, action=action, after_id=after, limit=limit
    )
    entries = await api.audit.entries(query)
    next_after = entries[-1].id if len(entries) == limit else None
    return {"items": [entry.as_dict() for entry in entries], "next_after": next_after}


@router.get(
    "/export",
    summary="Export entries as JSON lines for a SIEM",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def export(
    _: AuditReader,
    api: ApiDep,
    audit: AuditDep,
    since: Since = None,
    until: Until = None,
    actor: Actor = None,
    action: Action = None,
    after: Annotated[int, Query(ge=0)] = 0,
) -> StreamingResponse:
    """One JSON object per line, streamed page by page; the export itself is audited."""
    query = AuditQuery(since_ms=_ms(since), until_ms=_ms(until), actor=actor, action=action, after_id=after)
    await audit("audit.exported", detail={"since_ms": query.since_ms, "after": after})
    lines: AsyncIterator[str] = api.audit.export_jsonl(query)
    return StreamingResponse(lines, media_type="application/x-ndjson")


@router.get("/verify", summary="Check the hash chain of the whole log")
async def verify(_: AuditReader, api: ApiDep) -> dict[str, Any]:
    """``intact`` false names the first entry changed or removed outside the hub."""
    broken = await api.audit.verify()
    return {"intact": broken is None, "first_broken_id": broken}
