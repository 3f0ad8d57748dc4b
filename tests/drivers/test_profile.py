"""Device profiles: the shipped ones load and agree with their documentation; bad ones are refused clearly."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from drivers.modbus.codec import Value, decode, encode
from drivers.modbus.profile import (
    PROFILE_DIR,
    DataType,
    DeviceProfile,
    PointSpec,
    ProfileError,
    Role,
    load_profile,
    parse_profile,
)

SHIPPED = {
    "climate-controller": "climate",
    "energy-meter": "energy_meter",
    "environment-sensor": "environment_sensor",
    "gas-suppression": "gas_suppression",
}
DOC = Path(__file__).parents[2] / "docs" / "drivers" / "modbus.md"
UNITS = {"Cel", "%", "V", "A", "W", "Wh", "Hz", "bar", "s", "h"}
ORDER_NAMES = {
    ("big", "big"): "ABCD",
    ("big", "little"): "CDAB",
    ("little", "big"): "BADC",
    ("little", "little"): "DCBA",
}


# -- the shipped profiles ------------------------------------------------------------------------------


def test_the_shipped_profiles_are_the_expected_ones() -> None:
    assert sorted(path.stem for path in PROFILE_DIR.glob("*.yaml")) == sorted(SHIPPED)


@pytest.mark.parametrize(("name", "kind"), SHIPPED.items())
def test_shipped_profile_loads(name: str, kind: str) -> None:
    profile = load_profile(name)
    assert (profile.name, profile.kind) == (name, kind)
    assert profile.description is not None
    assert "reference register map" in profile.description
    assert "vary" in profile.description


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profile_points_do_not_overlap(name: str) -> None:
    profile = load_profile(name)
    words = Counter(
        (p.table, address) for p in profile.points if p.type is not DataType.BIT for address in range(p.address, p.end)
    )
    bits = Counter((p.table, p.address, p.bit) for p in profile.points if p.type is DataType.BIT)
    assert [key for key, n in words.items() if n > 1] == []
    assert [key for key, n in bits.items() if n > 1] == []
    # A register read bit by bit is not also read as a number.
    assert [key for key in bits if key[:2] in words] == []


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profile_follows_the_conventions(name: str) -> None:
    profile = load_profile(name)
    for point in profile.points:
        assert point.unit is None or point.unit in UNITS, point.metric
        assert (point.role is Role.STATE) == (point.event is not None), point.metric
        assert not point.states or point.role is Role.STATE, point.metric
        # Measurements are input registers or discrete inputs; holding registers are setpoints or identity.
        assert point.table.value != "coil", point.metric


def sample_value(point: PointSpec) -> Value:
    """A plausible value of the point."""
    if point.type in (DataType.BOOL, DataType.BIT):
        return True
    if point.type is DataType.STRING:
        return "CH-ENV01"[: 2 * point.count]
    if point.states:
        return float(point.states[-1][0])
    return 1.5 if point.type in (DataType.FLOAT32, DataType.FLOAT64) else 1234 * point.scale


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_point_encodes_and_decodes(name: str) -> None:
    for point in load_profile(name).points:
        value = sample_value(point)
        registers = encode(point, value)
        assert len(registers) == point.count
        expected = pytest.approx(value) if isinstance(value, float) else value
        assert decode(point, registers) == expected, point.metric


# -- the register maps in docs/drivers/modbus.md -------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:g}"


def _order(point: PointSpec) -> str:
    if point.type in (DataType.BOOL, DataType.BIT):
        return "—"
    if point.count == 1:
        return "AB" if point.byte_order == "big" else "BA"
    return ORDER_NAMES[(point.byte_order, point.word_order)]


def _row(point: PointSpec) -> str:
    address = str(point.address) if point.count == 1 else f"{point.address}-{point.end - 1}"
    type_ = f"bit {point.bit}" if point.type is DataType.BIT else point.type.value
    scale = "—" if point.scale == 1 else _number(point.scale)
    if point.offset:
        scale = f"{'' if point.scale == 1 else scale + ' '}+ {_number(point.offset)}"
    role = "telemetry" if point.role is Role.TELEMETRY else f"state → `{point.event}`"
    states = ", ".join(f"{value} {label}" for value, label in point.states)
    cells = [point.table.value, address, type_, _order(point), scale, point.unit or "—", f"`{point.metric}`", role]
    return "| " + " | ".join([*cells, states]).rstrip() + " |"


def register_map(profile: DeviceProfile) -> str:
    """The profile's register map as the Markdown table of docs/drivers/modbus.md."""
    tables = ["input", "holding", "discrete_input", "coil"]
    points = sorted(profile.points, key=lambda p: (tables.index(p.table.value), p.address, p.bit or 0))
    header = [
        "| table | address | type | order | scale | unit | metric | role | states |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(header + [_row(p) for p in points])


@pytest.mark.parametrize("name", SHIPPED)
def test_documented_register_map_matches_the_profile(name: str) -> None:
    expected = register_map(load_profile(name))
    assert expected in DOC.read_text(encoding="utf-8"), f"update the table of {name} in {DOC}:\n\n{expected}\n"


# -- malformed profiles --------------------------------------------------------------------------------

PATH = Path("profiles/bad.yaml")
TEMPERATURE = {"metric": "test.temperature", "table": "input", "address": 0, "type": "int16", "scale": 0.1}


def profile_yaml(*points: dict[str, Any], **top: Any) -> str:
    """A profile's YAML text with ``points``; ``top`` adds or replaces top-level fields."""
    return yaml.safe_dump({"profile": "bad", "kind": "test", **top, "points": list(points)}, sort_keys=False)


def refusal(text: str) -> str:
    """The message of the ProfileError that ``text`` raises."""
    with pytest.raises(ProfileError) as caught:
        parse_profile(PATH, text)
    message = str(caught.value)
    assert message.startswith(f"{PATH}: "), message
    return message


@pytest.mark.parametrize(
    ("points", "fragments"),
    [
        pytest.param(
            [{**TEMPERATURE, "scal": 0.1}],
            ["point 'test.temperature'.scal: Extra inputs are not permitted"],
            id="unknown field",
        ),
        pytest.param(
            [{"metric": "test.fan", "table": "holding", "address": 3, "type": "bool"}],
            ["point 'test.fan': ", "type bool needs a coil or discrete_input, not holding (use type bit)"],
            id="bool in a holding register",
        ),
        pytest.param(
            [{"metric": "test.fan", "table": "coil", "address": 3, "type": "uint16"}],
            ["point 'test.fan': ", "a coil holds single bits: type must be bool, not uint16"],
            id="number in a coil",
        ),
        pytest.param(
            [{"metric": "test.alarm", "table": "input", "address": 20, "type": "bit"}],
            ["point 'test.alarm': ", "bit (0-15) is required for type bit"],
            id="bit without bit",
        ),
        pytest.param(
            [{**TEMPERATURE, "bit": 3}],
            ["point 'test.temperature': ", "bit (0-15) is required for type bit and only for it"],
            id="bit on a number",
        ),
        pytest.param(
            [{"metric": "test.alarm", "table": "input", "address": 20, "type": "bit", "bit": 16}],
            ["point 'test.alarm'.bit: ", "less than or equal to 15"],
            id="bit past 15",
        ),
        pytest.param(
            [{"metric": "test.model", "table": "holding", "address": 0, "type": "uint16", "length": 8}],
            ["point 'test.model': ", "length (registers) is required for type string and only for it"],
            id="length on a number",
        ),
        pytest.param(
            [{"metric": "test.alarm", "table": "input", "address": 20, "type": "bit", "bit": 0, "scale": 0.1}],
            ["point 'test.alarm': ", "scale and offset make no sense for type bit"],
            id="scale on a bit",
        ),
        pytest.param(
            [{**TEMPERATURE, "role": "state"}],
            ["point 'test.temperature': ", "a point with role state needs the event type it raises"],
            id="state without event",
        ),
        pytest.param(
            [{**TEMPERATURE, "metric": "events.temperature"}],
            ["point 'events.temperature': ", "metric family 'events' is reserved for the hub"],
            id="reserved family events",
        ),
        pytest.param(
            [{**TEMPERATURE, "metric": "device_status.online"}],
            ["point 'device_status.online': ", "metric family 'device_status' is reserved for the hub"],
            id="reserved family device_status",
        ),
        pytest.param(
            [{**TEMPERATURE, "metric": "Test.Temperature"}],
            ["point 'Test.Temperature'.metric: String should match pattern"],
            id="metric not lowercase",
        ),
        pytest.param(
            [{**TEMPERATURE, "address": 65_536}],
            ["point 'test.temperature'.address: ", "less than or equal to 65535"],
            id="address past 65535",
        ),
        pytest.param(
            [{**TEMPERATURE, "address": 65_535, "type": "uint32"}],
            ["point 'test.temperature': ", "registers 65535-65536 run past address 65535"],
            id="registers past 65535",
        ),
        pytest.param(
            [{**TEMPERATURE, "table": "inputs"}],
            ["point 'test.temperature'.table: ", "'coil', 'discrete_input', 'input' or 'holding'"],
            id="unknown table",
        ),
        pytest.param(
            [{**TEMPERATURE, "word_order": "middle"}],
            ["point 'test.temperature'.word_order: ", "'big' or 'little'"],
            id="unknown word order",
        ),
        pytest.param(
            [{**TEMPERATURE, "metric": "test.a", "type": "uint32"}, {**TEMPERATURE, "metric": "test.b", "address": 1}],
            ["(top level): ", "points 'test.a' and 'test.b' overlap in the input table"],
            id="overlapping points",
        ),
        pytest.param(
            [
                {**TEMPERATURE, "metric": "test.a", "type": "uint64", "address": 2},
                {**TEMPERATURE, "metric": "test.b", "address": 3},
            ],
            ["points 'test.a' and 'test.b' overlap in the input table"],
            id="point inside another",
        ),
        pytest.param(
            [{**TEMPERATURE, "address": 0}, {**TEMPERATURE, "address": 1}],
            ["(top level): ", "metric 'test.temperature' appears twice"],
            id="duplicate metric",
        ),
        pytest.param([], ["points: ", "at least 1 item"], id="no points"),
    ],
)
def test_malformed_point_is_refused_naming_file_point_and_field(
    points: list[dict[str, Any]], fragments: list[str]
) -> None:
    message = refusal(profile_yaml(*points))
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("top", "fragments"),
    [
        pytest.param({"mystery": 1}, ["mystery: Extra inputs are not permitted"], id="unknown top-level field"),
        pytest.param({"profile": "Bad Name"}, ["profile: String should match pattern"], id="bad profile name"),
        pytest.param({"max_registers_per_request": 126}, ["max_registers_per_request: "], id="more than 125"),
        pytest.param({"max_gap": -1}, ["max_gap: "], id="negative gap"),
        pytest.param(
            {"max_registers_per_request": 4},
            ["points longer than max_registers_per_request: test.model"],
            id="point longer than a request",
        ),
    ],
)
def test_malformed_profile_is_refused(top: dict[str, Any], fragments: list[str]) -> None:
    model = {"metric": "test.model", "table": "holding", "address": 0, "type": "string", "length": 8}
    message = refusal(profile_yaml(model, **top))
    for fragment in fragments:
        assert fragment in message


