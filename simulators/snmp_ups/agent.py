"""``UpsAgent``: one simulated UPS network card, a pysnmp command responder and notification originator.

It listens on a UDP port on loopback (any free port by default), answers GET, GETNEXT and GETBULK for
the OIDs of its MIB profile with SNMPv1, v2c (by community) and v3 (USM users), and when ``ups.status``
changes sends the profile's traps (v2c or v3, trap or inform) to its trap targets. Its wire faults:

* ``silent``: requests are dropped (a card that hangs, or a wrong address);
* ``slow``: answers leave after ``slow_delay_s`` (longer than a client's timeout: a congested link);
* ``garbage``: answers are replaced by bytes that are not BER (a broken card or a middlebox).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any, Literal, Self

from pysnmp.entity import config as pysnmp_config
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    UdpTransportTarget,
    send_notification,
)
from pysnmp.proto import rfc1902

from drivers.snmp_ups.config import UsmCredentials
from drivers.snmp_ups.engine import (
    Address,
    ObservedUdpTransport,
    add_usm_user,
    bind,
    close_engine,
    engine_id_of,
    new_engine,
    usm_user_data,
)
from drivers.snmp_ups.profile import MibProfile, Oid, TrapSpec, load_mib_profile
from simulators.errors import TransportError
from simulators.points import Value
from simulators.snmp_ups.mib import STATUS_METRIC, UpsMib

log = logging.getLogger(__name__)

SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)  # SNMPv2-MIB snmpTrapOID.0 (RFC 3418)
#: Bytes that are not BER: a SEQUENCE header announcing more than follows.
GARBAGE = b"\x30\x82\x7f\xff\x02\x01\x01garbage"


class FaultMode(StrEnum):
    """What the simulated card does wrong on the wire."""

    NONE = "none"
    SILENT = "silent"
    GARBAGE = "garbage"
    SLOW = "slow"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapTarget:
    """Where the card sends its notifications, and how."""

    host: str
    port: int = 162
    version: Literal["2c", "3"] = "2c"
    community: str = "public"
    user: UsmCredentials | None = None  # v3: one of the agent's users
    inform: bool = False


class _FaultyTransport(ObservedUdpTransport):
    """The agent's socket: plays the fault on requests and answers."""

    fault: FaultMode = FaultMode.NONE
    slow_delay_s: float = 3.0
    dropped = 0

    def datagram_received(self, datagram: bytes, addr: Address) -> None:
        """Drop, delay or pass a request, by fault mode."""
        if self.fault is FaultMode.SILENT:
            self.dropped += 1
        elif self.fault is FaultMode.SLOW:
            self.loop.call_later(self.slow_delay_s, self.deliver, datagram, addr)
        else:
            self.loop.call_soon(self.deliver, datagram, addr)

    def send_message(self, outgoing: bytes, address: Any) -> None:
        """Send an answer, or garbage in its place."""
        super().send_message(GARBAGE if self.fault is FaultMode.GARBAGE else outgoing, address)


