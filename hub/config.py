"""Hub configuration: a YAML file, overridden by ``CITYHUB_*`` environment variables.

Each section maps to environment variables with one underscore after the section name:
``mqtt.url`` is ``CITYHUB_MQTT_URL``, ``influx.db`` is ``CITYHUB_INFLUX_DB``, ``ingest.flush_interval_s``
is ``CITYHUB_INGEST_FLUSH_INTERVAL_S``. docs/configuration.md lists every setting.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cityhub.contract import Limits
from cityhub.contract.registration import KEY_PATTERN
from cityhub.contract.topics import ID_PATTERN
from cityhub.settings import MqttUrl, TopicRoot
from cityhub.yamlfile import load_yaml
from hub.alerts.config import AlertsConfig
from hub.api.settings import ApiSettings
from hub.errors import ConfigError
from hub.notify.config import NotifyConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttConfig(_Section):
    """The broker the hub subscribes to."""

    url: MqttUrl = "mqtt://127.0.0.1:1883"
    client_id: str = Field(default_factory=lambda: f"cityhub-hub-{socket.gethostname()}")
    protocol: Literal[5, 4] = Field(default=5, description="5, or 4 for MQTT 3.1.1 brokers")
    topic_root: TopicRoot = "cityhub"
    #: Several hubs with the same group share one stream (MQTT 5 shared subscription).
    shared_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=60, le=0xFFFFFFFF)
    receive_maximum: int = Field(default=2_000, ge=1, le=65_535)
    keepalive_s: int = Field(default=30, ge=5, le=3_600)

    @model_validator(mode="after")
    def _shared_needs_v5(self) -> Self:
        if self.shared_group and self.protocol != 5:
            raise ValueError("shared_group needs MQTT protocol 5")
        return self


class InfluxConfig(_Section):
    """The InfluxDB server; with no ``url`` the hub stores time series in SQLite."""

    url: str | None = None
    api: Literal["v1", "v2"] = "v1"
    db: str = Field(default="cityhub", min_length=1, max_length=128)
    rp: str | None = Field(default=None, description="v1 retention policy; the database default if unset")
    username: str | None = None
    password: str | None = None
    token: str | None = Field(default=None, description="v2 API token, or v1 compatibility token")
    org: str | None = None
    bucket: str | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    create_database: bool = True
    spool_max_mb: int = Field(
        default=1024, ge=1, description="Disk for batches waiting while InfluxDB is down; then backpressure"
    )

    @model_validator(mode="after")
    def _v2_needs_credentials(self) -> Self:
        if self.url and self.api == "v2":
            missing = [name for name in ("token", "org", "bucket") if not getattr(self, name)]
            if missing:
                raise ValueError(f"api v2 needs {', '.join(missing)} (CITYHUB_INFLUX_TOKEN, _ORG, _BUCKET)")
        return self


class IngestConfig(_Section):
    """Batching and input limits."""

    batch_max_points: int = Field(default=5_000, ge=1, le=100_000)
    batch_max_messages: int = Field(default=1_000, ge=1, le=65_535)
    flush_interval_s: float = Field(default=1.0, gt=0, le=60)
    max_payload_bytes: int = Field(default=256 * 1024, ge=1_024, le=16 * 1024 * 1024)
    max_past_s: int = Field(default=30 * 24 * 3600, ge=60)
    max_future_s: int = Field(default=300, ge=0)
    #: How many sequence numbers below a device's highest one are remembered to drop replays (0: off).
    dedup_window: int = Field(default=4_096, ge=0, le=1_000_000)
    reject_log_interval_s: float = Field(default=60.0, ge=0)
    dead_letter: bool = True

    def limits(self) -> Limits:
        """The contract limits these settings define."""
        return Limits(
            max_payload_bytes=self.max_payload_bytes,
            max_past_ms=self.max_past_s * 1000,
            max_future_ms=self.max_future_s * 1000,
        )


class HttpConfig(_Section):
    """The health and metrics endpoint."""

    host: str = "127.0.0.1"
    port: int | None = Field(default=8080, ge=0, le=65_535, description="None turns the endpoint off; 0 picks one")


class SelfStatsConfig(_Section):
    """The hub's statistics about itself, written into its time-series store (docs/storage.md#hub_stats)."""

    enabled: bool = True
    interval_s: float = Field(default=10.0, ge=0.1, le=3_600)


