"""``cityhub demo``: the whole platform in one process, on embedded defaults, nothing to install.

Simulated devices → an edge agent polling and watching them → an embedded MQTT broker (amqtt, MQTT
3.1.1) → the hub storing into SQLite. The devices, each following a shipped scenario over and over:

* Modbus (normal-day): a server room's climate unit, an environment sensor, an energy meter and a
  gas-suppression panel;
* SNMP (ups-mains-failure): the server room's UPS, whose traps reach the agent's trap listener;
* ONVIF (camera-offline): two cameras, at the Bastion and at the Palace.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityhub.contract.alerts import AlertMessage
from drivers.modbus.profile import load_profile
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig, ModbusDeviceConfig
from hub.api.roles import Role
from hub.api.settings import TeamConfig, default_teams
from hub.broker import start_embedded_broker
from hub.config import load_hub_settings
from hub.service import Hub
from simulators.modbus import build_spec_from_args, run_simulation
from simulators.onvif import CameraFleet, CameraSpec
from simulators.runner import ScenarioRunner
from simulators.scenario import load_scenario
from simulators.snmp_ups.points import SnmpUpsTarget
from simulators.snmp_ups.simulation import simulated_ups

SCENARIO = "normal-day"
UPS_SCENARIO = "ups-mains-failure"
CAMERA_SCENARIO = "camera-offline"
SITE = "demo-server-room"
#: Where the demo's cameras are: the scenario's device id → site.
CAMERA_SITES = {"bastion-gate": "demo-bastion", "palace-court": "demo-palace"}
#: The simulated UPS's community: a simulator's, never a default of the driver (which has none).
UPS_COMMUNITY = "demo-community"
#: The demo's API login. The demo runs the API in development mode, the only mode that accepts a secret
#: written in the code; a production hub refuses to start with it (docs/api-security.md).
DEMO_ADMIN, DEMO_PASSWORD = "admin", "Demo-Timisoara-2026"
#: The demo's console login: an operator (no user administration, no rule writing) of a control room
#: that watches every site and kind, so that one login shows the UPS, the server room and the cameras.
#: Its password is drawn anew at every start and printed: nothing to copy into a production hub.
DEMO_OPERATOR, DEMO_TEAM = "operator", "control-room"


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    """Ports and places of the demo."""

    mqtt_port: int = 1884
    http_port: int = 8080
    modbus_port: int = 15020
    snmp_port: int = 16100
    trap_port: int = 16162
    data_dir: Path = Path("var/demo")
    poll_interval_s: float = 2.0


def _modbus_devices(options: DemoOptions) -> list[dict[str, Any]]:
    # The simulator serves the scenario's devices as units 1, 2, ... in the file's order.
    scenario = load_scenario(SCENARIO)
    return [
        {
            "id": device_id,
            "line": "sim",
            "unit": unit,
            "profile": device.profile.name,
            "poll_interval_s": options.poll_interval_s,
        }
        for unit, (device_id, device) in enumerate(scenario.devices.items(), start=1)
    ]


def _ups_device(options: DemoOptions, device_id: str) -> dict[str, Any]:
    return {
        "driver": "snmp",
        "id": device_id,
        "host": "127.0.0.1",
        "port": options.snmp_port,
        "community": UPS_COMMUNITY,
        "poll_interval_s": options.poll_interval_s,
    }


def _agent_config(options: DemoOptions, ups_id: str, cameras: list[dict[str, Any]]) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "agent": {"id": "demo-agent", "site": SITE},
            "data_dir": str(options.data_dir / "agent"),
            "mqtt": {"url": f"mqtt://127.0.0.1:{options.mqtt_port}", "protocol": 4},
            "http": {"port": None},
            "lines": [{"name": "sim", "transport": "tcp", "host": "127.0.0.1", "port": options.modbus_port}],
            "devices": [
                *_modbus_devices(options),
                _ups_device(options, ups_id),
                *({**camera, "site": CAMERA_SITES[camera["id"]], "poll_interval_s": 10.0} for camera in cameras),
            ],
            "snmp_traps": {"host": "127.0.0.1", "port": options.trap_port, "communities": [UPS_COMMUNITY]},
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


def _print_alert(message: AlertMessage) -> None:
    """Show an alert transition the way an operator's console would announce it."""
    print(
        f"ALERT {message.event.value.upper():<12} {message.severity:<8} team {message.team:<6} "
        f"{message.site}/{message.device}: {message.summary}",
        flush=True,
    )


