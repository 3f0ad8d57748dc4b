"""Points and their exact encoding as InfluxDB line protocol.

Escaping follows InfluxDB's own parser (models/points.go in InfluxDB 1.x, the same in 2.x and 3.x):
- measurement: ``,`` and space are escaped with a backslash;
- tag keys, tag values and field keys: ``,``, ``=`` and space are escaped;
- string field values: ``"`` and ``\\`` are escaped, the value is double-quoted.

Line protocol has no escape for a newline or carriage return in a measurement, key or tag value, and a
backslash at the end of one would escape the separator after it. Such a point could only be written by
corrupting the line (or by injecting a second point), so the encoder refuses it with a
LineProtocolError instead. The contract's id and name patterns already keep these characters out; this
is the last line of defence.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

FieldValue = float | int | bool | str


class LineProtocolError(ValueError):
    """A point that cannot be written as line protocol without changing its meaning."""


class Point(NamedTuple):
    """One time-series point: a measurement, sorted tags, fields and a timestamp in milliseconds.

    A NamedTuple rather than the frozen dataclass the house style prefers for core values: the hub
    makes one per reading, and a tuple is built in less than half the time (bench/ingest.py).
    """

    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, FieldValue], ...]
    ts_ms: int


_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


def _check_name(kind: str, text: str) -> None:
    if not text:
        raise LineProtocolError(f"empty {kind}")
    if "\n" in text or "\r" in text:
        raise LineProtocolError(f"{kind} {text!r} contains a line break, which line protocol cannot carry")
    if text.endswith("\\"):
        raise LineProtocolError(f"{kind} {text!r} ends with a backslash, which would escape the separator")


def escape_measurement(name: str) -> str:
    """Escape a measurement name."""
    _check_name("measurement", name)
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_key(text: str, kind: str = "tag or field key") -> str:
    """Escape a tag key, a tag value or a field key."""
    _check_name(kind, text)
    return text.translate(_KEY_ESCAPES)


def format_field_value(value: FieldValue) -> str:
    """Format a field value: float, integer (``i`` suffix), boolean or double-quoted string."""
    if type(value) is float and math.isfinite(value):  # the common case first: this runs per point
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LineProtocolError(f"field value {value!r} is not finite")
        return repr(value)
    # A line break inside a quoted string value is read back as written (tests/hub/test_lineprotocol.py).
    return '"' + value.translate(_STRING_ESCAPES) + '"'


@lru_cache(maxsize=65_536)
def series_key(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    """The escaped ``measurement,tag=value,...`` prefix; cached because series repeat all the time."""
    parts = [escape_measurement(measurement)]
    # Influx drops empty tag values; sorting by key is what InfluxDB recommends for speed.
    for key, value in sorted(tags):
        if value:
            parts.append(f"{escape_key(key, 'tag key')}={escape_key(value, 'tag value')}")
    return ",".join(parts)


@lru_cache(maxsize=4_096)
def _field_key(key: str) -> str:
    return escape_key(key, "field key")


def encode_point(point: Point) -> str:
    """One point as one line of line protocol (without the trailing newline)."""
    measurement, tags, fields, ts_ms = point
    if len(fields) == 1:
        key, value = fields[0]
        if key == "value" and type(value) is float and math.isfinite(value):
            return f"{series_key(measurement, tags)} value={value!r} {ts_ms}"  # most points: one float
    elif not fields:
        raise LineProtocolError(f"point of {measurement!r} has no field")
    encoded = ",".join([_field_key(k) + "=" + format_field_value(v) for k, v in fields])
    return f"{series_key(measurement, tags)} {encoded} {ts_ms}"


def encode_points(points: list[Point]) -> bytes:
    """A batch of points as a line-protocol body (millisecond precision)."""
    return ("\n".join([encode_point(p) for p in points]) + "\n").encode("utf-8")


def split_body(body: bytes, max_bytes: int) -> list[bytes]:
    """Split a line-protocol body at line ends into parts of at most ``max_bytes`` (a longer line alone)."""
    if len(body) <= max_bytes:
        return [body]
    parts: list[bytes] = []
    start = 0
    while start < len(body):
        end = body.rfind(b"\n", start, start + max_bytes) + 1
        if end <= start:  # a single line longer than max_bytes
            end = body.index(b"\n", start) + 1
        parts.append(body[start:end])
        start = end
    return parts


def encode_valid_points(points: list[Point]) -> tuple[bytes, list[tuple[Point, str]]]:
    """Encode what can be encoded; return the body and the refused points with the reason."""
    lines: list[str] = []
    refused: list[tuple[Point, str]] = []
    for point in points:
        try:
            lines.append(encode_point(point))
        except LineProtocolError as exc:
            refused.append((point, str(exc)))
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b"", refused
