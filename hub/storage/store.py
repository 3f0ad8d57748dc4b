"""Where the hub's batches go: InfluxDB behind an on-disk spool, or the embedded SQLite store.

``TimeSeriesStore.write`` returns once the points are durable (in the database, or committed to the
spool); only then does the hub acknowledge the messages to the broker.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from hub.errors import StoreRejected, StoreUnavailable
from hub.metrics import HubMetrics
from hub.storage.influx import LineWriter
from hub.storage.lineprotocol import LineProtocolError, Point, encode_points, encode_valid_points, split_body
from hub.storage.spool import Spool, SpooledBatch
from hub.storage.sqlite_store import SqliteStore

log = logging.getLogger(__name__)

_DROPPED_RE = re.compile(r"dropped=(\d+)")

#: Largest body sent in one request: well under InfluxDB 1.x's default max-body-size (25 MB), which
#: closes the connection (looking like an outage) rather than answering 413.
MAX_BODY_BYTES = 8 * 1024 * 1024
#: Points encoded between two turns of the event loop: about a millisecond of work, so that a batch of
#: thousands of points does not hold back the next readings and the alerts they fire (bench/alert_latency.py).
ENCODE_SLICE = 1_000


class TimeSeriesStore(Protocol):
    """A durable destination for points."""

    async def open(self) -> None:
        """Get ready (files, connections); must not fail because a remote server is down."""

    async def write(self, points: Sequence[Point]) -> None:
        """Return once the points are durable."""

    async def run(self) -> None:
        """Background work (draining the spool) until cancelled."""

    async def aclose(self) -> None:
        """Release resources."""


class EmbeddedStore:
    """Points go straight into SQLite; it is local, so there is nothing to spool."""

    def __init__(self, path: Path, metrics: HubMetrics) -> None:
        self.sqlite = SqliteStore(path)
        self._metrics = metrics

    async def open(self) -> None:
        """Open the SQLite file."""
        await self.sqlite.open()
        self._metrics.store_available.set(1)

    async def write(self, points: Sequence[Point]) -> None:
        """Commit the points."""
        await self.sqlite.write(points)
        self._metrics.points_written.inc(len(points))

    async def run(self) -> None:
        """Nothing runs in the background."""
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        """Close the SQLite file."""
        await self.sqlite.aclose()


class InfluxStore:
    """Writes to InfluxDB while it answers; spools batches on disk while it does not, drains them in order."""

    def __init__(
        self,
        writer: LineWriter,
        spool: Spool,
        metrics: HubMetrics,
        *,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
        spool_max_bytes: int = 1024**3,
    ) -> None:
        self.writer = writer
        self.spool = spool
        self._metrics = metrics
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._spool_max_bytes = spool_max_bytes
        self._available = False
        self._spooled = asyncio.Event()

    async def open(self) -> None:
        """Open the spool (batches left by a previous run are drained first) and check InfluxDB."""
        await self.spool.open()
        self._update_gauges()
        if self.spool.depth.batches:
            log.warning("spool holds %d batches from a previous run; draining them first", self.spool.depth.batches)
            self._spooled.set()
        try:
            await self.writer.prepare()
            self._set_available(True)
        except StoreUnavailable as exc:
            self._set_available(False, str(exc))

    async def write(self, points: Sequence[Point]) -> None:
        """Write to InfluxDB, or spool when it is down or when older batches still wait (order)."""
        body, count = await self._encode(points)
        if not count:
            return
        if self._available and self.spool.depth.batches == 0 and await self._write_direct(body, count):
            return
        if self._spool_full(body) and await self._wait_for_room(body, count):
            return
        await self.spool.append(body, count)
        self._metrics.points_spooled.inc(count)
        self._update_gauges()
        self._spooled.set()

    def _spool_full(self, body: bytes) -> bool:
        return self.spool.depth.bytes + len(body) > self._spool_max_bytes

    async def _encode(self, points: Sequence[Point]) -> tuple[bytes, int]:
        """The points as one line-protocol body and how many it holds, encoded a slice per loop turn."""
        parts: list[bytes] = []
        refused_count = 0
        for start in range(0, len(points), ENCODE_SLICE):
            if start:
                await asyncio.sleep(0)
            chunk = list(points[start : start + ENCODE_SLICE])
            try:
                parts.append(encode_points(chunk))
            except LineProtocolError:
                # Validated input never gets here; if a bug lets a point through, drop that point alone
                # rather than crash on every redelivery of the batch.
                body, refused = encode_valid_points(chunk)
                parts.append(body)
                for point, why in refused:
                    log.error("dropped a point of %r that line protocol cannot carry: %s", point.measurement, why)
                self._metrics.points_rejected_by_store.inc(len(refused))
                refused_count += len(refused)
        return b"".join(parts), len(points) - refused_count

    async def _write_lines(self, body: bytes) -> None:
        for part in split_body(body, MAX_BODY_BYTES):
            await self.writer.write_lines(part)  # a retry after a partial failure rewrites parts: idempotent

    async def _write_direct(self, body: bytes, count: int) -> bool:
        """True when the batch is settled (written, or refused for good)."""
        try:
            await self._write_lines(body)
        except StoreUnavailable as exc:
            self._set_available(False, str(exc))
            return False
        except StoreRejected as exc:
            self._count_rejected(exc, count)
        else:
            self._metrics.points_written.inc(count)
        return True

    async def _wait_for_room(self, body: bytes, count: int) -> bool:
        """The spool is full: hold this batch (and so the broker's stream) until InfluxDB takes writes.

        Nothing is acknowledged meanwhile, so the broker keeps the messages: backpressure, not loss.
        True when the batch itself got written meanwhile; False when it now fits in the spool.
        """
        log.error(
            "spool full (%d bytes); holding new messages at the broker until InfluxDB answers", self.spool.depth.bytes
        )
        delay = self._retry_initial_s
        while self._spool_full(body):
            if self.spool.depth.batches == 0 and await self._write_direct(body, count):
                return True
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max_s)
        return False

    async def run(self) -> None:
        """Drain the spool oldest first, with capped exponential backoff while InfluxDB is down."""
        delay = self._retry_initial_s
        while True:
            await self._spooled.wait()
            batch = await self.spool.head()
            if batch is None:
                self._spooled.clear()
                continue
            if await self._drain_one(batch):
                delay = self._retry_initial_s
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)

    async def _drain_one(self, batch: SpooledBatch) -> bool:
        try:
            if not self._available:
                await self.writer.prepare()  # e.g. create the database InfluxDB lost or never had
            await self._write_lines(batch.body)
        except StoreUnavailable as exc:
            self._set_available(False, str(exc))
            return False
        except StoreRejected as exc:
            self._count_rejected(exc, batch.points)
        else:
            self._metrics.points_written.inc(batch.points)
        await self.spool.remove(batch)
        self._update_gauges()
        if self.spool.depth.batches == 0:
            log.info("spool drained")
        self._set_available(True)
        return True

    def _set_available(self, available: bool, why: str = "") -> None:
        # Log the transition once each way, not every failed write.
        if available and not self._available:
            log.info("InfluxDB is reachable; writing directly")
        elif not available and self._available:
            log.warning("InfluxDB unavailable, spooling batches on disk: %s", why)
        elif not available:
            log.debug("InfluxDB still unavailable: %s", why)
        if not available:
            self._metrics.store_errors.labels(kind="unavailable").inc()
        self._available = available
        self._metrics.store_available.set(1 if available else 0)

    def _count_rejected(self, exc: StoreRejected, points: int) -> None:
        match = _DROPPED_RE.search(str(exc))
        dropped = int(match.group(1)) if match else points
        self._metrics.store_errors.labels(kind="rejected").inc()
        self._metrics.points_rejected_by_store.inc(dropped)
        self._metrics.points_written.inc(points - dropped)
        log.error("InfluxDB refused %d of %d points: %s", dropped, points, exc)

    def _update_gauges(self) -> None:
        depth = self.spool.depth
        self._metrics.spool_batches.set(depth.batches)
        self._metrics.spool_points.set(depth.points)
        self._metrics.spool_bytes.set(depth.bytes)

    async def aclose(self) -> None:
        """Close the spool and the HTTP client."""
        await self.spool.aclose()
        await self.writer.aclose()
