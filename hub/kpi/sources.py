"""Reading what the figures need: the alert store, the device registry and ``device_status`` points.

The SQLite files of the hub's data directory are opened **read-only** with their own connection, so a
report can be made while the hub runs (WAL lets readers and the writer work at once) and can never
change them. ``device_status`` points come from the embedded store's file or, when the hub is configured
with InfluxDB, from InfluxQL over HTTP. Only the transitions a report needs are read: those inside the
period, and the last one before it of each series (the state at the period's start).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from hub.config import HubSettings
from hub.devices import DeviceSource
from hub.errors import StoreRejected, StoreUnavailable
from hub.kpi.errors import SourceError
from hub.kpi.model import AlertChange, AlertFacts, KnownDevice, KpiData, StatusChange
from hub.kpi.period import Period
from hub.storage.influx import InfluxV1Writer

T = TypeVar("T")
#: How long a read waits for the hub's writer to release a SQLite file.
BUSY_TIMEOUT_S = 5.0

_STATUS_SQL = """
SELECT s.tags, p.ts_ms, p.fields FROM points p JOIN series s ON s.id = p.series_id
WHERE s.measurement = 'device_status' AND p.ts_ms < :end
  AND (p.ts_ms >= :start
       OR p.ts_ms = (SELECT MAX(q.ts_ms) FROM points q WHERE q.series_id = p.series_id AND q.ts_ms < :start))
