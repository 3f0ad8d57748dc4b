"""A simulated device that speaks the cityhub contract: birth, online status with a last will,
telemetry batches with a per-device sequence number, and events.

It drives the hub end to end (``cityhub sim``) and is the base the device simulators build on.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from cityhub.contract import (
    QOS,
    RETAIN,
    BirthMessage,
    DeviceEvent,
    EventMessage,
    MessageKind,
    MetricSpec,
    Reading,
    StatusMessage,
    TelemetryMessage,
    Topics,
)
from cityhub.mqtt import BrokerAddress, MqttSession, SessionOptions, Will


def now_ms() -> int:
    """The wall clock in milliseconds since the epoch."""
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceIdentity:
    """Who a simulated device is."""

    site: str
    device: str
    kind: str
    profile: str | None = None
    model: str | None = None


class DevicePublisher:
    """One device's MQTT session publishing through the contract."""

    def __init__(
        self,
        url: str,
        identity: DeviceIdentity,
        *,
        topics: Topics | None = None,
        metrics: Sequence[MetricSpec] = (),
        protocol: int = 5,
        boot: int | None = None,
    ) -> None:
        self.identity = identity
        self.topics = topics or Topics()
        self.metrics = list(metrics)
        self.boot = boot if boot is not None else now_ms()
        self.seq = 0
        will = StatusMessage(
            device=identity.device,
            site=identity.site,
            kind=identity.kind,
            state="offline",
            boot=self.boot,
            ts=now_ms(),
            will=True,
            reason="connection lost",
        )
        self.session = MqttSession(
            BrokerAddress.from_url(url),
            SessionOptions(
                client_id=f"cityhub-dev-{identity.site}-{identity.device}",
                protocol=protocol,
                clean_start=True,
                will=Will(topic=self._topic(MessageKind.STATUS), payload=will.model_dump_json().encode()),
            ),
        )

    def _topic(self, kind: MessageKind) -> str:
        return self.topics.device(self.identity.site, self.identity.device, kind)

    async def _send(self, kind: MessageKind, payload: bytes, timeout_s: float) -> None:
        await self.session.publish(self._topic(kind), payload, qos=QOS[kind], retain=RETAIN[kind], timeout_s=timeout_s)

    async def start(self, timeout_s: float = 30.0) -> None:
        """Connect, then publish the birth and the online status."""
        await self.session.connect()
        ident = self.identity
        birth = BirthMessage(
            device=ident.device,
            site=ident.site,
            kind=ident.kind,
            boot=self.boot,
            ts=now_ms(),
            profile=ident.profile,
            model=ident.model,
            software="cityhub-sim",
            metrics=self.metrics,
        )
        await self._send(MessageKind.BIRTH, birth.model_dump_json().encode(), timeout_s)
        await self._status("online", timeout_s)

    async def _status(self, state: str, timeout_s: float) -> None:
        ident = self.identity
        status = StatusMessage(
            device=ident.device, site=ident.site, kind=ident.kind, state=state, boot=self.boot, ts=now_ms()
        )
        await self._send(MessageKind.STATUS, status.model_dump_json().encode(), timeout_s)

    def telemetry(self, readings: Sequence[Reading]) -> bytes:
        """The next telemetry payload (advances the sequence number)."""
        self.seq += 1
        ident = self.identity
        message = TelemetryMessage(
            device=ident.device, site=ident.site, kind=ident.kind, boot=self.boot, seq=self.seq, readings=list(readings)
        )
        return message.model_dump_json(exclude_defaults=True).encode()

    async def publish_telemetry(self, readings: Sequence[Reading], timeout_s: float = 60.0) -> None:
        """Publish one telemetry batch and wait for the broker's acknowledgement."""
        await self._send(MessageKind.TELEMETRY, self.telemetry(readings), timeout_s)

    async def publish_events(self, events: Sequence[DeviceEvent], timeout_s: float = 60.0) -> None:
        """Publish events and wait for the broker's acknowledgement."""
        self.seq += 1
        ident = self.identity
        message = EventMessage(
            device=ident.device, site=ident.site, kind=ident.kind, boot=self.boot, seq=self.seq, events=list(events)
        )
        await self._send(MessageKind.EVENT, message.model_dump_json(exclude_defaults=True).encode(), timeout_s)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Publish the offline status (a clean goodbye, not the will) and disconnect."""
        await self._status("offline", timeout_s)
        await self.session.disconnect()


ENVIRONMENT_METRICS = [
    MetricSpec(metric="environment.temperature", type="float", unit="Cel"),
    MetricSpec(metric="environment.humidity", type="float", unit="%"),
]


def environment_readings(device_index: int, ts: int) -> list[Reading]:
    """Plausible room temperature and humidity that drift slowly (a day-long sine plus noise)."""
    phase = ts / 86_400_000 * 2 * math.pi + device_index
    return [
        Reading(
            metric="environment.temperature",
            value=round(22 + 3 * math.sin(phase) + random.uniform(-0.2, 0.2), 2),
            unit="Cel",
            ts=ts,
        ),
        Reading(
            metric="environment.humidity",
            value=round(45 + 10 * math.cos(phase) + random.uniform(-1, 1), 1),
            unit="%",
            ts=ts,
        ),
    ]


async def run_synthetic(
    url: str,
    *,
    topics: Topics,
    site: str = "demo-site",
    devices: int = 3,
    interval_s: float = 2.0,
    count: int | None = None,
    protocol: int = 5,
    stop: asyncio.Event | None = None,
) -> int:
    """Run ``devices`` environment sensors publishing every ``interval_s``; return messages published."""
    publishers = [
        DevicePublisher(
            url,
            DeviceIdentity(site=site, device=f"env-{i:03d}", kind="environment_sensor", profile="synthetic"),
            topics=topics,
            metrics=ENVIRONMENT_METRICS,
            protocol=protocol,
        )
        for i in range(devices)
    ]
    for publisher in publishers:
        await publisher.start()
    published = 0
    stop = stop or asyncio.Event()
    try:
        while not stop.is_set() and (count is None or published < count):
            ts = now_ms()
            for index, publisher in enumerate(publishers):
                await publisher.publish_telemetry(environment_readings(index, ts))
                published += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
    finally:
        for publisher in publishers:
            await publisher.stop()
    return published
