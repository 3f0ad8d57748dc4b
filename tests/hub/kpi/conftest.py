"""A small city's hub data, written through the hub's own stores: status points, the registry, alerts.

Period P: 2026-03-02 00:00 to 10:00, Bucharest (UTC+2 then). Transitions, in hours from P's start:

    palace/ups-1        ups           offline -2 (before P), online 1, offline 4, online 5
    palace/cam-1        camera        online -720 (a month before P), nothing since
    park-central/lamp-1 street_light  online 6, offline 8 (a new device)
    park-central/aq-1   air_quality   in the registry only, online since 12 (after P): no data in P
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import pytest
from services import InfluxDBServer

from cityhub.contract import StatusMessage
from hub.alerts.config import AlertsConfig
from hub.alerts.manager import AlertManager, Notice
from hub.alerts.store import AlertStore
from hub.devices import DeviceState, DeviceStates
from hub.ingest import status_point
from hub.kpi.period import Period
from hub.storage.lineprotocol import Point, encode_points
from hub.storage.sqlite_store import SqliteStore
from rules.model import AlertState, Severity, Subject, Transition

H = 3_600_000
P0 = int(dt.datetime(2026, 3, 1, 22, 0, tzinfo=dt.UTC).timestamp() * 1000)  # 2026-03-02T00:00+02:00
PERIOD = Period(start_ms=P0, end_ms=P0 + 10 * H)
FROM, TO = "2026-03-02", "2026-03-02T10:00"  # PERIOD, as people write it

#: (site, device, kind, hours from P0, state)
TRANSITIONS = [
    ("palace", "ups-1", "ups", -2, "offline"),
    ("palace", "ups-1", "ups", 1, "online"),
    ("palace", "ups-1", "ups", 4, "offline"),
    ("palace", "ups-1", "ups", 5, "online"),
    ("palace", "cam-1", "camera", -720, "online"),
    ("park-central", "lamp-1", "street_light", 6, "online"),
    ("park-central", "lamp-1", "street_light", 8, "offline"),
]
#: The registry's last state of each device (what hub.devices keeps).
REGISTRY = [
    ("palace", "ups-1", "ups", 5, "online"),
    ("palace", "cam-1", "camera", -720, "online"),
    ("park-central", "lamp-1", "street_light", 8, "offline"),
    ("park-central", "aq-1", "air_quality", 12, "online"),
]


def status_points(transitions: Iterable[tuple[str, str, str, float, str]]) -> list[Point]:
    """The points the hub's ingest writes for these transitions."""
    points = []
    for site, device, kind, hours, state in transitions:
        ts = P0 + int(hours * H)
        message = StatusMessage(site=site, device=device, kind=kind, state=state, boot=P0 - 1000 * H, ts=ts)
        points.append(status_point(message, ts))
    return points


async def write_sqlite_statuses(data_dir: Path) -> None:
    """TRANSITIONS into the embedded store's file, through the hub's store."""
    store = SqliteStore(data_dir / "timeseries.sqlite")
    await store.open()
    try:
        await store.write(status_points(TRANSITIONS))
    finally:
        await store.aclose()


def write_influx_statuses(influxdb: InfluxDBServer, db: str) -> None:
    """TRANSITIONS into InfluxDB, as the hub's line protocol."""
    influxdb.create_database(db)
    influxdb.write(db, encode_points(status_points(TRANSITIONS)).decode())


async def write_registry(data_dir: Path) -> None:
    """REGISTRY into the hub's device registry."""
    states = DeviceStates(data_dir / "devices.sqlite")
    await states.open()
    try:
        await states.save(
            [
                DeviceState(site=s, device=d, kind=k, boot=1, state=state, since_ms=P0 + int(hours * H))
                for s, d, k, hours, state in REGISTRY
            ]
        )
    finally:
        await states.aclose()


class SimClock:
    """The alert manager's clock, set by the test."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def transition(rule: str, site: str, device: str, kind: str, team: str, state: AlertState, at_ms: int) -> Transition:
    """What the rule engine says when ``rule`` starts or stops firing."""
    return Transition(
        rule=rule, subject=Subject(site=site, device=device), state=state, at_ms=at_ms, severity=Severity.MAJOR,
        team=team, summary=f"{rule} on {site}/{device}", kind=kind,
    )  # fmt: skip


async def write_alerts(data_dir: Path) -> None:
    """Two alerts through the alert manager, into the hub's alert store:

    it      ups.on-battery palace/ups-1   fired P0+1h, acked +60 s by ion, resolved by the rules +300 s
    police  camera.offline palace/cam-1   fired P0+2h, acked +120 s by paula, resolved by paula +600 s
    """
    store = AlertStore(data_dir / "alerts.sqlite")
    await store.open()
    clock = SimClock(P0)
    told: list[Notice] = []
    manager = AlertManager(store, AlertsConfig(), told.append, clock_ms=clock)
    ups = ("ups.on-battery", "palace", "ups-1", "ups", "it")
    cam = ("camera.offline", "palace", "cam-1", "camera", "police")
    try:
        await manager.apply([transition(*ups, AlertState.FIRING, P0 + H)])
        clock.ms = P0 + H + 60_000
        await manager.acknowledge(manager.open_alerts[0].id, "ion", None)
        await manager.apply([transition(*ups, AlertState.RESOLVED, P0 + H + 300_000)])
        await manager.apply([transition(*cam, AlertState.FIRING, P0 + 2 * H)])
        clock.ms = P0 + 2 * H + 120_000
        await manager.acknowledge(manager.open_alerts[0].id, "paula", None)
        clock.ms = P0 + 2 * H + 600_000
        await manager.resolve(manager.open_alerts[0].id, "paula", "replaced the cable")
    finally:
        await store.aclose()
    assert [n.event for n in told] == ["firing", "acknowledged", "resolved"] * 2


@pytest.fixture
async def city(tmp_path: Path) -> Path:
    """A hub data directory (embedded store) holding the small city above."""
    data_dir = tmp_path / "hub-data"
    data_dir.mkdir()
    await write_sqlite_statuses(data_dir)
    await write_registry(data_dir)
    await write_alerts(data_dir)
    return data_dir


def hours(value: float) -> float:
    """Seconds in ``value`` hours (the tables speak seconds)."""
    return value * 3600
