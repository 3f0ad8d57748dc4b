"""A point's history in buckets (mean, min, max, count per step), from the store the hub writes to.

    HistoryReader (Protocol)
    ├── SqliteHistory   the embedded store: one SQL query, interrupted past its timeout
    └── InfluxHistory   InfluxQL over HTTP (v1 query API) with the writer's timeout per request

Both align buckets on the query's start (bucket k covers ``[start + k*step, start + (k+1)*step)``), leave
out buckets without a numeric value, and merge the point's series across units. A point is located by
the schema of docs/storage.md: measurement = the metric family, tags ``site``, ``device``, ``point``.

    HistoryError (ValueError)   the range or step is refused (the API answers 422 with the message)
    StoreUnavailable            the store did not answer in time (the API answers 503)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hub.errors import StoreRejected, StoreUnavailable
from hub.storage.influx import InfluxV1Writer
from hub.storage.sqlite_store import SqliteStore

if TYPE_CHECKING:
    from hub.config import HubSettings

#: The most buckets one answer holds: a day by the minute.
MAX_BUCKETS = 1440
#: Without a step, the smallest of these giving at most DEFAULT_BUCKETS buckets.
DEFAULT_BUCKETS = 300
STEPS_MS = tuple(
    s * 1000
    for s in (1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400, 30 * 86400)
)
MIN_STEP_MS = 1000
#: Times are refused outside [1970, 2100): InfluxDB keeps nanoseconds in an int64 (up to 2262), and
#: nothing in a city's data predates the epoch.
MAX_TIME_MS = 4_102_444_800_000


class HistoryError(ValueError):
    """A history request that cannot be answered as asked; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryQuery:
    """One point of one device, from ``start_ms`` (included) to ``end_ms`` (excluded), by ``step_ms``."""

    site: str
    device: str
    point: str
    start_ms: int
    end_ms: int
    step_ms: int

    @property
    def measurement(self) -> str:
        """The metric family: the point's first dotted level."""
        return self.point.partition(".")[0]

    @property
    def buckets(self) -> int:
        """How many buckets the range holds (the last one may be shorter)."""
        return math.ceil((self.end_ms - self.start_ms) / self.step_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bucket:
    """The numeric values of one step."""

    start_ms: int
    mean: float
    min: float
    max: float
    count: int

    def as_dict(self) -> dict[str, float | int]:
        """As JSON."""
        return {"ts_ms": self.start_ms, "mean": self.mean, "min": self.min, "max": self.max, "count": self.count}


def plan(site: str, device: str, point: str, start_ms: int, end_ms: int, step_ms: int | None) -> HistoryQuery:
    """A checked query; without ``step_ms``, the smallest usual step giving at most DEFAULT_BUCKETS buckets."""
    for name, value in (("from", start_ms), ("to", end_ms)):
        if not 0 <= value < MAX_TIME_MS:
            raise HistoryError(f"{name} must be between 1970-01-01 and 2100-01-01")
    if end_ms <= start_ms:
        raise HistoryError("to must be after from")
    span = end_ms - start_ms
    if step_ms is None:
        step_ms = next((s for s in STEPS_MS if math.ceil(span / s) <= DEFAULT_BUCKETS), STEPS_MS[-1])
    if step_ms < MIN_STEP_MS:
        raise HistoryError("step must be at least 1 s")
    # A step past the range is one bucket anyway; clamped, it never reaches a store as a number it cannot
    # hold (SQLite's 64-bit integers, InfluxDB's durations).
    step_ms = min(step_ms, span)
    query = HistoryQuery(site=site, device=device, point=point, start_ms=start_ms, end_ms=end_ms, step_ms=step_ms)
    if query.buckets > MAX_BUCKETS:
        least = math.ceil(span / MAX_BUCKETS / 1000)
        raise HistoryError(
            f"{query.buckets} buckets asked, at most {MAX_BUCKETS}: shorten the range or use a step of"
            f" {least} s or more"
        )
    return query


class HistoryReader(Protocol):
    """Where the hub's time series are read back."""

    async def buckets(self, query: HistoryQuery) -> list[Bucket]:
        """The buckets with values, oldest first; StoreUnavailable when the store cannot answer."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class SqliteHistory:
    """History from the embedded store the hub writes (its own database thread)."""

    def __init__(self, store: SqliteStore, timeout_s: float = 10.0) -> None:
        self._store = store
        self._timeout_s = timeout_s

    async def buckets(self, query: HistoryQuery) -> list[Bucket]:
        """One SQL query; parameters bound, never spliced."""
        tags = {"site": query.site, "device": query.device, "point": query.point}
        try:
            rows = await self._store.buckets(
                query.measurement, tags, start_ms=query.start_ms, end_ms=query.end_ms, step_ms=query.step_ms,
                timeout_s=self._timeout_s,
            )  # fmt: skip
        except TimeoutError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return [Bucket(start_ms=t, mean=mean, min=low, max=high, count=n) for t, mean, low, high, n in rows]

    async def aclose(self) -> None:
        """The store is the hub's: it closes it."""


def influx_string(value: str) -> str:
    """``value`` as an InfluxQL string literal: quoted, with its backslashes, quotes and line breaks escaped."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def influx_identifier(name: str) -> str:
    """``name`` as a double-quoted InfluxQL identifier."""
    if "\n" in name:
        raise HistoryError("a name cannot hold a line break")
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def influxql(query: HistoryQuery, retention_policy: str | None = None) -> str:
    """The InfluxQL statement of ``query``; every name and value quoted, so none can end the statement."""
    measurement = influx_identifier(query.measurement)
    if retention_policy:
        measurement = f"{influx_identifier(retention_policy)}.{measurement}"
    tags = " AND ".join(
        f"{influx_identifier(k)} = {influx_string(v)}"
        for k, v in (("site", query.site), ("device", query.device), ("point", query.point))
    )
    offset = query.start_ms % query.step_ms  # buckets start at the query's start, as in the SQLite store
    return (
        f'SELECT mean("value"), min("value"), max("value"), count("value") FROM {measurement} WHERE {tags} '
        f"AND time >= {query.start_ms}ms AND time < {query.end_ms}ms "
        f"GROUP BY time({query.step_ms}ms, {offset}ms) fill(none)"
    )


class InfluxHistory:
    """History from InfluxDB through the v1 query API (1.x; 2.x with a DBRP mapping; 3.x)."""

    def __init__(self, writer: InfluxV1Writer, retention_policy: str | None = None) -> None:
        self._writer = writer
        self._rp = retention_policy

    async def buckets(self, query: HistoryQuery) -> list[Bucket]:
        """One InfluxQL query with the writer's timeout; a database not created yet holds nothing."""
        try:
            answer = await self._writer.query(influxql(query, self._rp))
        except StoreRejected as exc:
            if "database not found" in str(exc):
                return []
            raise StoreUnavailable(str(exc)) from exc
        return [bucket for result in answer.get("results", []) for bucket in _influx_buckets(result)]

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._writer.aclose()


def _influx_buckets(result: dict[str, Any]) -> list[Bucket]:
    found = []
    for series in result.get("series", []):
        for ts, mean, low, high, count in series.get("values", []):
            if mean is None or not count:
                continue  # only text or quality in that step: nothing numeric to show
            found.append(Bucket(start_ms=int(ts), mean=float(mean), min=float(low), max=float(high), count=int(count)))
    return found


def influx_history(
    url: str, *, database: str, retention_policy: str | None = None, timeout_s: float = 10.0, **auth: Any
) -> InfluxHistory:
    """A reader on its own HTTP client (never the writer's, so a slow query cannot hold up ingest)."""
    writer = InfluxV1Writer(url, database=database, timeout_s=timeout_s, create_database=False, **auth)
    return InfluxHistory(writer, retention_policy)


def history_for(settings: HubSettings, store: object) -> HistoryReader:
    """The reader of the store a hub with ``settings`` writes to (``store``: its TimeSeriesStore)."""
    sqlite = getattr(store, "sqlite", None)  # hub.storage.store.EmbeddedStore
    influx = settings.influx
    if isinstance(sqlite, SqliteStore):
        return SqliteHistory(sqlite, timeout_s=influx.timeout_s)
    assert influx.url is not None, "a hub without InfluxDB has the embedded store"
    # With api v2, InfluxQL goes through the v1 compatibility API: the bucket needs a DBRP mapping.
    database = influx.bucket if influx.api == "v2" and influx.bucket else influx.db
    return influx_history(
        influx.url, database=database, retention_policy=influx.rp, timeout_s=influx.timeout_s,
        username=influx.username, password=influx.password, token=influx.token,
    )  # fmt: skip
