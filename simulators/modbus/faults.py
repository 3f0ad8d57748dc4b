"""Misbehaving devices: answers rewritten on the wire, for timeout and bad-answer tests.

A fault is set per unit and applies to every answer of that unit until cleared. It is applied to the
frame the server is about to send, so it works the same for Modbus TCP and RTU:

* ``silent``: nothing is sent; the client times out, as with a device that is off or unplugged.
* ``exception``: a Modbus exception response with the fault's code instead of the answer (Modbus
  application protocol 1.1b3, section 7), e.g. 6 SERVER DEVICE BUSY or 4 SERVER DEVICE FAILURE.
* ``empty``: a well-formed answer that carries no values (byte count 0); a client that checks the count
  it asked for rejects it, one that does not reads nothing.
* ``garbage``: the answer's bytes scrambled: right length, nothing valid (RTU: the CRC fails; TCP: the
  transaction id and length are wrong). Clients discard it and time out, or drop the connection.

Frames are MBAP + PDU for TCP (Modbus messaging on TCP/IP 1.0b, section 3.1.3) and address + PDU + CRC
for RTU (Modbus over serial line 1.02, section 2.5.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Framing(StrEnum):
    """How a server frames its PDUs."""

    TCP = "tcp"
    RTU = "rtu"


class FaultMode(StrEnum):
    """How a faulty device answers."""

    NONE = "none"
    SILENT = "silent"
    EXCEPTION = "exception"
    EMPTY = "empty"
    GARBAGE = "garbage"


class ExceptionCode(IntEnum):
    """Modbus exception codes (Modbus application protocol 1.1b3, section 7)."""

    ILLEGAL_FUNCTION = 1
    ILLEGAL_DATA_ADDRESS = 2
    ILLEGAL_DATA_VALUE = 3
    SERVER_DEVICE_FAILURE = 4
    ACKNOWLEDGE = 5
    SERVER_DEVICE_BUSY = 6
    MEMORY_PARITY_ERROR = 8
    GATEWAY_PATH_UNAVAILABLE = 10
    GATEWAY_TARGET_NO_RESPONSE = 11


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """A unit's misbehaviour: its mode and, for ``exception``, the code it answers."""

    mode: FaultMode = FaultMode.NONE
    code: int = ExceptionCode.SERVER_DEVICE_BUSY

    def __post_init__(self) -> None:
        if not 1 <= self.code <= 255:
            raise ValueError(f"exception code {self.code} is not a byte (1-255)")


NO_FAULT = Fault()

_MBAP = 7  # transaction id (2), protocol id (2), length (2), unit id (1)


def crc16(data: bytes) -> bytes:
    """The Modbus RTU CRC of ``data``, low byte first as sent (Modbus over serial line 1.02, 6.2.2)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


def unit_of(frame: bytes, framing: Framing) -> int | None:
    """The unit id an outgoing frame answers for, None if the frame is too short to say."""
    position = 6 if framing is Framing.TCP else 0
    return frame[position] if len(frame) > position else None


def _reframe(frame: bytes, framing: Framing, pdu: bytes) -> bytes:
    """The frame with its PDU replaced: same transaction and unit, new length or CRC."""
    if framing is Framing.TCP:
        return frame[:4] + (1 + len(pdu)).to_bytes(2, "big") + frame[6:7] + pdu
    head = frame[:1] + pdu
    return head + crc16(head)


def _pdu(frame: bytes, framing: Framing) -> bytes:
    return frame[_MBAP:] if framing is Framing.TCP else frame[1:-2]


def apply_fault(frame: bytes, framing: Framing, fault: Fault) -> bytes:
    """The bytes a device with ``fault`` sends instead of ``frame`` (``b""``: nothing at all)."""
    pdu = _pdu(frame, framing)
    if fault.mode is FaultMode.NONE or not pdu:
        return frame
    function = pdu[0] & 0x7F
    if fault.mode is FaultMode.SILENT:
        return b""
    if fault.mode is FaultMode.EXCEPTION:
        return _reframe(frame, framing, bytes((function | 0x80, fault.code)))
    if fault.mode is FaultMode.EMPTY:
        return _reframe(frame, framing, bytes((function, 0)))
    return bytes(byte ^ 0x5A for byte in frame)
