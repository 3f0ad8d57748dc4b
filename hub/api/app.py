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
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.api.context import HubApi
from hub.api.errors import ApiError
from hub.api.routers import audit, auth, devices, roles, sites, users

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
#: The routers every hub serves; build_api adds the caller's after them.
DEFAULT_ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    users.router,
    roles.router,
    audit.router,
    sites.router,
    devices.router,
)
DESCRIPTION = (
    "The cityhub hub's REST API. Log in with `POST /api/v1/auth/token` (OAuth2 password flow) and send "
    "`Authorization: Bearer <token>`. Lists answer `{items, next_offset}` pages (`limit`, `offset`); every "
    "refusal is `{error: {code, message}}`. Guide with examples: docs/api.md."
)
#: Tag order and descriptions of the OpenAPI document (a tag not listed still works, at the end).
TAGS = [
    {"name": "auth", "description": "Log in and out, the caller and their password"},
    {"name": "users", "description": "User administration (users.admin)"},
    {"name": "roles", "description": "The permission matrix"},
    {"name": "audit", "description": "The audit trail: query, SIEM export, chain check (audit.read)"},
    {"name": "sites", "description": "Sites of the caller's team with device counts (devices.read)"},
    {"name": "devices", "description": "Devices, their last values and history (devices.read)"},
    {"name": "registrations", "description": "Device self-registration: approve, reject, revoke"},
    {"name": "alerts", "description": "Alerts, silences and rules"},
    {"name": "reports", "description": "KPI reports (reports.read)"},
]


class ErrorDetail(BaseModel):
    """Why a request was refused: a stable machine-readable code and a message for people."""

    code: str
    message: str


class ErrorBody(BaseModel):
    """The body of every refusal."""

    error: ErrorDetail


#: Documented on every API operation; FastAPI's own 422 schema is replaced, since the body is ours.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no live bearer token"},
    403: {"model": ErrorBody, "description": "the role lacks the permission"},
    404: {"model": ErrorBody, "description": "unknown, or outside the caller's team"},
    422: {"model": ErrorBody, "description": "invalid parameters or body"},
    503: {"model": ErrorBody, "description": "the feature or its store is not available on this hub"},
}

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


async def _server_error(request: Request, exc: Exception) -> Response:
    # A bug: the client gets the usual error body, the log gets the traceback.
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal_error", "the hub failed on this request"), status_code=500)


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
    app.add_exception_handler(Exception, _server_error)
    app.middleware("http")(_metrics_guard(api))
    app.description = DESCRIPTION
    app.openapi_tags = TAGS
    for router in (*DEFAULT_ROUTERS, *routers):
        app.include_router(router, prefix=PREFIX, responses=ERROR_RESPONSES)
    return app
