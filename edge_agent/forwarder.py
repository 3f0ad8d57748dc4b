"""The forwarder: drains the outbound queue to the broker, in order, at a bounded rate.

The single path rule
====================
Every message of the agent is appended to the queue (``edge_agent/buffer.py``) and only the forwarder
publishes: there is no direct path, not even when the queue is empty and the broker is connected. Why:

* **Order.** A live message published directly while older messages still wait in the queue would overtake
  them; with one path, every device's messages reach the broker in the order they were produced.
* **Nothing can be lost.** A message is on disk before anything tries to send it, so a crash at any moment
  loses only messages whose ``append`` had not returned. A direct path would need its own bookkeeping
  for a message in flight when the connection drops.
* **Cost.** One durable commit per append (or per ``append_many``) plus a forwarder hop; bench/buffer.py
  measures it against a bare ``MqttSession`` publishing the same messages (docs/edge-buffer.md has the
  figures). At an edge agent's rates it does not call for a direct path.

Live messages keep flowing during a drain: ``append`` never waits for the forwarder, and the forwarder
sends them behind the backlog, at most ``rate`` messages/s in total, so a fleet of agents reconnecting
after an outage does not flood the broker and the hub. The backlog shrinks at ``rate`` minus the live rate.

Acknowledgements and order
==========================
Up to ``window`` messages are in flight (published, PUBACK awaited), sent in id order; acknowledged
messages are removed from the queue in that order. While the session is disconnected nothing new is
published; paho resends the messages already in flight after reconnecting, in order, and their PUBACKs
then complete them, however long the outage was. paho resends them only after it has reported the new
connection, so a message published in that gap would overtake them: after a reconnection the forwarder
publishes nothing new until every message in flight from an earlier connection is acknowledged (one
round trip to the broker). A message without PUBACK after ``ack_timeout_s`` *of
connected time* (a broker that is stuck, or lost it) makes the forwarder rewind: every message from that
one on is published again, in order (counted in ``republished``). QoS 1 is at least once: a message in
flight when the connection drops, or a rewind, can reach the broker twice, at most ``window`` of them each
time; the first copies still arrive in order. The hub drops duplicates by ``(boot, seq)`` and stores
idempotently (docs/mqtt-contract.md).

Historical messages
===================
The timestamps inside the payloads carry the truth, and the agent marks a message ``historical`` (a
contract field) when it builds it while the broker is away or behind a backlog; the queue never rewrites
payloads. The forwarder counts, in ``historical``, the messages that waited more than
``historical_after_s`` between their append and their publication.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass

from cityhub.mqtt import MqttError, MqttSession
from edge_agent.buffer import OutboundQueue, QueuedMessage

log = logging.getLogger(__name__)

#: The session's own bound on a PUBACK wait. Only a last resort: the forwarder enforces ``ack_timeout_s``
#: itself, counting connected time only, because paho resends a message in flight after any reconnection.
_PUBLISH_TIMEOUT_S = 86_400.0
#: How long the very first connection may take before the forwarder reports the broker unreachable.
_FIRST_CONNECT_GRACE_S = 10.0
#: Messages read from the queue at once (one database round trip), then published as the window allows.
_READ_AHEAD = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwarderStats:
    """What the forwarder has done since it was created."""

    forwarded: int  # acknowledged by the broker
    historical: int  # of those, waited more than historical_after_s in the queue
    republished: int  # sent again after a PUBACK timeout (the broker may have got them twice)


@dataclass(frozen=True, slots=True)
class _InFlight:
    queued: QueuedMessage
    historical: bool
    sent_at: float  # time.monotonic()
    connection: int  # MqttSession.connection when it was published
    task: asyncio.Task[None]


class _TokenBucket:
    """At most ``rate`` tokens per second, with bursts of ``rate / 20`` (50 ms worth, at least one)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._capacity = max(1.0, rate / 20) if rate else 0.0
        self._tokens = self._capacity
        self._stamp = time.monotonic()

    async def take(self) -> None:
        """Wait for a token."""
        if self.rate is None:
            return
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens < 1.0:
            await asyncio.sleep((1.0 - self._tokens) / self.rate)
            self._tokens, self._stamp = 1.0, time.monotonic()
        self._tokens -= 1.0


