"""What the scenario engine needs from a simulated device kind (Modbus, SNMP UPS, ONVIF camera).

A scenario file names each device's ``driver`` (``modbus`` by default) and ``profile``; the engine
(``simulators/scenario.py``) asks that driver's ``load_scenario_profile`` (listed in ``PROFILE_LOADERS``)
for a ``ScenarioProfile``, checks every value of the file against its points, and the runner
(``simulators/runner.py``) applies values and faults over time to ``ScenarioTarget`` objects, one per
simulated device. So one scenario can drive a UPS, a climate controller and two cameras together.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from simulators.errors import PointValueError, ScenarioProfileError

__all__ = [
    "NO_FAULT",
    "PROFILE_LOADERS",
    "PointValueError",
    "ProfileLoader",
    "ScenarioPoint",
    "ScenarioProfile",
    "ScenarioProfileError",
    "ScenarioTarget",
    "Value",
]

#: A point's value in a scenario (a state label is a string until the point resolves it).
Value = bool | int | float | str

#: The fault mode that means "behave normally"; every kind accepts it.
NO_FAULT = "none"


class ScenarioPoint(Protocol):
    """One point of a simulated device, as far as scenarios are concerned."""

    @property
    def metric(self) -> str:
        """The point's metric name (``battery.charge``)."""
        ...

    @property
    def rampable(self) -> bool:
        """Whether ramps and noise apply: a number without state labels."""
        ...

    @property
    def bounds(self) -> tuple[float, float]:
        """The smallest and largest value it can hold; noise is clamped to these."""
        ...

    def check(self, value: Value) -> Value:
        """``value`` as the device stores it (a label may become a code); raises PointValueError."""
        ...


class ScenarioProfile(Protocol):
    """A simulated device model: its points and the faults it can play."""

    @property
    def name(self) -> str:
        """The profile's name, as scenario files and simulators name it."""
        ...

    @property
    def fault_modes(self) -> frozenset[str]:
        """The fault modes a scenario may set (``none`` included)."""
        ...

    def metrics(self) -> list[str]:
        """Every point's metric, for error messages."""
        ...

    def point(self, metric: str) -> ScenarioPoint:
        """The point named ``metric``; raises KeyError when the profile has none."""
        ...


class ScenarioTarget(Protocol):
    """A running simulated device a scenario drives."""

    @property
    def profile_name(self) -> str:
        """The profile the device runs, checked against the scenario's."""
        ...

    def set(self, metric: str, value: Value) -> None:
        """Make the device report ``value`` for ``metric`` from now on."""
        ...

    def set_fault(self, mode: str, code: int) -> None:
        """Make the device misbehave (``mode`` is one of its profile's fault modes, never ``none``)."""
        ...

    def clear_fault(self) -> None:
        """Make the device behave normally again."""
        ...


ProfileLoader = Callable[[str | Path], ScenarioProfile]

#: Each driver's loader, imported when a scenario names the driver: ``module:function``.
PROFILE_LOADERS: dict[str, str] = {
    "modbus": "simulators.modbus.points:load_scenario_profile",
    "snmp": "simulators.snmp_ups.points:load_scenario_profile",
    "onvif": "simulators.onvif.points:load_scenario_profile",
}
