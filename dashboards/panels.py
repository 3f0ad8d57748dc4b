"""InfluxQL and panel shorthands for the boards: the queries the cityhub schema needs, written once.

The schema is docs/storage.md's: measurement = metric family; tags ``site``, ``device``, ``kind``,
``point``, ``unit``; numbers and booleans in field ``value``, strings in ``text``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from dashboards.grafana import Panel, PanelType, Query

SITE = '"site" =~ /^$site$/'
DEVICE = '"device" =~ /^$device$/'
ON_OFF = {"1": ("on", "green"), "0": ("off", "text")}
ALARM = {"1": ("alarm", "red"), "0": ("ok", "green")}
ONLINE = {"1": ("online", "green"), "0": ("offline", "red")}
YES_NO = {"1": ("yes", "green"), "0": ("no", "red")}
LEGEND = "$tag_device $tag_point"


def points(*names: str) -> str:
    """An InfluxQL condition on the ``point`` tag: equality for one name, an anchored regex for several."""
    if len(names) == 1:
        return f"\"point\" = '{names[0]}'"
    return f'"point" =~ /^({"|".join(re.escape(n) for n in names)})$/'


def series(
    measurement: str,
    where: str,
    *,
    agg: str = 'mean("value")',
    by: str = '"device", "point"',
    fill: str = "none",
) -> str:
    """One series per tag combination, one value per Grafana interval."""
    return (
        f'SELECT {agg} FROM "{measurement}" WHERE {where} AND $timeFilter GROUP BY time($__interval), {by} fill({fill})'
    )


def graph(title: str, measurement: str, where: str, unit: str, *, description: str = "", width: int = 12) -> Panel:
    """A line graph of numeric points, one line per device and point."""
    query = Query(text=series(measurement, where), alias=LEGEND)
    return Panel(title=title, type="timeseries", queries=(query,), unit=unit, description=description, width=width)


def timeline(
    title: str,
    measurement: str,
    where: str,
    mappings: Mapping[str, tuple[str, str]],
    *,
    agg: str = 'last("value")',
    by: str = '"device", "point"',
    alias: str = LEGEND,
    width: int = 12,
    description: str = "",
) -> Panel:
    """A state timeline of booleans or state codes (the last value of each interval, held until the next)."""
    query = Query(text=series(measurement, where, agg=agg, by=by, fill="previous"), alias=alias)
    return Panel(
        title=title,
        type="state-timeline",
        queries=(query,),
        mappings=dict(mappings),
        width=width,
        description=description,
    )


def table(title: str, text: str, *, width: int = 24, description: str = "", kind: PanelType = "table") -> Panel:
    """A table of one query's rows."""
    return Panel(title=title, type=kind, queries=(Query(text=text, table=True),), width=width, description=description)


def event_table(title: str, where: str, description: str = "") -> Panel:
    """The events of the time range, newest first."""
    text = (
        'SELECT "site", "device", "event", "active", "message" FROM "events" '
        f"WHERE {where} AND $timeFilter ORDER BY time DESC"
    )
    return table(title, text, description=description)


def latest_text(title: str, measurement: str, where: str, *, width: int = 12, description: str = "") -> Panel:
    """The latest string value of a point per site and device (e.g. a UPS's status tokens)."""
    text = (
        f'SELECT last("text") AS "value" FROM "{measurement}" WHERE {where} AND $timeFilter GROUP BY "site", "device"'
    )
    return table(title, text, width=width, description=description)
