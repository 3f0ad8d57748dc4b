"""Prometheus metrics of one edge agent, prefixed ``cityhub_agent_``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class AgentMetrics:
    """The agent's counters and gauges (its own registry, so tests can run several agents)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter(
            "cityhub_agent_polls", "Device polls, by device and result", ["device", "result"], registry=r
        )
        self.poll_seconds = Histogram(
            "cityhub_agent_poll_seconds",
            "Time to poll one device",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.invalid = Counter(
            "cityhub_agent_invalid_output",
            "Driver output dropped because the contract refuses it, by device",
            ["device"],
            registry=r,
        )
        self.devices_down = Gauge("cityhub_agent_devices_down", "Devices not answering", registry=r)
        self.queue_messages = Gauge(
            "cityhub_agent_queue_messages", "Messages waiting in the outbound queue", registry=r
        )
        self.queue_bytes = Gauge("cityhub_agent_queue_bytes", "Bytes waiting in the outbound queue", registry=r)
        self.queue_oldest_seconds = Gauge(
            "cityhub_agent_queue_oldest_seconds", "Age of the oldest queued message", registry=r
        )
        self.dropped = Counter(
            "cityhub_agent_queue_dropped", "Messages dropped from the queue, by reason", ["reason"], registry=r
        )
        self.forwarded = Gauge("cityhub_agent_forwarded", "Messages the broker acknowledged", registry=r)
        self.historical = Gauge(
            "cityhub_agent_forwarded_historical", "Forwarded messages that had waited in the queue", registry=r
        )
        self.mqtt_connected = Gauge("cityhub_agent_mqtt_connected", "1 when connected to the broker", registry=r)
