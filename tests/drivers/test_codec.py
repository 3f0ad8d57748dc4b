"""The codec: every data type in every byte/word order, known layouts, and what it refuses."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.codec import DecodeError, decode, encode
from drivers.modbus.profile import REGISTER_COUNT, DataType, Order, PointSpec, RegisterTable

#: (byte order, word order) by the common name of the layout of 0x11223344.
ORDERS: dict[str, tuple[Order, Order]] = {
    "ABCD": ("big", "big"),
    "CDAB": ("big", "little"),
    "BADC": ("little", "big"),
    "DCBA": ("little", "little"),
}

INT_RANGES = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    # decode gives a float (the contract's numbers): exact for |v| <= 2**53; encode is exact over the whole range.
    DataType.INT64: (-(2**53), 2**53),
    DataType.UINT64: (0, 2**53),
}
FLOAT32_MAX = struct.unpack(">f", bytes.fromhex("7f7fffff"))[0]


def point(
    type_: DataType,
    order: str = "ABCD",
    *,
    scale: float = 1.0,
    offset: float = 0.0,
    bit: int | None = None,
    length: int | None = None,
) -> PointSpec:
    """A point of ``type_`` at address 0, laid out as ``order``."""
    byte_order, word_order = ORDERS[order]
    table = RegisterTable.COIL if type_ is DataType.BOOL else RegisterTable.INPUT
    count = length if length is not None else REGISTER_COUNT[type_]
    return PointSpec(
        metric="test.value",
        table=table,
        address=0,
        type=type_,
        count=count,
        bit=bit,
        byte_order=byte_order,
        word_order=word_order,
        scale=scale,
        offset=offset,
    )


def as_float32(value: float) -> float:
    """``value`` rounded to the nearest float32, as a device would store it."""
    result: float = struct.unpack(">f", struct.pack(">f", value))[0]
    return result


# -- round trips: every type in every order ----------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("type_", list(INT_RANGES))
@given(data=st.data())
def test_integers_round_trip(type_: DataType, order: str, data: st.DataObject) -> None:
    low, high = INT_RANGES[type_]
    value = data.draw(st.integers(min_value=low, max_value=high) | st.sampled_from([low, high, 0]))
    registers = encode(point(type_, order), value)
    assert len(registers) == REGISTER_COUNT[type_]
    assert all(0 <= word <= 0xFFFF for word in registers)
    assert decode(point(type_, order), registers) == value


@pytest.mark.parametrize("order", ORDERS)
@given(value=st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float32_values_round_trip_exactly(order: str, value: float) -> None:
    assert decode(point(DataType.FLOAT32, order), encode(point(DataType.FLOAT32, order), value)) == value


@pytest.mark.parametrize("order", ORDERS)
@given(value=st.floats(min_value=-FLOAT32_MAX, max_value=FLOAT32_MAX))
def test_float32_rounds_like_struct(order: str, value: float) -> None:
    decoded = decode(point(DataType.FLOAT32, order), encode(point(DataType.FLOAT32, order), value))
    assert decoded == as_float32(value)


@pytest.mark.parametrize("order", ORDERS)
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_float64_round_trips(order: str, value: float) -> None:
    assert decode(point(DataType.FLOAT64, order), encode(point(DataType.FLOAT64, order), value)) == value


@pytest.mark.parametrize("order", ORDERS)
@given(
    value=st.text(max_size=8).map(lambda text: text.rstrip("\x00 ")).filter(lambda text: len(text.encode("utf-8")) <= 8)
)
def test_strings_round_trip(order: str, value: str) -> None:
    spec = point(DataType.STRING, order, length=4)
    registers = encode(spec, value)
    assert len(registers) == 4
    assert decode(spec, registers) == value


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("value", [False, True])
def test_bools_round_trip(order: str, value: bool) -> None:
    assert encode(point(DataType.BOOL, order), value) == [int(value)]
    assert decode(point(DataType.BOOL, order), [int(value)]) is value


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("bit", range(16))
@pytest.mark.parametrize("value", [False, True])
def test_bits_round_trip(order: str, bit: int, value: bool) -> None:
    spec = point(DataType.BIT, order, bit=bit)
    assert encode(spec, value) == [int(value) << bit]
    assert decode(spec, encode(spec, value)) is value


# -- known layouts -----------------------------------------------------------------------------------

LAYOUTS_0x11223344 = {
    "ABCD": [0x1122, 0x3344],
    "CDAB": [0x3344, 0x1122],
    "BADC": [0x2211, 0x4433],
    "DCBA": [0x4433, 0x2211],
}


@pytest.mark.parametrize(("order", "registers"), LAYOUTS_0x11223344.items())
@pytest.mark.parametrize(
    ("type_", "value"),
    [
        (DataType.UINT32, 0x11223344),
        (DataType.INT32, 0x11223344),
        (DataType.FLOAT32, struct.unpack(">f", bytes.fromhex("11223344"))[0]),
    ],
)
def test_layout_of_0x11223344(type_: DataType, value: float, order: str, registers: list[int]) -> None:
    assert encode(point(type_, order), value) == registers
    assert decode(point(type_, order), registers) == value


@pytest.mark.parametrize(
    ("order", "registers"),
    [
        ("ABCD", [0xBF80, 0x0000]),
        ("CDAB", [0x0000, 0xBF80]),
        ("BADC", [0x80BF, 0x0000]),
        ("DCBA", [0x0000, 0x80BF]),
    ],
)
def test_layout_of_float32_minus_one(order: str, registers: list[int]) -> None:
    assert encode(point(DataType.FLOAT32, order), -1.0) == registers
    assert decode(point(DataType.FLOAT32, order), registers) == -1.0


@pytest.mark.parametrize(
    ("order", "registers"),
    [
        ("ABCD", [0xFFFF, 0xFFFE]),
        ("CDAB", [0xFFFE, 0xFFFF]),
        ("BADC", [0xFFFF, 0xFEFF]),
        ("DCBA", [0xFEFF, 0xFFFF]),
    ],
)
def test_layout_of_int32_minus_two(order: str, registers: list[int]) -> None:
    assert encode(point(DataType.INT32, order), -2) == registers
    assert decode(point(DataType.INT32, order), registers) == -2
    assert decode(point(DataType.UINT32, order), registers) == 0xFFFFFFFE


LAYOUTS_64 = {
    "ABCD": [0x0011, 0x2233, 0x4455, 0x6677],
    "CDAB": [0x6677, 0x4455, 0x2233, 0x0011],
    "BADC": [0x1100, 0x3322, 0x5544, 0x7766],
    "DCBA": [0x7766, 0x5544, 0x3322, 0x1100],
}


@pytest.mark.parametrize(("order", "registers"), LAYOUTS_64.items())
@pytest.mark.parametrize("type_", [DataType.UINT64, DataType.INT64])
def test_layout_of_64_bit_integer(type_: DataType, order: str, registers: list[int]) -> None:
    # 0x0011223344556677 < 2**53, so it is exact.
    assert encode(point(type_, order), 0x0011223344556677) == registers
    assert decode(point(type_, order), registers) == 0x0011223344556677


@pytest.mark.parametrize(
    ("order", "registers"),
    [
        ("ABCD", [0x1122, 0x3344, 0x5566, 0x7788]),
        ("CDAB", [0x7788, 0x5566, 0x3344, 0x1122]),
        ("BADC", [0x2211, 0x4433, 0x6655, 0x8877]),
        ("DCBA", [0x8877, 0x6655, 0x4433, 0x2211]),
    ],
)
def test_layout_of_float64(order: str, registers: list[int]) -> None:
    value = struct.unpack(">d", bytes.fromhex("1122334455667788"))[0]
    assert encode(point(DataType.FLOAT64, order), value) == registers
    assert decode(point(DataType.FLOAT64, order), registers) == value


@pytest.mark.parametrize(("order", "registers"), [("ABCD", [0xFF38]), ("BADC", [0x38FF])])
def test_int16_byte_order(order: str, registers: list[int]) -> None:
    assert encode(point(DataType.INT16, order), -200) == registers
    assert decode(point(DataType.INT16, order), registers) == -200


# -- bits ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bit", range(16))
def test_bit_reads_only_its_own_bit(bit: int) -> None:
    only = 1 << bit
    for other in range(16):
        assert decode(point(DataType.BIT, bit=other), [only]) is (other == bit)
        assert decode(point(DataType.BIT, bit=other), [0xFFFF ^ only]) is (other != bit)


@pytest.mark.parametrize("registers", [[0], [1], [0xFFFF]])
def test_bool_is_any_nonzero_bit(registers: list[int]) -> None:
    assert decode(point(DataType.BOOL), registers) is bool(registers[0])


# -- strings -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("registers", "text"),
    [
        ([0x4348, 0x2D45, 0x4E56, 0x3031], "CH-ENV01"),  # every register used
        ([0x4348, 0x0000, 0x0000, 0x0000], "CH"),  # padded with NULs
        ([0x4348, 0x2020, 0x2020, 0x2020], "CH"),  # padded with spaces
        ([0x4348, 0x0020, 0x2000, 0x0000], "CH"),  # a mix of both
        ([0x4320, 0x4800, 0x0000, 0x0000], "C H"),  # only trailing padding goes
        ([0x0000, 0x0000, 0x0000, 0x0000], ""),
        ([0x5449, 0x4D49, 0x53C8, 0x0000], "TIMIS\ufffd"),  # cut inside "Ș" (0xC8 0x98)
    ],
)
def test_string_decoding(registers: list[int], text: str) -> None:
    assert decode(point(DataType.STRING, length=4), registers) == text


@pytest.mark.parametrize(
    ("order", "registers"),
    [
        ("ABCD", [0x4142, 0x4300, 0x0000]),
        ("BADC", [0x4241, 0x0043, 0x0000]),
        ("CDAB", [0x0000, 0x4300, 0x4142]),
    ],
)
def test_string_encoding_pads_with_nuls(order: str, registers: list[int]) -> None:
    assert encode(point(DataType.STRING, order, length=3), "ABC") == registers


@pytest.mark.parametrize("text", ["ABCDEFGHI", "ABCDEFGȘ"])  # 9 bytes each: one too many for 4 registers
def test_string_too_long_is_refused_not_truncated(text: str) -> None:
    with pytest.raises(ValueError, match="does not fit in 4 registers"):
        encode(point(DataType.STRING, length=4), text)


# -- scale and offset ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "scale", "offset", "registers", "value"),
    [
        (DataType.INT16, 0.1, 0.0, [215], 21.5),
        (DataType.INT16, 0.1, 0.0, [0xFFF6], -1.0),
        (DataType.UINT16, 0.1, 0.0, [655], 65.5),
        (DataType.UINT16, 0.01, 0.0, [5002], 50.02),
        (DataType.INT16, 0.001, 0.0, [0xFC18], -1.0),
        (DataType.UINT16, 0.1, -40.0, [650], 25.0),
        (DataType.UINT16, 1.0, -273, [300], 27.0),
        (DataType.UINT32, 0.001, 0.0, [0x0001, 0x0000], 65.536),
        (DataType.FLOAT32, 1000.0, 0.0, [0x3FC0, 0x0000], 1500.0),
    ],
)
def test_scale_and_offset(type_: DataType, scale: float, offset: float, registers: list[int], value: float) -> None:
    spec = point(type_, scale=scale, offset=offset)
    assert decode(spec, registers) == pytest.approx(value)
    assert encode(spec, value) == registers


def test_encode_rounds_to_the_nearest_step() -> None:
    assert encode(point(DataType.INT16, scale=0.1), 21.54) == [215]
    assert encode(point(DataType.INT16, scale=0.1), 21.56) == [216]


# -- refusals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        (DataType.INT16, 2**15),
        (DataType.INT16, -(2**15) - 1),
        (DataType.UINT16, 2**16),
        (DataType.UINT16, -1),
        (DataType.INT32, 2**31),
        (DataType.INT32, -(2**31) - 1),
        (DataType.UINT32, 2**32),
        (DataType.UINT32, -1),
        (DataType.INT64, 2**64),
        (DataType.UINT64, -1),
    ],
)
@pytest.mark.parametrize("order", ORDERS)
def test_out_of_range_is_refused(type_: DataType, value: int, order: str) -> None:
    with pytest.raises(ValueError, match=f"out of range for {type_.value}"):
        encode(point(type_, order), value)


def test_out_of_range_after_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range for int16"):
        encode(point(DataType.INT16, scale=0.1), 3276.8)


@pytest.mark.parametrize(
    ("type_", "value", "message"),
    [
        (DataType.BOOL, 1, "not a boolean"),
        (DataType.BIT, "on", "not a boolean"),
        (DataType.STRING, 42, "not a string"),
        (DataType.INT16, True, "not a number"),
        (DataType.FLOAT32, "21.5", "not a number"),
    ],
)
def test_wrong_value_type_is_refused(type_: DataType, value: object, message: str) -> None:
    spec = point(type_, bit=0 if type_ is DataType.BIT else None, length=2 if type_ is DataType.STRING else None)
    with pytest.raises(ValueError, match=message):
        encode(spec, value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("type_", "registers"),
    [
        (DataType.BOOL, []),
        (DataType.BOOL, [1, 0]),
        (DataType.INT16, []),
        (DataType.UINT16, [1, 2]),
        (DataType.INT32, [1]),
        (DataType.FLOAT32, [1, 2, 3]),
        (DataType.UINT64, [1, 2, 3]),
        (DataType.FLOAT64, [1, 2]),
        (DataType.STRING, [0x4142]),
    ],
)
def test_wrong_register_count_is_refused(type_: DataType, registers: list[int]) -> None:
    spec = point(type_, length=4 if type_ is DataType.STRING else None)
    with pytest.raises(DecodeError, match=f"expected {spec.count} registers, got {len(registers)}"):
        decode(spec, registers)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(
    ("type_", "value"),
    [
        (DataType.FLOAT32, math.nan),
        (DataType.FLOAT32, math.inf),
        (DataType.FLOAT32, -math.inf),
        (DataType.FLOAT64, math.nan),
        (DataType.FLOAT64, math.inf),
        (DataType.FLOAT64, -math.inf),
    ],
)
def test_non_finite_registers_are_refused(type_: DataType, value: float, order: str) -> None:
    data = struct.pack(">f" if type_ is DataType.FLOAT32 else ">d", value)
    big_endian = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    # Lay the big-endian words out as the order asks, independently of the codec.
    byte_order, word_order = ORDERS[order]
    words = [int.from_bytes(word.to_bytes(2, "big"), byte_order) for word in big_endian]
    registers = words[::-1] if word_order == "little" else words
    with pytest.raises(DecodeError, match="decode to"):
        decode(point(type_, order), registers)


def test_scale_overflowing_to_infinity_is_refused() -> None:
    registers = encode(point(DataType.FLOAT64), 1e308)
    with pytest.raises(DecodeError, match="decode to inf"):
        decode(point(DataType.FLOAT64, scale=10.0), registers)


# -- 64-bit integers and values no register can hold -----------------------------------------------


@pytest.mark.parametrize(
    ("type_", "value", "fmt"),
    [
        (DataType.INT64, 2**63 - 1, ">q"),
        (DataType.UINT64, 2**64 - 1, ">Q"),
        (DataType.UINT64, 0x1122334455667788, ">Q"),
    ],
)
def test_64_bit_integers_encode_exactly_over_their_whole_range(type_: DataType, value: int, fmt: str) -> None:
    """Encoding is exact; decoding gives a float (the contract's numbers), exact up to 2**53."""
    expected = [int.from_bytes(struct.pack(fmt, value)[i : i + 2], "big") for i in range(0, 8, 2)]
    assert encode(point(type_), value) == expected
    assert decode(point(type_), expected) == float(value)


@pytest.mark.parametrize(("type_", "value"), [(DataType.FLOAT32, 1e39), (DataType.INT16, math.inf)])
def test_unrepresentable_numbers_are_refused_with_value_error(type_: DataType, value: float) -> None:
    with pytest.raises(ValueError, match=r"out of range|not a finite number"):
        encode(point(type_), value)
