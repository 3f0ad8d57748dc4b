"""The Modbus simulator as the scenario engine sees it (``simulators/points.py``).

A scenario's Modbus device is a driver profile (``drivers/modbus/profiles``); its points accept what
their registers can hold, and its faults are the wire faults of ``faults.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from drivers.modbus.profile import DeviceProfile, PointSpec, ProfileError, load_profile
from simulators.errors import ScenarioProfileError
from simulators.modbus.faults import FaultMode
from simulators.modbus.server import ModbusSimulator
from simulators.modbus.store import check_value, is_numeric, value_range
from simulators.points import Value

FAULT_MODES = frozenset(mode.value for mode in FaultMode)


@dataclass(frozen=True, slots=True)
class ModbusScenarioPoint:
    """A profile point: its type, range and state labels decide what a scenario may set."""

    spec: PointSpec

    @property
    def metric(self) -> str:
        """The point's metric name."""
        return self.spec.metric

    @property
    def rampable(self) -> bool:
        """A number without state labels."""
        return is_numeric(self.spec) and not self.spec.states

    @property
    def bounds(self) -> tuple[float, float]:
        """What its registers can hold, after scale and offset."""
        return value_range(self.spec) if is_numeric(self.spec) else (-math.inf, math.inf)

    def check(self, value: Value) -> Value:
        """The value as the registers store it (a state label becomes its code)."""
        return check_value(self.spec, value)


@dataclass(frozen=True, slots=True)
class ModbusScenarioProfile:
    """A driver profile, as a scenario device's model."""

    profile: DeviceProfile

    @property
    def name(self) -> str:
        """The profile's name."""
        return self.profile.name

    @property
    def fault_modes(self) -> frozenset[str]:
        """The wire faults the simulator plays."""
        return FAULT_MODES

    def metrics(self) -> list[str]:
        """Every point's metric."""
        return [point.metric for point in self.profile.points]

    def point(self, metric: str) -> ModbusScenarioPoint:
        """The point named ``metric`` (KeyError when none)."""
        return ModbusScenarioPoint(self.profile.point(metric))


def load_scenario_profile(name_or_path: str | Path) -> ModbusScenarioProfile:
    """A shipped Modbus profile by name, or a profile file, for a scenario."""
    try:
        return ModbusScenarioProfile(load_profile(name_or_path))
    except ProfileError as exc:
        raise ScenarioProfileError(str(exc)) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where a scenario device lives: a Modbus simulator and its unit id there."""

    simulator: ModbusSimulator
    unit: int

    @property
    def profile_name(self) -> str:
        """The profile the unit runs."""
        return self.simulator.memory(self.unit).profile.name

    def set(self, metric: str, value: Value) -> None:
        """Write the point's registers."""
        self.simulator.set(self.unit, metric, value)

    def set_fault(self, mode: str, code: int) -> None:
        """Make the unit misbehave on the wire."""
        self.simulator.set_fault(self.unit, FaultMode(mode), code=code)

    def clear_fault(self) -> None:
        """Make the unit answer normally again."""
        self.simulator.clear_fault(self.unit)
