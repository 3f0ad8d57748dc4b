"""Scenarios: what simulated devices report over time, as a small declarative YAML file.

A scenario names its devices (an id, a driver and a profile), their initial values and noise, and a
list of steps in time; ``Scenario.values_at(t)`` computes every point's value at scenario time ``t`` as
a pure function of ``t`` (no state, no clock), so a scenario can be tested and replayed exactly. The
runner (``runner.py``) applies those values to simulators of any kind in real time or faster.

    scenario: gas-discharge
    duration: 90                      # seconds of scenario time
    devices:
      panel-1:
        driver: modbus                # modbus (default), snmp or onvif: whose profiles to look up
        profile: gas-suppression      # a shipped profile name, or a path relative to this file
        initial: {gas.system_state: armed, gas.cylinder_pressure: 42.0}
        noise:
          gas.cylinder_pressure: {amplitude: 0.05, seed: 7}   # optional period: seconds, default 1
    steps:
      - at: 20
        set: {device: panel-1, point: gas.system_state, value: pre_discharge}
      - at: 20
        ramp: {device: panel-1, point: gas.discharge_countdown, to: 0, over: 30}
      - at: 60
        fault: {device: panel-1, mode: silent}                # the modes the device's kind knows

A ramp starts from the point's value at its ``at`` and reaches ``to`` after ``over`` seconds; a later
step on the same point takes over from its own ``at``. Noise adds ``amplitude * u``, ``u`` uniform in
[-1, 1], drawn from ``random.Random`` seeded with the seed, the device, the point and the period number,
so the same seed always gives the same values, and points never share a noise sequence. Values are
checked against the profile when the file is loaded (``simulators/points.py`` says what each kind
offers): unknown points, wrong types, values out of the point's range, unknown state labels, ramps on
non-numeric points and fault modes the kind does not know are errors naming file, step and field.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulators.errors import PointValueError, ScenarioError, ScenarioProfileError
from simulators.points import NO_FAULT, PROFILE_LOADERS, ProfileLoader, ScenarioPoint, ScenarioProfile, Value

SCENARIO_DIR = Path(__file__).parent / "scenarios"

_Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
_Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_Scalar = bool | int | float | str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Noise(_Model):
    amplitude: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    seed: int
    period: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0


class _Device(_Model):
    driver: str = "modbus"
    profile: Annotated[str, Field(min_length=1)]
    initial: dict[str, _Scalar] = Field(default_factory=dict)
    noise: dict[str, _Noise] = Field(default_factory=dict)


class _Set(_Model):
    device: str
    point: str
    value: _Scalar


class _Ramp(_Model):
    device: str
    point: str
    to: Annotated[float, Field(allow_inf_nan=False)]
    over: Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _FaultStep(_Model):
    device: str
    mode: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    code: Annotated[int, Field(ge=1, le=255)] = 6  # Modbus SERVER DEVICE BUSY; other kinds ignore it


class _Step(_Model):
    at: _Seconds
    set: _Set | None = None
    ramp: _Ramp | None = None
    fault: _FaultStep | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Self:
        given = [name for name in ("set", "ramp", "fault") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a step needs exactly one of set, ramp, fault (got {', '.join(given) or 'none'})")
        return self


class _Scenario(_Model):
    scenario: _Name
    description: str | None = None
    duration: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    devices: dict[_Name, _Device] = Field(min_length=1)
    steps: list[_Step] = Field(default_factory=list)

    @model_validator(mode="after")
    def _steps_in_time(self) -> Self:
        late = [f"steps[{i}] at {step.at:g} s" for i, step in enumerate(self.steps) if step.at > self.duration]
        if late:
            raise ValueError(f"steps after the duration ({self.duration:g} s): {', '.join(late)}")
        return self


# -- the engine ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Noise:
    """Seeded uniform noise, one sample per period."""

    amplitude: float
    seed: int
    period: float = 1.0

    def at(self, t: float, key: str) -> float:
        """The noise of point ``key`` at time ``t``: the same for the same seed, key and period."""
        sample = random.Random(f"{self.seed}/{key}/{math.floor(t / self.period)}")
        return self.amplitude * sample.uniform(-1.0, 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One step on one point: ``set`` (``to`` from ``at`` on) or a ramp (reaching ``to`` at ``at + over``)."""

    at: float
    to: Value
    over: float = 0.0

    def value(self, start: Value | None, t: float) -> Value:
        """The value at ``t`` (not before ``at``) of a change that began from ``start``."""
        if self.over <= 0 or t >= self.at + self.over or not isinstance(start, int | float):
            return self.to
        assert isinstance(self.to, int | float)
        return start + (self.to - start) * (t - self.at) / self.over


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """How one point of one device evolves: initial value, changes in time order, noise."""

    device: str
    point: ScenarioPoint
    initial: Value | None
    changes: tuple[Change, ...]
    noise: Noise | None

    def base_at(self, t: float) -> Value | None:
        """The value at ``t`` without noise; None while nothing has set it yet."""
        current: Change | None = None
        start = self.initial  # the value the current change began from
        for change in self.changes:
            if change.at > t:
                break
            if current is not None:
                start = current.value(start, change.at)
            current = change
        return current.value(start, t) if current is not None else start

    def at(self, t: float) -> Value | None:
        """The value at ``t``, noise included, clamped to what the point can hold."""
        value = self.base_at(t)
        if self.noise is None or not isinstance(value, int | float) or isinstance(value, bool):
            return value
        low, high = self.point.bounds
        return min(max(value + self.noise.at(t, f"{self.device}/{self.point.metric}"), low), high)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """A device's misbehaviour from a scenario step: its mode (one its kind knows) and a code."""

    mode: str = NO_FAULT
    code: int = 6


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioDevice:
    """A device of a scenario: its id, driver and profile."""

    id: str
    driver: str
    profile: ScenarioProfile


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A validated scenario; ``values_at`` and ``faults_at`` are pure functions of scenario time."""

    name: str
    description: str | None
    duration: float
    devices: Mapping[str, ScenarioDevice]
    timelines: tuple[Timeline, ...]
    faults: Mapping[str, tuple[tuple[float, Fault], ...]]
    steps: tuple[tuple[float, str], ...]  # (at, the step as text) in time order, for logs

    def values_at(self, t: float) -> dict[str, dict[str, Value]]:
        """Every point the scenario drives, by device and metric, at time ``t`` (clamped to 0..duration)."""
        t = min(max(t, 0.0), self.duration)
        values: dict[str, dict[str, Value]] = {device: {} for device in self.devices}
        for timeline in self.timelines:
            value = timeline.at(t)
            if value is not None:
                values[timeline.device][timeline.point.metric] = value
        return values

    def faults_at(self, t: float) -> dict[str, Fault]:
        """Each device's fault at time ``t`` (no fault unless a step set one)."""
        result: dict[str, Fault] = {}
        for device in self.devices:
            current = Fault()
            for at, fault in self.faults.get(device, ()):
                if at <= t:
                    current = fault
            result[device] = current
        return result


