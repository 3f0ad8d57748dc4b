"""Drive simulators of any kind through a scenario, in real time or faster.

Every tick (wall-clock seconds) the runner computes the scenario time, ``elapsed * speed``, asks the
scenario for the values and faults at that time (a pure function, see ``scenario.py``) and writes to the
simulators only what changed. A scenario ends at its duration and leaves the devices in their end state;
with ``repeat`` it starts over. Each step is logged once when the scenario reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping

from simulators.errors import SimConfigError
from simulators.points import NO_FAULT, ScenarioTarget, Value
from simulators.scenario import Fault, Scenario

log = logging.getLogger(__name__)


class ScenarioRunner:
    """Applies a scenario's values to simulators as scenario time goes by."""

    def __init__(
        self,
        scenario: Scenario,
        targets: Mapping[str, ScenarioTarget],
        *,
        speed: float = 1.0,
        tick_s: float = 0.1,
        repeat: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0 or tick_s <= 0:
            raise SimConfigError(f"speed and tick must be positive (speed {speed}, tick {tick_s} s)")
        for device_id, device in scenario.devices.items():
            target = targets.get(device_id)
            if target is None:
                raise SimConfigError(f"scenario {scenario.name}: no simulated device {device_id!r} to drive")
            if target.profile_name != device.profile.name:
                raise SimConfigError(
                    f"scenario {scenario.name}: device {device_id!r} needs profile {device.profile.name!r}, "
                    f"its simulator runs {target.profile_name!r}"
                )
        self.scenario = scenario
        self.targets = dict(targets)
        self.speed = speed
        self.tick_s = tick_s
        self.repeat = repeat
        self._clock = clock
        self._applied: dict[tuple[str, str], Value] = {}
        self._faults: dict[str, Fault] = {}
        self._next_step = 0

    def apply(self, t: float) -> None:
        """Make the simulators show the scenario at time ``t`` (writes only what changed)."""
        for device_id, values in self.scenario.values_at(t).items():
            target = self.targets[device_id]
            for metric, value in values.items():
                if self._applied.get((device_id, metric)) != value:
                    target.set(metric, value)
                    self._applied[device_id, metric] = value
        for device_id, fault in self.scenario.faults_at(t).items():
            if self._faults.get(device_id, Fault()) != fault:
                target = self.targets[device_id]
                if fault.mode == NO_FAULT:
                    target.clear_fault()
                else:
                    target.set_fault(fault.mode, fault.code)
                self._faults[device_id] = fault
        self._log_steps(t)

    def _log_steps(self, t: float) -> None:
        steps = self.scenario.steps
        while self._next_step < len(steps) and steps[self._next_step][0] <= t:
            log.info("scenario %s: at %g s: %s", self.scenario.name, *steps[self._next_step])
            self._next_step += 1

    async def run(self, stop: asyncio.Event | None = None) -> float:
        """Run until the scenario ends (never with ``repeat``) or ``stop`` is set; returns the scenario time."""
        log.info("scenario %s: %g s at speed x%g", self.scenario.name, self.scenario.duration, self.speed)
        duration = self.scenario.duration
        start = self._clock()
        cycle = 0
        while True:
            elapsed = (self._clock() - start) * self.speed
            if self.repeat:
                now_cycle, t = divmod(elapsed, duration)
                if now_cycle != cycle:
                    cycle, self._next_step = int(now_cycle), 0
            else:
                t = min(elapsed, duration)
            self.apply(t)
            if not self.repeat and elapsed >= duration:
                log.info("scenario %s: ended; the devices keep their end state", self.scenario.name)
                return t
            if stop is not None and stop.is_set():
                return t
            await _pause(stop, self.tick_s)


async def _pause(stop: asyncio.Event | None, seconds: float) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
