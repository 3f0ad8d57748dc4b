"""The five cityhub boards: server room, UPS units, cameras, edge agents and the hub itself.

Point names are those of the device profiles (drivers/modbus/profiles, drivers/snmp_ups/profiles and
drivers/snmp_ups/decode.py, drivers/onvif/metrics.py); the live test (tests/dashboards) runs every
query against data the shipped scenarios produced, so a renamed point fails it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dashboards.grafana import Annotation, Board, Panel, Query, Row, Variable
from dashboards.panels import (
    ALARM,
    DEVICE,
    LEGEND,
    ON_OFF,
    ONLINE,
    SITE,
    YES_NO,
    event_table,
    graph,
    latest_text,
    points,
    series,
    table,
    timeline,
)

MODBUS_PROFILES = Path(__file__).resolve().parent.parent / "drivers" / "modbus" / "profiles"
AGENT = "\"kind\" = 'edge_agent'"


def _site_variable(where: str) -> Variable:
    return Variable(name="site", label="Site", query=f'SHOW TAG VALUES WITH KEY = "site" WHERE {where}')


def _device_variable(where: str) -> Variable:
    query = f'SHOW TAG VALUES WITH KEY = "device" WHERE {where} AND {SITE}'
    return Variable(name="device", label="Device", query=query)


def _events_annotation(name: str, where: str) -> Annotation:
    query = f'SELECT "message", "event" FROM "events" WHERE {where} AND "active" = true AND $timeFilter'
    return Annotation(name=name, query=query)


def gas_states() -> dict[str, tuple[str, str]]:
    """The gas panel's state codes, read from its profile so that the board and the driver agree."""
    profile = yaml.safe_load((MODBUS_PROFILES / "gas-suppression.yaml").read_text(encoding="utf-8"))
    (state,) = [p for p in profile["points"] if p["metric"] == "gas.system_state"]
    colours = {"normal": "green", "armed": "green", "pre_alarm": "orange", "pre_discharge": "red"}
    return {str(code): (name, colours.get(name, "dark-red")) for code, name in state["states"].items()}


def _climate_row() -> Row:
    air = ("climate.supply_air_temperature", "climate.return_air_temperature", "climate.temperature_setpoint")
    temperatures = Panel(
        title="Air temperatures",
        type="timeseries",
        unit="celsius",
        description="CRAC supply and return air and its setpoint, and the room sensors.",
        queries=(
            Query(text=series("climate", f"{SITE} AND {points(*air)}"), alias=LEGEND),
            Query(text=series("environment", f"{SITE} AND {points('environment.temperature')}"), alias=LEGEND),
        ),
    )
    humidity = Panel(
        title="Humidity",
        type="timeseries",
        unit="humidity",
        queries=(
            Query(
                text=series(
                    "climate", f"{SITE} AND {points('climate.return_air_humidity', 'climate.humidity_setpoint')}"
                ),
                alias=LEGEND,
            ),
            Query(text=series("environment", f"{SITE} AND {points('environment.humidity')}"), alias=LEGEND),
        ),
    )
    run_hours = Panel(
        title="CRAC run hours",
        type="stat",
        unit="h",
        width=12,
        height=4,
        queries=(Query(text=series("climate", f"{SITE} AND {points('climate.run_hours')}", agg='last("value")')),),
    )
    machines = points("climate.fan_running", "climate.compressor_running")
    return Row(
        title="Climate",
        panels=(
            temperatures,
            humidity,
            timeline("Fan and compressor", "climate", f"{SITE} AND {machines}", ON_OFF),
            timeline("CRAC alarms", "climate", f'{SITE} AND "point" =~ /^climate\\.alarm\\./', ALARM),
            run_hours,
            event_table("Climate alarm events", f'{SITE} AND "event" =~ /^climate\\./'),
        ),
    )


def _gas_row() -> Row:
    modes = points("gas.manual_mode", "gas.hold_pressed", "gas.fault")
    return Row(
        title="Gas suppression",
        panels=(
            timeline("System state", "gas", f"{SITE} AND {points('gas.system_state')}", gas_states(), width=24),
            timeline("Detector zones", "gas", f'{SITE} AND "point" =~ /^gas\\.zone[0-9]+_alarm$/', ALARM),
            timeline("Manual mode, hold, fault", "gas", f"{SITE} AND {modes}", ON_OFF),
            graph("Discharge countdown", "gas", f"{SITE} AND {points('gas.discharge_countdown')}", "s"),
            graph(
                "Cylinder pressure",
                "gas",
                f"{SITE} AND {points('gas.cylinder_pressure')}",
                "pressurebar",
                description="Falls as the agent is released; a slow fall without a discharge is a leak.",
            ),
            event_table("Panel events", f'{SITE} AND "event" =~ /^gas\\./'),
        ),
    )


