"""Camera events: a supervised PullPoint subscription, and its notifications as contract events.

ONVIF Core spec, section 9.1.2 (Real-time Pull-Point Notification Interface): the client creates a
subscription with a termination time, pulls messages with a long poll, renews before the termination
time, and unsubscribes at the end. The supervisor here adds what a camera in the field needs:

* renewal at 60 % of the granted time, and no pull waits past that point, so a renewal is never late;
* a subscription that fails (a pull or renewal answered with a fault, a timeout, a dropped connection,
  typically because the camera rebooted and forgot it) is created again, after a backoff that grows from
  ``retry_initial_s`` to ``retry_max_s`` and resets once a pull succeeds;
* its own health as numbers (subscribed, renewals, recreations, failures, messages) for ``poll``.

We do not use onvif-zeep-async's ``PullPointManager``: it enforces a 60 s minimum subscription and
renews from fire-and-forget tasks with a fixed 40 s retry, so neither the timing nor the failures can
be supervised or tested from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from cityhub.contract import DeviceEvent
from drivers.base import Backoff
from drivers.onvif.client import OnvifSession, RawNotification
from drivers.onvif.errors import OnvifError
from drivers.onvif.topics import BY_TOPIC, strip_prefix

log = logging.getLogger(__name__)

RENEW_AT = 0.6  # of the granted time
_T = TypeVar("_T")
_TRUE = {"true", "1", "on", "active"}


@dataclass(slots=True)
class EventTracker:
    """Turns notifications into contract events, one per change of state."""

    states: dict[tuple[str, str], bool] = field(default_factory=dict)

    def track(self, message: RawNotification, ts_ms: int) -> DeviceEvent | None:
        """The event for ``message``, or None (unknown topic, or no change of state)."""
        spec = BY_TOPIC.get(strip_prefix(message.topic))
        if spec is None or spec.data not in message.data:
            return None
        active = message.data[spec.data].strip().lower() in _TRUE
        source = message.source.get(spec.source, "")
        key = (spec.event, source)
        previous = self.states.get(key)
        self.states[key] = active
        # An Initialized message gives the state at subscription time: an event only if it is active
        # or differs from what we knew (a change missed while the subscription was down).
        if previous == active or (previous is None and not active):
            return None
        attributes: dict[str, str | bool | float] = {"topic": message.topic, "source": source}
        if spec.event == "camera.digital_input":
            attributes["input"] = source
        if message.operation:
            attributes["operation"] = message.operation
        if message.utc_time is not None:
            attributes["camera_time"] = message.utc_time.isoformat()
        state = "active" if active else "inactive"
        return DeviceEvent(
            type=spec.event, ts=ts_ms, active=active, message=f"{spec.event} {state}", attributes=attributes
        )

    def current(self, event_type: str) -> bool | None:
        """Whether any source of ``event_type`` is active now (None before the first message)."""
        values = [v for (kind, _), v in self.states.items() if kind == event_type]
        return any(values) if values else None


@dataclass(slots=True, kw_only=True)
class SubscriptionHealth:
    """The subscription's own health, for readings and status."""

    subscribed: bool = False
    created: int = 0
    renewals: int = 0
    failures: int = 0
    messages: int = 0
    last_error: str | None = None

    @property
    def recreations(self) -> int:
        """Subscriptions created after the first."""
        return max(0, self.created - 1)


class PullPointSupervisor:
    """Keeps one PullPoint subscription alive and hands its notifications on."""

    def __init__(
        self,
        session: OnvifSession,
        *,
        device_id: str,
        termination_s: int,
        pull_wait_s: float,
        retry_initial_s: float,
        retry_max_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.device_id = device_id
        self.termination_s = termination_s
        self.pull_wait_s = pull_wait_s
        self.health = SubscriptionHealth()
        self._backoff = Backoff(retry_initial_s, retry_max_s)
        self._clock = clock
        self._renew_at = 0.0

    async def run(self, handle: Callable[[list[RawNotification]], None], stop: asyncio.Event) -> None:
        """Subscribe, pull and renew until ``stop``; recreate the subscription after failures."""
        try:
            while not stop.is_set():
                try:
                    await self._subscribe(stop)
                    await self._pull_loop(handle, stop)
                except OnvifError as exc:
                    self._failed(exc)
                    await _wait(stop, self._backoff.failed(time.monotonic()))
        finally:
            await self._unsubscribe()

    async def _subscribe(self, stop: asyncio.Event) -> None:
        # A fresh session each time: the camera may have rebooted with a new clock or new addresses.
        await _until(stop, self.session.open())
        term = await _until(stop, self.session.create_pullpoint(self.termination_s))
        if term is None:
            return
        self.health.created += 1
        self.health.subscribed = True
        self._renew_at = self._clock() + term.granted_s * RENEW_AT
        if self.health.created > 1:
            log.info("camera %s: event subscription created again (%d)", self.device_id, self.health.recreations)

    async def _pull_loop(self, handle: Callable[[list[RawNotification]], None], stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self._clock() >= self._renew_at:
                term = await _until(stop, self.session.renew(self.termination_s))
                if term is None:
                    return
                self.health.renewals += 1
                self._renew_at = self._clock() + term.granted_s * RENEW_AT
            wait_s = max(0.1, min(self.pull_wait_s, self._renew_at - self._clock()))
            messages = await _until(stop, self.session.pull(wait_s))
            if messages is None:
                return
            self._backoff.succeeded()
            if self.health.last_error is not None:
                log.info("camera %s: events flow again", self.device_id)
                self.health.last_error = None
            self.health.messages += len(messages)
            if messages:
                handle(messages)

    def _failed(self, exc: OnvifError) -> None:
        self.health.subscribed = False
        self.health.failures += 1
        if self.health.last_error is None:  # once per outage, not at every retry
            log.warning("camera %s: event subscription lost: %s", self.device_id, exc)
        self.health.last_error = str(exc)

    async def _unsubscribe(self) -> None:
        try:
            if self.health.subscribed:
                self.health.subscribed = False
                # Best effort: the subscription ends by its termination time anyway.
                with contextlib.suppress(OnvifError):
                    await self.session.unsubscribe()
        finally:
            await self.session.close()


async def _until(stop: asyncio.Event, work: Awaitable[_T]) -> _T | None:
    """``await work``, or None as soon as ``stop`` is set (the work is cancelled)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, OnvifError):
        await task
    return None


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
