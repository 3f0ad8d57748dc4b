"""Simulated camera models and their points, as the scenario engine sees them.

A camera's scriptable state is a handful of booleans (motion, tamper, video loss, two digital inputs);
what differs between makers is which ONVIF topic carries motion and tamper, so a model (``camera``,
``camera-videosource``) is small data here rather than a profile file. ``load_scenario_profile`` is
what ``simulators.points.PROFILE_LOADERS["onvif"]`` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from simulators.points import NO_FAULT, PointValueError, ScenarioProfileError, Value

if TYPE_CHECKING:
    from simulators.onvif.server import SimulatedCamera


class FaultMode(StrEnum):
    """How a simulated camera misbehaves."""

    NONE = NO_FAULT
    OFFLINE = "offline"  # connections refused, open ones dropped
    HANG = "hang"  # connections accepted, requests never answered
    REBOOT = "reboot"  # offline for ``code`` seconds (default 3), then back with no subscriptions
    AUTH_FAIL = "auth_fail"  # every credential rejected (SOAP ter:NotAuthorized, HTTP 401)
    NOT_ONVIF = "not_onvif"  # every request answered 404 with an HTML page
    FROZEN = "frozen"  # the snapshot stops changing
    CLOCK_SKEW = "clock_skew"  # the camera's clock runs ``code`` seconds ahead


@dataclass(frozen=True, slots=True, kw_only=True)
class CameraProfile:
    """A model of camera: what GetDeviceInformation says and which topics carry motion and tamper."""

    name: str
    maker: str
    model: str
    firmware: str
    hardware_id: str
    motion_topic: str
    tamper_topic: str


PROFILES: dict[str, CameraProfile] = {
    profile.name: profile
    for profile in (
        # Analytics-style topics (ONVIF Analytics service spec, cell motion and tamper rules).
        CameraProfile(
            name="camera",
            maker="Cityhub",
            model="SimCam 2",
            firmware="2.4.1",
            hardware_id="SC2-A",
            motion_topic="RuleEngine/CellMotionDetector/Motion",
            tamper_topic="RuleEngine/TamperDetector/Tamper",
        ),
        # Video-source-style topics, as many older firmwares publish them.
        CameraProfile(
            name="camera-videosource",
            maker="Cityhub",
            model="SimCam 1",
            firmware="1.9.0",
            hardware_id="SC1-B",
            motion_topic="VideoSource/MotionAlarm",
            tamper_topic="VideoSource/GlobalSceneChange/ImagingService",
        ),
    )
}

POINTS: tuple[str, ...] = ("camera.motion", "camera.tamper", "camera.video_loss", "camera.input1", "camera.input2")

_TRUE = {"true", "on", "1", "yes", "active"}
_FALSE = {"false", "off", "0", "no", "inactive"}


@dataclass(frozen=True, slots=True, kw_only=True)
class CameraPoint:
    """A boolean point of a simulated camera."""

    metric: str
    rampable: bool = False
    bounds: tuple[float, float] = (0.0, 1.0)

    def check(self, value: Value) -> Value:
        """``value`` as a bool (true/false, 0/1, on/off); raises PointValueError otherwise."""
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise PointValueError(f"{self.metric}: {value!r} is not a boolean (true/false, on/off, 0/1)")


@dataclass(frozen=True, slots=True, kw_only=True)
class CameraScenarioProfile:
    """A camera model as a scenario profile."""

    name: str
    camera: CameraProfile
    fault_modes: frozenset[str] = frozenset(mode.value for mode in FaultMode)

    def metrics(self) -> list[str]:
        """Every point's metric."""
        return list(POINTS)

    def point(self, metric: str) -> CameraPoint:
        """The point named ``metric``; KeyError when there is none."""
        if metric not in POINTS:
            raise KeyError(metric)
        return CameraPoint(metric=metric)


def camera_profile(name: str) -> CameraProfile:
    """The camera model named ``name``; raises ScenarioProfileError naming the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ScenarioProfileError(f"no camera profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None


def load_scenario_profile(name_or_path: str | Path) -> CameraScenarioProfile:
    """The scenario profile of a camera model, by name (camera models are built in, not files)."""
    name = Path(name_or_path).stem if isinstance(name_or_path, Path) else name_or_path
    return CameraScenarioProfile(name=name, camera=camera_profile(name))


class CameraTarget:
    """One running simulated camera, as the scenario runner drives it."""

    def __init__(self, camera: SimulatedCamera) -> None:
        self.camera = camera

    @property
    def profile_name(self) -> str:
        """The camera's model name."""
        return self.camera.profile.name

    def set(self, metric: str, value: Value) -> None:
        """Set a point (checked), which emits the matching event to subscribers."""
        if metric not in POINTS:
            raise PointValueError(f"camera has no point {metric!r}; points: {', '.join(POINTS)}")
        checked = CameraPoint(metric=metric).check(value)
        self.camera.set(metric, bool(checked))

    def set_fault(self, mode: str, code: int) -> None:
        """Make the camera misbehave (see ``FaultMode``; ``code`` is seconds for reboot and clock_skew)."""
        try:
            fault = FaultMode(mode)
        except ValueError:
            raise PointValueError(f"unknown camera fault {mode!r}; modes: {', '.join(FaultMode)}") from None
        self.camera.set_fault(fault, code)

    def clear_fault(self) -> None:
        """Make the camera behave again."""
        self.camera.clear_fault()