class UpsAgent:
    """A simulated UPS card serving one MIB profile (an async context manager)."""

    def __init__(
        self,
        profile: MibProfile | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        communities: tuple[str, ...] = ("public",),
        users: tuple[UsmCredentials, ...] = (),
        engine_id: bytes | None = None,
        trap_targets: tuple[TrapTarget, ...] = (),
        sys_object_id: Oid | None = None,
        serial: str | None = None,
        slow_delay_s: float = 3.0,
    ) -> None:
        self.profile = load_mib_profile(profile) if isinstance(profile, str) else profile
        self.host, self._port = host, port
        self.communities, self.users = communities, users
        self.trap_targets = trap_targets
        self.mib = UpsMib(self.profile, sys_object_id=sys_object_id, serial=serial or f"SIM-{port:05d}")
        self._engine_id = engine_id
        self._engine: Any = None
        self._transport: _FaultyTransport | None = None
        self._slow_delay_s = slow_delay_s
        self._tasks: set[asyncio.Task[None]] = set()
        self.traps_sent = 0
        self.trap_errors = 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen and answer; raises TransportError when the port cannot be opened."""
        self._engine = engine = new_engine(self._engine_id)
        for index, community in enumerate(self.communities):
            pysnmp_config.add_v1_system(engine, f"sim-{index}", community)
        for user in self.users:
            add_usm_user(engine, user)
        snmp_context = context.SnmpContext(engine)
        snmp_context.unregister_context_name(b"")
        snmp_context.register_context_name(b"", self.mib)
        for responder in (cmdrsp.GetCommandResponder, cmdrsp.NextCommandResponder, cmdrsp.BulkCommandResponder):
            responder(engine, snmp_context)
        self._transport = _FaultyTransport(engine)
        self._transport.slow_delay_s = self._slow_delay_s
        try:
            await bind(engine, self._transport, (self.host, self._port))
        except OSError as exc:
            close_engine(engine)
            raise TransportError(f"cannot listen on udp {self.host}:{self._port}: {exc.strerror}") from None
        self._port = self._transport.local_address[1]
        log.info("simulated UPS %s listening on udp %s:%d", self.profile.name, self.host, self._port)

    async def stop(self) -> None:
        """Stop answering; cancel notifications still in flight."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._engine is not None:
            close_engine(self._engine)
            self._engine = None

    @property
    def port(self) -> int:
        """The UDP port it answers on."""
        return self._port

    @property
    def engine_id(self) -> bytes:
        """Its snmpEngineID (what a v3 trap receiver must know)."""
        if self._engine is None:
            raise RuntimeError("the agent is not started")
        return engine_id_of(self._engine)

    @property
    def fault(self) -> FaultMode:
        """The wire fault it plays now."""
        return self._transport.fault if self._transport else FaultMode.NONE

    def set_fault(self, mode: FaultMode | str, delay_s: float | None = None) -> None:
        """Misbehave on the wire from now on."""
        assert self._transport is not None, "start the agent first"
        self._transport.fault = FaultMode(mode)
        if delay_s is not None:
            self._transport.slow_delay_s = delay_s

    def clear_fault(self) -> None:
        """Answer normally again."""
        self.set_fault(FaultMode.NONE)

    def set(self, metric: str, value: Value) -> None:
        """Report ``value`` for ``metric``; a ``ups.status`` change sends the matching traps."""
        previous = self.mib.set(metric, value)
        if metric == STATUS_METRIC and previous is not None and previous != self.mib.status:
            for trap, varbinds in self._traps_for(previous, self.mib.status):
                self.notify(trap, varbinds)

    def _traps_for(self, old: frozenset[str], new: frozenset[str]) -> list[tuple[TrapSpec, list[tuple[Oid, Any]]]]:
        added, removed = new - old, old - new
        chosen: list[tuple[TrapSpec, list[tuple[Oid, Any]]]] = []
        for trap in self.profile.traps:
            if (set(trap.set) & added) or (set(trap.clear) & removed and set(trap.set) <= new):
                chosen.append((trap, []))
        covered = {t for trap, _ in chosen for t in (*trap.set, *trap.clear)}
        alarms = self.profile.alarms
        for kind, tokens in (("added", added - covered), ("removed", removed - covered)):
            trap_spec = next((t for t in self.profile.traps if t.alarm == kind), None)
            if alarms is None or trap_spec is None:
                continue
            for alarm in (a for a in alarms.known if a.status in tokens):
                row = self.mib.alarm_row(alarm.oid) or 1
                chosen.append((trap_spec, [((*alarms.descr_column, row), rfc1902.ObjectIdentifier(alarm.oid))]))
        return chosen

    def notify(self, trap: TrapSpec, varbinds: list[tuple[Oid, Any]] | None = None) -> None:
        """Send ``trap`` to every trap target (in the background)."""
        for target in self.trap_targets:
            task = asyncio.get_running_loop().create_task(self._send(target, trap, varbinds or []))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, target: TrapTarget, trap: TrapSpec, varbinds: list[tuple[Oid, Any]]) -> None:
        if target.version == "3":
            assert target.user is not None, "a v3 trap target needs a user"
            auth = usm_user_data(target.user)
        else:
            auth = CommunityData(target.community, mpModel=1)  # noqa: S508 (v2c traps are what is simulated)
        objects = [ObjectType(ObjectIdentity(SNMP_TRAP_OID), rfc1902.ObjectIdentifier(trap.oid))]
        objects += [ObjectType(ObjectIdentity(oid), value) for oid, value in varbinds]
        address = await UdpTransportTarget.create((target.host, target.port), timeout=1.0, retries=2)
        kind = "inform" if target.inform else "trap"
        error, *_ = await send_notification(self._engine, auth, address, ContextData(), kind, *objects)
        if error:
            self.trap_errors += 1
            log.warning("%s %s to %s:%d: %s", kind, trap.name, target.host, target.port, error)
        else:
            self.traps_sent += 1
