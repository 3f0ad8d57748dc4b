"""Errors of the Modbus driver; pymodbus's exceptions are mapped to these in ``line.py``, once.

    ModbusDriverError
    ├── DeviceUnreachable   no connection, or no answer within the timeout: retry later (with backoff)
    ├── DeviceException     the device answered with a Modbus exception code (spec section 7),
    │                       e.g. 2 ILLEGAL DATA ADDRESS: the profile does not match the device
    └── BadAnswer           an answer that is not what was asked (wrong count, undecodable value)

Every one of them turns the points of the failed request into readings of quality ``bad``.
"""

from __future__ import annotations

#: Modbus exception codes (Modbus application protocol 1.1b3, section 7).
EXCEPTION_NAMES = {
    1: "ILLEGAL FUNCTION",
    2: "ILLEGAL DATA ADDRESS",
    3: "ILLEGAL DATA VALUE",
    4: "SERVER DEVICE FAILURE",
    5: "ACKNOWLEDGE",
    6: "SERVER DEVICE BUSY",
    8: "MEMORY PARITY ERROR",
    10: "GATEWAY PATH UNAVAILABLE",
    11: "GATEWAY TARGET DEVICE FAILED TO RESPOND",
}


class ModbusDriverError(Exception):
    """Base of the driver's errors."""


class DeviceUnreachable(ModbusDriverError):
    """No connection or no answer in time."""


class DeviceException(ModbusDriverError):
    """The device answered with a Modbus exception code."""

    def __init__(self, code: int, request: str) -> None:
        self.code = code
        super().__init__(f"{request}: exception {code} ({EXCEPTION_NAMES.get(code, 'unknown')})")


class BadAnswer(ModbusDriverError):
    """An answer that does not fit the request."""
