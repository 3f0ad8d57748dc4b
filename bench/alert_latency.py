"""Alert latency and the rules' cost on ingest: the hub with 100 active rules against the hub with none.

Run ``.venv/bin/python bench/alert_latency.py`` (``--help`` for the knobs).

What is measured
================
A private Mosquitto and a private InfluxDB (``tests/services.py``) are started in a temporary folder; the
hub runs in this process (``tests/hubtools.running_hub``), writing to InfluxDB as in production. The
workload is ``bench/ingest.py``'s: ``--messages`` telemetry messages of ``--readings`` readings from 50
devices of kind ``bench_sensor``, published by a separate process at QoS 1.

``ingest`` (rounds alternate, so machine drift hits both alike)
    ``rules=0``: the hub with alerting on and an empty rule set. ``rules=100``: the same hub with 100
    rules that all select every bench device and read its metrics (60 thresholds with hysteresis, 20
    rates of change over 10 minutes, 10 staleness checks, 10 ``any`` combinations of a threshold and a
    state), none of which fires. Rate = readings / (last point written - first PUBLISH). Ratio =
    median(rules=100) / median(rules=0); target >= 0.7.

``latency``
    The hub with the 100 rules plus one trigger rule, fed at half of its measured ``rules=100`` rate by a
    paced publisher process. Every 50th message goes to a new trigger device (``trigger-0001``, ...) whose
    reading crosses the trigger rule's threshold, so every trigger message opens a new alert. (One device
    going up and down would be reopened, then muted by the flapping protection after a few rounds: the
    protection working, not a notification to time.) A subscriber on ``{root}/v1/_hub/alerts/+``, in a
    process of its own as a console or another system would be (in the hub's process its paho thread
    would compete with the hub for the interpreter), timestamps each ``firing`` notification by its
    device; latency = its arrival - that device's PUBLISH (both ``time.monotonic``, the same clock in
    every process). p50, p99 and max over ``--triggers`` alerts; a trigger without its notification is
    reported; target p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import benchlib
import paho.mqtt.client as paho
import yaml
from benchlib import mark, median, num
from hubtools import hub_settings, running_hub
from ingest import BOOT, METRICS, SITE, Publisher, Workload, make_workload, publish_flood, warmup_payload
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from services import InfluxDBServer, MosquittoServer

from cityhub.contract import MessageKind, Reading, TelemetryMessage, Topics
from cityhub.mqtt import set_tcp_nodelay
from hub.config import HubSettings
from hub.service import Hub, tune_runtime

TRIGGER_EVERY = 50


def rule_file(path: Path, count: int, trigger: bool) -> Path:
    """``count`` rules over the bench metrics that never fire, plus the trigger rule if asked."""
    metrics = [metric for metric, *_ in METRICS]
    rules: list[dict[str, Any]] = []
    for i in range(count):
        metric = metrics[i % len(metrics)]
        base = {"id": f"bench.rule-{i:03d}", "summary": "{device} {value}", "severity": "minor", "team": "it",
                "select": {"kind": "bench_sensor"}}  # fmt: skip
        if i < 60:
            when: dict[str, Any] = {"threshold": {"metric": metric, "above": 1e6 + i, "clear_below": 1e6}}
        elif i < 80:
            when = {"rate": {"metric": metric, "rise": 1e6, "window": "10m"}}
        elif i < 90:
            when = {"stale": {"metric": metric, "max_age": "1h"}}
        else:
            when = {
                "any": [{"threshold": {"metric": metric, "below": -1e6}}, {"state": {"metric": metric, "in": [-1]}}]
            }
        rules.append({**base, "for": "1m" if i % 4 == 0 else 0, "when": when})
    if trigger:
        rules.append({
            "id": "bench.trigger", "summary": "{device} crossed {value}", "severity": "critical", "team": "it",
            "select": {"device": "trigger-*"}, "when": {"threshold": {"metric": "bench.trigger", "above": 0.5}},
        })  # fmt: skip
    path.write_text(yaml.safe_dump({"rules": rules}, sort_keys=False), encoding="utf-8")
    return path


def settings_for(args: argparse.Namespace, mosquitto: MosquittoServer, influx: InfluxDBServer, root: str,
                 rules: Path, workdir: Path) -> HubSettings:  # fmt: skip
    """The hub as bench/ingest.py runs it, with ``rules`` as its only rule file."""
    settings = hub_settings(
        workdir, mosquitto.url, influx=influx, db=f"{root}_db", client_id=f"bench-hub-{root}",
        mqtt={"topic_root": root}, alerts={"rules": [str(rules)]},
    )  # fmt: skip
    settings.influx = settings.influx.model_copy(update={"timeout_s": 10.0})
    return settings


def _written(hub: Hub) -> float:
    return hub.metrics.registry.get_sample_value("cityhub_hub_points_written_total") or 0.0


async def _warm_up(hub: Hub, mosquitto: MosquittoServer, root: str, workload: Workload) -> None:
    payload = warmup_payload(workload.first_ts - 1_000)
    async with asyncio.timeout(30):
        while _written(hub) < 1:
            await asyncio.to_thread(publish_flood, mosquitto.host, mosquitto.port, root, ["warmup"], [(0, payload)])
            await asyncio.sleep(0.5)


async def ingest_round(ctx: dict[str, Any], rules: Path, tag: str) -> float:
    """Readings per second of one flood through the hub with ``rules``."""
    root = f"al{ctx['run']}{tag}"
    settings = settings_for(ctx["args"], ctx["mosquitto"], ctx["influx"], root, rules, ctx["workdir"] / root)
    workload: Workload = ctx["workload"]
    async with running_hub(settings) as hub:
        await _warm_up(hub, ctx["mosquitto"], root, workload)
        expected = _written(hub) + workload.total_readings
        ctx["publisher"].start(root)
        async with asyncio.timeout(ctx["args"].timeout):
            while _written(hub) < expected:  # noqa: ASYNC110 (polls the hub's counter)
                await asyncio.sleep(0.005)
        done = time.monotonic()
        flood = ctx["publisher"].result()
    return float(workload.total_readings / (done - flood.first_publish))


# -- the paced publisher (its own process) ----------------------------------------------------------------


def paced_main(conn: Connection, host: str, port: int) -> None:
    """Publish the workload at ``rate`` msgs/s with trigger messages; report the triggers' publish times."""
    root, rate, messages, devices, triggers = conn.recv()
    topics = Topics(root)
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"paced-{root}",
                         protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
    # As an edge agent's session (cityhub.mqtt.SessionOptions.tcp_nodelay): no Nagle delay on its sends.
    client.on_socket_open = set_tcp_nodelay
    client.connect(host, port, keepalive=60, clean_start=True)
    client.loop_start()
    sent: dict[str, float] = {}
    start, k = time.monotonic(), 0
    for i, (device, payload) in enumerate(messages):
        due = start + i / rate
        while (now := time.monotonic()) < due:
            time.sleep(min(due - now, 0.002))
        if i % TRIGGER_EVERY == TRIGGER_EVERY - 1 and k < triggers:
            k += 1
            trigger = f"trigger-{k:04d}"
            reading = Reading(metric="bench.trigger", value=1.0, ts=int(time.time() * 1000))
            body = TelemetryMessage(device=trigger, site=SITE, kind="bench_trigger", boot=BOOT, seq=1,
                                    readings=[reading]).model_dump_json(exclude_defaults=True).encode()  # fmt: skip
            sent[trigger] = time.monotonic()
            client.publish(topics.device(SITE, trigger, MessageKind.TELEMETRY), body, qos=1)
        else:
            client.publish(topics.device(SITE, devices[device], MessageKind.TELEMETRY), payload, qos=1)
    time.sleep(1.0)
    client.loop_stop()
    client.disconnect()
    conn.send(sent)