def server_room() -> Board:
    """Climate (CRAC unit, room sensors) and the gas fire-suppression panel of the server rooms."""
    return Board(
        uid="cityhub-server-room",
        title="cityhub · Server room",
        description="Climate control and gas fire suppression of the server rooms.",
        rows=(_climate_row(), _gas_row()),
        variables=(_site_variable('"kind" =~ /^(climate|environment_sensor|gas_suppression)$/'),),
        annotations=(_events_annotation("Gas panel", f'{SITE} AND "event" =~ /^gas\\./'),),
    )


def ups() -> Board:
    """UPS units over SNMP: status, battery, load, input and output."""
    where = f"{SITE} AND {DEVICE}"
    return Board(
        uid="cityhub-ups",
        title="cityhub · UPS units",
        description="UPS status, battery, load and mains, per site and device.",
        variables=(_site_variable("\"kind\" = 'ups'"), _device_variable("\"kind\" = 'ups'")),
        annotations=(_events_annotation("UPS events", f"{where} AND \"kind\" = 'ups'"),),
        rows=(
            Row(
                title="Status",
                panels=(
                    latest_text(
                        "Status (NUT tokens)",
                        "ups",
                        f"{where} AND {points('ups.status')}",
                        description="OL on line, OB on battery, LB low battery, CHRG charging (NUT's tokens).",
                    ),
                    timeline(
                        "Alarms present",
                        "ups",
                        f"{where} AND {points('ups.alarm_count')}",
                        {"0": ("none", "green")},
                        alias="$tag_device",
                    ),
                    event_table("UPS events", f"{where} AND \"kind\" = 'ups'"),
                ),
            ),
            Row(
                title="Battery and load",
                panels=(
                    graph("Battery charge", "battery", f"{where} AND {points('battery.charge')}", "percent"),
                    graph("Battery runtime", "battery", f"{where} AND {points('battery.runtime')}", "s"),
                    graph("Load", "ups", f"{where} AND {points('ups.load')}", "percent"),
                    graph("Battery voltage", "battery", f"{where} AND {points('battery.voltage')}", "volt"),
                ),
            ),
            Row(
                title="Mains",
                panels=(
                    graph(
                        "Input voltage",
                        "input",
                        f"{where} AND {points('input.voltage')}",
                        "volt",
                        description="0 V: mains lost, the UPS runs on battery.",
                    ),
                    graph("Output voltage", "output", f"{where} AND {points('output.voltage')}", "volt"),
                    graph("Input frequency", "input", f"{where} AND {points('input.frequency')}", "hertz"),
                    graph("UPS temperature", "ups", f"{where} AND {points('ups.temperature')}", "celsius"),
                ),
            ),
        ),
    )


def cameras() -> Board:
    """ONVIF cameras' health: reachability, response time, snapshots, event subscriptions."""
    where = f"{SITE} AND {DEVICE}"
    camera = "\"kind\" = 'camera'"
    snapshot = points("camera.snapshot_ok", "camera.snapshot_frozen")
    return Board(
        uid="cityhub-cameras",
        title="cityhub · Cameras",
        description="Health of the ONVIF cameras: reachable, answering, giving pictures and events.",
        variables=(_site_variable(camera), _device_variable(camera)),
        annotations=(_events_annotation("Camera events", f"{where} AND {camera}"),),
        rows=(
            Row(
                title="Reachability",
                panels=(
                    latest_text(
                        "Health now",
                        "camera",
                        f"{where} AND {points('camera.health')}",
                        description="ok, auth_failed (credentials refused), not_onvif, unreachable.",
                    ),
                    timeline(
                        "Online",
                        "device_status",
                        f"{where} AND {camera}",
                        ONLINE,
                        agg='last("online")',
                        by='"site", "device"',
                        alias="$tag_site/$tag_device",
                    ),
                    graph("Response time", "camera", f"{where} AND {points('camera.response_time')}", "s"),
                    graph(
                        "Clock skew",
                        "camera",
                        f"{where} AND {points('camera.clock_skew')}",
                        "s",
                        description="Camera clock minus the agent's: evidence timestamps depend on it.",
                    ),
                ),
            ),
            Row(
                title="Pictures and events",
                panels=(
                    timeline("Snapshot ok, frozen", "camera", f"{where} AND {snapshot}", YES_NO),
                    graph("Snapshot age", "camera", f"{where} AND {points('camera.snapshot_age')}", "s"),
                    graph("Snapshot size", "camera", f"{where} AND {points('camera.snapshot_bytes')}", "bytes"),
                    timeline(
                        "Event subscription alive",
                        "camera",
                        f"{where} AND {points('camera.events_subscribed')}",
                        YES_NO,
                    ),
                    timeline(
                        "Motion, tamper, video loss",
                        "camera",
                        f"{where} AND {points('camera.motion', 'camera.tamper', 'camera.video_loss')}",
                        ALARM,
                    ),
                    graph(
                        "Event pulls failed",
                        "camera",
                        f"{where} AND {points('camera.events_failures', 'camera.events_recreations')}",
                        "short",
                    ),
                    event_table("Camera events", f"{where} AND {camera}"),
                ),
            ),
        ),
    )


