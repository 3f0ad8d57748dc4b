"""WS-Discovery of ONVIF cameras: a Probe for dn:NetworkVideoTransmitter, and the ProbeMatches.

ONVIF Core spec, section 7.3: devices answer a WS-Discovery 2005/04 Probe sent by SOAP-over-UDP to
239.255.255.250:3702 (or unicast to a known address) with ProbeMatches naming their service addresses
(XAddrs) and scopes (``onvif://www.onvif.org/name/...``, ``.../hardware/...``, ``.../location/...``).

Hand-written rather than using ``wsdiscovery`` (WSDiscovery on PyPI): that library runs its own
threads and blocking sockets, has no asyncio API and no per-call timeout; a probe and its answers fit
in this module.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from lxml import etree

MULTICAST = ("239.255.255.250", 3702)
#: SOAP-over-UDP (section 3.4) repeats a multicast message so one lost datagram does not lose it.
UDP_REPEAT = 2
_NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "d": "http://schemas.xmlsoap.org/ws/2005/04/discovery",
    "dn": "http://www.onvif.org/ver10/network/wsdl",
}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
_SCOPE_PREFIX = "onvif://www.onvif.org/"


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveredCamera:
    """One ProbeMatch."""

    endpoint: str  # the device's stable id (EndpointReference Address), e.g. urn:uuid:...
    xaddrs: tuple[str, ...]
    scopes: tuple[str, ...]
    types: tuple[str, ...]
    name: str | None = None
    hardware: str | None = None
    location: str | None = None

    @property
    def host(self) -> str | None:
        """The host of the first device service address."""
        return urlsplit(self.xaddrs[0]).hostname if self.xaddrs else None

    @property
    def port(self) -> int | None:
        """The port of the first device service address (80 when it names none)."""
        if not self.xaddrs:
            return None
        parts = urlsplit(self.xaddrs[0])
        return parts.port or (443 if parts.scheme == "https" else 80)


def probe_message(message_id: str) -> bytes:
    """A WS-Discovery Probe for ONVIF video transmitters."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<env:Envelope xmlns:env="{_NS["env"]}" xmlns:wsa="{_NS["wsa"]}" xmlns:d="{_NS["d"]}" xmlns:dn="{_NS["dn"]}">'
        f"<env:Header><wsa:MessageID>{message_id}</wsa:MessageID>"
        '<wsa:To env:mustUnderstand="true">urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To>'
        f'<wsa:Action env:mustUnderstand="true">{_NS["d"]}/Probe</wsa:Action></env:Header>'
        "<env:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></env:Body></env:Envelope>"
    ).encode()


def _scope(scopes: tuple[str, ...], kind: str) -> str | None:
    values = [
        unquote(s[len(_SCOPE_PREFIX) + len(kind) + 1 :]) for s in scopes if s.startswith(f"{_SCOPE_PREFIX}{kind}/")
    ]
    return " / ".join(values) if values else None


def parse_probe_matches(data: bytes, message_id: str | None = None) -> list[DiscoveredCamera]:
    """The cameras in a ProbeMatches message; [] for anything else (or an answer to another probe)."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError:
        return []
    relates = root.findtext("env:Header/wsa:RelatesTo", namespaces=_NS)
    if message_id is not None and (relates or "").strip() != message_id:
        return []
    found = []
    for match in root.iterfind("env:Body/d:ProbeMatches/d:ProbeMatch", namespaces=_NS):
        scopes = tuple((match.findtext("d:Scopes", "", namespaces=_NS) or "").split())
        found.append(
            DiscoveredCamera(
                endpoint=(match.findtext("wsa:EndpointReference/wsa:Address", "", namespaces=_NS) or "").strip(),
                xaddrs=tuple((match.findtext("d:XAddrs", "", namespaces=_NS) or "").split()),
                scopes=scopes,
                types=tuple((match.findtext("d:Types", "", namespaces=_NS) or "").split()),
                name=_scope(scopes, "name"),
                hardware=_scope(scopes, "hardware"),
                location=_scope(scopes, "location"),
            )
        )
    return found


class _Collector(asyncio.DatagramProtocol):
    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.found: dict[str, DiscoveredCamera] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        for camera in parse_probe_matches(data, self.message_id):
            self.found.setdefault(camera.endpoint or ",".join(camera.xaddrs), camera)


async def discover(timeout_s: float = 3.0, *, address: tuple[str, int] | None = None) -> list[DiscoveredCamera]:
    """Probe (multicast, or unicast to ``address``) and collect the answers for ``timeout_s`` seconds."""
    loop = asyncio.get_running_loop()
    message_id = f"uuid:{uuid.uuid4()}"
    target = address or MULTICAST
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 4)
    sock.bind(("0.0.0.0", 0))  # noqa: S104 - answers come back to this socket from any interface
    transport, collector = await loop.create_datagram_endpoint(lambda: _Collector(message_id), sock=sock)
    try:
        for _ in range(UDP_REPEAT if address is None else 1):
            transport.sendto(probe_message(message_id), target)
        await asyncio.sleep(timeout_s)
    finally:
        transport.close()
    return sorted(collector.found.values(), key=lambda c: (c.xaddrs, c.endpoint))


def format_table(cameras: list[DiscoveredCamera]) -> str:
    """The cameras as a plain text table (name, host:port, hardware, location, device service)."""
    header = ("NAME", "ADDRESS", "HARDWARE", "LOCATION", "DEVICE SERVICE")
    rows = [
        (
            c.name or "-",
            f"{c.host}:{c.port}" if c.host else "-",
            c.hardware or "-",
            c.location or "-",
            c.xaddrs[0] if c.xaddrs else "-",
        )
        for c in cameras
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]
    )


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def add_discover_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cityhub agent discover``."""
    parser.add_argument("--timeout", type=float, default=3.0, metavar="S", help="seconds to wait for answers (3)")
    parser.add_argument(
        "--address", type=_host_port, default=None, metavar="HOST:PORT", help="probe one address instead of multicast"
    )


async def run_discover(args: argparse.Namespace) -> int:
    """Probe, print the table; 0 when a camera answered, 1 when none did."""
    cameras = await discover(args.timeout, address=args.address)
    if not cameras:
        print(f"no ONVIF camera answered within {args.timeout:g} s")
        return 1
    print(format_table(cameras))
    return 0
