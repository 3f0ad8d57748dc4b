"""One simulated ONVIF camera: SOAP over HTTP (aiohttp), a snapshot JPEG, faults.

    async with SimulatedCamera(CameraSpec(name="gate-cam")) as cam:   # 127.0.0.1, a free port
        cam.set("camera.motion", True)            # subscribers get a Changed message
        cam.set_fault(FaultMode.OFFLINE)          # connections refused from now on
        cam.clear_fault()

Faults act at the HTTP layer, before any operation: ``offline`` stops listening and drops open
connections (connection refused); ``hang`` holds every request until the fault clears; ``reboot``
is offline for a few seconds, then back with a new boot time and no subscriptions; ``not_onvif``
answers everything with an HTML 404, as a camera's web UI on the wrong port does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from simulators.errors import TransportError
from simulators.onvif.auth import DigestChecker, WsseChecker
from simulators.onvif.jpeg import snapshot_jpeg
from simulators.onvif.points import POINTS, CameraProfile, FaultMode, camera_profile
from simulators.onvif.services import PRE_AUTH, Identity, Services
from simulators.onvif.soap import SOAP_CONTENT_TYPE, SoapFault, envelope, fault_envelope, not_authorized, parse_request
from simulators.onvif.state import CameraState

log = logging.getLogger(__name__)

DEFAULT_USERNAME = "admin"
DEFAULT_PASSWORD = "cityhub-sim"  # noqa: S105 - a simulator's documented default, not a secret
DEFAULT_REBOOT_S = 3
DEFAULT_SKEW_S = 3600
_NOT_ONVIF_PAGE = b"<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"
_SUBSCRIPTION_PATH = re.compile(r"^/onvif/subscription/([0-9a-f]+)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class CameraSpec:
    """What one simulated camera is and where it listens."""

    name: str = "cam-1"
    profile: str = "camera"
    username: str = DEFAULT_USERNAME
    password: str = DEFAULT_PASSWORD
    serial: str | None = None  # default: derived from the name
    location: str = "city"
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port


class SimulatedCamera:
    """An ONVIF camera on a local port; an async context manager."""

    def __init__(self, spec: CameraSpec | None = None) -> None:
        self.spec = spec or CameraSpec()
        self.profile: CameraProfile = camera_profile(self.spec.profile)
        self.state = CameraState(self.profile)
        self.fault = FaultMode.NONE
        self.snapshots_served = 0
        self._frame = 0
        self._port = self.spec.port
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._released = asyncio.Event()  # set when hung requests may go
        self._tasks: set[asyncio.Task[None]] = set()
        self.wsse = WsseChecker(self.spec.username, self.spec.password, self.state.now)
        self.digest = DigestChecker(self.spec.username, self.spec.password)
        self.services: Services | None = None

    @property
    def port(self) -> int:
        """The TCP port it listens on (known once started)."""
        return self._port

    @property
    def answers_discovery(self) -> bool:
        """Whether it would answer a WS-Discovery Probe now (not while offline, rebooting or hung)."""
        return self._site is not None and self.fault not in (FaultMode.OFFLINE, FaultMode.REBOOT, FaultMode.HANG)

    @property
    def host(self) -> str:
        """The address it listens on."""
        return self.spec.host

    @property
    def device_url(self) -> str:
        """The device service address, as discovery announces it."""
        return f"http://{self.host}:{self.port}/onvif/device_service"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen; the port is chosen now when the spec says 0."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await self._listen()
        base = f"http://{self.host}:{self.port}"
        serial = self.spec.serial or f"SIM{abs(hash(self.spec.name)) % 10**8:08d}"
        identity = Identity(
            serial=serial,
            name=self.spec.name,
            location=self.spec.location,
            base_url=base,
            rtsp_url=f"rtsp://{self.host}:554",
        )
        self.services = Services(self.state, identity)
        log.info("camera %s (%s) on %s", self.spec.name, self.profile.name, base)

    async def _listen(self) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self.host, self._port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise TransportError(f"camera {self.spec.name}: cannot listen on {self.host}:{self._port}: {exc}") from exc
        self._site = site
        server = site._server  # the asyncio server: the only place the chosen port is known
        if self._port == 0 and server is not None:
            self._port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def _unlisten(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._runner is not None and self._runner.server is not None:
            for connection in self._runner.server.connections:
                connection.force_close()

    async def close(self) -> None:
        """Stop listening, release hung requests, end background tasks."""
        self._released.set()
        for sub in self.state.subscriptions.values():
            sub.wake.set()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    async def settled(self) -> None:
        """Wait until the last fault change has taken effect (listening stopped or restarted)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # What scenarios and tests change

    def set(self, metric: str, value: bool) -> None:
        """Set a point (camera.motion, camera.tamper, camera.video_loss, camera.input1, camera.input2)."""
        if metric not in POINTS:
            raise KeyError(f"camera has no point {metric!r}")
        self.state.set(metric, value)

    def set_fault(self, mode: FaultMode | str, code: int = 0) -> None:
        """Misbehave; ``code`` is the downtime of ``reboot`` and the skew of ``clock_skew``, in seconds."""
        mode = FaultMode(mode)
        self.clear_fault()
        self.fault = mode
        log.info("camera %s: fault %s", self.spec.name, mode)
        if mode is FaultMode.OFFLINE:
            self._spawn(self._unlisten())
        elif mode is FaultMode.HANG:
            self._released.clear()
        elif mode is FaultMode.REBOOT:
            self._spawn(self._reboot(code if code > 0 else DEFAULT_REBOOT_S))
        elif mode is FaultMode.CLOCK_SKEW:
            self.state.clock_offset_s = float(code if code else DEFAULT_SKEW_S)

    def clear_fault(self) -> None:
        """Behave again."""
        previous, self.fault = self.fault, FaultMode.NONE
        self._released.set()
        self.state.clock_offset_s = 0.0
        if previous is FaultMode.OFFLINE:
            self._spawn(self._relisten())

    async def _relisten(self) -> None:
        if self._site is None and self._runner is not None:
            await self._listen()

    async def _reboot(self, down_s: float) -> None:
        await self._unlisten()
        self.state.reboot()
        await asyncio.sleep(down_s)
        self.state.reboot()  # the new boot time is when it comes back
        if self.fault is FaultMode.REBOOT:
            self.fault = FaultMode.NONE
        await self._listen()
        log.info("camera %s: back after a %g s reboot", self.spec.name, down_s)

    # HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.fault in (FaultMode.OFFLINE, FaultMode.REBOOT):
            return _drop(request)
        if self.fault is FaultMode.HANG:
            await self._released.wait()
            return _drop(request)
        if self.fault is FaultMode.NOT_ONVIF:
            return web.Response(status=404, body=_NOT_ONVIF_PAGE, content_type="text/html")
        if request.method == "GET" and request.path == "/onvif/snapshot.jpg":
            return self._snapshot(request)
        if request.method != "POST" or not request.path.startswith("/onvif/"):
            return web.Response(status=404, body=_NOT_ONVIF_PAGE, content_type="text/html")
        return await self._soap(request)

    def _verdicts(self, request: web.Request, header: Any) -> tuple[bool | None, bool | None]:
        """(HTTP digest, WS-Security): True/False when given and right/wrong, None when not given."""
        digest = self.digest.check(request.headers.get("Authorization"), request.method)
        wsse = self.wsse.check(header) if header is not None else None
        if self.fault is FaultMode.AUTH_FAIL:
            digest, wsse = (None if v is None else False for v in (digest, wsse))
        return digest, wsse

    def _challenge(self) -> web.Response:
        return web.Response(status=401, headers={"WWW-Authenticate": self.digest.challenge()}, text="401 Unauthorized")

    def _snapshot(self, request: web.Request) -> web.Response:
        digest, _ = self._verdicts(request, None)
        if not digest:
            return self._challenge()
        if self.fault is not FaultMode.FROZEN:
            self._frame += 1
        self.snapshots_served += 1
        return web.Response(body=snapshot_jpeg(self._frame, self.spec.name), content_type="image/jpeg")

    async def _soap(self, request: web.Request) -> web.Response:
        assert self.services is not None
        match = _SUBSCRIPTION_PATH.match(request.path)
        try:
            soap = parse_request(await request.read())
            if soap.operation not in PRE_AUTH:
                digest, wsse = self._verdicts(request, soap.header)
                if wsse is False and not digest:
                    raise not_authorized()  # ONVIF Core spec 5.9.4: a SOAP fault for a refused UsernameToken
                if not (digest or wsse):
                    return self._challenge()  # none given, or a wrong digest: HTTP 401 (RFC 7616)
            body = await self.services.answer(soap, match.group(1) if match else None)
        except SoapFault as fault:
            return web.Response(
                status=fault.status, body=fault_envelope(fault), headers={"Content-Type": SOAP_CONTENT_TYPE}
            )
        if self.fault in (FaultMode.OFFLINE, FaultMode.REBOOT):  # went away while the request waited
            return _drop(request)
        return web.Response(body=envelope(body), headers={"Content-Type": SOAP_CONTENT_TYPE})


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer, as a camera that went away does."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=503)
