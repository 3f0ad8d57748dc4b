"""UPS over SNMP driver (pysnmp): MIB profiles as data, polling, traps and informs.

What the edge agent uses (see docs/drivers/snmp_ups.md)::

    async with SnmpClient() as client, TrapListener(TrapListenerConfig(port=162, ...)) as traps:
        ups = SnmpUpsDevice.from_config(SnmpDeviceConfig(...), client=client, traps=traps)
        result = await ups.poll()                  # drivers.base.PollResult
        await ups.watch(sink, stop)                # trap events at once, until stop is set

The package imports its inventory models and errors at once and the rest (and its library) on first
use, so an edge agent without such devices neither loads nor keeps that stack in memory.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from drivers.snmp_ups.config import SnmpDeviceConfig, TrapListenerConfig, TrapUser, UsmCredentials
from drivers.snmp_ups.errors import (
    MalformedResponse,
    MibProfileError,
    SnmpAuthError,
    SnmpConfigError,
    SnmpDriverError,
    SnmpTimeout,
)
from drivers.snmp_ups.profile import MibProfile, load_mib_profile, select_profile, shipped_profiles

if TYPE_CHECKING:
    from drivers.snmp_ups.client import SnmpClient
    from drivers.snmp_ups.device import SnmpUpsDevice
    from drivers.snmp_ups.status import TOKEN_EVENTS
    from drivers.snmp_ups.traps import Notification, TrapListener

_LAZY = {
    "Notification": "drivers.snmp_ups.traps",
    "SnmpClient": "drivers.snmp_ups.client",
    "SnmpUpsDevice": "drivers.snmp_ups.device",
    "TOKEN_EVENTS": "drivers.snmp_ups.status",
    "TrapListener": "drivers.snmp_ups.traps",
}


def __getattr__(name: str) -> Any:
    """Import a lazily exported name's module on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "TOKEN_EVENTS",
    "MalformedResponse",
    "MibProfile",
    "MibProfileError",
    "Notification",
    "SnmpAuthError",
    "SnmpClient",
    "SnmpConfigError",
    "SnmpDeviceConfig",
    "SnmpDriverError",
    "SnmpTimeout",
    "SnmpUpsDevice",
    "TrapListener",
    "TrapListenerConfig",
    "TrapUser",
    "UsmCredentials",
    "load_mib_profile",
    "select_profile",
    "shipped_profiles",
]
