"""Run one simulated UPS card, optionally driven by a scenario: what ``cityhub sim snmp-ups`` and the demo call.

    cityhub sim snmp-ups --port 16100 --profile ups-apc --scenario ups-mains-failure \\
        --trap-target 127.0.0.1:16200 --user ops:sha256:authpass1:aes:privpass1 --trap-user ops

``add_sim_arguments(parser)`` adds the options, ``run_from_args(args, stop)`` runs until ``stop`` is set,
and ``simulated_ups(...)`` is an async context manager that starts one card (for the demo and tests).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import get_args

from pydantic import SecretStr, ValidationError

from drivers.snmp_ups.config import AuthProtocol, PrivProtocol, UsmCredentials
from drivers.snmp_ups.engine import parse_engine_id
from drivers.snmp_ups.errors import MibProfileError
from drivers.snmp_ups.profile import load_mib_profile, parse_oid, shipped_profiles
from simulators.errors import SimConfigError
from simulators.runner import ScenarioRunner
from simulators.scenario import Scenario, load_scenario
from simulators.snmp_ups.agent import TrapTarget, UpsAgent
from simulators.snmp_ups.points import SnmpUpsTarget

log = logging.getLogger(__name__)

DEFAULT_PORT = 16100  # 161 needs root
USER_FORMAT = "NAME[:AUTH:AUTHKEY[:PRIV:PRIVKEY]]"


def parse_user(text: str) -> UsmCredentials:
    """``ops:sha256:authpass1:aes:privpass1`` as USM credentials; raises SimConfigError."""
    parts = text.split(":")
    if len(parts) not in (1, 3, 5):
        raise SimConfigError(f"--user {parts[0]!r}...: expected {USER_FORMAT}")
    fields: dict[str, object] = {"user": parts[0]}
    if len(parts) >= 3:
        fields |= {"auth_protocol": parts[1], "auth_key": SecretStr(parts[2])}
    if len(parts) == 5:
        fields |= {"priv_protocol": parts[3], "priv_key": SecretStr(parts[4])}
    try:
        return UsmCredentials.model_validate(fields)
    except ValidationError as exc:
        raise SimConfigError(f"--user {parts[0]!r}: {exc.errors(include_url=False)[0]['msg']}") from None


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SimConfigError(f"--trap-target {text!r}: expected HOST:PORT")
    return host, int(port)


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options ``run_from_args`` takes to a (sub)command's parser."""
    parser.add_argument("--profile", default="ups-rfc1628", help=f"MIB profile: {', '.join(shipped_profiles())}")
    parser.add_argument("--host", default="127.0.0.1", help="UDP address to answer on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="UDP port (0: any free port)")
    parser.add_argument("--community", action="append", help="v1/v2c community it answers (default: public)")
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar=USER_FORMAT,
        help=f"a v3 user (auth: {'|'.join(get_args(AuthProtocol))}; priv: {'|'.join(get_args(PrivProtocol))})",
    )
    parser.add_argument("--engine-id", help="its snmpEngineID in hex (default: random)")
    parser.add_argument("--sys-object-id", help="the sysObjectID it reports (default: the profile's)")
    parser.add_argument("--trap-target", action="append", default=[], metavar="HOST:PORT", help="send traps there")
    parser.add_argument("--trap-community", default="public", help="community of v2c traps")
    parser.add_argument("--trap-user", help="send v3 traps as this --user (default: v2c)")
    parser.add_argument("--inform", action="store_true", help="send informs (acknowledged) instead of traps")
    parser.add_argument("--scenario", help="a shipped scenario name (ups-mains-failure) or a scenario file")
    parser.add_argument("--device", help="the scenario's device to play (default: its only snmp device)")
    parser.add_argument("--speed", type=float, default=1.0, help="scenario seconds per second")
    parser.add_argument("--repeat", action="store_true", help="start the scenario over when it ends")


def _trap_targets(args: argparse.Namespace, users: tuple[UsmCredentials, ...]) -> tuple[TrapTarget, ...]:
    user = None
    if args.trap_user:
        user = next((u for u in users if u.user == args.trap_user), None)
        if user is None:
            raise SimConfigError(f"--trap-user {args.trap_user!r} is not one of the --user options")
    return tuple(
        TrapTarget(
            host=host,
            port=port,
            version="3" if user else "2c",
            community=args.trap_community,
            user=user,
            inform=args.inform,
        )
        for host, port in map(parse_target, args.trap_target)
    )


def agent_from_args(args: argparse.Namespace) -> UpsAgent:
    """The simulated card the options describe; raises SimConfigError."""
    users = tuple(parse_user(text) for text in args.user)
    try:
        profile = load_mib_profile(args.profile)
        sys_object_id = parse_oid(args.sys_object_id) if args.sys_object_id else None
        engine_id = parse_engine_id(args.engine_id) if args.engine_id else None
    except (MibProfileError, ValueError) as exc:
        raise SimConfigError(str(exc)) from None
    return UpsAgent(
        profile,
        host=args.host,
        port=args.port,
        communities=tuple(args.community or ("public",)),
        users=users,
        engine_id=engine_id,
        trap_targets=_trap_targets(args, users),
        sys_object_id=sys_object_id,
    )


def scenario_device(scenario: Scenario, profile: str, wanted: str | None) -> str:
    """The id of the scenario device a card of ``profile`` plays."""
    snmp = [d for d in scenario.devices.values() if d.driver == "snmp"]
    chosen = [d for d in snmp if d.id == wanted] if wanted else snmp
    if len(chosen) != 1:
        names = ", ".join(d.id for d in snmp) or "none"
        raise SimConfigError(f"scenario {scenario.name}: name the snmp device to play with --device (snmp: {names})")
    if chosen[0].profile.name != profile:
        raise SimConfigError(
            f"scenario {scenario.name}: device {chosen[0].id!r} runs profile {chosen[0].profile.name!r}, "
            f"the simulator {profile!r}: pass --profile {chosen[0].profile.name}"
        )
    return chosen[0].id


async def run_from_args(
    args: argparse.Namespace, stop: asyncio.Event, *, on_ready: Callable[[UpsAgent], None] | None = None
) -> None:
    """Serve the card the options describe (playing the scenario, if any) until ``stop`` is set."""
    agent = agent_from_args(args)
    scenario = load_scenario(args.scenario) if args.scenario else None
    device_id = scenario_device(scenario, agent.profile.name, args.device) if scenario else None
    async with agent:
        log.info("simulated UPS (%s): snmpget -v2c -c public %s:%d ...", agent.profile.name, agent.host, agent.port)
        runner = None
        if scenario is not None and device_id is not None:
            runner = ScenarioRunner(scenario, {device_id: SnmpUpsTarget(agent)}, speed=args.speed, repeat=args.repeat)
            runner.apply(0.0)  # answer with the scenario's initial state from the first request
        if on_ready is not None:
            on_ready(agent)
        if runner is not None:
            await runner.run(stop)
        await stop.wait()


@contextlib.asynccontextmanager
async def simulated_ups(
    profile: str = "ups-rfc1628",
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    community: str = "public",
    trap_target: tuple[str, int] | None = None,
) -> AsyncIterator[UpsAgent]:
    """One simulated UPS card on ``host:port`` (0: any free port) for as long as the block runs."""
    targets = (TrapTarget(host=trap_target[0], port=trap_target[1], community=community),) if trap_target else ()
    async with UpsAgent(profile, host=host, port=port, communities=(community,), trap_targets=targets) as agent:
        yield agent
