"""The hub's statistics about itself, written every few seconds into its own time-series store.

Prometheus can scrape the same counters from ``/metrics``; these points exist so that a team running only
InfluxDB and Grafana sees its hub on the hub board (dashboards/json/hub.json) next to the devices. The
measurement is ``hub_stats`` (schema in docs/storage.md#hub_stats):

* one series tagged ``hub``: totals since the hub started (graph them with ``non_negative_derivative``,
  which also copes with a restart) and gauges as they were at the sample;
* one series per device ``kind`` (tags ``hub``, ``kind``): devices online and offline;
* one series per alert ``team`` (tags ``hub``, ``team``): open alerts, firing and acknowledged; every
  configured team is written, with zeros, so a quiet team is a flat line rather than a gap.

A failed or slow write is logged once (and its recovery once) and skipped: the hub never waits on its own
statistics, and the next sample carries the totals anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client.metrics import MetricWrapperBase

from hub.alerts.service import AlertService
from hub.devices import DeviceStates
from hub.metrics import HubMetrics
from hub.storage.lineprotocol import Point
from hub.storage.store import TimeSeriesStore

log = logging.getLogger(__name__)

MEASUREMENT = "hub_stats"

#: Field of the hub series -> the HubMetrics attribute it copies (counters summed over their labels).
_FROM_METRICS: dict[str, str] = {
    "messages_received": "messages_received",
    "messages_rejected": "messages_rejected",
    "historical_messages": "historical_messages",
    "duplicates_dropped": "duplicates_dropped",
    "sequence_gaps": "sequence_gaps",
    "points_written": "points_written",
    "points_spooled": "points_spooled",
    "points_rejected_by_store": "points_rejected_by_store",
    "store_errors": "store_errors",
    "spool_batches": "spool_batches",
    "spool_points": "spool_points",
    "spool_bytes": "spool_bytes",
    "messages_unacked": "messages_unacked",
    "mqtt_connected": "mqtt_connected",
    "store_available": "store_available",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class HubSnapshot:
    """What the hub says of itself at one moment."""

    ts_ms: int
    totals: Mapping[str, float]  # the fields of the hub series
    devices: Mapping[str, tuple[int, int]]  # device kind -> (online, offline)
    alerts: Mapping[str, tuple[int, int]]  # team -> (firing, acknowledged)


def metric_sum(metric: MetricWrapperBase) -> float:
    """A counter's total over all its labels, or a gauge's value (``_created`` samples left out)."""
    return sum(
        sample.value for family in metric.collect() for sample in family.samples if not sample.name.endswith("_created")
    )


def take_snapshot(
    metrics: HubMetrics, devices: DeviceStates, alerts: AlertService | None, *, ts_ms: int, uptime_s: float
) -> HubSnapshot:
    """Read the hub's counters, its device states and its open alerts."""
    totals = {name: metric_sum(getattr(metrics, attribute)) for name, attribute in _FROM_METRICS.items()}
    by_kind: dict[str, tuple[int, int]] = {}
    for state in devices.all():
        online, offline = by_kind.get(state.kind, (0, 0))
        by_kind[state.kind] = (online + 1, offline) if state.state == "online" else (online, offline + 1)
    by_team: dict[str, tuple[int, int]] = {}
    if alerts is not None:
        by_team = dict.fromkeys(alerts.config.teams, (0, 0))
        for alert in alerts.manager.open_alerts:
            firing, acked = by_team.get(alert.team, (0, 0))
            by_team[alert.team] = (firing + 1, acked) if alert.state == "firing" else (firing, acked + 1)
    totals |= {
        "devices_known": float(len(devices)),
        "alerts_open": float(sum(f + a for f, a in by_team.values())),
        "uptime_s": round(uptime_s, 3),
    }
    return HubSnapshot(ts_ms=ts_ms, totals=totals, devices=by_kind, alerts=by_team)


def snapshot_points(hub_id: str, snapshot: HubSnapshot) -> list[Point]:
    """The ``hub_stats`` points of a snapshot; every field a float, so a field never changes type."""
    ts = snapshot.ts_ms
    points = [Point(MEASUREMENT, (("hub", hub_id),), tuple((k, float(v)) for k, v in snapshot.totals.items()), ts)]
    for kind, (online, offline) in sorted(snapshot.devices.items()):
        counts = (("devices_online", float(online)), ("devices_offline", float(offline)))
        points.append(Point(MEASUREMENT, (("hub", hub_id), ("kind", kind)), counts, ts))
    for team, (firing, acked) in sorted(snapshot.alerts.items()):
        fields = (
            ("alerts_open", float(firing + acked)),
            ("alerts_firing", float(firing)),
            ("alerts_acknowledged", float(acked)),
        )
        points.append(Point(MEASUREMENT, (("hub", hub_id), ("team", team)), fields, ts))
    return points


class SelfStats:
    """Writes a snapshot of the hub into its store every ``interval_s`` until cancelled."""

    def __init__(
        self,
        hub_id: str,
        interval_s: float,
        *,
        metrics: HubMetrics,
        devices: DeviceStates,
        alerts: AlertService | None,
        store: TimeSeriesStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub_id = hub_id
        self.interval_s = interval_s
        self._metrics = metrics
        self._devices = devices
        self._alerts = alerts
        self._store = store
        self._clock = clock
        self._started = time.monotonic()
        self._failing = False
        self.written = 0  # snapshots written, for tests and /health readers

    async def run(self) -> None:
        """Sample, write, sleep; forever."""
        while True:
            await self.write_once()
            await asyncio.sleep(self.interval_s)

    async def write_once(self) -> None:
        """Write one snapshot; a failure is logged (once until it recovers) and skipped."""
        snapshot = take_snapshot(
            self._metrics,
            self._devices,
            self._alerts,
            ts_ms=int(self._clock() * 1000),
            uptime_s=time.monotonic() - self._started,
        )
        try:
            # The store's own requests have timeouts, but a full spool holds writes back: never wait on it.
            async with asyncio.timeout(max(self.interval_s, 1.0)):
                await self._store.write(snapshot_points(self.hub_id, snapshot))
        except Exception as exc:  # the hub's own statistics must never stop the hub
            if not self._failing:
                log.warning("could not write the hub's statistics (%s: %s); skipping them", type(exc).__name__, exc)
            self._failing = True
            return
        if self._failing:
            log.info("writing the hub's statistics again")
        self._failing = False
        self.written += 1