async def _demo_operator(hub: Hub) -> str:
    """Create the demo's console operator, or give it a new password; return the password."""
    password = secrets.token_urlsafe(12)
    users, action = hub.api.users, "user.created"
    if await users.create(DEMO_OPERATOR, password, Role.POLICE_OPERATOR, DEMO_TEAM) is None:
        await users.set_password(DEMO_OPERATOR, password)  # kept from an earlier run in the same data dir
        action = "user.password_changed"
    await hub.api.audit.record(action, actor="system", target=DEMO_OPERATOR, detail={"demo": True})
    return password


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
        api={
            "environment": "development",
            "bootstrap_admin_username": DEMO_ADMIN,
            "bootstrap_admin_password": DEMO_PASSWORD,
            "teams": {**default_teams(), DEMO_TEAM: TeamConfig(description="demo control room: every device")},
        },
    )
    camera_scenario, ups_scenario = load_scenario(CAMERA_SCENARIO), load_scenario(UPS_SCENARIO)
    ups_id, ups = next(iter(ups_scenario.devices.items()))
    broker = await start_embedded_broker(port=options.mqtt_port)
    hub = Hub(settings)
    if hub.alerts is not None:
        hub.alerts.listeners.append(_print_alert)
    cameras = [CameraSpec(name=name, profile=device.profile.name) for name, device in camera_scenario.devices.items()]
    try:
        async with (
            CameraFleet(cameras, discovery_port=None) as fleet,
            simulated_ups(
                ups.profile.name,
                port=options.snmp_port,
                community=UPS_COMMUNITY,
                trap_target=("127.0.0.1", options.trap_port),
            ) as ups_card,
            asyncio.TaskGroup() as tasks,
        ):
            config = _agent_config(options, ups_id, fleet.inventory())
            modbus = [device for device in config.devices if isinstance(device, ModbusDeviceConfig)]
            agent = EdgeAgent(config, {device.id: load_profile(device.profile) for device in modbus})
            tasks.create_task(hub.run(stop), name="hub")
            await asyncio.wait_for(hub.ready.wait(), 30)
            operator_password = await _demo_operator(hub)
            simulation = build_spec_from_args(scenario=SCENARIO, port=options.modbus_port)
            tasks.create_task(run_simulation(simulation, stop), name="modbus-simulators")
            for scenario, targets in (
                (camera_scenario, fleet.targets()),
                (ups_scenario, {ups_id: SnmpUpsTarget(ups_card)}),
            ):
                runner = ScenarioRunner(scenario, targets, repeat=True)
                runner.apply(0.0)  # the devices answer with the scenario's start from the first request
                tasks.create_task(runner.run(stop), name=f"scenario-{scenario.name}")
            tasks.create_task(agent.run(stop), name="agent")
            print(
                f"\ncityhub demo is running (Ctrl-C to stop)\n"
                f"  simulated Modbus devices ({SCENARIO} scenario): tcp://127.0.0.1:{options.modbus_port}, "
                f"units 1-{len(modbus)}\n"
                f"  simulated UPS ({UPS_SCENARIO} scenario, repeating): udp://127.0.0.1:{options.snmp_port} "
                f"(SNMP v2c, community {UPS_COMMUNITY}), traps to udp://127.0.0.1:{options.trap_port}\n"
                f"  simulated ONVIF cameras ({CAMERA_SCENARIO} scenario, repeating): "
                + ", ".join(f"{c.spec.name} {c.device_url}" for c in fleet.cameras)
                + "\n"
                f"  edge agent: polls them every {options.poll_interval_s:g} s, queue in {config.data_dir}\n"
                f"  MQTT broker (embedded, MQTT 3.1.1): {url}\n"
                f"  console:     http://127.0.0.1:{options.http_port}/console/ "
                f"(login {DEMO_OPERATOR} / {operator_password})\n"
                f"  hub health:  http://127.0.0.1:{options.http_port}/health\n"
                f"  API:         http://127.0.0.1:{options.http_port}/api/docs (login {DEMO_ADMIN} / {DEMO_PASSWORD})\n"
                f"  metrics:     http://127.0.0.1:{options.http_port}/metrics\n"
                f"  time series: {settings.data_dir / 'timeseries.sqlite'} (embedded SQLite)\n",
                flush=True,
            )
            tasks.create_task(_report_progress(hub, stop), name="progress")
    finally:
        with contextlib.suppress(Exception):
            await broker.shutdown()
