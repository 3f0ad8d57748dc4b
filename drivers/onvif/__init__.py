"""ONVIF camera driver (onvif-zeep-async): health, clock, media, snapshots, PullPoint events, discovery.

See docs/drivers/onvif.md. The agent builds a camera from its inventory entry with
``OnvifCamera.from_config(OnvifDeviceConfig(...))``; ``cityhub agent discover`` calls
``add_discover_arguments`` and ``run_discover``.

The package imports its inventory model at once and the rest (and its library) on first
use, so an edge agent without such devices neither loads nor keeps that stack in memory.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from drivers.onvif.config import OnvifDeviceConfig

if TYPE_CHECKING:
    from drivers.onvif.camera import OnvifCamera
    from drivers.onvif.discovery import DiscoveredCamera, add_discover_arguments, discover, format_table, run_discover
    from drivers.onvif.errors import AuthFailed, CameraTimeout, CameraUnreachable, NotOnvif, OnvifError, SoapFault
    from drivers.onvif.metrics import Health

_LAZY = {
    **dict.fromkeys(
        ("AuthFailed", "CameraTimeout", "CameraUnreachable", "NotOnvif", "OnvifError", "SoapFault"),
        "drivers.onvif.errors",
    ),
    "DiscoveredCamera": "drivers.onvif.discovery",
    "Health": "drivers.onvif.metrics",
    "OnvifCamera": "drivers.onvif.camera",
    "add_discover_arguments": "drivers.onvif.discovery",
    "discover": "drivers.onvif.discovery",
    "format_table": "drivers.onvif.discovery",
    "run_discover": "drivers.onvif.discovery",
}


def __getattr__(name: str) -> Any:
    """Import a lazily exported name's module on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "AuthFailed",
    "CameraTimeout",
    "CameraUnreachable",
    "DiscoveredCamera",
    "Health",
    "NotOnvif",
    "OnvifCamera",
    "OnvifDeviceConfig",
    "OnvifError",
    "SoapFault",
    "add_discover_arguments",
    "discover",
    "format_table",
    "run_discover",
]
