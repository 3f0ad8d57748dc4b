"""Alert notifications: the team topics on MQTT, signed webhooks and apprise (e-mail, SMS, chat).

::

    AlertManager --Notice--> AlertService._notify --AlertMessage--> Notifier.notify
        -> one FIFO + worker per channel: "mqtt" (team topics), each webhook, each apprise channel
        -> retries with backoff -> delivered, or on_failure (written into the alert's history)
"""

from hub.notify.config import AppriseChannel, NotifyConfig, RetryConfig, WebhookChannel
from hub.notify.notifier import MQTT_CHANNEL, Notifier
from hub.notify.webhook import sign, verify_signature

__all__ = [
    "MQTT_CHANNEL",
    "AppriseChannel",
    "Notifier",
    "NotifyConfig",
    "RetryConfig",
    "WebhookChannel",
    "sign",
    "verify_signature",
]
