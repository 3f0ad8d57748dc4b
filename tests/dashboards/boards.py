"""The committed dashboards and provisioning files, read as Grafana reads them, for the tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
JSON_DIR = DASHBOARDS / "json"
PROVISIONING = DASHBOARDS / "provisioning"


def load_boards() -> dict[str, dict[str, Any]]:
    """Every dashboard JSON file by file name."""
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(JSON_DIR.glob("*.json"))}


def load_yaml(relative: str) -> dict[str, Any]:
    """A provisioning file."""
    data = yaml.safe_load((PROVISIONING / relative).read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{relative}: not a mapping"
    return data


@dataclass(frozen=True, slots=True, kw_only=True)
class BoardQuery:
    """One query of a board: where it is (for messages) and its raw text."""

    board: str
    where: str  # "panel 'Battery charge' target B", "variable site", "annotation 'UPS events'"
    text: str


def queries(name: str, board: dict[str, Any]) -> Iterator[BoardQuery]:
    """Every InfluxQL query of a board: panel targets, template variables, annotations."""
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            where = f"panel {panel['title']!r} target {target['refId']}"
            yield BoardQuery(board=name, where=where, text=target["query"])
    for variable in board["templating"]["list"]:
        yield BoardQuery(board=name, where=f"variable {variable['name']}", text=variable["query"])
    for annotation in board["annotations"]["list"]:
        if "query" in annotation:
            yield BoardQuery(board=name, where=f"annotation {annotation['name']!r}", text=annotation["query"])
