"""What an ONVIF camera reports: its metrics (for the birth message) and health states."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from cityhub.contract import MetricSpec


class Health(StrEnum):
    """The camera's health, reported as ``camera.health`` every poll."""

    OK = "ok"  # answers ONVIF and accepts the credentials
    AUTH_FAILED = "auth_failed"  # answers, but refuses the credentials (WS-Security or digest)
    NOT_ONVIF = "not_onvif"  # something answers on the port, but not ONVIF
    UNREACHABLE = "unreachable"  # no connection, or no answer in time


#: The event each unhealthy state raises (active when it starts, inactive when it ends).
HEALTH_EVENTS: dict[Health, str] = {
    Health.UNREACHABLE: "camera.offline",
    Health.AUTH_FAILED: "camera.auth_failed",
    Health.NOT_ONVIF: "camera.not_onvif",
}


def _spec(
    metric: str, kind: Literal["float", "int", "bool", "string"], unit: str | None, description: str
) -> MetricSpec:
    return MetricSpec(metric=metric, type=kind, unit=unit, description=description)


METRICS: tuple[MetricSpec, ...] = (
    _spec("camera.health", "string", None, "ok, auth_failed, not_onvif or unreachable"),
    _spec("camera.response_time", "float", "s", "Round trip of GetSystemDateAndTime"),
    _spec("camera.clock_skew", "float", "s", "Camera clock minus the agent's clock"),
    _spec("camera.profiles", "int", None, "Media profiles the camera offers"),
    _spec("camera.snapshot_ok", "bool", None, "The snapshot URI gave a JPEG"),
    _spec("camera.snapshot_bytes", "int", "By", "Size of the last snapshot"),
    _spec("camera.snapshot_frozen", "bool", None, "The snapshot has not changed for frozen_after polls"),
    _spec("camera.snapshot_age", "float", "s", "Seconds since the snapshot last changed"),
    _spec("camera.events_subscribed", "bool", None, "The PullPoint subscription is alive"),
    _spec("camera.events_renewals", "int", None, "Subscription renewals since start"),
    _spec("camera.events_recreations", "int", None, "Subscriptions created again after a failure"),
    _spec("camera.events_failures", "int", None, "Failed pulls, renewals or subscriptions"),
    _spec("camera.events_received", "int", None, "Notification messages received"),
    _spec("camera.motion", "bool", None, "Motion detected now"),
    _spec("camera.tamper", "bool", None, "Tamper (scene change) detected now"),
    _spec("camera.video_loss", "bool", None, "Video signal lost"),
)
