"""Errors of the Modbus simulator: the simulators' shared tree (``simulators/errors.py``).

pymodbus's and pyserial's errors are mapped to these once, in ``server.py``.
"""

from __future__ import annotations

from simulators.errors import (
    PointValueError,
    ScenarioError,
    SimConfigError,
    SimulatorError,
    TransportError,
    UnknownPointError,
)

__all__ = [
    "PointValueError",
    "ScenarioError",
    "SimConfigError",
    "SimulatorError",
    "TransportError",
    "UnknownPointError",
]
