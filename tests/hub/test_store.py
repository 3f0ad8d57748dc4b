"""The InfluxDB store: spool across restarts, batches InfluxDB refuses, and the v2 API's request."""

from __future__ import annotations

import asyncio
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from services import InfluxDBServer

from hub.metrics import HubMetrics
from hub.storage.influx import InfluxV1Writer, InfluxV2Writer
from hub.storage.lineprotocol import Point
from hub.storage.spool import Spool
from hub.storage.store import ENCODE_SLICE, InfluxStore


def points(n: int, base: int = 1_790_000_000_000) -> list[Point]:
    tags = (("device", "ups-01"), ("kind", "ups"), ("point", "battery.charge"), ("site", "cjt"))
    return [Point(measurement="battery", tags=tags, fields=(("value", float(i)),), ts_ms=base + i) for i in range(n)]


def store_for(influxdb: InfluxDBServer, db: str, spool_path: Path, metrics: HubMetrics) -> InfluxStore:
    writer = InfluxV1Writer(influxdb.url, database=db, timeout_s=2)
    return InfluxStore(writer, Spool(spool_path), metrics, retry_initial_s=0.1, retry_max_s=0.5)


async def drained(store: InfluxStore, timeout_s: float = 5.0) -> None:
    """Wait until the store's drain task has emptied the spool."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while store.spool.depth.batches and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110 (no event)
        await asyncio.sleep(0.05)
    assert store.spool.depth.batches == 0, "spool not drained"


def count(influxdb: InfluxDBServer, db: str) -> int:
    series = influxdb.query('SELECT count("value") FROM "battery"', db=db)["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


async def test_spool_survives_a_hub_restart_and_drains_in_order(tmp_path: Path, fresh_influxdb: InfluxDBServer) -> None:
    db = f"spool_{uuid.uuid4().hex[:8]}"
    fresh_influxdb.stop()
    metrics = HubMetrics()
    store = store_for(fresh_influxdb, db, tmp_path / "spool.sqlite", metrics)
    await store.open()
    for start in range(0, 30, 10):
        await store.write(points(10, 1_790_000_000_000 + start))
    assert store.spool.depth.batches == 3
    await store.aclose()  # the hub stops with InfluxDB still down

    fresh_influxdb.start()
    metrics = HubMetrics()
    store = store_for(fresh_influxdb, db, tmp_path / "spool.sqlite", metrics)
    await store.open()
    assert store.spool.depth.points == 30
    drain = asyncio.create_task(store.run())
    await drained(store)
    drain.cancel()
    await store.aclose()
    assert count(fresh_influxdb, db) == 30
    assert metrics.registry.get_sample_value("cityhub_hub_points_written_total") == 30


async def test_batch_refused_by_influxdb_is_counted_not_retried_forever(
    tmp_path: Path, influxdb: InfluxDBServer
) -> None:
    db = f"conflict_{uuid.uuid4().hex[:8]}"
    influxdb.create_database(db)
    # Someone wrote a string "value" into the series first: the hub's float points now conflict.
    influxdb.write(db, 'battery,device=ups-01,kind=ups,point=battery.charge,site=cjt value="full" 1790000000000')
    metrics = HubMetrics()
    store = store_for(influxdb, db, tmp_path / "spool.sqlite", metrics)
    await store.open()
    await store.write(points(5, 1_790_000_000_001))
    assert store.spool.depth.batches == 0
    sample = metrics.registry.get_sample_value
    assert sample("cityhub_hub_points_rejected_by_store_total") == 5
    assert sample("cityhub_hub_store_errors_total", {"kind": "rejected"}) == 1
    await store.write([Point(measurement="other", tags=(), fields=(("value", 1.0),), ts_ms=1_790_000_000_000)])
    assert sample("cityhub_hub_points_written_total") == 1  # the store keeps working
    await store.aclose()


class _Recorder(BaseHTTPRequestHandler):
    requests: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append((self.path, dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def test_v2_writer_sends_token_org_bucket_and_millisecond_precision() -> None:
    """Debian ships InfluxDB 1.6, which has no /api/v2/write: this is the one seam checked on a recorder."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        writer = InfluxV2Writer(f"http://127.0.0.1:{server.server_port}", token="s3cret", org="cjt", bucket="b")
        await writer.write_lines(b"battery,site=cjt value=1.0 1790000000000\n")
        await writer.aclose()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    path, headers, body = _Recorder.requests[-1]
    assert path.startswith("/api/v2/write?")
    assert {"org=cjt", "bucket=b", "precision=ms"} <= set(path.split("?", 1)[1].split("&"))
    assert headers["Authorization"] == "Token s3cret"
    assert body == b"battery,site=cjt value=1.0 1790000000000\n"


async def test_full_spool_holds_the_stream_instead_of_dropping(tmp_path: Path, fresh_influxdb: InfluxDBServer) -> None:
    db = f"full_{uuid.uuid4().hex[:8]}"
    fresh_influxdb.stop()
    metrics = HubMetrics()
    writer = InfluxV1Writer(fresh_influxdb.url, database=db, timeout_s=2)
    store = InfluxStore(
        writer, Spool(tmp_path / "spool.sqlite"), metrics, retry_initial_s=0.1, retry_max_s=0.3, spool_max_bytes=1_500
    )
    await store.open()
    drain = asyncio.create_task(store.run())
    await store.write(points(10))  # about 1 kB: fits
    second = asyncio.create_task(store.write(points(10, 1_790_000_001_000)))
    await asyncio.sleep(1.0)
    assert not second.done()  # held: the hub would not acknowledge these messages
    assert store.spool.depth.batches == 1
    await asyncio.to_thread(fresh_influxdb.start)
    await asyncio.wait_for(second, 20)
    await drained(store)
    drain.cancel()
    await store.aclose()
    assert count(fresh_influxdb, db) == 20


async def test_an_unencodable_point_is_dropped_alone(tmp_path: Path, influxdb: InfluxDBServer) -> None:
    db = f"lenient_{uuid.uuid4().hex[:8]}"
    metrics = HubMetrics()
    store = store_for(influxdb, db, tmp_path / "spool.sqlite", metrics)
    await store.open()
    broken = Point(measurement="battery\nx", tags=(), fields=(("value", 1.0),), ts_ms=1_790_000_000_000)
    await store.write([*points(3), broken])
    await store.aclose()
    assert count(influxdb, db) == 3
    assert metrics.registry.get_sample_value("cityhub_hub_points_rejected_by_store_total") == 1


async def test_a_batch_of_several_slices_is_written_whole_but_its_unencodable_point(
    tmp_path: Path, influxdb: InfluxDBServer
) -> None:
    # The store encodes a slice of points per loop turn; the slices must make one body, in order.
    db = f"sliced_{uuid.uuid4().hex[:8]}"
    metrics = HubMetrics()
    store = store_for(influxdb, db, tmp_path / "spool.sqlite", metrics)
    await store.open()
    good = points(2 * ENCODE_SLICE + 500)
    broken = Point(measurement="battery\nx", tags=(), fields=(("value", 1.0),), ts_ms=1_790_000_000_000)
    await store.write([*good[: ENCODE_SLICE + 7], broken, *good[ENCODE_SLICE + 7 :]])
    await store.aclose()
    assert count(influxdb, db) == len(good)
    assert metrics.registry.get_sample_value("cityhub_hub_points_rejected_by_store_total") == 1
    last = influxdb.query('SELECT last("value") FROM "battery"', db=db)["results"][0]["series"][0]["values"][0][1]
    assert last == float(len(good) - 1)
