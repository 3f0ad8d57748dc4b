"""Registration decisions: a device's request → pending → approved (its broker login created) or rejected.

The registrar checks every request before it touches the registry: the topic names the provisioning
key (the broker only lets that key's login publish there), the payload must be strict contract JSON
naming the same site and device as the topic, carry a nonce never seen before and a timestamp near the
hub's clock (a replayed request is refused), and each key may send only so many requests a minute (a
flood from one key cannot bury the others). What is refused is counted by reason and logged once per
key and reason; nothing of it is stored.

On approval the registrar asks the broker (``BrokerAccess``, the dynamic security plugin in production)
for a login with the password the device chose and exactly its topics, then answers on the device's
response topic. Every decision goes to the audit log with who made it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import ValidationError

from cityhub.contract import TopicError
from cityhub.contract.registration import (
    RegistrationRequest,
    RegistrationResponse,
    RegistrationState,
    RegistrationTopics,
    device_username,
)
from hub.registry.store import Registration, RegistryStore

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024


class BrokerAccess(Protocol):
    """What the registrar needs from the broker's access control."""

    async def grant(self, username: str, password: str, devices: Sequence[tuple[str, str]]) -> None:
        """Create or update a login allowed to publish exactly on these (site, device) topics."""
        ...

    async def revoke(self, username: str) -> None:
        """Disable a login and drop its connection."""
        ...


#: Publish (topic, payload, retain) on the broker, QoS 1.
Publish = Callable[[str, bytes, bool], Awaitable[None]]
#: Record a security-relevant action: (actor, action, target, outcome, detail, source address or None).
Audit = Callable[[str, str, str, str, dict[str, object], str | None], Awaitable[None]]


