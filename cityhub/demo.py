"""``cityhub demo``: the whole platform in one process, on embedded defaults, nothing to install.

Simulated Modbus devices (a server room's climate unit, an environment sensor, an energy meter and a
gas-suppression panel, following the normal-day scenario) → an edge agent polling them → an embedded
MQTT broker (amqtt, MQTT 3.1.1) → the hub storing into SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from drivers.modbus.profile import load_profile
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig
from hub.broker import start_embedded_broker
from hub.config import load_hub_settings
from hub.service import Hub
from simulators.modbus import build_spec_from_args, load_scenario, run_simulation

SCENARIO = "normal-day"
SITE = "demo-server-room"


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    """Ports and places of the demo."""

    mqtt_port: int = 1884
    http_port: int = 8080
    modbus_port: int = 15020
    data_dir: Path = Path("var/demo")
    poll_interval_s: float = 2.0


def _agent_config(options: DemoOptions) -> AgentConfig:
    scenario = load_scenario(SCENARIO)
    return AgentConfig.model_validate(
        {
            "agent": {"id": "demo-agent", "site": SITE},
            "data_dir": str(options.data_dir / "agent"),
            "mqtt": {"url": f"mqtt://127.0.0.1:{options.mqtt_port}", "protocol": 4},
            "http": {"port": None},
            "lines": [{"name": "sim", "transport": "tcp", "host": "127.0.0.1", "port": options.modbus_port}],
            # The simulator serves the scenario's devices as units 1, 2, ... in the file's order.
            "devices": [
                {
                    "id": device_id,
                    "line": "sim",
                    "unit": unit,
                    "profile": device.profile.name,
                    "poll_interval_s": options.poll_interval_s,
                }
                for unit, (device_id, device) in enumerate(scenario.devices.items(), start=1)
            ],
        }
    )


async def _report_progress(hub: Hub, stop: asyncio.Event, every_s: float = 10.0) -> None:
    """Print what the hub has stored so far, so a newcomer sees data flowing."""
    sample = hub.metrics.registry.get_sample_value
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
        online = sum(1 for device in hub.devices.all() if device.state == "online")
        print(
            f"hub: {sample('cityhub_hub_messages_received_total', {'kind': 'telemetry'}) or 0:.0f} telemetry "
            f"messages, {sample('cityhub_hub_points_written_total') or 0:.0f} points stored, "
            f"{online} devices online",
            flush=True,
        )


async def run_demo(options: DemoOptions, stop: asyncio.Event) -> None:
    """Run broker, hub, simulators and agent until ``stop``."""
    url = f"mqtt://127.0.0.1:{options.mqtt_port}"
    settings = load_hub_settings(
        None,
        data_dir=str(options.data_dir / "hub"),
        hub_id="demo-hub",
        mqtt={"url": url, "protocol": 4, "client_id": "cityhub-demo-hub"},
        http={"port": options.http_port},
        ingest={"flush_interval_s": 0.5},
    )
    agent_config = _agent_config(options)
    profiles = {device.id: load_profile(device.profile) for device in agent_config.devices}
    simulation = build_spec_from_args(scenario=SCENARIO, port=options.modbus_port)
    broker = await start_embedded_broker(port=options.mqtt_port)
    hub = Hub(settings)
    agent = EdgeAgent(agent_config, profiles)
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(hub.run(stop), name="hub")
            await asyncio.wait_for(hub.ready.wait(), 30)
            tasks.create_task(run_simulation(simulation, stop), name="modbus-simulators")
            tasks.create_task(agent.run(stop), name="agent")
            print(
                f"\ncityhub demo is running (Ctrl-C to stop)\n"
                f"  simulated Modbus devices ({SCENARIO} scenario): tcp://127.0.0.1:{options.modbus_port}, "
                f"units 1-{len(profiles)}\n"
                f"  edge agent: polls them every {options.poll_interval_s:g} s, queue in {agent_config.data_dir}\n"
                f"  MQTT broker (embedded, MQTT 3.1.1): {url}\n"
                f"  hub health:  http://127.0.0.1:{options.http_port}/health\n"
                f"  metrics:     http://127.0.0.1:{options.http_port}/metrics\n"
                f"  time series: {settings.data_dir / 'timeseries.sqlite'} (embedded SQLite)\n",
                flush=True,
            )
            tasks.create_task(_report_progress(hub, stop), name="progress")
    finally:
        with contextlib.suppress(Exception):
            await broker.shutdown()
