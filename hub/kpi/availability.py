"""Devices and their availability over a period, from their online/offline transitions (pandas, no I/O).

A device's state at any instant is the state of its last transition at or before it, so the transition
*before* the period gives the state at its start. The hub's registry says the same thing of the latest
transition (state and since when), so it counts as one more transition: a device that has not changed
for longer than the InfluxDB retention is still known. Where no transition precedes an instant, the
state there is unknown: such time counts neither as online nor as offline, and a device with no known
state in the whole period has no availability (not 100 %).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import pandas as pd

from hub.kpi.model import KnownDevice, StatusChange
from hub.kpi.period import Period

_KEY = ["site", "device"]
DEVICE_COLUMNS = [
    "site", "device", "kind", "state_at_end", "online_s", "observed_s", "coverage", "availability", "went_offline",
]  # fmt: skip
SITE_COLUMNS = ["site", "devices", "devices_with_data", "online_s", "observed_s", "availability"]
COUNT_COLUMNS = ["site", "kind", "managed", "online", "offline", "unknown"]


def _changes(devices: Sequence[KnownDevice], changes: Sequence[StatusChange]) -> pd.DataFrame:
    """Every transition, the registry's latest included, in time order per device."""
    rows = [asdict(c) for c in changes]
    rows += [
        {"site": d.site, "device": d.device, "kind": d.kind, "ts_ms": d.since_ms, "online": d.state == "online"}
        for d in devices
    ]
    frame = pd.DataFrame(rows, columns=["site", "device", "kind", "ts_ms", "online"])
    frame = frame.astype({"ts_ms": "int64", "online": "bool"})
    # A stable sort keeps the stored point ahead of the registry's copy of it at the same instant.
    return frame.sort_values([*_KEY, "ts_ms"], kind="stable").reset_index(drop=True)


def _segments(changes: pd.DataFrame, start_ms: int, end_ms: int) -> pd.DataFrame:
    """Stretches of constant known state inside [start_ms, end_ms): one row per stretch, with its length."""
    frame = changes[changes["ts_ms"] < end_ms].copy()
    # Transitions before the period all move to its start; the last of them is the state at the start.
    frame["ts_ms"] = frame["ts_ms"].clip(lower=start_ms)
    frame = frame.drop_duplicates([*_KEY, "ts_ms"], keep="last")
    following = frame.groupby(_KEY, sort=False)["ts_ms"].shift(-1)
    frame["length_ms"] = following.fillna(end_ms).astype("int64") - frame["ts_ms"]
    previous = frame.groupby(_KEY, sort=False)["online"].shift(1)
    frame["went_offline"] = previous.eq(True) & ~frame["online"]
    return frame


def _all_devices(devices: Sequence[KnownDevice], changes: pd.DataFrame) -> pd.DataFrame:
    """One row per device (site, device, kind), the registry's kind first."""
    known = pd.DataFrame([asdict(d) for d in devices], columns=["site", "device", "kind"])
    seen = changes[["site", "device", "kind"]].iloc[::-1]  # the latest kind of a device that changed kind
    return pd.concat([known[["site", "device", "kind"]], seen]).drop_duplicates(_KEY).reset_index(drop=True)


def availability_by_device(
    devices: Sequence[KnownDevice], changes: Sequence[StatusChange], period: Period, now_ms: int
) -> pd.DataFrame:
    """Per device: seconds online and observed in the period, coverage, availability, times it went offline."""
    frame = _changes(devices, changes)
    end_ms = period.observed_end(now_ms)
    segments = _segments(frame, period.start_ms, end_ms)
    segments["online_ms"] = segments["length_ms"].where(segments["online"], 0)
    totals = segments.groupby(_KEY).agg(
        online_ms=("online_ms", "sum"),
        observed_ms=("length_ms", "sum"),
        went_offline=("went_offline", "sum"),
        last_online=("online", "last"),
    )
    table = _all_devices(devices, frame).merge(totals, on=_KEY, how="left")
    table["online_s"] = table["online_ms"].fillna(0) / 1000
    table["observed_s"] = table["observed_ms"].fillna(0) / 1000
    span_s = (end_ms - period.start_ms) / 1000
    table["coverage"] = table["observed_s"] / span_s if span_s > 0 else float("nan")
    table["availability"] = (table["online_s"] / table["observed_s"]).where(table["observed_s"] > 0)
    table["went_offline"] = table["went_offline"].fillna(0).astype("int64")
    state = table["last_online"].map({True: "online", False: "offline"})
    table["state_at_end"] = state.where(table["last_online"].notna(), "unknown")
    return table.sort_values(_KEY).reset_index(drop=True)[DEVICE_COLUMNS]


def availability_by_site(by_device: pd.DataFrame) -> pd.DataFrame:
    """Per site: its devices' online time over their observed time (a device with no data does not count)."""
    grouped = by_device.groupby("site", as_index=False)
    table = grouped.agg(
        devices=("device", "count"),
        devices_with_data=("observed_s", lambda s: int((s > 0).sum())),
        online_s=("online_s", "sum"),
        observed_s=("observed_s", "sum"),
    )
    table["availability"] = (table["online_s"] / table["observed_s"]).where(table["observed_s"] > 0)
    return table[SITE_COLUMNS]


def device_counts(by_device: pd.DataFrame) -> pd.DataFrame:
    """Per site and kind: devices managed, and how many were online, offline or unknown at the period's end."""
    states = pd.crosstab([by_device["site"], by_device["kind"]], by_device["state_at_end"])
    states = states.reindex(columns=["online", "offline", "unknown"], fill_value=0)
    states.columns.name = None
    table = states.reset_index()
    table["managed"] = table[["online", "offline", "unknown"]].sum(axis=1)
    return table.astype({c: "int64" for c in COUNT_COLUMNS[2:]})[COUNT_COLUMNS]
