"""The agent's devices, built from its inventory: the one place that knows every driver.

Everything else in the agent sees ``drivers.base.PolledDevice``. What drivers share (a Modbus line,
an SNMP engine, a trap listener) is opened here once and closed by the caller's exit stack, after
the devices that use it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from drivers.base import PolledDevice
from drivers.modbus.device import ModbusDevice
from drivers.modbus.line import ModbusLine
from drivers.modbus.profile import DeviceProfile
from drivers.onvif import OnvifDeviceConfig
from drivers.snmp_ups import SnmpDeviceConfig
from edge_agent.config import AgentConfig, ModbusDeviceConfig

if TYPE_CHECKING:
    from drivers.snmp_ups import SnmpClient, TrapListener


async def open_devices(
    config: AgentConfig, profiles: dict[str, DeviceProfile], stack: contextlib.AsyncExitStack
) -> dict[str, PolledDevice]:
    """Every device of the inventory by id, ready to poll; ``stack`` closes them and what they share."""
    lines: dict[str, ModbusLine] = {}
    for line_config in config.lines:
        line = ModbusLine(line_config.settings())
        stack.push_async_callback(line.aclose)
        lines[line_config.name] = line
    # The SNMP and ONVIF stacks are imported only by agents that have such devices (~40 MB, 0.5 s).
    snmp: SnmpClient | None = None
    traps: TrapListener | None = None
    if any(isinstance(entry, SnmpDeviceConfig) for entry in config.devices):
        from drivers.snmp_ups import SnmpClient, TrapListener

        snmp = await stack.enter_async_context(SnmpClient())  # one engine for every UPS
        if config.snmp_traps is not None:
            traps = await stack.enter_async_context(TrapListener(config.snmp_traps))
    devices: dict[str, PolledDevice] = {}
    for entry in config.devices:
        device: PolledDevice
        match entry:
            case ModbusDeviceConfig():
                device = ModbusDevice(
                    device_id=entry.id, unit=entry.unit, profile=profiles[entry.id], line=lines[entry.line]
                )
            case OnvifDeviceConfig():
                from drivers.onvif import OnvifCamera

                device = OnvifCamera.from_config(entry)
            case SnmpDeviceConfig():
                from drivers.snmp_ups import SnmpUpsDevice

                assert snmp is not None
                device = SnmpUpsDevice.from_config(entry, client=snmp, traps=traps)
        stack.push_async_callback(device.aclose)
        devices[entry.id] = device
    return devices
