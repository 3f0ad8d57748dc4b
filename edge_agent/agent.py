"""The edge agent: polls its devices and publishes through the contract, never losing a reading.

Data flow: PolledDevice.poll (per device, on its interval; ``drivers/base.py``) and, for devices that
push (SNMP traps, camera events), PolledDevice.watch → contract messages (telemetry per poll, events on
state change) → OutboundQueue (on disk) → Forwarder → broker. Data goes through the queue,
so a broker or network outage only makes the queue longer (edge_agent/forwarder.py says why there is no
direct path for it).

Births and statuses are not data but the present state, retained by the broker: they are published
directly, at every (re)connection and on every device up/down while connected, never queued. Queued
behind a backlog, an old status would reach the broker after a newer one and stay retained; and the
agent's own "online" would wait behind the whole drain while its last will says "offline".

The agent is a device of its own (kind ``edge_agent``): its last will marks it offline, and every
device's birth names it as ``gateway``, so the hub knows the agent's devices went dark with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from cityhub.contract import (
    QOS,
    RETAIN,
    BirthMessage,
    DeviceEvent,
    EventMessage,
    MessageKind,
    Reading,
    StatusMessage,
    TelemetryMessage,
    Topics,
    short_text,
)
from cityhub.contract.registration import RegistrationTopics
from cityhub.mqtt import BrokerAddress, MqttError, MqttSession, SessionOptions, Will
from drivers.base import DeviceDescription, PolledDevice, PollResult, WatchedDevice
from drivers.modbus.profile import DeviceProfile
from edge_agent.buffer import OutboundMessage, OutboundQueue
from edge_agent.config import AgentConfig
from edge_agent.devices import open_devices
from edge_agent.forwarder import Forwarder
from edge_agent.metrics import AgentMetrics
from edge_agent.registration import Identity, Registration

if TYPE_CHECKING:
    from cityhub.http import EmbeddedServer

log = logging.getLogger(__name__)

AGENT_KIND = "edge_agent"
#: A message produced while older ones have waited this long will reach the hub late: it is historical.
HISTORICAL_AFTER_S = 10.0


@dataclass(slots=True)
class _Device:
    """A polled device and what the agent publishes about it."""

    site: str
    device_id: str
    interval_s: float
    poller: PolledDevice = field(init=False)
    described: DeviceDescription | None = None  # what its last published birth said
    seq: int = 0
    online: bool | None = None  # unknown until the first poll
    invalid_logged: str | None = None  # the last contract refusal logged, so each is logged once

    @property
    def id(self) -> str:
        return self.device_id


@dataclass(slots=True)
class EdgeAgent:
    """One agent process."""

    config: AgentConfig
    profiles: dict[str, DeviceProfile]
    clock: Callable[[], float] = time.time
    topics: Topics = field(init=False)
    boot: int = field(init=False)
    metrics: AgentMetrics = field(init=False)
    queue: OutboundQueue = field(init=False)
    session: MqttSession = field(init=False)
    forwarder: Forwarder = field(init=False)
    devices: list[_Device] = field(init=False)
    http: EmbeddedServer | None = field(init=False, default=None)
    _outbox: list[OutboundMessage] = field(init=False, default_factory=list)
    _outbox_ready: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    ready: asyncio.Event = field(init=False, default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        c = self.config
        self.topics = Topics(c.mqtt.topic_root)
        self.boot = int(self.clock() * 1000)
        self.metrics = AgentMetrics()
        self.queue = OutboundQueue(
            c.data_dir / "outbound.sqlite",
            max_bytes=c.buffer.max_mb * 1024 * 1024,
            max_age_s=c.buffer.max_age_h * 3600,
            on_drop=lambda reason, count: self.metrics.dropped.labels(reason=reason.value).inc(count),
        )
        self._connect_through(BrokerAddress.from_url(c.mqtt.url))
        # Drivers' clients need a running event loop: the pollers are built in run().
        self.devices = [
            _Device(site=d.site or c.agent.site, device_id=d.id, interval_s=d.poll_interval_s) for d in c.devices
        ]

    # -- messages ---------------------------------------------------------------------------------------

    def _connect_through(self, address: BrokerAddress) -> None:
        """The broker session (with the agent's last will) and the forwarder that uses it."""
        c = self.config
        self.session = MqttSession(
            address,
            SessionOptions(
                client_id=c.mqtt.client_id or f"cityhub-agent-{c.agent.site}-{c.agent.id}",
                protocol=c.mqtt.protocol,
                keepalive_s=c.mqtt.keepalive_s,
                will=Will(
                    topic=self._topic(c.agent.site, c.agent.id, MessageKind.STATUS),
                    payload=self._status(
                        c.agent.site, c.agent.id, AGENT_KIND, "offline", will=True, reason="connection lost"
                    ),
                ),
            ),
        )
        self.session.on_connected = self._announce_soon
        self.forwarder = Forwarder(self.queue, self.session, rate=c.buffer.drain_rate)

    async def _register(self) -> None:
        """On a broker that requires registration: the saved login, or a new one once approved."""
        c = self.config
        if c.registration is None:
            return
        registration = Registration(
            address=BrokerAddress.from_url(c.mqtt.url),
            topics=RegistrationTopics(c.mqtt.topic_root),
            identity=Identity(
                site=c.agent.site,
                device=c.agent.id,
                key=c.registration.provisioning_key,
                secret=c.registration.provisioning_secret.get_secret_value(),
                gateway_for=tuple((d.site, d.id) for d in self.devices),
            ),
            credentials_file=c.registration.credentials_file or c.data_dir / "credentials.json",
            protocol=c.mqtt.protocol,
        )
        login = await registration.credentials()
        self._connect_through(
            replace(BrokerAddress.from_url(c.mqtt.url), username=login.username, password=login.password)
        )

    def _topic(self, site: str, device: str, kind: MessageKind) -> str:
        return self.topics.device(site, device, kind)

    def _status(
        self, site: str, device: str, kind: str, state: str, *, will: bool = False, reason: str | None = None
    ) -> bytes:
        ts = self.boot if will else int(self.clock() * 1000)
        message = StatusMessage(
            device=device,
            site=site,
            kind=kind,
            state=state,
            boot=self.boot,
            ts=ts,
            will=will,
            reason=short_text(reason),  # a driver's error text, e.g. a camera's connection error
        )
        return message.model_dump_json(exclude_defaults=True).encode()

    def _out(self, site: str, device: str, kind: MessageKind, payload: bytes) -> OutboundMessage:
        return OutboundMessage(
            topic=self._topic(site, device, kind), payload=payload, qos=QOS[kind], retain=RETAIN[kind]
        )

    def _births(self) -> list[OutboundMessage]:
        agent = self.config.agent
        now = int(self.clock() * 1000)
        messages = [
            self._out(
                agent.site,
                agent.id,
                MessageKind.BIRTH,
                BirthMessage(
                    device=agent.id,
                    site=agent.site,
                    kind=AGENT_KIND,
                    boot=self.boot,
                    ts=now,
                    software="cityhub-agent",
                )
                .model_dump_json(exclude_defaults=True)
                .encode(),
            ),
            self._out(
                agent.site, agent.id, MessageKind.STATUS, self._status(agent.site, agent.id, AGENT_KIND, "online")
            ),
        ]
        for device in self.devices:
            messages.append(self._birth(device, now))
            if device.online is not None:
                state = "online" if device.online else "offline"
                messages.append(self._status_message(device, state))
        return messages

    def _birth(self, device: _Device, now: int) -> OutboundMessage:
        """The device's birth from what its driver says of it now; remembered, to republish on change."""
        description = device.described = device.poller.describe()
        birth = BirthMessage(
            device=device.id,
            site=device.site,
            kind=description.kind,
            boot=self.boot,
            ts=now,
            # What a device says of itself (a camera's model, firmware) is the device's text: made to fit.
            profile=short_text(description.profile),
            maker=short_text(description.maker),
            model=short_text(description.model),
            firmware=short_text(description.firmware),
            serial=short_text(description.serial),
            software="cityhub-agent",
            heartbeat_s=max(1, round(device.interval_s)),
            gateway=f"{self.config.agent.site}/{self.config.agent.id}",
            metrics=list(description.metrics),
            events=list(description.events),
        )
        return self._out(
            device.site, device.id, MessageKind.BIRTH, birth.model_dump_json(exclude_defaults=True).encode()
        )

    def _status_message(self, device: _Device, state: str) -> OutboundMessage:
        reason = device.poller.down_reason if state == "offline" else None
        kind = device.poller.describe().kind
        status = self._status(device.site, device.id, kind, state, reason=reason)
        return self._out(device.site, device.id, MessageKind.STATUS, status)

    def _announce_soon(self) -> None:
        """After every (re)connection: the will may have marked the agent offline meanwhile."""
        self._publish_state(self._births())

    def _publish_state(self, messages: list[OutboundMessage]) -> None:
        """Publish present-state messages now if connected; the next connection republishes them anyway."""
        if not self.session.connected:
            return
        for message in messages:
            self.session.publish_nowait(message.topic, message.payload, qos=message.qos, retain=message.retain)

    # -- polling ----------------------------------------------------------------------------------------

    async def _poll_forever(self, device: _Device, stop: asyncio.Event) -> None:
        polled = {
            ok: self.metrics.polls.labels(device=device.id, result="ok" if ok else "failed") for ok in (True, False)
        }
        next_at = time.monotonic()
        while not stop.is_set():
            started = time.monotonic()
            result = await device.poller.poll()
            self.metrics.poll_seconds.observe(time.monotonic() - started)
            polled[result.ok].inc()
            self._take(device, result)
            next_at += device.interval_s
            delay = next_at - time.monotonic()
            if delay < 0:  # overran (slow line): skip the missed ticks rather than bunching polls
                next_at = time.monotonic()
                delay = 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()

    def _take(self, device: _Device, result: PollResult) -> None:
        """What a poll or a pushed notification produced: state changes published, data queued.

        A driver's output the contract refuses (a value too long, a name it does not allow) is dropped,
        counted and logged once per device; the agent and the device's other messages carry on.
        """
        try:
            self._publish_state(self._status_change(device) + self._description_change(device))
            self._to_queue(self._poll_messages(device, result.readings, result.events))
        except ValidationError as exc:
            self.metrics.invalid.labels(device=device.id).inc()
            if device.invalid_logged != str(exc):
                device.invalid_logged = str(exc)
                log.error("device %s: its driver produced what the contract refuses, dropped: %s", device.id, exc)

    async def _watch(self, device: _Device, stop: asyncio.Event) -> None:
        """Run a pushing device's watch until ``stop``: traps and camera events go out between polls."""
        assert isinstance(device.poller, WatchedDevice)
        await device.poller.watch(lambda result: self._take(device, result), stop)

    def _description_change(self, device: _Device) -> list[OutboundMessage]:
        """A new birth when the driver learnt more about the device (a camera's firmware, a UPS's MIB)."""
        if device.described is None or device.poller.describe() == device.described:
            return []
        return [self._birth(device, int(self.clock() * 1000))]

    def _to_queue(self, messages: list[OutboundMessage]) -> None:
        """Hand messages to the queue writer; in production order, which it keeps."""
        if messages:
            self._outbox.extend(messages)
            self._outbox_ready.set()

    async def _write_outbox(self, stop: asyncio.Event) -> None:
        """Commit what the pollers produced, all devices' messages together: one disk flush for many polls.

        The loss window on a SIGKILL or power cut is what waits here for the current commit (milliseconds).
        Returns after the commit under way when ``stop`` is set (and the outbox signalled).
        """
        while not stop.is_set():
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            await self._flush_outbox()

    async def _flush_outbox(self) -> None:
        batch, self._outbox = self._outbox, []
        if batch:
            await self.queue.append_many(batch)

    def _status_change(self, device: _Device) -> list[OutboundMessage]:
        """The device's status message if it went up or down with this poll."""
        online = not device.poller.down
        if online == device.online:
            return []
        device.online = online
        self.metrics.devices_down.set(sum(1 for d in self.devices if d.online is False))
        return [self._status_message(device, "online" if online else "offline")]

    def _is_historical(self) -> bool:
        """Whether a message produced now will be late: the broker is away, or a backlog waits before it."""
        return not self.session.connected or self.queue.depth.oldest_age_s > HISTORICAL_AFTER_S

    def _poll_messages(
        self, device: _Device, readings: list[Reading], events: list[DeviceEvent]
    ) -> list[OutboundMessage]:
        """Telemetry for the poll's readings and an event message for its state changes, each with its seq."""
        kind = (device.described or device.poller.describe()).kind
        historical = self._is_historical()
        messages = []
        batches: tuple[tuple[MessageKind, list[Reading] | list[DeviceEvent]], ...] = (
            (MessageKind.TELEMETRY, readings),
            (MessageKind.EVENT, events),
        )
        for message_kind, items in batches:
            if not items:
                continue
            device.seq += 1  # one counter for telemetry and events: the hub sees gaps across both
            envelope = {"device": device.id, "site": device.site, "kind": kind, "boot": self.boot, "seq": device.seq}
            body: TelemetryMessage | EventMessage
            if message_kind is MessageKind.TELEMETRY:
                body = TelemetryMessage.model_validate({**envelope, "historical": historical, "readings": items})
            else:
                body = EventMessage.model_validate({**envelope, "historical": historical, "events": items})
            payload = body.model_dump_json(exclude_defaults=True).encode()
            messages.append(self._out(device.site, device.id, message_kind, payload))
        return messages

    # -- lifecycle --------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Liveness and readiness, for ``/health``."""
        depth = self.queue.depth
        return {
            "status": "ok" if self.ready.is_set() else "starting",
            "agent": self.config.agent.id,
            "mqtt_connected": self.session.connected,
            "queue_messages": depth.messages,
            "queue_oldest_s": round(depth.oldest_age_s, 1),
            "devices": len(self.devices),
            "devices_down": [d.id for d in self.devices if d.online is False],
        }

    async def run(self, stop: asyncio.Event, drain_s: float = 5.0) -> None:
        """Run until ``stop``; then say goodbye through the queue and give the forwarder ``drain_s`` to send it."""
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        await self._register()
        async with contextlib.AsyncExitStack() as stack:
            pollers = await open_devices(self.config, self.profiles, stack)
            for device in self.devices:
                device.poller = pollers[device.id]
            await self._run(stop, drain_s)

    async def _run(self, stop: asyncio.Event, drain_s: float) -> None:
        await self.queue.open()
        # Read at scrape time, so /metrics is current without anyone calling /health.
        m = self.metrics
        m.mqtt_connected.set_function(lambda: 1.0 if self.session.connected else 0.0)
        m.queue_messages.set_function(lambda: float(self.queue.depth.messages))
        m.queue_bytes.set_function(lambda: float(self.queue.depth.bytes))
        m.queue_oldest_seconds.set_function(lambda: self.queue.depth.oldest_age_s)
        m.forwarded.set_function(lambda: float(self.forwarder.stats.forwarded))
        m.historical.set_function(lambda: float(self.forwarder.stats.historical))
        self.session.start()  # births go out from on_connected, at every connection
        try:
            async with asyncio.TaskGroup() as tasks:
                forwarding = tasks.create_task(self.forwarder.run(), name="forwarder")
                writing = tasks.create_task(self._write_outbox(stop), name="queue-writer")
                polls = [tasks.create_task(self._poll_forever(d, stop), name=f"poll-{d.id}") for d in self.devices]
                polls += [
                    tasks.create_task(self._watch(d, stop), name=f"watch-{d.id}")
                    for d in self.devices
                    if isinstance(d.poller, WatchedDevice)
                ]
                if self.config.http.port is not None:
                    # Imported only when served: FastAPI and uvicorn are ~9 MB of a small box's memory.
                    from cityhub.http import EmbeddedServer, create_app

                    app = create_app(self.metrics.registry, self.health, title="cityhub edge agent")
                    self.http = EmbeddedServer.for_app(app, self.config.http.host, self.config.http.port)
                    serving = tasks.create_task(self.http.serve(), name="http")
                self.ready.set()
                await stop.wait()
                await asyncio.gather(*polls)
                # Not cancelled: a commit cancelled half-way still lands on the database thread, after
                # the goodbye's look at the queue, and would stay queued until the next start.
                self._outbox_ready.set()
                await writing
                await self._flush_outbox()
                await self._goodbye(drain_s)
                forwarding.cancel()
                if self.http is not None:
                    self.http.should_exit = True
                    await serving
        finally:
            await self.session.disconnect()
            await self.queue.aclose()

    async def _goodbye(self, drain_s: float) -> None:
        """Let the forwarder send what is queued (up to ``drain_s``), then say offline (not the will)."""
        agent = self.config.agent
        goodbye = self._out(
            agent.site,
            agent.id,
            MessageKind.STATUS,
            self._status(agent.site, agent.id, AGENT_KIND, "offline", reason="shutdown"),
        )
        deadline = time.monotonic() + drain_s
        while self.queue.depth.messages and time.monotonic() < deadline and self.session.connected:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if self.queue.depth.messages:
            log.info("%d messages stay in the queue for the next start", self.queue.depth.messages)
        if self.session.connected:
            with contextlib.suppress(MqttError):  # then the broker publishes the will instead
                await self.session.publish(
                    goodbye.topic, goodbye.payload, qos=goodbye.qos, retain=goodbye.retain, timeout_s=drain_s
                )
