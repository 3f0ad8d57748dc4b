"""Prometheus metrics of one hub instance (each hub gets its own registry, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class HubMetrics:
    """The hub's counters, gauges and histograms, all prefixed ``cityhub_hub_``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_received = Counter(
            "cityhub_hub_messages_received",
            "Valid messages received from the broker, by message kind",
            ["kind"],
            registry=r,
        )
        self.messages_rejected = Counter(
            "cityhub_hub_messages_rejected", "Messages rejected, by reason", ["reason"], registry=r
        )
        self.registration_refused = Counter(
            "cityhub_hub_registration_refused", "Registration requests refused, by reason", ["reason"], registry=r
        )
        self.historical_messages = Counter(
            "cityhub_hub_historical_messages", "Telemetry and event messages a sender had buffered", registry=r
        )
        self.duplicates_dropped = Counter(
            "cityhub_hub_duplicates_dropped", "Replayed messages dropped by sequence number", registry=r
        )
        self.sequence_gaps = Counter(
            "cityhub_hub_sequence_gaps", "Messages missing between two sequence numbers", registry=r
        )
        self.points_written = Counter(
            "cityhub_hub_points_written", "Points written to the time-series store", registry=r
        )
        self.points_spooled = Counter("cityhub_hub_points_spooled", "Points put in the on-disk spool", registry=r)
        self.points_rejected_by_store = Counter(
            "cityhub_hub_points_rejected_by_store",
            "Points dropped: refused by InfluxDB (HTTP 400) or not encodable as line protocol",
            registry=r,
        )
        self.store_errors = Counter(
            "cityhub_hub_store_errors", "Failed writes to the time-series store", ["kind"], registry=r
        )
        self.dead_letter_failures = Counter(
            "cityhub_hub_dead_letter_failures", "Dead letters that could not be published", registry=r
        )
        self.batch_seconds = Histogram(
            "cityhub_hub_batch_flush_seconds",
            "Time to store one batch (to InfluxDB or the spool) and acknowledge it",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.batch_points = Histogram(
            "cityhub_hub_batch_points",
            "Points per flushed batch",
            buckets=(1, 10, 50, 100, 500, 1_000, 2_500, 5_000, 10_000, 50_000),
            registry=r,
        )
        self.spool_batches = Gauge("cityhub_hub_spool_batches", "Batches waiting in the spool", registry=r)
        self.spool_points = Gauge("cityhub_hub_spool_points", "Points waiting in the spool", registry=r)
        self.spool_bytes = Gauge("cityhub_hub_spool_bytes", "Bytes waiting in the spool", registry=r)
        self.messages_unacked = Gauge(
            "cityhub_hub_messages_unacked",
            "Messages received and not yet acknowledged to the broker (at most mqtt.receive_maximum)",
            registry=r,
        )
        self.mqtt_connected = Gauge("cityhub_hub_mqtt_connected", "1 when connected to the broker", registry=r)
        self.store_available = Gauge(
            "cityhub_hub_store_available", "1 when the last write to the store succeeded", registry=r
        )
