"""The read planner: as few requests as the device allows, every point covered exactly once."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.modbus.plan import ReadRequest, plan_reads
from drivers.modbus.profile import PROFILE_DIR, DeviceProfile, RegisterTable, load_profile, parse_profile


def make_profile(*points: dict[str, Any], **limits: int) -> DeviceProfile:
    """A validated profile with ``points``; ``limits`` sets max_registers_per_request, max_gap, ..."""
    text = yaml.safe_dump({"profile": "plan-test", "kind": "test", **limits, "points": list(points)})
    return parse_profile(Path("plan-test.yaml"), text)


def word(metric: str, address: int, type_: str = "uint16", table: str = "holding") -> dict[str, Any]:
    return {"metric": metric, "table": table, "address": address, "type": type_}


def bit(metric: str, address: int, n: int, table: str = "input") -> dict[str, Any]:
    return {"metric": metric, "table": table, "address": address, "type": "bit", "bit": n}


def flag(metric: str, address: int, table: str = "coil") -> dict[str, Any]:
    return {"metric": metric, "table": table, "address": address, "type": "bool"}


def spans(requests: list[ReadRequest]) -> list[tuple[str, int, int]]:
    """Each request as (table, first address, last address)."""
    return [(r.table.value, r.address, r.address + r.count - 1) for r in requests]


def metrics(request: ReadRequest) -> list[str]:
    return [p.metric for p in request.points]


def check_plan(profile: DeviceProfile, requests: list[ReadRequest]) -> None:
    """The planner's contract, for any profile."""
    covered = Counter(p.metric for r in requests for p in r.points)
    assert covered == Counter(p.metric for p in profile.points), "every point exactly once"
    by_table: dict[RegisterTable, list[ReadRequest]] = {}
    for request in requests:
        limit = profile.max_bits_per_request if request.table.is_bits else profile.max_registers_per_request
        assert 1 <= request.count <= limit, request
        assert all(p.table is request.table for p in request.points), request
        assert request.address == min(p.address for p in request.points), request
        assert request.address + request.count == max(p.end for p in request.points), request
        ranges = sorted((p.address, p.end) for p in request.points)
        end = ranges[0][1]
        for start, stop in ranges[1:]:
            assert start - end <= profile.max_gap, f"{request}: a hole of {start - end} > max_gap"
            end = max(end, stop)
        by_table.setdefault(request.table, []).append(request)
    for table_requests in by_table.values():
        for before, after in itertools.pairwise(table_requests):
            assert before.address + before.count <= after.address, f"{before} and {after} overlap"
            # The planner is greedy: the next request starts where appending its first point was not allowed.
            first = min(after.points, key=lambda p: (p.address, p.end))
            limit = profile.max_bits_per_request if after.table.is_bits else profile.max_registers_per_request
            gap = first.address - (before.address + before.count)
            assert gap > profile.max_gap or first.end - before.address > limit, f"{before} and {after} could merge"


# -- merging ---------------------------------------------------------------------------------------------


def test_adjacent_points_of_different_sizes_make_one_read() -> None:
    profile = make_profile(word("t.a", 0), word("t.b", 1, "int32"), word("t.c", 3, "float64"), word("t.d", 7, "uint16"))
    (request,) = plan_reads(profile)
    assert spans([request]) == [("holding", 0, 7)]
    assert metrics(request) == ["t.a", "t.b", "t.c", "t.d"]


def test_points_listed_out_of_order_are_sorted_by_address() -> None:
    profile = make_profile(word("t.c", 2), word("t.a", 0), word("t.b", 1))
    (request,) = plan_reads(profile)
    assert metrics(request) == ["t.a", "t.b", "t.c"]


