"""The narrow, typed layer over pysnmp's (untyped) engine: USM protocols, engines, and an observed UDP socket.

pysnmp drops what it cannot use without telling the application: an undecodable datagram, a wrong
community, a v3 message with a wrong digest only bump counters of the engine's own MIB (SNMPv2-MIB
snmpInASNParseErrs, RFC 3418; SNMP-USER-BASED-SM-MIB usmStats*, RFC 3414 section 5). The
``ObservedUdpTransport`` reads those counters around each datagram it hands to pysnmp and reports
which one went up, and from where: the client uses it to tell "garbage answers" from "no answer", the
trap listener to count bad communities and credentials. The simulator subclasses it for its faults.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
from collections.abc import Callable
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config as pysnmp_config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.hlapi.v3arch.asyncio import auth
from pysnmp.proto.rfc1902 import OctetString

from drivers.snmp_ups.config import UsmCredentials
from drivers.snmp_ups.errors import SnmpConfigError

UDP_DOMAIN: tuple[int, ...] = udp.DOMAIN_NAME
Address = tuple[str, int]

AUTH_PROTOCOLS: dict[str | None, Any] = {
    None: auth.USM_AUTH_NONE,
    "md5": auth.USM_AUTH_HMAC96_MD5,  # RFC 3414 section 6
    "sha": auth.USM_AUTH_HMAC96_SHA,  # RFC 3414 section 7
    "sha224": auth.USM_AUTH_HMAC128_SHA224,  # RFC 7860
    "sha256": auth.USM_AUTH_HMAC192_SHA256,
    "sha384": auth.USM_AUTH_HMAC256_SHA384,
    "sha512": auth.USM_AUTH_HMAC384_SHA512,
}
PRIV_PROTOCOLS: dict[str | None, Any] = {
    None: auth.USM_PRIV_NONE,
    "des": auth.USM_PRIV_CBC56_DES,  # RFC 3414 section 8
    "3des": auth.USM_PRIV_CBC168_3DES,  # draft-reeder-snmpv3-usm-3desede-00
    "aes": auth.USM_PRIV_CFB128_AES,  # RFC 3826
    "aes192": auth.USM_PRIV_CFB192_AES_BLUMENTHAL,  # draft-blumenthal-aes-usm-04
    "aes256": auth.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "aes192c": auth.USM_PRIV_CFB192_AES,  # the same, with Reeder key extension (Cisco)
    "aes256c": auth.USM_PRIV_CFB256_AES,
}

#: Engine counters of dropped messages, by what the drop means (MIB module, symbol).
DROP_COUNTERS: dict[str, tuple[tuple[str, str], ...]] = {
    "malformed": (("__SNMPv2-MIB", "snmpInASNParseErrs"), ("__SNMPv2-MIB", "snmpInBadVersions")),
    "bad_community": (("__SNMPv2-MIB", "snmpInBadCommunityNames"),),
    "bad_credentials": (
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownUserNames"),
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsWrongDigests"),
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsDecryptionErrors"),
        ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnsupportedSecLevels"),
    ),
    # An inform sender discovering our engine id (RFC 3414 section 4) bumps this legitimately.
    "unknown_engine": (("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownEngineIDs"),),
    "not_in_time_window": (("__SNMP-USER-BASED-SM-MIB", "usmStatsNotInTimeWindows"),),
}

OnDrop = Callable[[str, Address], None]
log = logging.getLogger(__name__)


def privacy_available() -> bool:
    """Whether pysnmp can encrypt: its DES and AES need the ``cryptography`` package."""
    return importlib.util.find_spec("cryptography") is not None


def parse_engine_id(text: str) -> bytes:
    """An engine id written in hex (``0x8000...`` or ``8000...``)."""
    return bytes.fromhex(text.removeprefix("0x"))


def new_engine(engine_id: bytes | None = None) -> SnmpEngine:
    """An SNMP engine; without ``engine_id`` a random one (RFC 3411 section 5, format 5: octets)."""
    ident = engine_id or bytes.fromhex("8000c4e005") + os.urandom(8)
    # Not SnmpEngine(snmpEngineID=...): given an id, pysnmp persists snmpEngineBoots under
    # $TMPDIR/__pysnmp/<id>/ and leaks the file it reads. Boots stay at 1 here; a v3 peer that cached a
    # later engine time resynchronizes through a notInTimeWindow report (RFC 3414 section 3.2.7).
    engine = SnmpEngine()
    (snmp_engine_id,) = engine.get_mib_builder().import_symbols("__SNMP-FRAMEWORK-MIB", "snmpEngineID")
    snmp_engine_id.syntax = snmp_engine_id.syntax.clone(OctetString(ident))
    engine.snmpEngineID = snmp_engine_id.syntax
    return engine


def engine_id_of(engine: SnmpEngine) -> bytes:
    """The engine's snmpEngineID."""
    (snmp_engine_id,) = engine.get_mib_builder().import_symbols("__SNMP-FRAMEWORK-MIB", "snmpEngineID")
    return bytes(snmp_engine_id.syntax)