ORDER BY p.ts_ms
"""
_ALERTS_SQL = "SELECT id, rule, site, device, kind, team, severity, fired_ms FROM alerts WHERE fired_ms < ?"
_HISTORY_SQL = (
    "SELECT h.alert_id, h.ts_ms, h.event, h.actor FROM alert_history h JOIN alerts a ON a.id = h.alert_id "
    "WHERE a.fired_ms < ? AND h.event IN ('firing', 'reopened', 'acknowledged', 'resolved') ORDER BY h.id"
)


class StatusReader(Protocol):
    """Where ``device_status`` points are."""

    async def changes(self, period: Period) -> list[StatusChange]:
        """The transitions in ``period`` and, per series, the last one before it."""
        ...


def _read(path: Path, fn: Callable[[sqlite3.Connection], list[T]]) -> list[T]:
    """``fn`` on a read-only connection to ``path`` (nothing if there is no such file); SourceError on failure."""
    if not path.exists():
        return []  # e.g. a hub that never ran alerting has no alert store: nothing to count
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise SourceError(f"cannot open {path}: {exc}") from None
    try:
        return fn(conn)
    except sqlite3.Error as exc:
        raise SourceError(f"cannot read {path}: {exc}") from None
    finally:
        conn.close()


async def _read_file(path: Path, fn: Callable[[sqlite3.Connection], list[T]]) -> list[T]:
    # sqlite3 blocks: read on a worker thread so the hub's event loop carries on meanwhile.
    return await asyncio.to_thread(_read, path, fn)


def _status(tags: dict[str, Any], ts_ms: int, fields: dict[str, Any]) -> StatusChange | None:
    online = fields.get("online")
    if not isinstance(online, int | float) or not {"site", "device"} <= tags.keys():
        return None  # a point without the state (none are written so): it cannot say anything
    return StatusChange(
        site=str(tags["site"]), device=str(tags["device"]), kind=str(tags.get("kind", "")), ts_ms=int(ts_ms),
        online=online >= 0.5,
    )  # fmt: skip


class SqliteStatusReader:
    """``device_status`` points of the embedded store (``timeseries.sqlite``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def changes(self, period: Period) -> list[StatusChange]:
        """The transitions in ``period`` and, per series, the last one before it."""

        def query(conn: sqlite3.Connection) -> list[StatusChange]:
            rows = conn.execute(_STATUS_SQL, {"start": period.start_ms, "end": period.end_ms}).fetchall()
            found = (_status(json.loads(tags), ts, json.loads(fields)) for tags, ts, fields in rows)
            return [change for change in found if change is not None]

        return await _read_file(self.path, query)


class InfluxStatusReader:
    """``device_status`` points in InfluxDB, through the v1 query API (InfluxQL), with a timeout per request."""

    def __init__(self, writer: Callable[[], InfluxV1Writer], retention_policy: str | None = None) -> None:
        self._writer = writer
        self._measurement = f'"{_ident(retention_policy)}"."device_status"' if retention_policy else '"device_status"'

    async def changes(self, period: Period) -> list[StatusChange]:
        """The transitions in ``period`` and, per series, the last one before it."""
        group = 'GROUP BY "site", "device", "kind"'
        inside = (
            f'SELECT "online" FROM {self._measurement} WHERE time >= {period.start_ms}ms '
            f"AND time < {period.end_ms}ms {group}"
        )
        before = f'SELECT last("online") FROM {self._measurement} WHERE time < {period.start_ms}ms {group}'
        writer = self._writer()
        try:
            answer = await writer.query(f"{before}; {inside}")
        except (StoreUnavailable, StoreRejected) as exc:
            raise SourceError(f"cannot read device_status from InfluxDB: {exc}") from None
        finally:
            await writer.aclose()
        changes = [c for result in answer.get("results", []) for c in _influx_changes(result)]
        return sorted(changes, key=lambda c: c.ts_ms)


def _ident(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def _influx_changes(result: dict[str, Any]) -> list[StatusChange]:
    found = []
    for series in result.get("series", []):
        tags = series.get("tags", {})
        for ts, online in series.get("values", []):
            change = _status(tags, ts, {"online": online})
            if change is not None:
                found.append(change)
    return found


async def read_devices(path: Path) -> list[KnownDevice]:
    """The registry file (``devices.sqlite``), read-only."""

    def query(conn: sqlite3.Connection) -> list[KnownDevice]:
        rows = conn.execute("SELECT site, device, kind, state, since_ms FROM device_state").fetchall()
        return [KnownDevice(site=s, device=d, kind=k, state=st, since_ms=ms) for s, d, k, st, ms in rows]

    return await _read_file(path, query)


async def read_alerts(path: Path, period: Period) -> tuple[list[AlertFacts], list[AlertChange]]:
    """Alerts fired before the period's end and their lifecycle entries, oldest first (``alerts.sqlite``)."""

    def alerts(conn: sqlite3.Connection) -> list[AlertFacts]:
        rows = conn.execute(_ALERTS_SQL, (period.end_ms,)).fetchall()
        return [
            AlertFacts(id=r[0], rule=r[1], site=r[2], device=r[3], kind=r[4], team=r[5], severity=r[6], fired_ms=r[7])
            for r in rows
        ]

    def history(conn: sqlite3.Connection) -> list[AlertChange]:
        rows = conn.execute(_HISTORY_SQL, (period.end_ms,)).fetchall()
        return [AlertChange(alert_id=a, ts_ms=ts, event=e, actor=actor) for a, ts, e, actor in rows]

    return await _read_file(path, alerts), await _read_file(path, history)


class KpiSource:
    """The hub's data directory and time-series store, as one source of report data."""

    def __init__(self, data_dir: Path, statuses: StatusReader, devices: DeviceSource | None = None) -> None:
        self.data_dir = data_dir
        self.statuses = statuses
        self._devices = devices  # the running hub's registry; else its file is read

    async def load(self, period: Period) -> KpiData:
        """Read everything a report on ``period`` needs; SourceError names what could not be read."""
        if not await asyncio.to_thread(self.data_dir.is_dir):
            raise SourceError(f"no hub data directory at {self.data_dir}: is the configuration the hub's?")
        if self._devices is not None:
            devices = [
                KnownDevice(site=d.site, device=d.device, kind=d.kind, state=d.state, since_ms=d.since_ms)
                for d in self._devices.all()
            ]
        else:
            devices = await read_devices(self.data_dir / "devices.sqlite")
        alerts, history = await read_alerts(self.data_dir / "alerts.sqlite", period)
        changes = await self.statuses.changes(period)
        return KpiData(devices=tuple(devices), changes=tuple(changes), alerts=tuple(alerts), history=tuple(history))


def source_for(settings: HubSettings, devices: DeviceSource | None = None) -> KpiSource:
    """The source a hub with ``settings`` keeps its data in (its registry ``devices`` when it runs)."""
    influx = settings.influx
    if not influx.url:
        return KpiSource(settings.data_dir, SqliteStatusReader(settings.data_dir / "timeseries.sqlite"), devices)
    url = influx.url
    # With api v2, InfluxQL goes through the v1 compatibility API: the bucket needs a DBRP mapping.
    database = influx.bucket if influx.api == "v2" and influx.bucket else influx.db

    def writer() -> InfluxV1Writer:
        return InfluxV1Writer(
            url, database=database, username=influx.username, password=influx.password, token=influx.token,
            timeout_s=influx.timeout_s, create_database=False,
        )  # fmt: skip

    return KpiSource(settings.data_dir, InfluxStatusReader(writer, influx.rp), devices)
