"""The ``cityhub`` command: ``hub``, ``agent`` (and ``agent discover``), ``demo`` and ``sim``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from cityhub.contract import Topics
from cityhub.mqtt import MqttError

log = logging.getLogger("cityhub")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    # httpx logs every request at INFO: a camera's snapshot every poll would drown what matters.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def _run_until_signal(main: Callable[[asyncio.Event], Awaitable[None]], duration_s: float | None = None) -> None:
    """Run ``main(stop)``; SIGINT, SIGTERM or ``duration_s`` set ``stop`` for a clean shutdown."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if duration_s is not None:
            loop.call_later(duration_s, stop.set)
        await main(stop)

    asyncio.run(runner())


def _cmd_hub(args: argparse.Namespace) -> int:
    from hub.config import load_hub_settings
    from hub.errors import ConfigError
    from hub.service import Hub, tune_runtime

    try:
        settings = load_hub_settings(args.config)
    except ConfigError as exc:
        print(f"cityhub hub: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    _setup_logging(settings.log_level)
    tune_runtime()
    try:
        _run_until_signal(Hub(settings).run, args.duration)
    except BaseExceptionGroup as group:
        # The hub's task group wraps a broker that cannot be reached; say so without a traceback.
        broker_errors, others = group.split(MqttError)
        if others is not None or broker_errors is None:
            raise
        print(f"cityhub hub: {broker_errors.exceptions[0]}", file=sys.stderr)
        return 1
    except MqttError as exc:
        print(f"cityhub hub: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:  # e.g. default or weak secrets in production, found when the hub starts
        print(f"cityhub hub: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_sim(args: argparse.Namespace) -> int:
    from simulators.publisher import run_synthetic

    _setup_logging(args.log_level)

    async def main(stop: asyncio.Event) -> None:
        published = await run_synthetic(
            args.mqtt_url,
            topics=Topics(args.topic_root),
            site=args.site,
            devices=args.devices,
            interval_s=args.interval,
            count=args.count,
            protocol=args.protocol,
            stop=stop,
        )
        log.info("published %d telemetry messages", published)

    _run_until_signal(main, args.duration)
    return 0


def _cmd_agent(args: argparse.Namespace) -> int:
    from edge_agent.agent import EdgeAgent
    from edge_agent.buffer import QueueError
    from edge_agent.config import ConfigError, load_agent_config

    if args.config is None:
        print("cityhub agent: --config is required (or: cityhub agent discover)", file=sys.stderr)
        return 2
    try:
        config, profiles = load_agent_config(args.config)
    except ConfigError as exc:
        print(f"cityhub agent: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    _setup_logging(config.log_level)
    try:
        _run_until_signal(EdgeAgent(config, profiles).run, args.duration)
    except QueueError as exc:
        print(f"cityhub agent: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_registrations(args: argparse.Namespace) -> int:
    from cityhub.registrations_cli import run

    return run(args)


def _cmd_rules(args: argparse.Namespace) -> int:
    from cityhub.rules_cli import run_rules

    return run_rules(args)


def _cmd_record(args: argparse.Namespace) -> int:
    from cityhub.rules_cli import run_record

    return run_record(args)


def _cmd_report(args: argparse.Namespace) -> int:
    from cityhub.report_cli import run

    return run(args)


def _cmd_agent_discover(args: argparse.Namespace) -> int:
    from drivers.onvif.discovery import run_discover

    _setup_logging("WARNING")
    return asyncio.run(run_discover(args))


def _run_simulator(
    kind: str,
    main: Callable[[asyncio.Event], Awaitable[None]],
    args: argparse.Namespace,
    errors: tuple[type[Exception], ...],
) -> int:
    """Run a ``cityhub sim`` kind until a signal or ``--duration``; its input ``errors`` exit 2, in one line."""
    _setup_logging(args.log_level)
    try:
        _run_until_signal(main, args.duration)
    except errors as exc:
        print(f"cityhub sim {kind}: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_sim_onvif(args: argparse.Namespace) -> int:
    from simulators.errors import SimulatorError
    from simulators.onvif import run_from_args

    return _run_simulator("onvif", lambda stop: run_from_args(args, stop), args, (SimulatorError,))


def _cmd_sim_snmp_ups(args: argparse.Namespace) -> int:
    from simulators.errors import SimulatorError
    from simulators.snmp_ups.simulation import run_from_args

    # ValueError: a bad --user, --trap-target or profile
    return _run_simulator("snmp-ups", lambda stop: run_from_args(args, stop), args, (SimulatorError, ValueError))


def _cmd_sim_modbus(args: argparse.Namespace) -> int:
    from simulators.modbus import SimulatorError, run_simulation, spec_from_namespace

    async def main(stop: asyncio.Event) -> None:
        await run_simulation(spec_from_namespace(args), stop)

    return _run_simulator("modbus", main, args, (SimulatorError,))


def _cmd_demo(args: argparse.Namespace) -> int:
    from cityhub.demo import DemoOptions, run_demo

    _setup_logging(args.log_level)
    options = DemoOptions(
        mqtt_port=args.mqtt_port,
        http_port=args.http_port,
        modbus_port=args.modbus_port,
        snmp_port=args.snmp_port,
        trap_port=args.trap_port,
        data_dir=args.data_dir,
    )
    _run_until_signal(lambda stop: run_demo(options, stop), args.duration)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cityhub`` command."""
    parser = argparse.ArgumentParser(prog="cityhub", description="cityhub: IoT hub and edge data platform")
    sub = parser.add_subparsers(dest="command", required=True)

    hub = sub.add_parser("hub", help="run the hub (MQTT ingest into InfluxDB or SQLite)")
    hub.add_argument("--config", type=Path, help="YAML configuration file (CITYHUB_* variables override it)")
    hub.add_argument("--duration", type=float, help="stop after this many seconds")
    hub.set_defaults(func=_cmd_hub)

    agent = sub.add_parser("agent", help="run an edge agent: poll devices, publish through the contract")
    agent.add_argument("--config", type=Path, help="the agent's YAML file (inventory, broker, buffer)")
    agent.add_argument("--duration", type=float, help="stop after this many seconds")
    agent.set_defaults(func=_cmd_agent)
    agent_commands = agent.add_subparsers(dest="agent_command")
    discover = agent_commands.add_parser("discover", help="list the ONVIF cameras that answer a WS-Discovery probe")
    from drivers.onvif.discovery import add_discover_arguments

    add_discover_arguments(discover)
    discover.set_defaults(func=_cmd_agent_discover)

    registrations = sub.add_parser(
        "registrations", help="list, approve, reject or revoke device registrations (through the hub's API)"
    )
    from cityhub.registrations_cli import add_arguments as add_registration_arguments

    add_registration_arguments(registrations)
    registrations.set_defaults(func=_cmd_registrations)

    from cityhub.rules_cli import add_record_arguments, add_rules_arguments

    rules = sub.add_parser("rules", help="check alert rule files; replay a recording through them (golden files)")
    add_rules_arguments(rules)
    rules.set_defaults(func=_cmd_rules)
    record = sub.add_parser("record", help="record live device traffic from the broker, for `cityhub rules test`")
    add_record_arguments(record)
    record.set_defaults(func=_cmd_record)
    report = sub.add_parser("report", help="KPI tables of a period (availability, alerts, MTTA, MTTR): CSV or Parquet")
    from cityhub.report_cli import add_arguments as add_report_arguments

    add_report_arguments(report)
    report.set_defaults(func=_cmd_report)

    demo = sub.add_parser("demo", help="run broker, hub and simulated devices in one process, nothing to install")
    demo.add_argument("--mqtt-port", type=int, default=1884)
    demo.add_argument("--http-port", type=int, default=8080)
    demo.add_argument("--data-dir", type=Path, default=Path("var/demo"))
    demo.add_argument("--modbus-port", type=int, default=15020)
    demo.add_argument("--snmp-port", type=int, default=16100, help="the simulated UPS's SNMP port (UDP)")
    demo.add_argument("--trap-port", type=int, default=16162, help="the agent's SNMP trap listener (UDP)")
    demo.add_argument("--duration", type=float, help="stop after this many seconds")
    demo.add_argument("--log-level", default="INFO")
    demo.set_defaults(func=_cmd_demo)

    sim = sub.add_parser("sim", help="simulated devices: synthetic MQTT telemetry, or Modbus devices and scenarios")
    sim_kinds = sim.add_subparsers(dest="sim_kind", required=True)

    modbus = sim_kinds.add_parser("modbus", help="Modbus TCP/RTU devices built from profiles, driven by a scenario")
    from simulators.modbus import add_sim_arguments

    add_sim_arguments(modbus)
    modbus.add_argument("--duration", type=float, help="stop after this many seconds")
    modbus.add_argument("--log-level", default="INFO")
    modbus.set_defaults(func=_cmd_sim_modbus)

    ups = sim_kinds.add_parser("snmp-ups", help="a UPS network card over SNMP (v1/v2c/v3), with traps and scenarios")
    from simulators.snmp_ups.simulation import add_sim_arguments as add_ups_arguments

    add_ups_arguments(ups)
    ups.add_argument("--duration", type=float, help="stop after this many seconds")
    ups.add_argument("--log-level", default="INFO")
    ups.set_defaults(func=_cmd_sim_snmp_ups)

    onvif = sim_kinds.add_parser("onvif", help="ONVIF cameras over SOAP/HTTP, with WS-Discovery and scenarios")
    from simulators.onvif import add_sim_arguments as add_onvif_arguments

    add_onvif_arguments(onvif)
    onvif.add_argument("--duration", type=float, help="stop after this many seconds")
    onvif.add_argument("--log-level", default="INFO")
    onvif.set_defaults(func=_cmd_sim_onvif)

    sim = sim_kinds.add_parser("mqtt", help="publish synthetic telemetry through the contract")
    sim.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    sim.add_argument("--topic-root", default="cityhub")
    sim.add_argument("--protocol", type=int, choices=(4, 5), default=5)
    sim.add_argument("--site", default="demo-site")
    sim.add_argument("--devices", type=int, default=3)
    sim.add_argument("--interval", type=float, default=2.0, help="seconds between two batches of a device")
    sim.add_argument("--count", type=int, help="stop after this many messages")
    sim.add_argument("--duration", type=float, help="stop after this many seconds")
    sim.add_argument("--log-level", default="INFO")
    sim.set_defaults(func=_cmd_sim)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cityhub`` console script."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
