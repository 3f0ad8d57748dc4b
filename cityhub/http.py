"""The HTTP endpoint every cityhub process serves: ``/health`` (no authentication) and ``/metrics``.

Used by the hub (whose REST API grows on the same application) and by the edge agent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def create_app(registry: CollectorRegistry, health: Callable[[], dict[str, Any]], title: str) -> FastAPI:
    """A FastAPI application with ``/health`` (200 when ``health()['status']`` is ok, else 503) and ``/metrics``."""
    app = FastAPI(title=title, version="0.1.0", docs_url="/api/docs", openapi_url="/api/openapi.json")

    @app.get("/health", summary="Liveness and readiness of the hub")
    def get_health(response: Response) -> dict[str, Any]:
        report = health()
        response.status_code = 200 if report["status"] == "ok" else 503
        return report

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def get_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside the hub's event loop; the hub, not uvicorn, owns the process's signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave signal handling to the hub."""
        yield

    @classmethod
    def for_app(cls, app: FastAPI, host: str, port: int) -> EmbeddedServer:
        """A quiet server for ``app`` on ``host:port`` (port 0: any free port)."""
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        return cls(config)

    @property
    def bound_port(self) -> int | None:
        """The TCP port actually bound (useful with port 0)."""
        for server in getattr(self, "servers", []):
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return None
