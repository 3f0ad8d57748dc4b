"""Inventory models of the SNMP UPS driver: one UPS (``SnmpDeviceConfig``) and the trap listener.

These are pydantic models because they cross a boundary (the agent's YAML inventory); the agent's
config loader embeds them. Credentials are ``SecretStr`` so they never show in logs or reprs, and there
is no default community: ``public`` would be a default secret.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from cityhub.contract.topics import ID_PATTERN

AuthProtocol = Literal["md5", "sha", "sha224", "sha256", "sha384", "sha512"]
#: aes192/aes256 localize keys as draft-blumenthal-aes-usm-04 (Net-SNMP's AES-192/AES-256);
#: aes192c/aes256c as Cisco does (Reeder), for agents that follow Cisco.
PrivProtocol = Literal["des", "3des", "aes", "aes192", "aes256", "aes192c", "aes256c"]
SnmpVersion = Annotated[Literal["1", "2c", "3"], BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]
HexEngineId = Annotated[str, Field(pattern=r"^(0x)?([0-9a-fA-F]{2}){5,32}$")]
# RFC 3414 section 11.2: pass phrases of at least 8 characters.
Passphrase = Annotated[SecretStr, Field(min_length=8)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UsmCredentials(_Model):
    """An SNMPv3 user (USM, RFC 3414): name, and authentication and privacy protocols with their keys."""

    user: Annotated[str, Field(min_length=1, max_length=32)]
    auth_protocol: AuthProtocol | None = None
    auth_key: Passphrase | None = None
    priv_protocol: PrivProtocol | None = None
    priv_key: Passphrase | None = None

    @model_validator(mode="after")
    def _levels(self) -> Self:
        if (self.auth_protocol is None) != (self.auth_key is None):
            raise ValueError("auth_protocol and auth_key go together")
        if (self.priv_protocol is None) != (self.priv_key is None):
            raise ValueError("priv_protocol and priv_key go together")
        if self.priv_protocol is not None and self.auth_protocol is None:
            raise ValueError("privacy needs authentication too (authPriv): set auth_protocol and auth_key")
        return self


class SnmpDeviceConfig(_Model):
    """One UPS in the agent's inventory."""

    driver: Literal["snmp"]
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    site: Annotated[str, Field(pattern=ID_PATTERN)] | None = None
    poll_interval_s: Annotated[float, Field(gt=0, le=86_400)] = 10.0
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65_535)] = 161
    version: SnmpVersion = "2c"
    community: SecretStr | None = Field(default=None, description="v1 and v2c")
    user: Annotated[str, Field(min_length=1, max_length=32)] | None = Field(default=None, description="v3")
    auth_protocol: AuthProtocol | None = None
    auth_key: Passphrase | None = None
    priv_protocol: PrivProtocol | None = None
    priv_key: Passphrase | None = None
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    retries: Annotated[int, Field(ge=0, le=10)] = 1
    profile: str | None = Field(
        default=None, description="a shipped MIB profile or a profile file; None: chosen by sysObjectID"
    )

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.version in ("1", "2c"):
            if self.community is None:
                raise ValueError(f"SNMP v{self.version} needs a community")
            if self.user is not None:
                raise ValueError("user and keys are for version 3; v1 and v2c use a community")
        else:
            if self.user is None:
                raise ValueError("SNMP v3 needs a user")
            if self.community is not None:
                raise ValueError("a community is for v1 and v2c; v3 uses a user")
            self.usm()  # the user's own checks
        return self

    def usm(self) -> UsmCredentials:
        """The v3 credentials (only for version 3)."""
        assert self.user is not None
        return UsmCredentials(
            user=self.user,
            auth_protocol=self.auth_protocol,
            auth_key=self.auth_key,
            priv_protocol=self.priv_protocol,
            priv_key=self.priv_key,
        )


class TrapUser(UsmCredentials):
    """An SNMPv3 user the trap listener accepts notifications from.

    A v3 *trap* is authenticated with keys localized to the sender's engine (RFC 3414 section 2.6):
    list the engine ids of the UPS cards that send them. *Informs* use the listener's own engine and
    need none.
    """

    engine_ids: list[HexEngineId] = Field(default_factory=list)


class TrapListenerConfig(_Model):
    """The agent's one trap and inform receiver."""

    host: str = "0.0.0.0"  # noqa: S104 (traps come from the network)
    port: Annotated[int, Field(ge=0, le=65_535)] = 162  # 0: any free port (tests)
    communities: list[SecretStr] = Field(default_factory=list, description="accepted v1/v2c communities")
    users: list[TrapUser] = Field(default_factory=list, description="accepted v3 users")
    engine_id: HexEngineId | None = Field(default=None, description="the listener's engine id; default: random")
