"""Simulated Modbus devices built from the driver's profiles, scenarios that drive them, RTU over ptys.

See docs/simulators.md. The parts, one module each:

* ``server``: ``ModbusSimulator``, a TCP or RTU server hosting units, each with a profile.
* ``store``: ``DeviceMemory``, one device's tables, set and read by metric name through the codec.
* ``faults``: silent, exception, empty and garbage answers, for the driver's error paths.
* ``pty``: ``PtyLink``, a virtual serial cable made of two pseudo-terminals.
* ``points``: profiles and units as the scenario engine (``simulators/scenario.py``, shared by every
  simulated kind) and its runner (``simulators/runner.py``) see them.
* ``simulation``: ``SimulationSpec`` and ``run_simulation``, what the ``cityhub`` command runs.
"""

from simulators.modbus.errors import (
    PointValueError,
    ScenarioError,
    SimConfigError,
    SimulatorError,
    TransportError,
    UnknownPointError,
)
from simulators.modbus.faults import ExceptionCode, Fault, FaultMode
from simulators.modbus.points import Target
from simulators.modbus.pty import PtyLink
from simulators.modbus.server import ModbusSimulator, RtuEndpoint, TcpEndpoint
from simulators.modbus.simulation import (
    DeviceSpec,
    RunningDevice,
    SimulationSpec,
    add_sim_arguments,
    build_spec_from_args,
    load_sim_config,
    run_simulation,
    spec_from_namespace,
)
from simulators.modbus.store import DeviceMemory
from simulators.runner import ScenarioRunner
from simulators.scenario import Scenario, load_scenario, parse_scenario

__all__ = [
    "DeviceMemory",
    "DeviceSpec",
    "ExceptionCode",
    "Fault",
    "FaultMode",
    "ModbusSimulator",
    "PointValueError",
    "PtyLink",
    "RtuEndpoint",
    "RunningDevice",
    "Scenario",
    "ScenarioError",
    "ScenarioRunner",
    "SimConfigError",
    "SimulationSpec",
    "SimulatorError",
    "Target",
    "TcpEndpoint",
    "TransportError",
    "UnknownPointError",
    "add_sim_arguments",
    "build_spec_from_args",
    "load_scenario",
    "load_sim_config",
    "parse_scenario",
    "run_simulation",
    "spec_from_namespace",
]
