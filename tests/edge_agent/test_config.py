"""The agent's configuration: valid files load with their profiles; bad ones name the file, item and field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from drivers.modbus.line import LineSettings
from drivers.modbus.profile import PROFILE_DIR
from edge_agent.config import ConfigError, load_agent_config

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "agent.yaml"
SHIPPED = "climate-controller, energy-meter, environment-sensor, gas-suppression"

BASE: dict[str, Any] = {
    "agent": {"id": "edge-test-01", "site": "test-site"},
    "lines": [
        {"name": "rs485-1", "transport": "rtu", "device": "/dev/ttyUSB0", "baudrate": 19200, "parity": "N"},
        {"name": "gw-1", "transport": "tcp", "host": "10.0.0.5", "port": 5020, "timeout_s": 0.5},
    ],
    "devices": [
        {"id": "crac-01", "line": "rs485-1", "unit": 1, "profile": "climate-controller", "poll_interval_s": 5},
        {"id": "gas-01", "line": "rs485-1", "unit": 2, "profile": "gas-suppression"},
        {"id": "meter-01", "line": "gw-1", "unit": 1, "profile": "energy-meter"},
    ],
}

SENSOR_PROFILE: dict[str, Any] = {
    "profile": "my-sensor",
    "kind": "environment_sensor",
    "points": [{"metric": "environment.temperature", "table": "input", "address": 0, "type": "int16", "scale": 0.1}],
}


def write(path: Path, content: dict[str, Any] | str | bytes) -> Path:
    """Write ``content`` (YAML of a dict, or text or bytes as they are) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text, encoding="utf-8")
    return path


def config(**changes: Any) -> dict[str, Any]:
    """The base configuration, deep-copied, with top-level ``changes``."""
    return {**copy.deepcopy(BASE), **changes}


def refusal(path: Path) -> str:
    """The message of the ConfigError loading ``path`` raises; it names the file first."""
    with pytest.raises(ConfigError) as caught:
        load_agent_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    return message


def problems(path: Path) -> list[str]:
    """The refusal's lines, one per problem, each naming the file first."""
    lines = refusal(path).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    return lines


# -- valid files --------------------------------------------------------------------------------------


def test_the_documented_example_loads() -> None:
    agent, profiles = load_agent_config(EXAMPLE)
    assert (agent.agent.id, agent.agent.site) == ("edge-cjt-01", "cjt-server-room")
    assert {d.id: profiles[d.id].name for d in agent.devices if d.driver == "modbus"} == {
        "crac-01": "climate-controller",
        "gas-01": "gas-suppression",
        "meter-01": "energy-meter",
    }
    assert [(d.id, d.driver) for d in agent.devices if d.driver != "modbus"] == [
        ("ups-01", "snmp"),
        ("bastion-gate", "onvif"),
    ]
    assert agent.snmp_traps is not None


def test_a_config_with_shipped_profiles_loads(tmp_path: Path) -> None:
    agent, profiles = load_agent_config(write(tmp_path / "agent.yaml", config()))
    assert {device: profile.name for device, profile in profiles.items()} == {
        "crac-01": "climate-controller",
        "gas-01": "gas-suppression",
        "meter-01": "energy-meter",  # unit 1 again, but on another line: allowed
    }
    rs485, gateway = (line.settings() for line in agent.lines)
    assert rs485 == LineSettings(name="rs485-1", transport="rtu", device="/dev/ttyUSB0", baudrate=19200, parity="N")
    assert rs485.request_gap_s == pytest.approx(3.5 * 11 / 19200)
    assert gateway.describe() == "tcp://10.0.0.5:5020"
    assert (gateway.timeout_s, gateway.request_gap_s) == (0.5, 0.0)
    crac, gas, _ = agent.devices
    assert (crac.poll_interval_s, gas.poll_interval_s, gas.site) == (5, 10.0, None)


def test_the_device_list_may_be_empty(tmp_path: Path) -> None:
    agent, profiles = load_agent_config(write(tmp_path / "agent.yaml", {"agent": {"site": "test-site"}}))
    assert (agent.lines, agent.devices, profiles) == ([], [], {})
    assert agent.agent.id.startswith("edge-")


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_a_profile_file_is_found_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    site = tmp_path / "etc" / "cityhub"
    write(site / "profiles" / f"my-sensor{suffix}", SENSOR_PROFILE)
    data = config()
    data["devices"].append({"id": "env-01", "line": "gw-1", "unit": 7, "profile": f"profiles/my-sensor{suffix}"})
    path = write(site / "agent.yaml", data)
    monkeypatch.chdir(tmp_path)  # not where the profile is: it is found next to the config, not the cwd
    _, profiles = load_agent_config(path.relative_to(tmp_path))
    assert profiles["env-01"].name == "my-sensor"
    assert profiles["env-01"].point("environment.temperature").scale == 0.1