class RegistryError(Exception):
    """An operator's decision that cannot be made (no such device, nothing to decide)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationPolicy:
    """How requests are checked and which are approved without an operator."""

    max_clock_skew_s: float = 300.0
    requests_per_minute: float = 10.0  # per provisioning key
    burst: int = 5
    #: site → provisioning keys whose devices are approved at once
    auto_approve: dict[str, frozenset[str]] = field(default_factory=dict)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


@dataclass(slots=True)
class Registrar:
    """Checks requests, keeps the registry, drives the broker's access control."""

    store: RegistryStore
    topics: RegistrationTopics
    broker: BrokerAccess
    publish: Publish
    audit: Audit
    policy: RegistrationPolicy = field(default_factory=RegistrationPolicy)
    clock: Callable[[], float] = time.time
    on_refused: Callable[[str], None] = lambda reason: None
    #: (site, device, kind) of a revoked device and of each device it published for: they fall silent.
    on_revoked: Callable[[str, str, str], None] = lambda site, device, kind: None
    _buckets: dict[str, _Bucket] = field(init=False, default_factory=dict)
    _logged: set[tuple[str, str]] = field(init=False, default_factory=set)
    _allowed: set[tuple[str, str]] = field(init=False, default_factory=set)

    async def open(self) -> None:
        """Load which devices may have their data stored."""
        self._allowed = await self.store.approved_pairs()

    def allows(self, site: str, device: str) -> bool:
        """Whether data of this device may be stored: it, or the agent it publishes through, is approved."""
        return (site, device) in self._allowed

    # -- requests -----------------------------------------------------------------------------------------

    async def handle(self, topic: str, payload: bytes) -> RegistrationState | None:
        """Check and record one request; None when it was refused (counted and logged, nothing stored)."""
        try:
            where = self.topics.parse_request(topic)
        except TopicError as exc:
            self._refuse("bad_topic", "?", str(exc))
            return None
        key = where.key
        if not self._take_token(key):
            self._refuse("rate_limited", key, f"more than {self.policy.requests_per_minute:g} requests a minute")
            return None
        if len(payload) > MAX_REQUEST_BYTES:
            self._refuse("too_large", key, f"{len(payload)} bytes, at most {MAX_REQUEST_BYTES}")
            return None
        try:
            request = RegistrationRequest.model_validate_json(payload)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where_ = ".".join(str(part) for part in first["loc"]) or "(payload)"
            self._refuse("schema", key, f"{where_}: {first['msg']}")
            return None
        if (request.site, request.device) != (where.site, where.device):
            self._refuse("identity_mismatch", key, "the payload names another site or device than the topic")
            return None
        if abs(request.ts / 1000 - self.clock()) > self.policy.max_clock_skew_s:
            self._refuse("stale", key, f"ts {request.ts} is more than {self.policy.max_clock_skew_s:g} s away")
            return None
        if await self.store.nonce_seen(request.nonce):
            self._refuse("replayed", key, f"nonce {request.nonce} was used before")
            return None
        return await self._record(key, request)

    async def _record(self, key: str, request: RegistrationRequest) -> RegistrationState:
        now_ms = self._now_ms()
        await self.store.record_request(key, request, now_ms)
        target = f"{request.site}/{request.device}"
        await self.audit(f"key:{key}", "registration.requested", target, "ok", {"kind": request.kind}, None)
        entry = await self._get(request.site, request.device)
        if key in self.policy.auto_approve.get(request.site, frozenset()):
            await self.approve(request.site, request.device, actor=f"auto:{key}")
            return RegistrationState.APPROVED
        log.info("registration of %s (%s) waits for an operator", target, request.kind)
        await self._answer(entry, RegistrationState.PENDING, None)
        return RegistrationState.PENDING

    # -- decisions ------------------------------------------------------------------------------------------

    async def approve(self, site: str, device: str, *, actor: str, source: str | None = None) -> Registration:
        """Create the device's login with its own topics, then tell it."""
        entry = await self._get(site, device)
        password = await self.store.pending_password(site, device)
        if not entry.awaiting_decision or password is None:
            raise RegistryError(f"{site}/{device} has no request waiting for a decision")
        username = device_username(site, device)
        await self.broker.grant(username, password, [(site, device), *entry.gateway_for])
        await self.store.decide(
            site, device, RegistrationState.APPROVED, actor=actor, now_ms=self._now_ms(), username=username
        )
        self._allowed.update([(site, device), *entry.gateway_for])
        await self.audit(actor, "registration.approved", f"{site}/{device}", "ok", {"username": username}, source)
        log.info("%s approved %s/%s (login %s)", actor, site, device, username)
        entry = await self._get(site, device)
        await self._answer(entry, RegistrationState.APPROVED, None)
        return entry

    async def reject(
        self, site: str, device: str, *, actor: str, reason: str | None = None, source: str | None = None
    ) -> Registration:
        """Refuse a waiting request; an approved device keeps its login (revoke it to cut it off)."""
        entry = await self._get(site, device)
        if not entry.awaiting_decision:
            raise RegistryError(f"{site}/{device} has no request waiting for a decision")
        state = RegistrationState.APPROVED if entry.state is RegistrationState.APPROVED else RegistrationState.REJECTED
        await self.store.decide(site, device, state, actor=actor, now_ms=self._now_ms(), reason=reason)
        await self.audit(actor, "registration.rejected", f"{site}/{device}", "ok", {"reason": reason}, source)
        await self._answer(entry, RegistrationState.REJECTED, reason)
        return await self._get(site, device)

    async def revoke(
        self, site: str, device: str, *, actor: str, reason: str | None = None, source: str | None = None
    ) -> Registration:
        """Disable the device's login (its session is dropped) and stop storing its data."""
        entry = await self._get(site, device)
        if entry.state is not RegistrationState.APPROVED or entry.username is None:
            raise RegistryError(f"{site}/{device} is not approved ({entry.state.value})")
        await self.broker.revoke(entry.username)
        for gone_site, gone_device in [(site, device), *entry.gateway_for]:
            self.on_revoked(gone_site, gone_device, entry.kind)
        await self.store.decide(
            site, device, RegistrationState.REVOKED, actor=actor, now_ms=self._now_ms(), reason=reason
        )
        self._allowed = await self.store.approved_pairs()
        await self.audit(actor, "device.revoked", f"{site}/{device}", "ok", {"reason": reason}, source)
        await self._answer(entry, RegistrationState.REVOKED, reason)
        return await self._get(site, device)

    # -- helpers --------------------------------------------------------------------------------------------

    async def _get(self, site: str, device: str) -> Registration:
        entry = await self.store.get(site, device)
        if entry is None:
            raise RegistryError(f"no registration for {site}/{device}")
        return entry

    async def _answer(self, entry: Registration, state: RegistrationState, reason: str | None) -> None:
        response = RegistrationResponse(
            device=entry.device,
            site=entry.site,
            state=state,
            nonce=entry.nonce,
            username=entry.username if state is RegistrationState.APPROVED else None,
            reason=reason,
            ts=self._now_ms(),
        )
        topic = self.topics.response(entry.site, entry.provisioning_key, entry.device)
        # Retained: a device that was offline when the decision came reads it when it subscribes.
        await self.publish(topic, response.model_dump_json(exclude_none=True).encode(), True)

    def _take_token(self, key: str) -> bool:
        now = time.monotonic()
        bucket = self._buckets.setdefault(key, _Bucket(tokens=float(self.policy.burst), at=now))
        rate_per_s = self.policy.requests_per_minute / 60
        bucket.tokens = min(float(self.policy.burst), bucket.tokens + (now - bucket.at) * rate_per_s)
        bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def _refuse(self, reason: str, key: str, detail: str) -> None:
        """Count and log (once per key and reason) a refused request; nothing of it is stored."""
        self.on_refused(reason)
        if (key, reason) not in self._logged:  # once per key and reason: a flood must not flood the log
            self._logged.add((key, reason))
            log.warning("registration request refused (key %s): %s: %s", key, reason, detail)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)
