"""The edge agent's configuration: the broker, the store-and-forward queue, and the device inventory.

The inventory says which device is where (a Modbus line and unit id, a UPS's or camera's address and
credentials), which driver reads it, which profile describes it and how often it is polled; the
profile (next to its driver) says what the device exposes. Each driver owns its inventory entry's
model (``driver:`` picks it, ``modbus`` when absent). Errors name the file, the device or line, and
the field.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, SecretStr, Tag, ValidationError, model_validator

from cityhub.contract.registration import KEY_PATTERN
from cityhub.contract.topics import ID_PATTERN
from cityhub.settings import MqttUrl, TopicRoot
from cityhub.yamlfile import load_yaml
from drivers.modbus.line import LineSettings
from drivers.modbus.profile import DeviceProfile, ProfileError, load_profile
from drivers.onvif import OnvifDeviceConfig
from drivers.snmp_ups import MibProfileError, SnmpDeviceConfig, TrapListenerConfig, load_mib_profile

Id = Annotated[str, Field(pattern=ID_PATTERN)]


class ConfigError(ValueError):
    """An invalid agent configuration; the message names the file, the item and the field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentIdentity(_Section):
    """The agent is a device of its own (kind ``edge_agent``): its status is its devices' lifeline."""

    id: Id = Field(default_factory=lambda: f"edge-{socket.gethostname()}"[:64])
    site: Id


class AgentMqtt(_Section):
    """The broker the agent publishes to."""

    url: MqttUrl = "mqtt://127.0.0.1:1883"
    topic_root: TopicRoot = "cityhub"
    client_id: str | None = None
    protocol: Literal[5, 4] = 5
    keepalive_s: int = Field(default=30, ge=5, le=3_600)


class AgentRegistration(_Section):
    """Self-registration on a broker that requires it (docs/mqtt-contract.md#registration)."""

    provisioning_key: Annotated[str, Field(pattern=KEY_PATTERN)]
    provisioning_secret: SecretStr
    credentials_file: Path | None = Field(
        default=None, description="where the approved login is kept (mode 0600); data_dir/credentials.json if unset"
    )


class BufferSettings(_Section):
    """The on-disk store-and-forward queue."""

    max_mb: int = Field(default=256, ge=1, le=1_000_000)
    max_age_h: float = Field(default=7 * 24, gt=0)
    drain_rate: float = Field(default=500, gt=0, description="messages per second when draining a backlog")


class AgentHttp(_Section):
    """Health and metrics endpoint."""

    host: str = "127.0.0.1"
    port: int | None = Field(default=9102, ge=0, le=65_535)


class LineConfig(_Section):
    """A Modbus TCP device or gateway, or an RS-485 line."""

    name: Id
    transport: Literal["tcp", "rtu"]
    host: str | None = None
    port: int = Field(default=502, ge=1, le=65_535)
    device: str | None = None
    baudrate: int = Field(default=9600, ge=300, le=921_600)
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    timeout_s: float = Field(default=1.0, gt=0, le=30)
    gap_s: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _endpoint(self) -> Self:
        if self.transport == "tcp" and not self.host:
            raise ValueError("a tcp line needs host")
        if self.transport == "rtu" and not self.device:
            raise ValueError("an rtu line needs device (the serial port, e.g. /dev/ttyUSB0)")
        return self

    def settings(self) -> LineSettings:
        """The driver's settings for this line."""
        return LineSettings(**self.model_dump())


class ModbusDeviceConfig(_Section):
    """A Modbus device of the inventory: a unit on one of the lines."""

    driver: Literal["modbus"] = "modbus"
    id: Id
    line: Id
    # 0 is the broadcast address, which never answers.
    unit: int = Field(default=1, ge=1, le=247, description="Modbus unit (slave) id")
    profile: str = Field(description="a shipped profile name or the path of a profile file")
    poll_interval_s: float = Field(default=10.0, ge=0.1, le=86_400)
    site: Id | None = Field(default=None, description="the agent's site if unset")


