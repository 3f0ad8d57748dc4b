"""``TrapListener``: the agent's one SNMP notification receiver (traps and informs, v1, v2c and v3).

One UDP socket (port 162 by default) and one pysnmp engine running its notification receiver
(``pysnmp.entity.rfc3413.ntfrcv``, RFC 3413 section 3.4), which acknowledges informs itself. It has an
engine of its own, not the polling client's: v3 traps are authenticated with keys localized to each
*sender's* engine id (RFC 3414 section 2.6), and keeping the receiver's communities and users apart
from the poller's means a polling community is not also a trap community.

A notification is handed to the device registered for its source: the exact ``host:port`` first (a
card that sends from its agent port, as the simulator does), else the only device at that host (cards
usually send from an ephemeral port). Wrong communities, wrong v3 credentials, datagrams that are not
SNMP, notifications without snmpTrapOID.0 and unknown sources are counted in ``counters`` and logged
once per kind and source; none of them stops the listener.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from pysnmp.entity import config as pysnmp_config
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto.api import v2c

from drivers.snmp_ups.client import SnmpValue, to_value
from drivers.snmp_ups.config import TrapListenerConfig
from drivers.snmp_ups.engine import (
    Address,
    ObservedUdpTransport,
    add_usm_user,
    bind,
    close_engine,
    engine_id_of,
    new_engine,
    parse_engine_id,
)
from drivers.snmp_ups.errors import SnmpConfigError
from drivers.snmp_ups.profile import Oid

if TYPE_CHECKING:
    from drivers.snmp_ups.device import SnmpUpsDevice

log = logging.getLogger(__name__)

SNMP_TRAP_OID: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)  # SNMPv2-MIB snmpTrapOID.0 (RFC 3418)
_VERSIONS = {0: "1", 1: "2c", 3: "3"}
#: The counters, all zero at start (so a test or a metrics exporter sees every key).
COUNTERS = (
    "received",  # notifications pysnmp accepted
    "dispatched",  # handed to a device
    "informs",  # of which informs (acknowledged)
    "unknown_source",  # from an address no device is registered at
    "no_trap_oid",  # without snmpTrapOID.0
    "malformed",  # datagrams that are not SNMP
    "bad_community",  # v1/v2c with a community not configured
    "bad_credentials",  # v3 with an unknown user, a wrong digest or undecryptable
    "unknown_engine",  # v3 engine id discovery by inform senders (normal), or traps from an engine not listed
    "not_in_time_window",  # v3 replays or a sender whose clock state is stale
    "errors",  # a device's handler failed (a bug): logged with its traceback
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """A trap or inform as a device sees it."""

    source: Address
    trap_oid: Oid
    varbinds: tuple[tuple[Oid, SnmpValue], ...]
    version: str
    inform: bool
    security_name: str


class TrapListener:
    """Receives notifications and dispatches them to devices by source address (an async context manager)."""

    def __init__(self, config: TrapListenerConfig) -> None:
        self.config = config
        self.counters: Counter[str] = Counter(dict.fromkeys(COUNTERS, 0))
        self._engine: Any = None
        self._transport: ObservedUdpTransport | None = None
        self._by_address: dict[Address, SnmpUpsDevice] = {}
        self._logged: set[tuple[str, str]] = set()

    async def __aenter__(self) -> Self:
        engine_id = parse_engine_id(self.config.engine_id) if self.config.engine_id else None
        self._engine = engine = new_engine(engine_id)
        try:
            for index, community in enumerate(self.config.communities):
                pysnmp_config.add_v1_system(engine, f"trap-{index}", community.get_secret_value())
            for user in self.config.users:
                add_usm_user(engine, user)  # informs: keys localized to our own engine
                for sender in user.engine_ids:
                    add_usm_user(engine, user, parse_engine_id(sender))
            ntfrcv.NotificationReceiver(engine, self._received)
            self._transport = await bind(
                engine, ObservedUdpTransport(engine, on_drop=self._dropped), (self.config.host, self.config.port)
            )
        except OSError as exc:
            close_engine(engine)
            where = f"udp {self.config.host}:{self.config.port}"
            raise SnmpConfigError(f"cannot listen for traps on {where}: {exc.strerror}") from None
        except BaseException:
            close_engine(engine)
            raise
        log.info("listening for SNMP traps on udp %s:%d", *self.address)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._engine is not None:
            close_engine(self._engine)
            self._engine = None

    @property
    def address(self) -> Address:
        """Where it listens (the real port when configured with 0)."""
        if self._transport is None:
            raise RuntimeError("the trap listener is not open")
        return self._transport.local_address

    @property
    def engine_id(self) -> bytes:
        """Its snmpEngineID (v3 inform senders discover it)."""
        return engine_id_of(self._engine)

    def register(self, device: SnmpUpsDevice, address: Address) -> None:
        """Send the notifications from ``address`` (its host at any port, if unambiguous) to ``device``."""
        self.unregister(device)
        self._by_address[(address[0], int(address[1]))] = device

    def unregister(self, device: SnmpUpsDevice) -> None:
        """Forget ``device``."""
        for address in [a for a, d in self._by_address.items() if d is device]:
            del self._by_address[address]

    def device_for(self, source: Address) -> SnmpUpsDevice | None:
        """The device a notification from ``source`` belongs to."""
        exact = self._by_address.get(source)
        if exact is not None:
            return exact
        same_host = {id(d): d for a, d in self._by_address.items() if a[0] == source[0]}
        return next(iter(same_host.values())) if len(same_host) == 1 else None

    def _once(self, kind: str, source: Address, message: str, *args: object) -> None:
        if (kind, source[0]) not in self._logged:
            self._logged.add((kind, source[0]))
            log.warning(message + " (logged once per source)", *args)

    def _dropped(self, kind: str, source: Address) -> None:
        self.counters[kind] += 1
        if kind in ("malformed", "bad_community", "bad_credentials", "not_in_time_window"):
            self._once(kind, source, "trap listener: dropped a notification from %s: %s", source[0], kind)

    def _received(
        self, engine: Any, state_reference: Any, context_engine_id: Any, context_name: Any, var_binds: Any, cb_ctx: Any
    ) -> None:
        # pysnmp calls this from its datagram callback: an exception here must not reach the event loop.
        try:
            self._handle(engine, var_binds)
        except Exception:
            self.counters["errors"] += 1
            log.exception("trap listener: handling a notification failed")

    def _handle(self, engine: Any, var_binds: Any) -> None:
        request = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        source: Address = (str(request["transportAddress"][0]), int(request["transportAddress"][1]))
        inform = request["pdu"].tagSet == v2c.InformRequestPDU.tagSet
        self.counters["received"] += 1
        self.counters["informs"] += inform
        varbinds = tuple((tuple(name), to_value(value)) for name, value in var_binds)
        trap_oid = next((v for o, v in varbinds if o == SNMP_TRAP_OID), None)
        if not isinstance(trap_oid, tuple):
            self.counters["no_trap_oid"] += 1
            self._once("no_trap_oid", source, "trap listener: a notification from %s has no snmpTrapOID.0", source[0])
            return
        device = self.device_for(source)
        if device is None:
            self.counters["unknown_source"] += 1
            self._once("unknown_source", source, "trap listener: notification from %s, no device there", source[0])
            return
        note = Notification(
            source=source,
            trap_oid=trap_oid,
            varbinds=varbinds,
            version=_VERSIONS.get(int(request["messageProcessingModel"]), "?"),
            inform=inform,
            security_name=str(request["securityName"]),
        )
        self.counters["dispatched"] += 1
        device.notify(note)
