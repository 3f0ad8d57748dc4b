"""Delivery through apprise: e-mail (SMTP), SMS gateways, chat services, whatever the URLs name."""

from __future__ import annotations

import datetime as dt

import apprise

from cityhub.contract.alerts import AlertMessage
from hub.notify.config import AppriseChannel
from hub.notify.webhook import DeliveryFailed


def render(message: AlertMessage, prefix: str) -> tuple[str, str]:
    """The title and body people read."""
    title = f"{prefix} [{message.severity.upper()}] {message.event.value}: {message.summary}"
    at = dt.datetime.fromtimestamp(message.at / 1000, dt.UTC).isoformat(timespec="seconds")
    lines = [
        message.summary,
        "",
        f"Alert:     {message.alert_id} ({message.event.value} at {at})",
        f"Rule:      {message.rule}",
        f"Site:      {message.site}",
        f"Device:    {message.device} ({message.kind})",
        f"Team:      {message.team}",
        f"Severity:  {message.severity}",
        f"By:        {message.actor}",
    ]
    if message.comment:
        lines.append(f"Comment:   {message.comment}")
    if message.escalation_level:
        lines.append(f"Escalated: step {message.escalation_level}")
    if message.runbook:
        lines.append(f"Runbook:   {message.runbook}")
    return title[:250], "\n".join(lines)


async def send_apprise(channel: AppriseChannel, message: AlertMessage) -> None:
    """One attempt to every URL of the channel; DeliveryFailed (retryable) when any of them failed."""
    notifier = apprise.Apprise()
    for url in channel.urls:
        notifier.add(url.get_secret_value())
    title, body = render(message, channel.title_prefix)
    if not await notifier.async_notify(body=body, title=title):
        raise DeliveryFailed("apprise could not deliver to every URL (see the hub's log)", retry=True)
