"""An embedded MQTT broker (amqtt) for ``cityhub demo``: nothing to install beyond the Python package.

amqtt speaks MQTT 3.1.1 only, so the demo hub connects with protocol 4; shared subscriptions and the
other MQTT 5 features need a real broker (Mosquitto, EMQX, HiveMQ). amqtt keeps sessions in memory:
it is for demonstrations and development, never for production.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


async def start_embedded_broker(host: str = "127.0.0.1", port: int = 1883) -> Any:
    """Start an anonymous amqtt broker on ``host:port`` in the running event loop; returns the broker."""
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    # amqtt logs every packet at INFO; keep the demo's console readable.
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    broker = Broker(config)
    await broker.start()
    log.info("embedded MQTT broker (amqtt, MQTT 3.1.1) listening on %s:%s", host, port)
    return broker
