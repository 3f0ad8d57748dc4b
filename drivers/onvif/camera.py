"""One ONVIF camera for the edge agent: health, clock, media, snapshot checks each poll; events pushed.

``poll()`` reads the camera's clock without credentials (is it there, is it ONVIF, how far off is its
clock), then GetDeviceInformation with credentials (are they accepted), then fetches a snapshot (is the
picture alive). The first successful poll, and any poll after the camera was down or its clock moved,
(re)reads the service addresses, device information and media profiles, and so refreshes
``describe()``. ``watch()`` runs the supervised PullPoint subscription (``events.py``) on a session
of its own, so a long poll never delays a health check, and a hung camera costs only its own tasks.

A camera going unreachable is logged once at WARNING and its return once at INFO.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx

from cityhub.contract import DeviceEvent, Quality, Reading
from drivers.base import DeviceDescription, PollResult, Sink
from drivers.onvif.client import CameraClock, DeviceInfo, MediaProfile, OnvifSession, RawNotification
from drivers.onvif.config import OnvifDeviceConfig
from drivers.onvif.errors import AuthFailed, CameraUnreachable, OnvifError
from drivers.onvif.events import EventTracker, PullPointSupervisor
from drivers.onvif.metrics import HEALTH_EVENTS, METRICS, Health
from drivers.onvif.snapshot import FrozenDetector, fetch_snapshot
from drivers.onvif.topics import EVENT_TYPES

log = logging.getLogger(__name__)

_STATE_READINGS = ("camera.motion", "camera.tamper", "camera.video_loss")
Value = float | bool | str | None


class OnvifCamera:
    """A camera the agent polls and watches (``drivers.base.WatchedDevice``)."""

    def __init__(self, config: OnvifDeviceConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._session = self._new_session()
        self._http = httpx.AsyncClient(timeout=config.timeout_s)
        self._auth = httpx.DigestAuth(config.username, config.password.get_secret_value())
        self._frozen = FrozenDetector(frozen_after=config.frozen_after)
        self._tracker = EventTracker()
        self._supervisor = PullPointSupervisor(
            self._new_session(),
            device_id=config.id,
            termination_s=config.subscription_s,
            pull_wait_s=config.pull_wait_s,
            retry_initial_s=config.retry_initial_s,
            retry_max_s=config.retry_max_s,
        )
        self.info: DeviceInfo | None = None
        self.profiles: list[MediaProfile] = []
        self.health: Health | None = None
        self._reason: str | None = None
        self._was_frozen = False

    @classmethod
    def from_config(cls, config: OnvifDeviceConfig) -> OnvifCamera:
        """The camera an inventory entry describes."""
        return cls(config)

    def _new_session(self) -> OnvifSession:
        cfg = self.config
        password = cfg.password.get_secret_value()
        return OnvifSession(
            host=cfg.host, port=cfg.port, username=cfg.username, password=password, timeout_s=cfg.timeout_s
        )

    @property
    def device_id(self) -> str:
        """The camera's id in the inventory."""
        return self.config.id

    @property
    def down(self) -> bool:
        """Unreachable, or not answering ONVIF."""
        return self.health in (Health.UNREACHABLE, Health.NOT_ONVIF)

    @property
    def down_reason(self) -> str | None:
        """Why it is down: the health state and the error that showed it."""
        return f"{self.health}: {self._reason}" if self.down else None

    @property
    def subscription(self) -> PullPointSupervisor:
        """The event subscription's supervisor (its ``health`` is in every poll)."""
        return self._supervisor

    def describe(self) -> DeviceDescription:
        """Kind camera; maker, model, firmware and serial once the camera told them."""
        info = self.info
        return DeviceDescription(
            kind="camera",
            profile="onvif",
            maker=info.maker if info else None,
            model=info.model if info else None,
            firmware=info.firmware if info else None,
            serial=info.serial if info else None,
            metrics=METRICS,
            events=EVENT_TYPES,
        )

    async def poll(self) -> PollResult:
        """Health, clock, snapshot and subscription readings; events when the health changes."""
        health, reason, clock = await self._check()
        now_ms = int(self._clock() * 1000)
        events: list[DeviceEvent] = []
        picture: list[Reading] = []
        if health is Health.OK:
            try:
                picture = await self._snapshot_readings(now_ms, events)
            except AuthFailed as exc:  # the HTTP digest path refused what WS-Security accepted
                health, reason = Health.AUTH_FAILED, str(exc)
                picture = [Reading(metric="camera.snapshot_ok", value=False, ts=now_ms)]
        events[:0] = self._health_changed(health, reason, now_ms)
        readings = [Reading(metric="camera.health", value=str(health), ts=now_ms)]
        readings += self._clock_readings(clock, now_ms)
        if self.profiles and health is not Health.UNREACHABLE:
            readings.append(Reading(metric="camera.profiles", value=len(self.profiles), ts=now_ms))
        readings += picture + self._event_readings(now_ms)
        return PollResult(readings=readings, events=events, ok=health is Health.OK)

    async def _check(self) -> tuple[Health, str | None, CameraClock | None]:
        try:
            clock = await self._session.clock()
        except CameraUnreachable as exc:
            return Health.UNREACHABLE, str(exc), None
        except OnvifError as exc:
            return Health.NOT_ONVIF, str(exc), None
        try:
            if self._needs_setup(clock):
                await self._setup()
            else:
                self.info = await self._session.device_information()
        except AuthFailed as exc:
            return Health.AUTH_FAILED, str(exc), clock
        except CameraUnreachable as exc:
            return Health.UNREACHABLE, str(exc), clock
        except OnvifError as exc:
            return Health.NOT_ONVIF, str(exc), clock
        return Health.OK, None, clock

    def _needs_setup(self, clock: CameraClock) -> bool:
        offset = self._session.time_offset_s
        if not self._session.ready or offset is None or self.health is not Health.OK:
            return True
        # The WS-Security timestamps were computed for the old clock: recompute them.
        return abs(clock.skew_s - offset) > self.config.clock_resync_s

    async def _setup(self) -> None:
        await self._session.open()
        self.info = await self._session.device_information()
        self.profiles = await self._session.profiles()

    def _clock_readings(self, clock: CameraClock | None, ts: int) -> list[Reading]:
        if clock is None:
            return [Reading(metric="camera.response_time", unit="s", ts=ts, quality=Quality.BAD)]
        return [
            Reading(metric="camera.response_time", value=round(clock.response_time_s, 4), unit="s", ts=ts),
            Reading(metric="camera.clock_skew", value=round(clock.skew_s, 1), unit="s", ts=ts),
        ]

    def _health_changed(self, health: Health, reason: str | None, ts: int) -> list[DeviceEvent]:
        previous, self.health, self._reason = self.health, health, reason
        if previous == health:
            return []
        self._log_change(previous, health, reason)
        events = []
        if previous is not None and previous in HEALTH_EVENTS:
            events.append(DeviceEvent(type=HEALTH_EVENTS[previous], ts=ts, active=False, message=f"camera {health}"))
        if health in HEALTH_EVENTS:
            events.append(DeviceEvent(type=HEALTH_EVENTS[health], ts=ts, active=True, message=(reason or "")[:512]))
        return events

    def _log_change(self, previous: Health | None, health: Health, reason: str | None) -> None:
        if health is not Health.OK:
            log.warning(
                "camera %s (%s:%s) is %s: %s", self.device_id, self.config.host, self.config.port, health, reason
            )
        elif previous is not None:
            log.info("camera %s is back (was %s)", self.device_id, previous)

    def _snapshot_profile(self) -> MediaProfile | None:
        wanted = self.config.snapshot_profile
        for profile in self.profiles:
            if profile.snapshot_uri and (wanted is None or profile.token == wanted):
                return profile
        return None

    async def _snapshot_readings(self, ts: int, events: list[DeviceEvent]) -> list[Reading]:
        """The snapshot's readings (and frozen events); raises AuthFailed when digest is refused."""
        profile = self._snapshot_profile() if self.config.snapshot else None
        if profile is None or profile.snapshot_uri is None:
            return []
        try:
            shot = await fetch_snapshot(self._http, profile.snapshot_uri, self._auth, self.config.timeout_s)
        except AuthFailed:
            raise
        except OnvifError as exc:
            log.debug("camera %s: snapshot failed: %s", self.device_id, exc)
            return [Reading(metric="camera.snapshot_ok", value=False, ts=ts)]
        frozen = self._frozen.update(shot.digest)
        if frozen != self._was_frozen:
            self._was_frozen = frozen
            state = "frozen" if frozen else "moving again"
            events.append(DeviceEvent(type="camera.snapshot_frozen", ts=ts, active=frozen, message=f"picture {state}"))
        age = self._frozen.age_s()
        return [
            Reading(metric="camera.snapshot_ok", value=True, ts=ts),
            Reading(metric="camera.snapshot_bytes", value=shot.size, unit="By", ts=ts),
            Reading(metric="camera.snapshot_frozen", value=frozen, ts=ts),
            Reading(metric="camera.snapshot_age", value=round(age or 0.0, 3), unit="s", ts=ts),
        ]

    def _event_readings(self, ts: int) -> list[Reading]:
        if not self.config.events:
            return []
        health = self._supervisor.health
        readings = [
            Reading(metric="camera.events_subscribed", value=health.subscribed, ts=ts),
            Reading(metric="camera.events_renewals", value=health.renewals, ts=ts),
            Reading(metric="camera.events_recreations", value=health.recreations, ts=ts),
            Reading(metric="camera.events_failures", value=health.failures, ts=ts),
            Reading(metric="camera.events_received", value=health.messages, ts=ts),
        ]
        return readings + self._state_readings(ts)

    def _state_readings(self, ts: int) -> list[Reading]:
        readings = []
        for metric in _STATE_READINGS:
            state = self._tracker.current(metric)
            if state is not None:
                readings.append(Reading(metric=metric, value=state, ts=ts))
        return readings

    async def watch(self, sink: Sink, stop: asyncio.Event) -> None:
        """Run the PullPoint subscription until ``stop``, handing each event to ``sink`` as it arrives."""
        if not self.config.events:
            await stop.wait()
            return

        def handle(messages: list[RawNotification]) -> None:
            ts = int(self._clock() * 1000)
            # Stamped with the agent's clock: the camera's may be off (see camera.clock_skew); its own
            # time is kept in the camera_time attribute.
            events = [e for e in (self._tracker.track(m, ts) for m in messages) if e is not None]
            if events:
                sink(PollResult(readings=self._state_readings(ts), events=events))

        await self._supervisor.run(handle, stop)

    async def aclose(self) -> None:
        """Close the HTTP sessions (the subscription ends with ``watch``)."""
        await self._session.close()
        await self._supervisor.session.close()
        await self._http.aclose()
