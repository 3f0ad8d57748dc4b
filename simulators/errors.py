"""Errors of the simulators, shared by every simulated device kind.

    SimulatorError
    ├── PointValueError       a value the point cannot hold (wrong type, out of range, unknown state label)
    ├── UnknownPointError     a unit id, device or metric that the simulator does not host
    ├── ScenarioError         a scenario file that cannot be used; the message names file, step and field
    ├── ScenarioProfileError  a profile a scenario names that cannot be found or loaded
    ├── SimConfigError        a simulation spec (YAML or command line) that cannot be used
    └── TransportError        the simulator cannot listen (port taken, serial port missing)

Each kind maps its libraries' errors (pymodbus, pysnmp, aiohttp) to these once, in its server module.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Base of every error the simulators raise on purpose."""


class PointValueError(SimulatorError, ValueError):
    """A value the point cannot hold."""


class UnknownPointError(SimulatorError, KeyError):
    """A unit id, device or metric the simulator does not host."""

    def __str__(self) -> str:
        # KeyError quotes its message; this one is a sentence.
        return str(self.args[0]) if self.args else ""


class ScenarioError(SimulatorError, ValueError):
    """A scenario file that cannot be used."""


class ScenarioProfileError(SimulatorError, ValueError):
    """A profile that cannot be found or loaded; the message names it and what exists."""


class SimConfigError(SimulatorError, ValueError):
    """A simulation spec that cannot be used."""


class TransportError(SimulatorError, OSError):
    """The simulator cannot listen where it was asked to."""