class Forwarder:
    """Publishes the queue's messages through an ``MqttSession``, oldest first, removing them once acknowledged."""

    def __init__(
        self,
        queue: OutboundQueue,
        session: MqttSession,
        *,
        rate: float | None = 100.0,
        window: int = 64,
        historical_after_s: float = 60.0,
        ack_timeout_s: float = 60.0,
        idle_s: float = 1.0,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (or None for no limit)")
        if window < 1:
            raise ValueError("window must be at least 1")
        self.queue = queue
        self.session = session
        self.window = window
        self.historical_after_s = historical_after_s
        self.ack_timeout_s = ack_timeout_s
        self.idle_s = idle_s
        self._bucket = _TokenBucket(rate)
        self._ready: deque[QueuedMessage] = deque()  # read from the queue, not yet published
        self._in_flight: deque[_InFlight] = deque()
        self._cursor = 0  # the highest id handed to the session
        self._forwarded = self._historical = self._republished = 0
        self._paused = False
        self._ever_connected = False
        self._connection_seen = (0, 0.0)  # (MqttSession.connection, when the forwarder first saw it)

    @property
    def stats(self) -> ForwarderStats:
        """Counters for the agent's metrics."""
        return ForwarderStats(forwarded=self._forwarded, historical=self._historical, republished=self._republished)

    @property
    def in_flight(self) -> int:
        """Messages published and not yet acknowledged."""
        return len(self._in_flight)

    async def run(self) -> None:
        """Forward until cancelled; a QueueError (the queue's file failed) ends it."""
        try:
            while True:
                await self._wait_for_broker()
                if not self._ready and len(self._in_flight) < self.window:
                    self._ready.extend(await self.queue.peek(_READ_AHEAD, after_id=self._cursor))
                sent = await self._publish()
                if self._in_flight:
                    await self._settle(wait=not sent or len(self._in_flight) >= self.window)
                elif not self._ready:
                    await self.queue.wait_for_append(self._cursor, self.idle_s)
        finally:
            await self._abandon_in_flight()

    async def _wait_for_broker(self) -> None:
        """Return once connected; log an outage once when it starts and once when it ends."""
        waited = 0.0
        while not self.session.connected:
            # The first connection gets a grace period before it counts as an outage (no alarm at start-up).
            if not self._paused and (self._ever_connected or waited >= _FIRST_CONNECT_GRACE_S):
                self._paused = True
                log.warning("MQTT broker unreachable: forwarding paused, %d messages queued", self.queue.depth.messages)
            with contextlib.suppress(MqttError):
                await self.session.wait_connected(self.idle_s)
            waited += self.idle_s
        self._ever_connected = True
        if self._paused:
            self._paused = False
            log.info("MQTT broker reachable again: forwarding %d queued messages", self.queue.depth.messages)

    async def _publish(self) -> int:
        """Publish read messages while the window, the rate and the connection allow; returns how many."""
        sent = 0
        while self._ready and len(self._in_flight) < self.window:
            await self._bucket.take()
            if not self.session.connected:
                break  # the rest waits in _ready for the next connection
            if self._in_flight and self._in_flight[0].connection != self.session.connection:
                break  # paho sends those again on this connection: nothing may overtake them
            queued = self._ready.popleft()
            m = queued.message
            publish = self.session.publish(m.topic, m.payload, qos=m.qos, retain=m.retain, timeout_s=_PUBLISH_TIMEOUT_S)
            historical = queued.is_historical(self.queue.clock(), self.historical_after_s)
            connection = self.session.connection  # read before the publish: a reconnection after it only waits more
            task = asyncio.create_task(publish)
            self._in_flight.append(_InFlight(queued, historical, time.monotonic(), connection, task))
            self._cursor = queued.id
            sent += 1
        return sent

    async def _settle(self, *, wait: bool) -> None:
        """Remove the acknowledged messages at the head of the window (waiting for the first if ``wait``)."""
        if wait and not await self._wait_for_head():
            await self._rewind(self._in_flight.popleft())
            return
        acked: list[_InFlight] = []
        while self._in_flight and self._in_flight[0].task.done():
            entry = self._in_flight.popleft()
            if entry.task.cancelled() or isinstance(entry.task.exception(), MqttError):
                await self._rewind(entry)
                break
            entry.task.result()  # anything but MqttError is a bug: raise it
            acked.append(entry)
        if acked:
            await self.queue.remove([entry.queued.id for entry in acked])
            self._forwarded += len(acked)
            self._historical += sum(entry.historical for entry in acked)

    async def _wait_for_head(self) -> bool:
        """Wait for the oldest PUBACK; False once it is ``ack_timeout_s`` late, not counting outages."""
        head = self._in_flight[0]
        deadline = head.sent_at + self.ack_timeout_s
        while not head.task.done():
            if not self.session.connected:
                await self._wait_for_broker()
                continue
            if head.connection != self.session.connection:
                # paho sent it again on this connection: its PUBACK is due from the reconnection on.
                deadline = max(deadline, self._seen_since() + self.ack_timeout_s)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.wait({head.task}, timeout=min(remaining, self.idle_s))
        return True

    def _seen_since(self) -> float:
        """When the forwarder first saw the session's present connection."""
        if self._connection_seen[0] != self.session.connection:
            self._connection_seen = (self.session.connection, time.monotonic())
        return self._connection_seen[1]

    async def _rewind(self, failed: _InFlight) -> None:
        """Publish again from ``failed`` on (already out of the window): its PUBACK never came."""
        again = 1 + len(self._in_flight)
        log.warning(
            "no PUBACK for queued message %d within %g s: publishing %d messages again from it (at least once)",
            failed.queued.id,
            self.ack_timeout_s,
            again,
        )
        await self._abandon_in_flight()
        self._ready.clear()
        self._cursor = failed.queued.id - 1
        self._republished += again

    async def _abandon_in_flight(self) -> None:
        """Stop waiting for the messages in flight (they stay in the queue)."""
        tasks = [entry.task for entry in self._in_flight]
        self._in_flight.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