# -- loading and checking ------------------------------------------------------------------------


def _where(loc: tuple[int | str, ...], data: Any) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            if loc[0] == "steps" and len(loc) > 1 and part == loc[1]:
                with contextlib.suppress(KeyError, IndexError, TypeError):
                    text += f" (at {data['steps'][part]['at']} s)"
        else:
            text += f"[{part}]" if "." in part else f".{part}"
    return text.lstrip(".") or "(top level)"


class _Builder:
    """Checks a parsed scenario against its devices' profiles, collecting every problem, and builds it."""

    def __init__(self, path: Path, model: _Scenario) -> None:
        self.path = path
        self.model = model
        self.problems: list[str] = []
        self.profiles: dict[str, ScenarioProfile] = {}
        self.initial: dict[tuple[str, str], Value] = {}
        self.noise: dict[tuple[str, str], Noise] = {}
        self.changes: dict[tuple[str, str], list[Change]] = {}
        self.faults: dict[str, list[tuple[float, Fault]]] = {}
        self.described: list[tuple[float, int, str]] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.path}: {where}: {message}")

    def point(self, where: str, device_id: str, metric: str) -> ScenarioPoint | None:
        if device_id not in self.model.devices:
            self.problem(f"{where}.device", f"no device {device_id!r}; devices: {', '.join(self.model.devices)}")
            return None
        profile = self.profiles.get(device_id)
        if profile is None:
            return None  # its profile is already reported
        try:
            return profile.point(metric)
        except KeyError:
            known = ", ".join(profile.metrics())
            self.problem(f"{where}.point", f"profile {profile.name!r} has no point {metric!r}; it has: {known}")
            return None

    def value(self, where: str, point: ScenarioPoint, value: Value) -> Value | None:
        try:
            return point.check(value)
        except PointValueError as exc:
            self.problem(where, str(exc))
            return None

    def numeric(self, where: str, point: ScenarioPoint, what: str) -> bool:
        if point.rampable:
            return True
        self.problem(where, f"{what} needs a numeric point without states; {point.metric} is not one")
        return False

    def load_devices(self) -> None:
        for device_id, device in self.model.devices.items():
            name: str | Path = device.profile
            if device.profile.endswith((".yaml", ".yml")):
                name = self.path.parent / device.profile
            loader = _loader(device.driver)
            if loader is None:
                known = ", ".join(sorted(PROFILE_LOADERS))
                self.problem(f"devices.{device_id}.driver", f"unknown driver {device.driver!r}; drivers: {known}")
                continue
            try:
                self.profiles[device_id] = loader(name)
            except (ScenarioProfileError, ValueError) as exc:
                self.problem(f"devices.{device_id}.profile", str(exc))
                continue
            for metric, raw in device.initial.items():
                where = f"devices.{device_id}.initial[{metric}]"
                point = self.point(where, device_id, metric)
                if point and (value := self.value(where, point, raw)) is not None:
                    self.initial[device_id, metric] = value
            for metric, noise in device.noise.items():
                where = f"devices.{device_id}.noise[{metric}]"
                point = self.point(where, device_id, metric)
                if point and self.numeric(where, point, "noise"):
                    self.noise[device_id, metric] = Noise(
                        amplitude=noise.amplitude, seed=noise.seed, period=noise.period
                    )

    def add_step(self, index: int, step: _Step) -> None:
        where = f"steps[{index}] (at {step.at:g} s)"
        if step.fault is not None:
            if step.fault.device not in self.model.devices:
                self.problem(f"{where}.fault.device", f"no device {step.fault.device!r}")
                return
            profile = self.profiles.get(step.fault.device)
            if profile is not None and step.fault.mode not in profile.fault_modes:
                modes = ", ".join(sorted(profile.fault_modes))
                self.problem(f"{where}.fault.mode", f"{step.fault.mode!r} is not a fault {profile.name} knows: {modes}")
                return
            fault = Fault(mode=step.fault.mode, code=step.fault.code)
            self.faults.setdefault(step.fault.device, []).append((step.at, fault))
            self.described.append((step.at, index, f"fault {step.fault.device} {fault.mode}"))
        elif step.set is not None:
            device, metric = step.set.device, step.set.point
            point = self.point(f"{where}.set", device, metric)
            if point and (value := self.value(f"{where}.set.value", point, step.set.value)) is not None:
                self.changes.setdefault((device, metric), []).append(Change(at=step.at, to=value))
                self.described.append((step.at, index, f"set {device} {metric} = {step.set.value}"))
        elif step.ramp is not None:
            ramp = step.ramp
            point = self.point(f"{where}.ramp", ramp.device, ramp.point)
            if not (point and self.numeric(f"{where}.ramp.point", point, "a ramp")):
                return
            if self.value(f"{where}.ramp.to", point, ramp.to) is not None:
                self.changes.setdefault((ramp.device, ramp.point), []).append(
                    Change(at=step.at, to=ramp.to, over=ramp.over)
                )
                text = f"ramp {ramp.device} {ramp.point} to {ramp.to:g} over {ramp.over:g} s"
                self.described.append((step.at, index, text))

    def timeline(self, device_id: str, metric: str) -> Timeline:
        key = (device_id, metric)
        ordered = tuple(sorted(self.changes.get(key, ()), key=lambda change: change.at))  # stable: file order on ties
        if ordered and ordered[0].over > 0 and key not in self.initial:
            self.problem(
                f"devices.{device_id}.initial",
                f"{metric} ramps at {ordered[0].at:g} s but has no value before: give it an initial value",
            )
        return Timeline(
            device=device_id,
            point=self.profiles[device_id].point(metric),
            initial=self.initial.get(key),
            changes=ordered,
            noise=self.noise.get(key),
        )

    def build(self) -> Scenario:
        self.load_devices()
        for index, step in enumerate(self.model.steps):
            self.add_step(index, step)
        timelines = tuple(self.timeline(*key) for key in sorted({*self.initial, *self.noise, *self.changes}))
        if self.problems:
            raise ScenarioError("\n".join(self.problems))
        return Scenario(
            name=self.model.scenario,
            description=self.model.description,
            duration=self.model.duration,
            devices={
                d: ScenarioDevice(id=d, driver=device.driver, profile=self.profiles[d])
                for d, device in self.model.devices.items()
            },
            timelines=timelines,
            faults={device: tuple(sorted(items, key=lambda item: item[0])) for device, items in self.faults.items()},
            steps=tuple((at, text) for at, _, text in sorted(self.described)),
        )


def _loader(driver: str) -> ProfileLoader | None:
    """The driver's profile loader, imported on first use: a Modbus scenario needs no SNMP stack."""
    target = PROFILE_LOADERS.get(driver)
    if target is None:
        return None
    module, _, function = target.partition(":")
    loader: ProfileLoader = getattr(importlib.import_module(module), function)
    return loader


def parse_scenario(path: Path, text: str) -> Scenario:
    """Validate a scenario's YAML text; ``path`` names it in errors and anchors relative profile paths."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    try:
        model = _Scenario.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {_where(tuple(e['loc']), data)}: {e['msg']}" for e in exc.errors(include_url=False)]
        raise ScenarioError("\n".join(lines)) from None
    return _Builder(path, model).build()


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by name (``gas-discharge``) or any scenario file by path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        shipped = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
        raise ScenarioError(
            f"{path}: cannot read the scenario ({exc.strerror}); shipped scenarios: {shipped}"
        ) from None
    return parse_scenario(path, text)
