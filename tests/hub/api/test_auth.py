"""Login, logout, password change, throttling, client addresses, and what is stored of passwords and tokens."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher, Type, extract_parameters
from starlette.requests import Request

from hub.api import HubApi
from hub.api.roles import Role
from hub.api.settings import ApiSettings
from hub.api.users import UserStore
from hub.audit import AuditQuery

CLIENT_IP = "203.0.113.7"
ADMIN_PASSWORD = "Bootstrap-Root-Pass-9471"


async def login(client: httpx.AsyncClient, username: str, password: str, **kw: Any) -> httpx.Response:
    return await client.post("/api/v1/auth/token", data={"username": username, "password": password}, **kw)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_gives_a_bearer_token(client: httpx.AsyncClient, api: HubApi) -> None:
    response = await login(client, "admin", ADMIN_PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == api.settings.token_ttl_s
    me = await client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.json()["username"] == "admin"
    [entry] = await api.audit.entries(AuditQuery(action="auth.login"))
    assert (entry.actor, entry.outcome, entry.source) == ("admin", "ok", CLIENT_IP)


async def test_username_is_case_insensitive(client: httpx.AsyncClient) -> None:
    assert (await login(client, " Admin ", ADMIN_PASSWORD)).status_code == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [("admin", "wrong-password-123"), ("nobody", "wrong-password-123"), ("admin", "x" * 2000)],
    ids=["wrong_password", "unknown_user", "oversized_password"],
)
async def test_failed_login_is_refused_alike_and_audited_with_ip(
    client: httpx.AsyncClient, api: HubApi, username: str, password: str
) -> None:
    response = await login(client, username, password)
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "invalid_credentials", "message": "incorrect username or password"}}
    [entry] = await api.audit.entries(AuditQuery(action="auth.login_failed"))
    assert (entry.actor, entry.outcome, entry.source, entry.detail) == (
        username,
        "failed",
        CLIENT_IP,
        {"reason": "invalid_credentials"},
    )


async def test_disabled_user_cannot_log_in(client: httpx.AsyncClient, api: HubApi) -> None:
    await api.users.create("olga", "Olga-Strong-Pass-321", Role.VIEWER, "it")
    await api.users.update("olga", disabled=True)
    assert (await login(client, "olga", "Olga-Strong-Pass-321")).status_code == 401


async def test_failed_logins_are_throttled_per_user(client: httpx.AsyncClient, api: HubApi, clock: Any) -> None:
    for _ in range(api.settings.login_max_failures_per_user):
        assert (await login(client, "admin", "wrong-password-123")).status_code == 401
    throttled = await login(client, "admin", ADMIN_PASSWORD)  # even the right password
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(throttled.headers["retry-after"]) <= api.settings.login_window_s
    reasons = [e.detail["reason"] for e in await api.audit.entries(AuditQuery(action="auth.login_failed"))]
    assert reasons == ["invalid_credentials"] * 3 + ["rate_limited"]
    clock.advance(api.settings.login_window_s)
    assert (await login(client, "admin", ADMIN_PASSWORD)).status_code == 200


async def test_failed_logins_are_throttled_per_address(app: Any, client: httpx.AsyncClient, api: HubApi) -> None:
    for i in range(api.settings.login_max_failures_per_ip):
        assert (await login(client, f"user{i}", "wrong-password-123")).status_code == 401
    assert (await login(client, "admin", ADMIN_PASSWORD)).status_code == 429
    other = httpx.ASGITransport(app=app, client=("198.51.100.20", 40_000))
    async with httpx.AsyncClient(transport=other, base_url="http://hub") as elsewhere:
        assert (await login(elsewhere, "admin", ADMIN_PASSWORD)).status_code == 200


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        ([], "198.51.100.9", CLIENT_IP),  # no trusted proxy: the header is anyone's to forge
        (["203.0.113.0/24"], "198.51.100.9", "198.51.100.9"),
        (["203.0.113.0/24"], "10.9.9.9, 198.51.100.9, 203.0.113.5", "198.51.100.9"),  # rightmost untrusted
        (["192.0.2.0/24"], "198.51.100.9", CLIENT_IP),  # the peer is not the trusted proxy
    ],
)
def test_client_address_behind_a_trusted_proxy(
    tmp_path: Path, trusted: list[str], forwarded: str, expected: str
) -> None:
    settings = ApiSettings(environment="development", trusted_proxies=trusted)  # type: ignore[arg-type]
    api = HubApi.in_dir(settings, tmp_path)
    scope = {"type": "http", "headers": [(b"x-forwarded-for", forwarded.encode())], "client": (CLIENT_IP, 1)}
    assert api.client_ip(Request(scope)) == expected


async def test_logout_revokes_the_token(client: httpx.AsyncClient, api: HubApi) -> None:
    token = (await login(client, "admin", ADMIN_PASSWORD)).json()["access_token"]
    assert (await client.post("/api/v1/auth/logout", headers=bearer(token))).status_code == 204
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401
    assert [e.action for e in await api.audit.entries(AuditQuery(action="auth."))] == ["auth.login", "auth.logout"]


async def test_password_change(client: httpx.AsyncClient, api: HubApi) -> None:
    token = (await login(client, "admin", ADMIN_PASSWORD)).json()["access_token"]
    new = "A-Completely-New-Pass-2024"
    body = {"current_password": ADMIN_PASSWORD, "new_password": new}
    assert (await client.post("/api/v1/me/password", json=body, headers=bearer(token))).status_code == 204
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401  # every token revoked
    assert (await login(client, "admin", ADMIN_PASSWORD)).status_code == 401
    assert (await login(client, "admin", new)).status_code == 200
    assert len(await api.audit.entries(AuditQuery(action="user.password_changed"))) == 1


@pytest.mark.parametrize(
    ("current", "new", "status", "code"),
    [
        ("Wrong-Current-Pass-1", "A-Completely-New-Pass-2024", 400, "invalid_credentials"),
        (ADMIN_PASSWORD, "short", 422, "weak_password"),
        (ADMIN_PASSWORD, "change-me", 422, "weak_password"),
        (ADMIN_PASSWORD, "my-admin-password-2024", 422, "weak_password"),
    ],
)
async def test_password_change_refused(
    client: httpx.AsyncClient, accounts: dict[Role, Any], current: str, new: str, status: int, code: str
) -> None:
    body = {"current_password": current, "new_password": new}
    response = await client.post("/api/v1/me/password", json=body, headers=accounts[Role.ADMIN].headers)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def _stored_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def test_passwords_are_argon2id_and_never_stored_in_clear(api: HubApi) -> None:
    await api.users.create("olga", "Olga-Strong-Pass-321", Role.VIEWER, "it")
    with sqlite3.connect(api.users.path) as conn:
        hashes = [row[0] for row in conn.execute("SELECT password_hash FROM users")]
    assert len(hashes) == 2
    assert all(extract_parameters(h).type is Type.ID for h in hashes)
    stored = _stored_bytes(api.users.path)
    assert b"Olga-Strong-Pass-321" not in stored
    assert ADMIN_PASSWORD.encode() not in stored


async def test_tokens_are_stored_as_sha256_only(client: httpx.AsyncClient, api: HubApi) -> None:
    token = (await login(client, "admin", ADMIN_PASSWORD)).json()["access_token"]
    assert len(token) >= 43  # 256 bits, URL-safe base64
    with sqlite3.connect(api.users.path) as conn:
        digests = [row[0] for row in conn.execute("SELECT token_hash FROM tokens")]
    assert digests == [hashlib.sha256(token.encode()).hexdigest()]
    assert token.encode() not in _stored_bytes(api.users.path)


async def test_hash_is_upgraded_when_parameters_change(tmp_path: Path) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    strong = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    store = UserStore(tmp_path / "users.sqlite", hasher=weak)
    await store.open()
    await store.create("olga", "Olga-Strong-Pass-321", Role.VIEWER, "it")
    await store.aclose()
    store = UserStore(tmp_path / "users.sqlite", hasher=strong)
    await store.open()
    try:
        assert await store.authenticate("olga", "Olga-Strong-Pass-321") is not None
        with sqlite3.connect(store.path) as conn:
            [(stored,)] = conn.execute("SELECT password_hash FROM users").fetchall()
        assert not strong.check_needs_rehash(stored)
        assert extract_parameters(stored).time_cost == 2
    finally:
        await store.aclose()


class CountingHasher(PasswordHasher):
    verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        CountingHasher.verified += 1
        return super().verify(hash, password)


@pytest.mark.parametrize("username", ["olga", "nobody", "disabled-dan"])
async def test_every_login_verifies_one_hash(tmp_path: Path, username: str) -> None:
    # Unknown and disabled users cost the same argon2 work as real ones: timing reveals no usernames.
    store = UserStore(tmp_path / "users.sqlite", hasher=CountingHasher(time_cost=1, memory_cost=8, parallelism=1))
    await store.open()
    try:
        await store.create("olga", "Olga-Strong-Pass-321", Role.VIEWER, "it")
        await store.create("disabled-dan", "Dan-Strong-Pass-4321", Role.VIEWER, "it")
        await store.update("disabled-dan", disabled=True)
        CountingHasher.verified = 0
        await store.authenticate(username, "Some-Guess-Pass-999")
        assert CountingHasher.verified == 1
    finally:
        await store.aclose()


async def test_bootstrap_admin_only_when_there_is_no_user(api: HubApi) -> None:
    entries = await api.audit.entries(AuditQuery(action="user.created"))
    assert [(e.actor, e.target, e.detail["bootstrap"]) for e in entries] == [("system", "admin", True)]
    await api._bootstrap()  # a second start changes nothing
    assert await api.users.count() == 1
