"""MIB profiles: the shipped files load, selection by sysObjectID, the loader's errors, vendor quirks."""

from __future__ import annotations

from pathlib import Path

import pytest
import snmpkit

from drivers.snmp_ups.decode import decode_point
from drivers.snmp_ups.errors import MibProfileError
from drivers.snmp_ups.profile import (
    FALLBACK_PROFILE,
    load_mib_profile,
    parse_mib_profile,
    parse_oid,
    select_profile,
    shipped_profiles,
)
from drivers.snmp_ups.status import format_status, profile_events, with_mains_complement

NUT_METRICS = {
    "battery.charge",
    "battery.runtime",
    "battery.voltage",
    "ups.temperature",
    "input.voltage",
    "input.frequency",
    "output.voltage",
    "ups.load",
}


def test_every_profile_is_shipped_and_loads() -> None:
    assert shipped_profiles() == sorted(snmpkit.PROFILES)
    for name in shipped_profiles():
        profile = load_mib_profile(name)
        assert {p.metric for p in profile.points} == NUT_METRICS, name
        assert profile.status, name
        assert "ups.on_battery" in profile_events(profile)


@pytest.mark.parametrize(
    ("sys_object_id", "expected"),
    [
        ("1.3.6.1.4.1.318.1.3.27", "ups-apc"),
        ("1.3.6.1.4.1.534.1", "ups-eaton-xups"),
        ("1.3.6.1.4.1.534.2.12.7", "ups-eaton-xups"),
        ("1.3.6.1.4.1.705.1.2", "ups-mge"),
        ("1.3.6.1.2.1.33", "ups-rfc1628"),
        ("1.3.6.1.4.1.8072.3.2.10", FALLBACK_PROFILE),  # Net-SNMP on Linux: unknown enterprise
        ("1.3.6.1.4.1.5340.1", FALLBACK_PROFILE),  # 534 as a prefix of 5340 is not Eaton
        (None, FALLBACK_PROFILE),
    ],
)
def test_profile_is_chosen_by_the_longest_matching_sys_object_id(sys_object_id: str | None, expected: str) -> None:
    assert select_profile(parse_oid(sys_object_id) if sys_object_id else None).name == expected


def test_the_longest_prefix_wins(tmp_path: Path) -> None:
    base = load_mib_profile("ups-eaton-xups")
    text = (Path(__file__).parents[3] / "drivers/snmp_ups/profiles/ups-eaton-xups.yaml").read_text()
    narrow = parse_mib_profile(
        tmp_path / "x.yaml",
        text.replace("profile: ups-eaton-xups", "profile: eaton-9px").replace(
            '["1.3.6.1.4.1.534.1", "1.3.6.1.4.1.534.2.12"]', '["1.3.6.1.4.1.534.1.99"]'
        ),
    )
    assert select_profile(parse_oid("1.3.6.1.4.1.534.1.99.2"), [base, narrow]).name == "eaton-9px"
    assert select_profile(parse_oid("1.3.6.1.4.1.534.1.98"), [base, narrow]).name == "ups-eaton-xups"


@pytest.mark.parametrize(
    ("profile", "metric", "raw", "expected"),
    [
        ("ups-rfc1628", "battery.runtime", 21, 1260),  # upsEstimatedMinutesRemaining: minutes
        ("ups-eaton-xups", "battery.runtime", 1260, 1260),  # xupsBatTimeRemaining: seconds
        ("ups-mge", "battery.runtime", 1260, 1260),  # upsmgBatteryRemainingTime: seconds
        ("ups-apc", "battery.runtime", 126_000, 1260.0),  # upsAdvBatteryRunTimeRemaining: TimeTicks
        ("ups-rfc1628", "battery.voltage", 546, 54.6),  # upsBatteryVoltage: 0.1 V
        ("ups-apc", "input.voltage", 2301, 230.1),  # upsHighPrecInputLineVoltage: 0.1 V
        ("ups-apc", "ups.load", 425, 42.5),
        ("ups-eaton-xups", "input.frequency", 499, 49.9),
        ("ups-rfc1628", "battery.runtime", -1, None),  # sentinels: missing, not a number
        ("ups-rfc1628", "battery.runtime", 65535, None),
        ("ups-rfc1628", "ups.temperature", 999999, None),
        ("ups-apc", "battery.charge", 4294967295, None),
        ("ups-mge", "battery.charge", None, None),  # noSuchObject
        ("ups-mge", "battery.charge", "text", None),  # a string where a number belongs
    ],
)
def test_vendor_quirks_are_normalized(profile: str, metric: str, raw: object, expected: object) -> None:
    point = load_mib_profile(profile).point(metric)
    assert decode_point(point, raw) == expected  # type: ignore[arg-type]


def test_status_tokens_print_in_nut_order_and_mains_complements_battery() -> None:
    assert format_status({"DISCHRG", "LB", "OB"}) == "OB LB DISCHRG"
    assert with_mains_complement(frozenset({"OL", "CHRG"}), ("OB",), ()) == {"OB"}
    assert with_mains_complement(frozenset({"OB", "DISCHRG", "LB"}), (), ("OB",)) == {"OL", "LB"}


BASE = """
profile: custom
sys_object_ids: ["1.3.6.1.4.1.99"]
points:
  - {metric: battery.charge, oid: 1.3.6.1.4.1.99.1.0, type: integer, unit: "%"}
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("points:\n  - {metric: battery.charge, oid: not.an.oid, type: integer}", "points 'battery.charge'.oid"),
        ("points:\n  - {metric: events.x, oid: 1.3.6.1.4.1.99.1.0, type: integer}", "reserved for the hub"),
        ("points:\n  - {metric: b.c, oid: 1.3.6.1.4.1.99.1.0, type: float}", "Input should be 'integer'"),
        ("points:\n  - {metric: b.c, oid: 1.3.6.1.4.1.99.1.0, type: string, scale: 0.1}", "make no sense"),
        ("status:\n  - {name: s, oid: 1.3.6.1.4.1.99.2.0, states: {1: ONLINE}}", "unknown ups.status tokens"),
        ("status:\n  - {name: s, oid: 1.3.6.1.4.1.99.2.0, states: {1: OFF}}", "valid string"),  # YAML's OFF
        ("traps:\n  - {oid: 1.3.6.1.4.1.99.0.1, name: t, set: ONBATT}", "unknown ups.status tokens"),
        ("colour: red", "Extra inputs are not permitted"),
    ],
)
def test_profile_errors_name_the_field(change: str, message: str) -> None:
    text = BASE + change if not change.startswith("points:") else BASE.split("points:")[0] + change
    with pytest.raises(MibProfileError, match=r"custom\.yaml") as caught:
        parse_mib_profile(Path("custom.yaml"), text)
    assert message in str(caught.value)


def test_unknown_profile_names_the_shipped_ones() -> None:
    with pytest.raises(MibProfileError, match="ups-apc, ups-eaton-xups, ups-mge, ups-rfc1628"):
        load_mib_profile("ups-foo")
    with pytest.raises(ValueError, match="cannot read"):
        load_mib_profile("/nonexistent/ups.yaml")
