"""A KPI report: the five tables of one period, a summary, and their JSON, CSV and Parquet forms.

docs/reports.md defines every figure. ``allows(site, kind)`` narrows a report to a caller's scope: the
devices and alerts outside it are left out before anything is computed, so no figure reveals them.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from hub.kpi import alerts, availability
from hub.kpi.errors import KpiError
from hub.kpi.model import KpiData
from hub.kpi.period import DEFAULT_TIMEZONE, Period, iso

#: The tables of a report, in the order they are written and shown.
TABLES = ("devices", "availability_by_device", "availability_by_site", "alerts_by_team", "response_times")
Format = Literal["csv", "parquet"]


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiReport:
    """The figures of one period."""

    period: Period
    observed_end_ms: int  # the period's end, or when the report was made if that came first
    timezone: str
    tables: dict[str, pd.DataFrame]

    def summary(self) -> dict[str, Any]:
        """The headline figures: devices managed and online, availability, alerts, MTTA and MTTR."""
        counts, by_device = self.tables["devices"], self.tables["availability_by_device"]
        observed = float(by_device["observed_s"].sum())
        times = self.tables["response_times"]
        acked, resolved = int(times["acknowledged"].sum()), int(times["resolved"].sum())
        return {
            "devices_managed": int(counts["managed"].sum()),
            "devices_online": int(counts["online"].sum()),
            "devices_without_data": int((by_device["observed_s"] == 0).sum()),
            "availability": _number(by_device["online_s"].sum() / observed) if observed > 0 else None,
            "alerts": int(self.tables["alerts_by_team"]["alerts"].sum()),
            "episodes": int(times["episodes"].sum()),
            "mtta_s": _weighted(times["mtta_s"], times["acknowledged"], acked),
            "mttr_s": _weighted(times["mttr_s"], times["resolved"], resolved),
        }

    def as_json(self) -> dict[str, Any]:
        """The report as the API answers it: the period, the summary and each table as a list of rows."""
        return {
            "from": iso(self.period.start_ms, self.timezone),
            "to": iso(self.period.end_ms, self.timezone),
            "from_ms": self.period.start_ms,
            "to_ms": self.period.end_ms,
            "observed_to_ms": self.observed_end_ms,
            "summary": self.summary(),
            **{name: _records(self.tables[name]) for name in TABLES},
        }

    def write(self, out_dir: Path, fmt: Format = "csv") -> list[Path]:
        """One file per table in ``out_dir`` (created); KpiError when Parquet is asked for without pyarrow."""
        check_format(fmt)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in TABLES:
            path = out_dir / f"{name}.{fmt}"
            if fmt == "csv":
                self.tables[name].to_csv(path, index=False)
            else:
                self.tables[name].to_parquet(path, index=False)
            paths.append(path)
        return paths


def check_format(fmt: str) -> None:
    """KpiError unless tables can be written as ``fmt`` here (Parquet needs pyarrow, an optional extra)."""
    if fmt not in ("csv", "parquet"):
        raise KpiError(f"unknown format {fmt!r}: csv or parquet")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise KpiError("Parquet needs pyarrow: pip install 'cityhub[reports]' (or use --format csv)")


def _number(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)


def _weighted(means: pd.Series, counts: pd.Series, total: int) -> float | None:
    """The mean over every team's episodes, from the per-team means and counts."""
    if total == 0:
        return None
    return _number(float((means.fillna(0) * counts).sum()) / total)


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    # to_json turns NaN into null and numpy numbers into JSON numbers in one pass.
    rows: list[dict[str, Any]] = json.loads(table.round(6).to_json(orient="records"))
    return rows


def _scoped(data: KpiData, allows: Callable[[str, str], bool]) -> KpiData:
    kept = {a.id for a in data.alerts if allows(a.site, a.kind)}
    return replace(
        data,
        devices=tuple(d for d in data.devices if allows(d.site, d.kind)),
        changes=tuple(c for c in data.changes if allows(c.site, c.kind)),
        alerts=tuple(a for a in data.alerts if a.id in kept),
        history=tuple(h for h in data.history if h.alert_id in kept),
    )


def build_report(
    data: KpiData,
    period: Period,
    *,
    now_ms: int,
    allows: Callable[[str, str], bool] | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> KpiReport:
    """Compute every table of the report on ``period`` from ``data`` (what ``allows`` lets through)."""
    if allows is not None:
        data = _scoped(data, allows)
    by_device = availability.availability_by_device(data.devices, data.changes, period, now_ms)
    episodes = alerts.episodes(data.alerts, data.history, period)
    tables = {
        "devices": availability.device_counts(by_device),
        "availability_by_device": by_device,
        "availability_by_site": availability.availability_by_site(by_device),
        "alerts_by_team": alerts.alerts_by_team(data.alerts, data.history, period),
        "response_times": alerts.response_times(episodes),
    }
    return KpiReport(period=period, observed_end_ms=period.observed_end(now_ms), timezone=timezone, tables=tables)
