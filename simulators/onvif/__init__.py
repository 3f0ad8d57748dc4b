"""Simulated ONVIF cameras: SOAP device, media and events services, snapshots, WS-Discovery, faults.

See docs/drivers/onvif.md (section "The simulator"). One module each:

* ``server``: ``SimulatedCamera``, one camera on a port (aiohttp), with its faults.
* ``services``, ``soap``, ``auth``, ``state``: the operations, envelopes, credentials and subscriptions.
* ``discovery``: ``DiscoveryResponder``, WS-Discovery ProbeMatches for a group of cameras.
* ``points``: camera models and points for the scenario engine (``load_scenario_profile``, ``CameraTarget``).
* ``fleet``: ``CameraFleet`` and the ``cityhub sim onvif`` options (``add_sim_arguments``, ``run_from_args``).
"""

from simulators.onvif.fleet import CameraFleet, add_sim_arguments, run_from_args
from simulators.onvif.points import CameraTarget, FaultMode, load_scenario_profile
from simulators.onvif.server import CameraSpec, SimulatedCamera

__all__ = [
    "CameraFleet",
    "CameraSpec",
    "CameraTarget",
    "FaultMode",
    "SimulatedCamera",
    "add_sim_arguments",
    "load_scenario_profile",
    "run_from_args",
]
