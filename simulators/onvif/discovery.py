"""WS-Discovery for simulated cameras: answers Probes for ONVIF video transmitters with ProbeMatches.

ONVIF Core spec, section 7.3; WS-Discovery 2005/04 over SOAP-over-UDP. One responder answers for a
group of simulated cameras (one ProbeMatches each, as separate devices would), on a unicast port,
and optionally on the multicast group 239.255.255.250:3702.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Self, cast

from lxml import etree

from drivers.onvif.discovery import MULTICAST
from simulators.errors import TransportError
from simulators.onvif.server import SimulatedCamera
from simulators.onvif.services import scopes

log = logging.getLogger(__name__)

_D = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
_WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
_ENV = "http://www.w3.org/2003/05/soap-envelope"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
_WANTED = {"NetworkVideoTransmitter", "Device"}


def probe_id(data: bytes) -> str | None:
    """The MessageID of a Probe that asks for cameras (no Types, or ONVIF ones), else None."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError:
        return None
    probe = root.find(f"{{{_ENV}}}Body/{{{_D}}}Probe")
    message_id = root.findtext(f"{{{_ENV}}}Header/{{{_WSA}}}MessageID")
    if probe is None or not message_id:
        return None
    types = {t.rpartition(":")[2] for t in (probe.findtext(f"{{{_D}}}Types") or "").split()}
    return message_id.strip() if not types or types & _WANTED else None


def probe_matches(camera: SimulatedCamera, relates_to: str) -> bytes:
    """The ProbeMatches one camera answers with."""
    assert camera.services is not None
    scope_text = " ".join(scopes(camera.state, camera.services.identity))
    endpoint = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, camera.device_url)}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<env:Envelope xmlns:env="{_ENV}" xmlns:wsa="{_WSA}" xmlns:d="{_D}" '
        'xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns:tds="http://www.onvif.org/ver10/device/wsdl">'
        f"<env:Header><wsa:MessageID>uuid:{uuid.uuid4()}</wsa:MessageID><wsa:RelatesTo>{relates_to}</wsa:RelatesTo>"
        f"<wsa:To>{_WSA}/role/anonymous</wsa:To><wsa:Action>{_D}/ProbeMatches</wsa:Action></env:Header>"
        f"<env:Body><d:ProbeMatches><d:ProbeMatch><wsa:EndpointReference><wsa:Address>{endpoint}</wsa:Address>"
        "</wsa:EndpointReference><d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>"
        f"<d:Scopes>{scope_text}</d:Scopes><d:XAddrs>{camera.device_url}</d:XAddrs>"
        "<d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></env:Body></env:Envelope>"
    ).encode()


class _Responder(asyncio.DatagramProtocol):
    def __init__(self, cameras: Sequence[SimulatedCamera]) -> None:
        self.cameras = cameras
        self.transport: asyncio.DatagramTransport | None = None
        self.probes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The first (unicast) socket sends every answer; a datagram transport is what create_datagram_endpoint gives.
        if self.transport is None:
            self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        message_id = probe_id(data)
        if message_id is None or self.transport is None:
            return
        self.probes += 1
        for camera in self.cameras:
            if camera.answers_discovery:
                self.transport.sendto(probe_matches(camera, message_id), addr)


class DiscoveryResponder:
    """Answers WS-Discovery Probes for ``cameras``; an async context manager."""

    def __init__(
        self, cameras: Sequence[SimulatedCamera], *, host: str = "127.0.0.1", port: int = 0, multicast: bool = False
    ) -> None:
        self.cameras = cameras
        self.host = host
        self.multicast = multicast
        self._port = port
        self._transports: list[asyncio.DatagramTransport] = []
        self._protocol = _Responder(cameras)

    @property
    def port(self) -> int:
        """The unicast UDP port (known once started)."""
        return self._port

    @property
    def probes(self) -> int:
        """Probes answered so far."""
        return self._protocol.probes

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: self._protocol, local_addr=(self.host, self._port)
            )
            self._transports.append(transport)
            self._port = int(transport.get_extra_info("sockname")[1])
            if self.multicast:
                sock = _multicast_socket()
                mtransport, _ = await loop.create_datagram_endpoint(lambda: self._protocol, sock=sock)
                self._transports.append(mtransport)
        except OSError as exc:
            await self.__aexit__(None, None, None)
            raise TransportError(f"WS-Discovery: cannot listen on {self.host}:{self._port}: {exc}") from exc
        log.info("WS-Discovery on udp://%s:%s%s", self.host, self._port, " and multicast" if self.multicast else "")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for transport in self._transports:
            transport.close()
        self._transports.clear()


def _multicast_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("", MULTICAST[1]))
    membership = struct.pack("4s4s", socket.inet_aton(MULTICAST[0]), socket.inet_aton("0.0.0.0"))  # noqa: S104 - any interface joins
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    sock.setblocking(False)
    return sock
