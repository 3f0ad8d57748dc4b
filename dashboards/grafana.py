"""A small model of Grafana dashboards (panels, InfluxQL targets, template variables) and its JSON.

Boards are described in ``dashboards/boards.py`` with these values; ``dashboards/build.py`` writes
``dashboards/json/*.json`` from them. Panels are laid out left to right in Grafana's 24-column grid,
wrapping to the next line, under row headers; panel ids are numbered in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

#: The datasource provisioned by dashboards/provisioning/datasources/cityhub.yaml.
DATASOURCE_UID = "cityhub-influxdb"
DATASOURCE: dict[str, str] = {"type": "influxdb", "uid": DATASOURCE_UID}
#: Grafana 10.4 to 11 read this schema version without migrating the board.
SCHEMA_VERSION = 39
GRID_COLUMNS = 24

PanelType = Literal["timeseries", "state-timeline", "stat", "table"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """One InfluxQL target: raw query text, with Grafana's macros and template variables in it."""

    text: str
    alias: str | None = None  # e.g. "$tag_device": the legend Grafana builds from the series' tags
    table: bool = False  # resultFormat "table" instead of "time_series"


@dataclass(frozen=True, slots=True, kw_only=True)
class Panel:
    """A panel: its kind, its queries, and how its values are shown."""

    title: str
    type: PanelType
    queries: tuple[Query, ...]
    description: str = ""
    unit: str | None = None
    width: int = 12
    height: int = 8
    mappings: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # value -> (text, colour)
    decimals: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """A row header and the panels under it."""

    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Variable:
    """A query template variable (multi-value, with "All"), filled from ``SHOW TAG VALUES``."""

    name: str
    label: str
    query: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Annotation:
    """Events drawn on the time axis of every panel, from an InfluxQL query."""

    name: str
    query: str
    color: str = "red"
    text_column: str = "message"
    tags_column: str = "event"


@dataclass(frozen=True, slots=True, kw_only=True)
class Board:
    """One dashboard."""

    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    variables: tuple[Variable, ...] = ()
    annotations: tuple[Annotation, ...] = ()
    time_from: str = "now-6h"


def _target(query: Query, ref: int) -> dict[str, Any]:
    target: dict[str, Any] = {
        "refId": chr(ord("A") + ref),
        "datasource": DATASOURCE,
        "rawQuery": True,
        "query": query.text,
        "resultFormat": "table" if query.table else "time_series",
    }
    if query.alias:
        target["alias"] = query.alias
    return target


def _mappings(mappings: Mapping[str, tuple[str, str]]) -> list[dict[str, Any]]:
    if not mappings:
        return []
    options = {
        value: {"text": text, "color": colour, "index": i} for i, (value, (text, colour)) in enumerate(mappings.items())
    }
    return [{"type": "value", "options": options}]


def _options(panel: Panel) -> dict[str, Any]:
    if panel.type == "stat":
        return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value"}
    if panel.type == "state-timeline":
        return {"mergeValues": True, "showValue": "auto", "alignValue": "left", "rowHeight": 0.9}
    if panel.type == "table":
        return {"showHeader": True, "cellHeight": "sm"}
    return {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}}


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"mappings": _mappings(panel.mappings)}
    if panel.unit:
        defaults["unit"] = panel.unit
    if panel.decimals is not None:
        defaults["decimals"] = panel.decimals
    if panel.type == "state-timeline" and not panel.mappings:
        defaults["color"] = {"mode": "palette-classic"}
    return {
        "id": panel_id,
        "type": panel.type,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": [_target(q, i) for i, q in enumerate(panel.queries)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": _options(panel),
    }


def _layout(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Every row header and panel, with ids in order and grid positions that wrap at 24 columns."""
    out: list[dict[str, Any]] = []
    y = 0
    for row in rows:
        out.append(
            {
                "id": len(out) + 1,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_COLUMNS, "x": 0, "y": y},
                "panels": [],
            }
        )
        y, x, line_height = y + 1, 0, 0
        for panel in row.panels:
            if x + panel.width > GRID_COLUMNS:
                y, x, line_height = y + line_height, 0, 0
            out.append(_panel(panel, len(out) + 1, x, y))
            x, line_height = x + panel.width, max(line_height, panel.height)
        y += line_height
    return out


def _variable(variable: Variable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "label": variable.label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": variable.query,
        "definition": variable.query,
        "refresh": 2,  # on time range change: new devices appear without reloading the board
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "regex": "",
        "sort": 1,
        "hide": 0,
    }


def _annotation(annotation: Annotation) -> dict[str, Any]:
    return {
        "name": annotation.name,
        "datasource": DATASOURCE,
        "enable": True,
        "iconColor": annotation.color,
        "query": annotation.query,
        "textColumn": annotation.text_column,
        "tagsColumn": annotation.tags_column,
    }


_BUILTIN_ANNOTATION = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts",
    "type": "dashboard",
}


def dashboard(board: Board) -> dict[str, Any]:
    """The board as Grafana's dashboard JSON (what file provisioning reads)."""
    return {
        "uid": board.uid,
        "title": board.title,
        "description": board.description,
        "tags": ["cityhub"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,  # shared crosshair: a UPS on battery lines up with the room's temperature
        "timezone": "browser",
        "refresh": "30s",
        "time": {"from": board.time_from, "to": "now"},
        "links": [{"type": "dashboards", "tags": ["cityhub"], "asDropdown": True, "title": "cityhub boards"}],
        "annotations": {"list": [_BUILTIN_ANNOTATION, *map(_annotation, board.annotations)]},
        "templating": {"list": [_variable(v) for v in board.variables]},
        "panels": _layout(board.rows),
    }
