"""Secret policy (refused in production, accepted in development), error bodies, OpenAPI, /health and /metrics."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from cityhub.http import create_app
from hub.api import ApiSettings, HubApi, build_api
from hub.api.errors import InsecureSettingsError
from hub.errors import ConfigError

METRICS_TOKEN = "prometheus-scrape-token-0123456789abcdef"


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("change-me", "well-known default"),
        ("changeme", "well-known default"),
        ("admin", "well-known default"),
        ("correct-horse-battery-staple", "documented example"),
        ("Short-1", "shorter than 12"),
        ("aaaaaaaaaaaaaaaa", "fewer than 4 distinct"),
        ("the-admin-password-2024", "contains the username"),
    ],
)
def test_weak_bootstrap_password_refused_in_production(password: str, why: str) -> None:
    settings = ApiSettings(environment="production", bootstrap_admin_password=password)  # type: ignore[arg-type]
    with pytest.raises(InsecureSettingsError, match=why) as raised:
        settings.check_secrets()
    assert isinstance(raised.value, ConfigError)
    assert "api.bootstrap_admin_password" in str(raised.value)


def test_every_weak_secret_is_listed() -> None:
    settings = ApiSettings(bootstrap_admin_password="change-me", metrics_token="short")  # type: ignore[arg-type]
    with pytest.raises(InsecureSettingsError) as raised:
        settings.check_secrets({"registration.broker_admin_password": "password", "influx.password": None})
    assert [p.split()[0] for p in raised.value.problems] == [
        "api.bootstrap_admin_password",
        "api.metrics_token",
        "registration.broker_admin_password",
    ]


def test_weak_secrets_accepted_in_development(caplog: pytest.LogCaptureFixture) -> None:
    settings = ApiSettings(environment="development", bootstrap_admin_password="change-me")  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        settings.check_secrets()
    assert "api.bootstrap_admin_password" in caplog.text


@pytest.mark.parametrize("environment", ["development", "production"])
def test_strong_secrets_accepted(environment: str) -> None:
    settings = ApiSettings(
        environment=environment,  # type: ignore[arg-type]
        bootstrap_admin_password="Tm9-long-random-Kq2",  # type: ignore[arg-type]
        metrics_token=METRICS_TOKEN,  # type: ignore[arg-type]
    )
    settings.check_secrets()


def test_production_is_the_default() -> None:
    assert ApiSettings().environment == "production"


@pytest.mark.parametrize(
    "values",
    [{"unknown": 1}, {"teams": {"bad name!": {}}}, {"token_ttl_s": 10}, {"password_min_length": 4}],
)
def test_invalid_settings(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ApiSettings(**values)


async def test_hub_refuses_to_start_with_weak_secrets(tmp_path: Path) -> None:
    settings = ApiSettings(bootstrap_admin_password="change-me")  # type: ignore[arg-type]
    api = HubApi.in_dir(settings, tmp_path)
    with pytest.raises(InsecureSettingsError):
        await api.open()
    assert not (tmp_path / "users.sqlite").exists()


async def test_no_user_and_no_bootstrap_password(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    api = HubApi.in_dir(ApiSettings(), tmp_path)
    with caplog.at_level(logging.WARNING):
        await api.open()
    try:
        assert await api.users.count() == 0
        assert "BOOTSTRAP_ADMIN_PASSWORD" in caplog.text
    finally:
        await api.aclose()


async def test_health_is_open_and_metrics_open_by_default(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 401), ({"Authorization": f"Bearer {METRICS_TOKEN}"}, 200)],
)
async def test_metrics_token(tmp_path: Path, headers: dict[str, str], status: int) -> None:
    settings = ApiSettings(environment="development", metrics_token=METRICS_TOKEN)  # type: ignore[arg-type]
    api = HubApi.in_dir(settings, tmp_path)
    await api.open()
    app = build_api(create_app(CollectorRegistry(), lambda: {"status": "ok"}, title="t"), api)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as client:
            assert (await client.get("/metrics", headers=headers)).status_code == status
            assert (await client.get("/health")).status_code == 200
    finally:
        await api.aclose()


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/nowhere", 404, "not_found"),
        ("PUT", "/api/v1/me", 405, "method_not_allowed"),
        ("GET", "/api/v1/me", 401, "not_authenticated"),
        ("POST", "/api/v1/auth/token", 422, "invalid_request"),
    ],
)
async def test_error_bodies(client: httpx.AsyncClient, method: str, path: str, status: int, code: str) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert set(response.json()["error"]) == {"code", "message"}


async def test_openapi_declares_the_password_flow(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/api/openapi.json")).json()
    [scheme] = schema["components"]["securitySchemes"].values()
    assert scheme == {"type": "oauth2", "flows": {"password": {"scopes": {}, "tokenUrl": "/api/v1/auth/token"}}}
    assert schema["paths"]["/api/v1/users"]["get"]["security"]
