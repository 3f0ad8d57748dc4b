"""Notifications over real sockets: e-mail to a local SMTP server (aiosmtpd) through apprise, signed
webhooks to a local HTTP receiver, the team topics, retries, filters and failures that are never silent."""

from __future__ import annotations

import asyncio
import contextlib
import email
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from services import free_port
from testkit import acknowledged

from cityhub.contract.alerts import AlertEvent, AlertMessage
from cityhub.mqtt import MqttError
from hub.config import load_hub_settings
from hub.errors import ConfigError
from hub.notify import Notifier, NotifyConfig, verify_signature

SECRET = "s3cret-s3cret-s3cret"


def message(severity: str = "critical", event: AlertEvent = AlertEvent.FIRING, n: int = 1) -> AlertMessage:
    return AlertMessage(
        alert_id=f"a{n}", event=event, rule="ups.on-battery", site="palace", device="ups-1", kind="ups", team="it",
        severity=severity, summary=f"palace: UPS ups-1 is on battery #{n}", runbook="docs/runbooks/ups.md#on-battery",
        at=1_700_000_000_000 + n, fired_at=1_700_000_000_000, actor="rules", hub="hub-1",
    )  # fmt: skip


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Any:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, box
    finally:
        controller.stop()


class Receiver:
    """A webhook receiver answering with ``statuses`` in turn (then 200), recording what it got."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes, bool]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        valid = verify_signature(
            SECRET.encode(), headers["X-Cityhub-Timestamp"], body, headers["X-Cityhub-Signature"], now_s=time.time()
        )
        self.requests.append((headers, body, valid))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


@contextlib.asynccontextmanager
async def receiver(statuses: list[int]) -> AsyncIterator[tuple[str, Receiver]]:
    got = Receiver(statuses)
    app = web.Application()
    app.router.add_post("/hook", got.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook", got
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def running(config: dict[str, Any], **kw: Any) -> AsyncIterator[tuple[Notifier, list[Any], CollectorRegistry]]:
    published: list[tuple[str, bytes]] = []
    failures: list[tuple[str, str, str]] = []

    def publish(topic: str, payload: bytes) -> asyncio.Future[None]:
        published.append((topic, payload))
        return acknowledged()

    async def failed(msg: AlertMessage, channel: str, error: str) -> None:
        failures.append((msg.alert_id, channel, error))

    registry = CollectorRegistry()
    notifier = Notifier(
        NotifyConfig.model_validate(config), topic_root="ch", hub_id="hub-1", publish=publish, registry=registry,
        on_failure=failed, **kw,
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop))
    try:
        yield notifier, [published, failures], registry
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def until(predicate: Any) -> None:
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 (polls what other tasks and servers do)
            await asyncio.sleep(0.02)


def count(registry: CollectorRegistry, channel: str, outcome: str) -> float:
    return registry.get_sample_value("cityhub_hub_notifications_total", {"channel": channel, "outcome": outcome}) or 0.0


async def test_email_through_apprise_to_a_local_smtp_server(smtp: Any) -> None:
    controller, box = smtp
    url = f"mailto://127.0.0.1:{controller.port}?from=hub@example.org&to=it@example.org&mode=insecure"
    config = {"channels": {"it-mail": {"type": "apprise", "urls": [url]}}, "routes": {"it": ["it-mail"]}}
    async with running(config) as (notifier, _, registry):
        notifier.notify(message())
        await until(lambda: box.messages)
    [mail] = box.messages
    assert "palace: UPS ups-1 is on battery #1" in mail["Subject"]
    assert "[CRITICAL]" in mail["Subject"]
    text = mail.get_payload(decode=True).decode() if not mail.is_multipart() else str(mail)
    assert "ups-1" in text
    assert "docs/runbooks/ups.md#on-battery" in text
    assert count(registry, "it-mail", "delivered") == 1


async def test_webhook_is_signed_and_retried_with_the_same_delivery_id() -> None:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    async with receiver([500, 503]) as (url, got):
        config = {
            "channels": {"ops": {"type": "webhook", "url": url, "secret": SECRET}},
            "routes": {"it": ["ops"]},
            "retry": {"attempts": 4, "initial_s": 1, "max_s": 1.5},
        }
        async with running(config, sleep=sleep) as (notifier, _, registry):
            notifier.notify(message())
            await until(lambda: len(got.requests) == 3)
            await until(lambda: count(registry, "ops", "delivered") == 1)
    assert all(valid for _, _, valid in got.requests)
    assert len({headers["X-Cityhub-Delivery"] for headers, _, _ in got.requests}) == 1
    assert AlertMessage.model_validate_json(got.requests[-1][1]) == message()
    assert delays == [1.0, 1.5]  # doubling, capped
    assert count(registry, "ops", "retried") == 2


def test_a_tampered_or_stale_signature_is_refused() -> None:
    body = message().model_dump_json().encode()
    from hub.notify import sign

    good = sign(SECRET.encode(), "1700000000", body)
    assert verify_signature(SECRET.encode(), "1700000000", body, good, now_s=1_700_000_100)
    assert not verify_signature(SECRET.encode(), "1700000000", body + b" ", good, now_s=1_700_000_100)
    assert not verify_signature(b"another-secret-000", "1700000000", body, good, now_s=1_700_000_100)
    assert not verify_signature(SECRET.encode(), "1700000000", body, good, now_s=1_700_001_000)
    assert not verify_signature(SECRET.encode(), "soon", body, good, now_s=1_700_000_100)


async def test_a_failure_is_reported_never_silent_and_other_channels_still_deliver() -> None:
    async with receiver([400]) as (bad_url, bad), receiver([]) as (good_url, good):
        config = {
            "channels": {
                "refusing": {"type": "webhook", "url": bad_url, "secret": SECRET},
                "closed": {"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/", "secret": SECRET},
                "fine": {"type": "webhook", "url": good_url, "secret": SECRET},
            },
            "routes": {"it": ["refusing", "closed", "fine"]},
            "retry": {"attempts": 2, "initial_s": 0.01},
        }
        async with running(config) as (notifier, (_, failures), registry):
            notifier.notify(message())
            await until(lambda: len(failures) == 2)
            await until(lambda: len(good.requests) == 1)
    assert len(bad.requests) == 1  # a 400 is not retried
    assert {(channel, error.split(" (")[0]) for _, channel, error in failures} == {
        ("refusing", "HTTP 400"),
        ("closed", "ConnectError: All connection attempts failed"),
    }
    assert count(registry, "refusing", "failed") == 1
    assert count(registry, "fine", "delivered") == 1


async def test_team_topics_on_mqtt_for_the_team_and_the_escalation_teams() -> None:
    async with running({}) as (notifier, (published, _), _):
        notifier.notify(message(), extra_teams=["police", "it"])
        await until(lambda: len(published) == 2)
    assert [topic for topic, _ in published] == ["ch/v1/_hub/alerts/it", "ch/v1/_hub/alerts/police"]
    assert AlertMessage.model_validate_json(published[0][1]) == message()


async def test_mqtt_notifications_leave_during_notify_and_a_lost_one_is_sent_again() -> None:
    """With a publish that sends at once (MqttSession.publish_soon), notify() itself sends: no wait for the
    event loop's next turn nor for the previous notification's PUBACK; a failed PUBACK is retried."""
    calls: list[tuple[str, int]] = []
    acks: list[asyncio.Future[None]] = []

    def publish(topic: str, payload: bytes) -> asyncio.Future[None]:
        calls.append((topic, AlertMessage.model_validate_json(payload).at))
        acks.append(asyncio.get_running_loop().create_future())
        return acks[-1]

    async def no_wait(_s: float) -> None:
        await asyncio.sleep(0)

    registry = CollectorRegistry()
    notifier = Notifier(
        NotifyConfig(), topic_root="ch", hub_id="hub-1", publish=publish, registry=registry, sleep=no_wait
    )
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop))
    team = "ch/v1/_hub/alerts/it"
    notifier.notify(message(n=1), extra_teams=["police"])
    notifier.notify(message(n=2))
    first, second = message(n=1).at, message(n=2).at
    assert calls == [(team, first), ("ch/v1/_hub/alerts/police", first), (team, second)]  # before any await
    acks[0].set_exception(MqttError("connection lost"))
    for n in (4, 5):  # the first one again, on both topics in turn (the police copy in flight was dropped)
        await until(lambda: len(calls) == n)  # noqa: B023 (awaited at once)
        acks[-1].set_result(None)
    assert calls[3:] == [(team, first), ("ch/v1/_hub/alerts/police", first)]
    assert acks[1].cancelled()
    acks[2].set_result(None)
    await until(lambda: count(registry, "mqtt", "delivered") == 2)
    assert count(registry, "mqtt", "retried") == 1
    notifier.notify(message(n=3))  # never acknowledged: given up quietly when the hub stops
    stop.set()
    await asyncio.wait_for(task, 10)
    assert acks[-1].cancelled()


async def test_severity_filter_and_order_per_channel() -> None:
    async with receiver([]) as (url, got):
        config = {
            "channels": {"pager": {"type": "webhook", "url": url, "secret": SECRET, "severities": ["critical"]}},
            "routes": {"it": ["pager"]},
        }
        async with running(config) as (notifier, _, _):
            for n in range(1, 21):
                notifier.notify(message("critical" if n % 2 else "minor", n=n))
            await until(lambda: len(got.requests) == 10)
    ids = [AlertMessage.model_validate_json(body).alert_id for _, body, _ in got.requests]
    assert ids == [f"a{n}" for n in range(1, 21, 2)]


async def test_an_unknown_extra_channel_is_a_reported_failure() -> None:
    async with running({}) as (notifier, (_, failures), _):
        notifier.notify(message(), extra_channels=["nowhere"])
        await until(lambda: failures)
    assert failures[0][1] == "nowhere"


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"routes": {"it": ["mail"]}}, "route of team 'it' names unknown channel(s) mail"),
        ({"channels": {"w": {"type": "webhook", "url": "http://x/", "secret": "short"}}}, "at least 16 characters"),
        ({"channels": {"m": {"type": "apprise", "urls": ["nonsense://pw@host"]}}}, "urls[0] is not an apprise URL"),
        ({"channels": {"w": {"type": "carrier-pigeon"}}}, "does not match any of the expected tags"),
    ],
)
def test_bad_notification_settings_are_refused_clearly(
    config: dict[str, Any], error: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ValidationError) as caught:
        NotifyConfig.model_validate(config)
    assert error in str(caught.value)
    with pytest.raises(ConfigError) as refused:  # as the hub says it at start
        load_hub_settings(None, notifications=config)
    assert error in str(refused.value)
    # apprise URLs carry credentials: never echoed, neither in the error nor in apprise's own log
    assert "pw@host" not in str(refused.value)
    assert "pw@host" not in caplog.text