def test_a_profile_file_may_be_given_by_absolute_path(tmp_path: Path) -> None:
    profile = write(tmp_path / "elsewhere" / "my-sensor.yaml", SENSOR_PROFILE)
    data = config()
    data["devices"].append({"id": "env-01", "line": "gw-1", "unit": 7, "profile": str(profile)})
    _, profiles = load_agent_config(write(tmp_path / "agent.yaml", data))
    assert profiles["env-01"].name == "my-sensor"


# -- invalid files ---------------------------------------------------------------------------------------


def edit(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    data = config()
    change(data)
    return data


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        pytest.param(
            edit(lambda d: d["devices"][0].update(pol_interval_s=5)),
            ["device 'crac-01'.pol_interval_s: Extra inputs are not permitted"],
            id="unknown device field",
        ),
        pytest.param(
            edit(lambda d: d["lines"][1].update(hots="10.0.0.6")),
            ["line 'gw-1'.hots: Extra inputs are not permitted"],
            id="unknown line field",
        ),
        pytest.param(
            config(mqt={"url": "mqtt://hub:1883"}), ["mqt: Extra inputs are not permitted"], id="unknown section"
        ),
        pytest.param(config(agent={"id": "edge-test-01"}), ["agent.site: Field required"], id="missing site"),
        pytest.param(
            {k: v for k, v in config().items() if k != "agent"}, ["agent: Field required"], id="missing agent"
        ),
        pytest.param(
            edit(lambda d: d["devices"][2].update(line="gw-9")),
            ["device 'meter-01': line 'gw-9' is not defined", "rs485-1", "gw-1"],
            id="undefined line",
        ),
        pytest.param(
            edit(lambda d: d["devices"][1].update(id="crac-01")),
            ["device id 'crac-01' is used twice"],
            id="duplicate device id",
        ),
        pytest.param(
            edit(lambda d: d["devices"][1].update(id="edge-test-01")),
            ["device id 'edge-test-01' is used twice"],
            id="device id of the agent itself",
        ),
        pytest.param(
            edit(lambda d: d["devices"][1].update(unit=1)),
            ["device 'gas-01': unit 1 is already used on line 'rs485-1'"],
            id="duplicate unit on a line",
        ),
        pytest.param(
            edit(lambda d: d["lines"].append({"name": "gw-1", "transport": "tcp", "host": "10.0.0.7"})),
            ["line 'gw-1' is defined twice"],
            id="duplicate line",
        ),
        pytest.param(
            edit(lambda d: d["lines"][1].pop("host")),
            ["line 'gw-1': ", "a tcp line needs host"],
            id="tcp line without host",
        ),
        pytest.param(
            edit(lambda d: d["lines"][0].pop("device")),
            ["line 'rs485-1': ", "an rtu line needs device"],
            id="rtu line without device",
        ),
        pytest.param(
            edit(lambda d: d["lines"][0].update(parity="X")),
            ["line 'rs485-1'.parity: "],
            id="bad parity",
        ),
        pytest.param(
            edit(lambda d: d["devices"][0].update(unit=248)),
            ["device 'crac-01'.unit: Input should be less than or equal to 247"],
            id="unit out of range",
        ),
        pytest.param(
            edit(lambda d: d["devices"][0].update(id="CRAC 01")),
            ["device 'CRAC 01'.id: String should match pattern"],
            id="bad device id",
        ),
        pytest.param(
            config(mqtt={"url": "http://hub:1883"}),
            ["mqtt.url: ", "scheme must be mqtt:// or mqtts://"],
            id="bad broker url",
        ),
    ],
)
def test_an_invalid_config_is_refused_by_file_item_and_field(
    tmp_path: Path, data: dict[str, Any], fragments: list[str]
) -> None:
    (message,) = problems(write(tmp_path / "agent.yaml", data))
    for fragment in fragments:
        assert fragment in message, message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = config()
    data["devices"][0]["unit"] = 300
    data["lines"][1].pop("host")
    found = problems(write(tmp_path / "agent.yaml", data))
    assert len(found) == 2, found
    assert any("device 'crac-01'.unit: " in line for line in found), found
    assert any("line 'gw-1': " in line and "needs host" in line for line in found), found


def test_an_unknown_profile_name_lists_the_shipped_ones(tmp_path: Path) -> None:
    data = edit(lambda d: d["devices"][0].update(profile="climate-control"))
    path = write(tmp_path / "agent.yaml", data)
    message = refusal(path)
    assert f"{path}: device 'crac-01'.profile: " in message
    assert str(PROFILE_DIR / "climate-control.yaml") in message
    assert "cannot read the profile (No such file or directory)" in message
    assert f"shipped profiles: {SHIPPED}" in message


