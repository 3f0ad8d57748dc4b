"""The alert lifecycle: firing -> acknowledged -> resolved, with deduplication, flapping, escalation, silences.

The rule engine says when a condition starts and stops (transitions); this module turns those into
alerts people act on. The open alerts live in memory as well as in the store, so deciding what a
transition means (new, duplicate, reopened) never waits on the disk and a notification leaves within
milliseconds; the store is written right after, in the same order. All changes go through one lock,
so an operator's acknowledgement and the engine's resolution of the same alert cannot interleave.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from hub.alerts.config import AlertsConfig
from hub.alerts.store import ACKNOWLEDGED, FIRING, RESOLVED, Alert, AlertStore, Silence, new_alert_id
from rules.model import AlertState, Transition

log = logging.getLogger(__name__)

#: Who acts when nobody does: the rule engine (fire, resolve) and the escalation timer.
RULES_ACTOR = "rules"


class AlertError(Exception):
    """An operator's action that cannot be done (unknown alert, already resolved)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    """Something to tell people about an alert."""

    alert: Alert
    event: str  # firing | acknowledged | escalated | resolved
    at_ms: int
    actor: str
    comment: str | None = None
    extra_teams: tuple[str, ...] = ()  # escalation: further teams whose channels get it
    extra_channels: tuple[str, ...] = ()


class Notify(Protocol):
    """Where notices go (the notifier; a list in tests)."""

    def __call__(self, notice: Notice) -> None: ...


def _matches(matchers: Mapping[str, str], alert: Alert) -> bool:
    return all(fnmatch.fnmatchcase(str(getattr(alert, name)), glob) for name, glob in matchers.items())


