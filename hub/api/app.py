"""Mount the API on the hub's FastAPI application (cityhub.http.create_app): routers, errors, /metrics guard.

    api = HubApi.in_dir(settings.api, settings.data_dir, devices=hub.devices)
    await api.open()                       # refuses weak secrets in production, bootstraps the first admin
    app = create_app(registry, health, title="cityhub hub")
    build_api(app, api, routers=[registrations.router])
    ...
    await api.aclose()

Every refusal is ``{"error": {"code": ..., "message": ...}}`` with the HTTP status of the refusal.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.api.context import HubApi
from hub.api.errors import ApiError
from hub.api.routers import audit, auth, devices, users

PREFIX = "/api/v1"
#: The routers every hub serves; build_api adds the caller's after them.
DEFAULT_ROUTERS: tuple[APIRouter, ...] = (auth.router, users.router, audit.router, devices.router)

_CODES = {400: "bad_request", 401: "not_authenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


def error_body(code: str, message: str) -> dict[str, Any]:
    """The JSON every refusal carries."""
    return {"error": {"code": code, "message": message}}


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=exc.headers)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "error")
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors())
    return JSONResponse(error_body("invalid_request", problems), status_code=422)


def _metrics_guard(api: HubApi) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """/metrics wants the static bearer token when ``api.metrics_token`` is set (Prometheus cannot log in)."""

    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        token = api.settings.metrics_token
        if token is None or request.url.path != "/metrics":
            return await call_next(request)
        expected = f"Bearer {token.get_secret_value()}".encode()
        given = request.headers.get("authorization", "").encode()
        if hmac.compare_digest(given, expected):
            return await call_next(request)
        return JSONResponse(
            error_body("not_authenticated", "/metrics needs the metrics token"),
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    return guard


def build_api(app: FastAPI, api: HubApi, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """Add the API's routers (the defaults, then ``routers``) under /api/v1, its error bodies and /metrics guard."""
    app.state.cityhub_api = api
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.middleware("http")(_metrics_guard(api))
    for router in (*DEFAULT_ROUTERS, *routers):
        app.include_router(router, prefix=PREFIX)
    return app
