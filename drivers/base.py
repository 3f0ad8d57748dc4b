"""What every driver offers the edge agent: a device it can describe, poll, and (optionally) watch.

The agent knows devices only through this interface (``edge_agent/devices.py`` builds them from the
inventory), so a Modbus panel, a UPS over SNMP and an ONVIF camera flow through the same code:

* ``describe()`` gives what goes into the device's birth message (kind, profile, maker, model, the
  metrics and event types it reports). It may change after a poll, e.g. once a UPS's ``sysObjectID``
  picked its MIB profile or a camera told its firmware; the agent then publishes the birth again.
* ``poll()`` reads the device once and returns readings and events; it never raises for a device
  problem (that is a ``PollResult`` with ``ok=False`` and ``bad`` readings), only for a programming error.
* ``down`` / ``down_reason``: whether the device counts as unreachable now, and why, for its status.
* ``watch(sink, stop)``: for devices that push (SNMP traps, ONVIF PullPoint events), a task that runs
  until ``stop`` and hands what arrives to ``sink`` at once, not at the next poll.
* ``aclose()``: release sockets and sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from cityhub.contract import DeviceEvent, MetricSpec, Reading


@dataclass(frozen=True, slots=True, kw_only=True)
class PollResult:
    """What one poll (or one pushed notification) produced."""

    readings: list[Reading] = field(default_factory=list)
    events: list[DeviceEvent] = field(default_factory=list)
    ok: bool = True  # every request answered


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceDescription:
    """What a device's birth message says about it."""

    kind: str
    profile: str | None = None
    maker: str | None = None
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None
    metrics: tuple[MetricSpec, ...] = ()
    events: tuple[str, ...] = ()


@dataclass(slots=True)
class Backoff:
    """A delay that doubles at each failure from ``initial_s`` up to ``max_s``, and resets on success.

    A device that stops answering is retried after it, so a dead device costs its line or its agent one
    timeout per backoff period instead of one per poll.
    """

    initial_s: float
    max_s: float
    delay_s: float = 0.0
    retry_at: float = 0.0  # the ``now`` given to failed(), plus the delay

    def failed(self, now: float) -> float:
        """Grow the delay after a failure at ``now``; return it."""
        self.delay_s = min(self.max_s, self.delay_s * 2) if self.delay_s else self.initial_s
        self.retry_at = now + self.delay_s
        return self.delay_s

    def succeeded(self) -> None:
        """Back to no delay."""
        self.delay_s = self.retry_at = 0.0


#: Where a watching device hands what it was told between polls.
Sink = Callable[[PollResult], None]


@runtime_checkable
class PolledDevice(Protocol):
    """A device the agent polls on an interval."""

    @property
    def device_id(self) -> str:
        """The device's id in the inventory and on the topics."""
        ...

    @property
    def down(self) -> bool:
        """Whether the device counts as unreachable now."""
        ...

    @property
    def down_reason(self) -> str | None:
        """Why it is down (for its status message), None when up."""
        ...

    def describe(self) -> DeviceDescription:
        """What the device's birth message says now."""
        ...

    async def poll(self) -> PollResult:
        """Read the device once; device problems are reported in the result, never raised."""
        ...

    async def aclose(self) -> None:
        """Release what the device holds (sockets, sessions, subscriptions)."""
        ...


@runtime_checkable
class WatchedDevice(PolledDevice, Protocol):
    """A device that also pushes notifications (traps, camera events) between polls."""

    async def watch(self, sink: Sink, stop: asyncio.Event) -> None:
        """Hand every notification to ``sink`` as it arrives, until ``stop`` is set."""
        ...