class ProvisioningKeyConfig(_Section):
    """A site's provisioning key: the login new devices of that site register with."""

    site: str = Field(pattern=ID_PATTERN)
    key: str = Field(pattern=KEY_PATTERN)
    secret: SecretStr = Field(description="the key's broker password; give it to the site's installers only")
    auto_approve: bool = Field(default=False, description="approve this key's devices without an operator")

    @field_validator("secret")
    @classmethod
    def _strong(cls, secret: SecretStr) -> SecretStr:
        if len(secret.get_secret_value()) < 16:
            raise ValueError("a provisioning secret needs at least 16 characters")
        return secret


class RegistrationConfig(_Section):
    """Self-registration over MQTT and the broker's access control (docs/mqtt-contract.md#registration)."""

    enabled: bool = False
    enforce: bool = Field(default=True, description="when enabled: store data of approved devices only")
    broker_admin_username: str | None = Field(default=None, description="the dynamic security admin login")
    broker_admin_password: SecretStr | None = None
    provisioning_keys: list[ProvisioningKeyConfig] = Field(default_factory=list)
    max_clock_skew_s: float = Field(default=300.0, gt=0, le=86_400)
    requests_per_minute: float = Field(default=10.0, gt=0, le=10_000)
    burst: int = Field(default=5, ge=1, le=10_000)

    @model_validator(mode="after")
    def _admin_when_enabled(self) -> RegistrationConfig:
        if self.enabled and not (self.broker_admin_username and self.broker_admin_password):
            raise ValueError("registration needs broker_admin_username and broker_admin_password (no defaults)")
        return self


class HubSettings(BaseSettings):
    """Everything the hub needs to run."""

    model_config = SettingsConfigDict(
        env_prefix="CITYHUB_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        case_sensitive=False,
    )

    data_dir: Path = Path("var/hub")
    hub_id: str = Field(default_factory=socket.gethostname, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    influx: InfluxConfig = Field(default_factory=InfluxConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    registration: RegistrationConfig = Field(default_factory=RegistrationConfig)
    api: ApiSettings = Field(default_factory=ApiSettings)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    notifications: NotifyConfig = Field(default_factory=NotifyConfig)
    selfstats: SelfStatsConfig = Field(default_factory=SelfStatsConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment variables win over the YAML file, which is passed as init arguments."""
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _window_holds_a_batch(self) -> Self:
        if self.mqtt.receive_maximum < self.ingest.batch_max_messages:
            raise ValueError(
                f"mqtt.receive_maximum ({self.mqtt.receive_maximum}) must be at least "
                f"ingest.batch_max_messages ({self.ingest.batch_max_messages}), or batches never fill"
            )
        return self


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): save the file as UTF-8") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings, not {type(data).__name__}")
    return data


def format_validation_error(source: str, exc: ValidationError) -> str:
    """One line per problem: ``source: field.path: message``."""
    lines = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"{source}: {location}: {error['msg']}")
    return "\n".join(lines)


def load_hub_settings(path: Path | None = None, **overrides: Any) -> HubSettings:
    """Load the YAML file (if any), apply ``CITYHUB_*`` variables and ``overrides``, validate."""
    data = _read_yaml(path) if path else {}
    for key, value in overrides.items():
        data[key] = value
    source = str(path) if path else "configuration"
    env_names = sorted(name for name in os.environ if name.upper().startswith("CITYHUB_"))
    if env_names:
        source += f" (with {', '.join(env_names)})"
    try:
        return HubSettings(**data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None