def _driver_of(entry: Any) -> str:
    """The inventory entry's driver: ``modbus`` unless it names another (files written before others existed)."""
    driver = entry.get("driver", "modbus") if isinstance(entry, dict) else getattr(entry, "driver", "modbus")
    return str(driver)


DRIVERS = ("modbus", "onvif", "snmp")

DeviceEntry = Annotated[
    Annotated[ModbusDeviceConfig, Tag("modbus")]
    | Annotated[OnvifDeviceConfig, Tag("onvif")]
    | Annotated[SnmpDeviceConfig, Tag("snmp")],
    Discriminator(_driver_of, custom_error_type="driver", custom_error_message=f"driver must be one of {DRIVERS}"),
]


class AgentConfig(_Section):
    """Everything the agent needs."""

    agent: AgentIdentity
    data_dir: Path = Path("var/agent")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    mqtt: AgentMqtt = Field(default_factory=AgentMqtt)
    registration: AgentRegistration | None = Field(
        default=None, description="register over MQTT on first start instead of using credentials from the URL"
    )
    buffer: BufferSettings = Field(default_factory=BufferSettings)
    http: AgentHttp = Field(default_factory=AgentHttp)
    lines: list[LineConfig] = Field(default_factory=list)
    devices: list[DeviceEntry] = Field(default_factory=list)
    snmp_traps: TrapListenerConfig | None = Field(
        default=None, description="listen for SNMP traps and informs from the UPS units (none when unset)"
    )

    @model_validator(mode="after")
    def _references(self) -> Self:
        problems = []
        lines = [line.name for line in self.lines]
        problems += [f"line {name!r} is defined twice" for name in sorted({n for n in lines if lines.count(n) > 1})]
        ids = [device.id for device in self.devices] + [self.agent.id]
        problems += [f"device id {i!r} is used twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
        units: set[tuple[str, int]] = set()
        for device in self.devices:
            if not isinstance(device, ModbusDeviceConfig):
                continue
            if device.line not in lines:
                problems.append(f"device {device.id!r}: line {device.line!r} is not defined (lines: {lines})")
            if (device.line, device.unit) in units:
                problems.append(f"device {device.id!r}: unit {device.unit} is already used on line {device.line!r}")
            units.add((device.line, device.unit))
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _location(data: Any, loc: tuple[int | str, ...]) -> str:
    """``devices[2].unit`` becomes ``device 'crac-01'.unit``: people know devices by id, not index."""
    if len(loc) >= 3 and loc[0] == "devices" and loc[2] in DRIVERS:
        loc = loc[:2] + loc[3:]  # the union's tag: the entry's driver says it already
    if len(loc) >= 2 and loc[0] in ("devices", "lines") and isinstance(loc[1], int):
        key = "id" if loc[0] == "devices" else "name"
        try:
            name = data[loc[0]][loc[1]][key]
            return f"{loc[0][:-1]} {name!r}" + "".join(f".{part}" for part in loc[2:])
        except (KeyError, IndexError, TypeError):
            pass
    return ".".join(str(part) for part in loc) or "(top level)"


def load_agent_config(path: Path) -> tuple[AgentConfig, dict[str, DeviceProfile]]:
    """Load and validate the agent's file and every profile it names (profiles by device id)."""
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): save the file as UTF-8") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    try:
        config = AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            "\n".join(f"{path}: {_location(data, e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False))
        ) from None
    profiles: dict[str, DeviceProfile] = {}
    problems = []
    for device in config.devices:
        if isinstance(device, OnvifDeviceConfig) or device.profile is None:
            continue
        reference = device.profile
        if reference.endswith((".yaml", ".yml")) and not Path(reference).is_absolute():
            reference = str(path.parent / reference)
        try:
            if isinstance(device, ModbusDeviceConfig):
                profiles[device.id] = load_profile(reference)
            else:  # checked now, so a typo fails at start, not at the first poll
                load_mib_profile(reference)
        except (ProfileError, MibProfileError) as exc:
            problems.append(f"{path}: device {device.id!r}.profile: {exc}")
    if problems:
        raise ConfigError("\n".join(problems))
    return config, profiles