def test_every_problem_of_a_point_is_reported_at_once() -> None:
    point = {"metric": "test.fan", "table": "holding", "address": 0, "type": "bool", "role": "state", "bit": 2}
    message = refusal(profile_yaml(point))
    assert "type bool needs a coil" in message
    assert "bit (0-15) is required for type bit and only for it" in message
    assert "needs the event type" in message


def test_each_bad_point_gets_its_own_line() -> None:
    first = {**TEMPERATURE, "metric": "test.a", "scal": 1}
    second = {**TEMPERATURE, "metric": "test.b", "address": 70_000}
    lines = refusal(profile_yaml(first, second)).splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{PATH}: ") for line in lines)
    assert "point 'test.a'.scal" in lines[0]
    assert "point 'test.b'.address" in lines[1]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("profile: bad\npoints: [\n", id="unclosed list"),
        pytest.param("profile: bad\n\tkind: test\n", id="tab indentation"),
        pytest.param("unit: %\n", id="unquoted percent"),
    ],
)
def test_invalid_yaml_is_refused(text: str) -> None:
    message = refusal(text)
    assert message.startswith(f"{PATH}: not valid YAML: ")
    assert "line " in message


@pytest.mark.parametrize("text", ["", "- a list\n", "just text\n"])
def test_yaml_that_is_not_a_mapping_is_refused(text: str) -> None:
    assert "(top level)" in refusal(text)


