"""docker-compose.yml, deploy/.env.example and the Dockerfile, cross-checked against the tree and the code.

No container engine runs here, so the files are parsed and every reference is followed: files that
must exist, variables that must be required, commands that must be real ``cityhub`` subcommands, and
configurations that the hub's and the agent's own loaders must accept.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cityhub.cli import build_parser
from edge_agent.config import load_agent_config
from hub.config import HubSettings, load_hub_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
# ${NAME}, ${NAME:?message}, ${NAME?message}, ${NAME:-default}, ${NAME-default}; $$ is a literal $.
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[?-])?(?P<arg>[^}]*)\}")
STATEFUL = {"mosquitto": "/mosquitto/data", "influxdb": "/var/lib/influxdb", "grafana": "/var/lib/grafana"}
CITYHUB_IMAGE = "cityhub:local"


def raw_compose() -> dict[str, Any]:
    """The compose file as PyYAML reads it (merge keys resolved), not interpolated."""
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation of ``${VAR:?...}`` (the only form the file may use) over a parsed tree."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match["name"]
            if not env.get(name):
                raise KeyError(f"{name}: {match['arg']}")
            return env[name]

        return VARIABLE.sub(substitute, value).replace("$$", "$")
    return value


def example_env(tmp_path: Path) -> dict[str, str]:
    """A value for every variable of deploy/.env.example, as an operator would fill them in."""
    env = {}
    for name in env_example_names():
        env[name] = f"{name.lower().replace('_', '')}0123456789abcdef"
    env["CITYHUB_BROKER_DIR"] = str(tmp_path / "broker")
    env["CITYHUB_BROKER_HOSTNAME"] = "mqtt.cjt.example.ro"
    env["CITYHUB_HUB_MQTT_USERNAME"] = "hub-1"
    return env


def env_example_names() -> list[str]:
    """The variables deploy/.env.example lists (``NAME=`` lines, empty: no defaults)."""
    names = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"deploy/.env.example: {line!r} must be NAME="
            assert value == "", f"deploy/.env.example: {line!r} must have no value (no defaults)"
            names.append(name)
    return names


def services() -> dict[str, dict[str, Any]]:
    """The compose file's services."""
    found = raw_compose()["services"]
    assert isinstance(found, dict)
    return found


def test_every_variable_is_required_without_default_and_listed_in_the_example() -> None:
    # Comments are not interpolated; everything else is.
    text = "\n".join(
        line.split(" #")[0]
        for line in COMPOSE.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    )
    uses = list(VARIABLE.finditer(text))
    assert uses, "the compose file takes its secrets from the environment"
    for use in uses:
        assert use["op"] == ":?", f"{use[0]}: every variable must be ${{VAR:?explain}}: no default, never empty"
        assert len(use["arg"].strip()) >= 10, f"{use[0]}: say what the variable is"
    assert {use["name"] for use in uses} == set(env_example_names())
    # A bare $VAR would be interpolated silently, empty when unset.
    assert not re.search(r"(?<!\$)\$[A-Za-z_]", text), "use ${VAR:?...}, not $VAR"


def test_secrets_never_appear_as_literal_values() -> None:
    for name, service in services().items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: environment as a mapping"
        for key, value in environment.items():
            if re.search(r"PASSWORD|TOKEN|SECRET", key):
                assert value is None or VARIABLE.search(str(value)), f"{name}.{key} must come from the environment"


def test_pass_through_variables_are_documented() -> None:
    """A variable given without a value passes from deploy/.env only when set: the example says how."""
    example = ENV_EXAMPLE.read_text(encoding="utf-8")
    for name, service in services().items():
        for key, value in service.get("environment", {}).items():
            if value is None:
                assert f"# {key}=" in example, f"{name}.{key}: show it (commented out) in deploy/.env.example"


def test_every_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        check = service.get("healthcheck")
        assert check, f"{name} has no health check"
        assert check.get("test"), f"{name}: its health check has no test"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: test must be CMD or CMD-SHELL"
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name}: healthcheck.{key}"


def test_named_volumes_are_declared_and_hold_every_state(tmp_path: Path) -> None:
    compose = interpolate(raw_compose(), example_env(tmp_path))
    declared = set(compose["volumes"])
    used = set()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, _target = volume.split(":")[:2]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
        targets = {volume.split(":")[1]: volume.split(":")[0] for volume in service.get("volumes", [])}
        if name in STATEFUL:
            assert targets.get(STATEFUL[name]) in declared, f"{name}: {STATEFUL[name]} needs a named volume"
        if service.get("image") == CITYHUB_IMAGE and name in ("hub", "demo-agent"):
            assert targets.get("/var/lib/cityhub") in declared, f"{name}: its data directory needs a named volume"
    assert used == declared, f"declared but unused volumes: {sorted(declared - used)}"


