"""Decode a point's value from Modbus registers, and encode it back (the simulator's side).

Modbus itself only defines 16-bit registers sent most significant byte first (Modbus application
protocol 1.1b3, section 4.2); how wider values are laid out is each maker's choice. The four layouts
in the field, for the 32-bit value 0x11223344:

    byte order  word order  registers           common name
    big         big         0x1122 0x3344       ABCD (big-endian)
    big         little      0x3344 0x1122       CDAB (word swap, common on PLCs and meters)
    little      big         0x2211 0x4433       BADC (byte swap)
    little      little      0x4433 0x2211       DCBA (little-endian)

Scale and offset apply to numeric types: value = raw * scale + offset.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from drivers.modbus.profile import DataType, PointSpec

Value = float | bool | str

_STRUCT: dict[DataType, str] = {
    DataType.INT16: ">h",
    DataType.UINT16: ">H",
    DataType.INT32: ">i",
    DataType.UINT32: ">I",
    DataType.INT64: ">q",
    DataType.UINT64: ">Q",
    DataType.FLOAT32: ">f",
    DataType.FLOAT64: ">d",
}


class DecodeError(ValueError):
    """Registers that cannot be a value of the point (wrong count, not a finite number)."""


def _to_bytes(point: PointSpec, registers: Sequence[int]) -> bytes:
    words = list(registers)
    if point.word_order == "little":
        words.reverse()
    try:
        return b"".join(word.to_bytes(2, point.byte_order) for word in words)
    except OverflowError:
        raise DecodeError(f"{point.metric}: registers {list(registers)} are not all 16-bit values") from None


def _from_bytes(point: PointSpec, data: bytes) -> list[int]:
    words = [int.from_bytes(data[i : i + 2], point.byte_order) for i in range(0, len(data), 2)]
    if point.word_order == "little":
        words.reverse()
    return words


def decode(point: PointSpec, registers: Sequence[int]) -> Value:
    """The point's value from its registers (for bool points: its bits, 0 or 1)."""
    if len(registers) != point.count:
        raise DecodeError(f"{point.metric}: expected {point.count} registers, got {len(registers)}")
    if point.type is DataType.BOOL:
        return bool(registers[0])
    if point.type is DataType.BIT:
        assert point.bit is not None
        return bool((registers[0] >> point.bit) & 1)
    if point.type is DataType.STRING:
        return _to_bytes(point, registers).rstrip(b"\x00 ").decode("utf-8", errors="replace")
    (raw,) = struct.unpack(_STRUCT[point.type], _to_bytes(point, registers))
    value = float(raw) * point.scale + point.offset
    if not math.isfinite(value):
        raise DecodeError(f"{point.metric}: registers {list(registers)} decode to {value}")
    return value


def encode(point: PointSpec, value: Value | int) -> list[int]:
    """The registers (or bits, 0 or 1) that hold ``value`` for the point; raises ValueError if it cannot."""
    if point.type in (DataType.BOOL, DataType.BIT):
        if not isinstance(value, bool):
            raise ValueError(f"{point.metric}: {value!r} is not a boolean")
        if point.type is DataType.BOOL:
            return [int(value)]
        assert point.bit is not None
        return [int(value) << point.bit]
    if point.type is DataType.STRING:
        if not isinstance(value, str):
            raise ValueError(f"{point.metric}: {value!r} is not a string")
        data = value.encode("utf-8")
        if len(data) > 2 * point.count:
            raise ValueError(f"{point.metric}: {value!r} does not fit in {point.count} registers")
        return _from_bytes(point, data.ljust(2 * point.count, b"\x00"))
    if isinstance(value, bool | str):
        raise ValueError(f"{point.metric}: {value!r} is not a number")
    raw: float | int
    if isinstance(value, int) and (point.scale, point.offset) == (1.0, 0.0):
        raw = value  # exact, also for 64-bit values beyond a float's 53 bits
    else:
        raw = (value - point.offset) / point.scale
    if point.type not in (DataType.FLOAT32, DataType.FLOAT64):
        try:
            raw = round(raw)
        except (OverflowError, ValueError):
            raise ValueError(f"{point.metric}: {value!r} is not a finite number") from None
    try:
        data = struct.pack(_STRUCT[point.type], raw)
    except (struct.error, OverflowError) as exc:
        raise ValueError(f"{point.metric}: {value!r} is out of range for {point.type.value}: {exc}") from None
    return _from_bytes(point, data)