def listener_main(conn: Connection, host: str, port: int, root: str) -> None:
    """Timestamp each device's first ``firing`` notification; say "ready" once subscribed, report on "stop"."""
    arrivals: dict[str, float] = {}
    subscribed = threading.Event()

    def on_alert(_c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        alert = json.loads(message.payload)
        if alert["event"] == "firing":
            arrivals.setdefault(alert["device"], time.monotonic())

    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.on_message = on_alert
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(host, port)
    client.subscribe(f"{root}/v1/_hub/alerts/+", qos=1)
    client.loop_start()
    subscribed.wait(10)
    conn.send("ready")
    conn.recv()
    client.loop_stop()
    client.disconnect()
    conn.send(dict(arrivals))


async def latency_run(ctx: dict[str, Any], rules: Path, rate: float) -> list[float]:
    """Trigger-publish to notification latencies (s) with the hub fed at ``rate`` msgs/s."""
    args, mosquitto, workload = ctx["args"], ctx["mosquitto"], ctx["workload"]
    root = f"al{ctx['run']}lat"
    settings = settings_for(args, mosquitto, ctx["influx"], root, rules, ctx["workdir"] / root)
    context = multiprocessing.get_context("spawn")
    async with running_hub(settings) as hub:
        await _warm_up(hub, mosquitto, root, workload)
        listening, listener_end = context.Pipe()
        listener = context.Process(
            target=listener_main, args=(listener_end, mosquitto.host, mosquitto.port, root), daemon=True
        )
        listener.start()
        assert await asyncio.to_thread(listening.recv) == "ready"
        parent, child = context.Pipe()
        process = context.Process(target=paced_main, args=(child, mosquitto.host, mosquitto.port), daemon=True)
        process.start()
        parent.send((root, rate, workload.messages, workload.devices, args.triggers))
        sent: dict[str, float] = await asyncio.to_thread(parent.recv)
        await asyncio.sleep(1.0)
        process.join(10)
        listening.send("stop")
        arrivals: dict[str, float] = await asyncio.to_thread(listening.recv)
        listener.join(10)
    missing = sorted(set(sent) - set(arrivals))
    if missing:
        print(f"warning: {len(missing)} of {len(sent)} triggers got no notification: {missing[:5]}", file=sys.stderr)
    return [arrivals[device] - at for device, at in sent.items() if device in arrivals]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(args: argparse.Namespace, workdir: Path) -> None:
    tune_runtime()
    workload = make_workload(args.messages, 50, args.readings)
    empty, full = rule_file(workdir / "none.yaml", 0, False), rule_file(workdir / "hundred.yaml", 100, False)
    mosquitto, influx = MosquittoServer(workdir / "mosquitto"), InfluxDBServer(workdir / "influxdb")
    mosquitto.start()
    influx.start()
    try:
        publisher = Publisher(mosquitto, workload)
        ctx = {"args": args, "mosquitto": mosquitto, "influx": influx, "workload": workload,
               "publisher": publisher, "workdir": workdir, "run": int(time.time()) % 100_000}  # fmt: skip
        try:
            rates: dict[str, list[float]] = {"0": [], "100": []}
            for r in range(args.rounds):
                for count, rules in (("0", empty), ("100", full)) if r % 2 == 0 else (("100", full), ("0", empty)):
                    rates[count].append(asyncio.run(ingest_round(ctx, rules, f"r{r}n{count}")))
                    print(f"round {r + 1}: rules={count:>3}: {num(rates[count][-1])} readings/s", flush=True)
        finally:
            publisher.close()
        base, loaded = median(rates["0"]), median(rates["100"])
        ratio = loaded / base
        msg_rate = loaded / args.readings
        pace = msg_rate / 2
        trigger_rules = rule_file(workdir / "trigger.yaml", 100, True)
        latencies = asyncio.run(latency_run(ctx, trigger_rules, pace))
    finally:
        mosquitto.stop()
        influx.stop()
    print(f"\ningest, {args.messages} msgs x {args.readings} readings, medians of {args.rounds} rounds:")
    print(f"  rules=0    {num(base):>10} readings/s")
    print(f"  rules=100  {num(loaded):>10} readings/s")
    print(f"  ratio 100/0 = {ratio:.2f}  (target >= 0.7) {mark(ratio, 0.7)}")
    ms = [x * 1000 for x in latencies]
    p99 = percentile(ms, 0.99)
    print(f"\nalert latency at {num(pace)} msgs/s (half of the hub's rate with 100 rules), {len(ms)} transitions:")
    print(f"  p50 {percentile(ms, 0.5):.1f} ms   p99 {p99:.1f} ms   max {max(ms):.1f} ms  (target p99 < 50 ms) "
          f"{'OK' if p99 < 50 else 'MISSED'}")  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--readings", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--triggers", type=int, default=200, help="alert transitions to time")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--workdir", type=Path, help="keep the servers' files here (default: a temporary folder)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    benchlib.main(parse_args, run, sys.argv[1:])
