"""Sustained ingest rate of the hub into a real InfluxDB, side by side with two baselines.

Run ``.venv/bin/python bench/ingest.py`` (``--help`` for the knobs; ``--profile`` adds a profiled hub round).

What is measured
================
A private Mosquitto 2.x and a private InfluxDB 1.x (``tests/services.py``) are started in a temporary
directory. ``--messages`` telemetry messages (default 20,000) from ``--devices`` devices (default 50) with
``--readings`` readings each (default 10, so 200,000 readings) are built once, before any measurement, with
the contract's pydantic models: timestamps are recent, one second apart per device, so no two readings
share a series and a timestamp; ``seq`` grows by one per device.

Each round runs three measurements (four with the diagnostic ``drain``), in an order that rotates from round
to round so that a slow drift of the machine does not always hit the same one:

``bare``
    A bare paho-mqtt client (MQTT 5, clean start, QoS 1 subscription, paho's automatic PUBACK, the same
    receive maximum as the hub) subscribes, waits for its SUBACK, then the publisher floods the stream; the
    client only counts messages. Rate = messages / (last message received - first PUBLISH sent).
``hub``
    A ``hub.service.Hub`` (``tests/hubtools.running_hub``, InfluxDB v1 output, a fresh database) runs in this
    process's event loop. One warm-up message goes through it first (it proves the hub's subscription is
    active, creates the database and the shard, and opens the HTTP connection); then the publisher floods
    the stream. Rate = messages (readings) / (moment ``cityhub_hub_points_written_total`` reaches the
    expected total - first PUBLISH sent). The database is then counted to check every point arrived.
``raw``
    The same readings, mapped with ``hub.ingest.telemetry_points`` and encoded with
    ``hub.storage.lineprotocol.encode_points`` beforehand, are POSTed with httpx to ``/write`` of a fresh
    database, sequentially, in batches of ``--raw-batch-points`` (default: the hub's ``batch_max_points``),
    after one warm-up write. Rate = readings / (last response - first request). This is the ceiling: only
    the HTTP writing, with no MQTT, no validation, no mapping, no encoding.

``drain`` (diagnostic; ``--no-drain`` skips it)
    The hub's persistent session is created (warm-up), the hub stops, the publisher floods the stream into
    the broker's queue for that session, and only then a hub starts again with the same session and drains
    it: timed from just before the hub is built to the last point written. No publisher competes for the
    CPU, so this tells whether the live hub figure is limited by the hub or by the machine's load.

Ratios: hub msgs/s / bare msgs/s (target >= 0.6) and hub readings/s / raw readings/s (target >= 0.8), each
the ratio of the medians over ``--rounds`` rounds (default 3); per-round ratios are printed as well. A
second table explains the hub's figure: CPU seconds of the event-loop thread and of the other threads
(``/proc/self/task``), time in the garbage collector (``gc.callbacks``), how long the loop awaited
``session.receive`` (input) and ``writer.write_lines`` (InfluxDB) -- measured by wrapping those two methods
on the hub's instances, the hub's code is untouched -- and the mean points per flushed batch.

The publisher
=============
A separate process (``multiprocessing``, spawn), so it does not share the GIL with the consumer being
measured. It drives paho-mqtt 2.x without a network thread (``publish`` writes directly; ``loop(0)`` every
64 messages reads the PUBACKs), QoS 1, at most 1,000 messages in flight, to a topic root unique to each
measurement. It reports when it sent its first PUBLISH and when the last PUBACK came back, on
``time.monotonic`` (CLOCK_MONOTONIC, the same clock in every process), so both consumers are timed from the
same kind of event.

Why the bare baseline gets a round of its own (alternating), not a concurrent subscription
===========================================================================================
The machine has two cores shared by the publisher, Mosquitto, InfluxDB and the consumer. A bare client
subscribed during the hub's round would take CPU from the hub (and from InfluxDB) and make the hub look
slower than it is, and the broker would fan every message out twice. With alternating rounds each consumer
sees the same payloads, the same publisher and the same broker, alone; the only difference left is what we
want to see: the work of validating, mapping, encoding, writing and acknowledging. The raw round likewise
runs with no publisher, so it is the undisturbed write ceiling.

Caveats
=======
* The hub is timed end to end: its last partial batch waits up to ``ingest.flush_interval_s`` (0.2 s here,
  as in ``tests/hubtools.hub_settings``; the production default is 1 s) before it is written.
* ``hub_settings`` gives InfluxDB a 2 s timeout for tests; the bench restores the production default (10 s)
  unless ``--influx-timeout`` says otherwise, so a slow write is not mistaken for an outage and spooled.
* The profiled round (``--profile``) is not part of the medians: cProfile slows the loop thread down about
  twofold, and more for code made of many small Python calls, so read its proportions, not its times.
  cProfile sees one thread: the listings are the event-loop thread during the flood, plus the hub's paho
  network thread over the hub's whole life (time in ``recv``/``send`` there is mostly waiting for the GIL).
* The bench process holds the workload while the hub runs in it, but its (int, bytes) tuples and bytes
  bodies are not tracked by the garbage collector (about 65,000 tracked objects either way, nearly all the
  imports'), so the collector's figures are those of a standalone hub.
* Type-check with ``MYPYPATH=tests .venv/bin/mypy --strict bench/ingest.py`` (it imports tests' helpers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import multiprocessing
import os
import pstats
import random
import sys
import sysconfig
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import benchlib
import httpx
import paho.mqtt.client as paho
from benchlib import REPO, mark, median, num, table_row, thread_cpu_seconds
from hubtools import hub_settings, running_hub
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client.metrics import MetricWrapperBase
from services import InfluxDBServer, MosquittoServer

from cityhub.contract import MessageKind, Reading, TelemetryMessage, Topics
from hub.config import HubSettings
from hub.ingest import telemetry_points
from hub.service import Hub, tune_runtime
from hub.storage.lineprotocol import Point, encode_points

SITE = "bench-site"
BOOT = 1_700_000_000_000
PUBLISHER_INFLIGHT = 1_000
TARGET_BARE = 0.6
TARGET_RAW = 0.8

#: metric, unit, typical value, spread: ten metrics in three families (three InfluxDB measurements).
METRICS: list[tuple[str, str, float, float]] = [
    ("environment.temperature", "Cel", 21.0, 4.0),
    ("environment.humidity", "%", 45.0, 15.0),
    ("environment.pressure", "hPa", 1013.0, 10.0),
    ("environment.co2", "ppm", 600.0, 300.0),
    ("power.voltage", "V", 230.0, 5.0),
    ("power.current", "A", 12.0, 8.0),
    ("power.active", "W", 2_500.0, 1_500.0),
    ("power.energy", "kWh", 15_000.0, 5_000.0),
    ("battery.charge", "%", 90.0, 10.0),
    ("battery.runtime", "s", 1_800.0, 600.0),
]


# -- the workload --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Workload:
    """The messages of one flood (identical in every round) and the raw baseline's pre-encoded bodies."""

    devices: list[str]
    #: (device index, JSON payload), in publishing order.
    messages: list[tuple[int, bytes]]
    readings_per_message: int
    first_ts: int
    raw_bodies: list[bytes] = field(default_factory=list)

    @property
    def total_readings(self) -> int:
        return len(self.messages) * self.readings_per_message

    @property
    def payload_bytes(self) -> int:
        return sum(len(payload) for _, payload in self.messages)


