"""``GET /api/v1/alerts/stream`` over real HTTP from a running hub: scoped like ``GET /alerts``, resumable
with Last-Event-ID, heartbeats, slow clients dropped, revoked tokens cut off, bad input refused."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from cityhub.contract import DeviceEvent, EventMessage
from cityhub.contract.alerts import AlertEvent, AlertMessage
from hub.api.roles import Scope, team_scope
from hub.api.settings import TeamConfig
from hub.console import AlertBroadcaster, StreamConfig

from .conftest import ConsoleHub


@dataclass(slots=True)
class Sse:
    """One server-sent event as a client reads it."""

    event: str
    data: Any
    id: str | None = None


@dataclass(slots=True)
class Stream:
    """An open stream: its events so far, heartbeats counted."""

    response: httpx.Response
    lines: AsyncIterator[str]
    heartbeats: int = 0
    seen: list[Sse] = field(default_factory=list)

    async def next(self, timeout_s: float = 10) -> Sse:
        """The next event (heartbeats are counted, not returned)."""
        event, data, event_id = "message", list[str](), None
        async with asyncio.timeout(timeout_s):
            async for line in self.lines:
                if line == "":
                    if data:
                        sse = Sse(event, json.loads("\n".join(data)), event_id)
                        self.seen.append(sse)
                        return sse
                    continue
                if line.startswith(": heartbeat"):
                    self.heartbeats += 1
                field_name, _, value = line.partition(": ")
                if field_name == "event":
                    event = value
                elif field_name == "data":
                    data.append(value)
                elif field_name == "id":
                    event_id = value
        raise AssertionError("the stream ended")


@contextlib.asynccontextmanager
async def stream(console: ConsoleHub, token: str | None, last_id: str | None = None) -> AsyncIterator[Stream]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if last_id:
        headers["Last-Event-ID"] = last_id
    async with (
        httpx.AsyncClient(base_url=console.base_url, timeout=httpx.Timeout(10, read=30)) as client,
        client.stream("GET", "/api/v1/alerts/stream", headers=headers) as response,
    ):
        yield Stream(response, response.aiter_lines())


def event(kind: str, device: str, type_: str, site: str = "townhall", active: bool = True) -> EventMessage:
    return EventMessage(
        site=site, device=device, kind=kind, boot=1, seq=int(time.time() * 1000) % 1_000_000,
        events=[DeviceEvent(type=type_, ts=int(time.time() * 1000), active=active)],
    )  # fmt: skip


def fire(console: ConsoleHub, kind: str, device: str, type_: str, active: bool = True) -> None:
    """What ingest does with an accepted event: through the real rules, manager and listeners."""
    assert console.hub.alerts is not None
    console.hub.alerts.observe(event(kind, device, type_, active=active))


async def test_each_operator_receives_only_the_alerts_of_their_team(console_hub: ConsoleHub) -> None:
    ion, paula, vera = [await console_hub.token(name) for name in ("ion", "paula", "vera")]
    async with stream(console_hub, ion) as it, stream(console_hub, paula) as police, stream(console_hub, vera) as city:
        for s in (it, police, city):
            assert s.response.status_code == 200
            assert s.response.headers["content-type"].startswith("text/event-stream")
            ready = await s.next()
            assert (ready.event, ready.data["resync"]) == ("ready", True)
        fire(console_hub, "ups", "ups-1", "ups.on_battery")
        fire(console_hub, "camera", "gate-cam", "camera.tamper")
        it_alert, police_alert = await it.next(), await police.next()
        city_alerts = {(await city.next()).data["rule"], (await city.next()).data["rule"]}
        # One more IT alert: had the police stream been given the UPS alert, it would come before this one.
        fire(console_hub, "camera", "gate-cam", "camera.tamper", active=False)
        assert (await police.next()).data["event"] == "resolved"
    assert (it_alert.event, it_alert.data["rule"], it_alert.data["team"]) == ("alert", "ups.on-battery", "it")
    assert (police_alert.data["rule"], police_alert.data["team"]) == ("camera.tamper", "police")
    AlertMessage.model_validate(it_alert.data)
    assert city_alerts == {"ups.on-battery", "camera.tamper"}  # the city-wide viewer sees both
    assert [e.data["rule"] for e in it.seen if e.event == "alert"] == ["ups.on-battery"]


async def test_a_reconnecting_client_gets_what_it_missed_or_is_told_to_resync(console_hub: ConsoleHub) -> None:
    ion = await console_hub.token("ion")
    async with stream(console_hub, ion) as first:
        await first.next()
        fire(console_hub, "ups", "ups-1", "ups.on_battery")
        last_id = (await first.next()).id
    assert last_id is not None
    assert last_id.startswith(console_hub.broadcaster.epoch)
    # While the console was away: one IT alert, one police alert (not for this operator).
    fire(console_hub, "camera", "gate-cam", "camera.tamper")
    fire(console_hub, "ups", "ups-2", "ups.on_battery")
    async with stream(console_hub, ion, last_id) as again:
        ready, missed = await again.next(), await again.next()
        assert ready.data["resync"] is False
        assert (missed.data["device"], missed.data["rule"]) == ("ups-2", "ups.on-battery")
    # An id of another hub process (before a restart) cannot be replayed: the console reloads its list.
    async with stream(console_hub, ion, "0badcafe-12") as other:
        assert (await other.next()).data["resync"] is True


async def test_stream_refuses_missing_tokens_and_malformed_ids(console_hub: ConsoleHub) -> None:
    async with stream(console_hub, None) as anonymous:
        assert anonymous.response.status_code == 401
        body = json.loads(await anonymous.response.aread())
        assert body["error"]["code"] == "not_authenticated"
    async with stream(console_hub, "not-a-token") as forged:
        assert forged.response.status_code == 401
    ion = await console_hub.token("ion")
    async with stream(console_hub, ion, "../../etc/passwd") as bad:
        assert bad.response.status_code == 422
        assert "last-event-id" in json.loads(await bad.response.aread())["error"]["message"]


async def test_slow_client_is_dropped_and_heartbeats_and_token_checks_keep_running(console_hub: ConsoleHub) -> None:
    broadcaster = console_hub.broadcaster
    broadcaster.config = StreamConfig(heartbeat_s=0.2, queue_size=4, recheck_s=0.2)
    ion = await console_hub.token("ion")
    async with stream(console_hub, ion) as slow:
        await slow.next()
        message = sample_message()
        started = time.perf_counter()
        for n in range(50):  # a burst in one turn of the loop: the stream cannot drain in between
            broadcaster.publish(replace_id(message, n))
        assert time.perf_counter() - started < 0.05  # the hub never waits for a console
        end = await slow.next()
        assert (end.event, end.data) == ("end", {"reason": "too_slow"})
        assert not [e for e in slow.seen if e.event == "alert"]
    assert console_hub.hub.metrics.registry.get_sample_value("cityhub_hub_console_streams_dropped_total") == 1
    async with stream(console_hub, ion) as idle:
        await idle.next()
        await asyncio.sleep(0.7)
        async with httpx.AsyncClient(base_url=console_hub.base_url) as client:
            logout = await client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {ion}"})
        assert logout.status_code == 204
        end = await idle.next()
        assert (end.event, end.data) == ("end", {"reason": "unauthenticated"})
        assert idle.heartbeats >= 2
    assert console_hub.hub.metrics.registry.get_sample_value("cityhub_hub_console_streams") == 0


def sample_message() -> AlertMessage:
    return AlertMessage(
        alert_id="a1", event=AlertEvent.FIRING, rule="ups.on-battery", site="townhall", device="ups-1", kind="ups",
        team="it", severity="major", summary="on battery", at=1, fired_at=1, actor="rules", hub="h",
    )  # fmt: skip


def replace_id(message: AlertMessage, n: int) -> AlertMessage:
    return message.model_copy(update={"alert_id": f"a{n}"})


def test_broadcaster_replays_only_within_its_buffer_and_scope() -> None:
    broadcaster = AlertBroadcaster(StreamConfig(replay_size=3, queue_size=10))
    it = team_scope(TeamConfig(kinds=["ups"]))
    first, resync = broadcaster.subscribe(it, None)
    assert resync
    for n in range(5):
        broadcaster.publish(replace_id(sample_message(), n))
    assert [e.message.alert_id for e in first.pending] == ["a0", "a1", "a2", "a3", "a4"]
    _, resync = broadcaster.subscribe(it, f"{broadcaster.epoch}-1")  # seq 2 has left the 3-event buffer
    assert resync
    later, resync = broadcaster.subscribe(it, f"{broadcaster.epoch}-3")
    assert not resync
    assert [e.message.alert_id for e in later.pending] == ["a3", "a4"]
    police, resync = broadcaster.subscribe(team_scope(TeamConfig(kinds=["camera"])), f"{broadcaster.epoch}-3")
    assert (list(police.pending), resync) == ([], False)
    _, resync = broadcaster.subscribe(Scope(unrestricted=True), f"{broadcaster.epoch}-99")  # from the future
    assert resync
