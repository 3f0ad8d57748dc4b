"""What Grafana's InfluxDB datasource does to a raw InfluxQL query before sending it, for the tests.

Grafana (public/app/plugins/datasource/influxdb) replaces ``$timeFilter`` with an absolute time range in
milliseconds, ``$__interval`` with an interval derived from the range (never below the datasource's
``timeInterval``), and template variables with their values: a multi-value or "All" variable inside a
regex becomes ``(a|b)`` with each value regex-escaped, a single value stays as it is (escaped).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

DATASOURCE_FILE = Path(__file__).resolve().parents[2] / "dashboards" / "provisioning" / "datasources" / "cityhub.yaml"
#: Grafana's maxDataPoints for a panel is about its width in pixels.
MAX_DATA_POINTS = 1000
#: The steps Grafana rounds an interval up to (rangeutil.roundInterval), in milliseconds.
_STEPS_MS = (
    10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 20_000, 30_000, 60_000, 300_000, 600_000,
    900_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
)  # fmt: skip
_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_VARIABLE = re.compile(r"\$\{(\w+)\}|\[\[(\w+)\]\]|\$(\w+)")
#: What Grafana itself fills in; every other $name in a query must be a template variable of the board.
BUILTINS = frozenset({"timeFilter", "__interval", "__interval_ms", "__from", "__to", "__range", "__range_s"})


def variables_in(text: str) -> set[str]:
    """The names of the $var, ${var} and [[var]] references in ``text``."""
    return {next(g for g in m.groups() if g) for m in _VARIABLE.finditer(text)}


def regex_escape(value: str) -> str:
    """Grafana's regexEscape: the characters special in a JavaScript regex, backslashed."""
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), value)


def parse_interval(text: str) -> int:
    """``10s`` -> 10000 (milliseconds)."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text.strip())
    assert match, f"not a Grafana interval: {text!r}"
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


def format_interval(ms: int) -> str:
    """Milliseconds as Grafana writes an interval into a query: the largest unit that divides it."""
    for unit, size in sorted(_UNITS_MS.items(), key=lambda item: -item[1]):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    raise AssertionError(f"interval {ms} ms")


def datasource_min_interval_ms(path: Path = DATASOURCE_FILE) -> int:
    """The provisioned datasource's ``timeInterval`` (Grafana's lower limit for ``$__interval``)."""
    (source,) = yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]
    return parse_interval(source["jsonData"]["timeInterval"])


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeRange:
    """A dashboard's time range, in epoch milliseconds."""

    from_ms: int
    to_ms: int

    def interval_ms(self, min_interval_ms: int) -> int:
        """Grafana's ``$__interval``: the range over the data points, rounded up to a step, at least the minimum."""
        raw = (self.to_ms - self.from_ms) / MAX_DATA_POINTS
        rounded = next((step for step in _STEPS_MS if step >= raw), _STEPS_MS[-1])
        return max(rounded, min_interval_ms)


def _variable_value(values: Sequence[str]) -> str:
    escaped = [regex_escape(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate(text: str, span: TimeRange, variables: Mapping[str, Sequence[str]], min_interval_ms: int) -> str:
    """``text`` as Grafana sends it, with every variable set to "All" (``variables``: name -> all its values)."""
    interval = span.interval_ms(min_interval_ms)
    builtins = {
        "timeFilter": f"time >= {span.from_ms}ms and time <= {span.to_ms}ms",
        "__interval": format_interval(interval),
        "__interval_ms": str(interval),
        "__from": str(span.from_ms),
        "__to": str(span.to_ms),
    }

    def replace(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name in builtins:
            return builtins[name]
        if name not in variables:
            raise AssertionError(f"undefined template variable ${name} in {text!r}")
        return _variable_value(variables[name])

    return _VARIABLE.sub(replace, text)
