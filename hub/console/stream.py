"""Live alerts for the console: ``GET /api/v1/alerts/stream``, server-sent events (text/event-stream).

Data flow: AlertService.listeners → :meth:`AlertBroadcaster.publish` (synchronous, in the event loop:
it only appends to each subscriber's bounded queue and never waits) → each stream's generator → socket.

Authentication. The stream is an ordinary API call with ``Authorization: Bearer``: the console reads it
with ``fetch()`` and a ReadableStream, not with EventSource, which cannot send headers. The other way,
a token in the URL, would land in proxy and server logs and in the browser's history; a single-use stream
ticket would be a second credential to issue, store and expire. With fetch the stream needs nothing the
API does not have already; the token is checked again every ``recheck_s``, so a revoked or expired one
ends the stream (``event: end``, reason ``unauthenticated``).

Events (each ``data:`` is one line of JSON)::

    event: ready    {"resync": bool, "heartbeat_s": float}   first; resync: fetch GET /alerts again
    id: <epoch>-<seq>
    event: alert    an AlertMessage (cityhub.contract.alerts), only of the caller's sites and kinds
    : heartbeat     a comment every ``heartbeat_s``, so proxies keep the line open and clients see it alive
    event: end      {"reason": "too_slow" | "unauthenticated"}   last; the client reconnects or logs in

Reconnection: a client sends the last id it saw as ``Last-Event-ID``; when that id is of this hub process
and still in the replay buffer, the missed alerts follow ``ready`` (``resync`` false), otherwise
``resync`` is true and the client reloads its list. The client subscribes before it reloads, so nothing
falls between the two. A client that does not keep up (its queue full) is dropped, never waited for.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import StreamingResponse
from prometheus_client import CollectorRegistry, Counter, Gauge

from cityhub.contract.alerts import AlertMessage
from hub.api.context import HubApi
from hub.api.security import ApiDep, BearerToken, Permission, Principal, Scope, hub_part, require

router = APIRouter(tags=["alerts"])

Reader = Annotated[Principal, Depends(require(Permission.ALERTS_READ))]
_EVENT_ID = re.compile(r"^(?P<epoch>[0-9a-f]{8})-(?P<seq>[0-9]{1,18})$")


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamConfig:
    """How the stream behaves: heartbeats, per-client queue, replay buffer, token re-checks."""

    heartbeat_s: float = 15.0
    queue_size: int = 256
    replay_size: int = 1024
    recheck_s: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEvent:
    """One alert transition with its place in this process's sequence."""

    seq: int
    message: AlertMessage


@dataclass(slots=True, kw_only=True, eq=False)
class Subscriber:
    """One open stream: what it may see and what waits to be sent."""

    scope: Scope
    limit: int
    pending: deque[StreamEvent] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False


