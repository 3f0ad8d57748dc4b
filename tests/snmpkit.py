"""Fixtures and helpers the SNMP UPS tests share (driver and simulator): simulated cards on free loopback
ports, a shared client, a trap listener, Net-SNMP's command-line tools, and a check for leaked tasks.

Both conftest.py files (tests/drivers/snmp_ups, tests/simulators/snmp_ups) take their fixtures from here;
test modules ``import snmpkit`` for the helpers.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from drivers.snmp_ups import SnmpClient, SnmpDeviceConfig, SnmpUpsDevice, TrapListener, TrapListenerConfig
from drivers.snmp_ups.config import UsmCredentials
from simulators.snmp_ups.agent import UpsAgent

NET_SNMP_HINT = (
    "Run the test suite through scripts/test.sh, which installs it, or `apt-get install snmp` "
    "(Debian's Net-SNMP command-line tools: snmpget, snmpwalk, snmpbulkwalk, snmptrap)."
)
PROFILES = ("ups-rfc1628", "ups-apc", "ups-eaton-xups", "ups-mge")
V3_USER = UsmCredentials(
    user="ops",
    auth_protocol="sha256",
    auth_key=SecretStr("authpass-256"),
    priv_protocol="aes",
    priv_key=SecretStr("privpass-aes"),
)

AgentFactory = Callable[..., Awaitable[UpsAgent]]
ListenerFactory = Callable[..., Awaitable[TrapListener]]


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running (pysnmp timers, trap sends, watchers)."""
    before = asyncio.all_tasks()
    yield
    for _ in range(10):  # a cancelled task needs a loop turn or two to finish
        await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    if leaked:
        pytest.fail(f"the test leaked {len(leaked)} task(s): {leaked}", pytrace=False)


@pytest.fixture
async def start_agent() -> AsyncIterator[AgentFactory]:
    """Start simulated UPS cards on free loopback ports; all stopped after the test."""
    agents: list[UpsAgent] = []

    async def start(profile: str = "ups-rfc1628", **options: Any) -> UpsAgent:
        agent = UpsAgent(profile, **options)
        await agent.start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        await agent.stop()


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    """The shared SNMP client (one engine, one socket)."""
    async with SnmpClient() as snmp:
        yield snmp


@pytest.fixture
async def start_listener() -> AsyncIterator[ListenerFactory]:
    """Start trap listeners on free loopback ports."""
    listeners: list[TrapListener] = []

    async def start(**options: Any) -> TrapListener:
        listener = TrapListener(TrapListenerConfig(host="127.0.0.1", port=0, **options))
        await listener.__aenter__()
        listeners.append(listener)
        return listener

    yield start
    for listener in listeners:
        await listener.__aexit__(None, None, None)


def device_config(agent: UpsAgent, **fields: Any) -> SnmpDeviceConfig:
    """An inventory entry for the simulated card (v2c, community public, short timeout, unless told)."""
    values: dict[str, Any] = {
        "driver": "snmp",
        "id": f"ups-{agent.port}",
        "host": "127.0.0.1",
        "port": agent.port,
        "timeout_s": 0.5,
        "retries": 0,
    }
    values.update(fields)
    if values.get("version", "2c") != "3":
        values.setdefault("community", "public")
    return SnmpDeviceConfig.model_validate(values)


def make_device(agent: UpsAgent, client: SnmpClient, traps: TrapListener | None = None, **fields: Any) -> SnmpUpsDevice:
    """A driver device for the simulated card, retrying at once after a failure (no backoff in tests)."""
    return SnmpUpsDevice(device_config(agent, **fields), client=client, traps=traps, backoff_initial_s=0.0)


def values(result: Any) -> dict[str, Any]:
    """metric -> value of a PollResult's readings."""
    return {r.metric: r.value for r in result.readings}


async def wait_until(predicate: Callable[[], bool], within_s: float = 2.0) -> float:
    """Wait until ``predicate()`` holds; returns the seconds it took (fails the test on timeout)."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > within_s:
            pytest.fail(f"condition not met within {within_s} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


def net_snmp(tool: str) -> str:
    """The path of a Net-SNMP tool; the test fails (never skips) when it is missing."""
    found = shutil.which(tool) or (f"/usr/bin/{tool}" if Path(f"/usr/bin/{tool}").exists() else None)
    if found is None:
        pytest.fail(f"{tool} not found (looked at PATH and /usr/bin). {NET_SNMP_HINT}", pytrace=False)
    return found


async def run_tool(*argv: str, limit_s: float = 15) -> tuple[int, str, str]:
    """Run a command; returns exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), limit_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, out.decode(), err.decode()
