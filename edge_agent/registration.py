"""An agent's first start on a broker that requires registration: ask, wait for approval, keep the login.

The agent connects with its site's provisioning key (a login that may only send registration requests
and read their answers), chooses a long random password for its own login, and asks the hub for it,
listing the devices it publishes for (docs/mqtt-contract.md#registration). The password and the
request's nonce are written (mode 0600) before the request goes out, so an agent restarted while it
waits does not lose a password the hub may be approving; once approved, the login is kept in the
credentials file (mode 0600) and used from then on, the provisioning key no more.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import ValidationError

from cityhub.contract.registration import (
    RegistrationRequest,
    RegistrationResponse,
    RegistrationState,
    RegistrationTopics,
    provisioning_username,
)
from cityhub.mqtt import BrokerAddress, MqttSession, SessionOptions

log = logging.getLogger(__name__)


class RegistrationRefused(Exception):
    """The hub rejected or revoked the agent; an operator must act before it can publish."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """The agent's own broker login."""

    username: str
    password: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """What the agent registers as."""

    site: str
    device: str
    key: str
    secret: str
    gateway_for: tuple[tuple[str, str], ...]


def write_private(path: Path, data: dict[str, str]) -> None:
    """Write JSON readable by the agent's user only (0600 from creation, then renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(data, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def read_private(path: Path) -> dict[str, str] | None:
    """The JSON file's content; its mode is set back to 0600 if someone widened it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if path.stat().st_mode & 0o077:
        log.warning("%s was readable by others: mode set back to 0600", path)
        os.chmod(path, 0o600)
    return data if isinstance(data, dict) else None


@dataclass(slots=True)
class Registration:
    """Gets the agent its login, by registering when it has none."""

    address: BrokerAddress
    topics: RegistrationTopics
    identity: Identity
    credentials_file: Path
    protocol: int = 5
    clock: Callable[[], float] = time.time

    @property
    def pending_file(self) -> Path:
        """Where the password and nonce of a request in flight wait."""
        return self.credentials_file.with_name(self.credentials_file.name + ".pending")

    def saved(self) -> Credentials | None:
        """The login from an earlier approval, if any."""
        data = read_private(self.credentials_file)
        return Credentials(username=data["username"], password=data["password"]) if data else None

    async def credentials(self, timeout_s: float | None = None) -> Credentials:
        """The saved login, or a new one once an operator (or auto-approval) accepts the request."""
        saved = self.saved()
        if saved is not None:
            return saved
        pending = read_private(self.pending_file) or {"password": secrets.token_urlsafe(32)}
        pending["nonce"] = secrets.token_urlsafe(16)  # a fresh request: a nonce is never sent twice
        write_private(self.pending_file, pending)
        username = await self._ask(pending["password"], pending["nonce"], timeout_s)
        credentials = Credentials(username=username, password=pending["password"])
        write_private(self.credentials_file, {"username": username, "password": credentials.password})
        self.pending_file.unlink()
        log.info("registered: broker login %s saved in %s", username, self.credentials_file)
        return credentials

    async def _ask(self, password: str, nonce: str, timeout_s: float | None) -> str:
        ident = self.identity
        response_topic = self.topics.response(ident.site, ident.key, ident.device)
        address = replace(self.address, username=provisioning_username(ident.site, ident.key), password=ident.secret)
        options = SessionOptions(
            client_id=f"prov-{ident.site}-{ident.device}"[:64],
            protocol=self.protocol,
            subscriptions=[(response_topic, 1)],
        )
        request = RegistrationRequest.model_validate(
            {
                "device": ident.device,
                "site": ident.site,
                "kind": "edge_agent",
                "gateway_for": [{"site": s, "device": d} for s, d in ident.gateway_for],
                "password": password,
                "nonce": nonce,
                "ts": int(self.clock() * 1000),
            }
        )
        async with MqttSession(address, options) as session:
            topic = self.topics.request(ident.site, ident.key, ident.device)
            await session.publish(topic, request.model_dump_json(exclude_defaults=True).encode(), qos=1)
            log.info("registration request sent as %s/%s; waiting for an operator's approval", ident.site, ident.device)
            return await self._wait(session, nonce, timeout_s)

    async def _wait(self, session: MqttSession, nonce: str, timeout_s: float | None) -> str:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while deadline is None or time.monotonic() < deadline:
            remaining = 5.0 if deadline is None else max(0.0, min(5.0, deadline - time.monotonic()))
            for message in await session.receive(10, remaining):
                answer = _parse(message.payload)
                if answer is None or answer.nonce != nonce:
                    continue  # an answer to an earlier request (retained), or not an answer at all
                if answer.state is RegistrationState.APPROVED and answer.username:
                    return answer.username
                if answer.state in (RegistrationState.REJECTED, RegistrationState.REVOKED):
                    raise RegistrationRefused(
                        f"registration {answer.state.value}: {answer.reason or 'no reason given'}"
                    )
                log.info("registration pending: an operator has to approve %s", answer.device)
        raise TimeoutError(f"no approval within {timeout_s} s")


def _parse(payload: bytes) -> RegistrationResponse | None:
    try:
        return RegistrationResponse.model_validate_json(payload)
    except ValidationError:
        log.warning("ignored an answer that is not a registration response")
        return None
