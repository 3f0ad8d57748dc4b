"""schemathesis against the API's own OpenAPI document, over a real socket, as an administrator: no 5xx.

The API (default routers and the alert routes, with real stores, last values, an embedded time-series
store and a running alert service) is served by uvicorn in a thread of its own, so schemathesis' blocking
client can call it. Every case gets a fresh admin token: generated cases log out and change passwords,
which revoke the caller's tokens, and the rest of the run must still reach past authentication.
Hypothesis is derandomized (a fixed seed per operation) and bounded: a few dozen examples each, no deadline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from prometheus_client import CollectorRegistry
from schemathesis.checks import not_a_server_error
from testkit import acknowledged

from cityhub.http import EmbeddedServer, create_app
from hub.alerts.config import AlertsConfig
from hub.alerts.service import AlertService
from hub.api import HubApi, build_api
from hub.api.ratelimit import LoginLimiter, LoginLimits
from hub.api.routers import alerts
from hub.api.users import UserStore
from hub.audit import AuditLog
from hub.ingest import telemetry_points
from hub.lastvalues import LastValues
from hub.notify import NotifyConfig
from hub.storage.history import SqliteHistory
from hub.storage.sqlite_store import SqliteStore

from .conftest import DEVICES, FAST_HASHER, Devices, api_settings, telemetry
from .test_alerts_api import UPS_RULE

T = TypeVar("T")
EXAMPLES_PER_OPERATION = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class ServedApi:
    """The API on a port, and a way to run coroutines in its event loop."""

    base_url: str
    run: Callable[[Awaitable[Any]], Any]
    api: HubApi

    def admin_token(self) -> str:
        """A new token of the bootstrap administrator."""
        token = self.run(self.api.users.issue_token("admin", 3600))
        return str(token.value)


async def _build(data_dir: Path) -> tuple[HubApi, AlertService, SqliteStore, Any]:
    settings = api_settings()
    store = SqliteStore(data_dir / "timeseries.sqlite")
    await store.open()
    await store.write([p for d in DEVICES for p in telemetry_points(telemetry(d, 21.5))])
    values = LastValues()
    for device in DEVICES:
        values.observe(telemetry(device, 21.5))
    limits = LoginLimits(window_s=60, per_user=10_000, per_ip=10_000)
    api = HubApi(
        settings, users=UserStore(data_dir / "users.sqlite", hasher=FAST_HASHER),
        audit=AuditLog(data_dir / "audit.sqlite"), devices=Devices(DEVICES), values=values,
        history=SqliteHistory(store), limiter=LoginLimiter(limits),
    )  # fmt: skip
    await api.open()
    rules = data_dir / "rules.yaml"
    rules.write_text(UPS_RULE)
    service = AlertService(
        AlertsConfig.model_validate({"rules": [rules]}), NotifyConfig(), data_dir=data_dir, topic_root="ch",
        hub_id="hub-schemathesis", publish=_discard, registry=CollectorRegistry(),
    )  # fmt: skip
    await service.open()
    app = _app(api)
    app.state.cityhub_alerts = service
    return api, service, store, app


def _app(api: HubApi) -> Any:
    app = create_app(CollectorRegistry(), lambda: {"status": "ok"}, title="cityhub hub (schemathesis)")
    return build_api(app, api, routers=[alerts.router])


def _document() -> dict[str, Any]:
    """The OpenAPI document of the served application (its routes need no open store to be described)."""
    unopened = HubApi(api_settings(), users=UserStore(Path("unused-users.sqlite")), audit=AuditLog(Path("unused")))
    document: dict[str, Any] = _app(unopened).openapi()
    return document


def _discard(_topic: str, _payload: bytes) -> asyncio.Future[None]:
    return acknowledged()


async def _serve(data_dir: Path, ready: concurrent.futures.Future[tuple[int, HubApi]], stop: asyncio.Event) -> None:
    api, service, store, app = await _build(data_dir)
    server = EmbeddedServer.for_app(app, "127.0.0.1", 0)
    service_stop = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(service.run(service_stop))
        serving = tasks.create_task(server.serve())
        while server.bound_port is None:  # noqa: ASYNC110 (uvicorn sets no event when it has bound its socket)
            await asyncio.sleep(0.02)
        ready.set_result((server.bound_port, api))
        await stop.wait()
        server.should_exit = True
        await serving
        service_stop.set()
    await service.aclose()
    await api.aclose()
    await store.aclose()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    loop = asyncio.new_event_loop()
    ready: concurrent.futures.Future[tuple[int, HubApi]] = concurrent.futures.Future()
    stop = asyncio.Event()
    data_dir = tmp_path_factory.mktemp("schemathesis")

    def serve() -> None:
        try:
            loop.run_until_complete(_serve(data_dir, ready, stop))
        except BaseException as exc:  # the fixture must fail with the server's error, not a timeout
            if ready.done():
                raise
            ready.set_exception(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port, api = ready.result(timeout=30)

    def run(coroutine: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)  # type: ignore[arg-type]

    try:
        yield ServedApi(base_url=f"http://127.0.0.1:{port}", run=run, api=api)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()


# Loaded at import, not from a fixture: schemathesis' from_fixture does not work with pytest 9.
schema = schemathesis.openapi.from_dict(_document())
# Valid and invalid inputs both: a 5xx on malformed input is the bug this run is for.
schema.config.generation.update(modes=list(schemathesis.GenerationMode), max_examples=EXAMPLES_PER_OPERATION)


def test_the_document_is_the_served_one(served: ServedApi) -> None:
    assert httpx.get(f"{served.base_url}/api/openapi.json", timeout=10).json() == schema.raw_schema


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_a_server_error(case: Any, served: ServedApi) -> None:
    case.call_and_validate(
        base_url=served.base_url,
        headers={"Authorization": f"Bearer {served.admin_token()}"},
        checks=[not_a_server_error],
        timeout=30,
    )
