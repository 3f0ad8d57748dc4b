"""``SnmpClient``: the agent's one SNMP engine and socket, shared by every UPS; GET and table walks.

One pysnmp ``SnmpEngine`` per agent (not one per device): it owns one UDP socket, one timer task and the
USM state of every v3 agent it discovered (RFC 3414 section 4), and serves any number of requests in
flight, so a UPS that does not answer costs its own poll a timeout and no one else anything.

This is the one place where pysnmp's results are mapped to the driver's errors (``errors.py``): an
``errorIndication`` becomes ``SnmpTimeout``, ``SnmpAuthError`` or ``MalformedResponse``; a varbind of
``noSuchObject`` / ``noSuchInstance`` (or SNMPv1's ``noSuchName``) becomes a missing value (``None``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from pyasn1.type import univ
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    UdpTransportTarget,
    bulk_cmd,
    get_cmd,
    next_cmd,
)
from pysnmp.proto import errind
from pysnmp.proto.rfc1902 import IpAddress

from drivers.snmp_ups.config import SnmpDeviceConfig
from drivers.snmp_ups.engine import Address, ObservedUdpTransport, bind, close_engine, new_engine, usm_user_data
from drivers.snmp_ups.errors import MalformedResponse, SnmpAuthError, SnmpConfigError, SnmpTimeout
from drivers.snmp_ups.profile import Oid, format_oid

log = logging.getLogger(__name__)

#: A value as the driver sees it: integers of every SMI type, text, an OID, or None (no such object).
SnmpValue = int | str | Oid | None

_AUTH_FAILURES = (
    errind.UnknownUserName,
    errind.WrongDigest,
    errind.UnknownSecurityName,
    errind.AuthenticationFailure,
    errind.AuthenticationError,
    errind.DecryptionError,
    errind.UnsupportedSecurityLevel,
    errind.NotInTimeWindow,
    errind.UnknownEngineID,
)
_NO_SUCH_NAME = 2  # SNMPv1 error-status noSuchName (RFC 1157 section 4.1.2)


@dataclass(frozen=True, slots=True, kw_only=True)
class SnmpTarget:
    """One agent as pysnmp addresses it: resolved address, credentials, timeout and retries."""

    name: str
    address: Address
    version: str
    auth: Any  # pysnmp CommunityData or UsmUserData
    transport: Any  # pysnmp UdpTransportTarget
    deadline_s: float  # our own limit on one request, retries and v3 discovery included


def to_value(value: Any) -> SnmpValue:
    """A pysnmp value as a plain Python one (the exception values of RFC 3416 become None)."""
    if isinstance(value, univ.Null):  # Null, noSuchObject, noSuchInstance, endOfMibView
        return None
    if isinstance(value, univ.ObjectIdentifier):
        return tuple(value)
    if isinstance(value, IpAddress):
        return str(value.prettyPrint())
    if isinstance(value, univ.OctetString):
        return bytes(value).decode("utf-8", errors="replace").rstrip("\x00")
    if isinstance(value, univ.Integer):
        return int(value)
    return str(value.prettyPrint())


class SnmpClient:
    """An SNMP command generator the devices of one agent share (an async context manager)."""

    def __init__(self, *, engine_id: bytes | None = None) -> None:
        self._engine_id = engine_id
        self._engine: Any = None
        self._malformed: dict[Address, float] = {}  # source -> when it last sent something not SNMP
        self._varbinds: dict[Oid, Any] = {}
        self.requests = 0

    async def __aenter__(self) -> Self:
        self._engine = new_engine(self._engine_id)
        await bind(self._engine, ObservedUdpTransport(self._engine, on_drop=self._dropped), None)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        close_engine(self._engine)
        self._engine = None

    @property
    def engine(self) -> Any:
        """The pysnmp engine (for the benchmark's bare loop)."""
        if self._engine is None:
            raise RuntimeError("SnmpClient is not open: use it as `async with SnmpClient() as client`")
        return self._engine

    def _dropped(self, kind: str, source: Address) -> None:
        if kind == "malformed":
            self._malformed[source] = time.monotonic()

    async def target(self, cfg: SnmpDeviceConfig) -> SnmpTarget:
        """Resolve a device's host and build its credentials (raises SnmpTimeout, SnmpConfigError)."""
        try:
            async with asyncio.timeout(max(cfg.timeout_s, 5.0)):
                transport = await UdpTransportTarget.create(
                    (cfg.host, cfg.port), timeout=cfg.timeout_s, retries=cfg.retries
                )
        except TimeoutError:
            raise SnmpTimeout(f"cannot resolve {cfg.host!r} in time") from None
        except PySnmpError as exc:
            raise SnmpTimeout(f"cannot resolve {cfg.host!r}: {exc}") from None
        if cfg.version == "3":
            auth = usm_user_data(cfg.usm())
        else:
            assert cfg.community is not None
            # mpModel 0 is SNMPv1, 1 is SNMPv2c (RFC 3412 section 5, snmpMessageProcessingModel)
            auth = CommunityData(cfg.community.get_secret_value(), mpModel=0 if cfg.version == "1" else 1)
        attempts = cfg.retries + 1
        return SnmpTarget(
            name=cfg.id,
            address=(str(transport.transport_address[0]), int(transport.transport_address[1])),
            version=cfg.version,
            auth=auth,
            transport=transport,
            deadline_s=cfg.timeout_s * attempts * (2 if cfg.version == "3" else 1) + 1.0,
        )

    def _object(self, oid: Oid) -> Any:
        found = self._varbinds.get(oid)
        if found is None:
            found = self._varbinds[oid] = ObjectType(ObjectIdentity(oid))
        return found

    async def get(self, target: SnmpTarget, oids: Sequence[Oid]) -> dict[Oid, SnmpValue]:
        """GET ``oids`` in one request; an OID the agent does not have maps to None."""
        pending = list(oids)
        values: dict[Oid, SnmpValue] = {}
        while pending:
            status, index, varbinds = await self._request(get_cmd, target, [self._object(o) for o in pending])
            if status == _NO_SUCH_NAME and target.version == "1" and 0 < index <= len(pending):
                # SNMPv1 fails the whole PDU for one unknown OID: drop it and ask again for the rest.
                values[pending.pop(index - 1)] = None
                continue
            if status:
                raise MalformedResponse(f"{target.name}: the agent answered error-status {status} (index {index})")
            if len(varbinds) != len(pending):
                raise MalformedResponse(f"{target.name}: asked {len(pending)} OIDs, got {len(varbinds)}")
            for oid, (_, value) in zip(pending, varbinds, strict=True):
                values[oid] = to_value(value)
            break
        return values

    async def walk(self, target: SnmpTarget, column: Oid, max_rows: int = 64) -> dict[Oid, SnmpValue]:
        """The rows of one table column: GETBULK (v2c, v3; RFC 3416 section 4.2.3) or GETNEXT (v1)."""
        rows: dict[Oid, SnmpValue] = {}
        cursor = column
        while len(rows) < max_rows:
            if target.version == "1":
                status, _, varbinds = await self._request(next_cmd, target, [self._object(cursor)])
            else:
                status, _, varbinds = await self._request(bulk_cmd, target, [self._object(cursor)], bulk=True)
            if status == _NO_SUCH_NAME and target.version == "1":
                return rows  # v1's end of the MIB view
            if status:
                raise MalformedResponse(f"{target.name}: the agent answered error-status {status} to a walk")
            for name, value in varbinds:
                oid = tuple(name)
                if oid[: len(column)] != column or isinstance(value, univ.Null) or oid <= cursor:
                    return rows
                rows[oid] = to_value(value)
                cursor = oid
            if not varbinds:
                return rows
        return rows

    async def _request(
        self, command: Any, target: SnmpTarget, varbinds: list[Any], *, bulk: bool = False
    ) -> tuple[int, int, list[Any]]:
        engine = self.engine
        started = time.monotonic()
        args = (0, 16) if bulk else ()  # non-repeaters, max-repetitions
        self.requests += 1
        try:
            async with asyncio.timeout(target.deadline_s):
                error, status, index, answer = await command(
                    engine, target.auth, target.transport, ContextData(), *args, *varbinds, lookupMib=False
                )
        except TimeoutError:
            raise SnmpTimeout(f"{target.name}: no answer within {target.deadline_s:.1f} s") from None
        except PySnmpError as exc:
            raise SnmpConfigError(f"{target.name}: {exc}") from None
        if error:
            raise self._map_error(target, error, started)
        return int(status), int(index), list(answer)

    def _map_error(self, target: SnmpTarget, error: Any, started: float) -> Exception:
        if isinstance(error, errind.RequestTimedOut):
            if self._malformed.get(target.address, -1.0) >= started:
                return MalformedResponse(f"{target.name}: the agent answered with datagrams that are not SNMP")
            hint = " (wrong community? agents do not answer one)" if target.version != "3" else ""
            return SnmpTimeout(f"{target.name}: no answer from {format_address(target.address)}{hint}")
        if isinstance(error, _AUTH_FAILURES):
            return SnmpAuthError(f"{target.name}: SNMPv3 credentials refused: {error}")
        return MalformedResponse(f"{target.name}: {error}")


def format_address(address: Address) -> str:
    """``host:port``."""
    return f"{address[0]}:{address[1]}"


__all__ = ["SnmpClient", "SnmpTarget", "SnmpValue", "format_address", "format_oid", "to_value"]
