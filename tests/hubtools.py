"""Helpers for hub tests: settings, a hub running in the test's loop or in its own process, read-backs."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from services import InfluxDBServer, MosquittoServer, SecureMosquittoServer, free_port
from testkit import CityhubProcess, unique

from hub.config import HubSettings, load_hub_settings
from hub.service import Hub


def hub_settings(
    tmp_path: Path,
    mqtt_url: str,
    *,
    influx: InfluxDBServer | None = None,
    db: str = "cityhub",
    client_id: str = "test-hub",
    **sections: Any,
) -> HubSettings:
    """Settings for a hub writing into ``influx`` (or SQLite when None), flushing fast."""
    data: dict[str, Any] = {
        "data_dir": str(tmp_path / client_id),
        "hub_id": client_id,
        "mqtt": {"url": mqtt_url, "client_id": client_id},
        "http": {"port": 0},
        "ingest": {"flush_interval_s": 0.2, "reject_log_interval_s": 60},
        # The hub's statistics about itself are points too: off unless a test asks, so counts stay exact.
        "selfstats": {"enabled": False},
    }
    if influx is not None:
        data["influx"] = {"url": influx.url, "db": db, "timeout_s": 2.0}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return load_hub_settings(None, **data)


@contextlib.asynccontextmanager
async def running_hub(settings: HubSettings) -> AsyncIterator[Hub]:
    """A hub running in this event loop until the block ends (then stopped cleanly)."""
    hub = Hub(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(hub.run(stop))
    ready = asyncio.create_task(hub.ready.wait())
    await asyncio.wait([task, ready], timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # raises the hub's start-up error
    assert hub.ready.is_set(), "hub did not become ready"
    try:
        yield hub
    finally:
        ready.cancel()
        stop.set()
        await asyncio.wait_for(task, 20)


class HubProcess(CityhubProcess):
    """``cityhub hub`` in a process of its own, for SIGKILL tests, configured from ``settings``."""

    def diagnosis(self, *servers: MosquittoServer | InfluxDBServer) -> str:
        """What to read when a stream stalls: the hub's flow counters, its log, the servers' logs."""
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=5).read().decode()
            wanted = r"^cityhub_hub_(?:messages_received|messages_unacked|points|spool|store|mqtt)\S* \S+$"
            flow = "\n".join(re.findall(wanted, text, re.M))
        except OSError as exc:
            flow = f"(no metrics: {exc})"
        parts = ["==> hub flow <==", flow, "==> hub log <==", self.log_tail()]
        parts.extend(server.log_tail(15) for server in servers)
        return "\n".join(parts)

    def __init__(self, settings: HubSettings, workdir: Path) -> None:
        config_path = workdir / f"{settings.hub_id}.yaml"
        super().__init__("hub", config_path, free_port())
        data = settings.model_dump(mode="json")
        data["http"]["port"] = self.http_port
        config_path.write_text(yaml.safe_dump(data), encoding="utf-8")


def hub_flow(hub: Hub, *servers: MosquittoServer | InfluxDBServer) -> str:
    """An in-process hub's flow counters and the servers' logs: what to read when a test waits in vain."""
    wanted = ("messages_received", "messages_unacked", "points", "spool", "store", "mqtt", "alert", "notification")
    lines = [
        f"{sample.name}{sample.labels or ''} {sample.value:g}"
        for family in hub.metrics.registry.collect()
        for sample in family.samples
        if any(word in sample.name for word in wanted)
    ]
    return "\n".join(["==> hub flow <==", *lines, *(server.log_tail(15) for server in servers)])


async def wait_for(
    condition: Callable[[], Awaitable[bool]], timeout_s: float, what: str, interval_s: float = 0.2
) -> None:
    """Poll ``condition`` until true, or fail with ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def influx_count(influxdb: InfluxDBServer, db: str, measurement: str, field: str = "value") -> int:
    """How many points of ``measurement`` hold ``field`` (0 when the database or series does not exist)."""
    try:
        answer = influxdb.query(f'SELECT count("{field}") FROM "{measurement}"', db=db)
    except RuntimeError:
        return 0
    series = answer["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def metric_value(hub: Hub, name: str, labels: dict[str, str] | None = None) -> float:
    """A sample of the hub's Prometheus registry (0 when never set)."""
    value = hub.metrics.registry.get_sample_value(name, labels or {})
    return value or 0.0


@contextlib.asynccontextmanager
async def registration_hub(
    tmp_path: Path,
    broker: SecureMosquittoServer,
    influxdb: InfluxDBServer,
    *,
    root: str,
    keys: list[dict[str, Any]],
    **sections: Any,
) -> AsyncIterator[Hub]:
    """A hub with registration enabled on a broker with the dynamic security plugin, its registration
    desk ready; its own login (a random password) is created by the hub itself at start."""
    hub_id = unique("hub-")
    url = f"mqtt://{hub_id}:{secrets.token_urlsafe(24)}@{broker.host}:{broker.port}"
    registration = {
        "enabled": True,
        "broker_admin_username": broker.admin_username,
        "broker_admin_password": broker.admin_password,
        "provisioning_keys": keys,
        **sections.pop("registration", {}),
    }
    settings = hub_settings(
        tmp_path,
        url,
        influx=influxdb,
        db=unique("registration_"),
        client_id=hub_id,
        mqtt={"topic_root": root},
        registration=registration,
        **sections,
    )
    async with running_hub(settings) as hub:
        assert hub.registry is not None
        await asyncio.wait_for(hub.registry.ready.wait(), 10)
        yield hub