def _check_privacy(creds: UsmCredentials) -> None:
    if creds.priv_protocol is not None and not privacy_available():
        raise SnmpConfigError(
            f"user {creds.user!r}: privacy protocol {creds.priv_protocol} needs the 'cryptography' package"
        )


def usm_user_data(creds: UsmCredentials) -> Any:
    """pysnmp's ``UsmUserData`` for a command generator."""
    _check_privacy(creds)
    return auth.UsmUserData(
        creds.user,
        authKey=creds.auth_key.get_secret_value() if creds.auth_key else None,
        privKey=creds.priv_key.get_secret_value() if creds.priv_key else None,
        authProtocol=AUTH_PROTOCOLS[creds.auth_protocol],
        privProtocol=PRIV_PROTOCOLS[creds.priv_protocol],
    )


def add_usm_user(engine: SnmpEngine, creds: UsmCredentials, engine_id: bytes | None = None) -> None:
    """Make ``engine`` accept ``creds`` (keys localized to ``engine_id``; default: its own)."""
    _check_privacy(creds)
    pysnmp_config.add_v3_user(
        engine,
        creds.user,
        AUTH_PROTOCOLS[creds.auth_protocol],
        creds.auth_key.get_secret_value() if creds.auth_key else None,
        PRIV_PROTOCOLS[creds.priv_protocol],
        creds.priv_key.get_secret_value() if creds.priv_key else None,
        securityEngineId=OctetString(engine_id) if engine_id else None,
    )


class ObservedUdpTransport(udp.UdpAsyncioTransport):  # type: ignore[misc]
    """pysnmp's asyncio UDP transport, reporting the datagrams pysnmp dropped and why."""

    def __init__(self, engine: SnmpEngine, on_drop: OnDrop | None = None) -> None:
        super().__init__()
        self.on_drop = on_drop
        builder = engine.get_mib_builder()
        self._counters = [
            (kind, builder.import_symbols(module, name)[0])
            for kind, symbols in DROP_COUNTERS.items()
            for module, name in symbols
        ]

    def _snapshot(self) -> list[int]:
        return [int(instance.syntax) for _, instance in self._counters]

    def datagram_received(self, datagram: bytes, addr: Address) -> None:
        """Hand the datagram to pysnmp on the next loop turn, as pysnmp does, but observed."""
        self.loop.call_soon(self.deliver, datagram, addr)

    def deliver(self, datagram: bytes, addr: Address) -> None:
        """Let pysnmp process one datagram now; report a drop it counted."""
        before = self._snapshot() if self.on_drop is not None else []
        try:
            self._callback_function(self, addr, datagram)
        except Exception:
            # pysnmp lets some decoder errors escape (pyasn1 raises TypeError on some garbage, e.g.
            # b"not snmp"): a datagram from the network must never reach the event loop's handler.
            log.debug("undecodable datagram from %s", addr, exc_info=True)
            self._report("malformed", addr)
            return
        if self.on_drop is not None:
            for (kind, _), old, new in zip(self._counters, before, self._snapshot(), strict=True):
                if new != old:
                    self._report(kind, addr)
                    return

    def _report(self, kind: str, addr: Address) -> None:
        if self.on_drop is not None:
            self.on_drop(kind, (str(addr[0]), int(addr[1])))

    @property
    def local_address(self) -> Address:
        """Where the socket is bound (after ``bind``)."""
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return (str(host), int(port))


async def bind(engine: SnmpEngine, transport: ObservedUdpTransport, address: Address | None) -> ObservedUdpTransport:
    """Open ``transport`` (on ``address``, or an ephemeral client port) and make it the engine's UDP transport.

    The socket is bound here, synchronously, so that "port in use" raises OSError at once (pysnmp would
    bind in a background task and fail silently).
    """
    loop = asyncio.get_running_loop()
    if address is None:
        await loop.create_datagram_endpoint(lambda: transport, local_addr=("0.0.0.0", 0))  # noqa: S104
    else:
        await loop.create_datagram_endpoint(lambda: transport, local_addr=address)
    pysnmp_config.add_transport(engine, UDP_DOMAIN, transport)
    return transport


def close_engine(engine: SnmpEngine) -> None:
    """Close the engine's sockets and cancel its timer task."""
    if engine.transport_dispatcher is not None:
        engine.close_dispatcher()