@pytest.mark.parametrize(
    ("max_gap", "expected"),
    [
        (0, [("holding", 0, 0), ("holding", 4, 4)]),
        (2, [("holding", 0, 0), ("holding", 4, 4)]),
        (3, [("holding", 0, 4)]),  # exactly max_gap unused registers (1, 2, 3) may be spanned
        (50, [("holding", 0, 4)]),
    ],
)
def test_max_gap_is_the_number_of_unused_registers_a_read_may_span(
    max_gap: int, expected: list[tuple[str, int, int]]
) -> None:
    assert spans(plan_reads(make_profile(word("t.a", 0), word("t.b", 4), max_gap=max_gap))) == expected


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (125, [("holding", 0, 9)]),
        (10, [("holding", 0, 9)]),
        (4, [("holding", 0, 3), ("holding", 4, 7), ("holding", 8, 9)]),
        (1, [("holding", n, n) for n in range(10)]),
    ],
)
def test_max_registers_per_request_splits_long_runs(limit: int, expected: list[tuple[str, int, int]]) -> None:
    profile = make_profile(*(word(f"t.r{n}", n) for n in range(10)), max_registers_per_request=limit)
    assert spans(plan_reads(profile)) == expected


def test_a_multi_register_point_is_never_split_across_reads() -> None:
    # 0, then a float32 in 1-2: a read of 0-2 fits 3 registers; a third point makes the float start anew.
    fits = make_profile(word("t.a", 0), word("t.f", 1, "float32"), max_registers_per_request=3)
    assert spans(plan_reads(fits)) == [("holding", 0, 2)]
    split = make_profile(
        word("t.a", 0), word("t.b", 1), word("t.f", 2, "float32"), word("t.c", 4), max_registers_per_request=3
    )
    assert spans(plan_reads(split)) == [("holding", 0, 1), ("holding", 2, 4)]


def test_the_register_limit_counts_the_gaps_it_spans() -> None:
    profile = make_profile(word("t.a", 0), word("t.b", 5), max_gap=10, max_registers_per_request=5)
    assert spans(plan_reads(profile)) == [("holding", 0, 0), ("holding", 5, 5)]
    profile = make_profile(word("t.a", 0), word("t.b", 5), max_gap=10, max_registers_per_request=6)
    assert spans(plan_reads(profile)) == [("holding", 0, 5)]


@pytest.mark.parametrize("table", ["coil", "discrete_input"])
@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (2000, [(0, 19)]),
        (8, [(0, 7), (8, 15), (16, 19)]),
        (20, [(0, 19)]),
    ],
)
def test_max_bits_per_request_splits_long_runs_of_bits(table: str, limit: int, expected: list[tuple[int, int]]) -> None:
    # A register limit far below the bit count must not apply to bits.
    profile = make_profile(
        *(flag(f"t.b{n}", n, table) for n in range(20)), max_bits_per_request=limit, max_registers_per_request=2
    )
    assert spans(plan_reads(profile)) == [(table, start, end) for start, end in expected]


def test_max_gap_applies_to_bits_too() -> None:
    points = [flag("t.a", 0), flag("t.b", 10)]
    assert spans(plan_reads(make_profile(*points, max_gap=8))) == [("coil", 0, 0), ("coil", 10, 10)]
    assert spans(plan_reads(make_profile(*points, max_gap=9))) == [("coil", 0, 10)]


# -- tables and bits -----------------------------------------------------------------------------------


def test_tables_are_never_merged() -> None:
    profile = make_profile(
        word("t.h", 0, table="holding"),
        word("t.i", 0, table="input"),
        word("t.i1", 1, table="input"),
        flag("t.c", 0, table="coil"),
        flag("t.d", 0, table="discrete_input"),
        max_gap=100,
    )
    requests = plan_reads(profile)
    assert sorted(spans(requests)) == [("coil", 0, 0), ("discrete_input", 0, 0), ("holding", 0, 0), ("input", 0, 1)]
    assert {r.table.value: metrics(r) for r in requests}["input"] == ["t.i", "t.i1"]


