"""What a simulated camera knows: its points, its clock, its PullPoint subscriptions and their queues.

A PullPoint subscription (ONVIF Core spec, section 9.1.2 "Real-time Pull-Point Notification Interface")
starts with one ``Initialized`` message per property (the current state of every point), then gets a
``Changed`` message for each change; it ends at its termination time unless renewed, on Unsubscribe,
or when the camera reboots (subscriptions live in the camera's memory only).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from dataclasses import dataclass, field

from drivers.onvif.topics import BY_TOPIC
from simulators.onvif.points import CameraProfile

#: Longest subscription a client may ask for; real cameras clamp too.
MAX_TERMINATION_S = 3600.0
DEFAULT_TERMINATION_S = 60.0
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(text: str) -> float | None:
    """Seconds in an ``xs:duration`` such as ``PT60S`` (days, hours, minutes, seconds), else None."""
    match = _DURATION.match(text.strip())
    if not match or text.strip() in ("P", "PT"):
        return None
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def termination_after(text: str | None, now: dt.datetime) -> dt.datetime:
    """The termination time a request asks for: a duration from now or an absolute time (WS-BaseNotification)."""
    if not text:
        return now + dt.timedelta(seconds=DEFAULT_TERMINATION_S)
    seconds = parse_duration(text)
    if seconds is None:
        absolute = dt.datetime.fromisoformat(text.strip())  # ValueError -> the caller's fault
        seconds = ((absolute if absolute.tzinfo else absolute.replace(tzinfo=dt.UTC)) - now).total_seconds()
    return now + dt.timedelta(seconds=min(max(seconds, 1.0), MAX_TERMINATION_S))


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """One message of a PullPoint queue."""

    topic: str  # without prefix
    utc_time: dt.datetime
    operation: str  # Initialized, Changed, Deleted
    source_name: str
    source_value: str
    data_name: str
    state: bool


@dataclass(slots=True, kw_only=True)
class Subscription:
    """One PullPoint subscription."""

    id: str
    termination: dt.datetime
    queue: list[Notification] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, message: Notification) -> None:
        """Queue a message and wake a waiting PullMessages."""
        self.queue.append(message)
        self.wake.set()

    def take(self, limit: int) -> list[Notification]:
        """Up to ``limit`` messages, oldest first."""
        taken, self.queue = self.queue[:limit], self.queue[limit:]
        if not self.queue:
            self.wake.clear()
        return taken


@dataclass(frozen=True, slots=True, kw_only=True)
class PointTopic:
    """Where a point's state is published: a topic and the token of its source."""

    topic: str
    source_value: str


def point_topics(profile: CameraProfile) -> dict[str, PointTopic]:
    """Each point's topic in this model of camera."""
    return {
        "camera.motion": PointTopic(topic=profile.motion_topic, source_value="VideoSourceConfig_1"),
        "camera.tamper": PointTopic(topic=profile.tamper_topic, source_value="VideoSourceConfig_1"),
        "camera.video_loss": PointTopic(topic="VideoSource/SignalLoss", source_value="VideoSource_1"),
        "camera.input1": PointTopic(topic="Device/Trigger/DigitalInput", source_value="DigitalInput_1"),
        "camera.input2": PointTopic(topic="Device/Trigger/DigitalInput", source_value="DigitalInput_2"),
    }


class CameraState:
    """Points, clock offset and subscriptions of one simulated camera."""

    def __init__(self, profile: CameraProfile) -> None:
        self.profile = profile
        self.topics = point_topics(profile)
        self.values: dict[str, bool] = dict.fromkeys(self.topics, False)
        self.clock_offset_s = 0.0
        self.subscriptions: dict[str, Subscription] = {}
        self.boot_time = self.now()

    def now(self) -> dt.datetime:
        """The camera's clock (UTC), offset when a scenario skews it."""
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.clock_offset_s)

    def reboot(self) -> None:
        """Forget every subscription and start a new boot (a reboot's effect on the events service)."""
        for sub in self.subscriptions.values():
            sub.wake.set()  # a waiting PullMessages finds its subscription gone
        self.subscriptions.clear()
        self.boot_time = self.now()

    def set(self, metric: str, value: bool) -> None:
        """Set a point; when it changes, every live subscription gets a Changed message."""
        if self.values[metric] == value:
            return
        self.values[metric] = value
        for sub in self.live().values():
            sub.push(self._message(metric, "Changed"))

    def subscribe(self, termination: dt.datetime) -> Subscription:
        """A new subscription, its queue primed with the Initialized state of every point."""
        sub = Subscription(id=uuid.uuid4().hex[:12], termination=termination)
        for metric in self.topics:
            sub.push(self._message(metric, "Initialized"))
        self.subscriptions[sub.id] = sub
        return sub

    def live(self) -> dict[str, Subscription]:
        """The subscriptions whose termination time has not passed (expired ones are dropped)."""
        now = self.now()
        for sub_id in [s for s, sub in self.subscriptions.items() if sub.termination <= now]:
            self.subscriptions.pop(sub_id).wake.set()
        return self.subscriptions

    def resync(self, sub: Subscription) -> None:
        """SetSynchronizationPoint: queue the current state of every point again."""
        for metric in self.topics:
            sub.push(self._message(metric, "Initialized"))

    def _message(self, metric: str, operation: str) -> Notification:
        where = self.topics[metric]
        spec = BY_TOPIC[where.topic]
        return Notification(
            topic=where.topic,
            utc_time=self.now(),
            operation=operation,
            source_name=spec.source,
            source_value=where.source_value,
            data_name=spec.data,
            state=self.values[metric],
        )
