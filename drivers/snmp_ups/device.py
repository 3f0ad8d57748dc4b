"""``SnmpUpsDevice``: one UPS polled over SNMP, and told about its traps at once.

The first poll reads sysObjectID (SNMPv2-MIB, RFC 3418) and, unless the inventory names a profile,
picks the MIB profile with the longest matching prefix (UPS-MIB when none matches); it then reads the
identity OIDs once, so the birth message can name maker, model, serial and firmware. Every poll GETs
the profile's points, status OIDs and alarm count in requests of ``max_oids_per_request``, and walks
the alarm table when alarms are present.

A UPS that does not answer (or refuses our credentials) is logged once at WARNING, polled again only
after a growing backoff, and logged once at INFO when it answers again; in between its metrics are
reported with quality ``bad`` and no value. Traps arrive through the agent's ``TrapListener`` and
become events at once (through ``watch``'s sink), then trigger a poll so the readings follow.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Protocol

from cityhub.contract import DeviceEvent, Quality
from drivers.base import Backoff, DeviceDescription, PollResult, Sink
from drivers.snmp_ups.client import SnmpClient, SnmpTarget, SnmpValue
from drivers.snmp_ups.config import SnmpDeviceConfig
from drivers.snmp_ups.decode import bad_readings, metric_specs, poll_oids, readings_of, status_of
from drivers.snmp_ups.engine import Address
from drivers.snmp_ups.errors import SnmpAuthError, SnmpDriverError
from drivers.snmp_ups.profile import AlarmSpec, MibProfile, Oid, load_mib_profile, select_profile, shipped_profiles
from drivers.snmp_ups.status import StatusTracker, profile_events
from drivers.snmp_ups.traps import Notification

log = logging.getLogger(__name__)

SYS_OBJECT_ID: Oid = (1, 3, 6, 1, 2, 1, 1, 2, 0)
KIND = "ups"


class TrapRegistry(Protocol):
    """What a device needs from the trap listener."""

    def register(self, device: SnmpUpsDevice, address: Address) -> None:
        """Send the notifications from ``address`` to ``device``."""
        ...

    def unregister(self, device: SnmpUpsDevice) -> None:
        """Stop sending notifications to ``device``."""
        ...


class SnmpUpsDevice:
    """A UPS network card: polled by the agent, and watched for traps."""

    def __init__(
        self,
        config: SnmpDeviceConfig,
        *,
        client: SnmpClient,
        traps: TrapRegistry | None = None,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.client = client
        self.traps = traps
        self.clock = clock
        self.profile: MibProfile | None = load_mib_profile(config.profile) if config.profile else None
        self.ident: dict[str, str] | None = None
        self.unknown_traps = 0
        self._target: SnmpTarget | None = None
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._down_since: float | None = None
        self._down_reason: str | None = None
        self._tracker = StatusTracker()
        self._lock = asyncio.Lock()
        self._sink: Sink | None = None
        self._pending: list[DeviceEvent] = []
        self._poll_now = asyncio.Event()
        self._traps_applied = 0
        if traps is not None and _is_ip(config.host):
            traps.register(self, (config.host, config.port))

    @classmethod
    def from_config(
        cls, config: SnmpDeviceConfig, *, client: SnmpClient, traps: TrapRegistry | None = None
    ) -> SnmpUpsDevice:
        """A device for one inventory entry; raises MibProfileError for a profile that cannot be loaded."""
        return cls(config, client=client, traps=traps)

    @property
    def device_id(self) -> str:
        """The device's id in the inventory and on the topics."""
        return self.config.id

    @property
    def down(self) -> bool:
        """Whether the UPS counts as unreachable now."""
        return self._down_since is not None

    @property
    def down_reason(self) -> str | None:
        """Why it is down (None when up)."""
        return self._down_reason if self.down else None

    def describe(self) -> DeviceDescription:
        """Kind, profile and identity (once read), metrics and events."""
        ident = self.ident or {}
        if self.profile is None:
            return DeviceDescription(kind=KIND)
        return DeviceDescription(
            kind=KIND,
            profile=self.profile.name,
            maker=ident.get("maker") or self.profile.maker,
            model=ident.get("model"),
            firmware=ident.get("firmware"),
            serial=ident.get("serial"),
            metrics=metric_specs(self.profile),
            events=profile_events(self.profile),
        )

    async def aclose(self) -> None:
        """Leave the trap listener; the client is shared and closed by its owner."""
        if self.traps is not None:
            self.traps.unregister(self)

    async def poll(self) -> PollResult:
        """Read the UPS once (while backing off, report it bad without sending anything)."""
        async with self._lock:
            now = self.clock()
            if self.down and now < self._backoff.retry_at:
                return self._failed_result(now)
            try:
                result = await self._poll_once()
            except SnmpDriverError as exc:
                self._went_down(exc)
                return self._failed_result(self.clock())
            self._came_back()
            return result

    def _failed_result(self, now: float) -> PollResult:
        events, self._pending = self._pending, []
        return PollResult(readings=bad_readings(self.profile, int(now * 1000)), events=events, ok=False)

    async def _poll_once(self) -> PollResult:
        target = await self._resolve()
        if self.profile is None or self.ident is None:
            await self._identify(target)
        profile = self.profile
        assert profile is not None
        traps_before = self._traps_applied
        oids = poll_oids(profile)
        values: dict[Oid, SnmpValue] = {}
        step = profile.max_oids_per_request
        for start in range(0, len(oids), step):
            values.update(await self.client.get(target, oids[start : start + step]))
        alarm_oids, alarms_read = await self._read_alarms(target, profile, values)
        ts_ms = int(self.clock() * 1000)
        status = status_of(profile, values, alarm_oids)
        events, self._pending = self._pending, []
        if self._traps_applied != traps_before:
            # A trap arrived while this poll was on the wire: what it read may predate the trap, so it
            # must not undo the trap's state (and raise the event again); the trap asked for a new poll.
            pass
        elif status.quality is not Quality.BAD:
            events += self._tracker.update(status.tokens, ts_ms, source="poll")
        if alarms_read:
            events += self._tracker.update_alarms(status.other_alarms, ts_ms, source="poll")
        readings = readings_of(profile, values, status, ts_ms, alarms_read)
        ok = all(r.quality is Quality.GOOD for r in readings)
        return PollResult(readings=readings, events=events, ok=ok)

    async def _resolve(self) -> SnmpTarget:
        if self._target is None:
            self._target = await self.client.target(self.config)
            if self.traps is not None and not _is_ip(self.config.host):
                self.traps.register(self, self._target.address)
        return self._target

    async def _identify(self, target: SnmpTarget) -> None:
        if self.profile is None:
            found = (await self.client.get(target, [SYS_OBJECT_ID]))[SYS_OBJECT_ID]
            self.profile = select_profile(found if isinstance(found, tuple) else None)
            log.info("device %s: sysObjectID %s, MIB profile %s", self.device_id, found, self.profile.name)
        ident = dict(self.profile.ident)
        values = await self.client.get(target, list(ident.values())) if ident else {}
        self.ident = {key: text for key, oid in ident.items() if (text := _short_text(values.get(oid)))}

    async def _read_alarms(
        self, target: SnmpTarget, profile: MibProfile, values: dict[Oid, SnmpValue]
    ) -> tuple[list[Oid], bool]:
        table = profile.alarms
        if table is None:
            return [], False
        if values.get(table.count_oid) == 0:
            return [], True  # nothing to walk: one request saved per poll of a healthy UPS
        rows = await self.client.walk(target, table.descr_column)
        return [value for value in rows.values() if isinstance(value, tuple)], True

    def _went_down(self, exc: SnmpDriverError) -> None:
        now = self.clock()
        self._backoff.failed(now)
        reason = str(exc).removeprefix(f"{self.device_id}: ")
        if self._down_since is None or (isinstance(exc, SnmpAuthError) and reason != self._down_reason):
            log.warning("device %s (%s:%d) is down: %s", self.device_id, self.config.host, self.config.port, reason)
        if self._down_since is None:
            self._down_since = now
        self._down_reason = reason

    def _came_back(self) -> None:
        if self._down_since is not None:
            log.info("device %s is back after %.0f s", self.device_id, self.clock() - self._down_since)
        self._down_since = self._down_reason = None
        self._backoff.succeeded()

    # -- traps ---------------------------------------------------------------------------------------

    async def watch(self, sink: Sink, stop: asyncio.Event) -> None:
        """Hand trap events to ``sink`` as they arrive, and the poll each trap triggers, until ``stop``."""
        self._sink = sink
        if self._pending:
            events, self._pending = self._pending, []
            sink(PollResult(events=events))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                woken = asyncio.ensure_future(self._poll_now.wait())
                await asyncio.wait({stopping, woken}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                if self._poll_now.is_set() and not stop.is_set():
                    self._poll_now.clear()
                    sink(await self.poll())
        finally:
            self._sink = None
            stopping.cancel()
            await asyncio.gather(stopping, return_exceptions=True)

    def notify(self, note: Notification) -> None:
        """A trap or inform from this UPS (called by the listener): events now, then a poll."""
        profile = self.profile or _profile_knowing(note.trap_oid)
        spec = profile.trap(note.trap_oid) if profile else None
        if profile is None or spec is None:
            self.unknown_traps += 1
            log.debug("device %s: trap %s is not in its profile", self.device_id, note.trap_oid)
            return
        ts_ms = int(self.clock() * 1000)
        attributes = {"source": "trap", "trap": spec.name}
        set_, clear = spec.set, spec.clear
        events: list[DeviceEvent] = []
        alarm = _alarm_of(profile, note) if spec.alarm else None
        if alarm is not None and alarm.status is not None:
            set_, clear = ((alarm.status,), ()) if spec.alarm == "added" else ((), (alarm.status,))
        elif alarm is not None:
            current = self._tracker.alarms or frozenset()
            names = current | {alarm.name} if spec.alarm == "added" else current - {alarm.name}
            events += self._tracker.update_alarms(names, ts_ms, **attributes)
        events += self._tracker.apply_trap(set_, clear, ts_ms, **attributes)
        self._traps_applied += 1
        if spec.event:
            events.append(DeviceEvent(type=spec.event, ts=ts_ms, message=f"trap {spec.name}", attributes=attributes))
        if events:
            if self._sink is not None:
                self._sink(PollResult(events=events))
            else:
                self._pending += events
        self._poll_now.set()


def _short_text(value: SnmpValue) -> str:
    """A card's identity string as the birth message takes it: printable, at most 128 characters."""
    if value is None:
        return ""
    text = "".join(ch for ch in str(value) if ch.isprintable())
    return text.strip()[:128]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _profile_knowing(trap_oid: Oid) -> MibProfile | None:
    """Before the first poll picked a profile: the shipped profile that defines this trap."""
    for name in shipped_profiles():
        profile = load_mib_profile(name)
        if profile.trap(trap_oid) is not None:
            return profile
    return None


def _alarm_of(profile: MibProfile, note: Notification) -> AlarmSpec | None:
    """The well-known alarm an alarm-table trap carries (upsAlarmDescr.N = its OID), if any."""
    table = profile.alarms
    if table is None:
        return None
    for oid, value in note.varbinds:
        if oid[: len(table.descr_column)] == table.descr_column and isinstance(value, tuple):
            return table.alarm(value)
    return None