def test_bit_points_of_one_register_share_one_read() -> None:
    profile = make_profile(*(bit(f"t.alarm{n}", 20, n) for n in (0, 1, 2, 7, 15)))
    (request,) = plan_reads(profile)
    assert spans([request]) == [("input", 20, 20)]
    assert set(metrics(request)) == {f"t.alarm{n}" for n in (0, 1, 2, 7, 15)}


def test_bit_points_share_the_read_of_their_neighbours() -> None:
    profile = make_profile(
        word("t.before", 19, table="input"), bit("t.x", 20, 0), bit("t.y", 20, 3), word("t.after", 21, table="input")
    )
    (request,) = plan_reads(profile)
    assert spans([request]) == [("input", 19, 21)]
    assert sorted(metrics(request)) == ["t.after", "t.before", "t.x", "t.y"]


def test_bit_points_stay_together_at_a_request_boundary() -> None:
    profile = make_profile(
        word("t.a", 19, table="input"), bit("t.x", 20, 0), bit("t.y", 20, 1), max_registers_per_request=1
    )
    assert [(spans([r]), sorted(metrics(r))) for r in plan_reads(profile)] == [
        ([("input", 19, 19)], ["t.a"]),
        ([("input", 20, 20)], ["t.x", "t.y"]),
    ]


# -- shipped profiles ----------------------------------------------------------------------------------

SHIPPED_PLANS = {
    "climate-controller": [("discrete_input", 0, 1), ("input", 0, 20), ("holding", 0, 1)],
    "energy-meter": [("input", 0, 71), ("input", 256, 259)],
    "environment-sensor": [("input", 0, 3), ("holding", 1000, 1009)],
    "gas-suppression": [("input", 0, 5)],
}


def test_every_shipped_profile_has_a_known_plan() -> None:
    assert sorted(p.stem for p in PROFILE_DIR.glob("*.yaml")) == sorted(SHIPPED_PLANS)


@pytest.mark.parametrize(("name", "expected"), SHIPPED_PLANS.items())
def test_shipped_profile_reads(name: str, expected: list[tuple[str, int, int]]) -> None:
    """The reads per poll documented in docs/drivers/modbus.md (section Merged reads)."""
    profile = load_profile(name)
    requests = plan_reads(profile)
    assert sorted(spans(requests)) == sorted(expected)
    check_plan(profile, requests)


# -- any profile -----------------------------------------------------------------------------------------

WORD_TYPES = {"uint16": 1, "int32": 2, "float32": 2, "uint64": 4, "float64": 4}


@st.composite
def profiles(draw: st.DrawFn) -> DeviceProfile:
    """Valid profiles: points laid out in each table with random gaps, some registers read bit by bit."""
    max_registers = draw(st.integers(1, 12))
    points: list[dict[str, Any]] = []
    for table in ("holding", "input", "coil", "discrete_input"):
        address = draw(st.integers(0, 5))
        for _ in range(draw(st.integers(0, 12))):
            metric = f"t.p{len(points)}"
            if table in ("coil", "discrete_input"):
                points.append(flag(metric, address, table))
                address += 1
            elif draw(st.booleans()):
                bits = draw(st.sets(st.integers(0, 15), min_size=1, max_size=4))
                points += [bit(f"{metric}_{n}", address, n, table) for n in sorted(bits)]
                address += 1
            else:
                type_ = draw(st.sampled_from([t for t, n in WORD_TYPES.items() if n <= max_registers]))
                points.append(word(metric, address, type_, table))
                address += WORD_TYPES[type_]
            address += draw(st.integers(0, 6))
    if not points:
        points.append(word("t.only", 0))
    return make_profile(
        *points,
        max_registers_per_request=max_registers,
        max_bits_per_request=draw(st.integers(1, 12)),
        max_gap=draw(st.integers(0, 5)),
    )


@settings(max_examples=100, deadline=None)
@given(profiles())
def test_any_profile_is_planned_within_its_limits(profile: DeviceProfile) -> None:
    check_plan(profile, plan_reads(profile))
