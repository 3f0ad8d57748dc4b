"""Alerting inside the hub: every accepted message goes through the rules as it arrives; the clock too.

Data flow: ingest validates a message -> ``observe`` (synchronous, microseconds: the engine is pure
and indexed) -> transitions queued -> one worker applies them in order (the manager decides new,
duplicate or reopened, tells the notifier, then stores) -> the notifier publishes on the team's MQTT
topic and delivers to the configured channels. The rules see a message before it is stored, so an
alert never waits for a batch flush; a message redelivered after a crash is harmless, since the
engine and the manager both deduplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from cityhub.contract.alerts import AlertMessage
from cityhub.replay.observations import ContractMessage, observations_from
from hub.alerts.config import AlertsConfig
from hub.alerts.manager import AlertManager, Notice
from hub.alerts.store import AlertStore
from hub.notify import Notifier, NotifyConfig
from hub.notify.notifier import Publish
from rules.engine import RuleEngine
from rules.errors import RuleError
from rules.loader import load_rules
from rules.model import Transition

log = logging.getLogger(__name__)


class AlertService:
    """The rule engine, the alert lifecycle and the notifier, wired to the hub."""

    def __init__(
        self,
        config: AlertsConfig,
        notifications: NotifyConfig,
        *,
        data_dir: Path,
        topic_root: str,
        hub_id: str,
        publish: Publish,
        registry: CollectorRegistry,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.config = config
        self.hub_id = hub_id
        self._clock_ms = clock_ms
        self.rules = load_rules(config.rules, config.teams)  # RuleError: the hub refuses to start
        self.engine = RuleEngine(self.rules, config.device_tags)
        self.store = AlertStore(data_dir / "alerts.sqlite")
        self.notifier = Notifier(
            notifications, topic_root=topic_root, hub_id=hub_id, publish=publish, registry=registry,
            on_failure=self._notification_failed,
        )  # fmt: skip
        self.manager = AlertManager(self.store, config, self._notify, clock_ms=clock_ms)
        self._queue: asyncio.Queue[Sequence[Transition]] = asyncio.Queue()
        #: Called with every notification as it is sent (the demo prints them; a console could stream them).
        self.listeners: list[Callable[[AlertMessage], None]] = []
        self._transitions = Counter(
            "cityhub_hub_alert_transitions", "Alert transitions from the rules", ["state"], registry=registry
        )
        self._rules_loaded = Gauge("cityhub_hub_rules_loaded", "Alert rules in force", registry=registry)
        self._rules_loaded.set(len(self.rules))
        self._reload_failures = Counter(
            "cityhub_hub_rule_reload_failures", "Rule reloads refused (previous rules kept)", registry=registry
        )
        self._engine_errors = Counter(
            "cityhub_hub_rule_engine_errors", "Messages the rules failed on (stored anyway)", registry=registry
        )
        Gauge("cityhub_hub_alerts_open", "Open alerts", registry=registry).set_function(
            lambda: float(len(self.manager.open_alerts))
        )

    async def open(self) -> None:
        """Open the store; restore the open alerts and the engine's timers saved by the last run."""
        await self.store.open()
        await self.manager.load()
        saved = await self.store.engine_state()
        if saved is not None:
            self.engine.restore(saved, self._clock_ms())

    async def aclose(self) -> None:
        """Save the engine's timers and close the store."""
        with contextlib.suppress(Exception):
            now = self._clock_ms()
            await self.store.save_engine_state(self.engine.snapshot(now), now)
        await self.store.aclose()

    # -- input ------------------------------------------------------------------------------------

    def observe(self, message: ContractMessage) -> None:
        """Run an accepted message through the rules (called by ingest, in the event loop)."""
        try:
            transitions = self.engine.observe_all(observations_from(message), self._clock_ms())
            if transitions:
                self._queue.put_nowait(transitions)
        except Exception:  # a rule's fault must never stop ingest: the data is still stored
            self._engine_errors.inc()
            log.exception("the rules failed on a message from %s/%s", message.site, message.device)

    @property
    def has_pending(self) -> bool:
        """Whether transitions wait for the worker that applies them (ingest then yields to it)."""
        return not self._queue.empty()

    async def run(self, stop: asyncio.Event) -> None:
        """Apply transitions, run the clock, deliver notifications, until ``stop``."""
        async with asyncio.TaskGroup() as tasks:
            workers = [
                tasks.create_task(self._apply_loop(), name="alerts-apply"),
                tasks.create_task(self._clock_loop(), name="alerts-clock"),
                tasks.create_task(self.notifier.run(stop), name="alerts-notify"),
            ]
            await stop.wait()
            for worker in workers[:2]:
                worker.cancel()

    async def _apply_loop(self) -> None:
        while True:
            transitions = await self._queue.get()
            for transition in transitions:
                self._transitions.labels(state=transition.state.value).inc()
                log.info("rule %s %s for %s", transition.rule, transition.state.value, transition.subject.key)
            await self.manager.apply(transitions)

    async def _clock_loop(self) -> None:
        """Clock-driven conditions (for, staleness, heartbeats), escalation and the timers' saving."""
        saved_at = 0.0
        while True:
            now = self._clock_ms()
            deadline = self.engine.next_deadline()
            wait_s = self.config.tick_s if deadline is None else min(self.config.tick_s, (deadline - now) / 1000)
            await asyncio.sleep(max(0.0, wait_s))
            transitions = self.engine.tick(self._clock_ms())
            if transitions:
                self._queue.put_nowait(transitions)
            await self.manager.escalate_due()
            if time.monotonic() - saved_at >= self.config.save_state_s:
                now = self._clock_ms()
                await self.store.save_engine_state(self.engine.snapshot(now), now)
                saved_at = time.monotonic()

    # -- rules ------------------------------------------------------------------------------------

    async def reload_rules(self, paths: Sequence[Path] | None = None) -> int:
        """Load the rule files again; a bad file raises RuleError and the rules in force stay."""
        try:
            rules = load_rules(paths or self.config.rules, self.config.teams)
        except RuleError:
            self._reload_failures.inc()
            raise
        transitions = self.engine.replace_rules(rules, self._clock_ms())
        self.rules = rules
        self._rules_loaded.set(len(rules))
        if transitions:
            self._queue.put_nowait(transitions)
        return len(rules)

    # -- output -----------------------------------------------------------------------------------

    def _notify(self, notice: Notice) -> None:
        alert = notice.alert
        message = AlertMessage(
            alert_id=alert.id, event=notice.event, rule=alert.rule, site=alert.site, device=alert.device,
            kind=alert.kind, team=alert.team, severity=alert.severity, summary=alert.summary[:512],
            runbook=alert.runbook, at=notice.at_ms, fired_at=alert.fired_ms, actor=notice.actor,
            comment=notice.comment, escalation_level=alert.escalation_level, hub=self.hub_id,
        )  # fmt: skip
        self.notifier.notify(message, extra_teams=notice.extra_teams, extra_channels=notice.extra_channels)
        for listener in self.listeners:
            listener(message)

    async def _notification_failed(self, message: AlertMessage, channel: str, error: str) -> None:
        """A notification that could not be delivered is written into the alert's history: never silent."""
        await self.store.note(
            message.alert_id, self._clock_ms(), "notification_failed", "notifier",
            {"channel": channel, "event": str(message.event), "error": error[:300]},
        )  # fmt: skip
