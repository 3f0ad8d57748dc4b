"""One simulated device's memory: the four Modbus tables, holding exactly what its profile maps.

The memory knows which addresses the device answers: every address a point occupies, plus the unused
addresses between two points of a table when there are at most ``max_gap`` of them (the profile says the
device tolerates reads across such gaps, and the driver's read planner relies on it). Any other address
is unknown and must be answered with exception 02 ILLEGAL DATA ADDRESS (Modbus application protocol
1.1b3, section 7).

Values go in and out through the driver's own codec, so the simulator cannot disagree with the driver
about encodings. Several ``bit`` points share one register: setting one merges its bit into the register
and leaves the others alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from drivers.modbus.codec import Value, decode, encode
from drivers.modbus.profile import DataType, DeviceProfile, PointSpec, RegisterTable
from simulators.modbus.errors import PointValueError, UnknownPointError

#: Raw bounds of each integer type, and the largest finite value of each float type.
_RAW_BOUNDS: dict[DataType, tuple[float, float]] = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
    DataType.FLOAT32: (-3.4028234663852886e38, 3.4028234663852886e38),
    DataType.FLOAT64: (-1.7976931348623157e308, 1.7976931348623157e308),
}

Span = tuple[int, int]  # [start, end): addresses a read may cover


def is_numeric(point: PointSpec) -> bool:
    """True for points holding a number (integers and floats, scaled or not)."""
    return point.type in _RAW_BOUNDS


def value_range(point: PointSpec) -> tuple[float, float]:
    """The smallest and largest value a numeric point can hold, after scale and offset."""
    low, high = (raw * point.scale + point.offset for raw in _RAW_BOUNDS[point.type])
    return (low, high) if low <= high else (high, low)


def resolve_state(point: PointSpec, value: Value) -> Value:
    """``value``, with a state label (``pre_discharge``) replaced by its code for enumerated points."""
    if not (point.states and isinstance(value, str)):
        return value
    for code, label in point.states:
        if label == value:
            return code
    labels = ", ".join(f"{code} ({label})" for code, label in point.states)
    raise PointValueError(f"{point.metric}: {value!r} is not one of its states: {labels}")


def encode_value(point: PointSpec, value: Value) -> list[int]:
    """The registers (or bits) holding ``value``; raises PointValueError when the point cannot hold it."""
    value = resolve_state(point, value)
    try:
        return encode(point, value)
    except ValueError as exc:
        raise PointValueError(str(exc)) from None


def check_value(point: PointSpec, value: Value) -> Value:
    """``value`` checked strictly, for scenario files: the right type, within range, a known state.

    Returns it as the point stores it (a state label becomes its code); raises PointValueError.
    """
    if point.type in (DataType.BOOL, DataType.BIT):
        if not isinstance(value, bool):
            raise PointValueError(f"{value!r} is not true or false ({point.metric} is a {point.type.value})")
        return value
    if point.type is DataType.STRING:
        if not isinstance(value, str):
            raise PointValueError(f"{value!r} is not a string ({point.metric} is a string)")
        encode_value(point, value)
        return value
    value = resolve_state(point, value)
    if isinstance(value, bool | str):
        raise PointValueError(f"{value!r} is not a number ({point.metric} is a {point.type.value})")
    if point.states and value not in dict(point.states):
        labels = ", ".join(f"{code} ({label})" for code, label in point.states)
        raise PointValueError(f"{value!r} is not one of the states of {point.metric}: {labels}")
    low, high = value_range(point)
    if not low <= value <= high:
        raise PointValueError(f"{value!r} is out of range for {point.metric} ({point.type.value}: {low:g} to {high:g})")
    encode_value(point, value)
    return value


def readable_spans(profile: DeviceProfile, table: RegisterTable) -> tuple[Span, ...]:
    """The address ranges of ``table`` the device answers: its points, joined across gaps up to max_gap."""
    spans: list[list[int]] = []
    for start, end in sorted((p.address, p.end) for p in profile.points if p.table is table):
        if spans and start - spans[-1][1] <= profile.max_gap:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    return tuple((start, end) for start, end in spans)


class DeviceMemory:
    """The tables of one simulated device, addressed like the wire does and by metric name."""

    def __init__(self, profile: DeviceProfile) -> None:
        self.profile = profile
        self.spans: dict[RegisterTable, tuple[Span, ...]] = {t: readable_spans(profile, t) for t in RegisterTable}
        self._tables: dict[RegisterTable, dict[int, int]] = {t: {} for t in RegisterTable}

    def covers(self, table: RegisterTable, address: int, count: int) -> bool:
        """True when the device answers a request for ``count`` addresses of ``table`` from ``address``."""
        return count >= 1 and any(start <= address and address + count <= end for start, end in self.spans[table])

    def read(self, table: RegisterTable, address: int, count: int) -> list[int]:
        """Raw registers (or bits as 0/1); unknown addresses read as 0."""
        words = self._tables[table]
        return [words.get(address + i, 0) for i in range(count)]

    def write(self, table: RegisterTable, address: int, values: Iterable[int]) -> None:
        """Store raw registers (or bits as 0/1) from ``address`` on."""
        words = self._tables[table]
        limit = 1 if table.is_bits else 0xFFFF
        for i, value in enumerate(values):
            if not 0 <= value <= limit:
                raise PointValueError(f"{table.value} {address + i}: raw value {value} out of range 0-{limit}")
            words[address + i] = value

    def point(self, metric: str) -> PointSpec:
        """The profile's point named ``metric``."""
        try:
            return self.profile.point(metric)
        except KeyError:
            known = ", ".join(p.metric for p in self.profile.points)
            raise UnknownPointError(f"profile {self.profile.name!r} has no point {metric!r}; it has: {known}") from None

    def set(self, metric: str, value: Value) -> None:
        """Store a point's value; a bit point changes only its own bit of the shared register."""
        point = self.point(metric)
        words = encode_value(point, value)
        if point.type is DataType.BIT:
            assert point.bit is not None
            mask = 1 << point.bit
            (current,) = self.read(point.table, point.address, 1)
            words = [(current & ~mask) | (words[0] & mask)]
        self.write(point.table, point.address, words)

    def raw(self, metric: str) -> list[int]:
        """The raw registers (or bits) of a point, as a client reads them."""
        point = self.point(metric)
        return self.read(point.table, point.address, point.count)

    def get(self, metric: str) -> Value:
        """A point's current value, decoded with the driver's codec."""
        return decode(self.point(metric), self.raw(metric))

    def values(self) -> dict[str, Value]:
        """Every point's current value by metric."""
        return {p.metric: self.get(p.metric) for p in self.profile.points}


def describe_spans(spans: Sequence[Span]) -> str:
    """Readable ranges as text, for errors and logs: ``0-2, 10-11``."""
    return ", ".join(f"{start}-{end - 1}" for start, end in spans) or "none"
