"""The notifier: every alert transition to the team's MQTT topic and to the channels routed to the team.

One worker per channel, each with its own FIFO: a dead webhook never delays the e-mails, and each
channel receives an alert's transitions in order. Attempts back off exponentially; after the last,
the failure is logged, counted and handed to ``on_failure`` (the hub writes it into the alert's
history), so a notification is never lost without a trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cityhub.contract.alerts import AlertMessage, alert_topic
from hub.notify.apprise_channel import send_apprise
from hub.notify.config import AppriseChannel, NotifyConfig, WebhookChannel
from hub.notify.webhook import DeliveryFailed, post_webhook

log = logging.getLogger(__name__)

MQTT_CHANNEL = "mqtt"
#: Sends one message during the call and returns the wait for its PUBACK (MqttSession.publish_soon):
#: notify() can then send an alert before the event loop's next turn, and before the previous PUBACK.
Publish = Callable[[str, bytes], asyncio.Future[None]]
OnFailure = Callable[[AlertMessage, str, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Job:
    message: AlertMessage
    queued: float  # monotonic time of notify()
    topics: tuple[str, ...] = ()  # MQTT only
    sent: tuple[asyncio.Future[None] | None, ...] = ()  # MQTT only: notify()'s attempt per topic (None: failed)


class Notifier:
    """Delivers alert transitions; ``notify`` never blocks nor raises, ``run`` does the work."""

    def __init__(
        self,
        config: NotifyConfig,
        *,
        topic_root: str,
        hub_id: str,
        publish: Publish,
        registry: CollectorRegistry,
        on_failure: OnFailure | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        drain_s: float = 5.0,
    ) -> None:
        self.config = config
        self._root = topic_root
        self._hub_id = hub_id
        self._publish = publish
        self._on_failure = on_failure
        self._sleep = sleep
        self._drain_s = drain_s
        names = [*config.channels, *([MQTT_CHANNEL] if config.mqtt else [])]
        self._queues: dict[str, asyncio.Queue[_Job]] = {name: asyncio.Queue(config.queue_max) for name in names}
        self._outcomes = Counter(
            "cityhub_hub_notifications", "Alert notifications by channel and outcome", ["channel", "outcome"],
            registry=registry,
        )  # fmt: skip
        self._latency = Histogram(
            "cityhub_hub_notification_seconds", "From the transition to its delivery", ["channel"], registry=registry
        )
        queued = Gauge("cityhub_hub_notification_queue", "Notifications waiting", ["channel"], registry=registry)
        for name, queue in self._queues.items():
            queued.labels(channel=name).set_function(queue.qsize)
        self._failures: set[asyncio.Task[None]] = set()

    def notify(
        self, message: AlertMessage, *, extra_teams: Sequence[str] = (), extra_channels: Sequence[str] = ()
    ) -> None:
        """Queue ``message`` for the team's (and ``extra_teams``') topics and channels, and ``extra_channels``."""
        now = time.monotonic()
        teams = [message.team, *(t for t in extra_teams if t != message.team)]
        if self.config.mqtt:
            topics = tuple(alert_topic(self._root, t) for t in teams)
            body = message.model_dump_json().encode()
            sent = tuple(self._start(topic, body) for topic in topics)
            self._enqueue(MQTT_CHANNEL, _Job(message, now, topics, sent))
        names = [name for team in teams for name in self.config.routes.get(team, [])]
        for name in dict.fromkeys([*names, *extra_channels]):  # each channel once, in order
            channel = self.config.channels.get(name)
            if channel is None:
                self._failed(message, name, "no such channel in notifications.channels")
            elif channel.wants(message.severity, message.event.value):
                self._enqueue(name, _Job(message, now))

    def _start(self, topic: str, body: bytes) -> asyncio.Future[None] | None:
        """The first MQTT attempt, at once: no wait behind the loop's other work or the previous PUBACK."""
        try:
            return self._publish(topic, body)
        except Exception as exc:  # notify never raises: the worker makes the attempt again, and counts it
            log.warning("MQTT publish of an alert on %s could not start: %s", topic, exc)
            return None

    def _enqueue(self, name: str, job: _Job) -> None:
        try:
            self._queues[name].put_nowait(job)
        except asyncio.QueueFull:
            for started in job.sent:
                _drop(started)
            self._failed(job.message, name, f"queue full ({self.config.queue_max} waiting)")

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``; then go on for up to ``drain_s`` with what is still queued."""
        async with httpx.AsyncClient() as client, asyncio.TaskGroup() as tasks:
            workers = [tasks.create_task(self._worker(name, client), name=f"notify-{name}") for name in self._queues]
            await stop.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(q.join() for q in self._queues.values())), self._drain_s)
            for worker in workers:
                worker.cancel()
        for name, queue in self._queues.items():
            while not queue.empty():
                job = queue.get_nowait()
                for started in job.sent:
                    _drop(started)
                self._failed(job.message, name, "the hub stopped before it could be delivered")
        if self._failures:
            await asyncio.wait(self._failures, timeout=2.0)

    async def _worker(self, name: str, client: httpx.AsyncClient) -> None:
        queue = self._queues[name]
        while True:
            job = await queue.get()
            try:
                await self._deliver(name, job, client)
            finally:
                queue.task_done()

    async def _deliver(self, name: str, job: _Job, client: httpx.AsyncClient) -> None:
        retry, delivery = self.config.retry, uuid.uuid4().hex
        delay = retry.initial_s
        for attempt in range(1, retry.attempts + 1):
            try:
                await self._attempt(name, job, client, delivery, first=attempt == 1)
            except DeliveryFailed as exc:
                if not exc.retry or attempt == retry.attempts:
                    self._failed(job.message, name, f"{exc} (attempt {attempt} of {retry.attempts})")
                    return
                self._outcomes.labels(channel=name, outcome="retried").inc()
                log.warning("notification to %s failed (%s); retrying in %.1f s", name, exc, delay)
                await self._sleep(delay)
                delay = min(delay * 2, retry.max_s)
            else:
                self._outcomes.labels(channel=name, outcome="delivered").inc()
                self._latency.labels(channel=name).observe(time.monotonic() - job.queued)
                return

    async def _attempt(
        self, name: str, job: _Job, client: httpx.AsyncClient, delivery: str, *, first: bool = False
    ) -> None:
        body = job.message.model_dump_json().encode()
        if name == MQTT_CHANNEL:
            started: list[asyncio.Future[None] | None] = list(job.sent) if first else [None] * len(job.topics)
            try:
                for i, topic in enumerate(job.topics):
                    sending, started[i] = started[i], None  # awaited here from now on
                    try:
                        await asyncio.wait_for(self._publish(topic, body) if sending is None else sending, 15.0)
                    except Exception as exc:  # the session's errors, a timeout: all worth another try
                        error = f"MQTT publish on {topic}: {type(exc).__name__}: {exc}"
                        raise DeliveryFailed(error, retry=True) from None
            finally:
                for left in started:  # a failure before them: the retry publishes them again
                    _drop(left)
            return
        channel = self.config.channels[name]
        if isinstance(channel, WebhookChannel):
            await post_webhook(client, channel, body, delivery)
        elif isinstance(channel, AppriseChannel):
            try:
                await asyncio.wait_for(send_apprise(channel, job.message), 60.0)
            except TimeoutError:
                raise DeliveryFailed("apprise did not finish within 60 s", retry=True) from None

    def _failed(self, message: AlertMessage, channel: str, error: str) -> None:
        self._outcomes.labels(channel=channel, outcome="failed").inc()
        log.error("alert %s (%s) not delivered to %s: %s", message.alert_id, message.event.value, channel, error)
        if self._on_failure is not None:
            task = asyncio.get_running_loop().create_task(self._report(message, channel, error))
            self._failures.add(task)
            task.add_done_callback(self._failures.discard)

    async def _report(self, message: AlertMessage, channel: str, error: str) -> None:
        assert self._on_failure is not None
        with contextlib.suppress(Exception):
            await self._on_failure(message, channel, error)


def _drop(started: asyncio.Future[None] | None) -> None:
    """Stop waiting for a publish that nobody will await (no "exception was never retrieved" noise)."""
    if started is not None:
        started.cancel()
