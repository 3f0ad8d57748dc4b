"""The hub process: one MQTT session, the ingest loop, the store and its spool, the HTTP endpoint.

Data flow: broker → MqttSession.receive → Ingestor.ingest (validate, dedup, map) → Batch →
TimeSeriesStore.write (InfluxDB, or the spool while it is down; or SQLite) → acknowledge to the broker.
A message is acknowledged only once its points are durable, so a crash at any point loses nothing:
the broker redelivers what was not acknowledged, and writes are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from pydantic import SecretStr

from cityhub.contract import MessageKind, Topics
from cityhub.http import EmbeddedServer, create_app
from cityhub.mqtt import BrokerAddress, MqttSession, SessionOptions
from hub.alerts.service import AlertService
from hub.api import HubApi, build_api
from hub.api.routers import alerts, registrations, reports
from hub.audit import Outcome
from hub.config import HubSettings
from hub.console import mount_console
from hub.devices import DeviceStates
from hub.dynsec import DynSecAccess, DynSecClient
from hub.ingest import Batch, Ingestor, RejectLog
from hub.kpi import source_for
from hub.lastvalues import LastValues, fan_out
from hub.metrics import HubMetrics
from hub.registry.service import RegistryService
from hub.selfstats import SelfStats
from hub.sequence import SequenceTracker
from hub.storage.history import history_for
from hub.storage.influx import InfluxV1Writer, InfluxV2Writer, LineWriter
from hub.storage.spool import Spool
from hub.storage.store import EmbeddedStore, InfluxStore, TimeSeriesStore

log = logging.getLogger(__name__)

#: Messages ingested between two turns of the event loop (see Hub._consume).
RECEIVE_CHUNK = 512
#: Messages acknowledged between two turns of the event loop (about a millisecond; see Hub._flush).
ACK_SLICE = 128


def tune_runtime() -> None:
    """Process-wide settings for a process that runs a hub: fewer garbage-collector passes.

    The hub allocates many short-lived objects per message (models, points, strings) and few cycles;
    CPython's default thresholds made full collections take about a quarter of the ingest loop's CPU
    (bench/ingest.py). Objects alive at start-up are frozen out of the collector's sight.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def make_store(settings: HubSettings, metrics: HubMetrics) -> TimeSeriesStore:
    """InfluxDB (with a spool) when a URL is configured, else the embedded SQLite store."""
    influx = settings.influx
    if not influx.url:
        return EmbeddedStore(settings.data_dir / "timeseries.sqlite", metrics)
    writer: LineWriter
    if influx.api == "v2":
        # InfluxConfig refuses v2 without these three.
        assert influx.token is not None
        assert influx.org is not None
        assert influx.bucket is not None
        writer = InfluxV2Writer(
            influx.url, token=influx.token, org=influx.org, bucket=influx.bucket, timeout_s=influx.timeout_s
        )
    else:
        writer = InfluxV1Writer(
            influx.url,
            database=influx.db,
            retention_policy=influx.rp,
            username=influx.username,
            password=influx.password,
            token=influx.token,
            timeout_s=influx.timeout_s,
            create_database=influx.create_database,
        )
    return InfluxStore(
        writer, Spool(settings.data_dir / "spool.sqlite"), metrics, spool_max_bytes=influx.spool_max_mb * 1024**2
    )


