"""Errors of the Modbus simulator.

    SimulatorError
    ├── PointValueError      a value the point cannot hold (wrong type, out of range, unknown state label)
    ├── UnknownPointError    a unit id, or a metric, that the simulator does not host
    ├── ScenarioError        a scenario file that cannot be used; the message names file, step and field
    ├── SimConfigError       a simulation spec (YAML or command line) that cannot be used
    └── TransportError       the simulator cannot listen (TCP port taken, serial port missing)

pymodbus's and pyserial's errors are mapped to these once, in ``server.py``.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Base of every error the simulator raises on purpose."""


class PointValueError(SimulatorError, ValueError):
    """A value the point cannot hold."""


class UnknownPointError(SimulatorError, KeyError):
    """A unit id or metric the simulator does not host."""

    def __str__(self) -> str:
        # KeyError quotes its message; this one is a sentence.
        return str(self.args[0]) if self.args else ""


class ScenarioError(SimulatorError, ValueError):
    """A scenario file that cannot be used."""


class SimConfigError(SimulatorError, ValueError):
    """A simulation spec that cannot be used."""


class TransportError(SimulatorError, OSError):
    """The simulator cannot listen where it was asked to."""
