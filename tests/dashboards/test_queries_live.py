"""Every query of every board returns data from an InfluxDB that the shipped scenarios filled.

The scenarios run on real parts (simulators, edge agents, Mosquitto, the hub, InfluxDB: filled.py).
Then each board's template variables are resolved from that database, as Grafana does when a board
opens with every variable on "All", and each panel target and annotation query is sent with Grafana's
macros substituted (grafana_macros.py). A query that errors, or gives no series or only nulls, fails
the test: a renamed point, a typo in a tag or a measurement the hub does not write all show up here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from services import InfluxDBServer, MosquittoServer

from .boards import BoardQuery, load_boards, queries
from .filled import FilledDatabase, filled_database
from .grafana_macros import TimeRange, datasource_min_interval_ms, interpolate

#: Time range of the board: the run, with a minute of margin before it (what an operator zooms into).
MARGIN_MS = 60_000


def _has_data(answer: dict[str, Any]) -> bool:
    """At least one series with at least one non-null value besides the time."""
    for result in answer["results"]:
        for series in result.get("series", []):
            columns = series["columns"]
            for row in series["values"]:
                if any(value is not None for column, value in zip(columns, row, strict=True) if column != "time"):
                    return True
    return False


def _tag_values(answer: dict[str, Any]) -> list[str]:
    """The values of a SHOW TAG VALUES answer."""
    return sorted({row[1] for series in answer["results"][0].get("series", []) for row in series["values"]})


def _run(filled: FilledDatabase, query: BoardQuery, span: TimeRange, variables: dict[str, list[str]]) -> str | None:
    """Send one query as Grafana would; a problem, or None."""
    text = interpolate(query.text, span, variables, datasource_min_interval_ms())
    try:
        answer = filled.influxdb.query(text, db=filled.db)
    except RuntimeError as exc:
        return f"{query.board} {query.where}: {exc}"
    if not _has_data(answer):
        return f"{query.board} {query.where}: no data\n    {text}"
    return None


def _check_board(filled: FilledDatabase, name: str, board: dict[str, Any], span: TimeRange) -> list[str]:
    variables: dict[str, list[str]] = {}
    problems = []
    for variable in board["templating"]["list"]:  # in order: a variable's query may use the ones before it
        text = interpolate(variable["query"], span, variables, datasource_min_interval_ms())
        variables[variable["name"]] = values = _tag_values(filled.influxdb.query(text, db=filled.db))
        if not values:
            problems.append(f"{name} variable {variable['name']}: no values\n    {text}")
            variables[variable["name"]] = ["(none)"]
    for query in queries(name, board):
        if not query.where.startswith("variable"):
            problem = _run(filled, query, span, variables)
            if problem:
                problems.append(problem)
    return problems


@pytest.mark.timeout(240)
async def test_every_panel_query_returns_data_from_the_scenarios(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxDBServer
) -> None:
    boards = load_boards()
    assert len(boards) == 5
    async with filled_database(tmp_path, mosquitto, influxdb) as filled:
        span = TimeRange(from_ms=filled.start_ms - MARGIN_MS, to_ms=filled.end_ms)
        problems = [p for name, board in boards.items() for p in _check_board(filled, name, board, span)]
        counted = sum(1 for name, board in boards.items() for _ in queries(name, board))
        # The check can fail: a point renamed in one query gives no data.
        (charge,) = [q for q in queries("ups.json", boards["ups.json"]) if "'battery.charge'" in q.text]
        typo = BoardQuery(board=charge.board, where=charge.where, text=charge.text.replace("charge'", "chrge'"))
        all_ups = {"site": ["cjt-server-room"], "device": ["ups-1"]}
        assert _run(filled, charge, span, all_ups) is None
        assert "no data" in (_run(filled, typo, span, all_ups) or "")
    assert not problems, f"{len(problems)} of {counted} queries failed:\n" + "\n".join(problems)
    assert counted >= 50  # the boards are not empty shells
