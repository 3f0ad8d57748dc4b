"""Line protocol: exact escaping, refused impossibilities, and a round trip through a real InfluxDB."""

from __future__ import annotations

import math
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from services import InfluxDBServer

from hub.storage.lineprotocol import LineProtocolError, Point, encode_point, encode_points, format_field_value

NASTY = [
    "plain",
    "with space",
    "comma,comma",
    "equals=equals",
    'double"quote',
    "single'quote",
    "back\\slash",
    "back\\\\double",
    "\\ leading backslash space",
    "mid\\,escaped-looking comma",
    'a b,c=d"e\\f',
    "ș ț ă î â Timișoara",
    "x f=1 2\nnope",  # refused in tags (line break), allowed in string fields
    "trailing backslash\\",  # refused in tags, allowed in string fields
    "tab\there",
    'fields=1i,x="y" 123',
]
TAG_SAFE = [v for v in NASTY if "\n" not in v and not v.endswith("\\")]


def point(tag: str = "t", text: str = "s", ts: int = 1_700_000_000_000) -> Point:
    return Point(measurement="m", tags=(("tag", tag),), fields=(("text", text), ("value", 1.5)), ts_ms=ts)


def test_encoding_matches_influx_escaping_rules() -> None:
    p = Point(
        measurement="my measure,ment",
        tags=(("site", "Bastion Theresia"), ("k=ey", "v,al=ue")),
        fields=(("f key", 'say "hi" \\o/'), ("n", 3), ("b", True), ("x", 0.1)),
        ts_ms=42,
    )
    assert encode_point(p) == (
        r"my\ measure\,ment,k\=ey=v\,al\=ue,site=Bastion\ Theresia "
        r'f\ key="say \"hi\" \\o/",n=3i,b=true,x=0.1 42'
    )


@pytest.mark.parametrize("bad", ["line\nbreak", "carriage\rreturn", "ends\\"])
@pytest.mark.parametrize("where", ["measurement", "tag key", "tag value", "field key"])
def test_unrepresentable_names_are_refused(bad: str, where: str) -> None:
    p = Point(
        measurement=bad if where == "measurement" else "m",
        tags=((bad if where == "tag key" else "t", bad if where == "tag value" else "v"),),
        fields=((bad if where == "field key" else "f", 1.0),),
        ts_ms=1,
    )
    with pytest.raises(LineProtocolError):
        encode_point(p)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(value: float) -> None:
    with pytest.raises(LineProtocolError):
        format_field_value(value)


def test_empty_tag_values_are_left_out() -> None:
    p = Point(measurement="m", tags=(("a", ""), ("b", "x")), fields=(("f", 1.0),), ts_ms=1)
    assert encode_point(p) == "m,b=x f=1.0 1"


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_any_tag_value_gives_exactly_one_line_or_a_refusal(text: str) -> None:
    try:
        body = encode_points([point(tag=text, text=text)])
    except LineProtocolError:
        assert "\n" in text or "\r" in text or text.endswith("\\")
        return
    # Only a string field may carry a raw line break, inside its quotes.
    assert body.count(b"\n") == 1 + text.count("\n")


def _query_rows(influxdb: InfluxDBServer, db: str) -> list[list[object]]:
    answer = influxdb.query('SELECT "text", "tag", "value" FROM "m"', db=db)
    series = answer["results"][0].get("series", [])
    return [row for s in series for row in s["values"]]


def test_special_characters_round_trip_through_influxdb(influxdb: InfluxDBServer) -> None:
    """Each nasty value as a tag and as a string field comes back exactly, one point each, no injection."""
    db = f"lp_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    points = [
        point(tag=tag, text=text, ts=1_700_000_000_000 + i)
        for i, (tag, text) in enumerate(zip(TAG_SAFE * 2, NASTY + NASTY[: 2 * len(TAG_SAFE) - len(NASTY)], strict=True))
    ]
    influxdb.write(db, encode_points(points).decode())
    rows = _query_rows(influxdb, db)
    assert len(rows) == len(points)
    expected = {(p.ts_ms, p.fields[0][1], p.tags[0][1]) for p in points}
    assert {(row[0], row[1], row[2]) for row in rows} == expected
    assert all(row[3] == 1.5 for row in rows)
