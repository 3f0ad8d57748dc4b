"""Simulated Modbus devices built from the driver's profiles, scenarios that drive them, RTU over ptys.

See docs/simulators.md. The parts, one module each:

* ``server``: ``ModbusSimulator``, a TCP or RTU server hosting units, each with a profile.
* ``store``: ``DeviceMemory``, one device's tables, set and read by metric name through the codec.
* ``faults``: silent, exception, empty and garbage answers, for the driver's error paths.
* ``pty``: ``PtyLink``, a virtual serial cable made of two pseudo-terminals.
* ``scenario`` and ``runner``: values over time from a YAML file, applied in real time or faster.
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
from simulators.modbus.pty import PtyLink
from simulators.modbus.runner import ScenarioRunner, Target
from simulators.modbus.scenario import Scenario, load_scenario, parse_scenario
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
