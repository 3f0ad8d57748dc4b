"""The registration flow of docs/mqtt-contract.md#registration, done with Mosquitto's own command-line
clients (mosquitto_sub, mosquitto_pub: not our code), as a device maker would try it; and an edge agent
registering itself on first start.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agenttools import agent_config, influx_series, running_agent, write_agent_config
from hubtools import registration_hub, wait_for
from services import InfluxDBServer, SecureMosquittoServer
from testkit import unique

from hub.service import Hub

SITE, KEY = "cjt-server-room", "install-2026"
#: The documented flow with its own root: retained answers must not reach other tests sharing the broker.
ROOT = unique("doc")
SECRET = "provisioning-secret-for-tests-0002"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: it comes with Debian's mosquitto-clients (scripts/test.sh installs it)")
    return path


@pytest.fixture
async def hub(tmp_path: Path, secure_mosquitto: SecureMosquittoServer, influxdb: InfluxDBServer) -> AsyncIterator[Hub]:
    keys = [{"site": SITE, "key": KEY, "secret": SECRET}]
    async with registration_hub(tmp_path, secure_mosquitto, influxdb, root=ROOT, keys=keys) as running:
        yield running


async def run(*argv: str, timeout_s: float = 15) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    return process.returncode or 0, out.decode()


async def test_the_documented_flow_with_mosquitto_pub_and_sub(
    hub: Hub, secure_mosquitto: SecureMosquittoServer, influxdb: InfluxDBServer
) -> None:
    device, password = unique("ups-"), secrets.token_urlsafe(24)
    broker = ["-h", secure_mosquitto.host, "-p", str(secure_mosquitto.port)]
    prov = [*broker, "-u", f"prov:{SITE}:{KEY}", "-P", SECRET]
    base = f"{ROOT}/v1/_reg/{SITE}/{KEY}/{device}"
    nonce = f"{time.time_ns()}abcdef"
    # 1. listen for the answers: the pending one, then (after approval) the approved one
    listener = await asyncio.create_subprocess_exec(
        tool("mosquitto_sub"), *prov, "-t", f"{base}/response", "-q", "1", "-C", "2", "-W", "20",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    await asyncio.sleep(0.5)
    # 2. ask
    body = {"device": device, "site": SITE, "kind": "ups", "password": password, "nonce": nonce}
    body["ts"] = int(time.time() * 1000)
    code, out = await run(tool("mosquitto_pub"), *prov, "-q", "1", "-t", f"{base}/request", "-m", json.dumps(body))
    assert code == 0, out

    async def pending() -> bool:
        entry = await hub.registry.store.get(SITE, device)  # type: ignore[union-attr]
        return entry is not None

    await wait_for(pending, 10, "the request in the registry")
    await hub.registry.registrar.approve(SITE, device, actor="operator")  # type: ignore[union-attr]
    answers, _ = await asyncio.wait_for(listener.communicate(), 25)
    states = [json.loads(line) for line in answers.decode().splitlines()]
    assert [a["state"] for a in states] == ["pending", "approved"]
    assert all(a["nonce"] == nonce for a in states)
    username = states[1]["username"]
    # 3. publish as the device
    now = int(time.time() * 1000)
    telemetry = {"device": device, "site": SITE, "kind": "ups", "boot": 1, "seq": 1}
    telemetry["readings"] = [{"metric": "battery.charge", "value": 88.0, "unit": "%", "ts": now}]
    code, out = await run(
        tool("mosquitto_pub"), *broker, "-u", username, "-P", password, "-q", "1",
        "-t", f"{ROOT}/v1/{SITE}/{device}/telemetry", "-m", json.dumps(telemetry),
    )  # fmt: skip
    assert code == 0, out
    # Anyone else, e.g. the provisioning login, cannot publish as the device: mosquitto_pub gets no error
    # for a refused QoS 1 message in MQTT 3.1.1, so the check is that nothing more is stored.
    await run(
        tool("mosquitto_pub"), *prov, "-q", "1",
        "-t", f"{ROOT}/v1/{SITE}/{device}/telemetry", "-m", json.dumps({**telemetry, "seq": 2}),
    )  # fmt: skip

    async def stored() -> bool:
        query = f'SELECT count("value") FROM "battery" WHERE "device" = \'{device}\''
        series = influx_series(influxdb, hub.settings.influx.db, query)
        return bool(series) and series[0]["rows"][0]["count"] >= 1

    await wait_for(stored, 15, "the device's telemetry")
    await asyncio.sleep(1.0)
    query = f'SELECT count("value") FROM "battery" WHERE "device" = \'{device}\''
    assert influx_series(influxdb, hub.settings.influx.db, query)[0]["rows"][0]["count"] == 1


async def test_an_edge_agent_registers_itself_and_keeps_its_login_private(
    hub: Hub, secure_mosquitto: SecureMosquittoServer, tmp_path: Path
) -> None:
    agent_id = unique("edge-")
    url = f"mqtt://{secure_mosquitto.host}:{secure_mosquitto.port}"
    config = agent_config(tmp_path / "agent", agent_id=agent_id, mqtt_url=url, topic_root=ROOT, lines={}, devices=[])
    config["agent"]["site"] = SITE
    config["registration"] = {"provisioning_key": KEY, "provisioning_secret": SECRET}
    path = write_agent_config(tmp_path / "agent.yaml", config)
    starting = asyncio.create_task(_start_agent(path))

    async def asked() -> bool:
        entry = await hub.registry.store.get(SITE, agent_id)  # type: ignore[union-attr]
        return entry is not None and entry.awaiting_decision

    await wait_for(asked, 15, "the agent's request")
    pending = tmp_path / "agent" / "credentials.json.pending"
    assert stat.S_IMODE(os.stat(pending).st_mode) == 0o600
    await hub.registry.registrar.approve(SITE, agent_id, actor="operator")  # type: ignore[union-attr]
    await asyncio.wait_for(starting, 30)
    credentials = tmp_path / "agent" / "credentials.json"
    assert stat.S_IMODE(os.stat(credentials).st_mode) == 0o600
    assert json.loads(credentials.read_text())["username"] == f"dev:{SITE}:{agent_id}"
    assert not pending.exists()

    async def online() -> bool:
        known = hub.devices.get(SITE, agent_id)
        return known is not None and known.state == "online"

    async with running_agent(path):  # the second start uses the saved login: no request this time
        await wait_for(online, 15, "the agent's status through its own login")
    history = await hub.registry.store.history(SITE, agent_id)  # type: ignore[union-attr]
    assert [h.action for h in history] == ["requested", "approved"]


async def _start_agent(path: Path) -> None:
    """Run the agent until it has its login, then stop it."""
    async with running_agent(path) as run:
        await asyncio.wait_for(run.agent.ready.wait(), 30)