class Hub:
    """One hub instance."""

    def __init__(self, settings: HubSettings, *, alert_clock_ms: Callable[[], int] | None = None) -> None:
        # alert_clock_ms: the rules' clock; scenario replays at N times real speed pass a clock N times as fast.
        self.settings = settings
        self.metrics = HubMetrics()
        self.topics = Topics(settings.mqtt.topic_root)
        self.store = make_store(settings, self.metrics)
        self.devices = DeviceStates(settings.data_dir / "devices.sqlite")
        mqtt = settings.mqtt
        self.session = MqttSession(
            BrokerAddress.from_url(mqtt.url),
            SessionOptions(
                client_id=mqtt.client_id,
                protocol=mqtt.protocol,
                clean_start=False,
                session_expiry_s=mqtt.session_expiry_s,
                receive_maximum=mqtt.receive_maximum,
                keepalive_s=mqtt.keepalive_s,
                manual_ack=True,
                subscriptions=[(self.topics.subscription(kind, mqtt.shared_group), 1) for kind in MessageKind],
            ),
        )
        self.last_values = LastValues()  # GET /api/v1/devices/{site}/{device}/values
        self.api = HubApi.in_dir(
            settings.api, settings.data_dir, devices=self.devices, values=self.last_values,
            history=history_for(settings, self.store),
        )  # fmt: skip
        self.access: DynSecAccess | None = None  # the broker's access control, with registration
        self.registry: RegistryService | None = None
        if settings.registration.enabled:
            self.registry = RegistryService(
                settings,
                self,  # grant/revoke go to the broker once run() has logged in as its admin
                self._audit,
                on_refused=lambda reason: self.metrics.registration_refused.labels(reason=reason).inc(),
                # The broker drops a revoked device without publishing its will: the hub says it.
                on_revoked=lambda site, device, kind: self.ingestor.declare_offline(
                    site, device, kind, "revoked", int(time.time() * 1000)
                ),
            )
        enforce = self.registry is not None and settings.registration.enforce
        self.alerts: AlertService | None = None
        if settings.alerts.enabled:
            self.alerts = AlertService(
                settings.alerts, settings.notifications, data_dir=settings.data_dir,
                topic_root=settings.mqtt.topic_root, hub_id=settings.hub_id, publish=self._publish_alert,
                registry=self.metrics.registry, **({"clock_ms": alert_clock_ms} if alert_clock_ms else {}),
            )  # fmt: skip
            if mqtt.shared_group is not None:
                # The rules need all of a device's messages; a group member sees only its share of them.
                log.warning(
                    "alerts are enabled on a hub of shared group %r: its rules see part of each device's stream "
                    "(false staleness, missed thresholds); enable alerts on one hub without the group",
                    mqtt.shared_group,
                )
        ingest = settings.ingest
        self.ingestor = Ingestor(
            topics=self.topics,
            limits=ingest.limits(),
            tracker=SequenceTracker(ingest.dedup_window),
            # With a shared subscription each hub sees part of every device's sequence: no gaps to count.
            count_gaps=mqtt.shared_group is None,
            devices=self.devices,
            metrics=self.metrics,
            reject_log=RejectLog(ingest.reject_log_interval_s),
            dead_letter=self._publish_dead_letter if ingest.dead_letter else None,
            hub_id=settings.hub_id,
            allows=self.registry.registrar.allows if enforce and self.registry else None,
            observer=fan_out(self.alerts.observe if self.alerts else None, self.last_values.observe),
        )
        self.metrics.mqtt_connected.set_function(lambda: 1.0 if self.session.connected else 0.0)
        self.metrics.messages_unacked.set_function(lambda: float(self.session.unacked))
        self.selfstats: SelfStats | None = None
        if settings.selfstats.enabled:
            self.selfstats = SelfStats(
                settings.hub_id, settings.selfstats.interval_s, metrics=self.metrics, devices=self.devices,
                alerts=self.alerts, store=self.store,
            )  # fmt: skip
        self.http: EmbeddedServer | None = None
        self.ready = asyncio.Event()
        self._last_flush = time.monotonic()

    async def _audit(
        self, actor: str, action: str, target: str, outcome: str, detail: dict[str, object], source: str | None
    ) -> None:
        """The registrar's decisions and requests, in the audit log."""
        await self.api.audit.record(
            action, actor=actor, target=target, outcome=Outcome(outcome), source=source, detail=detail
        )

    def _secrets(self) -> dict[str, SecretStr | str | None]:
        """The hub's own secrets by setting name, checked with the API's (every weak one named at once)."""
        registration = self.settings.registration
        secrets: dict[str, SecretStr | str | None] = {
            "mqtt.url password": BrokerAddress.from_url(self.settings.mqtt.url).password,
            "registration.broker_admin_password": registration.broker_admin_password,
        }
        for key in registration.provisioning_keys:
            secrets[f"registration.provisioning_keys[{key.site}/{key.key}].secret"] = key.secret
        return secrets

    # -- the broker's access control (BrokerAccess for the registrar) -------------------------------

    async def grant(self, username: str, password: str, devices: Sequence[tuple[str, str]]) -> None:
        """Create or update a device's broker login with exactly its topics."""
        assert self.access is not None, "registration runs only once the hub has logged in as the broker's admin"
        await self.access.grant(username, password, devices)

    async def revoke(self, username: str) -> None:
        """Disable a device's broker login; its connection is dropped."""
        assert self.access is not None, "registration runs only once the hub has logged in as the broker's admin"
        await self.access.revoke(username)

    async def _open_access(self, stack: contextlib.AsyncExitStack) -> None:
        """Log in as the broker's admin; set the default deny, the hub's login and the provisioning keys."""
        config = self.settings.registration
        assert config.broker_admin_username is not None, "checked by RegistrationConfig"
        assert config.broker_admin_password is not None, "checked by RegistrationConfig"
        mqtt_address = BrokerAddress.from_url(self.settings.mqtt.url)
        admin = replace(
            mqtt_address,
            username=config.broker_admin_username,
            password=config.broker_admin_password.get_secret_value(),
        )
        client = await stack.enter_async_context(
            DynSecClient(admin, client_id=f"{self.settings.mqtt.client_id}-dynsec"[:64])
        )
        self.access = DynSecAccess(client, self.settings.mqtt.topic_root)
        await self.access.setup_defaults()
        if mqtt_address.username and mqtt_address.password:
            await self.access.ensure_hub_login(mqtt_address.username, mqtt_address.password)
        for key in config.provisioning_keys:
            await self.access.ensure_provisioning_key(key.site, key.key, key.secret.get_secret_value())

    def _publish_alert(self, topic: str, payload: bytes) -> asyncio.Future[None]:
        # QoS 1 on the hub's own session: consoles and other systems must not miss a transition. Sent
        # during the call, not at the loop's next turn; the notifier waits for the PUBACK (and retries).
        return self.session.publish_soon(topic, payload, qos=1)

    def _publish_dead_letter(self, topic: str, payload: bytes) -> None:
        # QoS 0: dead letters are a diagnostic stream (the reject counters are the record); they must
        # not pile up in memory while the broker is away.
        if not self.session.publish_nowait(topic, payload, qos=0):
            self.metrics.dead_letter_failures.inc()

    def health(self) -> dict[str, Any]:
        """Liveness and readiness, for ``/health``."""
        connected = self.session.connected
        spool = getattr(self.store, "spool", None)
        return {
            "status": "ok" if connected and self.ready.is_set() else "degraded",
            "hub_id": self.settings.hub_id,
            "mqtt_connected": connected,
            "store": "influxdb" if self.settings.influx.url else "sqlite",
            "spool_batches": spool.depth.batches if spool else 0,
            "seconds_since_flush": round(time.monotonic() - self._last_flush, 3),
            "devices_known": len(self.devices),
        }

    async def run(self, stop: asyncio.Event, shutdown_grace_s: float = 10.0) -> None:
        """Run until ``stop`` is set; then flush what was received and disconnect cleanly."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.store.open()
        await self.devices.open()
        await self.api.open(self._secrets())
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self.registry is not None:
                    await self._open_access(stack)
                    await self.registry.open()
                    stack.push_async_callback(self.registry.aclose)
                if self.alerts is not None:
                    await self.alerts.open()
                    stack.push_async_callback(self.alerts.aclose)
                await self._serve(stop, shutdown_grace_s)
        finally:
            self.ready.clear()
            await self.store.aclose()
            await self.devices.aclose()
            await self.api.aclose()

    async def _serve(self, stop: asyncio.Event, shutdown_grace_s: float) -> None:
        """Ingest (and answer registrations) until ``stop``; then flush what was received."""
        async with self.session, asyncio.TaskGroup() as tasks:
            background = [tasks.create_task(self.store.run(), name="store-drain")]
            if self.registry is not None:
                background.append(tasks.create_task(self.registry.run(stop), name="registration"))
            if self.alerts is not None:
                background.append(tasks.create_task(self.alerts.run(stop), name="alerts"))
            if self.settings.http.port is not None:
                background.append(tasks.create_task(self._serve_http(), name="http"))
            if self.selfstats is not None:
                background.append(tasks.create_task(self.selfstats.run(), name="selfstats"))
            consumer = tasks.create_task(self._consume(stop), name="consume")
            self.ready.set()
            await stop.wait()
            try:
                await asyncio.wait_for(asyncio.shield(consumer), shutdown_grace_s)
            except TimeoutError:
                # Held by backpressure (spool full, InfluxDB down): nothing of it was acknowledged,
                # so the broker keeps it for the next run.
                log.warning("last batch not stored within %s s; leaving it to the broker", shutdown_grace_s)
                consumer.cancel()
            for task in background:
                task.cancel()

    async def _serve_http(self) -> None:
        app = create_app(self.metrics.registry, self.health, title="cityhub hub")
        mount_console(app, self.alerts, self.metrics.registry)  # first: its /alerts/stream before /alerts/{id}
        build_api(app, self.api, routers=[registrations.router, alerts.router, reports.router])
        app.state.cityhub_kpi = source_for(self.settings, self.devices)
        if self.alerts is not None:
            app.state.cityhub_alerts = self.alerts
        if self.registry is not None:
            app.state.cityhub_registrar = self.registry.registrar
        self.http = EmbeddedServer.for_app(app, self.settings.http.host, self.settings.http.port or 0)
        await self.http.serve()

    async def _consume(self, stop: asyncio.Event) -> None:
        """Fill batches; store each while the next one fills, so the loop never idles on InfluxDB."""
        ingest = self.settings.ingest
        batch = Batch()
        storing: asyncio.Task[None] | None = None
        try:
            while True:
                remaining = max(0.0, batch.opened_at + ingest.flush_interval_s - time.monotonic())
                wanted = min(RECEIVE_CHUNK, ingest.batch_max_messages - len(batch.messages))
                messages = await self.session.receive(wanted, remaining)
                self.ingestor.take_declared(batch)
                for message in messages:
                    self.ingestor.ingest(message, batch)
                    if self.alerts is not None and self.alerts.has_pending:
                        # A reading just fired or resolved an alert: let the alert worker tell the team now,
                        # not after the rest of the chunk (up to RECEIVE_CHUNK messages, tens of ms).
                        await asyncio.sleep(0)
                    if len(batch.points) >= ingest.batch_max_points:
                        storing, batch = await self._hand_over(batch, storing), Batch()
                due = time.monotonic() - batch.opened_at >= ingest.flush_interval_s
                if len(batch.messages) >= ingest.batch_max_messages or due or stop.is_set():
                    storing, batch = await self._hand_over(batch, storing), Batch()
                if storing is not None and storing.done():
                    storing.result()  # a failed store stops the hub here, with nothing acknowledged
                if stop.is_set():
                    if storing is not None:
                        await storing
                    return
                # receive() returns without yielding while messages wait: yield once per chunk, so that
                # the batch being stored gets its turn (send the request, read the answer) meanwhile.
                await asyncio.sleep(0)
        finally:
            if storing is not None and not storing.done():
                storing.cancel()

    async def _hand_over(self, batch: Batch, storing: asyncio.Task[None] | None) -> asyncio.Task[None] | None:
        """Start storing ``batch`` once the one before it is stored: acknowledgements stay in order."""
        if storing is not None:
            await storing
        if not batch.messages and not batch.points:
            return None
        self.ingestor.in_flight_states = batch.device_states
        return asyncio.create_task(self._flush(batch), name="store-batch")

    async def _flush(self, batch: Batch) -> None:
        started = time.perf_counter()
        if batch.points:
            await self.store.write(batch.points)
        await self.devices.save(list(batch.device_states.values()))
        for number, message in enumerate(batch.messages):
            if number and number % ACK_SLICE == 0:
                await asyncio.sleep(0)  # a batch's acknowledgements must not hold back the next readings
            self.session.ack(message)
        self._last_flush = time.monotonic()
        if batch.messages:
            self.metrics.batch_seconds.observe(time.perf_counter() - started)
            self.metrics.batch_points.observe(len(batch.points))
