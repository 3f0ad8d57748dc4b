"""The audit log: append-only in SQLite, a hash chain that names the first tampered row, JSON lines export."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.api.roles import Role
from hub.audit import GENESIS, AuditLog, AuditQuery, Outcome, chain_hash


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[AuditLog]:
    now = [1_700_000_000.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    audit = AuditLog(tmp_path / "audit.sqlite", clock=clock)
    await audit.open()
    for i in range(5):
        await audit.record(
            "auth.login" if i % 2 == 0 else "registration.approved",
            actor="ion" if i < 3 else "paula",
            target=f"t{i}",
            source="198.51.100.1",
            detail={"n": i, "note": "ăîșțâ"},
        )
    try:
        yield audit
    finally:
        await audit.aclose()


async def test_entries_are_chained(log: AuditLog) -> None:
    entries = await log.entries(AuditQuery())
    assert [e.id for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    for before, entry in itertools.pairwise(entries):
        assert entry.prev_hash == before.hash == chain_hash(before.prev_hash, before.content())
    assert await log.verify() is None


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit SET actor = 'mallory' WHERE id = 2", "DELETE FROM audit WHERE id = 2", "DELETE FROM audit"],
)
async def test_append_only_at_the_sqlite_level(log: AuditLog, statement: str) -> None:
    with sqlite3.connect(log.path) as conn, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(statement)


@pytest.mark.parametrize(
    ("statement", "first_broken"),
    [
        ("UPDATE audit SET detail = '{\"n\":99}' WHERE id = 3", 3),
        ("UPDATE audit SET source = '10.0.0.1' WHERE id = 1", 1),
        ("UPDATE audit SET ts_ms = ts_ms - 1 WHERE id = 5", 5),
        ("DELETE FROM audit WHERE id = 2", 3),  # the successor's link breaks
        ("DELETE FROM audit WHERE id = 1", 2),
        ("UPDATE audit SET hash = 'x' WHERE id = 4", 4),
    ],
)
async def test_verify_names_the_first_tampered_entry(log: AuditLog, statement: str, first_broken: int) -> None:
    with sqlite3.connect(log.path) as conn:  # tampering outside the hub: drop the guards first
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("DROP TRIGGER audit_no_delete")
        conn.execute(statement)
    assert await log.verify() == first_broken


async def test_recomputing_one_hash_still_breaks_the_next_link(log: AuditLog) -> None:
    with sqlite3.connect(log.path) as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        row = conn.execute("SELECT prev_hash FROM audit WHERE id = 2").fetchone()
        [entry] = [e for e in await log.entries(AuditQuery()) if e.id == 2]
        forged = {**entry.content(), "actor": "mallory"}
        conn.execute("UPDATE audit SET actor = 'mallory', hash = ? WHERE id = 2", (chain_hash(row[0], forged),))
    assert await log.verify() == 3


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        (AuditQuery(), [1, 2, 3, 4, 5]),
        (AuditQuery(actor="paula"), [4, 5]),
        (AuditQuery(action="auth.login"), [1, 3, 5]),
        (AuditQuery(action="registration."), [2, 4]),
        (AuditQuery(action="auth."), [1, 3, 5]),
        (AuditQuery(since_ms=1_700_000_002_000, until_ms=1_700_000_004_000), [2, 3]),
        (AuditQuery(after_id=3), [4, 5]),
        (AuditQuery(after_id=1, limit=2), [2, 3]),
    ],
)
async def test_queries(log: AuditLog, query: AuditQuery, ids: list[int]) -> None:
    assert [e.id for e in await log.entries(query)] == ids


async def test_export_jsonl(log: AuditLog) -> None:
    lines = [line async for line in log.export_jsonl()]
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    parsed = [json.loads(line) for line in lines]
    assert [p["id"] for p in parsed] == [1, 2, 3, 4, 5]
    assert parsed[0]["ts"] == "2023-11-14T22:13:21.000Z"
    assert set(parsed[0]) == {
        "id", "ts", "ts_ms", "actor", "action", "target", "outcome", "source", "detail", "prev_hash", "hash"
    }  # fmt: skip
    assert parsed[4]["detail"] == {"n": 4, "note": "ăîșțâ"}


async def test_recorder_matches_the_registrar_callback(log: AuditLog) -> None:
    await log.recorder()("key:k1", "registration.requested", "site/dev", "ok", {"kind": "ups"})
    [entry] = await log.entries(AuditQuery(action="registration.requested"))
    assert (entry.actor, entry.target, entry.outcome, entry.source) == ("key:k1", "site/dev", Outcome.OK, None)


# Through the API


async def test_api_lists_pages(client: httpx.AsyncClient, accounts: dict[Role, Any], api: Any) -> None:
    for i in range(5):
        await api.audit.record("rule.changed", actor="ion", target=f"r{i}")
    headers = accounts[Role.ADMIN].headers
    first = (await client.get("/api/v1/audit", params={"action": "rule.changed", "limit": 3}, headers=headers)).json()
    assert [e["target"] for e in first["items"]] == ["r0", "r1", "r2"]
    params = {"action": "rule.changed", "limit": 3, "after": first["next_after"]}
    second = (await client.get("/api/v1/audit", params=params, headers=headers)).json()
    assert [e["target"] for e in second["items"]] == ["r3", "r4"]
    assert second["next_after"] is None


async def test_api_time_filters(client: httpx.AsyncClient, accounts: dict[Role, Any], api: Any, clock: Any) -> None:
    clock.advance(1800)  # within the token lifetime
    await api.audit.record("alert.acknowledged", actor="paula", target="a1")
    params = {"since": "2023-11-14T22:43:20Z", "action": "alert.acknowledged"}
    response = await client.get("/api/v1/audit", params=params, headers=accounts[Role.ADMIN].headers)
    assert [e["target"] for e in response.json()["items"]] == ["a1"]
    params = {"until": "2023-11-14T22:43:20", "action": "alert.acknowledged"}
    response = await client.get("/api/v1/audit", params=params, headers=accounts[Role.ADMIN].headers)
    assert response.json()["items"] == []


async def test_api_export_streams_ndjson(client: httpx.AsyncClient, accounts: dict[Role, Any]) -> None:
    await client.post("/api/v1/auth/token", data={"username": "ion", "password": "wrong-password-1"})
    response = await client.get("/api/v1/audit/export", headers=accounts[Role.ADMIN].headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    entries = [json.loads(line) for line in response.text.splitlines()]
    assert [e["action"] for e in entries] == ["user.created", "auth.login_failed", "audit.exported"]
    assert entries[1]["source"] == "203.0.113.7"


async def test_api_verify(client: httpx.AsyncClient, accounts: dict[Role, Any], api: Any) -> None:
    response = await client.get("/api/v1/audit/verify", headers=accounts[Role.ADMIN].headers)
    assert response.json() == {"intact": True, "first_broken_id": None}
    with sqlite3.connect(api.audit.path) as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("UPDATE audit SET actor = 'mallory' WHERE id = 1")
    response = await client.get("/api/v1/audit/verify", headers=accounts[Role.ADMIN].headers)
    assert response.json() == {"intact": False, "first_broken_id": 1}
