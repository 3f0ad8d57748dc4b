#!/usr/bin/env python3
"""Container health checks of the cityhub services, on the standard library only (always in the image).

    cityhub-healthcheck http URL              HTTP GET; healthy on 2xx (the hub's /health says 503 when not ready)
    cityhub-healthcheck tcp HOST:PORT         a TCP connection is accepted (Modbus TCP simulator)
    cityhub-healthcheck snmp HOST:PORT COMM   an SNMPv2c GET of sysUpTime.0 is answered (UPS simulator)

Exit status 0 when healthy, 1 when not, 2 on a usage error; one line on standard error says why.
Every check gives up after --timeout seconds (3 by default), well inside compose's own timeout.
"""

from __future__ import annotations

import argparse
import secrets
import socket
import sys
import urllib.error
import urllib.request

# sysUpTime.0 (RFC 3418): every SNMP agent answers it, whatever its MIB profile.
SYS_UPTIME = bytes([0x06, 0x08, 0x2B, 0x06, 0x01, 0x02, 0x01, 0x01, 0x03, 0x00])


class Unhealthy(Exception):
    """The service did not answer as a healthy one does."""


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def check_http(url: str, timeout_s: float) -> None:
    """Healthy when GET ``url`` answers 2xx."""
    if not url.startswith(("http://", "https://")):
        raise Unhealthy(f"not an http(s) URL: {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (scheme checked above)
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        raise Unhealthy(f"{url}: HTTP {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise Unhealthy(f"{url}: {exc}") from None
    if not 200 <= status < 300:
        raise Unhealthy(f"{url}: HTTP {status}")


def check_tcp(address: tuple[str, int], timeout_s: float) -> None:
    """Healthy when a TCP connection to ``address`` is accepted."""
    try:
        socket.create_connection(address, timeout=timeout_s).close()
    except OSError as exc:
        raise Unhealthy(f"tcp {address[0]}:{address[1]}: {exc}") from None


def _tlv(tag: int, value: bytes) -> bytes:
    # BER definite length (X.690 8.1.3): short form below 128, else long form.
    if len(value) < 0x80:
        return bytes([tag, len(value)]) + value
    size = len(value).to_bytes((len(value).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + value


def snmp_get_request(community: str, request_id: int) -> bytes:
    """An SNMPv2c GetRequest of sysUpTime.0 (RFC 3416 PDU in an RFC 1901 message)."""
    varbind = _tlv(0x30, SYS_UPTIME + b"\x05\x00")
    pdu = _tlv(0xA0, _tlv(0x02, request_id.to_bytes(4, "big")) + b"\x02\x01\x00\x02\x01\x00" + _tlv(0x30, varbind))
    return _tlv(0x30, b"\x02\x01\x01" + _tlv(0x04, community.encode()) + pdu)


def check_snmp(address: tuple[str, int], community: str, timeout_s: float) -> None:
    """Healthy when the agent at ``address`` answers a GET with the same request id."""
    request_id = secrets.randbelow(0x7FFFFFFF)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.sendto(snmp_get_request(community, request_id), address)
            answer, _ = sock.recvfrom(65_535)
        except OSError as exc:  # TimeoutError included: a wrong community is not answered either
            raise Unhealthy(f"snmp {address[0]}:{address[1]}: no answer ({exc or 'timeout'})") from None
    # A GetResponse PDU (0xA2) carrying our request id, encoded as we sent it (4 bytes).
    if b"\xa2" not in answer or _tlv(0x02, request_id.to_bytes(4, "big")) not in answer:
        raise Unhealthy(f"snmp {address[0]}:{address[1]}: not an answer to our request")


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="cityhub-healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds before giving up (3)")
    kinds = parser.add_subparsers(dest="kind", required=True)
    kinds.add_parser("http").add_argument("url")
    kinds.add_parser("tcp").add_argument("address", type=_address)
    snmp = kinds.add_parser("snmp")
    snmp.add_argument("address", type=_address)
    snmp.add_argument("community")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one check; 0 healthy, 1 not."""
    args = build_parser().parse_args(argv)
    if not 0 < args.timeout <= 60:
        print("cityhub-healthcheck: --timeout must be in (0, 60]", file=sys.stderr)
        return 2
    try:
        if args.kind == "http":
            check_http(args.url, args.timeout)
        elif args.kind == "tcp":
            check_tcp(args.address, args.timeout)
        else:
            check_snmp(args.address, args.community, args.timeout)
    except Unhealthy as exc:
        print(f"cityhub-healthcheck: unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
