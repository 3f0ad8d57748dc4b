"""Snapshot checks: fetch the camera's snapshot URI (HTTP digest) and tell a frozen picture.

A camera can answer ONVIF perfectly while its picture is stuck (encoder hung, sensor dead): the
snapshot then stops changing. Every JPEG a live sensor produces differs at least in noise, so the
same SHA-256 for ``frozen_after`` polls in a row means frozen.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from drivers.onvif.errors import MAPPED_ERRORS, AuthFailed, NotOnvif, map_error

_JPEG_START = b"\xff\xd8"


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """One fetched snapshot."""

    size: int
    digest: str
    content_type: str


async def fetch_snapshot(client: httpx.AsyncClient, uri: str, auth: httpx.Auth, timeout_s: float) -> Snapshot:
    """GET the snapshot URI with digest auth; raises AuthFailed (401), NotOnvif (not a JPEG), CameraUnreachable."""
    try:
        response = await client.get(uri, auth=auth, timeout=timeout_s)
    except MAPPED_ERRORS as exc:
        raise map_error(exc, "snapshot") from exc
    if response.status_code == 401:
        raise AuthFailed("snapshot: HTTP 401 (digest credentials refused)")
    content_type = response.headers.get("Content-Type", "")
    if response.status_code != 200 or not response.content.startswith(_JPEG_START):
        raise NotOnvif(f"snapshot: HTTP {response.status_code}, {content_type or 'no type'}, not a JPEG")
    return Snapshot(
        size=len(response.content), digest=hashlib.sha256(response.content).hexdigest(), content_type=content_type
    )


@dataclass(slots=True, kw_only=True)
class FrozenDetector:
    """Counts polls with an unchanged snapshot."""

    frozen_after: int
    clock: Callable[[], float] = time.monotonic
    _digest: str | None = None
    _same: int = 0
    _changed_at: float | None = None

    def update(self, digest: str) -> bool:
        """Take one snapshot's digest; returns whether the picture counts as frozen now."""
        now = self.clock()
        if digest == self._digest:
            self._same += 1
        else:
            self._digest, self._same, self._changed_at = digest, 1, now
        return self.frozen

    @property
    def frozen(self) -> bool:
        """Whether the last ``frozen_after`` snapshots were identical."""
        return self._same >= self.frozen_after

    def age_s(self) -> float | None:
        """Seconds since the picture last changed."""
        return None if self._changed_at is None else self.clock() - self._changed_at
