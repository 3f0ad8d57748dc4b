"""The operator console: a single page at ``/console/`` and the live alert stream it reads.

Wiring (hub.service, before ``build_api``)::

    mount_console(app, hub.alerts, registry=hub.metrics.registry)

The page and its files are public (they hold no data); everything it shows comes from the API, with the
operator's bearer token, scoped to their team. docs/console.md describes the page and the stream.
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from hub.alerts.service import AlertService
from hub.api.app import PREFIX
from hub.console.assets import console_router, load_assets
from hub.console.stream import AlertBroadcaster, StreamConfig
from hub.console.stream import router as stream_router

__all__ = ["AlertBroadcaster", "StreamConfig", "mount_console"]


def mount_console(
    app: FastAPI,
    alerts: AlertService | None,
    registry: CollectorRegistry | None = None,
    config: StreamConfig | None = None,
) -> AlertBroadcaster | None:
    """Serve the console and, when alerting is on, ``GET /api/v1/alerts/stream`` fed by ``alerts``.

    Call it before ``build_api``: routes match in the order they were added, and the alerts router's
    ``/alerts/{alert_id}`` would otherwise take ``/alerts/stream`` for an alert id.
    """
    app.include_router(console_router(load_assets()))
    broadcaster = None
    if alerts is not None:
        broadcaster = AlertBroadcaster(config, registry)
        alerts.listeners.append(broadcaster.publish)
        app.state.cityhub_console_stream = broadcaster
    app.include_router(stream_router, prefix=PREFIX)
    return broadcaster