class AlertBroadcaster:
    """Hands every alert transition to each open stream whose caller may see it."""

    def __init__(self, config: StreamConfig | None = None, registry: CollectorRegistry | None = None) -> None:
        self.config = config or StreamConfig()
        #: Part of every event id: ids of another hub process (before a restart) cannot be replayed.
        self.epoch = secrets.token_hex(4)
        self._seq = 0
        self._recent: deque[StreamEvent] = deque(maxlen=self.config.replay_size)
        self._subscribers: set[Subscriber] = set()
        self.clients = Gauge("cityhub_hub_console_streams", "Open console alert streams", registry=registry)
        self.clients.set_function(lambda: float(len(self._subscribers)))
        self.dropped = Counter(
            "cityhub_hub_console_streams_dropped", "Console streams dropped for not keeping up", registry=registry
        )

    def event_id(self, event: StreamEvent) -> str:
        """The SSE id of ``event``."""
        return f"{self.epoch}-{event.seq}"

    def publish(self, message: AlertMessage) -> None:
        """Queue ``message`` for every stream in scope (an AlertService listener: never blocks, never raises)."""
        self._seq += 1
        event = StreamEvent(seq=self._seq, message=message)
        self._recent.append(event)
        for subscriber in list(self._subscribers):
            if not subscriber.scope.allows(message.site, message.kind):
                continue
            if len(subscriber.pending) >= subscriber.limit:
                self._drop(subscriber)
                continue
            subscriber.pending.append(event)
            subscriber.wake.set()

    def _drop(self, subscriber: Subscriber) -> None:
        subscriber.dropped = True
        subscriber.pending.clear()
        subscriber.wake.set()
        self._subscribers.discard(subscriber)
        self.dropped.inc()

    def subscribe(self, scope: Scope, last_event_id: str | None) -> tuple[Subscriber, bool]:
        """A new stream, with the events it missed since ``last_event_id`` queued; and whether it must resync."""
        subscriber = Subscriber(scope=scope, limit=self.config.queue_size)
        missed = self._since(last_event_id)
        if missed is not None:
            subscriber.pending.extend(e for e in missed if scope.allows(e.message.site, e.message.kind))
        # More missed than a queue holds is a resync, not a flood.
        resync = missed is None or len(subscriber.pending) > subscriber.limit
        if resync:
            subscriber.pending.clear()
        self._subscribers.add(subscriber)
        return subscriber, resync

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a stream that ended."""
        self._subscribers.discard(subscriber)

    def _since(self, last_event_id: str | None) -> list[StreamEvent] | None:
        """The events after ``last_event_id``, or None when they are not all known (another epoch, too old)."""
        parsed = _EVENT_ID.match(last_event_id or "")
        if parsed is None or parsed["epoch"] != self.epoch:
            return None
        seq = int(parsed["seq"])
        if seq > self._seq:
            return None
        oldest = self._recent[0].seq if self._recent else self._seq + 1
        if seq < oldest - 1:
            return None
        return [event for event in self._recent if event.seq > seq]


def _frame(event: str, data: object, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _events(
    broadcaster: AlertBroadcaster, subscriber: Subscriber, resync: bool, still_authorised: StillAuthorised
) -> AsyncIterator[bytes]:
    """The stream's bytes until the client goes, falls behind, or its token stops working."""
    config = broadcaster.config
    checked = time.monotonic()
    try:
        yield b"retry: 2000\n\n" + _frame("ready", {"resync": resync, "heartbeat_s": config.heartbeat_s})
        while True:
            while subscriber.pending:
                event = subscriber.pending.popleft()
                yield _frame("alert", event.message.model_dump(mode="json"), broadcaster.event_id(event))
            if subscriber.dropped:
                yield _frame("end", {"reason": "too_slow"})
                return
            subscriber.wake.clear()
            try:
                await asyncio.wait_for(subscriber.wake.wait(), config.heartbeat_s)
            except TimeoutError:
                yield b": heartbeat\n\n"
            if time.monotonic() - checked >= config.recheck_s:
                checked = time.monotonic()
                if not await still_authorised():
                    yield _frame("end", {"reason": "unauthenticated"})
                    return
    finally:
        # (A stream whose generator never started is dropped by publish once its queue fills.)
        broadcaster.unsubscribe(subscriber)


class StillAuthorised:
    """Whether the token that opened a stream still resolves to a user (not revoked, not expired)."""

    def __init__(self, api: HubApi, token: str) -> None:
        self.api = api
        self.token = token

    async def __call__(self) -> bool:
        """True while the token is live."""
        return await self.api.users.resolve_token(self.token) is not None


get_broadcaster = hub_part(
    "cityhub_console_stream", AlertBroadcaster, "alerts_disabled", "alerting is not enabled on this hub"
)


@router.get("/alerts/stream", summary="Alert transitions as they happen (server-sent events)")
async def alert_stream(
    principal: Reader,
    api: ApiDep,
    token: BearerToken,
    broadcaster: Annotated[AlertBroadcaster, Depends(get_broadcaster)],
    last_event_id: Annotated[str | None, Header(max_length=40, pattern=_EVENT_ID.pattern)] = None,
) -> StreamingResponse:
    """Every transition of an alert in the caller's scope; see the module's docstring for the events."""
    assert token is not None  # Reader refused the request otherwise
    subscriber, resync = broadcaster.subscribe(principal.scope, last_event_id)
    return StreamingResponse(
        _events(broadcaster, subscriber, resync, StillAuthorised(api, token)),
        media_type="text/event-stream",
        # no-transform: a compressing proxy would hold events back to fill its buffers.
        headers={"Cache-Control": "no-store, no-transform", "X-Accel-Buffering": "no"},
    )
