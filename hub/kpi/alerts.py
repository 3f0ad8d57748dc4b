"""Alerts per team and severity, and how fast teams react (MTTA, MTTR), from the alerts' histories (pandas).

The unit of response is the *episode*: from a firing (an alert's first, or its reopening after a flap)
to the resolution that ends it. An episode's time to acknowledge is its first acknowledgement minus its
start; its time to resolve is its resolution minus its start, whoever resolved it (the rules, as the
condition cleared, or a person). Only what happened before the period's end counts, so a report on a
past period gives the same figures whenever it is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import pandas as pd

from hub.kpi.model import AlertChange, AlertFacts
from hub.kpi.period import Period
from rules.model import Severity

TEAM_COLUMNS = ["team", "severity", "alerts", "reopened"]
RESPONSE_COLUMNS = ["team", "episodes", "acknowledged", "mtta_s", "resolved", "mttr_s", "open_at_end"]
_STARTS = ("firing", "reopened")
_SEVERITY_ORDER = {severity.value: rank for rank, severity in enumerate(Severity)}


def _facts(alerts: Sequence[AlertFacts]) -> pd.DataFrame:
    columns = ["id", "rule", "site", "device", "kind", "team", "severity", "fired_ms"]
    return pd.DataFrame([asdict(a) for a in alerts], columns=columns).astype({"fired_ms": "int64"})


def _history(history: Sequence[AlertChange]) -> pd.DataFrame:
    return pd.DataFrame([asdict(h) for h in history], columns=["alert_id", "ts_ms", "event", "actor"])


def _within(times: pd.Series, period: Period) -> pd.Series:
    return times.between(period.start_ms, period.end_ms, inclusive="left")


def _sorted_by_team(table: pd.DataFrame, by_severity: bool) -> pd.DataFrame:
    keys = ["team", "_rank"] if by_severity else ["team"]
    if by_severity:
        table = table.assign(_rank=table["severity"].map(_SEVERITY_ORDER).fillna(len(_SEVERITY_ORDER)))
    return table.sort_values(keys).drop(columns=["_rank"], errors="ignore").reset_index(drop=True)


def episodes(alerts: Sequence[AlertFacts], history: Sequence[AlertChange], period: Period) -> pd.DataFrame:
    """One row per episode that started in the period: alert, team, severity, start, first ack, resolution."""
    changes = _history(history)
    changes = changes[changes["ts_ms"] < period.end_ms]  # history entries are in the order they happened
    changes = changes.assign(episode=changes["event"].isin(_STARTS).groupby(changes["alert_id"]).cumsum())
    changes = changes[changes["episode"] > 0]  # entries before any firing (none are expected)
    keys = ["alert_id", "episode"]
    starts = changes[changes["event"].isin(_STARTS)].groupby(keys)["ts_ms"].min().rename("start_ms")
    acks = changes[changes["event"] == "acknowledged"].groupby(keys)["ts_ms"].min().rename("acked_ms")
    ends = changes[changes["event"] == "resolved"].groupby(keys)["ts_ms"].min().rename("resolved_ms")
    table = pd.concat([starts, acks, ends], axis=1).reset_index()
    table = table[_within(table["start_ms"], period)]
    facts = _facts(alerts)[["id", "team", "severity"]]
    return table.merge(facts, left_on="alert_id", right_on="id", how="inner").drop(columns=["id"])


def alerts_by_team(alerts: Sequence[AlertFacts], history: Sequence[AlertChange], period: Period) -> pd.DataFrame:
    """Per team and severity: alerts first fired in the period, and reopenings (flaps) in the period."""
    facts = _facts(alerts)
    fired = facts[_within(facts["fired_ms"], period)]
    counts = fired.groupby(["team", "severity"]).size().rename("alerts")
    changes = pd.DataFrame([asdict(h) for h in history], columns=["alert_id", "ts_ms", "event", "actor"])
    reopenings = changes[
        (changes["event"] == "reopened") & changes["ts_ms"].between(period.start_ms, period.end_ms - 1)
    ]
    reopened = reopenings.merge(facts, left_on="alert_id", right_on="id").groupby(["team", "severity"]).size()
    table = pd.concat([counts, reopened.rename("reopened")], axis=1).fillna(0).astype("int64").reset_index()
    return _sorted_by_team(table.reindex(columns=TEAM_COLUMNS), by_severity=True)


def response_times(table: pd.DataFrame) -> pd.DataFrame:
    """Per team (from :func:`episodes`): episodes, acknowledged ones and MTTA, resolved ones and MTTR (seconds)."""
    frame = table.assign(
        tta_s=(table["acked_ms"] - table["start_ms"]) / 1000,
        ttr_s=(table["resolved_ms"] - table["start_ms"]) / 1000,
    )
    result = frame.groupby("team", as_index=False).agg(
        episodes=("alert_id", "size"),
        acknowledged=("tta_s", "count"),
        mtta_s=("tta_s", "mean"),
        resolved=("ttr_s", "count"),
        mttr_s=("ttr_s", "mean"),
    )
    result["open_at_end"] = result["episodes"] - result["resolved"]
    return _sorted_by_team(result.reindex(columns=RESPONSE_COLUMNS), by_severity=False)
