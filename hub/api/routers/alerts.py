"""Alerts, silences and rules over HTTP: list, acknowledge, comment, resolve; mute; validate and reload rules.

Operators see and act on the alerts of their team's sites and kinds only; an alert outside the
caller's scope answers 404, as one that does not exist. Every action is recorded in the audit log with
the operator and the address they came from.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request

from hub.alerts.config import MATCH_FIELDS
from hub.alerts.manager import AlertError
from hub.alerts.service import AlertService
from hub.alerts.store import Alert, AlertQuery
from hub.api.context import HubApi
from hub.api.errors import ApiError
from hub.api.pagination import Limit, Offset, fetched_page, page
from hub.api.security import ApiDep, Permission, Principal, ensure_in_scope, hub_part, require
from hub.audit import Outcome
from rules.durations import seconds
from rules.errors import RuleError
from rules.loader import parse_rules
from rules.model import Severity

router = APIRouter(tags=["alerts"])

Reader = Annotated[Principal, Depends(require(Permission.ALERTS_READ))]
Acker = Annotated[Principal, Depends(require(Permission.ALERTS_ACK))]
RulesReader = Annotated[Principal, Depends(require(Permission.RULES_READ))]
RulesWriter = Annotated[Principal, Depends(require(Permission.RULES_WRITE))]
Comment = Annotated[str | None, Body(embed=True, max_length=1024, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$")]
States = Literal["firing", "acknowledged", "resolved"]


get_alerts = hub_part("cityhub_alerts", AlertService, "alerts_disabled", "alerting is not enabled on this hub")
AlertsDep = Annotated[AlertService, Depends(get_alerts)]


async def _alert(service: AlertService, principal: Principal, alert_id: str) -> Alert:
    alert = await service.store.get(alert_id)
    if alert is None:
        raise ApiError(404, "not_found", "no such alert")
    ensure_in_scope(principal, alert.site, alert.kind)
    return alert


@router.get("/alerts", summary="Alerts in the caller's scope, newest first")
async def list_alerts(
    principal: Reader,
    service: AlertsDep,
    state: Annotated[list[States] | None, Query(description="firing, acknowledged, resolved")] = None,
    team: Annotated[str | None, Query(max_length=32)] = None,
    site: Annotated[str | None, Query(max_length=64)] = None,
    severity: Annotated[Severity | None, Query()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """A page of alerts (``{items, next_offset}``, as every list); ``next_offset`` is null on the last page."""
    query = AlertQuery(states=state, teams=[team] if team else None, site=site, severity=severity)
    # Scope filtering happens after the query, so fetch until the page is full or the store runs out.
    items: list[dict[str, Any]] = []
    cursor, batch = 0, 500
    while len(items) < offset + limit + 1:
        query.limit, query.offset = batch, cursor
        rows = await service.store.query(query)
        items.extend(a.as_dict() for a in principal.scope.filter(rows))
        if len(rows) < batch:
            break
        cursor += batch
    return page(items, limit, offset)


@router.get("/alerts/{alert_id}", summary="One alert and its history")
async def get_alert(alert_id: str, principal: Reader, service: AlertsDep) -> dict[str, Any]:
    """The alert with every change (who, what, when), notifications that failed included."""
    alert = await _alert(service, principal, alert_id)
    history = await service.store.history(alert.id)
    changes = [{"ts_ms": h.ts_ms, "event": h.event, "actor": h.actor, "detail": h.detail} for h in history]
    return {**alert.as_dict(), "history": changes}


async def _act(
    action: str, alert_id: str, principal: Principal, service: AlertService, api: HubApi, request: Request, **kw: Any
) -> dict[str, Any]:
    await _alert(service, principal, alert_id)
    source = api.client_ip(request)
    try:
        alert = await getattr(service.manager, action)(alert_id, principal.username, kw.get("comment"))
    except AlertError as exc:
        await api.audit.record(
            f"alert.{action}", actor=principal.username, target=alert_id, outcome=Outcome.DENIED, source=source,
            detail={"reason": str(exc)},
        )  # fmt: skip
        raise ApiError(exc.status, "conflict" if exc.status == 409 else "not_found", str(exc)) from None
    await api.audit.record(
        f"alert.{action}", actor=principal.username, target=alert_id, outcome=Outcome.OK, source=source,
        detail={"comment": kw.get("comment")},
    )  # fmt: skip
    return alert.as_dict() if isinstance(alert, Alert) else {"id": alert_id}


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge: someone is on it")
async def acknowledge(
    alert_id: str, principal: Acker, service: AlertsDep, api: ApiDep, request: Request, comment: Comment = None
) -> dict[str, Any]:
    """Escalation stops; the team is told who took it."""
    return await _act("acknowledge", alert_id, principal, service, api, request, comment=comment)


@router.post("/alerts/{alert_id}/resolve", summary="Resolve by hand")
async def resolve(
    alert_id: str, principal: Acker, service: AlertsDep, api: ApiDep, request: Request, comment: Comment = None
) -> dict[str, Any]:
    """Close the alert; it fires again only once its condition clears and returns."""
    return await _act("resolve", alert_id, principal, service, api, request, comment=comment)


@router.post("/alerts/{alert_id}/comment", summary="Add a note to the alert's history")
async def comment(
    alert_id: str,
    principal: Acker,
    service: AlertsDep,
    api: ApiDep,
    request: Request,
    text: Annotated[str, Body(embed=True, min_length=1, max_length=1024)],
) -> dict[str, Any]:
    """The note is kept in the history with the author."""
    await _alert(service, principal, alert_id)
    await service.manager.comment(alert_id, principal.username, text)
    await api.audit.record(
        "alert.comment", actor=principal.username, target=alert_id, outcome=Outcome.OK,
        source=api.client_ip(request), detail={"comment": text},
    )  # fmt: skip
    return {"id": alert_id, "comment": text}


# -- silences -------------------------------------------------------------------------------------


@router.get("/silences", summary="Silences, newest first")
async def list_silences(
    principal: Reader,
    service: AlertsDep,
    ended: Annotated[
        bool | None, Query(description="true: only those over; false: only those in force or to come; unset: all")
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """A page of silences (``{items, next_offset}``) with their author, matchers and time span."""
    fetched = await service.manager.silences(ended=ended, limit=limit + 1, offset=offset)
    return fetched_page([s.as_dict() for s in fetched], limit, offset)


@router.post("/silences", summary="Mute matching alerts' notifications for a while", status_code=201)
async def add_silence(
    principal: Acker,
    service: AlertsDep,
    api: ApiDep,
    request: Request,
    matchers: Annotated[dict[str, Annotated[str, Body(max_length=128)]], Body(embed=True)],
    duration: Annotated[str | float, Body(embed=True, description="e.g. 2h, 30m, or seconds")],
    comment: Annotated[str, Body(embed=True, min_length=1, max_length=1024)],
) -> dict[str, Any]:
    """Alerts are still recorded; nobody is notified while it lasts. Scoped operators must name a site."""
    unknown = sorted(set(matchers) - MATCH_FIELDS)
    if unknown or not matchers:
        raise ApiError(422, "invalid", f"matchers must use {', '.join(sorted(MATCH_FIELDS))} (got {unknown or 'none'})")
    if not principal.scope.unrestricted and ("site" not in matchers or "kind" not in matchers):
        raise ApiError(403, "forbidden", "operators silence their own sites and kinds: name a site and a kind")
    if not principal.scope.unrestricted:
        ensure_in_scope(principal, matchers["site"], matchers["kind"])
    try:
        duration_s = float(seconds(duration))  # type: ignore[arg-type]
    except ValueError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    if not 0 < duration_s <= 31 * 86400:
        raise ApiError(422, "invalid", "a silence lasts more than 0 s and at most 31 days")
    silence = await service.manager.add_silence(matchers, duration_s, principal.username, comment)
    await api.audit.record(
        "silence.create", actor=principal.username, target=silence.id, outcome=Outcome.OK,
        source=api.client_ip(request), detail=silence.as_dict(),
    )  # fmt: skip
    return silence.as_dict()


@router.delete("/silences/{silence_id}", summary="End a silence now")
async def expire_silence(
    silence_id: str, principal: Acker, service: AlertsDep, api: ApiDep, request: Request
) -> dict[str, Any]:
    """Notifications resume for the alerts it muted."""
    try:
        silence = await service.manager.expire_silence(silence_id, principal.username)
    except AlertError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    await api.audit.record(
        "silence.expire", actor=principal.username, target=silence_id, outcome=Outcome.OK,
        source=api.client_ip(request), detail={},
    )  # fmt: skip
    return silence.as_dict()


# -- rules ----------------------------------------------------------------------------------------


@router.get("/rules", summary="The rules in force")
async def list_rules(
    principal: RulesReader,
    service: AlertsDep,
    team: Annotated[str | None, Query(max_length=32)] = None,
    severity: Annotated[Severity | None, Query()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """A page of rules (``{items, next_offset}``), in load order: id, team, severity, summary, runbook."""
    rules = [
        {"id": r.id, "team": r.team, "severity": r.severity.value, "summary": r.summary, "runbook": r.runbook}
        for r in service.rules
        if (team is None or r.team == team) and (severity is None or r.severity == severity)
    ]
    return page(rules, limit, offset)


@router.post("/rules/validate", summary="Check a rule file without loading it")
async def validate_rules(
    principal: RulesWriter,
    service: AlertsDep,
    text: Annotated[str, Body(embed=True, max_length=1_000_000)],
) -> dict[str, Any]:
    """``{"valid": true, "rules": [...ids]}`` or ``{"valid": false, "errors": [...]}`` with lines and reasons."""
    try:
        rules = parse_rules(text, service.config.teams, source="request")
    except RuleError as exc:
        return {"valid": False, "errors": list(exc.problems)}
    return {"valid": True, "rules": [r.id for r in rules]}


@router.post("/rules/reload", summary="Load the rule files again")
async def reload_rules(principal: RulesWriter, service: AlertsDep, api: ApiDep, request: Request) -> dict[str, Any]:
    """A bad file is refused with its errors and the rules in force stay."""
    source = api.client_ip(request)
    try:
        count = await service.reload_rules()
    except RuleError as exc:
        await api.audit.record(
            "rules.reload", actor=principal.username, target="rules", outcome=Outcome.FAILED, source=source,
            detail={"errors": list(exc.problems[:20])},
        )  # fmt: skip
        raise ApiError(422, "invalid_rules", str(exc)) from None
    await api.audit.record(
        "rules.reload", actor=principal.username, target="rules", outcome=Outcome.OK, source=source,
        detail={"rules": count},
    )  # fmt: skip
    return {"rules": count}