class AlertManager:
    """Applies transitions and operators' actions to the alerts; decides who is told."""

    def __init__(
        self,
        store: AlertStore,
        config: AlertsConfig,
        notify: Notify,
        *,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.store = store
        self.config = config
        self._notify = notify
        self._clock_ms = clock_ms
        self._open: dict[tuple[str, str, str], Alert] = {}
        # The alerts resolved within the flapping window, by (rule, site, device), the earliest first: a
        # condition back within it reopens one of these. Kept here so that firing needs no database
        # read before the team is told (alert latency); at most one per subject can be that recent.
        self._recent: dict[tuple[str, str, str], Alert] = {}
        self._silences: list[Silence] = []
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read the open alerts and the silences (after a restart)."""
        self._open = {(a.rule, a.site, a.device): a for a in await self.store.open_alerts()}
        since = self._clock_ms() - int(self.config.flap.window * 1000)
        self._recent = {(a.rule, a.site, a.device): a for a in await self.store.resolved_since(since)}
        await self._reload_silences()

    @property
    def open_alerts(self) -> list[Alert]:
        """The open alerts, oldest first."""
        return sorted(self._open.values(), key=lambda a: a.fired_ms)

    # -- the engine's transitions -----------------------------------------------------------------

    async def apply(self, transitions: Iterable[Transition]) -> None:
        """Open, reopen or resolve alerts for the engine's transitions, in order."""
        async with self._lock:
            for transition in transitions:
                if transition.state is AlertState.FIRING:
                    await self._fire(transition)
                else:
                    await self._clear(transition)

    async def _fire(self, t: Transition) -> None:
        key = (t.rule, t.subject.site, t.subject.device)
        if key in self._open:
            return  # one open alert per rule and subject (the engine may say it again after a restart)
        self._forget_resolved_before(t.at_ms - int(self.config.flap.window * 1000))
        previous = self._recent.pop(key, None)
        if previous is not None:
            await self._reopen(previous, t)
            return
        alert = Alert(
            id=new_alert_id(), rule=t.rule, site=t.subject.site, device=t.subject.device, kind=t.kind,
            team=t.team, severity=t.severity.value, summary=t.summary, runbook=t.runbook, state=FIRING,
            fired_ms=t.at_ms, updated_ms=t.at_ms,
        )  # fmt: skip
        alert = replace(alert, muted_by=self.muted_by(alert, t.at_ms))
        self._open[key] = alert
        self._tell(Notice(alert=alert, event=FIRING, at_ms=t.at_ms, actor=RULES_ACTOR))
        await self.store.insert(alert, RULES_ACTOR, {"summary": t.summary, "value": t.value})

    async def _reopen(self, previous: Alert, t: Transition) -> None:
        flaps = previous.flaps + 1
        alert = replace(
            previous, state=FIRING, summary=t.summary, updated_ms=t.at_ms, resolved_ms=None, resolved_by=None,
            acked_ms=None, acked_by=None, escalation_level=0, flaps=flaps,
        )  # fmt: skip
        flapping = flaps > self.config.flap.max_reopen
        alert = replace(alert, muted_by="flapping" if flapping else self.muted_by(alert, t.at_ms))
        self._open[(t.rule, t.subject.site, t.subject.device)] = alert
        if not flapping:
            self._tell(Notice(alert=alert, event=FIRING, at_ms=t.at_ms, actor=RULES_ACTOR))
        await self.store.update(alert, "reopened", RULES_ACTOR, {"flaps": flaps, "value": t.value})

    async def _clear(self, t: Transition) -> None:
        alert = self._open.pop((t.rule, t.subject.site, t.subject.device), None)
        if alert is None:
            return  # resolved by hand already, or fired before this hub kept alerts
        resolved = replace(alert, state=RESOLVED, updated_ms=t.at_ms, resolved_ms=t.at_ms, resolved_by=RULES_ACTOR)
        self._remember_resolved(resolved)
        self._tell(Notice(alert=resolved, event=RESOLVED, at_ms=t.at_ms, actor=RULES_ACTOR))
        await self.store.update(resolved, RESOLVED, RULES_ACTOR, {"summary": t.summary, "value": t.value})

    def _remember_resolved(self, alert: Alert) -> None:
        key = (alert.rule, alert.site, alert.device)
        self._recent.pop(key, None)  # to the end: the dict stays in order of resolution
        self._recent[key] = alert

    def _forget_resolved_before(self, limit_ms: int) -> None:
        """Drop the resolved alerts too old to reopen (the earliest first, so this stops at the first kept)."""
        while self._recent:
            key, alert = next(iter(self._recent.items()))
            if alert.resolved_ms is not None and alert.resolved_ms >= limit_ms:
                return
            del self._recent[key]

    # -- operators --------------------------------------------------------------------------------

    async def acknowledge(self, alert_id: str, actor: str, comment: str | None) -> Alert:
        """Someone is on it: escalation stops; the team is told who."""
        async with self._lock:
            alert = self._open_by_id(alert_id)
            if alert.state == ACKNOWLEDGED:
                raise AlertError(409, f"alert {alert_id} is already acknowledged by {alert.acked_by}")
            now = self._clock_ms()
            acked = replace(alert, state=ACKNOWLEDGED, updated_ms=now, acked_ms=now, acked_by=actor)
            self._open[(acked.rule, acked.site, acked.device)] = acked
            self._tell(Notice(alert=acked, event=ACKNOWLEDGED, at_ms=now, actor=actor, comment=comment))
            return await self.store.update(acked, ACKNOWLEDGED, actor, {"comment": comment})

    async def resolve(self, alert_id: str, actor: str, comment: str | None) -> Alert:
        """Close an alert by hand; it fires again only once its condition clears and returns."""
        async with self._lock:
            alert = self._open_by_id(alert_id)
            now = self._clock_ms()
            resolved = replace(alert, state=RESOLVED, updated_ms=now, resolved_ms=now, resolved_by=actor)
            del self._open[(alert.rule, alert.site, alert.device)]
            self._remember_resolved(resolved)
            self._tell(Notice(alert=resolved, event=RESOLVED, at_ms=now, actor=actor, comment=comment))
            return await self.store.update(resolved, RESOLVED, actor, {"comment": comment})

    async def comment(self, alert_id: str, actor: str, comment: str) -> None:
        """Add a note to an alert's history."""
        if await self.store.get(alert_id) is None:
            raise AlertError(404, "no such alert")
        await self.store.note(alert_id, self._clock_ms(), "commented", actor, {"comment": comment})

    def _open_by_id(self, alert_id: str) -> Alert:
        for alert in self._open.values():
            if alert.id == alert_id:
                return alert
        raise AlertError(409, f"alert {alert_id} is not open") if alert_id else AlertError(404, "no such alert")

    # -- escalation, silences, maintenance --------------------------------------------------------

    async def escalate_due(self) -> None:
        """Tell further people of alerts nobody acknowledged in time (one step at a time)."""
        now = self._clock_ms()
        async with self._lock:
            for key, alert in list(self._open.items()):
                step = self._next_step(alert, now)
                if step is None:
                    continue
                escalated = replace(alert, escalation_level=alert.escalation_level + 1, updated_ms=now)
                self._open[key] = escalated
                if escalated.muted_by is None and self.muted_by(escalated, now) is None:
                    teams = tuple(step.teams) or (alert.team,)
                    self._tell(
                        Notice(alert=escalated, event="escalated", at_ms=now, actor=RULES_ACTOR,
                               extra_teams=teams, extra_channels=tuple(step.channels))
                    )  # fmt: skip
                detail = {"level": escalated.escalation_level, "teams": step.teams, "channels": step.channels}
                await self.store.update(escalated, "escalated", RULES_ACTOR, detail)

    def _next_step(self, alert: Alert, now_ms: int) -> Any:
        if alert.state != FIRING or alert.escalation_level >= len(self.config.escalation):
            return None
        step = self.config.escalation[alert.escalation_level]
        if alert.severity not in step.severities or now_ms - alert.fired_ms < step.after * 1000:
            return None
        return step

    def muted_by(self, alert: Alert, now_ms: int) -> str | None:
        """The silence (``silence:<id>``) or maintenance window (``maintenance:<name>``) that mutes ``alert``."""
        for silence in self._silences:
            if silence.active(now_ms) and _matches(silence.matchers, alert):
                return f"silence:{silence.id}"
        for window in self.config.maintenance:
            if _matches(window.match, alert) and window.active(now_ms):
                return f"maintenance:{window.name}"
        return None

    async def add_silence(self, matchers: Mapping[str, str], duration_s: float, author: str, comment: str) -> Silence:
        """Mute matching alerts' notifications from now for ``duration_s``."""
        now = self._clock_ms()
        silence = await self.store.add_silence(matchers, now, now + int(duration_s * 1000), author, comment, now)
        await self._reload_silences()
        return silence

    async def expire_silence(self, silence_id: str, by: str) -> Silence:
        """End a silence now."""
        silence = await self.store.expire_silence(silence_id, by, self._clock_ms())
        if silence is None:
            raise AlertError(404, "no such silence")
        await self._reload_silences()
        return silence

    async def silences(self, *, ended: bool | None = None, limit: int, offset: int = 0) -> list[Silence]:
        """A page of silences, newest first: all, those still to end (``ended=False``) or those over."""
        return await self.store.silences(at_ms=self._clock_ms(), ended=ended, limit=limit, offset=offset)

    async def _reload_silences(self) -> None:
        # Only silences still to end can mute anything; the ones over stay in the store for the record.
        # Those over since the reload are skipped by Silence.active.
        self._silences = await self.store.silences(at_ms=self._clock_ms(), ended=False)

    def _tell(self, notice: Notice) -> None:
        if notice.alert.muted_by is not None and notice.event != RESOLVED:
            log.info("alert %s %s: muted by %s", notice.alert.id, notice.event, notice.alert.muted_by)
            return
        try:
            self._notify(notice)
        except Exception:  # a broken notifier must not lose the alert itself (it is stored next)
            log.exception("could not hand alert %s to the notifier", notice.alert.id)