def make_workload(messages: int, devices: int, readings: int, seed: int = 1) -> Workload:
    """``messages`` telemetry payloads round-robin over ``devices``, ``readings`` readings each."""
    if not 1 <= readings <= len(METRICS) * 100:
        raise SystemExit(f"--readings must be between 1 and {len(METRICS) * 100}")
    rng = random.Random(seed)
    names = [f"dev-{i:04d}" for i in range(devices)]
    specs = [
        (metric if i < len(METRICS) else f"{metric}_{i // len(METRICS)}", unit, mid, spread)
        for i, (metric, unit, mid, spread) in ((i, METRICS[i % len(METRICS)]) for i in range(readings))
    ]
    per_device = -(-messages // devices)
    # Recent, in the past (the hub refuses readings more than 5 min ahead or 30 days behind), 1 s apart.
    first_ts = (int(time.time()) - per_device - 3_600) * 1_000
    out: list[tuple[int, bytes]] = []
    for i in range(messages):
        device, k = i % devices, i // devices
        ts = first_ts + k * 1_000
        message = TelemetryMessage(
            device=names[device],
            site=SITE,
            kind="bench_sensor",
            boot=BOOT,
            seq=k + 1,
            readings=[
                Reading(metric=metric, value=round(mid + rng.uniform(-spread, spread), 3), unit=unit, ts=ts)
                for metric, unit, mid, spread in specs
            ],
        )
        out.append((device, message.model_dump_json(exclude_defaults=True).encode()))
    return Workload(devices=names, messages=out, readings_per_message=readings, first_ts=first_ts)


def encode_raw_bodies(workload: Workload, batch_points: int) -> list[bytes]:
    """The readings as the hub maps them, in line-protocol bodies of ``batch_points`` points."""
    points: list[Point] = []
    for _, payload in workload.messages:
        points.extend(telemetry_points(TelemetryMessage.model_validate_json(payload)))
    return [encode_points(points[i : i + batch_points]) for i in range(0, len(points), batch_points)]


def warmup_payload(ts: int) -> bytes:
    """One single-reading message from a device of its own: proves a subscription works end to end."""
    message = TelemetryMessage(
        device="warmup",
        site=SITE,
        kind="bench_sensor",
        boot=BOOT,
        seq=1,
        readings=[Reading(metric="environment.temperature", value=20.0, unit="Cel", ts=ts)],
    )
    return message.model_dump_json(exclude_defaults=True).encode()


# -- the publisher process -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flood:
    """What the publisher reports about one flood (``time.monotonic`` seconds)."""

    messages: int
    first_publish: float
    last_publish: float
    all_acked: float

    @property
    def rate(self) -> float:
        return self.messages / (self.all_acked - self.first_publish)


def publish_flood(
    host: str,
    port: int,
    root: str,
    devices: Sequence[str],
    messages: Sequence[tuple[int, bytes]],
    client_id: str = "",
) -> Flood:
    """Publish ``messages`` (device index, payload) at QoS 1 as fast as paho goes; return once all are acked."""
    topics = Topics(root)
    device_topics = [topics.device(SITE, device, MessageKind.TELEMETRY) for device in devices]
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id or f"bench-pub-{root}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.max_inflight_messages_set(PUBLISHER_INFLIGHT)
    client.max_queued_messages_set(0)
    acked = 0

    def on_publish(_c: paho.Client, _u: Any, _mid: int, _rc: ReasonCode, _p: Properties | None) -> None:
        nonlocal acked
        acked += 1

    client.on_publish = on_publish
    client.connect(host, port, keepalive=60, clean_start=True)
    deadline = time.monotonic() + 10
    while not client.is_connected():
        client.loop(0.05)
        if time.monotonic() > deadline:
            raise RuntimeError("publisher: no CONNACK within 10 s")
    first = time.monotonic()
    for i, (device, payload) in enumerate(messages):
        client.publish(device_topics[device], payload, qos=1)
        if i & 63 == 63:
            client.loop(0)
    last = time.monotonic()
    deadline = last + 300
    while acked < len(messages):
        client.loop(0.01)
        if time.monotonic() > deadline:
            raise RuntimeError(f"publisher: only {acked} of {len(messages)} PUBACKs after 300 s")
    done = time.monotonic()
    client.disconnect()
    client.loop(0.1)
    return Flood(len(messages), first, last, done)


def publisher_main(conn: Connection, host: str, port: int) -> None:
    """Publisher process: receives the workload once, then floods one topic root per ``a topic root``."""
    devices, messages = conn.recv()
    while True:
        command = conn.recv()
        if command is None:
            return
        try:
            report = publish_flood(host, port, command, devices, messages)
        except Exception as exc:  # report, do not die silently: the parent is waiting
            conn.send(("error", repr(exc)))
        else:
            conn.send(("ok", (report.messages, report.first_publish, report.last_publish, report.all_acked)))


class Publisher:
    """The parent's handle on the publisher process."""

    def __init__(self, mosquitto: MosquittoServer, workload: Workload) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=publisher_main, args=(child, mosquitto.host, mosquitto.port), name="bench-publisher", daemon=True
        )
        self._process.start()
        child.close()
        self._conn.send((workload.devices, workload.messages))

    def start(self, root: str) -> None:
        """Start a flood to ``root`` (returns at once)."""
        self._conn.send(root)

    def result(self, timeout_s: float = 300) -> Flood:
        """Wait for the flood's report."""
        if not self._conn.poll(timeout_s):
            raise RuntimeError(f"publisher did not report within {timeout_s} s")
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"publisher failed: {value}")
        messages, first, last, acked = value
        return Flood(int(messages), float(first), float(last), float(acked))

    def close(self) -> None:
        """Stop the process."""
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)