def test_a_malformed_profile_file_is_named_with_the_device_and_the_point(tmp_path: Path) -> None:
    broken = copy.deepcopy(SENSOR_PROFILE)
    broken["points"][0]["scal"] = 0.1
    profile = write(tmp_path / "profiles" / "broken.yaml", broken)
    data = config()
    data["devices"].append({"id": "env-01", "line": "gw-1", "unit": 7, "profile": "profiles/broken.yaml"})
    path = write(tmp_path / "agent.yaml", data)
    message = refusal(path)
    assert message == (
        f"{path}: device 'env-01'.profile: {profile}: "
        "point 'environment.temperature'.scal: Extra inputs are not permitted"
    )


def test_every_bad_profile_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path / "profiles" / "not-yaml.yaml", "profile: [unclosed\n")
    data = config()
    data["devices"][0]["profile"] = "profiles/not-yaml.yaml"
    data["devices"][2]["profile"] = "profiles/missing.yaml"
    message = refusal(write(tmp_path / "agent.yaml", data))
    assert "device 'crac-01'.profile: " in message
    assert f"{tmp_path / 'profiles' / 'not-yaml.yaml'}: not valid YAML" in message
    assert f"device 'meter-01'.profile: {tmp_path / 'profiles' / 'missing.yaml'}: cannot read the profile" in message


def test_invalid_yaml_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "agent.yaml", "agent:\n  id: edge-1\n  site: [s1\ndevices: []\n")
    message = refusal(path)
    assert message.startswith(f"{path}: not valid YAML: ")
    assert "line 3, column 9" in message  # the unclosed bracket


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "- agent\n", "just words\n"])
def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "agent.yaml", text)
    assert refusal(path) == f"{path}: the top level must be a mapping of settings"


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "agent.yaml"
    assert refusal(path) == f"{path}: cannot read the configuration file: No such file or directory"


# -- known gaps ---------------------------------------------------------------------------------------


def test_a_config_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    text = yaml.safe_dump(config(), sort_keys=False) + "# Timi\u015foara, saved as Latin-2 by an old editor\n"
    path = write(tmp_path / "agent.yaml", text.encode("iso8859_2"))
    assert "agent.yaml" in refusal(path)


def test_a_profile_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    text = yaml.safe_dump(SENSOR_PROFILE) + "# capteur caf\u00e9\n"
    write(tmp_path / "profiles" / "latin1.yaml", text.encode("latin-1"))
    data = config()
    data["devices"].append({"id": "env-01", "line": "gw-1", "unit": 7, "profile": "profiles/latin1.yaml"})
    message = refusal(write(tmp_path / "agent.yaml", data))
    assert "device 'env-01'.profile" in message
    assert "latin1.yaml" in message


def test_a_section_given_twice_is_refused(tmp_path: Path) -> None:
    text = yaml.safe_dump(config(), sort_keys=False)
    text += "devices:\n  - {id: env-01, line: gw-1, unit: 7, profile: environment-sensor}\n"
    message = refusal(write(tmp_path / "agent.yaml", text))
    assert "devices" in message


# -- drivers other than Modbus ------------------------------------------------------------------------

CAMERA: dict[str, Any] = {
    "driver": "onvif",
    "id": "bastion-gate",
    "site": "bastion",
    "host": "10.0.1.20",
    "username": "cityhub",
    "password": "not-the-default",
}


def test_a_camera_entry_loads_beside_modbus_devices(tmp_path: Path) -> None:
    base = config()
    agent, profiles = load_agent_config(write(tmp_path / "agent.yaml", config(devices=[*base["devices"], CAMERA])))
    camera = agent.devices[-1]
    assert (camera.driver, camera.id, camera.site, camera.poll_interval_s) == ("onvif", "bastion-gate", "bastion", 30)
    assert set(profiles) == {"crac-01", "gas-01", "meter-01"}  # Modbus profiles only: cameras have none


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**CAMERA, "driver": "bacnet"}, "device 'bastion-gate': driver must be one of ('modbus', 'onvif'"),
        ({**CAMERA, "port": 0}, "device 'bastion-gate'.port: Input should be greater than or equal to 1"),
        ({**CAMERA, "line": "gw-1"}, "device 'bastion-gate'.line: Extra inputs are not permitted"),
        ({k: v for k, v in CAMERA.items() if k != "host"}, "device 'bastion-gate'.host: Field required"),
    ],
)
def test_bad_camera_entries_name_the_device_and_field(tmp_path: Path, entry: dict[str, Any], message: str) -> None:
    assert message in refusal(write(tmp_path / "agent.yaml", config(devices=[entry])))


def test_a_camera_and_a_modbus_device_cannot_share_an_id(tmp_path: Path) -> None:
    clash = {**CAMERA, "id": "crac-01"}
    assert "device id 'crac-01' is used twice" in refusal(
        write(tmp_path / "agent.yaml", config(devices=[*BASE["devices"], clash]))
    )
