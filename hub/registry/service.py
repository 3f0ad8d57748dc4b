"""The hub's registration desk: its own MQTT session reading requests, the registrar deciding on them.

Registration traffic is rare and must never wait behind a telemetry batch (nor hold one up), so it has
a session of its own (client id ``<hub client id>-registry``), persistent like the ingest session: a
request sent while the hub was down is delivered when it comes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cityhub.contract.registration import RegistrationTopics
from cityhub.mqtt import BrokerAddress, MqttSession, SessionOptions
from hub.config import HubSettings
from hub.registry.registrar import Audit, BrokerAccess, Registrar, RegistrationPolicy
from hub.registry.store import RegistryStore

log = logging.getLogger(__name__)


class RegistryService:
    """Reads registration requests and answers them; operators decide through ``registrar``."""

    def __init__(
        self,
        settings: HubSettings,
        broker: BrokerAccess,
        audit: Audit,
        *,
        on_refused: Callable[[str], None] | None = None,
        on_revoked: Callable[[str, str, str], None] | None = None,
    ) -> None:
        config = settings.registration
        self.topics = RegistrationTopics(settings.mqtt.topic_root)
        self.store = RegistryStore(settings.data_dir / "registry.sqlite")
        mqtt = settings.mqtt
        self.session = MqttSession(
            BrokerAddress.from_url(mqtt.url),
            SessionOptions(
                client_id=f"{mqtt.client_id}-registry"[:64],
                protocol=mqtt.protocol,
                clean_start=False,
                session_expiry_s=mqtt.session_expiry_s,
                keepalive_s=mqtt.keepalive_s,
                subscriptions=[(self.topics.subscription(mqtt.shared_group), 1)],
            ),
        )
        policy = RegistrationPolicy(
            max_clock_skew_s=config.max_clock_skew_s,
            requests_per_minute=config.requests_per_minute,
            burst=config.burst,
            auto_approve=_auto_approve(settings),
        )
        self.registrar = Registrar(
            self.store,
            self.topics,
            broker,
            self._publish,
            audit,
            policy,
            on_refused=on_refused or (lambda reason: None),
            on_revoked=on_revoked or (lambda site, device, kind: None),
        )
        self.ready = asyncio.Event()

    async def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        await self.session.publish(topic, payload, qos=1, retain=retain, timeout_s=10.0)

    async def open(self) -> None:
        """Open the registry (before the ingest needs ``registrar.allows``)."""
        await self.store.open()
        await self.registrar.open()

    async def run(self, stop: asyncio.Event) -> None:
        """Handle requests until ``stop``."""
        async with self.session:
            self.ready.set()
            while not stop.is_set():
                for message in await self.session.receive(16, 0.5):
                    try:
                        await self.registrar.handle(message.topic, message.payload)
                    except Exception:  # a broker hiccup on one request must not end the desk
                        log.exception("registration request on %s could not be handled", message.topic)

    async def aclose(self) -> None:
        """Close the registry."""
        await self.store.aclose()


def _auto_approve(settings: HubSettings) -> dict[str, frozenset[str]]:
    sites: dict[str, set[str]] = {}
    for key in settings.registration.provisioning_keys:
        if key.auto_approve:
            sites.setdefault(key.site, set()).add(key.key)
    return {site: frozenset(keys) for site, keys in sites.items()}
