"""The alert lifecycle on a real SQLite store with a simulated clock: dedup, flapping, ack, escalation, muting."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hub.alerts.config import AlertsConfig, EscalationStep, FlapConfig, MaintenanceWindow
from hub.alerts.manager import AlertError, AlertManager, Notice
from hub.alerts.store import AlertQuery, AlertStore
from rules.model import AlertState, Severity, Subject, Transition

SUBJECT = Subject(site="cjt", device="crac-1")


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.ms


def transition(
    state: AlertState, at_ms: int, rule: str = "too-hot", severity: Severity = Severity.CRITICAL
) -> Transition:
    return Transition(
        rule=rule, subject=SUBJECT, state=state, at_ms=at_ms, severity=severity, team="it",
        summary=f"{rule} {state.value}", kind="climate", value=28.5,
    )  # fmt: skip


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AlertStore]:
    store = AlertStore(tmp_path / "alerts.sqlite")
    await store.open()
    yield store
    await store.aclose()


def manager_of(store: AlertStore, clock: Clock, notices: list[Notice], **config: object) -> AlertManager:
    return AlertManager(store, AlertsConfig.model_validate(config), notices.append, clock_ms=clock)


async def test_one_open_alert_per_rule_and_subject(store: AlertStore) -> None:
    clock, notices = Clock(), list[Notice]()
    manager = manager_of(store, clock, notices)
    await manager.apply([transition(AlertState.FIRING, clock.ms)])
    await manager.apply([transition(AlertState.FIRING, clock.ms + 1000)])  # said again (after a restart)
    assert len(manager.open_alerts) == 1
    assert [n.event for n in notices] == ["firing"]
    clock.ms += 60_000
    await manager.apply([transition(AlertState.RESOLVED, clock.ms)])
    assert manager.open_alerts == []
    assert [n.event for n in notices] == ["firing", "resolved"]
    (alert,) = await store.query(AlertQuery())
    assert alert.state == "resolved"
    assert alert.resolved_by == "rules"
    assert [h.event for h in await store.history(alert.id)] == ["firing", "resolved"]


async def test_open_alerts_survive_a_restart(store: AlertStore) -> None:
    clock, notices = Clock(), list[Notice]()
    await manager_of(store, clock, notices).apply([transition(AlertState.FIRING, clock.ms)])
    restarted = manager_of(store, clock, notices)
    await restarted.load()
    await restarted.apply([transition(AlertState.FIRING, clock.ms + 5000)])
    assert len(restarted.open_alerts) == 1
    assert len(notices) == 1


async def test_a_restart_remembers_what_was_resolved_within_the_flapping_window(store: AlertStore) -> None:
    clock, notices = Clock(), list[Notice]()
    flap = FlapConfig(window=300, max_reopen=5).model_dump()
    manager = manager_of(store, clock, notices, flap=flap)
    await manager.apply([transition(AlertState.FIRING, clock.ms)])
    (first,) = manager.open_alerts
    await manager.resolve(first.id, "ana", "reset the breaker")  # by hand counts as well
    other = transition(AlertState.FIRING, clock.ms, rule="too-humid")
    await manager.apply([other, transition(AlertState.RESOLVED, clock.ms, rule="too-humid")])
    clock.ms += 200_000
    restarted = manager_of(store, clock, notices, flap=flap)
    await restarted.load()
    await restarted.apply([transition(AlertState.FIRING, clock.ms)])  # within the window: the same alert
    (again,) = restarted.open_alerts
    assert (again.id, again.flaps) == (first.id, 1)
    clock.ms += 400_000  # the other one was resolved 600 s ago: too long to be the same trouble
    await restarted.apply([transition(AlertState.FIRING, clock.ms, rule="too-humid")])
    humid = next(a for a in restarted.open_alerts if a.rule == "too-humid")
    assert humid.flaps == 0
    assert len(await store.query(AlertQuery())) == 3


async def test_acknowledge_records_who_and_stops_escalation(store: AlertStore) -> None:
    clock, notices = Clock(), list[Notice]()
    manager = manager_of(store, clock, notices, escalation=[{"after": "15m", "teams": ["police"]}])
    await manager.apply([transition(AlertState.FIRING, clock.ms)])
    (alert,) = manager.open_alerts
    clock.ms += 60_000
    acked = await manager.acknowledge(alert.id, "ana", "on my way")
    assert (acked.state, acked.acked_by, acked.acked_ms) == ("acknowledged", "ana", clock.ms)
    with pytest.raises(AlertError):
        await manager.acknowledge(alert.id, "ion", None)
    clock.ms += 3600_000
    await manager.escalate_due()
    assert [n.event for n in notices] == ["firing", "acknowledged"]
    history = await store.history(alert.id)
    assert history[-1].actor == "ana"
    assert history[-1].detail == {"comment": "on my way"}


async def test_unacknowledged_alert_escalates_once_per_step(store: AlertStore) -> None:
    clock, notices = Clock(), list[Notice]()
    steps = [{"after": "10m", "teams": ["police"]}, {"after": "30m", "channels": ["director-sms"]}]
    manager = manager_of(store, clock, notices, escalation=steps)
    await manager.apply([transition(AlertState.FIRING, clock.ms)])
    clock.ms += 9 * 60_000
    await manager.escalate_due()
    assert [n.event for n in notices] == ["firing"]
    clock.ms += 2 * 60_000
    await manager.escalate_due()
    await manager.escalate_due()
    assert [n.event for n in notices] == ["firing", "escalated"]
    assert notices[-1].extra_teams == ("police",)
    assert notices[-1].alert.escalation_level == 1
    clock.ms += 20 * 60_000
    await manager.escalate_due()
    assert notices[-1].extra_channels == ("director-sms",)
    assert notices[-1].alert.escalation_level == 2
    clock.ms += 3600_000
    await manager.escalate_due()
    assert len(notices) == 3


async def test_escalation_skips_severities_it_is_not_for(store: AlertStore) -> None:
    clock, notices = Clock(), list[Notice]()
    manager = manager_of(store, clock, notices, escalation=[EscalationStep(after=60).model_dump()])
    await manager.apply([transition(AlertState.FIRING, clock.ms, severity=Severity.WARNING)])
    clock.ms += 3600_000
    await manager.escalate_due()
    assert [n.event for n in notices] == ["firing"]


async def test_flapping_alert_is_reopened_then_muted(store: AlertStore) -> None:
    clock, notices = Clock(), list[Notice]()
    manager = manager_of(store, clock, notices, flap=FlapConfig(window=300, max_reopen=2).model_dump())
    for _ in range(5):
        await manager.apply([transition(AlertState.FIRING, clock.ms)])
        clock.ms += 30_000
        await manager.apply([transition(AlertState.RESOLVED, clock.ms)])
        clock.ms += 30_000
    alerts = await store.query(AlertQuery())
    assert len(alerts) == 1
    assert alerts[0].flaps == 4
    firing = [n for n in notices if n.event == "firing"]
    assert len(firing) == 3  # the first and two reopenings; past max_reopen nobody is woken again
    clock.ms += 600_000  # quiet for longer than the window: a new alert
    await manager.apply([transition(AlertState.FIRING, clock.ms)])
    assert len(await store.query(AlertQuery())) == 2


async def test_silence_mutes_notifications_but_keeps_the_alert(store: AlertStore) -> None:
    clock, notices = Clock(), list[Notice]()
    manager = manager_of(store, clock, notices)
    silence = await manager.add_silence({"site": "cjt", "rule": "too-*"}, 3600, "ana", "CRAC maintenance")
    await manager.apply([transition(AlertState.FIRING, clock.ms)])
    (alert,) = manager.open_alerts
    assert alert.muted_by == f"silence:{silence.id}"
    assert notices == []
    await manager.expire_silence(silence.id, "ana")
    await manager.apply([transition(AlertState.FIRING, clock.ms, rule="too-humid")])
    assert [n.alert.rule for n in notices] == ["too-humid"]


async def test_maintenance_window_mutes_matching_alerts_only_while_open() -> None:
    window = MaintenanceWindow(name="patch-tuesday", days=["tue"], start="22:00", duration=7200, match={"team": "it"})
    zone = ZoneInfo("Europe/Bucharest")
    at = dt.datetime(2026, 11, 24, 22, 30, tzinfo=zone)
    assert at.weekday() == 1
    inside, before, after = (
        int(t.timestamp() * 1000) for t in (at, at - dt.timedelta(hours=1), at + dt.timedelta(hours=2))
    )
    assert window.active(inside)
    assert not window.active(before)
    assert not window.active(after)
    late = window.model_copy(update={"start": "23:00"})
    past_midnight = int(dt.datetime(2026, 11, 25, 0, 30, tzinfo=zone).timestamp() * 1000)
    assert late.active(past_midnight)  # Wednesday 00:30, within the two hours from Tuesday 23:00


async def test_resolve_by_hand_then_the_rule_resolving_is_a_no_op(store: AlertStore) -> None:
    clock, notices = Clock(), list[Notice]()
    manager = manager_of(store, clock, notices)
    await manager.apply([transition(AlertState.FIRING, clock.ms)])
    (alert,) = manager.open_alerts
    resolved = await manager.resolve(alert.id, "ana", "sensor replaced")
    assert resolved.resolved_by == "ana"
    await manager.apply([transition(AlertState.RESOLVED, clock.ms + 1000)])
    assert [n.event for n in notices] == ["firing", "resolved"]
    with pytest.raises(AlertError):
        await manager.resolve(alert.id, "ana", None)


async def test_history_is_append_only(store: AlertStore) -> None:
    clock, notices = Clock(), list[Notice]()
    manager = manager_of(store, clock, notices)
    await manager.apply([transition(AlertState.FIRING, clock.ms)])
    db = store._db
    with pytest.raises(Exception, match="append-only"):
        await db.run(lambda c: c.execute("DELETE FROM alert_history"))
