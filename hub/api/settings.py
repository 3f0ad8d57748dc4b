"""Settings of the hub's HTTP API: the ``api:`` section of the hub configuration.

Flat fields map to ``CITYHUB_API_<FIELD>`` variables (``CITYHUB_API_BOOTSTRAP_ADMIN_PASSWORD``);
``teams`` is set in the YAML file. docs/api-security.md explains each setting.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from hub.api.errors import InsecureSettingsError

log = logging.getLogger(__name__)

#: Passwords and tokens refused in production whatever their length: defaults, placeholders and the
#: examples in our own documentation (docs/api-security.md), which someone will copy one day.
KNOWN_WEAK = frozenset(
    {
        "admin",
        "administrator",
        "password",
        "passw0rd",
        "secret",
        "changeme",
        "change-me",
        "change_me",
        "changethis",
        "cityhub",
        "cityhub-admin",
        "default",
        "example",
        "letmein",
        "test",
        "123456",
        "12345678",
        "123456789012",
        "qwerty",
        "demo",
        "demo-admin-password",
        "correct-horse-battery-staple",
        "replace-with-a-long-random-password",
    }
)
#: A password longer than this is refused before hashing: argon2 over megabytes is a denial of service.
MAX_PASSWORD_LENGTH = 1024
#: Static tokens (Prometheus) shorter than this are guessable.
MIN_TOKEN_LENGTH = 32


def weakness(secret: str, *, min_length: int, username: str | None = None) -> str | None:
    """Why ``secret`` is weak, or None when it is acceptable."""
    lowered = secret.lower()
    if lowered in KNOWN_WEAK or lowered.replace("-", "").replace("_", "") in KNOWN_WEAK:
        return "is a well-known default or documented example"
    if len(secret) < min_length:
        return f"is shorter than {min_length} characters"
    if len(secret) > MAX_PASSWORD_LENGTH:
        return f"is longer than {MAX_PASSWORD_LENGTH} characters"
    if len(set(secret)) < 4:
        return "uses fewer than 4 distinct characters"
    if username and username.lower() in lowered:
        return "contains the username"
    return None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GrantConfig(_Section):
    """Devices of these kinds at these sites (shell-style globs: ``*``, ``?``, ``[ab]``)."""

    sites: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    kinds: list[str] = Field(default_factory=lambda: ["*"], min_length=1)


class TeamConfig(GrantConfig):
    """A team's devices: ``sites`` by ``kinds``, plus any further ``grants`` (any one that matches suffices)."""

    description: str = ""
    grants: list[GrantConfig] = Field(default_factory=list)


#: Kinds of the server room and the platform itself.
IT_KINDS = ["ups", "climate", "gas_suppression", "energy_meter", "environment_sensor", "edge_agent"]
#: Street-level equipment of the public domain.
ADP_KINDS = [
    "street_light",
    "parking_sensor",
    "air_quality",
    "noise_sensor",
    "weather_station",
    "water_meter",
    "traffic_counter",
]


def default_teams() -> dict[str, TeamConfig]:
    """The three teams of CONTEXT.md, each at every site; deployments narrow the sites."""
    return {
        "it": TeamConfig(description="IT staff: server room and platform", kinds=IT_KINDS),
        "police": TeamConfig(description="Local police: cameras", kinds=["camera"]),
        "adp": TeamConfig(description="Public-domain administration: street-level equipment", kinds=ADP_KINDS),
    }


class ApiSettings(_Section):
    """Authentication, authorisation and audit of the hub's REST API."""

    #: production by default: a hub someone forgot to configure refuses weak secrets; the demo says development.
    environment: Literal["development", "production"] = "production"
    token_ttl_s: int = Field(default=3_600, ge=60, le=7 * 24 * 3600, description="access token lifetime")
    password_min_length: int = Field(default=12, ge=8, le=128)
    login_window_s: float = Field(default=300.0, gt=0, le=86_400)
    login_max_failures_per_user: int = Field(default=5, ge=1, le=1_000)
    login_max_failures_per_ip: int = Field(default=20, ge=1, le=100_000)
    #: Reverse proxies whose X-Forwarded-For is believed; the client address of anyone else is the socket's.
    trusted_proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(default_factory=list)
    teams: dict[str, TeamConfig] = Field(default_factory=default_teams)
    bootstrap_admin_username: str = Field(default="admin", pattern=r"^[a-z0-9][a-z0-9._@-]{0,63}$")
    #: Creates the first administrator when there is no user at all; ignored afterwards (then remove it).
    bootstrap_admin_password: SecretStr | None = None
    #: When set, /metrics wants ``Authorization: Bearer <token>`` (Prometheus: ``authorization.credentials_file``).
    metrics_token: SecretStr | None = None

    @field_validator("teams")
    @classmethod
    def _team_names(cls, teams: dict[str, TeamConfig]) -> dict[str, TeamConfig]:
        for name in teams:
            if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"team name {name!r}: letters, digits, '-' and '_' only, at most 64")
        return teams

    def problems(self, others: Mapping[str, SecretStr | str | None] | None = None) -> list[str]:
        """Every default or weak secret, as ``name: why`` lines (``others``: further named secrets to check)."""
        found = []
        if self.bootstrap_admin_password is not None:
            why = weakness(
                self.bootstrap_admin_password.get_secret_value(),
                min_length=self.password_min_length,
                username=self.bootstrap_admin_username,
            )
            if why:
                found.append(f"api.bootstrap_admin_password {why}")
        if self.metrics_token is not None:
            why = weakness(self.metrics_token.get_secret_value(), min_length=MIN_TOKEN_LENGTH)
            if why:
                found.append(f"api.metrics_token {why}")
        for name, value in (others or {}).items():
            secret = value.get_secret_value() if isinstance(value, SecretStr) else value
            why = weakness(secret, min_length=self.password_min_length) if secret is not None else None
            if why:
                found.append(f"{name} {why}")
        return found

    def check_secrets(self, others: Mapping[str, SecretStr | str | None] | None = None) -> None:
        """Raise InsecureSettingsError listing every weak secret in production; in development, log them."""
        found = self.problems(others)
        if not found:
            return
        if self.environment == "production":
            raise InsecureSettingsError(found)
        for problem in found:
            log.warning("development mode: accepting a weak secret: %s", problem)