def test_missing_shipped_profile_lists_the_shipped_ones() -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile("climate-control")
    message = str(caught.value)
    assert str(PROFILE_DIR / "climate-control.yaml") in message
    assert "cannot read the profile" in message
    assert f"shipped profiles: {', '.join(sorted(SHIPPED))}" in message


def test_profile_file_is_named_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "site-meter.yaml"
    path.write_text(profile_yaml({**TEMPERATURE, "scal": 1}), encoding="utf-8")
    with pytest.raises(ProfileError, match=r"site-meter\.yaml: point 'test\.temperature'\.scal: "):
        load_profile(path)


def test_profile_loads_from_any_path(tmp_path: Path) -> None:
    path = tmp_path / "custom.yml"
    path.write_text((PROFILE_DIR / "environment-sensor.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    assert load_profile(path) == load_profile("environment-sensor")


def test_point_orders_default_to_the_profile_and_can_be_overridden() -> None:
    text = profile_yaml(
        {"metric": "test.a", "table": "input", "address": 0, "type": "float32"},
        {"metric": "test.b", "table": "input", "address": 2, "type": "float32", "word_order": "big"},
        word_order="little",
    )
    profile = parse_profile(PATH, text)
    assert (profile.point("test.a").byte_order, profile.point("test.a").word_order) == ("big", "little")
    assert (profile.point("test.b").byte_order, profile.point("test.b").word_order) == ("big", "big")


# -- defects found while writing these tests, now fixed ------------------------------------------------


def test_string_without_length_is_refused() -> None:
    message = refusal(profile_yaml({"metric": "test.model", "table": "holding", "address": 0, "type": "string"}))
    assert "point 'test.model': " in message
    assert "length (registers) is required for type string" in message


def test_two_points_on_the_same_bit_are_refused() -> None:
    alarm = {"table": "input", "address": 20, "type": "bit", "bit": 1}
    refusal(profile_yaml({**alarm, "metric": "test.a"}, {**alarm, "metric": "test.b"}))


@pytest.mark.parametrize("scale", [0.0, float("nan"), float("inf")])
def test_unusable_scale_is_refused(scale: float) -> None:
    assert "scale" in refusal(profile_yaml({**TEMPERATURE, "scale": scale}))