# -- the three measurements ----------------------------------------------------------------------------


@dataclass(slots=True)
class Measurement:
    """One measurement of one round."""

    name: str
    messages: int
    readings: int
    seconds: float
    ok: bool = True
    note: str = ""
    publisher_rate: float | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds if self.ok and self.messages else float("nan")

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.seconds if self.ok else float("nan")


@dataclass(slots=True)
class Bench:
    """Everything the rounds share."""

    args: argparse.Namespace
    workdir: Path
    mosquitto: MosquittoServer
    influx: InfluxDBServer
    workload: Workload
    publisher: Publisher
    run_id: str = field(default_factory=lambda: f"{os.getpid():x}{int(time.time()) % 100_000:05d}")

    def root(self, name: str, round_no: int) -> str:
        return f"bench{self.run_id}{name}{round_no}"


def measure_bare(bench: Bench, round_no: int) -> Measurement:
    """A paho client that only counts the flood (MQTT 5, clean start, QoS 1, automatic PUBACK)."""
    n = len(bench.workload.messages)
    root = bench.root("bare", round_no)
    done = threading.Event()
    subscribed = threading.Event()
    connected = threading.Event()
    state = {"count": 0, "last": 0.0}

    def on_connect(client: paho.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Properties | None) -> None:
        if not rc.is_failure:
            connected.set()

    def on_subscribe(_c: paho.Client, _u: Any, _mid: int, _rcs: list[ReasonCode], _p: Properties | None) -> None:
        subscribed.set()

    def on_message(_c: paho.Client, _u: Any, _m: paho.MQTTMessage) -> None:
        count = state["count"] + 1
        state["count"] = count
        if count >= n:
            state["last"] = time.monotonic()
            done.set()

    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"bench-bare-{root}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.ReceiveMaximum = bench.args.receive_maximum
    client.connect(bench.mosquitto.host, bench.mosquitto.port, keepalive=60, clean_start=True, properties=properties)
    client.loop_start()
    try:
        if not connected.wait(10):
            raise RuntimeError("bare subscriber: no CONNACK")
        client.subscribe(Topics(root).subscription(MessageKind.TELEMETRY), qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("bare subscriber: no SUBACK")
        bench.publisher.start(root)
        finished = done.wait(bench.args.timeout)
        flood = bench.publisher.result()
    finally:
        client.disconnect()
        client.loop_stop()
    if not finished:
        return Measurement("bare", n, 0, float("nan"), ok=False, note=f"received {state['count']} of {n}")
    return Measurement("bare", n, 0, state["last"] - flood.first_publish, publisher_rate=flood.rate)


def _samples(metric: MetricWrapperBase, suffix: str) -> float:
    """Sum of one metric's samples whose name ends with ``suffix`` (all label values)."""
    return float(sum(s.value for family in metric.collect() for s in family.samples if s.name.endswith(suffix)))


def _counter(hub: Hub) -> float:
    # One collector's collect() is much cheaper than the registry-wide lookup of hubtools.metric_value.
    return _samples(hub.metrics.points_written, "_total")


def _histogram_mean(hub: Hub) -> float:
    count = _samples(hub.metrics.batch_points, "_count")
    return _samples(hub.metrics.batch_points, "_sum") / count if count else float("nan")


class GcTimer:
    """Time spent in the cyclic garbage collector, by generation, while enabled (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = info["generation"]
            self.seconds[generation] += time.perf_counter() - self._started
            self.collections[generation] += 1

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self._callback)


@dataclass(slots=True)
class ThreadProfiles:
    """cProfile of the event-loop thread (the flood only) and of the hub's paho network thread."""

    loop: cProfile.Profile = field(default_factory=cProfile.Profile)
    network: list[cProfile.Profile] = field(default_factory=list)


@contextlib.contextmanager
def profiling_paho_threads(profiles: ThreadProfiles) -> Iterator[None]:
    """Profile every paho network thread started in the block (the hub's): cProfile is per thread."""
    original: Callable[[paho.Client], None] = paho.Client._thread_main

    def profiled(self: paho.Client) -> None:
        profiler = cProfile.Profile()
        profiles.network.append(profiler)
        profiler.enable()
        try:
            original(self)
        finally:
            profiler.disable()

    paho.Client._thread_main = profiled  # type: ignore[method-assign]
    try:
        yield
    finally:
        paho.Client._thread_main = original  # type: ignore[method-assign, assignment]


def _hub_settings(bench: Bench, root: str) -> HubSettings:
    args = bench.args
    settings = hub_settings(
        bench.workdir,
        bench.mosquitto.url,
        influx=bench.influx,
        db=f"{root}_db",
        client_id=f"bench-hub-{root}",
        mqtt={"topic_root": root, "receive_maximum": args.receive_maximum},
        ingest={
            "batch_max_messages": args.batch_max_messages,
            "batch_max_points": args.batch_max_points,
            "flush_interval_s": args.flush_interval,
        },
    )
    settings.influx = settings.influx.model_copy(update={"timeout_s": args.influx_timeout})
    return settings


async def _warm_up(bench: Bench, hub: Hub, root: str) -> None:
    """Get one message through the hub: its subscription is active, the database and the shard exist.

    The hub subscribes from its CONNACK callback and does not wait for the SUBACK, so ``ready`` does not
    mean subscribed: resend the warm-up until it is written (a duplicate is dropped by the sequence window).
    """
    warmup = warmup_payload(bench.workload.first_ts - 1_000)
    host, port = bench.mosquitto.host, bench.mosquitto.port
    deadline = time.monotonic() + 30
    while _counter(hub) < 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the hub did not store the warm-up message within 30 s")
        await asyncio.to_thread(publish_flood, host, port, root, ["warmup"], [(0, warmup)], f"warmup-{root}")
        for _ in range(100):
            if _counter(hub) >= 1:
                break
            await asyncio.sleep(0.01)
    await asyncio.sleep(bench.args.flush_interval + 0.3)


def _time_awaits(obj: object, method: str, totals: dict[str, float], key: str) -> None:
    """Wrap ``obj.method`` (a coroutine method) on the instance: add the wall time of each await to ``totals[key]``.

    Harness instrumentation only (the hub's code is untouched): ``session.receive`` tells how long the event
    loop waited for input from the network thread, ``writer.write_lines`` how long it waited for InfluxDB.
    """
    original: Callable[..., Awaitable[Any]] = getattr(obj, method)

    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - started

    setattr(obj, method, timed)


@dataclass(slots=True)
class Watch:
    """How a hub round ended."""

    finished: bool
    end: float
    written: float
    extra: dict[str, float]


async def _watch_hub(
    bench: Bench, hub: Hub, expected: float, start: Callable[[], None], profiles: ThreadProfiles | None
) -> Watch:
    """Call ``start``, then poll until the hub has written ``expected`` points; collect diagnostics."""
    waits = {"receive": 0.0, "write": 0.0}
    _time_awaits(hub.session, "receive", waits, "receive")
    writer = getattr(hub.store, "writer", None)
    if writer is not None:
        _time_awaits(writer, "write_lines", waits, "write")
    gc.collect()
    if profiles is not None:
        profiles.loop.enable()
    cpu_before, window_start = thread_cpu_seconds(), time.monotonic()
    with GcTimer() as gc_timer:
        start()
        deadline = time.monotonic() + bench.args.timeout
        finished = True
        while (written := _counter(hub)) < expected:
            if time.monotonic() > deadline:
                finished = False
                break
            await asyncio.sleep(0.005)
        end = time.monotonic()
    cpu_after = thread_cpu_seconds()
    if profiles is not None:
        profiles.loop.disable()
    loop_tid = threading.get_native_id()
    cpu_used = {tid: cpu_after[tid] - cpu_before.get(tid, 0.0) for tid in cpu_after}
    metrics = hub.metrics
    extra = {
        "batch_mean_points": _histogram_mean(hub),
        "spooled": _samples(metrics.points_spooled, "_total"),
        "rejected": _samples(metrics.messages_rejected, "_total"),
        "duplicates": _samples(metrics.duplicates_dropped, "_total"),
        "gc_seconds": sum(gc_timer.seconds),
        "gc_full_seconds": gc_timer.seconds[2],
        "gc_full_collections": float(gc_timer.collections[2]),
        "window_s": end - window_start,
        "loop_cpu_s": cpu_used.get(loop_tid, 0.0),
        "other_cpu_s": sum(v for tid, v in cpu_used.items() if tid != loop_tid),
        "receive_wait_s": waits["receive"],
        "write_wait_s": waits["write"],
    }
    return Watch(finished, end, written, extra)


def _finish(
    bench: Bench, name: str, db: str, watch: Watch, expected: float, started: float, flood: Flood | None
) -> Measurement:
    """Check the database, drop it, and turn the watch into a measurement."""
    workload = bench.workload
    n, readings = len(workload.messages), workload.total_readings
    stored = stored_points(bench.influx, db)
    with contextlib.suppress(RuntimeError):
        bench.influx.drop_database(db)
    if not watch.finished:
        note = f"points written {watch.written:.0f} of {expected:.0f} after {bench.args.timeout} s"
        return Measurement(name, n, readings, float("nan"), ok=False, note=note, extra=watch.extra)
    ok = stored == readings + 1
    note = "" if ok else f"InfluxDB holds {stored} points, expected {readings + 1}"
    rate = flood.rate if flood else None
    return Measurement(name, n, readings, watch.end - started, ok, note, rate, watch.extra)


async def _hub_round(bench: Bench, round_no: int, profiles: ThreadProfiles | None) -> Measurement:
    root = bench.root("hub", round_no)
    settings = _hub_settings(bench, root)
    async with running_hub(settings) as hub:
        await _warm_up(bench, hub, root)
        expected = _counter(hub) + bench.workload.total_readings
        watch = await _watch_hub(bench, hub, expected, lambda: bench.publisher.start(root), profiles)
        flood = bench.publisher.result()
    name = "hub" if profiles is None else "hub (profiled)"
    return _finish(bench, name, settings.influx.db, watch, expected, flood.first_publish, flood)


def measure_hub(bench: Bench, round_no: int, profiles: ThreadProfiles | None = None) -> Measurement:
    """The hub in this process's event loop, timed from the first PUBLISH to the last point written."""
    if profiles is None:
        return asyncio.run(_hub_round(bench, round_no, None))
    with profiling_paho_threads(profiles):
        return asyncio.run(_hub_round(bench, round_no, profiles))


async def _drain_round(bench: Bench, round_no: int) -> Measurement:
    root = bench.root("drain", round_no)
    settings = _hub_settings(bench, root)
    async with running_hub(settings) as hub:
        await _warm_up(bench, hub, root)  # creates the persistent session and its subscription
    # The hub is gone; its session stays (session expiry), so the broker queues the whole flood for it.
    bench.publisher.start(root)
    flood = await asyncio.to_thread(bench.publisher.result)
    started = time.monotonic()
    async with running_hub(settings) as hub:
        expected = float(bench.workload.total_readings)
        watch = await _watch_hub(bench, hub, expected, lambda: None, None)
    return _finish(bench, "drain", settings.influx.db, watch, expected, started, flood)


def measure_drain(bench: Bench, round_no: int) -> Measurement:
    """The hub restarted on a broker queue that already holds the whole flood: no publisher competes for CPU.

    Timed from just before the hub is constructed (so its start-up counts against it) to the last point
    written. A diagnostic, not one of the issue's two ratios.
    """
    return asyncio.run(_drain_round(bench, round_no))


def stored_points(influx: InfluxDBServer, db: str) -> int:
    """How many points with a ``value`` field the database holds, over all measurements."""
    answer = influx.query('SELECT count("value") FROM /.*/', db=db)
    return sum(int(s["values"][0][1]) for s in answer["results"][0].get("series", []))


def measure_raw(bench: Bench, round_no: int) -> Measurement:
    """Pre-encoded bodies POSTed sequentially to /write: the InfluxDB write ceiling."""
    workload, influx = bench.workload, bench.influx
    db = f"{bench.root('raw', round_no)}_db"
    influx.create_database(db)
    params = {"db": db, "precision": "ms"}
    warmup = f"environment,device=warmup,site={SITE} value=20.0 {workload.first_ts - 1_000}\n".encode()
    with httpx.Client(base_url=influx.url, timeout=bench.args.influx_timeout) as client:
        client.post("/write", params=params, content=warmup).raise_for_status()
        gc.collect()
        start = time.monotonic()
        for body in workload.raw_bodies:
            response = client.post("/write", params=params, content=body)
            if response.status_code != 204:
                raise RuntimeError(f"raw write: HTTP {response.status_code}: {response.text[:300]}")
        end = time.monotonic()
    stored = stored_points(influx, db)
    with contextlib.suppress(RuntimeError):
        influx.drop_database(db)
    ok = stored == workload.total_readings + 1
    note = "" if ok else f"InfluxDB holds {stored} points, expected {workload.total_readings + 1}"
    return Measurement("raw", len(workload.messages), workload.total_readings, end - start, ok=ok, note=note)


# -- reporting -----------------------------------------------------------------------------------------


def bench_readings(m: Measurement) -> int:
    """Readings per message of a measurement."""
    return m.readings // m.messages if m.messages else 1


def print_results(rounds: list[dict[str, Measurement]]) -> None:
    """The per-round table, the medians, the two ratios against their targets, then the hub's diagnostics."""
    widths = (6, 11, 10, 11, 11, 8, 7)
    titles = ("round", "bare msg/s", "hub msg/s", "hub rdg/s", "raw rdg/s", "hub/bare", "hub/raw")
    header = table_row(list(zip(titles, widths, strict=True)))
    print(header)
    print("-" * len(header))
    keys = ("bare", "hub_m", "hub_r", "raw", "rb", "rr")
    columns: dict[str, list[float]] = {key: [] for key in keys}
    for index, result in enumerate(rounds, 1):
        bare, hub, raw = result["bare"], result["hub"], result["raw"]
        values = (
            bare.msgs_per_s,
            hub.msgs_per_s,
            hub.readings_per_s,
            raw.readings_per_s,
            hub.msgs_per_s / bare.msgs_per_s,
            hub.readings_per_s / raw.readings_per_s,
        )
        for key, value in zip(keys, values, strict=True):
            columns[key].append(value)
        texts = [str(index), *(num(v) for v in values[:4]), *(num(v, 2) for v in values[4:])]
        print(table_row(list(zip(texts, widths, strict=True))))
        for m in (bare, hub, raw):
            if m.note:
                print(f"{'':>6} ! {m.name}: {m.note}")
            if m.extra.get("spooled") or m.extra.get("rejected") or m.extra.get("duplicates"):
                print(f"{'':>6} ! {m.name}: spooled/rejected/duplicates: {m.extra}")
    med = {key: median(values) for key, values in columns.items()}
    print("-" * len(header))
    texts = ["median", *(num(med[k]) for k in keys[:4]), *(num(med[k], 2) for k in keys[4:])]
    print(table_row(list(zip(texts, widths, strict=True))))
    ratio_bare = med["hub_m"] / med["bare"]
    ratio_raw = med["hub_r"] / med["raw"]
    print()
    print(
        f"hub msgs/s     / bare subscriber msgs/s = {num(ratio_bare, 3)}  (target >= {TARGET_BARE})  "
        f"{mark(ratio_bare, TARGET_BARE)}"
    )
    print(
        f"hub readings/s / raw POST readings/s    = {num(ratio_raw, 3)}  (target >= {TARGET_RAW})  "
        f"{mark(ratio_raw, TARGET_RAW)}"
    )
    print("(ratios of the medians; the hub/bare and hub/raw columns are the per-round ratios)")
    per_message = bench_readings(rounds[0]["hub"])
    stream = med["bare"] * per_message / med["raw"]
    ceiling = "; hub/raw cannot exceed that unless the hub outruns a bare subscriber" if stream < 1 else ""
    print(
        f"context: the MQTT stream itself (bare subscriber) carries {num(med['bare'] * per_message)} readings/s "
        f"= {num(stream, 3)} x raw POST{ceiling}"
    )
    drains = [r["drain"] for r in rounds if "drain" in r]
    if drains:
        drain_rate = median([d.readings_per_s for d in drains])
        print(
            f"diagnostic: hub draining a pre-filled broker queue (no publisher running): median "
            f"{num(drain_rate / bench_readings(drains[0]))} msg/s, {num(drain_rate)} readings/s "
            f"= {num(drain_rate / med['raw'], 3)} x raw POST, {num(drain_rate / med['hub_r'], 2)} x live hub"
        )

    print()
    diag_widths = (6, 7, 7, 7, 7, 10, 9, 10, 10, 10, 10, 10, 9)
    diag_titles = (
        "round", "bare s", "hub s", "raw s", "drain s", "pub msg/s", "pub@hub", "loop CPU", "net CPU", "GC s",
        "recv wait", "write wait", "hub batch",
    )  # fmt: skip
    header = table_row(list(zip(diag_titles, diag_widths, strict=True)))
    print(header)
    print("-" * len(header))
    nan = float("nan")
    for index, result in enumerate(rounds, 1):
        bare, hub, raw = result["bare"], result["hub"], result["raw"]
        drain = result.get("drain")
        x = hub.extra
        window = x.get("window_s", nan)

        def share(key: str, x: dict[str, float] = x, window: float = window) -> str:
            value = x.get(key, nan)
            return f"{num(value, 2)} {value / window:.0%}" if value == value else "-"

        texts = [
            str(index),
            num(bare.seconds, 2),
            num(hub.seconds, 2),
            num(raw.seconds, 2),
            num(drain.seconds, 2) if drain else "-",
            num(bare.publisher_rate or nan),
            num(hub.publisher_rate or nan),
            share("loop_cpu_s"),
            share("other_cpu_s"),
            f"{num(x.get('gc_seconds', nan), 2)} ({x.get('gc_full_collections', nan):.0f})",
            share("receive_wait_s"),
            share("write_wait_s"),
            num(x.get("batch_mean_points", nan)),
        ]
        print(table_row(list(zip(texts, diag_widths, strict=True))))
    print(
        "hub round diagnostics (% = share of the hub round's wall time): pub msg/s / pub@hub: the publisher's own\n"
        "rate (first PUBLISH to last PUBACK) in the bare / hub round; loop CPU: CPU time of the event-loop thread;\n"
        "net CPU: of the process's other threads (the hub's paho network thread); GC s: time in the garbage\n"
        "collector (full collections); recv wait: the loop awaiting session.receive (waiting for input); write wait:\n"
        "awaiting InfluxDB's /write answer; hub batch: mean points per flushed batch (batch_max_points is the cap)."
    )


def print_profiles(profiles: ThreadProfiles, top: int) -> None:
    """Top functions of the event-loop thread by cumulative and by own time; the network thread's by own time."""
    stdlib = sysconfig.get_paths()["stdlib"] + "/"
    prefixes = sorted({str(REPO) + "/", stdlib, *(p + "/" for p in sys.path if p.endswith("site-packages"))}, key=len)

    def show(profile: cProfile.Profile, sort: str, title: str, limit: int) -> None:
        stream = io.StringIO()
        stats = pstats.Stats(profile, stream=stream)
        stats.sort_stats(sort).print_stats(limit)
        text = stream.getvalue()
        for prefix in reversed(prefixes):
            text = text.replace(prefix, "")
        print(f"\n==== {title} ====")
        # Skip pstats' preamble up to the column header.
        lines = text.splitlines()
        start = next((i for i, line in enumerate(lines) if "function calls" in line), 0)
        print("\n".join(line for line in lines[start:] if line.strip()))

    show(profiles.loop, "cumulative", f"event-loop thread, flood only: top {top} by cumulative time", top)
    show(profiles.loop, "tottime", f"event-loop thread, flood only: top {top} by own time (tottime)", top)
    for profile in profiles.network:
        show(profile, "tottime", "hub's paho network thread, whole hub lifetime: top 15 by own time", 15)


# -- main ----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000, help="telemetry messages per flood")
    parser.add_argument("--devices", type=int, default=50, help="devices the messages come from")
    parser.add_argument("--readings", type=int, default=10, help="readings per message")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (0: only the profiled round)")
    parser.add_argument("--profile", action="store_true", help="add a hub round under cProfile and print it")
    parser.add_argument(
        "--no-drain",
        dest="drain",
        action="store_false",
        help="skip the diagnostic round in which the hub drains a broker queue pre-filled with the flood",
    )
    parser.add_argument("--profile-top", type=int, default=25, help="functions per profile listing")
    parser.add_argument("--batch-max-messages", type=int, default=1_000, help="hub ingest.batch_max_messages")
    parser.add_argument("--batch-max-points", type=int, default=5_000, help="hub ingest.batch_max_points")
    parser.add_argument("--flush-interval", type=float, default=0.2, help="hub ingest.flush_interval_s")
    parser.add_argument("--receive-maximum", type=int, default=2_000, help="hub (and bare) MQTT receive maximum")
    parser.add_argument("--raw-batch-points", type=int, default=None, help="raw POST batch (default: hub's)")
    parser.add_argument("--influx-timeout", type=float, default=10.0, help="HTTP timeout for InfluxDB writes")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up on one measurement after this")
    parser.add_argument("--workdir", type=Path, default=None, help="keep servers' files here (default: temp)")
    args = parser.parse_args(argv)
    if args.raw_batch_points is None:
        args.raw_batch_points = args.batch_max_points
    if args.rounds < 0 or args.messages < 1 or args.devices < 1:
        parser.error("--rounds must be >= 0, --messages and --devices >= 1")
    if args.rounds == 0 and not args.profile:
        parser.error("--rounds 0 only makes sense with --profile")
    return args


def run(args: argparse.Namespace, workdir: Path) -> None:
    """Start the servers, build the workload, run the rounds, print."""
    started = time.monotonic()
    print(f"cityhub ingest benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, workdir {workdir}")
    workload = make_workload(args.messages, args.devices, args.readings)
    workload.raw_bodies = encode_raw_bodies(workload, args.raw_batch_points)
    # The process-wide GC policy `cityhub hub` applies (hub.service.tune_runtime), after the workload is
    # built so that it, like a hub's start-up objects, is frozen out of the collector's sight.
    tune_runtime()
    print(
        f"workload: {len(workload.messages):,} messages from {args.devices} devices x {args.readings} readings = "
        f"{workload.total_readings:,} readings, {workload.payload_bytes / len(workload.messages):,.0f} B/message; "
        f"raw baseline: {len(workload.raw_bodies)} bodies of <= {args.raw_batch_points:,} points"
    )
    print(
        f"hub: batch_max_messages={args.batch_max_messages} batch_max_points={args.batch_max_points} "
        f"flush_interval_s={args.flush_interval} receive_maximum={args.receive_maximum} "
        f"influx timeout {args.influx_timeout} s"
    )
    mosquitto = MosquittoServer(workdir / "mosquitto")
    influx = InfluxDBServer(workdir / "influxdb")
    publisher: Publisher | None = None
    try:
        mosquitto.start()
        influx.start()
        publisher = Publisher(mosquitto, workload)
        bench = Bench(args, workdir, mosquitto, influx, workload, publisher)
        measures: dict[str, Callable[[Bench, int], Measurement]] = {
            "bare": measure_bare,
            "hub": measure_hub,
            "raw": measure_raw,
        }
        if args.drain:
            measures["drain"] = measure_drain
        order = list(measures)
        rounds: list[dict[str, Measurement]] = []
        for round_no in range(1, args.rounds + 1):
            shift = (round_no - 1) % len(order)
            result: dict[str, Measurement] = {}
            for name in order[shift:] + order[:shift]:
                result[name] = measures[name](bench, round_no)
                m = result[name]
                rates = [f"{num(m.msgs_per_s)} msg/s"] if name != "raw" else []
                rates += [f"{num(m.readings_per_s)} readings/s"] if name != "bare" else []
                status = "" if m.ok else f"  FAILED: {m.note}"
                print(f"  round {round_no} {name:<5} {num(m.seconds, 2):>6} s  {', '.join(rates)}{status}", flush=True)
            rounds.append(result)
        if rounds:
            print()
            print_results(rounds)
        if args.profile:
            profiles = ThreadProfiles()
            profiled = measure_hub(bench, args.rounds + 1, profiles)
            print(
                f"\nprofiled hub round (not in the medians): {num(profiled.seconds, 2)} s, "
                f"{num(profiled.msgs_per_s)} msg/s, {num(profiled.readings_per_s)} readings/s, "
                f"{num(profiled.extra.get('gc_seconds', float('nan')), 2)} s in the garbage collector"
                + ("" if profiled.ok else f"  FAILED: {profiled.note}")
            )
            print_profiles(profiles, args.profile_top)
    finally:
        if publisher is not None:
            publisher.close()
        influx.close()
        mosquitto.close()
    print(f"\ntotal wall time {time.monotonic() - started:.0f} s")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point."""
    benchlib.main(parse_args, run, argv)


if __name__ == "__main__":
    main()