def edge_agents() -> Board:
    """The edge agents, from what they publish about themselves: status, births, devices behind them."""
    where = f"{SITE} AND {DEVICE} AND {AGENT}"
    last_status = (
        'SELECT last("state") AS "state", last("reason") AS "reason" FROM "device_status" '
        f'WHERE {where} GROUP BY "site", "device"'
    )
    restarts = (
        'SELECT count(distinct("boot")) AS "boots" FROM "device_birth" '
        f'WHERE {where} AND $timeFilter GROUP BY "site", "device"'
    )
    software = (
        'SELECT last("software") AS "software", last("boot") AS "boot" FROM "device_birth" '
        f'WHERE {where} GROUP BY "site", "device"'
    )
    dark = (
        'SELECT "site", "device", "kind", "reason" FROM "device_status" '
        f'WHERE "reason" =~ /^gateway / AND {SITE} AND $timeFilter ORDER BY time DESC'
    )
    return Board(
        uid="cityhub-edge-agents",
        title="cityhub · Edge agents",
        description="Edge agents: online or not, restarts, software, and the devices that went dark with them.",
        variables=(_site_variable(AGENT), _device_variable(AGENT)),
        rows=(
            Row(
                title="Agents",
                panels=(
                    timeline(
                        "Online",
                        "device_status",
                        where,
                        ONLINE,
                        agg='last("online")',
                        by='"site", "device"',
                        alias="$tag_site/$tag_device",
                        width=24,
                    ),
                    table("Last status", last_status, width=12),
                    table(
                        "Boots in the time range",
                        restarts,
                        width=12,
                        description="More than one boot: the agent restarted (crash, power cut, update).",
                    ),
                    table("Software", software, width=12),
                    table(
                        "Devices dark with their agent",
                        dark,
                        width=12,
                        description="Devices the hub marked offline because their agent went offline.",
                    ),
                ),
            ),
        ),
    )


def _rate(title: str, fields: tuple[str, ...], unit: str, description: str = "") -> Panel:
    """Per-second rates of hub_stats totals (non_negative_derivative also absorbs a hub restart)."""
    queries = tuple(
        Query(
            text=series(
                "hub_stats",
                '"hub" =~ /^$hub$/',
                agg=f'non_negative_derivative(last("{name}"), 1s) AS "{name}"',
                by='"hub"',
            ),
            alias=f"$tag_hub {name.replace('_', ' ')}",
        )
        for name in fields
    )
    return Panel(title=title, type="timeseries", queries=queries, unit=unit, description=description)


def _gauges(title: str, fields: tuple[str, ...], by: str, alias: str, unit: str = "short", where: str = "") -> Panel:
    queries = tuple(
        Query(
            text=series("hub_stats", f'"hub" =~ /^$hub$/{where}', agg=f'last("{name}") AS "{name}"', by=by),
            alias=f"{alias} {name.replace('_', ' ')}",
        )
        for name in fields
    )
    return Panel(title=title, type="timeseries", queries=queries, unit=unit)


def hub() -> Board:
    """The hub itself, from the ``hub_stats`` points it writes (hub/selfstats.py)."""
    health = timeline(
        "Broker connected, store available",
        "hub_stats",
        '"hub" =~ /^$hub$/',
        YES_NO,
        agg='last("mqtt_connected") AS "mqtt", last("store_available") AS "store"',
        by='"hub"',
        alias="$tag_hub $col",
    )
    team = " AND \"team\" != ''"
    kind = " AND \"kind\" != ''"
    return Board(
        uid="cityhub-hub",
        title="cityhub · Hub",
        description="The hub's own statistics: messages, points, spool, devices and open alerts.",
        variables=(Variable(name="hub", label="Hub", query='SHOW TAG VALUES FROM "hub_stats" WITH KEY = "hub"'),),
        rows=(
            Row(
                title="Flow",
                panels=(
                    _rate("Messages", ("messages_received", "messages_rejected"), "mps"),
                    _rate("Points", ("points_written", "points_spooled", "points_rejected_by_store"), "wps"),
                    _rate(
                        "Duplicates and gaps",
                        ("duplicates_dropped", "sequence_gaps", "historical_messages"),
                        "mps",
                        description="Redeliveries dropped, messages missing between sequence numbers, "
                        "and messages an agent had buffered during an outage.",
                    ),
                    health,
                ),
            ),
            Row(
                title="Backlog",
                panels=(
                    _gauges("Spool", ("spool_batches", "spool_points"), '"hub"', "$tag_hub"),
                    _gauges("Unacknowledged messages", ("messages_unacked",), '"hub"', "$tag_hub"),
                ),
            ),
            Row(
                title="Devices and alerts",
                panels=(
                    _gauges(
                        "Devices by kind", ("devices_online", "devices_offline"), '"kind"', "$tag_kind", where=kind
                    ),
                    _gauges(
                        "Open alerts by team",
                        ("alerts_firing", "alerts_acknowledged"),
                        '"team"',
                        "$tag_team",
                        where=team,
                    ),
                ),
            ),
        ),
    )


BOARDS = {"server-room": server_room, "ups": ups, "cameras": cameras, "edge-agents": edge_agents, "hub": hub}
