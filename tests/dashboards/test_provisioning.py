"""The dashboards and provisioning files are what Grafana's file provisioning accepts, and up to date.

Structure as Grafana 10/11 reads it: a dashboard has a uid, a title, a schemaVersion and panels; each
panel a unique id, a gridPos inside the 24-column grid, a type, the provisioned datasource and raw
InfluxQL targets; every template variable a query references is defined on the board.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from dashboards.build import rendered, stale

from .boards import JSON_DIR, load_boards, load_yaml, queries
from .grafana_macros import BUILTINS, variables_in

BOARDS = load_boards()
DATASOURCE_UID = "cityhub-influxdb"
PANEL_TYPES = {"timeseries", "state-timeline", "stat", "table", "row"}
#: The environment variables the datasource takes its settings from (docker-compose.yml sets them for Grafana).
DATASOURCE_ENV = {
    "url": "CITYHUB_INFLUX_URL",
    "user": "CITYHUB_INFLUX_USER",
    "dbName": "CITYHUB_INFLUX_DB",
    "password": "CITYHUB_INFLUX_PASSWORD",
}


def test_the_committed_json_is_the_builders_output() -> None:
    assert stale() == [], "dashboards/json is out of date: run `python -m dashboards.build`"
    assert sorted(rendered()) == sorted(BOARDS)


def test_the_five_boards_exist() -> None:
    assert sorted(BOARDS) == ["cameras.json", "edge-agents.json", "hub.json", "server-room.json", "ups.json"]


def test_dashboard_uids_and_titles_are_unique() -> None:
    uids = [b["uid"] for b in BOARDS.values()]
    titles = [b["title"] for b in BOARDS.values()]
    assert len(set(uids)) == len(uids)
    assert len(set(titles)) == len(titles)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid) for uid in uids), uids  # Grafana's uid limit


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_has_what_provisioning_needs(name: str) -> None:
    board = BOARDS[name]
    for key in ("uid", "title", "schemaVersion", "panels", "templating", "annotations", "time"):
        assert key in board, f"{name}: no {key}"
    assert isinstance(board["schemaVersion"], int)
    assert board["schemaVersion"] >= 36  # datasources referenced by uid
    assert "id" not in board or board["id"] is None, "a provisioned board must not carry a database id"
    ids = [p["id"] for p in board["panels"]]
    assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids"
    assert all(isinstance(i, int) and i > 0 for i in ids)


def _check_panel(panel: dict[str, Any]) -> list[str]:
    title = panel.get("title", "?")
    problems = []
    if panel.get("type") not in PANEL_TYPES:
        problems.append(f"{title}: type {panel.get('type')!r}")
    grid = panel.get("gridPos", {})
    if not all(isinstance(grid.get(k), int) for k in "hwxy") or grid["x"] + grid["w"] > 24 or grid["w"] < 1:
        problems.append(f"{title}: gridPos {grid}")
    if panel.get("type") == "row":
        return problems
    if panel.get("datasource") != {"type": "influxdb", "uid": DATASOURCE_UID}:
        problems.append(f"{title}: datasource {panel.get('datasource')}")
    targets = panel.get("targets", [])
    if not targets:
        problems.append(f"{title}: no targets")
    for target in targets:
        if target.get("rawQuery") is not True or not str(target.get("query", "")).strip():
            problems.append(f"{title}: target {target.get('refId')} is not a raw InfluxQL query")
        if target.get("datasource", {}).get("uid") != DATASOURCE_UID:
            problems.append(f"{title}: target {target.get('refId')} datasource {target.get('datasource')}")
    ref_ids = [t.get("refId") for t in targets]
    if len(set(ref_ids)) != len(ref_ids):
        problems.append(f"{title}: duplicate refIds {ref_ids}")
    return problems


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panels_are_complete_and_query_the_provisioned_datasource(name: str) -> None:
    problems = [p for panel in BOARDS[name]["panels"] for p in _check_panel(panel)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panels_do_not_overlap(name: str) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in BOARDS[name]["panels"]:
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_variable_used_is_defined(name: str) -> None:
    board = BOARDS[name]
    defined = [v["name"] for v in board["templating"]["list"]]
    assert len(set(defined)) == len(defined)
    used = {(q.where, v) for q in queries(name, board) for v in variables_in(q.text)}
    undefined = sorted(f"{where}: ${v}" for where, v in used if v not in BUILTINS and v not in defined)
    assert not undefined, "\n".join(undefined)
    for variable in board["templating"]["list"]:
        assert variable["datasource"]["uid"] == DATASOURCE_UID
        assert variable["type"] == "query"


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_queries_are_influxql_not_flux(name: str) -> None:
    for query in queries(name, BOARDS[name]):
        assert re.match(r"(SELECT|SHOW) ", query.text), f"{query.where}: {query.text}"
        assert "|>" not in query.text, f"{query.where}: Flux"


def test_datasource_is_influxql_with_a_fixed_uid_and_settings_from_the_environment() -> None:
    provisioning = load_yaml("datasources/cityhub.yaml")
    assert provisioning["apiVersion"] == 1
    (source,) = provisioning["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == "influxdb"
    assert source["jsonData"]["version"] == "InfluxQL"
    values = {
        "url": source["url"],
        "user": source["user"],
        "dbName": source["jsonData"]["dbName"],
        "password": source["secureJsonData"]["password"],
    }
    assert values == {key: f"${{{env}}}" for key, env in DATASOURCE_ENV.items()}
    assert "password" not in source, "a password outside secureJsonData is stored in clear"


def test_datasource_variables_are_documented() -> None:
    readme = (JSON_DIR.parent / "README.md").read_text(encoding="utf-8")
    missing = [env for env in DATASOURCE_ENV.values() if env not in readme]
    assert not missing, f"dashboards/README.md does not mention {missing}"


def test_dashboard_provider_reads_the_mounted_folder() -> None:
    provisioning = load_yaml("dashboards/cityhub.yaml")
    assert provisioning["apiVersion"] == 1
    (provider,) = provisioning["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
