"""The hub's alerting across a restart: the engine's timers and the open alerts come back from disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry
from testkit import acknowledged

from cityhub.contract import Reading, TelemetryMessage
from hub.alerts.config import AlertsConfig
from hub.alerts.service import AlertService
from hub.notify import NotifyConfig

RULE = """\
rules:
  - id: hot
    summary: "{device} at {value}"
    severity: major
    team: it
    for: 10m
    when:
      threshold: {metric: climate.return_air_temperature, above: 27, clear_below: 25}
"""
M = 60_000


def service(tmp_path: Path, clock: list[int], sent: list[bytes]) -> AlertService:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)

    def publish(topic: str, payload: bytes) -> asyncio.Future[None]:
        sent.append(payload)
        return acknowledged()

    return AlertService(
        AlertsConfig(rules=[rules]), NotifyConfig(), data_dir=tmp_path, topic_root="ch", hub_id="h",
        publish=publish, registry=CollectorRegistry(), clock_ms=lambda: clock[0],
    )  # fmt: skip


def hot(value: float, at_ms: int, seq: int) -> TelemetryMessage:
    reading = Reading(metric="climate.return_air_temperature", value=value, ts=at_ms)
    return TelemetryMessage(site="s", device="crac-1", kind="climate", boot=1, seq=seq, readings=[reading])


async def test_a_for_window_and_an_open_alert_survive_a_restart(tmp_path: Path) -> None:
    clock, sent = [1_700_000_000_000], []
    first = service(tmp_path, clock, sent)
    await first.open()
    first.observe(hot(30, clock[0], 1))
    clock[0] += 4 * M
    await first.aclose()  # 4 of the 10 minutes served

    clock[0] += 1 * M  # the hub is down for a minute: that minute does not count
    second = service(tmp_path, clock, sent)
    await second.open()
    assert second.engine.next_deadline() == clock[0]  # everything is looked at again at once
    assert second.engine.tick(clock[0]) == []
    assert second.engine.next_deadline() == clock[0] + 6 * M
    [fired] = second.engine.tick(clock[0] + 6 * M)
    await second.manager.apply([fired])
    assert [a.rule for a in second.manager.open_alerts] == ["hot"]
    await second.aclose()

    third = service(tmp_path, clock, sent)  # the alert is open after another restart, and not fired again
    await third.open()
    assert [a.rule for a in third.manager.open_alerts] == ["hot"]
    assert third.engine.tick(clock[0] + 7 * M) == []
    await third.aclose()