def test_bind_mounts_build_context_and_dockerfile_exist(tmp_path: Path) -> None:
    compose = interpolate(raw_compose(), example_env(tmp_path))
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
        build = service.get("build")
        if build:
            context = ROOT / build["context"]
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), f"{name}: no Dockerfile"
        for env_file in service.get("env_file", []):
            assert (ROOT / env_file).is_file(), f"{name}: env_file {env_file} does not exist"
    for config in compose.get("configs", {}).values():
        assert "file" not in config or (ROOT / config["file"]).is_file()


def test_broker_mounts_are_what_the_bootstrap_script_writes(tmp_path: Path) -> None:
    """Run scripts/broker-bootstrap.sh, then every path the compose file takes from it must exist."""
    import subprocess

    env = example_env(tmp_path)
    bootstrap = subprocess.run(
        [str(ROOT / "scripts" / "broker-bootstrap.sh"), env["CITYHUB_BROKER_DIR"], env["CITYHUB_BROKER_HOSTNAME"]],
        env={"PATH": "/usr/bin:/bin", "CITYHUB_BROKER_ADMIN_PASSWORD": env["CITYHUB_BROKER_ADMIN_PASSWORD"]},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bootstrap.returncode == 0, bootstrap.stderr
    compose = interpolate(raw_compose(), env)
    broker_paths = [
        volume.split(":")[0]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith(env["CITYHUB_BROKER_DIR"])
    ]
    broker_paths.append(compose["volumes"]["mosquitto-data"]["driver_opts"]["device"])
    assert len(broker_paths) >= 3
    for path in broker_paths:
        assert Path(path).exists(), f"{path} is not something broker-bootstrap.sh writes"
    assert (Path(compose["volumes"]["mosquitto-data"]["driver_opts"]["device"]) / "dynamic-security.json").is_file()
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    for needed in ("/mosquitto/config/certs/ca.crt", "/mosquitto/config/certs/server.key", "/mosquitto/data/"):
        assert needed in conf  # the container paths the mounts above fill


def test_cityhub_commands_are_real_subcommands() -> None:
    parser = build_parser()
    commands = {name: s["command"] for name, s in services().items() if s.get("image") == CITYHUB_IMAGE}
    assert set(commands) >= {"hub", "demo-agent", "demo-modbus", "demo-ups", "demo-cameras"}
    for name, command in commands.items():
        assert isinstance(command, list), f"{name}: command in exec form (a list)"
        try:
            args = parser.parse_args([str(part) for part in command])
        except SystemExit:
            pytest.fail(f"{name}: `cityhub {' '.join(map(str, command))}` is not a valid command line")
        assert callable(args.func)


def test_demo_simulators_play_shipped_scenarios() -> None:
    parser = build_parser()
    kinds = set()
    for name, service in services().items():
        if service.get("command", [""])[0] == "sim":
            assert service.get("profiles") == ["demo"], f"{name} belongs to the demo profile"
            args = parser.parse_args([str(part) for part in service["command"]])
            assert (ROOT / "simulators" / "scenarios" / f"{args.scenario}.yaml").is_file()
            assert args.repeat, f"{name}: a demo keeps playing its scenario"
            kinds.add(args.sim_kind)
    assert kinds == {"modbus", "snmp-ups", "onvif"}


def test_demo_agent_config_validates_and_matches_the_simulators() -> None:
    agent = services()["demo-agent"]
    mount = next(v for v in agent["volumes"] if v.endswith(":/etc/cityhub/agent.yaml:ro"))
    config, profiles = load_agent_config(ROOT / mount.split(":")[0])
    assert agent["command"] == ["agent", "--config", "/etc/cityhub/agent.yaml"]
    assert str(config.data_dir).startswith("/var/lib/cityhub")  # inside its named volume
    parser = build_parser()
    sims = {
        s["command"][1]: parser.parse_args(s["command"])
        for s in services().values()
        if "sim" in s.get("command", [])[:1]
    }
    ports = {line.port for line in config.lines}
    assert sims["modbus"].port in ports
    assert set(profiles) == {"crac-1", "room-1", "meter-1", "panel-1"}  # normal-day's devices, units 1..4
    ups = next(d for d in config.devices if getattr(d, "driver", "") == "snmp")
    community = getattr(ups, "community", None)
    community = community.get_secret_value() if hasattr(community, "get_secret_value") else community
    assert (getattr(ups, "port", None), [community]) == (sims["snmp-ups"].port, sims["snmp-ups"].community)
    cameras = sorted(getattr(d, "port", 0) for d in config.devices if getattr(d, "driver", "") == "onvif")
    assert cameras == [sims["onvif"].port, sims["onvif"].port + 1]
    assert config.snmp_traps is not None
    assert sims["snmp-ups"].trap_target == [f"127.0.0.1:{config.snmp_traps.port}"]


def test_demo_key_is_the_one_the_example_shows(tmp_path: Path) -> None:
    """The demo agent registers with the key that deploy/.env.example's demo line gives the hub."""
    import json

    config, _ = load_agent_config(ROOT / "deploy" / "demo" / "agent.yaml")
    assert config.registration is not None
    demo_line = next(line for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines() if '"key": "demo"' in line)
    keys = json.loads(demo_line.split("=", 1)[1])
    assert keys == [
        {
            "site": config.agent.site,
            "key": config.registration.provisioning_key,
            "secret": config.registration.provisioning_secret.get_secret_value(),
        }
    ]


def test_hub_environment_and_file_are_a_valid_production_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose = interpolate(raw_compose(), example_env(tmp_path))
    hub = compose["services"]["hub"]
    mount = next(v for v in hub["volumes"] if v.endswith(":/etc/cityhub/hub.yaml:ro"))
    assert hub["command"] == ["hub", "--config", "/etc/cityhub/hub.yaml"]
    for name in [n for n in __import__("os").environ if n.upper().startswith("CITYHUB_")]:
        monkeypatch.delenv(name)
    for key, value in hub["environment"].items():
        assert key.startswith("CITYHUB_")
        section, _, _field = key.removeprefix("CITYHUB_").lower().partition("_")
        assert section in HubSettings.model_fields, f"{key}: no such setting"
        if value is not None:
            monkeypatch.setenv(key, value)
    settings = load_hub_settings(ROOT / mount.split(":")[0])
    assert settings.api.environment == "production"
    assert settings.registration.enabled
    assert settings.registration.broker_admin_password is not None
    assert settings.mqtt.url.startswith("mqtts://hub-1:")
    assert "@mqtt.cjt.example.ro:8883?cafile=" in settings.mqtt.url
    assert settings.influx.url == "http://influxdb:8086"
    assert settings.influx.password
    assert str(settings.data_dir) == "/var/lib/cityhub"
    # The broker's alias is the certificate's name, so the hub's TLS check passes inside the network.
    aliases = compose["services"]["mosquitto"]["networks"]["default"]["aliases"]
    assert "mqtt.cjt.example.ro" in aliases
    ca_mount = next(v for v in hub["volumes"] if v.endswith(":/etc/cityhub/ca.crt:ro"))
    assert ca_mount.split(":")[0].endswith("/certs/ca.crt")


def test_influx_users_match_the_hub_and_grafana() -> None:
    compose = services()
    influx, grafana = compose["influxdb"]["environment"], compose["grafana"]["environment"]
    hub_file = yaml.safe_load((ROOT / "deploy" / "hub.yaml").read_text(encoding="utf-8"))
    assert influx["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"
    assert influx["INFLUXDB_USER"] == hub_file["influx"]["username"]
    assert influx["INFLUXDB_USER_PASSWORD"] == compose["hub"]["environment"]["CITYHUB_INFLUX_PASSWORD"]
    assert influx["INFLUXDB_DB"] == hub_file["influx"]["db"] == grafana["CITYHUB_INFLUX_DB"]
    assert (grafana["CITYHUB_INFLUX_USER"], grafana["CITYHUB_INFLUX_PASSWORD"]) == (
        influx["INFLUXDB_READ_USER"],
        influx["INFLUXDB_READ_USER_PASSWORD"],
    )


def test_grafana_datasource_reads_the_variables_compose_sets() -> None:
    """The provisioned datasource's $VARs are set in the grafana service (dashboards/provisioning)."""
    grafana = services()["grafana"]
    assert {
        "./dashboards/provisioning:/etc/grafana/provisioning:ro",
        "./dashboards/json:/var/lib/grafana/dashboards:ro",
    } <= set(grafana["volumes"])
    assert grafana["image"].startswith("grafana/grafana-oss:")
    datasources = sorted((ROOT / "dashboards" / "provisioning" / "datasources").glob("*.yaml"))
    if not datasources:
        pytest.fail("dashboards/provisioning/datasources/*.yaml is missing (the Grafana part provisions it)")
    for path in datasources:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("#")]
        used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", "\n".join(lines)))
        assert used, f"{path.name}: the datasource takes its URL and login from the environment"
        assert used <= set(grafana["environment"]), f"{path.name} reads {sorted(used - set(grafana['environment']))}"


def test_dockerfile_copies_what_exists_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    ignored = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    for source in re.findall(r"^COPY (?:--chmod=\S+ )?(?!--from)(.+) \S+$", dockerfile, re.MULTILINE):
        for part in source.split():
            assert (ROOT / part).exists(), f"Dockerfile copies {part}, which does not exist"
            assert not any(Path(part).match(pattern) or part.startswith(pattern + "/") for pattern in ignored)
    final = dockerfile.rsplit("FROM ", 1)[1]
    assert re.search(r"^USER (?!root|0)\S+", final, re.MULTILINE), "the runtime stage runs as a non-root user"
    assert "HEALTHCHECK" in final
    assert "[dev]" not in dockerfile
    assert ".[" not in dockerfile
    for pattern in (".venv", ".git", "var", "tests", "deploy/.env"):
        assert pattern in ignored, f".dockerignore must exclude {pattern}"
